//! `linux.rootfsPropagation`: every value of the runtime spec, as /proc/self/mountinfo shows the
//! container's / (and, for the recursive values, a mount below it), with the host's mount table
//! unchanged afterwards.

#[path = "common/caller_ns.rs"]
mod caller_ns;
mod common;
use caller_ns::{assert_host_untouched, host_mounts, run_from_own_mountns};
use common::*;
use serde_json::json;

/// The optional fields (shared:N, master:N, unbindable) of the topmost mount at `point`.
fn optional_fields(mountinfo: &str, point: &str) -> Vec<String> {
    mountinfo
        .lines()
        .rev()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(4) == Some(&point)).then(|| {
                f[6..]
                    .iter()
                    .take_while(|s| **s != "-")
                    .map(|s| s.to_string())
                    .collect()
            })
        })
        .next()
        .unwrap_or_else(|| panic!("nothing mounted on {point} in\n{mountinfo}"))
}

fn has(fields: &[String], prefix: &str) -> bool {
    fields.iter().any(|f| f.starts_with(prefix))
}

#[test]
fn every_rootfs_propagation_value_shows_on_the_container_root() {
    if !require_root() {
        return;
    }
    // The caller's mounts are shared, as on a systemd host, so a slave has a master to follow
    // and a shared / of the container could leak mounts to the caller if hull got it wrong.
    for prop in [
        "private",
        "rprivate",
        "slave",
        "rslave",
        "shared",
        "rshared",
        "unbindable",
        "runbindable",
    ] {
        let env = Env::new();
        let before = host_mounts(env.tmp.path());
        env.edit(|v| v["linux"]["rootfsPropagation"] = json!(prop));
        let ran = run_from_own_mountns(
            &env,
            &unique_id(),
            "shared",
            "",
            &["cat", "/proc/self/mountinfo"],
        );
        let mi = ran.ok();
        let root = optional_fields(mi, "/");
        let proc_ = optional_fields(mi, "/proc");
        let base = prop.trim_start_matches('r');
        let recursive = prop.starts_with('r');
        match base {
            "private" => assert!(root.is_empty(), "{prop}: / {root:?}"),
            "slave" => assert!(
                has(&root, "master:") && !has(&root, "shared:"),
                "{prop}: / {root:?}"
            ),
            "shared" => assert!(has(&root, "shared:"), "{prop}: / {root:?}"),
            "unbindable" => assert_eq!(root, ["unbindable"], "{prop}"),
            other => unreachable!("{other}"),
        }
        // A recursive value reaches the mounts below /, a plain one leaves them private.
        match base {
            "shared" => assert_eq!(has(&proc_, "shared:"), recursive, "{prop}: /proc {proc_:?}"),
            "unbindable" => assert_eq!(
                proc_.contains(&"unbindable".to_string()),
                recursive,
                "{prop}: /proc {proc_:?}"
            ),
            _ => assert!(proc_.is_empty(), "{prop}: /proc {proc_:?}"),
        }
        assert_host_untouched(&before, env.tmp.path());
    }
}

#[test]
fn rootfs_propagation_from_the_host_mount_namespace_leaves_it_alone() {
    if !require_root() {
        return;
    }
    // Straight from the host's namespace this time: the values that once touched / before the
    // rootfs bind (unbindable failed with EINVAL there).
    for prop in ["unbindable", "runbindable", "rshared", "private"] {
        let env = Env::new();
        let before = host_mounts(env.tmp.path());
        env.edit(|v| v["linux"]["rootfsPropagation"] = json!(prop));
        let mi = env.sh("cat /proc/self/mountinfo");
        let root = optional_fields(&mi, "/");
        assert_eq!(
            root.iter().any(|f| f == "unbindable"),
            prop.contains("unbindable"),
            "{prop}: {root:?}"
        );
        assert_host_untouched(&before, env.tmp.path());
    }
    // --no-pivot moves the rootfs mount onto /, which an unbindable tree must not stop.
    let env = Env::new();
    let before = host_mounts(env.tmp.path());
    env.edit(|v| {
        v["linux"]["rootfsPropagation"] = json!("runbindable");
        v["process"]["args"] = json!(["cat", "/proc/self/mountinfo"]);
    });
    let bundle = env.bundle.to_str().unwrap().to_string();
    let ran = env.hull(&["run", "--no-pivot", "--bundle", &bundle, &unique_id()]);
    assert_eq!(optional_fields(ran.ok(), "/"), ["unbindable"]);
    assert_host_untouched(&before, env.tmp.path());
}
