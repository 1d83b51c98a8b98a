//! cgroup v2: a single unified hierarchy.

use super::fsutil::{mkdir_all, read, read_pids, rmdir, write};
use super::Cgroup;
use anyhow::{bail, Result};
use oci_spec::runtime::LinuxResources;
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
        let mut dir = self.root.clone();
        let comps: Vec<_> = Path::new(&self.path).components().skip(1).collect();
        for comp in comps.iter().take(comps.len().saturating_sub(1)) {
            dir.push(comp);
        }
        let mut cur = self.root.clone();
        for comp in std::iter::once(None).chain(comps.iter().take(comps.len().saturating_sub(1)).map(Some)) {
            if let Some(c) = comp {
                cur.push(c);
            }
            let enable: Vec<String> = available
                .split_whitespace()
                .map(|c| format!("+{c}"))
                .collect();
            if !enable.is_empty() {
                // Best effort: a controller in use by a threaded subtree may refuse; limits that
                // need it then fail with their own error.
                let _ = write(&cur.join("cgroup.subtree_control"), &enable.join(" "));
            }
        }
        Ok(())
    }

    fn need(&self, file: &str, field: &str) -> Result<PathBuf> {
        let p = self.dir.join(file);
        if !p.exists() {
            bail!("linux.resources.{field}: {} does not exist (controller not enabled on this host)", p.display());
        }
        Ok(p)
    }
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
            if let Some(limit) = mem.limit() {
                let v = if limit < 0 { "max".into() } else { limit.to_string() };
                write(&self.need("memory.max", "memory.limit")?, &v)?;
            }
            if let Some(res) = mem.reservation() {
                write(&self.need("memory.low", "memory.reservation")?, &res.to_string())?;
            }
            if let Some(swap) = mem.swap() {
                // v1 semantics: swap is memory+swap; v2 wants swap alone.
                let v = match (swap, mem.limit()) {
                    (s, _) if s < 0 => "max".to_string(),
                    (s, Some(l)) if l > 0 => (s - l).max(0).to_string(),
                    (s, _) => s.to_string(),
                };
                write(&self.need("memory.swap.max", "memory.swap")?, &v)?;
            }
        }
        if let Some(pids) = r.pids() {
            let limit = pids.limit();
            let v = if limit <= 0 { "max".to_string() } else { limit.to_string() };
            write(&self.need("pids.max", "pids.limit")?, &v)?;
        }
        if let Some(cpu) = r.cpu() {
            if let Some(shares) = cpu.shares() {
                write(&self.need("cpu.weight", "cpu.shares")?, &shares_to_weight(shares).to_string())?;
            }
            if cpu.quota().is_some() || cpu.period().is_some() {
                let quota = match cpu.quota() {
                    Some(q) if q > 0 => q.to_string(),
                    _ => "max".to_string(),
                };
                let period = cpu.period().unwrap_or(100_000);
                write(&self.need("cpu.max", "cpu.quota")?, &format!("{quota} {period}"))?;
            }
            if let Some(cpus) = cpu.cpus() {
                write(&self.need("cpuset.cpus", "cpu.cpus")?, cpus)?;
            }
            if let Some(mems) = cpu.mems() {
                write(&self.need("cpuset.mems", "cpu.mems")?, mems)?;
            }
        }
        if let Some(unified) = r.unified() {
            for (key, value) in unified {
                if key.contains('/') || key.starts_with('.') {
                    bail!("linux.resources.unified: invalid key {key:?}");
                }
                let p = self.dir.join(key);
                if !p.exists() {
                    bail!("linux.resources.unified: unknown key {key:?} ({} does not exist)", p.display());
                }
                write(&p, value)?;
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
            if read(&self.dir.join("cgroup.events"))?.lines().any(|l| l == "frozen 1") {
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

    fn destroy(&self) -> Result<()> {
        rmdir(&self.dir)
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
        assert!(cg.apply(&bad).unwrap_err().to_string().contains("unknown key"));
    }
}
