//! Network records and IP leases: `<root>/networks/<name>.json` and
//! `<name>.leases.json`, changed only under `<root>/networks.lock`.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::sys::{read_json, write_json};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub id: String,
    pub driver: String,
    pub subnet: String,
    pub gateway: String,
    pub bridge: String,
    pub created: String,
    /// User-defined networks resolve container names; the default bridge does not.
    pub dns: bool,
    #[serde(default)]
    pub internal: bool,
    /// `--ip-range`: containers get addresses only from this CIDR inside the subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Lease {
    pub id: String,
    pub name: String,
    pub aliases: Vec<String>,
    /// The container's `--dns` servers: the network's resolver forwards the queries it does
    /// not answer itself from this address to them (docker's embedded DNS does the same).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<std::net::IpAddr>,
}

pub fn dir(root: &Path) -> PathBuf {
    root.join("networks")
}

pub fn lock_path(root: &Path) -> PathBuf {
    root.join("networks.lock")
}

fn file(root: &Path, name: &str) -> PathBuf {
    dir(root).join(format!("{name}.json"))
}

fn leases_file(root: &Path, name: &str) -> PathBuf {
    dir(root).join(format!("{name}.leases.json"))
}

pub fn parse_cidr(s: &str) -> Result<(Ipv4Addr, u8)> {
    let (ip, p) = s
        .split_once('/')
        .with_context(|| format!("invalid subnet {s:?}: want A.B.C.D/N"))?;
    let ip: Ipv4Addr = ip
        .parse()
        .with_context(|| format!("invalid subnet {s:?}"))?;
    let p: u8 = p
        .parse()
        .ok()
        .filter(|p| *p <= 30 && *p >= 8)
        .with_context(|| format!("invalid prefix length in subnet {s:?} (8-30)"))?;
    let mask = u32::MAX << (32 - p);
    Ok((Ipv4Addr::from(u32::from(ip) & mask), p))
}

pub fn overlaps(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let p = a.1.min(b.1);
    let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
    (u32::from(a.0) & mask) == (u32::from(b.0) & mask)
}

pub fn load(root: &Path, name: &str) -> Result<Network> {
    let f = file(root, name);
    if !f.exists() {
        return Err(super::NetworkError::NotFound(name.to_string()).into());
    }
    read_json(&f)
}

pub fn list(root: &Path) -> Vec<Network> {
    let mut v: Vec<Network> = std::fs::read_dir(dir(root))
        .map(|rd| {
            rd.flatten()
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.ends_with(".json") && !n.ends_with(".leases.json")
                })
                .filter_map(|e| read_json(&e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

pub fn save(root: &Path, n: &Network) -> Result<()> {
    std::fs::create_dir_all(dir(root))
        .with_context(|| format!("creating {}", dir(root).display()))?;
    write_json(&file(root, &n.name), n)
}

pub fn remove_records(root: &Path, name: &str) {
    let _ = std::fs::remove_file(file(root, name));
    let _ = std::fs::remove_file(leases_file(root, name));
}

/// Subnets routed on the host (any interface), to refuse overlaps with
/// networks berth does not know about.
pub fn host_routes() -> Vec<(Ipv4Addr, u8)> {
    let Ok(t) = std::fs::read_to_string("/proc/net/route") else {
        return vec![];
    };
    t.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dst = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            if mask == 0 {
                return None;
            }
            // The kernel prints network-order bytes as a native integer.
            Some((Ipv4Addr::from(dst.to_ne_bytes()), mask.count_ones() as u8))
        })
        .collect()
}

pub fn leases(root: &Path, name: &str) -> BTreeMap<String, Lease> {
    read_json(&leases_file(root, name)).unwrap_or_default()
}

/// The lowest free address after the gateway.
pub fn allocate(root: &Path, net: &Network, lease: Lease) -> Result<(Ipv4Addr, u8)> {
    let (base, prefix) = parse_cidr(&net.subnet)?;
    let gw: Ipv4Addr = net.gateway.parse().context("gateway")?;
    let mut all = leases(root, &net.name);
    if let Some((ip, _)) = all.iter().find(|(_, l)| l.id == lease.id) {
        return Ok((ip.parse().context("lease")?, prefix));
    }
    let range = net.ip_range.as_deref().map(parse_cidr).transpose()?;
    let size = 1u32 << (32 - prefix);
    for i in 1..size - 1 {
        let ip = Ipv4Addr::from(u32::from(base) + i);
        if ip == gw || all.contains_key(&ip.to_string()) {
            continue;
        }
        if range.is_some_and(|r| !overlaps((ip, 32), r)) {
            continue;
        }
        all.insert(ip.to_string(), lease);
        write_json(&leases_file(root, &net.name), &all)?;
        return Ok((ip, prefix));
    }
    bail!(
        "no free address left in network {} ({})",
        net.name,
        net.subnet
    )
}

/// `--ip`: exactly this address, if the subnet has it and it is free.
pub fn allocate_ip(
    root: &Path,
    net: &Network,
    lease: Lease,
    want: Ipv4Addr,
) -> Result<(Ipv4Addr, u8)> {
    let (base, prefix) = parse_cidr(&net.subnet)?;
    check_in_subnet(net, want)?;
    let mut all = leases(root, &net.name);
    match all.get(&want.to_string()) {
        Some(l) if l.id == lease.id => return Ok((want, prefix)),
        Some(_) => bail!("Address already in use: {want}"),
        None if want.to_string() == net.gateway
            || want == base
            || want == Ipv4Addr::from(u32::from(base) | !(u32::MAX << (32 - prefix))) =>
        {
            bail!("Address already in use: {want}")
        }
        None => {}
    }
    all.retain(|_, l| l.id != lease.id);
    all.insert(want.to_string(), lease);
    write_json(&leases_file(root, &net.name), &all)?;
    Ok((want, prefix))
}

/// docker's check of `--ip` against the network's subnet.
pub fn check_in_subnet(net: &Network, ip: Ipv4Addr) -> Result<()> {
    let (base, prefix) = parse_cidr(&net.subnet)?;
    if !overlaps((base, prefix), (ip, 32)) {
        bail!(
            "no configured subnet or ip-range contain the IP address {ip} (network {}: {})",
            net.name,
            net.subnet
        );
    }
    Ok(())
}

pub fn rename(root: &Path, net: &str, id: &str, new_name: &str) {
    let mut all = leases(root, net);
    let mut changed = false;
    for l in all.values_mut().filter(|l| l.id == id) {
        l.name = new_name.to_string();
        changed = true;
    }
    if changed {
        let _ = write_json(&leases_file(root, net), &all);
    }
}

pub fn release(root: &Path, name: &str, id: &str) {
    let mut all = leases(root, name);
    let before = all.len();
    all.retain(|_, l| l.id != id);
    if all.len() != before {
        let _ = write_json(&leases_file(root, name), &all);
    }
}
