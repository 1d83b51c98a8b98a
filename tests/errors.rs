//! Errors as engines read them (--log/--log-format), bad input rejected with the field or path
//! at fault and nothing left behind, and the safety of ids and of the hull binary.

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// Runs hull with `--log FILE --log-format json`, expects failure, and returns the single
/// error record the file must hold.
fn fail_json(env: &Env, args: &[&str]) -> Value {
    let log = env.tmp.path().join(format!("log-{}.json", unique_id()));
    let mut full = vec!["--log", log.to_str().unwrap(), "--log-format", "json"];
    full.extend_from_slice(args);
    let r = env.hull(&full);
    assert_ne!(r.code, 0, "unexpected success of {args:?}: {}", r.stdout);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    // The whole file is one object: podman parses it that way.
    let v: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("log is not one JSON object ({e}): {text:?}"));
    assert_eq!(v["level"], "error", "{v}");
    assert!(
        v["time"]
            .as_str()
            .is_some_and(|t| t.contains('T') && t.ends_with('Z')),
        "{v}"
    );
    assert_eq!(
        v.as_object().unwrap().len(),
        3,
        "only level, msg and time: {v}"
    );
    // The human on stderr gets the same message.
    assert!(
        r.stderr.contains(v["msg"].as_str().unwrap()),
        "stderr {:?} vs {v}",
        r.stderr
    );
    v
}

fn msg(v: &Value) -> &str {
    v["msg"].as_str().unwrap()
}

/// `create` of this env's bundle fails with a message holding every needle, leaving nothing.
fn create_fails(env: &Env, needles: &[&str]) {
    let id = unique_id();
    let v = fail_json(
        env,
        &["create", "--bundle", env.bundle.to_str().unwrap(), &id],
    );
    for n in needles {
        assert!(msg(&v).contains(n), "{:?} lacks {n:?}", msg(&v));
    }
    assert_nothing_left(env, &id);
}

#[test]
fn json_log_holds_exactly_one_error_record() {
    let Some(env) = Env::root() else {
        return;
    };
    let v = fail_json(&env, &["state", "no-such-container"]);
    assert!(msg(&v).contains("does not exist"), "{v}");
    let v = fail_json(&env, &["kill", "no-such-container", "KILL"]);
    assert!(msg(&v).contains("does not exist"), "{v}");
}

#[test]
fn text_log_is_logrus_style() {
    let Some(env) = Env::root() else {
        return;
    };
    let log = env.tmp.path().join("log.txt");
    let r = env.hull(&["--log", log.to_str().unwrap(), "state", "no-such-container"]);
    assert_ne!(r.code, 0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 1, "{text:?}");
    assert!(text.starts_with("time=\""), "{text:?}");
    assert!(text.contains("\" level=error msg=\""), "{text:?}");
    assert!(text.contains("does not exist"), "{text:?}");
    // Without --log the record goes to stderr in the same format.
    let r = env.hull(&["state", "no-such-container"]);
    assert!(
        r.stderr.starts_with("time=\"") && r.stderr.contains("level=error"),
        "{:?}",
        r.stderr
    );
}

#[test]
fn an_init_error_reaches_create_with_its_cause() {
    let Some(env) = Env::root() else {
        return;
    };
    env.set_args(&["/bin/nope"]);
    create_fails(&env, &["exec: \"/bin/nope\": no such file or directory"]);
    env.set_args(&["nope-not-in-path"]);
    create_fails(&env, &["executable file not found in $PATH"]);
    // run reports it the same way.
    env.set_args(&["/bin/nope"]);
    let id = unique_id();
    let v = fail_json(
        &env,
        &["run", "--bundle", env.bundle.to_str().unwrap(), &id],
    );
    assert!(
        msg(&v).contains("exec: \"/bin/nope\": no such file or directory"),
        "{v}"
    );
    assert_nothing_left(&env, &id);
}

#[test]
fn missing_bundle_and_config() {
    let Some(env) = Env::root() else {
        return;
    };
    let id = unique_id();
    let v = fail_json(
        &env,
        &["create", "--bundle", "/nonexistent/bundle-dir", &id],
    );
    assert!(msg(&v).contains("/nonexistent/bundle-dir"), "{v}");
    assert_nothing_left(&env, &id);
    std::fs::remove_file(env.bundle.join("config.json")).unwrap();
    create_fails(&env, &["config.json", "No such file"]);
}

#[test]
fn invalid_json_gives_line_and_column() {
    let Some(env) = Env::root() else {
        return;
    };
    std::fs::write(
        env.bundle.join("config.json"),
        "{\n  \"ociVersion\": \"1.2.0\",\n  \"process\": [,\n}",
    )
    .unwrap();
    create_fails(&env, &["line 3", "column"]);
    // Well-formed JSON of the wrong shape still says where.
    env.write_config(&env.default_config());
    env.edit(|v| v["process"]["user"]["uid"] = json!("root"));
    create_fails(&env, &["process.user.uid: invalid type", "line", "column"]);
    env.write_config(&env.default_config());
    env.edit(|v| v["mounts"][2]["options"] = json!("nosuid"));
    create_fails(&env, &["mounts[2].options: invalid type"]);
}

/// Each bad field is one error line naming it, and the create leaves nothing behind.
#[test]
fn config_validation_names_the_field() {
    let Some(env) = Env::root() else {
        return;
    };
    let fresh = || env.write_config(&env.default_config());
    env.set_args(&["echo", "a\u{0}b"]);
    create_fails(&env, &["process.args[1]: contains a NUL byte"]);
    fresh();
    env.edit(|v| v["process"]["env"] = json!(["A=1", "B=2", "C=3", "NOEQUALS"]));
    create_fails(&env, &["process.env[3]: \"NOEQUALS\" is not NAME=VALUE"]);
    env.edit(|v| v["process"]["env"] = json!(["A=1", "B=\u{0}x"]));
    create_fails(&env, &["process.env[1]: contains a NUL byte"]);
    fresh();
    env.edit(|v| v["hooks"] = json!({"prestart": [{"path": "/bin/true", "timeout": -5}]}));
    create_fails(
        &env,
        &["hooks.prestart[0].timeout: -5 must be greater than zero"],
    );
    fresh();
    let n = env.default_config()["mounts"].as_array().unwrap().len();
    for (dest, needle) in [
        ("", "must not be empty"),
        ("tmp/x", "must be an absolute path"),
    ] {
        fresh();
        env.edit(|v| {
            v["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs"}))
        });
        create_fails(&env, &[&format!("mounts[{n}].destination: "), needle]);
    }
    // A namespace file of another type, and a file that is no namespace at all.
    let fifo = env.tmp.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for (path, needle) in [
        (
            "/proc/self/ns/ipc",
            "is a namespace of type ipc, not network",
        ),
        (fifo.to_str().unwrap(), "not a namespace file"),
    ] {
        fresh();
        env.edit(|v| {
            for ns in v["linux"]["namespaces"].as_array_mut().unwrap() {
                if ns["type"] == "network" {
                    ns["path"] = json!(path);
                }
            }
        });
        create_fails(&env, &["linux.namespaces[", "].path: ", needle]);
    }
}

#[test]
fn unsupported_oci_version() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|v| v["ociVersion"] = json!("2.0.0"));
    create_fails(&env, &["ociVersion", "2.0.0"]);
}

#[test]
fn invalid_ids_are_refused_and_never_become_paths() {
    let Some(env) = Env::root() else {
        return;
    };
    let before: Vec<_> = std::fs::read_dir(env.tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    for id in ["../x", "a/b", ".x", "", "..", "/abs", "x\ny"] {
        let v = fail_json(
            &env,
            &["create", "--bundle", env.bundle.to_str().unwrap(), id],
        );
        assert!(msg(&v).contains("invalid container id"), "{id:?}: {v}");
        for cmd in [
            &["delete", "--force", id][..],
            &["state", id],
            &["start", id],
            &["kill", id, "KILL"],
        ] {
            let v = fail_json(&env, cmd);
            assert!(msg(&v).contains("invalid container id"), "{cmd:?}: {v}");
        }
    }
    assert!(env.ids().is_empty());
    let after: Vec<_> = std::fs::read_dir(env.tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    // Nothing appeared next to the state root (../x would be there), whatever the log files.
    assert!(
        after
            .iter()
            .filter(|n| !n.to_string_lossy().starts_with("log-") && **n != *"state")
            .all(|n| before.contains(n)),
        "{after:?}"
    );
}

#[test]
fn an_existing_id_is_refused_and_the_container_survives() {
    let Some(env) = Env::root() else {
        return;
    };
    env.set_args(&["sleep", "1000"]);
    let id = unique_id();
    env.hull(&["create", "--bundle", env.bundle.to_str().unwrap(), &id])
        .ok();
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let v = fail_json(
        &env,
        &["create", "--bundle", env.bundle.to_str().unwrap(), &id],
    );
    assert!(msg(&v).contains("exists"), "{v}");
    assert_eq!(env.state(&id)["pid"], pid);
    assert_eq!(env.state(&id)["status"], "created");
    env.hull(&["delete", "--force", &id]).ok();
}

#[test]
fn missing_rootfs() {
    let Some(env) = Env::root() else {
        return;
    };
    std::fs::remove_dir_all(&env.rootfs).unwrap();
    create_fails(&env, &["root.path", "rootfs"]);
}

#[test]
fn unknown_namespace_type() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|v| {
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "floof"}))
    });
    create_fails(&env, &["linux.namespaces[6].type", "floof"]);
}

#[test]
fn mount_destination_escaping_through_a_symlink() {
    let Some(env) = Env::root() else {
        return;
    };
    std::os::unix::fs::symlink("../../../../..", env.rootfs.join("escape")).unwrap();
    let n = env.default_config()["mounts"].as_array().unwrap().len();
    env.edit(|v| {
        v["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/escape/tmp/pwned", "type": "tmpfs", "source": "tmpfs"}));
    });
    create_fails(
        &env,
        &[&format!("mounts[{n}].destination"), "outside the rootfs"],
    );
    assert!(!Path::new("/tmp/pwned").exists());
}

#[test]
fn bind_source_that_does_not_exist() {
    let Some(env) = Env::root() else {
        return;
    };
    let n = env.default_config()["mounts"].as_array().unwrap().len();
    env.edit(|v| {
        v["mounts"].as_array_mut().unwrap().push(json!({"destination": "/mnt/x", "type": "bind", "source": "/nonexistent/src-dir", "options": ["bind"]}));
    });
    create_fails(&env, &[&format!("mounts[{n}]"), "/nonexistent/src-dir"]);
}

#[test]
fn systemd_cgroup_is_refused() {
    let Some(env) = Env::root() else {
        return;
    };
    let id = unique_id();
    let v = fail_json(
        &env,
        &[
            "--systemd-cgroup",
            "create",
            "--bundle",
            env.bundle.to_str().unwrap(),
            &id,
        ],
    );
    assert!(msg(&v).contains("systemd"), "{v}");
    assert_nothing_left(&env, &id);
}

#[test]
fn hull_binary_cannot_be_written_from_a_container() {
    if !require_root() {
        return;
    }
    let before = std::fs::read(HULL).unwrap();
    // A created container: its init is still hull, waiting for start, but running from a
    // read-only mount of the binary (or a sealed memfd copy), never a writable one.
    let a = Env::new();
    a.set_args(&["sleep", "1000"]);
    let a_id = unique_id();
    a.hull(&["create", "--bundle", a.bundle.to_str().unwrap(), &a_id])
        .ok();
    let pid = a.state(&a_id)["pid"].as_i64().unwrap();
    let exe = std::fs::File::open(format!("/proc/{pid}/exe")).unwrap();
    let link = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    // SAFETY: fstatvfs fills a zeroed struct we own.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(
        // SAFETY: fstatvfs fills the struct we own, from a file we hold open.
        unsafe { libc::fstatvfs(std::os::fd::AsRawFd::as_raw_fd(&exe), &mut st) },
        0
    );
    assert!(
        st.f_flag & libc::ST_RDONLY != 0 || link.to_string_lossy().starts_with("/memfd:hull"),
        "init runs from a writable {}",
        link.display()
    );

    // A second container in the same pid namespace goes for /proc/1/exe.
    let b = Env::new();
    b.edit(|v| {
        v.as_object_mut().unwrap().remove("hostname");
        v["linux"]["namespaces"] = json!([
            {"type": "pid", "path": format!("/proc/{pid}/ns/pid")}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "network"}
        ]);
    });
    let out = b.sh(
        "cat /proc/1/comm; (echo pwned >> /proc/1/exe) 2>/dev/null && echo APPENDED; \
         (echo pwned > /proc/1/exe) 2>/dev/null && echo TRUNCATED; \
         (exec 3<>/proc/1/exe) 2>/dev/null && echo OPENED-RW; echo done",
    );
    assert!(
        out.starts_with("hull\n") && out.ends_with("done\n"),
        "{out}"
    );
    assert!(
        !out.contains("APPENDED") && !out.contains("TRUNCATED") && !out.contains("OPENED-RW"),
        "{out}"
    );
    a.hull(&["delete", "--force", &a_id]).ok();

    let env = Env::new();
    env.sh("echo pwned > /proc/self/exe 2>/dev/null; echo ok");
    assert!(
        std::fs::read(HULL).unwrap() == before,
        "the hull binary changed"
    );
}

/// CVE-2019-5736 with CAP_SYS_PTRACE: a container sharing the pid namespace of a created
/// container opens the waiting init's /proc/1/exe (the hull binary), and writes through that fd
/// once the init has exec'd and no hull process runs any more. Runs against a copy of hull, so
/// a failure never damages the real binary. hull re-executes from a sealed memfd copy before it
/// makes any container process (src/runtime/sealed.rs), so the fd reaches no file on disk.
#[test]
fn hull_binary_cannot_be_overwritten_by_a_ptrace_capable_neighbour() {
    let Some(a) = Env::root() else {
        return;
    };
    let copy = a.tmp.path().join("hull-copy");
    std::fs::copy(HULL, &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let hull = |env: &Env, args: &[&str]| {
        let mut c = std::process::Command::new(&copy);
        c.arg("--root")
            .arg(&env.root)
            .args(args)
            .stdin(std::process::Stdio::null());
        capture(c)
    };
    a.set_args(&["sleep", "30"]);
    let a_id = unique_id();
    hull(
        &a,
        &["create", "--bundle", a.bundle.to_str().unwrap(), &a_id],
    )
    .ok();
    let pid = a.state(&a_id)["pid"].as_i64().unwrap();

    let b = Env::new();
    b.edit(|v| {
        v.as_object_mut().unwrap().remove("hostname");
        let caps = json!(["CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE", "CAP_KILL"]);
        v["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
        v["linux"]["namespaces"] = json!([
            {"type": "pid", "path": format!("/proc/{pid}/ns/pid")}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"}, {"type": "network"}
        ]);
    });
    b.set_args(&[
        "sh",
        "-c",
        "exec 3</proc/1/exe || exit 0; i=0; while [ $i -lt 40 ]; do \
         (echo PWNED > /proc/self/fd/3) 2>/dev/null && exit 0; sleep 0.1; i=$((i+1)); done",
    ]);
    let b_id = unique_id();
    hull(
        &b,
        &[
            "run",
            "--detach",
            "--bundle",
            b.bundle.to_str().unwrap(),
            &b_id,
        ],
    )
    .ok();
    hull(&a, &["start", &a_id]).ok();
    let deadline = Instant::now() + Duration::from_secs(8);
    while b.state(&b_id)["status"] != "stopped" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    a.hull(&["delete", "--force", &a_id]).ok();
    b.hull(&["delete", "--force", &b_id]).ok();
    assert!(
        std::fs::read(&copy).unwrap() == before,
        "a container overwrote the hull binary"
    );
}
