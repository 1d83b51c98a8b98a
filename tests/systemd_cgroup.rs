//! `--systemd-cgroup`: the container's cgroup is a transient scope that systemd creates over
//! D-Bus, with runc's `slice:prefix:name` cgroupsPath. These tests need systemd as PID 1:
//! `hack/test-systemd.sh` runs them in a VM whose init is systemd (hack/vm-systemd.sh); on a
//! host without systemd they print SKIP, except the one that checks the error there.

mod common;
use common::*;
use serde_json::json;
use std::path::Path;
use std::process::Command;

fn systemd_is_pid1() -> bool {
    std::fs::read_to_string("/proc/1/comm").is_ok_and(|c| c.trim() == "systemd")
}

fn require_systemd() -> bool {
    if !require_root() {
        return false;
    }
    if !systemd_is_pid1() {
        eprintln!(
            "SKIP: systemd is not PID 1 here (hack/test-systemd.sh runs this in a systemd VM)"
        );
        return false;
    }
    true
}

/// `systemctl show UNIT -p P` values, in the order asked.
fn show(unit: &str, props: &[&str]) -> Vec<String> {
    let out = Command::new("systemctl")
        .args(["show", unit, "-p", &props.join(",")])
        .output()
        .expect("systemctl show");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    props
        .iter()
        .map(|p| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{p}=")))
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// Whether the VM booted cgroup v2 only (hack/test-systemd.sh also boots it in legacy v1 mode).
fn unified() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// `file` of cgroup `path`; `file` is `controller/name` on v1 (`memory/memory.limit_in_bytes`),
/// `name` on v2.
fn cgroup_file(path: &str, file: &str) -> String {
    let (hierarchy, file) = file.rsplit_once('/').unwrap_or(("", file));
    let p = Path::new("/sys/fs/cgroup")
        .join(hierarchy)
        .join(path.trim_start_matches('/'))
        .join(file);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

fn systemd_env() -> Env {
    let env = Env::new();
    env.edit(|c| {
        c["linux"]["resources"] = json!({
            "memory": {"limit": 67108864},
            "pids": {"limit": 40},
            "cpu": {"shares": 512, "quota": 20000, "period": 100000}
        });
    });
    env
}

fn run_detached(env: &Env, id: &str) {
    env.set_args(&["sleep", "300"]);
    env.hull(&[
        "--systemd-cgroup",
        "run",
        "--detach",
        "--bundle",
        env.bundle.to_str().unwrap(),
        id,
    ])
    .ok();
}

fn assert_unit_gone(unit: &str, cgroup: &str) {
    let [load, active] =
        <[String; 2]>::try_from(show(unit, &["LoadState", "ActiveState"])).unwrap();
    assert!(
        load == "not-found" || active == "inactive",
        "{unit}: LoadState={load} ActiveState={active}"
    );
    let hierarchies: &[&str] = if unified() {
        &[""]
    } else {
        &[
            "systemd", "memory", "pids", "cpu", "cpuset", "blkio", "devices", "freezer",
        ]
    };
    for h in hierarchies {
        let p = Path::new("/sys/fs/cgroup")
            .join(h)
            .join(cgroup.trim_start_matches('/'));
        assert!(!p.exists(), "{} is left", p.display());
    }
}

#[test]
fn a_scope_holds_the_container_with_its_resources_and_update_reaches_both() {
    if !require_systemd() {
        return;
    }
    let env = systemd_env();
    let id = unique_id();
    env.edit(|c| c["linux"]["cgroupsPath"] = json!(format!("system.slice:hulltest:{id}")));
    run_detached(&env, &id);
    let unit = format!("hulltest-{id}.scope");
    let cgroup = format!("/system.slice/{unit}");
    // runc's property names per hierarchy: v1 has MemoryLimit and CPUShares.
    let v2 = unified();
    let (mem_prop, cpu_prop, cpu_value) = if v2 {
        ("MemoryMax", "CPUWeight", "20")
    } else {
        ("MemoryLimit", "CPUShares", "512")
    };
    let props = show(
        &unit,
        &[
            "ActiveState",
            "Delegate",
            mem_prop,
            "TasksMax",
            "CPUQuotaPerSecUSec",
            cpu_prop,
            "ControlGroup",
        ],
    );
    assert_eq!(
        props,
        ["active", "yes", "67108864", "40", "200ms", cpu_value, &cgroup],
        "{unit}"
    );
    let (mem_file, pids_file) = if v2 {
        ("memory.max", "pids.max")
    } else {
        ("memory/memory.limit_in_bytes", "pids/pids.max")
    };
    assert_eq!(cgroup_file(&cgroup, mem_file), "67108864");
    assert_eq!(cgroup_file(&cgroup, pids_file), "40");
    let pid = env.state(&id)["pid"].as_i64().expect("pid");
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    // Inside, where programs read it: on v1 through the cpu -> cpu,cpuacct symlink.
    let inside = if v2 {
        "/sys/fs/cgroup/cpu.weight"
    } else {
        "/sys/fs/cgroup/cpu/cpu.shares"
    };
    let r = env.hull(&["exec", &id, "cat", inside]);
    assert_eq!(r.ok().trim(), cpu_value, "{inside} inside");
    if v2 {
        assert_eq!(cgroup_file(&cgroup, "cpu.max"), "20000 100000");
        assert_eq!(own.trim(), format!("0::{cgroup}"));
    } else {
        assert_eq!(cgroup_file(&cgroup, "cpu/cpu.cfs_quota_us"), "20000");
        assert_eq!(cgroup_file(&cgroup, "cpu/cpu.shares"), "512");
        // Every v1 hierarchy has the process in the unit's cgroup: systemd's and the ones
        // systemd delegates, and those hull joins itself.
        for h in ["name=systemd", "memory", "pids", "cpu,cpuacct", "freezer"] {
            assert!(
                own.lines().any(|l| l.ends_with(&format!(":{h}:{cgroup}"))),
                "{h} of pid {pid} is not {cgroup}: {own}"
            );
        }
    }

    env.hull(&[
        "--systemd-cgroup",
        "update",
        "--memory",
        "134217728",
        "--pids-limit",
        "80",
        &id,
    ])
    .ok();
    assert_eq!(show(&unit, &[mem_prop, "TasksMax"]), ["134217728", "80"]);
    assert_eq!(cgroup_file(&cgroup, mem_file), "134217728");
    assert_eq!(cgroup_file(&cgroup, pids_file), "80");

    env.hull(&["--systemd-cgroup", "delete", "--force", &id])
        .ok();
    assert_unit_gone(&unit, &cgroup);
    assert_nothing_left(&env, &id);
}

#[test]
fn default_path_is_a_hull_scope_in_system_slice_and_the_lifecycle_works() {
    if !require_systemd() {
        return;
    }
    let env = systemd_env();
    let id = unique_id();
    env.set_args(&["sleep", "300"]);
    let bundle = env.bundle.to_str().unwrap();
    env.hull(&["--systemd-cgroup", "create", "--bundle", bundle, &id])
        .ok();
    let unit = format!("hull-{id}.scope");
    let cgroup = format!("/system.slice/{unit}");
    assert_eq!(show(&unit, &["ActiveState"]), ["active"]);
    assert_eq!(env.state(&id)["status"], "created");
    env.hull(&["--systemd-cgroup", "start", &id]).ok();
    assert_eq!(env.wait_status(&id, "running")["status"], "running");
    env.hull(&["--systemd-cgroup", "kill", &id, "KILL"]).ok();
    assert_eq!(env.wait_status(&id, "stopped")["status"], "stopped");
    env.hull(&["--systemd-cgroup", "delete", &id]).ok();
    assert_unit_gone(&unit, &cgroup);
    assert_nothing_left(&env, &id);
}

#[test]
fn a_bad_path_is_one_error_naming_the_field_and_leaves_nothing() {
    if !require_systemd() {
        return;
    }
    let env = systemd_env();
    env.edit(|c| c["linux"]["cgroupsPath"] = json!("/not/a/slice/form"));
    env.set_args(&["true"]);
    let id = unique_id();
    let r = env.hull(&[
        "--systemd-cgroup",
        "run",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &id,
    ]);
    r.fails_with("linux.cgroupsPath: expected");
    r.fails_with("slice:prefix:name");
    assert_nothing_left(&env, &id);
}

#[test]
fn without_systemd_the_driver_fails_clearly_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    if systemd_is_pid1() {
        eprintln!("SKIP: systemd is reachable here; the error path is tested on hosts without it");
        return;
    }
    let env = systemd_env();
    env.set_args(&["true"]);
    let id = unique_id();
    let r = env.hull(&[
        "--systemd-cgroup",
        "run",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &id,
    ]);
    r.fails_with("--systemd-cgroup: cannot reach systemd over D-Bus");
    assert_nothing_left(&env, &id);
}
