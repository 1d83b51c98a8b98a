//! What a registry may send, and for how long it may keep us waiting. A
//! hostile or broken registry must not fill the disk or stall a pull:
//! every body is read up to a bound (a blob up to its descriptor's size),
//! and a transfer that sends nothing for the idle timeout fails.

use anyhow::{bail, Context, Result};
use std::io::{self, Read};
use std::time::Duration;

/// containerd's limit for manifests and indexes; real ones are a few KiB.
pub const MAX_MANIFEST: u64 = 4 << 20;
/// Image configs carry the history too; real ones are well under 1 MiB.
pub const MAX_CONFIG: u64 = 8 << 20;
/// Token responses: a JWT or two.
pub const MAX_TOKEN: u64 = 1 << 20;
/// Error bodies are only read for a one-line message.
pub const MAX_ERROR_BODY: u64 = 64 << 10;

/// A whole small request (manifest, token, ping, HEAD) must finish within
/// this, so a registry dripping a byte at a time can't hold a pull.
pub const SMALL_REQUEST: Duration = Duration::from_secs(120);
pub const CONNECT: Duration = Duration::from_secs(30);
const DEFAULT_IDLE: Duration = Duration::from_secs(30);

/// How long a transfer may go without a byte before it fails:
/// `BERTH_REGISTRY_IDLE_TIMEOUT` seconds (fractions allowed), default 30.
pub fn idle_timeout() -> Result<Duration> {
    match std::env::var("BERTH_REGISTRY_IDLE_TIMEOUT") {
        Ok(v) => match v.trim().parse::<f64>() {
            Ok(s) if s > 0.0 && s.is_finite() && s <= 86400.0 => Ok(Duration::from_secs_f64(s)),
            _ => bail!("BERTH_REGISTRY_IDLE_TIMEOUT={v:?}: expected seconds, more than 0"),
        },
        Err(_) => Ok(DEFAULT_IDLE),
    }
}

/// The Content-Length a response declares, if any.
pub fn declared_len(r: &ureq::Response) -> Option<u64> {
    r.header("Content-Length")
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// Refuses a response that announces more than `max` bytes.
pub fn check_declared(r: &ureq::Response, max: u64, what: &str) -> Result<()> {
    if let Some(n) = declared_len(r) {
        if n > max {
            bail!("{what}: registry announces {n} bytes, more than the {max} allowed");
        }
    }
    Ok(())
}

/// Reads a whole body of at most `max` bytes; more is an error, not a truncation.
pub fn read_bounded(r: ureq::Response, max: u64, what: &str) -> Result<Vec<u8>> {
    check_declared(&r, max, what)?;
    let mut body = Vec::new();
    r.into_reader()
        .take(max + 1)
        .read_to_end(&mut body)
        .map_err(stalled)
        .with_context(|| format!("reading {what}"))?;
    if body.len() as u64 > max {
        bail!("{what}: registry sent more than the {max} bytes allowed");
    }
    Ok(body)
}

/// The start of an error response, for its message.
pub fn error_body(r: ureq::Response) -> String {
    let mut body = Vec::new();
    let _ = r.into_reader().take(MAX_ERROR_BODY).read_to_end(&mut body);
    String::from_utf8_lossy(&body).into_owned()
}

/// Names a read timeout for what it is.
pub fn stalled(e: io::Error) -> io::Error {
    if matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    ) {
        io::Error::new(
            io::ErrorKind::TimedOut,
            "registry stopped sending (idle timeout; BERTH_REGISTRY_IDLE_TIMEOUT)",
        )
    } else {
        e
    }
}

/// A body reader that renames read timeouts (see `stalled`).
pub struct IdleReader<R>(pub R);

impl<R: Read> Read for IdleReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(stalled)
    }
}
