//! Commands that connect the terminal to a container: exec, attach, cp,
//! and the foreground half of run / start -a.

use anyhow::{Context, Result};
use clap::Args;
use std::os::fd::AsFd;
use std::path::Path;

use hull::engine::container::{self, Container};
use hull::engine::{
    attach, exec as engine_exec, exec_tty, opts, run, tty, EngineError, ExecOptions, Op,
};

use crate::attach::{check_tty, Outcome, Session, NOT_A_TTY};
use crate::signals;

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
    /// Read in a file of environment variables
    #[arg(long)]
    pub env_file: Vec<String>,
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short, long)]
    pub workdir: Option<String>,
    #[arg(long)]
    pub privileged: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    pub detach_keys: Option<String>,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

/// `attach`'s flags.
#[derive(Args)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long)]
    pub no_stdin: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// Proxy all received signals to the process (non-TTY containers)
    #[arg(long, default_value_t = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    pub container: String,
}

/// What `run` / `start -a` attach with.
pub struct Foreground<'a> {
    pub stdin: bool,
    pub detach_keys: Option<&'a str>,
    /// docker's sig-proxy; applies to non-tty containers only, as docker's.
    pub sig_proxy: bool,
}

/// Prints what docker prints when the user detached from `attach` or
/// `exec`; its exit status, 1 as docker's.
fn detached_status() -> i32 {
    eprintln!("read escape sequence");
    1
}

/// Relays stdio until the container exits; its exit code. Detaching ends
/// quietly with 0, as docker's `run` and `start -a` do.
pub fn attach_and_wait(root: &Path, c: &Container, f: &Foreground) -> Result<i32> {
    let s = Session {
        stdin: f.stdin,
        tty: c.config.tty,
        detach_keys: tty::parse_detach_keys(f.detach_keys)?,
    };
    let resizes = signals::install((f.sig_proxy && !s.tty).then_some((root, c)));
    let sock = attach::connect(&c.attach_sock())?;
    match crate::attach::client(sock, &s, resizes)? {
        Outcome::Exited(code) => Ok(code),
        Outcome::Detached => Ok(0),
        Outcome::Gone => Ok(run::exit_code_after_detach(c)),
    }
}

pub fn exec(root: &Path, a: ExecArgs) -> Result<i32> {
    let c = container::find(root, &a.container)?;
    let mut env = Vec::new();
    for f in &a.env_file {
        env = opts::merge_env(&env, &opts::parse_env_file(f)?);
    }
    let keys = tty::parse_detach_keys(a.detach_keys.as_deref())?;
    let mut user_env = Vec::new();
    for e in &a.env {
        user_env.extend(opts::parse_env(e)?);
    }
    let env = opts::merge_env(&env, &user_env);
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
    if !o.tty || o.detach {
        return Ok(engine_exec::exec(root, &c, &o)?);
    }
    if check_tty(o.interactive, true).is_err() {
        eprintln!("{NOT_A_TTY}");
        return Ok(1);
    }
    let size = tty::window_size(std::io::stdout().as_fd());
    let started = exec_tty::start(root, &c, &o, size)?;
    // After the runtime ran: it (and so the process) would inherit the mask.
    let resizes = signals::install(None);
    let s = Session {
        stdin: o.interactive,
        tty: true,
        detach_keys: keys,
    };
    let pid = started.pid;
    let keep = started.master.try_clone().context("dup pty master")?;
    match crate::attach::exec_client(started.master, &s, resizes, move || exec_tty::wait(pid))? {
        Outcome::Exited(code) => Ok(code),
        Outcome::Detached => {
            exec_tty::hold_master(keep)?;
            Ok(detached_status())
        }
        Outcome::Gone => Ok(0),
    }
}

pub fn attach(root: &Path, a: &AttachArgs) -> Result<i32> {
    let c = container::find(root, &a.container)?;
    if !c.is_running() {
        return Err(EngineError::not_running(&a.container, Op::Attach).into());
    }
    let s = Session {
        stdin: !a.no_stdin,
        tty: c.config.tty,
        detach_keys: tty::parse_detach_keys(a.detach_keys.as_deref())?,
    };
    if check_tty(s.stdin && c.config.interactive, s.tty).is_err() {
        eprintln!("{NOT_A_TTY}");
        return Ok(1);
    }
    let resizes = signals::install((a.sig_proxy && !s.tty).then_some((root, &c)));
    let sock = attach::connect(&c.attach_sock())?;
    match crate::attach::client(sock, &s, resizes)? {
        Outcome::Exited(code) => Ok(code),
        Outcome::Detached => Ok(detached_status()),
        Outcome::Gone => Ok(run::exit_code_after_detach(&c)),
    }
}
