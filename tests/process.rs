//! The container process: args, env, cwd, user and groups, umask, rlimits, capabilities,
//! no_new_privs, the terminal handed over a console socket, preserved fds and LISTEN_FDS,
//! --pid-file, and the fds the process can see.

mod common;
use common::*;
use serde_json::json;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} not in status:\n{status}"))
        .trim()
        .to_string()
}

#[test]
fn args_reach_the_process_verbatim() {
    let Some(env) = Env::root() else {
        return;
    };
    let out = env.run(&[
        "sh",
        "-c",
        "printf '[%s]' \"$0\" \"$@\"",
        "zero",
        "a b",
        "",
        "*",
        "$HOME",
    ]);
    assert_eq!(out.ok(), "[zero][a b][][*][$HOME]");
}

#[test]
fn env_is_exactly_the_config() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|v| {
        v["process"]["env"] = json!(["PATH=/bin:/usr/bin", "FOO=bar baz", "EMPTY=", "TERM=dumb"]);
    });
    // env itself, not a shell, so nothing is added to the environment it prints.
    let out = env.run(&["env"]);
    let mut got: Vec<&str> = out.ok().lines().collect();
    got.sort();
    assert_eq!(
        got,
        ["EMPTY=", "FOO=bar baz", "PATH=/bin:/usr/bin", "TERM=dumb"]
    );
}

#[test]
fn cwd_is_entered_and_created_when_missing() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|v| v["process"]["cwd"] = json!("/etc"));
    assert_eq!(env.sh("pwd; ls passwd"), "/etc\npasswd\n");
    env.edit(|v| v["process"]["cwd"] = json!("/new/deep/dir"));
    assert_eq!(env.sh("pwd"), "/new/deep/dir\n");
    assert!(env.rootfs.join("new/deep/dir").is_dir());
}

#[test]
fn user_groups_and_umask() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|v| {
        v["process"]["user"] =
            json!({"uid": 1234, "gid": 2345, "additionalGids": [10, 20, 2345], "umask": 0o027});
    });
    let out = env.sh(
        "id -u; id -g; grep -E '^(Uid|Gid|Groups):' /proc/self/status; umask; \
         touch /tmp/f && stat -c '%a %u %g' /tmp/f; mkdir /tmp/d && stat -c %a /tmp/d",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1234");
    assert_eq!(lines[1], "2345");
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["Uid:", "1234", "1234", "1234", "1234"]
    );
    assert_eq!(
        lines[3].split_whitespace().collect::<Vec<_>>(),
        ["Gid:", "2345", "2345", "2345", "2345"]
    );
    assert_eq!(
        lines[4].split_whitespace().collect::<Vec<_>>(),
        ["Groups:", "10", "20", "2345"]
    );
    assert_eq!(lines[5], "0027");
    assert_eq!(lines[6], "640 1234 2345");
    assert_eq!(lines[7], "750");
}

#[test]
fn rlimits_are_applied() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|v| {
        v["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
            {"type": "RLIMIT_NPROC", "soft": 512, "hard": 1024}
        ]);
    });
    let out =
        env.sh("grep -E '^Max (open files|core file size|processes)' /proc/self/limits; ulimit -n");
    let fields = |name: &str| -> Vec<String> {
        let l = out
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}:\n{out}"));
        l[name.len()..]
            .split_whitespace()
            .take(2)
            .map(String::from)
            .collect()
    };
    assert_eq!(fields("Max open files"), ["1024", "2048"]);
    assert_eq!(fields("Max core file size"), ["0", "0"]);
    assert_eq!(fields("Max processes"), ["512", "1024"]);
    assert_eq!(out.lines().last(), Some("1024"));

    let env = Env::new();
    env.edit(|v| v["process"]["rlimits"] = json!([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]));
    let r = env.run(&["true"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("RLIMIT_BOGUS"), "{}", r.stderr);
}

const CHOWN: u64 = 1 << 0;
const KILL: u64 = 1 << 5;
const NET_BIND: u64 = 1 << 10;
const NET_RAW: u64 = 1 << 13;

fn caps_of(out: &str) -> [u64; 5] {
    let mut r = [0; 5];
    for (i, k) in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
        .iter()
        .enumerate()
    {
        r[i] = u64::from_str_radix(&status_field(out, k), 16).unwrap();
    }
    r
}

#[test]
fn capability_sets_for_root() {
    let Some(env) = Env::root() else {
        return;
    };
    let set = json!(["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    env.edit(|v| {
        v["process"]["capabilities"] = json!({
            "bounding": set, "permitted": set, "effective": set, "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]
        });
    });
    let c = caps_of(&env.sh("cat /proc/self/status"));
    assert_eq!(
        c,
        [
            KILL,
            CHOWN | KILL | NET_BIND,
            CHOWN | KILL | NET_BIND,
            CHOWN | KILL | NET_BIND,
            KILL
        ],
        "Inh Prm Eff Bnd Amb"
    );
    // A capability the bounding set lacks is really gone: chown to another user fails.
    let env = Env::new();
    env.edit(|v| {
        let s = json!(["CAP_KILL"]);
        v["process"]["capabilities"] = json!({"bounding": s, "permitted": s, "effective": s});
    });
    let out = env.sh(
        "touch /tmp/x; chown 5 /tmp/x 2>/dev/null && echo chowned; grep CapBnd /proc/self/status",
    );
    assert!(!out.contains("chowned"), "{out}");
    assert_eq!(
        u64::from_str_radix(&status_field(&out, "CapBnd"), 16).unwrap(),
        KILL
    );
}

#[test]
fn capability_sets_for_a_user_with_ambient_caps() {
    let Some(env) = Env::root() else {
        return;
    };
    let set = json!(["CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]);
    env.edit(|v| {
        v["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        v["process"]["capabilities"] = json!({
            "bounding": ["CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_KILL"], "permitted": set,
            "effective": set, "inheritable": set, "ambient": set
        });
    });
    let c = caps_of(&env.sh("cat /proc/self/status"));
    let x = NET_BIND | NET_RAW;
    assert_eq!(c, [x, x, x, x | KILL, x], "Inh Prm Eff Bnd Amb");

    // Without ambient caps a non-root user keeps nothing across exec.
    let env = Env::new();
    env.edit(|v| {
        v["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        v["process"]["capabilities"] = json!({"bounding": set, "permitted": set, "effective": set});
    });
    let c = caps_of(&env.sh("cat /proc/self/status"));
    assert_eq!(c, [0, 0, 0, x, 0], "Inh Prm Eff Bnd Amb");
}

#[test]
fn no_new_privileges() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|v| v["process"]["noNewPrivileges"] = json!(true));
    assert_eq!(
        env.sh("grep NoNewPrivs /proc/self/status")
            .split_whitespace()
            .nth(1),
        Some("1")
    );
    env.edit(|v| v["process"]["noNewPrivileges"] = json!(false));
    assert_eq!(
        env.sh("grep NoNewPrivs /proc/self/status")
            .split_whitespace()
            .nth(1),
        Some("0")
    );
}

/// Reads a pty master until the slave side is gone (EIO) or the deadline passes.
fn read_pty(master: &OwnedFd, deadline: Instant) -> String {
    let mut out = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "pty output never ended: {:?}",
            String::from_utf8_lossy(&out)
        );
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll/read on an fd we own into our buffer.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(500) as i32) };
        if n <= 0 {
            continue;
        }
        let mut buf = [0u8; 4096];
        // SAFETY: reading into our own buffer, within its length, from an fd we hold.
        let r = unsafe { libc::read(master.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if r <= 0 {
            break;
        }
        out.extend_from_slice(&buf[..r as usize]);
    }
    String::from_utf8_lossy(&out).replace('\r', "")
}

#[test]
fn terminal_is_handed_over_the_console_socket() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|v| {
        v["process"]["terminal"] = json!(true);
        v["process"]["consoleSize"] = json!({"height": 33, "width": 111});
    });
    env.set_args(&[
        "sh",
        "-c",
        "tty; [ -t 0 ] && [ -t 1 ] && echo stdio-is-tty; ls -l /dev/console | cut -c1; stty size; echo end",
    ]);
    let sock_path = env.tmp.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let id = unique_id();
    let mut create = env.cmd();
    create
        .args([
            "create",
            "--console-socket",
            sock_path.to_str().unwrap(),
            "--bundle",
            env.bundle.to_str().unwrap(),
            &id,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = create.spawn().unwrap();
    let (conn, _) = listener.accept().unwrap();
    let master = {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        let mut buf = [0u8; 256];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .unwrap();
        let fd = msg
            .cmsgs()
            .unwrap()
            .find_map(|c| match c {
                ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                _ => None,
            })
            .expect("an fd over SCM_RIGHTS");
        // SAFETY: the kernel installed this fd for us.
        unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
    };
    let done = child.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "create: {}",
        String::from_utf8_lossy(&done.stderr)
    );
    // The fd is a pty master.
    let target = std::fs::read_link(format!("/proc/self/fd/{}", master.as_raw_fd())).unwrap();
    assert!(target.to_string_lossy().contains("ptmx"), "{target:?}");
    env.hull(&["start", &id]).ok();
    let out = read_pty(&master, Instant::now() + Duration::from_secs(10));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("/dev/pts/") || lines[0] == "/dev/console",
        "{out:?}"
    );
    // process.consoleSize is the pty's size from the start.
    assert_eq!(
        &lines[1..],
        ["stdio-is-tty", "c", "33 111", "end"],
        "{out:?}"
    );
    env.hull(&["delete", "--force", &id]).ok();
}

#[test]
fn terminal_without_console_socket_is_an_error() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|v| v["process"]["terminal"] = json!(true));
    let id = unique_id();
    env.hull(&["create", "--bundle", env.bundle.to_str().unwrap(), &id])
        .fails_with("console-socket");
    assert!(env.ids().is_empty());
    assert!(cgroup_dirs_for(&id).is_empty());
}

/// A hull command with `file` open at fd 3 (and, to prove it does not leak, `leak` at fd 9).
fn with_fds(env: &Env, file: &std::path::Path, leak: &std::path::Path) -> std::process::Command {
    let f = std::fs::File::open(file).unwrap();
    let l = std::fs::File::open(leak).unwrap();
    let mut c = env.cmd();
    c.current_dir(&env.bundle);
    // SAFETY: only async-signal-safe dup2 between fork and exec.
    unsafe {
        c.pre_exec(move || {
            for (from, to) in [(f.as_raw_fd(), 3), (l.as_raw_fd(), 9)] {
                // dup2 onto itself keeps FD_CLOEXEC, so clear it explicitly.
                if libc::dup2(from, to) < 0 || libc::fcntl(to, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    c
}

#[test]
fn preserve_fds_passes_exactly_those_fds() {
    let Some(env) = Env::root() else {
        return;
    };
    let file = env.tmp.path().join("passed");
    std::fs::write(&file, "through-fd-3\n").unwrap();
    let leak = env.tmp.path().join("leak");
    std::fs::write(&leak, "leaked\n").unwrap();
    env.set_args(&[
        "sh",
        "-c",
        "cat <&3; cat /proc/self/fd/3; ls /proc/self/fd | sort -n | tr '\\n' ' '",
    ]);
    let mut c = with_fds(&env, &file, &leak);
    c.args([
        "run",
        "--preserve-fds",
        "1",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &unique_id(),
    ]);
    let r = capture(c);
    // `ls` opens one directory fd of its own, numbered after 3.
    assert_eq!(r.ok(), "through-fd-3\nthrough-fd-3\n0 1 2 3 4 ");
}

#[test]
fn no_fds_beyond_stdio_without_preserve_fds() {
    let Some(env) = Env::root() else {
        return;
    };
    let file = env.tmp.path().join("f");
    std::fs::write(&file, "x").unwrap();
    env.set_args(&["sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '"]);
    let mut c = with_fds(&env, &file, &file);
    c.args([
        "run",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &unique_id(),
    ]);
    // 0 1 2 and the directory fd `ls` itself opened.
    assert_eq!(capture(c).ok(), "0 1 2 3 ");
}

#[test]
fn listen_fds_are_passed_for_socket_activation() {
    let Some(env) = Env::root() else {
        return;
    };
    let file = env.tmp.path().join("sock-stand-in");
    std::fs::write(&file, "activated\n").unwrap();
    env.set_args(&[
        "sh",
        "-c",
        "echo $LISTEN_FDS $LISTEN_PID; cat <&3; ls /proc/self/fd | sort -n | tr '\\n' ' '",
    ]);
    let mut c = with_fds(&env, &file, &file);
    c.env("LISTEN_FDS", "1").env_remove("LISTEN_PID");
    c.args([
        "run",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &unique_id(),
    ]);
    assert_eq!(capture(c).ok(), "1 1\nactivated\n0 1 2 3 4 ");

    // LISTEN_PID naming another process: the fds are not meant for hull.
    let mut c = with_fds(&env, &file, &file);
    c.env("LISTEN_FDS", "1").env("LISTEN_PID", "1");
    c.args([
        "run",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &unique_id(),
    ]);
    env.set_args(&[
        "sh",
        "-c",
        "echo \"[$LISTEN_FDS]\"; ls /proc/self/fd | sort -n | tr '\\n' ' '",
    ]);
    assert_eq!(capture(c).ok(), "[]\n0 1 2 3 ");
}

#[test]
fn pid_file_is_written_relative_to_cwd() {
    let Some(env) = Env::root() else {
        return;
    };
    env.set_args(&["sleep", "1000"]);
    let id = unique_id();
    env.hull(&[
        "run",
        "--detach",
        "--pid-file",
        "rel.pid",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &id,
    ])
    .ok();
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(
        std::fs::read_to_string(env.bundle.join("rel.pid")).unwrap(),
        pid.to_string()
    );
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap()
            .trim(),
        "sleep"
    );
    env.hull(&["delete", "--force", &id]).ok();
}

#[test]
fn run_returns_when_the_process_exits_at_once() {
    if !require_root() {
        return;
    }
    // A process that exits before `run` starts waiting must still be noticed (its SIGCHLD
    // may arrive before the signals are blocked): `run` once hung here.
    let env = Env::new();
    env.set_args(&["true"]);
    for _ in 0..40 {
        let mut c = env.cmd();
        c.args([
            "run",
            "--bundle",
            env.bundle.to_str().unwrap(),
            &unique_id(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        let mut child = c.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("hull run of `true` never returned");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(status.success());
    }
    assert!(env.ids().is_empty());
}

#[test]
fn a_console_socket_nobody_listens_on_is_an_error() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|v| v["process"]["terminal"] = json!(true));
    let id = unique_id();
    let sock = env.tmp.path().join("nobody.sock");
    env.hull(&[
        "create",
        "--console-socket",
        sock.to_str().unwrap(),
        "--bundle",
        env.bundle.to_str().unwrap(),
        &id,
    ])
    .fails_with("nobody.sock");
    assert!(env.ids().is_empty());
    assert!(cgroup_dirs_for(&id).is_empty());
}

#[test]
fn default_umask_is_0022_whatever_the_caller_has() {
    let Some(env) = Env::root() else {
        return;
    };
    env.set_args(&["sh", "-c", "umask; touch /tmp/f; stat -c %a /tmp/f"]);
    let mut c = env.cmd();
    c.current_dir(&env.bundle);
    // SAFETY: umask is async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
    c.args([
        "run",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &unique_id(),
    ]);
    assert_eq!(capture(c).ok(), "0022\n644\n");
}

/// What hull's caller ignored or blocked (a shell's `&` ignores SIGINT and SIGQUIT, nohup
/// SIGHUP) does not reach the container: its process starts with default actions and an empty
/// mask, as with runc and crun, so `trap ... INT` works in it.
#[test]
fn container_starts_with_default_signal_actions() {
    let Some(env) = Env::root() else {
        return;
    };
    // Read by the process hull execs itself: a shell in between sets actions of its own.
    env.set_args(&["cat", "/proc/self/status"]);
    let mut c = env.cmd();
    c.args([
        "run",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &unique_id(),
    ]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(|| {
            for s in [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP, libc::SIGTERM] {
                libc::signal(s, libc::SIG_IGN);
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    let r = capture(c);
    let out = r.ok();
    assert!(out.contains("SigIgn:\t0000000000000000"), "{out}");
    assert!(out.contains("SigBlk:\t0000000000000000"), "{out}");
}
