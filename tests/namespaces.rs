//! Linux namespaces as the container sees them: new ones of every type, user namespace id maps,
//! time offsets, joining another container's namespaces by path, bad namespace configs, and
//! namespace types left out of the config, which the container shares with its caller.

#[path = "common/caller_ns.rs"]
mod caller_ns;
mod common;
use caller_ns::{assert_host_untouched, host_mounts, run_from_own_mountns, sh_in_own_mountns};
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
    let Some(env) = Env::root() else {
        return;
    };
    let out = env.sh("echo $$; ls /proc | grep -E '^[0-9]+$' | wc -l");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1");
    // Only sh, ls, grep and wc: no host process is visible.
    let n: usize = lines[1].trim().parse().unwrap();
    assert!(n <= 4, "{n} processes visible:\n{out}");
}

#[test]
fn network_namespace_has_only_loopback() {
    let Some(env) = Env::root() else {
        return;
    };
    let out =
        env.sh("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; readlink /proc/self/ns/net");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "lo", "{out}");
    assert_eq!(lines.len(), 2, "{out}");
    assert_ne!(lines[1], host_ns("self", "net"));
}

#[test]
fn ipc_uts_cgroup_namespaces_are_new() {
    let Some(env) = Env::root() else {
        return;
    };
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
    // SAFETY: removing the segment this test created; IPC_RMID takes no buffer.
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
    let Some(a) = Env::root() else {
        return;
    };
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
    let Some(env) = Env::root() else {
        return;
    };
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

/// Leaves namespace `typ` out of the config, with what only makes sense with it.
fn drop_namespace(v: &mut Value, typ: &str) {
    v["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != typ);
    match typ {
        "uts" => {
            let o = v.as_object_mut().unwrap();
            o.remove("hostname");
            o.remove("domainname");
        }
        "mount" => {
            let l = v["linux"].as_object_mut().unwrap();
            l.remove("maskedPaths");
            l.remove("readonlyPaths");
        }
        _ => {}
    }
}

/// /proc/self/ns file names, by config type.
const NS_FILES: &[(&str, &str)] = &[
    ("pid", "pid"),
    ("network", "net"),
    ("ipc", "ipc"),
    ("uts", "uts"),
    ("cgroup", "cgroup"),
    ("user", "user"),
    ("time", "time"),
    ("mount", "mnt"),
];

#[test]
fn each_namespace_left_out_is_the_callers() {
    if !require_root() {
        return;
    }
    // user and time are not in the default config: a container without them shares ours.
    for typ in ["pid", "network", "ipc", "uts", "cgroup", "user"] {
        let env = Env::new();
        let before = host_mounts(env.tmp.path());
        env.edit(|v| drop_namespace(v, typ));
        let files: Vec<&(&str, &str)> = NS_FILES
            .iter()
            .filter(|(_, f)| std::path::Path::new(&format!("/proc/self/ns/{f}")).exists())
            .collect();
        let script = files
            .iter()
            .map(|(_, f)| format!("readlink /proc/self/ns/{f};"))
            .collect::<String>()
            + "echo $$";
        let out = env.sh(&script);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), files.len() + 1, "{typ}: {out}");
        for ((t, f), got) in files.iter().zip(&lines) {
            let ours = host_ns("self", f);
            // Left out (or never in the default config): ours. Listed: a new one.
            let shared = *t == typ || matches!(*t, "user" | "time");
            assert_eq!(
                *got == ours,
                shared,
                "{typ} left out: {t} is {got}, ours {ours}"
            );
        }
        // Without a pid namespace of its own the shell is not pid 1.
        assert_eq!(lines[files.len()] == "1", typ != "pid", "{typ}: {out}");
        assert_host_untouched(&before, env.tmp.path());
    }
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        eprintln!("SKIP (time part): the kernel has no time namespaces");
    }
}

#[test]
fn without_a_mount_namespace_the_container_shares_its_callers() {
    if !require_root() {
        return;
    }
    // The caller is a mount namespace of the test's own, so the config mounts hull makes there
    // (as runc and crun do) die with it; the host's table must not change at all.
    let env = Env::new();
    let before = host_mounts(env.tmp.path());
    env.edit(|v| drop_namespace(v, "mount"));
    let caller = env.tmp.path().join("caller-mnt");
    let setup = format!("readlink /proc/self/ns/mnt > {}", caller.display());
    let id = unique_id();
    let out = run_from_own_mountns(
        &env,
        &id,
        "private",
        &setup,
        &[
            "sh",
            "-c",
            "readlink /proc/self/ns/mnt; grep -c ' /proc ' /proc/self/mountinfo; ls /bin/busybox",
        ],
    );
    let out = out.ok();
    let lines: Vec<&str> = out.lines().collect();
    let caller = std::fs::read_to_string(&caller).unwrap();
    assert_eq!(lines[0], caller.trim(), "{out}");
    assert_ne!(lines[0], host_ns("self", "mnt"), "{out}");
    // chroot'ed into the rootfs: its /proc mount is there, the host's is out of sight.
    assert_eq!(lines[1], "1", "{out}");
    assert_eq!(lines[2], "/bin/busybox", "{out}");
    assert_nothing_left(&env, &id);
    assert_host_untouched(&before, env.tmp.path());
}

#[test]
fn without_a_mount_namespace_nothing_is_mounted_on_the_host() {
    if !require_root() {
        return;
    }
    // Straight from the host's mount namespace, without config mounts: hull must neither bind
    // the rootfs nor change /'s propagation (that would be the host's), only chroot.
    let env = Env::new();
    let before = host_mounts(env.tmp.path());
    std::fs::write(env.rootfs.join("marker"), "in-rootfs\n").unwrap();
    env.edit(|v| {
        drop_namespace(v, "mount");
        v["mounts"] = json!([]);
    });
    let out = env.sh("cat /marker; test -c /dev/null && echo null-ok");
    assert_eq!(out, "in-rootfs\nnull-ok\n");
    assert_host_untouched(&before, env.tmp.path());
}

#[test]
fn root_level_mount_work_without_a_mount_namespace_is_refused() {
    if !require_root() {
        return;
    }
    for (field, edit) in [
        ("linux.maskedPaths", json!({"maskedPaths": ["/proc/kcore"]})),
        (
            "linux.readonlyPaths",
            json!({"readonlyPaths": ["/proc/sys"]}),
        ),
        (
            "linux.rootfsPropagation",
            json!({"rootfsPropagation": "private"}),
        ),
        ("root.readonly", json!({})),
    ] {
        let env = Env::new();
        let before = host_mounts(env.tmp.path());
        env.edit(|v| {
            drop_namespace(v, "mount");
            for (k, val) in edit.as_object().unwrap() {
                v["linux"][k] = val.clone();
            }
            if field == "root.readonly" {
                v["root"]["readonly"] = json!(true);
            }
        });
        let id = unique_id();
        let ran = env.hull(&["run", "--bundle", env.bundle.to_str().unwrap(), &id]);
        ran.fails_with(&format!("{field}: needs a mount namespace"));
        assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);
        assert_nothing_left(&env, &id);
        assert_host_untouched(&before, env.tmp.path());
    }
}

#[test]
fn exec_without_a_mount_namespace_enters_the_containers_root() {
    if !require_root() {
        return;
    }
    // The init only chroot'ed into its rootfs: an exec must land there too, not in the caller's
    // /. Run from a mount namespace of the test's own, which gets the container's /proc.
    let env = Env::new();
    let before = host_mounts(env.tmp.path());
    std::fs::write(env.rootfs.join("marker"), "in-rootfs\n").unwrap();
    env.edit(|v| {
        drop_namespace(v, "mount");
        v["process"]["args"] = json!(["sleep", "30"]);
    });
    let id = unique_id();
    let script = format!(
        "$HULL run -d --bundle \"$BUNDLE\" {id}\n\
         $HULL exec {id} sh -c 'cat /marker; pwd; ls /bin/busybox; readlink /proc/1/root' || true\n\
         $HULL delete --force {id}"
    );
    let ran = sh_in_own_mountns(&env, "private", &script);
    assert_eq!(
        ran.ok(),
        "in-rootfs\n/\n/bin/busybox\n/\n",
        "{}",
        ran.stderr
    );
    assert_host_untouched(&before, env.tmp.path());
}
