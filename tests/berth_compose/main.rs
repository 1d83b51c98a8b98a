//! `berth compose` end to end, as root, with real images: bad files refused with one line and
//! nothing made; a redis + worker app (replicas, scale, restart, profiles, .env, two -f files,
//! idempotent up); the two-tier MariaDB + PHP app (health, named volume, published port); the
//! network resolver's forwarding to `dns:`/`--dns`, up right after down, a fixed address on
//! every network, `up --abort-on-container-exit`/`--exit-code-from`.

#[path = "../berth_common/mod.rs"]
mod berth_common;

mod abort;
mod bad_files;
mod commands;
mod dns;
mod dns_server;
mod fixed_ips;
mod hostconfig;
mod redis_worker;
mod two_tier;

use berth_common::ctr::{env, Env, Rt};
use std::path::{Path, PathBuf};
use std::process::Output;

/// A compose project in its own directory, run against one test's berth root.
pub struct Proj {
    pub e: Env,
    pub dir: PathBuf,
    pub name: String,
}

/// None (SKIP printed) when containers cannot run here. `idx` makes bridges and subnets unique
/// among this binary's tests (10.217.<idx>.0/24, bridge `bc<pid><idx>`).
pub fn project(idx: u32, name: &str) -> Option<Proj> {
    let e = env(100 + idx, Rt::Hull)?;
    let dir = e.root.join("project");
    std::fs::create_dir_all(&dir).expect("project dir");
    let mut p = Proj {
        e,
        dir,
        name: format!("{name}{}", std::process::id() % 10000),
    };
    p.e.bridges.push(p.bridge());
    Some(p)
}

impl Proj {
    /// The project network's bridge name (set through driver_opts so the leak check sees it).
    pub fn bridge(&self) -> String {
        format!("bc{}{:02}", std::process::id() % 1000, self.e.idx - 100)
    }

    /// The `networks:` section every test file uses: its own subnet and bridge.
    pub fn networks_yaml(&self) -> String {
        format!(
            "networks:\n  default:\n    driver_opts:\n      com.docker.network.bridge.name: {}\n    ipam:\n      config:\n        - subnet: 10.217.{}.0/24\n",
            self.bridge(),
            self.e.idx - 100
        )
    }

    pub fn write(&self, file: &str, text: &str) {
        let p = self.dir.join(file);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(p, text).expect("writing a project file");
    }

    pub fn run(&self, args: &[&str]) -> Output {
        let mut full = vec!["compose", "-p", &self.name];
        full.extend_from_slice(args);
        self.e
            .cmd(&full)
            .current_dir(&self.dir)
            .output()
            .expect("running berth compose")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "berth compose {args:?} failed: {}\nstdout: {}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Fails with one line containing `needle`.
    pub fn err(&self, args: &[&str], needle: &str) -> String {
        let o = self.run(args);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(!o.status.success(), "berth compose {args:?} should fail");
        assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
        assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
        err
    }

    /// `inspect -f FMT` of a container.
    pub fn inspect(&self, container: &str, fmt: &str) -> String {
        self.e.inspect(container, fmt)
    }

    pub fn container(&self, service: &str, n: u32) -> String {
        format!("{}-{service}-{n}", self.name)
    }

    /// Names of all containers of this root.
    pub fn containers(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .e
            .ok(&["ps", "-a", "--format", "{{.Names}}"])
            .lines()
            .map(String::from)
            .collect();
        v.sort();
        v
    }

    /// Networks of this root beyond the built-in ones.
    pub fn networks(&self) -> Vec<String> {
        self.e
            .ok(&["network", "ls"])
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|n| !["bridge", "host", "none"].contains(n))
            .map(String::from)
            .collect()
    }

    pub fn volumes(&self) -> Vec<String> {
        self.e
            .ok(&["volume", "ls", "-q"])
            .lines()
            .map(String::from)
            .collect()
    }

    /// Nothing of the project left: no containers, networks, bridge; volumes only `keep`.
    pub fn assert_clean(&self, keep_volumes: &[&str]) {
        assert_eq!(self.containers(), Vec::<String>::new());
        assert_eq!(self.networks(), Vec::<String>::new());
        assert!(
            !Path::new("/sys/class/net").join(self.bridge()).exists(),
            "bridge {} left",
            self.bridge()
        );
        let want: Vec<String> = keep_volumes.iter().map(|v| v.to_string()).collect();
        assert_eq!(self.volumes(), want);
    }

    /// Polls `f` until it returns Some or `secs` pass.
    pub fn until<T>(&self, secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(std::time::Instant::now() < end, "timed out: {what}");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}
