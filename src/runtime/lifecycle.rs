//! The commands that act on an existing container: start, state, kill, delete, list, and the
//! supervision loop of `run`.

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
    cgroups::open(&c.state.cgroup_path)
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
        Status::Running | Status::Paused => bail!("cannot start an already running container"),
    }
    start_created(&c)
}

fn start_created(c: &Container) -> Result<()> {
    let sock = c.dir.join(START_SOCKET);
    let mut conn = UnixStream::connect(c.socket_path(START_SOCKET))
        .with_context(|| format!("connect {}", sock.display()))?;
    conn.write_all(b"s")
        .context("signal the container init to start")?;
    let reply = match read_start_reply(c, &conn) {
        Ok(reply) => reply,
        Err(e) => {
            let _ = signal_container(c, Signal::SIGKILL, false);
            return Err(e);
        }
    };
    let _ = std::fs::remove_file(&sock);
    if !reply.is_empty() {
        bail!("{reply}");
    }
    let hooks = c.state.hooks.as_ref().and_then(|h| h.poststart().as_ref());
    if let Err(e) = hooks::run("poststart", hooks, &state_json(c, Status::Running)) {
        // The spec: a failed poststart hook stops the container and is an error.
        let _ = signal_container(c, Signal::SIGKILL, true);
        return Err(e);
    }
    Ok(())
}

/// The init closes its end by exec (close-on-exec); anything it wrote first is an error, except
/// a NUL-led line announcing a seccomp listener to hand over (seccomp/notify.rs).
fn read_start_reply(c: &Container, conn: &UnixStream) -> Result<String> {
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
        let state = serde_json::to_value(c.oci_state(Status::Created))?;
        crate::seccomp::notify::hand_over(c.state.pid, &announce, &state)?;
        first.clear();
    }
    let mut reply = String::from_utf8_lossy(&first).into_owned();
    reader
        .read_to_string(&mut reply)
        .context("wait for the container init to exec")?;
    Ok(reply)
}

pub fn print_state(root: &Path, id: &str) -> Result<()> {
    let c = Container::load(root, id)?;
    let status = status_of(&c);
    println!("{}", serde_json::to_string_pretty(&c.oci_state(status))?);
    Ok(())
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

fn signal_container(c: &Container, sig: Signal, all: bool) -> Result<()> {
    if all {
        let cg = cgroup_of(c)?;
        for pid in cg.pids()? {
            // SAFETY: every pid in the container's cgroup belongs to the container.
            unsafe { libc::kill(pid, sig as i32) };
        }
        return Ok(());
    }
    // A pidfd pins the process we verified by start time: the signal cannot reach a recycled pid.
    // SAFETY: plain syscalls on a pid and an fd we own.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, c.state.pid, 0);
        if pidfd < 0 {
            return Err(std::io::Error::last_os_error()).context("pidfd_open");
        }
        let alive = state::process_start_time(c.state.pid) == Some(c.state.start_time);
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
            return Err(err).with_context(|| format!("send {sig} to {}", c.state.pid));
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
    signal_container(&c, sig, all)
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
                Some(StateError::NotExist(_))
            ) =>
        {
            // As runc: a create that died before state.json leaves a bare directory, and
            // `delete --force` of a missing container succeeds (podman and the shims clean up
            // after a failed create this way and report any error to the user).
            if state::validate_id(id).is_ok() {
                let _ = std::fs::remove_dir_all(root.join(id));
            }
            if force {
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

/// Kills whatever is left, removes the cgroup, runs poststop hooks and drops the state dir.
fn destroy(c: Container, status: Status) -> Result<()> {
    let cg = cgroup_of(&c)?;
    if status == Status::Paused {
        let _ = cg.thaw();
    }
    if status != Status::Stopped {
        let _ = signal_container(&c, Signal::SIGKILL, false);
        if !wait_gone(&c, Duration::from_secs(10)) {
            bail!(
                "container {} init {} did not die after SIGKILL",
                c.state.id,
                c.state.pid
            );
        }
    }
    // Without a pid namespace of its own, the init's death leaves its descendants alive.
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
    cg.destroy()?;
    super::rdt::remove(&c.dir);
    let hooks = c.state.hooks.as_ref().and_then(|h| h.poststop().as_ref());
    hooks::run_warning("poststop", hooks, &state_json(&c, Status::Stopped));
    c.remove_dir()
}

pub fn list(root: &Path, format: &str, quiet: bool) -> Result<()> {
    let mut rows = Vec::new();
    for id in state::list_ids(root)? {
        let Ok(c) = Container::load(root, &id) else {
            continue;
        };
        let status = status_of(&c);
        rows.push((c.state.clone(), status));
    }
    if quiet {
        for (s, _) in &rows {
            println!("{}", s.id);
        }
        return Ok(());
    }
    match format {
        "json" => {
            let v: Vec<serde_json::Value> = rows
                .iter()
                .map(|(s, st)| {
                    serde_json::json!({
                        "ociVersion": s.oci_version, "id": s.id,
                        "pid": if *st == Status::Stopped { 0 } else { s.pid },
                        "status": st.as_str(), "bundle": s.bundle, "rootfs": s.rootfs,
                        "created": s.created, "owner": s.owner, "annotations": s.annotations,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        "table" => {
            let mut table = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                .map(String::from)
                .to_vec()];
            for (s, st) in &rows {
                let pid = if *st == Status::Stopped { 0 } else { s.pid };
                let owner = if s.owner.is_empty() {
                    "root".to_string()
                } else {
                    s.owner.clone()
                };
                table.push(vec![
                    s.id.clone(),
                    pid.to_string(),
                    st.as_str().into(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    owner,
                ]);
            }
            print_table(&table);
        }
        other => bail!("--format: unknown format {other:?} (table or json)"),
    }
    Ok(())
}

/// Prints rows padded like Go's tabwriter with runc's settings (min width 12, padding 3).
pub fn print_table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
                .max(9)
                + 3
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}", w = widths[i]));
            }
        }
        println!("{line}");
    }
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
    if let Err(e) = start_created(&created.container) {
        let status = status_of(&created.container);
        let _ = destroy(created.container, status);
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    let init_pid = created.init_pid;
    // Release the state lock while the container runs, so `state`/`kill` work meanwhile.
    drop(created);
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
