//! Small helpers for reading and writing cgroupfs files with errors that name the file.

use anyhow::{Context, Result};
use std::path::Path;

pub fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).with_context(|| format!("write {value:?} to {}", path.display()))
}

pub fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))
}

/// The pids in `path` (a `cgroup.procs`) and in the same file of every cgroup below it, as
/// runc's GetAllPids: `exec --cgroup` puts processes in sub-cgroups, which `ps`, `kill --all`
/// and delete must still reach.
pub fn read_pids(path: &Path) -> Result<Vec<i32>> {
    let mut pids: Vec<i32> = read(path)?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        // cgroup v2 lists a process outside the reader's pid namespace as 0; kill(0) would
        // signal hull's own process group (a shim's too) instead.
        .filter(|p: &i32| *p > 0)
        .collect();
    if let (Some(dir), Some(file)) = (path.parent(), path.file_name()) {
        for sub in sub_cgroups(dir) {
            // A sub-cgroup removed meanwhile has no processes left to report.
            pids.extend(read_pids(&sub.join(file)).unwrap_or_default());
        }
    }
    Ok(pids)
}

/// The cgroups directly below `dir` (in cgroupfs, every directory is one).
fn sub_cgroups(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Creates `dir` and its parents, giving each new level the mode cgroupfs would.
pub fn mkdir_all(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create cgroup {}", dir.display()))
}

/// Removes a cgroup directory and the cgroups below it (deepest first, as runc's RemovePath:
/// `exec --cgroup` sub-cgroups go with the container). cgroupfs refuses rmdir while the last
/// process is still exiting, so EBUSY is retried for a short while.
pub fn rmdir(dir: &Path) -> Result<()> {
    for sub in sub_cgroups(dir) {
        rmdir(&sub)?;
    }
    for attempt in 0..50 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 49 => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(e).with_context(|| format!("remove cgroup {}", dir.display())),
        }
    }
    Ok(())
}

/// Writes one resource file, with an error naming the spec field: a missing file means the
/// kernel or the mounted controller does not support that field.
pub fn set(dir: &Path, file: &str, value: &str, field: &str) -> Result<()> {
    let p = dir.join(file);
    if !p.exists() {
        anyhow::bail!(
            "linux.resources.{field}: {} does not exist (not supported by this kernel or controller)",
            p.display()
        );
    }
    std::fs::write(&p, value).with_context(|| {
        format!(
            "linux.resources.{field}: write {value:?} to {}",
            p.display()
        )
    })
}

/// The value in a "maj:min key=value…" or "key value" line-oriented file, for one key.
pub fn key_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}
