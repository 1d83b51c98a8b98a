//! `stats` (redrawn in place on a terminal, `--format`) and `top` (the
//! host's ps with the user's options, filtered to the container).

use anyhow::Result;
use clap::Args;
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use hull::engine::{container, query};

use crate::format::{self, stats_size};

#[derive(Args)]
pub struct StatsArgs {
    /// Print one sample and exit
    #[arg(long)]
    pub no_stream: bool,
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Full container IDs
    #[arg(long)]
    pub no_trunc: bool,
    /// Go template (`table ...`, `json`): .Container .Name .ID .CPUPerc .MemUsage
    /// .MemPerc .NetIO .BlockIO .PIDs
    #[arg(long)]
    pub format: Option<String>,
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct TopArgs {
    pub container: String,
    /// Options for ps (default -ef), e.g. `aux`
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_options: Vec<String>,
}

const HEADERS: &[(&str, &str)] = &[
    ("Container", "CONTAINER"),
    ("ID", "CONTAINER ID"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

const DEFAULT_FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// docker's binary sizes in `MEM USAGE / LIMIT` (units.BytesSize).
fn bytes_size(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let (v, i) = format::scale(n, 1024.0, &units);
    format!("{v:.2}{}", units[i])
}

pub fn stats(root: &Path, a: StatsArgs) -> Result<i32> {
    let list = query::stats_targets(root, &a.containers, a.all)?;
    let fmt = a
        .format
        .clone()
        .filter(|f| f != "table")
        .unwrap_or_else(|| DEFAULT_FORMAT.to_string());
    // Parsed once up front: a bad template is an error before any sampling.
    format::template(&json!({}), fmt.trim_start_matches("table"))?;
    let redraw = !a.no_stream && std::io::stdout().is_terminal();
    loop {
        let usage = query::stats(root, &list, Duration::from_millis(500))?;
        let items: Vec<_> = list
            .iter()
            .zip(&usage)
            .map(|(c, u)| {
                let id = if a.no_trunc { c.id() } else { c.short_id() };
                let given = a
                    .containers
                    .iter()
                    .find(|n| container::find(root, n).is_ok_and(|x| x.id() == c.id()));
                json!({
                    "Container": given.map(String::as_str).unwrap_or(id),
                    "Name": u.name,
                    "ID": id,
                    "CPUPerc": format!("{:.2}%", u.cpu_percent),
                    "MemUsage": format!("{} / {}", bytes_size(u.mem), bytes_size(u.mem_limit)),
                    "MemPerc": format!("{:.2}%", u.mem as f64 / u.mem_limit.max(1) as f64 * 100.0),
                    "NetIO": format!("{} / {}", stats_size(u.net_rx), stats_size(u.net_tx)),
                    "BlockIO": format!("{} / {}", stats_size(u.blk_read), stats_size(u.blk_write)),
                    "PIDs": u.pids.to_string(),
                })
            })
            .collect();
        if redraw {
            // docker's redraw: clear the screen, cursor home.
            let mut o = std::io::stdout().lock();
            let _ = write!(o, "\x1b[2J\x1b[H");
            let _ = o.flush();
        }
        format::print_list(&fmt, &items, HEADERS)?;
        if a.no_stream {
            return Ok(0);
        }
    }
}

pub fn top(root: &Path, a: TopArgs) -> Result<i32> {
    let c = container::find(root, &a.container)?;
    let t = query::top_ps(root, &c, &a.ps_options)?;
    let mut lines = vec![t.titles.join("\t")];
    lines.extend(t.rows.iter().map(|r| r.join("\t")));
    let mut o = std::io::stdout().lock();
    o.write_all(format::tab_align(&lines, 20).as_bytes())?;
    o.flush()?;
    Ok(0)
}
