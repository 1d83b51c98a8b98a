//! The fuzz targets (fuzz/fuzz_targets) as a bounded, deterministic test that runs on stable:
//! thousands of structurally and byte-mutated configs and seccomp profiles from a fixed seed,
//! through the same entry points. Neither may panic; what compiles must fit the kernel.
//! `FUZZ_SMOKE_ITERS` changes the count, `FUZZ_SMOKE_SEED` the seed (failures print both).

use serde_json::{json, Value};

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_CMP_EQ",
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "read",
    "mkdir",
    "clone3",
    "no_such_call",
    "",
    "/",
    "..",
    "../../etc",
    "/proc/self/fd/7",
    "1.2.0",
    "2.0.0",
    "pid",
    "user",
    "bogus",
    "CAP_SYS_ADMIN",
    "ro",
    "rbind",
    "\u{0}",
    "é",
];

fn random_value(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 2 { 6 } else { 8 }) {
        0 => json!(WORDS[rng.below(WORDS.len())]),
        1 => json!([0u64, 1, 5, 6, 7, 255, 4096, u32::MAX as u64, u64::MAX][rng.below(9)]),
        2 => json!([-1i64, i64::MIN, -4096][rng.below(3)]),
        3 => json!(rng.below(2) == 0),
        4 => Value::Null,
        5 => json!(rng.next() as f64 / 7.0),
        6 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "names", "action", "args", "index", "value", "valueTwo", "op", "errnoRet", "type",
                "path",
            ];
            Value::Object(
                (0..rng.below(4))
                    .map(|_| {
                        (
                            keys[rng.below(keys.len())].to_string(),
                            random_value(rng, depth + 1),
                        )
                    })
                    .collect(),
            )
        }
    }
}

/// Replaces, removes or adds one node somewhere in the tree.
fn mutate_tree(v: &mut Value, rng: &mut Rng, depth: u32) {
    let descend = depth < 8 && (depth == 0 || rng.below(3) != 0);
    match v {
        Value::Object(map) if !map.is_empty() && descend => {
            let key = map
                .keys()
                .nth(rng.below(map.len()))
                .cloned()
                .unwrap_or_default();
            match rng.below(6) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    map.insert(key, random_value(rng, depth));
                }
                _ => {
                    if let Some(child) = map.get_mut(&key) {
                        mutate_tree(child, rng, depth + 1);
                    }
                }
            }
        }
        Value::Array(items) if !items.is_empty() && descend => {
            let i = rng.below(items.len());
            match rng.below(5) {
                0 => {
                    items.remove(i);
                }
                1 => {
                    let dup = items[i].clone();
                    items.insert(i, dup);
                }
                _ => mutate_tree(&mut items[i], rng, depth + 1),
            }
        }
        _ => *v = random_value(rng, depth),
    }
}

/// Byte-level damage: truncation, a flipped byte, a spliced token.
fn mutate_bytes(text: &str, rng: &mut Rng) -> String {
    let mut b = text.as_bytes().to_vec();
    match rng.below(3) {
        0 => b.truncate(rng.below(b.len() + 1)),
        1 => {
            if !b.is_empty() {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
        }
        _ => {
            let i = rng.below(b.len() + 1);
            let tok = [
                "{", "}", "[", "]", ",", ":", "\"", "null", "1e999", "-0", "\\u0000",
            ][rng.below(11)];
            b.splice(i..i, tok.bytes());
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn seed_config() -> Value {
    serde_json::to_value(hull::runtime::template::default_spec(false)).unwrap()
}

fn seed_seccomp() -> Value {
    serde_json::from_str(include_str!("../fuzz/seeds/seccomp.json")).unwrap()
}

fn iterations() -> u64 {
    std::env::var("FUZZ_SMOKE_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

fn seed() -> u64 {
    std::env::var("FUZZ_SMOKE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6875_6c6c)
}

/// Runs `check` on `iterations()` mutants of `base`, reporting the input of any panic.
fn fuzz(name: &str, base: Value, check: impl Fn(&str) + std::panic::RefUnwindSafe) {
    let mut rng = Rng(seed() | 1);
    let (mut ok, mut err) = (0u64, 0u64);
    for i in 0..iterations() {
        let mut v = base.clone();
        for _ in 0..=rng.below(3) {
            mutate_tree(&mut v, &mut rng, 0);
        }
        let mut text = v.to_string();
        if rng.below(4) == 0 {
            text = mutate_bytes(&text, &mut rng);
        }
        if std::panic::catch_unwind(|| check(&text)).is_err() {
            panic!(
                "{name}: iteration {i} (seed {}) panicked on input:\n{text}",
                seed()
            );
        }
        if serde_json::from_str::<Value>(&text).is_ok() {
            ok += 1;
        } else {
            err += 1;
        }
    }
    eprintln!(
        "{name}: {} inputs ({ok} valid JSON, {err} broken)",
        iterations()
    );
}

#[test]
fn config_parser_never_panics() {
    fuzz("config", seed_config(), |text| {
        let _ = hull::runtime::spec::parse(text);
    });
}

#[test]
fn seccomp_translation_never_panics_and_fits_the_kernel() {
    let compiled = std::sync::atomic::AtomicU64::new(0);
    fuzz("seccomp", seed_seccomp(), |text| {
        if let Ok(p) = hull::seccomp::compile_json(text) {
            compiled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            for f in &p.filters {
                assert!(
                    !f.is_empty() && f.len() <= 4096,
                    "filter of {} instructions",
                    f.len()
                );
            }
        }
    });
    // The mutants must still reach the compiler often, or this tests only the JSON parser.
    let compiled = compiled.into_inner();
    eprintln!("seccomp: {compiled} compiled");
    assert!(
        compiled > iterations() / 10,
        "only {compiled} mutants compiled"
    );
}

#[test]
fn seccomp_inside_a_config_never_panics() {
    let mut base = seed_config();
    base["linux"]["seccomp"] = seed_seccomp();
    fuzz("config+seccomp", base, |text| {
        if let Ok(spec) = hull::runtime::spec::parse(text) {
            if let Some(s) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
                let _ = hull::seccomp::compile(s);
            }
        }
    });
}
