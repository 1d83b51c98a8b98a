//! The container side of networks: who uses a network, `connect`,
//! `disconnect`, and removal that refuses networks in use.

use std::net::Ipv4Addr;
use std::path::Path;

use super::error::Result;
use super::{container, events};
use crate::network::{self, ops, NetworkMode};

/// Names of containers with a live endpoint on `net`.
pub fn users(root: &Path, net: &str) -> Vec<String> {
    container::list(root)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| {
            c.net_member().networks().iter().any(|n| n == net)
                && (c.monitor_alive() || c.is_running())
        })
        .map(|c| c.config.name)
        .collect()
}

/// One `network ls --filter key=value` (name, id, label, driver, type).
pub fn filter_matches(n: &network::ipam::Network, f: &str) -> Result<bool> {
    let Some((k, v)) = f.split_once('=') else {
        crate::invalid!("bad format of filter (expected name=value): {f}");
    };
    Ok(match k {
        "name" => n.name.contains(v),
        "id" => n.id.starts_with(v),
        "driver" => n.driver == v,
        "label" => super::volumes::label_matches(&n.labels, v),
        "type" => match v {
            "custom" => n.name != network::DEFAULT,
            "builtin" => n.name == network::DEFAULT,
            _ => crate::invalid!("invalid filter 'type={v}'"),
        },
        _ => crate::invalid!("invalid filter '{k}'"),
    })
}

pub fn remove(root: &Path, name: &str) -> Result<()> {
    ops::remove(root, name, |n| users(root, n))?;
    events::object(root, "network", "destroy", name, &[("name", name)]);
    Ok(())
}

pub fn prune(root: &Path) -> Result<Vec<String>> {
    Ok(ops::prune(root, |n| users(root, n))?)
}

/// Connects a container to a network (now, if it runs; at its next start otherwise), with
/// `ip` as its fixed address there (`--ip`).
pub fn connect(
    root: &Path,
    key: &str,
    net_name: &str,
    aliases: &[String],
    ip: Option<Ipv4Addr>,
) -> Result<()> {
    let mut c = container::find(root, key)?;
    let net = network::load(root, net_name)?;
    if c.config.network.network() == Some(net_name)
        || c.config.networks.iter().any(|n| n == net_name)
    {
        crate::invalid!("container {key} is already connected to network {net_name}");
    }
    if let Some(ip) = ip {
        if !net.dns {
            crate::invalid!("user specified IP address is supported on user defined networks only");
        }
        network::ipam::check_in_subnet(&net, ip)?;
        c.config.host.network_ips.insert(net_name.to_string(), ip);
    }
    c.config.networks.push(net_name.to_string());
    c.config.aliases.extend(aliases.iter().cloned());
    if c.is_running() {
        let n = c.net_member().networks().len() - 1;
        let _l = ops::lock(root)?;
        let ep = network::attach_endpoint(root, &c.net_member(), &net, n)?;
        let _s = c.lock_state()?;
        c.reload_state();
        c.state.endpoints.insert(net_name.to_string(), ep);
        c.save_state()?;
    }
    c.save_config()?;
    events::object(
        root,
        "network",
        "connect",
        net_name,
        &[("container", c.id()), ("name", net_name)],
    );
    Ok(())
}

pub fn disconnect(root: &Path, key: &str, net_name: &str) -> Result<()> {
    let mut c = container::find(root, key)?;
    let nets = c.net_member().networks();
    let Some(i) = nets.iter().position(|n| n == net_name) else {
        crate::invalid!("container {key} is not connected to network {net_name}");
    };
    if c.is_running() {
        let _l = ops::lock(root)?;
        ops::detach_endpoint(root, c.id(), net_name, i);
        let _s = c.lock_state()?;
        c.reload_state();
        c.state.endpoints.remove(net_name);
        c.save_state()?;
    }
    if c.config.network.network() == Some(net_name) {
        c.config.network = NetworkMode::None;
    }
    c.config.networks.retain(|n| n != net_name);
    c.config.host.network_ips.remove(net_name);
    c.save_config()?;
    events::object(
        root,
        "network",
        "disconnect",
        net_name,
        &[("container", c.id()), ("name", net_name)],
    );
    Ok(())
}
