//! Container lifecycle commands: run, create, start, stop, restart, kill,
//! rm, wait, rename, pause/unpause, container prune. Flags become
//! `CreateOptions` here; the engine does the rest.

use anyhow::Result;
use clap::Args;
use std::path::Path;

use hull::engine::container;
use hull::engine::opts;
use hull::engine::{lifecycle, run as engine_run, CreateOptions, Resources};
use hull::network::NetworkMode;

use crate::attach::{check_tty, NOT_A_TTY};
use crate::io::{attach_and_wait, Foreground};
use crate::run_flags;

// docker's `-h` is --hostname: clap's `-h` help gives way, `--help` stays.
#[derive(Args, Clone, Default)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Run in the background and print the container ID
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the process (non-TTY containers)
    #[arg(long, default_value_t = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(short, long = "env", allow_hyphen_values = true)]
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
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    #[arg(long)]
    pub entrypoint: Option<String>,
    #[arg(short, long)]
    pub workdir: Option<String>,
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Number of CPUs (a positive decimal)
    #[arg(long, allow_hyphen_values = true)]
    pub cpus: Option<String>,
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
    #[command(flatten)]
    pub health: crate::health_args::HealthArgs,
    #[command(flatten)]
    pub more: run_flags::MoreRunArgs,
    pub image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Where `-p`, `-v`, `--mount`, `--restart`, `--cpus`, `-e` ... become
/// typed values (with `engine::opts`' parsers).
// `..Default::default()` stays for the options other flags add.
#[allow(clippy::needless_update)]
pub fn create_options(a: &RunArgs) -> Result<CreateOptions> {
    let mut mounts = Vec::new();
    for v in &a.volume {
        mounts.push(opts::parse_volume(v)?);
    }
    for m in &a.mount {
        mounts.push(opts::parse_mount(m)?);
    }
    for t in &a.tmpfs {
        mounts.push(opts::parse_tmpfs(t)?);
    }
    let mut env = Vec::new();
    for f in &a.env_file {
        env = opts::merge_env(&env, &opts::parse_env_file(f)?);
    }
    let mut user_env = Vec::new();
    for e in &a.env {
        user_env.extend(opts::parse_env(e)?);
    }
    env = opts::merge_env(&env, &user_env);
    Ok(CreateOptions {
        healthcheck: a.health.config()?,
        no_healthcheck: a.health.no_healthcheck,
        image: a.image.clone(),
        name: a.name.clone(),
        command: a.command.clone(),
        entrypoint: a.entrypoint.clone(),
        env,
        ports: a
            .publish
            .iter()
            .map(|p| opts::parse_port(p))
            .collect::<Result<_>>()?,
        publish_all: a.publish_all,
        mounts,
        network: NetworkMode::parse(&a.network),
        network_aliases: a.network_alias.clone(),
        hostname: a.hostname.clone(),
        workdir: a.workdir.clone(),
        user: a.user.clone(),
        tty: a.tty,
        interactive: a.interactive,
        auto_remove: a.rm,
        resources: Resources {
            memory: a.memory.as_deref().map(opts::parse_size).transpose()?,
            cpus: a.cpus.as_deref().map(opts::parse_cpus).transpose()?,
            cpu_shares: a.cpu_shares,
            pids_limit: a.pids_limit,
            ulimits: a
                .ulimit
                .iter()
                .map(|u| opts::parse_ulimit(u))
                .collect::<Result<_>>()?,
        },
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        privileged: a.privileged,
        read_only: a.read_only,
        seccomp: opts::parse_security_opts(&a.security_opt)?,
        restart: opts::parse_restart(&a.restart)?,
        init: a.init,
        log: opts::parse_log_opts(&a.log_opt)?,
        runtime: a.runtime.clone(),
        stop_signal: a.stop_signal.clone(),
        stop_timeout: a.stop_timeout,
        labels: run_flags::label_lines(&a.more)?
            .iter()
            .chain(&a.label)
            .map(|l| opts::parse_label(l))
            .collect(),
        expose: run_flags::expose(&a.more)?,
        volumes_from: run_flags::volumes_from(&a.more)?,
        host: run_flags::host_config(&a.more)?,
        ..Default::default()
    })
}

pub fn run(root: &Path, a: &RunArgs) -> Result<i32> {
    // Before anything is created, as docker's.
    if !a.detach && check_tty(a.interactive, a.tty).is_err() {
        eprintln!("{NOT_A_TTY}");
        return Ok(1);
    }
    hull::engine::tty::parse_detach_keys(a.detach_keys.as_deref())?;
    let o = create_options(a)?;
    let streams = run_flags::streams(&a.more, a.interactive, a.detach)?;
    run_flags::check_cidfile(&a.more)?;
    run_flags::ensure_image(root, &a.image, &a.more)?;
    let c = engine_run::run(root, &o, !a.detach)?;
    run_flags::write_cidfile(&a.more, c.id())?;
    if a.detach {
        println!("{}", c.id());
        return Ok(0);
    }
    let f = Foreground {
        stdin: streams.stdin,
        detach_keys: a.detach_keys.as_deref(),
        sig_proxy: a.sig_proxy,
    };
    run_flags::with_streams(streams, || attach_and_wait(root, &c, &f))
}

pub fn create(root: &Path, a: &RunArgs) -> Result<i32> {
    let o = create_options(a)?;
    run_flags::check_cidfile(&a.more)?;
    run_flags::ensure_image(root, &a.image, &a.more)?;
    let c = hull::engine::create::create(root, &o)?;
    run_flags::write_cidfile(&a.more, c.id())?;
    println!("{}", c.id());
    Ok(0)
}

/// docker's start: `-a`/`-i` take one container; without them every one is
/// tried, a failure is one error line and the rest still start (exit 1).
pub fn start(
    root: &Path,
    attach: bool,
    interactive: bool,
    detach_keys: Option<&str>,
    names: &[String],
) -> Result<i32> {
    hull::engine::tty::parse_detach_keys(detach_keys)?;
    if attach || interactive {
        let [n] = names else {
            eprintln!("you cannot start and attach multiple containers at once");
            return Ok(1);
        };
        let c = container::find(root, n)?;
        if interactive && check_tty(true, c.config.tty).is_err() {
            eprintln!("{NOT_A_TTY}");
            return Ok(1);
        }
        if engine_run::start(root, &c, true)? {
            let f = Foreground {
                stdin: interactive,
                detach_keys,
                sig_proxy: true,
            };
            return attach_and_wait(root, &c, &f);
        }
        println!("{n}");
        return Ok(0);
    }
    let mut failed = false;
    for n in names {
        let r = container::find(root, n)
            .map_err(hull::engine::EngineError::from)
            .and_then(|c| engine_run::start(root, &c, false));
        match r {
            Ok(_) => println!("{n}"),
            Err(e) => {
                crate::print_error(&e.into());
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

pub fn stop(root: &Path, time: Option<u64>, signal: Option<&str>, names: &[String]) -> Result<i32> {
    for n in names {
        let c = container::find(root, n)?;
        lifecycle::stop(root, &c, time, signal)?;
        println!("{n}");
    }
    Ok(0)
}

pub fn restart(root: &Path, time: Option<u64>, names: &[String]) -> Result<i32> {
    for n in names {
        let c = container::find(root, n)?;
        engine_run::restart(root, &c, time)?;
        println!("{n}");
    }
    Ok(0)
}

pub fn kill(root: &Path, signal: &str, names: &[String]) -> Result<i32> {
    for n in names {
        let c = container::find(root, n)?;
        lifecycle::kill(root, &c, signal)?;
        println!("{n}");
    }
    Ok(0)
}

/// docker's rm: goes on after a failure, one error line each, exit 1.
pub fn rm(root: &Path, force: bool, volumes: bool, names: &[String]) -> Result<i32> {
    let mut failed = false;
    for n in names {
        let r = container::find(root, n)
            .map_err(hull::engine::EngineError::from)
            .and_then(|c| lifecycle::remove(root, &c, force, volumes));
        match r {
            Ok(()) => println!("{n}"),
            Err(e) => {
                crate::print_error(&e.into());
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// `rm -l PARENT/ALIAS...`.
pub fn rm_links(root: &Path, links: &[String]) -> Result<i32> {
    for l in links {
        hull::engine::etc_files::remove_link(root, l)?;
        println!("{l}");
    }
    Ok(0)
}

pub fn rename(root: &Path, name: &str, new_name: &str) -> Result<i32> {
    lifecycle::rename(root, name, new_name)?;
    Ok(0)
}

pub fn pause(root: &Path, names: &[String], pause: bool) -> Result<i32> {
    for n in names {
        let mut c = container::find(root, n)?;
        lifecycle::pause(root, &mut c, pause)?;
        println!("{n}");
    }
    Ok(0)
}

pub fn prune(root: &Path) -> Result<i32> {
    println!("Deleted Containers:");
    let r = lifecycle::prune(root)?;
    for id in &r.removed {
        println!("{id}");
    }
    println!("\nTotal reclaimed space: {}B", r.reclaimed);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> Result<CreateOptions> {
        let t = T::try_parse_from(std::iter::once("run").chain(args.iter().copied()))?;
        create_options(&t.run)
    }

    #[test]
    fn flags_become_typed_options() {
        let o = parse(&[
            "-p",
            "8080:80",
            "-v",
            "/a:/b:ro",
            "--restart",
            "on-failure:3",
            "--cpus",
            "1.5",
            "-e",
            "A=1",
            "--network",
            "host",
            "busybox",
            "sh",
            "-c",
            "x",
        ])
        .unwrap();
        assert_eq!(o.ports[0].host_port, 8080);
        assert!(o.mounts[0].readonly);
        assert_eq!(o.restart, hull::engine::RestartPolicy::OnFailure(3));
        assert_eq!(o.resources.cpus, Some(1.5));
        assert_eq!(o.env, vec!["A=1".to_string()]);
        assert_eq!(o.network, NetworkMode::Host);
        assert_eq!(o.command, ["sh", "-c", "x"]);
    }

    #[test]
    fn short_h_is_hostname() {
        let o = parse(&["-h", "web", "--dns", "1.1.1.1", "--pid", "host", "busybox"]).unwrap();
        assert_eq!(o.hostname.as_deref(), Some("web"));
        assert_eq!(o.host.pid, hull::engine::hostconfig::NsMode::Host);
        let e = T::try_parse_from(["run", "--help"]).err().unwrap();
        assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
    }

    #[test]
    fn refused_flags() {
        assert!(parse(&["--cpus", "-1", "busybox"]).is_err());
        assert!(parse(&["-e", "=value", "busybox"]).is_err());
        assert!(parse(&["-p", "80:abc", "busybox"]).is_err());
        assert!(parse(&["--restart", "sometimes", "busybox"]).is_err());
        assert!(parse(&["--mount", "type=bind,target=/x", "busybox"]).is_err());
        assert!(parse(&["--sysctl", "vm.swappiness=1", "busybox"]).is_err());
        assert!(parse(&["--ipc", "bogus", "busybox"]).is_err());
        assert!(parse(&["--log-driver", "syslog", "busybox"]).is_err());
        assert!(parse(&["--volumes-from", "a:rx", "busybox"]).is_err());
    }
}
