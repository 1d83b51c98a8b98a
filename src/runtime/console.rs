//! `process.terminal`: the init makes a pty inside the container's devpts and hands the master
//! to whoever listens on `--console-socket`, the way runc does (engines rely on this protocol).

use super::resolve::open_in_root;
use anyhow::{Context, Result};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// `process.consoleSize`: the pty's window size before the process runs, as runc applies it
/// (a terminal client's size is right from the process' first instruction).
pub fn apply_size(pty: &Pty, process: &oci_spec::runtime::Process) -> Result<()> {
    let Some(b) = process.console_size() else {
        return Ok(());
    };
    let ws = libc::winsize {
        ws_row: u16::try_from(b.height()).unwrap_or(u16::MAX),
        ws_col: u16::try_from(b.width()).unwrap_or(u16::MAX),
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize we own; the master fd is open.
    if unsafe { libc::ioctl(pty.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(std::io::Error::last_os_error()).context("process.consoleSize");
    }
    Ok(())
}

/// Opens a new pty from the container's /dev/pts/ptmx (resolved inside the rootfs).
pub fn open_pty(root: RawFd) -> Result<Pty> {
    let master = open_in_root(
        root,
        Path::new("/dev/pts/ptmx"),
        libc::O_RDWR | libc::O_NOCTTY,
    )
    .context("process.terminal: open /dev/pts/ptmx in the container (is devpts mounted?)")?;
    let unlock: libc::c_int = 0;
    // SAFETY: ioctls on the master fd we own with correctly typed arguments.
    unsafe {
        if libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) != 0 {
            return Err(std::io::Error::last_os_error()).context("unlock pty");
        }
        // TIOCGPTPEER opens the slave from the master itself: no path lookup that a container
        // could redirect.
        let slave = libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if slave < 0 {
            return Err(std::io::Error::last_os_error()).context("open pty slave");
        }
        Ok(Pty {
            master,
            slave: OwnedFd::from_raw_fd(slave),
        })
    }
}

/// Makes the slave the process' controlling terminal and its stdio.
pub fn become_terminal(slave: &OwnedFd) -> Result<()> {
    // SAFETY: dup2/ioctl on fds we own.
    unsafe {
        for fd in 0..3 {
            if libc::dup2(slave.as_raw_fd(), fd) < 0 {
                return Err(std::io::Error::last_os_error()).context("dup2 pty slave");
            }
        }
        if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
            return Err(std::io::Error::last_os_error()).context("set controlling terminal");
        }
    }
    Ok(())
}

/// Sends `fd` over a connected unix socket with SCM_RIGHTS (payload: the pty's name).
pub fn send_fd(socket: RawFd, fd: RawFd, name: &str) -> Result<()> {
    let iov = [IoSlice::new(name.as_bytes())];
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(socket, &iov, &cmsg, MsgFlags::empty(), None)
        .context("send pty master over the console socket")?;
    Ok(())
}

/// Receives an fd sent with [`send_fd`].
pub fn recv_fd(socket: &UnixStream) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .context("receive pty master")?;
    for c in msg.cmsgs().context("read control message")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel installed this fd for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    anyhow::bail!("console socket: no fd received")
}
