//! The engines that drive runc in the real world — podman, containerd (through ctr) and dockerd —
//! driving hull, each scenario run for hull and for runc in the same harness, so a failure shows
//! whether it is hull's. Every daemon is started by hand with all its data under a temp dir and
//! stopped by pid; bridges, mounts and containers it made are removed even when a step fails.
//!
//! Needs root and hack/deps.sh. A step fails the test only when it passes with runc and
//! fails with hull; a step that fails with both is reported as the engine's or the host's.

mod common;
use common::HULL;
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

/// Lazily unmounts every mount under `dir` (deepest first): what an engine left behind.
fn unmount_under(dir: &Path) {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<String> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = nix::mount::umount2(p.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Processes whose command line names `needle` (a temp path unique to this test), so leftovers
/// of daemons we started (shims, conmon) can be stopped by pid.
fn pids_mentioning(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut pids = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        if let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(needle) {
                pids.push(pid);
            }
        }
    }
    pids
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

// ---------------------------------------------------------------------------------------------
// podman

struct Podman<'a> {
    s: &'a Scratch,
    runtime: &'static str,
}

impl Podman<'_> {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.s.p("containers.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", self.s.p("registries.conf"))
            .args([
                "--root",
                &self.s.s("root"),
                "--runroot",
                &self.s.s("runroot"),
            ])
            .args(["--tmpdir", &self.s.s("tmp"), "--storage-driver", "vfs"])
            .args(["--runtime", self.runtime])
            .args(args);
        c
    }
    fn argv(&self, args: &[&str]) -> Vec<String> {
        let c = self.cmd(args);
        std::iter::once(c.get_program())
            .chain(c.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }
    fn envs(&self) -> Vec<(String, String)> {
        self.cmd(&[])
            .get_envs()
            .filter_map(|(k, v)| {
                Some((
                    k.to_string_lossy().into_owned(),
                    v?.to_string_lossy().into_owned(),
                ))
            })
            .collect()
    }
    fn run(&self, args: &[&str]) -> Result<String, String> {
        run(self.cmd(args), T).ok()
    }
    fn inspect(&self, id: &str, fmt: &str) -> Result<String, String> {
        self.run(&["inspect", "-f", fmt, id])
            .map(|s| s.trim().to_string())
    }
}

/// podman names a docker-archive's short tag localhost/…; the short name resolves locally.
const IMG_PODMAN: &str = "hullbox:test";

/// The host's memory limit of a container's cgroup (v1 or v2) from its init's /proc entry.
fn host_memory_limit(pid: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| e.to_string())?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (
            parts.next(),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        if ctrls.split(',').any(|c| c == "memory") {
            let f = format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes");
            return std::fs::read_to_string(&f)
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("{f}: {e}"));
        }
        if ctrls.is_empty() {
            let f = format!("/sys/fs/cgroup/unified{path}/memory.max");
            if let Ok(s) = std::fs::read_to_string(&f) {
                return Ok(s.trim().to_string());
            }
            let f = format!("/sys/fs/cgroup{path}/memory.max");
            if let Ok(s) = std::fs::read_to_string(&f) {
                return Ok(s.trim().to_string());
            }
        }
    }
    Err(format!("no memory cgroup for {pid}"))
}

fn podman_scenario(m: &mut Matrix, rt: &'static str, runtime: &'static str) {
    let s = Scratch::new("podman");
    for d in ["root", "runroot", "tmp", "networks"] {
        std::fs::create_dir_all(s.p(d)).expect("mkdir");
    }
    // The host lacks CAP_SYS_RESOURCE in its bounding set, so podman's default nofile ulimit
    // (raising the hard limit) fails with any runtime. slirp4netns keeps the host's bridges and
    // firewall untouched.
    let conf = format!(
        "[containers]\ndefault_ulimits = []\nnetns = \"slirp4netns\"\n\n[engine]\ncgroup_manager = \"cgroupfs\"\n\
         events_logger = \"file\"\nevents_logfile_path = \"{}\"\n\n[network]\nnetwork_config_dir = \"{}\"\n",
        s.s("events.log"),
        s.s("networks")
    );
    std::fs::write(s.p("containers.conf"), conf).expect("containers.conf");
    std::fs::write(
        s.p("registries.conf"),
        "unqualified-search-registries = []\n",
    )
    .expect("registries.conf");
    let p = Podman { s: &s, runtime };
    let archive = image_archive().display().to_string();
    let cleanup = || {
        let _ = run(p.cmd(&["rm", "-af", "-t", "0"]), T);
        let _ = run(p.cmd(&["volume", "rm", "-af"]), T);
    };

    if !m.step(rt, "load", || p.run(&["load", "-i", &archive]).map(drop)) {
        return;
    }
    m.step(rt, "run --rm", || {
        let out = p.run(&["run", "--rm", IMG_PODMAN, "echo", "hi"])?;
        expect_contains(&out, "hi")
    });
    let script = "echo started; trap 'exit 0' TERM; while :; do sleep 1; done";
    let started = m.step(rt, "run -d", || {
        p.run(&["run", "-d", "--name", "c1", IMG_PODMAN, "sh", "-c", script])
            .map(drop)
    });
    if started {
        m.step(rt, "logs", || {
            eventually(Duration::from_secs(10), || {
                expect_contains(&p.run(&["logs", "c1"])?, "started")
            })
        });
        m.step(rt, "exec", || {
            expect_contains(&p.run(&["exec", "c1", "echo", "execd"])?, "execd")
        });
        m.step(rt, "top", || {
            expect_contains(&p.run(&["top", "c1"])?, "sleep")
        });
        m.step(rt, "stats --no-stream", || {
            let out = p.run(&[
                "stats",
                "--no-stream",
                "--format",
                "{{.Name}} {{.MemUsage}}",
                "c1",
            ])?;
            expect_contains(&out, "c1 ")
        });
        m.step(rt, "pause/unpause", || {
            p.run(&["pause", "c1"])?;
            let st = p.inspect("c1", "{{.State.Status}}")?;
            if st != "paused" {
                return Err(format!("status after pause: {st}"));
            }
            p.run(&["unpause", "c1"])?;
            let st = p.inspect("c1", "{{.State.Status}}")?;
            if st != "running" {
                return Err(format!("status after unpause: {st}"));
            }
            expect_contains(&p.run(&["exec", "c1", "echo", "thawed"])?, "thawed")
        });
        let has_update = run(p.cmd(&["update", "--help"]), T).code == 0;
        if has_update {
            m.step(rt, "update --memory", || {
                p.run(&["update", "--memory", "64m", "c1"])?;
                let pid = p.inspect("c1", "{{.State.Pid}}")?;
                let limit = host_memory_limit(&pid)?;
                if limit != "67108864" {
                    return Err(format!("memory limit in the cgroup is {limit}, not 64m"));
                }
                Ok(())
            });
        } else {
            m.skip(rt, "update --memory", "this podman has no update command");
        }
        m.step(rt, "stop", || {
            p.run(&["stop", "-t", "10", "c1"])?;
            let st = p.inspect("c1", "{{.State.Status}} {{.State.ExitCode}}")?;
            if st != "exited 0" {
                return Err(format!(
                    "after stop: {st} (want exited 0: the TERM trap ran)"
                ));
            }
            Ok(())
        });
        m.step(rt, "rm", || {
            p.run(&["rm", "c1"])?;
            match p.inspect("c1", "{{.Id}}") {
                Ok(id) => Err(format!("c1 still there: {id}")),
                Err(_) => Ok(()),
            }
        });
    }
    m.step(rt, "missing command", || {
        // The runtime's error reaches the user as podman's "not found" (exit 127), and podman's
        // cleanup (`delete --force` of a container whose create failed) raises no error of its own.
        let out = run(p.cmd(&["run", "--rm", IMG_PODMAN, "/nonexistent"]), T);
        if out.code != 127 {
            return Err(format!(
                "exit {} (want 127): {}",
                out.code,
                out.stderr.trim()
            ));
        }
        expect_contains(&out.stderr, "/nonexistent")?;
        if out.stderr.contains("does not exist") {
            return Err(format!(
                "cleanup after the failed create errored: {}",
                out.stderr.trim()
            ));
        }
        Ok(())
    });
    m.step(rt, "run -it (pty)", || {
        let out = on_pty(
            &p.argv(&[
                "run",
                "-it",
                "--rm",
                IMG_PODMAN,
                "sh",
                "-c",
                "tty; echo pty-ok",
            ]),
            &p.envs(),
            T,
        )
        .ok()?;
        expect_contains(&out, "/dev/pts/")?;
        expect_contains(&out, "pty-ok")
    });
    m.step(rt, "-p httpd", || {
        let port = free_port();
        let publish = format!("127.0.0.1:{port}:80");
        p.run(&[
            "run", "-d", "--name", "web", "-p", &publish, IMG_PODMAN, "httpd", "-f", "-p", "80",
            "-h", "/var/www",
        ])?;
        let r = http_get(port);
        let _ = p.run(&["rm", "-f", "-t", "0", "web"]);
        r
    });
    m.step(rt, "named volume", || {
        p.run(&["volume", "create", "vol1"])?;
        p.run(&[
            "run",
            "--rm",
            "-v",
            "vol1:/data",
            IMG_PODMAN,
            "sh",
            "-c",
            "echo persisted > /data/f",
        ])?;
        let out = p.run(&[
            "run",
            "--rm",
            "-v",
            "vol1:/data",
            IMG_PODMAN,
            "cat",
            "/data/f",
        ])?;
        expect_contains(&out, "persisted")?;
        p.run(&["volume", "rm", "vol1"]).map(drop)
    });
    cleanup();
}

#[test]
fn podman_drives_hull_like_runc() {
    if !require(&["podman", "script", "slirp4netns"]) {
        return;
    }
    let _g = lock();
    let mut m = Matrix::new("podman");
    for (rt, path) in runtimes() {
        podman_scenario(&mut m, rt, path);
    }
    m.finish();
}

// ---------------------------------------------------------------------------------------------
// containerd + ctr

const IMG_CTR: &str = "docker.io/library/hullbox:test";

struct Containerd {
    _daemon: Daemon,
    sock: String,
}

impl Containerd {
    /// Starts containerd with root, state and sockets under `s`; None (with the reason printed)
    /// when it does not come up.
    fn start(s: &Scratch) -> Result<Containerd, String> {
        let sock = s.s("ctrd.sock");
        let config = format!(
            "version = 2\nroot = \"{}\"\nstate = \"{}\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\", \"io.containerd.snapshotter.v1.btrfs\", \
             \"io.containerd.snapshotter.v1.zfs\", \"io.containerd.snapshotter.v1.devmapper\", \
             \"io.containerd.snapshotter.v1.aufs\"]\n\n[grpc]\n  address = \"{sock}\"\n\n\
             [ttrpc]\n  address = \"{sock}.ttrpc\"\n\n[debug]\n  address = \"{}\"\n",
            s.s("root"),
            s.s("state"),
            s.s("debug.sock"),
        );
        std::fs::write(s.p("config.toml"), config).map_err(|e| e.to_string())?;
        let mut c = Command::new("containerd");
        c.arg("--config").arg(s.p("config.toml"));
        let daemon = Daemon::spawn("containerd", c, &s.p("containerd.log"))?;
        let ctrd = Containerd {
            _daemon: daemon,
            sock,
        };
        let up = eventually(Duration::from_secs(20), || {
            run(ctrd.cmd(&["version"]), T).ok().map(drop)
        });
        if let Err(e) = up {
            let log = std::fs::read_to_string(s.p("containerd.log")).unwrap_or_default();
            return Err(format!(
                "containerd did not come up: {e}; log tail: {}",
                tail(&log, 5)
            ));
        }
        Ok(ctrd)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ctr");
        c.args(["-a", &self.sock, "-n", "hulltest"]).args(args);
        c
    }
    fn argv(&self, args: &[&str]) -> Vec<String> {
        ["ctr", "-a", &self.sock, "-n", "hulltest"]
            .iter()
            .map(|s| s.to_string())
            .chain(args.iter().map(|s| s.to_string()))
            .collect()
    }
    fn run(&self, args: &[&str]) -> Result<String, String> {
        run(self.cmd(args), T).ok()
    }
    /// The STATUS column of `ctr task ls` for `id`.
    fn task_status(&self, id: &str) -> Result<String, String> {
        let out = self.run(&["task", "ls"])?;
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
            .ok_or_else(|| format!("task {id} not in `ctr task ls`: {out:?}"))
    }
    fn task_pid(&self, id: &str) -> Result<String, String> {
        let out = self.run(&["task", "ls"])?;
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
            .ok_or_else(|| format!("task {id} not in `ctr task ls`: {out:?}"))
    }
    fn remove(&self, id: &str) {
        let _ = run(self.cmd(&["task", "kill", "-s", "SIGKILL", id]), T);
        let _ = eventually(Duration::from_secs(5), || match self.task_status(id) {
            Ok(s) if s != "STOPPED" => Err(s),
            _ => Ok(()),
        });
        let _ = run(self.cmd(&["task", "delete", "-f", id]), T);
        let _ = run(self.cmd(&["container", "delete", id]), T);
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

fn containerd_scenario(
    m: &mut Matrix,
    ctr: &Containerd,
    s: &Scratch,
    rt: &'static str,
    runtime: &'static str,
) {
    // The runtime's state under our temp dir, not the shim's default /run/containerd/runc.
    let runc_root = s.s(&format!("runc-root-{rt}"));
    let base = [
        "--snapshotter",
        "native",
        "--runc-binary",
        runtime,
        "--runc-root",
        &runc_root,
    ];
    let with = |pre: &[&str], rest: &[&str]| -> Vec<String> {
        pre.iter()
            .chain(base.iter())
            .chain(rest.iter())
            .map(|s| s.to_string())
            .collect()
    };
    let id_rm = format!("rm-{rt}");
    m.step(rt, "run --rm echo", || {
        let a = with(&["run", "--rm"], &[IMG_CTR, &id_rm, "echo", "hi"]);
        let out = ctr.run(&a.iter().map(String::as_str).collect::<Vec<_>>())?;
        expect_contains(&out, "hi")
    });
    let id_bad = format!("bad-{rt}");
    m.step(rt, "missing command", || {
        let a = with(&["run", "--rm"], &[IMG_CTR, &id_bad, "/nonexistent"]);
        let out = run(
            ctr.cmd(&a.iter().map(String::as_str).collect::<Vec<_>>()),
            T,
        );
        if out.code == 0 {
            return Err("running /nonexistent succeeded".into());
        }
        expect_contains(&out.stderr, "/nonexistent")
    });
    ctr.remove(&id_bad);
    let id_t = format!("tty-{rt}");
    m.step(rt, "run -t (pty)", || {
        let a = with(
            &["run", "-t", "--rm"],
            &[IMG_CTR, &id_t, "sh", "-c", "tty; echo pty-ok"],
        );
        let out = on_pty(
            &ctr.argv(&a.iter().map(String::as_str).collect::<Vec<_>>()),
            &[],
            T,
        )
        .ok()?;
        expect_contains(&out, "/dev/pts/")?;
        expect_contains(&out, "pty-ok")
    });
    ctr.remove(&id_t);
    let id = format!("d-{rt}");
    let started = m.step(rt, "run -d", || {
        let a = with(
            &["run", "-d"],
            &[IMG_CTR, &id, "sh", "-c", "while :; do sleep 1; done"],
        );
        ctr.run(&a.iter().map(String::as_str).collect::<Vec<_>>())?;
        eventually(Duration::from_secs(10), || match ctr.task_status(&id)? {
            s if s == "RUNNING" => Ok(()),
            s => Err(format!("status {s}")),
        })?;
        // Proof the shim ran this runtime: only it reads its own state format.
        let mut c = Command::new(runtime);
        // The shim puts each namespace's containers in a directory of its own.
        c.args(["--root", &format!("{runc_root}/hulltest"), "state", &id]);
        expect_contains(&run(c, T).ok()?, "\"running\"")
    });
    if started {
        m.step(rt, "task exec", || {
            expect_contains(
                &ctr.run(&["task", "exec", "--exec-id", "e1", &id, "echo", "execd"])?,
                "execd",
            )
        });
        m.step(rt, "task pause/resume", || {
            ctr.run(&["task", "pause", &id])?;
            let st = ctr.task_status(&id)?;
            if st != "PAUSED" {
                return Err(format!("after pause: {st}"));
            }
            ctr.run(&["task", "resume", &id])?;
            let st = ctr.task_status(&id)?;
            if st != "RUNNING" {
                return Err(format!("after resume: {st}"));
            }
            Ok(())
        });
        m.step(rt, "task ps", || {
            let pid = ctr.task_pid(&id)?;
            expect_contains(&ctr.run(&["task", "ps", &id])?, &pid)
        });
        m.step(rt, "task metrics", || {
            let out = ctr.run(&["task", "metrics", &id])?;
            expect_contains(&out, "memory")
        });
        m.step(rt, "task kill", || {
            ctr.run(&["task", "kill", "-s", "SIGKILL", &id])?;
            eventually(Duration::from_secs(10), || match ctr.task_status(&id)? {
                s if s == "STOPPED" => Ok(()),
                s => Err(format!("status after kill: {s}")),
            })
        });
        m.step(rt, "kill stopped task", || {
            // The shim turns the runtime's "container not running" into "not found".
            let out = run(ctr.cmd(&["task", "kill", "-s", "SIGKILL", &id]), T);
            if out.code == 0 {
                return Err("killing a stopped task succeeded".into());
            }
            expect_contains(&out.stderr, "not found")
        });
        m.step(rt, "task delete", || {
            ctr.run(&["task", "delete", &id])?;
            ctr.run(&["container", "delete", &id])?;
            match ctr.task_status(&id) {
                Ok(s) => Err(format!("task still listed: {s}")),
                Err(_) => Ok(()),
            }
        });
    }
    ctr.remove(&id);
    ctr.remove(&id_rm);
}

#[test]
fn containerd_drives_hull_like_runc() {
    if !require(&["containerd", "ctr", "containerd-shim-runc-v2", "script"]) {
        return;
    }
    let _g = lock();
    let s = Scratch::new("ctrd");
    let ctr = match Containerd::start(&s) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("SKIP: {e}");
            return;
        }
    };
    let mut m = Matrix::new("containerd");
    let archive = image_archive().display().to_string();
    let imported = m.step("hull", "images import", || {
        ctr.run(&["images", "import", "--snapshotter", "native", &archive])
            .map(drop)
    });
    if imported {
        for (rt, path) in runtimes() {
            containerd_scenario(&mut m, &ctr, &s, rt, path);
        }
    }
    drop(ctr);
    m.finish();
}

// ---------------------------------------------------------------------------------------------
// dockerd

struct Docker<'a> {
    s: &'a Scratch,
}

impl Docker<'_> {
    fn cmd(&self, args: &[&str]) -> Command {
        // Debian's 20.10 client, matching the daemon, whatever else is first on PATH.
        let bin = if Path::new("/usr/bin/docker").exists() {
            "/usr/bin/docker"
        } else {
            "docker"
        };
        let mut c = Command::new(bin);
        c.env("DOCKER_CONFIG", self.s.p("cli"))
            .args(["-H", &format!("unix://{}", self.s.s("docker.sock"))])
            .args(args);
        c
    }
    fn run(&self, args: &[&str]) -> Result<String, String> {
        run(self.cmd(args), T).ok()
    }
}

/// Empty cgroup directories a daemon made for its containers; removed (if empty) on drop.
struct RmdirOnDrop(Vec<PathBuf>);

impl Drop for RmdirOnDrop {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_dir(p);
        }
    }
}

/// A bridge this test made; deleted on drop.
struct Bridge(String);

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

fn docker_scenario(m: &mut Matrix, d: &Docker, rt: &'static str, net_octet: u8) {
    let img = "hullbox:test";
    m.step(rt, "run --rm", || {
        expect_contains(
            &d.run(&["run", "--runtime", rt, "--rm", img, "echo", "hi"])?,
            "hi",
        )
    });
    let name = format!("d-{rt}");
    let script = "echo started; trap 'exit 0' TERM; while :; do sleep 1; done";
    if m.step(rt, "run -d", || {
        d.run(&[
            "run",
            "-d",
            "--runtime",
            rt,
            "--name",
            &name,
            img,
            "sh",
            "-c",
            script,
        ])
        .map(drop)
    }) {
        m.step(rt, "exec", || {
            expect_contains(&d.run(&["exec", &name, "echo", "execd"])?, "execd")
        });
        m.step(rt, "logs", || {
            eventually(Duration::from_secs(10), || {
                expect_contains(&d.run(&["logs", &name])?, "started")
            })
        });
        m.step(rt, "stop", || {
            d.run(&["stop", "-t", "10", &name])?;
            let st = d.run(&[
                "inspect",
                "-f",
                "{{.State.Status}} {{.State.ExitCode}}",
                &name,
            ])?;
            if st.trim() != "exited 0" {
                return Err(format!("after stop: {} (want exited 0)", st.trim()));
            }
            Ok(())
        });
    }
    let _ = d.run(&["rm", "-f", &name]);
    let web = format!("web-{rt}");
    m.step(rt, "-p httpd", || {
        let port = free_port();
        let publish = format!("127.0.0.1:{port}:80");
        d.run(&[
            "run",
            "-d",
            "--runtime",
            rt,
            "--name",
            &web,
            "-p",
            &publish,
            img,
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/var/www",
        ])?;
        http_get(port)
    });
    let _ = d.run(&["rm", "-f", &web]);
    let net = format!("hullnet-{rt}");
    let srv = format!("srv-{rt}");
    m.step(rt, "user network dns", || {
        let subnet = format!("10.214.{net_octet}.0/24");
        d.run(&["network", "create", "--subnet", &subnet, &net])?;
        d.run(&[
            "run",
            "-d",
            "--runtime",
            rt,
            "--network",
            &net,
            "--name",
            &srv,
            img,
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/var/www",
        ])?;
        let url = format!("http://{srv}/");
        eventually(Duration::from_secs(10), || {
            let out = d.run(&[
                "run",
                "--rm",
                "--runtime",
                rt,
                "--network",
                &net,
                img,
                "wget",
                "-qO-",
                &url,
            ])?;
            expect_contains(&out, PAGE)
        })
    });
    let _ = d.run(&["rm", "-f", &srv]);
    let _ = d.run(&["network", "rm", &net]);
}

#[test]
fn dockerd_drives_hull_like_runc() {
    if !require(&["dockerd", "ip"]) {
        return;
    }
    let _g = lock();
    let s = Scratch::new("docker");
    // dockerd's default cgroup parent; removed at the end unless it was there before.
    let cgroup_parents: Vec<PathBuf> = std::fs::read_dir("/sys/fs/cgroup")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path().join("docker"))
                .filter(|p| !p.exists())
                .collect()
        })
        .unwrap_or_default();
    let _cgroups = RmdirOnDrop(cgroup_parents);
    // A bridge of our own on a private subnet, so the host's docker0 (if any) is not touched.
    let octet = (std::process::id() % 200 + 20) as u8;
    let bridge = Bridge(format!("hullbr{}", std::process::id() % 100_000));
    let made = Command::new("ip")
        .args(["link", "add", "name", &bridge.0, "type", "bridge"])
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("SKIP: cannot create bridge {}", bridge.0);
        return;
    }
    let addr = format!("10.213.{octet}.1/24");
    let _ = Command::new("ip")
        .args(["addr", "add", &addr, "dev", &bridge.0])
        .status();
    let _ = Command::new("ip")
        .args(["link", "set", &bridge.0, "up"])
        .status();
    std::fs::write(s.p("daemon.json"), "{}").expect("daemon.json");
    let mut c = Command::new("dockerd");
    c.args(["--config-file", &s.s("daemon.json")])
        .args(["--data-root", &s.s("data"), "--exec-root", &s.s("exec")])
        .args([
            "--pidfile",
            &s.s("docker.pid"),
            "-H",
            &format!("unix://{}", s.s("docker.sock")),
        ])
        .args(["--bridge", &bridge.0, "--storage-driver", "vfs"])
        // No host firewall rules or forwarding sysctl: -p goes through docker-proxy on 127.0.0.1.
        .args(["--iptables=false", "--ip-forward=false", "--ip-masq=false"])
        .args([
            "--exec-opt",
            "native.cgroupdriver=cgroupfs",
            "--add-runtime",
            &format!("hull={HULL}"),
        ]);
    let daemon = match Daemon::spawn("dockerd", c, &s.p("dockerd.log")) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("SKIP: {e}");
            return;
        }
    };
    let d = Docker { s: &s };
    if let Err(e) = eventually(Duration::from_secs(30), || d.run(&["version"]).map(drop)) {
        let log = std::fs::read_to_string(s.p("dockerd.log")).unwrap_or_default();
        eprintln!(
            "SKIP: dockerd did not come up: {e}; log tail: {}",
            tail(&log, 5)
        );
        return;
    }
    let mut m = Matrix::new("docker");
    let archive = image_archive().display().to_string();
    if m.step("hull", "load", || {
        d.run(&["load", "-i", &archive]).map(drop)
    }) {
        for (i, (rt, _)) in runtimes().into_iter().enumerate() {
            docker_scenario(&mut m, &d, rt, octet.wrapping_add(i as u8));
        }
    }
    // Containers first, then user networks (their br-* bridges), then the daemon.
    if let Ok(ids) = d.run(&["ps", "-aq"]) {
        for id in ids.split_whitespace() {
            let _ = d.run(&["rm", "-f", id]);
        }
    }
    let _ = d.run(&["network", "prune", "-f"]);
    drop(daemon);
    drop(bridge);
    m.finish();
}
