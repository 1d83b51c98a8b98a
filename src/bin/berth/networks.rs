//! `berth network ...`

use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::Path;

use hull::engine::networks;
use hull::network::ops::{self, CreateOptions};

use crate::format;
use crate::query::InspectArgs;

#[derive(clap::Args)]
pub struct NetLsArgs {
    #[command(flatten)]
    list: format::ListArgs,
    #[arg(long)]
    no_trunc: bool,
}

/// `KEY=VALUE` (or `KEY`, an empty value) labels.
pub fn labels(v: &[String]) -> std::collections::BTreeMap<String, String> {
    v.iter()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.clone(), String::new()),
        })
        .collect()
}

fn ls(root: &Path, a: NetLsArgs) -> Result<()> {
    let mut rows = vec![];
    for n in ops::list(root) {
        let mut keep = true;
        for f in &a.list.filter {
            keep &= networks::filter_matches(&n, f)?;
        }
        if keep {
            rows.push(n);
        }
    }
    let id = |i: &str| -> String {
        if a.no_trunc {
            i.to_string()
        } else {
            i[..12.min(i.len())].to_string()
        }
    };
    if a.list.quiet {
        for n in &rows {
            println!("{}", id(&n.id));
        }
        return Ok(());
    }
    let mut items: Vec<_> = rows
        .iter()
        .map(|n| {
            serde_json::json!({
                "ID": id(&n.id), "Name": n.name, "Driver": n.driver, "Scope": "local",
                "IPv6": "false", "Internal": n.internal.to_string(),
                "Labels": n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
                "Label": n.labels, "CreatedAt": n.created,
            })
        })
        .collect();
    // host and none are modes, not records; listed as docker lists them.
    if a.list.filter.is_empty() {
        for (n, d) in [("host", "host"), ("none", "null")] {
            items.push(serde_json::json!({
                "ID": "-", "Name": n, "Driver": d, "Scope": "local", "IPv6": "false",
                "Internal": "false", "Labels": "", "Label": {}, "CreatedAt": "",
            }));
        }
    }
    let fmt = a
        .list
        .format
        .as_deref()
        .filter(|f| *f != "table")
        .unwrap_or("table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}");
    format::print_list(fmt, &items, &[("ID", "NETWORK ID")])
}

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
        /// Allocate container IPs from this sub-range (CIDR inside --subnet)
        #[arg(long)]
        ip_range: Option<String>,
        /// Set metadata (KEY=VALUE)
        #[arg(long)]
        label: Vec<String>,
        name: String,
    },
    #[command(visible_alias = "list")]
    Ls(NetLsArgs),
    Inspect(InspectArgs),
    #[command(visible_alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    Connect {
        #[arg(long)]
        alias: Vec<String>,
        /// IPv4 address on this network
        #[arg(long)]
        ip: Option<String>,
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
            ip_range,
            label,
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
                ip_range,
                labels: labels(&label),
            };
            for x in &opt {
                ops::apply_option(&mut o, x)?;
            }
            let id = ops::create(root, &o)?;
            hull::engine::events::object(root, "network", "create", &id, &[("name", &o.name)]);
            println!("{id}");
        }
        NetworkCmd::Ls(a) => ls(root, a)?,
        NetworkCmd::Inspect(a) => return crate::query::inspect(root, a.of("network")),
        NetworkCmd::Rm { names } => {
            for name in &names {
                networks::remove(root, name)?;
                println!("{name}");
            }
        }
        NetworkCmd::Connect {
            alias,
            ip,
            network,
            container,
        } => {
            let ip = ip
                .map(|s| {
                    s.parse().map_err(|_| {
                        anyhow::anyhow!("invalid argument {s:?} for --ip: not an IPv4 address")
                    })
                })
                .transpose()?;
            networks::connect(root, &container, &network, &alias, ip)?
        }
        NetworkCmd::Disconnect {
            force: _,
            network,
            container,
        } => networks::disconnect(root, &container, &network)?,
        NetworkCmd::Prune { force } => {
            if !force
                && !format::confirm(
                    "This will remove all custom networks not used by at least one container.",
                )?
            {
                return Ok(0);
            }
            println!("Deleted Networks:");
            for n in networks::prune(root)? {
                println!("{n}");
            }
        }
    }
    Ok(0)
}
