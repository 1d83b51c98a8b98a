//! `linux.memoryPolicy`: the NUMA memory policy of the container's processes (set_mempolicy(2)).
//!
//! The policy is per task and survives fork and execve, so it is set by the init (and by each
//! exec'd process) inside the container's cgroup, where the kernel maps the nodes against the
//! container's cpuset, right before the program is executed.

use super::idlist;
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{
    Linux, LinuxMemoryPolicy, MemoryPolicyFlagType, MemoryPolicyModeType, Spec,
};

/// The names hull recognizes, as `hull features` lists them.
pub const MODES: &[&str] = &[
    "MPOL_DEFAULT",
    "MPOL_BIND",
    "MPOL_INTERLEAVE",
    "MPOL_WEIGHTED_INTERLEAVE",
    "MPOL_PREFERRED",
    "MPOL_PREFERRED_MANY",
    "MPOL_LOCAL",
];
pub const FLAGS: &[&str] = &[
    "MPOL_F_NUMA_BALANCING",
    "MPOL_F_RELATIVE_NODES",
    "MPOL_F_STATIC_NODES",
];

/// The kernel's largest MAX_NUMNODES (NODES_SHIFT 10); a smaller kernel refuses higher nodes
/// itself, and that refusal is reported.
const MAX_NODES: u32 = 1024;

/// A policy ready for the syscall: plain data, computed before any fork.
#[derive(Clone, Debug, PartialEq)]
pub struct MemPolicy {
    mode: MemoryPolicyModeType,
    nodes_text: String,
    flags: Vec<MemoryPolicyFlagType>,
    /// set_mempolicy's mode argument: the mode ORed with the flags.
    mode_arg: libc::c_int,
    mask: Vec<libc::c_ulong>,
}

fn mode_value(m: MemoryPolicyModeType) -> libc::c_int {
    match m {
        MemoryPolicyModeType::MpolDefault => 0,
        MemoryPolicyModeType::MpolPreferred => 1,
        MemoryPolicyModeType::MpolBind => 2,
        MemoryPolicyModeType::MpolInterleave => 3,
        MemoryPolicyModeType::MpolLocal => 4,
        MemoryPolicyModeType::MpolPreferredMany => 5,
        MemoryPolicyModeType::MpolWeightedInterleave => 6,
    }
}

fn flag_value(f: MemoryPolicyFlagType) -> libc::c_int {
    match f {
        MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
        MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
        MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
    }
}

/// Checks the policy as set_mempolicy(2) documents it, so the common mistakes fail at create
/// with the field named; what depends on the host (which nodes exist, which flags this kernel
/// takes) is left to the kernel and reported by `apply`.
pub fn parse(p: &LinuxMemoryPolicy) -> Result<MemPolicy> {
    let mode = p.mode();
    let nodes_text = p.nodes().clone().unwrap_or_default();
    let nodes = if nodes_text.trim().is_empty() {
        Vec::new()
    } else {
        idlist::parse(&nodes_text, MAX_NODES).context("linux.memoryPolicy.nodes")?
    };
    use MemoryPolicyModeType as M;
    match mode {
        M::MpolDefault | M::MpolLocal if !nodes.is_empty() => {
            bail!("linux.memoryPolicy.nodes: {mode} takes no nodes (got {nodes_text:?})")
        }
        M::MpolBind | M::MpolInterleave | M::MpolWeightedInterleave | M::MpolPreferredMany
            if nodes.is_empty() =>
        {
            bail!("linux.memoryPolicy.nodes: {mode} needs at least one node")
        }
        _ => {}
    }
    let flags = p.flags().clone().unwrap_or_default();
    if flags.contains(&MemoryPolicyFlagType::MpolFStaticNodes)
        && flags.contains(&MemoryPolicyFlagType::MpolFRelativeNodes)
    {
        bail!("linux.memoryPolicy.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other");
    }
    let bits = libc::c_ulong::BITS;
    let mut mask = vec![0 as libc::c_ulong; nodes.last().map_or(1, |&n| n / bits + 1) as usize];
    for n in &nodes {
        mask[(n / bits) as usize] |= 1 << (n % bits);
    }
    let mode_arg = flags
        .iter()
        .fold(mode_value(mode), |m, &f| m | flag_value(f));
    Ok(MemPolicy {
        mode,
        nodes_text,
        flags,
        mode_arg,
        mask,
    })
}

/// The policy of a container's `linux` section, if it has one.
pub fn of_linux(linux: Option<&Linux>) -> Result<Option<MemPolicy>> {
    linux
        .and_then(|l| l.memory_policy().as_ref())
        .map(parse)
        .transpose()
}

impl MemPolicy {
    /// set_mempolicy for the calling thread (the process: hull's init is single-threaded).
    pub fn apply(&self) -> Result<()> {
        // The kernel reads maxnode - 1 bits (a historical off-by-one that man page documents).
        let maxnode = (self.mask.len() as libc::c_ulong) * libc::c_ulong::BITS as libc::c_ulong + 1;
        // SAFETY: the mask outlives the call and holds maxnode - 1 bits.
        let r = unsafe {
            libc::syscall(
                libc::SYS_set_mempolicy,
                self.mode_arg,
                self.mask.as_ptr(),
                maxnode,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        let allowed = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Mems_allowed_list:"))
                    .map(|v| format!(" (nodes this container may use: {})", v.trim()))
            })
            .unwrap_or_default();
        let flags: Vec<String> = self.flags.iter().map(|f| f.to_string()).collect();
        bail!(
            "linux.memoryPolicy: the kernel refuses mode {} with nodes {:?} and flags {flags:?}: {err}{allowed}",
            self.mode,
            self.nodes_text
        )
    }
}

/// Sets the container's policy, if it has one, for the calling process (the init).
pub fn apply_memory_policy(spec: &Spec) -> Result<()> {
    apply_of_linux(spec.linux().as_ref())
}

/// The same for an exec'd process, which has the container's `linux` section.
pub fn apply_of_linux(linux: Option<&Linux>) -> Result<()> {
    match of_linux(linux)? {
        Some(p) => p.apply(),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> Result<MemPolicy> {
        parse(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn modes_flags_and_nodes_make_the_syscall_arguments() {
        let p = policy(r#"{"mode":"MPOL_BIND","nodes":"0-2,65","flags":["MPOL_F_STATIC_NODES"]}"#)
            .unwrap();
        assert_eq!(p.mode_arg, 2 | 1 << 15);
        assert_eq!(p.mask, [0b111, 0b10]);
        let p = policy(r#"{"mode":"MPOL_LOCAL"}"#).unwrap();
        assert_eq!((p.mode_arg, p.mask.as_slice()), (4, &[0][..]));
        let p = policy(r#"{"mode":"MPOL_PREFERRED"}"#).unwrap();
        assert_eq!(p.mode_arg, 1);
    }

    #[test]
    fn inconsistent_policies_name_the_field() {
        let e = |j: &str| format!("{:#}", policy(j).unwrap_err());
        assert!(e(r#"{"mode":"MPOL_DEFAULT","nodes":"0"}"#).starts_with("linux.memoryPolicy.nodes"));
        assert!(e(r#"{"mode":"MPOL_INTERLEAVE"}"#).contains("needs at least one node"));
        assert!(e(r#"{"mode":"MPOL_BIND","nodes":"1-x"}"#).starts_with("linux.memoryPolicy.nodes"));
        assert!(e(r#"{"mode":"MPOL_BIND","nodes":"0","flags":["MPOL_F_STATIC_NODES","MPOL_F_RELATIVE_NODES"]}"#)
            .starts_with("linux.memoryPolicy.flags"));
    }
}
