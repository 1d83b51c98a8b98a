//! Keeping the hull binary out of the container's reach (CVE-2019-5736).
//!
//! Until it execs, a container's init is a hull process, so `/proc/<pid>/exe` of it is the hull
//! binary; a process in the same pid namespace with CAP_SYS_PTRACE (a container joining that
//! namespace, say) could open it and overwrite the binary on the host once hull has exited.
//! Commands that make processes inside containers therefore first re-execute hull from a copy no
//! one can write: a detached read-only bind mount of the binary (open_tree + mount_setattr, no
//! data copied, not attached anywhere so nothing propagates), or, where that is not allowed (no
//! CAP_SYS_ADMIN), a sealed memfd copy.

use anyhow::{Context, Result};
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;

const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Whether this process already runs from a read-only mount or a sealed copy.
pub fn running_sealed() -> bool {
    match File::open("/proc/self/exe") {
        Ok(f) => {
            // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
            let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
            // SAFETY: fstatvfs fills the struct we own, from an fd we hold.
            if unsafe { libc::fstatvfs(f.as_raw_fd(), &mut st) } == 0
                && st.f_flag & libc::ST_RDONLY != 0
            {
                return true;
            }
            // SAFETY: F_GET_SEALS only queries; regular files answer EINVAL.
            let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
            seals > 0 && seals & libc::F_SEAL_WRITE != 0
        }
        Err(_) => false,
    }
}

/// Re-executes this process from a sealed memfd copy of its binary, with the same arguments and
/// environment; returns only if it already runs from one. Open fds without close-on-exec (the
/// ones the caller passes on) survive, as with any exec.
pub fn reexec_sealed() -> Result<()> {
    if running_sealed() {
        // fexecve names the process after the memfd; ps and engines expect "hull".
        let _ = prctl::set_name("hull");
        return Ok(());
    }
    let (args, env) = args_and_env();
    if let Some(err) = reexec_readonly_mount(&args, &env) {
        crate::debug!("read-only re-exec not possible ({err}), copying into a sealed memfd");
    }
    let mut exe = File::open("/proc/self/exe").context("open /proc/self/exe")?;
    let name = CString::new("hull").context("memfd name")?;
    // SAFETY: memfd_create with a valid name; the fd is ours.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("memfd_create for the sealed binary");
    }
    // SAFETY: fd was just created and is owned by nobody else.
    let mut copy = unsafe { File::from_raw_fd(fd) };
    std::io::copy(&mut exe, &mut copy).context("copy the hull binary into a memfd")?;
    // SAFETY: sealing an fd we own.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } != 0 {
        return Err(std::io::Error::last_os_error()).context("seal the hull binary copy");
    }
    let err = nix::unistd::fexecve(copy.as_raw_fd(), &args, &env).unwrap_err();
    Err(anyhow::anyhow!("re-exec hull from its sealed copy: {err}"))
}

fn args_and_env() -> (Vec<CString>, Vec<CString>) {
    let args = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();
    let env = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).unwrap_or_default()
        })
        .collect();
    (args, env)
}

/// Execs this binary through a detached, read-only bind mount of itself. Returns only on
/// failure, with the reason.
fn reexec_readonly_mount(args: &[CString], env: &[CString]) -> Option<std::io::Error> {
    use super::mountapi;
    let tree = match mountapi::clone_tree(std::path::Path::new("/proc/self/exe"), false) {
        Ok(t) => t,
        Err(e) => return Some(e),
    };
    if let Err(e) = mountapi::set_attr(&tree, mountapi::MOUNT_ATTR_RDONLY, None, false) {
        return Some(e);
    }
    let empty = CString::default();
    let argv: Vec<*const libc::c_char> = args
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = env
        .iter()
        .map(|e| e.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    // SAFETY: execveat with null-terminated arrays of C strings we own; returns only on failure.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            tree.as_raw_fd(),
            empty.as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    Some(std::io::Error::last_os_error())
}
