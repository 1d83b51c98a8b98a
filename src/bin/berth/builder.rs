//! `builder prune`: docker's command for the build cache. What berth's build cache is and
//! what each mode removes is in `hull::image::store` (buildcache.rs).

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use std::io::{BufRead, Write};
use std::path::Path;

use crate::format::human_size;
use hull::engine::events;
use hull::image::store::Store;

#[derive(Subcommand)]
pub enum BuilderCmd {
    /// Remove build cache
    Prune(PruneArgs),
}

#[derive(Args)]
pub struct PruneArgs {
    /// Remove all unused build cache, not just dangling ones
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (e.g. "until=24h")
    #[arg(long)]
    filter: Vec<String>,
}

pub fn dispatch(root: &Path, cmd: BuilderCmd) -> Result<()> {
    match cmd {
        BuilderCmd::Prune(a) => prune(root, &a),
    }
}

/// `until=` (or docker's older `unused-for=`) as nanoseconds since the epoch.
fn until(filters: &[String]) -> Result<Option<i64>> {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let mut out = None;
    for f in filters {
        let Some((k, v)) = f.split_once('=') else {
            bail!("--filter {f:?}: bad format of filter (expected name=value)");
        };
        match k {
            "until" | "unused-for" => {
                let t =
                    events::parse_time(v, now).map_err(|e| anyhow::anyhow!("--filter {f}: {e}"))?;
                out = Some(t);
            }
            _ => bail!("--filter {f}: invalid filter {k:?} (berth's build cache supports until)"),
        }
    }
    Ok(out)
}

pub fn prune(root: &Path, a: &PruneArgs) -> Result<()> {
    let until = until(&a.filter)?;
    if !a.force {
        let what = if a.all { "all" } else { "all dangling" };
        let mut out = std::io::stdout().lock();
        write!(
            out,
            "WARNING! This will remove {what} build cache. Are you sure you want to continue? [y/N] "
        )?;
        out.flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
            return Ok(());
        }
    }
    let r = Store::open(root)?.prune_build_cache(a.all, until)?;
    if !r.removed.is_empty() {
        println!("Deleted build cache objects:");
        for id in &r.removed {
            println!("{}", id.strip_prefix("sha256:").unwrap_or(id));
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(r.reclaimed));
    Ok(())
}
