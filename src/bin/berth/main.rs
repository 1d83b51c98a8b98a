//! berth: a docker-like CLI on top of hull. Parses flags into the
//! engine's typed options, calls `hull::engine`, prints what comes back.
//! One file per command group; `format.rs` holds the output helpers.

mod attach;
mod build;
mod builder;
mod compose;
mod compose_print;
mod containers;
mod cp;
mod format;
mod health_args;
mod image_list;
mod images;
mod io;
mod networks;
mod progress;
mod query;
mod run_flags;
mod signals;
mod stats;
mod system;
mod template;
mod volumes;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};

use hull::engine::EngineError;
use hull::image::store::{Store, DEFAULT_ROOT};

use containers::RunArgs;
use images::{
    HistoryArgs, ImageCmd, ImagesArgs, LoadArgs, LoginArgs, PullArgs, PushArgs, RmiArgs, SaveArgs,
};
use io::ExecArgs;
use query::{InspectArgs, LogsArgs, PsArgs};

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
    /// Manage builds
    #[command(subcommand)]
    Builder(builder::BuilderCmd),
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
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Define and run multi-container applications
    Compose(compose::ComposeArgs),
    #[command(flatten)]
    Containers(ContainerCmds),
    #[command(flatten)]
    System(system::SystemCmds),
    #[command(name = "__dns", hide = true)]
    Dns { network: String },
    #[command(name = "__monitor", hide = true)]
    Monitor {
        id: String,
        #[arg(long)]
        wait_attach: bool,
        #[arg(long)]
        adopt: bool,
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
        /// Override the key sequence for detaching a container
        #[arg(long)]
        detach_keys: Option<String>,
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
    Attach(io::AttachArgs),
    /// Display detailed information on containers, images, networks or volumes
    Inspect(InspectArgs),
    /// Display the running processes of a container (ps options may follow)
    Top(stats::TopArgs),
    /// Display resource usage statistics
    Stats(stats::StatsArgs),
    /// Copy files between a container and the host (CONTAINER:PATH, or - for a tar stream)
    Cp(cp::CpArgs),
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
    Wait(system::WaitArgs),
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
}

#[derive(Args)]
struct RmArgs {
    #[arg(short, long)]
    force: bool,
    /// Remove anonymous volumes too
    #[arg(short, long)]
    volumes: bool,
    /// Remove the specified link (PARENT/ALIAS), not the container
    #[arg(short, long)]
    link: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

/// `berth container ...`: every container command, plus ls and prune.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum ContainerCmd {
    /// Remove all stopped containers
    Prune {
        #[arg(short, long)]
        force: bool,
    },
    /// List containers
    #[command(visible_alias = "list")]
    Ls(PsArgs),
    /// Update configuration of one or more containers
    Update(system::UpdateArgs),
    #[command(flatten)]
    Common(ContainerCmds),
}

/// One line: the context chain joined, as the team guide asks.
pub fn print_error(e: &anyhow::Error) {
    eprintln!("Error: {}", format!("{e:#}").replace('\n', " "));
}

/// The exit status for an error, docker's: `run`/`create` exit 125 when
/// berth failed, 126 when the command could not be invoked, 127 when it was
/// not found; other commands exit 1.
fn exit_code(e: &anyhow::Error, run_like: bool) -> i32 {
    if !run_like {
        return 1;
    }
    match e.downcast_ref::<EngineError>() {
        Some(EngineError::CommandNotFound(_)) => 127,
        Some(EngineError::CommandNotRunnable(_)) => 126,
        _ => 125,
    }
}

/// Printing commands die quietly on a closed pipe (`berth ps | head -0`), as
/// docker's do, instead of panicking in println!. The monitor, the DNS
/// server and the commands that proxy a container's stdio keep SIGPIPE
/// ignored: they see EPIPE and clean up.
fn default_sigpipe(cmd: &Cmd) -> bool {
    use ContainerCmds as C;
    let stdio = |c: &ContainerCmds| {
        matches!(
            c,
            C::Run(_) | C::Create(_) | C::Start { .. } | C::Attach { .. } | C::Exec(_)
        )
    };
    match cmd {
        Cmd::Monitor { .. } | Cmd::Dns { .. } => false,
        Cmd::Containers(c) | Cmd::Container(ContainerCmd::Common(c)) => !stdio(c),
        _ => true,
    }
}

fn main() {
    // docker's CLI exits 125 for a flag it cannot parse; help and version exit 0.
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        let code = if e.use_stderr() { 125 } else { 0 };
        let _ = e.print();
        std::process::exit(code)
    });
    if default_sigpipe(&cli.cmd) {
        // SAFETY: setting a signal's disposition to SIG_DFL has no
        // preconditions; no other thread exists yet.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    let run_like = matches!(
        &cli.cmd,
        Cmd::Containers(ContainerCmds::Run(_) | ContainerCmds::Create(_))
            | Cmd::Container(ContainerCmd::Common(
                ContainerCmds::Run(_) | ContainerCmds::Create(_)
            ))
    );
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            print_error(&e);
            std::process::exit(exit_code(&e, run_like));
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
        Cmd::Monitor {
            id,
            wait_attach,
            adopt,
        } => {
            let root = Store::open(&cli.root)?.root().to_path_buf();
            if adopt {
                return Ok(hull::engine::recover::adopt_main(&root, &id));
            }
            Ok(hull::engine::monitor::main(&root, &id, wait_attach))
        }
        Cmd::Containers(c) => {
            let root = Store::open(&cli.root)?.root().to_path_buf();
            // Recovery is best effort: the command itself must still run.
            let _ = hull::engine::recover::recover(&root);
            run_container(&root, c)
        }
        Cmd::Container(c) => {
            let root = Store::open(&cli.root)?.root().to_path_buf();
            match c {
                ContainerCmd::Prune { force } => {
                    if !force && !format::confirm("This will remove all stopped containers.")? {
                        return Ok(0);
                    }
                    containers::prune(&root)
                }
                ContainerCmd::Ls(a) => query::ps(&root, a),
                ContainerCmd::Update(a) => system::dispatch(&root, system::SystemCmds::Update(a)),
                ContainerCmd::Common(ContainerCmds::Inspect(a)) => {
                    query::inspect(&root, a.of("container"))
                }
                ContainerCmd::Common(c) => run_container(&root, c),
            }
        }
        Cmd::Network(n) => {
            let root = Store::open(&cli.root)?.root().to_path_buf();
            let _ = hull::engine::recover::recover(&root);
            networks::dispatch(&root, n)
        }
        Cmd::System(s) => {
            let root = Store::open(&cli.root)?.root().to_path_buf();
            system::dispatch(&root, s)
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
    // Commands that write to the image store take Ctrl-C themselves, so an interrupted pull,
    // load or import removes its temps and leaves the store as it was.
    if matches!(
        cmd,
        Cmd::Pull(_)
            | Cmd::Load(_)
            | Cmd::Import(_)
            | Cmd::Image(_)
            | Cmd::Build(_)
            | Cmd::Commit(_)
    ) {
        hull::image::interrupt::handle_signals()?;
    }
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
        Cmd::Builder(c) => builder::dispatch(root, c),
        Cmd::Login(a) => images::login(root, a),
        Cmd::Logout { server } => images::logout(root, server.as_deref()),
        Cmd::Image(c) => images::dispatch(root, c),
        _ => unreachable!("dispatched in run"),
    }
}

fn run_container(root: &Path, cmd: ContainerCmds) -> Result<i32> {
    use ContainerCmds as C;
    match cmd {
        C::Run(a) => containers::run(root, &a),
        C::Create(a) => containers::create(root, &a),
        C::Start {
            attach,
            interactive,
            detach_keys,
            containers: names,
        } => containers::start(root, attach, interactive, detach_keys.as_deref(), &names),
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
        C::Rm(a) if a.link => containers::rm_links(root, &a.containers),
        C::Rm(a) => containers::rm(root, a.force, a.volumes, &a.containers),
        C::Ps(a) => query::ps(root, a),
        C::Logs(a) => query::logs(root, a),
        C::Exec(a) => io::exec(root, a),
        C::Attach(a) => io::attach(root, &a),
        C::Inspect(a) => query::inspect(root, a),
        C::Top(a) => stats::top(root, a),
        C::Stats(a) => stats::stats(root, a),
        C::Cp(a) => cp::cp(root, a),
        C::Diff { container } => query::diff(root, &container),
        C::Port {
            container,
            private_port,
        } => query::port(root, &container, private_port.as_deref()),
        C::Rename {
            container,
            new_name,
        } => containers::rename(root, &container, &new_name),
        C::Wait(a) => system::wait(root, &a),
        C::Pause { containers: names } => containers::pause(root, &names, true),
        C::Unpause { containers: names } => containers::pause(root, &names, false),
    }
}
