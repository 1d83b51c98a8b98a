//! Two berth roots on one host (issue 15): each gets its own default bridge, subnet, nft table
//! and leases; both publish ports and reach their gateway; `network prune` in one leaves the
//! other working; a root told to use another root's bridge refuses, naming the owner.

#[path = "../berth_common/mod.rs"]
mod berth_common;

use berth_common::ctr::{busybox_tar, http_get, HULL};
use berth_common::{free_port, is_root, BERTH};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One root with berth's own defaults (no BERTH_BRIDGE): removes all it made on drop.
struct Root {
    path: PathBuf,
    env: Vec<(&'static str, String)>,
    _dir: tempfile::TempDir,
}

impl Root {
    fn new(env: Vec<(&'static str, String)>) -> Root {
        let dir = tempfile::Builder::new()
            .prefix("berth-2r-")
            .tempdir()
            .expect("tempdir");
        let path = std::fs::canonicalize(dir.path()).expect("canonical");
        let r = Root {
            path,
            env,
            _dir: dir,
        };
        r.ok(&["import", busybox_tar().to_str().expect("utf8"), "busybox"]);
        r
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(BERTH);
        c.arg("--root").arg(&self.path).args(args);
        c.env_remove("BERTH_BRIDGE")
            .env_remove("BERTH_BRIDGE_SUBNET")
            .env("BERTH_DNS_UPSTREAM", "none");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.output().expect("running berth")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "berth {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    fn bridge(&self) -> String {
        let v: serde_json::Value =
            serde_json::from_str(&self.ok(&["network", "inspect", "bridge"])).expect("json");
        let v = if v.is_array() { v[0].clone() } else { v };
        v["Options"]["com.docker.network.bridge.name"]
            .as_str()
            .expect("bridge name")
            .to_string()
    }

    fn web(&self, port: u16) -> String {
        let p = format!("{port}:80");
        self.ok(&[
            "run",
            "--runtime",
            HULL,
            "-d",
            "-p",
            &p,
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/var/www",
        ])
    }

    fn pings_gateway(&self, id: &str) -> bool {
        let v: serde_json::Value =
            serde_json::from_str(&self.ok(&["inspect", id])).expect("inspect json");
        let gw = v[0]["NetworkSettings"]["Networks"]["bridge"]["Gateway"]
            .as_str()
            .expect("gateway")
            .to_string();
        self.run(&["exec", id, "ping", "-c", "1", "-W", "2", &gw])
            .status
            .success()
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        for id in self.ok(&["ps", "-aq"]).lines() {
            let _ = self.run(&["rm", "-f", id]);
        }
        let _ = self.run(&["network", "prune", "-f"]);
    }
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

#[test]
fn two_roots_side_by_side() {
    if !is_root() || !berth_common::have("nft") {
        eprintln!("SKIP: container tests need root and nft");
        return;
    }
    let a = Root::new(vec![]);
    let b = Root::new(vec![]);
    let (pa, pb) = (free_port(), free_port());
    let ca = a.web(pa);
    let cb = b.web(pb);
    let (ba, bb) = (a.bridge(), b.bridge());
    assert_ne!(ba, bb, "both roots on one bridge");
    assert!(ba.starts_with("berth-") && bb.starts_with("berth-"));
    let ip = |r: &Root, id: &str| r.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", id]);
    assert_ne!(ip(&a, &ca), ip(&b, &cb), "same address in both roots");
    assert!(http_get(pa).contains("hello from busybox"));
    assert!(http_get(pb).contains("hello from busybox"));
    assert!(a.pings_gateway(&ca) && b.pings_gateway(&cb));

    // Prune in A removes A's bridge only; B goes on working.
    a.ok(&["rm", "-f", &ca]);
    a.ok(&["network", "prune", "-f"]);
    assert!(!link_exists(&ba), "A's bridge survived its prune");
    assert!(link_exists(&bb), "A's prune deleted B's bridge");
    assert!(http_get(pb).contains("hello from busybox"));
    assert!(b.pings_gateway(&cb));
    let ca = a.web(pa);
    assert!(http_get(pa).contains("hello from busybox") && a.pings_gateway(&ca));

    // A root told to use B's bridge refuses with one line naming B, and leaves it alone.
    let c = Root::new(vec![
        ("BERTH_BRIDGE", bb.clone()),
        ("BERTH_BRIDGE_SUBNET", "10.213.250.0/24".into()),
    ]);
    let o = c.run(&["run", "--runtime", HULL, "-d", "busybox", "sleep", "30"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        err.contains(&format!(
            "bridge {bb} belongs to berth root {}",
            b.path.display()
        )),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    // A failed start leaves the container Created (docker's rule); nothing of it runs.
    let ps = c.ok(&["ps", "-a", "--format", "{{.State}}"]);
    assert!(ps.lines().all(|l| l == "created"), "{ps}");
    for id in c.ok(&["ps", "-aq"]).lines() {
        c.ok(&["rm", id]);
    }
    c.ok(&["network", "prune", "-f"]);
    assert!(link_exists(&bb), "C's prune deleted B's bridge");
    assert!(http_get(pb).contains("hello from busybox"));
    drop(c);
    drop(a);
    drop(b);
    assert!(!link_exists(&ba) && !link_exists(&bb), "bridges left");
}
