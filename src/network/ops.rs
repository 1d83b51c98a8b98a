//! Network management as library calls: create, list, inspect, remove,
//! prune. Who uses a network is the caller's knowledge (the engine's
//! container records), passed in as a function.

use anyhow::{bail, Context, Result};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use super::{ipam, netlink, Network, DEFAULT};
use crate::sys as fsutil;

/// `network create`, parsed.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub name: String,
    /// Only "bridge" is supported.
    pub driver: String,
    pub subnet: Option<String>,
    pub gateway: Option<Ipv4Addr>,
    /// The bridge interface (default br-<id12>).
    pub bridge: Option<String>,
    pub internal: bool,
    /// Allocate container addresses from this CIDR only (inside the subnet).
    pub ip_range: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// Reads docker's `-o key=value` network options into `opts`.
pub fn apply_option(opts: &mut CreateOptions, o: &str) -> Result<()> {
    match o.split_once('=') {
        Some(("com.docker.network.bridge.name", v)) | Some(("bridge", v)) => {
            opts.bridge = Some(v.to_string());
            Ok(())
        }
        _ => bail!("unknown network option {o:?}"),
    }
}

fn valid_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
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

fn check_subnet(root: &Path, subnet: &str) -> Result<(Ipv4Addr, u8)> {
    let me = ipam::parse_cidr(subnet)?;
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
    Ok(me)
}

/// Creates a bridge network; returns its id.
pub fn create(root: &Path, o: &CreateOptions) -> Result<String> {
    let name = &o.name;
    if o.driver != "bridge" {
        bail!(
            "network driver {:?} is not supported (only bridge)",
            o.driver
        );
    }
    if !valid_name(name) {
        bail!("invalid network name {name:?}");
    }
    if ["host", "none", "default", DEFAULT].contains(&name.as_str()) {
        bail!("network name {name} is reserved");
    }
    let _l = fsutil::lock(&ipam::lock_path(root))?;
    if ipam::load(root, name).is_ok() {
        return Err(super::NetworkError::NameExists(name.clone()).into());
    }
    let subnet = match &o.subnet {
        Some(s) => s.clone(),
        None => pick_subnet(root)?,
    };
    let (base, prefix) = check_subnet(root, &subnet)?;
    let gw = match o.gateway {
        Some(ip) => {
            if !ipam::overlaps((ip, 32), (base, prefix)) {
                bail!("gateway {ip} is not in subnet {subnet}");
            }
            ip
        }
        None => Ipv4Addr::from(u32::from(base) + 1),
    };
    let ip_range = match &o.ip_range {
        Some(r) => {
            let (rb, rp) =
                ipam::parse_cidr(r).with_context(|| format!("invalid --ip-range {r:?}"))?;
            if rp < prefix || !ipam::overlaps((rb, rp), (base, prefix)) {
                bail!("--ip-range {r} is not inside subnet {subnet}");
            }
            Some(format!("{rb}/{rp}"))
        }
        None => None,
    };
    let id = fsutil::random_id();
    let bridge = o
        .bridge
        .clone()
        .unwrap_or_else(|| format!("br-{}", &id[..12]));
    netlink::check_ifname(&bridge)?;
    if netlink::ifindex(&bridge).is_some() {
        bail!("bridge {bridge} already exists on the host");
    }
    let net = Network {
        name: name.clone(),
        id: id.clone(),
        driver: o.driver.clone(),
        subnet: format!("{base}/{prefix}"),
        gateway: gw.to_string(),
        bridge,
        created: fsutil::now_rfc3339(),
        dns: true,
        internal: o.internal,
        ip_range,
        labels: o.labels.clone(),
    };
    ipam::save(root, &net)?;
    if let Err(e) = super::ensure_bridge(root, &net) {
        super::teardown_bridge(root, &net);
        ipam::remove_records(root, name);
        return Err(e);
    }
    Ok(id)
}

/// All networks of this root (the default bridge is recorded on first call).
pub fn list(root: &Path) -> Vec<Network> {
    let _ = super::default_network(root);
    ipam::list(root)
}

/// docker's `network inspect` document for one network.
pub fn inspect(root: &Path, name: &str) -> Result<serde_json::Value> {
    let n = super::load(root, name)?;
    let (_, p) = ipam::parse_cidr(&n.subnet)?;
    let mut ctrs = serde_json::Map::new();
    for (ip, l) in ipam::leases(root, &n.name) {
        ctrs.insert(
            l.id.clone(),
            json!({"Name": l.name, "IPv4Address": format!("{ip}/{p}")}),
        );
    }
    Ok(json!({
        "Name": n.name, "Id": n.id, "Created": n.created, "Scope": "local",
        "Driver": n.driver, "Internal": n.internal,
        "IPAM": {"Driver": "default", "Config": [ipam_config(&n)]},
        "Labels": n.labels,
        "Options": {"com.docker.network.bridge.name": n.bridge},
        "Containers": ctrs,
    }))
}

fn ipam_config(n: &Network) -> serde_json::Value {
    let mut c = json!({"Subnet": n.subnet, "Gateway": n.gateway});
    if let Some(r) = &n.ip_range {
        c["IPRange"] = json!(r);
    }
    c
}

/// Removes a network; `users` names the containers with a live endpoint on a network.
pub fn remove(root: &Path, name: &str, users: impl Fn(&str) -> Vec<String>) -> Result<()> {
    if name == DEFAULT || name == "host" || name == "none" {
        return Err(super::NetworkError::Predefined(name.to_string()).into());
    }
    let _l = fsutil::lock(&ipam::lock_path(root))?;
    let n = ipam::load(root, name)?;
    let u = users(name);
    if !u.is_empty() {
        return Err(super::NetworkError::InUse {
            name: name.to_string(),
            id: n.id.clone(),
            containers: u,
        }
        .into());
    }
    super::teardown_bridge(root, &n);
    ipam::remove_records(root, name);
    Ok(())
}

/// Removes networks nobody uses; returns the names removed (the default
/// bridge only loses its kernel objects, never its record).
pub fn prune(root: &Path, users: impl Fn(&str) -> Vec<String>) -> Result<Vec<String>> {
    let mut gone = Vec::new();
    for n in ipam::list(root) {
        if users(&n.name).is_empty() {
            let _l = fsutil::lock(&ipam::lock_path(root))?;
            super::teardown_bridge(root, &n);
            if n.name != DEFAULT {
                ipam::remove_records(root, &n.name);
                gone.push(n.name);
            }
        }
    }
    Ok(gone)
}

/// Lock held while endpoints are added or removed.
pub fn lock(root: &Path) -> Result<fsutil::FileLock> {
    fsutil::lock(&ipam::lock_path(root))
}

/// Removes a container's interface `n` and its lease on `network`.
pub fn detach_endpoint(root: &Path, id: &str, network: &str, n: usize) {
    if let Ok(mut nl) = netlink::Netlink::open() {
        let _ = nl.delete_link(&super::host_veth(id, n));
    }
    ipam::release(root, network, id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let mut o = CreateOptions::default();
        apply_option(&mut o, "com.docker.network.bridge.name=br9").unwrap();
        assert_eq!(o.bridge.as_deref(), Some("br9"));
        assert!(apply_option(&mut o, "mtu=1400").is_err());
        assert!(valid_name("net-1") && !valid_name("-x") && !valid_name("a b"));
    }
}
