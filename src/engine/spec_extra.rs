//! config.json for the flags `hostconfig` holds: namespace modes, devices,
//! sysctls, /dev/shm, extra groups and the finer resource limits, applied
//! over what `spec::build` made.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

use super::container::{self, Config};
use super::hostconfig::NsMode;

/// The /proc/<pid>/ns/<ns> of a running container (for container:NAME modes).
fn container_ns(root: &Path, name: &str, ns: &str) -> Result<PathBuf> {
    let c = container::find(root, name)?;
    if !c.is_running() || c.state.pid <= 0 {
        bail!("cannot join {ns} namespace of a non running container: {name}");
    }
    Ok(PathBuf::from(format!("/proc/{}/ns/{ns}", c.state.pid)))
}

fn set_namespace(spec: &mut Value, typ: &str, entry: Option<Value>) {
    if let Some(ns) = spec["linux"]["namespaces"].as_array_mut() {
        ns.retain(|n| n["type"] != typ);
        if let Some(e) = entry {
            ns.push(e);
        }
    }
}

fn set_shm(spec: &mut Value, mount: Value) {
    if let Some(ms) = spec["mounts"].as_array_mut() {
        ms.retain(|m| m["destination"] != "/dev/shm");
        ms.push(mount);
    }
}

/// Applies the host config of `c` to `spec`.
pub fn apply(spec: &mut Value, root: &Path, c: &Config, lowers: &[PathBuf]) -> Result<()> {
    let h = &c.host;
    let mut sysctls = h.sysctls.clone();
    if !h.domainname.is_empty() && h.uts != NsMode::Host {
        spec["domainname"] = json!(h.domainname);
        // Runtimes before the OCI field (runc 1.1) still apply the sysctl.
        sysctls.insert("kernel.domainname".into(), h.domainname.clone());
    }
    match &h.pid {
        NsMode::Private => {}
        NsMode::Host => set_namespace(spec, "pid", None),
        NsMode::Container(n) => {
            let p = container_ns(root, n, "pid")?;
            set_namespace(spec, "pid", Some(json!({"type": "pid", "path": p})));
        }
    }
    let shm_size = h.shm_size.unwrap_or(64 << 20);
    let private_shm = json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
        "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm_size}")]});
    match &h.ipc {
        NsMode::Private => set_shm(spec, private_shm),
        NsMode::Host => {
            set_namespace(spec, "ipc", None);
            set_shm(
                spec,
                json!({"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
                "options": ["rbind", "rprivate"]}),
            );
        }
        NsMode::Container(n) => {
            // SysV IPC and message queues are shared; /dev/shm is a tmpfs of its own
            // (the other's lives in its mount namespace; see docs/berth-containers.md).
            let p = container_ns(root, n, "ipc")?;
            set_namespace(spec, "ipc", Some(json!({"type": "ipc", "path": p})));
            set_shm(spec, private_shm);
        }
    }
    if h.uts == NsMode::Host {
        set_namespace(spec, "uts", None);
        if let Some(o) = spec.as_object_mut() {
            o.remove("hostname");
            o.remove("domainname");
        }
    }
    if h.cgroupns_private {
        set_namespace(spec, "cgroup", Some(json!({"type": "cgroup"})));
    }
    if !sysctls.is_empty() {
        spec["linux"]["sysctl"] = json!(sysctls);
    }
    if let Some(a) = h.oom_score_adj {
        spec["process"]["oomScoreAdj"] = json!(a);
    }
    if !h.group_add.is_empty() {
        let mut gids = Vec::new();
        for g in &h.group_add {
            gids.push(match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => super::spec::lookup_group(lowers, g)
                    .with_context(|| format!("Unable to find group {g}"))?,
            });
        }
        spec["process"]["user"]["additionalGids"] = json!(gids);
    }
    if let Some(p) = &h.cgroup_parent {
        let p = if p.starts_with('/') {
            p.clone()
        } else {
            format!("/{p}")
        };
        spec["linux"]["cgroupsPath"] = json!(format!("{}/{}", p.trim_end_matches('/'), c.id));
    }
    devices(spec, c);
    resources(spec, c);
    Ok(())
}

fn devices(spec: &mut Value, c: &Config) {
    if c.host.devices.is_empty() {
        return;
    }
    let mut nodes = Vec::new();
    for d in &c.host.devices {
        nodes.push(
            json!({"path": d.container, "type": d.kind.to_string(), "major": d.major,
            "minor": d.minor, "fileMode": d.mode, "uid": 0, "gid": 0}),
        );
        if let Some(rules) = spec["linux"]["resources"]["devices"].as_array_mut() {
            rules.push(
                json!({"allow": true, "type": d.kind.to_string(), "major": d.major,
                "minor": d.minor, "access": d.perms}),
            );
        }
    }
    spec["linux"]["devices"] = Value::Array(nodes);
}

fn resources(spec: &mut Value, c: &Config) {
    let h = &c.host;
    let r = &mut spec["linux"]["resources"];
    if let Some(s) = h.memory_swap {
        if c.memory.is_some() {
            r["memory"]["swap"] = json!(s);
        }
    }
    if let Some(m) = h.memory_reservation {
        r["memory"]["reservation"] = json!(m);
    }
    if h.oom_kill_disable {
        r["memory"]["disableOOMKiller"] = json!(true);
    }
    if let Some(cs) = &h.cpuset_cpus {
        r["cpu"]["cpus"] = json!(cs);
    }
    if let Some(q) = h.cpu_quota {
        r["cpu"]["quota"] = json!(q);
    }
    if let Some(p) = h.cpu_period {
        r["cpu"]["period"] = json!(p);
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
        r["blockIO"] = json!({"weight": w});
    }
}
