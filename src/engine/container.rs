//! Container records on disk: `<root>/containers/<id>/{config.json,state.json}`.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

use super::error::EngineError;
use super::opts::{MountSpec, RestartPolicy, Ulimit};
use crate::image::types::HealthConfig;
use crate::network::{Endpoint, Member, NetworkMode, PortMap};
use crate::sys::{read_json, write_json};

/// What the user asked for, fixed at create time.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Config {
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub created: String,
    /// The process to run: entrypoint + cmd after merging with the image.
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub workdir: String,
    pub user: String,
    pub hostname: String,
    pub tty: bool,
    pub interactive: bool,
    pub auto_remove: bool,
    pub ports: Vec<PortMap>,
    pub exposed: Vec<String>,
    pub mounts: Vec<MountSpec>,
    pub network: NetworkMode,
    #[serde(default)]
    pub networks: Vec<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    pub memory: Option<i64>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub pids_limit: Option<i64>,
    pub ulimits: Vec<Ulimit>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub read_only: bool,
    pub seccomp: Option<String>,
    pub restart: RestartPolicy,
    pub init: bool,
    pub log_max_size: Option<u64>,
    pub log_max_file: u32,
    pub runtime: String,
    pub stop_signal: String,
    pub stop_timeout: u64,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The health check in force: the image's HEALTHCHECK with the `--health-*` flags over it;
    /// None when there is none or `--no-healthcheck` / `NONE` disabled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    /// The run flags past the basics (`--dns`, `--pid`, `--device`, ...).
    #[serde(default)]
    pub host: super::hostconfig::HostConfig,
}

/// What changes while the container lives; written by the monitor and,
/// for pause/unpause and start, by the CLI.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    pub monitor_pid: i32,
    pub exit_code: i32,
    pub started_at: String,
    pub finished_at: String,
    pub oom_killed: bool,
    pub restart_count: u32,
    pub error: String,
    /// network name -> (ip, prefix, gateway, mac)
    #[serde(default)]
    pub endpoints: std::collections::BTreeMap<String, Endpoint>,
    /// Present while a container with a health check runs (docker's `.State.Health`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// docker's `.State.Health`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: u32,
    /// The last few probes, oldest first (docker keeps 5).
    pub log: Vec<HealthProbe>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    #[default]
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One run of the check command.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct HealthProbe {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// The lifecycle state as recorded (docker's State.Status words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(from = "String", into = "String")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// States in which the container's process is meant to exist.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

impl From<String> for Status {
    fn from(s: String) -> Status {
        match s.as_str() {
            "running" => Status::Running,
            "paused" => Status::Paused,
            "restarting" => Status::Restarting,
            "exited" => Status::Exited,
            "dead" => Status::Dead,
            _ => Status::Created,
        }
    }
}

impl From<Status> for String {
    fn from(s: Status) -> String {
        s.as_str().to_string()
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Container {
    pub dir: PathBuf,
    pub config: Config,
    pub state: State,
}

pub fn containers_dir(root: &Path) -> PathBuf {
    root.join("containers")
}

pub fn lock_path(root: &Path) -> PathBuf {
    root.join("containers.lock")
}

impl Container {
    pub fn load_dir(dir: &Path) -> Result<Container> {
        let config: Config = read_json(&dir.join("config.json"))?;
        let state: State = read_json(&dir.join("state.json")).unwrap_or_default();
        Ok(Container {
            dir: dir.to_path_buf(),
            config,
            state,
        })
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    pub fn short_id(&self) -> &str {
        &self.config.id[..12.min(self.config.id.len())]
    }

    pub fn save_config(&self) -> Result<()> {
        write_json(&self.dir.join("config.json"), &self.config)
    }

    pub fn save_state(&self) -> Result<()> {
        write_json(&self.dir.join("state.json"), &self.state)
    }

    /// Held around a reload-change-save of state.json by writers that run while the monitor
    /// does (the health check, pause, network connect).
    pub fn lock_state(&self) -> Result<crate::sys::FileLock> {
        crate::sys::lock(&self.dir.join("state.lock"))
    }

    pub fn reload_state(&mut self) {
        if let Ok(s) = read_json(&self.dir.join("state.json")) {
            self.state = s;
        }
    }

    /// Running: recorded live, and its monitor lives or, if that died, the runtime says the
    /// container's processes still exist (issue 15: a dead monitor must not hide a container).
    pub fn is_running(&self) -> bool {
        self.state.status.is_live() && (self.monitor_alive() || self.orphan_alive())
    }

    /// The berth root this container's directory is in (`<root>/containers/<id>`).
    pub fn root(&self) -> &Path {
        self.dir
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("/"))
    }

    /// What the runtime says of the container, asked through its command line (never cgroupfs).
    pub fn runtime_state(&self) -> Option<super::runtime::RuntimeState> {
        super::runtime::Runtime::new(&self.config.runtime, self.root()).state(self.id())
    }

    /// The monitor is gone but the container's processes are not: an orphan that
    /// `recover::adopt` gives a new monitor.
    pub fn orphan_alive(&self) -> bool {
        !self.monitor_alive() && self.runtime_state().is_some_and(|s| s.is_alive())
    }

    /// The fields the network code needs.
    pub fn net_member(&self) -> Member<'_> {
        Member {
            id: &self.config.id,
            name: &self.config.name,
            mode: &self.config.network,
            networks: &self.config.networks,
            aliases: &self.config.aliases,
            ports: &self.config.ports,
            ip: self.config.host.ip,
            mac: self.config.host.mac_address,
            ips: &self.config.host.network_ips,
            dns: &self.config.host.dns,
        }
    }

    /// The monitor is alive (created-and-waiting or running). The pid must still be a
    /// monitor of this container: after a monitor's death its pid may be reused.
    pub fn monitor_alive(&self) -> bool {
        let pid = self.state.monitor_pid;
        if !crate::sys::pid_alive(pid) {
            return false;
        }
        match fs::read(format!("/proc/{pid}/cmdline")) {
            Ok(cl) => {
                let cl = String::from_utf8_lossy(&cl);
                cl.contains("__monitor") && cl.contains(self.id())
            }
            // Gone between the two looks.
            Err(_) => false,
        }
    }

    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }
    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("bundle").join("rootfs")
    }
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}-json.log", self.config.id))
    }
    pub fn attach_sock(&self) -> PathBuf {
        self.dir.join("attach.sock")
    }
    pub fn stop_marker(&self) -> PathBuf {
        self.dir.join("stop-requested")
    }

    /// docker's STATUS column.
    pub fn status_text(&self) -> String {
        status_text(&self.state, self.is_running())
    }

    /// docker's State.Status.
    pub fn docker_status(&self) -> Status {
        docker_status(self.state.status, self.is_running())
    }
}

/// docker's STATUS column for a record, given whether its monitor lives.
pub fn status_text(st: &State, running: bool) -> String {
    let ago = |t: &str| human_duration(t);
    if running {
        return match st.status {
            Status::Restarting => {
                format!("Restarting ({}) {} ago", st.exit_code, ago(&st.finished_at))
            }
            Status::Paused => format!("Up {} (Paused)", ago(&st.started_at)),
            _ => match &st.health {
                Some(h) if h.status == HealthStatus::Starting => {
                    format!("Up {} (health: starting)", ago(&st.started_at))
                }
                Some(h) => format!("Up {} ({})", ago(&st.started_at), h.status.as_str()),
                None => format!("Up {}", ago(&st.started_at)),
            },
        };
    }
    match st.status {
        Status::Created => "Created".into(),
        _ if st.finished_at.is_empty() => "Created".into(),
        _ => format!("Exited ({}) {} ago", st.exit_code, ago(&st.finished_at)),
    }
}

/// docker's State.Status: a live state whose monitor died reads as exited.
pub fn docker_status(recorded: Status, running: bool) -> Status {
    match recorded {
        Status::Paused | Status::Restarting if running => recorded,
        _ if running => Status::Running,
        Status::Running | Status::Paused | Status::Restarting => Status::Exited,
        s => s,
    }
}

/// "5 seconds", "About a minute", ... since an RFC 3339 time.
pub fn human_duration(t: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(t) else {
        return "Less than a second".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{secs} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", secs / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172799 => format!("{} hours", secs / 3600),
        _ => format!("{} days", secs / 86400),
    }
}

pub fn list(root: &Path) -> Result<Vec<Container>> {
    let dir = containers_dir(root);
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(&dir) else {
        return Ok(out);
    };
    for e in rd.flatten() {
        // `.creating-*`: a create in progress or killed midway (see `create_txn`).
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if e.path().join("config.json").exists() {
            if let Ok(c) = Container::load_dir(&e.path()) {
                out.push(c);
            }
        }
    }
    out.sort_by(|a, b| b.config.created.cmp(&a.config.created));
    Ok(out)
}

/// By full name, full ID or unique ID prefix, as docker resolves them.
pub fn find(root: &Path, key: &str) -> Result<Container> {
    let key = key.trim_start_matches('/');
    if key.is_empty() {
        return Err(EngineError::NoSuchContainer(format!("{key:?}")).into());
    }
    let all = list(root)?;
    if let Some(c) = all
        .iter()
        .find(|c| c.config.id == key || c.config.name == key)
    {
        return Ok(c.clone());
    }
    let hits: Vec<_> = all
        .iter()
        .filter(|c| c.config.id.starts_with(key))
        .collect();
    match hits.len() {
        1 => Ok(hits[0].clone()),
        0 => Err(EngineError::NoSuchContainer(key.to_string()).into()),
        _ => Err(EngineError::AmbiguousId(key.to_string()).into()),
    }
}

pub fn name_taken(root: &Path, name: &str) -> Result<Option<String>> {
    Ok(list(root)?
        .into_iter()
        .find(|c| c.config.name == name)
        .map(|c| c.config.id))
}

/// docker's generated names: adjective_surname.
pub fn random_name(root: &Path) -> String {
    const A: &[&str] = &[
        "admiring",
        "brave",
        "clever",
        "dazzling",
        "eager",
        "focused",
        "gallant",
        "happy",
        "jolly",
        "keen",
        "lucid",
        "modest",
        "nifty",
        "optimistic",
        "quirky",
        "serene",
    ];
    const B: &[&str] = &[
        "hopper", "lovelace", "turing", "curie", "darwin", "euler", "gauss", "knuth", "noether",
        "pike", "ritchie", "thompson", "torvalds", "wozniak", "yalow", "zuse",
    ];
    loop {
        let id = crate::sys::random_id();
        let b = hex::decode(&id[..4]).unwrap_or_else(|_| vec![0, 0]);
        let n = format!(
            "{}_{}",
            A[b[0] as usize % A.len()],
            B[b[1] as usize % B.len()]
        );
        if matches!(name_taken(root, &n), Ok(None)) {
            return n;
        }
    }
}

pub fn valid_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok {
        return Err(EngineError::Invalid(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        ))
        .into());
    }
    Ok(())
}

/// Reads the exit code etc. from disk, waiting for the monitor to settle.
pub fn reload(c: &Container) -> Result<Container> {
    Container::load_dir(&c.dir).with_context(|| format!("container {}", c.config.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words() {
        let mut st = State::default();
        assert_eq!(status_text(&st, false), "Created");
        st.status = Status::Exited;
        st.exit_code = 3;
        st.finished_at = crate::sys::now_rfc3339();
        assert_eq!(status_text(&st, false), "Exited (3) Less than a second ago");
        st.status = Status::Paused;
        st.started_at = crate::sys::now_rfc3339();
        assert!(status_text(&st, true).ends_with("(Paused)"));
        assert_eq!(docker_status(Status::Running, false), Status::Exited);
        assert_eq!(docker_status(Status::Paused, true), Status::Paused);
        assert_eq!(docker_status(Status::Created, false), Status::Created);
        let j = serde_json::to_string(&Status::Restarting).unwrap();
        assert_eq!(j, "\"restarting\"");
        assert_eq!(Status::from(String::new()), Status::Created);
    }

    #[test]
    fn names() {
        assert!(valid_name("web-1.a_b").is_ok());
        assert!(valid_name("-web").is_err());
        assert!(valid_name("").is_err());
    }
}
