//! What a removed pod must not leave behind, and the cleanup of a failed run.

use super::node::{Driver, Node};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Lazily unmounts every mount under `dir` (deepest first).
pub fn unmount_under(dir: &Path) {
    for p in mounts_under(dir).into_iter().rev() {
        let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Mount points under `dir`, shallowest first.
fn mounts_under(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.display().to_string();
    let mut points: Vec<String> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| p.len());
    points
}

/// The pods' cgroup parent in every hierarchy that has it (v1: one per controller; v2: one).
fn parent_dirs(node: &Node) -> Vec<PathBuf> {
    let rel = node.cgroup_parent.trim_start_matches('/');
    let root = Path::new("/sys/fs/cgroup");
    let mut dirs = Vec::new();
    if root.join("cgroup.controllers").exists() {
        dirs.push(root.join(rel));
    } else if let Ok(rd) = std::fs::read_dir(root) {
        for h in rd.filter_map(|e| e.ok()) {
            dirs.push(h.path().join(rel));
        }
    }
    dirs.into_iter().filter(|d| d.is_dir()).collect()
}

/// Everything of the node's pods still present: container cgroups, mounts (rootfs, shm, netns
/// pins), veths on the bridge, IPs held by IPAM, shims. Empty when all is gone.
pub fn check(node: &Node) -> Vec<String> {
    let mut left = Vec::new();
    // Pod-level cgroups are kubelet's to remove; the containers' own, under them, the runtime's.
    for pod in pod_dirs(node) {
        for e in std::fs::read_dir(&pod).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                left.push(format!("cgroup {}", e.path().display()));
            }
        }
    }
    for m in mounts_under(node.dir.path()) {
        left.push(format!("mount {m}"));
    }
    if let Ok(rd) = std::fs::read_dir(format!("/sys/class/net/{}/brif", node.bridge)) {
        for e in rd.filter_map(|e| e.ok()) {
            left.push(format!("veth {}", e.file_name().to_string_lossy()));
        }
    }
    if let Ok(rd) = std::fs::read_dir(node.p("cni-ipam")) {
        for net in rd.filter_map(|e| e.ok()) {
            for e in std::fs::read_dir(net.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.parse::<std::net::IpAddr>().is_ok() {
                    left.push(format!("IP lease {name}"));
                }
            }
        }
    }
    for s in node.shims() {
        left.push(format!("shim {s}"));
    }
    left
}

fn pod_dirs(node: &Node) -> Vec<PathBuf> {
    let mut pods = Vec::new();
    for d in parent_dirs(node) {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                pods.push(e.path());
            }
        }
    }
    pods
}

/// Removes the pods' own cgroups, as kubelet does once their containers are gone.
pub fn remove_pod_cgroups(node: &Node) {
    for pod in pod_dirs(node) {
        if node.driver == Driver::Systemd {
            if let Some(unit) = pod.file_name() {
                let _ = Command::new("systemctl").arg("stop").arg(unit).status();
            }
        }
        let _ = std::fs::remove_dir(&pod);
    }
}

/// Removes the pods' parent cgroup (kubelet's job on a real node: the runtime removes only the
/// containers' own cgroups).
pub fn remove_cgroup_parent(node: &Node) {
    remove_pod_cgroups(node);
    if node.driver == Driver::Systemd {
        let _ = Command::new("systemctl")
            .args(["stop", &node.cgroup_parent])
            .status();
    }
    for d in parent_dirs(node) {
        let _ = std::fs::remove_dir(&d);
    }
}

/// The host-wide state CNI creates on first use and never removes: portmap's shared iptables
/// chains and libcni's result cache dir. Removed after the run only if this test created them
/// and they are empty again (another CNI user on the host keeps them).
pub struct HostCni {
    had_chains: bool,
    had_cache: bool,
}

const CHAINS: [&str; 3] = [
    "CNI-HOSTPORT-DNAT",
    "CNI-HOSTPORT-MASQ",
    "CNI-HOSTPORT-SETMARK",
];
const CACHE: &str = "/var/lib/cni";

fn nat(args: &[&str]) -> Option<String> {
    let out = Command::new("iptables")
        .args(["-w", "-t", "nat"])
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

impl HostCni {
    pub fn snapshot() -> HostCni {
        HostCni {
            had_chains: nat(&["-S", CHAINS[0]]).is_some(),
            had_cache: Path::new(CACHE).exists(),
        }
    }

    pub fn restore(&self) {
        if !self.had_chains {
            // Only the chain's own -N line: no pod's rules are left in it.
            if nat(&["-S", CHAINS[0]]).is_some_and(|s| s.lines().count() == 1) {
                for hook in ["PREROUTING", "OUTPUT"] {
                    nat(&[
                        "-D",
                        hook,
                        "-m",
                        "addrtype",
                        "--dst-type",
                        "LOCAL",
                        "-j",
                        CHAINS[0],
                    ]);
                }
                nat(&[
                    "-D",
                    "POSTROUTING",
                    "-m",
                    "comment",
                    "--comment",
                    "CNI portfwd requiring masquerade",
                    "-j",
                    CHAINS[1],
                ]);
                for c in CHAINS {
                    nat(&["-F", c]);
                    nat(&["-X", c]);
                }
            }
        }
        if !self.had_cache {
            let _ = std::fs::remove_dir(Path::new(CACHE).join("results"));
            let _ = std::fs::remove_dir(CACHE);
        }
    }
}

/// `systemctl show` of the transient scope containerd names for container (or sandbox) `id`:
/// (LoadState, ActiveState, ControlGroup).
pub fn scope(id: &str) -> (String, String, String) {
    let unit = format!("cri-containerd-{id}.scope");
    let out = Command::new("systemctl")
        .args(["show", &unit, "-p", "LoadState,ActiveState,ControlGroup"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let get = |k: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .unwrap_or("")
            .to_string()
    };
    (get("LoadState"), get("ActiveState"), get("ControlGroup"))
}
