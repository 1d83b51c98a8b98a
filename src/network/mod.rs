//! berth's networks: Linux bridges with IPAM, veth pairs into
//! berth-made network namespaces (set up over raw netlink), nftables NAT
//! and port publishing, and a DNS helper per user-defined network.

pub mod dns;
mod error;
pub mod ipam;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod ops;
pub mod owner;
mod types;

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::sys as fsutil;
pub use error::NetworkError;
use ipam::Network;
use netlink::Netlink;
pub use types::{Endpoint, Member, NetworkMode, PortMap};

pub const DEFAULT: &str = "bridge";

/// The default bridge network, made on first use. Its bridge name and subnet are the root's own
/// (`owner`); BERTH_BRIDGE and BERTH_BRIDGE_SUBNET override them.
pub fn default_network(root: &Path) -> Result<Network> {
    if let Ok(n) = ipam::load(root, DEFAULT) {
        return Ok(n);
    }
    let bridge = std::env::var("BERTH_BRIDGE").unwrap_or_else(|_| owner::default_bridge(root));
    let subnet = match std::env::var("BERTH_BRIDGE_SUBNET") {
        Ok(s) => s,
        Err(_) => owner::default_subnet(root)?,
    };
    netlink::check_ifname(&bridge)?;
    let (base, p) = ipam::parse_cidr(&subnet)?;
    if netlink::ifindex(&bridge).is_none()
        && ipam::host_routes()
            .iter()
            .any(|r| ipam::overlaps(*r, (base, p)))
    {
        bail!(
            "default bridge subnet {subnet} overlaps a route on the host; set BERTH_BRIDGE_SUBNET"
        );
    }
    let n = Network {
        name: DEFAULT.into(),
        id: fsutil::random_id(),
        driver: "bridge".into(),
        subnet: format!("{base}/{p}"),
        gateway: Ipv4Addr::from(u32::from(base) + 1).to_string(),
        bridge,
        created: fsutil::now_rfc3339(),
        dns: false,
        internal: false,
        ip_range: None,
        labels: Default::default(),
    };
    ipam::save(root, &n)?;
    Ok(n)
}

pub fn load(root: &Path, name: &str) -> Result<Network> {
    if name == DEFAULT {
        return default_network(root);
    }
    ipam::load(root, name)
}

/// Checks that the network a mode names exists (the default bridge is made on first use).
pub fn validate(root: &Path, mode: &NetworkMode) -> Result<()> {
    if let Some(n) = mode.network() {
        load(root, n)?;
    }
    Ok(())
}

pub fn resolv_conf(root: &Path, mode: &NetworkMode) -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    match mode.network() {
        Some(n) if n != DEFAULT => match ipam::load(root, n) {
            Ok(net) => format!("nameserver {}\noptions ndots:0\n", net.gateway),
            Err(_) => host,
        },
        _ => host,
    }
}

/// A host port some container or process already holds.
#[derive(Debug, thiserror::Error)]
#[error("Bind for {ip}:{port} failed: port is already allocated")]
pub struct PortInUse {
    pub ip: String,
    pub port: u16,
}

/// Picks host ports for `-p :80`, and refuses ports in `used` (what other
/// containers of this root publish) or that something on the host listens on.
pub fn check_ports(ports: &mut [PortMap], used: &[PortMap]) -> Result<()> {
    for p in ports.iter_mut() {
        let ip: Ipv4Addr = p.host_ip.parse().context("host ip")?;
        if p.host_port == 0 {
            p.host_port = if p.proto == "udp" {
                UdpSocket::bind((ip, 0)).and_then(|s| s.local_addr())
            } else {
                TcpListener::bind((ip, 0)).and_then(|s| s.local_addr())
            }
            .with_context(|| format!("finding a free port on {ip}"))?
            .port();
            continue;
        }
        let clash = |q: &PortMap| {
            q.host_port == p.host_port
                && q.proto == p.proto
                && (q.host_ip == p.host_ip || q.host_ip == "0.0.0.0" || p.host_ip == "0.0.0.0")
        };
        let free = if p.proto == "udp" {
            UdpSocket::bind((ip, p.host_port)).is_ok()
        } else {
            TcpListener::bind((ip, p.host_port)).is_ok()
        };
        if used.iter().any(clash) || !free {
            return Err(PortInUse {
                ip: p.host_ip.clone(),
                port: p.host_port,
            }
            .into());
        }
    }
    // The same port twice on one command line.
    for (i, p) in ports.iter().enumerate() {
        if ports[..i]
            .iter()
            .any(|q| q.host_port == p.host_port && q.proto == p.proto && q.host_ip == p.host_ip)
        {
            return Err(PortInUse {
                ip: p.host_ip.clone(),
                port: p.host_port,
            }
            .into());
        }
    }
    Ok(())
}

/// Creates the bridge, its address, NAT registration and DNS helper if missing.
pub fn ensure_bridge(root: &Path, net: &Network) -> Result<()> {
    if netlink::ifindex(&net.bridge).is_none() {
        let (_, prefix) = ipam::parse_cidr(&net.subnet)?;
        let gw: Ipv4Addr = net.gateway.parse().context("gateway")?;
        let mut nl = Netlink::open()?;
        nl.create_bridge(&net.bridge)?;
        let r = (|| -> Result<()> {
            nl.add_addr(&net.bridge, gw, prefix)?;
            nl.set_up(&net.bridge)?;
            // Lets DNAT from 127.0.0.1 reach containers on this bridge.
            let p = format!("/proc/sys/net/ipv4/conf/{}/route_localnet", net.bridge);
            std::fs::write(&p, "1").with_context(|| format!("writing {p}"))?;
            owner::claim(root, &net.bridge)?;
            nft::add_bridge(root, &net.bridge, &net.subnet)
        })();
        if let Err(e) = r {
            let _ = nl.delete_link(&net.bridge);
            return Err(e);
        }
    } else {
        owner::check_existing(root, &net.bridge)?;
    }
    if net.dns {
        dns::ensure(root, net)?;
    }
    Ok(())
}

/// Removes a network's kernel objects (bridge, NAT registration, DNS helper).
pub fn teardown_bridge(root: &Path, net: &Network) {
    dns::stop(root, &net.name);
    if netlink::ifindex(&net.bridge).is_some() && owner::is_mine(root, &net.bridge) {
        if let Ok(mut nl) = Netlink::open() {
            let _ = nl.delete_link(&net.bridge);
        }
    }
    let others = ipam::list(root)
        .into_iter()
        .any(|n| n.name != net.name && netlink::ifindex(&n.bridge).is_some());
    nft::remove_bridge(root, &net.bridge, &net.subnet, !others);
}

pub(crate) fn host_veth(id: &str, n: usize) -> String {
    format!("vb{}{}", &id[..9], n)
}

/// Connects the container's netns to `net` as `eth<n>`.
pub fn attach_endpoint(root: &Path, c: &Member, net: &Network, n: usize) -> Result<Endpoint> {
    ensure_bridge(root, net)?;
    let lease = ipam::Lease {
        id: c.id.to_string(),
        name: c.name.to_string(),
        aliases: c.aliases.to_vec(),
        dns: c.dns.to_vec(),
    };
    let want = match n {
        0 => c.ip.or_else(|| c.ips.get(&net.name).copied()),
        _ => c.ips.get(&net.name).copied(),
    };
    let (ip, prefix) = match want {
        Some(want) => ipam::allocate_ip(root, net, lease, want)?,
        None => ipam::allocate(root, net, lease)?,
    };
    let gw: Ipv4Addr = net.gateway.parse().context("gateway")?;
    let hv = host_veth(c.id, n);
    let ifname = format!("eth{n}");
    let o = ip.octets();
    let mac = match c.mac.filter(|_| n == 0) {
        Some(m) => m,
        None => [0x02, 0x42, o[0], o[1], o[2], o[3]],
    };
    let ns = netns::create(root, c.id)?;
    let r = (|| -> Result<()> {
        let nsf = std::fs::File::open(&ns).with_context(|| format!("opening {}", ns.display()))?;
        let mut nl = Netlink::open()?;
        // The name is this container's own: a link still holding it is the pair of its
        // previous run, whose netns the kernel tears down asynchronously after the exit (a
        // restart can get here first).
        let _ = nl.delete_link(&hv);
        nl.create_veth(&hv, &ifname, nsf.as_raw_fd(), mac)?;
        nl.set_master(&hv, &net.bridge)?;
        nl.set_up(&hv)?;
        let ifn = ifname.clone();
        let first = n == 0;
        netns::run_in(&ns, move || {
            let mut nl = Netlink::open()?;
            if first {
                nl.set_up("lo")?;
            }
            nl.add_addr(&ifn, ip, prefix)?;
            nl.set_up(&ifn)?;
            if first {
                nl.add_default_route(gw)?;
            }
            Ok(())
        })
    })();
    if let Err(e) = r {
        if let Ok(mut nl) = Netlink::open() {
            let _ = nl.delete_link(&hv);
        }
        ipam::release(root, &net.name, c.id);
        return Err(e).with_context(|| format!("connecting {} to network {}", c.name, net.name));
    }
    Ok(Endpoint {
        ip: ip.to_string(),
        prefix,
        gateway: net.gateway.clone(),
        mac: mac
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
        host_veth: hv,
    })
}

/// The monitor's network step before `<runtime> create`.
pub fn setup(root: &Path, c: &Member) -> Result<BTreeMap<String, Endpoint>> {
    let mut eps = BTreeMap::new();
    if *c.mode == NetworkMode::None {
        // docker's none: a namespace of its own with loopback up.
        let ns = netns::create(root, c.id)?;
        let r = netns::run_in(&ns, || Netlink::open()?.set_up("lo"));
        if let Err(e) = r {
            netns::remove(root, c.id);
            return Err(e);
        }
        return Ok(eps);
    }
    let nets = c.networks();
    if nets.is_empty() {
        return Ok(eps);
    }
    let _l = fsutil::lock(&ipam::lock_path(root))?;
    let r = (|| -> Result<()> {
        for (i, name) in nets.iter().enumerate() {
            let net = load(root, name)?;
            let ep = attach_endpoint(root, c, &net, i)?;
            if i == 0 {
                nft::publish(root, c.ports, &ep.ip)?;
            }
            eps.insert(name.clone(), ep);
        }
        Ok(())
    })();
    if let Err(e) = r {
        drop(_l);
        teardown(root, c);
        return Err(e);
    }
    Ok(eps)
}

/// Keeps DNS answers right after `rename`.
pub fn rename(root: &Path, id: &str, new_name: &str) {
    let Ok(_l) = fsutil::lock(&ipam::lock_path(root)) else {
        return;
    };
    for n in ipam::list(root) {
        ipam::rename(root, &n.name, id, new_name);
    }
}

/// Undoes `setup`; safe to repeat, and works from the records alone.
pub fn teardown(root: &Path, c: &Member) {
    let nets = c.networks();
    if nets.is_empty() {
        if *c.mode == NetworkMode::None {
            netns::remove(root, c.id);
        }
        return;
    }
    let _l = fsutil::lock(&ipam::lock_path(root));
    if !c.ports.is_empty() && netns::path(root, c.id).exists() {
        nft::unpublish(root, c.ports);
    }
    if let Ok(mut nl) = Netlink::open() {
        for i in 0..nets.len() {
            let hv = host_veth(c.id, i);
            if netlink::ifindex(&hv).is_some() {
                let _ = nl.delete_link(&hv);
            }
        }
    }
    for n in &nets {
        ipam::release(root, n, c.id);
    }
    netns::remove(root, c.id);
}
