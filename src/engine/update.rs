//! `update` (a container's resources and restart policy, live through the runtime's `update`)
//! and `wait --condition`.

use anyhow::Context;
use std::path::Path;
use std::time::Duration;

use super::container::{Container, State};
use super::error::Result;
use super::lifecycle::{self, runtime_of};
use super::opts::RestartPolicy;

/// What `update` changes; None leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateOptions {
    /// Bytes.
    pub memory: Option<i64>,
    /// Memory plus swap in bytes; -1 for unlimited swap.
    pub memory_swap: Option<i64>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub restart: Option<RestartPolicy>,
}

impl UpdateOptions {
    /// The runtime's `update` flags for the resource settings.
    pub fn runtime_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        let mut put = |k: &str, v: String| {
            a.push(k.to_string());
            a.push(v);
        };
        if let Some(m) = self.memory {
            put("--memory", m.to_string());
            // berth's containers get no swap beyond their limit unless asked (as at create).
            if self.memory_swap.is_none() {
                put("--memory-swap", m.to_string());
            }
        }
        if let Some(s) = self.memory_swap {
            put("--memory-swap", s.to_string());
        }
        if let Some(c) = self.cpus {
            put("--cpu-period", "100000".into());
            put("--cpu-quota", ((c * 100000.0) as i64).to_string());
        }
        if let Some(s) = self.cpu_shares {
            put("--cpu-shares", s.to_string());
        }
        if let Some(c) = &self.cpuset_cpus {
            put("--cpuset-cpus", c.clone());
        }
        if let Some(p) = self.pids_limit {
            put("--pids-limit", p.to_string());
        }
        a
    }
}

/// Applies the options to a running container through the runtime, then records them in its
/// config and bundle so a restart keeps them. A stopped container only gets the records.
pub fn update(root: &Path, c: &Container, o: &UpdateOptions) -> Result<()> {
    let args = o.runtime_args();
    if c.is_running() && !args.is_empty() {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        runtime_of(root, c).update(c.id(), &refs)?;
    }
    let mut c = c.clone();
    let cfg = &mut c.config;
    if o.memory.is_some() {
        cfg.memory = o.memory;
    }
    if o.cpus.is_some() {
        cfg.cpus = o.cpus;
    }
    if o.cpu_shares.is_some() {
        cfg.cpu_shares = o.cpu_shares;
    }
    if o.pids_limit.is_some() {
        cfg.pids_limit = o.pids_limit;
    }
    if let Some(r) = &o.restart {
        cfg.restart = *r;
    }
    c.save_config()?;
    update_bundle(&c, o)?;
    Ok(())
}

/// The resources in the bundle's config.json, which the monitor's next `create` reads.
fn update_bundle(c: &Container, o: &UpdateOptions) -> anyhow::Result<()> {
    use serde_json::json;
    let p = c.bundle().join("config.json");
    let mut spec: serde_json::Value = crate::sys::read_json(&p)?;
    let r = &mut spec["linux"]["resources"];
    if !r.is_object() {
        *r = json!({});
    }
    let mut set = |sect: &str, key: &str, v: serde_json::Value| {
        if !r[sect].is_object() {
            r[sect] = json!({});
        }
        r[sect][key] = v;
    };
    if let Some(m) = o.memory {
        set("memory", "limit", json!(m));
        set("memory", "swap", json!(o.memory_swap.unwrap_or(m)));
    } else if let Some(s) = o.memory_swap {
        set("memory", "swap", json!(s));
    }
    if let Some(cpus) = o.cpus {
        set("cpu", "quota", json!((cpus * 100000.0) as i64));
        set("cpu", "period", json!(100000));
    }
    if let Some(s) = o.cpu_shares {
        set("cpu", "shares", json!(s));
    }
    if let Some(cs) = &o.cpuset_cpus {
        set("cpu", "cpus", json!(cs));
    }
    if let Some(pl) = o.pids_limit {
        set("pids", "limit", json!(pl));
    }
    crate::sys::write_json(&p, &spec).with_context(|| format!("updating {}", p.display()))
}

/// `wait --condition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WaitCondition {
    /// Returns at once for a container that is not running.
    #[default]
    NotRunning,
    /// The next exit after now, even of a container not started yet.
    NextExit,
    /// Until the container is removed.
    Removed,
}

impl WaitCondition {
    pub fn parse(s: &str) -> Result<WaitCondition> {
        Ok(match s {
            "not-running" => WaitCondition::NotRunning,
            "next-exit" => WaitCondition::NextExit,
            "removed" => WaitCondition::Removed,
            _ => crate::invalid!(
                "invalid condition: \"{s}\" (expected not-running, next-exit or removed)"
            ),
        })
    }
}

/// Blocks until the condition holds; the container's (last) exit code.
pub fn wait(c: &Container, cond: WaitCondition) -> Result<i32> {
    let state = |c: &Container| crate::sys::read_json::<State>(&c.dir.join("state.json")).ok();
    match cond {
        WaitCondition::NotRunning => lifecycle::wait(c),
        WaitCondition::NextExit => {
            let before = state(c).map(|s| s.finished_at).unwrap_or_default();
            loop {
                match state(c) {
                    Some(s) if s.finished_at != before && !s.finished_at.is_empty() => {
                        return Ok(s.exit_code)
                    }
                    // Removed before it exited again.
                    None if !c.dir.exists() => return Ok(0),
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        }
        WaitCondition::Removed => {
            let mut code = c.state.exit_code;
            while c.dir.exists() {
                if let Some(s) = state(c) {
                    code = s.exit_code;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_flags() {
        let o = UpdateOptions {
            memory: Some(128 << 20),
            cpus: Some(0.5),
            pids_limit: Some(50),
            ..Default::default()
        };
        assert_eq!(
            o.runtime_args(),
            [
                "--memory",
                "134217728",
                "--memory-swap",
                "134217728",
                "--cpu-period",
                "100000",
                "--cpu-quota",
                "50000",
                "--pids-limit",
                "50"
            ]
        );
        let o = UpdateOptions {
            memory_swap: Some(-1),
            ..Default::default()
        };
        assert_eq!(o.runtime_args(), ["--memory-swap", "-1"]);
        assert_eq!(
            WaitCondition::parse("next-exit").unwrap(),
            WaitCondition::NextExit
        );
        assert!(WaitCondition::parse("soon").is_err());
    }
}
