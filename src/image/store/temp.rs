//! Temp files and dirs in the store: named `.tmp-<what>-<pid>-<n>` so that
//! what a dead berth process left behind can be told from a live one's.

use anyhow::{Context, Result};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A temp path removed on drop unless `keep()` was called.
pub struct TempPath {
    path: Option<PathBuf>,
}

impl TempPath {
    pub fn new(path: PathBuf) -> TempPath {
        TempPath { path: Some(path) }
    }
    pub fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }
    pub fn keep(mut self) -> PathBuf {
        self.path.take().unwrap_or_default()
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            if p.is_dir() {
                let _ = fs::remove_dir_all(&p);
            } else {
                let _ = fs::remove_file(&p);
            }
        }
    }
}

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

pub fn temp_name(prefix: &str) -> String {
    let n = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
    format!(".tmp-{prefix}-{}-{n}", std::process::id())
}

/// Writes `data` to `path` atomically (temp file in the same dir + rename).
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = TempPath {
        path: Some(dir.join(temp_name("w"))),
    };
    let mut f =
        File::create(tmp.path()).with_context(|| format!("creating {}", tmp.path().display()))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", tmp.path().display()))?;
    fs::rename(tmp.path(), path).with_context(|| format!("renaming into {}", path.display()))?;
    tmp.keep();
    Ok(())
}

/// The pid in a temp name made by `temp_name`.
fn temp_owner(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(".tmp-")?;
    let mut it = rest.rsplitn(3, '-');
    let (_seq, pid) = (it.next()?, it.next()?);
    it.next()?;
    pid.parse().ok()
}

fn alive(pid: i32) -> bool {
    use nix::errno::Errno;
    // EPERM: someone else's live process; only ESRCH means gone.
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(Errno::ESRCH)
    )
}

/// Removes, from each of `dirs`, the temp files and dirs of berth processes
/// that no longer exist (a pull, import or load killed midway). Temps of
/// live processes, including concurrent pulls, are left alone.
pub fn sweep_dead(dirs: &[PathBuf]) {
    let me = std::process::id() as i32;
    sweep(dirs, |pid| pid > 0 && pid != me && !alive(pid));
}

/// Removes this process's own temps from `dirs` (on SIGINT/SIGTERM).
pub fn sweep_own(dirs: &[PathBuf]) {
    let me = std::process::id() as i32;
    sweep(dirs, |pid| pid == me);
}

fn sweep(dirs: &[PathBuf], doomed: impl Fn(i32) -> bool) {
    for dir in dirs {
        let Ok(rd) = fs::read_dir(dir) else { continue };
        for ent in rd.flatten() {
            let name = ent.file_name();
            let Some(pid) = name.to_str().and_then(temp_owner) else {
                continue;
            };
            if !doomed(pid) {
                continue;
            }
            let p = ent.path();
            let _ = match ent.file_type() {
                Ok(t) if t.is_dir() => fs::remove_dir_all(&p),
                _ => fs::remove_file(&p),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_of_temp_names() {
        assert_eq!(
            temp_owner(&temp_name("blob")),
            Some(std::process::id() as i32)
        );
        assert_eq!(temp_owner(".tmp-w-42-7"), Some(42));
        assert_eq!(temp_owner("index.json"), None);
        assert_eq!(temp_owner(".tmp-x"), None);
    }

    #[test]
    fn sweeps_only_dead_owners() {
        let t = tempfile::tempdir().unwrap();
        // A child that has exited and been reaped: its pid is gone.
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let dead = c.id();
        c.wait().unwrap();
        let dead_f = t.path().join(format!(".tmp-blob-{dead}-0"));
        let dead_d = t.path().join(format!(".tmp-snap-{dead}-1"));
        let live = t.path().join(temp_name("blob"));
        let other = t.path().join("keep");
        fs::write(&dead_f, b"x").unwrap();
        fs::create_dir_all(dead_d.join("fs")).unwrap();
        fs::write(&live, b"x").unwrap();
        fs::write(&other, b"x").unwrap();
        sweep_dead(&[t.path().to_path_buf()]);
        assert!(!dead_f.exists() && !dead_d.exists());
        assert!(live.exists() && other.exists());
    }
}
