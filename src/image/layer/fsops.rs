//! Contained filesystem primitives for the unpacker: everything works on a
//! parent directory fd and a single name, never on a host path.

use anyhow::{anyhow, Result};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

pub(super) fn cstr(s: &[u8]) -> Result<CString> {
    CString::new(s).map_err(|_| anyhow!("path contains a NUL byte"))
}

/// Opens `path` (bytes from the tar entry) inside the snapshot whose dir fd is `root`.
pub(super) fn openat2_in_root(root: RawFd, path: &[u8], flags: i32) -> io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let path = if path.is_empty() { b"." as &[u8] } else { path };
    crate::runtime::resolve::open_in_root(root, Path::new(std::ffi::OsStr::from_bytes(path)), flags)
}

pub(super) fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub(super) fn openat_nofollow(parent: &OwnedFd, name: &CString, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: valid fd and C string.
    let fd = unsafe {
        libc::openat(
            parent.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

pub(super) fn remove_all_at(parent: &OwnedFd, name: &CString, is_dir: bool) -> io::Result<()> {
    if !is_dir {
        // SAFETY: valid fd and C string.
        return check(unsafe { libc::unlinkat(parent.as_raw_fd(), name.as_ptr(), 0) });
    }
    let dfd = openat_nofollow(parent, name, libc::O_RDONLY | libc::O_DIRECTORY)?;
    let dup = dfd.try_clone()?;
    let mut dir = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(dup))
        .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
    let mut children = Vec::new();
    for ent in dir.iter() {
        let ent = ent.map_err(|e| io::Error::from_raw_os_error(e as i32))?;
        let n = ent.file_name().to_bytes();
        if n == b"." || n == b".." {
            continue;
        }
        children.push((
            CString::from(ent.file_name()),
            ent.file_type() == Some(nix::dir::Type::Directory),
        ));
    }
    for (c, d) in children {
        remove_all_at(&dfd, &c, d)?;
    }
    // SAFETY: valid fd and C string.
    check(unsafe { libc::unlinkat(parent.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) })
}

pub(super) fn set_times_at(parent: &OwnedFd, name: &CString, mtime: i64) -> io::Result<()> {
    let ts = libc::timespec {
        tv_sec: mtime as libc::time_t,
        tv_nsec: 0,
    };
    let times = [ts, ts];
    // SAFETY: valid fd, C string and two timespecs.
    check(unsafe {
        libc::utimensat(
            parent.as_raw_fd(),
            name.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

pub(super) fn set_xattr_fd(fd: &OwnedFd, key: &[u8], val: &[u8]) -> io::Result<()> {
    let k = CString::new(key).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid fd, C string and buffer.
    check(unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            k.as_ptr(),
            val.as_ptr() as *const libc::c_void,
            val.len(),
            0,
        )
    })
}

pub(super) fn set_xattr_link(
    parent: &OwnedFd,
    name: &CString,
    key: &[u8],
    val: &[u8],
) -> io::Result<()> {
    // lsetxattr needs a path; going through the already-resolved parent fd
    // keeps it contained, and lsetxattr never follows the final symlink.
    let mut p = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
    p.extend_from_slice(name.as_bytes());
    let p = CString::new(p).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let k = CString::new(key).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid C strings and buffer.
    check(unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            k.as_ptr(),
            val.as_ptr() as *const libc::c_void,
            val.len(),
            0,
        )
    })
}
