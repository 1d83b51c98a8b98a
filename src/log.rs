//! Runtime logging in the two formats engines read: runc's logrus text and one JSON object a line.
//!
//! containerd's shim reads the log file line by line; podman parses the whole file as one JSON
//! object when a command fails, so a failing command must write exactly one error record (and no
//! other record unless `--debug` was asked for).

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Mutex;
use std::time::SystemTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }
}

struct Logger {
    file: Option<File>,
    format: Format,
    debug: bool,
}

static LOGGER: Mutex<Option<Logger>> = Mutex::new(None);

/// Sets where records go. `path` of None means stderr.
pub fn init(path: Option<&std::path::Path>, format: Format, debug: bool) -> anyhow::Result<()> {
    use anyhow::Context;
    let file = match path {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("open log file {}", p.display()))?,
        ),
        None => None,
    };
    *LOGGER.lock().unwrap_or_else(|e| e.into_inner()) = Some(Logger {
        file,
        format,
        debug,
    });
    Ok(())
}

/// Whether records go to a file (so a fatal error must also reach stderr for a human).
pub fn logs_to_file() -> bool {
    LOGGER
        .lock()
        .map(|l| l.as_ref().is_some_and(|l| l.file.is_some()))
        .unwrap_or(false)
}

/// The raw fd of the log file, to be inherited by the container init for its own records.
pub fn file_fd() -> Option<i32> {
    LOGGER
        .lock()
        .ok()?
        .as_ref()?
        .file
        .as_ref()
        .map(|f| f.as_raw_fd())
}

pub fn format() -> Format {
    LOGGER
        .lock()
        .ok()
        .and_then(|l| l.as_ref().map(|l| l.format))
        .unwrap_or(Format::Text)
}

fn rfc3339_now() -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

/// Formats a UTC timestamp as RFC 3339 with nanoseconds, as Go's time.RFC3339Nano does.
pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    if nanos == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
    } else {
        let frac = format!("{nanos:09}");
        format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{}Z",
            frac.trim_end_matches('0')
        )
    }
}

fn escape_text(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len() + 2);
    out.push('"');
    for c in msg.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn record(level: Level, msg: &str) {
    let mut guard = match LOGGER.lock() {
        Ok(g) => g,
        Err(e) => e.into_inner(),
    };
    let (format, debug) = guard
        .as_ref()
        .map(|l| (l.format, l.debug))
        .unwrap_or((Format::Text, false));
    if level == Level::Debug && !debug {
        return;
    }
    let line = match format {
        Format::Json => {
            let v = serde_json::json!({"level": level.name(), "msg": msg, "time": rfc3339_now()});
            format!("{v}\n")
        }
        Format::Text => format!(
            "time=\"{}\" level={} msg={}\n",
            rfc3339_now(),
            level.name(),
            escape_text(msg)
        ),
    };
    match guard.as_mut().and_then(|l| l.file.as_mut()) {
        Some(f) => {
            let _ = f.write_all(line.as_bytes());
        }
        None => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }
}

/// Re-opens the logger on an inherited fd in a forked child (the container init).
///
/// # Safety
/// `fd` must be an open file descriptor owned by nobody else in this process.
pub unsafe fn adopt_fd(fd: i32, format: Format, debug: bool) {
    let file = File::from_raw_fd(fd);
    *LOGGER.lock().unwrap_or_else(|e| e.into_inner()) = Some(Logger {
        file: Some(file),
        format,
        debug,
    });
}

#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::record($crate::log::Level::Debug, &format!($($arg)*)) };
}

#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::record($crate::log::Level::Warn, &format!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn formats_timestamps_like_go() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000, 500_000_000), "2023-11-14T22:13:20.5Z");
        assert_eq!(rfc3339(951_782_400, 1), "2000-02-29T00:00:00.000000001Z");
    }
}
