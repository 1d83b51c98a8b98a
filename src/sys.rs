//! Small low-level helpers shared by the engine, network and image code:
//! flock, JSON records, ids, RFC 3339 time, pid liveness,
//! unix-socket path shortening, mount checks, Go durations.

use anyhow::{Context, Result};
use serde::{de::DeserializeOwned, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

/// Go's `time.ParseDuration` for values that are not negative (`300ms`, `1h2m3.5s`, `0`), the
/// syntax docker, compose and runc use for intervals and timeouts.
pub fn go_duration(s: &str) -> Option<std::time::Duration> {
    if s == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    let mut nanos = 0f64;
    while !rest.is_empty() {
        // A number with no unit after it is no duration (only "0" is).
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        nanos += n * scale;
        rest = &rest[unit_end..];
    }
    (nanos <= u64::MAX as f64).then(|| std::time::Duration::from_nanos(nanos.round() as u64))
}

/// An exclusive flock held until drop.
pub struct FileLock {
    _f: File,
}

pub fn lock(path: &Path) -> Result<FileLock> {
    if let Some(d) = path.parent() {
        fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening lock {}", path.display()))?;
    loop {
        // SAFETY: valid fd owned by `f`.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(FileLock { _f: f });
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
}

/// Atomic (temp file + rename) but not fsynced: container records are
/// rewritten on every state change and are rebuilt or discarded after a
/// crash anyway, and fsync dominated `run --rm` latency.
pub fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<()> {
    let data = serde_json::to_vec_pretty(v).context("encoding JSON")?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    fs::write(&tmp, &data).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| {
        let _ = fs::remove_file(&tmp);
        format!("renaming into {}", path.display())
    })
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let data = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&data).with_context(|| format!("parsing {}", path.display()))
}

/// 64 random hex digits, docker's ID shape.
pub fn random_id() -> String {
    let mut b = [0u8; 32];
    if let Ok(mut f) = File::open("/dev/urandom") {
        let _ = io::Read::read_exact(&mut f, &mut b);
    }
    hex::encode(b)
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Whether a process exists (signal 0).
pub fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence.
    pid > 0 && unsafe { libc::kill(pid, 0) } == 0
}

/// Alive and not a zombie: an exited child not yet reaped (by init, when its parent is gone)
/// holds no more sockets or files, so waits for a process to let go can stop there.
pub fn pid_running(pid: i32) -> bool {
    pid_alive(pid)
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, r)| !r.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
}

/// A unix socket path short enough for sun_path (108 bytes): long paths
/// go through `/proc/<pid>/fd/<dirfd>/<name>`, valid for child processes
/// too while this value (holding the directory fd) lives.
pub struct SockPath {
    _dir: Option<File>,
    pub path: std::path::PathBuf,
}

pub fn sock_path(p: &Path) -> Result<SockPath> {
    if p.as_os_str().len() < 100 {
        return Ok(SockPath {
            _dir: None,
            path: p.to_path_buf(),
        });
    }
    let parent = p.parent().unwrap_or(Path::new("/"));
    let dir = File::open(parent).with_context(|| format!("opening {}", parent.display()))?;
    let name = p.file_name().unwrap_or_default().to_string_lossy();
    let path = format!("/proc/{}/fd/{}/{name}", std::process::id(), dir.as_raw_fd()).into();
    Ok(SockPath {
        _dir: Some(dir),
        path,
    })
}

/// Whether something is mounted exactly at `target` (per this mount namespace).
pub fn is_mounted(target: &Path) -> bool {
    let t = target.to_string_lossy();
    fs::read_to_string("/proc/self/mountinfo")
        .map(|m| m.lines().any(|l| l.split(' ').nth(4) == Some(&*t)))
        .unwrap_or(false)
}

/// Bytes in a tree (apparent sizes), not following symlinks; 0 for what cannot be read.
pub fn dir_size(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}
