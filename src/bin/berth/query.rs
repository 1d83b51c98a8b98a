//! Commands that read containers: ps, inspect, logs, stats, top, port, diff.

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use hull::engine::container::{self, Container};
use hull::engine::{exec, logs, query, Filter, Filters};

use crate::format::{stats_size, template, trunc};

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

fn id_of(c: &Container, no_trunc: bool) -> &str {
    if no_trunc {
        c.id()
    } else {
        c.short_id()
    }
}

pub fn ps(root: &Path, a: PsArgs) -> Result<i32> {
    let f = Filters {
        all: a.all,
        latest: a.latest,
        filters: a
            .filter
            .iter()
            .map(|f| Filter::parse(f))
            .collect::<Result<_, _>>()?,
    };
    let list = query::list(root, &f)?;
    if let Some(fmt) = &a.format {
        for c in &list {
            let v = json!({
                "ID": id_of(c, a.no_trunc),
                "Names": c.config.name,
                "Image": c.config.image,
                "Command": format!("\"{}\"", c.config.args.join(" ")),
                "CreatedAt": c.config.created,
                "Status": c.status_text(),
                "State": c.docker_status().as_str(),
                "Ports": query::ports_text(c),
            });
            println!("{}", template(&v, fmt.trim_start_matches("table ")));
        }
        return Ok(0);
    }
    if a.quiet {
        for c in &list {
            println!("{}", id_of(c, a.no_trunc));
        }
        return Ok(0);
    }
    let mut rows = vec![[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    .map(String::from)
    .to_vec()];
    for c in &list {
        let cmd = format!("\"{}\"", c.config.args.join(" "));
        rows.push(vec![
            id_of(c, a.no_trunc).to_string(),
            c.config.image.clone(),
            if a.no_trunc { cmd } else { trunc(&cmd, 20) },
            format!("{} ago", container::human_duration(&c.config.created)),
            c.status_text(),
            query::ports_text(c),
            c.config.name.clone(),
        ]);
    }
    print_ps_table(&rows);
    Ok(0)
}

/// ps keeps padding the last-but-one column even when the row's last cell is empty.
fn print_ps_table(rows: &[Vec<String>]) {
    let mut w = [0usize; 7];
    for (i, wi) in w.iter_mut().enumerate() {
        *wi = rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    }
    for r in rows {
        let mut s = String::new();
        for i in 0..7 {
            if i == 6 {
                s.push_str(&r[i]);
            } else {
                s.push_str(&format!("{:<width$}   ", r[i], width = w[i]));
            }
        }
        println!("{s}");
    }
}

pub fn logs(root: &Path, a: LogsArgs) -> Result<i32> {
    let c = container::find(root, &a.container)?;
    logs::check_readable(&c)?;
    let tail = match a.tail.as_deref() {
        None | Some("all") => None,
        Some(n) => Some(n.parse().with_context(|| format!("invalid --tail {n:?}"))?),
    };
    let dir = c.dir.clone();
    let running = || {
        Container::load_dir(&dir)
            .map(|c| c.monitor_alive())
            .unwrap_or(false)
    };
    logs::show(&c.log_path(), tail, a.follow, &running, &mut |l| {
        print_line(l, a.timestamps)
    })?;
    Ok(0)
}

fn print_line(l: &logs::Line, timestamps: bool) {
    let mut s = String::new();
    if timestamps {
        s.push_str(&l.time);
        s.push(' ');
    }
    s.push_str(&l.log);
    if l.stream == "stderr" {
        let _ = std::io::stderr().write_all(s.as_bytes());
    } else {
        let mut o = std::io::stdout();
        let _ = o.write_all(s.as_bytes());
        let _ = o.flush();
    }
}

/// Container inspect (the CLI falls back to images for other names).
pub fn inspect(root: &Path, names: &[String], format: Option<&str>) -> Result<i32> {
    let mut all = Vec::new();
    for n in names {
        let c = container::find(root, n)?;
        all.push(query::inspect(root, &c));
    }
    match format {
        Some(f) => {
            for v in &all {
                println!("{}", template(v, f));
            }
        }
        None => println!(
            "{}",
            serde_json::to_string_pretty(&all).context("encoding inspect")?
        ),
    }
    Ok(0)
}

pub fn top(root: &Path, name: &str) -> Result<i32> {
    let c = container::find(root, name)?;
    let procs = query::top(root, &c)?;
    println!("{:<8} {:<8} {:<8} CMD", "UID", "PID", "PPID");
    for p in procs {
        println!("{:<8} {:<8} {:<8} {}", p.uid, p.pid, p.ppid, p.cmd);
    }
    Ok(0)
}

pub fn stats(root: &Path, no_stream: bool, all: bool, names: &[String]) -> Result<i32> {
    let list = query::stats_targets(root, names, all)?;
    loop {
        let usage = query::stats(root, &list, Duration::from_millis(500))?;
        println!(
            "{:<14} {:<20} {:<8} {:<22} {:<8} {:<20} {:<20} PIDS",
            "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O"
        );
        for u in &usage {
            println!(
                "{:<14} {:<20} {:<8} {:<22} {:<8} {:<20} {:<20} {}",
                u.id,
                u.name,
                format!("{:.2}%", u.cpu_percent),
                format!(
                    "{:.2}MiB / {:.2}GiB",
                    u.mem as f64 / 1048576.0,
                    u.mem_limit as f64 / 1073741824.0
                ),
                format!("{:.2}%", u.mem as f64 / u.mem_limit.max(1) as f64 * 100.0),
                format!("{} / {}", stats_size(u.net_rx), stats_size(u.net_tx)),
                format!("{} / {}", stats_size(u.blk_read), stats_size(u.blk_write)),
                u.pids
            );
        }
        if no_stream {
            return Ok(0);
        }
    }
}

pub fn port(root: &Path, name: &str, private: Option<&str>) -> Result<i32> {
    let c = container::find(root, name)?;
    for (key, ip, port) in query::ports(&c, private) {
        if private.is_some() {
            println!("{ip}:{port}");
        } else {
            println!("{key} -> {ip}:{port}");
        }
    }
    Ok(0)
}

pub fn diff(root: &Path, name: &str) -> Result<i32> {
    for (k, p) in exec::diff(root, name)? {
        println!("{k} {p}");
    }
    Ok(0)
}
