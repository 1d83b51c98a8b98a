//! Commands that connect the terminal to a container: exec, attach, cp,
//! and the foreground half of run / start -a.

use anyhow::Result;
use clap::Args;
use std::path::Path;

use hull::engine::container::{self, Container};
use hull::engine::{
    attach, exec as engine_exec, lifecycle, opts, run, EngineError, ExecOptions, Op,
};

#[derive(Args)]
pub struct ExecArgs {
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(short, long)]
    pub tty: bool,
    #[arg(short, long)]
    pub detach: bool,
    #[arg(short, long = "env", allow_hyphen_values = true)]
    pub env: Vec<String>,
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short, long)]
    pub workdir: Option<String>,
    #[arg(long)]
    pub privileged: bool,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

/// docker's sig-proxy: signals sent to a foreground `run`/`start -a` go
/// to the container. Must run before any other thread exists, so that the
/// mask is inherited by all of them.
pub fn proxy_signals(root: &Path, c: &Container) {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        set.add(s);
    }
    if set.thread_block().is_err() {
        return;
    }
    let rt = lifecycle::runtime_of(root, c);
    let id = c.id().to_string();
    std::thread::spawn(move || {
        while let Ok(sig) = set.wait() {
            let _ = rt.kill(&id, sig.as_str(), false);
        }
    });
}

/// Relays stdio until the container exits; its exit code.
pub fn attach_and_wait(c: &Container, stdin: bool, tty: bool) -> Result<i32> {
    let s = attach::connect(&c.attach_sock())?;
    match crate::attach::client(s, stdin, tty)? {
        Some(code) => Ok(code),
        // Detached with Ctrl-P Ctrl-Q, or the monitor went away.
        None => Ok(run::exit_code_after_detach(c)),
    }
}

pub fn exec(root: &Path, a: ExecArgs) -> Result<i32> {
    let c = container::find(root, &a.container)?;
    let mut env = Vec::new();
    for e in &a.env {
        env.extend(opts::parse_env(e)?);
    }
    let o = ExecOptions {
        command: a.command,
        tty: a.tty,
        detach: a.detach,
        interactive: a.interactive,
        env,
        user: a.user,
        workdir: a.workdir,
        privileged: a.privileged,
        ..Default::default()
    };
    Ok(engine_exec::exec(root, &c, &o)?)
}

pub fn attach(root: &Path, no_stdin: bool, name: &str) -> Result<i32> {
    let c = container::find(root, name)?;
    if !c.is_running() {
        return Err(EngineError::not_running(name, Op::Attach).into());
    }
    let s = attach::connect(&c.attach_sock())?;
    Ok(crate::attach::client(s, !no_stdin, c.config.tty)?.unwrap_or(0))
}

pub fn cp(root: &Path, src: &str, dst: &str) -> Result<i32> {
    engine_exec::cp(root, src, dst)?;
    Ok(0)
}
