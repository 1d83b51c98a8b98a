//! Commands that read containers: ps, inspect, logs, stats, top, port, diff.

use anyhow::{Context, Result};
use clap::Args;
use serde_json::json;
use std::io::Write;
use std::path::Path;

use hull::engine::container::{self, Container};
use hull::engine::{exec, logs, query, Filter, Filters};

use crate::format::{self, human_size, template, trunc};

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
    /// Show the N last created containers (any state)
    #[arg(short = 'n', long)]
    pub last: Option<usize>,
    /// Show the size the container wrote (and with its image)
    #[arg(short, long)]
    pub size: bool,
    /// Go template per container (`table ...`, `json`): .ID .Image .Command .CreatedAt
    /// .RunningFor .Ports .State .Status .Size .Names .Labels (.Label "k") .Mounts .Networks
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
    /// Only records at or after this time (RFC3339, a Unix time, or relative: 10m, 1h30m)
    #[arg(long)]
    pub since: Option<String>,
    /// Only records before this time (same forms as --since)
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

fn id_of(c: &Container, no_trunc: bool) -> &str {
    if no_trunc {
        c.id()
    } else {
        c.short_id()
    }
}

const PS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("RunningFor", "CREATED"),
    ("Label", "LABEL"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

/// docker's `ps` row fields (`--format`).
fn ps_fields(root: &Path, c: &Container, no_trunc: bool, size: bool) -> serde_json::Value {
    let cmd = format!("\"{}\"", c.config.args.join(" "));
    let labels: Vec<String> = c
        .config
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mounts: Vec<String> = c
        .config
        .mounts
        .iter()
        .map(|m| {
            if m.typ == "volume" {
                m.source.clone()
            } else {
                m.target.clone()
            }
        })
        .collect();
    let nets: Vec<String> = match c.state.endpoints.keys().cloned().collect::<Vec<_>>() {
        v if v.is_empty() => vec![c.config.network.to_string()],
        v => v,
    };
    let created = chrono::DateTime::parse_from_rfc3339(&c.config.created)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S +0000 UTC")
                .to_string()
        })
        .unwrap_or_else(|_| c.config.created.clone());
    json!({
        "ID": id_of(c, no_trunc),
        "Image": c.config.image,
        "Command": if no_trunc { cmd } else { trunc(&cmd, 20) },
        "CreatedAt": created,
        "RunningFor": format!("{} ago", container::human_duration(&c.config.created)),
        "Ports": query::ports_text(c),
        "State": c.docker_status().as_str(),
        "Status": c.status_text(),
        "Size": if size { size_text(root, c) } else { "0B".into() },
        "Names": c.config.name,
        "Labels": labels.join(","),
        "Label": c.config.labels,
        "Mounts": mounts.join(","),
        "Networks": nets.join(","),
        "LocalVolumes": c.config.mounts.iter().filter(|m| m.typ == "volume").count().to_string(),
    })
}

/// `12B (virtual 4.5MB)`
fn size_text(root: &Path, c: &Container) -> String {
    let (rw, virt) = query::sizes(root, c);
    format!("{} (virtual {})", human_size(rw), human_size(virt))
}

pub fn ps(root: &Path, a: PsArgs) -> Result<i32> {
    let f = Filters {
        all: a.all,
        latest: a.latest,
        last: a.last,
        filters: a
            .filter
            .iter()
            .map(|f| Filter::parse(f))
            .collect::<Result<_, _>>()?,
    };
    let list = query::list(root, &f)?;
    if let Some(fmt) = a.format.as_deref().filter(|f| *f != "table") {
        let size = a.size || fmt.contains(".Size");
        let items: Vec<_> = list
            .iter()
            .map(|c| ps_fields(root, c, a.no_trunc, size))
            .collect();
        format::print_list(fmt, &items, PS_HEADERS)?;
        return Ok(0);
    }
    if a.quiet {
        for c in &list {
            println!("{}", id_of(c, a.no_trunc));
        }
        return Ok(0);
    }
    let mut head = [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]
    .map(String::from)
    .to_vec();
    if a.size {
        head.push("SIZE".into());
    }
    let mut rows = vec![head];
    for c in &list {
        let cmd = format!("\"{}\"", c.config.args.join(" "));
        let mut row = vec![
            id_of(c, a.no_trunc).to_string(),
            c.config.image.clone(),
            if a.no_trunc { cmd } else { trunc(&cmd, 20) },
            format!("{} ago", container::human_duration(&c.config.created)),
            c.status_text(),
            query::ports_text(c),
            c.config.name.clone(),
        ];
        if a.size {
            row.push(size_text(root, c));
        }
        rows.push(row);
    }
    print_ps_table(&rows);
    Ok(0)
}

/// ps keeps padding the last-but-one column even when the row's last cell is empty.
fn print_ps_table(rows: &[Vec<String>]) {
    let n = rows.first().map(|r| r.len()).unwrap_or(0);
    let w: Vec<usize> = (0..n)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = std::io::stdout().lock();
    for r in rows {
        let mut s = String::new();
        for i in 0..n {
            if i + 1 == n {
                s.push_str(&r[i]);
            } else {
                s.push_str(&format!("{:<width$}   ", r[i], width = w[i]));
            }
        }
        let _ = writeln!(out, "{s}");
    }
}

pub fn logs(root: &Path, a: LogsArgs) -> Result<i32> {
    let c = container::find(root, &a.container)?;
    logs::check_readable(&c)?;
    let tail = match a.tail.as_deref() {
        None | Some("all") => None,
        Some(n) => Some(n.parse().with_context(|| format!("invalid --tail {n:?}"))?),
    };
    let now = chrono::Utc::now();
    let since = a
        .since
        .as_deref()
        .map(|s| log_time(s, "since", now))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|s| log_time(s, "until", now))
        .transpose()?;
    let dir = c.dir.clone();
    // Following stops at --until, as docker's does.
    let running = || {
        until.is_none_or(|u| chrono::Utc::now() < u)
            && Container::load_dir(&dir)
                .map(|c| c.monitor_alive())
                .unwrap_or(false)
    };
    logs::show(&c.log_path(), tail, a.follow, &running, &mut |l| {
        let t = chrono::DateTime::parse_from_rfc3339(&l.time).ok();
        let after = |x: &chrono::DateTime<chrono::Utc>| t.is_none_or(|t| t >= *x);
        if since.as_ref().is_none_or(after) && until.as_ref().is_none_or(|u| !after(u)) {
            print_line(l, a.timestamps)
        }
    })?;
    Ok(0)
}

/// docker's `--since`/`--until`: RFC3339 (or a date), Unix seconds, or a
/// Go duration before now.
pub fn log_time(
    s: &str,
    flag: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<chrono::DateTime<chrono::Utc>> {
    use chrono::{DateTime, NaiveDate, TimeZone, Utc};
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(Utc.from_utc_datetime(&t));
        }
    }
    if let Ok(secs) = s.parse::<f64>() {
        let ns = (secs * 1e9) as i64;
        return Ok(Utc.timestamp_nanos(ns));
    }
    if let Some(d) = hull::sys::go_duration(s) {
        return Ok(now - chrono::Duration::from_std(d).context("duration out of range")?);
    }
    anyhow::bail!(
        "invalid value for --{flag}: {s:?} (want RFC3339, a Unix time or a duration like 10m)"
    )
}

fn print_line(l: &logs::Line, timestamps: bool) {
    use std::io::Write;
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

#[derive(Args)]
pub struct InspectArgs {
    /// Go template applied to each object
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only this kind of object
    #[arg(long = "type", value_parser = ["container", "image", "network", "volume"])]
    pub kind: Option<String>,
    /// Accepted for docker's sake; sizes are always shown
    #[arg(short, long)]
    pub size: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

impl InspectArgs {
    /// The same arguments, limited to one kind (`container inspect`, ...).
    pub fn of(mut self, kind: &str) -> InspectArgs {
        self.kind = Some(kind.to_string());
        self
    }
}

fn inspect_kind(root: &Path, name: &str, kind: &str) -> Result<serde_json::Value> {
    Ok(match kind {
        "container" => query::inspect(root, &container::find(root, name)?),
        "image" => hull::engine::images::inspect(root, &[name.to_string()])?
            .pop()
            .context("image inspect returned nothing")?,
        "network" => hull::network::ops::inspect(root, name)?,
        _ => serde_json::to_value(hull::engine::volumes::get(root, name)?)?,
    })
}

/// One object's inspect document, looked up as docker does: container,
/// image, network, volume; with `kind`, only that kind (and its own error).
fn inspect_one(root: &Path, name: &str, kind: Option<&str>) -> Result<serde_json::Value> {
    if let Some(k) = kind {
        return inspect_kind(root, name, k);
    }
    for k in ["container", "image", "network", "volume"] {
        if let Ok(v) = inspect_kind(root, name, k) {
            return Ok(v);
        }
    }
    anyhow::bail!("No such object: {name}")
}

/// `inspect`: every object rendered (JSON array, or the template per
/// object) before anything is printed; a missing one is an error.
pub fn inspect(root: &Path, a: InspectArgs) -> Result<i32> {
    let mut all = Vec::new();
    for n in &a.names {
        all.push(inspect_one(root, n, a.kind.as_deref())?);
    }
    let text = match &a.format {
        Some(f) if f != "json" => {
            let mut s = String::new();
            for v in &all {
                s.push_str(&template(v, f)?);
                s.push('\n');
            }
            s
        }
        _ => format!(
            "{}\n",
            serde_json::to_string_pretty(&all).context("encoding inspect")?
        ),
    };
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes())?;
    o.flush()?;
    Ok(0)
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
    let mut o = std::io::stdout().lock();
    for (k, p) in exec::diff(root, name)? {
        writeln!(o, "{k} {p}")?;
    }
    Ok(0)
}
