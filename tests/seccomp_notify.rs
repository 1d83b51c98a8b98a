//! SCMP_ACT_NOTIFY: a small seccomp agent in the test receives the listener fd and the
//! container process state on `listenerPath`, and answers the notified syscall itself.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// struct seccomp_notif / seccomp_notif_resp (linux/seccomp.h).
#[repr(C)]
#[derive(Default)]
struct Notif {
    id: u64,
    pid: u32,
    flags: u32,
    nr: i32,
    arch: u32,
    ip: u64,
    args: [u64; 6],
}

#[repr(C)]
struct NotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

const NOTIF_RECV: libc::c_ulong = 0xc050_2100; // _IOWR('!', 0, struct seccomp_notif)
const NOTIF_SEND: libc::c_ulong = 0xc018_2101; // _IOWR('!', 1, struct seccomp_notif_resp)

/// What the agent sees, as it happens: a connection's process state, then the numbers of the
/// syscalls it answered for that connection.
enum Event {
    State(Value),
    Answered(i32),
}

/// Serves `sock`: for each connection, takes the listener fd and answers every notification
/// ENOSPC until the filter is gone (its processes exited).
fn agent(sock: &Path) -> mpsc::Receiver<Event> {
    let listener = UnixListener::bind(sock).expect("bind the agent socket");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let tx = tx.clone();
            std::thread::spawn(move || serve(conn, tx));
        }
    });
    rx
}

fn serve(conn: std::os::unix::net::UnixStream, tx: mpsc::Sender<Event>) {
    let mut buf = vec![0u8; 65536];
    let mut cmsg = nix::cmsg_space!([RawFd; 1]);
    let (n, fd) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = nix::sys::socket::recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            nix::sys::socket::MsgFlags::empty(),
        )
        .expect("recvmsg");
        let fd = msg
            .cmsgs()
            .expect("cmsgs")
            .find_map(|c| match c {
                nix::sys::socket::ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                _ => None,
            })
            .expect("an fd with the state");
        (msg.bytes, fd)
    };
    // SAFETY: the fd just arrived with SCM_RIGHTS and is ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let state: Value = serde_json::from_slice(&buf[..n]).expect("state JSON");
    let _ = tx.send(Event::State(state));
    loop {
        let mut n = Notif::default();
        // SAFETY: the kernel fills the struct we own.
        if unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_RECV, &mut n as *mut Notif) } != 0 {
            return;
        }
        let resp = NotifResp {
            id: n.id,
            val: 0,
            error: -libc::ENOSPC,
            flags: 0,
        };
        // SAFETY: the kernel reads the struct we own.
        unsafe { libc::ioctl(fd.as_raw_fd(), NOTIF_SEND, &resp as *const NotifResp) };
        let _ = tx.send(Event::Answered(n.nr));
    }
}

fn next(rx: &mpsc::Receiver<Event>) -> Event {
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the agent heard from hull")
}

/// The next event is a connection's state for container `id` with status `status`.
fn expect_state(rx: &mpsc::Receiver<Event>, id: &str, status: &str) {
    let Event::State(s) = next(rx) else {
        panic!("expected the process state first")
    };
    assert_eq!(s["fds"], json!(["seccompFd"]), "{s}");
    assert_eq!(s["metadata"], "agent-metadata-1", "{s}");
    assert_eq!(s["state"]["id"], id, "{s}");
    assert_eq!(s["state"]["status"], status, "{s}");
    assert!(s["pid"].as_i64().is_some_and(|p| p > 0), "{s}");
}

fn expect_answer(rx: &mpsc::Receiver<Event>) {
    let Event::Answered(nr) = next(rx) else {
        panic!("expected an answered syscall")
    };
    assert!(
        [libc::SYS_mkdir as i32, libc::SYS_mkdirat as i32].contains(&nr),
        "answered syscall {nr}"
    );
}

fn notify_env(env: &Env, sock: &Path, default: &str, extra: Value, nnp: bool) {
    env.edit(|c| {
        let mut syscalls =
            vec![json!({"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"})];
        if let Some(a) = extra.as_array() {
            syscalls.extend(a.iter().cloned());
        }
        c["linux"]["seccomp"] = json!({
            "defaultAction": default,
            "listenerPath": sock,
            "listenerMetadata": "agent-metadata-1",
            "syscalls": syscalls,
        });
        c["process"]["noNewPrivileges"] = json!(nnp);
    });
}

const SCRIPT: &str = "mkdir /tmp/agent-said-no 2>&1; echo rc=$?";

#[test]
fn the_agent_answers_the_notified_syscall_of_run() {
    if !require_root() {
        return;
    }
    for nnp in [false, true] {
        let env = Env::new();
        let sock = env.tmp.path().join("agent.sock");
        let events = agent(&sock);
        notify_env(&env, &sock, "SCMP_ACT_ALLOW", json!([]), nnp);
        env.set_args(&["sh", "-c", SCRIPT]);
        let id = unique_id();
        let out = env.hull(&["run", "--bundle", env.bundle.to_str().unwrap(), &id]);
        assert!(
            out.ok().contains("No space left on device\nrc=1"),
            "{}",
            out.stdout
        );
        assert!(!env.rootfs.join("tmp/agent-said-no").exists());
        expect_state(&events, &id, "created");
        expect_answer(&events);
    }
}

#[test]
fn the_agent_answers_exec_under_a_default_errno_profile() {
    let Some(env) = Env::root() else {
        return;
    };
    let sock = env.tmp.path().join("agent.sock");
    // Strict: only what busybox needs is allowed, so hull may make no syscall of its own after
    // the filter, and still hands the listener over.
    let allow = json!([{"names": [
        "arch_prctl", "brk", "clock_nanosleep", "clone", "close", "dup2", "execve", "exit",
        "exit_group", "fcntl", "fstat", "getdents64", "getpid", "getppid", "getrandom", "getuid",
        "ioctl", "mmap", "mprotect", "munmap", "nanosleep", "newfstatat", "openat", "pipe2",
        "prctl", "prlimit64", "read", "rseq", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
        "set_robust_list", "set_tid_address", "uname", "wait4", "write"], "action": "SCMP_ACT_ALLOW"}]);
    let events = agent(&sock);
    notify_env(&env, &sock, "SCMP_ACT_ERRNO", allow, false);
    let id = env.run_detached(&["sleep", "60"]);
    expect_state(&events, &id, "created");
    env.wait_status(&id, "running");
    let out = env.hull(&["exec", &id, "sh", "-c", SCRIPT]);
    assert!(
        out.ok().contains("No space left on device\nrc=1"),
        "{}",
        out.stdout
    );
    expect_state(&events, &id, "running");
    expect_answer(&events);
    env.hull(&["delete", "--force", &id]).ok();
    assert_nothing_left(&env, &id);
}

#[test]
fn an_unreachable_agent_fails_the_start_and_leaves_nothing() {
    let Some(env) = Env::root() else {
        return;
    };
    let sock = env.tmp.path().join("nobody-listens.sock");
    notify_env(&env, &sock, "SCMP_ACT_ALLOW", json!([]), true);
    env.set_args(&["true"]);
    let id = unique_id();
    let r = env.hull(&["run", "--bundle", env.bundle.to_str().unwrap(), &id]);
    r.fails_with("linux.seccomp.listenerPath: connect");
    env.hull(&["delete", "--force", &id]);
    assert_nothing_left(&env, &id);
}
