//! SCMP_ACT_NOTIFY: seccomp user notification, handed to the agent at `listenerPath`.
//!
//! Compiling: seccompiler has no notify action, so NOTIFY rules are compiled with a placeholder
//! TRACE value no other rule of the profile uses, and the `RET` instructions returning it are
//! patched to SECCOMP_RET_USER_NOTIF. That keeps one compiler, no C library and a static binary.
//!
//! Handing over: the filter goes in right before execve, and no syscall of the runtime may follow
//! it (the profile may refuse them all). So the container process installs the filter with
//! SECCOMP_FILTER_FLAG_NEW_LISTENER, writes the listener's fd number into a [`Cell`] and spins on
//! it without a syscall. The hull process on the other end (`start`, or `exec`'s parent) reads
//! the cell with process_vm_readv, takes the fd with pidfd_getfd, sends the container process
//! state and the fd to the agent (one connection, SCM_RIGHTS, as the spec says), and releases
//! the cell with process_vm_writev; the process then execs. The listener fd is close-on-exec:
//! after exec only the agent holds it.

use anyhow::{bail, Context, Result};
use seccompiler::BpfProgram;
use serde::{Deserialize, Serialize};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const RET_K: u16 = 0x06;
const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
const SECCOMP_RET_USER_NOTIF: u32 = 0x7fc0_0000;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_ulong = 1 << 3;
const SECCOMP_FILTER_FLAG_TSYNC_ESRCH: libc::c_ulong = 1 << 4;

/// The TRACE data NOTIFY rules are compiled with; a profile tracing with this errnoRet is
/// refused (the kernel keeps only 16 bits of it).
pub const PLACEHOLDER: u32 = 0xfff7;

/// Turns the placeholder's returns into SECCOMP_RET_USER_NOTIF.
pub fn patch(filter: &mut BpfProgram) {
    for i in filter.iter_mut() {
        if i.code == RET_K && i.k == SECCOMP_RET_TRACE | PLACEHOLDER {
            i.k = SECCOMP_RET_USER_NOTIF;
        }
    }
}

/// Whether a compiled filter notifies (and so needs a listener): a `RET` of USER_NOTIF, or the
/// load of one into A where merge.rs turned the `RET` into a jump.
pub fn uses_notify(filters: &[BpfProgram]) -> bool {
    const LD_IMM: u16 = 0x00;
    filters.iter().flatten().any(|i| {
        (i.code == RET_K || i.code == LD_IMM) && i.k & 0xffff_0000 == SECCOMP_RET_USER_NOTIF
    })
}

/// Where and with what the listener fd goes, sent by the container process before the filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announce {
    /// Address of the [`Cell`] in the container process.
    pub cell: u64,
    #[serde(rename = "listenerPath")]
    pub listener_path: PathBuf,
    #[serde(rename = "listenerMetadata", skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
}

/// Cell states.
const WAITING: u32 = 0;
const INSTALLED: u32 = 1;
const TAKEN: u32 = 2;
const FAILED: u32 = 3;

/// The handshake word and the listener fd, read and written by the hull process through
/// process_vm_readv/writev.
#[repr(C)]
pub struct Cell {
    state: AtomicU32,
    fd: AtomicU32,
}

impl Cell {
    pub fn new() -> Box<Cell> {
        Box::new(Cell {
            state: AtomicU32::new(WAITING),
            fd: AtomicU32::new(0),
        })
    }

    pub fn addr(&self) -> u64 {
        self as *const Cell as u64
    }
}

/// Installs the filter with a new listener and waits, with no syscall, until the hull process
/// has taken the listener fd.
pub fn install_and_wait(filter: &BpfProgram, flags: libc::c_ulong, cell: &Cell) -> Result<()> {
    let mut flags = flags | SECCOMP_FILTER_FLAG_NEW_LISTENER;
    if flags & libc::SECCOMP_FILTER_FLAG_TSYNC != 0 {
        // The kernel refuses TSYNC with a listener unless a sync failure is reported as ESRCH.
        flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH;
    }
    let fd = match super::install_one(filter, flags) {
        Ok(fd) => fd,
        Err(e) => {
            cell.state.store(FAILED, Ordering::SeqCst);
            return Err(e);
        }
    };
    cell.fd.store(fd as u32, Ordering::SeqCst);
    cell.state.store(INSTALLED, Ordering::SeqCst);
    // The hull process kills this process if the agent cannot be reached.
    while cell.state.load(Ordering::SeqCst) != TAKEN {
        std::hint::spin_loop();
    }
    Ok(())
}

fn read_cell(pid: i32, addr: u64) -> Result<(u32, u32)> {
    let mut buf = [0u8; 8];
    let remote = [nix::sys::uio::RemoteIoVec {
        base: addr as usize,
        len: 8,
    }];
    let n = nix::sys::uio::process_vm_readv(
        nix::unistd::Pid::from_raw(pid),
        &mut [std::io::IoSliceMut::new(&mut buf)],
        &remote,
    )
    .context("seccomp notify: read the container process's handshake")?;
    if n != 8 {
        bail!("seccomp notify: short read of the handshake");
    }
    let word = |b: &[u8]| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
    Ok((word(&buf[..4]), word(&buf[4..])))
}

fn release(pid: i32, addr: u64) -> Result<()> {
    let buf = TAKEN.to_ne_bytes();
    let remote = [nix::sys::uio::RemoteIoVec {
        base: addr as usize,
        len: 4,
    }];
    nix::sys::uio::process_vm_writev(
        nix::unistd::Pid::from_raw(pid),
        &[IoSlice::new(&buf)],
        &remote,
    )
    .context("seccomp notify: release the container process")?;
    Ok(())
}

/// Takes a copy of fd `target` of process `pid`.
fn take_fd(pid: i32, target: u32) -> Result<OwnedFd> {
    // SAFETY: plain syscalls with integer arguments; the returned fds are owned right away.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0);
        if pidfd < 0 {
            return Err(std::io::Error::last_os_error()).context("seccomp notify: pidfd_open");
        }
        let pidfd = OwnedFd::from_raw_fd(pidfd as i32);
        let fd = libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("seccomp notify: pidfd_getfd");
        }
        Ok(OwnedFd::from_raw_fd(fd as i32))
    }
}

/// Sends the container process state and the listener fd to the agent, over one connection.
fn send_to_agent(a: &Announce, pid: i32, state: &serde_json::Value, fd: &OwnedFd) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let mut msg = serde_json::json!({
        "ociVersion": state["ociVersion"],
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if let Some(m) = &a.metadata {
        msg["metadata"] = serde_json::json!(m);
    }
    let body = serde_json::to_vec(&msg)?;
    let path = a.listener_path.display();
    let sock = UnixStream::connect(&a.listener_path)
        .with_context(|| format!("linux.seccomp.listenerPath: connect {path}"))?;
    let fds = [fd.as_raw_fd()];
    let mut sent = sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(&body)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .with_context(|| format!("linux.seccomp.listenerPath: send to {path}"))?;
    // Fds go with the first sendmsg only; the rest of a long state follows as plain data.
    while sent < body.len() {
        sent += nix::unistd::write(&sock, &body[sent..])
            .with_context(|| format!("linux.seccomp.listenerPath: send to {path}"))?;
    }
    Ok(())
}

/// The hull side: waits for the process to install its filter, hands the listener fd to the
/// agent and lets the process go on. On error the caller must kill the process.
pub fn hand_over(pid: i32, a: &Announce, state: &serde_json::Value) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let fd = loop {
        match read_cell(pid, a.cell)? {
            (INSTALLED, fd) => break fd,
            // The process reports why itself.
            (FAILED, _) => return Ok(()),
            _ if Instant::now() > deadline => {
                bail!("seccomp notify: the filter was not installed in 10s")
            }
            _ => std::thread::sleep(Duration::from_micros(200)),
        }
    };
    let fd = take_fd(pid, fd)?;
    send_to_agent(a, pid, state, &fd)?;
    release(pid, a.cell)
}
