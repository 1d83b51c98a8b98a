//! The terminal side of attach: raw mode, window size, and relaying
//! stdin/stdout/stderr over the monitor's attach socket (the framing is
//! `hull::engine::attach`).

use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use hull::engine::attach::{
    read_frame, write_frame, EXIT, RESIZE, STDERR, STDIN, STDIN_EOF, STDOUT,
};

/// Restores the terminal mode on drop.
struct RawMode {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawMode {
    fn enable() -> RawMode {
        use nix::sys::termios::*;
        let stdin = std::io::stdin();
        let Ok(t) = tcgetattr(&stdin) else {
            return RawMode { saved: None };
        };
        let mut raw = t.clone();
        cfmakeraw(&mut raw);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &raw);
        RawMode { saved: Some(t) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}

fn winsize() -> Option<(u16, u16)> {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills a winsize struct we own.
    let r = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Relays stdio until the container exits (Some(code)) or the user
/// detaches with Ctrl-P Ctrl-Q (None).
pub fn client(stream: UnixStream, with_stdin: bool, tty: bool) -> Result<Option<i32>> {
    use std::io::IsTerminal;
    let _raw = (tty && std::io::stdin().is_terminal()).then(RawMode::enable);
    let detached = Arc::new(AtomicBool::new(false));
    let mut w = stream.try_clone().context("cloning attach socket")?;
    if tty {
        if let Some((r, c)) = winsize() {
            let mut d = r.to_be_bytes().to_vec();
            d.extend_from_slice(&c.to_be_bytes());
            let _ = write_frame(&mut w, RESIZE, &d);
        }
    }
    if with_stdin {
        let det = detached.clone();
        let sock = stream.try_clone().context("cloning attach socket")?;
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin();
            let mut buf = [0u8; 4096];
            let mut prev_ctrl_p = false;
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        let _ = write_frame(&mut w, STDIN_EOF, &[]);
                        return;
                    }
                    Ok(n) => n,
                };
                if tty {
                    for &b in &buf[..n] {
                        if prev_ctrl_p && b == 0x11 {
                            det.store(true, Ordering::SeqCst);
                            let _ = sock.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                        prev_ctrl_p = b == 0x10;
                    }
                }
                if write_frame(&mut w, STDIN, &buf[..n]).is_err() {
                    return;
                }
            }
        });
    }
    let mut r = stream;
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    loop {
        match read_frame(&mut r) {
            Ok(Some((STDOUT, d))) => {
                let _ = out.write_all(&d);
                let _ = out.flush();
            }
            Ok(Some((STDERR, d))) => {
                let _ = err.write_all(&d);
            }
            Ok(Some((EXIT, d))) => {
                let code = String::from_utf8_lossy(&d).trim().parse().unwrap_or(1);
                return Ok(Some(code));
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                // Detached (Ctrl-P Ctrl-Q) or the monitor went away.
                let _ = detached.load(Ordering::SeqCst);
                return Ok(None);
            }
        }
    }
}
