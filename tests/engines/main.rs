//! The engines that drive runc in the real world — podman, containerd (through ctr) and dockerd —
//! driving hull, each scenario run for hull and for runc in the same harness, so a failure shows
//! whether it is hull's. Every daemon is started by hand with all its data under a temp dir and
//! stopped by pid; bridges, mounts and containers it made are removed even when a step fails.
//!
//! Needs root and hack/deps.sh. A step fails the test only when it passes with runc and
//! fails with hull; a step that fails with both is reported as the engine's or the host's.

#[path = "../common/mod.rs"]
mod common;
mod containerd;
mod dockerd;
#[path = "../common/leftovers.rs"]
mod leftovers;
mod podman;
use common::HULL;
use leftovers::{pids_mentioning, unmount_under};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const RUNC: &str = "/usr/sbin/runc";
const PAGE: &str = "hull-engines-ok";

/// The engines compete for two cores and share the host's netns: one scenario at a time.
static ENGINES: Mutex<()> = Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    ENGINES.lock().unwrap_or_else(|e| e.into_inner())
}

fn runtimes() -> Vec<(&'static str, &'static str)> {
    let mut v = vec![("hull", HULL)];
    if Path::new(RUNC).exists() {
        v.push(("runc", RUNC));
    } else {
        eprintln!("NOTE: {RUNC} missing: hull runs without a runc baseline");
    }
    v
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(self) -> Result<String, String> {
        if self.code == 0 {
            Ok(self.stdout)
        } else {
            Err(format!(
                "exit {}: {}{}",
                self.code,
                self.stderr.trim(),
                if self.stdout.trim().is_empty() {
                    String::new()
                } else {
                    format!(" (stdout: {})", self.stdout.trim())
                }
            ))
        }
    }
}

/// Runs `c` with output in temp files (a daemonizing child could hold a pipe open forever) and
/// kills its process group if it outlives `timeout`.
fn run(c: Command, timeout: Duration) -> Out {
    run_with_stdin(c, timeout, false)
}

/// `open_stdin`: give the command a pipe the test keeps open until it exits. `script` ends as
/// soon as its stdin reaches EOF, which with /dev/null races the container's first output.
fn run_with_stdin(mut c: Command, timeout: Duration, open_stdin: bool) -> Out {
    let out = tempfile::tempfile().expect("tempfile");
    let err = tempfile::tempfile().expect("tempfile");
    c.stdin(if open_stdin {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(out.try_clone().expect("dup"))
    .stderr(err.try_clone().expect("dup"))
    .process_group(0);
    let desc = format!("{c:?}");
    let mut child = match c.spawn() {
        Ok(ch) => ch,
        Err(e) => {
            return Out {
                code: -1,
                stdout: String::new(),
                stderr: format!("spawn {desc}: {e}"),
            }
        }
    };
    let _stdin = child.stdin.take();
    let deadline = Instant::now() + timeout;
    let code = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st.code().unwrap_or(-1),
            Ok(None) if Instant::now() > deadline => {
                // SAFETY: the group of the child we just spawned with process_group(0).
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                break -2;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break -1,
        }
    };
    let read = |mut f: std::fs::File| {
        use std::io::Seek;
        let mut s = String::new();
        let _ = f.rewind();
        let _ = f.read_to_string(&mut s);
        s
    };
    let mut stderr = read(err);
    if code == -2 {
        stderr = format!("timed out after {timeout:?}: {desc}\n{stderr}");
    }
    Out {
        code,
        stdout: read(out),
        stderr,
    }
}

fn expect_contains(text: &str, needle: &str) -> Result<(), String> {
    if text.contains(needle) {
        Ok(())
    } else {
        Err(format!("output {:?} lacks {needle:?}", text.trim()))
    }
}

/// Polls `f` until it succeeds or `timeout` passes; returns the last error.
fn eventually(timeout: Duration, mut f: impl FnMut() -> Result<(), String>) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// A shell word for `script -c`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs `argv` on a pty (util-linux `script`), as a user at a terminal would.
fn on_pty(argv: &[String], envs: &[(String, String)], timeout: Duration) -> Out {
    let line = argv
        .iter()
        .map(|a| sh_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    let mut c = Command::new("script");
    c.args(["-qec", &line, "/dev/null"]);
    for (k, v) in envs {
        c.env(k, v);
    }
    run_with_stdin(c, timeout, true)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// GETs / from 127.0.0.1:`port`, retrying while the server comes up.
fn http_get(port: u16) -> Result<(), String> {
    eventually(Duration::from_secs(15), || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port))
            .map_err(|e| format!("connect {port}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        expect_contains(&body, PAGE)
    })
}

/// Per engine: each step's result for each runtime.
struct Matrix {
    engine: &'static str,
    rows: Vec<(String, &'static str, Result<(), String>)>,
}

impl Matrix {
    fn new(engine: &'static str) -> Matrix {
        Matrix {
            engine,
            rows: Vec::new(),
        }
    }

    fn step(
        &mut self,
        rt: &'static str,
        name: &str,
        f: impl FnOnce() -> Result<(), String>,
    ) -> bool {
        let started = Instant::now();
        let r = f();
        eprintln!(
            "[{}] {rt:5} {name:18} {} ({:.1}s){}",
            self.engine,
            if r.is_ok() { "ok  " } else { "FAIL" },
            started.elapsed().as_secs_f32(),
            r.as_ref()
                .err()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        let ok = r.is_ok();
        self.rows.push((name.to_string(), rt, r));
        ok
    }

    fn skip(&mut self, rt: &'static str, name: &str, why: &str) {
        eprintln!("[{}] {rt:5} {name:18} SKIP: {why}", self.engine);
    }

    /// Prints the hull-vs-runc table and fails on any step hull fails where runc passes.
    fn finish(self) {
        let mut steps: Vec<&str> = Vec::new();
        for (s, _, _) in &self.rows {
            if !steps.contains(&s.as_str()) {
                steps.push(s);
            }
        }
        let get = |s: &str, rt: &str| {
            self.rows
                .iter()
                .find(|(n, r, _)| n == s && *r == rt)
                .map(|(_, _, r)| r)
        };
        let cell = |r: Option<&Result<(), String>>| match r {
            Some(Ok(())) => "pass",
            Some(Err(_)) => "FAIL",
            None => "-",
        };
        eprintln!("\n{} scenario      hull   runc", self.engine);
        let mut hull_only = Vec::new();
        let mut both = Vec::new();
        for s in &steps {
            let (h, r) = (get(s, "hull"), get(s, "runc"));
            eprintln!("  {s:20} {:6} {}", cell(h), cell(r));
            if let Some(Err(e)) = h {
                match r {
                    Some(Err(re)) => {
                        eprintln!("    fails with runc too (not hull's): {re}");
                        both.push(format!("{s}: {re}"));
                    }
                    _ => hull_only.push(format!("{s}: {e}")),
                }
            } else if let Some(Err(re)) = r {
                eprintln!("    passes with hull, fails with runc: {re}");
            }
        }
        assert!(!steps.is_empty(), "{}: no step ran", self.engine);
        assert!(
            hull_only.is_empty(),
            "{}: hull fails where runc passes:\n{}",
            self.engine,
            hull_only.join("\n")
        );
        // Failing with both runtimes is the harness's or the host's fault: still a failure, as a
        // step known not to work here must be a SKIP with its reason instead.
        assert!(
            both.is_empty(),
            "{}: steps fail with runc too (harness or host):\n{}",
            self.engine,
            both.join("\n")
        );
    }
}

/// A daemon we started, stopped by its pid when dropped (TERM, then KILL).
struct Daemon {
    name: &'static str,
    child: Child,
}

impl Daemon {
    fn spawn(name: &'static str, mut c: Command, log: &Path) -> Result<Daemon, String> {
        let f = std::fs::File::create(log).map_err(|e| e.to_string())?;
        let f2 = f.try_clone().map_err(|e| e.to_string())?;
        c.stdin(Stdio::null()).stdout(f).stderr(f2).process_group(0);
        let child = c.spawn().map_err(|e| format!("spawn {name}: {e}"))?;
        Ok(Daemon { name, child })
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = self.child.id() as i32;
        // SAFETY: signals to the daemon we spawned.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if !self.alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("{} did not stop on SIGTERM; killing it", self.name);
        // SAFETY: the daemon is our own child, not yet reaped, so the pid is still its own.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// A temp dir whose leftovers (processes naming it, mounts under it) go when it is dropped.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix(&format!("hull-eng-{tag}-"))
            .tempdir()
            .expect("tempdir");
        Scratch { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    fn s(&self, rel: &str) -> String {
        self.p(rel).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for pid in pids_mentioning(&self.path().to_string_lossy()) {
            // SAFETY: a process started for this test: its command line names our temp dir.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(200));
        unmount_under(self.path());
    }
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A docker-archive (`docker save` layout) of a busybox rootfs with a page for httpd, built once
/// by hand: one layer tar, an image config naming its diff id, a manifest. docker, podman and
/// ctr all import this format.
fn image_archive() -> &'static Path {
    static ARCHIVE: OnceLock<PathBuf> = OnceLock::new();
    ARCHIVE.get_or_init(|| {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("engines-image");
        let archive = base.join("hullbox.tar");
        if archive.exists() {
            return archive;
        }
        let rootfs = base.join("rootfs");
        let stage = base.join("stage");
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&stage).expect("mkdir stage");
        let st = Command::new("sh")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/hack/mkrootfs.sh"))
            .arg(&rootfs)
            .status()
            .expect("run hack/mkrootfs.sh");
        assert!(st.success(), "hack/mkrootfs.sh failed");
        std::fs::write(rootfs.join("var/www/index.html"), format!("{PAGE}\n")).expect("index.html");
        let layer = stage.join("layer.tar");
        let st = Command::new("tar")
            .args(["--numeric-owner", "-C"])
            .arg(&rootfs)
            .arg("-cf")
            .arg(&layer)
            .arg(".")
            .status()
            .expect("tar");
        assert!(st.success(), "tar of the rootfs failed");
        let diff_id = sha256_hex(&std::fs::read(&layer).expect("read layer"));
        let layer_dir = stage.join(&diff_id);
        std::fs::create_dir_all(&layer_dir).expect("mkdir layer dir");
        std::fs::rename(&layer, layer_dir.join("layer.tar")).expect("move layer");
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "hull tests/engines.rs"}]
        })
        .to_string();
        let config_name = format!("{}.json", sha256_hex(config.as_bytes()));
        std::fs::write(stage.join(&config_name), &config).expect("write config");
        let manifest = serde_json::json!([{
            "Config": config_name, "RepoTags": ["hullbox:test"], "Layers": [format!("{diff_id}/layer.tar")]
        }]);
        std::fs::write(stage.join("manifest.json"), manifest.to_string()).expect("write manifest");
        let tmp = base.join("hullbox.tar.tmp");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&stage)
            .arg("-cf")
            .arg(&tmp)
            .args(["manifest.json", &config_name, &diff_id])
            .status()
            .expect("tar archive");
        assert!(st.success(), "tar of the image archive failed");
        std::fs::rename(&tmp, &archive).expect("rename archive");
        archive
    })
}

fn have(bin: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn require(bins: &[&str]) -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP: engine tests need root");
        return false;
    }
    for b in bins {
        if !have(b) {
            eprintln!("SKIP: {b} not installed (run hack/deps.sh)");
            return false;
        }
    }
    true
}

const T: Duration = Duration::from_secs(60);

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}
