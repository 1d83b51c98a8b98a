//! The foreground side of `run`: forward signals to the container init, relay a pty if hull
//! holds it, reap orphans, and return the init's exit code.

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

fn exit_code(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        1
    }
}

fn copy_once(from: i32, to: i32) -> bool {
    let mut buf = [0u8; 8192];
    // SAFETY: reading into and writing from our own buffer on fds we hold.
    let n = unsafe { libc::read(from, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return false;
    }
    let mut off = 0;
    while off < n as usize {
        // SAFETY: writing from our own buffer, within its bounds, to an fd we hold.
        let w = unsafe { libc::write(to, buf[off..].as_ptr().cast(), n as usize - off) };
        if w <= 0 {
            return false;
        }
        off += w as usize;
    }
    true
}

fn copy_winsize(from: i32, to: i32) {
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ with a struct we own.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

fn forwarded() -> SigSet {
    let mut all = SigSet::all();
    all.remove(Signal::SIGKILL);
    all.remove(Signal::SIGSTOP);
    all
}

/// Blocks the signals `wait_forwarding` will read, returning the mask to restore. Call it after
/// the container's processes are forked (they must not inherit the mask) and before the process
/// can exit, so neither its SIGCHLD nor a signal meant for it is lost in between.
pub fn block_signals() -> Result<SigSet> {
    let mut old = SigSet::empty();
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&forwarded()), Some(&mut old))
        .context("block signals")?;
    Ok(old)
}

fn reap(init_pid: i32, code: &mut Option<i32>) {
    loop {
        let mut status = 0;
        // SAFETY: reaping our own children.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            break;
        }
        if pid == init_pid {
            *code = Some(exit_code(status));
        }
    }
}

/// Waits for `init_pid` (signals already blocked by [`block_signals`], whose result is `old`).
pub fn wait_forwarding(init_pid: i32, master: Option<OwnedFd>, old: SigSet) -> Result<i32> {
    let sfd = SignalFd::with_flags(&forwarded(), SfdFlags::SFD_CLOEXEC).context("signalfd")?;

    let stdin = std::io::stdin();
    let saved_tty = match &master {
        Some(m) if nix::unistd::isatty(stdin.as_raw_fd()).unwrap_or(false) => {
            copy_winsize(stdin.as_raw_fd(), m.as_raw_fd());
            let saved = termios::tcgetattr(stdin.as_fd()).ok();
            if let Some(s) = &saved {
                let mut raw = s.clone();
                termios::cfmakeraw(&mut raw);
                let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &raw);
            }
            saved
        }
        _ => None,
    };
    let mut stdin_open = master.is_some();
    let mut master_open = master.is_some();
    let mut code = None;
    // A SIGCHLD that came before the signalfd existed is not in it: reap once now, or the
    // poll below would wait forever.
    reap(init_pid, &mut code);
    while code.is_none() || master_open {
        let mut fds = vec![libc::pollfd {
            fd: sfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        if let Some(m) = &master {
            fds.push(libc::pollfd {
                fd: if master_open { m.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            });
            fds.push(libc::pollfd {
                fd: if stdin_open { 0 } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            });
        }
        // Once the init is gone, only drain what the pty still holds.
        let timeout = if code.is_some() { 100 } else { -1 };
        // SAFETY: poll over the array we own.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(err).context("poll");
        }
        if n == 0 && code.is_some() {
            break;
        }
        if fds[0].revents & libc::POLLIN != 0 {
            if let Ok(Some(info)) = sfd.read_signal() {
                let signo = info.ssi_signo as i32;
                if signo == libc::SIGCHLD {
                    reap(init_pid, &mut code);
                } else if signo == libc::SIGWINCH {
                    if let Some(m) = &master {
                        copy_winsize(0, m.as_raw_fd());
                    }
                } else {
                    // SAFETY: forwarding to the init we started.
                    unsafe { libc::kill(init_pid, signo) };
                }
            }
        }
        if let Some(m) = &master {
            if fds[1].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0
                && !copy_once(m.as_raw_fd(), 1)
            {
                master_open = false;
            }
            if fds[2].revents & (libc::POLLIN | libc::POLLHUP) != 0 && !copy_once(0, m.as_raw_fd())
            {
                stdin_open = false;
            }
        }
    }
    if let Some(saved) = saved_tty {
        let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &saved);
    }
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None)
        .context("restore signal mask")?;
    Ok(code.unwrap_or(1))
}
