//! `exec`: run another process inside a running container.
//!
//! hull forks a child that joins every namespace of the container's init (user first) and its
//! cgroup; that child clones the process with CLONE_PARENT, so it lands in the container's pid
//! namespace as hull's own child. The process then gets the same treatment as the init's: rlimits,
//! capabilities, user, no_new_privs, seccomp, and exec.

use super::console;
use super::lifecycle::{cgroup_of, status_of};
use super::namespaces::Plan;
use super::process;
use super::resolve::openat2;
use super::state::{Container, StateError, Status};
use super::sync::{self, Channel, Msg};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Capabilities, LinuxNamespaceType, Process, Spec};
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

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

/// Runs `exec`; returns the exit code to exit with (0 when detached).
pub fn exec(opts: &ExecOptions) -> Result<i32> {
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
    super::mempolicy::prepare_for_exec(&spec)?;
    let terminal = process.terminal() == Some(true);
    // The container's filter applies to every process in it; compiled (or read from the cache)
    // here, before the fork.
    let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        Some(s) => Some(crate::seccomp::prepare(s)?),
        None => None,
    };

    // Join the namespaces the container has, through its init's /proc entries.
    let init = c.state.pid;
    let mut plan = Plan::from_linux(None);
    for ns in spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .into_iter()
        .flatten()
    {
        plan.join.push((
            ns.typ(),
            PathBuf::from(format!("/proc/{init}/ns/{}", ns_file(ns.typ()))),
        ));
    }
    plan.join
        .sort_by_key(|(t, _)| *t != LinuxNamespaceType::User);
    let cg = cgroup_of(&c)?;
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
                &plan,
                &child_end,
                &process,
                console_fd,
                &preserved,
                seccomp.as_ref(),
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
    let cleanup_kill = |pid: i32| unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    };
    if let Err(e) = super::affinity::apply_initial(intermediate, &process) {
        cleanup_kill(intermediate);
        return Err(e);
    }
    if let Err(e) = cg.add_pid(intermediate) {
        cleanup_kill(intermediate);
        return Err(e);
    }
    parent_end.send(&Msg::Go)?;
    let pid = match parent_end.recv() {
        Ok(Msg::InitPid { pid }) => pid,
        Ok(Msg::Error { msg }) => {
            cleanup_kill(intermediate);
            bail!("{msg}");
        }
        Ok(other) => {
            cleanup_kill(intermediate);
            bail!("exec channel: unexpected {other:?}");
        }
        Err(e) => {
            cleanup_kill(intermediate);
            return Err(e);
        }
    };
    // SAFETY: reaping the intermediate child, which exits after reporting the pid.
    unsafe { libc::waitpid(intermediate, std::ptr::null_mut(), 0) };
    // The process closes its end by exec (close-on-exec); an error arrives as a message first.
    loop {
        match parent_end.recv() {
            Ok(Msg::SeccompNotify { announce }) => {
                let state = serde_json::to_value(c.oci_state(Status::Running))?;
                if let Err(e) = crate::seccomp::notify::hand_over(pid, &announce, &state) {
                    cleanup_kill(pid);
                    return Err(e);
                }
            }
            Ok(Msg::Error { msg }) => {
                cleanup_kill(pid);
                bail!("{msg}");
            }
            Ok(other) => {
                cleanup_kill(pid);
                bail!("exec channel: unexpected {other:?}");
            }
            Err(_) => break,
        }
    }
    if let Some(path) = &opts.pid_file {
        super::create::write_pid_file(path, pid)?;
    }
    drop(c);
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

fn exec_intermediate(
    plan: &Plan,
    chan: &Channel,
    process: &Process,
    console_fd: Option<RawFd>,
    preserved: &[i32],
    seccomp: Option<&crate::seccomp::Loaded>,
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
            let res = exec_process(chan, process, console_fd, preserved, seccomp);
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
    crate::seccomp::privileges::check_lsm(process)?;
    super::mempolicy::apply_for_exec()?;
    super::affinity::apply_cpu_affinity(process)?;
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
