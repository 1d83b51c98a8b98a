//! The systemd cgroup driver (`--systemd-cgroup`), as runc has it: the container's cgroup is a
//! transient scope unit that systemd creates over D-Bus with the container's pid in it and
//! `Delegate=yes`, in the slice the cgroupsPath names; the resources systemd knows are set as unit
//! properties (so systemd never resets them), and hull writes the rest to the cgroup directly.
//!
//! cgroupsPath takes runc's `slice:prefix:name` form: `system.slice:docker:abc` is the unit
//! `docker-abc.scope` in `system.slice`, whose cgroup is `/system.slice/docker-abc.scope`. A name
//! ending in `.slice` asks for a slice unit instead. Empty parts default as runc's do.

use super::{stats, Cgroup, OomWatch};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxDeviceType, LinuxResources};
use std::cell::{Cell, OnceCell, RefCell};
use std::path::Path;
use zbus::zvariant::{OwnedObjectPath, Value};

/// Where a container's unit lives and what it is called.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnitPath {
    /// The parent slice, e.g. `system.slice`.
    pub slice: String,
    pub prefix: String,
    pub name: String,
}

/// Parses cgroupsPath for the systemd driver. Unset means `system.slice:hull:<id>`
/// (`user.slice` for a rootless caller), as runc defaults it with its own prefix.
pub fn parse_path(cgroups_path: Option<&Path>, id: &str, rootless: bool) -> Result<UnitPath> {
    let default_slice = if rootless {
        "user.slice"
    } else {
        "system.slice"
    };
    let Some(p) = cgroups_path.map(|p| p.to_string_lossy().into_owned()) else {
        return Ok(UnitPath {
            slice: default_slice.into(),
            prefix: "hull".into(),
            name: id.into(),
        });
    };
    let parts: Vec<&str> = p.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        bail!(
            "linux.cgroupsPath: expected \"slice:prefix:name\" for the systemd cgroup driver, got {p:?}"
        );
    };
    for (part, what) in [(slice, "slice"), (prefix, "prefix"), (name, "name")] {
        if part.contains('/') {
            bail!("linux.cgroupsPath: the {what} {part:?} must not contain \"/\"");
        }
    }
    if !slice.is_empty() {
        expand_slice(slice)?;
    }
    Ok(UnitPath {
        slice: if slice.is_empty() {
            default_slice
        } else {
            slice
        }
        .into(),
        prefix: prefix.into(),
        name: if name.is_empty() { id } else { name }.into(),
    })
}

impl UnitPath {
    /// The unit name: a scope `<prefix>-<name>.scope` (`<name>.scope` without a prefix), or
    /// the slice the name asks for.
    pub fn unit(&self) -> String {
        if self.name.ends_with(".slice") {
            self.name.clone()
        } else if self.prefix.is_empty() {
            format!("{}.scope", self.name)
        } else {
            format!("{}-{}.scope", self.prefix, self.name)
        }
    }

    /// The cgroup path relative to the hierarchy root, e.g. `/system.slice/hull-abc.scope`.
    pub fn cgroup_path(&self) -> Result<String> {
        Ok(format!("{}/{}", expand_slice(&self.slice)?, self.unit()))
    }
}

/// systemd's slice nesting: `a-b-c.slice` lives at `/a.slice/a-b.slice/a-b-c.slice`; `-.slice`
/// is the root.
pub fn expand_slice(slice: &str) -> Result<String> {
    let Some(base) = slice.strip_suffix(".slice") else {
        bail!("linux.cgroupsPath: {slice:?} is not a slice");
    };
    if base == "-" {
        return Ok(String::new());
    }
    if base.is_empty() || base.starts_with('-') || base.ends_with('-') || base.contains("--") {
        bail!("linux.cgroupsPath: invalid slice name {slice:?}");
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for (i, part) in base.split('-').enumerate() {
        if i > 0 {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push('/');
        path.push_str(&prefix);
        path.push_str(".slice");
    }
    Ok(path)
}

/// A unit property as StartTransientUnit and SetUnitProperties take it.
pub type Property = (&'static str, Value<'static>);

/// runc's rounding of a CPU quota to systemd's CPUQuotaPerSecUSec: per second, up to 10 ms.
fn quota_per_sec(quota: i64, period: u64) -> u64 {
    if quota <= 0 {
        return u64::MAX;
    }
    let period = if period == 0 { 100_000 } else { period };
    let q = (quota as u64).saturating_mul(1_000_000) / period;
    q.div_ceil(10_000) * 10_000
}

/// The systemd bitmask of a cpuset list ("0-2,5"): byte i, bit j is CPU 8i+j.
fn cpuset_mask(list: &str, field: &str) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let parse = |s: &str| {
            s.parse::<usize>()
                .ok()
                .filter(|n| *n < 8192)
                .with_context(|| format!("{field}: invalid list {list:?}"))
        };
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if lo > hi {
            bail!("{field}: invalid range {part:?}");
        }
        for cpu in lo..=hi {
            if bytes.len() <= cpu / 8 {
                bytes.resize(cpu / 8 + 1, 0);
            }
            bytes[cpu / 8] |= 1 << (cpu % 8);
        }
    }
    Ok(bytes)
}

fn limit(v: i64) -> u64 {
    if v < 0 {
        u64::MAX
    } else {
        v as u64
    }
}

/// The device rules as systemd properties, as runc's generateDeviceProperties makes them: a
/// strict policy, then each allowed rule as a `DeviceAllow` of `/dev/{char,block}/M:m`, or
/// `char-*`/`block-*` (or `char-<driver>` from /proc/devices) for a wildcard minor. Deny rules
/// narrow nothing under a strict policy; hull's own device program enforces them exactly.
fn device_properties(resources: &LinuxResources) -> Vec<Property> {
    let Some(rules) = resources.devices().as_ref() else {
        return Vec::new();
    };
    let mut allow: Vec<(String, String)> = Vec::new();
    for r in rules.iter().filter(|r| r.allow()) {
        let access = r.access().clone().unwrap_or_else(|| "rwm".into());
        let kind = match r.typ() {
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => "char",
            Some(LinuxDeviceType::B) => "block",
            // "a": every device; systemd has no rule for that, so the policy stays open.
            _ => return vec![("DevicePolicy", Value::from("auto"))],
        };
        match (r.major(), r.minor()) {
            (Some(ma), Some(mi)) if ma >= 0 && mi >= 0 => {
                allow.push((format!("/dev/{kind}/{ma}:{mi}"), access))
            }
            (Some(ma), _) if ma >= 0 => {
                for name in drivers_for_major(kind, ma) {
                    allow.push((format!("{kind}-{name}"), access.clone()));
                }
            }
            _ => allow.push((format!("{kind}-*"), access)),
        }
    }
    vec![
        ("DevicePolicy", Value::from("strict")),
        ("DeviceAllow", Value::from(allow)),
    ]
}

/// Driver names /proc/devices lists for a major number.
fn drivers_for_major(kind: &str, major: i64) -> Vec<String> {
    let section = if kind == "char" {
        "Character devices:"
    } else {
        "Block devices:"
    };
    let text = std::fs::read_to_string("/proc/devices").unwrap_or_default();
    let mut in_section = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.ends_with(':') {
            in_section = line == section;
            continue;
        }
        let mut words = line.split_whitespace();
        if let (true, Some(m), Some(name)) = (in_section, words.next(), words.next()) {
            if m.parse::<i64>().ok() == Some(major) {
                out.push(name.to_string());
            }
        }
    }
    out
}

/// The resources systemd knows, as unit properties, mapped as runc maps them for each cgroup
/// version. Everything else is written to the cgroup by hull's cgroupfs code.
pub fn properties(resources: &LinuxResources, v2: bool) -> Result<Vec<Property>> {
    let mut props: Vec<Property> = Vec::new();
    if let Some(mem) = resources.memory() {
        if let Some(l) = mem.limit() {
            props.push((
                if v2 { "MemoryMax" } else { "MemoryLimit" },
                limit(l).into(),
            ));
        }
        if v2 {
            if let Some(r) = mem.reservation() {
                props.push(("MemoryLow", limit(r).into()));
            }
            let swap = super::v2::swap_to_v2(mem.swap().unwrap_or(0), mem.limit().unwrap_or(0))?;
            if swap != 0 {
                props.push(("MemorySwapMax", limit(swap).into()));
            }
        }
    }
    if let Some(cpu) = resources.cpu() {
        if let Some(shares) = cpu.shares().filter(|s| *s != 0) {
            if v2 {
                props.push(("CPUWeight", super::v2::shares_to_weight(shares).into()));
            } else {
                props.push(("CPUShares", shares.into()));
            }
        }
        if let Some(period) = cpu.period().filter(|p| *p != 0) {
            props.push(("CPUQuotaPeriodUSec", period.into()));
        }
        if cpu.quota().is_some() || cpu.period().is_some() {
            let quota = cpu.quota().unwrap_or(-1);
            props.push((
                "CPUQuotaPerSecUSec",
                quota_per_sec(quota, cpu.period().unwrap_or(0)).into(),
            ));
        }
        if let Some(cpus) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
            let mask = cpuset_mask(cpus, "linux.resources.cpu.cpus")?;
            props.push(("AllowedCPUs", Value::from(mask)));
        }
        if let Some(mems) = cpu.mems().as_deref().filter(|c| !c.is_empty()) {
            let mask = cpuset_mask(mems, "linux.resources.cpu.mems")?;
            props.push(("AllowedMemoryNodes", Value::from(mask)));
        }
    }
    if let Some(pids) = resources.pids() {
        props.push(("TasksMax", limit(pids.limit()).into()));
    }
    if let Some(w) = resources.block_io().as_ref().and_then(|b| b.weight()) {
        if w != 0 {
            if v2 {
                props.push(("IOWeight", super::v2::blkio_weight_to_io_weight(w).into()));
            } else {
                props.push(("BlockIOWeight", u64::from(w).into()));
            }
        }
    }
    props.extend(device_properties(resources));
    Ok(props)
}

/// A connection to systemd's manager on the system bus.
pub struct Systemd {
    conn: zbus::blocking::Connection,
}

const DEST: &str = "org.freedesktop.systemd1";
const PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";

impl Systemd {
    /// Connects to the system bus; a clear error when systemd isn't reachable.
    pub fn connect() -> Result<Systemd> {
        let conn = zbus::blocking::Connection::system().map_err(|e| {
            anyhow::anyhow!(
                "--systemd-cgroup: cannot reach systemd over D-Bus (is systemd running?): {e}"
            )
        })?;
        Ok(Systemd { conn })
    }

    fn call<B>(&self, method: &str, body: &B) -> Result<zbus::Message>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        self.conn
            .call_method(Some(DEST), PATH, Some(MANAGER), method, body)
            .map_err(|e| anyhow::anyhow!("systemd {method}: {e}"))
    }

    /// Runs a manager method that starts a job and waits until systemd reports it done.
    fn job<B>(&self, method: &str, unit: &str, body: &B) -> Result<()>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
    {
        let proxy = zbus::blocking::Proxy::new(&self.conn, DEST, PATH, MANAGER)?;
        // Subscribed before the call, so the job's end cannot be missed.
        let mut removed = proxy.receive_signal("JobRemoved")?;
        let reply = self.call(method, body)?;
        let job: OwnedObjectPath = reply.body().deserialize()?;
        for msg in &mut removed {
            let (_id, path, name, result): (u32, OwnedObjectPath, String, String) =
                msg.body().deserialize()?;
            if path == job {
                if result != "done" {
                    bail!("systemd {method} {name}: job {result}");
                }
                return Ok(());
            }
        }
        bail!("systemd {method} {unit}: the bus closed before the job finished")
    }

    /// Creates the unit with `pid` in it, delegated to hull, with `props` on top.
    pub fn start_unit(&self, path: &UnitPath, pid: u32, mut props: Vec<Property>) -> Result<()> {
        let unit = path.unit();
        if !unit.ends_with(".slice") {
            props.push(("Slice", Value::from(path.slice.clone())));
            props.push(("PIDs", Value::from(vec![pid])));
        }
        props.push(("Delegate", Value::from(true)));
        props.push((
            "Description",
            Value::from(format!("hull container {}", path.name)),
        ));
        // Stopping the unit must not kill what is left before hull's delete looks at it.
        props.push(("DefaultDependencies", Value::from(false)));
        let aux: Vec<(String, Vec<Property>)> = Vec::new();
        self.job(
            "StartTransientUnit",
            &unit,
            &(unit.as_str(), "replace", props, aux),
        )
    }

    /// Updates the unit's properties at runtime (`hull update`).
    pub fn set_properties(&self, unit: &str, props: Vec<Property>) -> Result<()> {
        if props.is_empty() {
            return Ok(());
        }
        self.call("SetUnitProperties", &(unit, true, props))?;
        Ok(())
    }

    /// Stops the unit; one that is already gone is fine.
    pub fn stop_unit(&self, unit: &str) -> Result<()> {
        match self.job("StopUnit", unit, &(unit, "replace")) {
            Err(e)
                if e.to_string().contains("NoSuchUnit") || e.to_string().contains("not loaded") =>
            {
                Ok(())
            }
            other => other,
        }?;
        // A failed transient unit stays listed until reset; nothing may be left.
        let _ = self.call("ResetFailedUnit", &(unit,));
        Ok(())
    }
}

/// A container cgroup whose unit systemd manages: the unit is started with the first pid (a
/// scope cannot be empty), the resources systemd knows go to it as properties, and everything is
/// also written to the cgroup files by the cgroupfs implementation underneath, as runc does.
pub struct SystemdCgroup {
    inner: Box<dyn Cgroup>,
    unit: UnitPath,
    /// Connected at first use: zbus runs threads, and `create` forks after making this value.
    systemd: OnceCell<Systemd>,
    v2: bool,
    started: Cell<bool>,
    /// Resources given before the unit existed, applied once it does.
    pending: RefCell<Option<LinuxResources>>,
}

impl SystemdCgroup {
    /// For a container being created.
    pub fn new(unit: UnitPath) -> Result<SystemdCgroup> {
        Self::open(unit, false)
    }

    /// For an existing container whose unit was started by `create`.
    pub fn existing(unit: UnitPath) -> Result<SystemdCgroup> {
        Self::open(unit, true)
    }

    fn open(unit: UnitPath, started: bool) -> Result<SystemdCgroup> {
        let v2 = super::detect(Path::new("/sys/fs/cgroup")) == super::Layout::Unified;
        Ok(SystemdCgroup {
            inner: super::open(&unit.cgroup_path()?)?,
            unit,
            systemd: OnceCell::new(),
            v2,
            started: Cell::new(started),
            pending: RefCell::new(None),
        })
    }

    pub fn unit_name(&self) -> String {
        self.unit.unit()
    }

    fn systemd(&self) -> Result<&Systemd> {
        if let Some(s) = self.systemd.get() {
            return Ok(s);
        }
        let s = Systemd::connect()?;
        Ok(self.systemd.get_or_init(|| s))
    }
}

impl Cgroup for SystemdCgroup {
    fn path(&self) -> &str {
        self.inner.path()
    }
    fn create(&self) -> Result<()> {
        // systemd makes the cgroup when the unit starts with the first pid.
        Ok(())
    }
    fn add_pid(&self, pid: i32) -> Result<()> {
        if self.started.get() {
            return self.inner.add_pid(pid);
        }
        let pending = self.pending.borrow_mut().take();
        let props = match &pending {
            Some(r) => properties(r, self.v2)?,
            None => Vec::new(),
        };
        let pid_u = u32::try_from(pid).context("invalid pid")?;
        self.systemd()?.start_unit(&self.unit, pid_u, props)?;
        self.started.set(true);
        // Hierarchies systemd did not make (cgroup v1 controllers it does not delegate) get the
        // directory and the pid from hull, as with cgroupfs.
        self.inner.create()?;
        self.inner.add_pid(pid)?;
        match pending {
            Some(r) => self.inner.apply(&r),
            None => Ok(()),
        }
    }
    fn apply(&self, resources: &LinuxResources) -> Result<()> {
        if !self.started.get() {
            *self.pending.borrow_mut() = Some(resources.clone());
            return Ok(());
        }
        self.systemd()?
            .set_properties(&self.unit.unit(), properties(resources, self.v2)?)?;
        self.inner.apply(resources)
    }
    fn pids(&self) -> Result<Vec<i32>> {
        self.inner.pids()
    }
    fn freeze(&self) -> Result<()> {
        self.inner.freeze()
    }
    fn thaw(&self) -> Result<()> {
        self.inner.thaw()
    }
    fn is_frozen(&self) -> bool {
        self.inner.is_frozen()
    }
    fn destroy(&self) -> Result<()> {
        self.systemd()?.stop_unit(&self.unit.unit())?;
        // Not only when the first hierarchy is left: on cgroup v1 systemd removes the ones it
        // manages, and the others (cpuset, freezer...) hull made itself. rmdir skips the gone.
        self.inner.destroy()
    }
    fn stats(&self) -> Result<stats::Stats> {
        self.inner.stats()
    }
    fn oom_kill_count(&self) -> u64 {
        self.inner.oom_kill_count()
    }
    fn oom_watch(&self) -> Result<OomWatch> {
        self.inner.oom_watch()
    }
    fn exists(&self) -> bool {
        self.inner.exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_parsed_and_defaulted_as_runc_does() {
        let p = |s: &str| parse_path(Some(Path::new(s)), "abc", false);
        assert_eq!(
            p("system.slice:docker:abc").unwrap().cgroup_path().unwrap(),
            "/system.slice/docker-abc.scope"
        );
        let d = parse_path(None, "abc", false).unwrap();
        assert_eq!(d.unit(), "hull-abc.scope");
        assert_eq!(d.cgroup_path().unwrap(), "/system.slice/hull-abc.scope");
        assert_eq!(parse_path(None, "abc", true).unwrap().slice, "user.slice");
        assert_eq!(p("::").unwrap().unit(), "abc.scope");
        assert_eq!(
            p(":pre:").unwrap().cgroup_path().unwrap(),
            "/system.slice/pre-abc.scope"
        );
        assert_eq!(
            p("kubepods-besteffort.slice:cri-containerd:x1")
                .unwrap()
                .cgroup_path()
                .unwrap(),
            "/kubepods.slice/kubepods-besteffort.slice/cri-containerd-x1.scope"
        );
        assert_eq!(
            p("-.slice::my.slice").unwrap().cgroup_path().unwrap(),
            "/my.slice"
        );
        for bad in [
            "/hull/abc",
            "a:b",
            "system.slice:a:b:c",
            "system:hull:x",
            "a-.slice:p:n",
            "s.slice:a/b:n",
        ] {
            let e = p(bad).unwrap_err().to_string();
            assert!(e.starts_with("linux.cgroupsPath:"), "{bad}: {e}");
        }
    }

    #[test]
    fn resources_map_to_runc_s_properties() {
        let r: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728},
            "cpu": {"shares": 1024, "quota": 25000, "period": 100000, "cpus": "0-1,9"},
            "pids": {"limit": 64},
            "blockIO": {"weight": 500},
            "devices": [{"allow": false, "access": "rwm"},
                        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                        {"allow": true, "type": "c", "major": 136, "access": "rwm"}]
        }))
        .unwrap();
        let props = properties(&r, true).unwrap();
        let get = |k: &str| props.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("MemoryMax"), Some(Value::from(67108864u64)));
        assert_eq!(get("MemoryLow"), Some(Value::from(33554432u64)));
        assert_eq!(get("MemorySwapMax"), Some(Value::from(67108864u64)));
        assert_eq!(get("CPUWeight"), Some(Value::from(39u64)));
        assert_eq!(get("CPUQuotaPerSecUSec"), Some(Value::from(250_000u64)));
        assert_eq!(get("CPUQuotaPeriodUSec"), Some(Value::from(100_000u64)));
        assert_eq!(get("AllowedCPUs"), Some(Value::from(vec![0b11u8, 0b10])));
        assert_eq!(get("TasksMax"), Some(Value::from(64u64)));
        assert_eq!(get("IOWeight"), Some(Value::from(4950u64)));
        assert_eq!(get("DevicePolicy"), Some(Value::from("strict")));
        let allow = get("DeviceAllow").unwrap().to_string();
        assert!(allow.contains("/dev/char/1:3"), "{allow}");
        // 136 is the pts major: named from /proc/devices.
        assert!(allow.contains("char-pts"), "{allow}");
        let v1 = properties(&r, false).unwrap();
        assert!(v1
            .iter()
            .any(|(n, v)| *n == "MemoryLimit" && *v == Value::from(67108864u64)));
        assert!(v1
            .iter()
            .any(|(n, v)| *n == "CPUShares" && *v == Value::from(1024u64)));
        // A quota rounds up to 10 ms per second; none means no limit.
        assert_eq!(quota_per_sec(1234, 100_000), 20_000);
        assert_eq!(quota_per_sec(-1, 100_000), u64::MAX);
    }
}
