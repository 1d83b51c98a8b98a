//! hull: a runc-compatible OCI runtime command line.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use hull::log::{self, Format, Level};
use hull::runtime::{cgroup_cmds, checkpoint, create, lifecycle, template};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "hull",
    about = "An OCI container runtime, drop-in for runc",
    disable_version_flag = true
)]
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

#[derive(Args)]
struct ExecArgs {
    /// Process JSON file (or - for stdin) instead of inline args
    #[arg(short, long)]
    process: Option<PathBuf>,
    /// Allocate a pty
    #[arg(short, long)]
    tty: bool,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// Return once the process started
    #[arg(short, long)]
    detach: bool,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(long)]
    cwd: Option<PathBuf>,
    /// KEY=VALUE, repeatable
    #[arg(short, long)]
    env: Vec<String>,
    /// uid[:gid]
    #[arg(short, long)]
    user: Option<String>,
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// Add a capability, repeatable
    #[arg(short, long)]
    cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    #[arg(long)]
    apparmor: Option<String>,
    #[arg(long = "process-label")]
    process_label: Option<String>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    /// Exec even if the container is paused
    #[arg(long = "ignore-paused")]
    ignore_paused: bool,
    /// Run in an existing sub-cgroup: [CONTROLLER[,CONTROLLER]:]PATH, repeatable
    #[arg(long = "cgroup")]
    cgroup: Vec<String>,
    /// Container id
    id: String,
    /// Command and arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
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
    /// Run a process inside a running container
    Exec(ExecArgs),
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
    /// Print the OCI features JSON: what this build of hull supports
    Features,
    /// Update a running container's resource limits
    Update(UpdateCli),
    /// Suspend every process in a container (cgroup freezer)
    Pause { id: String },
    /// Resume a paused container
    Resume { id: String },
    /// List the processes of a container
    Ps {
        /// table (ps output filtered to the container) or json (an array of pids)
        #[arg(short, long, default_value = "table")]
        format: String,
        id: String,
        /// Arguments for ps (default -ef)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Print a container's resource usage and OOM events as JSON
    Events {
        /// Print one stats event and exit
        #[arg(long)]
        stats: bool,
        /// Time between stats events (Go duration: 5s, 500ms)
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Checkpoint a running container with CRIU
    Checkpoint(CheckpointCli),
    /// Restore a container from a CRIU checkpoint
    Restore(RestoreCli),
    /// Write a default config.json
    Spec {
        #[arg(short, long)]
        bundle: Option<PathBuf>,
    },
}

#[derive(Args)]
struct UpdateCli {
    /// LinuxResources JSON file, or - for stdin
    #[arg(short, long)]
    resources: Option<PathBuf>,
    /// Memory limit (bytes, or with k/m/g suffix)
    #[arg(long, allow_hyphen_values = true)]
    memory: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", allow_hyphen_values = true)]
    memory_reservation: Option<String>,
    /// Kernel memory limit (v1 kernels that still have it)
    #[arg(long = "kernel-memory", allow_hyphen_values = true)]
    kernel_memory: Option<String>,
    /// Kernel TCP buffer limit (v1 kernels that still have it)
    #[arg(long = "kernel-memory-tcp", allow_hyphen_values = true)]
    kernel_memory_tcp: Option<String>,
    /// CPU shares (relative weight)
    #[arg(long = "cpu-shares")]
    cpu_shares: Option<u64>,
    /// CPU CFS quota in microseconds (-1 for none)
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    cpu_quota: Option<i64>,
    /// CPU CFS period in microseconds
    #[arg(long = "cpu-period")]
    cpu_period: Option<u64>,
    /// CPU real-time period in microseconds
    #[arg(long = "cpu-rt-period")]
    cpu_rt_period: Option<u64>,
    /// CPU real-time runtime in microseconds
    #[arg(long = "cpu-rt-runtime", allow_hyphen_values = true)]
    cpu_rt_runtime: Option<i64>,
    /// CPUs to allow (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Memory nodes to allow (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    /// Maximum number of pids (-1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pids_limit: Option<i64>,
    /// Block IO weight (10-1000)
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
    /// Intel RDT L3 cache schema (not supported)
    #[arg(long = "l3-cache-schema")]
    l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (not supported)
    #[arg(long = "mem-bw-schema")]
    mem_bw_schema: Option<String>,
    id: String,
}

/// CRIU options `checkpoint` and `restore` share, named as runc names them.
#[derive(Args)]
struct CriuCli {
    /// Directory for the CRIU image files
    #[arg(long = "image-path")]
    image_path: Option<PathBuf>,
    /// Directory for CRIU's logs and work files
    #[arg(long = "work-path")]
    work_path: Option<PathBuf>,
    /// Previous pre-dump, relative to the image path
    #[arg(long = "parent-path")]
    parent_path: Option<PathBuf>,
    /// Keep the container running after the checkpoint
    #[arg(long = "leave-running")]
    leave_running: bool,
    /// Allow open TCP connections
    #[arg(long = "tcp-established")]
    tcp_established: bool,
    /// Allow external unix sockets
    #[arg(long = "ext-unix-sk")]
    ext_unix_sk: bool,
    /// Allow shell jobs
    #[arg(long = "shell-job")]
    shell_job: bool,
    /// Handle file locks
    #[arg(long = "file-locks")]
    file_locks: bool,
    /// Only dump memory, leaving the container running
    #[arg(long = "pre-dump")]
    pre_dump: bool,
    /// soft, full, strict or ignore
    #[arg(long = "manage-cgroups-mode")]
    manage_cgroups_mode: Option<String>,
    /// Namespaces to create empty on restore (network)
    #[arg(long = "empty-ns")]
    empty_ns: Vec<String>,
    /// Use userfaultfd lazy pages
    #[arg(long = "lazy-pages")]
    lazy_pages: bool,
    /// fd CRIU writes to when the lazy-pages server is ready
    #[arg(long = "status-fd")]
    status_fd: Option<i32>,
}

#[derive(Args)]
struct CheckpointCli {
    #[command(flatten)]
    criu: CriuCli,
    /// Let CRIU link open but deleted files back (CRIU's --link-remap)
    #[arg(long = "link-remap")]
    link_remap: bool,
    id: String,
}

#[derive(Args)]
struct RestoreCli {
    #[command(flatten)]
    criu: CriuCli,
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    #[arg(short, long)]
    detach: bool,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Do not become the restored tree's subreaper
    #[arg(long = "no-subreaper")]
    no_subreaper: bool,
    id: String,
}

fn criu_options(c: CriuCli, criu: Option<PathBuf>) -> checkpoint::CriuOptions {
    checkpoint::CriuOptions {
        criu,
        image_path: c.image_path,
        work_path: c.work_path,
        parent_path: c.parent_path,
        leave_running: c.leave_running,
        tcp_established: c.tcp_established,
        ext_unix_sk: c.ext_unix_sk,
        shell_job: c.shell_job,
        file_locks: c.file_locks,
        pre_dump: c.pre_dump,
        manage_cgroups_mode: c.manage_cgroups_mode,
        empty_ns: c.empty_ns,
        lazy_pages: c.lazy_pages,
        status_fd: c.status_fd,
        link_remap: false,
    }
}

/// go-runc passes some long flags with one dash (`-no-subreaper`), which Go's flag parser takes
/// and clap does not: give them their second dash.
fn normalize_args(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    const SINGLE_DASH: &[&str] = &["-no-subreaper", "-detach", "-work-path", "-image-path"];
    args.map(|a| match a.to_str() {
        Some(s) if SINGLE_DASH.contains(&s) => format!("-{s}").into(),
        _ => a,
    })
    .collect()
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
    println!(
        "commit: {}",
        option_env!("HULL_COMMIT").unwrap_or("unknown")
    );
    println!("spec: 1.2.0");
}

fn main() {
    let cli = Cli::parse_from(normalize_args(std::env::args_os()));
    if matches!(
        cli.command,
        Some(Command::Create(_))
            | Some(Command::Run { .. })
            | Some(Command::Exec(_))
            | Some(Command::Restore(_))
    ) {
        if let Err(e) = hull::runtime::sealed::reexec_sealed() {
            eprintln!("hull: {e:#}");
            std::process::exit(1);
        }
    }
    let passed_fds = match &cli.command {
        Some(Command::Create(a)) | Some(Command::Run { create: a, .. }) => {
            a.preserve_fds + hull::runtime::fds::listen_fds_from_env()
        }
        Some(Command::Exec(a)) => a.preserve_fds,
        _ => 0,
    };
    hull::runtime::fds::snapshot(passed_fds);
    // Commands that only print die quietly when their reader goes away (`hull features | head`),
    // as C tools do. Others keep SIGPIPE ignored: they write to sockets and hook stdins, where
    // a vanished peer must be an error, not a kill.
    if matches!(
        cli.command,
        None | Some(Command::Features)
            | Some(Command::List { .. })
            | Some(Command::State { .. })
            | Some(Command::Ps { .. })
            | Some(Command::Events { .. })
    ) {
        // SAFETY: setting a signal disposition before any other thread exists.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
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
        systemd_cgroup: cli.systemd_cgroup,
    };
    match command {
        Command::Create(a) => {
            create::create(&make_opts(&a))?;
        }
        Command::Start { id } => lifecycle::start(&root, &id)?,
        Command::Run { detach, create } => {
            let mut opts = make_opts(&create);
            return lifecycle::run(&mut opts, detach);
        }
        Command::State { id } => println!(
            "{}",
            serde_json::to_string_pretty(&lifecycle::state(&root, &id)?)?
        ),
        Command::Exec(a) => {
            let opts = hull::runtime::exec::ExecOptions {
                root: root.clone(),
                id: a.id,
                process_file: a.process,
                args: a.command,
                tty: a.tty,
                console_socket: a.console_socket,
                detach: a.detach,
                pid_file: a.pid_file,
                cwd: a.cwd,
                env: a.env,
                user: a.user,
                additional_gids: a.additional_gids,
                caps: a.cap,
                no_new_privs: a.no_new_privs,
                apparmor: a.apparmor,
                process_label: a.process_label,
                preserve_fds: a.preserve_fds,
                ignore_paused: a.ignore_paused,
                cgroup: a.cgroup,
            };
            return hull::runtime::exec::exec(&opts);
        }
        Command::Kill { all, id, signal } => lifecycle::kill(&root, &id, &signal, all)?,
        Command::Delete { force, id } => lifecycle::delete(&root, &id, force)?,
        Command::List { format, quiet } => print_list(&lifecycle::list(&root)?, &format, quiet)?,
        Command::Features => {
            println!(
                "{}",
                serde_json::to_string_pretty(&hull::runtime::features::features())?
            );
        }
        Command::Update(u) => {
            let args = cgroup_cmds::UpdateArgs {
                resources: u.resources,
                memory: u.memory,
                memory_swap: u.memory_swap,
                memory_reservation: u.memory_reservation,
                kernel_memory: u.kernel_memory,
                kernel_memory_tcp: u.kernel_memory_tcp,
                cpu_shares: u.cpu_shares,
                cpu_quota: u.cpu_quota,
                cpu_period: u.cpu_period,
                cpu_rt_period: u.cpu_rt_period,
                cpu_rt_runtime: u.cpu_rt_runtime,
                cpuset_cpus: u.cpuset_cpus,
                cpuset_mems: u.cpuset_mems,
                pids_limit: u.pids_limit,
                blkio_weight: u.blkio_weight,
                l3_cache_schema: u.l3_cache_schema,
                mem_bw_schema: u.mem_bw_schema,
            };
            cgroup_cmds::update(&root, &u.id, &args)?;
        }
        Command::Pause { id } => cgroup_cmds::pause(&root, &id)?,
        Command::Resume { id } => cgroup_cmds::resume(&root, &id)?,
        Command::Ps {
            format,
            id,
            ps_args,
        } => print!("{}", cgroup_cmds::ps(&root, &id, &format, &ps_args)?),
        Command::Events {
            stats,
            interval,
            id,
        } => {
            let interval = cgroup_cmds::parse_duration(&interval)?;
            cgroup_cmds::events(&root, &id, stats, interval, &mut std::io::stdout().lock())?;
        }
        Command::Checkpoint(a) => {
            let opts = checkpoint::CriuOptions {
                link_remap: a.link_remap,
                ..criu_options(a.criu, cli.criu.clone())
            };
            checkpoint::checkpoint(&root, &a.id, &opts)?;
        }
        Command::Restore(a) => {
            let opts = checkpoint::RestoreOptions {
                criu: criu_options(a.criu, cli.criu.clone()),
                bundle: a.bundle,
                detach: a.detach,
                pid_file: a.pid_file,
                console_socket: a.console_socket,
                no_pivot: a.no_pivot,
                no_subreaper: a.no_subreaper,
            };
            return checkpoint::restore(&root, &a.id, &opts);
        }
        Command::Spec { bundle } => {
            let rootless = rootless_flag.as_deref().is_some_and(|r| r == "true");
            let dir = bundle.unwrap_or_else(|| PathBuf::from("."));
            let path = dir.join("config.json");
            if path.exists() {
                bail!("File {} exists. Remove it first", path.display());
            }
            let text = serde_json::to_string_pretty(&template::default_spec(rootless))?;
            std::fs::write(&path, text + "\n")
                .with_context(|| format!("write {}", path.display()))?;
        }
    }
    Ok(0)
}

/// `list`'s output: ids only (`-q`), runc's JSON, or runc's table.
fn print_list(rows: &[serde_json::Value], format: &str, quiet: bool) -> Result<()> {
    let field = |r: &serde_json::Value, k: &str| match &r[k] {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    if quiet {
        for r in rows {
            println!("{}", field(r, "id"));
        }
        return Ok(());
    }
    match format {
        "json" => println!("{}", serde_json::to_string(rows)?),
        "table" => {
            let mut table = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                .map(String::from)
                .to_vec()];
            for r in rows {
                let owner = match field(r, "owner") {
                    o if o.is_empty() => "root".to_string(),
                    o => o,
                };
                table.push(vec![
                    field(r, "id"),
                    field(r, "pid"),
                    field(r, "status"),
                    field(r, "bundle"),
                    field(r, "created"),
                    owner,
                ]);
            }
            print_table(&table);
        }
        other => anyhow::bail!("--format: unknown format {other:?} (table or json)"),
    }
    Ok(())
}

/// Prints rows padded like Go's tabwriter with runc's settings (min width 12, padding 3).
fn print_table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
                .max(9)
                + 3
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        println!("{line}");
    }
}
