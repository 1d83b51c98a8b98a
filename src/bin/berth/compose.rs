//! `berth compose`: parses docker compose's flags, loads the project with
//! `hull::compose::load_project`, calls `hull::compose::ops`, prints. The reports are in
//! `compose_print.rs`.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hull::compose::ops::control::{self, Control, RunOptions};
use hull::compose::ops::down::{self, DownOptions, Rmi};
use hull::compose::ops::up::{self, UpOptions};
use hull::compose::ops::{images as cimages, logs::LogsOptions};
use hull::compose::{self as model, LoadOptions, Project};

use crate::compose_print as out;

#[derive(Args)]
pub struct ComposeArgs {
    /// Compose configuration files (repeatable; merged in order)
    #[arg(short = 'f', long = "file")]
    files: Vec<PathBuf>,
    /// Project name
    #[arg(short = 'p', long = "project-name")]
    project_name: Option<String>,
    /// Alternate environment files (repeatable)
    #[arg(long = "env-file")]
    env_files: Vec<PathBuf>,
    /// Profiles to enable (repeatable)
    #[arg(long = "profile")]
    profiles: Vec<String>,
    /// The project's working directory (default: the first file's directory)
    #[arg(long)]
    project_directory: Option<PathBuf>,
    #[command(subcommand)]
    cmd: ComposeCmd,
}

#[derive(Args)]
pub struct UpArgs {
    /// Detached: start and return
    #[arg(short, long)]
    detach: bool,
    /// Build images before starting containers
    #[arg(long)]
    build: bool,
    #[arg(long)]
    force_recreate: bool,
    #[arg(long)]
    no_recreate: bool,
    /// Don't start linked services
    #[arg(long)]
    no_deps: bool,
    #[arg(long)]
    remove_orphans: bool,
    /// SERVICE=NUM (repeatable)
    #[arg(long)]
    scale: Vec<String>,
    /// Wait for services to be running|healthy (implies -d)
    #[arg(long)]
    wait: bool,
    /// Seconds to wait with --wait
    #[arg(long)]
    wait_timeout: Option<u64>,
    /// Stop all containers if any container stops
    #[arg(long)]
    abort_on_container_exit: bool,
    /// Return the exit code of this service's container (implies --abort-on-container-exit)
    #[arg(long, value_name = "SERVICE")]
    exit_code_from: Option<String>,
    services: Vec<String>,
}

#[derive(Args)]
pub struct RunArgs {
    #[arg(short, long)]
    detach: bool,
    /// Remove the container when it exits
    #[arg(long)]
    rm: bool,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    entrypoint: Option<String>,
    #[arg(short, long = "env")]
    env: Vec<String>,
    #[arg(short, long)]
    user: Option<String>,
    #[arg(short, long)]
    workdir: Option<String>,
    #[arg(long)]
    no_deps: bool,
    /// Publish the service's ports
    #[arg(long)]
    service_ports: bool,
    /// Disable pseudo-TTY allocation
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    /// Keep STDIN open
    #[arg(short, long, default_value_t = true)]
    interactive: bool,
    service: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Args)]
pub struct ExecArgs {
    #[arg(short, long)]
    detach: bool,
    #[arg(short, long = "env")]
    env: Vec<String>,
    #[arg(short, long)]
    user: Option<String>,
    #[arg(short, long)]
    workdir: Option<String>,
    #[arg(long)]
    privileged: bool,
    /// Index of the container if the service has several replicas
    #[arg(long, default_value_t = 1)]
    index: u32,
    /// Disable pseudo-TTY allocation
    #[arg(short = 'T', long = "no-TTY")]
    no_tty: bool,
    service: String,
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

#[derive(Subcommand)]
enum ComposeCmd {
    /// Create and start containers
    Up(UpArgs),
    /// Create containers without starting them
    Create(UpArgs),
    /// Stop and remove containers, networks (and volumes, images when asked)
    Down {
        /// Remove named volumes declared in the volumes section and anonymous volumes
        #[arg(short, long)]
        volumes: bool,
        /// Remove images: "local" (built ones) or "all"
        #[arg(long)]
        rmi: Option<String>,
        #[arg(long)]
        remove_orphans: bool,
    },
    /// List containers
    Ps {
        #[arg(short, long)]
        all: bool,
        #[arg(short, long)]
        quiet: bool,
        /// Display services
        #[arg(long)]
        services: bool,
        /// table or json
        #[arg(long, default_value = "table")]
        format: String,
        service: Vec<String>,
    },
    /// View output from containers
    Logs {
        #[arg(short, long)]
        follow: bool,
        #[arg(short = 'n', long)]
        tail: Option<String>,
        #[arg(short, long)]
        timestamps: bool,
        #[arg(long)]
        no_log_prefix: bool,
        #[arg(long)]
        no_color: bool,
        services: Vec<String>,
    },
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Run a one-off command on a service
    Run(RunArgs),
    /// Build or rebuild services
    Build { services: Vec<String> },
    /// Pull service images
    Pull {
        #[arg(long)]
        ignore_buildable: bool,
        #[arg(short, long)]
        quiet: bool,
        services: Vec<String>,
    },
    /// Push service images
    Push { services: Vec<String> },
    /// Start services
    Start { services: Vec<String> },
    /// Stop services
    Stop {
        #[arg(short, long)]
        timeout: Option<u64>,
        services: Vec<String>,
    },
    /// Restart service containers
    Restart {
        #[arg(short, long)]
        timeout: Option<u64>,
        services: Vec<String>,
    },
    /// Force stop service containers
    Kill {
        #[arg(short, long, default_value = "SIGKILL")]
        signal: String,
        services: Vec<String>,
    },
    /// Remove stopped service containers
    Rm {
        /// Don't ask to confirm removal (berth never asks)
        #[arg(short, long)]
        force: bool,
        /// Stop the containers, if required, before removing
        #[arg(short, long)]
        stop: bool,
        /// Remove anonymous volumes attached to containers (always done)
        #[arg(short, long)]
        volumes: bool,
        services: Vec<String>,
    },
    /// Pause services
    Pause { services: Vec<String> },
    /// Unpause services
    Unpause { services: Vec<String> },
    /// Display the running processes
    Top { services: Vec<String> },
    /// Print the public port for a port binding
    Port {
        #[arg(long, default_value_t = 1)]
        index: u32,
        #[arg(long, default_value = "tcp")]
        protocol: String,
        service: String,
        private_port: String,
    },
    /// List images used by the created containers
    Images { services: Vec<String> },
    /// Parse, resolve and render the compose file in canonical format
    Config {
        #[arg(short, long)]
        quiet: bool,
        /// Print the service names, one per line
        #[arg(long)]
        services: bool,
        /// Print the volume names, one per line
        #[arg(long)]
        volumes: bool,
        service: Vec<String>,
    },
    /// List running compose projects
    Ls {
        #[arg(short, long)]
        all: bool,
        #[arg(short, long)]
        quiet: bool,
    },
}

fn load(a: &ComposeArgs, services: &[String]) -> Result<Project> {
    let mut o = LoadOptions::from_process()?;
    o.files = a.files.clone();
    o.project_name = a.project_name.clone();
    o.env_files = a.env_files.clone();
    o.profiles = a.profiles.clone();
    o.project_directory = a.project_directory.clone();
    o.services = services.to_vec();
    Ok(model::load_project(&o)?)
}

/// `berth compose ...`.
pub fn run(root: &Path, a: ComposeArgs) -> Result<i32> {
    if let ComposeCmd::Ls { all, quiet } = &a.cmd {
        out::ls(&control::ls(root, *all)?, *quiet);
        return Ok(0);
    }
    let named: Vec<String> = match &a.cmd {
        ComposeCmd::Up(u) | ComposeCmd::Create(u) => u.services.clone(),
        ComposeCmd::Run(r) => vec![r.service.clone()],
        _ => vec![],
    };
    let mut p = load(&a, &named)?;
    let sink = &mut out::event;
    match a.cmd {
        ComposeCmd::Up(u) => return up_cmd(root, &mut p, u, false),
        ComposeCmd::Create(u) => return up_cmd(root, &mut p, u, true),
        ComposeCmd::Down {
            volumes,
            rmi,
            remove_orphans,
        } => {
            let rmi = match rmi.as_deref() {
                None => None,
                Some("local") => Some(Rmi::Local),
                Some("all") => Some(Rmi::All),
                Some(o) => bail!("invalid --rmi {o:?}: want local or all"),
            };
            let o = DownOptions {
                volumes,
                rmi,
                remove_orphans,
            };
            down::down(root, &p, &o, sink)?;
        }
        ComposeCmd::Ps {
            all,
            quiet,
            services,
            format,
            service,
        } => {
            if services {
                p.services.keys().for_each(|s| println!("{s}"));
                return Ok(0);
            }
            let rows = control::ps(root, &p, &service, all)?;
            out::ps(&rows, quiet, &format)?;
        }
        ComposeCmd::Logs {
            follow,
            tail,
            timestamps,
            no_log_prefix,
            no_color,
            services,
        } => {
            let style = out::LogStyle::new(&p, timestamps, no_log_prefix, no_color);
            logs_cmd(root, &p, services, follow, tail, &style)?;
        }
        ComposeCmd::Exec(e) => return exec_cmd(root, &p, e),
        ComposeCmd::Run(r) => return run_cmd(root, &p, r),
        ComposeCmd::Build { services } => {
            let sel = model::select(&p, &services, true)?;
            cimages::build(root, &p, &sel, sink)?;
        }
        ComposeCmd::Pull {
            ignore_buildable,
            quiet: _,
            services,
        } => {
            let sel = model::select(&p, &services, true)?;
            cimages::pull(root, &p, &sel, ignore_buildable, sink)?;
        }
        ComposeCmd::Push { services } => {
            let sel = model::select(&p, &services, true)?;
            cimages::push(root, &p, &sel, sink)?;
        }
        ComposeCmd::Start { services } => {
            control::control(root, &p, &services, &Control::Start, sink)?
        }
        ComposeCmd::Stop { timeout, services } => {
            control::control(root, &p, &services, &Control::Stop { timeout }, sink)?
        }
        ComposeCmd::Restart { timeout, services } => {
            control::control(root, &p, &services, &Control::Restart { timeout }, sink)?
        }
        ComposeCmd::Kill { signal, services } => {
            control::control(root, &p, &services, &Control::Kill { signal }, sink)?
        }
        ComposeCmd::Rm {
            force: _,
            stop,
            volumes: _,
            services,
        } => control::rm(root, &p, &services, stop, sink)?,
        ComposeCmd::Pause { services } => {
            control::control(root, &p, &services, &Control::Pause, sink)?
        }
        ComposeCmd::Unpause { services } => {
            control::control(root, &p, &services, &Control::Unpause, sink)?
        }
        ComposeCmd::Top { services } => out::top(&control::top(root, &p, &services)?),
        ComposeCmd::Port {
            index,
            protocol,
            service,
            private_port,
        } => {
            let key = if private_port.contains('/') {
                private_port
            } else {
                format!("{private_port}/{protocol}")
            };
            match control::port(root, &p, &service, &key, index)? {
                Some((ip, port)) => println!("{ip}:{port}"),
                None => bail!("no port {key} for container {}-{service}-{index}", p.name),
            }
        }
        ComposeCmd::Images { services: _ } => out::images(&control::images(root, &p)?),
        ComposeCmd::Config {
            quiet,
            services,
            volumes,
            service: _,
        } => {
            if services {
                p.services.keys().for_each(|s| println!("{s}"));
            } else if volumes {
                p.volumes.keys().for_each(|s| println!("{s}"));
            } else if !quiet {
                print!("{}", model::project_yaml(&p));
            }
        }
        ComposeCmd::Ls { .. } => unreachable!("handled before loading"),
    }
    Ok(0)
}

/// `compose logs`: `--tail` parsed, Ctrl-C ending a `--follow`.
fn logs_cmd(
    root: &Path,
    p: &Project,
    services: Vec<String>,
    follow: bool,
    tail: Option<String>,
    style: &out::LogStyle,
) -> Result<()> {
    let tail = match tail.as_deref() {
        None | Some("all") => None,
        Some(n) => Some(
            n.parse()
                .map_err(|_| anyhow::anyhow!("invalid --tail {n:?}"))?,
        ),
    };
    let o = LogsOptions {
        services,
        follow,
        tail,
    };
    if follow {
        out::install_interrupt();
    }
    hull::compose::ops::logs::logs(root, p, &o, out::interrupted(), &mut |l| style.print(&l))?;
    Ok(())
}

fn up_cmd(root: &Path, p: &mut Project, u: UpArgs, create_only: bool) -> Result<i32> {
    for s in &u.scale {
        let Some((svc, n)) = s.split_once('=') else {
            bail!("invalid --scale {s:?}: want SERVICE=NUM");
        };
        let n: u32 = n
            .parse()
            .map_err(|_| anyhow::anyhow!("invalid --scale {s:?}: {n:?} is not a number"))?;
        p.set_scale(svc, n)?;
    }
    let cascade = u.abort_on_container_exit || u.exit_code_from.is_some();
    if cascade && (u.detach || u.wait) {
        let flag = if u.detach { "--detach" } else { "--wait" };
        bail!("{flag} cannot be combined with --abort-on-container-exit or --exit-code-from");
    }
    if let Some(s) = &u.exit_code_from {
        if !p.services.contains_key(s) {
            bail!("no such service: {s}");
        }
    }
    let o = UpOptions {
        services: u.services.clone(),
        no_deps: u.no_deps,
        force_recreate: u.force_recreate,
        no_recreate: u.no_recreate,
        build: u.build,
        remove_orphans: u.remove_orphans,
        no_start: create_only,
        wait: u.wait,
        timeout: u.wait_timeout.map(Duration::from_secs),
    };
    if !create_only && !u.detach && !u.wait {
        // Installed before anything starts, so a Ctrl-C during `up` still stops the project.
        out::install_interrupt();
    }
    let report = up::up(root, p, &o, &mut out::event)?;
    if create_only || u.detach || u.wait {
        return Ok(0);
    }
    let services: Vec<String> = report.containers.keys().cloned().collect();
    let style = out::LogStyle::new(p, false, false, false);
    let lo = LogsOptions {
        services,
        follow: true,
        tail: None,
    };
    if cascade {
        return follow_cascade(root, p, &u, &report, &lo, &style);
    }
    hull::compose::ops::logs::logs(root, p, &lo, out::interrupted(), &mut |l| style.print(&l))?;
    if out::interrupted().load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
        let stop = Control::Stop { timeout: None };
        control::control(root, p, &u.services, &stop, &mut out::event)?;
    }
    Ok(0)
}

/// `up --abort-on-container-exit` / `--exit-code-from`: follows the logs until the first
/// container exits (or Ctrl-C), stops the others, and returns that container's exit code, or
/// with `--exit-code-from` the named service's, as docker compose does.
fn follow_cascade(
    root: &Path,
    p: &Project,
    u: &UpArgs,
    report: &up::UpReport,
    lo: &LogsOptions,
    style: &out::LogStyle,
) -> Result<i32> {
    use hull::compose::ops::abort;
    use std::sync::atomic::AtomicBool;
    let members: Vec<(String, hull::engine::Container)> = report
        .containers
        .iter()
        .flat_map(|(s, cs)| cs.iter().map(move |c| (s.clone(), c.clone())))
        .collect();
    let done = AtomicBool::new(false);
    let first = std::thread::scope(|sc| {
        let watch = sc.spawn(|| abort::first_exit(&members, out::interrupted(), &done));
        let r = hull::compose::ops::logs::logs(root, p, lo, &done, &mut |l| style.print(&l));
        if r.is_err() {
            done.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let first = watch.join().unwrap_or(None);
        r.map(|_| first)
    })?;
    let Some(first) = first else {
        eprintln!("Gracefully stopping... (press Ctrl+C again to force)");
        let stop = Control::Stop { timeout: None };
        control::control(root, p, &u.services, &stop, &mut out::event)?;
        return Ok(0);
    };
    println!("{} exited with code {}", first.container, first.exit_code);
    eprintln!("Aborting on container exit...");
    let stop = Control::Stop { timeout: None };
    control::control(root, p, &u.services, &stop, &mut out::event)?;
    match &u.exit_code_from {
        Some(s) => Ok(abort::exit_code_of(root, &p.name, s)?),
        None => Ok(first.exit_code),
    }
}

fn exec_cmd(root: &Path, p: &Project, e: ExecArgs) -> Result<i32> {
    use std::io::IsTerminal;
    let c = control::service_container(root, p, &e.service, e.index)?;
    let tty = !e.no_tty && !e.detach && std::io::stdin().is_terminal();
    let o = hull::engine::ExecOptions {
        command: e.command,
        tty,
        detach: e.detach,
        interactive: !e.detach,
        env: e.env,
        user: e.user,
        workdir: e.workdir,
        privileged: e.privileged,
        ..Default::default()
    };
    Ok(hull::engine::exec::exec(root, &c, &o)?)
}

fn run_cmd(root: &Path, p: &Project, r: RunArgs) -> Result<i32> {
    use std::io::IsTerminal;
    let tty = !r.no_tty && !r.detach && std::io::stdin().is_terminal();
    let o = RunOptions {
        service: r.service,
        command: r.command,
        entrypoint: r.entrypoint,
        name: r.name,
        env: r.env,
        user: r.user,
        workdir: r.workdir,
        rm: r.rm,
        no_deps: r.no_deps,
        service_ports: r.service_ports,
        tty,
        interactive: r.interactive && !r.detach,
        detach: r.detach,
    };
    let c = control::run(root, p, &o, &mut out::event)?;
    if r.detach {
        println!("{}", c.config.name);
        return Ok(0);
    }
    let f = crate::io::Foreground {
        stdin: o.interactive,
        detach_keys: None,
        sig_proxy: true,
    };
    crate::io::attach_and_wait(root, &c, &f)
}
