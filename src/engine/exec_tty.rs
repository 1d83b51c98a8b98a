//! `exec -t` in the foreground, with the pty in the caller's hands (so it
//! can resize it and watch for the detach keys): the runtime runs the
//! process detached and sends the pty master to a `--console-socket` (runc
//! allows a console socket only with `--detach`); the caller becomes a
//! child subreaper first, so the process, orphaned when the runtime exits,
//! is reparented to it and its exit status can be waited for.

use anyhow::Context;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use super::container::Container;
use super::error::{EngineError, Op, Result};
use super::exec::{exec_cwd, exec_user, ExecOptions};
use super::lifecycle::runtime_of;
use super::{opts, spec, tty};

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

/// Starts `o.command` with a new pty of `size` (rows, cols; the runtime
/// sets it before the process runs: `process.consoleSize`). Makes the
/// calling process a child subreaper (for `wait`).
pub fn start(
    root: &Path,
    c: &Container,
    o: &ExecOptions,
    size: Option<(u16, u16)>,
) -> Result<TtyExec> {
    prctl::set_child_subreaper(true)
        .map_err(|e| anyhow::anyhow!("PR_SET_CHILD_SUBREAPER: errno {e}"))?;
    let tag = format!("exec-{}", std::process::id());
    let sock = c.dir.join(format!("{tag}.sock"));
    let pidfile = c.dir.join(format!("{tag}.pid"));
    let mut _scratch = Scratch(vec![sock.clone(), pidfile.clone()]);
    let _ = std::fs::remove_file(&sock);
    let short = crate::sys::sock_path(&sock)?;
    let l =
        UnixListener::bind(&short.path).with_context(|| format!("binding {}", sock.display()))?;
    if !c.is_running() || c.state.pid == 0 {
        return Err(EngineError::not_running(&c.config.name, Op::Exec));
    }
    let json = c.dir.join(format!("{tag}.json"));
    _scratch.0.push(json.clone());
    let process = process_json(c, o, size)?;
    std::fs::write(&json, process.to_string())
        .with_context(|| format!("writing {}", json.display()))?;
    // The size goes in process.consoleSize (no flag has it), so the whole
    // process does: --process replaces the other flags.
    let mut cmd = runtime_of(root, c).command();
    cmd.arg("exec").arg("--process").arg(&json);
    cmd.args(["--detach", "--console-socket"]).arg(&short.path);
    cmd.arg("--pid-file").arg(&pidfile).arg(c.id());
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

/// The container's process (from its config.json) made into the exec's:
/// what `<runtime> exec`'s flags would change, plus the window size.
fn process_json(c: &Container, o: &ExecOptions, size: Option<(u16, u16)>) -> Result<Value> {
    let path = c.bundle().join("config.json");
    let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let cfg: Value =
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?;
    let mut p = cfg
        .get("process")
        .cloned()
        .with_context(|| format!("{}: no process", path.display()))?;
    p["args"] = json!(o.command);
    p["terminal"] = json!(true);
    let mut env: Vec<String> = p["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for kv in opts::merge_env(&c.config.env, &o.env) {
        let key = kv.split('=').next().unwrap_or_default().to_string();
        env.retain(|e| e.split('=').next() != Some(key.as_str()));
        env.push(kv);
    }
    p["env"] = json!(env);
    if let Some((uid, gid)) = exec_user(c, o)? {
        p["user"]["uid"] = json!(uid);
        p["user"]["gid"] = json!(gid);
    }
    if let Some(cwd) = exec_cwd(c, o) {
        p["cwd"] = json!(cwd);
    }
    if o.privileged {
        let caps = spec::all_caps();
        p["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
    }
    match size {
        Some((rows, cols)) => p["consoleSize"] = json!({"height": rows, "width": cols}),
        None => {
            if let Some(m) = p.as_object_mut() {
                m.remove("consoleSize");
            }
        }
    }
    Ok(p)
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
