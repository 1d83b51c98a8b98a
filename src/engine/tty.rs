//! Terminal plumbing shared by attach, run and exec: docker's detach-key
//! syntax and the matcher that holds keys back while they could still be
//! the start of the detach sequence, and window sizes on a pty.

use anyhow::{bail, Context};
use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use super::error::{EngineError, Result};

/// docker's default detach sequence, Ctrl-P Ctrl-Q.
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// Parses docker's `--detach-keys` syntax: comma-separated keys, each a
/// single character, `ctrl-<x>` (x in `a-z @ [ \ ] ^ _`) or `DEL`.
/// `None` or an empty string gives the default sequence.
pub fn parse_detach_keys(spec: Option<&str>) -> Result<Vec<u8>> {
    let spec = match spec {
        None | Some("") => return Ok(DEFAULT_DETACH_KEYS.to_vec()),
        Some(s) => s,
    };
    let mut keys = Vec::new();
    for key in spec.split(',') {
        keys.push(key_code(key).ok_or_else(|| {
            EngineError::Invalid(format!(
                "invalid --detach-keys {spec:?}: unknown key {key:?} (use a character, ctrl-<a-z@[\\]^_> or DEL, comma-separated)"
            ))
        })?);
    }
    Ok(keys)
}

fn key_code(key: &str) -> Option<u8> {
    if key.len() == 1 {
        return key.bytes().next();
    }
    if key == "DEL" {
        return Some(0x7f);
    }
    let lower = key.to_ascii_lowercase();
    let rest = lower.strip_prefix("ctrl-")?;
    let &[c] = rest.as_bytes() else { return None };
    match c {
        b'a'..=b'z' => Some(c - b'a' + 1),
        b'@' => Some(0),
        b'[' => Some(27),
        b'\\' => Some(28),
        b']' => Some(29),
        b'^' => Some(30),
        b'_' => Some(31),
        _ => None,
    }
}

/// What a chunk of input turned into.
#[derive(Debug, PartialEq, Eq)]
pub struct Fed {
    /// Bytes to send on now (held-back keys that turned out not to be the
    /// sequence come first).
    pub forward: Vec<u8>,
    /// The whole sequence was typed: detach (what followed it is dropped).
    pub detach: bool,
}

/// Watches a keyboard stream for the detach sequence. Keys that match a
/// prefix of it are held back until the next key decides: the rest of the
/// sequence detaches, anything else releases them with that key.
#[derive(Debug, Clone)]
pub struct DetachMatcher {
    keys: Vec<u8>,
    held: usize,
}

impl DetachMatcher {
    pub fn new(keys: Vec<u8>) -> DetachMatcher {
        DetachMatcher { keys, held: 0 }
    }

    pub fn feed(&mut self, input: &[u8]) -> Fed {
        let mut forward = Vec::with_capacity(input.len() + self.held);
        if self.keys.is_empty() {
            forward.extend_from_slice(input);
            return Fed {
                forward,
                detach: false,
            };
        }
        for &b in input {
            if b == self.keys[self.held] {
                self.held += 1;
                if self.held == self.keys.len() {
                    self.held = 0;
                    return Fed {
                        forward,
                        detach: true,
                    };
                }
                continue;
            }
            // Not the sequence after all: release what was held; the key
            // itself may begin a new attempt.
            forward.extend_from_slice(&self.keys[..self.held]);
            self.held = 0;
            if b == self.keys[0] {
                self.held = 1;
                if self.keys.len() == 1 {
                    self.held = 0;
                    return Fed {
                        forward,
                        detach: true,
                    };
                }
            } else {
                forward.push(b);
            }
        }
        Fed {
            forward,
            detach: false,
        }
    }

    /// Keys still held back (sent as they are when the input ends).
    pub fn pending(&self) -> &[u8] {
        &self.keys[..self.held]
    }
}

/// The window size of the terminal on `fd`, if it is one: (rows, cols).
pub fn window_size(fd: BorrowedFd) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills a winsize struct we own; fd is borrowed and open.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Sets a pty's window size; the kernel sends SIGWINCH to its foreground
/// process group.
pub fn set_window_size(fd: BorrowedFd, rows: u16, cols: u16) -> std::io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize we own; fd is borrowed and open.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The pty master a runtime sends to its `--console-socket` (runc's
/// protocol: one message carrying the fd), waited for up to 5 s.
pub fn receive_console(l: &UnixListener) -> anyhow::Result<File> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(l.as_fd(), PollFlags::POLLIN)];
    // Woken at once (no sleep-polling): exec races the process' first
    // instruction to set the window size on this master.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms =
            PollTimeout::try_from(left.as_millis().min(5000) as i32).unwrap_or(PollTimeout::ZERO);
        match poll(&mut fds, ms) {
            Ok(0) => bail!("runtime did not send the console"),
            Ok(_) => break,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("waiting for the console"),
        }
    }
    let (conn, _) = l.accept().context("accepting the console")?;
    Ok(File::from(recv_fd(&conn)?))
}

fn recv_fd(sock: &UnixStream) -> anyhow::Result<OwnedFd> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .context("receiving the console fd")?;
    for c in msg.cmsgs().context("reading control messages")? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the fd was just received and is ours.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    bail!("console socket sent no fd")
}

/// A window size as the attach protocol's resize frame carries it.
pub fn encode_size(rows: u16, cols: u16) -> [u8; 4] {
    let [r0, r1] = rows.to_be_bytes();
    let [c0, c1] = cols.to_be_bytes();
    [r0, r1, c0, c1]
}

pub fn decode_size(d: &[u8]) -> Option<(u16, u16)> {
    let &[r0, r1, c0, c1] = d else { return None };
    Some((u16::from_be_bytes([r0, r1]), u16::from_be_bytes([c0, c1])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_syntax() {
        assert_eq!(parse_detach_keys(None).unwrap(), vec![0x10, 0x11]);
        assert_eq!(parse_detach_keys(Some("")).unwrap(), vec![0x10, 0x11]);
        assert_eq!(parse_detach_keys(Some("ctrl-x")).unwrap(), vec![0x18]);
        assert_eq!(
            parse_detach_keys(Some("ctrl-a,a,ctrl-@,ctrl-_,DEL,ctrl-[")).unwrap(),
            vec![1, b'a', 0, 31, 127, 27]
        );
        assert_eq!(parse_detach_keys(Some("ctrl-P,Q")).unwrap(), vec![16, b'Q']);
        for bad in ["ctrl-1", "ctrl-", "ab", "a,,b", "shift-a", "ctrl-ab"] {
            let e = parse_detach_keys(Some(bad)).unwrap_err().to_string();
            assert!(
                e.contains("--detach-keys") && !e.contains('\n'),
                "{bad}: {e}"
            );
        }
    }

    fn feed_all(m: &mut DetachMatcher, chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        for c in chunks {
            let f = m.feed(c);
            out.extend(f.forward);
            if f.detach {
                return (out, true);
            }
        }
        (out, false)
    }

    #[test]
    fn holds_ctrl_p_until_the_next_key() {
        let mut m = DetachMatcher::new(DEFAULT_DETACH_KEYS.to_vec());
        let f = m.feed(b"ab\x10");
        assert_eq!(f.forward, b"ab");
        assert!(!f.detach);
        assert_eq!(m.pending(), b"\x10");
        // A lone Ctrl-P followed by another key sends both.
        let f = m.feed(b"x");
        assert_eq!(f.forward, b"\x10x");
        assert!(m.pending().is_empty());
        // The sequence split across reads detaches; what follows is dropped.
        assert_eq!(
            feed_all(&mut m, &[b"hi\x10", b"\x11rest"]),
            (b"hi".to_vec(), true)
        );
        // Ctrl-P Ctrl-P Ctrl-Q: the first is released, the second starts the match.
        let mut m = DetachMatcher::new(DEFAULT_DETACH_KEYS.to_vec());
        assert_eq!(
            feed_all(&mut m, &[b"\x10\x10\x11"]),
            (b"\x10".to_vec(), true)
        );
    }

    #[test]
    fn custom_and_single_key_sequences() {
        let mut m = DetachMatcher::new(parse_detach_keys(Some("ctrl-x,a,b")).unwrap());
        assert_eq!(
            feed_all(&mut m, &[b"\x18a", b"c"]),
            (b"\x18ac".to_vec(), false)
        );
        assert_eq!(feed_all(&mut m, &[b"\x18", b"a", b"b"]), (vec![], true));
        // Ctrl-P is an ordinary key once another sequence is set.
        let mut m = DetachMatcher::new(parse_detach_keys(Some("ctrl-x")).unwrap());
        assert_eq!(
            feed_all(&mut m, &[b"\x10\x11z\x18"]),
            (b"\x10\x11z".to_vec(), true)
        );
        let mut m = DetachMatcher::new(vec![]);
        assert_eq!(
            feed_all(&mut m, &[b"\x10\x11"]),
            (b"\x10\x11".to_vec(), false)
        );
    }

    #[test]
    fn sizes_round_trip() {
        assert_eq!(decode_size(&encode_size(40, 132)), Some((40, 132)));
        assert_eq!(decode_size(&[0, 1, 2]), None);
    }
}
