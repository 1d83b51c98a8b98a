//! hull: a runc-compatible OCI runtime command line.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use hull::log::{self, Format, Level};
use hull::runtime::{create, lifecycle, template};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "hull", about = "An OCI container runtime, drop-in for runc", disable_version_flag = true)]
struct Cli {
    /// Root directory for container state
    #[arg(long, global = true)]
    root: Option<PathBuf>,
    /// Log file (default: stderr)
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    #[arg(long = "log-format", global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Also write debug records
    #[arg(long, global = true)]
    debug: bool,
    /// Use systemd to manage cgroups
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility (auto, true or false)
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    /// Accepted for runc compatibility
    #[arg(long, global = true)]
    criu: Option<PathBuf>,
    /// Print the version
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Clone)]
struct CreateArgs {
    /// Path to the bundle directory
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// File to write the container init's pid to
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is set
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Use MS_MOVE and chroot instead of pivot_root
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Do not create a new session keyring
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass N more fds (3..3+N) to the container
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// Container id
    id: String,
}

#[derive(Subcommand)]
enum Command {
    /// Create a container, waiting for start
    Create(CreateArgs),
    /// Start a created container
    Start { id: String },
    /// Create, start and wait for a container
    Run {
        #[arg(short, long)]
        detach: bool,
        #[command(flatten)]
        create: CreateArgs,
    },
    /// Print a container's state as JSON
    State { id: String },
    /// Send a signal to a container's init (or every process with --all)
    Kill {
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// List containers
    #[command(alias = "ls")]
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Write a default config.json
    Spec {
        #[arg(short, long)]
        bundle: Option<PathBuf>,
    },
}

fn default_root() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/run/hull");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("hull"),
        _ => PathBuf::from(format!("/tmp/hull-{}", nix::unistd::geteuid())),
    }
}

fn print_version() {
    println!("hull version {}", env!("CARGO_PKG_VERSION"));
    println!("commit: {}", option_env!("HULL_COMMIT").unwrap_or("unknown"));
    println!("spec: 1.2.0");
}

fn main() {
    let cli = Cli::parse();
    let format = match cli.log_format {
        LogFormat::Text => Format::Text,
        LogFormat::Json => Format::Json,
    };
    if let Err(e) = log::init(cli.log.as_deref(), format, cli.debug) {
        eprintln!("hull: {e:#}");
        std::process::exit(1);
    }
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            let msg = format!("{e:#}");
            log::record(Level::Error, &msg);
            // As runc: a human reading stderr still sees the error when records go to a file.
            if log::logs_to_file() {
                eprintln!("{msg}");
            }
            std::process::exit(1);
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    if cli.version {
        print_version();
        return Ok(0);
    }
    let Some(command) = cli.command else {
        bail!("no command given; see hull --help");
    };
    let root = cli.root.clone().unwrap_or_else(default_root);
    let rootless_flag = cli.rootless.clone();
    let make_opts = |a: &CreateArgs| create::CreateOptions {
        root: root.clone(),
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        console_fd: None,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
    };
    if cli.systemd_cgroup && matches!(command, Command::Create(_) | Command::Run { .. }) {
        bail!("--systemd-cgroup: the systemd cgroup driver is not supported yet (use cgroupfs paths)");
    }
    match command {
        Command::Create(a) => {
            create::create(&make_opts(&a))?;
        }
        Command::Start { id } => lifecycle::start(&root, &id)?,
        Command::Run { detach, create } => {
            let mut opts = make_opts(&create);
            return lifecycle::run(&mut opts, detach);
        }
        Command::State { id } => lifecycle::print_state(&root, &id)?,
        Command::Kill { all, id, signal } => lifecycle::kill(&root, &id, &signal, all)?,
        Command::Delete { force, id } => lifecycle::delete(&root, &id, force)?,
        Command::List { format, quiet } => lifecycle::list(&root, &format, quiet)?,
        Command::Spec { bundle } => {
            let rootless = rootless_flag.as_deref().is_some_and(|r| r == "true");
            let dir = bundle.unwrap_or_else(|| PathBuf::from("."));
            let path = dir.join("config.json");
            if path.exists() {
                bail!("File {} exists. Remove it first", path.display());
            }
            let text = serde_json::to_string_pretty(&template::default_spec(rootless))?;
            std::fs::write(&path, text + "\n").with_context(|| format!("write {}", path.display()))?;
        }
    }
    Ok(0)
}
