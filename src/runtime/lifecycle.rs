//! The commands that act on an existing container: start, state, kill, delete, list, and the
//! supervision loop of `run`.
//!
//! The state lock (a loaded [`Container`]) serializes commands on one id; no command holds it
//! across a wait on the container's processes (an exec or start into a frozen cgroup, a hook,
//! the container's exit), since what ends that wait may be another command (`resume`, or a hook
//! calling `hull state`). Only bounded waits on the kernel alone (a freeze, death after
//! SIGKILL of a thawed tree) happen under it.

use super::create::{create, CreateOptions};
use super::hooks;
use super::state::{self, Container, StateError, Status, START_SOCKET};
use crate::cgroups::{self, Cgroup};
use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

pub fn cgroup_of(c: &Container) -> Result<Box<dyn Cgroup>> {
    match &c.state.systemd_unit {
        Some(unit) => Ok(Box::new(cgroups::systemd::SystemdCgroup::existing(
            unit.clone(),
        )?)),
        None => cgroups::open(&c.state.cgroup_path),
    }
}

pub fn status_of(c: &Container) -> Status {
    c.status(|| cgroups::open(&c.state.cgroup_path).is_ok_and(|cg| cg.is_frozen()))
}

fn state_json(c: &Container, status: Status) -> String {
    serde_json::to_string(&c.oci_state(status)).unwrap_or_default()
}

pub fn start(root: &Path, id: &str) -> Result<()> {
    let c = Container::load(root, id)?;
    match status_of(&c) {
        Status::Created => {}
        Status::Stopped => bail!("cannot start a container that has stopped"),
        Status::Running | Status::Paused => {
            // A start killed after waking the init leaves its socket file behind.
            let _ = std::fs::remove_file(c.dir.join(START_SOCKET));
            bail!("cannot start an already running container")
        }
    }
    start_created(c)
}

/// Tells the init to exec, then waits for it with the lock released: a created container can
/// be paused, and the init runs the startContainer hooks first, which may run `hull state`.
fn start_created(c: Container) -> Result<()> {
    let sock = c.dir.join(START_SOCKET);
    let mut conn = UnixStream::connect(c.socket_path(START_SOCKET))
        .with_context(|| format!("connect {}", sock.display()))?;
    conn.write_all(b"s")
        .context("signal the container init to start")?;
    // Under the lock: from here on the container counts as started, so a second `start`
    // refuses instead of connecting to a listener nobody accepts on.
    let _ = std::fs::remove_file(&sock);
    let running = state_json(&c, Status::Running);
    let created = serde_json::to_value(c.oci_state(Status::Created))?;
    let st = c.state.clone();
    drop(c);
    let reply = match read_start_reply(st.pid, &created, &conn) {
        Ok(reply) => reply,
        Err(e) => {
            let _ = signal_container(&st, Signal::SIGKILL, false);
            return Err(e);
        }
    };
    if !reply.is_empty() {
        bail!("{reply}");
    }
    let hooks = st.hooks.as_ref().and_then(|h| h.poststart().as_ref());
    if let Err(e) = hooks::run("poststart", hooks, &running) {
        // The spec: a failed poststart hook stops the container and is an error.
        let _ = signal_container(&st, Signal::SIGKILL, true);
        return Err(e);
    }
    Ok(())
}

/// The init closes its end by exec (close-on-exec); anything it wrote first is an error, except
/// a NUL-led line announcing a seccomp listener to hand over (seccomp/notify.rs).
fn read_start_reply(pid: i32, created: &serde_json::Value, conn: &UnixStream) -> Result<String> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(conn);
    let mut first = Vec::new();
    reader
        .read_until(b'\n', &mut first)
        .context("wait for the container init to exec")?;
    if first.first() == Some(&0) {
        let body = first[1..].strip_suffix(b"\n").unwrap_or(&first[1..]);
        let announce: crate::seccomp::notify::Announce =
            serde_json::from_slice(body).context("malformed seccomp announcement")?;
        crate::seccomp::notify::hand_over(pid, &announce, created)?;
        first.clear();
    }
    let mut reply = String::from_utf8_lossy(&first).into_owned();
    reader
        .read_to_string(&mut reply)
        .context("wait for the container init to exec")?;
    Ok(reply)
}

/// `state`: the OCI state of one container, its status read from the kernel.
pub fn state(root: &Path, id: &str) -> Result<serde_json::Value> {
    let c = Container::load(root, id)?;
    let status = status_of(&c);
    Ok(serde_json::to_value(c.oci_state(status))?)
}

/// Parses a signal as runc does: a number, or a name with or without "SIG".
pub fn parse_signal(s: &str) -> Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| anyhow::anyhow!("unknown signal {s:?}"));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map_err(|_| anyhow::anyhow!("unknown signal {s:?}"))
}

fn signal_container(st: &state::ContainerState, sig: Signal, all: bool) -> Result<()> {
    if all {
        let cg = cgroups::open(&st.cgroup_path)?;
        for pid in cg.pids()? {
            // SAFETY: every pid in the container's cgroup belongs to the container.
            unsafe { libc::kill(pid, sig as i32) };
        }
        return Ok(());
    }
    // A pidfd pins the process we verified by start time: the signal cannot reach a recycled pid.
    // SAFETY: plain syscalls on a pid and an fd we own.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, st.pid, 0);
        if pidfd < 0 {
            return Err(std::io::Error::last_os_error()).context("pidfd_open");
        }
        let alive = state::process_start_time(st.pid) == Some(st.start_time);
        let ret = if alive {
            libc::syscall(libc::SYS_pidfd_send_signal, pidfd, sig as i32, 0usize, 0u32)
        } else {
            0
        };
        let err = std::io::Error::last_os_error();
        libc::close(pidfd as i32);
        if !alive {
            return Err(StateError::NotRunning.into());
        }
        if ret < 0 {
            return Err(err).with_context(|| format!("send {sig} to {}", st.pid));
        }
    }
    Ok(())
}

pub fn kill(root: &Path, id: &str, signal: &str, all: bool) -> Result<()> {
    let sig = parse_signal(signal)?;
    let c = Container::load(root, id)?;
    if status_of(&c) == Status::Stopped && !all {
        return Err(StateError::NotRunning.into());
    }
    signal_container(&c.state, sig, all)
}

fn wait_gone(c: &Container, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while c.is_alive() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let c = match Container::load(root, id) {
        Ok(c) => c,
        Err(e)
            if matches!(
                e.downcast_ref::<StateError>(),
                Some(StateError::NotExist(_)) | Some(StateError::Corrupt { .. })
            ) =>
        {
            // A create that died before state.json, or a state.json that cannot be read:
            // clean up by the intent record and the kernel. As runc, `delete --force` of a
            // missing container succeeds (podman and the shims clean up after a failed create
            // this way and report any error to the user).
            if !destroy_remnant(root, id, force)? {
                // A create that was still running has finished meanwhile.
                return delete(root, id, force);
            }
            // An unreadable state with nothing running in its cgroup is deleted all the same;
            // a missing one is an error without --force, as with runc.
            let missing = matches!(
                e.downcast_ref::<StateError>(),
                Some(StateError::NotExist(_))
            );
            if force || !missing {
                return Ok(());
            }
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let status = status_of(&c);
    match status {
        Status::Stopped | Status::Created => {}
        s if !force => bail!(
            "cannot delete container {id} that is not stopped: {}",
            s.as_str()
        ),
        _ => {}
    }
    destroy(c, status)
}

/// Kills whatever is left, removes the cgroup and the state dir, then runs the poststop hooks.
/// The waits here are bounded and need nothing but the kernel (SIGKILL after a thaw), so they
/// may hold the lock; the hooks run after it is gone, as runc runs them after removing its
/// state (the spec: "after the container is deleted"), so a hook may call hull.
fn destroy(c: Container, status: Status) -> Result<()> {
    let cg = cgroup_of(&c)?;
    if status == Status::Paused {
        let _ = cg.thaw();
    }
    if status != Status::Stopped {
        let _ = signal_container(&c.state, Signal::SIGKILL, false);
        if !wait_gone(&c, Duration::from_secs(10)) {
            bail!(
                "container {} init {} did not die after SIGKILL",
                c.state.id,
                c.state.pid
            );
        }
    }
    // Without a pid namespace of its own, the init's death leaves its descendants alive.
    kill_cgroup(&*cg);
    cg.destroy()?;
    super::rdt::remove(&c.dir);
    let stopped = state_json(&c, Status::Stopped);
    let hooks = c.state.hooks.as_ref().and_then(|h| h.poststop().clone());
    c.remove_dir()?;
    hooks::run_warning("poststop", hooks.as_ref(), &stopped);
    Ok(())
}

/// SIGKILLs whatever is in the cgroup until it is empty (processes may still be forking).
fn kill_cgroup(cg: &dyn Cgroup) {
    for _ in 0..100 {
        let pids = cg.pids().unwrap_or_default();
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            // SAFETY: these pids are in the container's cgroup.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// SIGKILLs `pid` if it is still the process that started at `start`, and waits for it to go.
fn kill_verified(pid: i32, start: u64) {
    // A pidfd pins the process we verify by start time: the signal cannot reach a recycled pid.
    // SAFETY: plain syscalls on a pid and an fd we own.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid, 0);
        if pidfd < 0 {
            return;
        }
        if state::process_start_time(pid) == Some(start) {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd,
                libc::SIGKILL,
                0usize,
                0u32,
            );
        }
        libc::close(pidfd as i32);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while state::process_start_time(pid) == Some(start) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Removes what a container without a readable state.json left: the processes in the cgroup
/// its intent record names, the cgroup and the directory. Without `force`, live processes are
/// left alone and reported. Returns false, touching nothing, when the state has become readable
/// (a create held the directory until it was complete).
fn destroy_remnant(root: &Path, id: &str, force: bool) -> Result<bool> {
    let Some(remnant) = state::Remnant::open(root, id)? else {
        return Ok(true);
    };
    if remnant.state_is_readable() {
        return Ok(false);
    }
    if let Some(intent) = &remnant.intent {
        let cg = cgroups::open(&intent.cgroup_path)?;
        let init = intent
            .init
            .filter(|&(pid, start)| state::process_start_time(pid) == Some(start));
        if !force && (init.is_some() || cg.exists() && !cg.pids().unwrap_or_default().is_empty()) {
            bail!(
                "container {id} has no readable state but its processes still run: \
                 use delete --force"
            );
        }
        if let Some((pid, start)) = init {
            kill_verified(pid, start);
        }
        if cg.exists() {
            if cg.is_frozen() {
                let _ = cg.thaw();
            }
            kill_cgroup(&*cg);
        }
        // Always: a create killed while making the cgroup may have made it in some hierarchies
        // only, and destroy skips the missing ones.
        cg.destroy()?;
    }
    remnant.remove_dir()?;
    Ok(true)
}

/// One `list` row in runc's JSON shape. A container whose state.json is unreadable, or whose
/// create died before writing it, is listed as "unknown" rather than hidden: it may still run,
/// and `delete --force` removes it.
fn list_row(root: &Path, id: &str) -> Option<serde_json::Value> {
    match Container::load(root, id) {
        Ok(c) => {
            let st = status_of(&c);
            let s = &c.state;
            Some(serde_json::json!({
                "ociVersion": s.oci_version, "id": s.id,
                "pid": if st == Status::Stopped { 0 } else { s.pid },
                "status": st.as_str(), "bundle": s.bundle, "rootfs": s.rootfs,
                "created": s.created, "owner": s.owner, "annotations": s.annotations,
            }))
        }
        // A directory held by a running create is not listed until that create is done.
        Err(e)
            if matches!(
                e.downcast_ref::<StateError>(),
                Some(StateError::NotExist(_)) | Some(StateError::Corrupt { .. })
            ) && state::is_abandoned(root, id) =>
        {
            Some(serde_json::json!({
                "ociVersion": "", "id": id, "pid": 0, "status": "unknown", "bundle": "",
                "rootfs": "", "created": "", "owner": "", "annotations": {},
            }))
        }
        Err(_) => None,
    }
}

/// `list`: every container as a row in runc's JSON shape, in id order.
pub fn list(root: &Path) -> Result<Vec<serde_json::Value>> {
    Ok(state::list_ids(root)?
        .iter()
        .filter_map(|id| list_row(root, id))
        .collect())
}

/// `run`: create, start, and unless detached supervise the container until it exits, forwarding
/// signals; returns the exit code to exit with.
pub fn run(opts: &mut CreateOptions, detach: bool) -> Result<i32> {
    let terminal_here =
        !detach && opts.console_socket.is_none() && bundle_wants_terminal(&opts.bundle);
    let console_pair = if terminal_here {
        let (a, b) = UnixStream::pair().context("socketpair for the console")?;
        opts.console_fd = Some(std::os::fd::AsRawFd::as_raw_fd(&b));
        Some((a, b))
    } else {
        None
    };
    if !detach {
        // Descendants orphaned in a shared pid namespace come to us, to be reaped.
        prctl::set_child_subreaper(true)
            .map_err(|e| anyhow::anyhow!("PR_SET_CHILD_SUBREAPER: errno {e}"))?;
    }
    let created = create(opts)?;
    let master = match console_pair {
        Some((ours, theirs)) => {
            drop(theirs);
            Some(super::console::recv_fd(&ours)?)
        }
        None => None,
    };
    let root = opts.root.clone();
    let id = opts.id.clone();
    let old_mask = if detach {
        None
    } else {
        Some(super::supervise::block_signals()?)
    };
    let init_pid = created.init_pid;
    // start_created releases the state lock, so `state`/`kill` work while the container runs.
    if let Err(e) = start_created(created.container) {
        if let Ok(c) = Container::load(&root, &id) {
            let status = status_of(&c);
            let _ = destroy(c, status);
        }
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    let old_mask = old_mask.context("signals were not blocked")?;
    let code = super::supervise::wait_forwarding(init_pid, master, old_mask)?;
    let c = Container::load(&root, &id)?;
    let status = status_of(&c);
    destroy(c, status)?;
    Ok(code)
}

fn bundle_wants_terminal(bundle: &Path) -> bool {
    std::fs::read_to_string(bundle.join("config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.pointer("/process/terminal").and_then(|t| t.as_bool()))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_like_runc() {
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), Signal::SIGUSR1);
        assert!(parse_signal("SIGNOPE").is_err());
        assert!(parse_signal("99").is_err());
    }
}
