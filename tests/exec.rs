//! `hull exec`: a new process joins the running container's namespaces and cgroup, with the
//! process settings runc's flags give it.

mod common;
use common::*;

/// A running container (a long sleep) under a fresh id.
fn running(env: &Env) -> String {
    env.set_args(&["sleep", "1000"]);
    let id = unique_id();
    env.hull(&["run", "-d", "--bundle", env.bundle.to_str().unwrap(), &id])
        .ok();
    id
}

fn ns_links(pid: &str) -> Vec<String> {
    ["pid", "net", "ipc", "uts", "mnt", "cgroup"]
        .iter()
        .map(|n| {
            std::fs::read_link(format!("/proc/{pid}/ns/{n}"))
                .unwrap()
                .display()
                .to_string()
        })
        .collect()
}

#[test]
fn exec_joins_every_namespace_and_the_cgroup_of_the_init() {
    if !require_root() {
        return;
    }
    let env = Env::new();
    let id = running(&env);
    let init = env.state(&id)["pid"].as_i64().unwrap().to_string();
    let pid_file = env.tmp.path().join("exec.pid");
    env.hull(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "sleep",
        "100",
    ])
    .ok();
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(ns_links(&pid), ns_links(&init));
    let cg = |p: &str| std::fs::read_to_string(format!("/proc/{p}/cgroup")).unwrap();
    assert_eq!(cg(&pid), cg(&init));
    // Inside, the init is pid 1 and the exec'd shell sees it.
    let r = env.hull(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname",
    ]);
    let out = r.ok();
    assert!(out.starts_with("sleep 1000"), "{out}");
    assert_eq!(out.lines().nth(1), Some("hull"));
}

#[test]
fn exec_returns_the_exit_code_and_applies_user_env_cwd() {
    if !require_root() {
        return;
    }
    let env = Env::new();
    let id = running(&env);
    assert_eq!(env.hull(&["exec", &id, "sh", "-c", "exit 5"]).code, 5);
    let out = env
        .hull(&[
            "exec",
            "--user",
            "65534:65534",
            "-g",
            "10",
            "-e",
            "FOO=bar",
            "--cwd",
            "/tmp",
            &id,
            "sh",
            "-c",
            "echo $FOO; id -u; id -g; id -G; pwd",
        ])
        .ok()
        .to_string();
    assert_eq!(out, "bar\n65534\n65534\n65534 10\n/tmp\n");
    // Without flags, the container's own process settings apply (PATH from the config).
    assert!(env
        .hull(&["exec", &id, "sh", "-c", "echo $PATH"])
        .ok()
        .contains("/bin"));
}

#[test]
fn exec_process_file_and_caps() {
    if !require_root() {
        return;
    }
    let env = Env::new();
    let id = running(&env);
    let process = serde_json::json!({
        "args": ["sh", "-c", "grep CapEff /proc/self/status; echo $X"],
        "env": ["PATH=/bin", "X=from-file"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "capabilities": {"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"]}
    });
    let file = env.tmp.path().join("process.json");
    std::fs::write(&file, process.to_string()).unwrap();
    let out = env
        .hull(&["exec", "--process", file.to_str().unwrap(), &id])
        .ok()
        .to_string();
    assert_eq!(out, "CapEff:\t0000000000000001\nfrom-file\n");
    // --cap adds to the container's default set (AUDIT_WRITE, KILL, NET_BIND_SERVICE).
    let out = env
        .hull(&[
            "exec",
            "--cap",
            "CAP_SYS_ADMIN",
            &id,
            "grep",
            "CapEff",
            "/proc/self/status",
        ])
        .ok()
        .to_string();
    assert_eq!(out.trim(), "CapEff:\t0000000020200420");
}

#[test]
fn exec_sees_only_its_own_fds_and_preserved_ones() {
    if !require_root() {
        return;
    }
    let env = Env::new();
    let id = running(&env);
    let out = env
        .hull(&["exec", &id, "ls", "/proc/self/fd"])
        .ok()
        .to_string();
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"],
        "only stdio and ls's own dir fd"
    );
    let data = env.tmp.path().join("data");
    std::fs::write(&data, "preserved\n").unwrap();
    let f = std::fs::File::open(&data).unwrap();
    let mut c = env.cmd();
    c.args(["exec", "--preserve-fds", "1", &id, "sh", "-c", "cat <&3"]);
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let raw = f.as_raw_fd();
    // SAFETY: dup2 in the forked child before exec.
    unsafe {
        c.pre_exec(move || {
            // dup2 onto itself keeps close-on-exec: clear it explicitly.
            if libc::dup2(raw, 3) < 0 || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    assert_eq!(capture(c).ok(), "preserved\n");
}

#[test]
fn exec_errors_are_clear() {
    if !require_root() {
        return;
    }
    let env = Env::new();
    let id = running(&env);
    let r = env.hull(&["exec", &id, "/bin/nope"]);
    r.fails_with("/bin/nope");
    r.fails_with("no such file or directory");
    env.hull(&["exec", "missing-container", "true"])
        .fails_with("does not exist");
    env.hull(&["exec", &id]).fails_with("no command");
    env.hull(&["kill", &id, "KILL"]).ok();
    env.wait_status(&id, "stopped");
    env.hull(&["exec", &id, "true"])
        .fails_with("container not running");
    // Nothing of the failed execs is left in the container's cgroup.
    let created = unique_id();
    env.hull(&["create", "--bundle", env.bundle.to_str().unwrap(), &created])
        .ok();
    env.hull(&["exec", &created, "true"]).fails_with("created");
}
