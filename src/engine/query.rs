//! Reading containers: `list` with docker's filters, `inspect`, `port`,
//! `top` and `stats` (the last two through the runtime).

use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};

use super::container::{self, Container};
use super::error::{EngineError, Op, Result};
use super::lifecycle::runtime_of;
use super::volumes;

/// One `--filter key=value`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Name(String),
    Id(String),
    Status(String),
    Ancestor(String),
    Label(String, Option<String>),
    Network(String),
    Volume(String),
    Exited(i32),
}

impl Filter {
    pub fn parse(f: &str) -> Result<Filter> {
        let Some((k, v)) = f.split_once('=') else {
            crate::invalid!("bad format of filter (expected name=value): {f}");
        };
        let v = v.to_string();
        Ok(match k {
            "name" => Filter::Name(v),
            "id" => Filter::Id(v),
            "status" => Filter::Status(v),
            "ancestor" => Filter::Ancestor(v),
            "label" => match v.split_once('=') {
                Some((a, b)) => Filter::Label(a.into(), Some(b.into())),
                None => Filter::Label(v, None),
            },
            "network" => Filter::Network(v),
            "volume" => Filter::Volume(v),
            "exited" => match v.parse() {
                Ok(n) => Filter::Exited(n),
                Err(_) => crate::invalid!("invalid filter 'exited={v}'"),
            },
            _ => crate::invalid!("invalid filter '{k}'"),
        })
    }

    pub fn matches(&self, c: &Container) -> bool {
        let cfg = &c.config;
        match self {
            Filter::Name(v) => cfg.name.contains(v.as_str()),
            Filter::Id(v) => cfg.id.starts_with(v.as_str()),
            Filter::Status(v) => c.docker_status().as_str() == v,
            Filter::Ancestor(v) => cfg.image == *v || cfg.image_id.contains(v.as_str()),
            Filter::Label(k, v) => cfg
                .labels
                .get(k)
                .is_some_and(|x| v.as_ref().is_none_or(|v| v.is_empty() || x == v)),
            Filter::Network(v) => cfg.network.to_string() == *v,
            Filter::Volume(v) => cfg.mounts.iter().any(|m| m.source == *v || m.target == *v),
            Filter::Exited(n) => {
                c.docker_status() == container::Status::Exited && c.state.exit_code == *n
            }
        }
    }
}

/// `ps`'s selection.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    /// Include stopped containers.
    pub all: bool,
    /// Only the most recently created.
    pub latest: bool,
    pub filters: Vec<Filter>,
}

/// Containers, newest first, as `ps` selects them.
pub fn list(root: &Path, f: &Filters) -> Result<Vec<Container>> {
    let mut keep: Vec<Container> = container::list(root)?
        .into_iter()
        .filter(|c| f.all || f.latest || c.is_running() || !f.filters.is_empty())
        .filter(|c| f.filters.iter().all(|x| x.matches(c)))
        .collect();
    if f.latest {
        keep.truncate(1);
    }
    Ok(keep)
}

/// docker's PORTS column.
pub fn ports_text(c: &Container) -> String {
    if !c.is_running() {
        return String::new();
    }
    c.config
        .ports
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `port`: (container port/proto, host ip, host port), optionally only one port.
pub fn ports(c: &Container, private: Option<&str>) -> Vec<(String, String, u16)> {
    c.config
        .ports
        .iter()
        .map(|p| {
            (
                format!("{}/{}", p.container_port, p.proto),
                p.host_ip.clone(),
                p.host_port,
                p.container_port,
            )
        })
        .filter(|(key, _, _, cp)| private.is_none_or(|w| w == key || *w == cp.to_string()))
        .map(|(k, ip, hp, _)| (k, ip, hp))
        .collect()
}

/// docker's `inspect` document for a container.
pub fn inspect(root: &Path, c: &Container) -> serde_json::Value {
    let st = &c.state;
    let cfg = &c.config;
    let mut ports = serde_json::Map::new();
    for p in &cfg.ports {
        let e = ports
            .entry(format!("{}/{}", p.container_port, p.proto))
            .or_insert_with(|| json!([]));
        if let Some(a) = e.as_array_mut() {
            a.push(json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}));
        }
    }
    let mut nets = serde_json::Map::new();
    for (n, ep) in &st.endpoints {
        nets.insert(
            n.clone(),
            json!({"IPAddress": ep.ip, "IPPrefixLen": ep.prefix, "Gateway": ep.gateway, "MacAddress": ep.mac, "Aliases": cfg.aliases}),
        );
    }
    let first_ip = st
        .endpoints
        .values()
        .next()
        .map(|e| e.ip.clone())
        .unwrap_or_default();
    let running = c.is_running();
    let status = c.docker_status();
    let time = |t: &str| {
        if t.is_empty() {
            "0001-01-01T00:00:00Z".to_string()
        } else {
            t.to_string()
        }
    };
    with_health(
        c,
        json!({
            "Id": cfg.id,
            "Created": cfg.created,
            "Path": cfg.args.first(),
            "Args": cfg.args.get(1..).unwrap_or(&[]),
            "State": {
                "Status": status.as_str(),
                "Running": running && status != container::Status::Paused,
                "Paused": running && status == container::Status::Paused,
                "Restarting": running && status == container::Status::Restarting,
                "OOMKilled": st.oom_killed,
                "Dead": false,
                "Pid": if running { st.pid } else { 0 },
                "ExitCode": st.exit_code,
                "Error": st.error,
                "StartedAt": time(&st.started_at),
                "FinishedAt": time(&st.finished_at),
            },
            "Image": cfg.image_id,
            "ResolvConfPath": c.dir.join("resolv.conf"),
            "HostnamePath": c.dir.join("hostname"),
            "HostsPath": c.dir.join("hosts"),
            "LogPath": c.log_path(),
            "Name": format!("/{}", cfg.name),
            "RestartCount": st.restart_count,
            "Driver": "overlay",
            "Platform": "linux",
            "HostConfig": {
                "NetworkMode": cfg.network.to_string(),
                "RestartPolicy": {"Name": cfg.restart.name(), "MaximumRetryCount": cfg.restart.max_retries()},
                "AutoRemove": cfg.auto_remove,
                "Memory": cfg.memory.unwrap_or(0),
                "NanoCpus": cfg.cpus.map(|c| (c * 1e9) as i64).unwrap_or(0),
                "CpuShares": cfg.cpu_shares.unwrap_or(0),
                "PidsLimit": cfg.pids_limit,
                "Privileged": cfg.privileged,
                "ReadonlyRootfs": cfg.read_only,
                "CapAdd": cfg.cap_add,
                "CapDrop": cfg.cap_drop,
                "PortBindings": ports,
                "Runtime": cfg.runtime,
            },
            "GraphDriver": {"Name": "overlay", "Data": {"UpperDir": c.upper(), "WorkDir": c.dir.join("work"), "MergedDir": c.rootfs()}},
            "Mounts": cfg.mounts.iter().map(|m| json!({
                "Type": m.typ,
                "Name": if m.typ == "volume" { m.source.clone() } else { String::new() },
                "Source": if m.typ == "volume" { volumes::dir(root).join(&m.source).join("_data").to_string_lossy().into_owned() } else { m.source.clone() },
                "Destination": m.target,
                "RW": !m.readonly,
            })).collect::<Vec<_>>(),
            "Config": {
                "Hostname": cfg.hostname,
                "User": cfg.user,
                "Tty": cfg.tty,
                "OpenStdin": cfg.interactive,
                "Env": cfg.env,
                "Cmd": cfg.args,
                "Image": cfg.image,
                "WorkingDir": cfg.workdir,
                "Labels": cfg.labels,
                "StopSignal": cfg.stop_signal,
                "ExposedPorts": cfg.exposed.iter().map(|e| (e.clone(), json!({}))).collect::<serde_json::Map<_, _>>(),
            },
            "NetworkSettings": {
                "IPAddress": first_ip,
                "Ports": ports,
                "Networks": nets,
                "SandboxKey": crate::network::netns::path(root, &cfg.id),
            }
        }),
    )
}

/// docker's `.State.Health` and `.Config.Healthcheck`, present only with a health check.
fn with_health(c: &Container, mut v: serde_json::Value) -> serde_json::Value {
    if let Some(hc) = &c.config.healthcheck {
        v["Config"]["Healthcheck"] = serde_json::to_value(hc).unwrap_or_default();
    }
    if let Some(h) = &c.state.health {
        v["State"]["Health"] = json!({
            "Status": h.status.as_str(),
            "FailingStreak": h.failing_streak,
            "Log": h.log.iter().map(|p| json!({
                "Start": p.start, "End": p.end, "ExitCode": p.exit_code, "Output": p.output,
            })).collect::<Vec<_>>(),
        });
    }
    v
}

/// One row of `top`.
#[derive(Debug, Clone)]
pub struct Process {
    pub uid: String,
    pub pid: i32,
    pub ppid: String,
    pub cmd: String,
}

/// The container's processes, as the runtime lists them (`<runtime> ps`).
pub fn top(root: &Path, c: &Container) -> Result<Vec<Process>> {
    if !c.is_running() {
        return Err(EngineError::not_running(&c.config.name, Op::Other));
    }
    let mut pids = runtime_of(root, c).ps(c.id()).unwrap_or_default();
    if pids.is_empty() {
        pids.push(c.state.pid);
    }
    let mut out = Vec::new();
    for pid in pids {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let field = |k: &str| {
            stat.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
                .unwrap_or_default()
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .split('\0')
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        out.push(Process {
            uid: field("Uid:"),
            pid,
            ppid: field("PPid:"),
            cmd,
        });
    }
    Ok(out)
}

/// One container's resource usage over a sampling interval.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub id: String,
    pub name: String,
    pub cpu_percent: f64,
    pub mem: u64,
    pub mem_limit: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub blk_read: u64,
    pub blk_write: u64,
    pub pids: u64,
}

fn read_num(p: &str) -> u64 {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map(|k| k * 1024)
        .unwrap_or(0)
}

/// Samples usage through `<runtime> events --stats` twice, `interval` apart.
/// Stopped containers read as zeros.
pub fn stats(root: &Path, list: &[Container], interval: Duration) -> Result<Vec<Usage>> {
    // Each sample is timed on its own: one runtime call per container
    // takes a while, and CPU % must not count that against the others.
    let sample = |c: &Container| {
        if c.is_running() {
            runtime_of(root, c)
                .stats(c.id())
                .ok()
                .map(|s| (Instant::now(), s))
        } else {
            None
        }
    };
    let first: Vec<_> = list.iter().map(sample).collect();
    std::thread::sleep(interval);
    Ok(list
        .iter()
        .zip(first)
        .map(|(c, s0)| usage(c, s0, sample(c)))
        .collect())
}

type Sample = Option<(Instant, super::runtime::Stats)>;

fn usage(c: &Container, s0: Sample, s1: Sample) -> Usage {
    let mut u = Usage {
        id: c.short_id().to_string(),
        name: c.config.name.clone(),
        ..Default::default()
    };
    if let (Some((t0, s0)), Some((t1, s1))) = (&s0, &s1) {
        let el = t1.duration_since(*t0).as_nanos().max(1) as f64;
        u.cpu_percent = s1.cpu.usage.total.saturating_sub(s0.cpu.usage.total) as f64 / el * 100.0;
    }
    if let Some((_, s)) = &s1 {
        u.mem = s.memory.usage.usage;
        u.mem_limit = s.memory.usage.limit;
        u.pids = s.pids.current;
        for b in &s.blkio.io_service_bytes {
            match b.op.as_str() {
                "Read" | "read" => u.blk_read += b.value,
                "Write" | "write" => u.blk_write += b.value,
                _ => {}
            }
        }
    }
    if u.mem_limit == 0 || u.mem_limit > 1 << 50 {
        u.mem_limit = mem_total();
    }
    // The host end of a veth sees the container's rx as tx.
    for ep in c.state.endpoints.values() {
        let st = format!("/sys/class/net/{}/statistics", ep.host_veth);
        u.net_rx += read_num(&format!("{st}/tx_bytes"));
        u.net_tx += read_num(&format!("{st}/rx_bytes"));
    }
    u
}

/// `stats`'s selection: named containers, or all running (`all`: all).
pub fn stats_targets(root: &Path, names: &[String], all: bool) -> Result<Vec<Container>> {
    if names.is_empty() {
        return Ok(container::list(root)?
            .into_iter()
            .filter(|c| all || c.is_running())
            .collect());
    }
    names
        .iter()
        .map(|n| Ok(container::find(root, n)?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::container::{Config, State, Status};

    fn ctr(name: &str, status: Status, code: i32) -> Container {
        let mut cfg = Config {
            id: "0123456789abcdef".into(),
            name: name.into(),
            image: "busybox".into(),
            ..Default::default()
        };
        cfg.labels.insert("tier".into(), "web".into());
        Container {
            dir: "/nonexistent".into(),
            config: cfg,
            state: State {
                status,
                exit_code: code,
                finished_at: "2020-01-01T00:00:00Z".into(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn filters() {
        let c = ctr("web1", Status::Exited, 3);
        let m = |f: &str| Filter::parse(f).unwrap().matches(&c);
        assert!(m("name=web"));
        assert!(!m("name=db"));
        assert!(m("id=0123"));
        assert!(m("status=exited"));
        assert!(!m("status=running"));
        assert!(m("ancestor=busybox"));
        assert!(m("label=tier"));
        assert!(m("label=tier=web"));
        assert!(!m("label=tier=db"));
        assert!(m("exited=3"));
        assert!(!m("exited=0"));
        assert!(m("network=bridge"));
        assert!(Filter::parse("bogus=1").is_err());
        assert!(Filter::parse("name").is_err());
        assert!(Filter::parse("exited=x").is_err());
        // A recorded "running" whose monitor is gone reads as exited.
        let dead = ctr("x", Status::Running, 0);
        assert!(Filter::parse("status=exited").unwrap().matches(&dead));
    }
}
