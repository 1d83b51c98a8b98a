//! Containers whose monitor was killed (issue 15). The container itself lives on: its init was
//! reparented away from the dead monitor and its stdout/stderr are FIFOs in the container dir
//! that the container holds open read-write, so its writes block instead of failing. Every berth
//! command that works on containers first calls `recover`, which asks the runtime (`state`, never
//! cgroupfs) about each container whose monitor died without finishing and gives it a new
//! monitor, `__monitor --adopt`: it serves logs and attach output from the FIFOs, waits for the
//! init through a pidfd (it is not the init's parent), and then does what the first monitor
//! would have done: exit record, cleanup of mounts and network, `--rm`, restart policy. The exit
//! status of a process one is not the parent of is lost: an adopted container's exit code is
//! recorded as 255 with `.State.Error` saying why (docker does the same for a container whose
//! shim is gone).

use anyhow::{Context, Result};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use super::container::{self, Container, Status};
use super::create_txn;
use super::lifecycle::{cleanup, runtime_of};
use super::monitor::{self, Ready, READY_FD};
use crate::sys::now_rfc3339;

/// The exit code recorded when the monitor that could have seen the real one was gone.
pub const UNKNOWN_EXIT: i32 = 255;

/// Sweeps killed creates and adopts orphaned containers; holds the containers lock meanwhile
/// so two commands never adopt the same container. Returns the ids adopted.
pub fn recover(root: &Path) -> Result<Vec<String>> {
    let _l = crate::sys::lock(&container::lock_path(root))?;
    create_txn::sweep_locked(root);
    let mut adopted = Vec::new();
    for c in container::list(root)? {
        // A monitor that ended normally zeroed its pid; only a killed one leaves it set.
        if c.state.monitor_pid == 0 || c.monitor_alive() || !might_run(&c) {
            continue;
        }
        monitor::spawn_with(root, &c, "--adopt")
            .with_context(|| format!("adopting container {}", c.config.name))?;
        adopted.push(c.id().to_string());
    }
    Ok(adopted)
}

/// States a killed monitor leaves while the process may exist (killed between the runtime's
/// start and the record, it still says created).
pub fn might_run(c: &Container) -> bool {
    c.state.status.is_live() || c.state.status == Status::Created
}

/// A runtime `create` must not finish after its monitor was killed: `rm -f` would have deleted
/// the container before, and the late create would leave the runtime's state and a waiting init
/// behind. SIGKILLed with the monitor, it leaves what `<runtime> delete --force` removes.
pub fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// `<dir>/<name>.fifo` as (read end for the monitor, read-write end for the container). The
/// container's end also reads, so the FIFO never loses its last reader when a monitor dies.
pub fn fifo(dir: &Path, name: &str) -> Result<(File, File)> {
    let p = dir.join(format!("{name}.fifo"));
    let _ = std::fs::remove_file(&p);
    nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .with_context(|| format!("creating fifo {}", p.display()))?;
    let w = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&p)
        .with_context(|| format!("opening {}", p.display()))?;
    Ok((open_reader(&p)?, w))
}

/// Opens a FIFO for reading without waiting for a writer, then makes reads block.
fn open_reader(p: &Path) -> Result<File> {
    let r = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(p)
        .with_context(|| format!("opening {}", p.display()))?;
    // SAFETY: F_SETFL on an fd we own.
    unsafe { libc::fcntl(r.as_raw_fd(), libc::F_SETFL, 0) };
    Ok(r)
}

/// Blocks until process `pid` has exited (it is not our child: a pidfd tells).
fn wait_gone(pid: i32) {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        // ESRCH: already gone. ENOSYS (before 5.3): poll for it.
        while crate::sys::pid_alive(pid) && !zombie(pid) {
            std::thread::sleep(Duration::from_millis(100));
        }
        return;
    }
    // SAFETY: the fd was just returned to us by pidfd_open.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut fds = [nix::poll::PollFd::new(
        std::os::fd::AsFd::as_fd(&fd),
        nix::poll::PollFlags::POLLIN,
    )];
    while !matches!(nix::poll::poll(&mut fds, nix::poll::PollTimeout::NONE), Ok(n) if n > 0) {}
}

fn zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| s[i + 1..].trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// The hidden `__monitor <id> --adopt`.
pub fn adopt_main(root: &Path, id: &str) -> i32 {
    // SAFETY: setting FD_CLOEXEC on our fd 3, set up by `spawn` for us alone.
    unsafe { libc::fcntl(READY_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: as above.
    let mut ready = Ready(Some(unsafe { File::from_raw_fd(READY_FD) }));
    let mut c = match Container::load_dir(&container::containers_dir(root).join(id)) {
        Ok(c) => c,
        Err(e) => {
            ready.report(&format!("error: {e:#}"));
            return 1;
        }
    };
    let hub = match monitor::serve(&c) {
        Ok(h) => h,
        Err(e) => {
            ready.report(&format!("error: {e:#}"));
            return 1;
        }
    };
    let rs = c.runtime_state().filter(|s| s.is_alive());
    if rs.is_none() && c.state.status == Status::Created {
        // Killed before the container ran: undo its setup, it stays created.
        runtime_of(root, &c).delete(c.id());
        cleanup(root, &c);
        monitor::save_state(&mut c, |s| s.monitor_pid = 0);
        ready.report("ok");
        return 0;
    }
    monitor::save_state(&mut c, |s| {
        s.monitor_pid = std::process::id() as i32;
        if let Some(r) = &rs {
            s.pid = r.pid;
            if s.status == Status::Created || s.status == Status::Restarting {
                s.status = Status::Running;
            }
            if s.started_at.is_empty() {
                s.started_at = now_rfc3339();
            }
        }
    });
    let mut pumps = Vec::new();
    if !c.config.tty {
        for (i, name) in ["stdout", "stderr"].iter().enumerate() {
            if let Ok(f) = open_reader(&c.dir.join(format!("{name}.fifo"))) {
                pumps.push(monitor::pump(hub.clone(), f, i));
            }
        }
    }
    ready.report("ok");
    if let Some(r) = &rs {
        wait_gone(r.pid);
    }
    for p in pumps {
        let _ = p.join();
    }
    hub.flush_log();
    let rt = runtime_of(root, &c);
    rt.delete(c.id());
    let restarts = c.state.restart_count;
    let again = c
        .config
        .restart
        .should_restart(UNKNOWN_EXIT, restarts, c.stop_marker().exists());
    monitor::save_state(&mut c, |s| {
        s.status = if again {
            Status::Restarting
        } else {
            Status::Exited
        };
        s.exit_code = UNKNOWN_EXIT;
        s.error = "exit status unknown: the container's monitor was killed".into();
        s.finished_at = now_rfc3339();
        s.pid = 0;
        if again {
            s.restart_count += 1;
        }
    });
    if again {
        cleanup(root, &c);
        std::thread::sleep(Duration::from_millis(100u64 << restarts.min(6)));
        if monitor::spawn(root, &c, false).is_ok() {
            return 0;
        }
    }
    monitor::finish(root, &mut c, &hub, UNKNOWN_EXIT);
    0
}
