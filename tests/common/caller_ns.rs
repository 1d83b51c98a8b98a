//! Running hull from a throwaway mount namespace of the test's own (`unshare --mount`), and
//! proving the host's mount table was left alone. Loaded with `#[path]` by the test files that
//! need it, next to `mod common;`.
#![allow(dead_code)]

use crate::common::{capture, Env, Ran, HULL};
use std::path::Path;
use std::process::Command;

/// `hull run` of `args` in this bundle as container `id`, from a new mount namespace whose mounts get
/// `propagation` (`private`, `shared`, ... as `unshare --propagation` sets them). `setup` is a
/// shell snippet run first in that namespace (mounting a submount, say). The namespace dies
/// with the command, so nothing mounted in it, by `setup` or by hull, outlives the test.
pub fn run_from_own_mountns(
    env: &Env,
    id: &str,
    propagation: &str,
    setup: &str,
    args: &[&str],
) -> Ran {
    env.set_args(args);
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", propagation, "--", "sh", "-c"])
        .arg(format!("set -e\n{setup}\nexec \"$@\""))
        .arg("sh")
        .arg(HULL)
        .arg("--root")
        .arg(&env.root)
        .args(["run", "--bundle"])
        .arg(&env.bundle)
        .arg(id)
        .current_dir(&env.bundle)
        .stdin(std::process::Stdio::null());
    capture(c)
}

/// What of the host's mount table a test could disturb: the propagation and options of `/`,
/// and every mount at or below `dir`. Equal before and after a test proves it left both alone.
#[derive(Debug, PartialEq, Eq)]
pub struct HostMounts {
    root: Vec<String>,
    under: Vec<String>,
}

pub fn host_mounts(dir: &Path) -> HostMounts {
    let text = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let dir = dir.to_string_lossy();
    let mut m = HostMounts {
        root: Vec::new(),
        under: Vec::new(),
    };
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let Some(point) = f.get(4) else { continue };
        if *point == "/" {
            // Options and optional fields (shared:N, master:N, unbindable) up to the separator.
            m.root = f[5..]
                .iter()
                .take_while(|s| **s != "-")
                .map(|s| s.to_string())
                .collect();
        } else if point.starts_with(&*dir) {
            m.under.push(line.to_string());
        }
    }
    m
}

/// Asserts nothing is mounted at or below `dir` and `/` is as `before` found it.
pub fn assert_host_untouched(before: &HostMounts, dir: &Path) {
    let after = host_mounts(dir);
    assert!(
        after.under.is_empty(),
        "host mounts left: {:?}",
        after.under
    );
    assert_eq!(before, &after, "host mount table changed");
}

/// Runs shell `script` in a new mount namespace whose mounts get `propagation`, with `$HULL`
/// (hull with this env's `--root`) and `$BUNDLE` set: for tests that need several hull
/// commands in the same caller namespace.
pub fn sh_in_own_mountns(env: &Env, propagation: &str, script: &str) -> Ran {
    let mut c = Command::new("unshare");
    c.args(["--mount", "--propagation", propagation, "--", "sh", "-c"])
        .arg(format!("set -e\n{script}"))
        .env("HULL", format!("{HULL} --root {}", env.root.display()))
        .env("BUNDLE", &env.bundle)
        .current_dir(&env.bundle)
        .stdin(std::process::Stdio::null());
    capture(c)
}
