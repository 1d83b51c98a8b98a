//! linux.seccomp through real containers: every action and operator observed from busybox,
//! the podman default profile, the errors for what hull does not support, and the BPF cache.

mod common;
use common::*;
use serde_json::{json, Value};
use std::path::Path;

const PODMAN_PROFILE: &str = "/usr/share/containers/seccomp.json";

/// The podman default profile, installing it if missing; None (with the reason printed) when
/// it cannot be had.
fn podman_profile_file() -> Option<Value> {
    if !Path::new(PODMAN_PROFILE).exists() {
        let _ = std::process::Command::new("apt-get")
            .args(["install", "-y", "-qq", "golang-github-containers-common"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
    }
    match std::fs::read_to_string(PODMAN_PROFILE) {
        Ok(t) => Some(serde_json::from_str(&t).expect("podman profile is JSON")),
        Err(e) => {
            eprintln!("SKIP: {PODMAN_PROFILE}: {e} (apt-get install golang-github-containers-common failed)");
            None
        }
    }
}

fn native_scmp_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "aarch64" => "SCMP_ARCH_AARCH64",
        other => panic!("no seccomp arch for {other}"),
    }
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// What podman does with its profile before handing it to the runtime: keep the rules whose
/// includes/excludes match the container's capabilities and arch, and the arch map's entry.
fn podman_to_oci(profile: &Value, caps: &[&str]) -> Value {
    let has = |list: &Value, pred: &dyn Fn(&str) -> bool| {
        list.as_array()
            .map(|a| a.iter().filter_map(Value::as_str).any(pred))
    };
    let mut syscalls = Vec::new();
    for s in profile["syscalls"].as_array().expect("syscalls") {
        let inc = &s["includes"];
        let exc = &s["excludes"];
        if has(&inc["caps"], &|c| !caps.contains(&c)) == Some(true) {
            continue;
        }
        if has(&inc["arches"], &|a| a == go_arch()) == Some(false) {
            continue;
        }
        if has(&exc["caps"], &|c| caps.contains(&c)) == Some(true) {
            continue;
        }
        if has(&exc["arches"], &|a| a == go_arch()) == Some(true) {
            continue;
        }
        let mut rule = json!({"names": s["names"], "action": s["action"]});
        if let Some(e) = s.get("errnoRet") {
            rule["errnoRet"] = e.clone();
        }
        if let Some(a) = s
            .get("args")
            .filter(|a| a.as_array().is_some_and(|a| !a.is_empty()))
        {
            rule["args"] = a.clone();
        }
        syscalls.push(rule);
    }
    let mut archs = vec![json!(native_scmp_arch())];
    for m in profile["archMap"].as_array().into_iter().flatten() {
        if m["architecture"] == native_scmp_arch() {
            archs.extend(
                m["subArchitectures"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
        }
    }
    json!({
        "defaultAction": profile["defaultAction"],
        "defaultErrnoRet": profile["defaultErrnoRet"],
        "architectures": archs,
        "syscalls": syscalls,
    })
}

fn writable_env() -> Env {
    let env = Env::new();
    env.edit(|c| c["root"]["readonly"] = json!(false));
    env
}

fn with_seccomp(env: &Env, seccomp: Value) {
    env.edit(|c| c["linux"]["seccomp"] = seccomp);
}

#[test]
fn blocked_syscall_returns_the_configured_errno() {
    if !require_root() {
        return;
    }
    let env = writable_env();
    with_seccomp(
        &env,
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28},
            {"names": ["this_syscall_does_not_exist"], "action": "SCMP_ACT_KILL"}
        ]}),
    );
    let out = env.sh("mkdir /tmp/x 2>&1; echo rc=$?; rmdir /tmp 2>&1; echo rc=$?; touch /tmp/f && echo touched; grep ^Seccomp: /proc/self/status");
    assert!(out.contains("Operation not permitted\nrc=1\n"), "{out}");
    assert!(out.contains("No space left on device\nrc=1\n"), "{out}");
    assert!(out.contains("touched\n"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(!env.rootfs.join("tmp/x").exists());
}

/// Which of `kill -0`, `kill -USR1` (10) and `kill -USR2` (12) to the shell itself are blocked.
fn blocked_signals(env: &Env, args: Value) -> Vec<u32> {
    with_seccomp(
        env,
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": args}
        ]}),
    );
    let out =
        env.sh("trap '' USR1 USR2; for s in 0 10 12; do kill -$s $$ 2>/dev/null || echo $s; done");
    out.lines()
        .map(|l| l.parse().expect("signal number"))
        .collect()
}

#[test]
fn argument_filters_block_only_matching_calls() {
    if !require_root() {
        return;
    }
    let env = writable_env();
    let arg = |op: &str, value: u64, two: u64| json!([{"index": 1, "value": value, "valueTwo": two, "op": op}]);
    for (args, want) in [
        (arg("SCMP_CMP_EQ", 10, 0), vec![10]),
        (arg("SCMP_CMP_NE", 10, 0), vec![0, 12]),
        (arg("SCMP_CMP_LT", 10, 0), vec![0]),
        (arg("SCMP_CMP_LE", 10, 0), vec![0, 10]),
        (arg("SCMP_CMP_GE", 10, 0), vec![10, 12]),
        (arg("SCMP_CMP_GT", 10, 0), vec![12]),
        // (sig & 4) == 4: only 12 has bit 2.
        (arg("SCMP_CMP_MASKED_EQ", 4, 4), vec![12]),
        // Conditions of one rule are ANDed: sig >= 10 and sig <= 11.
        (
            json!([{"index": 1, "value": 10, "op": "SCMP_CMP_GE"}, {"index": 1, "value": 11, "op": "SCMP_CMP_LE"}]),
            vec![10],
        ),
    ] {
        assert_eq!(blocked_signals(&env, args.clone()), want, "args {args}");
    }
    // Rules of one syscall are ORed.
    with_seccomp(
        &env,
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 12, "op": "SCMP_CMP_EQ"}]}
        ]}),
    );
    let out =
        env.sh("trap '' USR1 USR2; for s in 0 10 12; do kill -$s $$ 2>/dev/null || echo $s; done");
    assert_eq!(out, "0\n12\n");
}

#[test]
fn every_action_has_its_effect() {
    if !require_root() {
        return;
    }
    let env = writable_env();
    // 159 = 128 + SIGSYS: the shell reports mkdir killed by the signal.
    for (action, want) in [
        ("SCMP_ACT_ERRNO", "rc=1"),
        ("SCMP_ACT_KILL", "rc=159"),
        ("SCMP_ACT_KILL_THREAD", "rc=159"),
        ("SCMP_ACT_KILL_PROCESS", "rc=159"),
        ("SCMP_ACT_TRAP", "rc=159"),
        // No tracer: the kernel answers ENOSYS.
        ("SCMP_ACT_TRACE", "rc=1"),
        ("SCMP_ACT_LOG", "rc=0"),
        ("SCMP_ACT_ALLOW", "rc=0"),
    ] {
        let _ = std::fs::remove_dir(env.rootfs.join("tmp/a"));
        with_seccomp(
            &env,
            json!({"defaultAction": if action == "SCMP_ACT_ALLOW" { "SCMP_ACT_LOG" } else { "SCMP_ACT_ALLOW" },
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": action}]}),
        );
        let out = env.sh("mkdir /tmp/a 2>/dev/null; echo rc=$?");
        assert_eq!(out.trim(), want, "{action}");
        assert_eq!(
            env.rootfs.join("tmp/a").exists(),
            want == "rc=0",
            "{action}"
        );
    }
    // The default action applies to everything no rule names.
    with_seccomp(
        &env,
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38, "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
        ]}),
    );
    // Every syscall fails ENOSYS: hull's own execve included, so the run itself fails.
    let r = env.run(&["true"]);
    assert_ne!(r.code, 0);
    assert!(env.ids().is_empty(), "{:?}", env.ids());
}

#[test]
fn podman_default_profile_runs_busybox_and_blocks_what_it_should() {
    if !require_root() {
        return;
    }
    let Some(profile) = podman_profile_file() else {
        return;
    };
    let env = writable_env();
    // CAP_SYS_ADMIN too, so that what the profile blocks differs from what the missing
    // capability would refuse.
    let mut caps: Vec<String> =
        serde_json::from_value(env.default_config()["process"]["capabilities"]["bounding"].clone())
            .unwrap();
    caps.push("CAP_SYS_ADMIN".into());
    env.edit(|c| {
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set] = json!(caps);
        }
    });
    let script = "rm -rf /tmp/d; mkdir /tmp/d && echo made; ls / >/dev/null && echo listed; \
         mount -t tmpfs none /tmp && echo mounted; : > /swap; swapon /swap 2>&1; \
         chroot / true 2>&1; linux32 uname -m; \
         grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status";
    // Control: without the profile, swapon of a non-swap file is EINVAL.
    let control = env.sh(script);
    assert!(
        control.contains("swapon: /swap: Invalid argument"),
        "{control}"
    );
    assert!(control.contains("Seccomp:\t0"), "{control}");
    let caps: Vec<&str> = caps.iter().map(String::as_str).collect();
    with_seccomp(&env, podman_to_oci(&profile, &caps));
    let out = env.sh(script);
    assert!(out.contains("made\nlisted\nmounted\n"), "{out}");
    // swapon is in the profile's unconditional EPERM list.
    assert!(
        out.contains("swapon: /swap: Operation not permitted"),
        "{out}"
    );
    // chroot has an EPERM rule unless CAP_SYS_CHROOT is granted.
    assert!(
        out.contains("chroot: can't change root directory to '/': Operation not permitted"),
        "{out}"
    );
    // personality(PER_LINUX32) is one of the argument-filtered allowed calls.
    assert!(
        out.contains("i686") || std::env::consts::ARCH != "x86_64",
        "{out}"
    );
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
}

#[test]
fn filter_is_installed_without_no_new_privileges() {
    if !require_root() {
        return;
    }
    let env = writable_env();
    env.edit(|c| c["process"]["noNewPrivileges"] = json!(false));
    with_seccomp(
        &env,
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}
        ]}),
    );
    let out = env.sh("mkdir /tmp/x 2>&1; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status");
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
}

#[test]
fn unsupported_features_fail_with_the_field_and_leave_nothing() {
    let Some(env) = Env::root() else {
        return;
    };
    with_seccomp(
        &env,
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["getcwd"], "action": "SCMP_ACT_NOTIFY"}
        ]}),
    );
    env.run(&["true"])
        .fails_with("linux.seccomp.listenerPath: required when SCMP_ACT_NOTIFY is used");
    assert!(env.ids().is_empty(), "{:?}", env.ids());
    with_seccomp(
        &env,
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}
        ]}),
    );
    env.run(&["true"])
        .fails_with("linux.seccomp.syscalls[0].args[0].index");
    with_seccomp(
        &env,
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "m"}),
    );
    env.run(&["true"])
        .fails_with("linux.seccomp.listenerMetadata: must not be set without listenerPath");
    with_seccomp(
        &env,
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "agent.sock",
            "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    env.run(&["true"])
        .fails_with("linux.seccomp.listenerPath: agent.sock is not absolute");
    assert!(env.ids().is_empty(), "{:?}", env.ids());
    // The spec: without SCMP_ACT_NOTIFY, listenerPath is ignored.
    with_seccomp(
        &env,
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/nobody-listens.sock"}),
    );
    env.run(&["true"]).ok();
}

#[test]
fn compiled_profiles_are_cached_by_hash() {
    if !require_root() {
        return;
    }
    let Some(profile) = podman_profile_file() else {
        return;
    };
    let oci = podman_to_oci(
        &profile,
        &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
    );
    let seccomp: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(oci.clone()).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let compiled = hull::seccomp::compile(&seccomp).unwrap();
    let (first, src) = hull::seccomp::load(&seccomp, Some(cache.path())).unwrap();
    assert_eq!(src, hull::seccomp::Source::Compiled);
    assert_eq!(compiled, first);
    // Averages over a few rounds: what a `create` pays with and without a cache entry.
    const ROUNDS: u32 = 20;
    let t = std::time::Instant::now();
    for _ in 0..ROUNDS {
        let (p, src) = hull::seccomp::load(&seccomp, None).unwrap();
        assert_eq!(src, hull::seccomp::Source::Compiled);
        assert_eq!(p, compiled);
    }
    let compile_time = t.elapsed() / ROUNDS;
    let t = std::time::Instant::now();
    for _ in 0..ROUNDS {
        let (p, src) = hull::seccomp::load(&seccomp, Some(cache.path())).unwrap();
        assert_eq!(src, hull::seccomp::Source::Cache);
        assert_eq!(p, compiled);
    }
    let cached_time = t.elapsed() / ROUNDS;
    let t = std::time::Instant::now();
    for _ in 0..ROUNDS {
        hull::seccomp::profile_hash(&seccomp).unwrap();
    }
    let hash_time = t.elapsed() / ROUNDS;
    eprintln!(
        "podman default profile ({} build): {} filters, {} BPF instructions; \
         compile {compile_time:?}, cache hit {cached_time:?} (of which hashing {hash_time:?})",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        compiled.filters.len(),
        compiled.instructions(),
    );
    // A run stores its profile under the cache dir hull is told to use.
    let env = Env::new();
    with_seccomp(&env, oci);
    env.set_args(&["true"]);
    let dir = env.tmp.path().join("cache");
    let out = env
        .cmd()
        .env("HULL_SECCOMP_CACHE", &dir)
        .args([
            "run",
            "--bundle",
            env.bundle.to_str().unwrap(),
            &unique_id(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        files[0],
        format!("{}.bpf", hull::seccomp::profile_hash(&seccomp).unwrap())
    );
}

#[test]
fn exec_gets_the_container_filter() {
    if !require_root() {
        return;
    }
    let env = writable_env();
    with_seccomp(
        &env,
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
        ]}),
    );
    env.set_args(&["sleep", "100"]);
    let id = unique_id();
    env.hull(&[
        "run",
        "--detach",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &id,
    ])
    .ok();
    let r = env.hull(&[
        "exec",
        &id,
        "sh",
        "-c",
        "mkdir /tmp/x 2>&1; grep ^Seccomp: /proc/self/status",
    ]);
    env.hull(&["delete", "--force", &id]).ok();
    let out = r.ok();
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(!env.rootfs.join("tmp/x").exists());
}
