//! Resolving paths inside a container's rootfs without ever leaving it.
//!
//! Every open goes through openat2(2) with `RESOLVE_IN_ROOT`, so `..` and absolute symlinks are
//! clamped to the rootfs by the kernel at the moment of the open: a symlink swapped in after a
//! check (CVE-2021-30465) still cannot point the open outside. Mounts then target the returned fd
//! through /proc/self/fd, never the path again.

use anyhow::{bail, Result};
use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn cstr(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

/// openat2(2) relative to `dirfd` with the given resolve flags; O_CLOEXEC is always added.
pub fn openat2(
    dirfd: RawFd,
    path: &Path,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let c = cstr(path)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: u64::from(mode),
        resolve,
    };
    loop {
        // SAFETY: `c` and `how` outlive the call; the kernel copies both.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd,
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if ret >= 0 {
            // SAFETY: the kernel just returned this fd to us.
            return Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) });
        }
        let err = io::Error::last_os_error();
        // openat2 returns EAGAIN when a concurrent rename raced the lookup; retrying is the
        // documented answer.
        if err.raw_os_error() != Some(libc::EAGAIN) {
            return Err(err);
        }
    }
}

/// Opens `path` as seen from inside the rootfs whose directory fd is `root`.
pub fn open_in_root(root: RawFd, path: &Path, flags: i32) -> io::Result<OwnedFd> {
    openat2(
        root,
        path,
        flags,
        0,
        RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    )
}

/// The path through which a syscall that takes only paths (mount, chdir) reaches an fd.
pub fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Creates every missing directory of `path` inside the rootfs and returns an O_PATH fd of the
/// last one. Each step is re-resolved from the root, so a symlink planted in a parent cannot
/// redirect the creation outside.
pub fn mkdir_all_in_root(root: RawFd, path: &Path) -> io::Result<OwnedFd> {
    mkdir_all_in_root_then(root, path, &mut |_, _| Ok(()))
}

/// `mkdir_all_in_root`, calling `made(parent, name)` for each directory it creates (with the
/// parent it was created in), e.g. to give it an owner; directories that exist are left alone.
pub fn mkdir_all_in_root_then(
    root: RawFd,
    path: &Path,
    made: &mut dyn FnMut(RawFd, &CString) -> io::Result<()>,
) -> io::Result<OwnedFd> {
    let mut prefix = PathBuf::from("/");
    let mut current = open_in_root(root, &prefix, libc::O_PATH | libc::O_DIRECTORY)?;
    for comp in path.components() {
        let Component::Normal(name) = comp else {
            continue;
        };
        prefix.push(name);
        current = match open_in_root(root, &prefix, libc::O_PATH | libc::O_DIRECTORY) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let c = cstr(Path::new(name))?;
                // SAFETY: plain syscall on a valid fd and C string; `name` has no slash, so the
                // new directory lands in the directory we hold, inside the rootfs.
                let ret = unsafe { libc::mkdirat(current.as_raw_fd(), c.as_ptr(), 0o755) };
                if ret != 0 {
                    let err = io::Error::last_os_error();
                    if err.raw_os_error() != Some(libc::EEXIST) {
                        return Err(err);
                    }
                } else {
                    made(current.as_raw_fd(), &c)?;
                }
                open_in_root(root, &prefix, libc::O_PATH | libc::O_DIRECTORY)?
            }
            Err(e) => return Err(e),
        };
    }
    Ok(current)
}

/// Opens (creating an empty file if missing) the non-directory at `path` inside the rootfs, as a
/// bind-mount target for a file source.
pub fn mkfile_in_root(root: RawFd, path: &Path) -> io::Result<OwnedFd> {
    if let Some(parent) = path.parent() {
        mkdir_all_in_root(root, parent)?;
    }
    match open_in_root(root, path, libc::O_PATH) {
        Ok(fd) => Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            // O_EXCL refuses to follow a symlink at the last component; a dangling one
            // therefore fails instead of creating a file wherever it points.
            let fd = openat2(
                root,
                path,
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
                0o644,
                RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
            )?;
            drop(fd);
            open_in_root(root, path, libc::O_PATH)
        }
        Err(e) => Err(e),
    }
}

/// Rejects mount destinations that reach a symlink whose `..` climbs above the rootfs. The kernel
/// would clamp such a path anyway; a bundle that relies on it is hostile or broken, and saying so
/// beats mounting somewhere the author did not mean. Absolute symlinks are taken as the container
/// sees them (relative to its root), which is how /var/run -> /run works in Debian images.
pub fn check_mount_destinations(rootfs: &Path, spec: &oci_spec::runtime::Spec) -> Result<()> {
    for (i, m) in spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if let Err(e) = check_destination(rootfs, m.destination()) {
            bail!(
                "mounts[{i}].destination {:?}: {e}",
                m.destination().display()
            );
        }
    }
    Ok(())
}

fn check_destination(rootfs: &Path, dest: &Path) -> Result<()> {
    let mut pending: Vec<OsString> = dest
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            _ => None,
        })
        .rev()
        .collect();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            if resolved.pop().is_none() {
                bail!("a symlink on the way points outside the rootfs");
            }
            continue;
        }
        if name == "." {
            continue;
        }
        let host: PathBuf = std::iter::once(rootfs.as_os_str().to_os_string())
            .chain(resolved.iter().cloned())
            .chain(std::iter::once(name.clone()))
            .collect();
        let meta = match std::fs::symlink_metadata(&host) {
            Ok(m) => m,
            // Missing components are created as directories later: nothing left to follow.
            Err(_) => return Ok(()),
        };
        if !meta.file_type().is_symlink() {
            resolved.push(name);
            continue;
        }
        links += 1;
        if links > 40 {
            bail!("too many levels of symlinks");
        }
        let target = std::fs::read_link(&host)?;
        if target.is_absolute() {
            resolved.clear();
        }
        for comp in target.components().rev() {
            match comp {
                Component::Normal(n) => pending.push(n.to_os_string()),
                Component::ParentDir => pending.push("..".into()),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Whether `fd` lives on a procfs, so writes meant for /proc cannot be redirected to another
/// filesystem by a mount or symlink planted in the rootfs (CVE-2025-52881).
pub fn is_procfs(fd: &impl AsRawFd) -> bool {
    // SAFETY: the fd is borrowed from `fd`, which outlives the call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd.as_raw_fd()) };
    nix::sys::statfs::fstatfs(fd)
        .is_ok_and(|st| st.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root_fd(dir: &Path) -> OwnedFd {
        let f = std::fs::File::open(dir).unwrap();
        OwnedFd::from(f)
    }

    #[test]
    fn absolute_and_dotdot_symlinks_stay_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let rootfs = tmp.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        symlink("/etc", rootfs.join("abs")).unwrap();
        symlink("../../../../etc", rootfs.join("up")).unwrap();
        let root = root_fd(&rootfs);
        let made = mkdir_all_in_root(root.as_raw_fd(), Path::new("/abs/x")).unwrap();
        drop(made);
        assert!(rootfs.join("etc/x").is_dir());
        let made = mkdir_all_in_root(root.as_raw_fd(), Path::new("/up/y")).unwrap();
        drop(made);
        assert!(rootfs.join("etc/y").is_dir());
        assert!(!tmp.path().join("etc").exists());
    }

    #[test]
    fn dangling_symlink_is_not_followed_when_creating_files() {
        let tmp = tempfile::tempdir().unwrap();
        let rootfs = tmp.path().join("rootfs");
        std::fs::create_dir_all(&rootfs).unwrap();
        symlink("/nowhere/file", rootfs.join("f")).unwrap();
        let root = root_fd(&rootfs);
        assert!(mkfile_in_root(root.as_raw_fd(), Path::new("/f")).is_err());
        assert!(!rootfs.join("nowhere").exists());
    }

    #[test]
    fn destination_check_rejects_only_escaping_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let rootfs = tmp.path();
        std::fs::create_dir_all(rootfs.join("run")).unwrap();
        std::fs::create_dir_all(rootfs.join("var")).unwrap();
        symlink("/run", rootfs.join("var/run")).unwrap();
        symlink("../../..", rootfs.join("var/up")).unwrap();
        check_destination(rootfs, Path::new("/var/run/secrets")).unwrap();
        let err = check_destination(rootfs, Path::new("/var/up/etc")).unwrap_err();
        assert!(err.to_string().contains("outside the rootfs"));
    }
}
