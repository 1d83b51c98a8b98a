//! `exec` (through the runtime) and `cp` (through the overlay mount).

use anyhow::{bail, Context};
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

/// Runs a process in a running container with the caller's stdio; its exit code.
pub fn exec(root: &Path, c: &Container, o: &ExecOptions) -> Result<i32> {
    if !c.is_running() || c.state.pid == 0 {
        return Err(EngineError::not_running(&c.config.name, Op::Exec));
    }
    let mut cmd = command(root, c, o)?;
    if !o.interactive {
        cmd.stdin(std::process::Stdio::null());
    }
    let st = cmd
        .status()
        .with_context(|| format!("running {} exec", c.config.runtime))?;
    Ok(st.code().unwrap_or(126))
}

/// `<runtime> exec` for `o` with the container's env, user and workdir as defaults; the caller
/// wires stdio (the health check runs its probes through this too).
pub fn command(root: &Path, c: &Container, o: &ExecOptions) -> Result<std::process::Command> {
    let mut cmd = runtime_of(root, c).command();
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
    let user = o.user.clone().unwrap_or_else(|| c.config.user.clone());
    if !user.is_empty() {
        let lowers: Vec<PathBuf> = std::fs::read_to_string(rootfs::lowerdirs_path(&c.dir))
            .unwrap_or_default()
            .lines()
            .map(PathBuf::from)
            .collect();
        let (u, g) = spec::resolve_user(&user, &lowers)?;
        cmd.arg("--user").arg(format!("{u}:{g}"));
    }
    let cwd = o
        .workdir
        .clone()
        .unwrap_or_else(|| c.config.workdir.clone());
    if !cwd.is_empty() {
        cmd.arg("--cwd").arg(cwd);
    }
    if o.privileged {
        for cap in spec::all_caps() {
            cmd.arg("--cap").arg(cap);
        }
    }
    cmd.arg(c.id()).args(&o.command);
    Ok(cmd)
}

/// `CONTAINER:PATH` as `cp` writes it (None for a host path).
pub fn split_cp_arg(s: &str) -> Option<(String, String)> {
    if s.starts_with('/') || s.starts_with('.') {
        return None;
    }
    s.split_once(':')
        .map(|(a, b)| (a.to_string(), b.to_string()))
}

/// `cp`: one side `CONTAINER:PATH`, the other a host path. Works on stopped
/// containers too (their rootfs is mounted for the copy).
pub fn cp(root: &Path, src: &str, dst: &str) -> Result<()> {
    let (cname, cpath, host, to_host) = match (split_cp_arg(src), split_cp_arg(dst)) {
        (Some((c, p)), None) => (c, p, dst.to_string(), true),
        (None, Some((c, p))) => (c, p, src.to_string(), false),
        _ => crate::invalid!("copying between containers or between host paths is not supported; use CONTAINER:PATH on one side"),
    };
    let c = container::find(root, &cname)?;
    let was_mounted = rootfs::is_mounted(&c.rootfs());
    rootfs::mount_rootfs(&c.dir)?;
    let inside = c.rootfs().join(cpath.trim_start_matches('/'));
    let res = (|| -> anyhow::Result<()> {
        let (from, to) = if to_host {
            (inside.clone(), PathBuf::from(&host))
        } else {
            (PathBuf::from(&host), inside.clone())
        };
        if !from.exists() && std::fs::symlink_metadata(&from).is_err() {
            if to_host {
                bail!("Could not find the file {cpath} in container {cname}");
            }
            bail!("no such file or directory: {host}");
        }
        let target = if to.is_dir() {
            to.join(from.file_name().context("source has no file name")?)
        } else {
            to
        };
        crate::sys::copy_tree(&from, &target)
    })();
    if !was_mounted {
        rootfs::unmount_rootfs(&c.dir);
    }
    Ok(res?)
}

/// `diff`: (A|C|D, path) for the container's upper layer.
pub fn diff(root: &Path, key: &str) -> Result<Vec<(char, String)>> {
    let c = container::find(root, key)?;
    Ok(rootfs::diff(&c.dir)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_args() {
        assert_eq!(
            split_cp_arg("web:/etc/x"),
            Some(("web".into(), "/etc/x".into()))
        );
        assert_eq!(split_cp_arg("/tmp/a:b"), None);
        assert_eq!(split_cp_arg("./a:b"), None);
        assert_eq!(split_cp_arg("plain"), None);
    }
}
