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
    let Some(env) = Env::root() else {
        return;
    };
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
    let Some(env) = Env::root() else {
        return;
    };
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
    let Some(env) = Env::root() else {
        return;
    };
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
    let Some(env) = Env::root() else {
        return;
    };
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
    let Some(env) = Env::root() else {
        return;
    };
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

/// A hull command running in the background, its output in files.
struct Background {
    child: std::process::Child,
    out: std::fs::File,
    err: std::fs::File,
}

impl Background {
    fn spawn(mut c: std::process::Command) -> Background {
        let out = tempfile::tempfile().unwrap();
        let err = tempfile::tempfile().unwrap();
        c.stdout(out.try_clone().unwrap())
            .stderr(err.try_clone().unwrap());
        Background {
            child: c.spawn().expect("spawn hull"),
            out,
            err,
        }
    }

    fn read(f: &mut std::fs::File) -> String {
        use std::io::{Read, Seek};
        let mut s = String::new();
        f.rewind().unwrap();
        f.read_to_string(&mut s).unwrap();
        s
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits at most `limit`: a hang is a failure (the command is killed), never a hung test.
    fn finish(mut self, what: &str, limit: std::time::Duration) -> Ran {
        let deadline = std::time::Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{what} still running after {limit:?}: stderr {:?}",
                    Self::read(&mut self.err)
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        Ran {
            code: status.code().unwrap_or(-1),
            stdout: Self::read(&mut self.out),
            stderr: Self::read(&mut self.err),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Only this test's own hull command, by its pid.
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `hull CMD...` run to completion within `limit`, or the test fails.
fn hull_within(env: &Env, args: &[&str], limit: std::time::Duration) -> Ran {
    let mut c = env.cmd();
    c.args(args);
    Background::spawn(c).finish(&format!("hull {}", args.join(" ")), limit)
}

const LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits until exec's first child is in the container's (frozen) cgroup: hull has then set up
/// its signal handling and waits on the container.
fn wait_for_second_pid(env: &Env, id: &str) {
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let pids: Vec<i64> =
            serde_json::from_str(hull_within(env, &["ps", "--format", "json", id], LIMIT).ok())
                .unwrap();
        if pids.len() >= 2 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "exec never joined the container's cgroup: {pids:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn exec_into_a_paused_container_lets_resume_through() {
    let Some(env) = Env::root() else {
        return;
    };
    let id = running(&env);
    hull_within(&env, &["pause", &id], LIMIT).ok();
    let mut c = env.cmd();
    c.args(["exec", "--ignore-paused", &id, "sh", "-c", "echo ran"]);
    let mut exec = Background::spawn(c);
    // Waiting on the frozen cgroup, holding whatever it holds.
    wait_for_second_pid(&env, &id);
    assert!(exec.is_running(), "exec finished in a frozen container");
    let st = hull_within(&env, &["state", &id], LIMIT);
    assert!(st.ok().contains("\"paused\""), "{}", st.stdout);
    let started = std::time::Instant::now();
    hull_within(&env, &["resume", &id], LIMIT).ok();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "resume waited {:?}",
        started.elapsed()
    );
    assert_eq!(exec.finish("exec after resume", LIMIT).ok(), "ran\n");
}

#[test]
fn sigterm_ends_an_exec_waiting_on_a_paused_container() {
    let Some(env) = Env::root() else {
        return;
    };
    let id = running(&env);
    hull_within(&env, &["pause", &id], LIMIT).ok();
    let marker = format!("exec-after-term-{}", std::process::id());
    let mut c = env.cmd();
    c.args([
        "exec",
        "--ignore-paused",
        &id,
        "touch",
        &format!("/{marker}"),
    ]);
    let exec = Background::spawn(c);
    wait_for_second_pid(&env, &id);
    // SAFETY: signalling the hull process this test spawned, by its pid.
    unsafe { libc::kill(exec.child.id() as i32, libc::SIGTERM) };
    let r = exec.finish("exec after SIGTERM", LIMIT);
    r.fails_with("SIGTERM");
    assert_eq!(r.stderr.trim().lines().count(), 1, "{:?}", r.stderr);
    hull_within(&env, &["resume", &id], LIMIT).ok();
    // What exec had forked dies on thaw: the command never runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !processes_mentioning(&marker).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "left behind: {:?}",
            processes_mentioning(&marker)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!env.rootfs.join(&marker).exists(), "the command ran");
    assert_eq!(
        hull_within(&env, &["exec", &id, "echo", "alive"], LIMIT).ok(),
        "alive\n"
    );
}

#[test]
fn exec_gets_the_container_personality() {
    if !require_root() {
        return;
    }
    if std::env::consts::ARCH != "x86_64" {
        eprintln!("SKIP: LINUX32 reads as i686 only on x86_64");
        return;
    }
    let env = Env::new();
    let plain = running(&env);
    assert_eq!(env.hull(&["exec", &plain, "uname", "-m"]).ok(), "x86_64\n");
    env.edit(|v| v["linux"]["personality"] = serde_json::json!({"domain": "LINUX32"}));
    let id = running(&env);
    assert_eq!(env.hull(&["exec", &id, "uname", "-m"]).ok(), "i686\n");
}

/// Sub-cgroups a test made, removed (deepest first) even when it fails, before the container's
/// own cgroup goes: declare after the Env.
#[derive(Default)]
struct SubCgroups(Vec<std::path::PathBuf>);

impl SubCgroups {
    fn make(&mut self, dir: std::path::PathBuf) {
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        self.0.push(dir.clone());
        // A new cpuset cgroup has no cpus or mems until given its parent's.
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if let (Ok(v), true) = (
                std::fs::read_to_string(dir.parent().unwrap().join(f)),
                dir.join(f).exists(),
            ) {
                std::fs::write(dir.join(f), v.trim()).unwrap();
            }
        }
    }
}

impl Drop for SubCgroups {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// /proc/PID/cgroup as (controllers, path) pairs, in order.
fn cgroup_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let (_, c, p) = (it.next()?, it.next()?, it.next()?);
            Some((c.to_string(), p.to_string()))
        })
        .collect()
}

fn below(path: &str, sub: &str) -> String {
    format!("{}/{sub}", path.trim_end_matches('/'))
}

/// The host directory of each cgroup v1 hierarchy (keyed by its /proc/PID/cgroup controllers).
fn v1_mounts() -> Vec<(String, std::path::PathBuf)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let right: Vec<&str> = right.split(' ').collect();
        if right.first() != Some(&"cgroup") {
            continue;
        }
        let ctrls: Vec<&str> = right[2]
            .split(',')
            .filter(|o| !matches!(*o, "rw" | "ro" | "noprefix" | "xattr" | "clone_children"))
            .filter(|o| !o.starts_with("release_agent="))
            .collect();
        out.push((ctrls.join(","), left.split(' ').nth(4).unwrap().into()));
    }
    out
}

#[test]
fn exec_cgroup_joins_an_existing_sub_cgroup() {
    let Some(env) = Env::root() else {
        return;
    };
    let mut subs = SubCgroups::default();
    let id = running(&env);
    let init = env.state(&id)["pid"].as_i64().unwrap();
    let host = cgroup_lines(&std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap());
    let inside = |args: &[&str]| {
        let mut a = vec!["exec"];
        a.extend_from_slice(args);
        a.extend_from_slice(&[&id, "cat", "/proc/self/cgroup"]);
        cgroup_lines(env.hull(&a).ok())
    };
    let base = inside(&[]);
    let sub = "hull-exec-sub";
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if v2 {
        // cgroup v2: one hierarchy, one PATH.
        let (_, path) = host.iter().find(|(c, _)| c.is_empty()).unwrap();
        subs.make(
            std::path::Path::new("/sys/fs/cgroup").join(below(path, sub).trim_start_matches('/')),
        );
        let got = inside(&["--cgroup", sub]);
        assert_eq!(got, vec![(String::new(), below(&base[0].1, sub))]);
        env.hull(&[
            "exec", "--cgroup", "memory:a", "--cgroup", "pids:b", &id, "true",
        ])
        .fails_with("one hierarchy");
    } else {
        let mounts = v1_mounts();
        let dir_of = |ctrls: &str| -> std::path::PathBuf {
            let (_, mount) = mounts.iter().find(|(c, _)| c == ctrls).unwrap();
            let (_, path) = host.iter().find(|(c, _)| c == ctrls).unwrap();
            mount.join(below(path, sub).trim_start_matches('/'))
        };
        let Some((mem, _)) = host
            .iter()
            .find(|(c, _)| c.split(',').any(|c| c == "memory"))
        else {
            eprintln!("SKIP: no cgroup v1 memory controller");
            return;
        };
        subs.make(dir_of(mem));
        // One controller: only its line moves.
        let got = inside(&["--cgroup", &format!("memory:{sub}")]);
        assert_eq!(got.len(), base.len());
        for ((c, p), (bc, bp)) in got.iter().zip(&base) {
            assert_eq!(c, bc);
            let want = if c == mem { below(bp, sub) } else { bp.clone() };
            assert_eq!(p, &want, "{c}");
        }
        // A bare PATH: every v1 hierarchy (the controller-less cgroup2 has no such sub-cgroup
        // here, so it stays put).
        for (c, _) in host.iter().filter(|(c, _)| !c.is_empty() && c != mem) {
            subs.make(dir_of(c));
        }
        let got = inside(&["--cgroup", sub]);
        for ((c, p), (_, bp)) in got.iter().zip(&base) {
            let want = if c.is_empty() {
                bp.clone()
            } else {
                below(bp, sub)
            };
            assert_eq!(p, &want, "{c:?}");
        }
        env.hull(&["exec", "--cgroup", "nosuchctl:x", &id, "true"])
            .fails_with("controller nosuchctl is mounted");
    }
    for (flag, want) in [
        ("memory:../../escape", "outside the container's cgroup"),
        ("../x", "outside the container's cgroup"),
        ("memory:nonexistent-sub", "does not exist"),
    ] {
        let r = env.hull(&["exec", "--cgroup", flag, &id, "true"]);
        r.fails_with(want);
        r.fails_with("--cgroup");
        assert_eq!(r.stderr.trim().lines().count(), 1, "{:?}", r.stderr);
    }
    // Nothing of the refused execs joined the container.
    let pids: serde_json::Value =
        serde_json::from_str(env.hull(&["ps", "--format", "json", &id]).ok()).unwrap();
    assert_eq!(pids, serde_json::json!([init]));
    // A process in a sub-cgroup is still the container's: ps lists it, and delete removes the
    // sub-cgroups with the container's own.
    let pid_file = env.tmp.path().join("sub.pid");
    let pid_file = pid_file.to_str().unwrap();
    let flag = if v2 {
        sub.to_string()
    } else {
        format!("memory:{sub}")
    };
    env.hull(&[
        "exec",
        "-d",
        "--pid-file",
        pid_file,
        "--cgroup",
        &flag,
        &id,
        "sleep",
        "1000",
    ])
    .ok();
    let exec_pid: i64 = std::fs::read_to_string(pid_file).unwrap().parse().unwrap();
    let pids: Vec<i64> =
        serde_json::from_str(env.hull(&["ps", "--format", "json", &id]).ok()).unwrap();
    assert!(pids.contains(&exec_pid), "{pids:?} lacks {exec_pid}");
    env.hull(&["delete", "--force", &id]).ok();
    assert_nothing_left(&env, &id);
}

/// exec lands in the container's root however the init entered it: here with `--no-pivot`; the
/// cgroup v2 VM, whose root is an initramfs where pivot_root is impossible, runs this suite too.
#[test]
fn exec_into_a_no_pivot_container_enters_its_root() {
    let Some(env) = Env::root() else {
        return;
    };
    env.set_args(&["sleep", "1000"]);
    let id = unique_id();
    let bundle = env.bundle.to_str().unwrap();
    env.hull(&["run", "-d", "--no-pivot", "--bundle", bundle, &id])
        .ok();
    std::fs::write(env.rootfs.join("marker"), "inside\n").unwrap();
    let out = env
        .hull(&[
            "exec",
            &id,
            "sh",
            "-c",
            "cat /proc/1/cmdline | tr '\\0' ' '; echo; cat /marker",
        ])
        .ok()
        .to_string();
    assert_eq!(out, "sleep 1000 \ninside\n");
    env.hull(&["delete", "--force", &id]).ok();
}
