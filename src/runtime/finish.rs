//! The last steps of every container process, the init's and exec's alike, in one order:
//! bounding set, user and capabilities, the cwd (checked to be inside the container); then,
//! after whatever the caller does in between (the init reports ready, waits for `start` and runs
//! the startContainer hooks): fds, LSM label, seccomp and execve.
//!
//! The seccomp filter goes in last, right before execve, whatever noNewPrivileges says: every
//! syscall after it is judged by the container's profile, and a strict profile (default errno,
//! allowing only what the application needs) must not break the runtime. argv and envp are
//! built before it, so not even an allocation happens after the filter. Without no_new_privs,
//! loading a filter needs CAP_SYS_ADMIN, so it is kept in the effective and permitted sets until
//! then; execve's capability transformation drops it again (root gets inheritable | bounding,
//! any other user its ambient set), so the program starts with exactly the capabilities it
//! would have had.

use super::process;
use crate::seccomp::{notify, Loaded};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::Process;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Drops the bounding set, switches to the container's user and capabilities, and enters the
/// cwd. `seccomp_pending`: a filter will be loaded later by [`exec`].
pub fn become_user(process: &Process, seccomp_pending: bool) -> Result<()> {
    process::drop_bounding(process.capabilities().as_ref())?;
    let hold_sys_admin = seccomp_pending && process.no_new_privileges() != Some(true);
    process::set_user_and_caps(process, hold_sys_admin)?;
    enter_cwd(process.cwd())
}

/// chdir into the configured cwd and make sure it is inside the container: a cwd reached
/// through a leaked fd would be on the host (CVE-2024-21626).
fn enter_cwd(cwd: &Path) -> Result<()> {
    nix::unistd::chdir(cwd).with_context(|| format!("process.cwd: chdir {}", cwd.display()))?;
    let now: PathBuf = nix::unistd::getcwd()
        .with_context(|| format!("process.cwd: {} is outside the container", cwd.display()))?;
    if !now.is_absolute() || now.to_string_lossy().starts_with("(unreachable)") {
        bail!("process.cwd: {} is outside the container", cwd.display());
    }
    Ok(())
}

/// argv and envp as execve takes them, built before the filter.
struct Argv {
    path: CString,
    _strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

fn c_string(s: &[u8], field: &str) -> Result<CString> {
    CString::new(s).map_err(|_| anyhow::anyhow!("{field}: contains a NUL byte"))
}

impl Argv {
    fn new(path: &Path, args: &[String], env: &[String]) -> Result<Self> {
        let path = c_string(path.as_os_str().as_bytes(), "process.args[0]")?;
        let mut strings = Vec::with_capacity(args.len() + env.len());
        for (i, a) in args.iter().enumerate() {
            strings.push(c_string(a.as_bytes(), &format!("process.args[{i}]"))?);
        }
        for (i, e) in env.iter().enumerate() {
            strings.push(c_string(e.as_bytes(), &format!("process.env[{i}]"))?);
        }
        let ptrs = |s: &[CString]| -> Vec<*const libc::c_char> {
            s.iter()
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        let (argv, envp) = (ptrs(&strings[..args.len()]), ptrs(&strings[args.len()..]));
        Ok(Argv {
            path,
            _strings: strings,
            argv,
            envp,
        })
    }

    /// execve with no allocation before the call; returns only on failure.
    fn exec(&self, arg0: &str) -> anyhow::Error {
        // SAFETY: path, argv and envp are NUL-terminated strings and null-terminated pointer
        // arrays owned by self, alive across the call.
        unsafe { libc::execve(self.path.as_ptr(), self.argv.as_ptr(), self.envp.as_ptr()) };
        let err = nix::errno::Errno::last();
        anyhow::anyhow!("exec: {arg0:?}: {}", err.desc())
    }
}

/// The process starts with every signal at its default action and none blocked, as runc's and
/// crun's do: an ignored disposition survives execve, so what hull's caller ignored (a shell's
/// `&` ignores SIGINT and SIGQUIT, nohup SIGHUP) would reach the container, where a program
/// cannot even trap it. Before the filter, which may refuse rt_sigaction.
fn reset_signals() -> Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator().filter(|s| !matches!(s, Signal::SIGKILL | Signal::SIGSTOP)) {
        // SAFETY: installs the default action, no handler code.
        unsafe { sigaction(sig, &dfl) }.with_context(|| format!("resetting {sig}"))?;
    }
    // Real-time signals from the kernel's first (32): libc refuses 32 and 33, kept for itself,
    // so the kernel is asked directly. An all-zero kernel sigaction is SIG_DFL, no flags, no
    // mask, whatever the architecture's field order.
    let dfl_raw = [0u64; 4];
    for n in 32..=libc::SIGRTMAX() {
        // SAFETY: installs the default action from a zeroed buffer larger than the kernel's
        // struct; nothing runs between here and execve that relies on libc's own use of 32/33.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                n,
                dfl_raw.as_ptr(),
                std::ptr::null_mut::<u8>(),
                8usize,
            )
        };
    }
    SigSet::empty()
        .thread_set_mask()
        .context("unblocking signals")
}

/// Marks fds close-on-exec, applies the LSM label, loads the filter and execs. Returns only on
/// failure. `announce` tells the hull process on the other end where to take a seccomp
/// listener fd from (see seccomp/notify.rs); it is called only for a notifying profile.
pub fn exec(
    process: &Process,
    exe: &Path,
    args: &[String],
    env: &[String],
    preserved: &[i32],
    seccomp: Option<&Loaded>,
    announce: &mut dyn FnMut(&notify::Announce) -> Result<()>,
) -> anyhow::Error {
    let mut run = || -> Result<std::convert::Infallible> {
        let argv = Argv::new(exe, args, env)?;
        reset_signals()?;
        process::prepare_fds(preserved)?;
        crate::seccomp::privileges::apply_lsm(process)?;
        if let Some(s) = seccomp {
            let cell = notify::Cell::new();
            match s.announce(&cell) {
                Some(a) => {
                    announce(&a)?;
                    crate::seccomp::install_notifying(&s.program, s.flags, &cell)?;
                }
                None => crate::seccomp::install(&s.program, s.flags)?,
            }
        }
        let arg0 = args.first().map(String::as_str).unwrap_or("");
        Err(argv.exec(arg0))
    };
    match run() {
        Ok(never) => match never {},
        Err(e) => e,
    }
}
