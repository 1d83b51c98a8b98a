//! OCI hooks: each phase runs with the container state on stdin, with exactly its configured
//! env and args, in the right namespace; failures and timeouts fail the step and leave nothing.

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

/// A hook that stores its stdin in `dir/<phase>.json`. `dir` is a host path for the runtime
/// namespace phases and createContainer, a container path for startContainer.
fn marker_hook(dir: &Path, phase: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}/$0.json", dir.display()), phase]})
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text:?}", path.display()))
}

#[test]
fn every_phase_runs_with_the_state_on_stdin() {
    let Some(env) = Env::root() else {
        return;
    };
    let host = env.tmp.path().join("markers");
    std::fs::create_dir(&host).unwrap();
    env.edit(|v| {
        v["annotations"] = json!({"org.hull.test": "hooks"});
        v["hooks"] = json!({
            "prestart": [marker_hook(&host, "prestart")],
            "createRuntime": [marker_hook(&host, "createRuntime")],
            "createContainer": [marker_hook(&host, "createContainer")],
            "startContainer": [marker_hook(Path::new("/"), "startContainer")],
            "poststart": [marker_hook(&host, "poststart")],
            "poststop": [marker_hook(&host, "poststop")],
        });
    });
    env.set_args(&["sleep", "1000"]);
    let id = unique_id();
    env.hull(&["create", "--bundle", env.bundle.to_str().unwrap(), &id])
        .ok();
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    for phase in ["prestart", "createRuntime", "createContainer"] {
        assert!(
            host.join(format!("{phase}.json")).exists(),
            "{phase} did not run at create"
        );
    }
    assert!(!host.join("poststart.json").exists());
    assert!(!env.rootfs.join("startContainer.json").exists());
    env.hull(&["start", &id]).ok();
    assert!(host.join("poststart.json").exists());
    assert!(!host.join("poststop.json").exists());
    env.hull(&["delete", "--force", &id]).ok();

    let bundle = env.bundle.to_str().unwrap();
    let check = |s: &Value, phase: &str, status: &str, want_pid: i64| {
        assert_eq!(s["id"], id.as_str(), "{phase}: {s}");
        assert_eq!(s["status"], status, "{phase}: {s}");
        assert_eq!(s["bundle"], bundle, "{phase}: {s}");
        assert_eq!(s["annotations"]["org.hull.test"], "hooks", "{phase}: {s}");
        assert_eq!(s["ociVersion"], "1.2.0", "{phase}: {s}");
        assert_eq!(s["pid"], want_pid, "{phase}: {s}");
    };
    check(
        &read_json(&host.join("prestart.json")),
        "prestart",
        "creating",
        pid,
    );
    check(
        &read_json(&host.join("createRuntime.json")),
        "createRuntime",
        "creating",
        pid,
    );
    // Hooks in the container's pid namespace see the init as pid 1, as with runc.
    check(
        &read_json(&host.join("createContainer.json")),
        "createContainer",
        "creating",
        1,
    );
    check(
        &read_json(&env.rootfs.join("startContainer.json")),
        "startContainer",
        "created",
        1,
    );
    check(
        &read_json(&host.join("poststart.json")),
        "poststart",
        "running",
        pid,
    );
    let post = read_json(&host.join("poststop.json"));
    assert_eq!(post["status"], "stopped", "{post}");
    assert_eq!(post["id"], id.as_str());
    assert_nothing_left(&env, &id);
}

#[test]
fn hooks_run_in_their_namespaces() {
    let Some(env) = Env::root() else {
        return;
    };
    let host = env.tmp.path().join("ns");
    std::fs::create_dir(&host).unwrap();
    let ns_hook = |dir: &Path, phase: &str| {
        json!({"path": "/bin/sh", "args": ["sh", "-c",
            format!("for n in mnt pid uts; do readlink /proc/self/ns/$n; done > {}/{phase}.ns", dir.display())]})
    };
    env.edit(|v| {
        v["hooks"] = json!({
            "createRuntime": [ns_hook(&host, "createRuntime")],
            "createContainer": [ns_hook(&host, "createContainer")],
            "startContainer": [ns_hook(Path::new("/"), "startContainer")],
        });
    });
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
    let ns_of = |p: &str| -> String {
        ["mnt", "pid", "uts"]
            .iter()
            .map(|n| {
                format!(
                    "{}\n",
                    std::fs::read_link(format!("/proc/{p}/ns/{n}"))
                        .unwrap()
                        .display()
                )
            })
            .collect()
    };
    assert_eq!(
        std::fs::read_to_string(host.join("createRuntime.ns")).unwrap(),
        ns_of("self")
    );
    let container = ns_of(&pid.to_string());
    assert_eq!(
        std::fs::read_to_string(host.join("createContainer.ns")).unwrap(),
        container
    );
    assert_eq!(
        std::fs::read_to_string(env.rootfs.join("startContainer.ns")).unwrap(),
        container
    );
    env.hull(&["delete", "--force", &id]).ok();
}

#[test]
fn hook_env_and_args_are_exactly_the_configured_ones() {
    let Some(env) = Env::root() else {
        return;
    };
    let out = env.tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let o = out.display();
    env.edit(|v| {
        v["hooks"] = json!({"createRuntime": [{
            "path": "/bin/sh",
            "args": ["custom-arg0", "-c", format!("tr '\\0' '\\n' < /proc/$$/environ > {o}/env; tr '\\0' '\\n' < /proc/$$/cmdline > {o}/args"), "x y"],
            "env": ["HOOK_A=1", "HOOK_B=two words", "PATH=/usr/bin:/bin"]
        }]});
    });
    env.run(&["true"]).ok();
    let mut got: Vec<String> = std::fs::read_to_string(out.join("env"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    got.sort();
    assert_eq!(got, ["HOOK_A=1", "HOOK_B=two words", "PATH=/usr/bin:/bin"]);
    let args = std::fs::read_to_string(out.join("args")).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(args[0], "custom-arg0");
    assert_eq!(args[1], "-c");
    assert_eq!(args[3], "x y");
}

#[test]
fn a_hanging_hook_is_killed_at_its_timeout() {
    let Some(env) = Env::root() else {
        return;
    };
    // An interval no other process uses, to find the hook among the host's processes.
    let marker = format!("30.{}", std::process::id());
    env.edit(|v| {
        v["hooks"] = json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", &marker], "timeout": 1}]});
    });
    let id = unique_id();
    let t = Instant::now();
    env.hull(&["create", "--bundle", env.bundle.to_str().unwrap(), &id])
        .fails_with("timed out");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    assert_nothing_left(&env, &id);
    assert!(
        processes_mentioning(&marker).is_empty(),
        "hook left running"
    );
}

#[test]
fn a_failing_create_hook_fails_create_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    for phase in ["prestart", "createRuntime", "createContainer"] {
        let env = Env::new();
        let host = env.tmp.path().join("markers");
        std::fs::create_dir(&host).unwrap();
        env.edit(|v| {
            v["hooks"] = json!({
                phase: [{"path": "/bin/sh", "args": ["sh", "-c", "echo boom-from-$0 >&2; exit 3", phase]}],
                "poststop": [marker_hook(&host, "poststop")],
            });
        });
        env.set_args(&["sleep", "1000"]);
        let id = unique_id();
        let r = env.hull(&["create", "--bundle", env.bundle.to_str().unwrap(), &id]);
        r.fails_with(&format!("boom-from-{phase}"));
        r.fails_with(phase);
        assert_nothing_left(&env, &id);
        // The spec continues a failed create with destroy, then the poststop hooks.
        let post = read_json(&host.join("poststop.json"));
        assert_eq!(post["status"], "stopped", "{phase}: {post}");
        assert_eq!(post["id"], id.as_str());
    }
}

#[test]
fn a_failing_start_container_hook_fails_start() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|v| {
        v["hooks"] = json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo start-boom >&2; exit 4"]}]});
    });
    env.set_args(&["sleep", "1000"]);
    let id = unique_id();
    env.hull(&["create", "--bundle", env.bundle.to_str().unwrap(), &id])
        .ok();
    env.hull(&["start", &id]).fails_with("start-boom");
    env.hull(&["delete", "--force", &id]).ok();
    assert_nothing_left(&env, &id);
}

#[test]
fn a_failing_poststop_hook_only_warns() {
    let Some(env) = Env::root() else {
        return;
    };
    let marker = env.tmp.path().join("second-poststop");
    env.edit(|v| {
        v["hooks"] = json!({"poststop": [
            {"path": "/bin/sh", "args": ["sh", "-c", "echo poststop-boom >&2; exit 5"]},
            {"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", marker.display())]}
        ]});
    });
    let r = env.run(&["sh", "-c", "echo fine"]);
    assert_eq!(r.ok(), "fine\n");
    assert!(
        r.stderr.contains("poststop-boom"),
        "no warning: {:?}",
        r.stderr
    );
    assert!(
        marker.exists(),
        "the hooks after the failed one must still run"
    );
    assert!(env.ids().is_empty());
}

#[test]
fn a_failing_poststart_hook_fails_start_and_stops_the_container() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|v| {
        v["hooks"] = json!({"poststart": [{"path": "/bin/sh", "args": ["sh", "-c", "echo poststart-boom >&2; exit 6"]}]});
    });
    env.set_args(&["sleep", "1000"]);
    let id = unique_id();
    env.hull(&["create", "--bundle", env.bundle.to_str().unwrap(), &id])
        .ok();
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    env.hull(&["start", &id]).fails_with("poststart-boom");
    let deadline = Instant::now() + Duration::from_secs(5);
    while env.state(&id)["status"] != "stopped" {
        assert!(
            Instant::now() < deadline,
            "container still {}",
            env.state(&id)["status"]
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "init still alive: {stat}"
    );
    env.hull(&["delete", &id]).ok();
    assert_nothing_left(&env, &id);
}

#[test]
fn a_missing_hook_binary_fails_create_naming_it() {
    if !require_root() {
        return;
    }
    for phase in ["createRuntime", "createContainer"] {
        let env = Env::new();
        env.edit(|v| v["hooks"] = json!({phase: [{"path": "/nonexistent/hook-binary"}]}));
        let id = unique_id();
        let r = env.hull(&["create", "--bundle", env.bundle.to_str().unwrap(), &id]);
        r.fails_with("/nonexistent/hook-binary");
        r.fails_with(phase);
        assert_nothing_left(&env, &id);
    }
}

/// The NUL-separated environ a hook wrote, sorted.
fn environ(path: &Path) -> Vec<String> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut v: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn start_container_hooks_without_env_get_the_process_env() {
    let Some(env) = Env::root() else {
        return;
    };
    // startContainer runs in the container: the paths are the container's. No shell: it would
    // add PWD and SHLVL of its own.
    let dump = |file: &str| json!(["cp", "/proc/self/environ", format!("/{file}")]);
    env.edit(|v| {
        v["process"]["env"] = json!(["PATH=/usr/bin:/bin", "FROM_PROCESS=two words"]);
        v["hooks"] = json!({"startContainer": [
            {"path": "/bin/cp", "args": dump("env-default")},
            {"path": "/bin/cp", "args": dump("env-own"), "env": ["OWN=1"]},
            {"path": "/bin/cp", "args": dump("env-empty"), "env": []},
        ]});
    });
    env.run(&["true"]).ok();
    assert_eq!(
        environ(&env.rootfs.join("env-default")),
        ["FROM_PROCESS=two words", "PATH=/usr/bin:/bin"]
    );
    assert_eq!(environ(&env.rootfs.join("env-own")), ["OWN=1"]);
    assert!(environ(&env.rootfs.join("env-empty")).is_empty());
}

/// start and delete run poststart and poststop without the state lock, so a hook may call hull
/// on its own container (engines' hooks do); a regression hangs the hook until its timeout.
#[test]
fn poststart_and_poststop_hooks_may_call_hull() {
    let Some(env) = Env::root() else {
        return;
    };
    let out = env.tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let id = unique_id();
    let state = |file: &str| {
        json!({"path": "/bin/sh", "timeout": 10, "args": ["sh", "-c", format!(
            "{HULL} --root {} state {id} > {}/{file} 2>&1; true",
            env.root.display(),
            out.display()
        )]})
    };
    env.edit(|v| {
        v["hooks"] = json!({"poststart": [state("poststart")], "poststop": [state("poststop")]})
    });
    env.set_args(&["sleep", "1000"]);
    env.hull(&["create", "--bundle", env.bundle.to_str().unwrap(), &id])
        .ok();
    let t = Instant::now();
    env.hull(&["start", &id]).ok();
    env.hull(&["delete", "--force", &id]).ok();
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "took {:?}",
        t.elapsed()
    );
    let poststart = std::fs::read_to_string(out.join("poststart")).unwrap();
    assert!(poststart.contains("\"running\""), "{poststart}");
    // As runc: poststop runs once the container is deleted.
    let poststop = std::fs::read_to_string(out.join("poststop")).unwrap();
    assert!(poststop.contains("does not exist"), "{poststop}");
}
