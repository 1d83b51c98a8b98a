//! run/create flags past the basics (docker's HostConfig and friends),
//! `--pull` with its progress on stderr, and `--cidfile`.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::Path;

use hull::engine::hostconfig::{self as hc, HostConfig};
use hull::engine::{opts, EngineError};
use hull::image::reference::Reference;
use hull::image::registry::{self, PullOptions};
use hull::image::store::Store;
use hull::image::types::Platform;

#[derive(Args, Clone, Default)]
pub struct MoreRunArgs {
    /// Pull the image before running: missing, always, never
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// OS/ARCH[/VARIANT] of the image to pull
    #[arg(long)]
    pub platform: Option<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
    /// Add a custom host-to-IP mapping (host:ip, ip may be host-gateway)
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long)]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long, alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Add a link to another container (name[:alias])
    #[arg(long)]
    pub link: Vec<String>,
    /// Expose a port or a range of ports
    #[arg(long)]
    pub expose: Vec<String>,
    /// Add a host device to the container (host[:container[:perms]])
    #[arg(long)]
    pub device: Vec<String>,
    /// Size of /dev/shm
    #[arg(long)]
    pub shm_size: Option<String>,
    /// Sysctl options (namespaced ones only)
    #[arg(long)]
    pub sysctl: Vec<String>,
    /// Memory plus swap limit; -1 for unlimited swap
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long)]
    pub memory_reservation: Option<String>,
    /// Disable the OOM killer
    #[arg(long)]
    pub oom_kill_disable: bool,
    /// Tune the host's OOM preferences (-1000 to 1000)
    #[arg(long, allow_hyphen_values = true)]
    pub oom_score_adj: Option<i32>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Limit CPU CFS quota (microseconds)
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// Limit CPU CFS period (microseconds)
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// Block IO relative weight, 10 to 1000 (0 to disable)
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// Parent cgroup for the container
    #[arg(long)]
    pub cgroup_parent: Option<String>,
    /// Additional groups to join
    #[arg(long)]
    pub group_add: Vec<String>,
    /// PID namespace: host or container:NAME
    #[arg(long)]
    pub pid: Option<String>,
    /// IPC mode: private, shareable, host or container:NAME
    #[arg(long)]
    pub ipc: Option<String>,
    /// UTS namespace: host
    #[arg(long)]
    pub uts: Option<String>,
    /// User namespace: host
    #[arg(long)]
    pub userns: Option<String>,
    /// Cgroup namespace: host or private
    #[arg(long)]
    pub cgroupns: Option<String>,
    /// Write the container ID to the file
    #[arg(long)]
    pub cidfile: Option<String>,
    /// Mount volumes from the specified container(s) (NAME[:ro|rw])
    #[arg(long)]
    pub volumes_from: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long)]
    pub label_file: Vec<String>,
    /// IPv4 address on a user-defined network
    #[arg(long)]
    pub ip: Option<String>,
    /// Container MAC address (e.g. 02:42:0a:00:00:09)
    #[arg(long)]
    pub mac_address: Option<String>,
    /// Attach to STDIN, STDOUT or STDERR (default: stdout and stderr)
    #[arg(short = 'a', long)]
    pub attach: Vec<String>,
    /// Logging driver: json-file or none
    #[arg(long, default_value = "json-file")]
    pub log_driver: String,
}

/// The typed host config of the flags.
pub fn host_config(a: &MoreRunArgs) -> Result<HostConfig> {
    if let Some(u) = &a.userns {
        hc::check_userns(u)?;
    }
    let mut sysctls = std::collections::BTreeMap::new();
    for s in &a.sysctl {
        let (k, v) =
            hc::parse_sysctl(s).with_context(|| format!("invalid argument {s:?} for --sysctl"))?;
        sysctls.insert(k, v);
    }
    let size = |s: &Option<String>| s.as_deref().map(opts::parse_size).transpose();
    let memory_swap = match a.memory_swap.as_deref() {
        Some("-1") => Some(-1),
        s => s.map(opts::parse_size).transpose()?,
    };
    Ok(HostConfig {
        domainname: a.domainname.clone().unwrap_or_default(),
        extra_hosts: collect(&a.add_host, hc::parse_add_host)?,
        dns: collect(&a.dns, hc::parse_dns)?,
        dns_search: a.dns_search.clone(),
        dns_options: a.dns_option.clone(),
        links: collect(&a.link, hc::parse_link)?,
        devices: collect(&a.device, hc::parse_device)?,
        shm_size: size(&a.shm_size)?,
        sysctls,
        memory_swap,
        memory_reservation: size(&a.memory_reservation)?,
        oom_kill_disable: a.oom_kill_disable,
        oom_score_adj: a.oom_score_adj,
        cpuset_cpus: a.cpuset_cpus.as_deref().map(hc::parse_cpuset).transpose()?,
        cpu_quota: a.cpu_quota,
        cpu_period: a.cpu_period,
        blkio_weight: a.blkio_weight,
        cgroup_parent: a.cgroup_parent.clone(),
        group_add: a.group_add.clone(),
        pid: hc::parse_pid(a.pid.as_deref().unwrap_or(""))?,
        ipc: hc::parse_ipc(a.ipc.as_deref().unwrap_or(""))?,
        uts: hc::parse_uts(a.uts.as_deref().unwrap_or(""))?,
        cgroupns_private: hc::parse_cgroupns(a.cgroupns.as_deref().unwrap_or(""))?,
        log_driver: hc::parse_log_driver(&a.log_driver)?,
        ip: a
            .ip
            .as_deref()
            .map(|s| {
                s.parse().with_context(|| {
                    format!("invalid argument {s:?} for --ip: not an IPv4 address")
                })
            })
            .transpose()?,
        mac_address: a
            .mac_address
            .as_deref()
            .map(|s| {
                hc::parse_mac(s)
                    .with_context(|| format!("invalid argument {s:?} for --mac-address"))
            })
            .transpose()?,
        network_ips: Default::default(),
    })
}

fn collect<T>(v: &[String], f: impl Fn(&str) -> Result<T>) -> Result<Vec<T>> {
    v.iter().map(|s| f(s)).collect()
}

/// `--volumes-from NAME[:ro|rw]`.
pub fn volumes_from(a: &MoreRunArgs) -> Result<Vec<(String, Option<bool>)>> {
    a.volumes_from
        .iter()
        .map(|s| match s.rsplit_once(':') {
            Some((n, "ro")) => Ok((n.to_string(), Some(true))),
            Some((n, "rw")) => Ok((n.to_string(), Some(false))),
            Some((_, m)) => bail!("invalid mode {m:?} in --volumes-from {s}"),
            None => Ok((s.clone(), None)),
        })
        .collect()
}

/// `--expose` entries.
pub fn expose(a: &MoreRunArgs) -> Result<Vec<String>> {
    Ok(collect(&a.expose, hc::parse_expose)?.concat())
}

/// `--label-file` lines, before the `--label` ones (which win).
pub fn label_lines(a: &MoreRunArgs) -> Result<Vec<String>> {
    Ok(collect(&a.label_file, hc::parse_label_file)?.concat())
}

/// docker's `--cidfile`: refused if the file exists, written once the container is.
pub fn check_cidfile(a: &MoreRunArgs) -> Result<()> {
    if let Some(f) = &a.cidfile {
        if Path::new(f).exists() {
            bail!("Container ID file found, make sure the other container isn't running or delete {f}");
        }
    }
    Ok(())
}

pub fn write_cidfile(a: &MoreRunArgs, id: &str) -> Result<()> {
    if let Some(f) = &a.cidfile {
        std::fs::write(f, id).with_context(|| format!("writing the container ID file {f}"))?;
    }
    Ok(())
}

/// `--pull`: pulls the image when asked (or when missing), its progress on
/// stderr so that `run`'s stdout stays the container's.
pub fn ensure_image(root: &Path, image: &str, a: &MoreRunArgs) -> Result<()> {
    let policy = a.pull.as_str();
    if !["missing", "always", "never"].contains(&policy) {
        bail!(
            "invalid pull option: {policy:?}: must be one of \"always\", \"missing\" or \"never\""
        );
    }
    let platform = Platform::parse(a.platform.as_deref().unwrap_or("linux/amd64"))?;
    let store = Store::open(root)?;
    let have = store.lookup(image).is_ok();
    if policy == "never" && !have {
        return Err(EngineError::NoSuchImage(image.to_string()).into());
    }
    if policy == "never" || (policy == "missing" && have) {
        return Ok(());
    }
    let r = Reference::parse(image)?;
    if !have {
        let last = image.rsplit('/').next().unwrap_or(image);
        let shown = if last.contains(':') || last.contains('@') {
            image.to_string()
        } else {
            format!("{image}:latest")
        };
        eprintln!("Unable to find image '{shown}' locally");
    }
    crate::progress::install_stderr();
    let o = PullOptions {
        platform,
        insecure: registry::is_insecure(root, &r.domain, None),
        quiet: false,
        jobs: 4,
    };
    registry::pull(&store, &r, &o)?;
    Ok(())
}

/// `-a/--attach`: which of stdin, stdout, stderr a foreground run attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
}

pub fn streams(a: &MoreRunArgs, interactive: bool, detach: bool) -> Result<Streams> {
    if a.attach.is_empty() {
        return Ok(Streams {
            stdin: interactive,
            stdout: true,
            stderr: true,
        });
    }
    if detach {
        bail!("Conflicting options: -a and -d");
    }
    let mut s = Streams {
        stdin: false,
        stdout: false,
        stderr: false,
    };
    for x in &a.attach {
        match x.to_ascii_lowercase().as_str() {
            "stdin" => s.stdin = true,
            "stdout" => s.stdout = true,
            "stderr" => s.stderr = true,
            _ => bail!("invalid argument {x:?} for \"-a, --attach\" flag: valid streams are STDIN, STDOUT and STDERR"),
        }
    }
    Ok(s)
}

/// Points stdout/stderr that are not attached at /dev/null while `f` runs
/// (the attach client writes each stream to its own fd); restores them after.
pub fn with_streams<T>(s: Streams, f: impl FnOnce() -> Result<T>) -> Result<T> {
    use std::os::fd::AsRawFd;
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .context("opening /dev/null")?;
    let mut saved = Vec::new();
    for (fd, on) in [(1, s.stdout), (2, s.stderr)] {
        if !on {
            let keep = nix::unistd::dup(fd).context("dup")?;
            nix::unistd::dup2(null.as_raw_fd(), fd).context("dup2")?;
            saved.push((keep, fd));
        }
    }
    let r = f();
    for (keep, fd) in saved {
        let _ = nix::unistd::dup2(keep, fd);
        let _ = nix::unistd::close(keep);
    }
    r
}
