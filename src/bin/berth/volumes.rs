//! `berth volume ...`

use anyhow::{Context, Result};
use clap::Subcommand;
use std::io::Write;
use std::path::Path;

use hull::engine::volumes;

#[derive(Subcommand)]
pub enum VolumeCmd {
    Create {
        name: Option<String>,
    },
    Ls {
        #[arg(short, long)]
        quiet: bool,
    },
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
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

pub fn dispatch(root: &Path, v: VolumeCmd) -> Result<i32> {
    match v {
        VolumeCmd::Create { name } => {
            let name = name.unwrap_or_else(hull::sys::random_id);
            volumes::create(root, &name, false)?;
            println!("{name}");
        }
        VolumeCmd::Ls { quiet } => {
            if !quiet {
                println!("{:<10}VOLUME NAME", "DRIVER");
            }
            for v in volumes::list(root) {
                if quiet {
                    println!("{}", v.name);
                } else {
                    println!("{:<10}{}", v.driver, v.name);
                }
            }
        }
        VolumeCmd::Inspect { names } => {
            let vs = names
                .iter()
                .map(|n| volumes::get(root, n))
                .collect::<Result<Vec<_>>>()?;
            println!("{}", serde_json::to_string_pretty(&vs).context("encoding")?);
        }
        VolumeCmd::Rm { force, names } => {
            for n in &names {
                volumes::remove(root, n, force)?;
                println!("{n}");
            }
        }
        VolumeCmd::Prune { all, force: _ } => {
            println!("Deleted Volumes:");
            for n in volumes::prune(root, all)? {
                println!("{n}");
            }
        }
    }
    let _ = std::io::stdout().flush();
    Ok(0)
}
