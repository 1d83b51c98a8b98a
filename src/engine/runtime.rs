//! The OCI runtime, driven only through its command line (runc's CLI):
//! the one seam between berth and hull/runc/crun. berth never touches
//! cgroupfs itself; stats, top, pause and OOM go through here.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
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

/// One runtime binary with berth's state root for it.
pub struct Runtime {
    pub bin: String,
    pub state: PathBuf,
}

/// What `<runtime> events --stats` reports (runc's JSON; unknown fields ignored).
#[derive(Debug, Default, Deserialize)]
pub struct Stats {
    #[serde(default)]
    pub cpu: CpuStats,
    #[serde(default)]
    pub memory: MemoryStats,
    #[serde(default)]
    pub pids: PidsStats,
    #[serde(default)]
    pub blkio: BlkioStats,
}

#[derive(Debug, Default, Deserialize)]
pub struct CpuStats {
    #[serde(default)]
    pub usage: CpuUsage,
}

#[derive(Debug, Default, Deserialize)]
pub struct CpuUsage {
    /// Nanoseconds of CPU time, all CPUs.
    #[serde(default)]
    pub total: u64,
}

#[derive(Debug, Default, Deserialize)]
pub struct MemoryStats {
    #[serde(default)]
    pub usage: MemoryEntry,
}

#[derive(Debug, Default, Deserialize)]
pub struct MemoryEntry {
    #[serde(default)]
    pub usage: u64,
    #[serde(default)]
    pub limit: u64,
}

#[derive(Debug, Default, Deserialize)]
pub struct PidsStats {
    #[serde(default)]
    pub current: u64,
}

#[derive(Debug, Default, Deserialize)]
pub struct BlkioStats {
    #[serde(default, rename = "ioServiceBytesRecursive")]
    pub io_service_bytes: Vec<BlkioEntry>,
}

#[derive(Debug, Default, Deserialize)]
pub struct BlkioEntry {
    #[serde(default)]
    pub op: String,
    #[serde(default)]
    pub value: u64,
}

/// The fields of `<runtime> state` berth uses (the OCI state document).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RuntimeState {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub pid: i32,
}

impl RuntimeState {
    /// The container's processes exist (paused ones too).
    pub fn is_alive(&self) -> bool {
        matches!(self.status.as_str(), "running" | "paused") && self.pid > 0
    }
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

/// Parses one `events --stats` line (`{"type":"stats","id":..,"data":{..}}`).
pub fn parse_stats(line: &str) -> Result<Stats> {
    let ev: Event = serde_json::from_str(line.trim()).context("parsing runtime stats")?;
    if ev.kind != "stats" {
        bail!("runtime sent a {:?} event, not stats", ev.kind);
    }
    let data = ev.data.unwrap_or_default();
    serde_json::from_value(data).context("parsing runtime stats")
}

impl Runtime {
    pub fn new(bin: &str, root: &Path) -> Runtime {
        Runtime {
            bin: bin.to_string(),
            state: state_root(root),
        }
    }

    fn name(&self) -> String {
        Path::new(&self.bin)
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// A runtime command with `--root` set, for callers that wire stdio.
    pub fn command(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.state);
        c
    }

    /// Runs a subcommand; returns stdout, or a one-line error with its stderr.
    pub fn output(&self, args: &[&str]) -> Result<String> {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {}", self.bin))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let err = err.trim().lines().last().unwrap_or("").to_string();
            bail!(
                "{} {}: {}",
                self.name(),
                args.first().copied().unwrap_or(""),
                err
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn run(&self, args: &[&str]) -> Result<()> {
        self.output(args).map(drop)
    }

    pub fn start(&self, id: &str) -> Result<()> {
        self.run(&["start", id])
    }

    pub fn kill(&self, id: &str, sig: &str, all: bool) -> Result<()> {
        if all {
            self.run(&["kill", "--all", id, sig])
        } else {
            self.run(&["kill", id, sig])
        }
    }

    /// `delete --force`; errors are not interesting (already gone).
    pub fn delete(&self, id: &str) {
        let _ = self.run(&["delete", "--force", id]);
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        self.run(&["pause", id])
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        self.run(&["resume", id])
    }

    /// `state`: what the runtime (and through it the kernel) says of a container; None when it
    /// knows no such container. How berth tells a running container whose monitor died from a
    /// stopped one.
    pub fn state(&self, id: &str) -> Option<RuntimeState> {
        let out = self.output(&["state", id]).ok()?;
        serde_json::from_str(out.trim()).ok()
    }

    /// The container's processes (`ps --format json`).
    pub fn ps(&self, id: &str) -> Result<Vec<i32>> {
        let out = self.output(&["ps", "--format", "json", id])?;
        let pids: Option<Vec<i32>> = serde_json::from_str(out.trim())
            .with_context(|| format!("parsing {} ps output", self.name()))?;
        Ok(pids.unwrap_or_default())
    }

    /// One stats sample (`events --stats`).
    pub fn stats(&self, id: &str) -> Result<Stats> {
        let out = self.output(&["events", "--stats", id])?;
        let line = out.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        parse_stats(line)
    }

    /// `update --memory ...` etc.: resource changes on a live container.
    pub fn update(&self, id: &str, args: &[&str]) -> Result<()> {
        let mut a = vec!["update"];
        a.extend_from_slice(args);
        a.push(id);
        self.run(&a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runc_stats_shape() {
        let line = r#"{"type":"stats","id":"x","data":{"cpu":{"usage":{"total":1500,"kernel":3},"throttling":{}},"memory":{"usage":{"limit":9223372036854771712,"usage":4096,"max":0,"failcnt":0},"raw":{"cache":1}},"pids":{"current":2},"blkio":{"ioServiceBytesRecursive":[{"major":8,"minor":0,"op":"Read","value":512}]},"hugetlb":{},"intel_rdt":{},"network_interfaces":null}}"#;
        let s = parse_stats(line).unwrap();
        assert_eq!(s.cpu.usage.total, 1500);
        assert_eq!(s.memory.usage.usage, 4096);
        assert_eq!(s.pids.current, 2);
        assert_eq!(s.blkio.io_service_bytes[0].value, 512);
        assert!(parse_stats(r#"{"type":"oom","id":"x"}"#).is_err());
        assert!(parse_stats("garbage").is_err());
    }
}
