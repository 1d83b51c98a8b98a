//! hull under a hostile seccomp profile: default errno, allowing only what busybox `true`, `sh`,
//! `ls` and `sleep` need (found with strace). None of hull's own syscalls (close_range, getcwd,
//! chdir, capset, setresuid, seccomp, sendmsg, accept4, ...) is in the list, so the container
//! starts only if hull makes no syscall of its own after the filter but execve.

mod common;
use common::*;
use serde_json::{json, Value};

/// What busybox's `true`, `sh -c`, `ls`, `cat`, `grep`, `readlink` and `sleep` call.
const BUSYBOX_NEEDS: &[&str] = &[
    "arch_prctl",
    "brk",
    "clock_nanosleep",
    "clone",
    "close",
    "dup2",
    "execve",
    "exit",
    "exit_group",
    "fcntl",
    "fstat",
    "getdents64",
    "getpid",
    "getppid",
    "getrandom",
    "getuid",
    "ioctl",
    "lseek",
    "mmap",
    "mprotect",
    "munmap",
    "nanosleep",
    "newfstatat",
    "openat",
    "pipe",
    "pipe2",
    "prctl",
    "prlimit64",
    "read",
    "readlink",
    "readlinkat",
    "rseq",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sendfile",
    "set_robust_list",
    "set_tid_address",
    "uname",
    "wait4",
    "write",
];

fn strict_profile() -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "syscalls": [{"names": BUSYBOX_NEEDS, "action": "SCMP_ACT_ALLOW"}]
    })
}

fn strict_env(no_new_privileges: bool) -> Env {
    let env = Env::new();
    env.edit(|c| {
        c["linux"]["seccomp"] = strict_profile();
        c["process"]["noNewPrivileges"] = json!(no_new_privileges);
        c["process"]["cwd"] = json!("/tmp");
    });
    env
}

/// What the process sees: its fds, its cwd, its capabilities and whether the profile bites.
const PROBE: &str = "ls /proc/self/fd | tr '\\n' ' '; echo; readlink /proc/self/cwd; \
    grep -E '^(CapEff|CapPrm|NoNewPrivs|Seccomp):' /proc/self/status; \
    mkdir /tmp/blocked 2>&1 || echo mkdir-refused";

fn check_probe(out: &str, no_new_privileges: bool, cap_eff: &str) {
    let mut lines = out.lines();
    // Only stdio, plus the fd ls itself opens for the directory: nothing of hull's.
    assert_eq!(lines.next(), Some("0 1 2 3 "), "{out}");
    assert_eq!(lines.next(), Some("/tmp"), "{out}");
    assert!(out.contains(&format!("CapEff:\t{cap_eff}\n")), "{out}");
    assert!(out.contains(&format!("CapPrm:\t{cap_eff}\n")), "{out}");
    assert!(
        out.contains(&format!("NoNewPrivs:\t{}\n", u8::from(no_new_privileges))),
        "{out}"
    );
    assert!(out.contains("Seccomp:\t2\n"), "{out}");
    assert!(
        out.contains("Operation not permitted\nmkdir-refused"),
        "{out}"
    );
}

/// The default config's capabilities as /proc shows them: CAP_SYS_ADMIN (bit 21) is not one.
fn default_cap_mask(env: &Env) -> String {
    let c = env.default_config();
    let names = c["process"]["capabilities"]["effective"]
        .as_array()
        .expect("effective caps")
        .clone();
    let bit = |n: &str| match n {
        "CAP_CHOWN" => 0,
        "CAP_DAC_OVERRIDE" => 1,
        "CAP_FOWNER" => 3,
        "CAP_FSETID" => 4,
        "CAP_KILL" => 5,
        "CAP_SETGID" => 6,
        "CAP_SETUID" => 7,
        "CAP_SETPCAP" => 8,
        "CAP_NET_BIND_SERVICE" => 10,
        "CAP_NET_RAW" => 13,
        "CAP_SYS_CHROOT" => 18,
        "CAP_SYS_ADMIN" => 21,
        "CAP_MKNOD" => 27,
        "CAP_AUDIT_WRITE" => 29,
        other => panic!("add {other} to the test's table"),
    };
    let mask = names
        .iter()
        .filter_map(Value::as_str)
        .fold(0u64, |m, n| m | 1 << bit(n));
    assert_eq!(
        mask & 1 << 21,
        0,
        "the default config must not grant CAP_SYS_ADMIN"
    );
    format!("{mask:016x}")
}

#[test]
fn run_under_a_strict_profile_with_and_without_no_new_privileges() {
    if !require_root() {
        return;
    }
    for nnp in [false, true] {
        let env = strict_env(nnp);
        let caps = default_cap_mask(&env);
        env.run(&["true"]).ok();
        let out = env.sh(PROBE);
        check_probe(&out, nnp, &caps);
        assert!(!env.rootfs.join("tmp/blocked").exists());
    }
}

#[test]
fn a_non_root_user_keeps_no_capability_under_a_strict_profile() {
    if !require_root() {
        return;
    }
    let env = strict_env(false);
    env.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    });
    let out = env.sh(PROBE);
    check_probe(&out, false, "0000000000000000");
}

#[test]
fn exec_under_a_strict_profile_with_and_without_no_new_privileges() {
    if !require_root() {
        return;
    }
    for nnp in [false, true] {
        let env = strict_env(nnp);
        let caps = default_cap_mask(&env);
        let id = env.run_detached(&["sleep", "60"]);
        env.wait_status(&id, "running");
        let r = env.hull(&["exec", &id, "true"]);
        r.ok();
        let r = env.hull(&["exec", "--cwd", "/tmp", &id, "sh", "-c", PROBE]);
        check_probe(r.ok(), nnp, &caps);
        env.hull(&["delete", "--force", &id]).ok();
        assert_nothing_left(&env, &id);
    }
}
