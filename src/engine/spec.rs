//! config.json for a container: docker's defaults merged with the image
//! config and the run flags.

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{
    BoxBuilder, Capabilities, Capability, Linux, LinuxCpu, LinuxDeviceCgroup, LinuxDeviceType,
    LinuxMemory, LinuxNamespace, LinuxNamespaceType, LinuxPids, LinuxResources, LinuxSeccomp,
    Mount, PosixRlimitType, Process, Spec, User,
};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::container::Config;
use crate::runtime::template;

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

fn rlimit_type(n: &str) -> Result<PosixRlimitType> {
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
    let name = format!("RLIMIT_{}", n.to_ascii_uppercase());
    serde_json::from_value(serde_json::Value::String(name))
        .with_context(|| format!("invalid --ulimit name {n:?}"))
}

/// A mount berth adds: (type, host source, read-only, destination, options).
pub type ResolvedMount = (String, String, bool, String, Vec<String>);

/// Builds config.json: the default template (`runtime::template`) with docker's defaults and
/// the container's own values over it.
pub fn build(
    c: &Config,
    cdir: &Path,
    lowers: &[PathBuf],
    netns: NetNs,
    mounts_resolved: &[ResolvedMount],
) -> Result<Spec> {
    let mut spec = template::default_spec(false);
    if let Some(p) = spec.process_mut() {
        process(p, c, lowers)?;
    }
    if let Some(r) = spec.root_mut() {
        r.set_readonly(Some(c.read_only));
    }
    spec.set_hostname(Some(c.hostname.clone()));
    let base = spec.mounts().clone().unwrap_or_default();
    spec.set_mounts(Some(mounts(base, c, cdir, mounts_resolved)));
    if let Some(l) = spec.linux_mut() {
        linux(l, c, netns)?;
    }
    Ok(spec)
}

/// docker's capability set after `--privileged`, `--cap-add` and `--cap-drop`.
fn capabilities(c: &Config) -> Result<Capabilities> {
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
    caps.iter().map(|n| oci_cap(n)).collect()
}

/// A `CAP_*` name as oci-spec's capability.
pub fn oci_cap(name: &str) -> Result<Capability> {
    Capability::from_str(name.trim_start_matches("CAP_"))
        .map_err(|_| anyhow::anyhow!("unknown capability {name}"))
}

fn process(p: &mut Process, c: &Config, lowers: &[PathBuf]) -> Result<()> {
    let (uid, gid) = resolve_user(&c.user, lowers)?;
    let mut user = User::default();
    user.set_uid(uid);
    user.set_gid(gid);
    p.set_user(user);
    p.set_terminal(Some(c.tty));
    p.set_args(Some(c.args.clone()));
    p.set_env(Some(c.env.clone()));
    p.set_cwd(PathBuf::from(if c.workdir.is_empty() {
        "/"
    } else {
        &c.workdir
    }));
    p.set_capabilities(Some(template::capabilities(capabilities(c)?)));
    p.set_no_new_privileges(Some(false));
    let mut rlimits = vec![];
    for u in &c.ulimits {
        rlimits.push(template::rlimit(rlimit_type(&u.name)?, u.soft, u.hard));
    }
    p.set_rlimits((!rlimits.is_empty()).then_some(rlimits));
    if c.tty {
        let size = BoxBuilder::default().height(24u64).width(80u64).build();
        // Both fields are set, so the builder has nothing to refuse.
        p.set_console_size(Some(size.context("console size")?));
    }
    Ok(())
}

/// The template's mounts as docker has them (/proc nosuid/noexec/nodev, /sys writable when
/// privileged), then /etc's files and the container's volumes, binds and tmpfs.
fn mounts(
    mut mounts: Vec<Mount>,
    c: &Config,
    cdir: &Path,
    mounts_resolved: &[ResolvedMount],
) -> Vec<Mount> {
    for m in mounts.iter_mut() {
        let dst = m.destination().to_string_lossy().into_owned();
        match dst.as_str() {
            "/proc" => {
                m.set_options(Some(strings(&["nosuid", "noexec", "nodev"])));
            }
            "/sys" if c.privileged => {
                if let Some(o) = m.options_mut() {
                    o.iter_mut()
                        .filter(|o| *o == "ro")
                        .for_each(|o| *o = "rw".into());
                }
            }
            _ => {}
        }
    }
    for f in ["resolv.conf", "hostname", "hosts"] {
        let src = cdir.join(f);
        if src.exists() {
            mounts.push(bind(&src, &format!("/etc/{f}"), false));
        }
    }
    for (typ, src, ro, dst, opts) in mounts_resolved {
        if typ == "tmpfs" {
            let mut m = template::mount(dst, "tmpfs", "tmpfs", &["nosuid", "nodev", "noexec"]);
            if let Some(o) = m.options_mut() {
                o.extend(opts.iter().cloned());
            }
            mounts.push(m);
        } else {
            mounts.push(bind(Path::new(src), dst, *ro));
        }
    }
    mounts
}

fn strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

/// A private recursive bind of `src` at `dst`.
pub fn bind(src: &Path, dst: &str, ro: bool) -> Mount {
    let mut opts = vec!["rbind", "rprivate"];
    if ro {
        opts.push("ro");
    }
    let mut m = template::mount(dst, "bind", "", &opts);
    m.set_source(Some(src.to_path_buf()));
    m
}

/// The template's namespaces without the cgroup one (docker's default on cgroup v1 is the
/// host's; `--cgroupns private` adds it back) and with the network one `netns` asks for.
fn namespaces(mut ns: Vec<LinuxNamespace>, netns: NetNs) -> Vec<LinuxNamespace> {
    use LinuxNamespaceType::{Cgroup, Network};
    ns.retain(|n| !matches!(n.typ(), Cgroup | Network));
    match netns {
        NetNs::Host => {}
        NetNs::New => ns.push(template::namespace(Network, None)),
        NetNs::Path(p) => ns.push(template::namespace(Network, Some(p))),
    }
    ns
}

/// docker's device rules: deny all but the usual character devices, or allow all.
fn device_rules(privileged: bool) -> Vec<LinuxDeviceCgroup> {
    let c = Some(LinuxDeviceType::C);
    if privileged {
        return vec![template::device_rule(true, None, None, None, "rwm")];
    }
    let mut rules = vec![template::device_rule(false, None, None, None, "rwm")];
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
    ] {
        rules.push(template::device_rule(
            true,
            c,
            Some(major),
            Some(minor),
            "rwm",
        ));
    }
    rules.push(template::device_rule(true, c, Some(136), None, "rwm"));
    rules.push(template::device_rule(true, c, Some(10), Some(200), "rwm"));
    rules
}

fn resources(c: &Config) -> LinuxResources {
    let mut r = LinuxResources::default();
    r.set_devices(Some(device_rules(c.privileged)));
    if let Some(m) = c.memory {
        let mut mem = LinuxMemory::default();
        mem.set_limit(Some(m));
        mem.set_swap(Some(m));
        r.set_memory(Some(mem));
    }
    if c.cpus.is_some() || c.cpu_shares.is_some() {
        let mut cpu = LinuxCpu::default();
        if let Some(cpus) = c.cpus {
            cpu.set_quota(Some((cpus * 100000.0) as i64));
            cpu.set_period(Some(100000));
        }
        cpu.set_shares(c.cpu_shares);
        r.set_cpu(Some(cpu));
    }
    if let Some(p) = c.pids_limit {
        let mut pids = LinuxPids::default();
        pids.set_limit(p);
        r.set_pids(Some(pids));
    }
    r
}

fn linux(l: &mut Linux, c: &Config, netns: NetNs) -> Result<()> {
    l.set_cgroups_path(Some(PathBuf::from(format!("/berth/{}", c.id))));
    let template_ns = l.namespaces().clone().unwrap_or_default();
    l.set_namespaces(Some(namespaces(template_ns, netns)));
    l.set_resources(Some(resources(c)));
    if c.privileged {
        l.set_masked_paths(None);
        l.set_readonly_paths(None);
    } else if let Some(m) = l.masked_paths_mut() {
        // docker masks the RAPL energy counters too (a side channel, CVE-2020-8694).
        m.push("/sys/devices/virtual/powercap".into());
    }
    if let Some(s) = c.seccomp.as_deref().filter(|s| *s != "unconfined") {
        l.set_seccomp(Some(seccomp_profile(s)?));
    }
    Ok(())
}

/// `--security-opt seccomp=FILE`, typed; an error names the file and the field at fault.
fn seccomp_profile(path: &str) -> Result<LinuxSeccomp> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading seccomp profile {path}"))?;
    let mut de = serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        anyhow::anyhow!(
            "parsing seccomp profile {path}: {}: {}",
            e.path(),
            e.inner()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn built(c: &Config, netns: NetNs, mounts: &[ResolvedMount]) -> Value {
        let cdir = tempfile::tempdir().unwrap();
        std::fs::write(cdir.path().join("hosts"), "").unwrap();
        let spec = build(c, cdir.path(), &[], netns, mounts).unwrap();
        serde_json::to_value(spec).unwrap()
    }

    fn mount<'a>(v: &'a Value, dst: &str) -> &'a Value {
        let ms = v["mounts"].as_array().unwrap();
        ms.iter().find(|m| m["destination"] == dst).unwrap()
    }

    #[test]
    fn docker_defaults_over_the_template() {
        let c = Config {
            id: "abc".into(),
            args: vec!["sh".into()],
            hostname: "h".into(),
            ..Default::default()
        };
        let v = built(&c, NetNs::New, &[]);
        assert_eq!(v["linux"]["cgroupsPath"], "/berth/abc");
        assert_eq!(
            mount(&v, "/proc")["options"],
            serde_json::json!(["nosuid", "noexec", "nodev"])
        );
        assert_eq!(mount(&v, "/sys")["options"][3], "ro");
        assert!(mount(&v, "/etc/hosts")["options"][0] == "rbind");
        let ns: Vec<&str> = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["type"].as_str().unwrap())
            .collect();
        assert_eq!(ns, ["pid", "ipc", "uts", "mount", "network"]);
        let masked = v["linux"]["maskedPaths"].as_array().unwrap();
        assert!(masked.iter().any(|p| p == "/sys/devices/virtual/powercap"));
        assert!(masked.iter().any(|p| p == "/proc/kcore"));
        let caps = v["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert_eq!(caps.len(), DEFAULT_CAPS.len());
        assert!(v["process"].get("rlimits").is_none());
        assert_eq!(v["process"]["noNewPrivileges"], false);
        assert_eq!(v["root"]["readonly"], false);
        assert_eq!(
            v["linux"]["resources"]["devices"].as_array().unwrap().len(),
            11
        );
    }

    #[test]
    fn privileged_tty_limits_and_mounts() {
        let c = Config {
            id: "abc".into(),
            privileged: true,
            tty: true,
            cap_drop: vec!["chown".into()],
            ulimits: vec![super::super::opts::Ulimit {
                name: "nofile".into(),
                soft: 10,
                hard: 20,
            }],
            memory: Some(1 << 20),
            cpus: Some(0.5),
            pids_limit: Some(9),
            user: "7:8".into(),
            ..Default::default()
        };
        let m: Vec<ResolvedMount> = vec![
            ("bind".into(), "/src".into(), true, "/dst".into(), vec![]),
            (
                "tmpfs".into(),
                String::new(),
                false,
                "/t".into(),
                vec!["size=1m".into()],
            ),
        ];
        let v = built(&c, NetNs::Path("/run/netns/x".into()), &m);
        assert_eq!(mount(&v, "/sys")["options"][3], "rw");
        assert!(v["linux"].get("maskedPaths").is_none());
        let caps = v["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert!(
            !caps.iter().any(|c| c == "CAP_CHOWN") && caps.iter().any(|c| c == "CAP_SYS_ADMIN")
        );
        assert_eq!(v["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
        assert_eq!(v["process"]["consoleSize"]["width"], 80);
        assert_eq!(v["process"]["user"]["uid"], 7);
        let r = &v["linux"]["resources"];
        assert_eq!(r["memory"]["swap"], 1 << 20);
        assert_eq!(r["cpu"]["quota"], 50000);
        assert_eq!(r["pids"]["limit"], 9);
        assert_eq!(
            mount(&v, "/dst")["options"],
            serde_json::json!(["rbind", "rprivate", "ro"])
        );
        assert_eq!(mount(&v, "/t")["options"][3], "size=1m");
        let net = v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(net["path"], "/run/netns/x");
        let bad = Config {
            ulimits: vec![super::super::opts::Ulimit {
                name: "bogus".into(),
                soft: 1,
                hard: 1,
            }],
            ..Default::default()
        };
        let err = build(&bad, Path::new("/nonexistent"), &[], NetNs::Host, &[]).unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }
}
