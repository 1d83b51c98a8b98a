//! berth's system commands end to end, as root, with real busybox containers: events, info,
//! version, system df/prune, update and wait --condition.

#[path = "../berth_common/mod.rs"]
mod berth_common;

use berth_common::ctr::{env, Env, Rt};
use std::io::{BufRead, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A background `berth events ...`, killed (it is ours) on drop.
struct Follower(Child);

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn follow(e: &Env, args: &[&str]) -> (Follower, std::sync::mpsc::Receiver<String>) {
    let mut all = vec!["events"];
    all.extend_from_slice(args);
    let mut child = e
        .cmd(&all)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("berth events");
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    // It starts at the end of the log: give it time to open it.
    std::thread::sleep(Duration::from_millis(300));
    (Follower(child), rx)
}

/// Lines from the follower until one contains `until` (or 15 s).
fn collect(rx: &std::sync::mpsc::Receiver<String>, until: &str) -> Vec<String> {
    let end = Instant::now() + Duration::from_secs(15);
    let mut got = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(l) => {
                let done = l.contains(until);
                got.push(l);
                if done {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    got
}

#[test]
fn events_for_a_container_lifecycle() {
    let Some(e) = env(75, Rt::Hull) else { return };
    let t0 = chrono::Utc::now().timestamp().to_string();
    let (_f, rx) = follow(&e, &["--format", "{{json .}}"]);
    let id = e.ok(&e.run_args(&[
        "-d",
        "--name",
        "web",
        "--label",
        "team=a",
        "--health-cmd",
        "true",
        "--health-interval",
        "200ms",
        "busybox",
        "sleep",
        "100",
    ]));
    let id = id.trim().to_string();
    let healthy = collect(&rx, "health_status: healthy");
    e.ok(&["exec", "web", "true"]);
    let exec = collect(&rx, "exec_start");
    assert_eq!(exec.len(), 2, "{exec:?}");
    assert!(exec[0].contains("\"exec_create: true\""), "{exec:?}");
    // sleep as PID 1 ignores SIGTERM: docker's sequence then has a second kill (9).
    e.ok(&["stop", "-t", "1", "web"]);
    e.ok(&["rm", "web"]);
    let mut lines = healthy;
    lines.extend(collect(&rx, "\"destroy\""));
    let evs: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("JSON event"))
        .collect();
    let actions: Vec<&str> = evs
        .iter()
        .map(|v| v["Action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        actions,
        [
            "create",
            "start",
            "health_status: healthy",
            "kill",
            "kill",
            "die",
            "stop",
            "destroy"
        ],
        "{lines:#?}"
    );
    assert!(
        lines[1].starts_with("{\"status\":\"start\",\"id\":"),
        "{}",
        lines[1]
    );
    let start = &evs[1];
    assert_eq!(start["Type"], "container");
    assert_eq!(start["status"], "start");
    assert_eq!(start["id"], id.as_str());
    assert_eq!(start["from"], "busybox");
    assert_eq!(start["Actor"]["ID"], id.as_str());
    assert_eq!(start["Actor"]["Attributes"]["name"], "web");
    assert_eq!(start["Actor"]["Attributes"]["team"], "a");
    assert!(
        start["timeNano"].as_i64().expect("timeNano") / 1_000_000_000
            == start["time"].as_i64().expect("time")
    );
    assert_eq!(evs[3]["Actor"]["Attributes"]["signal"], "15");
    assert_eq!(evs[4]["Actor"]["Attributes"]["signal"], "9");
    assert_eq!(evs[5]["Actor"]["Attributes"]["exitCode"], "137");
    // The stored log, with a window and filters, in docker's text form.
    let until = (chrono::Utc::now().timestamp() + 1).to_string();
    let text = e.ok(&["events", "--since", &t0, "--until", &until]);
    let start_line = text
        .lines()
        .find(|l| l.contains(" container start "))
        .expect("start line");
    let want = format!(" container start {id} (image=busybox, name=web, team=a)");
    assert!(start_line.ends_with(&want), "{start_line}");
    let ts = start_line.split(' ').next().expect("time");
    assert!(ts.ends_with('Z') && ts.len() == 30, "{ts}");
    let dies = e.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &until,
        "--filter",
        "event=die",
    ]);
    assert_eq!(dies.lines().count(), 1, "{dies}");
    assert!(dies.contains("exitCode=137"), "{dies}");
    let hs = e.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &until,
        "-f",
        "event=health_status",
        "-f",
        "container=web",
    ]);
    assert_eq!(hs.lines().count(), 1, "{hs}");
    let none = e.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &until,
        "-f",
        "container=other",
    ]);
    assert_eq!(none, "");
    let names = e.ok(&[
        "events",
        "--since",
        "1m",
        "--until",
        &until,
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}}",
        "--filter",
        "type=container",
        "--filter",
        "event=create",
    ]);
    assert_eq!(names, "create web\n");
    let t1 = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    e.ok(&["volume", "create", "v1"]);
    e.ok(&["tag", "busybox", "mine:1"]);
    e.ok(&["volume", "rm", "v1"]);
    let others = e.ok(&[
        "events",
        "--since",
        &t1,
        "--until",
        "0s",
        "-f",
        "type=volume",
        "-f",
        "type=image",
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
    ]);
    assert_eq!(
        others,
        "volume create <no value>\nimage tag mine:1\nvolume destroy <no value>\n"
    );
    e.err(
        &["events", "--filter", "colour=red", "--until", "1s"],
        "invalid filter 'colour'",
    );
    e.err(&["events", "--since", "yesterday"], "invalid time");
}

#[test]
fn info_version_df_and_prune() {
    let Some(e) = env(76, Rt::Hull) else { return };
    e.ok(&e.run_args(&[
        "-d", "--name", "up", "-v", "/data", "busybox", "sleep", "100",
    ]));
    e.ok(&e.run_args(&[
        "--name",
        "done",
        "-v",
        "named:/data",
        "busybox",
        "sh",
        "-c",
        "head -c 20000 /dev/zero > /data/blob",
    ]));
    let f = "{{.Containers}} {{.ContainersRunning}} {{.ContainersStopped}} {{.Images}} {{.Driver}}";
    assert_eq!(e.ok(&["info", "--format", f]), "2 1 1 1 overlay\n");
    let text = e.ok(&["system", "info"]);
    for want in [
        "  Running: 1",
        " Storage Driver: overlay",
        " Cgroup Version: ",
        " Kernel Version: ",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    assert!(
        text.contains(&format!(" Docker Root Dir: {}", e.root.display())),
        "{text}"
    );
    let v = e.ok(&["version", "--format", "{{.Client.Version}}"]);
    assert_eq!(v.trim(), env!("CARGO_PKG_VERSION"));
    assert!(e.ok(&["version"]).starts_with("Client:\n Version:"));

    let df = e.ok(&["system", "df"]);
    let lines: Vec<Vec<&str>> = df.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(
        lines[0],
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
        "{df}"
    );
    assert_eq!(lines[1][..3], ["Images", "1", "1"], "{df}");
    assert_eq!(lines[2][..3], ["Containers", "2", "1"], "{df}");
    assert_eq!(lines[3][..4], ["Local", "Volumes", "2", "2"], "{df}");
    assert_eq!(lines[3][4], "20kB", "the 20000-byte blob: {df}");
    assert_eq!(lines[4], ["Build", "Cache", "0", "0", "0B", "0B"], "{df}");
    let v = e.ok(&["system", "df", "-v"]);
    assert!(
        v.contains("Local Volumes space usage:") && v.contains("named"),
        "{v}"
    );

    // No: nothing goes.
    let mut p = e
        .cmd(&["system", "prune", "--volumes"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("prune");
    p.stdin
        .take()
        .expect("stdin")
        .write_all(b"n\n")
        .expect("write");
    let out = p.wait_with_output().expect("prune");
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.contains("Are you sure you want to continue? [y/N]"),
        "{out}"
    );
    assert_eq!(e.container_count(), 2);
    let out = e.ok(&["system", "prune", "-f", "--volumes"]);
    assert!(
        out.contains("Deleted Containers:") && out.contains("Total reclaimed space:"),
        "{out}"
    );
    assert_eq!(e.ok(&["ps", "-a", "--format", "{{.Names}}"]), "up\n");
    // The named volume is not anonymous; docker keeps it without -a on volumes.
    let vols = e.ok(&["volume", "ls", "-q"]);
    assert!(vols.contains("named"), "{vols}");
}

/// The memory limit as the container sees it in its cgroup.
fn limit_inside(e: &Env, name: &str) -> String {
    e.ok(&[
        "exec", name, "sh", "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max",
    ])
    .trim()
    .to_string()
}

#[test]
fn update_a_running_container() {
    let Some(e) = env(77, Rt::Hull) else { return };
    e.ok(&e.run_args(&[
        "-d", "--name", "lim", "-m", "64m", "busybox", "sleep", "100",
    ]));
    assert_eq!(limit_inside(&e, "lim"), "67108864");
    assert_eq!(
        e.ok(&["update", "--memory", "128m", "--pids-limit", "50", "lim"]),
        "lim\n"
    );
    assert_eq!(limit_inside(&e, "lim"), "134217728");
    let pids = e.ok(&[
        "exec",
        "lim",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
    ]);
    assert_eq!(pids.trim(), "50");
    assert_eq!(e.inspect("lim", "{{.HostConfig.Memory}}"), "134217728");
    e.ok(&["update", "--cpus", "0.5", "lim"]);
    let quota = e.ok(&[
        "exec",
        "lim",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max",
    ]);
    assert!(quota.starts_with("50000"), "{quota}");
    e.ok(&["container", "update", "--restart", "on-failure:2", "lim"]);
    assert_eq!(
        e.inspect("lim", "{{.HostConfig.RestartPolicy.Name}}"),
        "on-failure"
    );
    // A restart keeps the new limit (it is in the bundle too).
    e.ok(&["restart", "-t", "1", "lim"]);
    assert_eq!(limit_inside(&e, "lim"), "134217728");
    e.err(&["update", "lim"], "you must provide one or more flags");
    e.err(&["update", "--memory", "lots", "lim"], "lots");
    e.err(&["update", "-m", "64m", "nosuch"], "nosuch");
}

fn wait_bg(e: &Env, args: &[&str]) -> Child {
    e.cmd(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("berth wait")
}

#[test]
fn wait_conditions() {
    let Some(e) = env(78, Rt::Hull) else { return };
    e.ok(&["create", "--name", "new", "busybox", "sh", "-c", "exit 4"]);
    // not-running: a created container is not running.
    assert_eq!(e.ok(&["wait", "new"]), "0\n");
    let next = wait_bg(&e, &["wait", "--condition", "next-exit", "new"]);
    std::thread::sleep(Duration::from_millis(500));
    e.ok(&["start", "new"]);
    let out = next.wait_with_output().expect("wait");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "4\n");
    // not-running spelled out: an exited container answers at once with its code.
    assert_eq!(e.ok(&["wait", "--condition", "not-running", "new"]), "4\n");
    e.ok(&e.run_args(&["-d", "--name", "gone", "busybox", "sleep", "100"]));
    let removed = wait_bg(&e, &["container", "wait", "--condition", "removed", "gone"]);
    std::thread::sleep(Duration::from_millis(500));
    e.ok(&["stop", "-t", "0", "gone"]);
    std::thread::sleep(Duration::from_millis(300));
    let mut removed = removed;
    assert!(
        removed.try_wait().expect("try_wait").is_none(),
        "returned before rm"
    );
    e.ok(&["rm", "gone"]);
    let out = removed.wait_with_output().expect("wait");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "137\n");
    e.err(&["wait", "--condition", "soon", "new"], "invalid condition");
}
