//! berth's containers, networks and volumes end to end, as root, with a
//! busybox image, once with hull and once with runc.

#[path = "../berth_common/mod.rs"]
#[macro_use]
mod berth_common;

use berth_common::ctr::{env, http_get, hull_has, Rt};
use berth_common::free_port;
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn run_rm_echo(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    let out = e.ok(&e.run_args(&["--rm", "busybox", "echo", "hello", "world"]));
    assert_eq!(out, "hello world\n");
    let o = e.run(&e.run_args(&["--rm", "busybox", "sh", "-c", "echo err >&2; exit 3"]));
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&o.stderr), "err\n");
    let out = e.ok(&e.run_args(&[
        "--rm",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "busybox",
        "sh",
        "-c",
        "echo $FOO $(pwd) $(id -u)",
    ]));
    assert_eq!(out, "bar /tmp 65534\n");
    assert_eq!(e.container_count(), 0, "--rm left a container");
}
both!(run_rm_echo, 0);

fn httpd_published(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    let port = free_port();
    let p = format!("127.0.0.1:{port}:80");
    let id = e.ok(&e.run_args(&[
        "-d", "--name", "web", "-p", &p, "busybox", "httpd", "-f", "-h", "/var/www",
    ]));
    assert_eq!(id.trim().len(), 64);
    let body = http_get(port);
    assert!(body.contains("hello from busybox httpd"), "{body}");
    let ps = e.ok(&["ps"]);
    assert!(
        ps.contains(&format!("127.0.0.1:{port}->80/tcp")) && ps.contains("web"),
        "{ps}"
    );
    assert_eq!(
        e.ok(&["port", "web"]).trim(),
        format!("80/tcp -> 127.0.0.1:{port}")
    );
    let ip = e.inspect("web", "{{.NetworkSettings.IPAddress}}");
    assert!(ip.starts_with(&format!("10.213.{idx}.")), "{ip}");
    // The same host port again is refused and leaves nothing behind.
    let n = e.container_count();
    e.err(
        &e.run_args(&["-d", "-p", &p, "busybox", "true"]),
        &format!("127.0.0.1:{port}"),
    );
    assert_eq!(e.container_count(), n);
    e.ok(&["rm", "-f", "web"]);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port still forwarded after rm"
    );
}
both!(httpd_published, 1);

fn user_network_dns(rt: Rt, idx: u32) {
    let Some(mut e) = env(idx, rt) else { return };
    let (net, br, subnet) = e.user_net(0);
    let opt = format!("bridge={br}");
    e.ok(&["network", "create", "--subnet", &subnet, "-o", &opt, &net]);
    assert!(e.ok(&["network", "ls"]).contains(&net));
    e.err(
        &["network", "create", "--subnet", &subnet, "dup"],
        "overlaps",
    );
    // docker's wording and exit status for a name taken and a network that is not there.
    let o = e.run(&["network", "create", &net]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err,
        format!("Error: network with name {net} already exists\n")
    );
    let o = e.run(&["network", "rm", "nosuchnet"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err, "Error: network nosuchnet not found\n");
    e.ok(&e.run_args(&[
        "-d",
        "--name",
        "srv",
        "--network",
        &net,
        "--network-alias",
        "www",
        "busybox",
        "httpd",
        "-f",
        "-h",
        "/var/www",
    ]));
    e.ok(&e.run_args(&[
        "-d",
        "--name",
        "srv2",
        "--network",
        &net,
        "busybox",
        "httpd",
        "-f",
        "-h",
        "/var/www",
    ]));
    std::thread::sleep(Duration::from_millis(300));
    for target in ["srv", "www", "srv2"] {
        let url = format!("http://{target}/");
        let out = e.ok(&e.run_args(&["--rm", "--network", &net, "busybox", "wget", "-qO-", &url]));
        assert!(out.contains("hello from busybox httpd"), "{target}: {out}");
    }
    // A renamed container answers to its new name.
    e.ok(&["rename", "srv2", "srv3"]);
    let out = e.ok(&e.run_args(&[
        "--rm",
        "--network",
        &net,
        "busybox",
        "wget",
        "-qO-",
        "http://srv3/",
    ]));
    assert!(out.contains("hello from busybox httpd"), "srv3: {out}");
    let insp = e.ok(&["network", "inspect", &net]);
    assert!(insp.contains("srv"), "{insp}");
    let o = e.run(&["network", "rm", &net]);
    assert_eq!(o.status.code(), Some(1), "network rm of a network in use");
    let err = String::from_utf8_lossy(&o.stderr);
    let id = e.ok(&["network", "inspect", "-f", "{{.Id}}", &net]);
    assert_eq!(
        err,
        format!(
            "Error: error while removing network: network {net} id {} has active endpoints\n",
            id.trim()
        )
    );
    e.ok(&["rm", "-f", "srv", "srv3"]);
    e.ok(&["network", "rm", &net]);
    assert!(
        !std::path::Path::new("/sys/class/net").join(&br).exists(),
        "bridge {br} left"
    );
}
both!(user_network_dns, 2);

fn logs_follow(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    e.ok(&e.run_args(&[
        "-d",
        "--name",
        "l",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4; do echo line$i; sleep 0.3; done",
    ]));
    let mut child = e
        .cmd(&["logs", "-f", "l"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("logs -f");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("logs -f did not end with the container");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    assert_eq!(out, "line1\nline2\nline3\nline4\n");
    assert_eq!(e.ok(&["logs", "--tail", "1", "l"]), "line4\n");
    let ts = e.ok(&["logs", "--timestamps", "l"]);
    assert!(
        ts.lines().all(|l| l.contains('T') && l.contains("Z line")),
        "{ts}"
    );
    // docker's json-file format on disk.
    let path = e.inspect("l", "{{.LogPath}}");
    let first = std::fs::read_to_string(&path).expect("log file");
    let v: serde_json::Value =
        serde_json::from_str(first.lines().next().expect("a line")).expect("json");
    assert_eq!(v["log"], "line1\n");
    assert_eq!(v["stream"], "stdout");
    assert!(v["time"].as_str().is_some_and(|t| t.ends_with('Z')));
}
both!(logs_follow, 3);

fn exec_into_running(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    if rt == Rt::Hull && !hull_has("exec") {
        // berth says so in one line instead of hull's usage text.
        e.ok(&e.run_args(&["-d", "--name", "x", "busybox", "sleep", "300"]));
        e.err(&["exec", "x", "true"], "no exec subcommand");
        eprintln!("SKIP: hull exec: unrecognized subcommand (hull's exec is not in this tree yet)");
        return;
    }
    e.ok(&e.run_args(&["-d", "--name", "x", "-e", "A=1", "busybox", "sleep", "300"]));
    assert_eq!(e.ok(&["exec", "x", "sh", "-c", "echo $A"]), "1\n");
    assert_eq!(
        e.ok(&[
            "exec",
            "-e",
            "B=2",
            "-w",
            "/etc",
            "x",
            "sh",
            "-c",
            "echo $B $(pwd)"
        ]),
        "2 /etc\n"
    );
    assert_eq!(e.ok(&["exec", "-u", "nobody", "x", "id", "-u"]), "65534\n");
    let o = e.run(&["exec", "x", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    // Same pid namespace: sleep is pid 1.
    assert!(e.ok(&["exec", "x", "ps"]).contains("sleep 300"));
    let top = e.ok(&["top", "x"]);
    assert!(top.contains("sleep 300"), "{top}");
    // -d hands the process none of the caller's stdio: berth's piped stdout reaches EOF at
    // once (it would stay open for as long as the process ran) and carries nothing of it.
    let out = e.ok(&[
        "exec",
        "-d",
        "x",
        "sh",
        "-c",
        "echo out; echo err >&2; exec sleep 21",
    ]);
    assert_eq!(out, "");
    assert!(e.ok(&["exec", "x", "ps"]).contains("sleep 21"));
    // The runtime's failure reaches the caller as one line, not its raw log record; an exec
    // that could not start exits 126 (docker's code).
    let o = e.run(&["exec", "-d", "x", "nosuchcmd"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("executable file not found"),
        "{err}"
    );
    let o = e.run(&["exec", "x", "nosuchcmd"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(126), "{err}");
    assert!(
        err.contains("executable file not found") && !err.contains("level=error"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
both!(exec_into_running, 4);

fn volume_outlives_container(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    e.ok(&e.run_args(&[
        "--name",
        "w",
        "-v",
        "vol1:/data",
        "busybox",
        "sh",
        "-c",
        "echo persisted > /data/f",
    ]));
    // docker's refusal to remove a volume a (stopped) container mounts, naming its id.
    let id = e.ok(&["inspect", "-f", "{{.Id}}", "w"]);
    let o = e.run(&["volume", "rm", "vol1"]);
    assert_eq!(o.status.code(), Some(1), "volume rm of a volume in use");
    let err = String::from_utf8_lossy(&o.stderr);
    let want = format!("Error: remove vol1: volume is in use - [{}]\n", id.trim());
    assert_eq!(err, want);
    e.ok(&["rm", "w"]);
    let out = e.ok(&e.run_args(&["--rm", "-v", "vol1:/data", "busybox", "cat", "/data/f"]));
    assert_eq!(out, "persisted\n");
    // A named volume's first use copies the image content there.
    let out = e.ok(&e.run_args(&[
        "--rm",
        "-v",
        "etcvol:/etc",
        "busybox",
        "head",
        "-1",
        "/etc/passwd",
    ]));
    assert!(out.starts_with("root:"), "{out}");
    assert!(e.ok(&["volume", "ls", "-q"]).contains("etcvol"));
    // Bind mounts, read-only.
    let host = tempfile::tempdir().expect("tempdir");
    std::fs::write(host.path().join("in"), "from host\n").expect("write");
    let b = format!("{}:/mnt:ro", host.path().display());
    assert_eq!(
        e.ok(&e.run_args(&["--rm", "-v", &b, "busybox", "cat", "/mnt/in"])),
        "from host\n"
    );
    let o = e.run(&e.run_args(&["--rm", "-v", &b, "busybox", "touch", "/mnt/x"]));
    assert!(!o.status.success(), "ro bind mount was writable");
    let o = e.run(&["volume", "rm", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "Error: get nope: no such volume\n"
    );
    e.ok(&["volume", "rm", "vol1", "etcvol"]);
}
both!(volume_outlives_container, 5);

fn stop_term_then_kill(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    e.ok(&e.run_args(&[
        "-d",
        "--name",
        "t",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got-term; exit 0' TERM; while true; do sleep 0.1; done",
    ]));
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    e.ok(&["stop", "-t", "10", "t"]);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "SIGTERM was not delivered"
    );
    assert_eq!(e.inspect("t", "{{.State.ExitCode}}"), "0");
    assert!(e.ok(&["logs", "t"]).contains("got-term"));
    // pid 1 without a handler ignores SIGTERM: SIGKILL after the timeout.
    e.ok(&e.run_args(&["-d", "--name", "k", "busybox", "sleep", "300"]));
    let t0 = Instant::now();
    e.ok(&["stop", "-t", "1", "k"]);
    let el = t0.elapsed();
    assert!(
        el >= Duration::from_secs(1) && el < Duration::from_secs(6),
        "{el:?}"
    );
    assert_eq!(e.inspect("k", "{{.State.ExitCode}}"), "137");
    assert!(e.ok(&["ps", "-a"]).contains("Exited (137)"));
    assert_eq!(e.ok(&["ps", "-q"]).trim(), "");
    // restart brings it back.
    e.ok(&["restart", "-t", "1", "k"]);
    assert_eq!(e.inspect("k", "{{.State.Status}}"), "running");
    e.ok(&["kill", "k"]);
    assert_eq!(e.ok(&["wait", "k"]).trim(), "137");
}
both!(stop_term_then_kill, 6);

fn restart_on_failure(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    e.ok(&e.run_args(&[
        "-d",
        "--name",
        "r",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo run; exit 3",
    ]));
    assert_eq!(e.ok(&["wait", "r"]).trim(), "3");
    assert_eq!(e.inspect("r", "{{.RestartCount}}"), "2");
    assert_eq!(e.ok(&["logs", "r"]), "run\nrun\nrun\n");
    e.err(
        &e.run_args(&["--rm", "--restart", "always", "busybox", "true"]),
        "--rm",
    );
    // always: restarts until stopped by the user, and stop is final.
    e.ok(&e.run_args(&[
        "-d",
        "--name",
        "al",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2; exit 1",
    ]));
    let start = Instant::now();
    while e
        .inspect("al", "{{.RestartCount}}")
        .parse::<u32>()
        .unwrap_or(0)
        < 2
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "always did not restart"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    e.ok(&["stop", "-t", "1", "al"]);
    let n = e.inspect("al", "{{.RestartCount}}");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(e.inspect("al", "{{.State.Status}}"), "exited");
    assert_eq!(
        e.inspect("al", "{{.RestartCount}}"),
        n,
        "restarted after stop"
    );
}

both!(restart_on_failure, 7);

fn tty_through_pty(rt: Rt, idx: u32) {
    if !berth_common::have("script") {
        eprintln!("SKIP: script (util-linux) not installed");
        return;
    }
    let Some(e) = env(idx, rt) else { return };
    let cmdline = format!(
        "{} --root {} run -it --rm --runtime {} busybox sh -c 'tty; read x; echo got:$x; exit 5'",
        berth_common::BERTH,
        e.root.display(),
        rt.path()
    );
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &cmdline, "/dev/null"])
        .env("BERTH_BRIDGE", e.bridge())
        .env("BERTH_BRIDGE_SUBNET", e.subnet())
        .env("BERTH_DNS_UPSTREAM", "none")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = c.spawn().expect("script");
    {
        use std::io::Write;
        let mut i = child.stdin.take().expect("stdin");
        std::thread::sleep(Duration::from_millis(500));
        i.write_all(b"typed\n").expect("write");
        std::thread::sleep(Duration::from_millis(500));
    }
    let o = child.wait_with_output().expect("script");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("/dev/pts/"), "no pty: {out:?}");
    assert!(out.contains("got:typed"), "stdin not relayed: {out:?}");
    assert_eq!(o.status.code(), Some(5), "{out:?}");
}
both!(tty_through_pty, 8);

fn memory_oom(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    let o = e.run(&e.run_args(&[
        "--name",
        "hog",
        "--memory",
        "16m",
        "busybox",
        "tail",
        "/dev/zero",
    ]));
    assert_eq!(o.status.code(), Some(137));
    assert_eq!(e.inspect("hog", "{{.State.OOMKilled}}"), "true");
    assert_eq!(
        e.inspect("hog", "{{.HostConfig.Memory}}"),
        (16 << 20).to_string()
    );
}
both!(memory_oom, 9);

fn cp_and_diff(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    e.ok(&e.run_args(&[
        "--name",
        "d",
        "busybox",
        "sh",
        "-c",
        "mkdir /newdir && echo a > /newdir/f && echo extra >> /etc/group && rm /bin/vi",
    ]));
    let diff = e.ok(&["diff", "d"]);
    for want in [
        "A /newdir",
        "A /newdir/f",
        "C /etc",
        "C /etc/group",
        "C /bin",
        "D /bin/vi",
    ] {
        assert!(
            diff.lines().any(|l| l == want),
            "{want} missing from diff:\n{diff}"
        );
    }
    let host = tempfile::tempdir().expect("tempdir");
    let dst = host.path().join("group");
    e.ok(&["cp", "d:/etc/group", dst.to_str().expect("utf8")]);
    assert!(std::fs::read_to_string(&dst)
        .expect("copied")
        .ends_with("extra\n"));
    let src = host.path().join("tohost");
    std::fs::write(&src, "into container\n").expect("write");
    e.ok(&["cp", src.to_str().expect("utf8"), "d:/newdir/"]);
    assert!(e.ok(&["diff", "d"]).contains("A /newdir/tohost"));
    let back = host.path().join("back");
    e.ok(&["cp", "d:/newdir/tohost", back.to_str().expect("utf8")]);
    assert_eq!(
        std::fs::read_to_string(&back).expect("back"),
        "into container\n"
    );
    e.err(
        &["cp", "d:/nope", host.path().to_str().expect("utf8")],
        "/nope",
    );
}
both!(cp_and_diff, 10);

fn bad_input(rt: Rt, idx: u32) {
    let Some(mut e) = env(idx, rt) else { return };
    // Without --pull never, run would try to pull it (docker's default).
    e.err(
        &e.run_args(&["--pull", "never", "nosuchimage"]),
        "nosuchimage",
    );
    e.err(&["rm", "nosuchctr"], "nosuchctr");
    e.err(&["logs", "nosuchctr"], "No such container: nosuchctr");
    e.ok(&["create", "--name", "taken", "busybox", "true"]);
    e.err(
        &e.run_args(&["--name", "taken", "busybox", "true"]),
        "taken",
    );
    e.err(&e.run_args(&["-p", "80:abc", "busybox", "true"]), "abc");
    e.err(
        &e.run_args(&["-p", "1.2.3:80:80", "busybox", "true"]),
        "1.2.3",
    );
    e.err(
        &e.run_args(&[
            "--mount",
            "type=bind,source=/nonexistent/berth/src,target=/x",
            "busybox",
            "true",
        ]),
        "/nonexistent/berth/src",
    );
    e.err(
        &e.run_args(&["--network", "nonet", "busybox", "true"]),
        "nonet",
    );
    e.err(
        &e.run_args(&["--memory", "lots", "busybox", "true"]),
        "lots",
    );
    e.err(
        &e.run_args(&["--restart", "sometimes", "busybox", "true"]),
        "sometimes",
    );
    e.err(
        &e.run_args(&["--cap-add", "BOGUS", "busybox", "true"]),
        "CAP_BOGUS",
    );
    let (net, br, subnet) = e.user_net(0);
    let opt = format!("bridge={br}");
    e.ok(&["network", "create", "--subnet", &subnet, "-o", &opt, &net]);
    let inner = subnet.replace(".0/24", ".128/25");
    e.err(&["network", "create", "--subnet", &inner, "other"], &inner);
    e.err(
        &["network", "create", "--subnet", "10.0.0.0/33", "other"],
        "10.0.0.0/33",
    );
    e.ok(&["network", "rm", &net]);
    // Only the created container exists; nothing else was written.
    assert_eq!(e.container_count(), 1);
    let dirs = std::fs::read_dir(e.root.join("containers"))
        .expect("containers")
        .count();
    assert_eq!(dirs, 1);
    e.ok(&["rm", "taken"]);
    assert_eq!(
        std::fs::read_dir(e.root.join("containers"))
            .expect("containers")
            .count(),
        0
    );
}
both!(bad_input, 11);

fn lifecycle_commands(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    let id = e.ok(&[
        "create",
        "--runtime",
        rt.path(),
        "--name",
        "c1",
        "busybox",
        "sh",
        "-c",
        "echo started; sleep 300",
    ]);
    assert!(e.ok(&["ps", "-a"]).contains("Created"));
    e.ok(&["start", "c1"]);
    assert_eq!(e.inspect("c1", "{{.State.Running}}"), "true");
    assert_eq!(e.ok(&["ps", "-q"]).trim(), &id.trim()[..12]);
    assert_eq!(e.ok(&["ps", "-q", "--filter", "name=nomatch"]).trim(), "");
    assert_eq!(
        e.ok(&["ps", "--format", "{{.Names}} {{.State}} {{.Image}}"]),
        "c1 running busybox\n"
    );
    e.ok(&["rename", "c1", "c2"]);
    assert!(e.ok(&["ps"]).contains("c2"));
    e.ok(&["pause", "c2"]);
    assert_eq!(e.inspect("c2", "{{.State.Status}}"), "paused");
    e.ok(&["unpause", "c2"]);
    assert_eq!(e.inspect("c2", "{{.State.Status}}"), "running");
    let stats = e.ok(&["stats", "--no-stream", "c2"]);
    assert!(stats.contains("c2"), "{stats}");
    e.err(&["rm", "c2"], "running");
    e.ok(&["kill", "-s", "KILL", "c2"]);
    e.ok(&["wait", "c2"]);
    assert!(e.ok(&["logs", "c2"]).contains("started"));
    e.ok(&[
        "create",
        "--runtime",
        rt.path(),
        "--name",
        "once",
        "busybox",
        "echo",
        "attached",
    ]);
    assert_eq!(e.ok(&["start", "-a", "once"]), "attached\n");
    let pruned = e.ok(&["container", "prune", "-f"]);
    assert!(pruned.contains(id.trim()), "{pruned}");
    assert!(!e.ok(&["ps", "-a"]).contains("once"));
    assert_eq!(e.container_count(), 0);
}
both!(lifecycle_commands, 12);

// Network modes, attach and log rotation, signals, stats and refused flags.
mod modes_attach_stats;
