//! Where a container gets created: `create(&CreateOptions)` merges the
//! options with the image config, checks everything, then writes the
//! container's directory, bundle and config.json. Nothing is written when
//! a check fails, and a failed write removes what it made.

use anyhow::Context;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::container::{self, Config, Container, State};
use super::error::{EngineError, Result};
use super::hostconfig::{self, HostConfig};
use super::opts::{self, LogOptions, MountSpec, RestartPolicy, Ulimit};
use super::spec::{self, NetNs};
use super::{runtime, volumes};
use crate::image::store::Store;
use crate::image::types::HealthConfig;
use crate::network::{self, NetworkMode, PortMap};
use crate::sys as fsutil;

/// Resource limits, parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    /// Bytes.
    pub memory: Option<i64>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub pids_limit: Option<i64>,
    pub ulimits: Vec<Ulimit>,
}

/// Everything `create` needs, as parsed values (no flag strings).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub image: String,
    pub name: Option<String>,
    /// Replaces the image's CMD when not empty.
    pub command: Vec<String>,
    /// Replaces the image's ENTRYPOINT; `Some("")` clears it.
    pub entrypoint: Option<String>,
    /// `KEY=VALUE`, applied over the image's env in order.
    pub env: Vec<String>,
    pub ports: Vec<PortMap>,
    /// Publish every port the image exposes on a random host port.
    pub publish_all: bool,
    pub mounts: Vec<MountSpec>,
    pub network: NetworkMode,
    pub network_aliases: Vec<String>,
    pub hostname: Option<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub auto_remove: bool,
    pub resources: Resources,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub read_only: bool,
    /// A seccomp profile path or "unconfined".
    pub seccomp: Option<String>,
    pub restart: RestartPolicy,
    pub init: bool,
    pub log: LogOptions,
    /// An OCI runtime path or name (default: hull next to berth).
    pub runtime: Option<String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u64>,
    pub labels: BTreeMap<String, String>,
    /// `--health-*`: a non-empty `test` replaces the image's; non-zero durations replace its.
    pub healthcheck: Option<HealthConfig>,
    /// `--no-healthcheck`: none, whatever the image says.
    pub no_healthcheck: bool,
    /// `--expose`: "port/proto" entries added to the image's.
    pub expose: Vec<String>,
    /// `--volumes-from NAME[:ro|rw]`: (container, readonly override).
    pub volumes_from: Vec<(String, Option<bool>)>,
    /// `--dns`, `--pid`, `--device`, ... (docker's HostConfig).
    pub host: HostConfig,
}

const INIT_PATH: &str = "/sbin/docker-init";
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A statically linked init for `--init` (Debian's tini ships one).
fn find_init() -> Result<String> {
    for p in [
        "/usr/bin/docker-init",
        "/usr/libexec/docker/docker-init",
        "/usr/bin/tini-static",
    ] {
        if Path::new(p).is_file() {
            return Ok(p.to_string());
        }
    }
    crate::invalid!("--init needs a static init binary: install tini (/usr/bin/tini-static)")
}

/// Checks that need no image and no disk: conflicting or meaningless options.
pub fn check(o: &CreateOptions) -> Result<()> {
    if o.auto_remove && o.restart != RestartPolicy::No {
        crate::invalid!("conflicting options: cannot specify both --restart and --rm");
    }
    if !o.network_aliases.is_empty() && !o.network.is_user_defined() {
        crate::invalid!(
            "network-scoped aliases are only supported for user-defined networks (--network-alias with --network {})",
            o.network
        );
    }
    if let Some(c) = o.resources.cpus {
        if !c.is_finite() || c < 0.0 {
            crate::invalid!("invalid --cpus {c}: range of CPUs is from 0.01 to the number of CPUs");
        }
    }
    hostconfig::check_resources(&o.host, o.resources.memory, o.resources.cpus)?;
    if o.host.ip.is_some() && !o.network.is_user_defined() {
        crate::invalid!("user specified IP address is supported on user defined networks only");
    }
    if o.host.mac_address.is_some()
        && matches!(
            o.network,
            NetworkMode::Host | NetworkMode::None | NetworkMode::Container(_)
        )
    {
        crate::invalid!("conflicting options: mac-address and the network mode");
    }
    if o.host.uts == hostconfig::NsMode::Host && o.hostname.is_some() {
        crate::invalid!("conflicting options: hostname and the UTS mode host");
    }
    if o.network == NetworkMode::Host && !o.host.sysctls.keys().all(|k| !k.starts_with("net.")) {
        crate::invalid!("sysctls starting with net.* are not allowed with --network host");
    }
    for (flag, list) in [("--cap-add", &o.cap_add), ("--cap-drop", &o.cap_drop)] {
        for cap in list {
            spec::check_cap(cap).with_context(|| format!("invalid {flag} {cap}"))?;
        }
    }
    Ok(())
}

/// The image's exposed ports added as random host ports (`-P`).
fn publish_exposed(ports: &mut Vec<PortMap>, exposed: &[String]) {
    for e in exposed {
        let (p, proto) = e.split_once('/').unwrap_or((e, "tcp"));
        if let Ok(cp) = p.parse() {
            if !ports
                .iter()
                .any(|x| x.container_port == cp && x.proto == proto)
            {
                ports.push(PortMap {
                    host_ip: "0.0.0.0".into(),
                    host_port: 0,
                    container_port: cp,
                    proto: proto.into(),
                });
            }
        }
    }
}

/// Bind sources must exist (made absolute); named volumes must be valid;
/// image VOLUMEs not covered become anonymous volumes.
fn resolve_mounts(mounts: &mut Vec<MountSpec>, image_volumes: &[String]) -> Result<()> {
    for m in mounts.iter_mut() {
        if m.typ == "bind" {
            let p = Path::new(&m.source);
            if !p.exists() && m.create_source {
                fs::create_dir_all(p)
                    .with_context(|| format!("creating bind source {}", m.source))?;
            }
            if !p.exists() {
                crate::invalid!(
                    "invalid mount config: bind source path does not exist: {}",
                    m.source
                );
            }
            m.source = fs::canonicalize(p)
                .with_context(|| format!("resolving bind source {}", m.source))?
                .to_string_lossy()
                .into_owned();
        } else if m.typ == "volume" && !m.anonymous {
            volumes::valid_name(&m.source)?;
        }
    }
    for dst in image_volumes {
        if !mounts.iter().any(|m| m.target == *dst) {
            mounts.push(MountSpec {
                typ: "volume".into(),
                source: String::new(),
                target: dst.clone(),
                readonly: false,
                anonymous: true,
                options: vec![],
                create_source: false,
            });
        }
    }
    Ok(())
}

/// `--volumes-from`: the other container's volumes and binds, at the same
/// targets, read-only if asked (else as they were there).
fn volumes_from(
    root: &Path,
    mounts: &mut Vec<MountSpec>,
    from: &[(String, Option<bool>)],
) -> Result<()> {
    for (name, ro) in from {
        let other = container::find(root, name)?;
        for m in &other.config.mounts {
            if m.typ == "tmpfs"
                || m.target == INIT_PATH
                || mounts.iter().any(|x| x.target == m.target)
            {
                continue;
            }
            mounts.push(MountSpec {
                // Shared, so never removed with this container.
                anonymous: false,
                readonly: ro.unwrap_or(m.readonly),
                ..m.clone()
            });
        }
    }
    Ok(())
}

/// Checks links and resolves `host-gateway` in `--add-host`.
fn resolve_host(root: &Path, h: &HostConfig) -> Result<HostConfig> {
    let mut h = h.clone();
    for (name, _) in &h.links {
        if container::find(root, name).is_err() {
            crate::invalid!("could not get container for {name}");
        }
    }
    if h.extra_hosts.iter().any(|(_, ip)| ip == "host-gateway") {
        let gw = super::etc_files::host_gateway(root)?;
        for (_, ip) in h.extra_hosts.iter_mut() {
            if ip == "host-gateway" {
                *ip = gw.clone();
            }
        }
    }
    Ok(h)
}

/// The process: ENTRYPOINT + CMD after the options override the image's.
pub fn process_args(
    o: &CreateOptions,
    image_entrypoint: &[String],
    image_cmd: &[String],
) -> Vec<String> {
    let entrypoint: Vec<String> = match &o.entrypoint {
        Some(e) if e.is_empty() => vec![],
        Some(e) => vec![e.clone()],
        None => image_entrypoint.to_vec(),
    };
    let cmd: Vec<String> = if !o.command.is_empty() {
        o.command.clone()
    } else if o.entrypoint.is_some() {
        vec![]
    } else {
        image_cmd.to_vec()
    };
    entrypoint.into_iter().chain(cmd).collect()
}

/// PATH, then the image's env, then the options' env; TERM for a tty.
pub fn process_env(o: &CreateOptions, image_env: &[String]) -> Vec<String> {
    let mut env = opts::merge_env(&[DEFAULT_PATH.to_string()], image_env);
    env = opts::merge_env(&env, &o.env);
    if o.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    env
}

/// Which network namespace the bundle names.
pub(super) fn netns_for(root: &Path, cfg: &Config) -> Result<NetNs> {
    Ok(match &cfg.network {
        NetworkMode::Host => NetNs::Host,
        NetworkMode::Container(other) => {
            let other = container::find(root, other)?;
            let p = network::netns::path(root, other.id());
            if p.exists() {
                NetNs::Path(p)
            } else {
                NetNs::Path(format!("/proc/{}/ns/net", other.state.pid).into())
            }
        }
        _ => NetNs::Path(network::netns::path(root, &cfg.id)),
    })
}

fn check_network(root: &Path, mode: &NetworkMode) -> Result<()> {
    if let NetworkMode::Container(other) = mode {
        let c = container::find(root, other)?;
        if !c.is_running() {
            crate::invalid!("cannot join network of a non running container: {other}");
        }
        return Ok(());
    }
    Ok(network::validate(root, mode)?)
}

/// Ports other containers of this root hold (running, or to be restarted).
fn ports_in_use(root: &Path) -> Result<Vec<PortMap>> {
    Ok(container::list(root)?
        .into_iter()
        .filter(|c| c.is_running() || c.config.restart != RestartPolicy::No)
        .flat_map(|c| c.config.ports)
        .collect())
}

/// The health check in force: the image's, with the flags' values over it (docker's merge).
fn healthcheck(o: &CreateOptions, image: Option<&HealthConfig>) -> Option<HealthConfig> {
    if o.no_healthcheck {
        return None;
    }
    let mut hc = image.cloned().unwrap_or_default();
    if let Some(f) = &o.healthcheck {
        if !f.test.is_empty() {
            hc.test = f.test.clone();
        }
        for (dst, src) in [
            (&mut hc.interval, f.interval),
            (&mut hc.timeout, f.timeout),
            (&mut hc.start_period, f.start_period),
            (&mut hc.start_interval, f.start_interval),
        ] {
            if src != 0 {
                *dst = src;
            }
        }
        if f.retries != 0 {
            hc.retries = f.retries;
        }
    }
    match hc.test.first().map(String::as_str) {
        None | Some("NONE") => None,
        Some(_) => Some(hc),
    }
}

/// docker: the host's network (or UTS namespace) comes with the host's name.
fn hostname_for(o: &CreateOptions, host: &HostConfig, id: &str) -> String {
    match &o.hostname {
        Some(h) => h.clone(),
        None if o.network == NetworkMode::Host || host.uts == hostconfig::NsMode::Host => {
            nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|_| id[..12].to_string())
        }
        None => id[..12].to_string(),
    }
}

/// Creates a container (not started). Returns its record.
pub fn create(root: &Path, o: &CreateOptions) -> Result<Container> {
    check(o)?;
    let store = Store::open(root)?;
    let root = store.root().to_path_buf();
    let img = store.rootfs(&o.image)?;
    let icfg = img.config.config.clone().unwrap_or_default();
    let rt = runtime::resolve(o.runtime.as_deref())?;
    let mut exposed: Vec<String> = icfg
        .exposed_ports
        .as_ref()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    for e in &o.expose {
        if !exposed.contains(e) {
            exposed.push(e.clone());
        }
    }
    let mut ports = o.ports.clone();
    if o.publish_all {
        publish_exposed(&mut ports, &exposed);
    }
    let mut mounts = o.mounts.clone();
    let image_volumes: Vec<String> = icfg
        .volumes
        .as_ref()
        .map(|v| v.keys().cloned().collect())
        .unwrap_or_default();
    resolve_mounts(&mut mounts, &image_volumes)?;
    let init_bin = if o.init { Some(find_init()?) } else { None };
    let env = process_env(o, icfg.env.as_deref().unwrap_or(&[]));
    let mut args = process_args(
        o,
        icfg.entrypoint.as_deref().unwrap_or(&[]),
        icfg.cmd.as_deref().unwrap_or(&[]),
    );
    if args.is_empty() {
        crate::invalid!("no command specified for image {}", o.image);
    }
    if let Some(init) = &init_bin {
        // docker's --init: a static tini as pid 1 that reaps and forwards signals.
        args.splice(0..0, [INIT_PATH.to_string(), "--".to_string()]);
        mounts.push(MountSpec {
            typ: "bind".into(),
            source: init.clone(),
            target: INIT_PATH.into(),
            readonly: true,
            anonymous: false,
            options: vec![],
            create_source: false,
        });
    }

    let _lock = fsutil::lock(&container::lock_path(&root))?;
    super::create_txn::sweep_locked(&root);
    let name = match &o.name {
        Some(n) => {
            container::valid_name(n)?;
            if let Some(other) = container::name_taken(&root, n)? {
                return Err(EngineError::NameConflict {
                    name: n.clone(),
                    id: other,
                });
            }
            n.clone()
        }
        None => container::random_name(&root),
    };
    check_network(&root, &o.network)?;
    network::check_ports(&mut ports, &ports_in_use(&root)?)?;
    volumes_from(&root, &mut mounts, &o.volumes_from)?;
    if let (Some(ip), Some(net)) = (o.host.ip, o.network.network()) {
        network::ipam::check_in_subnet(&network::load(&root, net)?, ip)?;
    }
    let host = resolve_host(&root, &o.host)?;
    let id = fsutil::random_id();
    let hostname = hostname_for(o, &host, &id);
    let cfg = Config {
        id: id.clone(),
        name,
        image: o.image.clone(),
        image_id: img.id.to_string(),
        created: fsutil::now_rfc3339(),
        args,
        env,
        workdir: o
            .workdir
            .clone()
            .or(icfg.working_dir.clone())
            .unwrap_or_default(),
        user: o.user.clone().or(icfg.user.clone()).unwrap_or_default(),
        hostname,
        tty: o.tty,
        interactive: o.interactive,
        auto_remove: o.auto_remove,
        ports,
        exposed,
        mounts,
        network: o.network.clone(),
        networks: vec![],
        aliases: o.network_aliases.clone(),
        memory: o.resources.memory,
        cpus: o.resources.cpus,
        cpu_shares: o.resources.cpu_shares,
        pids_limit: o.resources.pids_limit,
        ulimits: o.resources.ulimits.clone(),
        cap_add: o.cap_add.clone(),
        cap_drop: o.cap_drop.clone(),
        privileged: o.privileged,
        read_only: o.read_only,
        seccomp: o.seccomp.clone(),
        restart: o.restart,
        init: o.init,
        log_max_size: o.log.max_size,
        log_max_file: o.log.max_file,
        runtime: rt,
        stop_signal: o
            .stop_signal
            .clone()
            .or(icfg.stop_signal.clone())
            .unwrap_or_else(|| "SIGTERM".into()),
        stop_timeout: o.stop_timeout.unwrap_or(10),
        labels: o.labels.clone(),
        healthcheck: healthcheck(o, icfg.healthcheck.as_ref()),
        host,
    };
    let dir = container::containers_dir(&root).join(&id);
    let c = Container {
        dir,
        config: cfg,
        state: State::default(),
    };
    let c = super::create_txn::write(&root, c, &img.lowerdirs)?;
    super::events::container(&root, &c, "create", &[]);
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> CreateOptions {
        CreateOptions {
            image: "img".into(),
            ..Default::default()
        }
    }

    #[test]
    fn args_merge_like_docker() {
        let ep = ["/entry".to_string()];
        let cmd = ["serve".to_string()];
        assert_eq!(process_args(&opts(), &ep, &cmd), ["/entry", "serve"]);
        let o = CreateOptions {
            command: vec!["sh".into()],
            ..opts()
        };
        assert_eq!(process_args(&o, &ep, &cmd), ["/entry", "sh"]);
        let o = CreateOptions {
            entrypoint: Some(String::new()),
            ..opts()
        };
        assert!(process_args(&o, &ep, &cmd).is_empty());
        let o = CreateOptions {
            entrypoint: Some("/bin/x".into()),
            ..opts()
        };
        assert_eq!(process_args(&o, &ep, &cmd), ["/bin/x"]);
    }

    #[test]
    fn env_layers() {
        let o = CreateOptions {
            env: vec!["A=2".into()],
            tty: true,
            ..opts()
        };
        let env = process_env(&o, &["A=1".into(), "B=1".into()]);
        assert_eq!(env[0], DEFAULT_PATH);
        assert!(env.contains(&"A=2".to_string()) && !env.contains(&"A=1".to_string()));
        assert!(env.contains(&"TERM=xterm".to_string()));
    }

    #[test]
    fn refused_combinations() {
        let o = CreateOptions {
            auto_remove: true,
            restart: RestartPolicy::Always,
            ..opts()
        };
        assert!(matches!(check(&o), Err(EngineError::Invalid(_))));
        let o = CreateOptions {
            network_aliases: vec!["a".into()],
            ..opts()
        };
        assert!(check(&o).is_err());
        let o = CreateOptions {
            network_aliases: vec!["a".into()],
            network: NetworkMode::User("n".into()),
            ..opts()
        };
        assert!(check(&o).is_ok());
        let mut o = opts();
        o.resources.cpus = Some(-1.0);
        assert!(check(&o).is_err());
        o.resources.cpus = None;
        o.cap_add = vec!["BOGUS".into()];
        assert!(check(&o).is_err());
    }

    #[test]
    fn publish_all_skips_mapped() {
        let mut ports = vec![PortMap {
            host_ip: "0.0.0.0".into(),
            host_port: 8080,
            container_port: 80,
            proto: "tcp".into(),
        }];
        publish_exposed(&mut ports, &["80/tcp".into(), "53/udp".into()]);
        assert_eq!(ports.len(), 2);
        assert_eq!((ports[1].container_port, ports[1].host_port), (53, 0));
    }
}
