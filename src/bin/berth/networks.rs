//! `berth network ...`

use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::Path;

use hull::engine::networks;
use hull::network::ops::{self, CreateOptions};

#[derive(Subcommand)]
pub enum NetworkCmd {
    /// Create a bridge network
    Create {
        #[arg(short, long, default_value = "bridge")]
        driver: String,
        #[arg(long)]
        subnet: Option<String>,
        #[arg(long)]
        gateway: Option<String>,
        /// Bridge interface name (default br-<id12>)
        #[arg(short = 'o', long = "opt")]
        opt: Vec<String>,
        #[arg(long)]
        internal: bool,
        name: String,
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
        #[arg(required = true)]
        names: Vec<String>,
    },
    Connect {
        #[arg(long)]
        alias: Vec<String>,
        network: String,
        container: String,
    },
    Disconnect {
        #[arg(short, long)]
        force: bool,
        network: String,
        container: String,
    },
    Prune {
        #[arg(short, long)]
        force: bool,
    },
}

pub fn dispatch(root: &Path, cmd: NetworkCmd) -> Result<i32> {
    match cmd {
        NetworkCmd::Create {
            driver,
            subnet,
            gateway,
            opt,
            internal,
            name,
        } => {
            let mut o = CreateOptions {
                name,
                driver,
                subnet,
                gateway: gateway
                    .map(|g| g.parse().with_context(|| format!("invalid gateway {g:?}")))
                    .transpose()?,
                bridge: None,
                internal,
            };
            for x in &opt {
                ops::apply_option(&mut o, x)?;
            }
            let id = ops::create(root, &o)?;
            hull::engine::events::object(root, "network", "create", &id, &[("name", &o.name)]);
            println!("{id}");
        }
        NetworkCmd::Ls { quiet } => {
            if !quiet {
                println!("{:<14}{:<20}{:<10}SCOPE", "NETWORK ID", "NAME", "DRIVER");
            }
            for n in ops::list(root) {
                if quiet {
                    println!("{}", &n.id[..12.min(n.id.len())]);
                } else {
                    let id = &n.id[..12.min(n.id.len())];
                    println!("{:<14}{:<20}{:<10}local", id, n.name, n.driver);
                }
            }
            if !quiet {
                for (n, d) in [("host", "host"), ("none", "null")] {
                    println!("{:<14}{:<20}{:<10}local", "-", n, d);
                }
            }
        }
        NetworkCmd::Inspect { names } => {
            let out = names
                .iter()
                .map(|n| ops::inspect(root, n))
                .collect::<Result<Vec<_>>>()?;
            println!(
                "{}",
                serde_json::to_string_pretty(&out).context("encoding")?
            );
        }
        NetworkCmd::Rm { names } => {
            for name in &names {
                networks::remove(root, name)?;
                println!("{name}");
            }
        }
        NetworkCmd::Connect {
            alias,
            network,
            container,
        } => networks::connect(root, &container, &network, &alias)?,
        NetworkCmd::Disconnect {
            force: _,
            network,
            container,
        } => networks::disconnect(root, &container, &network)?,
        NetworkCmd::Prune { force: _ } => {
            println!("Deleted Networks:");
            for n in networks::prune(root)? {
                println!("{n}");
            }
        }
    }
    Ok(0)
}
