//! Health checks (docker's HEALTHCHECK and `--health-*`): while a container runs, its monitor
//! keeps a thread here that runs the check through `<runtime> exec`, keeps `.State.Health` in
//! state.json and reports status changes as `health_status: ...` events.
//!
//! The monitor is a subreaper whose main thread reaps every child with `waitpid(-1)`, probes
//! included; it hands their statuses here through [`note_reaped`].

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::container::{Container, Health, HealthProbe, HealthStatus, Status};
use super::{events, exec};
use crate::image::types::HealthConfig;
use crate::sys::now_rfc3339;

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_RETRIES: u32 = 3;
/// docker keeps this many probes in `.State.Health.Log` ...
pub const MAX_LOG: usize = 5;
/// ... each with at most this much output.
pub const MAX_OUTPUT: usize = 4096;

/// The check in force with docker's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub command: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: u32,
}

fn or_default(ns: i64, d: Duration) -> Duration {
    if ns > 0 {
        Duration::from_nanos(ns as u64)
    } else {
        d
    }
}

impl Settings {
    /// None for no check (`NONE`, an empty test or one with nothing to run).
    pub fn from_config(hc: &HealthConfig) -> Option<Settings> {
        let command = match hc.test.first().map(String::as_str) {
            Some("CMD") => hc.test[1..].to_vec(),
            Some("CMD-SHELL") => {
                vec!["/bin/sh".into(), "-c".into(), hc.test[1..].join(" ")]
            }
            _ => return None,
        };
        if command.is_empty() || command[0].is_empty() {
            return None;
        }
        Some(Settings {
            command,
            interval: or_default(hc.interval, DEFAULT_INTERVAL),
            timeout: or_default(hc.timeout, DEFAULT_TIMEOUT),
            start_period: or_default(hc.start_period, Duration::ZERO),
            start_interval: or_default(hc.start_interval, DEFAULT_START_INTERVAL),
            retries: if hc.retries > 0 {
                hc.retries.min(u32::MAX as i64) as u32
            } else {
                DEFAULT_RETRIES
            },
        })
    }
}

/// Folds one probe into the health record as docker does: success makes it healthy and
/// resets the streak; a failure counts (except while still starting inside the start
/// period) and `retries` failures in a row make it unhealthy.
pub fn record(h: &mut Health, p: HealthProbe, in_start_period: bool, retries: u32) {
    if p.exit_code == 0 {
        h.failing_streak = 0;
        h.status = HealthStatus::Healthy;
    } else if !(h.status == HealthStatus::Starting && in_start_period) {
        h.failing_streak += 1;
        if h.failing_streak >= retries {
            h.status = HealthStatus::Unhealthy;
        }
    }
    h.log.push(p);
    if h.log.len() > MAX_LOG {
        let extra = h.log.len() - MAX_LOG;
        h.log.drain(..extra);
    }
}

/// A running check; stopping it waits for a probe in flight (the container is gone by then,
/// so the probe ends at once).
pub struct Checker {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Checker {
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
    }
}

/// Starts the container's check, if it has one. Called by the monitor after each start.
pub fn start(root: &Path, c: &Container) -> Option<Checker> {
    let s = Settings::from_config(c.config.healthcheck.as_ref()?)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (root, c, st) = (root.to_path_buf(), c.clone(), stop.clone());
    let thread = std::thread::spawn(move || run(&root, c, &s, &st));
    Some(Checker { stop, thread })
}

fn run(root: &Path, mut c: Container, s: &Settings, stop: &AtomicBool) {
    // docker: each start begins in `starting` with a clean streak; the log carries over.
    let mut status = update(&mut c, |h| {
        h.status = HealthStatus::Starting;
        h.failing_streak = 0;
    });
    let started = Instant::now();
    loop {
        let in_start = started.elapsed() < s.start_period;
        let wait = if status == HealthStatus::Starting && in_start {
            s.start_interval
        } else {
            s.interval
        };
        if !sleep_unless(wait, stop) {
            return;
        }
        c.reload_state();
        if c.state.status == Status::Paused {
            continue;
        }
        let in_start = started.elapsed() < s.start_period;
        let p = probe(root, &c, s);
        if stop.load(Ordering::SeqCst) {
            // The container exited under the probe: that is no verdict on its health.
            return;
        }
        let new = update(&mut c, |h| record(h, p, in_start, s.retries));
        if new != status {
            let action = format!("health_status: {}", new.as_str());
            events::container(root, &c, &action, &[]);
            status = new;
        }
    }
}

/// Applies `f` to the stored health record (created on first use) and saves; the new status.
fn update(c: &mut Container, f: impl FnOnce(&mut Health)) -> HealthStatus {
    c.reload_state();
    let h = c.state.health.get_or_insert_with(Health::default);
    f(h);
    let status = h.status;
    let _ = c.save_state();
    status
}

/// Sleeps `d` in small steps; false if asked to stop meanwhile.
fn sleep_unless(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep((end - Instant::now()).min(Duration::from_millis(50)));
    }
    !stop.load(Ordering::SeqCst)
}

/// Children the monitor's reaper collected before their owner could: pid -> wait status.
static REAPED: Mutex<BTreeMap<i32, i32>> = Mutex::new(BTreeMap::new());

/// The monitor's reaper reports a child that was not the container's init.
pub fn note_reaped(pid: i32, status: i32) {
    if let Ok(mut m) = REAPED.lock() {
        // Orphans reaped by the subreaper land here too; keep the map small.
        if m.len() >= 256 {
            m.clear();
        }
        m.insert(pid, status);
    }
}

fn take_reaped(pid: i32) -> Option<i32> {
    let status = REAPED.lock().ok()?.remove(&pid)?;
    Some(if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    })
}

/// Runs the check once: exit code and (capped) combined stdout/stderr.
fn probe(root: &Path, c: &Container, s: &Settings) -> HealthProbe {
    let start = now_rfc3339();
    let (exit_code, output) = match run_probe(root, c, s) {
        Ok(r) => r,
        Err(e) => (-1, format!("{e:#}")),
    };
    HealthProbe {
        start,
        end: now_rfc3339(),
        exit_code,
        output,
    }
}

fn run_probe(root: &Path, c: &Container, s: &Settings) -> anyhow::Result<(i32, String)> {
    use anyhow::Context;
    let pid_file = c.dir.join("health.pid");
    let _ = std::fs::remove_file(&pid_file);
    let o = exec::ExecOptions {
        command: s.command.clone(),
        pid_file: Some(pid_file.clone()),
        ..Default::default()
    };
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating pipe")?;
    let w = File::from(w);
    let mut cmd = exec::command(root, c, &o)?;
    cmd.stdin(Stdio::null())
        .stdout(w.try_clone().context("dup pipe")?)
        .stderr(w);
    let mut child = cmd.spawn().context("running the health check")?;
    drop(cmd);
    let out = Arc::new(Mutex::new(Vec::new()));
    let reader = read_capped(File::from(r), out.clone());
    let code = wait_probe(&mut child, s.timeout, &pid_file);
    // A probe that left a background process holding the pipe: do not wait for its EOF.
    let end = Instant::now() + Duration::from_millis(500);
    while !reader.is_finished() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = std::fs::remove_file(&pid_file);
    let Some(code) = code else {
        return Ok((
            -1,
            format!(
                "Health check exceeded timeout ({})",
                go_duration_text(s.timeout)
            ),
        ));
    };
    let text = out
        .lock()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    Ok((code, text))
}

/// Reads everything, keeping the first [`MAX_OUTPUT`] bytes.
fn read_capped(mut f: File, out: Arc<Mutex<Vec<u8>>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = f.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut o) = out.lock() {
                let room = MAX_OUTPUT.saturating_sub(o.len());
                o.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    })
}

/// The probe's exit code, or None after killing it at the timeout.
fn wait_probe(child: &mut Child, timeout: Duration, pid_file: &Path) -> Option<i32> {
    let end = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(exit_code(st)),
            Ok(None) => {}
            // The monitor's reaper got it first.
            Err(_) => {
                if let Some(code) = take_reaped(child.id() as i32) {
                    return Some(code);
                }
            }
        }
        if Instant::now() >= end {
            kill_probe(child, pid_file);
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn exit_code(st: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0))
}

/// Kills the process the runtime started in the container (its pid file), then the runtime's
/// exec, which waits for it; both are ours.
fn kill_probe(child: &mut Child, pid_file: &Path) {
    if let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .filter(|&p| p > 1)
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = child.kill();
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        match child.try_wait() {
            Ok(Some(_)) => return,
            Err(_) => {
                take_reaped(child.id() as i32);
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Go's `time.Duration.String()` for whole-millisecond values: `30s`, `1m30s`, `500ms`.
pub fn go_duration_text(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m) = (ms / 3_600_000, (ms / 60_000) % 60);
    let s = (ms % 60_000) as f64 / 1000.0;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{s}s"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(code: i32) -> HealthProbe {
        HealthProbe {
            exit_code: code,
            ..Default::default()
        }
    }

    #[test]
    fn docker_transitions() {
        let mut h = Health::default();
        record(&mut h, p(1), true, 3);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
        record(&mut h, p(1), false, 3);
        record(&mut h, p(1), false, 3);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 2));
        record(&mut h, p(1), false, 3);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 3));
        record(&mut h, p(0), false, 3);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 0));
        for _ in 0..10 {
            record(&mut h, p(0), false, 3);
        }
        assert_eq!(h.log.len(), MAX_LOG);
    }

    #[test]
    fn settings_defaults_and_forms() {
        let hc = HealthConfig {
            test: vec!["CMD-SHELL".into(), "exit 0".into()],
            ..Default::default()
        };
        let s = Settings::from_config(&hc).unwrap();
        assert_eq!(s.command, ["/bin/sh", "-c", "exit 0"]);
        assert_eq!(
            (
                s.interval,
                s.timeout,
                s.retries,
                s.start_period,
                s.start_interval
            ),
            (
                DEFAULT_INTERVAL,
                DEFAULT_TIMEOUT,
                3,
                Duration::ZERO,
                DEFAULT_START_INTERVAL
            )
        );
        let hc = HealthConfig {
            test: vec!["CMD".into(), "true".into(), "x".into()],
            interval: 1_000_000_000,
            retries: 5,
            ..Default::default()
        };
        let s = Settings::from_config(&hc).unwrap();
        assert_eq!(s.command, ["true", "x"]);
        assert_eq!((s.interval, s.retries), (Duration::from_secs(1), 5));
        let none = HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        assert!(Settings::from_config(&none).is_none());
        assert_eq!(go_duration_text(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration_text(Duration::from_millis(90_500)), "1m30.5s");
        assert_eq!(go_duration_text(Duration::from_millis(200)), "200ms");
    }
}
