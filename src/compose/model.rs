//! The resolved compose project: interpolated, merged, paths absolute, defaults applied.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Project {
    pub name: String,
    /// The directory relative paths were resolved against.
    pub working_dir: PathBuf,
    pub config_files: Vec<PathBuf>,
    /// Enabled services (after profiles).
    pub services: BTreeMap<String, Service>,
    /// Services defined but left out by profiles.
    pub disabled_services: BTreeMap<String, Service>,
    pub networks: BTreeMap<String, Network>,
    pub volumes: BTreeMap<String, Volume>,
    pub secrets: BTreeMap<String, FileObject>,
    pub configs: BTreeMap<String, FileObject>,
    /// Things compose warns about (unset variables, obsolete `version`).
    pub warnings: Vec<String>,
}

impl Project {
    /// `--scale SERVICE=N`: the same checks as `scale:` in the file.
    pub fn set_scale(&mut self, service: &str, n: u32) -> Result<(), super::ComposeError> {
        let s = self
            .services
            .get_mut(service)
            .ok_or_else(|| super::ComposeError::NotFound(format!("no such service: {service}")))?;
        if n > 1 && s.container_name.is_some() {
            return Err(super::ComposeError::invalid(
                &format!("services.{service}.container_name"),
                format!("a fixed container name cannot be used with {n} replicas"),
            ));
        }
        s.replicas = n;
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Service {
    pub name: String,
    pub image: Option<String>,
    pub build: Option<Build>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// `None` values: named without a value and absent from the environment, so not set.
    pub environment: BTreeMap<String, Option<String>>,
    pub env_file: Vec<EnvFile>,
    pub ports: Vec<Port>,
    pub expose: Vec<String>,
    pub volumes: Vec<Mount>,
    pub tmpfs: Vec<String>,
    pub networks: BTreeMap<String, ServiceNetwork>,
    pub network_mode: Option<String>,
    pub depends_on: BTreeMap<String, Dependency>,
    pub healthcheck: Option<Healthcheck>,
    pub restart: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    /// `host:ip` pairs in file order.
    pub extra_hosts: Vec<(String, String)>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub read_only: bool,
    pub tty: bool,
    pub stdin_open: bool,
    pub ulimits: BTreeMap<String, Ulimit>,
    pub sysctls: BTreeMap<String, String>,
    pub init: Option<bool>,
    pub stop_signal: Option<String>,
    pub stop_grace_period: Option<Duration>,
    pub mem_limit: Option<u64>,
    pub mem_reservation: Option<u64>,
    pub shm_size: Option<u64>,
    pub cpus: Option<f64>,
    pub pids_limit: Option<i64>,
    pub deploy: Option<Deploy>,
    /// Number of containers: `deploy.replicas` or `scale`, 1 when neither is given.
    pub replicas: u32,
    pub secrets: Vec<FileRef>,
    pub configs: Vec<FileRef>,
    pub container_name: Option<String>,
    pub pull_policy: Option<PullPolicy>,
    pub profiles: Vec<String>,
    /// docker's HostConfig keys, kept as written; `ops::hostcfg` checks them with `berth run`'s
    /// parsers.
    pub dns_opt: Vec<String>,
    pub group_add: Vec<String>,
    pub devices: Vec<String>,
    pub links: Vec<String>,
    pub external_links: Vec<String>,
    pub mac_address: Option<String>,
    pub cpuset: Option<String>,
    pub cgroup_parent: Option<String>,
    pub pid: Option<String>,
    pub ipc: Option<String>,
    /// Bytes, or -1 for unlimited swap.
    pub memswap_limit: Option<i64>,
    pub oom_kill_disable: bool,
    pub oom_score_adj: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<i64>,
    /// `blkio_config.weight` (the per-device and bps/iops limits are refused at parse).
    pub blkio_weight: Option<i64>,
}

impl Service {
    /// Memory limit: `mem_limit`, else `deploy.resources.limits.memory` (validation refuses the
    /// two set to different values).
    pub fn memory_limit(&self) -> Option<u64> {
        self.mem_limit
            .or_else(|| self.deploy.as_ref().and_then(|d| d.limits.memory))
    }

    /// CPU limit in CPUs: `cpus`, else `deploy.resources.limits.cpus`.
    pub fn cpu_limit(&self) -> Option<f64> {
        self.cpus
            .or_else(|| self.deploy.as_ref().and_then(|d| d.limits.cpus))
    }

    /// Pids limit: `pids_limit`, else `deploy.resources.limits.pids`.
    pub fn pids(&self) -> Option<i64> {
        self.pids_limit
            .or_else(|| self.deploy.as_ref().and_then(|d| d.limits.pids))
    }

    /// The restart policy in docker's terms (`no`, `always`, `on-failure[:N]`,
    /// `unless-stopped`): `restart`, else from `deploy.restart_policy`, else `no`.
    pub fn restart_policy(&self) -> String {
        if let Some(r) = &self.restart {
            return r.clone();
        }
        let Some(d) = &self.deploy else {
            return "no".into();
        };
        match (d.restart_condition.as_deref(), d.restart_max_attempts) {
            (Some("none"), _) => "no".into(),
            (Some("on-failure"), Some(n)) => format!("on-failure:{n}"),
            (Some("on-failure"), None) => "on-failure".into(),
            (Some(_), _) => "always".into(),
            (None, _) => "no".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Build {
    /// Absolute directory.
    pub context: PathBuf,
    pub dockerfile: Option<String>,
    pub dockerfile_inline: Option<String>,
    pub args: BTreeMap<String, Option<String>>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub no_cache: bool,
    pub pull: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnvFile {
    pub path: PathBuf,
    pub required: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// One published or exposed container port; short-syntax ranges are expanded one per port.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub name: Option<String>,
    pub target: u16,
    /// Host port range (`start == end` for one port); `None`: an ephemeral host port.
    pub published: Option<(u16, u16)>,
    pub host_ip: Option<String>,
    pub protocol: Protocol,
    /// `ingress` (default) or `host`.
    pub mode: String,
    pub app_protocol: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    Volume,
    Bind,
    Tmpfs,
}

impl MountType {
    pub fn as_str(self) -> &'static str {
        match self {
            MountType::Volume => "volume",
            MountType::Bind => "bind",
            MountType::Tmpfs => "tmpfs",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    pub kind: MountType,
    /// Volume name as written in the file (a key of `Project::volumes`), an absolute host path
    /// for binds; `None` for anonymous volumes and tmpfs.
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
    /// Bind: `rprivate`, `shared`, ...
    pub propagation: Option<String>,
    /// Bind: create the host directory if missing (short syntax does).
    pub create_host_path: bool,
    /// Bind: SELinux relabel `z` or `Z`.
    pub selinux: Option<char>,
    /// Volume: do not copy image content into a new volume.
    pub nocopy: bool,
    pub subpath: Option<String>,
    pub tmpfs_size: Option<u64>,
    pub tmpfs_mode: Option<u32>,
}

impl Mount {
    pub fn new(kind: MountType, source: Option<String>, target: String) -> Mount {
        Mount {
            kind,
            source,
            target,
            read_only: false,
            propagation: None,
            create_host_path: false,
            selinux: None,
            nocopy: false,
            subpath: None,
            tmpfs_size: None,
            tmpfs_mode: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceNetwork {
    pub aliases: Vec<String>,
    pub ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Started => "service_started",
            Condition::Healthy => "service_healthy",
            Condition::CompletedSuccessfully => "service_completed_successfully",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dependency {
    pub condition: Condition,
    /// Restart this service when the dependency is restarted.
    pub restart: bool,
    /// `false`: a missing or disabled dependency is skipped instead of being an error.
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Healthcheck {
    /// `["CMD", ...]`, `["CMD-SHELL", cmd]` or `["NONE"]`; empty: inherit the image's.
    pub test: Vec<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u64>,
    pub disable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Deploy {
    pub replicas: Option<u32>,
    pub limits: Resources,
    pub reservations: Resources,
    /// From `deploy.restart_policy`: `none`, `on-failure`, `any`.
    pub restart_condition: Option<String>,
    pub restart_max_attempts: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resources {
    pub cpus: Option<f64>,
    pub memory: Option<u64>,
    pub pids: Option<i64>,
}

/// A service's use of a secret or config.
#[derive(Debug, Clone, PartialEq)]
pub struct FileRef {
    pub source: String,
    /// Absolute path in the container (defaults applied: `/run/secrets/<source>` for secrets,
    /// `/<source>` for configs).
    pub target: String,
    pub uid: Option<String>,
    pub gid: Option<String>,
    pub mode: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    Always,
    Never,
    Missing,
    Build,
}

impl PullPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "always",
            PullPolicy::Never => "never",
            PullPolicy::Missing => "missing",
            PullPolicy::Build => "build",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Network {
    /// The engine-level name: `<project>_<key>` unless `name:` or external.
    pub name: String,
    pub external: bool,
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub subnets: Vec<Subnet>,
    pub internal: bool,
    pub enable_ipv6: bool,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Subnet {
    pub subnet: String,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Volume {
    /// The engine-level name: `<project>_<key>` unless `name:` or external.
    pub name: String,
    pub external: bool,
    pub driver: Option<String>,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// A top-level secret or config.
#[derive(Debug, Clone, PartialEq)]
pub struct FileObject {
    pub name: String,
    pub source: FileSource,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FileSource {
    /// Absolute host path.
    File(PathBuf),
    /// The value of this variable in the project environment.
    Environment(String),
    /// Inline content (configs only).
    Content(String),
}
