//! berth: a docker-like CLI on top of hull. Parses flags into the
//! engine's typed options, calls `hull::engine`, prints what comes back.
//! One file per command group; `format.rs` holds the output helpers.

mod attach;
mod build;
mod compose;
mod compose_print;
mod containers;
mod format;
mod health_args;
mod images;
mod io;
mod networks;
mod progress;
mod query;
mod volumes;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};

use hull::engine::{container, EngineError};
use hull::image::store::{Store, DEFAULT_ROOT};

use containers::RunArgs;
use images::{
    HistoryArgs, ImageCmd, ImagesArgs, LoadArgs, LoginArgs, PullArgs, PushArgs, RmiArgs, SaveArgs,
};
use io::ExecArgs;
use query::{LogsArgs, PsArgs};

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "A docker-like container tool built on hull"
)]
struct Cli {
    /// Where images, snapshots and containers are kept.
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

// Parsed once per process; boxing would only obscure the dispatch.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Cmd {
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// List images
    Images(ImagesArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag { source: String, target: String },
    /// Show the history of an image
    History(HistoryArgs),
    /// Load images from a tar archive (docker-archive or OCI)
    Load(LoadArgs),
    /// Save images to a tar archive
    Save(SaveArgs),
    /// Create an image from a root filesystem tarball
    Import(build::ImportArgs),
    /// Build an image from a Dockerfile
    Build(build::BuildArgs),
    /// Create a new image from a container's changes
    Commit(build::CommitArgs),
    /// Export a container's filesystem as a tar archive
    Export(build::ExportArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout { server: Option<String> },
    /// Manage images
    #[command(subcommand)]
    Image(ImageCmd),
    /// Manage networks
    #[command(subcommand)]
    Network(networks::NetworkCmd),
    /// Manage volumes
    #[command(subcommand)]
    Volume(volumes::VolumeCmd),
    /// Define and run multi-container applications
    Compose(compose::ComposeArgs),
    #[command(flatten)]
    Containers(ContainerCmds),
    #[command(name = "__dns", hide = true)]
    Dns { network: String },
    #[command(name = "__monitor", hide = true)]
    Monitor {
        id: String,
        #[arg(long)]
        wait_attach: bool,
    },
}

#[derive(Subcommand)]
enum ContainerCmds {
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
}

#[derive(Args)]
struct RmArgs {
    #[arg(short, long)]
    force: bool,
    /// Remove anonymous volumes too
    #[arg(short, long)]
    volumes: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

#[derive(Subcommand)]
enum ContainerCmd {
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

/// One line: the context chain joined, as the team guide asks.
pub fn print_error(e: &anyhow::Error) {
    eprintln!("Error: {}", format!("{e:#}").replace('\n', " "));
}

/// The exit status for an error: berth exits 1 for every engine error
/// (tests pin it). This is where a kind would get its own code, e.g.
/// docker's 125 for `run` failing before the container started.
fn exit_code(e: &anyhow::Error) -> i32 {
    match e.downcast_ref::<EngineError>() {
        Some(_) | None => 1,
    }
}

fn main() {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            print_error(&e);
            std::process::exit(exit_code(&e));
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Cmd::Dns { network } => Ok(hull::network::dns::serve(
            &cli.root,
            &network,
            &mut std::io::stdout(),
        )),
        Cmd::Monitor { id, wait_attach } => {
            let root = Store::open(&cli.root)?.root().to_path_buf();
            Ok(hull::engine::monitor::main(&root, &id, wait_attach))
        }
        Cmd::Containers(c) => {
            let root = Store::open(&cli.root)?.root().to_path_buf();
            run_container(&root, c)
        }
        Cmd::Network(n) => {
            let root = Store::open(&cli.root)?.root().to_path_buf();
            networks::dispatch(&root, n)
        }
        Cmd::Compose(a) => compose::run(Store::open(&cli.root)?.root(), a),
        Cmd::Volume(v) => {
            let root = Store::open(&cli.root)?.root().to_path_buf();
            volumes::dispatch(&root, v)
        }
        other => run_image(&cli.root, other).map(|_| 0),
    }
}

fn run_image(root: &Path, cmd: Cmd) -> Result<()> {
    progress::install();
    match cmd {
        Cmd::Pull(a) => images::pull(root, a),
        Cmd::Push(a) => images::push(root, a),
        Cmd::Images(a) => images::images(root, a),
        Cmd::Rmi(a) => images::rmi(root, a),
        Cmd::Tag { source, target } => Ok(hull::engine::images::tag(root, &source, &target)?),
        Cmd::History(a) => images::history(root, a),
        Cmd::Load(a) => images::load(root, a),
        Cmd::Save(a) => images::save(root, a),
        Cmd::Import(a) => build::import(root, a),
        Cmd::Build(a) => build::build(root, a),
        Cmd::Commit(a) => build::commit(root, a),
        Cmd::Export(a) => build::export(root, a),
        Cmd::Login(a) => images::login(root, a),
        Cmd::Logout { server } => images::logout(root, server.as_deref()),
        Cmd::Image(c) => images::dispatch(root, c),
        _ => unreachable!("dispatched in run"),
    }
}

/// `inspect` falls back to images for names that are not containers (as docker's does).
fn inspect(root: &Path, names: &[String], format: Option<&str>) -> Result<i32> {
    if !names.iter().all(|n| container::find(root, n).is_ok()) {
        let store = Store::open(root)?;
        if names.iter().all(|n| store.lookup(n).is_ok()) && format.is_none() {
            images::inspect(root, names)?;
            return Ok(0);
        }
    }
    query::inspect(root, names, format)
}

fn run_container(root: &Path, cmd: ContainerCmds) -> Result<i32> {
    use ContainerCmds as C;
    match cmd {
        C::Run(a) | C::Container(ContainerCmd::Run(a)) => containers::run(root, &a),
        C::Create(a) | C::Container(ContainerCmd::Create(a)) => containers::create(root, &a),
        C::Start {
            attach,
            interactive,
            containers: names,
        } => containers::start(root, attach, interactive, &names),
        C::Stop {
            time,
            signal,
            containers: names,
        } => containers::stop(root, time, signal.as_deref(), &names),
        C::Restart {
            time,
            containers: names,
        } => containers::restart(root, time, &names),
        C::Kill {
            signal,
            containers: names,
        } => containers::kill(root, &signal, &names),
        C::Rm(a) | C::Container(ContainerCmd::Rm(a)) => {
            containers::rm(root, a.force, a.volumes, &a.containers)
        }
        C::Ps(a) | C::Container(ContainerCmd::Ls(a)) => query::ps(root, a),
        C::Logs(a) | C::Container(ContainerCmd::Logs(a)) => query::logs(root, a),
        C::Exec(a) => io::exec(root, a),
        C::Attach {
            no_stdin,
            container,
        } => io::attach(root, no_stdin, &container),
        C::Inspect { format, names } => inspect(root, &names, format.as_deref()),
        C::Container(ContainerCmd::Inspect { names }) => query::inspect(root, &names, None),
        C::Top { container } => query::top(root, &container),
        C::Stats {
            no_stream,
            all,
            containers: names,
        } => query::stats(root, no_stream, all, &names),
        C::Cp { src, dst } => io::cp(root, &src, &dst),
        C::Diff { container } => query::diff(root, &container),
        C::Port {
            container,
            private_port,
        } => query::port(root, &container, private_port.as_deref()),
        C::Rename {
            container,
            new_name,
        } => containers::rename(root, &container, &new_name),
        C::Wait { containers: names } => containers::wait(root, &names),
        C::Pause { containers: names } => containers::pause(root, &names, true),
        C::Unpause { containers: names } => containers::pause(root, &names, false),
        C::Container(ContainerCmd::Prune { force: _ }) => containers::prune(root),
    }
}
