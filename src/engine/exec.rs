//! `exec` (through the runtime) and `diff` (of the overlay's upper layer).

use anyhow::Context;
use std::path::{Path, PathBuf};

use super::container::{self, Container};
use super::error::{EngineError, Op, Result};
use super::lifecycle::runtime_of;
use super::{opts, rootfs, spec};

/// `exec`'s options, parsed.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub command: Vec<String>,
    pub tty: bool,
    pub detach: bool,
    /// Keep stdin open (otherwise the process gets /dev/null).
    pub interactive: bool,
    /// `KEY=VALUE`, over the container's env.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub privileged: bool,
    /// Where the runtime writes the process's host pid (the health check kills a hung probe by it).
    pub pid_file: Option<PathBuf>,
}

/// Runs a process in a running container with the caller's stdio; its exit code (0 at once
/// with `detach`). An exec the runtime could not start exits 126, as docker's: the runtime's
/// own error goes to a log file, which tells it from the process's exit code (the runtime
/// still prints the plain message on stderr; with `detach` it comes back as the error).
pub fn exec(root: &Path, c: &Container, o: &ExecOptions) -> Result<i32> {
    use std::process::Stdio;
    if !c.is_running() || c.state.pid == 0 {
        return Err(EngineError::not_running(&c.config.name, Op::Exec));
    }
    let log = c
        .dir
        .join(format!("exec-{}.log", &crate::sys::random_id()[..12]));
    let mut cmd = runtime_of(root, c).command();
    cmd.arg("--log").arg(&log).arg("--log-format").arg("text");
    exec_args(&mut cmd, c, o)?;
    if o.detach {
        // docker connects no stdio to a detached exec, and a caller's pipe must not stay open
        // for as long as the process runs.
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    }
    if o.detach || !o.interactive {
        cmd.stdin(Stdio::null());
    }
    let what = o.command.join(" ");
    let exec_id = [("execID", crate::sys::random_id())];
    super::events::container(root, c, &format!("exec_create: {what}"), &exec_id);
    super::events::container(root, c, &format!("exec_start: {what}"), &exec_id);
    let st = cmd
        .status()
        .with_context(|| format!("running {} exec", c.config.runtime));
    let raw = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let st = st?;
    if let Some(line) = raw.lines().rfind(|l| l.contains("level=error")) {
        if o.detach {
            let msg = super::error::runtime_message(line);
            return Err(EngineError::start_failed(&msg));
        }
        return Ok(126);
    }
    if o.detach {
        if !st.success() {
            let msg = format!("{} exec failed ({st})", c.config.runtime);
            return Err(EngineError::StartFailed(msg));
        }
        return Ok(0);
    }
    Ok(st.code().unwrap_or(126))
}

/// `<runtime> exec` for `o` with the container's env, user and workdir as defaults; the caller
/// wires stdio (the health check runs its probes through this too).
pub fn command(root: &Path, c: &Container, o: &ExecOptions) -> Result<std::process::Command> {
    let mut cmd = runtime_of(root, c).command();
    exec_args(&mut cmd, c, o)?;
    Ok(cmd)
}

/// The `exec` subcommand and its arguments, after the runtime's global flags.
fn exec_args(cmd: &mut std::process::Command, c: &Container, o: &ExecOptions) -> Result<()> {
    cmd.arg("exec");
    if o.tty {
        cmd.arg("--tty");
    }
    if o.detach {
        cmd.arg("--detach");
    }
    if let Some(p) = &o.pid_file {
        cmd.arg("--pid-file").arg(p);
    }
    for e in opts::merge_env(&c.config.env, &o.env) {
        cmd.arg("--env").arg(e);
    }
    if let Some((u, g)) = exec_user(c, o)? {
        cmd.arg("--user").arg(format!("{u}:{g}"));
    }
    if let Some(cwd) = exec_cwd(c, o) {
        cmd.arg("--cwd").arg(cwd);
    }
    if o.privileged {
        for cap in spec::all_caps() {
            cmd.arg("--cap").arg(cap);
        }
    }
    cmd.arg(c.id()).args(&o.command);
    Ok(())
}

/// The uid:gid an exec runs as: `--user`, else the container's user.
pub(super) fn exec_user(c: &Container, o: &ExecOptions) -> Result<Option<(u32, u32)>> {
    let user = o.user.clone().unwrap_or_else(|| c.config.user.clone());
    if user.is_empty() {
        return Ok(None);
    }
    let lowers: Vec<PathBuf> = std::fs::read_to_string(rootfs::lowerdirs_path(&c.dir))
        .unwrap_or_default()
        .lines()
        .map(PathBuf::from)
        .collect();
    Ok(Some(spec::resolve_user(&user, &lowers)?))
}

/// `--workdir`, else the container's.
pub(super) fn exec_cwd(c: &Container, o: &ExecOptions) -> Option<String> {
    let cwd = o
        .workdir
        .clone()
        .unwrap_or_else(|| c.config.workdir.clone());
    (!cwd.is_empty()).then_some(cwd)
}

/// `diff`: (A|C|D, path) for the container's upper layer.
/// The files berth writes and mounts over itself are left out (docker's
/// rule), and so are directories the upper layer holds only for them.
pub fn diff(root: &Path, key: &str) -> Result<Vec<(char, String)>> {
    let c = container::find(root, key)?;
    Ok(without_managed(rootfs::diff(&c.dir)?))
}

const MANAGED: [&str; 3] = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"];

fn without_managed(all: Vec<(char, String)>) -> Vec<(char, String)> {
    let kept: Vec<(char, String)> = all
        .into_iter()
        .filter(|(_, p)| !MANAGED.contains(&p.as_str()))
        .collect();
    let holds_managed = |d: &str| MANAGED.iter().any(|m| m.starts_with(&format!("{d}/")));
    let has_other_child = |d: &str| {
        let pre = format!("{d}/");
        kept.iter().any(|(_, q)| q.starts_with(&pre))
    };
    kept.iter()
        .filter(|(k, p)| *k == 'D' || !holds_managed(p) || has_other_child(p))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn managed_files_hidden() {
        let d = |v: &[(char, &str)]| v.iter().map(|(k, p)| (*k, p.to_string())).collect();
        assert_eq!(
            without_managed(d(&[
                ('C', "/etc"),
                ('A', "/etc/hosts"),
                ('A', "/etc/resolv.conf")
            ])),
            vec![]
        );
        assert_eq!(
            without_managed(d(&[
                ('C', "/etc"),
                ('A', "/etc/hosts"),
                ('C', "/etc/passwd"),
                ('A', "/x")
            ])),
            d(&[('C', "/etc"), ('C', "/etc/passwd"), ('A', "/x")])
        );
    }
}
