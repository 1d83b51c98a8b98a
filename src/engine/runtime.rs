//! The OCI runtime, driven only through its command line (runc's CLI).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// `hull` next to the berth binary by default; otherwise a path or a name
/// looked up in PATH.
pub fn resolve(name: Option<&str>) -> Result<String> {
    let name = name.unwrap_or("hull");
    if name.contains('/') {
        let p = Path::new(name);
        if !p.exists() {
            bail!("runtime {name} does not exist");
        }
        return Ok(std::fs::canonicalize(p)
            .with_context(|| format!("resolving runtime {name}"))?
            .to_string_lossy()
            .into_owned());
    }
    if let Ok(me) = std::env::current_exe() {
        if let Some(dir) = me.parent() {
            let cand = dir.join(name);
            if cand.is_file() {
                return Ok(cand.to_string_lossy().into_owned());
            }
        }
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let cand = PathBuf::from(dir).join(name);
        if cand.is_file() {
            return Ok(cand.to_string_lossy().into_owned());
        }
    }
    bail!("runtime {name:?} not found next to berth or in PATH")
}

/// The runtime's `--root`. Runtimes keep unix sockets under
/// `<state>/<64-hex id>/`, which must fit sun_path (108 bytes), so a long
/// berth root moves runtime state to `/run/berth/<hash of root>`.
pub fn state_root(root: &Path) -> PathBuf {
    let local = root.join("runtime");
    if local.as_os_str().len() <= 30 {
        return local;
    }
    use sha2::Digest;
    let h = sha2::Sha256::digest(root.to_string_lossy().as_bytes());
    PathBuf::from("/run/berth").join(&hex::encode(h)[..12])
}

pub fn cmd(runtime: &str, root: &Path) -> Command {
    let mut c = Command::new(runtime);
    c.arg("--root").arg(state_root(root));
    c
}

/// Runs a runtime subcommand, returning a one-line error with its stderr.
pub fn run(runtime: &str, root: &Path, args: &[&str]) -> Result<()> {
    let out = cmd(runtime, root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {runtime}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let err = err.trim().lines().last().unwrap_or("").to_string();
        bail!(
            "{} {}: {}",
            Path::new(runtime)
                .file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            args.first().copied().unwrap_or(""),
            err
        );
    }
    Ok(())
}

pub fn kill(runtime: &str, root: &Path, id: &str, sig: &str, all: bool) -> Result<()> {
    if all {
        run(runtime, root, &["kill", "--all", id, sig])
    } else {
        run(runtime, root, &["kill", id, sig])
    }
}

pub fn delete(runtime: &str, root: &Path, id: &str) {
    let _ = run(runtime, root, &["delete", "--force", id]);
}
