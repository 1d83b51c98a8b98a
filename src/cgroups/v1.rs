//! cgroup v1: one directory per mounted controller hierarchy (plus, on hybrid hosts, the
//! controller-less cgroup2 mount, which hull joins so tools that read it see the container).

use super::fsutil::{mkdir_all, read, read_pids, rmdir, write};
use super::Cgroup;
use anyhow::{bail, Result};
use oci_spec::runtime::LinuxResources;
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
                if !ctrls.is_empty() {
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
        let mut dirs: Vec<PathBuf> = self.hierarchies.iter().map(|(_, m)| self.dir_of(m)).collect();
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
            let dir = || self.need("memory", "memory");
            if let Some(limit) = mem.limit() {
                write(&dir()?.join("memory.limit_in_bytes"), &limit.to_string())?;
            }
            if let Some(res) = mem.reservation() {
                write(&dir()?.join("memory.soft_limit_in_bytes"), &res.to_string())?;
            }
            if let Some(swap) = mem.swap() {
                let file = dir()?.join("memory.memsw.limit_in_bytes");
                if !file.exists() {
                    bail!("linux.resources.memory.swap: the host kernel has no swap accounting (memory.memsw.*)");
                }
                write(&file, &swap.to_string())?;
            }
            if let Some(sw) = mem.swappiness() {
                write(&dir()?.join("memory.swappiness"), &sw.to_string())?;
            }
            if mem.disable_oom_killer() == Some(true) {
                write(&dir()?.join("memory.oom_control"), "1")?;
            }
        }
        if let Some(pids) = r.pids() {
            let dir = self.need("pids", "pids")?;
            let limit = pids.limit();
            let value = if limit <= 0 { "max".to_string() } else { limit.to_string() };
            write(&dir.join("pids.max"), &value)?;
        }
        if let Some(cpu) = r.cpu() {
            if let Some(shares) = cpu.shares() {
                write(&self.need("cpu", "cpu.shares")?.join("cpu.shares"), &shares.to_string())?;
            }
            if let Some(period) = cpu.period() {
                write(&self.need("cpu", "cpu.period")?.join("cpu.cfs_period_us"), &period.to_string())?;
            }
            if let Some(quota) = cpu.quota() {
                write(&self.need("cpu", "cpu.quota")?.join("cpu.cfs_quota_us"), &quota.to_string())?;
            }
            if let Some(cpus) = cpu.cpus() {
                write(&self.need("cpuset", "cpu.cpus")?.join("cpuset.cpus"), cpus)?;
            }
            if let Some(mems) = cpu.mems() {
                write(&self.need("cpuset", "cpu.mems")?.join("cpuset.mems"), mems)?;
            }
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hybrid_mountinfo() {
        let text = "\
30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory
31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
32 25 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
33 25 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
34 25 0:30 / /proc rw - proc proc rw";
        let (h, u) = parse_mountinfo(text);
        assert_eq!(h.len(), 3);
        assert_eq!(h[1].0, vec!["cpu", "cpuacct"]);
        assert_eq!(h[2].0, vec!["name=systemd"]);
        assert_eq!(u, Some(PathBuf::from("/sys/fs/cgroup/unified")));
    }
}
