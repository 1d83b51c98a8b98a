//! Helpers for berth's container tests: a busybox image, one berth root
//! per test with its own bridge names and subnets, and a guard that
//! removes everything of that root and asserts nothing is left.

use sha2::{Digest as _, Sha256};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use super::{is_root, BERTH};

pub const HULL: &str = env!("CARGO_BIN_EXE_hull");

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Rt {
    Hull,
    Runc,
}

impl Rt {
    pub fn path(self) -> &'static str {
        match self {
            Rt::Hull => HULL,
            Rt::Runc => "runc",
        }
    }
}

/// A busybox rootfs tarball made once per test process with hack/mkrootfs.sh.
pub fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // Reused across runs; built under a per-process name and renamed in.
        let shared = tmp.join("berth-busybox-v1.tar");
        if shared.exists() {
            return shared;
        }
        let dir = tmp.join(format!("berth-bb-{}", std::process::id()));
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(&rootfs).expect("creating rootfs dir");
        let mk = Path::new(env!("CARGO_MANIFEST_DIR")).join("hack/mkrootfs.sh");
        let st = Command::new("sh")
            .arg(mk)
            .arg(&rootfs)
            .status()
            .expect("running mkrootfs.sh");
        assert!(st.success(), "hack/mkrootfs.sh failed");
        std::fs::write(
            rootfs.join("var/www/index.html"),
            "hello from busybox httpd\n",
        )
        .expect("index");
        let tar = dir.join("busybox.tar");
        let st = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .expect("running tar");
        assert!(st.success(), "tar failed");
        std::fs::rename(&tar, &shared).expect("publishing the busybox tar");
        let _ = std::fs::remove_dir_all(&dir);
        shared
    })
}

/// `both!(scenario, n)`: tests `scenario::hull` and `scenario::runc`, calling
/// `scenario(Rt, idx)` with idx 2n and 2n+1 (unique bridge names and subnets).
#[allow(unused_macros)]
macro_rules! both {
    ($name:ident, $idx:expr) => {
        mod $name {
            #[test]
            fn hull() {
                super::$name(super::Rt::Hull, $idx * 2);
            }
            #[test]
            fn runc() {
                super::$name(super::Rt::Runc, $idx * 2 + 1);
            }
        }
    };
}

pub struct Env {
    pub root: PathBuf,
    pub idx: u32,
    pub rt: Rt,
    pub bridges: Vec<String>,
    _dir: tempfile::TempDir,
}

/// None (after printing SKIP) when the test cannot run here.
pub fn env(idx: u32, rt: Rt) -> Option<Env> {
    if !is_root() {
        eprintln!("SKIP: container tests need root");
        return None;
    }
    if rt == Rt::Runc && !super::have("runc") {
        eprintln!("SKIP: runc not installed (hack/deps.sh)");
        return None;
    }
    if !super::have("nft") {
        eprintln!("SKIP: nft not installed (hack/deps.sh)");
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("berth-ct-")
        .tempdir()
        .expect("tempdir");
    let root = std::fs::canonicalize(dir.path()).expect("canonical root");
    let mut e = Env {
        root,
        idx,
        rt,
        bridges: vec![],
        _dir: dir,
    };
    e.bridges.push(e.bridge());
    e.ok(&[
        "import",
        busybox_tar().to_str().expect("utf8"),
        "busybox:latest",
    ]);
    Some(e)
}

impl Env {
    pub fn bridge(&self) -> String {
        format!("bt{}{:02}", std::process::id() % 1000, self.idx)
    }
    pub fn subnet(&self) -> String {
        format!("10.213.{}.0/24", self.idx)
    }
    /// A user network's (name, bridge, subnet), registered for the leak check.
    pub fn user_net(&mut self, n: u32) -> (String, String, String) {
        let b = format!("bu{}{:02}{n}", std::process::id() % 1000, self.idx);
        self.bridges.push(b.clone());
        (
            format!("net{n}"),
            b,
            format!("10.213.{}.0/24", 100 + self.idx * 2 + n),
        )
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BERTH);
        c.arg("--root")
            .arg(&self.root)
            .args(args)
            .env("HOME", &self.root)
            .env("BERTH_BRIDGE", self.bridge())
            .env("BERTH_BRIDGE_SUBNET", self.subnet())
            // Unknown names stay unanswered rather than going to the host's resolvers.
            .env("BERTH_DNS_UPSTREAM", "none");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("running berth")
    }

    /// Runs berth with `input` on its stdin (then closed).
    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning berth");
        {
            let mut i = child.stdin.take().expect("stdin");
            let _ = i.write_all(input);
        }
        child.wait_with_output().expect("waiting for berth")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "berth {args:?} failed ({:?}): {}\nstdout: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn err(&self, args: &[&str], needle: &str) -> String {
        let o = self.run(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(
            !o.status.success(),
            "berth {args:?} should fail: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        assert!(
            err.contains(needle),
            "berth {args:?}: error {err:?} does not mention {needle:?}"
        );
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "error should be one line: {err:?}"
        );
        err
    }

    /// `run --runtime <rt> ARGS...`
    pub fn run_args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["run", "--runtime", self.rt.path()];
        v.extend_from_slice(args);
        v
    }

    pub fn inspect(&self, name: &str, fmt: &str) -> String {
        self.ok(&["inspect", "-f", fmt, name]).trim().to_string()
    }

    pub fn container_count(&self) -> usize {
        self.ok(&["ps", "-aq"]).lines().count()
    }

    pub fn nft_table(&self) -> String {
        let h = Sha256::digest(self.root.to_string_lossy().as_bytes());
        format!("berth_{}", &hex::encode(h)[..8])
    }

    /// Everything of this root that is still on the host.
    pub fn leftovers(&self, ids: &[String]) -> Vec<String> {
        let mut left = vec![];
        for b in &self.bridges {
            if Path::new("/sys/class/net").join(b).exists() {
                left.push(format!("bridge {b}"));
            }
        }
        for id in ids {
            for i in 0..3 {
                let v = format!("vb{}{i}", &id[..9]);
                if Path::new("/sys/class/net").join(&v).exists() {
                    left.push(format!("veth {v}"));
                }
            }
            for ctl in ["memory", "pids", "cpu"] {
                let p = format!("/sys/fs/cgroup/{ctl}/berth/{id}");
                if Path::new(&p).exists() {
                    left.push(format!("cgroup {p}"));
                }
            }
        }
        let t = self.nft_table();
        let st = Command::new("nft")
            .args(["list", "table", "ip", &t])
            .output();
        if st.map(|o| o.status.success()).unwrap_or(false) {
            left.push(format!("nft table {t}"));
        }
        let r = self.root.to_string_lossy().into_owned();
        if let Ok(mi) = std::fs::read_to_string("/proc/self/mountinfo") {
            for l in mi.lines().filter(|l| l.contains(&r)) {
                left.push(format!("mount {l}"));
            }
        }
        if let Ok(rd) = std::fs::read_dir(self.root.join("netns")) {
            for e in rd.flatten() {
                left.push(format!("netns {}", e.path().display()));
            }
        }
        if let Ok(rd) = std::fs::read_dir("/proc") {
            for e in rd.flatten() {
                if let Ok(cl) = std::fs::read(e.path().join("cmdline")) {
                    let cl = String::from_utf8_lossy(&cl).replace('\0', " ");
                    if cl.contains(&r) {
                        left.push(format!("process {}: {cl}", e.file_name().to_string_lossy()));
                    }
                }
            }
        }
        left
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let ids: Vec<String> = self
            .cmd(&["ps", "-aq", "--no-trunc"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        for id in &ids {
            let _ = self.cmd(&["rm", "-f", "-v", id]).output();
        }
        let _ = self.cmd(&["network", "prune", "-f"]).output();
        let _ = self.cmd(&["volume", "prune", "-a", "-f"]).output();
        let left = self.leftovers(&ids);
        // Best effort for whatever a failing test left, before asserting.
        for l in &left {
            if let Some(m) = l.strip_prefix("mount ") {
                if let Some(p) = m.split(' ').nth(4) {
                    let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
                }
            }
        }
        if !left.is_empty() && !std::thread::panicking() {
            panic!("berth left things behind:\n{}", left.join("\n"));
        }
    }
}

/// False only when hull says it has no such subcommand (exec, pause, ...
/// are being added to hull); any other failure is the test's to report.
pub fn hull_has(sub: &str) -> bool {
    Command::new(HULL)
        .args([sub, "--help"])
        .output()
        .map(|o| !String::from_utf8_lossy(&o.stderr).contains("unrecognized subcommand"))
        .unwrap_or(false)
}

/// GET / over TCP from the host, retried until the server answers.
pub fn http_get(port: u16) -> String {
    use std::io::{Read, Write};
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = (|| -> std::io::Result<String> {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
            s.set_read_timeout(Some(std::time::Duration::from_secs(3)))?;
            s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")?;
            let mut out = String::new();
            s.read_to_string(&mut out)?;
            Ok(out)
        })();
        match r {
            Ok(s) if s.contains("200") => return s,
            _ if std::time::Instant::now() > end => {
                panic!("no HTTP answer on 127.0.0.1:{port}: {r:?}")
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
}
