//! The containerd scenario: every step with hull and with runc.

use super::*;

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
