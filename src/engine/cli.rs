//! berth's container subcommands (docker's names, flags and output).

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::container::{self, Config, Container, State};
use super::fsutil::{self, now_rfc3339};
use super::opts::{self, MountSpec, PortMap};
use super::{attach, logs, monitor, rootfs, runtime, spec, volumes};
use crate::image::store::Store;

#[derive(Args, Clone, Default)]
pub struct RunArgs {
    /// Run in the background and print the container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    #[arg(long)]
    pub env_file: Vec<String>,
    /// Publish a port: [ip:][hostPort:]containerPort[/proto]
    #[arg(short, long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random host ports
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    #[arg(long)]
    pub mount: Vec<String>,
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// bridge, host, none, container:<name> or a network name
    #[arg(long, alias = "net", default_value = "bridge")]
    pub network: String,
    #[arg(long)]
    pub network_alias: Vec<String>,
    #[arg(long)]
    pub hostname: Option<String>,
    #[arg(long)]
    pub entrypoint: Option<String>,
    #[arg(short, long)]
    pub workdir: Option<String>,
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short, long)]
    pub memory: Option<String>,
    #[arg(long)]
    pub cpus: Option<f64>,
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<u64>,
    #[arg(long)]
    pub pids_limit: Option<i64>,
    #[arg(long)]
    pub ulimit: Vec<String>,
    #[arg(long)]
    pub cap_add: Vec<String>,
    #[arg(long)]
    pub cap_drop: Vec<String>,
    #[arg(long)]
    pub privileged: bool,
    #[arg(long)]
    pub read_only: bool,
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// no, on-failure[:N], always, unless-stopped
    #[arg(long, default_value = "no")]
    pub restart: String,
    #[arg(long)]
    pub init: bool,
    /// max-size=SIZE, max-file=N
    #[arg(long)]
    pub log_opt: Vec<String>,
    /// OCI runtime: a path or a name (default: hull next to berth)
    #[arg(long)]
    pub runtime: Option<String>,
    #[arg(long)]
    pub stop_signal: Option<String>,
    #[arg(long)]
    pub stop_timeout: Option<u64>,
    #[arg(short, long)]
    pub label: Vec<String>,
    pub image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args)]
pub struct PsArgs {
    #[arg(short, long)]
    pub all: bool,
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long)]
    pub no_trunc: bool,
    /// name=, id=, status=, ancestor=, label=
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Show the latest created container
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Go-template subset per container: {{.ID}} {{.Names}} {{.Image}} {{.Command}}
    /// {{.CreatedAt}} {{.Status}} {{.State}} {{.Ports}}
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args)]
pub struct LogsArgs {
    #[arg(short, long)]
    pub follow: bool,
    #[arg(short = 'n', long)]
    pub tail: Option<String>,
    #[arg(short, long)]
    pub timestamps: bool,
    pub container: String,
}

#[derive(Args)]
pub struct ExecArgs {
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(short, long)]
    pub tty: bool,
    #[arg(short, long)]
    pub detach: bool,
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short, long)]
    pub workdir: Option<String>,
    #[arg(long)]
    pub privileged: bool,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Create a new container
    Create(RunArgs),
    /// Start one or more stopped containers
    Start {
        #[arg(short, long)]
        attach: bool,
        #[arg(short, long)]
        interactive: bool,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Stop one or more running containers
    Stop {
        #[arg(short, long)]
        time: Option<u64>,
        #[arg(short, long)]
        signal: Option<String>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Restart one or more containers
    Restart {
        #[arg(short, long)]
        time: Option<u64>,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Kill one or more running containers
    Kill {
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove one or more containers
    Rm(RmArgs),
    /// List containers
    Ps(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Attach to a running container's stdio
    Attach {
        #[arg(long)]
        no_stdin: bool,
        container: String,
    },
    /// Display detailed information on containers (or images)
    Inspect {
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Display the running processes of a container
    Top { container: String },
    /// Display resource usage statistics
    Stats {
        #[arg(long)]
        no_stream: bool,
        #[arg(short, long)]
        all: bool,
        containers: Vec<String>,
    },
    /// Copy files between a container and the host (CONTAINER:PATH)
    Cp { src: String, dst: String },
    /// Show changed files in a container's filesystem
    Diff { container: String },
    /// List port mappings of a container
    Port {
        container: String,
        private_port: Option<String>,
    },
    /// Rename a container
    Rename { container: String, new_name: String },
    /// Block until containers stop, then print their exit codes
    Wait {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Pause all processes within containers
    Pause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Unpause all processes within containers
    Unpause {
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCmd),
    #[command(name = "__monitor", hide = true)]
    Monitor {
        id: String,
        #[arg(long)]
        wait_attach: bool,
    },
}

#[derive(Args)]
pub struct RmArgs {
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes too
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Subcommand)]
pub enum ContainerCmd {
    /// Remove all stopped containers
    Prune {
        #[arg(short, long)]
        force: bool,
    },
    Ls(PsArgs),
    Rm(RmArgs),
    Run(RunArgs),
    Create(RunArgs),
    Logs(LogsArgs),
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(Subcommand)]
pub enum VolumeCmd {
    Create {
        name: Option<String>,
    },
    Ls {
        #[arg(short, long)]
        quiet: bool,
    },
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    Rm {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    Prune {
        /// Also named volumes, not only anonymous ones
        #[arg(short, long)]
        all: bool,
        #[arg(short, long)]
        force: bool,
    },
}

/// Runs a container command; returns the process exit code.
pub fn dispatch(root: &Path, cmd: Cmd) -> Result<i32> {
    match cmd {
        Cmd::Run(a) | Cmd::Container(ContainerCmd::Run(a)) => run(root, a),
        Cmd::Create(a) | Cmd::Container(ContainerCmd::Create(a)) => {
            let c = create(root, &a)?;
            println!("{}", c.id());
            Ok(0)
        }
        Cmd::Start {
            attach: att,
            interactive,
            containers,
        } => {
            for n in &containers {
                let mut c = container::find(root, n)?;
                if c.is_running() {
                    println!("{n}");
                    continue;
                }
                // A monitor still cleaning up after the last exit would tear
                // down what the new one sets up (same netns and veth names).
                if c.monitor_alive() {
                    wait_exit(&c, Duration::from_secs(10));
                    c = container::reload(&c)?;
                }
                if att {
                    monitor::spawn(root, &c, true)?;
                    proxy_signals(root, &c);
                    let s = attach::connect(&c.attach_sock())?;
                    let code = attach::client(s, interactive, c.config.tty)?;
                    return Ok(code.unwrap_or(0));
                }
                monitor::spawn(root, &c, false)?;
                println!("{n}");
            }
            Ok(0)
        }
        Cmd::Stop {
            time,
            signal,
            containers,
        } => {
            for n in &containers {
                let c = container::find(root, n)?;
                stop(root, &c, time, signal.as_deref())?;
                println!("{n}");
            }
            Ok(0)
        }
        Cmd::Restart { time, containers } => {
            for n in &containers {
                let c = container::find(root, n)?;
                stop(root, &c, time, None)?;
                let c = container::reload(&c)?;
                monitor::spawn(root, &c, false)?;
                println!("{n}");
            }
            Ok(0)
        }
        Cmd::Kill { signal, containers } => {
            for n in &containers {
                let c = container::find(root, n)?;
                if !c.is_running() {
                    bail!("cannot kill container {n}: container is not running");
                }
                if signal
                    .trim_start_matches("SIG")
                    .eq_ignore_ascii_case("KILL")
                {
                    let _ = fs::write(c.stop_marker(), "");
                }
                runtime::kill(&c.config.runtime, root, c.id(), &signal, false)?;
                println!("{n}");
            }
            Ok(0)
        }
        Cmd::Rm(a) | Cmd::Container(ContainerCmd::Rm(a)) => {
            let mut failed = false;
            for n in &a.containers {
                match container::find(root, n).and_then(|c| {
                    if c.is_running() && !a.force {
                        bail!("cannot remove container {n}: container is running: stop the container before removing or force remove");
                    }
                    remove_container(root, &c, a.volumes)
                }) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("Error: {e:#}");
                        failed = true;
                    }
                }
            }
            Ok(if failed { 1 } else { 0 })
        }
        Cmd::Ps(a) | Cmd::Container(ContainerCmd::Ls(a)) => ps(root, a),
        Cmd::Logs(a) | Cmd::Container(ContainerCmd::Logs(a)) => {
            let c = container::find(root, &a.container)?;
            let tail = match a.tail.as_deref() {
                None | Some("all") => None,
                Some(n) => Some(n.parse().with_context(|| format!("invalid --tail {n:?}"))?),
            };
            let dir = c.dir.clone();
            logs::show(&c.log_path(), tail, a.timestamps, a.follow, &|| {
                Container::load_dir(&dir)
                    .map(|c| c.monitor_alive())
                    .unwrap_or(false)
            })?;
            Ok(0)
        }
        Cmd::Exec(a) => exec(root, a),
        Cmd::Attach {
            no_stdin,
            container,
        } => {
            let c = container::find(root, &container)?;
            if !c.is_running() {
                bail!("cannot attach to a stopped container {container}, start it first");
            }
            let s = attach::connect(&c.attach_sock())?;
            Ok(attach::client(s, !no_stdin, c.config.tty)?.unwrap_or(0))
        }
        Cmd::Inspect { format, names } => inspect(root, &names, format.as_deref()),
        Cmd::Container(ContainerCmd::Inspect { names }) => inspect(root, &names, None),
        Cmd::Top { container } => top(root, &container),
        Cmd::Stats {
            no_stream,
            all,
            containers,
        } => stats(root, no_stream, all, &containers),
        Cmd::Cp { src, dst } => cp(root, &src, &dst),
        Cmd::Diff { container } => {
            let c = container::find(root, &container)?;
            for (k, p) in rootfs::diff(&c.dir)? {
                println!("{k} {p}");
            }
            Ok(0)
        }
        Cmd::Port {
            container,
            private_port,
        } => {
            let c = container::find(root, &container)?;
            for p in &c.config.ports {
                let key = format!("{}/{}", p.container_port, p.proto);
                if let Some(want) = &private_port {
                    if *want != key && *want != p.container_port.to_string() {
                        continue;
                    }
                    println!("{}:{}", p.host_ip, p.host_port);
                } else {
                    println!("{key} -> {}:{}", p.host_ip, p.host_port);
                }
            }
            Ok(0)
        }
        Cmd::Rename {
            container,
            new_name,
        } => {
            container::valid_name(&new_name)?;
            let _l = fsutil::lock(&container::lock_path(root))?;
            let mut c = container::find(root, &container)?;
            if let Some(other) = container::name_taken(root, &new_name)? {
                bail!("Conflict. The container name \"/{new_name}\" is already in use by container \"{other}\"");
            }
            crate::network::rename(root, c.id(), &new_name);
            c.config.name = new_name;
            c.save_config()?;
            Ok(0)
        }
        Cmd::Wait { containers } => {
            for n in &containers {
                let c = container::find(root, n)?;
                println!("{}", wait(&c, None)?);
            }
            Ok(0)
        }
        Cmd::Pause { containers } => pause(root, &containers, true),
        Cmd::Unpause { containers } => pause(root, &containers, false),
        Cmd::Container(ContainerCmd::Prune { force: _ }) => {
            let mut freed = 0u64;
            println!("Deleted Containers:");
            for c in container::list(root)? {
                if !c.monitor_alive() {
                    freed += dir_size(&c.upper());
                    remove_container(root, &c, false)?;
                    println!("{}", c.id());
                }
            }
            println!("\nTotal reclaimed space: {freed}B");
            Ok(0)
        }
        Cmd::Volume(v) => volume_cmd(root, v),
        Cmd::Monitor { id, wait_attach } => Ok(monitor::main(root, &id, wait_attach)),
    }
}

/// docker's sig-proxy: signals sent to a foreground `run`/`start -a` go
/// to the container. Must run before any other thread exists, so that the
/// mask is inherited by all of them.
fn proxy_signals(root: &Path, c: &Container) {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        set.add(s);
    }
    if set.thread_block().is_err() {
        return;
    }
    let (rt, root, id) = (
        c.config.runtime.clone(),
        root.to_path_buf(),
        c.id().to_string(),
    );
    std::thread::spawn(move || {
        while let Ok(sig) = set.wait() {
            let _ = runtime::kill(&rt, &root, &id, sig.as_str(), false);
        }
    });
}

fn dir_size(p: &Path) -> u64 {
    let Ok(md) = fs::symlink_metadata(p) else {
        return 0;
    };
    if md.is_dir() {
        fs::read_dir(p)
            .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
            .unwrap_or(0)
    } else {
        md.len()
    }
}

fn run(root: &Path, a: RunArgs) -> Result<i32> {
    let c = create(root, &a)?;
    if a.detach {
        if let Err(e) = monitor::spawn(root, &c, false) {
            let _ = remove_container(root, &c, true);
            return Err(e);
        }
        println!("{}", c.id());
        return Ok(0);
    }
    if let Err(e) = monitor::spawn(root, &c, true) {
        let _ = remove_container(root, &c, true);
        return Err(e);
    }
    proxy_signals(root, &c);
    let s = attach::connect(&c.attach_sock())?;
    match attach::client(s, a.interactive, a.tty)? {
        Some(code) => Ok(code),
        None => {
            // Detached with Ctrl-P Ctrl-Q, or the monitor went away.
            let c = container::reload(&c);
            match c {
                Ok(c) if !c.monitor_alive() && !c.state.finished_at.is_empty() => {
                    Ok(c.state.exit_code)
                }
                _ => Ok(0),
            }
        }
    }
}

/// `create`: validates everything before anything is written, so that a
/// bad flag leaves nothing behind.
pub fn create(root: &Path, a: &RunArgs) -> Result<Container> {
    let store = Store::open(root)?;
    let root = store.root().to_path_buf();
    let img = store.rootfs(&a.image)?;
    let icfg = img.config.config.clone().unwrap_or_default();
    let rt = runtime::resolve(a.runtime.as_deref())?;

    let mut ports: Vec<PortMap> = a
        .publish
        .iter()
        .map(|p| opts::parse_port(p))
        .collect::<Result<_>>()?;
    let exposed: Vec<String> = icfg
        .exposed_ports
        .as_ref()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    if a.publish_all {
        for e in &exposed {
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
    let mut mounts: Vec<MountSpec> = Vec::new();
    for v in &a.volume {
        mounts.push(opts::parse_volume(v)?);
    }
    for m in &a.mount {
        mounts.push(opts::parse_mount(m)?);
    }
    for t in &a.tmpfs {
        let (dst, o) = t.split_once(':').unwrap_or((t, ""));
        mounts.push(MountSpec {
            typ: "tmpfs".into(),
            source: String::new(),
            target: dst.into(),
            readonly: false,
            anonymous: false,
            options: o
                .split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        });
    }
    for m in mounts.iter_mut() {
        if m.typ == "bind" {
            let p = Path::new(&m.source);
            if !p.exists() {
                bail!(
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
    // Image VOLUMEs not covered by a mount become anonymous volumes.
    if let Some(vs) = &icfg.volumes {
        for dst in vs.keys() {
            if !mounts.iter().any(|m| m.target == *dst) {
                mounts.push(MountSpec {
                    typ: "volume".into(),
                    source: String::new(),
                    target: dst.clone(),
                    readonly: false,
                    anonymous: true,
                    options: vec![],
                });
            }
        }
    }
    for (flag, list) in [("--cap-add", &a.cap_add), ("--cap-drop", &a.cap_drop)] {
        for cap in list {
            spec::check_cap(cap).with_context(|| format!("invalid {flag} {cap}"))?;
        }
    }
    let restart = opts::parse_restart(&a.restart)?;
    if a.rm && restart.name != "no" {
        bail!("conflicting options: cannot specify both --restart and --rm");
    }
    let ulimits = a
        .ulimit
        .iter()
        .map(|u| opts::parse_ulimit(u))
        .collect::<Result<Vec<_>>>()?;
    let memory = a.memory.as_deref().map(opts::parse_size).transpose()?;
    let mut seccomp = None;
    for s in &a.security_opt {
        match s.split_once(['=', ':']) {
            Some(("seccomp", v)) => {
                if v != "unconfined" && !Path::new(v).exists() {
                    bail!("opening seccomp profile {v}: no such file");
                }
                seccomp = Some(v.to_string());
            }
            Some(("no-new-privileges", _)) | Some(("label", _)) | Some(("apparmor", _)) => {}
            _ => bail!("invalid --security-opt: {s:?}"),
        }
    }
    let (mut log_max_size, mut log_max_file) = (None, 1u32);
    for o in &a.log_opt {
        match o.split_once('=') {
            Some(("max-size", v)) => log_max_size = Some(opts::parse_size(v)? as u64),
            Some(("max-file", v)) => {
                log_max_file = v
                    .parse()
                    .with_context(|| format!("invalid --log-opt {o}"))?
            }
            _ => bail!("unknown log opt {o:?}"),
        }
    }
    let init_bin = if a.init { Some(find_init()?) } else { None };
    let mut env =
        vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()];
    env = opts::merge_env(&env, icfg.env.as_deref().unwrap_or(&[]));
    for f in &a.env_file {
        env = opts::merge_env(&env, &opts::parse_env_file(f)?);
    }
    let user_env: Vec<String> = a.env.iter().filter_map(|e| opts::expand_env(e)).collect();
    env = opts::merge_env(&env, &user_env);
    if a.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let entrypoint: Vec<String> = match &a.entrypoint {
        Some(e) if e.is_empty() => vec![],
        Some(e) => vec![e.clone()],
        None => icfg.entrypoint.clone().unwrap_or_default(),
    };
    let cmd: Vec<String> = if !a.command.is_empty() {
        a.command.clone()
    } else if a.entrypoint.is_some() {
        vec![]
    } else {
        icfg.cmd.clone().unwrap_or_default()
    };
    let mut args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        bail!("no command specified for image {}", a.image);
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
        });
    }

    let _lock = fsutil::lock(&container::lock_path(&root))?;
    let name = match &a.name {
        Some(n) => {
            container::valid_name(n)?;
            if let Some(other) = container::name_taken(&root, n)? {
                bail!("Conflict. The container name \"/{n}\" is already in use by container \"{other}\". You have to remove (or rename) that container to be able to reuse that name.");
            }
            n.clone()
        }
        None => container::random_name(&root),
    };
    crate::network::validate(&root, &a.network)?;
    crate::network::check_ports(&root, &mut ports)?;
    let id = fsutil::random_id();
    let hostname = a.hostname.clone().unwrap_or_else(|| id[..12].to_string());
    let mut cfg = Config {
        id: id.clone(),
        name,
        image: a.image.clone(),
        image_id: img.id.to_string(),
        created: now_rfc3339(),
        args,
        env,
        workdir: a
            .workdir
            .clone()
            .or(icfg.working_dir.clone())
            .unwrap_or_default(),
        user: a.user.clone().or(icfg.user.clone()).unwrap_or_default(),
        hostname,
        tty: a.tty,
        interactive: a.interactive,
        auto_remove: a.rm,
        ports,
        exposed,
        mounts,
        network: a.network.clone(),
        networks: vec![],
        aliases: a.network_alias.clone(),
        memory,
        cpus: a.cpus,
        cpu_shares: a.cpu_shares,
        pids_limit: a.pids_limit,
        ulimits,
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        privileged: a.privileged,
        read_only: a.read_only,
        seccomp,
        restart,
        init: a.init,
        log_max_size,
        log_max_file,
        runtime: rt,
        stop_signal: a
            .stop_signal
            .clone()
            .or(icfg.stop_signal.clone())
            .unwrap_or_else(|| "SIGTERM".into()),
        stop_timeout: a.stop_timeout.unwrap_or(10),
        labels: a
            .label
            .iter()
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap_or((l, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
    };
    let dir = container::containers_dir(&root).join(&id);
    let c = Container {
        dir: dir.clone(),
        config: cfg.clone(),
        state: State {
            status: "created".into(),
            ..Default::default()
        },
    };
    let res = (|| -> Result<()> {
        fs::create_dir_all(dir.join("bundle/rootfs"))
            .with_context(|| format!("creating {}", dir.display()))?;
        let mut resolved = Vec::new();
        for m in cfg.mounts.iter_mut() {
            match m.typ.as_str() {
                "volume" => {
                    if m.anonymous {
                        m.source = fsutil::random_id();
                    }
                    let v = volumes::create(&root, &m.source, m.anonymous)?;
                    resolved.push((
                        "bind".into(),
                        v.mountpoint,
                        m.readonly,
                        m.target.clone(),
                        vec![],
                    ));
                }
                t => resolved.push((
                    t.to_string(),
                    m.source.clone(),
                    m.readonly,
                    m.target.clone(),
                    m.options.clone(),
                )),
            }
        }
        let c = Container {
            config: cfg.clone(),
            ..c.clone()
        };
        fs::write(dir.join("image-id"), &cfg.image_id).context("writing image-id")?;
        let lowers: Vec<String> = img
            .lowerdirs
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        fs::write(rootfs::lowerdirs_path(&dir), lowers.join("\n")).context("writing lowerdirs")?;
        fs::write(dir.join("hostname"), format!("{}\n", cfg.hostname))
            .context("writing hostname")?;
        fs::write(dir.join("hosts"), "127.0.0.1\tlocalhost\n").context("writing hosts")?;
        fs::write(
            dir.join("resolv.conf"),
            crate::network::resolv_conf(&root, &cfg.network),
        )
        .context("writing resolv.conf")?;
        let netns = crate::network::netns_for(&root, &cfg)?;
        let spec = spec::build(&cfg, &dir, &img.lowerdirs, netns, &resolved)?;
        fsutil::write_json(&dir.join("bundle/config.json"), &spec)?;
        c.save_config()?;
        c.save_state()?;
        Ok(())
    })();
    if let Err(e) = res {
        for m in &cfg.mounts {
            if m.anonymous && !m.source.is_empty() {
                let _ = volumes::remove(&root, &m.source, true);
            }
        }
        let _ = fs::remove_dir_all(&dir);
        return Err(e);
    }
    Ok(Container { config: cfg, ..c })
}

const INIT_PATH: &str = "/sbin/docker-init";

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
    bail!("--init needs a static init binary: install tini (/usr/bin/tini-static)")
}

/// SIGTERM (or the stop signal), then SIGKILL after the timeout.
pub fn stop(root: &Path, c: &Container, time: Option<u64>, signal: Option<&str>) -> Result<()> {
    if !c.is_running() {
        return Ok(());
    }
    let _ = fs::write(c.stop_marker(), "");
    let t = time.unwrap_or(c.config.stop_timeout);
    let sig = signal.unwrap_or(&c.config.stop_signal);
    let rt = &c.config.runtime;
    let _ = runtime::kill(rt, root, c.id(), sig, false);
    if wait_exit(c, Duration::from_secs(t)) {
        return Ok(());
    }
    let _ = runtime::kill(rt, root, c.id(), "KILL", true);
    if !wait_exit(c, Duration::from_secs(10)) {
        bail!("container {} did not stop after SIGKILL", c.config.name);
    }
    Ok(())
}

/// Waits for the monitor to record the exit (and finish its cleanup).
fn wait_exit(c: &Container, d: Duration) -> bool {
    let end = Instant::now() + d;
    loop {
        if !fsutil::pid_alive(c.state.monitor_pid) || {
            let s: State = fsutil::read_json(&c.dir.join("state.json")).unwrap_or_default();
            s.monitor_pid == 0
        } {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait(c: &Container, d: Option<Duration>) -> Result<i32> {
    wait_exit(c, d.unwrap_or(Duration::from_secs(u32::MAX as u64)));
    let s: State = fsutil::read_json(&c.dir.join("state.json")).unwrap_or_default();
    Ok(s.exit_code)
}

/// Removes everything of a container: process, mounts, network, records.
pub fn remove_container(root: &Path, c: &Container, with_volumes: bool) -> Result<()> {
    if c.monitor_alive() {
        let _ = fs::write(c.stop_marker(), "");
        let _ = runtime::kill(&c.config.runtime, root, c.id(), "KILL", true);
        if !wait_exit(c, Duration::from_secs(10)) {
            bail!("container {} did not stop", c.config.name);
        }
    }
    runtime::delete(&c.config.runtime, root, c.id());
    remove_files(root, c, with_volumes)
}

/// Removes a stopped container's mounts, network and records (the
/// monitor's `--rm`, after it deleted the runtime's container itself).
pub fn remove_files(root: &Path, c: &Container, with_volumes: bool) -> Result<()> {
    monitor::cleanup(root, c);
    // The runtime's state dir goes with its last container (only when empty).
    let rs = runtime::state_root(root);
    if fs::remove_dir(&rs).is_ok() && rs.starts_with("/run/berth") {
        let _ = fs::remove_dir("/run/berth");
    }
    if rootfs::is_mounted(&c.rootfs()) {
        bail!("container {}: rootfs still mounted", c.config.name);
    }
    match fs::remove_dir_all(&c.dir) {
        // A --rm monitor may have removed it at the same moment.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        r => r.with_context(|| format!("removing {}", c.dir.display()))?,
    }
    if with_volumes {
        for m in &c.config.mounts {
            if m.anonymous {
                let _ = volumes::remove(root, &m.source, true);
            }
        }
    }
    Ok(())
}

fn trunc(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    } else {
        s.to_string()
    }
}

fn ports_text(c: &Container) -> String {
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

fn matches_filter(c: &Container, f: &str) -> Result<bool> {
    let (k, v) = f
        .split_once('=')
        .with_context(|| format!("bad format of filter (expected name=value): {f}"))?;
    Ok(match k {
        "name" => c.config.name.contains(v),
        "id" => c.config.id.starts_with(v),
        "status" => c.docker_status() == v,
        "ancestor" => c.config.image == v || c.config.image_id.contains(v),
        "label" => {
            let (lk, lv) = v.split_once('=').unwrap_or((v, ""));
            c.config
                .labels
                .get(lk)
                .is_some_and(|x| lv.is_empty() || x == lv)
        }
        "network" => c.config.network == v,
        "volume" => c
            .config
            .mounts
            .iter()
            .any(|m| m.source == v || m.target == v),
        "exited" => c.docker_status() == "exited" && c.state.exit_code.to_string() == v,
        _ => bail!("invalid filter '{k}'"),
    })
}

fn ps(root: &Path, a: PsArgs) -> Result<i32> {
    let mut list = container::list(root)?;
    let mut keep = Vec::new();
    for c in list.drain(..) {
        if !a.all && !a.latest && !c.is_running() && a.filter.is_empty() {
            continue;
        }
        let mut ok = true;
        for f in &a.filter {
            ok &= matches_filter(&c, f)?;
        }
        if ok {
            keep.push(c);
        }
    }
    if a.latest {
        keep.truncate(1);
    }
    if let Some(f) = &a.format {
        for c in &keep {
            let v = json!({
                "ID": if a.no_trunc { c.id() } else { c.short_id() },
                "Names": c.config.name,
                "Image": c.config.image,
                "Command": format!("\"{}\"", c.config.args.join(" ")),
                "CreatedAt": c.config.created,
                "Status": c.status_text(),
                "State": c.docker_status(),
                "Ports": ports_text(c),
            });
            println!("{}", format_template(&v, f.trim_start_matches("table ")));
        }
        return Ok(0);
    }
    if a.quiet {
        for c in &keep {
            println!("{}", if a.no_trunc { c.id() } else { c.short_id() });
        }
        return Ok(0);
    }
    let rows: Vec<[String; 7]> = keep
        .iter()
        .map(|c| {
            let cmd = format!("\"{}\"", c.config.args.join(" "));
            [
                if a.no_trunc {
                    c.id().to_string()
                } else {
                    c.short_id().to_string()
                },
                c.config.image.clone(),
                if a.no_trunc { cmd } else { trunc(&cmd, 20) },
                format!("{} ago", container::human_duration(&c.config.created)),
                c.status_text(),
                ports_text(c),
                c.config.name.clone(),
            ]
        })
        .collect();
    let head = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    let mut w = [0usize; 7];
    for (i, h) in head.iter().enumerate() {
        w[i] = rows
            .iter()
            .map(|r| r[i].chars().count())
            .chain([h.len()])
            .max()
            .unwrap_or(0);
    }
    let line = |r: &[String; 7]| {
        let mut s = String::new();
        for i in 0..7 {
            if i == 6 {
                s.push_str(&r[i]);
            } else {
                s.push_str(&format!("{:<width$}   ", r[i], width = w[i]));
            }
        }
        s
    };
    println!("{}", line(&head.map(String::from)));
    for r in &rows {
        println!("{}", line(r));
    }
    Ok(0)
}

fn exec(root: &Path, a: ExecArgs) -> Result<i32> {
    let c = container::find(root, &a.container)?;
    if !c.is_running() || c.state.pid == 0 {
        bail!("container {} is not running", a.container);
    }
    // hull's exec is still being written: say so in one line rather than
    // letting the runtime print its usage.
    let probe = std::process::Command::new(&c.config.runtime)
        .args(["exec", "--help"])
        .output()
        .with_context(|| format!("running {}", c.config.runtime))?;
    if String::from_utf8_lossy(&probe.stderr).contains("unrecognized subcommand") {
        bail!(
            "runtime {} has no exec subcommand; create the container with --runtime runc to use exec",
            c.config.runtime
        );
    }
    let mut cmd = runtime::cmd(&c.config.runtime, root);
    cmd.arg("exec");
    if a.tty {
        cmd.arg("--tty");
    }
    if a.detach {
        cmd.arg("--detach");
    }
    let mut env = c.config.env.clone();
    env = opts::merge_env(
        &env,
        &a.env
            .iter()
            .filter_map(|e| opts::expand_env(e))
            .collect::<Vec<_>>(),
    );
    for e in &env {
        cmd.arg("--env").arg(e);
    }
    let user = a.user.clone().unwrap_or_else(|| c.config.user.clone());
    if !user.is_empty() {
        let lowers: Vec<PathBuf> = fs::read_to_string(rootfs::lowerdirs_path(&c.dir))
            .unwrap_or_default()
            .lines()
            .map(PathBuf::from)
            .collect();
        let (u, g) = spec::resolve_user(&user, &lowers)?;
        cmd.arg("--user").arg(format!("{u}:{g}"));
    }
    let cwd = a
        .workdir
        .clone()
        .unwrap_or_else(|| c.config.workdir.clone());
    if !cwd.is_empty() {
        cmd.arg("--cwd").arg(cwd);
    }
    if a.privileged {
        for cap in spec::all_caps() {
            cmd.arg("--cap").arg(cap);
        }
    }
    cmd.arg(c.id()).args(&a.command);
    if !a.interactive {
        cmd.stdin(std::process::Stdio::null());
    }
    let st = cmd
        .status()
        .with_context(|| format!("running {} exec", c.config.runtime))?;
    Ok(st.code().unwrap_or(126))
}

pub fn inspect_json(root: &Path, c: &Container) -> serde_json::Value {
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
    json!({
        "Id": cfg.id,
        "Created": cfg.created,
        "Path": cfg.args.first(),
        "Args": cfg.args.get(1..).unwrap_or(&[]),
        "State": {
            "Status": c.docker_status(),
            "Running": c.is_running() && st.status != "paused",
            "Paused": c.is_running() && st.status == "paused",
            "Restarting": c.is_running() && st.status == "restarting",
            "OOMKilled": st.oom_killed,
            "Dead": false,
            "Pid": if c.is_running() { st.pid } else { 0 },
            "ExitCode": st.exit_code,
            "Error": st.error,
            "StartedAt": if st.started_at.is_empty() { "0001-01-01T00:00:00Z" } else { &st.started_at },
            "FinishedAt": if st.finished_at.is_empty() { "0001-01-01T00:00:00Z" } else { &st.finished_at },
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
            "NetworkMode": cfg.network,
            "RestartPolicy": {"Name": cfg.restart.name, "MaximumRetryCount": cfg.restart.max_retries},
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
    })
}

/// A small subset of Go templates: `{{.A.B}}` and `{{json .A}}`.
fn format_template(v: &serde_json::Value, f: &str) -> String {
    let mut out = String::new();
    let mut rest = f;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find("}}") else { break };
        let expr = rest[i + 2..i + j].trim();
        let (json_mode, path) = match expr.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, expr),
        };
        let mut cur = v;
        for part in path
            .trim_start_matches('.')
            .split('.')
            .filter(|s| !s.is_empty())
        {
            cur = cur.get(part).unwrap_or(&serde_json::Value::Null);
        }
        match cur {
            serde_json::Value::String(s) if !json_mode => out.push_str(s),
            serde_json::Value::Null if !json_mode => out.push_str("<no value>"),
            other => out.push_str(&other.to_string()),
        }
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    out
}

fn inspect(root: &Path, names: &[String], format: Option<&str>) -> Result<i32> {
    let mut all = Vec::new();
    for n in names {
        let c = container::find(root, n)?;
        all.push(inspect_json(root, &c));
    }
    if let Some(f) = format {
        for v in &all {
            println!("{}", format_template(v, f));
        }
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(&all).context("encoding inspect")?
        );
    }
    Ok(0)
}

fn cgroup_procs(id: &str) -> Vec<i32> {
    for p in [
        format!("/sys/fs/cgroup/pids/berth/{id}/cgroup.procs"),
        format!("/sys/fs/cgroup/memory/berth/{id}/cgroup.procs"),
        format!("/sys/fs/cgroup/berth/{id}/cgroup.procs"),
    ] {
        if let Ok(t) = fs::read_to_string(&p) {
            return t.lines().filter_map(|l| l.trim().parse().ok()).collect();
        }
    }
    vec![]
}

fn top(root: &Path, name: &str) -> Result<i32> {
    let c = container::find(root, name)?;
    if !c.is_running() {
        bail!("container {name} is not running");
    }
    let mut pids = cgroup_procs(c.id());
    if pids.is_empty() {
        pids.push(c.state.pid);
    }
    println!("{:<8} {:<8} {:<8} CMD", "UID", "PID", "PPID");
    for pid in pids {
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let field = |k: &str| {
            stat.lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.split_whitespace().next().unwrap_or("").to_string())
                .unwrap_or_default()
        };
        let cmd = fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .split('\0')
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        println!(
            "{:<8} {:<8} {:<8} {}",
            field("Uid:"),
            pid,
            field("PPid:"),
            cmd
        );
    }
    Ok(0)
}

fn read_num(p: &str) -> u64 {
    fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn stats(root: &Path, no_stream: bool, all: bool, names: &[String]) -> Result<i32> {
    let list: Vec<Container> = if names.is_empty() {
        container::list(root)?
            .into_iter()
            .filter(|c| all || c.is_running())
            .collect()
    } else {
        names
            .iter()
            .map(|n| container::find(root, n))
            .collect::<Result<_>>()?
    };
    loop {
        let cpu0: Vec<u64> = list
            .iter()
            .map(|c| {
                read_num(&format!(
                    "/sys/fs/cgroup/cpuacct/berth/{}/cpuacct.usage",
                    c.id()
                ))
            })
            .collect();
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_millis(500));
        let el = t0.elapsed().as_nanos() as f64;
        println!(
            "{:<14} {:<20} {:<8} {:<22} {:<8} {:<20} {:<20} PIDS",
            "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O"
        );
        for (i, c) in list.iter().enumerate() {
            let id = c.id();
            let cpu1 = read_num(&format!("/sys/fs/cgroup/cpuacct/berth/{id}/cpuacct.usage"));
            let mem = read_num(&format!(
                "/sys/fs/cgroup/memory/berth/{id}/memory.usage_in_bytes"
            ));
            let mut lim = read_num(&format!(
                "/sys/fs/cgroup/memory/berth/{id}/memory.limit_in_bytes"
            ));
            if lim == 0 || lim > 1 << 50 {
                lim = procfs_mem_total();
            }
            let pids = read_num(&format!("/sys/fs/cgroup/pids/berth/{id}/pids.current"));
            let cpu = (cpu1.saturating_sub(cpu0[i])) as f64 / el * 100.0;
            // The host end of a veth sees the container's rx as tx.
            let (mut rx, mut tx) = (0, 0);
            for ep in c.state.endpoints.values() {
                let st = format!("/sys/class/net/{}/statistics", ep.host_veth);
                rx += read_num(&format!("{st}/tx_bytes"));
                tx += read_num(&format!("{st}/rx_bytes"));
            }
            let (br, bw) = blkio(id);
            println!(
                "{:<14} {:<20} {:<8} {:<22} {:<8} {:<20} {:<20} {}",
                c.short_id(),
                c.config.name,
                format!("{cpu:.2}%"),
                format!(
                    "{:.2}MiB / {:.2}GiB",
                    mem as f64 / 1048576.0,
                    lim as f64 / 1073741824.0
                ),
                format!("{:.2}%", mem as f64 / lim.max(1) as f64 * 100.0),
                format!("{} / {}", human(rx), human(tx)),
                format!("{} / {}", human(br), human(bw)),
                pids
            );
        }
        if no_stream {
            return Ok(0);
        }
    }
}

fn human(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.3}{}", units[i])
    }
}

/// (read, write) bytes from the v1 blkio controller.
fn blkio(id: &str) -> (u64, u64) {
    let p = format!("/sys/fs/cgroup/blkio/berth/{id}/blkio.throttle.io_service_bytes");
    let (mut r, mut w) = (0, 0);
    for l in fs::read_to_string(p).unwrap_or_default().lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() == 3 {
            let n: u64 = f[2].parse().unwrap_or(0);
            match f[1] {
                "Read" => r += n,
                "Write" => w += n,
                _ => {}
            }
        }
    }
    (r, w)
}

fn procfs_mem_total() -> u64 {
    fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| {
                    v.split_whitespace()
                        .next()
                        .and_then(|n| n.parse::<u64>().ok())
                })
        })
        .map(|k| k * 1024)
        .unwrap_or(0)
}

/// `cp`: through the overlay mount (mounted temporarily when stopped).
fn cp(root: &Path, src: &str, dst: &str) -> Result<i32> {
    let split = |s: &str| -> Option<(String, String)> {
        if s.starts_with('/') || s.starts_with('.') {
            return None;
        }
        s.split_once(':')
            .map(|(a, b)| (a.to_string(), b.to_string()))
    };
    let (cname, cpath, host, to_host) = match (split(src), split(dst)) {
        (Some((c, p)), None) => (c, p, dst.to_string(), true),
        (None, Some((c, p))) => (c, p, src.to_string(), false),
        _ => bail!("copying between containers or between host paths is not supported; use CONTAINER:PATH on one side"),
    };
    let c = container::find(root, &cname)?;
    let was_mounted = rootfs::is_mounted(&c.rootfs());
    rootfs::mount_rootfs(&c.dir)?;
    let inside = c.rootfs().join(cpath.trim_start_matches('/'));
    let res = (|| -> Result<()> {
        let (from, to) = if to_host {
            (inside.clone(), PathBuf::from(&host))
        } else {
            (PathBuf::from(&host), inside.clone())
        };
        if !from.exists() && fs::symlink_metadata(&from).is_err() {
            if to_host {
                bail!("Could not find the file {cpath} in container {cname}");
            }
            bail!("no such file or directory: {host}");
        }
        let target = if to.is_dir() {
            to.join(from.file_name().context("source has no file name")?)
        } else {
            to
        };
        fsutil::copy_tree(&from, &target)
    })();
    if !was_mounted {
        rootfs::unmount_rootfs(&c.dir);
    }
    res?;
    Ok(0)
}

fn pause(root: &Path, names: &[String], pause: bool) -> Result<i32> {
    for n in names {
        let mut c = container::find(root, n)?;
        if !c.is_running() {
            bail!("container {n} is not running");
        }
        let sub = if pause { "pause" } else { "resume" };
        if runtime::run(&c.config.runtime, root, &[sub, c.id()]).is_err() {
            // Runtimes without pause: freeze the cgroup directly (v1 freezer).
            let f = format!("/sys/fs/cgroup/freezer/berth/{}/freezer.state", c.id());
            fs::write(&f, if pause { "FROZEN" } else { "THAWED" })
                .with_context(|| format!("writing {f}"))?;
        }
        c.reload_state();
        c.state.status = if pause { "paused" } else { "running" }.into();
        c.save_state()?;
        println!("{n}");
    }
    Ok(0)
}

fn volume_cmd(root: &Path, v: VolumeCmd) -> Result<i32> {
    let store = Store::open(root)?;
    let root = store.root();
    match v {
        VolumeCmd::Create { name } => {
            let name = name.unwrap_or_else(fsutil::random_id);
            volumes::create(root, &name, false)?;
            println!("{name}");
        }
        VolumeCmd::Ls { quiet } => {
            if !quiet {
                println!("{:<10}VOLUME NAME", "DRIVER");
            }
            for v in volumes::list(root) {
                if quiet {
                    println!("{}", v.name);
                } else {
                    println!("{:<10}{}", v.driver, v.name);
                }
            }
        }
        VolumeCmd::Inspect { names } => {
            let vs = names
                .iter()
                .map(|n| volumes::get(root, n))
                .collect::<Result<Vec<_>>>()?;
            println!("{}", serde_json::to_string_pretty(&vs).context("encoding")?);
        }
        VolumeCmd::Rm { force, names } => {
            for n in &names {
                volumes::remove(root, n, force)?;
                println!("{n}");
            }
        }
        VolumeCmd::Prune { all, force: _ } => {
            println!("Deleted Volumes:");
            for v in volumes::list(root) {
                if (all || v.anonymous) && volumes::users(root, &v.name).is_empty() {
                    volumes::remove(root, &v.name, false)?;
                    println!("{}", v.name);
                }
            }
        }
    }
    let _ = std::io::stdout().flush();
    Ok(0)
}
