//! The message channel between hull and the processes it forks while creating a container.
//!
//! A SOCK_SEQPACKET pair keeps message boundaries, and EOF tells either side that the other died,
//! so neither can hang on a peer that is gone.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "t")]
pub enum Msg {
    /// hull placed the child in its cgroup: go on.
    Go,
    /// The child made its user namespace: hull must write its id maps.
    MapIds {
        pid: i32,
    },
    Ack,
    /// The intermediate child forked the container init with this (host) pid.
    InitPid {
        pid: i32,
    },
    /// The init set up its mounts: hull runs prestart and createRuntime hooks now.
    Hooks,
    /// The init is ready and waits for start.
    Ready,
    /// The exec process is about to install a notifying seccomp filter: take its listener fd.
    SeccompNotify {
        announce: crate::seccomp::notify::Announce,
    },
    Error {
        msg: String,
    },
}

pub struct Channel {
    fd: OwnedFd,
}

pub fn pair() -> Result<(Channel, Channel)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: socketpair fills the two-element array we own.
    let ret = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if ret != 0 {
        return Err(std::io::Error::last_os_error()).context("socketpair for the init channel");
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    unsafe {
        Ok((
            Channel {
                fd: OwnedFd::from_raw_fd(fds[0]),
            },
            Channel {
                fd: OwnedFd::from_raw_fd(fds[1]),
            },
        ))
    }
}

impl Channel {
    pub fn send(&self, msg: &Msg) -> Result<()> {
        let bytes = serde_json::to_vec(msg)?;
        // SAFETY: writing our own buffer to our own socket.
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                bytes.as_ptr().cast(),
                bytes.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error()).context("send on the init channel");
        }
        Ok(())
    }

    /// Receives one message; EOF means the peer exited without a word.
    pub fn recv(&self) -> Result<Msg> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: reading into our own buffer.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let err = std::io::Error::last_os_error();
                if err.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(err).context("receive on the init channel");
            }
            if n == 0 {
                bail!("container init exited before it was ready");
            }
            return serde_json::from_slice(&buf[..n as usize]).context("malformed init message");
        }
    }

    /// Receives one message and fails on anything but `want` (an `Error` carries the init's
    /// own message).
    pub fn expect(&self, want: Msg) -> Result<()> {
        match self.recv()? {
            m if m == want => Ok(()),
            Msg::Error { msg } => bail!("{msg}"),
            other => bail!("init channel: expected {want:?}, got {other:?}"),
        }
    }

    /// Ends a forked child: an error goes to hull as its message and the child exits with
    /// `fail_code`; success exits 0. Either way hull's destructors and atexit handlers never run
    /// in the fork.
    pub fn exit_child(&self, res: Result<()>, fail_code: i32) -> ! {
        let code = match res {
            Ok(()) => 0,
            Err(e) => {
                let _ = self.send(&Msg::Error {
                    msg: format!("{e:#}"),
                });
                fail_code
            }
        };
        // SAFETY: _exit only ends the process.
        unsafe { libc::_exit(code) }
    }

    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
