//! Linux namespaces as the container sees them: new ones of every type, user namespace id maps,
//! time offsets, joining another container's namespaces by path, and bad namespace configs.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn add_namespace(v: &mut Value, ns: Value) {
    v["linux"]["namespaces"].as_array_mut().unwrap().push(ns);
}

/// The namespace inode link of a host process, e.g. `net:[4026531840]`.
fn host_ns(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn pid_namespace_makes_the_process_pid_1() {
    if !require_root() {
        return;
    }
    let env = Env::new();
    let out = env.sh("echo $$; ls /proc | grep -E '^[0-9]+$' | wc -l");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1");
    // Only sh, ls, grep and wc: no host process is visible.
    let n: usize = lines[1].trim().parse().unwrap();
    assert!(n <= 4, "{n} processes visible:\n{out}");
}

#[test]
fn network_namespace_has_only_loopback() {
    if !require_root() {
        return;
    }
    let env = Env::new();
    let out =
        env.sh("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; readlink /proc/self/ns/net");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "lo", "{out}");
    assert_eq!(lines.len(), 2, "{out}");
    assert_ne!(lines[1], host_ns("self", "net"));
}

#[test]
fn ipc_uts_cgroup_namespaces_are_new() {
    if !require_root() {
        return;
    }
    let env = Env::new();
    env.edit(|v| {
        v["hostname"] = json!("box-host");
        v["domainname"] = json!("box.example");
    });
    let out = env.sh(
        "hostname; cat /proc/sys/kernel/domainname; readlink /proc/self/ns/ipc; \
         readlink /proc/self/ns/uts; readlink /proc/self/ns/cgroup; cat /proc/self/cgroup",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "box-host");
    assert_eq!(lines[1], "box.example");
    assert_ne!(lines[2], host_ns("self", "ipc"));
    assert_ne!(lines[3], host_ns("self", "uts"));
    assert_ne!(lines[4], host_ns("self", "cgroup"));
    // Every hierarchy's path is the namespace root.
    for l in &lines[5..] {
        assert!(l.ends_with(":/"), "cgroup line {l:?} in\n{out}");
    }
    assert!(lines.len() > 5, "{out}");
    // The host keeps its own names.
    assert_ne!(
        nix::unistd::gethostname().unwrap().to_string_lossy(),
        "box-host"
    );
}

#[test]
fn ipc_namespace_hides_host_shm() {
    if !require_root() {
        return;
    }
    // A SysV segment on the host must not be visible in the container's ipc namespace.
    // SAFETY: creating and later removing a private segment of our own.
    let shmid = unsafe { libc::shmget(libc::IPC_PRIVATE, 4096, libc::IPC_CREAT | 0o600) };
    assert!(shmid >= 0);
    let env = Env::new();
    let out = env.sh("cat /proc/sysvipc/shm | tail -n +2 | wc -l");
    unsafe { libc::shmctl(shmid, libc::IPC_RMID, std::ptr::null_mut()) };
    assert_eq!(out.trim(), "0");
}

fn userns_env() -> Env {
    let env = Env::new();
    // The init runs as host uid 100000 and must traverse the bundle path.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(env.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    env.edit(|v| {
        add_namespace(v, json!({"type": "user"}));
        v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    });
    env
}

#[test]
fn user_namespace_maps_root_to_a_host_range() {
    if !require_root() {
        return;
    }
    let env = userns_env();
    env.set_args(&["sleep", "1000"]);
    let id = unique_id();
    env.hull(&[
        "run",
        "--detach",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &id,
    ])
    .ok();
    let pid = env.state(&id)["pid"].as_i64().unwrap().to_string();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    let gid_line = status.lines().find(|l| l.starts_with("Gid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some("100000"),
        "{uid_line}"
    );
    assert_eq!(
        gid_line.split_whitespace().nth(1),
        Some("100000"),
        "{gid_line}"
    );
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/uid_map"))
            .unwrap()
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    assert_ne!(host_ns(&pid, "user"), host_ns("self", "user"));
    env.hull(&["delete", "--force", &id]).ok();
}

#[test]
fn user_namespace_container_runs_with_default_mounts() {
    if !require_root() {
        return;
    }
    let env = userns_env();
    let out = env.sh(
        "id -u; id -g; cat /proc/self/uid_map; grep -c . /proc/self/mountinfo; \
         ls -l /dev/null; echo hi > /dev/null && echo devnull-ok; touch /tmp/f && echo write-ok",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    assert_eq!(lines[1], "0", "{out}");
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    assert!(lines[4].starts_with('c'), "{out}");
    assert!(out.contains("devnull-ok"), "{out}");
    assert!(out.contains("write-ok"), "{out}");
    let mounts = env.sh("cat /proc/self/mountinfo");
    for dest in [
        " /proc ",
        " /dev ",
        " /dev/pts ",
        " /dev/shm ",
        " /dev/mqueue ",
        " /sys ",
    ] {
        assert!(mounts.contains(dest), "{dest} not mounted:\n{mounts}");
    }
}

#[test]
fn time_namespace_shifts_uptime() {
    if !require_root() {
        return;
    }
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        eprintln!("SKIP: kernel has no time namespaces");
        return;
    }
    let env = Env::new();
    let shift = 10 * 24 * 3600;
    env.edit(|v| {
        add_namespace(v, json!({"type": "time"}));
        v["linux"]["timeOffsets"] = json!({
            "monotonic": {"secs": shift, "nanosecs": 0},
            "boottime": {"secs": shift, "nanosecs": 0}
        });
    });
    let host_before: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let out = env.sh("cut -d' ' -f1 /proc/uptime; cat /proc/self/timens_offsets");
    let inside: f64 = out.lines().next().unwrap().parse().unwrap();
    let host_after: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        inside >= host_before + shift as f64 && inside <= host_after + shift as f64 + 1.0,
        "inside {inside}, host {host_before}..{host_after}\n{out}"
    );
    let offsets: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        offsets.contains(&vec!["monotonic", &shift.to_string(), "0"]),
        "{out}"
    );
    assert!(
        offsets.contains(&vec!["boottime", &shift.to_string(), "0"]),
        "{out}"
    );
}

fn wait_for_running(env: &Env, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while env.state(id)["status"] != "running" {
        assert!(Instant::now() < deadline, "{id} never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn second_container_joins_namespaces_by_path() {
    if !require_root() {
        return;
    }
    let a = Env::new();
    a.edit(|v| v["hostname"] = json!("shared-uts"));
    a.set_args(&["sh", "-c", "ip link set lo up 2>/dev/null; exec sleep 1000"]);
    let a_id = unique_id();
    a.hull(&[
        "run",
        "--detach",
        "--bundle",
        a.bundle.to_str().unwrap(),
        &a_id,
    ])
    .ok();
    wait_for_running(&a, &a_id);
    let pid = a.state(&a_id)["pid"].as_i64().unwrap();

    let b = Env::new();
    b.edit(|v| {
        v.as_object_mut().unwrap().remove("hostname");
        let ns = |t: &str, f: &str| json!({"type": t, "path": format!("/proc/{pid}/ns/{f}")});
        v["linux"]["namespaces"] = json!([
            ns("pid", "pid"), ns("network", "net"), ns("ipc", "ipc"), ns("uts", "uts"),
            {"type": "mount"}, {"type": "cgroup"}
        ]);
    });
    let out = b.sh(
        "hostname; readlink /proc/self/ns/net; readlink /proc/self/ns/ipc; readlink /proc/self/ns/pid; \
         cat /proc/1/comm; echo $$",
    );
    let lines: Vec<&str> = out.lines().collect();
    let p = pid.to_string();
    assert_eq!(lines[0], "shared-uts", "{out}");
    assert_eq!(lines[1], host_ns(&p, "net"));
    assert_eq!(lines[2], host_ns(&p, "ipc"));
    assert_eq!(lines[3], host_ns(&p, "pid"));
    // The first container's init is pid 1 of the joined namespace; we are not.
    assert_eq!(lines[4], "sleep", "{out}");
    assert_ne!(lines[5], "1", "{out}");
    a.hull(&["delete", "--force", &a_id]).ok();
}

#[test]
fn unknown_and_duplicate_namespaces_are_rejected() {
    if !require_root() {
        return;
    }
    let env = Env::new();
    env.edit(|v| add_namespace(v, json!({"type": "bogus"})));
    let id = unique_id();
    env.hull(&["create", "--bundle", env.bundle.to_str().unwrap(), &id])
        .fails_with("linux.namespaces[6].type: unknown namespace type");
    assert!(env.ids().is_empty());
    assert!(cgroup_dirs_for(&id).is_empty());

    let env = Env::new();
    env.edit(|v| add_namespace(v, json!({"type": "pid"})));
    env.hull(&["create", "--bundle", env.bundle.to_str().unwrap(), &id])
        .fails_with("given twice");
    assert!(env.ids().is_empty());

    let env = Env::new();
    env.edit(|v| {
        add_namespace(
            v,
            json!({"type": "user", "path": "/proc/self/ns/nope-nope"}),
        )
    });
    env.hull(&["create", "--bundle", env.bundle.to_str().unwrap(), &id])
        .fails_with("linux.namespaces[6].path");
    assert!(env.ids().is_empty());
    assert!(cgroup_dirs_for(&id).is_empty());
}

#[test]
fn user_namespace_without_network_or_cgroup_namespace() {
    if !require_root() {
        return;
    }
    // Without a network namespace of its own a userns cannot mount sysfs: /sys is bound instead;
    // without a cgroup namespace the container's cgroup dirs are bound.
    let env = userns_env();
    env.edit(|v| {
        v["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "user"}]);
        v["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]);
    });
    let has_fuse = std::path::Path::new("/dev/fuse").exists();
    if !has_fuse {
        env.edit(|v| {
            v["linux"].as_object_mut().unwrap().remove("devices");
        });
    }
    let out = env.sh(
        "id -u; ls /sys/kernel >/dev/null && echo sys-ok; ls /sys/fs/cgroup | wc -l; \
         stat -c '%F %t:%T' /dev/null; [ -e /dev/fuse ] && stat -c '%F %t:%T' /dev/fuse; \
         readlink /proc/self/ns/net",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    assert_eq!(lines[1], "sys-ok", "{out}");
    assert_ne!(lines[2], "0", "empty /sys/fs/cgroup:\n{out}");
    assert_eq!(lines[3], "character special file 1:3");
    if has_fuse {
        assert_eq!(lines[4], "character special file a:e5");
    } else {
        eprintln!("SKIP (fuse part): no /dev/fuse on this host");
    }
    assert_eq!(*lines.last().unwrap(), host_ns("self", "net"));
}

#[test]
fn second_container_joins_a_user_namespace_by_path() {
    if !require_root() {
        return;
    }
    let a = userns_env();
    a.set_args(&["sleep", "1000"]);
    let a_id = unique_id();
    a.hull(&[
        "run",
        "--detach",
        "--bundle",
        a.bundle.to_str().unwrap(),
        &a_id,
    ])
    .ok();
    wait_for_running(&a, &a_id);
    let pid = a.state(&a_id)["pid"].as_i64().unwrap();
    let b = Env::new();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(b.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    b.edit(|v| {
        v["linux"]["namespaces"] = json!([
            {"type": "user", "path": format!("/proc/{pid}/ns/user")},
            {"type": "network", "path": format!("/proc/{pid}/ns/net")},
            {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
        ]);
    });
    b.set_args(&[
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user",
    ]);
    let id = unique_id();
    let r = b.hull(&["run", "--bundle", b.bundle.to_str().unwrap(), &id]);
    let out = r.ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "{out}");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    assert_eq!(lines[2], host_ns(&pid.to_string(), "user"));
    a.hull(&["delete", "--force", &a_id]).ok();
}

#[test]
fn user_namespace_with_time_namespace_readonly_root_and_oom_score() {
    if !require_root() {
        return;
    }
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        eprintln!("SKIP: kernel has no time namespaces");
        return;
    }
    let env = userns_env();
    let current: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let adj = (current + 100).min(1000);
    env.edit(|v| {
        add_namespace(v, json!({"type": "time"}));
        v["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 5000, "nanosecs": 0}});
        v["root"]["readonly"] = json!(true);
        v["process"]["oomScoreAdj"] = json!(adj);
        v["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5, 10]});
    });
    let out = env.sh(
        "grep monotonic /proc/self/timens_offsets; cat /proc/self/oom_score_adj; id -u; \
         grep Groups /proc/self/status; touch /x 2>/dev/null && echo root-writable; echo done",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["monotonic", "5000", "0"],
        "{out}"
    );
    assert_eq!(lines[1], adj.to_string());
    assert_eq!(lines[2], "1000");
    assert_eq!(
        lines[3].split_whitespace().collect::<Vec<_>>(),
        ["Groups:", "5", "10"]
    );
    assert_eq!(lines[4], "done", "{out}");
}
