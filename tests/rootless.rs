//! hull run by an unprivileged user: a user namespace mapping that user to root, state under
//! $XDG_RUNTIME_DIR/hull, no cgroup unless one is delegated, wider maps through newuidmap.

mod common;
use common::*;
use serde_json::json;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const USER: &str = "hull-rootless";

/// The test user's uid and gid, creating the user (with subordinate ids) on first use.
fn test_user() -> Option<(u32, u32)> {
    let lookup = || {
        let out = Command::new("id").args(["-u", USER]).output().ok()?;
        let uid: u32 = String::from_utf8(out.stdout).ok()?.trim().parse().ok()?;
        let out = Command::new("id").args(["-g", USER]).output().ok()?;
        let gid: u32 = String::from_utf8(out.stdout).ok()?.trim().parse().ok()?;
        Some((uid, gid))
    };
    if let Some(ids) = lookup() {
        return Some(ids);
    }
    // Several tests may race to create it; the loser's useradd fails and the lookup finds it.
    let _ = Command::new("useradd")
        .args(["--create-home", "--shell", "/bin/sh", USER])
        .status();
    lookup()
}

/// A bundle and runtime dir owned by the test user, with hull copied in (the repo's target dir
/// need not be reachable by that user).
struct Rootless {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    uid: u32,
    gid: u32,
}

impl Rootless {
    fn new() -> Option<Rootless> {
        if !require_root() {
            return None;
        }
        let Some((uid, gid)) = test_user() else {
            eprintln!("SKIP: could not create the user {USER}");
            return None;
        };
        let tmp = tempfile::Builder::new()
            .prefix("hull-rootless-")
            .tempdir()
            .unwrap();
        let dir = tmp.path().to_path_buf();
        std::fs::copy(HULL, dir.join("hull")).unwrap();
        let env = Env::new();
        let status = Command::new("cp")
            .arg("-a")
            .arg(&env.rootfs)
            .arg(dir.join("rootfs"))
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::create_dir_all(dir.join("run")).unwrap();
        let status = Command::new("chown")
            .args(["-R", &format!("{uid}:{gid}")])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success());
        Some(Rootless {
            _tmp: tmp,
            dir,
            uid,
            gid,
        })
    }

    fn hull(&self, args: &[&str]) -> Ran {
        let mut c = Command::new(self.dir.join("hull"));
        c.args(args)
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .env("HOME", &self.dir)
            .uid(self.uid)
            .gid(self.gid)
            .stdin(Stdio::null());
        capture(c)
    }

    /// `hull spec --rootless`, run as the user, then edited.
    fn spec(&self, edit: impl FnOnce(&mut serde_json::Value)) {
        let _ = std::fs::remove_file(self.dir.join("config.json"));
        self.hull(&["spec", "--rootless"]).ok();
        let path = self.dir.join("config.json");
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        v["process"]["terminal"] = json!(false);
        edit(&mut v);
        std::fs::write(&path, v.to_string()).unwrap();
    }

    fn state_root(&self) -> PathBuf {
        self.dir.join("run/hull")
    }
}

impl Drop for Rootless {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(self.state_root()) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.hull(&["delete", "--force", &id]);
            }
        }
    }
}

#[test]
fn an_unprivileged_user_runs_a_container_as_root_inside() {
    let Some(r) = Rootless::new() else { return };
    r.spec(|v| {
        v["process"]["args"] = json!([
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map; echo $$; grep CapEff /proc/self/status"
        ])
    });
    let out = r.hull(&["run", "-b", ".", "rl1"]).ok().to_string();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0");
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["0", &r.uid.to_string(), "1"]
    );
    assert_eq!(lines[2], "1");
    assert_eq!(lines[3], "CapEff:\t0000000020000420");
    // run deleted it; nothing was created outside the user's runtime dir.
    assert!(std::fs::read_dir(r.state_root()).unwrap().next().is_none());
    assert!(cgroup_dirs_for("rl1").is_empty());
}

#[test]
fn rootless_lifecycle_keeps_state_under_xdg_runtime_dir() {
    let Some(r) = Rootless::new() else { return };
    r.spec(|v| v["process"]["args"] = json!(["sleep", "100"]));
    r.hull(&["create", "-b", ".", "rl2"]).ok();
    assert!(r.state_root().join("rl2/state.json").exists());
    let st: serde_json::Value = serde_json::from_str(r.hull(&["state", "rl2"]).ok()).unwrap();
    assert_eq!(st["status"], "created");
    let pid = st["pid"].as_i64().unwrap();
    // On the host the init runs as the user, not as root.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().nth(1),
        Some(r.uid.to_string().as_str())
    );
    r.hull(&["start", "rl2"]).ok();
    r.hull(&["kill", "rl2", "KILL"]).ok();
    r.hull(&["delete", "--force", "rl2"]).ok();
    assert!(!r.state_root().join("rl2").exists());
}

#[test]
fn rootless_limits_without_a_delegated_cgroup_fail_clearly() {
    let Some(r) = Rootless::new() else { return };
    r.spec(|v| v["linux"]["resources"] = json!({"memory": {"limit": 67108864}}));
    r.hull(&["run", "-b", ".", "rl3"]).fails_with("rootless");
    assert!(!r.state_root().join("rl3").exists());
}

#[test]
fn rootless_maps_subordinate_ids_through_newuidmap() {
    let Some(r) = Rootless::new() else { return };
    if !Path::new("/usr/bin/newuidmap").exists() {
        eprintln!("SKIP: newuidmap (package uidmap) is not installed");
        return;
    }
    let sub = std::fs::read_to_string("/etc/subuid").unwrap_or_default();
    let Some(start) = sub.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next() == Some(USER))
            .then(|| f.next().and_then(|s| s.parse::<u32>().ok()))
            .flatten()
    }) else {
        eprintln!("SKIP: {USER} has no /etc/subuid range");
        return;
    };
    let subg = std::fs::read_to_string("/etc/subgid").unwrap_or_default();
    let gstart = subg
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some(USER))
                .then(|| f.next().and_then(|s| s.parse::<u32>().ok()))
                .flatten()
        })
        .unwrap_or(start);
    r.spec(|v| {
        v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": r.uid, "size": 1}, {"containerID": 1, "hostID": start, "size": 1000}]);
        v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": r.gid, "size": 1}, {"containerID": 1, "hostID": gstart, "size": 1000}]);
        v["process"]["args"] = json!(["sh", "-c", "cat /proc/self/uid_map | wc -l; touch /tmp/f && chown 5:5 /tmp/f && stat -c %u /tmp/f"]);
        v["root"]["readonly"] = json!(false);
        let caps = json!(["CAP_CHOWN"]);
        v["process"]["capabilities"] = json!({"bounding": caps, "effective": caps, "permitted": caps});
    });
    let out = r.hull(&["run", "-b", ".", "rl4"]).ok().to_string();
    assert_eq!(out, "2\n5\n");
    // Owned on the host by the subordinate id that container uid 5 maps to.
    let meta = std::fs::metadata(r.dir.join("rootfs/tmp/f")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.uid(), start + 4);
}

/// issue 15.8 without a cgroup: a create that died before writing its state leaves the init
/// waiting for start; the intent record names it, so `delete --force` still finds it.
#[test]
fn delete_force_finds_the_init_of_a_dead_create_without_a_cgroup() {
    let Some(r) = Rootless::new() else { return };
    r.spec(|v| v["process"]["args"] = json!(["sleep", "1000"]));
    let id = "rl-remnant";
    r.hull(&["create", "-b", ".", id]).ok();
    let st: serde_json::Value = serde_json::from_str(r.hull(&["state", id]).ok()).unwrap();
    let pid = st["pid"].as_i64().unwrap();
    std::fs::remove_file(r.state_root().join(id).join("state.json")).unwrap();
    r.hull(&["delete", id]).fails_with("processes still run");
    r.hull(&["delete", "--force", id]).ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| !s.contains(") Z") && !s.contains(") X"))
    };
    while alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!alive(), "init {pid} survived");
    assert!(!r.state_root().join(id).exists());
}
