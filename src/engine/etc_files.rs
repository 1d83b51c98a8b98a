//! The /etc/hosts and /etc/resolv.conf berth writes for a container:
//! its own addresses, `--add-host` and `--link` entries, and the network's
//! resolver with `--dns`, `--dns-search` and `--dns-option` over it.

use anyhow::{Context, Result};
use std::path::Path;

use super::container::{self, Container};
use crate::network::{self, NetworkMode};

/// /etc/hosts, written when the container starts (its addresses are known then).
pub fn write_hosts(root: &Path, c: &Container) -> Result<()> {
    let mut hosts =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    let host = &c.config.host;
    for (name, ip) in &host.extra_hosts {
        hosts.push_str(&format!("{ip}\t{name}\n"));
    }
    for (name, alias) in &host.links {
        // A linked container that is gone or stopped has no address to write: docker
        // refuses to start then; berth starts without the entry.
        let Ok(other) = container::find(root, name) else {
            continue;
        };
        let ip = c
            .state
            .endpoints
            .keys()
            .find_map(|net| other.state.endpoints.get(net))
            .map(|ep| ep.ip.clone());
        if let Some(ip) = ip {
            let short = &other.id()[..12];
            let oname = &other.config.name;
            if alias == oname {
                hosts.push_str(&format!("{ip}\t{alias} {short}\n"));
            } else {
                hosts.push_str(&format!("{ip}\t{alias} {short} {oname}\n"));
            }
        }
    }
    let fqdn = if host.domainname.is_empty() {
        c.config.hostname.clone()
    } else {
        format!(
            "{}.{} {}",
            c.config.hostname, host.domainname, c.config.hostname
        )
    };
    for ep in c.state.endpoints.values() {
        hosts.push_str(&format!("{}\t{fqdn}\n", ep.ip));
    }
    std::fs::write(c.dir.join("hosts"), hosts).context("writing hosts")?;
    Ok(())
}

/// resolv.conf: the network's (the host's, or a user network's resolver), with
/// the `--dns*` flags replacing nameservers, search domains and options.
pub fn resolv_conf(root: &Path, mode: &NetworkMode, h: &super::hostconfig::HostConfig) -> String {
    let base = network::resolv_conf(root, mode);
    // On a user network the embedded resolver stays: it answers container names.
    let keep_ns = mode.is_user_defined() || h.dns.is_empty();
    let mut out = String::new();
    for l in base.lines() {
        let word = l.split_whitespace().next().unwrap_or("");
        let drop = (word == "nameserver" && !keep_ns)
            || (word == "search" && !h.dns_search.is_empty())
            || (word == "options" && !h.dns_options.is_empty());
        if !drop {
            out.push_str(l);
            out.push('\n');
        }
    }
    if !keep_ns {
        for ip in &h.dns {
            out.push_str(&format!("nameserver {ip}\n"));
        }
    }
    if !h.dns_search.is_empty() {
        out.push_str(&format!("search {}\n", h.dns_search.join(" ")));
    }
    if !h.dns_options.is_empty() {
        out.push_str(&format!("options {}\n", h.dns_options.join(" ")));
    }
    out
}

/// `rm --link PARENT/ALIAS`: drops the link from PARENT (and from its
/// /etc/hosts if it runs); the linked container stays.
pub fn remove_link(root: &Path, spec: &str) -> super::error::Result<()> {
    let Some((parent, alias)) = spec.trim_start_matches('/').rsplit_once('/') else {
        crate::invalid!("Conflict, cannot remove the default link name of the container: {spec}");
    };
    let mut c = container::find(root, parent)?;
    let before = c.config.host.links.len();
    c.config.host.links.retain(|(_, a)| a != alias);
    if c.config.host.links.len() == before {
        crate::invalid!("Failed to remove link {spec}: no such link");
    }
    c.save_config()?;
    if c.is_running() {
        write_hosts(root, &c)?;
    }
    Ok(())
}

/// The address `host-gateway` stands for: the default bridge's gateway.
pub fn host_gateway(root: &Path) -> Result<String> {
    Ok(network::default_network(root)?.gateway)
}
