//! Device access rules: the v1 `devices.allow`/`devices.deny` strings and the v2 eBPF
//! `BPF_PROG_TYPE_CGROUP_DEVICE` program, both from one normalized rule list.

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DevType {
    All,
    Char,
    Block,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub typ: DevType,
    /// None is the wildcard `*`.
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// Some of "rwm", in that order, never empty.
    pub access: String,
}

impl Rule {
    /// The v1 `devices.allow`/`devices.deny` line.
    pub fn v1_line(&self) -> String {
        let t = match self.typ {
            DevType::All => return "a *:* rwm".to_string(),
            DevType::Char => 'c',
            DevType::Block => 'b',
        };
        let n = |v: Option<i64>| v.map_or("*".to_string(), |v| v.to_string());
        format!("{t} {}:{} {}", n(self.major), n(self.minor), self.access)
    }
}

pub struct RuleSpec(DevType, Option<i64>, Option<i64>, &'static str);

/// What runc always allows after the spec's own rules: mknod of anything, and the devices every
/// container gets (/dev/null, zero, full, random, urandom, tty, ptmx, pts/*).
const DEFAULT_ALLOWED: [RuleSpec; 10] = [
    RuleSpec(DevType::Char, None, None, "m"),
    RuleSpec(DevType::Block, None, None, "m"),
    RuleSpec(DevType::Char, Some(1), Some(3), "rwm"),
    RuleSpec(DevType::Char, Some(1), Some(8), "rwm"),
    RuleSpec(DevType::Char, Some(1), Some(7), "rwm"),
    RuleSpec(DevType::Char, Some(5), Some(0), "rwm"),
    RuleSpec(DevType::Char, Some(1), Some(5), "rwm"),
    RuleSpec(DevType::Char, Some(1), Some(9), "rwm"),
    RuleSpec(DevType::Char, Some(136), None, "rwm"),
    RuleSpec(DevType::Char, Some(5), Some(2), "rwm"),
];

/// The spec's rules, checked, followed by runc's default allowed devices.
pub fn rules(spec: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    let mut out = Vec::new();
    for (i, d) in spec.iter().enumerate() {
        let field = format!("linux.resources.devices[{i}]");
        let typ = match d.typ().unwrap_or_default() {
            LinuxDeviceType::A => DevType::All,
            LinuxDeviceType::C | LinuxDeviceType::U => DevType::Char,
            LinuxDeviceType::B => DevType::Block,
            LinuxDeviceType::P => {
                bail!("{field}.type: \"p\" (fifo) cannot be controlled by the devices cgroup")
            }
        };
        let access = d.access().clone().unwrap_or_else(|| "rwm".to_string());
        if access.is_empty() || access.chars().any(|c| !"rwm".contains(c)) {
            bail!("{field}.access: {access:?} must be a combination of \"r\", \"w\" and \"m\"");
        }
        let access: String = "rwm".chars().filter(|c| access.contains(*c)).collect();
        let num = |v: Option<i64>, what: &str| -> Result<Option<i64>> {
            match v {
                None | Some(-1) => Ok(None),
                Some(n) if (0..=u32::MAX as i64).contains(&n) => Ok(Some(n)),
                Some(n) => bail!("{field}.{what}: {n} is out of range"),
            }
        };
        let (major, minor) = (num(d.major(), "major")?, num(d.minor(), "minor")?);
        // A typed rule with every number wildcarded and full access is still only that type.
        out.push(Rule {
            allow: d.allow(),
            typ,
            major,
            minor,
            access,
        });
    }
    for RuleSpec(typ, major, minor, access) in DEFAULT_ALLOWED {
        out.push(Rule {
            allow: true,
            typ,
            major,
            minor,
            access: access.to_string(),
        });
    }
    Ok(out)
}

/// v1: every rule in order into devices.allow or devices.deny; the kernel applies them as runc's
/// "deny a, then allows" sequence when the spec starts with a deny-all.
pub fn apply_v1(dir: &Path, rules: &[Rule]) -> Result<()> {
    for r in rules {
        let file = dir.join(if r.allow {
            "devices.allow"
        } else {
            "devices.deny"
        });
        let line = r.v1_line();
        std::fs::write(&file, &line).with_context(|| {
            format!(
                "linux.resources.devices: write {line:?} to {}",
                file.display()
            )
        })?;
    }
    Ok(())
}

// --- eBPF ---------------------------------------------------------------------------------

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// `struct bpf_cgroup_dev_ctx` encodings.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// dst in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const AND32_K: u8 = 0x54;
const RSH32_K: u8 = 0x74;
const MOV32_X: u8 = 0xbc;
const MOV32_K: u8 = 0xb4;
const JNE_K: u8 = 0x55;
const JNE_X: u8 = 0x5d;
const EXIT: u8 = 0x95;

/// The device filter as runc builds it: load type/access/major/minor into r2..r5, then one block
/// per rule, last rule first (the last matching rule wins, as with v1), default deny.
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        // Jumps are emitted with off = -1 and patched to "past the end of this block".
        let mut block = Vec::new();
        let unconditional = r.typ == DevType::All;
        match r.typ {
            DevType::All => {}
            DevType::Char => block.push(insn(JNE_K, 2, 0, -1, DEV_CHAR)),
            DevType::Block => block.push(insn(JNE_K, 2, 0, -1, DEV_BLOCK)),
        }
        let mut acc = 0;
        for (c, bit) in [('m', ACC_MKNOD), ('r', ACC_READ), ('w', ACC_WRITE)] {
            if r.access.contains(c) {
                acc |= bit;
            }
        }
        if acc != ACC_MKNOD | ACC_READ | ACC_WRITE {
            // Matches only if every requested access bit is in the rule's.
            block.push(insn(MOV32_X, 1, 3, 0, 0));
            block.push(insn(AND32_K, 1, 0, 0, acc));
            block.push(insn(JNE_X, 1, 3, -1, 0));
        }
        if let Some(m) = r.major {
            block.push(insn(JNE_K, 4, 0, -1, m as i32));
        }
        if let Some(m) = r.minor {
            block.push(insn(JNE_K, 5, 0, -1, m as i32));
        }
        block.push(insn(MOV32_K, 0, 0, 0, i32::from(r.allow)));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let n = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.off == -1 {
                ins.off = (n - 1 - i) as i16;
            }
        }
        let always = n == 2 && unconditional;
        p.extend(block);
        // The verifier rejects unreachable code: nothing after a match-all rule can run.
        if always {
            return p;
        }
    }
    p.push(insn(MOV32_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

fn bpf(cmd: libc::c_long, attr: &mut [u64; 16]) -> std::io::Result<libc::c_long> {
    // SAFETY: attr is a zero-padded union bpf_attr of 128 bytes that outlives the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            std::mem::size_of_val(attr),
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn load(insns: &[Insn]) -> Result<OwnedFd> {
    let license = c"Apache";
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = [0u64; 16];
    attr[0] = u64::from(BPF_PROG_TYPE_CGROUP_DEVICE) | ((insns.len() as u64) << 32);
    attr[1] = insns.as_ptr() as u64;
    attr[2] = license.as_ptr() as u64;
    attr[3] = 1 | ((log.len() as u64) << 32); // log_level 1, log_size
    attr[4] = log.as_mut_ptr() as u64;
    let fd = match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => fd,
        Err(e) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let verifier = String::from_utf8_lossy(&log[..end]);
            bail!("linux.resources.devices: load the device filter (bpf BPF_PROG_LOAD): {e}; verifier: {}", verifier.trim());
        }
    };
    // SAFETY: a new fd the kernel just returned to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn attached(cgroup: &OwnedFd) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    let mut attr = [0u64; 16];
    attr[0] = cgroup.as_raw_fd() as u64 | (u64::from(BPF_CGROUP_DEVICE) << 32);
    attr[2] = ids.as_mut_ptr() as u64;
    attr[3] = ids.len() as u64;
    bpf(BPF_PROG_QUERY, &mut attr)
        .context("linux.resources.devices: query attached device filters")?;
    ids.truncate((attr[3] & 0xffff_ffff) as usize);
    Ok(ids)
}

/// v2: loads the filter for `rules` and attaches it to the cgroup `dir`, then detaches the
/// filters that were there before (an update replaces, it does not stack).
pub fn apply_v2(dir: &Path, rules: &[Rule]) -> Result<()> {
    let prog = load(&program(rules))?;
    let cgroup = std::fs::File::open(dir).with_context(|| format!("open {}", dir.display()))?;
    let cgroup = OwnedFd::from(cgroup);
    let old = attached(&cgroup)?;
    let mut attr = [0u64; 16];
    attr[0] = cgroup.as_raw_fd() as u64 | ((prog.as_raw_fd() as u64) << 32);
    attr[1] = u64::from(BPF_CGROUP_DEVICE) | (u64::from(BPF_F_ALLOW_MULTI) << 32);
    bpf(BPF_PROG_ATTACH, &mut attr).with_context(|| {
        format!(
            "linux.resources.devices: attach the device filter to {}",
            dir.display()
        )
    })?;
    for id in old {
        let mut a = [0u64; 16];
        a[0] = u64::from(id);
        let Ok(fd) = bpf(BPF_PROG_GET_FD_BY_ID, &mut a) else {
            continue;
        };
        // SAFETY: a new fd the kernel just returned to us.
        let old_prog = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let mut d = [0u64; 16];
        d[0] = cgroup.as_raw_fd() as u64 | ((old_prog.as_raw_fd() as u64) << 32);
        d[1] = u64::from(BPF_CGROUP_DEVICE);
        bpf(BPF_PROG_DETACH, &mut d).with_context(|| {
            format!(
                "linux.resources.devices: detach the old device filter from {}",
                dir.display()
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn rules_append_runc_defaults_and_validate() {
        let r = rules(&spec(r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":10,"minor":-1,"access":"wr"}]"#)).unwrap();
        assert_eq!(r[0].v1_line(), "a *:* rwm");
        assert_eq!(r[1].v1_line(), "c 10:* rw");
        assert_eq!(r[2].v1_line(), "c *:* m");
        assert!(r.iter().any(|r| r.v1_line() == "c 1:3 rwm"));
        assert!(rules(&spec(r#"[{"allow":true,"access":"rx"}]"#))
            .unwrap_err()
            .to_string()
            .contains("devices[0].access"));
        assert!(rules(&spec(r#"[{"allow":true,"type":"p"}]"#)).is_err());
    }

    #[test]
    fn program_jumps_land_inside_the_program() {
        let r = rules(&spec(r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"b","major":8,"minor":0,"access":"r"}]"#)).unwrap();
        let p = program(&r);
        for (i, ins) in p.iter().enumerate() {
            if ins.code == JNE_K || ins.code == JNE_X {
                let target = i as i64 + 1 + i64::from(ins.off);
                assert!(target < p.len() as i64 && target > i as i64);
            }
        }
        assert_eq!(p.last().unwrap().code, EXIT);
    }
}
