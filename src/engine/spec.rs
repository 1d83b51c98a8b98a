//! config.json for a container: docker's defaults merged with the image
//! config and the run flags.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

use super::container::Config;

pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

pub fn all_caps() -> Vec<String> {
    caps::all().into_iter().map(|c| c.to_string()).collect()
}

/// Known capability names (with or without CAP_), or ALL.
pub fn check_cap(c: &str) -> Result<()> {
    if c.eq_ignore_ascii_case("all") {
        return Ok(());
    }
    let n = norm_cap(c);
    if all_caps().contains(&n) {
        Ok(())
    } else {
        bail!("unknown capability {n}")
    }
}

fn norm_cap(c: &str) -> String {
    let u = c.to_ascii_uppercase();
    if u.starts_with("CAP_") {
        u
    } else {
        format!("CAP_{u}")
    }
}

pub enum NetNs {
    Host,
    New,
    Path(PathBuf),
}

/// Looks `name` up in the image's /etc/passwd or /etc/group (topmost
/// layer that has the file).
fn lookup_id(lowers: &[PathBuf], file: &str, name: &str) -> Option<(u32, u32)> {
    for l in lowers {
        let Ok(text) = std::fs::read_to_string(l.join("etc").join(file)) else {
            continue;
        };
        for line in text.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 3 && f[0] == name {
                let id = f[2].parse().ok()?;
                let gid = f.get(3).and_then(|g| g.parse().ok()).unwrap_or(id);
                return Some((id, gid));
            }
        }
        return None;
    }
    None
}

/// A group's id in the image's /etc/group (`--group-add NAME`).
pub fn lookup_group(lowers: &[PathBuf], name: &str) -> Option<u32> {
    lookup_id(lowers, "group", name).map(|(id, _)| id)
}

pub fn resolve_user(user: &str, lowers: &[PathBuf]) -> Result<(u32, u32)> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = user.split_once(':').unwrap_or((user, ""));
    let (uid, mut gid) = match u.parse::<u32>() {
        Ok(n) => (n, lookup_id_by_uid(lowers, n).unwrap_or(n)),
        Err(_) => lookup_id(lowers, "passwd", u).with_context(|| {
            format!("unable to find user {u}: no matching entries in passwd file")
        })?,
    };
    if !g.is_empty() {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                lookup_id(lowers, "group", g)
                    .with_context(|| format!("unable to find group {g}"))?
                    .0
            }
        };
    }
    Ok((uid, gid))
}

fn lookup_id_by_uid(lowers: &[PathBuf], uid: u32) -> Option<u32> {
    let text = lowers
        .iter()
        .find_map(|l| std::fs::read_to_string(l.join("etc/passwd")).ok())?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 4 && f[2].parse::<u32>().ok() == Some(uid))
            .then(|| f[3].parse().ok())
            .flatten()
    })
}

fn rlimit_name(n: &str) -> Result<String> {
    let known = [
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
        "as",
    ];
    if !known.contains(&n) {
        bail!("invalid --ulimit name {n:?}");
    }
    Ok(format!("RLIMIT_{}", n.to_ascii_uppercase()))
}

/// Builds config.json. `volume_src` resolves a mount to its host source.
pub fn build(
    c: &Config,
    cdir: &Path,
    lowers: &[PathBuf],
    netns: NetNs,
    mounts_resolved: &[(String, String, bool, String, Vec<String>)],
) -> Result<Value> {
    let (uid, gid) = resolve_user(&c.user, lowers)?;
    let mut caps: Vec<String> = if c.privileged {
        all_caps()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    for a in &c.cap_add {
        if a.eq_ignore_ascii_case("all") {
            caps = all_caps();
        } else if !caps.contains(&norm_cap(a)) {
            caps.push(norm_cap(a));
        }
    }
    for d in &c.cap_drop {
        if d.eq_ignore_ascii_case("all") {
            caps.clear();
        } else {
            caps.retain(|x| *x != norm_cap(d));
        }
    }
    let mut rlimits = vec![];
    for u in &c.ulimits {
        rlimits.push(json!({"type": rlimit_name(&u.name)?, "soft": u.soft, "hard": u.hard}));
    }
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if c.privileged {"rw"} else {"ro"}]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
    ];
    for f in ["resolv.conf", "hostname", "hosts"] {
        let src = cdir.join(f);
        if src.exists() {
            mounts.push(json!({"destination": format!("/etc/{f}"), "type": "bind", "source": src, "options": ["rbind", "rprivate"]}));
        }
    }
    for (typ, src, ro, dst, opts) in mounts_resolved {
        if typ == "tmpfs" {
            let mut o = vec!["nosuid".to_string(), "nodev".into(), "noexec".into()];
            o.extend(opts.iter().cloned());
            mounts.push(
                json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": o}),
            );
        } else {
            let mut o = vec!["rbind", "rprivate"];
            if *ro {
                o.push("ro");
            }
            mounts.push(json!({"destination": dst, "type": "bind", "source": src, "options": o}));
        }
    }
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    match netns {
        NetNs::Host => {}
        NetNs::New => namespaces.push(json!({"type": "network"})),
        NetNs::Path(p) => namespaces.push(json!({"type": "network", "path": p})),
    }
    let mut resources = json!({
        "devices": if c.privileged {
            json!([{"allow": true, "access": "rwm"}])
        } else {
            json!([
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
                {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
                {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"},
                {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
                {"allow": true, "type": "c", "major": 136, "access": "rwm"},
                {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"}
            ])
        }
    });
    if let Some(m) = c.memory {
        resources["memory"] = json!({"limit": m, "swap": m});
    }
    let mut cpu = serde_json::Map::new();
    if let Some(cpus) = c.cpus {
        cpu.insert("quota".into(), json!((cpus * 100000.0) as i64));
        cpu.insert("period".into(), json!(100000));
    }
    if let Some(s) = c.cpu_shares {
        cpu.insert("shares".into(), json!(s));
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = c.pids_limit {
        resources["pids"] = json!({"limit": p});
    }
    let mut linux = json!({
        "cgroupsPath": format!("/berth/{}", c.id),
        "namespaces": namespaces,
        "resources": resources,
    });
    if !c.privileged {
        linux["maskedPaths"] = json!([
            "/proc/asound",
            "/proc/acpi",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/proc/scsi",
            "/sys/firmware",
            "/sys/devices/virtual/powercap"
        ]);
        linux["readonlyPaths"] = json!([
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ]);
    }
    if let Some(s) = &c.seccomp {
        if s != "unconfined" {
            let text = std::fs::read_to_string(s)
                .with_context(|| format!("reading seccomp profile {s}"))?;
            let v: Value = serde_json::from_str(&text)
                .with_context(|| format!("parsing seccomp profile {s}"))?;
            linux["seccomp"] = v;
        }
    }
    let cwd = if c.workdir.is_empty() {
        "/"
    } else {
        &c.workdir
    };
    let mut process = json!({
        "terminal": c.tty,
        "user": {"uid": uid, "gid": gid},
        "args": c.args,
        "env": c.env,
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": false
    });
    if !rlimits.is_empty() {
        process["rlimits"] = Value::Array(rlimits);
    }
    if c.tty {
        process["consoleSize"] = json!({"height": 24, "width": 80});
    }
    Ok(json!({
        "ociVersion": "1.2.0",
        "process": process,
        "root": {"path": "rootfs", "readonly": c.read_only},
        "hostname": c.hostname,
        "mounts": mounts,
        "linux": linux,
    }))
}
