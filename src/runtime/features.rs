//! `hull features`: the OCI features document (features.md, features-linux.md), built from the
//! same tables the code uses where they are shared, and kept honest by tests/features.rs, which
//! feeds every advertised name back through a real container.

use serde_json::{json, Value};

/// The oldest and newest runtime-spec versions hull accepts (spec.rs takes any 1.x).
pub const OCI_VERSION_MIN: &str = "1.0.0";
pub const OCI_VERSION_MAX: &str = "1.2.1";

pub const HOOKS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// The mount options mount_opts::parse_options turns into mount flags or propagation (anything
/// else but the attribute options below is passed to the filesystem as data, which the runtime
/// does not "recognize").
pub const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "private",
    "rbind",
    "relatime",
    "remount",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "ro",
    "rw",
    "shared",
    "slave",
    "strictatime",
    "suid",
    "sync",
    "unbindable",
];

/// Every mount option hull applies on this kernel: the flag and propagation options, plus the
/// mount-attribute ones (`r*`, `[no]symfollow`) when the kernel's mount_setattr knows them.
pub fn mount_options() -> Vec<&'static str> {
    use super::mount_opts::{attr_options_supported, RECURSIVE_OPTIONS, SYMFOLLOW_OPTIONS};
    let mut all = MOUNT_OPTIONS.to_vec();
    for entry in RECURSIVE_OPTIONS.iter().chain(SYMFOLLOW_OPTIONS) {
        if attr_options_supported(std::slice::from_ref(entry)) {
            all.push(entry.0);
        }
    }
    all.sort_unstable();
    all
}

/// The namespace types spec.rs accepts.
pub const NAMESPACES: &[&str] = &[
    "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
];

/// Every capability name process.rs accepts (it parses them with the caps crate).
pub fn capabilities() -> Vec<String> {
    let mut caps: Vec<String> = caps::all().iter().map(|c| c.to_string()).collect();
    caps.sort();
    caps
}

pub fn features() -> Value {
    let strs = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let rdt = crate::runtime::rdt::resctrl_mount().is_some();
    json!({
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": HOOKS,
        "mountOptions": mount_options(),
        "linux": {
            "namespaces": NAMESPACES,
            "capabilities": capabilities(),
            "cgroup": {"v1": true, "v2": true, "systemd": true, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": strs(crate::seccomp::ACTIONS),
                "operators": strs(crate::seccomp::OPERATORS),
                "archs": strs(crate::seccomp::ARCHS),
                "knownFlags": strs(crate::seccomp::FLAGS),
                "supportedFlags": strs(crate::seccomp::FLAGS),
            },
            // Applied when the host has the LSM; refused with an error when it has not.
            "apparmor": {"enabled": true},
            "selinux": {"enabled": true},
            // Only where it can work: without resctrl, intelRdt is refused (rdt.rs). The
            // schemata field is applied; enableMonitoring is refused.
            "intelRdt": {"enabled": rdt, "schemata": rdt, "monitoring": false},
            "mountExtensions": {"idmap": {"enabled": true}},
            "netDevices": {"enabled": true},
            "memoryPolicy": {
                "modes": strs(crate::runtime::mempolicy::MODES),
                "flags": strs(crate::runtime::mempolicy::FLAGS),
            },
        },
        "annotations": {
            "org.opencontainers.hull.version": env!("CARGO_PKG_VERSION"),
            "org.opencontainers.hull.seccomp.compiler": "seccompiler 0.5",
        },
    })
}
