//! The OCI lifecycle through the runc command line: create, start, state, kill, delete, run,
//! list, with the status each step must report.

mod common;
use common::*;

#[test]
fn run_returns_the_container_exit_code_and_output() {
    let Some(env) = Env::root() else {
        return;
    };
    let r = env.run(&["sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(r.code, 7);
    assert_eq!(r.stdout, "out\n");
    assert!(r.stderr.contains("err"));
    assert!(
        env.ids().is_empty(),
        "run must delete the container: {:?}",
        env.ids()
    );
}

#[test]
fn create_start_state_kill_delete() {
    let Some(env) = Env::root() else {
        return;
    };
    env.set_args(&["sleep", "1000"]);
    let id = unique_id();
    let pid_file = env.tmp.path().join("pid");
    env.hull(&[
        "create",
        "--bundle",
        env.bundle.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ])
    .ok();
    let st = env.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    assert_eq!(st["bundle"], env.bundle.to_str().unwrap());
    assert_eq!(st["rootfs"], env.rootfs.to_str().unwrap());
    assert!(st["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(st["ociVersion"], "1.2.0");
    // The init waits for start: it is still hull, not sleep.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_ne!(comm.trim(), "sleep");
    env.hull(&["start", &id]).ok();
    assert_eq!(env.state(&id)["status"], "running");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");
    env.hull(&["start", &id]).fails_with("already running");
    env.hull(&["delete", &id]).fails_with("not stopped");
    env.hull(&["kill", &id, "KILL"]).ok();
    env.wait_status(&id, "stopped");
    let st = env.state(&id);
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["pid"], 0);
    env.hull(&["kill", &id, "TERM"])
        .fails_with("container not running");
    env.hull(&["start", &id]).fails_with("stopped");
    env.hull(&["delete", &id]).ok();
    env.hull(&["state", &id]).fails_with("does not exist");
    env.hull(&["delete", &id]).fails_with("does not exist");
    assert!(
        cgroup_dirs_for(&id).is_empty(),
        "cgroup left: {:?}",
        cgroup_dirs_for(&id)
    );
}

#[test]
fn delete_force_kills_a_running_container() {
    let Some(env) = Env::root() else {
        return;
    };
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
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(env.state(&id)["status"], "running");
    env.hull(&["delete", "--force", &id]).ok();
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap()
                .contains(") Z")
    );
    assert!(env.ids().is_empty());
    assert!(cgroup_dirs_for(&id).is_empty());
}

#[test]
fn delete_of_a_created_container_kills_its_init() {
    let Some(env) = Env::root() else {
        return;
    };
    let id = unique_id();
    env.hull(&["create", "--bundle", env.bundle.to_str().unwrap(), &id])
        .ok();
    env.hull(&["delete", &id]).ok();
    assert!(env.ids().is_empty());
}

#[test]
fn kill_accepts_names_with_and_without_sig_and_numbers() {
    let Some(env) = Env::root() else {
        return;
    };
    // The shell traps USR1 and TERM, reporting each into a file the test reads.
    env.set_args(&["sh", "-c", "trap 'echo usr1 >> /tmp/got' USR1; trap 'echo term >> /tmp/got; exit 0' TERM; echo ready > /tmp/ready; while true; do sleep 0.05; done"]);
    let id = unique_id();
    env.hull(&["run", "-d", "--bundle", env.bundle.to_str().unwrap(), &id])
        .ok();
    let ready = env.rootfs.join("tmp/ready");
    for _ in 0..200 {
        if ready.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    env.hull(&["kill", &id, "USR1"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(200));
    env.hull(&["kill", &id, "SIGUSR1"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(200));
    env.hull(&["kill", &id, "15"]).ok();
    env.wait_status(&id, "stopped");
    assert_eq!(
        std::fs::read_to_string(env.rootfs.join("tmp/got")).unwrap(),
        "usr1\nusr1\nterm\n"
    );
    env.hull(&["kill", &id, "NOTASIGNAL"])
        .fails_with("unknown signal");
}

#[test]
fn kill_all_reaches_every_process() {
    let Some(env) = Env::root() else {
        return;
    };
    env.set_args(&["sh", "-c", "sleep 1000 & sleep 1000 & wait"]);
    let id = unique_id();
    env.hull(&["run", "-d", "--bundle", env.bundle.to_str().unwrap(), &id])
        .ok();
    std::thread::sleep(std::time::Duration::from_millis(200));
    env.hull(&["kill", "--all", &id, "KILL"]).ok();
    env.wait_status(&id, "stopped");
    assert_eq!(env.state(&id)["status"], "stopped");
}

#[test]
fn list_shows_containers_in_table_json_and_quiet_forms() {
    let Some(env) = Env::root() else {
        return;
    };
    env.set_args(&["sleep", "1000"]);
    let id = unique_id();
    env.hull(&["create", "--bundle", env.bundle.to_str().unwrap(), &id])
        .ok();
    let table = env.hull(&["list"]).ok().to_string();
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.lines().nth(1).unwrap().contains("created"));
    let json: serde_json::Value =
        serde_json::from_str(env.hull(&["list", "--format", "json"]).ok()).unwrap();
    assert_eq!(json[0]["id"], id.as_str());
    assert_eq!(json[0]["status"], "created");
    assert_eq!(env.hull(&["list", "-q"]).ok().trim(), id);
}

#[test]
fn run_forwards_signals_to_the_container() {
    let Some(env) = Env::root() else {
        return;
    };
    env.set_args(&[
        "sh",
        "-c",
        "trap 'exit 42' TERM; touch /tmp/ready; while true; do sleep 0.05; done",
    ]);
    let mut child = env
        .cmd()
        .args([
            "run",
            "--bundle",
            env.bundle.to_str().unwrap(),
            &unique_id(),
        ])
        .spawn()
        .unwrap();
    let ready = env.rootfs.join("tmp/ready");
    for _ in 0..300 {
        if ready.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(ready.exists());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(42));
}

#[test]
fn version_prints_runc_style_lines() {
    let out = std::process::Command::new(HULL)
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("hull version "), "{text}");
    assert!(lines[1].starts_with("commit: "));
    assert!(lines[2].starts_with("spec: 1."));
}

#[test]
fn spec_writes_a_config_and_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(HULL)
        .args(["spec", "--bundle"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(v["root"]["path"], "rootfs");
    let out = std::process::Command::new(HULL)
        .args(["spec", "--bundle"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let tmp2 = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(HULL)
        .args(["spec", "--rootless", "--bundle"])
        .arg(tmp2.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp2.path().join("config.json")).unwrap())
            .unwrap();
    assert!(v["linux"]["uidMappings"].is_array());
}

/// The pid is gone or a zombie awaiting its reaper.
fn dead(pid: i64) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let gone = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |s| s.contains(") Z") || s.contains(") X"));
        if gone || std::time::Instant::now() > deadline {
            return gone;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn list_status(env: &Env, id: &str) -> serde_json::Value {
    let all: serde_json::Value =
        serde_json::from_str(env.hull(&["list", "--format", "json"]).ok()).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .map(|r| r["status"].clone())
        .unwrap_or_default()
}

/// issue 15.8: a create killed before it wrote state.json leaves the directory (with the
/// intent record), the cgroup and the waiting init; delete --force must find them all.
#[test]
fn delete_force_cleans_up_after_a_create_that_died_before_its_state() {
    let Some(env) = Env::root() else {
        return;
    };
    env.set_args(&["sleep", "1000"]);
    let id = unique_id();
    env.hull(&["create", "--bundle", env.bundle.to_str().unwrap(), &id])
        .ok();
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    assert!(!cgroup_dirs_for(&id).is_empty());
    std::fs::remove_file(env.root.join(&id).join("state.json")).unwrap();
    assert_eq!(list_status(&env, &id), "unknown");
    env.hull(&["delete", &id]).fails_with("processes still run");
    assert!(!dead(pid) && !cgroup_dirs_for(&id).is_empty());
    env.hull(&["delete", "--force", &id]).ok();
    assert!(dead(pid), "init {pid} survived");
    assert_nothing_left(&env, &id);
}

/// issue 15.10: a truncated state.json must neither hide a running container from list nor
/// stop delete --force from killing it and removing its cgroup.
#[test]
fn corrupt_state_is_listed_as_unknown_and_removed_by_force() {
    let Some(env) = Env::root() else {
        return;
    };
    // Two processes: without the state, only the cgroup knows the second one.
    let id = env.run_detached(&["sh", "-c", "sleep 1000 & exec sleep 1001"]);
    let pid = env.wait_status(&id, "running")["pid"].as_i64().unwrap();
    let other = env.run_detached(&["sleep", "1000"]);
    let path = env.root.join(&id).join("state.json");
    let text = std::fs::read(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    assert_eq!(list_status(&env, &id), "unknown");
    assert_eq!(list_status(&env, &other), "running");
    let table = env.hull(&["list"]).ok().to_string();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("unknown")),
        "{table}"
    );
    env.hull(&["state", &id])
        .fails_with("state.json is unreadable");
    env.hull(&["delete", &id]).fails_with("processes still run");
    env.hull(&["delete", "--force", &id]).ok();
    assert!(dead(pid), "init {pid} survived");
    assert!(
        cgroup_dirs_for(&id).is_empty(),
        "{:?}",
        cgroup_dirs_for(&id)
    );
    assert_eq!(env.ids(), vec![other.clone()]);
    assert_eq!(env.state(&other)["status"], "running");
    env.hull(&["delete", "--force", &other]).ok();
}

/// issue 15.9: a start that died after waking the init leaves start.sock behind; the status
/// comes from the kernel (no listener any more) and a second start says so.
#[test]
fn a_start_that_died_after_waking_the_init_reports_running() {
    if !require_root() {
        return;
    }
    use std::io::{Read, Write};
    let env = Env::new();
    env.set_args(&["sleep", "1000"]);
    let id = unique_id();
    env.hull(&["create", "--bundle", env.bundle.to_str().unwrap(), &id])
        .ok();
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    // What `hull start` does up to the moment it is killed.
    let sock = env.root.join(&id).join("start.sock");
    let mut conn = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    conn.write_all(b"s").unwrap();
    let mut reply = String::new();
    conn.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "");
    assert!(sock.exists());
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep");
    assert_eq!(env.state(&id)["status"], "running");
    assert_eq!(list_status(&env, &id), "running");
    env.hull(&["start", &id])
        .fails_with("cannot start an already running container");
    // Probing a created container's socket does not start it.
    let created = unique_id();
    env.hull(&["create", "--bundle", env.bundle.to_str().unwrap(), &created])
        .ok();
    let cpid = env.state(&created)["pid"].as_i64().unwrap();
    for _ in 0..3 {
        assert_eq!(env.state(&created)["status"], "created");
    }
    let comm = std::fs::read_to_string(format!("/proc/{cpid}/comm")).unwrap();
    assert_ne!(comm.trim(), "sleep");
    env.hull(&["start", &created]).ok();
    assert_eq!(env.state(&created)["status"], "running");
    env.hull(&["delete", "--force", &id]).ok();
    env.hull(&["delete", "--force", &created]).ok();
    assert!(dead(pid));
}

/// `start` of a created container that was paused waits for its init without the state lock:
/// `resume` gets through and the start completes. Every wait is bounded.
#[test]
fn start_of_a_paused_created_container_lets_resume_through() {
    if !require_root() {
        return;
    }
    use std::time::{Duration, Instant};
    let env = Env::new();
    env.set_args(&["sh", "-c", "echo started > /started; sleep 1000"]);
    let id = unique_id();
    env.hull(&["create", "--bundle", env.bundle.to_str().unwrap(), &id])
        .ok();
    env.hull(&["pause", &id]).ok();
    let mut start = env.cmd();
    start
        .args(["start", &id])
        .stdout(std::process::Stdio::null());
    let mut start = start.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let mut resume = env.cmd();
    resume.args(["resume", &id]);
    let mut resume = resume.spawn().unwrap();
    let wait = |c: &mut std::process::Child, what: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                // Only the hull command this test spawned, by its pid.
                let _ = c.kill();
                let _ = c.wait();
                panic!("{what} hung");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let resumed = wait(&mut resume, "resume");
    let started = wait(&mut start, "start");
    assert!(resumed.success() && started.success());
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(env.wait_status(&id, "running")["status"], "running");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !env.rootfs.join("started").exists() {
        assert!(Instant::now() < deadline, "the container never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
}
