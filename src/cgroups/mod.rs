//! Control groups: one `Cgroup` trait, one implementation per hierarchy version.
//!
//! The lifecycle only ever talks to `dyn Cgroup`; which version the host runs is decided once, in
//! [`open`].

pub mod devices;
mod fsutil;
pub mod stats;
pub mod systemd;
pub mod v1;
pub mod v2;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxResources;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A pollable fd that becomes readable when the cgroup may have hit an OOM: a v1 eventfd
/// registered on memory.oom_control, or a v2 inotify watch on memory.events.
pub struct OomWatch {
    fd: OwnedFd,
    /// One notification is exactly one OOM (v1 eventfd); otherwise compare `oom_kill_count`.
    pub counts_events: bool,
    /// Files the registration must outlive.
    _keep: Vec<std::fs::File>,
}

impl OomWatch {
    pub fn new(fd: OwnedFd, counts_events: bool, keep: Vec<std::fs::File>) -> OomWatch {
        OomWatch {
            fd,
            counts_events,
            _keep: keep,
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Consumes what is pending and returns how many notifications there were.
    pub fn drain(&self) -> Result<u64> {
        let mut buf = [0u8; 4096];
        // SAFETY: reading into our own buffer from our own fd.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(std::io::Error::last_os_error()).context("read the OOM notification fd");
        }
        if self.counts_events && n >= 8 {
            let mut v = [0u8; 8];
            v.copy_from_slice(&buf[..8]);
            return Ok(u64::from_ne_bytes(v));
        }
        Ok(u64::from(n > 0))
    }
}

pub trait Cgroup {
    /// The container's cgroup path relative to each hierarchy root, e.g. `/hull/web`.
    fn path(&self) -> &str;
    /// Creates the cgroup (and missing parents) in every hierarchy hull uses.
    fn create(&self) -> Result<()>;
    /// Moves a process into the cgroup.
    fn add_pid(&self, pid: i32) -> Result<()>;
    /// Writes resource limits; a limit whose controller the host lacks is an error.
    fn apply(&self, resources: &LinuxResources) -> Result<()>;
    /// Every pid currently in the cgroup.
    fn pids(&self) -> Result<Vec<i32>>;
    fn freeze(&self) -> Result<()>;
    fn thaw(&self) -> Result<()>;
    fn is_frozen(&self) -> bool;
    /// Removes the cgroup directories; they must be empty of processes.
    fn destroy(&self) -> Result<()>;
    /// Whether a process can be created directly inside this cgroup (clone3 with
    /// CLONE_INTO_CGROUP, cgroup v2 only), so the cgroup should exist before the fork.
    fn can_clone_into(&self) -> bool {
        false
    }
    /// The directory fd CLONE_INTO_CGROUP takes, once the cgroup exists.
    fn clone_into_fd(&self) -> Option<std::os::fd::OwnedFd> {
        None
    }
    /// Usage counters in runc's `types.Stats` shape (network interfaces are the caller's).
    fn stats(&self) -> Result<stats::Stats>;
    /// How many processes the kernel's OOM killer has killed in the cgroup.
    fn oom_kill_count(&self) -> u64;
    /// An fd to poll for OOM events; an error when the memory controller is missing.
    fn oom_watch(&self) -> Result<OomWatch>;
    /// Whether the cgroup directory exists (the container may be gone).
    fn exists(&self) -> bool;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// cgroup v1 controllers (possibly with a controller-less cgroup2 beside them: hybrid).
    Legacy,
    Unified,
}

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

pub fn detect(mount_root: &Path) -> Layout {
    match statfs_type(mount_root) {
        Some(t) if t == CGROUP2_SUPER_MAGIC => Layout::Unified,
        _ => Layout::Legacy,
    }
}

fn statfs_type(path: &Path) -> Option<i64> {
    nix::sys::statfs::statfs(path)
        .ok()
        .map(|st| st.filesystem_type().0)
}

/// The cgroup path a container gets: `cgroupsPath` if set (absolute, or relative to hull's own
/// cgroup), else `/hull/<id>`.
pub fn container_path(cgroups_path: Option<&Path>, id: &str, own: &str) -> Result<String> {
    let path = match cgroups_path {
        None => format!("/hull/{id}"),
        Some(p) => {
            let s = p.to_string_lossy();
            if s.contains(':') && !s.starts_with('/') {
                bail!(
                    "linux.cgroupsPath: {s:?} is a systemd slice:prefix:name path; the systemd \
                     cgroup driver is not supported yet"
                );
            }
            if p.components().any(|c| c == std::path::Component::ParentDir) {
                bail!("linux.cgroupsPath: {s:?} must not contain \"..\"");
            }
            if p.is_absolute() {
                s.into_owned()
            } else {
                format!("{}/{}", own.trim_end_matches('/'), s)
            }
        }
    };
    Ok(path)
}

/// Opens the cgroup at `path` on this host with the implementation that fits its layout.
pub fn open(path: &str) -> Result<Box<dyn Cgroup>> {
    let root = PathBuf::from("/sys/fs/cgroup");
    Ok(match detect(&root) {
        Layout::Unified => Box::new(v2::V2::new(root, path)),
        Layout::Legacy => Box::new(v1::V1::new(path)?),
    })
}

/// An `rdma.max` line: "mlx4_0 hca_handle=2 hca_object=2000" (unset counts stay "max").
pub fn rdma_line(dev: &str, l: &oci_spec::runtime::LinuxRdma) -> String {
    let n = |v: Option<u32>| v.map_or("max".to_string(), |v| v.to_string());
    format!(
        "{dev} hca_handle={} hca_object={}",
        n(l.hca_handles()),
        n(l.hca_objects())
    )
}

/// hull's own cgroup (the unified entry on v2, the first controller's on v1), the base for
/// relative cgroupsPath values.
pub fn own_cgroup() -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut first = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), Some(c)) => (a, b, c),
            _ => continue,
        };
        if detect(Path::new("/sys/fs/cgroup")) == Layout::Unified && ctrls.is_empty() {
            return path.to_string();
        }
        if !ctrls.is_empty() && !ctrls.starts_with("name=") && first.is_none() {
            first = Some(path.to_string());
        }
    }
    first.unwrap_or_else(|| "/".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths() {
        assert_eq!(container_path(None, "c1", "/").unwrap(), "/hull/c1");
        assert_eq!(
            container_path(Some(Path::new("/a/b")), "c1", "/x").unwrap(),
            "/a/b"
        );
        assert_eq!(
            container_path(Some(Path::new("a/b")), "c1", "/x").unwrap(),
            "/x/a/b"
        );
        assert!(container_path(Some(Path::new("/a/../b")), "c1", "/").is_err());
        assert!(container_path(Some(Path::new("system.slice:hull:c1")), "c1", "/").is_err());
    }
}
