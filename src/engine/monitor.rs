//! The per-container monitor: berth re-executed as `__monitor <id>`,
//! detached (setsid) and a child subreaper, so the container's init is
//! reparented to it once `<runtime> create` exits. It owns the container's
//! stdio, writes the json-file log, serves attach, records the exit and
//! applies the restart policy and `--rm`.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::attach::{self, read_frame, write_frame};
use super::container::{Container, State, Status};
use super::events;
use super::lifecycle::{self, cleanup, runtime_of};
use super::logs;
use super::runtime::Runtime;
use super::tty;
use crate::sys::now_rfc3339;

pub(super) const READY_FD: RawFd = 3;

/// Starts the monitor and waits until the container was created (and,
/// unless `wait_attach`, started). Errors come back as the monitor saw them.
pub fn spawn(root: &Path, c: &Container, wait_attach: bool) -> Result<()> {
    spawn_with(root, c, if wait_attach { "--wait-attach" } else { "" })
}

/// `spawn`, with one extra `__monitor` flag (`--adopt` is `recover`'s).
pub(super) fn spawn_with(root: &Path, c: &Container, flag: &str) -> Result<()> {
    let (r, w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating monitor pipe")?;
    let exe = std::env::current_exe().context("finding the berth binary")?;
    let log = File::create(c.dir.join("monitor.log"))
        .with_context(|| format!("creating {}", c.dir.join("monitor.log").display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root").arg(root).arg("__monitor").arg(c.id());
    if !flag.is_empty() {
        cmd.arg(flag);
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
    let wfd = w.as_raw_fd();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if libc::dup2(wfd, READY_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().context("starting the container monitor")?;
    drop(w);
    drop(cmd);
    let mut msg = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(File::from(r)), &mut msg).ok();
    // The monitor lives on detached; its parent will not wait for it.
    std::mem::forget(child);
    let msg = msg.trim();
    if let Some(e) = msg.strip_prefix("error: ") {
        return Err(super::error::EngineError::start_failed(e).into());
    }
    if msg != "ok" {
        bail!(
            "container monitor for {} failed to start (see {})",
            c.config.name,
            c.dir.join("monitor.log").display()
        );
    }
    Ok(())
}

pub(super) struct Hub {
    clients: Mutex<Vec<UnixStream>>,
    stdin: Mutex<Option<File>>,
    master: Mutex<Option<File>>,
    attached: (Mutex<bool>, Condvar),
    /// The last window size a client sent.
    size: Mutex<Option<(u16, u16)>>,
    log: Mutex<logs::Writer>,
    tty: bool,
}

impl Hub {
    pub(super) fn flush_log(&self) {
        if let Ok(mut l) = self.log.lock() {
            l.flush();
        }
    }

    fn output(&self, stream: usize, data: &[u8]) {
        if let Ok(mut l) = self.log.lock() {
            l.write(stream, data);
        }
        let kind = if stream == 0 {
            attach::STDOUT
        } else {
            attach::STDERR
        };
        if let Ok(mut cl) = self.clients.lock() {
            cl.retain_mut(|s| write_frame(s, kind, data).is_ok());
        }
    }

    fn mark_attached(&self) {
        let (m, cv) = &self.attached;
        if let Ok(mut g) = m.lock() {
            *g = true;
            cv.notify_all();
        }
    }

    fn client_input(self: Arc<Self>, mut s: UnixStream) {
        loop {
            let frame = read_frame(&mut s);
            // A resize marks the client attached once applied (below).
            if !matches!(frame, Ok(Some((attach::RESIZE, _)))) {
                self.mark_attached();
            }
            let Ok(Some((kind, d))) = frame else { break };
            match kind {
                attach::STDIN => {
                    let target = if self.tty { &self.master } else { &self.stdin };
                    if let Ok(mut g) = target.lock() {
                        if let Some(f) = g.as_mut() {
                            let _ = f.write_all(&d);
                        }
                    }
                }
                attach::STDIN_EOF if !self.tty => {
                    if let Ok(mut g) = self.stdin.lock() {
                        g.take();
                    }
                }
                attach::RESIZE => {
                    // 0x0: the client's size is unknown (not a terminal).
                    let size = tty::decode_size(&d).filter(|&(r, c)| r > 0 && c > 0);
                    if let Some((rows, cols)) = size {
                        // Kept for a restart's new pty, which starts at the default size.
                        if let Ok(mut s) = self.size.lock() {
                            *s = Some((rows, cols));
                        }
                        if let Ok(g) = self.master.lock() {
                            if let Some(m) = g.as_ref() {
                                let _ = tty::set_window_size(m.as_fd(), rows, cols);
                            }
                        }
                    }
                    self.mark_attached();
                }
                _ => {}
            }
        }
    }
}

pub(super) fn pump(hub: Arc<Hub>, mut f: File, stream: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => hub.output(stream, &buf[..n]),
            }
        }
    })
}

fn pipe_files() -> Result<(File, File)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("creating pipe")?;
    Ok((File::from(r), File::from(w)))
}

struct Launch {
    pid: i32,
    pumps: Vec<std::thread::JoinHandle<()>>,
}

/// `<runtime> create`, wiring stdio through pipes or a pty.
fn create(root: &Path, c: &Container, hub: &Arc<Hub>) -> Result<Launch> {
    let rt = &c.config.runtime;
    let pidfile = c.dir.join("init.pid");
    let _ = std::fs::remove_file(&pidfile);
    let mut cmd = runtime_of(root, c).command();
    super::recover::die_with_parent(&mut cmd);
    cmd.arg("create").arg("--bundle").arg(c.bundle());
    cmd.arg("--pid-file").arg(&pidfile);
    let mut pumps = Vec::new();
    let (err_r, err_w) = pipe_files()?;
    if c.config.tty {
        let sock = c.dir.join("console.sock");
        let _ = std::fs::remove_file(&sock);
        let short = crate::sys::sock_path(&sock)?;
        let l = UnixListener::bind(&short.path)
            .with_context(|| format!("binding {}", sock.display()))?;
        cmd.arg("--console-socket").arg(&short.path);
        cmd.arg(c.id());
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(err_w);
        let st = cmd
            .status()
            .with_context(|| format!("running {rt} create"))?;
        drop(cmd);
        if !st.success() {
            bail!("{}", runtime_error(err_r, rt));
        }
        let master = tty::receive_console(&l)?;
        let _ = std::fs::remove_file(&sock);
        if let Some((rows, cols)) = hub.size.lock().ok().and_then(|s| *s) {
            let _ = tty::set_window_size(master.as_fd(), rows, cols);
        }
        *hub.master.lock().map_err(|_| anyhow::anyhow!("lock"))? =
            Some(master.try_clone().context("dup pty")?);
        pumps.push(pump(hub.clone(), master, 0));
    } else {
        // FIFOs, not pipes: a new monitor can reopen them if this one is killed.
        let (out_r, out_w) = super::recover::fifo(&c.dir, "stdout")?;
        let (serr_r, serr_w) = super::recover::fifo(&c.dir, "stderr")?;
        if c.config.interactive {
            let (in_r, in_w) = pipe_files()?;
            cmd.stdin(in_r);
            *hub.stdin.lock().map_err(|_| anyhow::anyhow!("lock"))? = Some(in_w);
        } else {
            cmd.stdin(Stdio::null());
        }
        cmd.arg(c.id());
        cmd.stdout(out_w).stderr(serr_w);
        // The runtime's own errors also land on stderr: keep them apart
        // by starting the pumps only after create succeeded.
        let st = cmd
            .status()
            .with_context(|| format!("running {rt} create"))?;
        drop(cmd);
        drop(err_w);
        if !st.success() {
            drop(err_r);
            bail!("{}", runtime_error(serr_r, rt));
        }
        pumps.push(pump(hub.clone(), out_r, 0));
        pumps.push(pump(hub.clone(), serr_r, 1));
    }
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .with_context(|| format!("reading {}", pidfile.display()))?
        .trim()
        .parse()
        .with_context(|| format!("parsing {}", pidfile.display()))?;
    Ok(Launch { pid, pumps })
}

fn runtime_error(f: File, rt: &str) -> String {
    // SAFETY: setting O_NONBLOCK on an fd we own.
    unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let mut s = String::new();
    let mut f = f;
    let _ = f.read_to_string(&mut s);
    if s.trim().is_empty() {
        return format!("{rt} create failed");
    }
    super::error::runtime_message(&s)
}

fn wait_pid(pid: i32) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: reaping any child; we are a subreaper and reap orphans too.
        let r = unsafe { libc::waitpid(-1, &mut status, 0) };
        if r < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return 255;
        }
        if r == pid {
            if libc::WIFEXITED(status) {
                return libc::WEXITSTATUS(status);
            }
            if libc::WIFSIGNALED(status) {
                return 128 + libc::WTERMSIG(status);
            }
        } else {
            // A health probe's runtime exec, or an orphan.
            super::health::note_reaped(r, status);
        }
    }
}

/// Watches for OOM kills through `<runtime> events` (not cgroupfs), for
/// containers with a memory limit.
struct OomWatch {
    child: std::process::Child,
    seen: Arc<AtomicBool>,
    reader: std::thread::JoinHandle<()>,
}

/// Started before the container's process runs: a process that hits its limit at once would
/// otherwise be killed before the runtime took its baseline of OOM kills. Waits for the first
/// line (hull's first stats sample) so the watch is in place when this returns; a runtime that
/// prints nothing before its interval (runc) gets a moment instead. None if the runtime
/// refused (asked again after the start).
fn watch_oom(rt: &Runtime, id: &str) -> Option<OomWatch> {
    let mut cmd = rt.command();
    super::recover::die_with_parent(&mut cmd);
    let mut child = cmd
        .args(["events", "--interval", "1h", id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let out = child.stdout.take()?;
    let seen = Arc::new(AtomicBool::new(false));
    let s = seen.clone();
    let (first_tx, first_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(|l| l.ok()) {
            let _ = first_tx.send(());
            if line.contains("\"type\":\"oom\"") {
                s.store(true, Ordering::SeqCst);
            }
        }
    });
    let _ = first_rx.recv_timeout(Duration::from_millis(300));
    if !matches!(child.try_wait(), Ok(None)) {
        let _ = reader.join();
        return None;
    }
    Some(OomWatch {
        child,
        seen,
        reader,
    })
}

impl OomWatch {
    /// Whether an OOM kill was reported; gives a killed (137) container's
    /// runtime a moment to deliver the event.
    fn finish(mut self, code: i32) -> bool {
        let end = Instant::now() + Duration::from_millis(1000);
        while code == 137
            && !self.seen.load(Ordering::SeqCst)
            && !self.reader.is_finished()
            && Instant::now() < end
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        // The subreaper's wait may already have reaped it: no kill then.
        if !self.reader.is_finished() {
            let _ = self.child.kill();
        }
        let _ = self.reader.join();
        self.seen.load(Ordering::SeqCst)
    }
}

pub(super) fn save_state(c: &mut Container, f: impl FnOnce(&mut State)) {
    c.reload_state();
    f(&mut c.state);
    let _ = c.save_state();
}

/// The ready pipe to `spawn`: one line, "ok" or "error: ...", sent once.
pub(super) struct Ready(pub(super) Option<File>);

impl Ready {
    pub(super) fn report(&mut self, msg: &str) {
        if let Some(mut f) = self.0.take() {
            let _ = f.write_all(format!("{msg}\n").as_bytes());
        }
    }

    /// The first start failed: undo, record and tell `spawn`.
    fn fail(&mut self, root: &Path, c: &mut Container, e: &anyhow::Error) -> i32 {
        cleanup(root, c);
        let msg = format!("{e:#}");
        save_state(c, |s| {
            // docker's record of a failed start: the command's 126/127 (else 128) with the error.
            s.exit_code = super::error::EngineError::start_exit_code(&msg);
            s.error = msg.clone();
            s.monitor_pid = 0;
            s.status = Status::Created;
        });
        self.report(&format!("error: {e:#}"));
        1
    }
}

/// The hidden `__monitor` subcommand.
pub fn main(root: &Path, id: &str, wait_attach: bool) -> i32 {
    let _ = prctl::set_child_subreaper(true);
    // Children (runtime, container, DNS helper) must not hold the ready
    // pipe, or `spawn` would wait for them.
    // SAFETY: setting FD_CLOEXEC on our fd 3.
    unsafe { libc::fcntl(READY_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: fd 3 was set up by `spawn` for us alone.
    let mut ready = Ready(Some(unsafe { File::from_raw_fd(READY_FD) }));
    let mut c = match register(root, id) {
        Ok(c) => c,
        Err(e) => {
            ready.report(&format!("error: {e:#}"));
            return 1;
        }
    };
    let hub = match prepare(root, &mut c) {
        Ok(h) => h,
        Err(e) => {
            cleanup(root, &c);
            save_state(&mut c, |s| {
                s.error = format!("{e:#}");
                s.monitor_pid = 0;
            });
            ready.report(&format!("error: {e:#}"));
            return 1;
        }
    };
    let final_code = match supervise(root, &mut c, &hub, &mut ready, wait_attach) {
        Ok(code) => code,
        Err(failed) => return failed,
    };
    finish(root, &mut c, &hub, final_code);
    0
}

/// After the last exit: `--rm` or cleanup, then attach clients get the exit code.
pub(super) fn finish(root: &Path, c: &mut Container, hub: &Hub, final_code: i32) {
    if c.config.auto_remove {
        // Under the containers lock, so that a concurrent `rm -f` (which reads the records
        // under it) finds the container whole or gone, never half removed.
        let _l = crate::sys::lock(&super::container::lock_path(root));
        let _ = lifecycle::remove_files(root, c, true);
    } else {
        cleanup(root, c);
        save_state(c, |s| s.monitor_pid = 0);
    }
    let _ = std::fs::remove_file(c.attach_sock());
    if let Ok(mut cl) = hub.clients.lock() {
        for s in cl.iter_mut() {
            let _ = write_frame(s, attach::EXIT, final_code.to_string().as_bytes());
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Records this process as the container's monitor, under the containers lock so that a
/// concurrent `rm -f` either sees it or has removed the container before.
fn register(root: &Path, id: &str) -> Result<Container> {
    let _l = crate::sys::lock(&super::container::lock_path(root))?;
    let mut c = Container::load_dir(&super::container::containers_dir(root).join(id))?;
    c.state.monitor_pid = std::process::id() as i32;
    c.save_state()?;
    Ok(c)
}

/// Creates and starts the container, waits for it, and restarts it as
/// its policy says. The last exit code, or Err(status) if the first start
/// failed (already reported).
fn supervise(
    root: &Path,
    c: &mut Container,
    hub: &Arc<Hub>,
    ready: &mut Ready,
    wait_attach: bool,
) -> Result<i32, i32> {
    let rt = runtime_of(root, c);
    let id = c.id().to_string();
    let mut first = true;
    loop {
        let launch = match create(root, c, hub) {
            Ok(l) => l,
            Err(e) => {
                rt.delete(&id);
                return if first {
                    Err(ready.fail(root, c, &e))
                } else {
                    Ok(127)
                };
            }
        };
        if first && wait_attach {
            ready.report("ok");
            let (m, cv) = &hub.attached;
            if let Ok(g) = m.lock() {
                let _ = cv.wait_timeout_while(g, Duration::from_secs(30), |a| !*a);
            }
        }
        let oom_watch = c.config.memory.and_then(|_| watch_oom(&rt, &id));
        if let Err(e) = rt.start(&id) {
            if let Some(w) = oom_watch {
                w.finish(0);
            }
            rt.delete(&id);
            for p in launch.pumps {
                let _ = p.join();
            }
            return if first {
                Err(ready.fail(root, c, &e))
            } else {
                Ok(127)
            };
        }
        save_state(c, |s| {
            s.status = Status::Running;
            s.pid = launch.pid;
            s.started_at = now_rfc3339();
            s.exit_code = 0;
            s.error.clear();
        });
        // Before `run -d` returns: its health reads `starting` at once.
        let checker = super::health::start(root, c);
        if first {
            ready.report("ok");
            first = false;
        }
        events::container(root, c, "start", &[]);
        let oom_watch = oom_watch.or_else(|| c.config.memory.and_then(|_| watch_oom(&rt, &id)));
        let code = wait_pid(launch.pid);
        if let Some(h) = checker {
            h.stop();
        }
        for p in launch.pumps {
            let _ = p.join();
        }
        if let Ok(mut l) = hub.log.lock() {
            l.flush();
        }
        hub.master.lock().map(|mut m| m.take()).ok();
        let oom = oom_watch.is_some_and(|w| w.finish(code)) && code == 137;
        rt.delete(&id);
        let restarts = c.state.restart_count;
        // `update --restart` may have changed the policy while it ran.
        if let Ok(fresh) = Container::load_dir(&c.dir) {
            c.config.restart = fresh.config.restart;
        }
        let again = c
            .config
            .restart
            .should_restart(code, restarts, c.stop_marker().exists());
        save_state(c, |s| {
            s.status = if again {
                Status::Restarting
            } else {
                Status::Exited
            };
            s.exit_code = code;
            s.finished_at = now_rfc3339();
            s.oom_killed = oom;
            s.pid = 0;
            if again {
                s.restart_count += 1;
            }
        });
        if oom {
            events::container(root, c, "oom", &[]);
        }
        events::container(root, c, "die", &[("exitCode", code.to_string())]);
        if !again {
            return Ok(code);
        }
        // docker's backoff starts at 100ms and doubles.
        std::thread::sleep(Duration::from_millis(100u64 << restarts.min(6)));
    }
}

fn prepare(root: &Path, c: &mut Container) -> Result<Arc<Hub>> {
    c.state.monitor_pid = std::process::id() as i32;
    c.state.status = Status::Created;
    let _ = std::fs::remove_file(c.stop_marker());
    c.save_state()?;
    super::rootfs::mount_rootfs(&c.dir)?;
    let rootfs = c.rootfs();
    for m in &c.config.mounts {
        if m.typ == "volume" {
            super::volumes::populate(root, &m.source, &rootfs, &m.target)?;
        }
    }
    let eps = crate::network::setup(root, &c.net_member())?;
    c.reload_state();
    c.state.endpoints = eps;
    c.save_state()?;
    super::etc_files::write_hosts(root, c)?;
    serve(c)
}

/// The log writer and the attach socket's listener.
pub(super) fn serve(c: &Container) -> Result<Arc<Hub>> {
    // --log-driver none: output goes nowhere (and is never rotated).
    let (log_path, max_size) = match c.config.host.log_driver {
        super::hostconfig::LogDriver::None => (PathBuf::from("/dev/null"), None),
        super::hostconfig::LogDriver::JsonFile => (c.log_path(), c.config.log_max_size),
    };
    let log = logs::Writer::open(&log_path, max_size, c.config.log_max_file)?;
    let hub = Arc::new(Hub {
        clients: Mutex::new(Vec::new()),
        stdin: Mutex::new(None),
        master: Mutex::new(None),
        attached: (Mutex::new(false), Condvar::new()),
        size: Mutex::new(None),
        log: Mutex::new(log),
        tty: c.config.tty,
    });
    let sock = c.attach_sock();
    let _ = std::fs::remove_file(&sock);
    let short = crate::sys::sock_path(&sock)?;
    let l =
        UnixListener::bind(&short.path).with_context(|| format!("binding {}", sock.display()))?;
    let h = hub.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            if let Ok(w) = s.try_clone() {
                if let Ok(mut cl) = h.clients.lock() {
                    cl.push(w);
                }
            }
            // A tty client's first frame is its window size: the process
            // starts after it, so it never sees the pty's default size.
            if !h.tty {
                h.mark_attached();
            }
            let h2 = h.clone();
            std::thread::spawn(move || h2.client_input(s));
        }
    });
    Ok(hub)
}

pub fn monitor_log(c: &Container) -> PathBuf {
    c.dir.join("monitor.log")
}
