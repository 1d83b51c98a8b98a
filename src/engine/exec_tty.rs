//! `exec -t` in the foreground, with the pty in the caller's hands (so it
//! can resize it and watch for the detach keys): the runtime runs the
//! process detached and sends the pty master to a `--console-socket` (runc
//! allows a console socket only with `--detach`); the caller becomes a
//! child subreaper first, so the process, orphaned when the runtime exits,
//! is reparented to it and its exit status can be waited for.

use anyhow::Context;
use std::ffi::OsString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::container::Container;
use super::error::Result;
use super::exec::{exec_command, ExecOptions};
use super::tty;

/// A started `exec -t`: its pty master and its pid (on the host).
#[derive(Debug)]
pub struct TtyExec {
    pub master: File,
    pub pid: i32,
}

/// Removes the exec's socket and pid file however `start` ends.
struct Scratch(Vec<PathBuf>);

impl Drop for Scratch {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Starts `o.command` with a new pty. Makes the calling process a child
/// subreaper (for `TtyExec::wait`).
pub fn start(root: &Path, c: &Container, o: &ExecOptions) -> Result<TtyExec> {
    prctl::set_child_subreaper(true)
        .map_err(|e| anyhow::anyhow!("PR_SET_CHILD_SUBREAPER: errno {e}"))?;
    let tag = format!("exec-{}", std::process::id());
    let sock = c.dir.join(format!("{tag}.sock"));
    let pidfile = c.dir.join(format!("{tag}.pid"));
    let _scratch = Scratch(vec![sock.clone(), pidfile.clone()]);
    let _ = std::fs::remove_file(&sock);
    let short = crate::sys::sock_path(&sock)?;
    let l =
        UnixListener::bind(&short.path).with_context(|| format!("binding {}", sock.display()))?;
    let flags: Vec<OsString> = vec![
        "--tty".into(),
        "--detach".into(),
        "--console-socket".into(),
        short.path.clone().into(),
        "--pid-file".into(),
        pidfile.clone().into(),
    ];
    let mut cmd = exec_command(root, c, o, &flags)?;
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    // The master comes while the runtime still runs (it sends it before it
    // starts the process): take it concurrently so neither waits on the other.
    let master = std::thread::spawn(move || tty::receive_console(&l));
    let out = cmd
        .output()
        .with_context(|| format!("running {} exec", c.config.runtime))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err.trim().lines().last().unwrap_or("failed").to_string();
        return Err(anyhow::anyhow!("{} exec: {line}", runtime_name(&c.config.runtime)).into());
    }
    let master = master
        .join()
        .map_err(|_| anyhow::anyhow!("console receiver panicked"))??;
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .with_context(|| format!("reading {}", pidfile.display()))?
        .trim()
        .parse()
        .with_context(|| format!("parsing {}", pidfile.display()))?;
    Ok(TtyExec { master, pid })
}

fn runtime_name(rt: &str) -> String {
    Path::new(rt)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| rt.to_string())
}

/// After the caller detached: a child process takes over the pty master,
/// reading (and dropping) output until the process closes its terminal, so
/// the process neither gets SIGHUP when the caller exits nor blocks on a
/// full pty. Detached from the caller's session and stdio.
pub fn hold_master(master: File) -> Result<()> {
    let devnull = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context("opening /dev/null")?;
    let (m, n) = (master.as_raw_fd(), devnull.as_raw_fd());
    // SAFETY: the child only makes async-signal-safe calls (setsid, dup2,
    // read, _exit) on fds opened before the fork, into a stack buffer.
    match unsafe { nix::unistd::fork() }.context("fork")? {
        // SAFETY: as above; fds m and n are open, buf is the child's own.
        nix::unistd::ForkResult::Child => unsafe {
            libc::setsid();
            for fd in 0..3 {
                libc::dup2(n, fd);
            }
            let mut buf = [0u8; 4096];
            while libc::read(m, buf.as_mut_ptr().cast(), buf.len()) > 0 {}
            libc::_exit(0)
        },
        nix::unistd::ForkResult::Parent { .. } => Ok(()),
    }
}

/// Waits for a started exec: its exit code (128+n for a signal, as a
/// shell reports it).
pub fn wait(pid: i32) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waiting for one pid; status is ours.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            if libc::WIFEXITED(status) {
                return libc::WEXITSTATUS(status);
            }
            if libc::WIFSIGNALED(status) {
                return 128 + libc::WTERMSIG(status);
            }
            continue;
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            // Not reparented to us (a runtime that keeps it elsewhere): its
            // status is out of reach; wait for it to be gone.
            _ => {
                while Path::new(&format!("/proc/{pid}")).exists() {
                    std::thread::sleep(Duration::from_millis(50));
                }
                return 0;
            }
        }
    }
}
