//! Folds a stack of classic-BPF seccomp filters into one program with the kernel's stacking
//! semantics, so that a profile is installed with a single seccomp(2) call.
//!
//! Why: once the first filter of a stack is in, every later seccomp(2) call is itself filtered.
//! A strict profile (default errno, allowing only what the application needs) would refuse the
//! runtime its own second install. One program also means one listener for SCMP_ACT_NOTIFY.
//!
//! The kernel runs the filters newest first and keeps a result only when its action is strictly
//! more restrictive (`(s32)(ret & SECCOMP_RET_ACTION_FULL)` smaller), so on a tie the newest
//! filter's answer stays. The merged program does the same: it runs each filter's body in that
//! order, with every `RET` turned into a jump to a block that compares the answer with the best
//! so far (kept in scratch memory), and returns the best at the end.

use anyhow::{bail, Result};
use seccompiler::{sock_filter, BpfProgram};

/// The kernel's limit on one filter's length (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

const LD_IMM: u16 = 0x00; // BPF_LD | BPF_W | BPF_IMM
const LD_MEM: u16 = 0x60; // BPF_LD | BPF_W | BPF_MEM
const ST: u16 = 0x02; // BPF_ST
const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const XOR_K: u16 = 0xa4; // BPF_ALU | BPF_XOR | BPF_K
const TAX: u16 = 0x07; // BPF_MISC | BPF_TAX
const TXA: u16 = 0x87; // BPF_MISC | BPF_TXA
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const JGT_X: u16 = 0x2d; // BPF_JMP | BPF_JGT | BPF_X
const RET_K: u16 = 0x06; // BPF_RET | BPF_K
const RET_A: u16 = 0x16; // BPF_RET | BPF_A

/// Scratch cells: the best answer so far, its sort key, and the answer being merged.
const M_BEST: u32 = 0;
const M_ANSWER: u32 = 1;
const M_KEY: u32 = 2;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// The unsigned sort key of an answer: signed order of the action bits, as the kernel compares.
fn key(ret: u32) -> u32 {
    (ret & 0xffff_0000) ^ 0x8000_0000
}

/// One program equivalent to installing `filters` in order (the last one newest).
pub fn merge(filters: &[BpfProgram]) -> Result<BpfProgram> {
    if let [only] = filters {
        return Ok(only.clone());
    }
    let allow = libc::SECCOMP_RET_ALLOW;
    let mut out = vec![
        insn(LD_IMM, 0, 0, allow),
        insn(ST, 0, 0, M_BEST),
        insn(LD_IMM, 0, 0, key(allow)),
        insn(ST, 0, 0, M_KEY),
    ];
    for f in filters.iter().rev() {
        let body_start = out.len();
        let rets: Vec<usize> = f
            .iter()
            .enumerate()
            .filter(|(_, i)| i.code == RET_K)
            .map(|(n, _)| n)
            .collect();
        for i in f {
            match i.code {
                RET_K | RET_A => out.push(insn(JA, 0, 0, 0)),
                LD_MEM | ST | TAX | TXA | JGT_X => {
                    // The merge owns scratch memory and X; seccompiler and the x32 guard use
                    // neither, so a filter that does is not one of ours.
                    bail!(
                        "linux.seccomp: cannot merge a filter using BPF opcode {:#x}",
                        i.code
                    )
                }
                _ => out.push(i.clone()),
            }
        }
        // One stub per `RET k`: load the answer, then go to the merge block.
        let stubs_start = out.len();
        for &n in &rets {
            out.push(insn(LD_IMM, 0, 0, f[n].k));
            out.push(insn(JA, 0, 0, 0));
        }
        let merge_at = out.len();
        for (s, &n) in rets.iter().enumerate() {
            let at = body_start + n;
            out[at].k = (stubs_start + 2 * s - (at + 1)) as u32;
            let ja = stubs_start + 2 * s + 1;
            out[ja].k = (merge_at - (ja + 1)) as u32;
        }
        // `RET A` already holds the answer in A.
        for (n, i) in f.iter().enumerate() {
            if i.code == RET_A {
                let at = body_start + n;
                out[at].k = (merge_at - (at + 1)) as u32;
            }
        }
        out.extend([
            insn(ST, 0, 0, M_ANSWER),
            insn(AND_K, 0, 0, 0xffff_0000),
            insn(XOR_K, 0, 0, 0x8000_0000),
            insn(TAX, 0, 0, 0),
            insn(LD_MEM, 0, 0, M_KEY),
            // Strictly more restrictive than the best so far: take it.
            insn(JGT_X, 0, 4, 0),
            insn(TXA, 0, 0, 0),
            insn(ST, 0, 0, M_KEY),
            insn(LD_MEM, 0, 0, M_ANSWER),
            insn(ST, 0, 0, M_BEST),
        ]);
    }
    out.push(insn(LD_MEM, 0, 0, M_BEST));
    out.push(insn(RET_A, 0, 0, 0));
    if out.len() > MAX_INSNS {
        bail!(
            "linux.seccomp: the profile compiles to {} BPF instructions, over the kernel's limit of {MAX_INSNS}",
            out.len()
        );
    }
    Ok(out)
}

/// A classic-BPF interpreter for what seccompiler, the x32 guard and the merge emit, for tests.
#[cfg(test)]
pub fn interpret(f: &[sock_filter], data: &[u8]) -> u32 {
    let word =
        |off: u32| u32::from_ne_bytes(data[off as usize..off as usize + 4].try_into().unwrap());
    let (mut pc, mut a, mut x, mut mem) = (0usize, 0u32, 0u32, [0u32; 16]);
    loop {
        let i = &f[pc];
        pc += 1;
        match i.code {
            0x20 => a = word(i.k),
            LD_IMM => a = i.k,
            LD_MEM => a = mem[i.k as usize],
            ST => mem[i.k as usize] = a,
            AND_K => a &= i.k,
            XOR_K => a ^= i.k,
            TAX => x = a,
            TXA => a = x,
            JA => pc += i.k as usize,
            0x15 | 0x25 | 0x35 | 0x45 | JGT_X => {
                let hit = match i.code {
                    0x15 => a == i.k,
                    0x25 => a > i.k,
                    0x35 => a >= i.k,
                    JGT_X => a > x,
                    _ => a & i.k != 0,
                };
                pc += if hit { i.jt } else { i.jf } as usize;
            }
            RET_K => return i.k,
            RET_A => return a,
            other => panic!("unexpected BPF opcode {other:#x}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ret(k: u32) -> sock_filter {
        insn(RET_K, 0, 0, k)
    }

    /// A filter answering `hit` for syscall `nr` and `miss` otherwise.
    fn on(nr: u32, hit: u32, miss: u32) -> BpfProgram {
        vec![
            insn(0x20, 0, 0, 0),
            insn(0x15, 0, 1, nr),
            ret(hit),
            ret(miss),
        ]
    }

    fn data(nr: u32) -> Vec<u8> {
        let mut d = nr.to_ne_bytes().to_vec();
        d.resize(64, 0);
        d
    }

    /// The kernel's rule, straight from kernel/seccomp.c.
    fn stacked(filters: &[BpfProgram], d: &[u8]) -> u32 {
        let mut best = libc::SECCOMP_RET_ALLOW;
        for f in filters.iter().rev() {
            let r = interpret(f, d);
            if ((r & 0xffff_0000) as i32) < ((best & 0xffff_0000) as i32) {
                best = r;
            }
        }
        best
    }

    #[test]
    fn merged_program_answers_as_the_stack() {
        let errno = |e: u32| libc::SECCOMP_RET_ERRNO | e;
        let allow = libc::SECCOMP_RET_ALLOW;
        let kill = libc::SECCOMP_RET_KILL_PROCESS;
        let stack = vec![
            on(1, allow, errno(1)),
            on(2, errno(22), allow),
            on(2, errno(28), allow),
            on(3, kill, allow),
            on(4, libc::SECCOMP_RET_TRAP, libc::SECCOMP_RET_LOG),
            on(5, libc::SECCOMP_RET_KILL_THREAD, allow),
        ];
        let merged = merge(&stack).unwrap();
        for nr in 0..8 {
            let d = data(nr);
            assert_eq!(interpret(&merged, &d), stacked(&stack, &d), "syscall {nr}");
        }
        // Equal precedence: the newest filter's errno wins, as in the kernel.
        assert_eq!(interpret(&merged, &data(2)), errno(28));
        assert_eq!(interpret(&merged, &data(3)), kill);
    }

    #[test]
    fn one_filter_is_kept_as_is_and_oversize_is_refused() {
        let f = on(1, 0, 1);
        assert_eq!(merge(std::slice::from_ref(&f)).unwrap(), f);
        let big: BpfProgram = (0..MAX_INSNS).map(|_| ret(0)).collect();
        let e = merge(&[big.clone(), big]).unwrap_err().to_string();
        assert!(e.contains("limit"), "{e}");
    }
}
