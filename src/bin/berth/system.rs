//! System commands: events, info, version, system df/prune, update, wait --condition.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use std::io::{BufRead, Write};
use std::path::Path;

use hull::engine::events::{self, Event, Query};
use hull::engine::update::{UpdateOptions, WaitCondition};
use hull::engine::{container, opts, system};

use crate::format::{human_size, print_table, template};

#[derive(Subcommand)]
pub enum SystemCmds {
    /// Get real time events from berth's containers, images, networks and volumes
    Events(EventsArgs),
    /// Display system-wide information
    Info(FormatArgs),
    /// Show the berth version information
    Version(FormatArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Manage berth
    #[command(subcommand)]
    System(SystemCmd),
}

#[derive(Subcommand)]
pub enum SystemCmd {
    /// Show disk usage
    Df {
        /// Show detailed information on space usage
        #[arg(short, long)]
        verbose: bool,
        #[arg(long)]
        format: Option<String>,
    },
    /// Remove unused data
    Prune {
        /// Remove all unused images, not just dangling ones
        #[arg(short, long)]
        all: bool,
        /// Prune anonymous volumes
        #[arg(long)]
        volumes: bool,
        /// Do not prompt for confirmation
        #[arg(short, long)]
        force: bool,
    },
    Events(EventsArgs),
    Info(FormatArgs),
}

#[derive(Args)]
pub struct FormatArgs {
    /// Format the output using the given Go template
    #[arg(short, long)]
    pub format: Option<String>,
}

#[derive(Args)]
pub struct EventsArgs {
    /// Show events created since this time (timestamp, RFC 3339 date or duration like 10m)
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this time
    #[arg(long)]
    pub until: Option<String>,
    /// container=, event=, image=, label=, type=, network=, volume=
    #[arg(short, long)]
    pub filter: Vec<String>,
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args)]
pub struct UpdateArgs {
    /// Memory limit
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Memory plus swap limit; -1 for unlimited swap
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs
    #[arg(long, allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<u64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (-1 for unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct WaitArgs {
    /// not-running (default), next-exit or removed
    #[arg(long, default_value = "not-running")]
    pub condition: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn dispatch(root: &Path, cmd: SystemCmds) -> Result<i32> {
    match cmd {
        SystemCmds::Events(a) | SystemCmds::System(SystemCmd::Events(a)) => events(root, a),
        SystemCmds::Info(a) | SystemCmds::System(SystemCmd::Info(a)) => info(root, a),
        SystemCmds::Version(a) => version(a),
        SystemCmds::Update(a) => update(root, a),
        SystemCmds::System(SystemCmd::Df { verbose, format }) => df(root, verbose, format),
        SystemCmds::System(SystemCmd::Prune {
            all,
            volumes,
            force,
        }) => prune(root, all, volumes, force),
    }
}

/// One line to stdout; false once stdout is gone (a closed pipe ends the command quietly).
fn out_line(s: &str) -> bool {
    writeln!(std::io::stdout(), "{s}").is_ok()
}

fn print_event(e: &Event, format: Option<&str>) -> bool {
    match format {
        // docker's field order (a template goes through a sorted map).
        Some("{{json .}}") => out_line(&serde_json::to_string(e).unwrap_or_default()),
        // Parsed before the first event (`events`); an execution error shows in its line.
        Some(f) => out_line(
            &template(&serde_json::to_value(e).unwrap_or_default(), f)
                .unwrap_or_else(|e| format!("{e:#}")),
        ),
        None => out_line(&e.line()),
    }
}

pub fn events(root: &Path, a: EventsArgs) -> Result<i32> {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let mut q = Query {
        since: a
            .since
            .as_deref()
            .map(|s| events::parse_time(s, now))
            .transpose()?,
        until: a
            .until
            .as_deref()
            .map(|s| events::parse_time(s, now))
            .transpose()?,
        ..Default::default()
    };
    for f in &a.filter {
        q.add_filter(f)?;
    }
    let fmt = a.format.as_deref();
    if let Some(f) = fmt {
        crate::template::parse(f)
            .map_err(|e| anyhow::anyhow!("template parsing error: template: {e}"))?;
    }
    // Past events only when a start is given (docker streams from now otherwise).
    if q.since.is_some() || q.until.is_some() {
        for e in events::read(root, &q) {
            if !print_event(&e, fmt) {
                return Ok(0);
            }
        }
    }
    if q.until.is_some_and(|u| u <= now) {
        return Ok(0);
    }
    events::follow(root, &q, |e| print_event(e, fmt))?;
    Ok(0)
}

/// docker's units.BytesSize: binary units, 4 significant digits.
fn bytes_size(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}{}", units[i])
}

pub fn info(root: &Path, a: FormatArgs) -> Result<i32> {
    let i = system::info(root)?;
    if let Some(f) = &a.format {
        out_line(&template(&serde_json::to_value(&i)?, f)?);
        return Ok(0);
    }
    let runtimes: Vec<&str> = i.runtimes.keys().map(String::as_str).collect();
    let text = format!(
        "Client:\n Context:    default\n Debug Mode: false\n\nServer:\n Containers: {}\n  Running: {}\n  Paused: {}\n  Stopped: {}\n Images: {}\n Server Version: {}\n Storage Driver: {}\n Logging Driver: json-file\n Cgroup Driver: {}\n Cgroup Version: {}\n Runtimes: {}\n Default Runtime: {}\n Kernel Version: {}\n Operating System: {}\n OSType: {}\n Architecture: {}\n CPUs: {}\n Total Memory: {}\n Name: {}\n Docker Root Dir: {}",
        i.containers, i.containers_running, i.containers_paused, i.containers_stopped, i.images,
        i.server_version, i.driver, i.cgroup_driver, i.cgroup_version, runtimes.join(" "),
        i.default_runtime, i.kernel_version, i.operating_system, i.os_type, i.architecture,
        i.ncpu, bytes_size(i.mem_total), i.name, i.docker_root_dir,
    );
    out_line(&text);
    Ok(0)
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

pub fn version(a: FormatArgs) -> Result<i32> {
    let v = env!("CARGO_PKG_VERSION");
    let os_arch = format!("linux/{}", go_arch());
    let rt = hull::engine::runtime::resolve(None).unwrap_or_default();
    let rt_version = std::process::Command::new(&rt)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(|l| l.split_whitespace().last().unwrap_or("").to_string())
        })
        .unwrap_or_default();
    let doc = serde_json::json!({
        "Client": {"Platform": {"Name": "berth"}, "Version": v, "Os": "linux", "Arch": go_arch(), "Context": "default"},
        "Server": {"Platform": {"Name": "berth (daemonless)"}, "Version": v, "Os": "linux", "Arch": go_arch(),
            "Components": [{"Name": "Engine", "Version": v}, {"Name": "hull", "Version": rt_version}]},
    });
    if let Some(f) = &a.format {
        out_line(&template(&doc, f)?);
        return Ok(0);
    }
    out_line(&format!(
        "Client:\n Version:           {v}\n OS/Arch:           {os_arch}\n Context:           default\n\nServer: berth (daemonless)\n Engine:\n  Version:          {v}\n  OS/Arch:          {os_arch}\n hull:\n  Version:          {rt_version}"
    ));
    Ok(0)
}

fn reclaimable(r: &system::DfRow) -> String {
    if r.typ == "Build Cache" || r.size == 0 {
        return human_size(r.reclaimable);
    }
    format!(
        "{} ({}%)",
        human_size(r.reclaimable),
        r.reclaimable * 100 / r.size
    )
}

pub fn df(root: &Path, verbose: bool, format: Option<String>) -> Result<i32> {
    let d = system::df(root)?;
    if let Some(f) = &format {
        for r in &d.rows {
            let mut v = serde_json::to_value(r)?;
            v["Size"] = human_size(r.size).into();
            v["Reclaimable"] = reclaimable(r).into();
            out_line(&template(&v, f)?);
        }
        return Ok(0);
    }
    if verbose {
        return df_verbose(&d);
    }
    let mut rows = vec![["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
        .map(String::from)
        .to_vec()];
    for r in &d.rows {
        rows.push(vec![
            r.typ.clone(),
            r.total_count.to_string(),
            r.active.to_string(),
            human_size(r.size),
            reclaimable(r),
        ]);
    }
    print_table(&rows);
    Ok(0)
}

fn df_verbose(d: &system::Df) -> Result<i32> {
    let section = |title: &str, head: [&str; 3], items: &[system::DfItem]| {
        out_line(&format!("{title}\n"));
        let mut rows = vec![head.map(String::from).to_vec()];
        for i in items {
            rows.push(vec![
                i.name.clone(),
                human_size(i.size),
                i.links.to_string(),
            ]);
        }
        print_table(&rows);
        out_line("");
    };
    section(
        "Images space usage:",
        ["IMAGE", "SIZE", "CONTAINERS"],
        &d.images,
    );
    section(
        "Containers space usage:",
        ["NAMES", "SIZE", "RUNNING"],
        &d.containers,
    );
    section(
        "Local Volumes space usage:",
        ["VOLUME NAME", "SIZE", "LINKS"],
        &d.volumes,
    );
    out_line("Build cache usage: 0B");
    Ok(0)
}

/// docker's `[y/N]` prompt on stdin; anything but y/yes is no.
fn confirm(warning: &str) -> bool {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

pub fn prune(root: &Path, all: bool, volumes: bool, force: bool) -> Result<i32> {
    let mut warn = String::from(
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container",
    );
    if volumes {
        warn.push_str("\n  - all anonymous volumes not used by at least one container");
    }
    warn.push_str(if all {
        "\n  - all images without at least one container associated to them"
    } else {
        "\n  - all dangling images"
    });
    warn.push_str("\n  - unused build cache\n");
    if !force && !confirm(&warn) {
        return Ok(0);
    }
    let r = system::prune(root, all, volumes)?;
    for (title, list) in [
        ("Deleted Containers:", &r.containers),
        ("Deleted Networks:", &r.networks),
        ("Deleted Volumes:", &r.volumes),
    ] {
        if !list.is_empty() {
            out_line(&format!("{title}\n{}\n", list.join("\n")));
        }
    }
    if !r.images.is_empty() {
        let lines: Vec<String> = r.images.iter().map(|d| format!("deleted: {d}")).collect();
        out_line(&format!("Deleted Images:\n{}\n", lines.join("\n")));
    }
    if !r.build_cache.is_empty() {
        let ids: Vec<&str> = r
            .build_cache
            .iter()
            .map(|d| d.strip_prefix("sha256:").unwrap_or(d))
            .collect();
        out_line(&format!(
            "Deleted build cache objects:\n{}\n",
            ids.join("\n")
        ));
    }
    out_line(&format!(
        "Total reclaimed space: {}",
        human_size(r.reclaimed)
    ));
    Ok(0)
}

fn update_options(a: &UpdateArgs) -> Result<UpdateOptions> {
    let o = UpdateOptions {
        memory: a.memory.as_deref().map(opts::parse_size).transpose()?,
        memory_swap: match a.memory_swap.as_deref() {
            Some("-1") => Some(-1),
            s => s.map(opts::parse_size).transpose()?,
        },
        cpus: a.cpus.as_deref().map(opts::parse_cpus).transpose()?,
        cpu_shares: a.cpu_shares,
        cpuset_cpus: a.cpuset_cpus.clone(),
        pids_limit: a.pids_limit,
        restart: a.restart.as_deref().map(opts::parse_restart).transpose()?,
    };
    if o == UpdateOptions::default() {
        bail!("you must provide one or more flags when using this command");
    }
    Ok(o)
}

/// docker's update: goes on after a failure, one error line each, exit 1.
pub fn update(root: &Path, a: UpdateArgs) -> Result<i32> {
    let o = update_options(&a)?;
    let mut failed = false;
    for n in &a.containers {
        let r = container::find(root, n)
            .map_err(hull::engine::EngineError::from)
            .and_then(|c| hull::engine::update::update(root, &c, &o));
        match r {
            Ok(()) => {
                out_line(n);
            }
            Err(e) => {
                crate::print_error(&e.into());
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

pub fn wait(root: &Path, a: &WaitArgs) -> Result<i32> {
    let cond = WaitCondition::parse(&a.condition)?;
    for n in &a.containers {
        let c = container::find(root, n)?;
        out_line(&hull::engine::update::wait(&c, cond)?.to_string());
    }
    Ok(0)
}
