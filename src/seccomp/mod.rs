//! `linux.seccomp`: translating an OCI profile to BPF with seccompiler, caching the result by
//! profile hash, and installing it.
//!
//! seccompiler builds one filter per (match action, default action) pair: every rule of a
//! `SeccompFilter` shares one match action (its conditions are ANDed within a rule and the rules
//! of a syscall ORed, exactly as libseccomp does). OCI profiles give each rule its own action, so
//! a profile becomes a small stack of filters, which the kernel evaluates together, keeping the
//! most restrictive answer:
//!   * a base filter: any syscall some rule names (with its args) -> ALLOW, else defaultAction;
//!   * one filter per other action A: the rules whose action is A -> A, else ALLOW.
//!
//! The stack is then folded into one BPF program with the same semantics (`merge.rs`), installed
//! with one seccomp(2) call: a second call would itself be filtered by the first.
//!
//! A call that matches no rule gets defaultAction; one that matches rules of one action gets that
//! action. Where libseccomp differs: a call matching rules of two different actions gets the
//! more restrictive one here (kernel precedence), whereas libseccomp gives priority to the rule
//! with more argument conditions. Profiles in the wild (docker's, podman's) write such rules
//! with complementary conditions, so both agree on them.
//!
//! Other limits of seccompiler, checked against its docs: only x86_64, aarch64 and riscv64 are
//! known, and a filter only filters the native architecture; a syscall made through another
//! ABI (i386 `int 0x80` on x86_64) is killed (SECCOMP_RET_KILL_PROCESS), whatever
//! `architectures` lists, where libseccomp would filter it with that arch's numbers. x32
//! syscalls share the x86_64 audit arch, so hull adds a guard answering them ENOSYS, or a
//! permissive profile could be bypassed through them.

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

mod merge;
pub mod notify;
pub mod privileges;

#[cfg(target_arch = "aarch64")]
mod syscalls_aarch64;
#[cfg(target_arch = "x86_64")]
mod syscalls_x86_64;

#[cfg(target_arch = "aarch64")]
use syscalls_aarch64::TABLE;
#[cfg(target_arch = "x86_64")]
use syscalls_x86_64::TABLE;

/// The actions hull translates (`features` advertises exactly these).
pub const ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

pub const OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

/// Architecture names accepted in `architectures` (every one the OCI schema knows). Only the
/// native one is really filtered (see the module doc); the others are accepted so engine-made
/// profiles, which list every arch of the family, still run.
pub const ARCHS: &[&str] = &[
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_NATIVE",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];

pub const FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_TSYNC",
];

/// Bumped whenever the translation changes, so stale cache entries are never used.
const FORMAT: &str = "hull-seccomp-v2";
const MAGIC: &[u8; 8] = b"HULLBPF1";

/// A compiled profile: the filters to install, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub filters: Vec<BpfProgram>,
}

impl Program {
    pub fn instructions(&self) -> usize {
        self.filters.iter().map(Vec::len).sum()
    }
}

fn native_arch() -> Result<TargetArch> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|e| {
        anyhow::anyhow!("linux.seccomp: seccomp is not supported on this architecture: {e}")
    })
}

/// The syscall number of `name` on this architecture, if it has one.
pub fn syscall_nr(name: &str) -> Option<i64> {
    TABLE.iter().find(|(n, _)| *n == name).map(|(_, nr)| *nr)
}

fn action(a: LinuxSeccompAction, errno: Option<u32>, field: &str) -> Result<SeccompAction> {
    Ok(match a {
        // libseccomp's SCMP_ACT_KILL is the thread kill.
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SeccompAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => SeccompAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => SeccompAction::Trap,
        // runc's defaults when errnoRet is absent.
        LinuxSeccompAction::ScmpActErrno => {
            SeccompAction::Errno(errno.unwrap_or(libc::EPERM as u32))
        }
        LinuxSeccompAction::ScmpActTrace => {
            let data = errno.unwrap_or(libc::EPERM as u32);
            if data & 0xffff == notify::PLACEHOLDER {
                bail!("{field}: SCMP_ACT_TRACE with errnoRet {data} is reserved by hull");
            }
            SeccompAction::Trace(data)
        }
        LinuxSeccompAction::ScmpActLog => SeccompAction::Log,
        LinuxSeccompAction::ScmpActAllow => SeccompAction::Allow,
        LinuxSeccompAction::ScmpActNotify => SeccompAction::Trace(notify::PLACEHOLDER),
    })
}

fn condition(arg: &oci_spec::runtime::LinuxSeccompArg, field: &str) -> Result<SeccompCondition> {
    let index = u8::try_from(arg.index())
        .ok()
        .filter(|i| *i <= 5)
        .with_context(|| {
            format!(
                "{field}.index: {} is not a syscall argument (0-5)",
                arg.index()
            )
        })?;
    // libseccomp compares the whole 64-bit register on 64-bit architectures; so do we.
    let (op, value) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, arg.value()),
        // OCI: (arg & value) == valueTwo.
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            SeccompCmpOp::MaskedEq(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
    };
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, op, value)
        .map_err(|e| anyhow::anyhow!("{field}: {e}"))
}

/// Rules of one action: per syscall, `None` for an unconditional match, else the ORed rules.
type RuleSet = BTreeMap<i64, Option<Vec<SeccompRule>>>;

fn add_rule(set: &mut RuleSet, nr: i64, rule: Option<SeccompRule>) {
    match (set.get_mut(&nr), rule) {
        // An unconditional rule matches whatever the conditional ones say.
        (Some(None), _) => {}
        (Some(Some(rules)), Some(r)) => rules.push(r),
        (_, None) => {
            set.insert(nr, None);
        }
        (None, Some(r)) => {
            set.insert(nr, Some(vec![r]));
        }
    }
}

fn build(
    set: RuleSet,
    mismatch: SeccompAction,
    matched: SeccompAction,
    arch: TargetArch,
) -> Result<BpfProgram> {
    let rules = set
        .into_iter()
        .map(|(nr, r)| (nr, r.unwrap_or_default()))
        .collect();
    let filter = SeccompFilter::new(rules, mismatch, matched, arch)
        .map_err(|e| anyhow::anyhow!("linux.seccomp: {e}"))?;
    BpfProgram::try_from(filter).map_err(|e| anyhow::anyhow!("linux.seccomp: {e}"))
}

/// Kernel return value of an action, to order and key groups.
fn ret(a: &SeccompAction) -> u32 {
    u32::from(a.clone())
}

/// Answers x32 syscalls (x86_64 audit arch, number with bit 30 set) ENOSYS: seccompiler only
/// compares x86_64 numbers, so without this they would reach the default action unfiltered.
#[cfg(target_arch = "x86_64")]
fn x32_guard() -> BpfProgram {
    const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
    let ld = |k| sock_filter {
        code: 0x20,
        jt: 0,
        jf: 0,
        k,
    };
    vec![
        ld(4),
        sock_filter {
            code: 0x15,
            jt: 0,
            jf: 3,
            k: AUDIT_ARCH_X86_64,
        },
        ld(0),
        sock_filter {
            code: 0x35,
            jt: 0,
            jf: 1,
            k: 0x4000_0000,
        },
        sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        },
        sock_filter {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ]
}

/// Translates and compiles a profile. Unknown syscall names are skipped, as runc does with
/// libseccomp: a profile names syscalls of every kernel and arch.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Program> {
    let arch = native_arch()?;
    validate_header(seccomp)?;
    let default = action(
        seccomp.default_action(),
        seccomp.default_errno_ret(),
        "linux.seccomp.defaultAction",
    )?;
    let mut base = RuleSet::new();
    // Groups in order of first appearance, keyed by the kernel return value.
    let mut groups: Vec<(SeccompAction, RuleSet)> = Vec::new();
    for (i, sc) in seccomp
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let act = action(sc.action(), sc.errno_ret(), &format!("{field}.action"))?;
        let conds = sc
            .args()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(j, a)| condition(a, &format!("{field}.args[{j}]")))
            .collect::<Result<Vec<_>>>()?;
        if sc.names().is_empty() {
            bail!("{field}.names: must name at least one syscall");
        }
        // A rule whose action is the default changes nothing; libseccomp refuses it and runc
        // skips it.
        if ret(&act) == ret(&default) {
            continue;
        }
        let rule = if conds.is_empty() {
            None
        } else {
            Some(SeccompRule::new(conds).map_err(|e| anyhow::anyhow!("{field}.args: {e}"))?)
        };
        let gi = match groups.iter().position(|(a, _)| ret(a) == ret(&act)) {
            Some(gi) => gi,
            None => {
                groups.push((act.clone(), RuleSet::new()));
                groups.len() - 1
            }
        };
        for name in sc.names() {
            let Some(nr) = syscall_nr(name) else {
                continue;
            };
            add_rule(&mut base, nr, rule.clone());
            add_rule(&mut groups[gi].1, nr, rule.clone());
        }
    }
    let mut filters = Vec::new();
    if default != SeccompAction::Allow {
        filters.push(build(base, default.clone(), SeccompAction::Allow, arch)?);
    }
    // Installed last-first so that, among rules of equal precedence (two errnos), the one listed
    // first in the profile wins: the kernel keeps the newest filter's answer on a tie.
    for (act, set) in groups.into_iter().rev() {
        if act == SeccompAction::Allow || set.is_empty() {
            continue;
        }
        filters.push(build(set, SeccompAction::Allow, act, arch)?);
    }
    #[cfg(target_arch = "x86_64")]
    filters.push(x32_guard());
    filters.iter_mut().for_each(notify::patch);
    let program = Program {
        filters: vec![merge::merge(&filters)?],
    };
    if notify::uses_notify(&program.filters) && seccomp.listener_path().is_none() {
        bail!("linux.seccomp.listenerPath: required when SCMP_ACT_NOTIFY is used");
    }
    Ok(program)
}

/// Parses `linux.seccomp` JSON and compiles it: the entry point for fuzzing the translation.
pub fn compile_json(text: &str) -> Result<Program> {
    let seccomp: LinuxSeccomp =
        serde_json::from_str(text).context("linux.seccomp: invalid JSON")?;
    compile(&seccomp)
}

fn validate_header(seccomp: &LinuxSeccomp) -> Result<()> {
    if seccomp.listener_metadata().is_some() && seccomp.listener_path().is_none() {
        bail!("linux.seccomp.listenerMetadata: must not be set without listenerPath");
    }
    if let Some(p) = seccomp.listener_path() {
        if !p.is_absolute() {
            bail!(
                "linux.seccomp.listenerPath: {} is not absolute",
                p.display()
            );
        }
    }
    Ok(())
}

/// A profile ready to install: the program, its flags and where a listener fd goes.
pub struct Loaded {
    pub program: Program,
    pub flags: libc::c_ulong,
    pub listener_path: Option<PathBuf>,
    pub listener_metadata: Option<String>,
}

impl Loaded {
    /// The agent to hand the listener to, when the program notifies.
    pub fn announce(&self, cell: &notify::Cell) -> Option<notify::Announce> {
        if !notify::uses_notify(&self.program.filters) {
            return None;
        }
        Some(notify::Announce {
            cell: cell.addr(),
            listener_path: self.listener_path.clone()?,
            metadata: self.listener_metadata.clone(),
        })
    }
}

/// Compiles (or reads from the cache) `linux.seccomp` for installing later.
pub fn prepare(seccomp: &LinuxSeccomp) -> Result<Loaded> {
    Ok(Loaded {
        program: load(seccomp, default_cache_dir().as_deref())?.0,
        flags: flags(seccomp),
        listener_path: seccomp.listener_path().clone(),
        listener_metadata: seccomp.listener_metadata().clone(),
    })
}

/// The seccomp(2) flags of the profile.
pub fn flags(seccomp: &LinuxSeccomp) -> libc::c_ulong {
    let mut f = 0;
    for flag in seccomp.flags().as_deref().unwrap_or_default() {
        f |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
        };
    }
    f
}

/// The cache key: the profile as hull reads it, the arch and the translation version.
pub fn profile_hash(seccomp: &LinuxSeccomp) -> Result<String> {
    let mut h = Sha256::new();
    h.update(FORMAT);
    h.update(std::env::consts::ARCH);
    h.update(serde_json::to_vec(seccomp)?);
    Ok(hex(&h.finalize()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Where compiled profiles are kept: root's under /run/hull, nowhere for others (a rootless
/// user gains little and /run is not theirs). `HULL_SECCOMP_CACHE` overrides it ("" disables).
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HULL_SECCOMP_CACHE") {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    nix::unistd::geteuid()
        .is_root()
        .then(|| PathBuf::from("/run/hull/seccomp-cache"))
}

fn encode(p: &Program) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend((p.filters.len() as u32).to_le_bytes());
    for f in &p.filters {
        out.extend((f.len() as u32).to_le_bytes());
        for i in f {
            out.extend(i.code.to_le_bytes());
            out.push(i.jt);
            out.push(i.jf);
            out.extend(i.k.to_le_bytes());
        }
    }
    let sum = Sha256::digest(&out);
    out.extend(sum);
    out
}

/// Decodes a cache file, refusing anything truncated, altered or not ours.
fn decode(b: &[u8]) -> Option<Program> {
    let body = b.get(..b.len().checked_sub(32)?)?;
    if Sha256::digest(body).as_slice() != &b[body.len()..] || !body.starts_with(MAGIC) {
        return None;
    }
    let mut rest = &body[MAGIC.len()..];
    let u32_at = |r: &mut &[u8]| -> Option<u32> {
        let (head, tail) = r.split_at_checked(4)?;
        *r = tail;
        Some(u32::from_le_bytes(head.try_into().ok()?))
    };
    let n = u32_at(&mut rest)?;
    let mut filters = Vec::new();
    for _ in 0..n {
        let len = u32_at(&mut rest)? as usize;
        let (insns, tail) = rest.split_at_checked(len.checked_mul(8)?)?;
        rest = tail;
        filters.push(
            insns
                .chunks_exact(8)
                .map(|c| sock_filter {
                    code: u16::from_le_bytes([c[0], c[1]]),
                    jt: c[2],
                    jf: c[3],
                    k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
                })
                .collect(),
        );
    }
    rest.is_empty().then_some(Program { filters })
}

/// Whether the last `load` came from the cache (for tests and debug logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Cache,
    Compiled,
}

/// The compiled profile, from `cache_dir/<sha256>.bpf` when present, else compiled and stored
/// there atomically (a failure to store is only a lost optimisation).
pub fn load(seccomp: &LinuxSeccomp, cache_dir: Option<&Path>) -> Result<(Program, Source)> {
    let Some(dir) = cache_dir else {
        return Ok((compile(seccomp)?, Source::Compiled));
    };
    let path = dir.join(format!("{}.bpf", profile_hash(seccomp)?));
    if let Some(p) = std::fs::read(&path).ok().and_then(|b| decode(&b)) {
        return Ok((p, Source::Cache));
    }
    let program = compile(seccomp)?;
    if let Err(e) = store(dir, &path, &program) {
        // Only a lost optimisation (a rootless caller, a read-only /run): not worth a warning.
        crate::debug!("seccomp cache: cannot store {}: {e:#}", path.display());
    }
    Ok((program, Source::Compiled))
}

fn store(dir: &Path, path: &Path, p: &Program) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let res = f
        .write_all(&encode(p))
        .and_then(|_| f.sync_all())
        .and_then(|_| std::fs::rename(&tmp, path));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(res?)
}

/// Installs one filter on the calling thread; returns what seccomp(2) returns (a listener fd
/// with SECCOMP_FILTER_FLAG_NEW_LISTENER). Without no_new_privs this needs CAP_SYS_ADMIN.
pub fn install_one(f: &BpfProgram, flags: libc::c_ulong) -> Result<i32> {
    let prog = libc::sock_fprog {
        len: u16::try_from(f.len()).context("linux.seccomp: filter too large")?,
        // seccompiler's sock_filter is #[repr(C)] with the kernel's layout.
        filter: f.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: the kernel copies the program, which outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error()).context("linux.seccomp: install the filter");
    }
    Ok(r as i32)
}

/// Installs the program's filters on the calling thread, in order.
pub fn install(p: &Program, flags: libc::c_ulong) -> Result<()> {
    for f in &p.filters {
        install_one(f, flags)?;
    }
    Ok(())
}

/// Installs a program that notifies: see `notify.rs`.
pub fn install_notifying(p: &Program, flags: libc::c_ulong, cell: &notify::Cell) -> Result<()> {
    match p.filters.as_slice() {
        [one] => notify::install_and_wait(one, flags, cell),
        _ => bail!("linux.seccomp: a notifying profile must compile to one filter"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn every_action_and_operator_compiles() {
        for (i, a) in ACTIONS.iter().enumerate() {
            let ops: Vec<_> = OPERATORS
                .iter()
                .map(|op| serde_json::json!({"index": 1, "value": 7, "valueTwo": 3, "op": op}))
                .collect();
            let p = profile(serde_json::json!({
                "defaultAction": if i % 2 == 0 { "SCMP_ACT_ALLOW" } else { "SCMP_ACT_ERRNO" },
                "architectures": ARCHS,
                "flags": FLAGS,
                "listenerPath": "/run/agent.sock",
                "syscalls": [{"names": ["mkdir", "no_such_syscall"], "action": a, "args": ops}]
            }));
            compile(&p).unwrap_or_else(|e| panic!("{a}: {e:#}"));
        }
    }

    #[test]
    fn notify_without_listener_and_bad_index_name_the_field() {
        let p = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}, {"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}));
        let e = format!("{:#}", compile(&p).unwrap_err());
        assert!(e.contains("linux.seccomp.listenerPath: required"), "{e}");
        let p = profile(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOTIFY"}]}),
        );
        let prog = compile(&p).unwrap();
        assert!(notify::uses_notify(&prog.filters));
        #[cfg(target_arch = "x86_64")]
        {
            const ARCH: u32 = 62 | 0x8000_0000 | 0x4000_0000;
            let nr = syscall_nr("read").unwrap();
            assert_eq!(run(&prog, ARCH, nr, [0; 6]), 0x7fc0_0000);
            assert_eq!(run(&prog, ARCH, nr + 1, [0; 6]), ALLOW);
        }
        let p = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}));
        let e = format!("{:#}", compile(&p).unwrap_err());
        assert!(e.contains("linux.seccomp.syscalls[0].args[0].index"), "{e}");
    }

    #[test]
    fn cache_round_trips_and_rejects_tampering() {
        let p = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}));
        let tmp = tempfile::tempdir().unwrap();
        let (a, s) = load(&p, Some(tmp.path())).unwrap();
        assert_eq!(s, Source::Compiled);
        let (b, s) = load(&p, Some(tmp.path())).unwrap();
        assert_eq!(s, Source::Cache);
        assert_eq!(a, b);
        let path = tmp
            .path()
            .join(format!("{}.bpf", profile_hash(&p).unwrap()));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[12] ^= 1;
        assert!(decode(&bytes).is_none());
        assert!(decode(&bytes[..5]).is_none());
    }

    /// Runs the compiled program the way the kernel runs a stack of filters (the most
    /// restrictive answer wins; on a tie the newest filter's): enough to check the
    /// translation's semantics without a kernel.
    fn run(p: &Program, arch: u32, nr: i64, args: [u64; 6]) -> u32 {
        let mut data = Vec::new();
        data.extend((nr as i32).to_ne_bytes());
        data.extend(arch.to_ne_bytes());
        data.extend(0u64.to_ne_bytes());
        for a in args {
            data.extend(a.to_ne_bytes());
        }
        let mut best: Option<u32> = None;
        for f in p.filters.iter().rev() {
            let ret = merge::interpret(f, &data);
            let rank = |r: u32| (r & 0xffff_0000) as i32;
            if best.is_none_or(|b| rank(ret) < rank(b)) {
                best = Some(ret);
            }
        }
        best.expect("at least one filter")
    }

    const ERRNO: u32 = libc::SECCOMP_RET_ERRNO;
    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn stacked_filters_give_each_call_its_rule_action() {
        const ARCH: u32 = 62 | 0x8000_0000 | 0x4000_0000;
        let nr = |n: &str| syscall_nr(n).unwrap();
        let p = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                // An unconditional rule makes the conditional one for the same call moot.
                {"names": ["write"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0xffff_ffffu64, "op": "SCMP_CMP_EQ"}]},
                // podman's socket rules: args of one rule ANDed, rules ORed.
                {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22, "args": [
                    {"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]},
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 2, "value": 9, "op": "SCMP_CMP_NE"}]},
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_NE"}]},
                {"names": ["kill"], "action": "SCMP_ACT_KILL_PROCESS", "args": [
                    {"index": 1, "value": 0xf_0000_0000u64, "valueTwo": 0x1_0000_0000u64, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["kill"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
            ]
        })))
        .unwrap();
        let call = |n: &str, args: [u64; 6]| run(&p, ARCH, nr(n), args);
        assert_eq!(call("read", [0; 6]), ALLOW);
        assert_eq!(call("write", [5, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(call("personality", [8, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(call("personality", [0xffff_ffff, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(call("personality", [9, 0, 0, 0, 0, 0]), ERRNO | 38);
        // 64-bit comparison: the high half counts.
        assert_eq!(
            call("personality", [0x1_0000_0008, 0, 0, 0, 0, 0]),
            ERRNO | 38
        );
        assert_eq!(call("socket", [16, 3, 9, 0, 0, 0]), ERRNO | 22);
        assert_eq!(call("socket", [16, 3, 0, 0, 0, 0]), ALLOW);
        assert_eq!(call("socket", [2, 1, 9, 0, 0, 0]), ALLOW);
        // The more restrictive of two matching rules wins.
        assert_eq!(
            call("kill", [1, 0x1_0000_0009, 0, 0, 0, 0]),
            libc::SECCOMP_RET_KILL_PROCESS
        );
        assert_eq!(call("kill", [1, 9, 0, 0, 0, 0]), ALLOW);
        // A rule with the default action changes nothing; unnamed calls get the default.
        assert_eq!(call("mkdir", [0; 6]), ERRNO | 38);
        assert_eq!(call("getpid", [0; 6]), ERRNO | 38);
        // Another ABI is killed; x32 numbers are refused whatever the profile says.
        assert_eq!(
            run(&p, 0x4000_0003, 20, [0; 6]),
            libc::SECCOMP_RET_KILL_PROCESS
        );
        assert_eq!(
            run(&p, ARCH, 0x4000_0000 | nr("read"), [0; 6]),
            ERRNO | libc::ENOSYS as u32
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn permissive_profiles_and_errno_ties() {
        const ARCH: u32 = 62 | 0x8000_0000 | 0x4000_0000;
        let p = compile(&profile(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28},
                {"names": ["rmdir"], "action": "SCMP_ACT_TRAP", "args": [{"index": 1, "value": 5, "op": "SCMP_CMP_LT"}]}
            ]
        })))
        .unwrap();
        let nr = |n: &str| syscall_nr(n).unwrap();
        // Equal precedence: the rule listed first in the profile wins.
        assert_eq!(run(&p, ARCH, nr("mkdir"), [0; 6]), ERRNO | 1);
        assert_eq!(
            run(&p, ARCH, nr("rmdir"), [0, 4, 0, 0, 0, 0]),
            libc::SECCOMP_RET_TRAP
        );
        assert_eq!(run(&p, ARCH, nr("rmdir"), [0, 5, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run(&p, ARCH, nr("read"), [0; 6]), ALLOW);
        assert_eq!(
            run(&p, ARCH, 0x4000_0000 | nr("mkdir"), [0; 6]),
            ERRNO | libc::ENOSYS as u32
        );
    }
}
