//! The run flags past the basics (docker's HostConfig): hosts and DNS
//! entries, namespace modes, devices, sysctls and the finer resource
//! limits, as typed values with docker's parsers and checks. Kept in the
//! container's record; `spec_extra` puts them in config.json and
//! `etc_files` in /etc/hosts and /etc/resolv.conf.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::os::unix::fs::FileTypeExt;

#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(default)]
pub struct HostConfig {
    pub domainname: String,
    /// `--add-host name:ip`; `host-gateway` is resolved at create.
    pub extra_hosts: Vec<(String, String)>,
    pub dns: Vec<IpAddr>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// `--link container:alias`.
    pub links: Vec<(String, String)>,
    pub devices: Vec<Device>,
    /// Bytes of /dev/shm (docker's default 64m).
    pub shm_size: Option<i64>,
    pub sysctls: BTreeMap<String, String>,
    /// Memory plus swap in bytes; -1 = unlimited swap.
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub oom_kill_disable: bool,
    pub oom_score_adj: Option<i32>,
    pub cpuset_cpus: Option<String>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub blkio_weight: Option<u16>,
    pub cgroup_parent: Option<String>,
    pub group_add: Vec<String>,
    pub pid: NsMode,
    pub ipc: NsMode,
    pub uts: NsMode,
    /// `--cgroupns private`: a cgroup namespace of its own (host is docker's v1 default).
    pub cgroupns_private: bool,
    pub log_driver: LogDriver,
    /// `--ip` on the primary (user-defined) network.
    pub ip: Option<std::net::Ipv4Addr>,
    pub mac_address: Option<[u8; 6]>,
    /// Fixed addresses on the networks joined after create, by network name
    /// (`network connect --ip`, compose's `ipv4_address` on a service's other networks).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub network_ips: BTreeMap<String, std::net::Ipv4Addr>,
}

/// `--pid`/`--ipc`/`--uts`: a namespace of its own, the host's, or another container's.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub enum NsMode {
    #[default]
    Private,
    Host,
    Container(String),
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, Default, PartialEq, Eq)]
pub enum LogDriver {
    #[default]
    JsonFile,
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Device {
    pub host: String,
    pub container: String,
    /// Some of "rwm".
    pub perms: String,
    /// 'c' or 'b'.
    pub kind: char,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
}

/// `--pid`: host or container:NAME.
pub fn parse_pid(s: &str) -> Result<NsMode> {
    parse_ns("--pid", s, &[])
}

/// `--ipc`: private, shareable (both a namespace of its own), host or container:NAME.
pub fn parse_ipc(s: &str) -> Result<NsMode> {
    parse_ns("--ipc", s, &["private", "shareable"])
}

/// `--uts`: host only (docker has no container:NAME here).
pub fn parse_uts(s: &str) -> Result<NsMode> {
    match s {
        "" => Ok(NsMode::Private),
        "host" => Ok(NsMode::Host),
        _ => bail!("invalid UTS mode: {s}"),
    }
}

fn parse_ns(flag: &str, s: &str, private: &[&str]) -> Result<NsMode> {
    if s.is_empty() || private.contains(&s) {
        return Ok(NsMode::Private);
    }
    if s == "host" {
        return Ok(NsMode::Host);
    }
    match s.strip_prefix("container:") {
        Some(c) if !c.is_empty() => Ok(NsMode::Container(c.to_string())),
        _ => bail!("invalid {flag} mode: {s}"),
    }
}

/// `--userns`: berth maps no user namespace, so only the host's (docker's "host") exists.
pub fn check_userns(s: &str) -> Result<()> {
    if !s.is_empty() && s != "host" {
        bail!("invalid --userns {s:?}: berth runs containers in the host's user namespace (only \"host\" is supported)");
    }
    Ok(())
}

/// `--cgroupns host|private`: true for private.
pub fn parse_cgroupns(s: &str) -> Result<bool> {
    match s {
        "" | "host" => Ok(false),
        "private" => Ok(true),
        _ => bail!("invalid cgroup namespace mode: {s}: must be \"host\" or \"private\""),
    }
}

pub fn parse_log_driver(s: &str) -> Result<LogDriver> {
    match s {
        "" | "json-file" => Ok(LogDriver::JsonFile),
        "none" => Ok(LogDriver::None),
        _ => bail!("invalid --log-driver {s:?}: berth supports json-file and none"),
    }
}

/// `--add-host name:ip` (also `name=ip`); ip may be `host-gateway`.
pub fn parse_add_host(s: &str) -> Result<(String, String)> {
    let (name, ip) = s
        .split_once('=')
        .or_else(|| s.split_once(':'))
        .with_context(|| format!("bad format for add-host: {s:?}"))?;
    if name.is_empty() {
        bail!("bad format for add-host: {s:?}");
    }
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if ip != "host-gateway" && ip.parse::<IpAddr>().is_err() {
        bail!("invalid IP address in add-host: {ip:?}");
    }
    Ok((name.to_string(), ip.to_string()))
}

pub fn parse_dns(s: &str) -> Result<IpAddr> {
    s.parse()
        .with_context(|| format!("{s} is not an ip address (--dns)"))
}

/// `--link name[:alias]`.
pub fn parse_link(s: &str) -> Result<(String, String)> {
    let (n, a) = s.split_once(':').unwrap_or((s, s));
    if n.is_empty() || a.is_empty() {
        bail!("invalid --link {s:?}: want name[:alias]");
    }
    Ok((n.trim_start_matches('/').to_string(), a.to_string()))
}

/// `--device host[:container[:perms]]`, looked up on the host now.
pub fn parse_device(s: &str) -> Result<Device> {
    let parts: Vec<&str> = s.split(':').collect();
    let (host, container, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, c] if valid_perms(c) => (*h, *h, *c),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => bail!("invalid device specification: {s}"),
    };
    if !valid_perms(perms) {
        bail!("invalid device mode: {perms}");
    }
    if !container.starts_with('/') {
        bail!("invalid device specification: {s}: {container} is not an absolute path");
    }
    let meta = std::fs::metadata(host).with_context(|| {
        format!("error gathering device information while adding custom device {host:?}")
    })?;
    let ft = meta.file_type();
    let kind = if ft.is_char_device() {
        'c'
    } else if ft.is_block_device() {
        'b'
    } else {
        bail!("error gathering device information while adding custom device {host:?}: not a device node");
    };
    use std::os::unix::fs::MetadataExt;
    let rdev = meta.rdev();
    Ok(Device {
        host: host.into(),
        container: container.into(),
        perms: perms.into(),
        kind,
        major: nix::sys::stat::major(rdev),
        minor: nix::sys::stat::minor(rdev),
        mode: meta.mode() & 0o7777,
    })
}

fn valid_perms(p: &str) -> bool {
    !p.is_empty() && p.len() <= 3 && p.chars().all(|c| "rwm".contains(c))
}

/// `--mac-address 02:42:ac:11:00:99`: a unicast address.
pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let bad = || format!("{s} is not a valid mac address");
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        bail!("{}", bad());
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(&parts) {
        if p.len() != 2 {
            bail!("{}", bad());
        }
        *b = u8::from_str_radix(p, 16).with_context(bad)?;
    }
    if mac[0] & 1 == 1 {
        bail!("{s} is a multicast mac address");
    }
    Ok(mac)
}

/// `--sysctl k=v`: only namespaced sysctls, as docker allows them.
pub fn parse_sysctl(s: &str) -> Result<(String, String)> {
    let (k, v) = s
        .split_once('=')
        .with_context(|| format!("sysctl {s:?} is not in the form key=value"))?;
    let namespaced = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
    ]
    .contains(&k)
        || ["kernel.shm", "fs.mqueue.", "net."]
            .iter()
            .any(|p| k.starts_with(p));
    if !namespaced {
        bail!("sysctl '{k}' is not allowed");
    }
    Ok((k.to_string(), v.to_string()))
}

/// `--cpuset-cpus 0-2,4`: checked against the host's online CPUs.
pub fn parse_cpuset(s: &str) -> Result<String> {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let avail = cpu_list(online.trim()).unwrap_or_default();
    let want = cpu_list(s).with_context(|| format!("invalid value {s} for cpuset cpus"))?;
    if want.iter().any(|c| !avail.is_empty() && !avail.contains(c)) {
        bail!(
            "requested CPUs are not available - requested {s}, available: {}",
            online.trim()
        );
    }
    Ok(s.to_string())
}

fn cpu_list(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a > b {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// `--expose 80`, `--expose 53/udp`, `--expose 8000-8002`: "port/proto" entries.
pub fn parse_expose(s: &str) -> Result<Vec<String>> {
    let (p, proto) = s.split_once('/').unwrap_or((s, "tcp"));
    if !["tcp", "udp", "sctp"].contains(&proto) {
        bail!("invalid proto: {proto}");
    }
    let bad = || format!("invalid range format for --expose: {s}");
    let (a, b) = p.split_once('-').unwrap_or((p, p));
    let a: u16 = a.parse().with_context(bad)?;
    let b: u16 = b.parse().with_context(bad)?;
    if a > b {
        bail!("{}", bad());
    }
    Ok((a..=b).map(|n| format!("{n}/{proto}")).collect())
}

/// `--label-file`: one label a line, `#` comments.
pub fn parse_label_file(path: &str) -> Result<Vec<String>> {
    super::opts::file_lines(path, "--label-file")
}

/// docker's checks of the resource flags against each other.
pub fn check_resources(h: &HostConfig, memory: Option<i64>, cpus: Option<f64>) -> Result<()> {
    if let Some(s) = h.memory_swap {
        match memory {
            None if s != 0 => bail!(
                "You should always set the Memory limit when using Memoryswap limit, see usage"
            ),
            Some(m) if s > 0 && s < m => {
                bail!("Minimum memoryswap limit should be larger than memory limit, see usage")
            }
            _ => {}
        }
        if s < -1 {
            bail!("invalid --memory-swap {s}: want -1 (unlimited) or a size");
        }
    }
    if let (Some(m), Some(r)) = (memory, h.memory_reservation) {
        if m < r {
            bail!("Minimum memory limit can not be less than memory reservation limit, see usage");
        }
    }
    if let Some(a) = h.oom_score_adj {
        if !(-1000..=1000).contains(&a) {
            bail!("Invalid value {a}, range for oom score adj is [-1000, 1000]");
        }
    }
    if cpus.is_some() && (h.cpu_quota.is_some() || h.cpu_period.is_some()) {
        bail!("Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set");
    }
    if let Some(p) = h.cpu_period {
        if !(1000..=1_000_000).contains(&p) {
            bail!("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)");
        }
    }
    if let Some(q) = h.cpu_quota {
        if q > 0 && q < 1000 {
            bail!("CPU cfs quota can not be less than 1ms (i.e. 1000)");
        }
    }
    if let Some(w) = h.blkio_weight {
        if w != 0 && !(10..=1000).contains(&w) {
            bail!("Range of blkio weight is from 10 to 1000");
        }
    }
    if let Some(p) = &h.cgroup_parent {
        if p.split('/').any(|c| c == "..") {
            bail!("invalid --cgroup-parent {p:?}: \"..\" is not allowed");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsers() {
        assert_eq!(parse_pid("host").unwrap(), NsMode::Host);
        assert_eq!(
            parse_ipc("container:db").unwrap(),
            NsMode::Container("db".into())
        );
        assert_eq!(parse_ipc("shareable").unwrap(), NsMode::Private);
        assert!(parse_pid("private2").is_err());
        assert!(parse_uts("container:x").is_err());
        assert_eq!(
            parse_add_host("db:10.0.0.2").unwrap(),
            ("db".into(), "10.0.0.2".into())
        );
        assert_eq!(parse_add_host("h=host-gateway").unwrap().1, "host-gateway");
        assert!(parse_add_host("db:notanip").is_err());
        assert_eq!(
            parse_add_host("v6:[::1]").unwrap(),
            ("v6".into(), "::1".into())
        );
        assert!(parse_sysctl("vm.swappiness=1").is_err());
        assert_eq!(
            parse_mac("02:42:0a:00:00:09").unwrap(),
            [2, 0x42, 10, 0, 0, 9]
        );
        assert!(parse_mac("01:00:5e:00:00:01").is_err());
        assert!(parse_mac("zz:42:0a:00:00:09").is_err());
        assert!(parse_sysctl("net.ipv4.ip_forward=1").is_ok());
        assert_eq!(
            parse_expose("8000-8001/udp").unwrap(),
            vec!["8000/udp", "8001/udp"]
        );
        assert!(parse_expose("x").is_err());
        assert_eq!(parse_link("db").unwrap(), ("db".into(), "db".into()));
        assert!(parse_device("/dev/null:/dev/n:rwx").is_err());
        let d = parse_device("/dev/null:/dev/n:r").unwrap();
        assert_eq!((d.kind, d.major, d.minor), ('c', 1, 3));
        assert!(parse_device("/nonexistent").is_err());
        assert!(parse_cpuset("0").is_ok());
        assert!(parse_cpuset("9999").is_err());
        assert!(parse_cpuset("a-b").is_err());
    }

    #[test]
    fn resource_checks() {
        let h = HostConfig {
            memory_swap: Some(1 << 20),
            ..Default::default()
        };
        assert!(check_resources(&h, None, None).is_err());
        assert!(check_resources(&h, Some(2 << 20), None).is_err());
        assert!(check_resources(&h, Some(1 << 20), None).is_ok());
        let h = HostConfig {
            cpu_period: Some(50000),
            ..Default::default()
        };
        assert!(check_resources(&h, None, Some(1.0)).is_err());
        let h = HostConfig {
            oom_score_adj: Some(-2000),
            ..Default::default()
        };
        assert!(check_resources(&h, None, None).is_err());
    }
}
