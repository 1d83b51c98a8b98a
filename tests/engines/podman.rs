//! The podman scenario: every step with hull and with runc.

use super::*;

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
