//! The new mount API (open_tree, mount_setattr, move_mount), which libc does not wrap: detached
//! mounts that hull shapes by fd and never attaches anywhere it does not mean to.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
/// The access-time mode, a 3-bit enum (relatime is 0), not independent flags.
pub const MOUNT_ATTR_ATIME_MASK: u64 = 0x70;
pub const MOUNT_ATTR_RELATIME: u64 = 0;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn empty() -> CString {
    CString::default()
}

/// A detached bind mount of `path` (with its submounts when `recursive`), attached nowhere:
/// nothing done to it propagates anywhere.
pub fn clone_tree(path: &Path, recursive: bool) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    // SAFETY: open_tree with a valid C string; the returned fd is ours.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sets MOUNT_ATTR_* flags on a detached tree; `userns` is the idmapping's user namespace.
pub fn set_attr(
    tree: &impl AsRawFd,
    attr_set: u64,
    userns: Option<RawFd>,
    recursive: bool,
) -> io::Result<()> {
    let attr = MountAttr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.map_or(0, |fd| fd as u64),
    };
    mount_setattr(tree.as_raw_fd(), &attr, recursive)
}

/// Sets and clears MOUNT_ATTR_* flags on the mount whose root is open at `mount_root` (and on
/// every mount below it when `recursive`). An access-time mode in `set` needs
/// MOUNT_ATTR_ATIME_MASK in `clear`, as mount_setattr(2) requires.
pub fn change_attr(mount_root: RawFd, set: u64, clear: u64, recursive: bool) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    mount_setattr(mount_root, &attr, recursive)
}

/// Whether the kernel knows every flag of `set` and `clear`: mount_setattr checks the flags
/// before it looks at the fd, so a bad fd answers EBADF exactly when they are understood, and
/// nothing is changed anywhere.
pub fn attrs_supported(set: u64, clear: u64) -> Option<bool> {
    match change_attr(-1, set, clear, true) {
        Err(e) if e.raw_os_error() == Some(libc::EBADF) => Some(true),
        // Unprivileged callers are refused before the flags are looked at: no answer.
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => None,
        _ => Some(false),
    }
}

fn mount_setattr(fd: RawFd, attr: &MountAttr, recursive: bool) -> io::Result<()> {
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= AT_RECURSIVE as libc::c_int;
    }
    let e = empty();
    // SAFETY: mount_setattr reads the struct we own and the empty path.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd,
            e.as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Attaches a detached tree onto the directory or file open at `target`.
pub fn move_onto(tree: RawFd, target: RawFd) -> io::Result<()> {
    let e = empty();
    // SAFETY: move_mount on fds the caller holds, with empty paths.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree,
            e.as_ptr(),
            target,
            e.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
