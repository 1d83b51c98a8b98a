//! The terminal side of attach: raw mode, window size, and relaying
//! stdin/stdout/stderr over the monitor's attach socket (the framing is
//! `hull::engine::attach`) or, for `exec -t`, straight to the exec's pty.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};

use hull::engine::attach::{
    read_frame, write_frame, EXIT, RESIZE, STDERR, STDIN, STDIN_EOF, STDOUT,
};
use hull::engine::tty::{self, DetachMatcher};

use crate::signals::Resizes;

/// docker's wording, which scripts match.
pub const NOT_A_TTY: &str = "the input device is not a TTY";

/// docker's check before it attaches: a terminal was asked for and stdin
/// will be relayed, but stdin is not a terminal (raw mode and the detach
/// keys would be meaningless, and reads would hang on a pipe).
pub fn check_tty(with_stdin: bool, tty: bool) -> Result<()> {
    if with_stdin && tty && !std::io::stdin().is_terminal() {
        bail!(NOT_A_TTY);
    }
    Ok(())
}

/// How one attached session should behave.
pub struct Session {
    pub stdin: bool,
    pub tty: bool,
    /// The detach sequence (docker's `--detach-keys`); used with a tty only.
    pub detach_keys: Vec<u8>,
}

/// How a relay ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    /// The user typed the detach sequence; the process keeps running.
    Detached,
    /// The other end went away without an exit code.
    Gone,
}

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

/// Raw only when keys are relayed (as docker's): with `-t` alone, Ctrl-C
/// stays the terminal's and ends the client.
fn raw_mode(s: &Session) -> Option<RawMode> {
    (s.tty && s.stdin && std::io::stdin().is_terminal()).then(RawMode::enable)
}

/// Our terminal's size, from stdout as docker reads it.
fn window_size() -> Option<(u16, u16)> {
    tty::window_size(std::io::stdout().as_fd())
}

enum Event {
    Exited(i32),
    Detached,
    OutputDone,
}

/// Reads stdin and hands it to `send`, holding back keys that may be the
/// detach sequence (tty only). `eof` runs when stdin ends.
fn spawn_stdin(
    s: &Session,
    mut send: impl FnMut(&[u8]) -> std::io::Result<()> + Send + 'static,
    eof: impl FnOnce() + Send + 'static,
    events: Sender<Event>,
) {
    let mut matcher = s.tty.then(|| DetachMatcher::new(s.detach_keys.clone()));
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 4096];
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    if let Some(m) = &matcher {
                        let _ = send(m.pending());
                    }
                    eof();
                    return;
                }
                Ok(n) => n,
            };
            let (data, detach) = match matcher.as_mut() {
                Some(m) => {
                    let f = m.feed(&buf[..n]);
                    (f.forward, f.detach)
                }
                None => (buf[..n].to_vec(), false),
            };
            if !data.is_empty() && send(&data).is_err() {
                return;
            }
            if detach {
                let _ = events.send(Event::Detached);
                return;
            }
        }
    });
}

/// Sends the window size now and after every SIGWINCH.
fn spawn_resizer(resizes: Resizes, mut apply: impl FnMut(u16, u16) + Send + 'static) {
    if let Some((r, c)) = window_size() {
        apply(r, c);
    }
    std::thread::spawn(move || {
        while resizes.0.recv().is_ok() {
            if let Some((r, c)) = window_size() {
                apply(r, c);
            }
        }
    });
}

/// Relays stdio over a monitor's attach socket until the container exits,
/// the user detaches or the monitor goes away.
pub fn client(stream: UnixStream, s: &Session, resizes: Resizes) -> Result<Outcome> {
    let _raw = raw_mode(s);
    let w = Arc::new(Mutex::new(
        stream.try_clone().context("cloning attach socket")?,
    ));
    if s.tty {
        // Always a first resize frame (0x0 when unknown): the monitor starts
        // a waiting tty container only after it, so the process sees the
        // size from its first instruction.
        let size = window_size().unwrap_or((0, 0));
        send_frame(&w, RESIZE, &tty::encode_size(size.0, size.1));
        let rw = w.clone();
        spawn_resizer(resizes, move |r, c| {
            send_frame(&rw, RESIZE, &tty::encode_size(r, c));
        });
    }
    let (tx, rx) = channel();
    if s.stdin {
        let (sw, ew) = (w.clone(), w.clone());
        spawn_stdin(
            s,
            move |d| locked_frame(&sw, STDIN, d),
            move || send_frame(&ew, STDIN_EOF, &[]),
            tx.clone(),
        );
    }
    let mut r = stream.try_clone().context("cloning attach socket")?;
    std::thread::spawn(move || {
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
                    let _ = tx.send(Event::Exited(code));
                    return;
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    let _ = tx.send(Event::OutputDone);
                    return;
                }
            }
        }
    });
    let outcome = match rx.recv() {
        Ok(Event::Exited(code)) => Outcome::Exited(code),
        Ok(Event::Detached) => Outcome::Detached,
        Ok(Event::OutputDone) | Err(_) => Outcome::Gone,
    };
    let _ = stream.shutdown(std::net::Shutdown::Both);
    Ok(outcome)
}

fn locked_frame(w: &Mutex<UnixStream>, kind: u8, d: &[u8]) -> std::io::Result<()> {
    let mut g = w
        .lock()
        .map_err(|_| std::io::Error::other("attach socket lock"))?;
    write_frame(&mut *g, kind, d)
}

fn send_frame(w: &Mutex<UnixStream>, kind: u8, d: &[u8]) {
    let _ = locked_frame(w, kind, d);
}

/// Relays our terminal to an exec's pty master until the process exits
/// (`wait` gives its code) or the user detaches.
pub fn exec_client(
    master: File,
    s: &Session,
    resizes: Resizes,
    wait: impl FnOnce() -> i32 + Send + 'static,
) -> Result<Outcome> {
    let _raw = raw_mode(s);
    let sizer = master.try_clone().context("dup pty master")?;
    spawn_resizer(resizes, move |r, c| {
        let _ = tty::set_window_size(sizer.as_fd(), r, c);
    });
    let (tx, rx) = channel();
    if s.stdin {
        let mut input = master.try_clone().context("dup pty master")?;
        spawn_stdin(s, move |d| input.write_all(d), || {}, tx.clone());
    }
    let out_tx = tx.clone();
    let mut from = master;
    std::thread::spawn(move || {
        let mut out = std::io::stdout();
        let mut buf = [0u8; 8192];
        // EIO once the last holder of the slave closed it.
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                break;
            }
        }
        let _ = out_tx.send(Event::OutputDone);
    });
    std::thread::spawn(move || {
        let _ = tx.send(Event::Exited(wait()));
    });
    let mut exited = None;
    let mut output_done = false;
    loop {
        let ev = match exited {
            // The output still buffered in the pty comes after the exit.
            Some(_) => rx.recv_timeout(std::time::Duration::from_millis(500)).ok(),
            None => rx.recv().ok(),
        };
        match ev {
            Some(Event::Detached) if exited.is_none() => return Ok(Outcome::Detached),
            Some(Event::Exited(code)) => exited = Some(code),
            Some(Event::OutputDone) => output_done = true,
            Some(Event::Detached) => {}
            None => break,
        }
        if output_done && exited.is_some() {
            break;
        }
    }
    Ok(exited.map_or(Outcome::Gone, Outcome::Exited))
}
