//! cgroup v1: one directory per mounted controller hierarchy (plus, on hybrid hosts, the
//! controller-less cgroup2 mount, which hull joins so tools that read it see the container).

use super::fsutil::{key_value, mkdir_all, read, read_pids, rmdir, set, write};
use super::stats::{hugepage_sizes, keyed, num, BlkioEntry, Hugetlb, MemoryEntry, Stats};
use super::{Cgroup, OomWatch};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxResources;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub struct V1 {
    path: String,
    /// (controllers, mount point) of every v1 hierarchy on the host.
    hierarchies: Vec<(Vec<String>, PathBuf)>,
    /// The controller-less cgroup2 mount of a hybrid host.
    unified: Option<PathBuf>,
}

/// Parses /proc/self/mountinfo into cgroup v1 hierarchies and the cgroup2 mount, if any.
pub fn parse_mountinfo(text: &str) -> (Vec<(Vec<String>, PathBuf)>, Option<PathBuf>) {
    let mut hierarchies = Vec::new();
    let mut unified = None;
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount_point = match left.split(' ').nth(4) {
            Some(m) => PathBuf::from(m.replace("\\040", " ")),
            None => continue,
        };
        let mut right = right.split(' ');
        let fstype = right.next().unwrap_or("");
        let super_opts = right.nth(1).unwrap_or("");
        match fstype {
            "cgroup" => {
                let ctrls: Vec<String> = super_opts
                    .split(',')
                    .filter(|o| {
                        !matches!(*o, "rw" | "ro" | "noprefix" | "xattr" | "clone_children")
                            && !o.starts_with("release_agent=")
                    })
                    .map(str::to_string)
                    .collect();
                // The first mount of a hierarchy is the host's: a later one (a container's
                // cgroup mount made in this namespace, when it has no mount namespace of its
                // own) shows another root of it.
                if !ctrls.is_empty() && !hierarchies.iter().any(|(c, _)| *c == ctrls) {
                    hierarchies.push((ctrls, mount_point));
                }
            }
            "cgroup2" if unified.is_none() => unified = Some(mount_point),
            _ => {}
        }
    }
    (hierarchies, unified)
}

impl V1 {
    pub fn new(path: &str) -> Result<V1> {
        let text = read(Path::new("/proc/self/mountinfo"))?;
        let (hierarchies, unified) = parse_mountinfo(&text);
        Ok(V1 {
            path: path.to_string(),
            hierarchies,
            unified,
        })
    }

    fn dir_of(&self, mount: &Path) -> PathBuf {
        mount.join(self.path.trim_start_matches('/'))
    }

    /// The directory of the hierarchy that carries `controller`, if the host mounts it.
    fn controller_dir(&self, controller: &str) -> Option<PathBuf> {
        self.hierarchies
            .iter()
            .find(|(c, _)| c.iter().any(|c| c == controller))
            .map(|(_, m)| self.dir_of(m))
    }

    fn need(&self, controller: &str, field: &str) -> Result<PathBuf> {
        match self.controller_dir(controller) {
            Some(d) => Ok(d),
            None => bail!(
                "linux.resources.{field}: the host has no cgroup v1 {controller} controller mounted"
            ),
        }
    }

    fn all_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .hierarchies
            .iter()
            .map(|(_, m)| self.dir_of(m))
            .collect();
        if let Some(u) = &self.unified {
            dirs.push(self.dir_of(u));
        }
        dirs
    }

    /// A new cpuset cgroup starts with no cpus or mems, and no task can join it until both are
    /// copied down from the parent.
    fn init_cpuset(&self) -> Result<()> {
        let Some((_, mount)) = self
            .hierarchies
            .iter()
            .find(|(c, _)| c.iter().any(|c| c == "cpuset"))
        else {
            return Ok(());
        };
        let mut dir = mount.clone();
        for comp in Path::new(&self.path).components().skip(1) {
            let parent = dir.clone();
            dir.push(comp);
            for file in ["cpuset.cpus", "cpuset.mems"] {
                if read(&dir.join(file))?.trim().is_empty() {
                    write(&dir.join(file), read(&parent.join(file))?.trim())?;
                }
            }
        }
        Ok(())
    }
}

impl V1 {
    fn apply_memory(&self, mem: &oci_spec::runtime::LinuxMemory) -> Result<()> {
        let dir = || self.need("memory", "memory");
        let limit = mem.limit().filter(|&l| l != 0);
        let swap = mem.swap().filter(|&s| s != 0);
        if let Some(l) = limit {
            if l > 0 && mem.check_before_update() == Some(true) {
                let usage = num(&dir()?.join("memory.usage_in_bytes"));
                if (l as u64) < usage {
                    bail!("linux.resources.memory.limit: {l} is below the current usage {usage} (checkBeforeUpdate)");
                }
            }
        }
        let write_limit = |l: i64| -> Result<()> {
            set(&dir()?, "memory.limit_in_bytes", &l.to_string(), "memory.limit").map_err(|e| {
                if is_busy(&e) {
                    anyhow::anyhow!("linux.resources.memory.limit: {l} is below the container's current memory usage")
                } else {
                    e
                }
            })
        };
        let write_swap = |s: i64| -> Result<()> {
            let d = dir()?;
            if !d.join("memory.memsw.limit_in_bytes").exists() {
                bail!("linux.resources.memory.swap: the host kernel has no swap accounting (memory.memsw.*)");
            }
            set(
                &d,
                "memory.memsw.limit_in_bytes",
                &s.to_string(),
                "memory.swap",
            )
        };
        match (limit, swap) {
            (Some(l), Some(s)) => {
                // The kernel wants limit <= memsw at every step, so the order depends on whether
                // the new pair grows or shrinks the current one.
                let cur = num(&dir()?.join("memory.limit_in_bytes"));
                if s == -1 || cur < s as u64 {
                    write_swap(s)?;
                    write_limit(l)?;
                } else {
                    write_limit(l)?;
                    write_swap(s)?;
                }
            }
            (Some(l), None) => write_limit(l)?,
            (None, Some(s)) => write_swap(s)?,
            (None, None) => {}
        }
        if let Some(res) = mem.reservation() {
            set(
                &dir()?,
                "memory.soft_limit_in_bytes",
                &res.to_string(),
                "memory.reservation",
            )?;
        }
        // Kernel memory limits are gone from recent kernels (runc ignores them too); set them only
        // where the kernel still has the files.
        if let Some(k) = mem.kernel() {
            let d = dir()?;
            if d.join("memory.kmem.limit_in_bytes").exists() {
                set(
                    &d,
                    "memory.kmem.limit_in_bytes",
                    &k.to_string(),
                    "memory.kernel",
                )?;
            }
        }
        if let Some(k) = mem.kernel_tcp() {
            let d = dir()?;
            if d.join("memory.kmem.tcp.limit_in_bytes").exists() {
                set(
                    &d,
                    "memory.kmem.tcp.limit_in_bytes",
                    &k.to_string(),
                    "memory.kernelTCP",
                )?;
            }
        }
        if let Some(sw) = mem.swappiness() {
            if sw > 100 {
                bail!("linux.resources.memory.swappiness: {sw} is not in [0, 100]");
            }
            set(
                &dir()?,
                "memory.swappiness",
                &sw.to_string(),
                "memory.swappiness",
            )?;
        }
        if let Some(disable) = mem.disable_oom_killer() {
            set(
                &dir()?,
                "memory.oom_control",
                if disable { "1" } else { "0" },
                "memory.disableOOMKiller",
            )?;
        }
        Ok(())
    }

    fn apply_cpu(&self, cpu: &oci_spec::runtime::LinuxCpu) -> Result<()> {
        if let Some(shares) = cpu.shares().filter(|&s| s != 0) {
            let dir = self.need("cpu", "cpu.shares")?;
            set(&dir, "cpu.shares", &shares.to_string(), "cpu.shares")?;
            // The kernel clamps silently; runc reports the clamp as an error.
            let got = num(&dir.join("cpu.shares"));
            if got != shares {
                bail!(
                    "linux.resources.cpu.shares: {shares} is out of range (the kernel set {got})"
                );
            }
        }
        if let Some(period) = cpu.period().filter(|&p| p != 0) {
            set(
                &self.need("cpu", "cpu.period")?,
                "cpu.cfs_period_us",
                &period.to_string(),
                "cpu.period",
            )?;
        }
        if let Some(quota) = cpu.quota().filter(|&q| q != 0) {
            set(
                &self.need("cpu", "cpu.quota")?,
                "cpu.cfs_quota_us",
                &quota.to_string(),
                "cpu.quota",
            )?;
        }
        if let Some(burst) = cpu.burst() {
            set(
                &self.need("cpu", "cpu.burst")?,
                "cpu.cfs_burst_us",
                &burst.to_string(),
                "cpu.burst",
            )?;
        }
        // The runtime must fit in the period at every step: raise the period first.
        if let Some(p) = cpu.realtime_period().filter(|&p| p != 0) {
            set(
                &self.need("cpu", "cpu.realtimePeriod")?,
                "cpu.rt_period_us",
                &p.to_string(),
                "cpu.realtimePeriod",
            )?;
        }
        if let Some(rt) = cpu.realtime_runtime().filter(|&r| r != 0) {
            set(
                &self.need("cpu", "cpu.realtimeRuntime")?,
                "cpu.rt_runtime_us",
                &rt.to_string(),
                "cpu.realtimeRuntime",
            )?;
        }
        if let Some(idle) = cpu.idle() {
            set(
                &self.need("cpu", "cpu.idle")?,
                "cpu.idle",
                &idle.to_string(),
                "cpu.idle",
            )?;
        }
        if let Some(cpus) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
            set(
                &self.need("cpuset", "cpu.cpus")?,
                "cpuset.cpus",
                cpus,
                "cpu.cpus",
            )?;
        }
        if let Some(mems) = cpu.mems().as_deref().filter(|m| !m.is_empty()) {
            set(
                &self.need("cpuset", "cpu.mems")?,
                "cpuset.mems",
                mems,
                "cpu.mems",
            )?;
        }
        Ok(())
    }

    fn apply_blkio(&self, bio: &oci_spec::runtime::LinuxBlockIo) -> Result<()> {
        let dir = || self.need("blkio", "blockIO");
        // BFQ hosts name the weight files blkio.bfq.*; CFQ ones had plain blkio.weight.
        let weight_file = |d: &Path, base: &str| {
            let bfq = format!("blkio.bfq.{base}");
            if d.join(&bfq).exists() {
                bfq
            } else {
                format!("blkio.{base}")
            }
        };
        // As runc: 0 means unset (docker sends weight 0 for every container).
        if let Some(w) = bio.weight().filter(|&w| w != 0) {
            let d = dir()?;
            set(
                &d,
                &weight_file(&d, "weight"),
                &w.to_string(),
                "blockIO.weight",
            )?;
        }
        if let Some(w) = bio.leaf_weight().filter(|&w| w != 0) {
            set(
                &dir()?,
                "blkio.leaf_weight",
                &w.to_string(),
                "blockIO.leafWeight",
            )?;
        }
        for (i, wd) in bio.weight_device().iter().flatten().enumerate() {
            let d = dir()?;
            if let Some(w) = wd.weight() {
                let field = format!("blockIO.weightDevice[{i}].weight");
                set(
                    &d,
                    &weight_file(&d, "weight_device"),
                    &format!("{}:{} {w}", wd.major(), wd.minor()),
                    &field,
                )?;
            }
            if let Some(w) = wd.leaf_weight() {
                let field = format!("blockIO.weightDevice[{i}].leafWeight");
                set(
                    &d,
                    "blkio.leaf_weight_device",
                    &format!("{}:{} {w}", wd.major(), wd.minor()),
                    &field,
                )?;
            }
        }
        let throttles = [
            (
                "throttleReadBpsDevice",
                "blkio.throttle.read_bps_device",
                bio.throttle_read_bps_device(),
            ),
            (
                "throttleWriteBpsDevice",
                "blkio.throttle.write_bps_device",
                bio.throttle_write_bps_device(),
            ),
            (
                "throttleReadIOPSDevice",
                "blkio.throttle.read_iops_device",
                bio.throttle_read_iops_device(),
            ),
            (
                "throttleWriteIOPSDevice",
                "blkio.throttle.write_iops_device",
                bio.throttle_write_iops_device(),
            ),
        ];
        for (name, file, list) in throttles {
            for (i, t) in list.iter().flatten().enumerate() {
                let field = format!("blockIO.{name}[{i}]");
                set(
                    &dir()?,
                    file,
                    &format!("{}:{} {}", t.major(), t.minor(), t.rate()),
                    &field,
                )?;
            }
        }
        Ok(())
    }

    fn stat_dir(&self, controller: &str) -> Option<PathBuf> {
        self.controller_dir(controller).filter(|d| d.exists())
    }
}

fn is_busy(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.raw_os_error() == Some(libc::EBUSY))
}

/// "8:0 Read 4096" lines of blkio.throttle.io_service_bytes*.
fn blkio_entries(path: &Path) -> Vec<BlkioEntry> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, op, v) = (f.next()?, f.next()?, f.next()?);
            let (maj, min) = dev.split_once(':')?;
            Some(BlkioEntry {
                major: maj.parse().ok()?,
                minor: min.parse().ok()?,
                op: op.to_string(),
                value: v.parse().ok()?,
            })
        })
        .collect()
}

impl Cgroup for V1 {
    fn path(&self) -> &str {
        &self.path
    }

    fn create(&self) -> Result<()> {
        for dir in self.all_dirs() {
            mkdir_all(&dir)?;
        }
        self.init_cpuset()
    }

    fn add_pid(&self, pid: i32) -> Result<()> {
        for dir in self.all_dirs() {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn apply(&self, r: &LinuxResources) -> Result<()> {
        if let Some(mem) = r.memory() {
            self.apply_memory(mem)?;
        }
        if let Some(cpu) = r.cpu() {
            self.apply_cpu(cpu)?;
        }
        if let Some(pids) = r.pids() {
            // As runc: 0 leaves the limit alone, negative lifts it.
            match pids.limit() {
                0 => {}
                l if l < 0 => set(
                    &self.need("pids", "pids.limit")?,
                    "pids.max",
                    "max",
                    "pids.limit",
                )?,
                l => set(
                    &self.need("pids", "pids.limit")?,
                    "pids.max",
                    &l.to_string(),
                    "pids.limit",
                )?,
            }
        }
        if let Some(bio) = r.block_io() {
            self.apply_blkio(bio)?;
        }
        if let Some(limits) = r.hugepage_limits() {
            for (i, h) in limits.iter().enumerate() {
                let field = format!("hugepageLimits[{i}]");
                let dir = self.need("hugetlb", &field)?;
                let file = format!("hugetlb.{}.limit_in_bytes", h.page_size());
                set(&dir, &file, &h.limit().to_string(), &field)?;
            }
        }
        if let Some(net) = r.network() {
            if let Some(id) = net.class_id() {
                set(
                    &self.need("net_cls", "network.classID")?,
                    "net_cls.classid",
                    &id.to_string(),
                    "network.classID",
                )?;
            }
            if let Some(prios) = net.priorities() {
                let dir = self.need("net_prio", "network.priorities")?;
                for p in prios {
                    set(
                        &dir,
                        "net_prio.ifpriomap",
                        &format!("{} {}", p.name(), p.priority()),
                        "network.priorities",
                    )?;
                }
            }
        }
        if let Some(rdma) = r.rdma() {
            let dir = self.need("rdma", "rdma")?;
            for (dev, l) in rdma {
                set(&dir, "rdma.max", &super::rdma_line(dev, l), "rdma")?;
            }
        }
        if let Some(u) = r.unified() {
            if !u.is_empty() {
                bail!(
                    "linux.resources.unified: needs a cgroup v2 host; this host runs cgroup v1 controllers{}",
                    if self.unified.is_some() { " (its cgroup2 mount has no controllers)" } else { "" }
                );
            }
        }
        if let Some(devs) = r.devices() {
            let rules = super::devices::rules(devs)?;
            super::devices::apply_v1(&self.need("devices", "devices")?, &rules)?;
        }
        Ok(())
    }

    fn pids(&self) -> Result<Vec<i32>> {
        let dir = self
            .controller_dir("pids")
            .or_else(|| self.controller_dir("memory"))
            .or_else(|| self.all_dirs().into_iter().next());
        match dir {
            Some(d) if d.exists() => read_pids(&d.join("cgroup.procs")),
            _ => Ok(Vec::new()),
        }
    }

    fn freeze(&self) -> Result<()> {
        let dir = self.need("freezer", "freezer")?;
        write(&dir.join("freezer.state"), "FROZEN")?;
        for _ in 0..1000 {
            if read(&dir.join("freezer.state"))?.trim() == "FROZEN" {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        bail!("freeze {}: processes did not stop", dir.display())
    }

    fn thaw(&self) -> Result<()> {
        let dir = self.need("freezer", "freezer")?;
        write(&dir.join("freezer.state"), "THAWED")
    }

    fn is_frozen(&self) -> bool {
        self.controller_dir("freezer")
            .and_then(|d| std::fs::read_to_string(d.join("freezer.state")).ok())
            .is_some_and(|s| s.trim() != "THAWED")
    }

    fn destroy(&self) -> Result<()> {
        for dir in self.all_dirs() {
            rmdir(&dir)?;
        }
        Ok(())
    }

    fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        if let Some(d) = self.stat_dir("cpuacct") {
            s.cpu.usage.total = num(&d.join("cpuacct.usage"));
            s.cpu.usage.percpu = std::fs::read_to_string(d.join("cpuacct.usage_percpu"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            // cpuacct.stat counts USER_HZ ticks; runc reports nanoseconds.
            // SAFETY: sysconf has no memory effects.
            let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
            let st = keyed(&d.join("cpuacct.stat"));
            s.cpu.usage.user = st.get("user").copied().unwrap_or(0) * 1_000_000_000 / hz;
            s.cpu.usage.kernel = st.get("system").copied().unwrap_or(0) * 1_000_000_000 / hz;
        }
        if let Some(d) = self.stat_dir("cpu") {
            let st = keyed(&d.join("cpu.stat"));
            s.cpu.throttling.periods = st.get("nr_periods").copied().unwrap_or(0);
            s.cpu.throttling.throttled_periods = st.get("nr_throttled").copied().unwrap_or(0);
            s.cpu.throttling.throttled_time = st.get("throttled_time").copied().unwrap_or(0);
        }
        if let Some(d) = self.stat_dir("memory") {
            let entry = |prefix: &str| MemoryEntry {
                limit: num(&d.join(format!("{prefix}limit_in_bytes"))),
                usage: num(&d.join(format!("{prefix}usage_in_bytes"))),
                max: num(&d.join(format!("{prefix}max_usage_in_bytes"))),
                failcnt: num(&d.join(format!("{prefix}failcnt"))),
            };
            s.memory.usage = entry("memory.");
            s.memory.swap = entry("memory.memsw.");
            s.memory.kernel = entry("memory.kmem.");
            s.memory.kernel_tcp = entry("memory.kmem.tcp.");
            s.memory.raw = keyed(&d.join("memory.stat"));
            s.memory.cache = s.memory.raw.get("cache").copied().unwrap_or(0);
        }
        if let Some(d) = self.stat_dir("pids") {
            s.pids.current = num(&d.join("pids.current"));
            s.pids.limit = num(&d.join("pids.max"));
        }
        if let Some(d) = self.stat_dir("blkio") {
            s.blkio.io_service_bytes_recursive =
                blkio_entries(&d.join("blkio.throttle.io_service_bytes_recursive"));
            s.blkio.io_serviced_recursive =
                blkio_entries(&d.join("blkio.throttle.io_serviced_recursive"));
        }
        if let Some(d) = self.stat_dir("hugetlb") {
            for size in hugepage_sizes() {
                let f = |n: &str| num(&d.join(format!("hugetlb.{size}.{n}")));
                let h = Hugetlb {
                    usage: f("usage_in_bytes"),
                    max: f("max_usage_in_bytes"),
                    failcnt: f("failcnt"),
                };
                s.hugetlb.insert(size, h);
            }
        }
        Ok(s)
    }

    fn oom_kill_count(&self) -> u64 {
        self.controller_dir("memory")
            .and_then(|d| std::fs::read_to_string(d.join("memory.oom_control")).ok())
            .and_then(|t| key_value(&t, "oom_kill"))
            .unwrap_or(0)
    }

    fn oom_watch(&self) -> Result<OomWatch> {
        let dir = self.need("memory", "memory")?;
        let ctl = dir.join("memory.oom_control");
        let file = std::fs::File::open(&ctl).with_context(|| format!("open {}", ctl.display()))?;
        // SAFETY: eventfd returns a new fd or -1.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if efd < 0 {
            return Err(std::io::Error::last_os_error()).context("eventfd");
        }
        // SAFETY: the fd was just created and is ours.
        let efd = unsafe { OwnedFd::from_raw_fd(efd) };
        write(
            &dir.join("cgroup.event_control"),
            &format!("{} {}", efd.as_raw_fd(), file.as_raw_fd()),
        )?;
        Ok(OomWatch::new(efd, true, vec![file]))
    }

    fn exists(&self) -> bool {
        self.all_dirs().first().is_some_and(|d| d.exists())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_limits_into_a_fake_cgroupfs() {
        let tmp = tempfile::tempdir().unwrap();
        let mount = |c: &str| tmp.path().join(c);
        let cg = V1 {
            path: "/hull/t".to_string(),
            hierarchies: ["memory", "pids", "cpu", "devices"]
                .iter()
                .map(|c| (vec![c.to_string()], mount(c)))
                .collect(),
            unified: None,
        };
        let files = [
            ("memory", "memory.limit_in_bytes", "9223372036854771712"),
            (
                "memory",
                "memory.memsw.limit_in_bytes",
                "9223372036854771712",
            ),
            ("memory", "memory.swappiness", ""),
            ("pids", "pids.max", ""),
            ("cpu", "cpu.shares", "1024"),
            ("devices", "devices.allow", ""),
            ("devices", "devices.deny", ""),
        ];
        for (c, f, v) in files {
            std::fs::create_dir_all(mount(c).join("hull/t")).unwrap();
            std::fs::write(mount(c).join("hull/t").join(f), v).unwrap();
        }
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":1048576,"swap":2097152,"swappiness":10},"pids":{"limit":-1},
                "devices":[{"allow":false,"access":"rwm"}]}"#,
        )
        .unwrap();
        cg.apply(&r).unwrap();
        let read =
            |c: &str, f: &str| std::fs::read_to_string(mount(c).join("hull/t").join(f)).unwrap();
        assert_eq!(read("memory", "memory.limit_in_bytes"), "1048576");
        assert_eq!(read("memory", "memory.memsw.limit_in_bytes"), "2097152");
        assert_eq!(read("memory", "memory.swappiness"), "10");
        assert_eq!(read("pids", "pids.max"), "max");
        // A plain file keeps only the last write: the last default rule.
        assert_eq!(read("devices", "devices.allow"), "c 5:2 rwm");
        assert_eq!(read("devices", "devices.deny"), "a *:* rwm");
        let err = |json: &str| {
            let r: LinuxResources = serde_json::from_str(json).unwrap();
            cg.apply(&r).unwrap_err().to_string()
        };
        assert!(err(r#"{"hugepageLimits":[{"pageSize":"2MB","limit":1}]}"#)
            .contains("hugepageLimits[0]"));
        assert!(err(r#"{"network":{"classID":1}}"#).contains("network.classID"));
        assert!(err(r#"{"unified":{"memory.max":"1"}}"#).contains("linux.resources.unified"));
        assert!(err(r#"{"memory":{"swappiness":101}}"#).contains("memory.swappiness"));
    }

    #[test]
    fn parses_hybrid_mountinfo() {
        let text = "\
30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
32 25 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
33 25 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
34 25 0:30 / /proc rw - proc proc rw
35 25 0:26 / /tmp/b/rootfs/sys/fs/cgroup/memory rw - cgroup cgroup rw,memory";
        let (h, u) = parse_mountinfo(text);
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].1, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(h[1].0, vec!["cpu", "cpuacct"]);
        assert_eq!(h[2].0, vec!["name=systemd"]);
        assert_eq!(u, Some(PathBuf::from("/sys/fs/cgroup/unified")));
    }
}
