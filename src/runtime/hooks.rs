//! OCI hooks: programs run with the container state on stdin at fixed points of the lifecycle.

use anyhow::{bail, Context, Result};
use oci_spec::runtime::Hook;
use std::io::{Read, Seek, Write};
use std::os::fd::FromRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// An anonymous in-memory file: a hook's output can be any size without a reader thread, and
/// stays out of the container's stdio when the init runs the hook.
fn memfd(name: &str) -> Result<std::fs::File> {
    let c = std::ffi::CString::new(name)?;
    // SAFETY: plain syscall with a valid C string.
    let fd = unsafe { libc::memfd_create(c.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("memfd_create for hook output");
    }
    // SAFETY: the fd was just created and is ours.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Runs one hook; `default_env` is the environment of a hook that has no `env` of its own
/// (none at all when absent).
fn run_one(phase: &str, hook: &Hook, state_json: &str, default_env: &[String]) -> Result<()> {
    let path = hook.path();
    let mut cmd = Command::new(path);
    if let Some(args) = hook.args() {
        if let Some((first, rest)) = args.split_first() {
            cmd.arg0(first);
            cmd.args(rest);
        }
    }
    cmd.env_clear();
    for kv in hook.env().as_deref().unwrap_or(default_env) {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut out = memfd("hook-stdout")?;
    let mut err = memfd("hook-stderr")?;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::from(out.try_clone()?))
        .stderr(Stdio::from(err.try_clone()?));
    let mut child = cmd
        .spawn()
        .with_context(|| format!("{phase} hook {}", path.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook may exit without reading its stdin; that is not an error.
        let _ = stdin.write_all(state_json.as_bytes());
    }
    let deadline = hook
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    let mut pause = Duration::from_micros(100);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{phase} hook {}: timed out after {}s",
                path.display(),
                hook.timeout().unwrap_or(0)
            );
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    };
    if !status.success() {
        let mut text = String::new();
        for f in [&mut err, &mut out] {
            f.rewind()?;
            let mut s = String::new();
            f.read_to_string(&mut s)?;
            text.push_str(s.trim());
        }
        bail!(
            "{phase} hook {} failed: {status}{}",
            path.display(),
            if text.is_empty() {
                String::new()
            } else {
                format!(": {text}")
            }
        );
    }
    Ok(())
}

/// Runs the hooks of one phase in order, stopping at the first failure.
pub fn run(phase: &str, hooks: Option<&Vec<Hook>>, state_json: &str) -> Result<()> {
    for hook in hooks.map(Vec::as_slice).unwrap_or_default() {
        run_one(phase, hook, state_json, &[])?;
    }
    Ok(())
}

/// Runs the hooks of a phase that runs in the container (startContainer): a hook without an
/// `env` of its own gets `process_env`, the container process's, as runc gives it (runc runs
/// them from its init after taking on that environment, and engines rely on it).
pub fn run_in_container(
    phase: &str,
    hooks: Option<&Vec<Hook>>,
    state_json: &str,
    process_env: &[String],
) -> Result<()> {
    for hook in hooks.map(Vec::as_slice).unwrap_or_default() {
        run_one(phase, hook, state_json, process_env)?;
    }
    Ok(())
}

/// Runs every hook of a phase whose failures are only warnings (poststop): a failed hook must
/// not keep the later ones from running.
pub fn run_warning(phase: &str, hooks: Option<&Vec<Hook>>, state_json: &str) {
    for hook in hooks.map(Vec::as_slice).unwrap_or_default() {
        if let Err(e) = run_one(phase, hook, state_json, &[]) {
            crate::warn!("{e:#}");
        }
    }
}
