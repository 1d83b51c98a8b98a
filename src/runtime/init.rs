//! The container init: the process that becomes the container. It builds the rootfs, switches to
//! the container's user and capabilities, waits for `start`, and execs the user program.
//!
//! It runs in a fork of hull (no re-exec), so it starts in microseconds; it must never return
//! into hull's own code paths, hence `-> !`.

use super::console;
use super::hooks;
use super::process;
use super::rootfs::{self, RootfsContext};
use super::sync::{Channel, Msg};
use anyhow::{Context, Result};
use oci_spec::runtime::Spec;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;

/// Everything the init gets from hull, by fork (no serialization).
pub struct InitArgs<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub channel: &'a Channel,
    pub start_listener: &'a UnixListener,
    pub console_socket: Option<RawFd>,
    pub preserved_fds: &'a [i32],
    pub listen_fds: u32,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub new_userns: bool,
    pub new_cgroupns: bool,
    /// A mount namespace of the container's own, new or joined (else it shares the caller's).
    pub new_mountns: bool,
    pub cgroup_path: &'a str,
    /// The fd of hull's log file, kept so the init can record warnings.
    pub log_fd: Option<RawFd>,
    /// Idmapped mounts hull prepared, by mount index, to be moved into place.
    pub idmapped: &'a [(usize, std::os::fd::OwnedFd)],
}

pub fn run(args: &InitArgs) -> ! {
    // init returns only on failure: it ends in exec.
    args.channel
        .exit_child(init(args).map(|never| match never {}), 1)
}

fn state_json(args: &InitArgs, status: &str) -> String {
    serde_json::json!({
        "ociVersion": args.spec.version(),
        "id": args.id,
        "status": status,
        "pid": std::process::id(),
        "bundle": args.bundle,
        "annotations": args.spec.annotations().clone().unwrap_or_default(),
    })
    .to_string()
}

fn init(args: &InitArgs) -> Result<std::convert::Infallible> {
    let spec = args.spec;
    let process = spec.process().as_ref().context("process: missing")?;
    let mut keep = vec![args.channel.raw_fd(), args.start_listener.as_raw_fd()];
    keep.extend(args.console_socket);
    keep.extend(args.log_fd);
    keep.extend(args.idmapped.iter().map(|(_, fd)| fd.as_raw_fd()));
    process::close_inherited_fds(args.preserved_fds, &keep)?;
    nix::unistd::setsid().context("setsid")?;
    // Before turning non-dumpable: that makes /proc/self owned by the host's root, which a
    // user namespace's root may not write to.
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .with_context(|| format!("process.oomScoreAdj: write {adj}"))?;
    }
    // Until exec, /proc/<pid>/exe of this process is the hull binary: keep other processes
    // (a joined pid namespace's) from opening it.
    prctl::set_dumpable(false).map_err(|e| anyhow::anyhow!("prctl(PR_SET_DUMPABLE): errno {e}"))?;
    if !args.no_new_keyring {
        join_session_keyring(args.id);
    }

    // Checked and compiled while the host's /sys and the seccomp cache are still reachable.
    crate::seccomp::privileges::check_lsm(process)?;
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(crate::seccomp::prepare(s)?),
        None => None,
    };

    let ctx = RootfsContext {
        spec,
        rootfs: args.rootfs,
        in_userns: args.new_userns,
        new_cgroupns: args.new_cgroupns,
        cgroup_path: args.cgroup_path,
        idmapped: args.idmapped,
        own_mountns: args.new_mountns,
    };
    let root = rootfs::prepare(&ctx)?;
    // A missing cwd is created, as runc does, before the rootfs may turn read-only.
    super::resolve::mkdir_all_in_root(root.as_raw_fd(), process.cwd())
        .with_context(|| format!("process.cwd: create {}", process.cwd().display()))?;

    set_names(spec)?;

    let hooks_cfg = spec.hooks().as_ref();
    create_hooks(args, hooks_cfg)?;

    let pty = match process.terminal() == Some(true) {
        true => Some(terminal(args, process, root.as_raw_fd())?),
        false => None,
    };
    drop(root);

    rootfs::pivot(args.rootfs, args.no_pivot, args.new_mountns)?;
    // Before finalize: readonlyPaths usually holds /proc/sys, which would refuse the writes.
    rootfs::write_sysctls(spec)?;
    rootfs::finalize(spec)?;

    if let Some(pty) = &pty {
        console::become_terminal(&pty.slave)?;
    }
    drop(pty);

    if let Some(rlimits) = process.rlimits() {
        process::set_rlimits(rlimits)?;
    }
    let args_v = process.args().as_deref().unwrap_or_default();
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if args.listen_fds > 0 {
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={}", args.listen_fds));
        env.push("LISTEN_PID=1".to_string());
    }
    let exe = process::find_executable(&args_v[0], &env)?;

    super::mempolicy::apply_memory_policy(spec)?;
    crate::seccomp::privileges::set_personality(spec)?;
    crate::seccomp::privileges::set_io_priority(process)?;
    crate::seccomp::privileges::set_scheduler(process)?;
    super::finish::become_user(process, seccomp.is_some())?;
    args.channel.send(&Msg::Ready)?;
    let mut conn = loop {
        let (mut conn, _) = args.start_listener.accept().context("wait for start")?;
        let mut byte = [0u8; 1];
        if conn.read(&mut byte).unwrap_or(0) == 1 {
            break conn;
        }
    };
    let fail = |conn: &mut std::os::unix::net::UnixStream, e: anyhow::Error| -> ! {
        let _ = conn.write_all(format!("{e:#}").as_bytes());
        // SAFETY: leaving the forked child without running hull's destructors.
        unsafe { libc::_exit(127) }
    };
    if let Err(e) = hooks::run_in_container(
        "startContainer",
        hooks_cfg.and_then(|h| h.start_container().as_ref()),
        &state_json(args, "created"),
        &env,
    ) {
        fail(&mut conn, e);
    }
    // A NUL byte starts the announcement: an error text never does (see lifecycle::start).
    let mut announce = |a: &crate::seccomp::notify::Announce| -> Result<()> {
        let mut msg = vec![0u8];
        msg.extend(serde_json::to_vec(a)?);
        msg.push(b'\n');
        conn.write_all(&msg)
            .context("announce the seccomp listener")
    };
    let e = super::finish::exec(
        process,
        &exe,
        args_v,
        &env,
        args.preserved_fds,
        seccomp.as_ref(),
        &mut announce,
    );
    fail(&mut conn, e)
}

/// The container's hostname and domain name, in its UTS namespace.
fn set_names(spec: &oci_spec::runtime::Spec) -> Result<()> {
    if let Some(hostname) = spec.hostname() {
        nix::unistd::sethostname(hostname)
            .with_context(|| format!("hostname: set {hostname:?}"))?;
    }
    if let Some(domain) = spec.domainname() {
        let c = std::ffi::CString::new(domain.as_str())?;
        // SAFETY: setdomainname reads the buffer we own.
        if unsafe { libc::setdomainname(c.as_ptr(), domain.len()) } != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("domainname: set {domain:?}"));
        }
    }
    Ok(())
}

/// prestart and createRuntime (run by the parent, asked for over the channel), then
/// createContainer here.
fn create_hooks(args: &InitArgs, hooks_cfg: Option<&oci_spec::runtime::Hooks>) -> Result<()> {
    #[allow(deprecated)]
    let parent_hooks = hooks_cfg.is_some_and(|h| {
        h.prestart().as_ref().is_some_and(|v| !v.is_empty())
            || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
    });
    if parent_hooks {
        args.channel.send(&Msg::Hooks)?;
        args.channel.expect(Msg::Ack)?;
    }
    // "creating", as runc passes: create has not returned yet.
    hooks::run(
        "createContainer",
        hooks_cfg.and_then(|h| h.create_container().as_ref()),
        &state_json(args, "creating"),
    )?;
    Ok(())
}

/// The container's pty: made in its /dev, bound at /dev/console, and its master sent to the
/// console socket.
fn terminal(
    args: &InitArgs,
    process: &oci_spec::runtime::Process,
    root: std::os::fd::RawFd,
) -> Result<console::Pty> {
    let sock = args
        .console_socket
        .context("process.terminal: --console-socket is required")?;
    let pty = console::open_pty(root)?;
    console::apply_size(&pty, process)?;
    rootfs::mount_console(root, &pty.slave)?;
    console::send_fd(sock, pty.master.as_raw_fd(), "/dev/ptmx")?;
    // SAFETY: the socket was only needed to hand over the master.
    unsafe { libc::close(sock) };
    Ok(pty)
}

/// A session keyring of the container's own, so it cannot read the host's keys. Failures are
/// ignored, as runc does: old kernels and some seccomp profiles refuse keyctl.
fn join_session_keyring(id: &str) {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    if let Ok(name) = std::ffi::CString::new(format!("_ses.{id}")) {
        // SAFETY: keyctl reads the C string we own.
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    }
}
