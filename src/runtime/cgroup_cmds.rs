//! The commands that work on a container's cgroup: update, pause, resume, ps and events.

use super::lifecycle::{cgroup_of, status_of};
use super::state::{self, Container, StateError, Status};
use crate::cgroups::stats::network_interfaces;
use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `update`'s flags, named as runc's; each overrides the same field of `--resources`.
#[derive(Debug, Default)]
pub struct UpdateArgs {
    pub resources: Option<PathBuf>,
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub memory_reservation: Option<String>,
    pub kernel_memory: Option<String>,
    pub kernel_memory_tcp: Option<String>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpu_rt_period: Option<u64>,
    pub cpu_rt_runtime: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    pub l3_cache_schema: Option<String>,
    pub mem_bw_schema: Option<String>,
}

/// A size as runc's flags take it: bytes with an optional k/m/g/t suffix (binary units), or -1.
pub fn parse_size(flag: &str, s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k')) => (&t[..i], 1i64 << 10),
        Some((i, 'm')) => (&t[..i], 1 << 20),
        Some((i, 'g')) => (&t[..i], 1 << 30),
        Some((i, 't')) => (&t[..i], 1 << 40),
        _ => (t, 1),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("--{flag}: invalid size {s:?}"))?;
    if v < 0.0 || !v.is_finite() {
        bail!("--{flag}: invalid size {s:?}");
    }
    Ok((v * mult as f64) as i64)
}

/// A Go-style duration for `--interval`: "5s", "100ms", "1m30s", "2h".
pub fn parse_duration(s: &str) -> Result<Duration> {
    let d = crate::sys::go_duration(s.trim())
        .ok_or_else(|| anyhow::anyhow!("--interval: invalid duration {s:?}"))?;
    if d.is_zero() {
        bail!("--interval: duration must be positive, got {s:?}");
    }
    Ok(d)
}

/// The resources an update asks for: `--resources` JSON (a file or "-" for stdin), then the
/// single-value flags on top.
pub fn update_resources(a: &UpdateArgs) -> Result<LinuxResources> {
    if a.l3_cache_schema.is_some() {
        bail!("--l3-cache-schema: Intel RDT is not supported by hull");
    }
    if a.mem_bw_schema.is_some() {
        bail!("--mem-bw-schema: Intel RDT is not supported by hull");
    }
    let mut v: Value = match &a.resources {
        None => json!({}),
        Some(p) => {
            let text = if p.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("--resources: read stdin")?;
                s
            } else {
                std::fs::read_to_string(p)
                    .with_context(|| format!("--resources: read {}", p.display()))?
            };
            serde_json::from_str(&text).context("--resources: not a LinuxResources JSON object")?
        }
    };
    if !v.is_object() {
        bail!("--resources: not a LinuxResources JSON object");
    }
    let mut put = |section: &str, key: &str, val: Value| {
        if !v[section].is_object() {
            v[section] = json!({});
        }
        v[section][key] = val;
    };
    let sizes = [
        ("memory", "limit", &a.memory),
        ("memory-swap", "swap", &a.memory_swap),
        ("memory-reservation", "reservation", &a.memory_reservation),
        ("kernel-memory", "kernel", &a.kernel_memory),
        ("kernel-memory-tcp", "kernelTCP", &a.kernel_memory_tcp),
    ];
    for (flag, key, val) in sizes {
        if let Some(s) = val {
            put("memory", key, json!(parse_size(flag, s)?));
        }
    }
    if let Some(x) = a.cpu_shares {
        put("cpu", "shares", json!(x));
    }
    if let Some(x) = a.cpu_quota {
        put("cpu", "quota", json!(x));
    }
    if let Some(x) = a.cpu_period {
        put("cpu", "period", json!(x));
    }
    if let Some(x) = a.cpu_rt_period {
        put("cpu", "realtimePeriod", json!(x));
    }
    if let Some(x) = a.cpu_rt_runtime {
        put("cpu", "realtimeRuntime", json!(x));
    }
    if let Some(x) = &a.cpuset_cpus {
        put("cpu", "cpus", json!(x));
    }
    if let Some(x) = &a.cpuset_mems {
        put("cpu", "mems", json!(x));
    }
    if let Some(x) = a.pids_limit {
        put("pids", "limit", json!(x));
    }
    if let Some(x) = a.blkio_weight {
        put("blockIO", "weight", json!(x));
    }
    serde_json::from_value(v).context("--resources: not a valid LinuxResources object")
}

/// Loads a container that must have a live init (created, running or paused).
fn load_live(root: &Path, id: &str) -> Result<(Container, Status)> {
    let c = Container::load(root, id)?;
    let status = status_of(&c);
    if status == Status::Stopped {
        return Err(StateError::NotRunning.into());
    }
    Ok((c, status))
}

pub fn update(root: &Path, id: &str, args: &UpdateArgs) -> Result<()> {
    let res = update_resources(args)?;
    let (c, _) = load_live(root, id)?;
    cgroup_of(&c)?.apply(&res)
}

pub fn pause(root: &Path, id: &str) -> Result<()> {
    let (c, status) = load_live(root, id)?;
    if status == Status::Paused {
        bail!("container {id} is already paused");
    }
    // Under the lock, so pause and resume never interleave: the freeze waits (at most a
    // second) on the kernel only, never on another command.
    cgroup_of(&c)?.freeze()
}

pub fn resume(root: &Path, id: &str) -> Result<()> {
    let (c, status) = load_live(root, id)?;
    if status != Status::Paused {
        bail!("container not paused");
    }
    cgroup_of(&c)?.thaw()
}

/// `ps`: the container's pids as a JSON array, or `ps ARGS` (default -ef) filtered to them; the
/// text to print.
pub fn ps(root: &Path, id: &str, format: &str, ps_args: &[String]) -> Result<String> {
    let c = Container::load(root, id)?;
    let pids = cgroup_of(&c)?.pids()?;
    drop(c);
    match format {
        "json" => Ok(format!("{}\n", serde_json::to_string(&pids)?)),
        "table" => {
            let args: Vec<String> = if ps_args.is_empty() {
                vec!["-ef".to_string()]
            } else {
                ps_args.to_vec()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .with_context(|| format!("run ps {}", args.join(" ")))?;
            if !out.status.success() {
                bail!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let Some(col) = header.split_whitespace().position(|h| h == "PID") else {
                bail!("ps {}: its output has no PID column", args.join(" "));
            };
            let mut kept = format!("{header}\n");
            for line in lines {
                let pid = line
                    .split_whitespace()
                    .nth(col)
                    .and_then(|p| p.parse::<i32>().ok());
                if pid.is_some_and(|p| pids.contains(&p)) {
                    kept.push_str(line);
                    kept.push('\n');
                }
            }
            Ok(kept)
        }
        other => bail!("--format: {other:?} is not one of table, json"),
    }
}

fn stats_event(id: &str, pid: i32, cg: &dyn crate::cgroups::Cgroup) -> Result<Value> {
    let mut stats = serde_json::to_value(cg.stats()?)?;
    stats["network_interfaces"] = serde_json::to_value(network_interfaces(pid))?;
    Ok(json!({"type": "stats", "id": id, "data": stats}))
}

fn emit(out: &mut dyn Write, v: &Value) -> Result<()> {
    writeln!(out, "{v}").context("write event")?;
    out.flush().context("write event")
}

/// `events`: one stats event with `--stats`; otherwise stats every `interval` and an "oom" event
/// whenever the kernel OOM-kills in the container, until the container stops; JSON lines to
/// `out`.
pub fn events(
    root: &Path,
    id: &str,
    stats_only: bool,
    interval: Duration,
    out: &mut dyn Write,
) -> Result<()> {
    let (c, _) = load_live(root, id)?;
    // Keep only what the loop needs: holding the container would hold its lock for the whole
    // stream and block every other command on it.
    let st = c.state.clone();
    let cg = cgroup_of(&c)?;
    drop(c);
    if stats_only {
        return emit(out, &stats_event(id, st.pid, cg.as_ref())?);
    }
    let alive = || state::process_start_time(st.pid) == Some(st.start_time);
    let watch = cg.oom_watch().ok();
    let mut ooms = cg.oom_kill_count();
    let mut next = Instant::now();
    while alive() && cg.exists() {
        if Instant::now() >= next {
            emit(out, &stats_event(id, st.pid, cg.as_ref())?)?;
            next = Instant::now() + interval;
        }
        // Wake at least every 200ms to notice that the container has gone.
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(200));
        match &watch {
            Some(w) => {
                let mut pfd = libc::pollfd {
                    fd: w.fd().as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: one pollfd we own, for the duration of the call.
                let n = unsafe { libc::poll(&mut pfd, 1, wait.as_millis() as i32) };
                if n > 0 && pfd.revents & libc::POLLIN != 0 {
                    let count = w.drain()?;
                    let now = cg.oom_kill_count();
                    let new = if w.counts_events {
                        count
                    } else {
                        now.saturating_sub(ooms)
                    };
                    ooms = now;
                    for _ in 0..new {
                        emit(out, &json!({"type": "oom", "id": id}))?;
                    }
                }
            }
            None => {
                std::thread::sleep(wait);
                let now = cg.oom_kill_count();
                for _ in ooms..now {
                    emit(out, &json!({"type": "oom", "id": id}))?;
                }
                ooms = now;
            }
        }
    }
    // An OOM kill that ended the container may land between the last poll and the liveness
    // check: the cgroup's counter still tells.
    if cg.exists() {
        for _ in ooms..cg.oom_kill_count() {
            emit(out, &json!({"type": "oom", "id": id}))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_runc() {
        assert_eq!(parse_size("memory", "1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("memory", "512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("memory", "1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("memory", "64KB").unwrap(), 64 << 10);
        assert_eq!(parse_size("memory", "-1").unwrap(), -1);
        assert!(parse_size("memory", "lots")
            .unwrap_err()
            .to_string()
            .contains("--memory"));
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("0s").is_err());
    }

    #[test]
    fn flags_override_resources() {
        let a = UpdateArgs {
            memory: Some("64m".into()),
            cpu_quota: Some(20000),
            pids_limit: Some(9),
            ..Default::default()
        };
        let r = update_resources(&a).unwrap();
        assert_eq!(r.memory().unwrap().limit(), Some(64 << 20));
        assert_eq!(r.cpu().as_ref().unwrap().quota(), Some(20000));
        assert_eq!(r.pids().unwrap().limit(), 9);
        let bad = UpdateArgs {
            l3_cache_schema: Some("L3:0=f".into()),
            ..Default::default()
        };
        assert!(update_resources(&bad)
            .unwrap_err()
            .to_string()
            .contains("--l3-cache-schema"));
    }
}
