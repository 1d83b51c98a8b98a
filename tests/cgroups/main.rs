//! Resource limits, placement, update, pause/resume, ps and events against the real kernel.
//! Each test discovers the host's layout at run time, so the same binary runs on a cgroup v1 or
//! hybrid host and (through hack/test-cgroup-v2.sh) in a cgroup v2 VM.

#[path = "../common/mod.rs"]
mod common;
mod events_paths_errors;
use common::*;
use serde_json::{json, Value};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn is_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The container's directory for `ctrl` (v1: the hierarchy that carries it), if the host has it.
fn cg_dir_at(path: &str, ctrl: &str) -> Option<PathBuf> {
    let rel = path.trim_start_matches('/');
    if is_v2() {
        let root = Path::new("/sys/fs/cgroup");
        let have = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        return (ctrl == "unified"
            || ctrl == "freezer"
            || ctrl == "devices"
            || have.split_whitespace().any(|c| c == ctrl))
        .then(|| root.join(rel));
    }
    let rd = std::fs::read_dir("/sys/fs/cgroup").ok()?;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.split(',').any(|c| c == ctrl) {
            return Some(e.path().join(rel));
        }
    }
    None
}

fn cg_dir(id: &str, ctrl: &str) -> Option<PathBuf> {
    cg_dir_at(&format!("/hull/{id}"), ctrl)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
        .trim()
        .to_string()
}

/// A file of the container's cgroup: v1 name on v1, v2 name on v2.
fn cg_read(id: &str, ctrl: &str, v1: &str, v2: &str) -> String {
    let dir = cg_dir(id, ctrl).unwrap_or_else(|| panic!("no {ctrl} controller"));
    read(&dir.join(if is_v2() { v2 } else { v1 }))
}

fn writable(env: &Env) {
    env.edit(|c| c["root"]["readonly"] = json!(false));
}

/// create + start with `args` in the background; returns the id. The container inherits
/// create's stdio, so that goes to a file: a pipe would stay open as long as the container.
fn start(env: &Env, args: &[&str]) -> String {
    env.set_args(args);
    let id = unique_id();
    let log = env.tmp.path().join(format!("{id}.log"));
    let f = std::fs::File::create(&log).unwrap();
    let status = env
        .cmd()
        .args(["create", "--bundle", env.bundle.to_str().unwrap(), &id])
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "create: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    env.hull(&["start", &id]).ok();
    id
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn file_in(env: &Env, name: &str) -> Option<String> {
    std::fs::read_to_string(env.rootfs.join(name))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Whether `memory.swap` can be set: v1 needs swap accounting (memory.memsw.*); on v2 only a host
/// with swap needs it at all.
fn swap_field_ok() -> bool {
    if is_v2() {
        let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
        swaps.lines().count() > 1 && Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
    } else {
        cg_dir_at("/", "memory").is_some_and(|d| d.join("memory.memsw.limit_in_bytes").exists())
    }
}

/// A memory limit with swap pinned to it (memory+swap == memory), so a hog cannot swap past it.
fn memory_no_swap(limit: i64) -> Value {
    if swap_field_ok() {
        json!({"limit": limit, "swap": limit})
    } else {
        json!({"limit": limit})
    }
}

#[test]
fn memory_limit_is_written_and_a_hog_is_oom_killed() {
    if !require_root() {
        return;
    }
    if cg_dir("x", "memory").is_none() {
        eprintln!("SKIP: no memory controller");
        return;
    }
    let env = Env::new();
    writable(&env);
    let limit = 32 << 20;
    let mut mem = memory_no_swap(limit);
    mem["reservation"] = json!(16 << 20);
    env.edit(|c| c["linux"]["resources"]["memory"] = mem.clone());
    let id = start(
        &env,
        &[
            "sh",
            "-c",
            "sleep 0.5; tail /dev/zero; echo $? > /code; sleep 1000",
        ],
    );
    assert_eq!(
        cg_read(&id, "memory", "memory.limit_in_bytes", "memory.max"),
        limit.to_string()
    );
    assert_eq!(
        cg_read(&id, "memory", "memory.soft_limit_in_bytes", "memory.low"),
        (16 << 20).to_string()
    );
    // Keep the hog from swapping its way past the limit.
    if swap_field_ok() {
        if is_v2() {
            assert_eq!(cg_read(&id, "memory", "", "memory.swap.max"), "0");
        } else {
            assert_eq!(
                cg_read(&id, "memory", "memory.memsw.limit_in_bytes", ""),
                limit.to_string()
            );
        }
    }
    wait_for("the hog to be OOM-killed", Duration::from_secs(120), || {
        file_in(&env, "code").is_some_and(|c| !c.is_empty())
    });
    assert_eq!(
        file_in(&env, "code").unwrap(),
        "137",
        "tail must die of SIGKILL"
    );
    let kills = if is_v2() {
        cg_read(&id, "memory", "", "memory.events")
    } else {
        cg_read(&id, "memory", "memory.oom_control", "")
    };
    let n: u64 = kills
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(n >= 1, "oom_kill count: {kills}");
    let st = env.cmd().args(["state", &id]).output().unwrap();
    assert!(st.status.success(), "state: {:?} {:?}", st.status, st);
    let st: Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(st["status"], "running", "only the hog dies, not the init");
    env.hull(&["delete", "--force", &id]).ok();
    assert!(
        cgroup_dirs_for(&id).is_empty(),
        "left: {:?}",
        cgroup_dirs_for(&id)
    );
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    if !require_root() {
        return;
    }
    if cg_dir("x", "pids").is_none() {
        eprintln!("SKIP: no pids controller");
        return;
    }
    let env = Env::new();
    env.edit(|c| c["linux"]["resources"]["pids"] = json!({"limit": 10}));
    // The bomb runs in a subshell: a shell that cannot fork gives up, and the init must outlive it.
    let id = start(
        &env,
        &[
            "sh",
            "-c",
            "(for i in $(seq 40); do sleep 1000 & done) 2>/dev/null; sleep 1000",
        ],
    );
    assert_eq!(cg_read(&id, "pids", "pids.max", "pids.max"), "10");
    // Wait until the loop is done (the shell gets to its final sleep or gives up forking).
    std::thread::sleep(Duration::from_secs(2));
    let pids: Vec<i32> =
        serde_json::from_str(env.hull(&["ps", "--format", "json", &id]).ok()).unwrap();
    assert!(pids.len() <= 10 && pids.len() >= 5, "pids: {pids:?}");
    let current: usize = cg_read(&id, "pids", "pids.current", "pids.current")
        .parse()
        .unwrap();
    assert!(current <= 10, "pids.current {current}");
    let events = cg_read(&id, "pids", "pids.events", "pids.events");
    assert!(!events.contains("max 0"), "no fork was refused: {events}");
    // Table form: ps's header plus only the container's processes.
    let table = env.hull(&["ps", &id]).ok().to_string();
    let mut lines = table.lines();
    assert!(lines.next().unwrap().contains("PID"));
    assert_eq!(lines.count(), pids.len(), "table: {table}");
    let custom = env.hull(&["ps", &id, "-o", "pid,comm"]).ok().to_string();
    assert!(
        custom
            .lines()
            .skip(1)
            .all(|l| l.contains("sleep") || l.contains("sh")),
        "{custom}"
    );
    env.hull(&["update", "--pids-limit", "20", &id]).ok();
    assert_eq!(cg_read(&id, "pids", "pids.max", "pids.max"), "20");
}

#[test]
fn pause_freezes_and_resume_thaws() {
    if !require_root() {
        return;
    }
    if !is_v2() && cg_dir("x", "freezer").is_none() {
        eprintln!("SKIP: no freezer controller");
        return;
    }
    let env = Env::new();
    writable(&env);
    let id = start(
        &env,
        &[
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i > /count; done",
        ],
    );
    wait_for("the counter", Duration::from_secs(10), || {
        file_in(&env, "count").is_some_and(|c| !c.is_empty())
    });
    env.hull(&["pause", &id]).ok();
    assert_eq!(env.state(&id)["status"], "paused");
    let frozen = cg_read(&id, "freezer", "freezer.state", "cgroup.freeze");
    assert!(frozen == "FROZEN" || frozen == "1", "{frozen}");
    let a = file_in(&env, "count");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        a,
        file_in(&env, "count"),
        "a paused container made progress"
    );
    env.hull(&["pause", &id]).fails_with("already paused");
    env.hull(&["resume", &id]).ok();
    assert_eq!(env.state(&id)["status"], "running");
    let b: u64 = file_in(&env, "count")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    wait_for("progress after resume", Duration::from_secs(10), || {
        file_in(&env, "count")
            .and_then(|c| c.parse::<u64>().ok())
            .is_some_and(|c| c > b)
    });
    env.hull(&["resume", &id]).fails_with("not paused");
    // A paused container can still be force-deleted.
    env.hull(&["pause", &id]).ok();
    env.hull(&["delete", "--force", &id]).ok();
    assert!(
        cgroup_dirs_for(&id).is_empty(),
        "left: {:?}",
        cgroup_dirs_for(&id)
    );
    env.hull(&["pause", &id]).fails_with("does not exist");
    env.hull(&["resume", &id]).fails_with("does not exist");
    env.hull(&["update", "--memory", "64m", &id])
        .fails_with("does not exist");
    env.hull(&["events", "--stats", &id])
        .fails_with("does not exist");
}

#[test]
fn stopped_containers_refuse_pause_and_update() {
    let Some(env) = Env::root() else {
        return;
    };
    let id = start(&env, &["true"]);
    wait_for("the container to stop", Duration::from_secs(10), || {
        env.state(&id)["status"] == "stopped"
    });
    env.hull(&["pause", &id])
        .fails_with("container not running");
    env.hull(&["update", "--pids-limit", "5", &id])
        .fails_with("container not running");
    env.hull(&["events", "--stats", &id])
        .fails_with("container not running");
}

#[test]
fn update_changes_limits_and_rejects_bad_values() {
    if !require_root() {
        return;
    }
    if cg_dir("x", "memory").is_none() || cg_dir("x", "cpu").is_none() {
        eprintln!("SKIP: needs the memory and cpu controllers");
        return;
    }
    let env = Env::new();
    env.edit(|c| c["linux"]["resources"]["memory"] = json!({"limit": 256 << 20}));
    let id = start(&env, &["sleep", "1000"]);
    env.hull(&[
        "update",
        "--memory",
        "64m",
        "--cpu-shares",
        "512",
        "--cpu-quota",
        "20000",
        "--cpu-period",
        "100000",
        &id,
    ])
    .ok();
    assert_eq!(
        cg_read(&id, "memory", "memory.limit_in_bytes", "memory.max"),
        (64 << 20).to_string()
    );
    if is_v2() {
        assert_eq!(cg_read(&id, "cpu", "", "cpu.max"), "20000 100000");
        assert_eq!(
            cg_read(&id, "cpu", "", "cpu.weight"),
            "20",
            "shares 512 -> weight 20 as runc"
        );
    } else {
        assert_eq!(cg_read(&id, "cpu", "cpu.cfs_quota_us", ""), "20000");
        assert_eq!(cg_read(&id, "cpu", "cpu.cfs_period_us", ""), "100000");
        assert_eq!(cg_read(&id, "cpu", "cpu.shares", ""), "512");
    }
    // --resources from a file, the flags overriding it.
    let res = env.tmp.path().join("res.json");
    std::fs::write(
        &res,
        r#"{"memory":{"limit":100663296},"cpu":{"quota":30000}}"#,
    )
    .unwrap();
    env.hull(&[
        "update",
        "-r",
        res.to_str().unwrap(),
        "--cpu-quota",
        "40000",
        &id,
    ])
    .ok();
    assert_eq!(
        cg_read(&id, "memory", "memory.limit_in_bytes", "memory.max"),
        "100663296"
    );
    assert_eq!(
        cg_read(&id, "cpu", "cpu.cfs_quota_us", "cpu.max"),
        if is_v2() { "40000 100000" } else { "40000" }
    );
    // A limit below what the container uses: refused, and the old limit stays.
    std::fs::write(
        &res,
        r#"{"memory":{"limit":4096,"checkBeforeUpdate":true}}"#,
    )
    .unwrap();
    let r = env.hull(&["update", "-r", res.to_str().unwrap(), &id]);
    r.fails_with("linux.resources.memory.limit");
    r.fails_with("below the current usage");
    assert_eq!(
        cg_read(&id, "memory", "memory.limit_in_bytes", "memory.max"),
        "100663296"
    );
    env.hull(&["update", "--l3-cache-schema", "L3:0=f", &id])
        .fails_with("--l3-cache-schema");
    env.hull(&["update", "--memory", "lots", &id])
        .fails_with("--memory");
    std::fs::write(&res, "[1,2]").unwrap();
    env.hull(&["update", "-r", res.to_str().unwrap(), &id])
        .fails_with("--resources");
    assert_eq!(env.state(&id)["status"], "running");
    if !is_v2() {
        // v1 enforces it in the kernel as well: a limit that cannot be reclaimed is refused.
        let mut c = env.cmd();
        c.args(["update", "--memory", "4096", &id]);
        let out = c.output().unwrap();
        if !out.status.success() {
            assert!(String::from_utf8_lossy(&out.stderr).contains("memory.limit"));
        }
    }
}

#[test]
fn cpu_cpuset_and_blkio_limits_are_written() {
    if !require_root() {
        return;
    }
    if cg_dir("x", "cpu").is_none() || cg_dir("x", "cpuset").is_none() {
        eprintln!("SKIP: needs the cpu and cpuset controllers");
        return;
    }
    let env = Env::new();
    writable(&env);
    let mut res = json!({"cpu": {"shares": 2048, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0", "idle": 0}});
    // Throttling needs a real block device; loop0 if the host has one.
    let blk = Path::new("/sys/dev/block/7:0").exists();
    if blk {
        res["blockIO"] = json!({"throttleReadBpsDevice": [{"major": 7, "minor": 0, "rate": 1048576}],
                                "throttleWriteIOPSDevice": [{"major": 7, "minor": 0, "rate": 100}]});
    } else {
        eprintln!("SKIP (part): no block device 7:0 to throttle");
    }
    env.edit(|c| c["linux"]["resources"] = res.clone());
    let id = start(
        &env,
        &[
            "sh",
            "-c",
            "grep Cpus_allowed_list /proc/self/status > /cpus; sleep 1000",
        ],
    );
    if is_v2() {
        assert_eq!(cg_read(&id, "cpu", "", "cpu.max"), "50000 100000");
        assert_eq!(cg_read(&id, "cpu", "", "cpu.weight"), "79");
        assert_eq!(cg_read(&id, "cpuset", "", "cpuset.cpus"), "0");
        assert_eq!(cg_read(&id, "cpuset", "", "cpuset.mems"), "0");
    } else {
        assert_eq!(cg_read(&id, "cpu", "cpu.shares", ""), "2048");
        assert_eq!(cg_read(&id, "cpu", "cpu.cfs_quota_us", ""), "50000");
        assert_eq!(cg_read(&id, "cpuset", "cpuset.cpus", ""), "0");
    }
    wait_for("the cpuset probe", Duration::from_secs(10), || {
        file_in(&env, "cpus").is_some_and(|c| !c.is_empty())
    });
    assert!(
        file_in(&env, "cpus").unwrap().ends_with("\t0"),
        "{:?}",
        file_in(&env, "cpus")
    );
    if blk {
        let io = if is_v2() {
            cg_read(&id, "io", "", "io.max")
        } else {
            cg_read(&id, "blkio", "blkio.throttle.read_bps_device", "")
                + "\n"
                + &cg_read(&id, "blkio", "blkio.throttle.write_iops_device", "")
        };
        assert!(
            io.contains("7:0") && io.contains("1048576") && io.contains("100"),
            "{io}"
        );
    }
    // Shares the kernel would clamp are an error, not a silent change (v1); out of range on v2.
    let r = env.hull(&["update", "--cpu-shares", "1", &id]);
    if !is_v2() {
        r.fails_with("cpu.shares");
    }
}

#[test]
fn devices_are_denied_unless_allowed() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|c| {
        c["linux"]["devices"] =
            json!([{"path": "/dev/testblk", "type": "b", "major": 7, "minor": 0, "fileMode": 438}]);
    });
    let probe = "dd if=/dev/testblk of=/dev/null count=1 2>&1; echo > /dev/null && echo null-ok";
    let denied = env.sh(probe);
    assert!(denied.contains("Operation not permitted"), "{denied}");
    assert!(
        denied.contains("null-ok"),
        "default devices must stay allowed: {denied}"
    );
    env.edit(|c| {
        c["linux"]["resources"]["devices"] = json!([{"allow": false, "access": "rwm"},
            {"allow": true, "type": "b", "major": 7, "minor": 0, "access": "r"}]);
    });
    let allowed = env.sh(probe);
    assert!(!allowed.contains("Operation not permitted"), "{allowed}");
    // Write access was not granted.
    let write = env.sh("{ echo x > /dev/testblk; } 2>&1; true");
    assert!(write.contains("Operation not permitted"), "{write}");
    if !is_v2() {
        let id = start(&env, &["sleep", "1000"]);
        let list = cg_read(&id, "devices", "devices.list", "");
        assert!(
            list.contains("b 7:0 r") && list.contains("c 1:3 rwm"),
            "{list}"
        );
        assert!(!list.contains("a *:* rwm"), "{list}");
    }
}

#[test]
fn bpf_device_filter_on_a_cgroup2_mount() {
    if !require_root() {
        return;
    }
    // v2 hosts use it for every container; a hybrid host's cgroup2 mount takes it too.
    let mount = if is_v2() {
        PathBuf::from("/sys/fs/cgroup")
    } else {
        PathBuf::from("/sys/fs/cgroup/unified")
    };
    if !mount.join("cgroup.procs").exists() {
        eprintln!("SKIP: no cgroup2 mount");
        return;
    }
    let dir = mount.join(format!("hull-bpf-test-{}", std::process::id()));
    std::fs::create_dir(&dir).unwrap();
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _rm = Rm(dir.clone());
    let spec: Vec<oci_spec::runtime::LinuxDeviceCgroup> =
        serde_json::from_value(json!([{"allow": false, "access": "rwm"}, {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"}]))
            .unwrap();
    let rules = hull::cgroups::devices::rules(&spec).unwrap();
    hull::cgroups::devices::apply_v2(&dir, &rules).unwrap();
    // Applying again replaces the filter instead of stacking a second one.
    hull::cgroups::devices::apply_v2(&dir, &rules).unwrap();
    // Our own nodes, so the test does not depend on which devices the host has: loop0 (b 7:0) is
    // not allowed, full (c 1:7) is one of the defaults.
    let nodes = tempfile::tempdir().unwrap();
    let n = nodes.path().display();
    let script = format!(
        "mknod {n}/blk b 7 0 && mknod {n}/full c 1 7 && mknod {n}/kmsg c 1 11 || exit 9
         echo $$ > {cg}/cgroup.procs || exit 8
         cat /proc/self/cgroup
         head -c1 /dev/zero >/dev/null && echo zero-ok
         : > /dev/null && echo null-ok
         head -c1 {n}/full >/dev/null && echo full-ok
         head -c1 {n}/blk 2>&1 >/dev/null; head -c1 {n}/kmsg 2>&1 >/dev/null; true",
        cg = dir.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("zero-ok") && text.contains("null-ok") && text.contains("full-ok"),
        "{text}"
    );
    assert_eq!(text.matches("Operation not permitted").count(), 2, "{text}");
}
