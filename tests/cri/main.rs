//! Pods through containerd's CRI, as kubelet drives them, with hull and with runc side by side.
//!
//! One private containerd (tests/cri/node.rs) has two runtime handlers, `hull` and `runc`, both
//! the runc v2 shim with `BinaryName` pointing at the runtime, as a RuntimeClass selects them
//! on a real node. Every scenario runs for each handler and the table shows them side by side.
//! Any failing step fails the test: hull's alone is hull's bug; one failing with runc too is
//! the harness's or the host's, which must be a SKIP with its reason instead. After each pod is removed nothing of it may be
//! left: cgroups, mounts, netns pins, veths, IP leases, shims.
//!
//! Needs root, containerd, ctr, containernetworking-plugins and iptables (hack/deps.sh).

#[path = "../berth_common/mod.rs"]
mod berth_common;
mod client;
#[path = "../common/mod.rs"]
mod common;
mod leftovers;
mod node;
mod scenarios;

use node::{Driver, Node};
use std::time::Instant;

/// Each step's results, in the order first run: one slot per handler (hull, runc).
pub struct Matrix {
    rows: Vec<(String, [Cell; 2])>,
}

/// A step's result for one handler; None when it did not run.
type Cell = Option<Result<(), String>>;

impl Matrix {
    /// Runs `f` as step `name` of handler `rt`; true when it passed.
    pub fn step(
        &mut self,
        rt: &'static str,
        name: &str,
        f: impl FnOnce() -> Result<(), String>,
    ) -> bool {
        let started = Instant::now();
        let r = f();
        let secs = started.elapsed().as_secs_f32();
        match &r {
            Ok(()) => eprintln!("[cri] {rt:5} {name:34} ok   ({secs:.1}s)"),
            Err(e) => eprintln!("[cri] {rt:5} {name:34} FAIL ({secs:.1}s): {e}"),
        }
        let ok = r.is_ok();
        let slot = usize::from(rt != "hull");
        match self.rows.iter_mut().find(|(n, _)| n == name) {
            Some((_, cells)) => cells[slot] = Some(r),
            None => {
                let mut cells = [None, None];
                cells[slot] = Some(r);
                self.rows.push((name.to_string(), cells));
            }
        }
        ok
    }

    /// Prints the table; any failure, hull's alone or both runtimes', fails the test.
    fn finish(self) {
        assert!(!self.rows.is_empty(), "no CRI step ran");
        let mut failures = Vec::new();
        eprintln!("\nCRI step                             hull   runc");
        for (name, cells) in &self.rows {
            let word = |c: &Cell| match c {
                Some(Ok(())) => "pass",
                Some(Err(_)) => "FAIL",
                None => "-",
            };
            eprintln!("  {name:34} {:6} {}", word(&cells[0]), word(&cells[1]));
            for (rt, cell) in ["hull", "runc"].iter().zip(cells) {
                if let Some(Err(e)) = cell {
                    failures.push(format!("{name} ({rt}): {e}"));
                }
            }
        }
        assert!(
            failures.is_empty(),
            "CRI steps failed:\n{}",
            failures.join("\n")
        );
    }
}

/// Whether this host can run the node; prints the reason when it cannot.
fn can_run() -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: the CRI tests need root");
        return false;
    }
    for bin in [
        "containerd",
        "ctr",
        "containerd-shim-runc-v2",
        "iptables",
        "ip",
    ] {
        if !berth_common::have(bin) {
            eprintln!("SKIP: {bin} not installed (run hack/deps.sh)");
            return false;
        }
    }
    for plugin in ["bridge", "host-local", "portmap", "loopback"] {
        if !std::path::Path::new("/usr/lib/cni").join(plugin).exists() {
            eprintln!("SKIP: CNI plugin {plugin} missing (run hack/deps.sh)");
            return false;
        }
    }
    true
}

/// Runs every scenario for every handler on a node using `driver`.
pub fn run_matrix(driver: Driver) {
    if !can_run() {
        return;
    }
    let started = Instant::now();
    let node = match Node::start(driver) {
        Ok(n) => n,
        Err(e) => panic!("the CRI node did not start: {e}"),
    };
    eprintln!(
        "node up in {:.1}s ({driver:?} cgroup driver)",
        started.elapsed().as_secs_f32()
    );
    let mut cri = client::Cri::connect(&node.sock).expect("connect to the CRI socket");
    let mut m = Matrix { rows: Vec::new() };
    for (rt, _) in Node::handlers() {
        scenarios::all(&mut m, &mut cri, &node, rt);
    }
    let failed = m
        .rows
        .iter()
        .any(|(_, cells)| cells.iter().any(|c| matches!(c, Some(Err(_)))));
    if failed || std::env::var_os("HULL_CRI_KEEP_LOG").is_some() {
        eprintln!("containerd log tail:\n{}", node.log_tail(60));
    }
    drop(cri);
    drop(node);
    eprintln!("CRI matrix took {:.1}s", started.elapsed().as_secs_f32());
    m.finish();
}

#[test]
fn cri_pods_with_hull_like_runc() {
    run_matrix(Driver::Cgroupfs);
}

/// containerd's `SystemdCgroup = true`, kubelet's recommended driver: pods' cgroups are slices
/// and containers' transient scopes. Needs systemd as PID 1: hack/test-systemd.sh runs it in
/// the systemd VM.
#[test]
fn cri_pods_with_systemd_cgroup_driver() {
    if !std::fs::read_to_string("/proc/1/comm").is_ok_and(|c| c.trim() == "systemd") {
        eprintln!(
            "SKIP: systemd is not PID 1 here (hack/test-systemd.sh runs this in a systemd VM)"
        );
        return;
    }
    run_matrix(Driver::Systemd);
}
