//! The dockerd scenario: every step with hull and with runc.

use super::*;

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
