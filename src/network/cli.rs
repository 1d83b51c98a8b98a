//! `berth network ...`

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::json;
use std::net::Ipv4Addr;
use std::path::Path;

use super::{ipam, netlink, DEFAULT};
use crate::engine::{container, fsutil};

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

fn users(root: &Path, net: &str) -> Vec<String> {
    container::list(root)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| {
            let primary = if c.config.network == "default" {
                DEFAULT
            } else {
                &c.config.network
            };
            (primary == net || c.config.networks.iter().any(|n| n == net)) && c.monitor_alive()
        })
        .map(|c| c.config.name)
        .collect()
}

fn pick_subnet(root: &Path) -> Result<String> {
    let taken: Vec<(Ipv4Addr, u8)> = ipam::list(root)
        .iter()
        .filter_map(|n| ipam::parse_cidr(&n.subnet).ok())
        .chain(ipam::host_routes())
        .collect();
    for b in 18..=31u8 {
        for c in 0..=255u8 {
            let cand = (Ipv4Addr::new(172, b, c, 0), 24);
            if !taken.iter().any(|t| ipam::overlaps(*t, cand)) {
                return Ok(format!("172.{b}.{c}.0/24"));
            }
        }
    }
    bail!("no free subnet left for a new network")
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
            if driver != "bridge" {
                bail!("network driver {driver:?} is not supported (only bridge)");
            }
            container::valid_name(&name)
                .map_err(|_| anyhow::anyhow!("invalid network name {name:?}"))?;
            if ["host", "none", "default", DEFAULT].contains(&name.as_str()) {
                bail!("network name {name} is reserved");
            }
            let _l = fsutil::lock(&ipam::lock_path(root))?;
            if ipam::load(root, &name).is_ok() {
                bail!("network with name {name} already exists");
            }
            let subnet = match subnet {
                Some(s) => s,
                None => pick_subnet(root)?,
            };
            let (base, prefix) = ipam::parse_cidr(&subnet)?;
            let me = (base, prefix);
            for n in ipam::list(root) {
                if let Ok(o) = ipam::parse_cidr(&n.subnet) {
                    if ipam::overlaps(o, me) {
                        bail!(
                            "invalid pool request: subnet {subnet} overlaps with network {} ({})",
                            n.name,
                            n.subnet
                        );
                    }
                }
            }
            if ipam::host_routes().iter().any(|r| ipam::overlaps(*r, me)) {
                bail!("invalid pool request: subnet {subnet} overlaps with a route on the host");
            }
            let gw = match gateway {
                Some(g) => {
                    let ip: Ipv4Addr = g
                        .parse()
                        .with_context(|| format!("invalid gateway {g:?}"))?;
                    if !ipam::overlaps((ip, 32), me) {
                        bail!("gateway {g} is not in subnet {subnet}");
                    }
                    ip
                }
                None => Ipv4Addr::from(u32::from(base) + 1),
            };
            let id = fsutil::random_id();
            let mut bridge = format!("br-{}", &id[..12]);
            for o in &opt {
                match o.split_once('=') {
                    Some(("com.docker.network.bridge.name", v)) | Some(("bridge", v)) => {
                        bridge = v.to_string()
                    }
                    _ => bail!("unknown network option {o:?}"),
                }
            }
            netlink::check_ifname(&bridge)?;
            if netlink::ifindex(&bridge).is_some() {
                bail!("bridge {bridge} already exists on the host");
            }
            let net = ipam::Network {
                name: name.clone(),
                id: id.clone(),
                driver,
                subnet: format!("{base}/{prefix}"),
                gateway: gw.to_string(),
                bridge,
                created: fsutil::now_rfc3339(),
                dns: true,
                internal,
            };
            ipam::save(root, &net)?;
            if let Err(e) = super::ensure_bridge(root, &net) {
                super::teardown_bridge(root, &net);
                ipam::remove_records(root, &name);
                return Err(e);
            }
            println!("{id}");
        }
        NetworkCmd::Ls { quiet } => {
            let _ = super::default_network(root);
            if !quiet {
                println!("{:<14}{:<20}{:<10}SCOPE", "NETWORK ID", "NAME", "DRIVER");
            }
            for n in ipam::list(root) {
                if quiet {
                    println!("{}", &n.id[..12]);
                } else {
                    println!("{:<14}{:<20}{:<10}local", &n.id[..12], n.name, n.driver);
                }
            }
            for (n, d) in [("host", "host"), ("none", "null")] {
                if !quiet {
                    println!("{:<14}{:<20}{:<10}local", "-", n, d);
                }
            }
        }
        NetworkCmd::Inspect { names } => {
            let mut out = vec![];
            for name in &names {
                let n = super::load(root, name)?;
                let mut ctrs = serde_json::Map::new();
                for (ip, l) in ipam::leases(root, &n.name) {
                    let (_, p) = ipam::parse_cidr(&n.subnet)?;
                    ctrs.insert(
                        l.id.clone(),
                        json!({"Name": l.name, "IPv4Address": format!("{ip}/{p}")}),
                    );
                }
                out.push(json!({
                    "Name": n.name, "Id": n.id, "Created": n.created, "Scope": "local",
                    "Driver": n.driver, "Internal": n.internal,
                    "IPAM": {"Driver": "default", "Config": [{"Subnet": n.subnet, "Gateway": n.gateway}]},
                    "Options": {"com.docker.network.bridge.name": n.bridge},
                    "Containers": ctrs,
                }));
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&out).context("encoding")?
            );
        }
        NetworkCmd::Rm { names } => {
            for name in &names {
                if name == DEFAULT || name == "host" || name == "none" {
                    bail!("{name} is a pre-defined network and cannot be removed");
                }
                let _l = fsutil::lock(&ipam::lock_path(root))?;
                let n = ipam::load(root, name)?;
                let u = users(root, name);
                if !u.is_empty() {
                    bail!(
                        "error while removing network: network {name} has active endpoints ({})",
                        u.join(", ")
                    );
                }
                super::teardown_bridge(root, &n);
                ipam::remove_records(root, name);
                println!("{name}");
            }
        }
        NetworkCmd::Connect {
            alias,
            network,
            container: cname,
        } => {
            let mut c = container::find(root, &cname)?;
            let net = super::load(root, &network)?;
            if c.config.network == network || c.config.networks.contains(&network) {
                bail!("container {cname} is already connected to network {network}");
            }
            c.config.networks.push(network.clone());
            c.config.aliases.extend(alias);
            if c.is_running() {
                let n = super::networks_of(&c).len() - 1;
                let _l = fsutil::lock(&ipam::lock_path(root))?;
                let ep = super::attach_endpoint(root, &c, &net, n)?;
                c.reload_state();
                c.state.endpoints.insert(network.clone(), ep);
                c.save_state()?;
            }
            c.save_config()?;
        }
        NetworkCmd::Disconnect {
            force: _,
            network,
            container: cname,
        } => {
            let mut c = container::find(root, &cname)?;
            let nets = super::networks_of(&c);
            let Some(i) = nets.iter().position(|n| *n == network) else {
                bail!("container {cname} is not connected to network {network}");
            };
            if c.is_running() {
                let _l = fsutil::lock(&ipam::lock_path(root))?;
                if let Ok(mut nl) = netlink::Netlink::open() {
                    let _ = nl.delete_link(&super::host_veth(c.id(), i));
                }
                ipam::release(root, &network, c.id());
                c.reload_state();
                c.state.endpoints.remove(&network);
                c.save_state()?;
            }
            if c.config.network == network {
                c.config.network = "none".into();
            }
            c.config.networks.retain(|n| *n != network);
            c.save_config()?;
        }
        NetworkCmd::Prune { force: _ } => {
            println!("Deleted Networks:");
            for n in ipam::list(root) {
                if users(root, &n.name).is_empty() {
                    let _l = fsutil::lock(&ipam::lock_path(root))?;
                    super::teardown_bridge(root, &n);
                    if n.name != DEFAULT {
                        ipam::remove_records(root, &n.name);
                        println!("{}", n.name);
                    }
                }
            }
        }
    }
    Ok(0)
}
