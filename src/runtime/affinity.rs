//! `process.execCPUAffinity` (config.md): the CPUs an exec'd process runs on. `initial` is set on
//! hull's process that joins the container, before it enters the container's cgroup; `final` on
//! the process itself right before execve. The spec makes it "not applicable to the container's
//! init process", so only `exec` applies it.

use super::idlist;
use anyhow::{Context, Result};
use nix::sched::CpuSet;
use nix::unistd::Pid;
use oci_spec::runtime::Process;

/// Parses one list into a CPU set; `field` names it in errors.
fn cpu_set(list: &str, field: &str) -> Result<CpuSet> {
    let cpus = idlist::parse(list, CpuSet::count() as u32)
        .with_context(|| format!("process.execCPUAffinity.{field}"))?;
    let mut set = CpuSet::new();
    for c in cpus {
        set.set(c as usize)
            .with_context(|| format!("process.execCPUAffinity.{field}: CPU {c}"))?;
    }
    Ok(set)
}

/// The (initial, final) lists of `process`, empty ones left out as the spec says.
fn lists(process: &Process) -> (Option<&str>, Option<&str>) {
    let a = process.exec_cpu_affinity().as_ref();
    fn pick(s: Option<&String>) -> Option<&str> {
        s.map(|s| s.as_str()).filter(|s| !s.trim().is_empty())
    }
    (
        pick(a.and_then(|a| a.initial().as_ref())),
        pick(a.and_then(|a| a.cpu_affinity_final().as_ref())),
    )
}

/// Checks both lists' syntax, for spec validation and `exec --process`.
pub fn validate(process: &Process) -> Result<()> {
    let (initial, fin) = lists(process);
    if let Some(l) = initial {
        cpu_set(l, "initial")?;
    }
    if let Some(l) = fin {
        cpu_set(l, "final")?;
    }
    Ok(())
}

fn set(pid: Pid, list: &str, field: &str) -> Result<()> {
    let cpus = cpu_set(list, field)?;
    nix::sched::sched_setaffinity(pid, &cpus).with_context(|| {
        let allowed = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                    .map(|v| format!(" (CPUs allowed here: {})", v.trim()))
            })
            .unwrap_or_default();
        format!("process.execCPUAffinity.{field}: sched_setaffinity {list:?}{allowed}")
    })
}

/// `initial`, on hull's child `pid` that joins the container, before it is moved into the
/// container's cgroup.
pub fn apply_initial(pid: i32, process: &Process) -> Result<()> {
    match lists(process).0 {
        Some(l) => set(Pid::from_raw(pid), l, "initial"),
        None => Ok(()),
    }
}

/// `final`, on the calling process (in the container's cgroup), right before execve.
pub fn apply_cpu_affinity(process: &Process) -> Result<()> {
    match lists(process).1 {
        Some(l) => set(Pid::from_raw(0), l, "final"),
        None => Ok(()),
    }
}
