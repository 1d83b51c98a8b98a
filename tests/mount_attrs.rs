//! Mount attributes applied with mount_setattr: the recursive `r*` options reach the submounts
//! of a recursive bind, `nosymfollow` the mount alone; what the kernel refuses is an error that
//! names the mount. The bind sources carry a tmpfs submount made in a mount namespace of the
//! test's own, so nothing is ever mounted on the host.

#[path = "common/caller_ns.rs"]
mod caller_ns;
mod common;
use caller_ns::{assert_host_untouched, host_mounts, run_from_own_mountns};
use common::*;
use serde_json::{json, Value};
use std::path::Path;

/// A bind source dir with an executable, a symlink to it, and a `sub` dir for the submount.
fn source(env: &Env, name: &str) -> std::path::PathBuf {
    let d = env.tmp.path().join(name);
    std::fs::create_dir_all(d.join("sub")).unwrap();
    d
}

/// Shell that mounts a tmpfs on `dir/sub` and fills it (and `dir`) with a program and links to
/// it, then remounts the submount with `flags` (a bind remount: per-mount flags only).
fn submount(dir: &Path, flags: &str) -> String {
    let d = dir.display();
    let mut s = format!(
        "mount -t tmpfs -o size=1m tmpfs {d}/sub\n\
         for x in {d} {d}/sub; do printf '#!/bin/sh\\necho ran\\n' > $x/prog; chmod 755 $x/prog; \
         ln -s prog $x/link; done\n"
    );
    if !flags.is_empty() {
        s.push_str(&format!("mount -o remount,bind,{flags} {d}/sub\n"));
    }
    s
}

fn bind(v: &mut Value, dest: &str, src: &Path, opts: &[&str]) {
    let mut options = vec!["rbind"];
    options.extend_from_slice(opts);
    v["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": dest, "type": "bind", "source": src, "options": options}));
}

/// The per-mount options of the topmost mount at `point`.
fn mount_opts(mountinfo: &str, point: &str) -> Vec<String> {
    mountinfo
        .lines()
        .rev()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(4) == Some(&point)).then(|| f[5].split(',').map(String::from).collect())
        })
        .unwrap_or_else(|| panic!("nothing mounted on {point} in\n{mountinfo}"))
}

const PROBES: &str = "t() { if \"$@\" >/dev/null 2>&1; then echo yes; else echo no; fi; }
echo rro-sub-write=$(t touch /mnt/rro/sub/new)
echo rro-top-write=$(t touch /mnt/rro/new)
echo ro-sub-write=$(t touch /mnt/ro/sub/new)
echo rnoexec-sub-exec=$(t /mnt/rnoexec/sub/prog)
echo rnoexec-top-exec=$(t /mnt/rnoexec/prog)
echo rnosymfollow-sub=$(t cat /mnt/rnosymfollow/sub/link)
echo nosymfollow-top=$(t cat /mnt/nosymfollow/link)
echo nosymfollow-sub=$(t cat /mnt/nosymfollow/sub/link)
echo rrw-sub-write=$(t touch /mnt/undo/sub/new)
echo rexec-sub-exec=$(t /mnt/undo/sub/prog)
echo rsymfollow-sub=$(t cat /mnt/undo/sub/link)
echo ---
cat /proc/self/mountinfo";

#[test]
fn recursive_attributes_reach_the_submounts_of_a_bind() {
    let Some(env) = Env::root() else {
        return;
    };
    let before = host_mounts(env.tmp.path());
    // plain: a submount as the host would have it; flagged: one the r-negatives must undo.
    let plain = source(&env, "plain");
    let flagged = source(&env, "flagged");
    let setup = submount(&plain, "")
        + &submount(
            &flagged,
            "ro,nosuid,nodev,noexec,noatime,nodiratime,nosymfollow",
        );
    env.edit(|v| {
        bind(v, "/mnt/rro", &plain, &["rro"]);
        bind(v, "/mnt/ro", &plain, &["ro"]);
        bind(v, "/mnt/rnoexec", &plain, &["rnoexec"]);
        bind(v, "/mnt/rnosuid", &plain, &["rnosuid"]);
        bind(v, "/mnt/rnodev", &plain, &["rnodev"]);
        bind(v, "/mnt/rnoatime", &plain, &["rnoatime", "rnodiratime"]);
        bind(v, "/mnt/rstrictatime", &plain, &["rstrictatime"]);
        bind(v, "/mnt/rnosymfollow", &plain, &["rnosymfollow"]);
        bind(v, "/mnt/nosymfollow", &plain, &["nosymfollow"]);
        #[rustfmt::skip]
        bind(v, "/mnt/undo", &flagged, &["rrw", "rsuid", "rdev", "rexec", "ratime", "rdiratime", "rsymfollow"]);
        bind(v, "/mnt/rnorelatime", &flagged, &["rnorelatime"]);
        bind(v, "/mnt/rnostrictatime", &flagged, &["rnostrictatime"]);
        bind(v, "/mnt/rrelatime", &flagged, &["rrelatime"]);
    });
    let ran = run_from_own_mountns(&env, &unique_id(), "private", &setup, &["sh", "-c", PROBES]);
    let out = ran.ok();
    let (probes, mi) = out.split_once("---\n").expect("probe output");
    let got: std::collections::HashMap<&str, &str> =
        probes.lines().filter_map(|l| l.split_once('=')).collect();
    for (probe, want) in [
        // rro/rrw: the submount follows; plain ro leaves it writable (the old behaviour of rro).
        ("rro-sub-write", "no"),
        ("rro-top-write", "no"),
        ("ro-sub-write", "yes"),
        ("rrw-sub-write", "yes"),
        // rnoexec/rexec
        ("rnoexec-sub-exec", "no"),
        ("rnoexec-top-exec", "no"),
        ("rexec-sub-exec", "yes"),
        // rnosymfollow/rsymfollow, and nosymfollow for the mount alone
        ("rnosymfollow-sub", "no"),
        ("rsymfollow-sub", "yes"),
        ("nosymfollow-top", "no"),
        ("nosymfollow-sub", "yes"),
    ] {
        assert_eq!(got.get(probe), Some(&want), "{probe} in\n{probes}");
    }
    // The families the kernel only reports: rnosuid/rsuid, rnodev/rdev, the access times.
    let sub = |m: &str| mount_opts(mi, &format!("/mnt/{m}/sub"));
    let with = |m: &str, o: &str| sub(m).iter().any(|x| x == o);
    assert!(with("rnosuid", "nosuid"), "{:?}", sub("rnosuid"));
    assert!(with("rnodev", "nodev"), "{:?}", sub("rnodev"));
    assert!(with("rnoatime", "noatime"), "{:?}", sub("rnoatime"));
    assert!(with("rnoatime", "nodiratime"), "{:?}", sub("rnoatime"));
    let st = sub("rstrictatime");
    assert!(
        !st.iter().any(|o| o == "relatime" || o == "noatime"),
        "{st:?}"
    );
    let undone = sub("undo");
    for flag in [
        "ro",
        "nosuid",
        "nodev",
        "noexec",
        "noatime",
        "nodiratime",
        "nosymfollow",
    ] {
        assert!(!undone.iter().any(|o| o == flag), "{flag} kept: {undone:?}");
    }
    // The negative access-time options restore the kernel default, relatime (as runc).
    for m in ["undo", "rnorelatime", "rnostrictatime", "rrelatime"] {
        assert!(with(m, "relatime"), "{m}: {:?}", sub(m));
    }
    // Only the flagged source's submount was touched by its binds, never the source itself.
    assert!(with("rnorelatime", "ro"), "{:?}", sub("rnorelatime"));
    assert!(
        !mount_opts(mi, "/mnt/nosymfollow/sub").contains(&"nosymfollow".to_string()),
        "{mi}"
    );
    assert_host_untouched(&before, env.tmp.path());
}

#[test]
fn an_attribute_the_kernel_refuses_is_an_error_naming_the_mount() {
    if !require_root() {
        return;
    }
    // In a user namespace the flags of the caller's mounts are locked: rrw cannot clear the
    // read-only flag of the submount, and the mount must not be handed over writable-looking.
    let env = Env::new();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(env.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let before = host_mounts(env.tmp.path());
    let flagged = source(&env, "flagged");
    env.edit(|v| {
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        // An existing dir: the namespace's root may not create one in the host-owned rootfs.
        bind(v, "/home", &flagged, &["rrw"]);
    });
    let n = {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(env.bundle.join("config.json")).unwrap())
                .unwrap();
        v["mounts"].as_array().unwrap().len() - 1
    };
    let id = unique_id();
    let ran = run_from_own_mountns(&env, &id, "private", &submount(&flagged, "ro"), &["true"]);
    ran.fails_with(&format!("mounts[{n}].options: rrw on /home: mount_setattr"));
    assert_eq!(ran.stderr.trim().lines().count(), 1, "{}", ran.stderr);
    assert_nothing_left(&env, &id);
    assert_host_untouched(&before, env.tmp.path());
}
