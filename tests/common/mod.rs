//! Shared harness for integration tests: each test gets its own state root, bundle and busybox
//! rootfs copy under a temp dir, and everything it created is force-deleted on drop, even when
//! the test panics.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const HULL: &str = env!("CARGO_BIN_EXE_hull");

/// Whether the test may run; prints the reason when it may not (never a silent pass).
pub fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        eprintln!("SKIP: integration tests need root");
        false
    }
}

/// A busybox rootfs built once per test binary by hack/mkrootfs.sh.
fn template_rootfs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("busybox-rootfs");
        if !dir.join("bin/busybox").exists() {
            let status = Command::new("sh")
                .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/hack/mkrootfs.sh"))
                .arg(&dir)
                .status()
                .expect("run hack/mkrootfs.sh");
            assert!(status.success(), "hack/mkrootfs.sh failed");
        }
        dir
    })
}

pub struct Env {
    pub tmp: tempfile::TempDir,
    pub root: PathBuf,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
}

pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Asserts success and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "failed: stdout={:?} stderr={:?}",
            self.stdout, self.stderr
        );
        &self.stdout
    }
    pub fn fails_with(&self, needle: &str) {
        assert_ne!(self.code, 0, "unexpected success: stdout={:?}", self.stdout);
        assert!(
            self.stderr.contains(needle),
            "stderr {:?} does not contain {needle:?}",
            self.stderr
        );
    }
}

impl Env {
    /// The constructor every root-only test starts with: None, after printing the SKIP reason,
    /// when the test may not run.
    pub fn root() -> Option<Env> {
        require_root().then(Env::new)
    }

    pub fn new() -> Env {
        let tmp = tempfile::Builder::new()
            .prefix("hull-test-")
            .tempdir()
            .expect("tempdir");
        let root = tmp.path().join("state");
        let bundle = tmp.path().join("bundle");
        let rootfs = bundle.join("rootfs");
        std::fs::create_dir_all(&bundle).expect("mkdir bundle");
        let status = Command::new("cp")
            .arg("-a")
            .arg(template_rootfs())
            .arg(&rootfs)
            .status()
            .expect("cp rootfs");
        assert!(status.success());
        let env = Env {
            tmp,
            root,
            bundle,
            rootfs,
        };
        env.write_config(&env.default_config());
        env
    }

    /// `hull spec`'s config, with no terminal so stdout can be captured.
    pub fn default_config(&self) -> Value {
        let out = Command::new(HULL)
            .args(["spec", "--bundle"])
            .arg(self.tmp.path())
            .output()
            .expect("hull spec");
        assert!(out.status.success());
        let path = self.tmp.path().join("config.json");
        let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        std::fs::remove_file(path).unwrap();
        v["process"]["terminal"] = json!(false);
        // Tests write marker files into the rootfs; the read-only root has its own test.
        v["root"]["readonly"] = json!(false);
        v
    }

    pub fn write_config(&self, v: &Value) {
        std::fs::write(
            self.bundle.join("config.json"),
            serde_json::to_string_pretty(v).unwrap(),
        )
        .expect("write config.json");
    }

    /// Edits the current config.json in place.
    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut v: Value = serde_json::from_str(
            &std::fs::read_to_string(self.bundle.join("config.json")).unwrap(),
        )
        .unwrap();
        f(&mut v);
        self.write_config(&v);
    }

    pub fn set_args(&self, args: &[&str]) {
        self.edit(|v| v["process"]["args"] = json!(args));
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(HULL);
        c.arg("--root").arg(&self.root);
        c.stdin(Stdio::null());
        c
    }

    /// Runs hull to completion. Output goes to files, not pipes: a created container's init
    /// inherits hull's stdio, so a pipe would never reach EOF while the container lives.
    pub fn hull(&self, args: &[&str]) -> Ran {
        let mut c = self.cmd();
        c.args(args).current_dir(&self.bundle);
        capture(c)
    }

    /// `hull run` of `args` in this bundle under a unique id.
    pub fn run(&self, args: &[&str]) -> Ran {
        self.set_args(args);
        self.hull(&[
            "run",
            "--bundle",
            self.bundle.to_str().unwrap(),
            &unique_id(),
        ])
    }

    /// Runs a shell snippet in the container and returns the successful stdout.
    pub fn sh(&self, script: &str) -> String {
        self.run(&["sh", "-c", script]).ok().to_string()
    }

    pub fn state(&self, id: &str) -> Value {
        serde_json::from_str(self.hull(&["state", id]).ok()).expect("state JSON")
    }

    /// Polls `hull state` until the container reports `status` (5 s at most), then returns the
    /// last state seen: the caller's assertion on it says what went wrong.
    pub fn wait_status(&self, id: &str, status: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let st = self.state(id);
            if st["status"] == status || std::time::Instant::now() > deadline {
                return st;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// `hull run --detach` of `args` under a fresh id, which it returns.
    pub fn run_detached(&self, args: &[&str]) -> String {
        self.set_args(args);
        let id = unique_id();
        self.hull(&[
            "run",
            "--detach",
            "--bundle",
            self.bundle.to_str().unwrap(),
            &id,
        ])
        .ok();
        id
    }

    /// Container ids still present under this env's root.
    pub fn ids(&self) -> Vec<String> {
        match std::fs::read_dir(&self.root) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for id in self.ids() {
            let _ = self.cmd().args(["delete", "--force", &id]).output();
        }
    }
}

/// Runs a command with stdout and stderr captured through temp files.
pub fn capture(mut c: Command) -> Ran {
    let mut out = tempfile::tempfile().expect("tempfile");
    let mut err = tempfile::tempfile().expect("tempfile");
    c.stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap());
    let status = c.status().expect("spawn");
    use std::io::{Read, Seek};
    let read = |f: &mut std::fs::File| {
        let mut s = String::new();
        f.rewind().unwrap();
        f.read_to_string(&mut s).unwrap();
        s
    };
    Ran {
        code: status.code().unwrap_or(-1),
        stdout: read(&mut out),
        stderr: read(&mut err),
    }
}

pub fn unique_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Every cgroup dir named after `id` in the host hierarchies, to prove none is left behind.
pub fn cgroup_dirs_for(id: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in rd.filter_map(|e| e.ok()) {
            let p = h.path().join("hull").join(id);
            if p.exists() {
                found.push(p);
            }
        }
    }
    let v2 = Path::new("/sys/fs/cgroup/hull").join(id);
    if v2.exists() {
        found.push(v2);
    }
    found
}

/// Live processes whose command line contains `needle` (a container id, say). A zombie awaiting
/// its reaper is gone for every purpose but the pid, so it does not count.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.parse::<u32>().is_err() || name == std::process::id().to_string() {
            continue;
        }
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            if String::from_utf8_lossy(&c).contains(needle) && !stat.contains(") Z") {
                found.push(format!(
                    "{name}: {}",
                    String::from_utf8_lossy(&c).replace('\0', " ")
                ));
            }
        }
    }
    found
}

/// Asserts a failed command left nothing of container `id`: no state dir, cgroup or process.
pub fn assert_nothing_left(env: &Env, id: &str) {
    assert!(env.ids().is_empty(), "state left: {:?}", env.ids());
    assert!(
        cgroup_dirs_for(id).is_empty(),
        "cgroup left: {:?}",
        cgroup_dirs_for(id)
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let procs = processes_mentioning(id);
        if procs.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "processes left: {procs:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
