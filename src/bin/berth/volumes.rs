//! `berth volume ...`

use anyhow::Result;
use clap::Subcommand;
use std::io::Write;
use std::path::Path;

use hull::engine::volumes;

#[derive(Subcommand)]
pub enum VolumeCmd {
    Create {
        /// Driver options: type=, device=, o= (mounted on the volume's directory)
        #[arg(short, long = "opt")]
        opt: Vec<String>,
        /// Set metadata (KEY=VALUE)
        #[arg(long)]
        label: Vec<String>,
        /// Only "local"
        #[arg(short, long, default_value = "local")]
        driver: String,
        name: Option<String>,
    },
    #[command(visible_alias = "list")]
    Ls(crate::format::ListArgs),
    Inspect(crate::query::InspectArgs),
    #[command(visible_alias = "remove")]
    Rm {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    Prune {
        /// Also named volumes, not only anonymous ones
        #[arg(short, long)]
        all: bool,
        #[arg(short, long)]
        force: bool,
    },
}

fn ls(root: &Path, quiet: bool, filter: &[String], fmt: Option<&str>) -> Result<()> {
    let mut rows = vec![];
    for v in volumes::list(root) {
        let mut keep = true;
        for f in filter {
            keep &= volumes::filter_matches(root, &v, f)?;
        }
        if keep {
            rows.push(v);
        }
    }
    if quiet {
        for v in &rows {
            println!("{}", v.name);
        }
        return Ok(());
    }
    let items: Vec<_> = rows
        .iter()
        .map(|v| {
            serde_json::json!({
                "Name": v.name, "Driver": v.driver, "Scope": v.scope, "Mountpoint": v.mountpoint,
                "Labels": v.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
                "Label": v.labels, "CreatedAt": v.created_at,
            })
        })
        .collect();
    let fmt = fmt
        .filter(|f| *f != "table")
        .unwrap_or("table {{.Driver}}\t{{.Name}}");
    crate::format::print_list(fmt, &items, &[("Name", "VOLUME NAME")])
}

pub fn dispatch(root: &Path, v: VolumeCmd) -> Result<i32> {
    match v {
        VolumeCmd::Create {
            opt,
            label,
            driver,
            name,
        } => {
            if driver != "local" {
                anyhow::bail!("volume driver {driver:?} is not supported (only local)");
            }
            let o = volumes::VolumeOptions {
                labels: crate::networks::labels(&label),
                options: crate::networks::labels(&opt),
            };
            let name = name.unwrap_or_else(hull::sys::random_id);
            volumes::create_with(root, &name, false, &o)?;
            println!("{name}");
        }
        VolumeCmd::Ls(a) => ls(root, a.quiet, &a.filter, a.format.as_deref())?,
        VolumeCmd::Inspect(a) => return crate::query::inspect(root, a.of("volume")),
        VolumeCmd::Rm { force, names } => {
            for n in &names {
                volumes::remove(root, n, force)?;
                println!("{n}");
            }
        }
        VolumeCmd::Prune { all, force } => {
            let what = if all {
                "This will remove all local volumes not used by at least one container."
            } else {
                "This will remove anonymous local volumes not used by at least one container."
            };
            if !force && !crate::format::confirm(what)? {
                return Ok(0);
            }
            println!("Deleted Volumes:");
            for n in volumes::prune(root, all)? {
                println!("{n}");
            }
        }
    }
    let _ = std::io::stdout().flush();
    Ok(0)
}
