//! cgroup v2: a single unified hierarchy.

use super::fsutil::{mkdir_all, read, read_pids, rmdir, set, write};
use super::stats::{hugepage_sizes, keyed, num, BlkioEntry, Hugetlb, MemoryEntry, Stats};
use super::{Cgroup, OomWatch};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxResources;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub struct V2 {
    root: PathBuf,
    path: String,
    dir: PathBuf,
}

/// runc's conversion of v1 cpu.shares [2, 262144] to v2 cpu.weight [1, 10000].
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + ((shares.saturating_sub(2)) * 9999) / 262_142
}

impl V2 {
    pub fn new(root: PathBuf, path: &str) -> V2 {
        let dir = root.join(path.trim_start_matches('/'));
        V2 {
            root,
            path: path.to_string(),
            dir,
        }
    }

    /// Controllers are only usable in a child if every ancestor delegates them.
    fn enable_controllers(&self) -> Result<()> {
        let available = read(&self.root.join("cgroup.controllers"))?;
        let comps: Vec<_> = Path::new(&self.path).components().skip(1).collect();
        let mut cur = self.root.clone();
        for comp in
            std::iter::once(None).chain(comps.iter().take(comps.len().saturating_sub(1)).map(Some))
        {
            if let Some(c) = comp {
                cur.push(c);
            }
            let have = read(&cur.join("cgroup.subtree_control")).unwrap_or_default();
            for c in available.split_whitespace() {
                if have.split_whitespace().any(|h| h == c) {
                    continue;
                }
                // One at a time and best effort: a controller that cannot be delegated here
                // (threaded subtree, busy parent) must not keep the others off; a limit that
                // needs it then fails with an error naming its field.
                let _ = write(&cur.join("cgroup.subtree_control"), &format!("+{c}"));
            }
        }
        Ok(())
    }

    fn set(&self, file: &str, value: &str, field: &str) -> Result<()> {
        if !self.dir.join(file).exists() {
            let ctrl = file.split('.').next().unwrap_or_default();
            bail!(
                "linux.resources.{field}: {} does not exist (the {ctrl} controller is not available in {} or the kernel lacks it)",
                self.dir.join(file).display(),
                self.dir.display()
            );
        }
        set(&self.dir, file, value, field)
    }

    fn apply_memory(&self, mem: &oci_spec::runtime::LinuxMemory) -> Result<()> {
        let limit = mem.limit().filter(|&l| l != 0);
        if let Some(l) = limit {
            if l > 0 && mem.check_before_update() == Some(true) {
                let usage = num(&self.dir.join("memory.current"));
                if (l as u64) < usage {
                    bail!("linux.resources.memory.limit: {l} is below the current usage {usage} (checkBeforeUpdate)");
                }
            }
        }
        let swap = swap_to_v2(mem.swap().unwrap_or(0), mem.limit().unwrap_or(0))?;
        let max = |v: i64| {
            if v < 0 {
                "max".to_string()
            } else {
                v.to_string()
            }
        };
        // Like v1's memsw ordering: the swap limit goes first so that a failing memory.max does not
        // leave a half-applied pair behind (v2 has no ordering constraint between the two).
        if swap != 0 {
            self.set("memory.swap.max", &max(swap), "memory.swap")?;
        }
        if let Some(l) = limit {
            self.set("memory.max", &max(l), "memory.limit")?;
            // memory.max below usage is accepted and reclaims; if nothing could be reclaimed the
            // kernel OOM-kills instead. runc refuses that only with checkBeforeUpdate (above).
        }
        if let Some(res) = mem.reservation().filter(|&r| r != 0) {
            self.set("memory.low", &max(res), "memory.reservation")?;
        }
        if let Some(sw) = mem.swappiness().filter(|&s| s > 100) {
            bail!("linux.resources.memory.swappiness: {sw} is not in [0, 100]");
        }
        // swappiness, disableOOMKiller, kernel and kernelTCP have no cgroup v2 files; runc ignores
        // them on v2 too, so configs written for v1 keep working.
        Ok(())
    }

    fn apply_cpu(&self, cpu: &oci_spec::runtime::LinuxCpu) -> Result<()> {
        if let Some(shares) = cpu.shares().filter(|&s| s != 0) {
            self.set(
                "cpu.weight",
                &shares_to_weight(shares).to_string(),
                "cpu.shares",
            )?;
        }
        let quota = cpu.quota().filter(|&q| q != 0);
        let period = cpu.period().filter(|&p| p != 0);
        if quota.is_some() || period.is_some() {
            // cpu.max holds both; keep whichever half is not being changed.
            let cur = read(&self.dir.join("cpu.max")).unwrap_or_default();
            let mut cur = cur.split_whitespace();
            let cur_quota = cur.next().unwrap_or("max").to_string();
            let cur_period = cur.next().unwrap_or("100000").to_string();
            let q = match quota {
                Some(q) if q > 0 => q.to_string(),
                Some(_) => "max".to_string(),
                None => cur_quota,
            };
            let p = period.map_or(cur_period, |p| p.to_string());
            self.set(
                "cpu.max",
                &format!("{q} {p}"),
                if quota.is_some() {
                    "cpu.quota"
                } else {
                    "cpu.period"
                },
            )?;
        }
        if let Some(burst) = cpu.burst() {
            self.set("cpu.max.burst", &burst.to_string(), "cpu.burst")?;
        }
        if cpu.realtime_runtime().is_some_and(|r| r != 0)
            || cpu.realtime_period().is_some_and(|p| p != 0)
        {
            bail!("linux.resources.cpu.realtimeRuntime/realtimePeriod: real-time bandwidth is not supported by cgroup v2");
        }
        if let Some(idle) = cpu.idle() {
            self.set("cpu.idle", &idle.to_string(), "cpu.idle")?;
        }
        if let Some(cpus) = cpu.cpus().as_deref().filter(|c| !c.is_empty()) {
            self.set("cpuset.cpus", cpus, "cpu.cpus")?;
        }
        if let Some(mems) = cpu.mems().as_deref().filter(|m| !m.is_empty()) {
            self.set("cpuset.mems", mems, "cpu.mems")?;
        }
        Ok(())
    }

    fn apply_io(&self, bio: &oci_spec::runtime::LinuxBlockIo) -> Result<()> {
        // BFQ takes v1-range weights; plain io.weight wants them converted to [1, 10000].
        let bfq = self.dir.join("io.bfq.weight").exists();
        let (file, conv): (&str, fn(u16) -> u64) = if bfq {
            ("io.bfq.weight", u64::from)
        } else {
            ("io.weight", blkio_weight_to_io_weight)
        };
        if let Some(w) = bio.weight().filter(|&w| w != 0) {
            self.set(file, &conv(w).to_string(), "blockIO.weight")?;
        }
        // leafWeight was a CFQ feature; v2 has no equivalent and runc ignores it there.
        for (i, wd) in bio.weight_device().iter().flatten().enumerate() {
            if let Some(w) = wd.weight() {
                let field = format!("blockIO.weightDevice[{i}].weight");
                self.set(
                    file,
                    &format!("{}:{} {}", wd.major(), wd.minor(), conv(w)),
                    &field,
                )?;
            }
        }
        let throttles = [
            (
                "throttleReadBpsDevice",
                "rbps",
                bio.throttle_read_bps_device(),
            ),
            (
                "throttleWriteBpsDevice",
                "wbps",
                bio.throttle_write_bps_device(),
            ),
            (
                "throttleReadIOPSDevice",
                "riops",
                bio.throttle_read_iops_device(),
            ),
            (
                "throttleWriteIOPSDevice",
                "wiops",
                bio.throttle_write_iops_device(),
            ),
        ];
        for (name, key, list) in throttles {
            for (i, t) in list.iter().flatten().enumerate() {
                let rate = if t.rate() == 0 {
                    "max".to_string()
                } else {
                    t.rate().to_string()
                };
                let line = format!("{}:{} {key}={rate}", t.major(), t.minor());
                self.set("io.max", &line, &format!("blockIO.{name}[{i}]"))?;
            }
        }
        Ok(())
    }
}

/// runc's ConvertMemorySwapToCgroupV2Value: the spec's swap is memory+swap (v1 memsw), v2's
/// memory.swap.max is swap alone. 0 means unset, -1 unlimited.
pub fn swap_to_v2(swap: i64, limit: i64) -> Result<i64> {
    if limit == -1 && swap == 0 {
        return Ok(-1);
    }
    if swap == -1 || swap == 0 {
        return Ok(swap);
    }
    if limit == 0 || limit == -1 {
        bail!("linux.resources.memory.swap: a swap limit needs a memory limit");
    }
    if limit < 0 {
        bail!("linux.resources.memory.limit: invalid value {limit}");
    }
    if swap < limit {
        bail!("linux.resources.memory.swap: {swap} (memory+swap) must be >= memory.limit {limit}");
    }
    Ok(swap - limit)
}

/// runc's conversion of blkio weight [10, 1000] to io.weight [1, 10000].
pub fn blkio_weight_to_io_weight(w: u16) -> u64 {
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

/// "8:0 rbytes=1 wbytes=2 rios=3 wios=4 …" lines of io.stat into runc's blkio entries.
fn io_stat(text: &str) -> (Vec<BlkioEntry>, Vec<BlkioEntry>) {
    let (mut bytes, mut ios) = (Vec::new(), Vec::new());
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some((maj, min)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (maj.parse(), min.parse()) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = v.parse() else { continue };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                _ => continue,
            };
            list.push(BlkioEntry {
                major,
                minor,
                op: op.to_string(),
                value,
            });
        }
    }
    (bytes, ios)
}

impl Cgroup for V2 {
    fn path(&self) -> &str {
        &self.path
    }

    fn create(&self) -> Result<()> {
        mkdir_all(&self.dir)?;
        self.enable_controllers()
    }

    fn add_pid(&self, pid: i32) -> Result<()> {
        write(&self.dir.join("cgroup.procs"), &pid.to_string())
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
                l if l < 0 => self.set("pids.max", "max", "pids.limit")?,
                l => self.set("pids.max", &l.to_string(), "pids.limit")?,
            }
        }
        if let Some(bio) = r.block_io() {
            self.apply_io(bio)?;
        }
        if let Some(limits) = r.hugepage_limits() {
            for (i, h) in limits.iter().enumerate() {
                let file = format!("hugetlb.{}.max", h.page_size());
                self.set(
                    &file,
                    &h.limit().to_string(),
                    &format!("hugepageLimits[{i}]"),
                )?;
            }
        }
        if let Some(net) = r.network() {
            if net.class_id().is_some() || net.priorities().as_ref().is_some_and(|p| !p.is_empty())
            {
                bail!("linux.resources.network: needs the cgroup v1 net_cls/net_prio controllers, which cgroup v2 does not have");
            }
        }
        if let Some(rdma) = r.rdma() {
            for (dev, l) in rdma {
                self.set("rdma.max", &super::rdma_line(dev, l), "rdma")?;
            }
        }
        if let Some(devs) = r.devices() {
            let rules = super::devices::rules(devs)?;
            super::devices::apply_v2(&self.dir, &rules)?;
        }
        // Last, so explicit cgroupfs values override the converted ones, as in runc.
        if let Some(unified) = r.unified() {
            let mut keys: Vec<_> = unified.iter().collect();
            keys.sort();
            for (key, value) in keys {
                if key.is_empty() || key.contains('/') || key.starts_with('.') || !key.contains('.')
                {
                    bail!("linux.resources.unified: invalid key {key:?}");
                }
                if key.starts_with("cgroup.")
                    && key != "cgroup.freeze"
                    && !key.starts_with("cgroup.max.")
                {
                    bail!("linux.resources.unified: key {key:?} is not a resource file");
                }
                let p = self.dir.join(key);
                if !p.exists() {
                    let ctrl = key.split('.').next().unwrap_or_default();
                    let enabled = read(&self.dir.join("cgroup.controllers")).unwrap_or_default();
                    if ctrl != "cgroup" && !enabled.split_whitespace().any(|c| c == ctrl) {
                        bail!("linux.resources.unified: unknown key {key:?} (controller {ctrl:?} is not available)");
                    }
                    bail!(
                        "linux.resources.unified: unknown key {key:?} ({} does not exist)",
                        p.display()
                    );
                }
                write(&p, value)
                    .map_err(|e| anyhow::anyhow!("linux.resources.unified.{key}: {e:#}"))?;
            }
        }
        Ok(())
    }

    fn pids(&self) -> Result<Vec<i32>> {
        if !self.dir.exists() {
            return Ok(Vec::new());
        }
        read_pids(&self.dir.join("cgroup.procs"))
    }

    fn freeze(&self) -> Result<()> {
        write(&self.dir.join("cgroup.freeze"), "1")?;
        for _ in 0..1000 {
            if read(&self.dir.join("cgroup.events"))?
                .lines()
                .any(|l| l == "frozen 1")
            {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        bail!("freeze {}: processes did not stop", self.dir.display())
    }

    fn thaw(&self) -> Result<()> {
        write(&self.dir.join("cgroup.freeze"), "0")
    }

    fn is_frozen(&self) -> bool {
        std::fs::read_to_string(self.dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
    }

    fn can_clone_into(&self) -> bool {
        true
    }

    fn clone_into_fd(&self) -> Option<std::os::fd::OwnedFd> {
        std::fs::File::open(&self.dir)
            .ok()
            .map(std::os::fd::OwnedFd::from)
    }

    fn destroy(&self) -> Result<()> {
        rmdir(&self.dir)
    }

    fn stats(&self) -> Result<Stats> {
        let d = &self.dir;
        let mut s = Stats::default();
        let cpu = keyed(&d.join("cpu.stat"));
        let us = |k: &str| cpu.get(k).copied().unwrap_or(0) * 1000;
        s.cpu.usage.total = us("usage_usec");
        s.cpu.usage.user = us("user_usec");
        s.cpu.usage.kernel = us("system_usec");
        s.cpu.throttling.periods = cpu.get("nr_periods").copied().unwrap_or(0);
        s.cpu.throttling.throttled_periods = cpu.get("nr_throttled").copied().unwrap_or(0);
        s.cpu.throttling.throttled_time = us("throttled_usec");
        if d.join("memory.current").exists() {
            let events = keyed(&d.join("memory.events"));
            s.memory.usage = MemoryEntry {
                limit: num(&d.join("memory.max")),
                usage: num(&d.join("memory.current")),
                max: num(&d.join("memory.peak")),
                failcnt: events.get("max").copied().unwrap_or(0),
            };
            s.memory.swap = MemoryEntry {
                limit: num(&d.join("memory.swap.max")),
                usage: num(&d.join("memory.swap.current")),
                max: num(&d.join("memory.swap.peak")),
                failcnt: keyed(&d.join("memory.swap.events"))
                    .get("fail")
                    .copied()
                    .unwrap_or(0),
            };
            s.memory.raw = keyed(&d.join("memory.stat"));
            s.memory.cache = s.memory.raw.get("file").copied().unwrap_or(0);
        }
        s.pids.current = num(&d.join("pids.current"));
        s.pids.limit = num(&d.join("pids.max"));
        let (bytes, ios) = io_stat(&std::fs::read_to_string(d.join("io.stat")).unwrap_or_default());
        s.blkio.io_service_bytes_recursive = bytes;
        s.blkio.io_serviced_recursive = ios;
        if d.join("hugetlb.2MB.current").exists() || d.join("hugetlb.1GB.current").exists() {
            for size in hugepage_sizes() {
                let f = |n: &str| d.join(format!("hugetlb.{size}.{n}"));
                let h = Hugetlb {
                    usage: num(&f("current")),
                    max: num(&f("max")),
                    failcnt: keyed(&f("events")).get("max").copied().unwrap_or(0),
                };
                s.hugetlb.insert(size, h);
            }
        }
        Ok(s)
    }

    fn oom_kill_count(&self) -> u64 {
        keyed(&self.dir.join("memory.events"))
            .get("oom_kill")
            .copied()
            .unwrap_or(0)
    }

    fn oom_watch(&self) -> Result<OomWatch> {
        let events = self.dir.join("memory.events");
        if !events.exists() {
            bail!(
                "{} does not exist: the memory controller is not enabled for this cgroup",
                events.display()
            );
        }
        // SAFETY: inotify_init1 returns a new fd or -1.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("inotify_init1");
        }
        // SAFETY: the fd was just created and is ours.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let c = std::ffi::CString::new(events.as_os_str().as_encoded_bytes())?;
        // SAFETY: valid fd and NUL-terminated path.
        if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), libc::IN_MODIFY) } < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("inotify watch {}", events.display()));
        }
        Ok(OomWatch::new(fd, false, Vec::new()))
    }

    fn exists(&self) -> bool {
        self.dir.exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_convert_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }

    #[test]
    fn writes_limits_into_a_fake_cgroupfs() {
        let tmp = tempfile::tempdir().unwrap();
        let cg = V2::new(tmp.path().to_path_buf(), "/hull/t");
        std::fs::create_dir_all(tmp.path().join("hull/t")).unwrap();
        for f in ["memory.max", "pids.max", "cpu.max", "cpu.weight"] {
            std::fs::write(tmp.path().join("hull/t").join(f), "").unwrap();
        }
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":1048576},"pids":{"limit":10},"cpu":{"shares":1024,"quota":50000,"period":100000}}"#,
        )
        .unwrap();
        cg.apply(&r).unwrap();
        let read = |f: &str| std::fs::read_to_string(tmp.path().join("hull/t").join(f)).unwrap();
        assert_eq!(read("memory.max"), "1048576");
        assert_eq!(read("pids.max"), "10");
        assert_eq!(read("cpu.max"), "50000 100000");
        assert_eq!(read("cpu.weight"), "39");
        let bad: LinuxResources = serde_json::from_str(r#"{"unified":{"nope.max":"1"}}"#).unwrap();
        assert!(cg
            .apply(&bad)
            .unwrap_err()
            .to_string()
            .contains("unknown key"));
    }
}
