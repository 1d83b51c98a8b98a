//! The default config.json, typed: `hull spec` prints it (the container runc's `spec`
//! describes) and berth starts every container's config from it, so the default mounts, masked
//! and read-only paths, namespaces and capabilities are spelled out once.

use oci_spec::runtime::{
    Capabilities, Capability, LinuxCapabilities, LinuxDeviceCgroup, LinuxIdMappingBuilder,
    LinuxNamespace, LinuxNamespaceType, LinuxResources, Mount, PosixRlimit, PosixRlimitBuilder,
    PosixRlimitType, Process, Root, Spec, User,
};
use std::path::PathBuf;

const CAPS: &[Capability] = &[
    Capability::AuditWrite,
    Capability::Kill,
    Capability::NetBindService,
];

/// The paths masked in every container (runc's list).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

/// The paths made read-only in every container.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// One mount as config.json spells it.
pub fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(destination));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(PathBuf::from(source)));
    if !options.is_empty() {
        m.set_options(Some(options.iter().map(|o| o.to_string()).collect()));
    }
    m
}

/// The default mounts: /proc, /dev and what lives under it, /sys and the cgroup tree.
fn default_mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &[]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]
}

/// The same set in bounding, effective and permitted (none inheritable or ambient).
pub fn capabilities(set: Capabilities) -> LinuxCapabilities {
    let mut c = LinuxCapabilities::default();
    c.set_bounding(Some(set.clone()));
    c.set_effective(Some(set.clone()));
    c.set_permitted(Some(set));
    c.set_inheritable(None);
    c.set_ambient(None);
    c
}

pub fn namespace(typ: LinuxNamespaceType, path: Option<PathBuf>) -> LinuxNamespace {
    let mut n = LinuxNamespace::default();
    n.set_typ(typ);
    n.set_path(path);
    n
}

/// A device cgroup rule.
pub fn device_rule(
    allow: bool,
    typ: Option<oci_spec::runtime::LinuxDeviceType>,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut d = LinuxDeviceCgroup::default();
    d.set_allow(allow);
    d.set_typ(typ);
    d.set_major(major);
    d.set_minor(minor);
    d.set_access(Some(access.to_string()));
    d
}

/// One rlimit (no setters in oci-spec; its builder has nothing to refuse with every field set).
pub fn rlimit(typ: PosixRlimitType, soft: u64, hard: u64) -> PosixRlimit {
    PosixRlimitBuilder::default()
        .typ(typ)
        .soft(soft)
        .hard(hard)
        .build()
        .expect("an rlimit with every field set")
}

fn process() -> Process {
    let mut p = Process::default();
    p.set_terminal(Some(true));
    p.set_user(User::default());
    p.set_args(Some(vec!["sh".into()]));
    p.set_env(Some(vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        "TERM=xterm".into(),
    ]));
    p.set_cwd(PathBuf::from("/"));
    p.set_capabilities(Some(capabilities(CAPS.iter().copied().collect())));
    p.set_rlimits(Some(vec![rlimit(
        PosixRlimitType::RlimitNofile,
        1024,
        1024,
    )]));
    p.set_no_new_privileges(Some(true));
    p.set_console_size(None);
    p
}

fn linux() -> oci_spec::runtime::Linux {
    use LinuxNamespaceType::*;
    let mut l = oci_spec::runtime::Linux::default();
    let mut resources = LinuxResources::default();
    resources.set_devices(Some(vec![device_rule(false, None, None, None, "rwm")]));
    l.set_resources(Some(resources));
    l.set_namespaces(Some(
        [Pid, Network, Ipc, Uts, Mount, Cgroup]
            .into_iter()
            .map(|t| namespace(t, None))
            .collect(),
    ));
    let paths = |p: &[&str]| Some(p.iter().map(|s| s.to_string()).collect());
    l.set_masked_paths(paths(MASKED_PATHS));
    l.set_readonly_paths(paths(READONLY_PATHS));
    l
}

/// The default config; `rootless` as runc's `spec --rootless`.
pub fn default_spec(rootless: bool) -> Spec {
    let mut spec = Spec::default();
    spec.set_version("1.2.0".into());
    spec.set_process(Some(process()));
    let mut root = Root::default();
    root.set_path(PathBuf::from("rootfs"));
    root.set_readonly(Some(true));
    spec.set_root(Some(root));
    spec.set_hostname(Some("hull".into()));
    spec.set_annotations(None);
    spec.set_mounts(Some(default_mounts()));
    spec.set_linux(Some(linux()));
    if rootless {
        make_rootless(&mut spec);
    }
    spec
}

/// As runc's --rootless: a user namespace mapping the caller to root, no cgroup limits, /sys
/// bound from the host, no gid-setting mount options.
fn make_rootless(spec: &mut Spec) {
    use LinuxNamespaceType::*;
    let map = |id: u32| {
        let m = LinuxIdMappingBuilder::default()
            .container_id(0u32)
            .host_id(id)
            .size(1u32)
            .build();
        // Every field is set, so the builder has nothing to refuse.
        Some(vec![m.expect("an id mapping with every field set")])
    };
    if let Some(l) = spec.linux_mut() {
        l.set_uid_mappings(map(nix::unistd::getuid().as_raw()));
        l.set_gid_mappings(map(nix::unistd::getgid().as_raw()));
        l.set_namespaces(Some(
            [Pid, Ipc, Uts, Mount, Cgroup, User]
                .into_iter()
                .map(|t| namespace(t, None))
                .collect(),
        ));
        l.set_resources(None);
    }
    if let Some(mounts) = spec.mounts_mut() {
        mounts.retain(|m| m.destination() != &PathBuf::from("/sys/fs/cgroup"));
        for m in mounts.iter_mut() {
            if m.destination() == &PathBuf::from("/sys") {
                *m = mount(
                    "/sys",
                    "none",
                    "/sys",
                    &["rbind", "nosuid", "noexec", "nodev", "ro"],
                );
            }
            if m.destination() == &PathBuf::from("/dev/pts") {
                if let Some(o) = m.options_mut() {
                    o.retain(|o| !o.starts_with("gid="));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_specs_parse_and_validate() {
        for rootless in [false, true] {
            let text = serde_json::to_string(&default_spec(rootless)).unwrap();
            let spec = crate::runtime::spec::parse(&text).unwrap();
            crate::runtime::spec::validate(&spec).unwrap();
        }
        let v = serde_json::to_value(default_spec(true)).unwrap();
        assert!(v["linux"]["uidMappings"].is_array());
        assert!(v["linux"].get("resources").is_none());
        assert_eq!(v["mounts"][5]["type"], "none");
        let v = serde_json::to_value(default_spec(false)).unwrap();
        // Only what runc's spec has: no inheritable or ambient caps, no annotations.
        assert!(v["process"]["capabilities"].get("ambient").is_none());
        assert!(v.get("annotations").is_none());
        assert_eq!(v["linux"]["namespaces"][1]["type"], "network");
    }
}
