//! Leak accounting for berth's fault tests: everything a root may leave on the host.

use super::berth_common::ctr::Env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// xorshift64*, seeded by FAULTS_SEED (default 15) and the scenario: a failing run replays.
pub struct Rng(u64);

impl Rng {
    pub fn new(scenario: &str) -> Rng {
        let seed: u64 = std::env::var("FAULTS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(15);
        eprintln!("{scenario}: FAULTS_SEED={seed}");
        let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
        for b in scenario.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        Rng(h | 1)
    }

    pub fn below(&mut self, n: std::time::Duration) -> std::time::Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        std::time::Duration::from_micros(r % (n.as_micros().max(1) as u64))
    }
}

/// berth's runtime state root for `root`.
pub fn runtime_root(root: &Path) -> PathBuf {
    hull::engine::runtime::state_root(root)
}

/// A numeric field of the state.json of the root's only container.
pub fn state_field(root: &Path, field: &str) -> Option<i64> {
    let rd = std::fs::read_dir(root.join("containers")).ok()?;
    for e in rd.flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let s = std::fs::read_to_string(e.path().join("state.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&s).ok()?;
        return v[field].as_i64();
    }
    None
}

fn entries(p: &Path) -> Vec<String> {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path().display().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// What the root holds beyond its images and networks' records: container dirs (staging ones
/// too), volumes, runtime state, mounts, netns, veths on its bridge, nft port elements, IP
/// leases, processes.
pub fn leaks(e: &Env) -> Vec<String> {
    let root = &e.root;
    let mut left = vec![];
    for (what, dir) in [
        ("container dir", root.join("containers")),
        ("volume", root.join("volumes")),
        ("netns", root.join("netns")),
        ("runtime state", runtime_root(root)),
    ] {
        for p in entries(&dir) {
            if !p.ends_with(".lock") && !p.ends_with(".json") {
                left.push(format!("{what} {p}"));
            }
        }
    }
    for p in entries(&Path::new("/sys/class/net").join(e.bridge()).join("brif")) {
        left.push(format!("veth {p}"));
    }
    let r = root.to_string_lossy().into_owned();
    if let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") {
        for l in mi.lines().filter(|l| l.contains(&r)) {
            left.push(format!("mount {l}"));
        }
    }
    for map in ["pub_any", "pub_ip"] {
        let o = Command::new("nft")
            .args(["list", "map", "ip", &e.nft_table(), map])
            .output();
        if let Ok(o) = o {
            let s = String::from_utf8_lossy(&o.stdout);
            if s.contains("elements") {
                left.push(format!("nft {map}: {}", s.trim()));
            }
        }
    }
    for f in entries(&root.join("networks")) {
        if f.ends_with(".leases.json") {
            let s = std::fs::read_to_string(&f).unwrap_or_default();
            let v: serde_json::Value = serde_json::from_str(&s).unwrap_or_default();
            if v.as_object().is_some_and(|m| !m.is_empty()) {
                left.push(format!("leases {f}: {s}"));
            }
        }
    }
    let me = std::process::id().to_string();
    for p in entries(Path::new("/proc")) {
        if p.ends_with(&format!("/{me}")) {
            continue;
        }
        if let Ok(cl) = std::fs::read(format!("{p}/cmdline")) {
            let cl = String::from_utf8_lossy(&cl).replace('\0', " ");
            if cl.contains(&r) {
                left.push(format!("process {p}: {cl}"));
            }
        }
    }
    left
}
