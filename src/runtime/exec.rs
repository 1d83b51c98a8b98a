//! `exec`: run another process inside a running container.
//!
//! hull forks a child that joins every namespace of the container's init (user first) and its
//! cgroup; that child clones the process with CLONE_PARENT, so it lands in the container's pid
//! namespace as hull's own child. The process then gets the same treatment as the init's: rlimits,
//! capabilities, user, no_new_privs, seccomp, and exec.

use super::console;
use super::exec_cgroup::Placement;
use super::lifecycle::status_of;
use super::namespaces::Plan;
use super::process;
use super::resolve::openat2;
use super::state::{Container, StateError, Status};
use super::sync::{self, Channel, Msg};
use anyhow::{bail, Context, Result};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use oci_spec::runtime::{Capabilities, Linux, LinuxNamespaceType, Process, Spec};
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct ExecOptions {
    pub root: PathBuf,
    pub id: String,
    pub process_file: Option<PathBuf>,
    pub args: Vec<String>,
    pub tty: bool,
    pub console_socket: Option<PathBuf>,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    pub caps: Vec<String>,
    pub no_new_privs: bool,
    pub apparmor: Option<String>,
    pub process_label: Option<String>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
    /// runc's `--cgroup [CONTROLLERS:]PATH`, repeatable.
    pub cgroup: Vec<String>,
}

fn ns_file(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

fn add_caps(set: &mut Option<Capabilities>, names: &[String]) -> Result<()> {
    for name in names {
        let upper = name.to_ascii_uppercase();
        let full = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        let cap: oci_spec::runtime::Capability =
            serde_json::from_value(serde_json::Value::String(full.clone()))
                .map_err(|_| anyhow::anyhow!("--cap: unknown capability {name:?}"))?;
        set.get_or_insert_with(Default::default).insert(cap);
    }
    Ok(())
}

/// The process to run: `--process FILE`, or the container's own process with the flags applied,
/// as runc builds it.
fn build_process(opts: &ExecOptions, spec: &Spec) -> Result<Process> {
    if let Some(path) = &opts.process_file {
        let text = if path == Path::new("-") {
            std::io::read_to_string(std::io::stdin()).context("--process: read stdin")?
        } else {
            std::fs::read_to_string(path)
                .with_context(|| format!("--process: read {}", path.display()))?
        };
        let p: Process = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "--process {}: invalid at line {} column {}: {e}",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        return Ok(p);
    }
    if opts.args.is_empty() {
        bail!("exec: no command given (args or --process)");
    }
    let mut p = spec
        .process()
        .clone()
        .context("process: missing in the container's config")?;
    p.set_args(Some(opts.args.clone()));
    p.set_terminal(Some(opts.tty));
    if let Some(cwd) = &opts.cwd {
        p.set_cwd(cwd.clone());
    }
    if !opts.env.is_empty() {
        let mut env = p.env().clone().unwrap_or_default();
        for kv in &opts.env {
            let key = kv.split('=').next().unwrap_or("");
            env.retain(|e| e.split('=').next() != Some(key));
            env.push(kv.clone());
        }
        p.set_env(Some(env));
    }
    if let Some(user) = &opts.user {
        let (uid, gid) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        let u = p.user_mut();
        u.set_uid(
            uid.parse()
                .with_context(|| format!("--user: invalid uid {uid:?}"))?,
        );
        if let Some(g) = gid {
            u.set_gid(
                g.parse()
                    .with_context(|| format!("--user: invalid gid {g:?}"))?,
            );
        }
    }
    if !opts.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(opts.additional_gids.clone()));
    }
    if !opts.caps.is_empty() {
        let mut c = p.capabilities().clone().unwrap_or_default();
        let mut b = c.bounding().clone();
        let mut e = c.effective().clone();
        let mut pm = c.permitted().clone();
        add_caps(&mut b, &opts.caps)?;
        add_caps(&mut e, &opts.caps)?;
        add_caps(&mut pm, &opts.caps)?;
        // Ambient needs inheritable; as runc, only raise it when the config has inheritable bits.
        if c.inheritable().as_ref().is_some_and(|i| !i.is_empty()) {
            let mut a = c.ambient().clone();
            add_caps(&mut a, &opts.caps)?;
            c.set_ambient(a);
        }
        c.set_bounding(b);
        c.set_effective(e);
        c.set_permitted(pm);
        p.set_capabilities(Some(c));
    }
    if opts.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if let Some(a) = &opts.apparmor {
        p.set_apparmor_profile(Some(a.clone()));
    }
    if let Some(l) = &opts.process_label {
        p.set_selinux_label(Some(l.clone()));
    }
    Ok(p)
}

/// What exec takes from the container, gathered under its state lock and used without it: the
/// process may wait on a frozen cgroup (`--ignore-paused`), and `resume` needs that lock.
struct Target {
    spec: Spec,
    process: Process,
    plan: Plan,
    /// The init's namespaces, opened while it was verified alive, so a pid recycled after the
    /// lock is gone cannot swap them; the plan joins them through /proc/self/fd. With no mount
    /// namespace, the init's root too.
    _ns_fds: Vec<OwnedFd>,
    placement: Placement,
    /// The container's state for a seccomp listener.
    running: serde_json::Value,
}

fn prepare(opts: &ExecOptions) -> Result<Target> {
    let c = Container::load(&opts.root, &opts.id)?;
    match status_of(&c) {
        Status::Running => {}
        Status::Paused if opts.ignore_paused => {}
        Status::Paused => {
            bail!("cannot exec in a paused container (use --ignore-paused to try anyway)")
        }
        Status::Created => bail!("cannot exec in a created container: start it first"),
        Status::Stopped => return Err(StateError::NotRunning.into()),
    }
    let config = std::fs::read_to_string(c.state.bundle.join("config.json"))
        .with_context(|| format!("read {}", c.state.bundle.join("config.json").display()))?;
    let spec = super::spec::parse(&config)?;
    let process = build_process(opts, &spec)?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("process.args: must name the program to run");
    }
    super::affinity::validate(&process)?;
    super::mempolicy::of_linux(spec.linux().as_ref())?;
    let placement = super::exec_cgroup::placement(&c.state.cgroup_path, &opts.cgroup)?;
    // Join the namespaces the container has, through its init's /proc entries.
    let init = c.state.pid;
    let mut plan = Plan::from_linux(None);
    let mut ns_fds = Vec::new();
    for ns in spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
    {
        let path = format!("/proc/{init}/ns/{}", ns_file(ns.typ()));
        let fd = OwnedFd::from(std::fs::File::open(&path).with_context(|| format!("open {path}"))?);
        plan.join.push((
            ns.typ(),
            PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())),
        ));
        ns_fds.push(fd);
    }
    // Enter the init's root after the joins. setns into a mount namespace gives the root of
    // that namespace, which is the container's only after a pivot_root: an init that chroot'ed
    // (no mount namespace of its own, --no-pivot, or a host whose root is an initramfs, where
    // pivot_root is impossible) must be followed into its root.
    {
        let path = format!("/proc/{init}/root");
        let root = openat2(
            libc::AT_FDCWD,
            Path::new(&path),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            0,
            0,
        )
        .with_context(|| format!("open the container's root {path}"))?;
        plan.enter_root = Some(PathBuf::from(format!("/proc/self/fd/{}", root.as_raw_fd())));
        ns_fds.push(root);
    }
    // Alive after the opens: the fds are the init's, not a recycled pid's.
    if !c.is_alive() {
        return Err(StateError::NotRunning.into());
    }
    plan.join
        .sort_by_key(|(t, _)| *t != LinuxNamespaceType::User);
    Ok(Target {
        running: serde_json::to_value(c.oci_state(Status::Running))?,
        spec,
        process,
        plan,
        _ns_fds: ns_fds,
        placement,
    })
}

/// Runs `exec`; returns the exit code to exit with (0 when detached).
pub fn exec(opts: &ExecOptions) -> Result<i32> {
    let target = prepare(opts)?;
    let process = &target.process;
    let terminal = process.terminal() == Some(true);
    // The container's filter applies to every process in it; compiled (or read from the cache)
    // here, before the fork.
    let seccomp = match target
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
    {
        Some(s) => Some(crate::seccomp::prepare(s)?),
        None => None,
    };
    let preserved = super::fds::preserved(opts.preserve_fds);

    let mut relay = None;
    let console_fd: Option<RawFd> = match (terminal, &opts.console_socket) {
        (false, _) => None,
        (true, Some(path)) => Some(
            UnixStream::connect(path)
                .with_context(|| format!("--console-socket {}", path.display()))?
                .into_raw_fd(),
        ),
        (true, None) if !opts.detach => {
            let (ours, theirs) = UnixStream::pair().context("socketpair for the console")?;
            let fd = theirs.as_raw_fd();
            relay = Some((ours, theirs));
            Some(fd)
        }
        (true, None) => bail!("--tty with --detach needs --console-socket"),
    };
    let (parent_end, child_end) = sync::pair()?;
    // The process is reported by its pid in hull's namespace; remember the container's too.
    // SAFETY: single-threaded; the child only joins namespaces, clones and exits.
    let intermediate = match unsafe { nix::unistd::fork() }.context("fork")? {
        nix::unistd::ForkResult::Child => {
            drop(parent_end);
            exec_intermediate(
                &target.plan,
                &child_end,
                process,
                console_fd,
                &preserved,
                seccomp.as_ref(),
                target.spec.linux().as_ref(),
            )
        }
        nix::unistd::ForkResult::Parent { child } => child.as_raw(),
    };
    drop(child_end);
    // After the fork (the process must not inherit the mask), before it can exit.
    let old_mask = if opts.detach {
        None
    } else {
        Some(super::supervise::block_signals()?)
    };
    let sfd = match old_mask {
        Some(_) => Some(
            SignalFd::with_flags(&setup_signals(), SfdFlags::SFD_CLOEXEC).context("signalfd")?,
        ),
        None => None,
    };
    // execCPUAffinity.initial: on the intermediate, before launch moves it into the cgroup.
    let launched = super::affinity::apply_initial(intermediate, process)
        .and_then(|()| launch(&target.placement, &parent_end, intermediate, sfd.as_ref()));
    let pid = match launched {
        Ok(pid) => pid,
        Err(e) => {
            stop_children(&[intermediate]);
            return Err(e);
        }
    };
    // The intermediate exits right after reporting the pid; if a pause caught it first, the
    // reaping in wait_forwarding (or whoever inherits it) gets it later.
    reap(intermediate, Duration::from_secs(1));
    if let Err(e) = await_exec(&parent_end, sfd.as_ref(), pid, &target.running) {
        stop_children(&[pid]);
        return Err(e);
    }
    drop(sfd);
    if let Some(path) = &opts.pid_file {
        super::create::write_pid_file(path, pid)?;
    }
    if opts.detach {
        return Ok(0);
    }
    let master = match relay {
        Some((ours, theirs)) => {
            drop(theirs);
            Some(console::recv_fd(&ours)?)
        }
        None => None,
    };
    super::supervise::wait_forwarding(pid, master, old_mask.context("signals were not blocked")?)
}

/// Places the intermediate child in the cgroup, lets it go, and returns the pid of the process
/// it cloned. With `sfd` (signals blocked), a terminating signal that comes first ends the wait
/// with an error: the container may be frozen, and nothing would end the wait then.
fn launch(
    placement: &Placement,
    chan: &Channel,
    intermediate: i32,
    sfd: Option<&SignalFd>,
) -> Result<i32> {
    placement.add_pid(intermediate)?;
    chan.send(&Msg::Go)?;
    match recv_or_signal(chan, sfd)? {
        Msg::InitPid { pid } => Ok(pid),
        Msg::Error { msg } => bail!("{msg}"),
        other => bail!("exec channel: unexpected {other:?}"),
    }
}

/// Waits for the process to exec: it closes its end by exec (close-on-exec), and an error
/// arrives as a message first; a seccomp listener it announces is handed over on the way.
fn await_exec(
    chan: &Channel,
    sfd: Option<&SignalFd>,
    pid: i32,
    running: &serde_json::Value,
) -> Result<()> {
    loop {
        match recv_or_signal(chan, sfd) {
            Ok(Msg::SeccompNotify { announce }) => {
                crate::seccomp::notify::hand_over(pid, &announce, running)?
            }
            Ok(Msg::Error { msg }) => bail!("{msg}"),
            Ok(other) => bail!("exec channel: unexpected {other:?}"),
            Err(e) if e.is::<Interrupted>() => return Err(e),
            Err(_) => return Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("exec: stopped by {0} before the process started")]
struct Interrupted(Signal);

/// The signals that end exec's setup: what would end hull if it were not blocking them.
fn setup_signals() -> SigSet {
    let mut set = SigSet::empty();
    for sig in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        set.add(sig);
    }
    set
}

/// One message from the channel, unless one of [`setup_signals`] arrives first.
fn recv_or_signal(chan: &Channel, sfd: Option<&SignalFd>) -> Result<Msg> {
    let Some(sfd) = sfd else {
        return chan.recv();
    };
    loop {
        let mut fds = [
            libc::pollfd {
                fd: chan.raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sfd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: poll over the array we own.
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(err).context("poll the exec channel");
        }
        // The channel first: a signal that comes with the exec is the process's to get.
        if fds[0].revents != 0 {
            return chan.recv();
        }
        if fds[1].revents & libc::POLLIN != 0 {
            if let Ok(Some(info)) = sfd.read_signal() {
                let sig = Signal::try_from(info.ssi_signo as i32).unwrap_or(Signal::SIGTERM);
                return Err(Interrupted(sig).into());
            }
        }
    }
}

/// Waits up to `timeout` for `pid` to be reaped, without blocking on one that cannot exit yet
/// (a frozen cgroup holds even a SIGKILLed process until it is thawed).
fn reap(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        // SAFETY: reaping our own child.
        let r = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        if r != 0 || Instant::now() >= deadline {
            return r != 0;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Kills `known` (children not reaped yet) and every other child hull has: the process the
/// intermediate cloned is hull's own child (CLONE_PARENT) and may exist before hull heard its
/// pid. What cannot die yet (frozen) dies on thaw and is reaped by whoever inherits it.
fn stop_children(known: &[i32]) {
    let me = std::process::id();
    let listed =
        std::fs::read_to_string(format!("/proc/{me}/task/{me}/children")).unwrap_or_default();
    let mut pids: Vec<i32> = listed
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .chain(known.iter().copied())
        .collect();
    pids.sort_unstable();
    pids.dedup();
    for &pid in &pids {
        // SAFETY: unreaped children of this exec: their pids cannot have been recycled.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    for pid in pids {
        reap(pid, Duration::from_millis(500));
    }
}

fn exec_intermediate(
    plan: &Plan,
    chan: &Channel,
    process: &Process,
    console_fd: Option<RawFd>,
    preserved: &[i32],
    seccomp: Option<&crate::seccomp::Loaded>,
    linux: Option<&Linux>,
) -> ! {
    let res = (|| -> Result<()> {
        // Until exec, /proc/<pid>/exe is the hull binary and the container can see us in its
        // pid namespace: not dumpable means it cannot open that link (CVE-2019-5736).
        prctl::set_dumpable(false)
            .map_err(|e| anyhow::anyhow!("prctl(PR_SET_DUMPABLE): errno {e}"))?;
        chan.expect(Msg::Go)?;
        plan.join_all()?;
        let pid = super::namespaces::clone_sibling().context("clone the exec process")?;
        if pid == 0 {
            let res = exec_process(chan, process, console_fd, preserved, seccomp, linux);
            chan.exit_child(res.map(|never| match never {}), 127);
        }
        chan.send(&Msg::InitPid { pid })?;
        Ok(())
    })();
    chan.exit_child(res, 1)
}

fn exec_process(
    chan: &Channel,
    process: &Process,
    console_fd: Option<RawFd>,
    preserved: &[i32],
    seccomp: Option<&crate::seccomp::Loaded>,
    linux: Option<&Linux>,
) -> Result<std::convert::Infallible> {
    let mut keep = vec![chan.raw_fd()];
    keep.extend(console_fd);
    keep.extend(crate::log::file_fd());
    process::close_inherited_fds(preserved, &keep)?;
    if let Some(sock) = console_fd {
        nix::unistd::setsid().context("setsid")?;
        let root = openat2(
            libc::AT_FDCWD,
            Path::new("/"),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
            0,
        )?;
        let pty = console::open_pty(root.as_raw_fd())?;
        console::apply_size(&pty, process)?;
        console::send_fd(sock, pty.master.as_raw_fd(), "/dev/ptmx")?;
        // SAFETY: the socket was only needed to hand over the master.
        unsafe { libc::close(sock) };
        console::become_terminal(&pty.slave)?;
    }
    if let Some(rlimits) = process.rlimits() {
        process::set_rlimits(rlimits)?;
    }
    let args = process.args().as_deref().unwrap_or_default();
    let env = process.env().clone().unwrap_or_default();
    let exe = process::find_executable(&args[0], &env)?;
    super::mempolicy::apply_of_linux(linux)?;
    super::affinity::apply_cpu_affinity(process)?;
    crate::seccomp::privileges::set_personality_of(linux)?;
    crate::seccomp::privileges::check_lsm(process)?;
    super::finish::become_user(process, seccomp.is_some())?;
    let mut announce = |a: &crate::seccomp::notify::Announce| {
        chan.send(&Msg::SeccompNotify {
            announce: a.clone(),
        })
    };
    Err(super::finish::exec(
        process,
        &exe,
        args,
        &env,
        preserved,
        seccomp,
        &mut announce,
    ))
}
