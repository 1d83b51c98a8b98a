//! Network modes and flags, attach and log rotation, signals to a foreground run, stats, and
//! run flags docker refuses: each once with hull and once with runc.

use super::*;

fn network_modes_and_flags(rt: Rt, idx: u32) {
    let Some(mut e) = env(idx, rt) else { return };
    // none: its own namespace with only loopback, up.
    let out = e.ok(&e.run_args(&["--rm", "--network", "none", "busybox", "ip", "-o", "addr"]));
    assert!(out.contains("127.0.0.1") && !out.contains("eth0"), "{out}");
    // host: the host's interfaces, so our bridge is visible.
    e.ok(&e.run_args(&[
        "-d", "--name", "api", "busybox", "httpd", "-f", "-h", "/var/www",
    ]));
    let out = e.ok(&e.run_args(&["--rm", "--network", "host", "busybox", "ip", "-o", "link"]));
    assert!(out.contains(&e.bridge()), "{out}");
    // container:<name> shares api's namespace: its httpd is on 127.0.0.1.
    let out = e.ok(&e.run_args(&[
        "--rm",
        "--network",
        "container:api",
        "busybox",
        "wget",
        "-qO-",
        "http://127.0.0.1/",
    ]));
    assert!(out.contains("hello from busybox httpd"), "{out}");
    // connect/disconnect a running container to a user network.
    let (net, br, subnet) = e.user_net(1);
    let opt = format!("bridge={br}");
    e.ok(&["network", "create", "--subnet", &subnet, "-o", &opt, &net]);
    e.ok(&["network", "connect", &net, "api"]);
    let out = e.ok(&e.run_args(&[
        "--rm",
        "--network",
        &net,
        "busybox",
        "wget",
        "-qO-",
        "http://api/",
    ]));
    assert!(out.contains("hello from busybox httpd"), "{out}");
    e.ok(&["network", "disconnect", &net, "api"]);
    let o = e.run(&e.run_args(&[
        "--rm",
        "--network",
        &net,
        "busybox",
        "wget",
        "-T",
        "2",
        "-qO-",
        "http://api/",
    ]));
    assert!(!o.status.success(), "api still reachable after disconnect");
    e.ok(&["rm", "-f", "api"]);
    e.ok(&["network", "rm", &net]);
    // Read-only rootfs, tmpfs mounts, limits, capabilities, env file.
    let out = e.ok(&e.run_args(&[
        "--rm",
        "--read-only",
        "--tmpfs",
        "/scratch",
        "--mount",
        "type=tmpfs,target=/s2",
        "busybox",
        "sh",
        "-c",
        "touch /x 2>/dev/null && echo rw; touch /scratch/a /s2/b && echo tmpfs-ok",
    ]));
    assert_eq!(out, "tmpfs-ok\n");
    let out = e.ok(&e.run_args(&["--rm", "--pids-limit", "50", "--ulimit", "nofile=100:200", "--cap-drop", "NET_RAW", "busybox", "sh", "-c", "ulimit -n; cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || echo 50; grep CapEff /proc/self/status"]));
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "100");
    assert_eq!(l[1], "50");
    let capeff =
        u64::from_str_radix(l[2].split_whitespace().last().expect("caps"), 16).expect("hex");
    assert_eq!(capeff & (1 << 13), 0, "CAP_NET_RAW not dropped: {out}");
    assert_ne!(capeff & (1 << 0), 0, "CAP_CHOWN missing: {out}");
    let envf = e.root.join("envfile");
    std::fs::write(&envf, "X=1\n# comment\nY=two\n").expect("env file");
    let out = e.ok(&e.run_args(&[
        "--rm",
        "--env-file",
        envf.to_str().expect("utf8"),
        "busybox",
        "sh",
        "-c",
        "echo $X $Y",
    ]));
    assert_eq!(out, "1 two\n");
    if std::path::Path::new("/usr/bin/tini-static").exists() {
        let out = e.ok(&e.run_args(&["--rm", "--init", "busybox", "ps", "-o", "pid,args"]));
        assert!(
            out.lines()
                .nth(1)
                .is_some_and(|l| l.contains("1 /sbin/docker-init")),
            "{out}"
        );
    } else {
        eprintln!("SKIP: --init: /usr/bin/tini-static not installed (hack/deps.sh)");
    }
}
both!(network_modes_and_flags, 13);

fn attach_and_log_rotation(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    e.ok(&e.run_args(&[
        "-d",
        "-i",
        "--name",
        "att",
        "busybox",
        "sh",
        "-c",
        "while read l; do echo got:$l; done; exit 4",
    ]));
    let mut child = e
        .cmd(&["attach", "att"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("attach");
    {
        use std::io::Write;
        let mut i = child.stdin.take().expect("stdin");
        i.write_all(b"one\ntwo\n").expect("write");
    }
    let o = child.wait_with_output().expect("attach");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "got:one\ngot:two\n");
    assert_eq!(o.status.code(), Some(4));
    // stdin of `run -i` reaches the container.
    let mut child = e
        .cmd(&e.run_args(&["-i", "--rm", "busybox", "cat"]))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run -i");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"piped in\n")
            .expect("write");
    }
    assert_eq!(
        String::from_utf8_lossy(&child.wait_with_output().expect("run").stdout),
        "piped in\n"
    );
    // json-file rotation: max-size per file, max-file files kept.
    e.ok(&e.run_args(&[
        "--name",
        "rot",
        "--log-opt",
        "max-size=300",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        "for i in $(seq 1 50); do echo line-$i; done",
    ]));
    let path = e.inspect("rot", "{{.LogPath}}");
    let live = std::fs::metadata(&path).expect("log").len();
    let old = std::fs::metadata(format!("{path}.1"))
        .expect("rotated log")
        .len();
    assert!(live <= 300 && old <= 300, "{live} {old}");
    assert!(!std::path::Path::new(&format!("{path}.2")).exists());
    let logs = e.ok(&["logs", "rot"]);
    assert!(
        logs.ends_with("line-50\n") && !logs.contains("line-1\n"),
        "{logs}"
    );
}
both!(attach_and_log_rotation, 14);

fn signals_reach_foreground_run(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    let mut child = e
        .cmd(&e.run_args(&[
            "--rm",
            "busybox",
            "sh",
            "-c",
            "trap 'echo got-int; exit 9' INT; echo ready; while true; do sleep 0.1; done",
        ]))
        .stdout(Stdio::piped())
        .spawn()
        .expect("run");
    let mut out = child.stdout.take().expect("stdout");
    let mut buf = [0u8; 6];
    out.read_exact(&mut buf).expect("ready");
    assert_eq!(&buf, b"ready\n");
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("kill");
    let mut rest = String::new();
    out.read_to_string(&mut rest).expect("read");
    let st = child.wait().expect("wait");
    assert_eq!(rest, "got-int\n");
    assert_eq!(st.code(), Some(9));
    assert_eq!(e.container_count(), 0);
    // rm -f racing the monitor's own --rm cleanup is not an error.
    e.ok(&e.run_args(&["-d", "--rm", "--name", "racer", "busybox", "sleep", "300"]));
    e.ok(&["rm", "-f", "racer"]);
    assert_eq!(e.container_count(), 0);
}
both!(signals_reach_foreground_run, 15);

/// `stats` reads usage through the runtime (`<runtime> events --stats`),
/// not cgroupfs: a busy container shows CPU and memory above zero.
fn stats_show_usage(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    e.ok(&e.run_args(&[
        "-d",
        "--network",
        "none",
        "--name",
        "busy",
        "busybox",
        "sh",
        "-c",
        "x=; while :; do x=$x.; [ ${#x} -gt 20000 ] && x=; done",
    ]));
    // Let the loop run before sampling.
    std::thread::sleep(Duration::from_millis(300));
    let out = e.ok(&["stats", "--no-stream", "busy"]);
    let row = out
        .lines()
        .find(|l| l.contains("busy"))
        .unwrap_or_else(|| panic!("no row for busy: {out}"));
    let f: Vec<&str> = row.split_whitespace().collect();
    let cpu: f64 = f[2].trim_end_matches('%').parse().expect("cpu %");
    let mem: f64 = f[3]
        .trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .parse()
        .unwrap_or_else(|_| panic!("mem usage in {row}"));
    let pids: u64 = f.last().expect("pids").parse().expect("pids");
    assert!(cpu > 1.0, "CPU % not above zero: {row}");
    assert!(mem > 0.0, "memory not above zero: {row}");
    assert!(pids >= 1, "no pids: {row}");
    e.ok(&["rm", "-f", "busy"]);
}
both!(stats_show_usage, 16);

/// Input docker refuses: one error line, and no container written.
fn refused_run_flags(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    e.err(&e.run_args(&["--cpus", "-1", "busybox", "true"]), "--cpus");
    e.err(&e.run_args(&["-e", "=value", "busybox", "true"]), "=value");
    e.err(
        &e.run_args(&["--network-alias", "web", "busybox", "true"]),
        "--network-alias",
    );
    e.err(
        &["create", "--network-alias", "web", "busybox", "true"],
        "user-defined networks",
    );
    assert_eq!(e.container_count(), 0);
    let dirs = std::fs::read_dir(e.root.join("containers"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(dirs, 0, "a refused run left a container directory");
}
both!(refused_run_flags, 17);
