//! A service's docker HostConfig keys (`dns`, `sysctls`, `pid`, `devices`, ...) as the engine's
//! `HostConfig`, through the parsers and checks `berth run`'s flags use; an error names the
//! compose key (`services.web.dns[0]: ...`).

use std::fmt::Display;

use super::{OpError, Result};
use crate::compose::model::{Project, Service};
use crate::compose::naming::container_name;
use crate::engine::hostconfig::{self as hc, HostConfig};

fn bad(s: &Service, key: &str, e: impl Display) -> OpError {
    OpError::Failed(format!("services.{}.{key}: {e}", s.name))
}

/// Each entry of list `key` through `f`, an error naming `key[i]`.
fn each<T>(
    s: &Service,
    key: &str,
    v: &[String],
    f: impl Fn(&str) -> anyhow::Result<T>,
) -> Result<Vec<T>> {
    v.iter()
        .enumerate()
        .map(|(i, x)| f(x).map_err(|e| bad(s, &format!("{key}[{i}]"), format!("{e:#}"))))
        .collect()
}

fn num<T: TryFrom<i64>>(s: &Service, key: &str, v: Option<i64>) -> Result<Option<T>> {
    v.map(|n| T::try_from(n).map_err(|_| bad(s, key, format!("{n} is out of range"))))
        .transpose()
}

/// `service:X` (compose) as the engine's `container:NAME`; other modes as written.
fn ns_mode(p: &Project, s: &Service, key: &str, mode: &str) -> Result<String> {
    match mode.strip_prefix("service:") {
        Some(other) => match p.services.get(other) {
            Some(o) => Ok(format!("container:{}", container_name(&p.name, o, 1))),
            None => Err(bad(s, key, format!("no such service {other:?}"))),
        },
        None => Ok(mode.to_string()),
    }
}

/// `links: [svc[:alias]]` to the container of the service's first replica.
fn link(p: &Project, s: &Service, i: usize, l: &str) -> Result<(String, String)> {
    let (svc, alias) = l.split_once(':').unwrap_or((l, l));
    let o = p.services.get(svc).ok_or_else(|| {
        bad(
            s,
            &format!("links[{i}]"),
            format!("no such service {svc:?}"),
        )
    })?;
    let name = container_name(&p.name, o, 1);
    hc::parse_link(&format!("{name}:{alias}")).map_err(|e| bad(s, &format!("links[{i}]"), e))
}

/// The engine's host config of service `s`, checked as `berth run` checks its flags.
pub fn host_config(p: &Project, s: &Service) -> Result<HostConfig> {
    let mut sysctls = std::collections::BTreeMap::new();
    for (k, v) in &s.sysctls {
        let (k, v) = hc::parse_sysctl(&format!("{k}={v}"))
            .map_err(|e| bad(s, &format!("sysctls.{k}"), e))?;
        sysctls.insert(k, v);
    }
    let mut links = Vec::new();
    for (i, l) in s.links.iter().enumerate() {
        links.push(link(p, s, i, l)?);
    }
    links.extend(each(
        s,
        "external_links",
        &s.external_links,
        hc::parse_link,
    )?);
    let extra_hosts: Vec<String> = s
        .extra_hosts
        .iter()
        .map(|(h, ip)| format!("{h}={ip}"))
        .collect();
    let reservation = s
        .mem_reservation
        .or_else(|| s.deploy.as_ref().and_then(|d| d.reservations.memory));
    let pid = ns_mode(p, s, "pid", s.pid.as_deref().unwrap_or(""))?;
    let ipc = ns_mode(p, s, "ipc", s.ipc.as_deref().unwrap_or(""))?;
    let h = HostConfig {
        domainname: s.domainname.clone().unwrap_or_default(),
        extra_hosts: each(s, "extra_hosts", &extra_hosts, hc::parse_add_host)?,
        dns: each(s, "dns", &s.dns, hc::parse_dns)?,
        dns_search: s.dns_search.clone(),
        dns_options: s.dns_opt.clone(),
        links,
        devices: each(s, "devices", &s.devices, hc::parse_device)?,
        shm_size: num(s, "shm_size", s.shm_size.map(|b| b as i64))?,
        sysctls,
        memory_swap: s.memswap_limit,
        memory_reservation: num(s, "mem_reservation", reservation.map(|b| b as i64))?,
        oom_kill_disable: s.oom_kill_disable,
        oom_score_adj: num(s, "oom_score_adj", s.oom_score_adj)?,
        cpuset_cpus: s
            .cpuset
            .as_deref()
            .map(|c| hc::parse_cpuset(c).map_err(|e| bad(s, "cpuset", format!("{e:#}"))))
            .transpose()?,
        cpu_quota: s.cpu_quota,
        cpu_period: num(s, "cpu_period", s.cpu_period)?,
        blkio_weight: num(s, "blkio_config.weight", s.blkio_weight)?,
        cgroup_parent: s.cgroup_parent.clone(),
        group_add: s.group_add.clone(),
        pid: hc::parse_pid(&pid).map_err(|e| bad(s, "pid", e))?,
        ipc: hc::parse_ipc(&ipc).map_err(|e| bad(s, "ipc", e))?,
        ip: fixed_ips(s)?.first().copied().flatten(),
        mac_address: s
            .mac_address
            .as_deref()
            .map(|m| hc::parse_mac(m).map_err(|e| bad(s, "mac_address", e)))
            .transpose()?,
        ..HostConfig::default()
    };
    let memory = s.memory_limit().map(|m| m as i64);
    hc::check_resources(&h, memory, s.cpu_limit())
        .map_err(|e| OpError::Failed(format!("services.{}: {e}", s.name)))?;
    Ok(h)
}

/// Each of the service's networks' `ipv4_address`, in the order of `networks:` (the first is
/// the network the container is created on, the engine's `--ip`; the others are given to
/// `network connect --ip`). `ipv6_address` is refused: the engine has no IPv6.
pub fn fixed_ips(s: &Service) -> Result<Vec<Option<std::net::Ipv4Addr>>> {
    let mut ips = Vec::new();
    for (net, sn) in &s.networks {
        let key = format!("networks.{net}");
        if sn.ipv6_address.is_some() {
            return Err(bad(
                s,
                &format!("{key}.ipv6_address"),
                "not supported by berth's engine",
            ));
        }
        let Some(a) = &sn.ipv4_address else {
            ips.push(None);
            continue;
        };
        if s.network_mode.is_some() {
            return Err(bad(
                s,
                &format!("{key}.ipv4_address"),
                "a fixed address needs the service's own networks (network_mode is set)",
            ));
        }
        let a = a.parse().map_err(|_| {
            bad(
                s,
                &format!("{key}.ipv4_address"),
                format!("{a:?} is not an IPv4 address"),
            )
        })?;
        ips.push(Some(a));
    }
    Ok(ips)
}
