//! config.json for the flags `hostconfig` holds: namespace modes, devices,
//! sysctls, /dev/shm, extra groups and the finer resource limits, applied
//! over what `spec::build` made.

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{
    Linux, LinuxBlockIo, LinuxCpu, LinuxDevice, LinuxDeviceType, LinuxMemory, LinuxNamespace,
    LinuxNamespaceType, LinuxResources, Mount, Spec,
};
use std::path::{Path, PathBuf};

use super::container::{self, Config};
use super::hostconfig::{HostConfig, NsMode};
use crate::runtime::template;

/// The /proc/<pid>/ns/<ns> of a running container (for container:NAME modes).
fn container_ns(root: &Path, name: &str, ns: &str) -> Result<PathBuf> {
    let c = container::find(root, name)?;
    if !c.is_running() || c.state.pid <= 0 {
        bail!("cannot join {ns} namespace of a non running container: {name}");
    }
    Ok(PathBuf::from(format!("/proc/{}/ns/{ns}", c.state.pid)))
}

fn set_namespace(spec: &mut Spec, typ: LinuxNamespaceType, entry: Option<LinuxNamespace>) {
    if let Some(ns) = spec
        .linux_mut()
        .as_mut()
        .and_then(|l| l.namespaces_mut().as_mut())
    {
        ns.retain(|n| n.typ() != typ);
        ns.extend(entry);
    }
}

/// Replaces the template's /dev/shm tmpfs with `mount`, unless the user mounted something
/// there (`-v`, `--mount`, `--tmpfs`): theirs wins, as with docker.
fn set_shm(spec: &mut Spec, mount: Mount) {
    if let Some(ms) = spec.mounts_mut() {
        let at = |m: &Mount| m.destination() == Path::new("/dev/shm");
        ms.retain(|m| !(at(m) && m.source().as_deref() == Some(Path::new("shm"))));
        if !ms.iter().any(at) {
            ms.push(mount);
        }
    }
}

/// The container's `linux` section (the template always has one).
fn linux(spec: &mut Spec) -> &mut Linux {
    spec.linux_mut().get_or_insert_with(Linux::default)
}

/// A namespace mode over the template's private namespace of `typ`.
fn ns_mode(spec: &mut Spec, root: &Path, mode: &NsMode, typ: LinuxNamespaceType) -> Result<()> {
    match mode {
        NsMode::Private => {}
        NsMode::Host => set_namespace(spec, typ, None),
        NsMode::Container(n) => {
            let p = container_ns(root, n, &typ.to_string())?;
            set_namespace(spec, typ, Some(template::namespace(typ, Some(p))));
        }
    }
    Ok(())
}

/// Applies the host config of `c` to `spec`.
pub fn apply(spec: &mut Spec, root: &Path, c: &Config, lowers: &[PathBuf]) -> Result<()> {
    let h = &c.host;
    let mut sysctls = h.sysctls.clone();
    if !h.domainname.is_empty() && h.uts != NsMode::Host {
        spec.set_domainname(Some(h.domainname.clone()));
        // Runtimes before the OCI field (runc 1.1) still apply the sysctl.
        sysctls.insert("kernel.domainname".into(), h.domainname.clone());
    }
    ns_mode(spec, root, &h.pid, LinuxNamespaceType::Pid)?;
    ipc(spec, root, c)?;
    if h.uts == NsMode::Host {
        set_namespace(spec, LinuxNamespaceType::Uts, None);
        spec.set_hostname(None);
        spec.set_domainname(None);
    }
    if h.cgroupns_private {
        let ns = template::namespace(LinuxNamespaceType::Cgroup, None);
        set_namespace(spec, LinuxNamespaceType::Cgroup, Some(ns));
    }
    if !sysctls.is_empty() {
        linux(spec).set_sysctl(Some(sysctls.into_iter().collect()));
    }
    if let Some(p) = spec.process_mut() {
        if let Some(a) = h.oom_score_adj {
            p.set_oom_score_adj(Some(a));
        }
        if !h.group_add.is_empty() {
            p.user_mut()
                .set_additional_gids(Some(group_ids(h, lowers)?));
        }
    }
    if let Some(p) = &h.cgroup_parent {
        let p = if p.starts_with('/') {
            p.clone()
        } else {
            format!("/{p}")
        };
        let path = format!("{}/{}", p.trim_end_matches('/'), c.id);
        linux(spec).set_cgroups_path(Some(path.into()));
    }
    devices(spec, c);
    resources(spec, c);
    Ok(())
}

/// `--ipc`: the namespace and the /dev/shm that goes with it.
fn ipc(spec: &mut Spec, root: &Path, c: &Config) -> Result<()> {
    let shm_size = c.host.shm_size.unwrap_or(64 << 20);
    let size = format!("size={shm_size}");
    let private_shm = template::mount(
        "/dev/shm",
        "tmpfs",
        "shm",
        &["nosuid", "noexec", "nodev", "mode=1777", &size],
    );
    ns_mode(spec, root, &c.host.ipc, LinuxNamespaceType::Ipc)?;
    match &c.host.ipc {
        NsMode::Host => set_shm(
            spec,
            super::spec::bind(Path::new("/dev/shm"), "/dev/shm", false),
        ),
        // With a container's: SysV IPC and message queues are shared; /dev/shm is a tmpfs of
        // its own (the other's lives in its mount namespace; see docs/berth-containers.md).
        NsMode::Private | NsMode::Container(_) => set_shm(spec, private_shm),
    }
    Ok(())
}

/// `--group-add`: numbers, or names in the image's /etc/group.
fn group_ids(h: &HostConfig, lowers: &[PathBuf]) -> Result<Vec<u32>> {
    let mut gids = Vec::new();
    for g in &h.group_add {
        gids.push(match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => super::spec::lookup_group(lowers, g)
                .with_context(|| format!("Unable to find group {g}"))?,
        });
    }
    Ok(gids)
}

fn device_type(kind: char) -> LinuxDeviceType {
    match kind {
        'b' => LinuxDeviceType::B,
        'p' => LinuxDeviceType::P,
        'u' => LinuxDeviceType::U,
        _ => LinuxDeviceType::C,
    }
}

fn devices(spec: &mut Spec, c: &Config) {
    if c.host.devices.is_empty() {
        return;
    }
    let l = linux(spec);
    let mut nodes = Vec::new();
    for d in &c.host.devices {
        let typ = device_type(d.kind);
        let mut node = LinuxDevice::default();
        node.set_path(PathBuf::from(&d.container));
        node.set_typ(typ);
        node.set_major(d.major as i64);
        node.set_minor(d.minor as i64);
        node.set_file_mode(Some(d.mode));
        node.set_uid(Some(0));
        node.set_gid(Some(0));
        nodes.push(node);
        if let Some(rules) = l
            .resources_mut()
            .as_mut()
            .and_then(|r| r.devices_mut().as_mut())
        {
            let (major, minor) = (Some(d.major as i64), Some(d.minor as i64));
            rules.push(template::device_rule(
                true,
                Some(typ),
                major,
                minor,
                &d.perms,
            ));
        }
    }
    l.set_devices(Some(nodes));
}

fn resources(spec: &mut Spec, c: &Config) {
    let h = &c.host;
    let r = linux(spec)
        .resources_mut()
        .get_or_insert_with(LinuxResources::default);
    let has_memory = r.memory().is_some();
    let mem = r.memory_mut().get_or_insert_with(LinuxMemory::default);
    if let Some(s) = h.memory_swap {
        if c.memory.is_some() {
            mem.set_swap(Some(s));
        }
    }
    if let Some(m) = h.memory_reservation {
        mem.set_reservation(Some(m));
    }
    if h.oom_kill_disable {
        mem.set_disable_oom_killer(Some(true));
    }
    if !has_memory && *mem == LinuxMemory::default() {
        r.set_memory(None);
    }
    let has_cpu = r.cpu().is_some();
    let cpu = r.cpu_mut().get_or_insert_with(LinuxCpu::default);
    if let Some(cs) = &h.cpuset_cpus {
        cpu.set_cpus(Some(cs.clone()));
    }
    if let Some(q) = h.cpu_quota {
        cpu.set_quota(Some(q));
    }
    if let Some(p) = h.cpu_period {
        cpu.set_period(Some(p));
    }
    if !has_cpu && *cpu == LinuxCpu::default() {
        r.set_cpu(None);
    }
    // docker drops the weight where the I/O scheduler has none (no CFQ/BFQ).
    let weighted = [
        "/sys/fs/cgroup/blkio/blkio.weight",
        "/sys/fs/cgroup/blkio/blkio.bfq.weight",
        "/sys/fs/cgroup/io.weight",
        "/sys/fs/cgroup/io.bfq.weight",
    ]
    .iter()
    .any(|p| Path::new(p).exists());
    if let Some(w) = h.blkio_weight.filter(|w| *w != 0 && weighted) {
        let mut b = LinuxBlockIo::default();
        b.set_weight(Some(w));
        r.set_block_io(Some(b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::hostconfig::Device;
    use crate::engine::spec::{build, NetNs};
    use serde_json::Value;

    fn applied(c: &Config) -> Value {
        let mut spec = build(c, Path::new("/nonexistent"), &[], NetNs::New, &[]).unwrap();
        apply(&mut spec, Path::new("/nonexistent"), c, &[]).unwrap();
        serde_json::to_value(spec).unwrap()
    }

    fn ns_types(v: &Value) -> Vec<String> {
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        ns.iter()
            .map(|n| n["type"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn host_namespaces_devices_and_limits() {
        let mut c = Config {
            id: "abc".into(),
            hostname: "h".into(),
            memory: Some(1 << 20),
            ..Default::default()
        };
        let h = &mut c.host;
        h.ipc = NsMode::Host;
        h.uts = NsMode::Host;
        h.cgroupns_private = true;
        h.cgroup_parent = Some("grp/".into());
        h.memory_swap = Some(-1);
        h.oom_score_adj = Some(50);
        h.group_add = vec!["5".into()];
        h.devices = vec![Device {
            host: "/dev/null".into(),
            container: "/dev/x".into(),
            perms: "rw".into(),
            kind: 'c',
            major: 1,
            minor: 3,
            mode: 0o666,
        }];
        let v = applied(&c);
        assert_eq!(ns_types(&v), ["pid", "mount", "network", "cgroup"]);
        assert!(v.get("hostname").is_none());
        let shm: Vec<&Value> = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["destination"] == "/dev/shm")
            .collect();
        assert_eq!(shm.len(), 1);
        assert_eq!(shm[0]["type"], "bind");
        assert_eq!(shm[0]["source"], "/dev/shm");
        assert_eq!(v["linux"]["cgroupsPath"], "/grp/abc");
        assert_eq!(v["linux"]["resources"]["memory"]["swap"], -1);
        assert_eq!(v["linux"]["devices"][0]["path"], "/dev/x");
        let rules = v["linux"]["resources"]["devices"].as_array().unwrap();
        assert_eq!(rules.last().unwrap()["access"], "rw");
        assert_eq!(v["process"]["oomScoreAdj"], 50);
        assert_eq!(v["process"]["user"]["additionalGids"][0], 5);
    }

    #[test]
    fn private_ipc_sizes_shm_and_no_empty_sections() {
        let mut c = Config::default();
        c.host.shm_size = Some(1 << 20);
        c.host.domainname = "example.com".into();
        let v = applied(&c);
        let shm = v["mounts"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(shm["destination"], "/dev/shm");
        assert_eq!(shm["options"][4], "size=1048576");
        assert_eq!(v["domainname"], "example.com");
        assert_eq!(v["linux"]["sysctl"]["kernel.domainname"], "example.com");
        // Nothing asked: no empty memory or cpu section appears.
        assert!(v["linux"]["resources"].get("memory").is_none());
        assert!(v["linux"]["resources"].get("cpu").is_none());
    }
}
