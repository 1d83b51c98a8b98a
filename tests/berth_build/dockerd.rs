//! The round trip into docker: a built image saved with `berth save`, loaded by a private
//! dockerd and run there gives what `berth run` gives (ENTRYPOINT + CMD, ENV, WORKDIR, USER,
//! COPY's mtimes and hard links).
//!
//! The dockerd is this test's own, as in tests/engines/dockerd.rs: every path (data-root,
//! exec-root, socket, pidfile) in a temp dir, no bridge (`--bridge none`), no firewall or sysctl
//! changes, its own cgroup parent. On drop it is stopped by pid (SIGTERM, then SIGKILL), then
//! what it started (its containerd and shims, whose command lines name the temp dir) is
//! killed by pid, mounts under the temp dir are detached and the cgroup parent removed.

use super::berth_common::ctr::{env, Rt};
use super::berth_common::have;
use super::leftovers::{pids_mentioning, unmount_under};
use super::{build_ok, context, run_image, IDX};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Dockerd {
    child: Child,
    dir: tempfile::TempDir,
    cgroup_parent: String,
}

impl Dockerd {
    /// None (after a SKIP line) when dockerd is missing or does not come up here.
    fn start() -> Option<Dockerd> {
        if !have("dockerd") {
            eprintln!("SKIP: dockerd not installed (hack/deps.sh)");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-dockerd-")
            .tempdir()
            .expect("tempdir");
        let p = |rel: &str| dir.path().join(rel).display().to_string();
        std::fs::write(dir.path().join("daemon.json"), "{}").expect("daemon.json");
        let log = std::fs::File::create(dir.path().join("dockerd.log")).expect("log");
        let cgroup_parent = format!("berth-build-test-{}", std::process::id());
        let child = Command::new("dockerd")
            .args(["--config-file", &p("daemon.json")])
            .args(["--data-root", &p("data"), "--exec-root", &p("exec")])
            .args(["--pidfile", &p("docker.pid")])
            .args(["-H", &format!("unix://{}", p("docker.sock"))])
            .args(["--bridge", "none", "--storage-driver", "vfs"])
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
            ])
            .args(["--ip-masq=false", "--cgroup-parent", &cgroup_parent])
            .args(["--exec-opt", "native.cgroupdriver=cgroupfs"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .process_group(0)
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(err) => {
                eprintln!("SKIP: cannot start dockerd: {err}");
                return None;
            }
        };
        let mut d = Dockerd {
            child,
            dir,
            cgroup_parent,
        };
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            if d.docker(&["version"]).status.success() {
                return Some(d);
            }
            let exited = matches!(d.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() > end {
                let log =
                    std::fs::read_to_string(d.dir.path().join("dockerd.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                eprintln!("SKIP: dockerd did not come up here; log tail: {tail:?}");
                return None;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn docker(&self, args: &[&str]) -> Output {
        // Debian's client, matching its daemon, whatever else is first on PATH.
        let bin = if Path::new("/usr/bin/docker").exists() {
            "/usr/bin/docker"
        } else {
            "docker"
        };
        let sock = format!("unix://{}", self.dir.path().join("docker.sock").display());
        Command::new(bin)
            .env("DOCKER_CONFIG", self.dir.path().join("cli"))
            .args(["-H", &sock])
            .args(args)
            .output()
            .expect("running docker")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert!(
            o.status.success(),
            "docker {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let ids = self.docker(&["ps", "-aq"]).stdout;
        for id in String::from_utf8_lossy(&ids).split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        let pid = self.child.id() as i32;
        // SAFETY: a signal to the dockerd this test spawned and has not reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(100));
        }
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: as above; still our unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = self.child.wait();
        }
        for p in pids_mentioning(&self.dir.path().to_string_lossy()) {
            // SAFETY: a process our dockerd started: its command line names our temp dir.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(200));
        unmount_under(self.dir.path());
        remove_cgroup_parent(&self.cgroup_parent);
    }
}

/// Removes the (empty) cgroup directories named `name` dockerd made under each hierarchy.
fn remove_cgroup_parent(name: &str) {
    let mut dirs: Vec<PathBuf> = vec![Path::new("/sys/fs/cgroup").join(name)];
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        dirs.extend(rd.flatten().map(|e| e.path().join(name)));
    }
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
}

const DOCKERFILE: &str = r#"FROM busybox
ENV PATH=/usr/local/bin:/usr/bin:/bin GREETING="hello from env"
COPY --chmod=0755 show.sh /usr/local/bin/show
COPY meta/ /meta/
USER nobody
WORKDIR /home/nobody/w
ENTRYPOINT ["show"]
CMD ["default-arg"]
"#;

const SHOW: &str = r#"#!/bin/sh
echo "user=$(id -u):$(id -g) pwd=$(pwd) greeting=$GREETING args=$*"
stat -c '%n %Y %h %u:%g %a' /meta/f /meta/hl /home/nobody/w
"#;

#[test]
fn saved_image_runs_the_same_in_docker() {
    let Some(e) = env(IDX + 14, Rt::Hull) else {
        return;
    };
    let ctx = context(&[
        ("Dockerfile", DOCKERFILE),
        ("show.sh", SHOW),
        ("meta/f", "f\n"),
    ]);
    let meta = ctx.path().join("meta");
    std::fs::hard_link(meta.join("f"), meta.join("hl")).expect("hard link");
    std::fs::File::open(meta.join("f"))
        .and_then(|f| f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_650_000_000)))
        .expect("mtime");
    build_ok(&e, ctx.path(), &["-t", "roundtrip:v1"]);
    let berth_run = |extra: &[&str]| run_image(&e, &[&["roundtrip:v1"][..], extra].concat());
    let by_berth = berth_run(&[]);
    assert!(
        by_berth.starts_with(
            "user=65534:65534 pwd=/home/nobody/w greeting=hello from env args=default-arg\n"
        ),
        "{by_berth}"
    );
    assert!(
        by_berth.contains("/meta/f 1650000000 2 0:0 644"),
        "{by_berth}"
    );
    let by_berth_args = berth_run(&["one", "two"]);
    assert!(by_berth_args.contains("args=one two"), "{by_berth_args}");

    let Some(d) = Dockerd::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let archive = dir.path().join("roundtrip.tar");
    let a = archive.to_str().expect("utf8");
    e.ok(&["save", "-o", a, "roundtrip:v1"]);
    let loaded = d.ok(&["load", "-i", a]);
    assert!(loaded.contains("roundtrip:v1"), "{loaded}");
    let docker_run = |extra: &[&str]| {
        let mut args = vec!["run", "--rm", "--network", "none", "roundtrip:v1"];
        args.extend_from_slice(extra);
        d.ok(&args)
    };
    assert_eq!(
        docker_run(&[]),
        by_berth,
        "same output with the image's CMD"
    );
    assert_eq!(
        docker_run(&["one", "two"]),
        by_berth_args,
        "same output with CMD replaced"
    );
    let cfg = d.ok(&[
        "image",
        "inspect",
        "-f",
        "{{.Config.User}} {{.Config.WorkingDir}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}",
        "roundtrip:v1",
    ]);
    assert_eq!(
        cfg.trim(),
        r#"nobody /home/nobody/w ["show"] ["default-arg"]"#
    );
}
