//! Which fds the caller handed hull to pass on (`--preserve-fds`, LISTEN_FDS).
//!
//! The set is recorded before hull opens anything of its own (log file, state lock): checked any
//! later, one of hull's fds could sit in a gap of the range and be passed into the container.

use std::sync::OnceLock;

static OPEN_AT_START: OnceLock<Vec<i32>> = OnceLock::new();

/// Records which of fds 3..3+count are open. Call first thing in main.
pub fn snapshot(count: u32) {
    let open = (3..3 + count as i32)
        // SAFETY: F_GETFD only asks whether the fd is open.
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0)
        .collect();
    let _ = OPEN_AT_START.set(open);
}

/// The open fds among 3..3+count as recorded by [`snapshot`] (none if it was never called).
pub fn preserved(count: u32) -> Vec<i32> {
    OPEN_AT_START
        .get()
        .map(|open| {
            open.iter()
                .copied()
                .filter(|&fd| fd < 3 + count as i32)
                .collect()
        })
        .unwrap_or_default()
}

/// The LISTEN_FDS count systemd socket activation passed to hull, if it was meant for us.
pub fn listen_fds_from_env() -> u32 {
    let pid_ok = std::env::var("LISTEN_PID")
        .map(|p| p == std::process::id().to_string())
        .unwrap_or(true);
    match std::env::var("LISTEN_FDS") {
        Ok(n) if pid_ok => n.parse().unwrap_or(0),
        _ => 0,
    }
}
