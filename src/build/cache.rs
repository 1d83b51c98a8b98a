//! Build-cache keys. A step is reused when its parent, its instruction after expansion and, for
//! COPY/ADD, the content of its sources are the same. Keys chain, so a miss invalidates every later
//! step of the stage:
//!
//! ```text
//! key(FROM)  = H("berth-build-cache-v1", "base", base id)
//! key(step)  = H("berth-build-cache-v1", "step", key(previous step), step.cache_text, inputs)
//! H(parts)   = hex(sha256(for each part: u64 little-endian length ++ bytes))
//! ```
//!
//! The base id is the image's config digest (`sha256:...`), the final key of the stage it names,
//! or `scratch`. `cache_text` is the canonical expanded instruction from the plan (for RUN: argv,
//! env, user, workdir, network, mounts; build args are in it because they are in the env; proxy
//! args are not). `inputs` is the content hash of COPY/ADD sources (`context::Resolved::hash`, or
//! the same hash over the source stage's rootfs for `--from`), the keys of stages mounted by
//! `RUN --mount=from=`, or empty. Deterministic: no time, path or host state enters a key.

use sha2::{Digest as _, Sha256};

use super::plan::{Base, Step};

const VERSION: &str = "berth-build-cache-v1";

/// sha256 over length-prefixed parts, so no two part lists hash the same bytes.
fn sha(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The key a stage's chain starts from. `base_id`: the image config digest for an image, the
/// last key of the referenced stage for a stage, ignored for scratch.
pub fn base_key(base: &Base, base_id: &str) -> String {
    match base {
        Base::Scratch => sha(&[VERSION, "base", "scratch"]),
        Base::Image(_) | Base::Stage(_) => sha(&[VERSION, "base", base_id]),
    }
}

/// The key of `step` after `parent` (the previous step's key). `inputs`: see the module docs.
pub fn step_key(parent: &str, step: &Step, inputs: &[&str]) -> String {
    let inputs = inputs.join(",");
    sha(&[VERSION, "step", parent, &step.cache_text, &inputs])
}

#[cfg(test)]
mod tests {
    use super::super::plan::StepKind;
    use super::*;

    fn step(text: &str) -> Step {
        Step {
            line: 1,
            display: text.into(),
            kind: StepKind::ConfigOnly,
            created_by: String::new(),
            cache_text: text.into(),
        }
    }

    #[test]
    fn keys_are_deterministic_and_sensitive() {
        let b = base_key(&Base::Image("alpine".into()), "sha256:aa");
        assert_eq!(b, base_key(&Base::Image("alpine".into()), "sha256:aa"));
        assert_ne!(b, base_key(&Base::Image("alpine".into()), "sha256:bb"));
        assert_eq!(base_key(&Base::Scratch, "x"), base_key(&Base::Scratch, "y"));
        let k1 = step_key(&b, &step("RUN a"), &[]);
        assert_eq!(k1, step_key(&b, &step("RUN a"), &[]));
        assert_eq!(k1.len(), 64);
        assert_ne!(k1, step_key(&b, &step("RUN b"), &[]), "instruction");
        let other = base_key(&Base::Scratch, "");
        assert_ne!(k1, step_key(&other, &step("RUN a"), &[]), "parent");
        let c1 = step_key(&b, &step("COPY"), &["h1"]);
        assert_ne!(c1, step_key(&b, &step("COPY"), &["h2"]), "source content");
        // Field boundaries cannot be shifted to forge a collision.
        assert_ne!(
            step_key("p", &step("a\nb"), &[]),
            step_key("p\na", &step("b"), &[])
        );
    }
}
