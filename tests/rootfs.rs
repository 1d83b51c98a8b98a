//! The container's filesystem as seen from inside: config mounts with their flags and
//! propagation, /dev, pivot_root, read-only root, masked and read-only paths, sysctls,
//! oom_score_adj.

mod common;
use common::*;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;

fn add_mount(v: &mut Value, m: Value) {
    v["mounts"].as_array_mut().unwrap().push(m);
}

/// One parsed /proc/self/mountinfo line.
struct MountLine {
    mount_point: String,
    options: Vec<String>,
    optional: Vec<String>,
    fstype: String,
    super_options: Vec<String>,
}

fn mountinfo(text: &str) -> Vec<MountLine> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (pre, post) = l
                .split_once(" - ")
                .unwrap_or_else(|| panic!("bad mountinfo line {l:?}"));
            let f: Vec<&str> = pre.split_whitespace().collect();
            let p: Vec<&str> = post.split_whitespace().collect();
            MountLine {
                mount_point: f[4].to_string(),
                options: f[5].split(',').map(String::from).collect(),
                optional: f[6..].iter().map(|s| s.to_string()).collect(),
                fstype: p[0].to_string(),
                super_options: p
                    .get(2)
                    .map(|s| s.split(',').map(String::from).collect())
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// The topmost mount at `point`.
fn mount_at<'a>(mounts: &'a [MountLine], point: &str) -> &'a MountLine {
    mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == point)
        .unwrap_or_else(|| panic!("nothing mounted on {point}"))
}

/// Makes a host dir holding one file, readable from the container.
fn host_dir(env: &Env, name: &str) -> std::path::PathBuf {
    let d = env.tmp.path().join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("hello"), "from-host\n").unwrap();
    d
}

#[test]
fn bind_mounts_of_dirs_and_files_with_flags() {
    let Some(env) = Env::root() else {
        return;
    };
    let dir = host_dir(&env, "hostdir");
    let file = env.tmp.path().join("hostfile");
    std::fs::write(&file, "file-content\n").unwrap();
    env.edit(|v| {
        add_mount(v, json!({"destination": "/mnt/dir", "type": "bind", "source": dir,
            "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]}));
        add_mount(v, json!({"destination": "/mnt/rw", "type": "none", "source": dir, "options": ["bind"]}));
        add_mount(v, json!({"destination": "/etc/injected", "type": "bind", "source": file, "options": ["bind", "ro"]}));
    });
    let out = env.sh(
        "cat /mnt/dir/hello /etc/injected; touch /mnt/dir/x 2>/dev/null && echo dir-writable; \
         echo written > /mnt/rw/new && echo rw-ok; echo x > /etc/injected 2>/dev/null && echo file-writable; \
         echo ---; cat /proc/self/mountinfo",
    );
    let (head, mi) = out.split_once("---\n").unwrap();
    assert_eq!(head, "from-host\nfile-content\nrw-ok\n");
    assert_eq!(
        std::fs::read_to_string(dir.join("new")).unwrap(),
        "written\n"
    );
    let mounts = mountinfo(mi);
    let d = mount_at(&mounts, "/mnt/dir");
    for flag in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(
            d.options.contains(&flag.to_string()),
            "{flag} missing: {:?}",
            d.options
        );
    }
    let rw = mount_at(&mounts, "/mnt/rw");
    assert!(
        rw.options.contains(&"rw".to_string()) && !rw.options.contains(&"noexec".to_string()),
        "{:?}",
        rw.options
    );
    assert!(mount_at(&mounts, "/etc/injected")
        .options
        .contains(&"ro".to_string()));
}

#[test]
fn rbind_carries_submounts_and_bind_does_not() {
    if !require_root() {
        return;
    }
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    if !mountinfo(&host).iter().any(|m| m.mount_point == "/dev/pts") {
        eprintln!("SKIP: host /dev has no /dev/pts submount to carry");
        return;
    }
    let env = Env::new();
    env.edit(|v| {
        add_mount(v, json!({"destination": "/mnt/rdev", "type": "bind", "source": "/dev", "options": ["rbind", "nosuid"]}));
        add_mount(v, json!({"destination": "/mnt/bdev", "type": "bind", "source": "/dev", "options": ["bind", "nosuid"]}));
    });
    let mounts = mountinfo(&env.sh("cat /proc/self/mountinfo"));
    assert!(mounts.iter().any(|m| m.mount_point == "/mnt/rdev/pts"));
    assert!(!mounts.iter().any(|m| m.mount_point == "/mnt/bdev/pts"));
    assert_eq!(mount_at(&mounts, "/mnt/bdev").fstype, "devtmpfs");
}

#[test]
fn per_mount_propagation_shows_in_mountinfo() {
    let Some(env) = Env::root() else {
        return;
    };
    let dir = host_dir(&env, "prop");
    // A host mount that is shared gives a slave something to follow.
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let shared_src = mountinfo(&host)
        .into_iter()
        .find(|m| {
            m.optional.iter().any(|o| o.starts_with("shared:"))
                && std::path::Path::new(&m.mount_point).is_dir()
        })
        .map(|m| m.mount_point);
    env.edit(|v| {
        add_mount(v, json!({"destination": "/mnt/shared", "type": "bind", "source": dir, "options": ["bind", "shared"]}));
        add_mount(v, json!({"destination": "/mnt/private", "type": "bind", "source": dir, "options": ["bind", "private"]}));
        if let Some(src) = &shared_src {
            add_mount(v, json!({"destination": "/mnt/slave", "type": "bind", "source": src, "options": ["rbind", "rslave"]}));
        }
        add_mount(v, json!({"destination": "/mnt/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["shared"]}));
    });
    let mounts = mountinfo(&env.sh("cat /proc/self/mountinfo"));
    let opt = |p: &str| mount_at(&mounts, p).optional.clone();
    assert!(
        opt("/mnt/shared").iter().any(|o| o.starts_with("shared:")),
        "{:?}",
        opt("/mnt/shared")
    );
    assert!(opt("/mnt/private").is_empty(), "{:?}", opt("/mnt/private"));
    assert!(
        opt("/mnt/tmp").iter().any(|o| o.starts_with("shared:")),
        "{:?}",
        opt("/mnt/tmp")
    );
    match shared_src {
        Some(_) => {
            let s = opt("/mnt/slave");
            assert!(
                s.iter().any(|o| o.starts_with("master:"))
                    && !s.iter().any(|o| o.starts_with("shared:")),
                "{s:?}"
            );
        }
        None => eprintln!("SKIP (slave part): no shared host mount to follow"),
    }
}

#[test]
fn tmpfs_size_and_mode_and_special_filesystems() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|v| {
        add_mount(
            v,
            json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "size=1m", "mode=1770"]}),
        );
    });
    let out = env.sh("stat -c %a /scratch; echo ---; cat /proc/self/mountinfo");
    let (mode, mi) = out.split_once("---\n").unwrap();
    assert_eq!(mode.trim(), "1770");
    let mounts = mountinfo(mi);
    let t = mount_at(&mounts, "/scratch");
    assert_eq!(t.fstype, "tmpfs");
    assert!(
        t.super_options.contains(&"size=1024k".to_string()),
        "{:?}",
        t.super_options
    );
    assert!(t.options.contains(&"nosuid".to_string()));
    for (point, fstype) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev/pts", "devpts"),
        ("/dev/mqueue", "mqueue"),
        ("/dev", "tmpfs"),
        ("/dev/shm", "tmpfs"),
    ] {
        assert_eq!(mount_at(&mounts, point).fstype, fstype, "{point}");
    }
    assert!(mount_at(&mounts, "/sys")
        .options
        .contains(&"ro".to_string()));
    // cgroup: a tmpfs of hierarchies on v1, cgroup2 on a unified host.
    let cg: Vec<&MountLine> = mounts
        .iter()
        .filter(|m| m.mount_point.starts_with("/sys/fs/cgroup"))
        .collect();
    assert!(
        cg.iter()
            .any(|m| m.fstype == "cgroup" || m.fstype == "cgroup2"),
        "no cgroup mount"
    );
    for m in &cg {
        assert!(
            m.options.contains(&"ro".to_string()),
            "{} is not ro: {:?}",
            m.mount_point,
            m.options
        );
    }
}

#[test]
fn dev_has_default_devices_and_links() {
    let Some(env) = Env::root() else {
        return;
    };
    let out = env.sh(
        "for d in null zero full random urandom tty; do stat -c '%n %F %t:%T %a' /dev/$d; done; \
         for l in fd stdin stdout stderr ptmx; do readlink /dev/$l; done; stat -c %F /dev/pts/ptmx; \
         head -c 4 /dev/zero | wc -c; echo x > /dev/null && echo null-ok",
    );
    let expect = "/dev/null character special file 1:3 666\n\
                  /dev/zero character special file 1:5 666\n\
                  /dev/full character special file 1:7 666\n\
                  /dev/random character special file 1:8 666\n\
                  /dev/urandom character special file 1:9 666\n\
                  /dev/tty character special file 5:0 666\n\
                  /proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\npts/ptmx\n\
                  character special file\n4\nnull-ok\n";
    assert_eq!(out, expect);
}

#[test]
fn linux_devices_are_created_with_mode_and_owner() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|v| {
        v["linux"]["devices"] = json!([
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600, "uid": 0, "gid": 0},
            {"path": "/dev/sub/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 1000, "gid": 1001},
            {"path": "/dev/mypipe", "type": "p", "major": 0, "minor": 0, "fileMode": 0o620}
        ]);
    });
    let out =
        env.sh("for d in fuse sub/mynull mypipe; do stat -c '%n %F %t:%T %a %u %g' /dev/$d; done");
    assert_eq!(
        out,
        "/dev/fuse character special file a:e5 600 0 0\n\
         /dev/sub/mynull character special file 1:3 640 1000 1001\n\
         /dev/mypipe fifo 0:0 620 0 0\n"
    );
}

#[test]
fn pivot_root_hides_host_mounts_and_no_pivot_runs() {
    let Some(env) = Env::root() else {
        return;
    };
    let mounts = mountinfo(&env.sh("cat /proc/self/mountinfo"));
    for m in &mounts {
        let p = &m.mount_point;
        assert!(
            p == "/"
                || ["/proc", "/dev", "/sys"]
                    .iter()
                    .any(|top| p == top || p.starts_with(&format!("{top}/"))),
            "host mount visible: {p}"
        );
    }
    let root = mount_at(&mounts, "/");
    assert!(!root.options.is_empty());
    env.set_args(&[
        "sh",
        "-c",
        "cat /etc/hostname 2>/dev/null; ls /; echo pivot=$$",
    ]);
    let r = env.hull(&[
        "run",
        "--no-pivot",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &unique_id(),
    ]);
    let out = r.ok();
    assert!(out.contains("pivot=1") && out.contains("bin"), "{out}");
    assert!(!out.contains("work\n"), "{out}");
}

#[test]
fn readonly_root() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|v| v["root"]["readonly"] = json!(true));
    let out = env.sh("touch /newfile 2>/dev/null && echo touched; touch /dev/shm/ok && echo shm-ok; cat /proc/self/mountinfo");
    assert!(!out.contains("touched"), "{out}");
    assert!(out.contains("shm-ok"));
    let mi: String = out
        .lines()
        .filter(|l| l.contains(" - "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(mount_at(&mountinfo(&mi), "/")
        .options
        .contains(&"ro".to_string()));
    assert!(!env.rootfs.join("newfile").exists());
}

#[test]
fn masked_and_readonly_paths() {
    let Some(env) = Env::root() else {
        return;
    };
    std::fs::write(env.rootfs.join("etc/secret"), "top secret\n").unwrap();
    std::fs::create_dir_all(env.rootfs.join("etc/secretdir")).unwrap();
    std::fs::write(env.rootfs.join("etc/secretdir/key"), "k").unwrap();
    std::fs::create_dir_all(env.rootfs.join("data")).unwrap();
    env.edit(|v| {
        v["linux"]["maskedPaths"].as_array_mut().unwrap().extend([
            json!("/etc/secret"),
            json!("/etc/secretdir"),
            json!("/does/not/exist"),
        ]);
        v["linux"]["readonlyPaths"]
            .as_array_mut()
            .unwrap()
            .push(json!("/data"));
    });
    let out = env.sh(
        "echo \"secret=[$(cat /etc/secret)]\"; echo \"dir=[$(ls -A /etc/secretdir)]\"; echo keys=$(wc -c < /proc/keys); \
         echo \"fw=[$(ls -A /sys/firmware)]\"; touch /data/x 2>/dev/null && echo data-writable; \
         echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo procsys-writable; echo done",
    );
    assert_eq!(out, "secret=[]\ndir=[]\nkeys=0\nfw=[]\ndone\n");
}

#[test]
fn sysctls_are_written_in_the_container() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|v| {
        v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"});
    });
    let host_fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let out = env.sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced");
    assert_eq!(out, "1\n1\n");
    // Per-namespace values: the host's stay as they were.
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );
}

#[test]
fn rootfs_propagation_applies_to_root() {
    if !require_root() {
        return;
    }
    for (prop, want) in [
        ("private", None),
        ("shared", Some("shared:")),
        ("rslave", None),
    ] {
        let env = Env::new();
        env.edit(|v| v["linux"]["rootfsPropagation"] = json!(prop));
        let mounts = mountinfo(&env.sh("cat /proc/self/mountinfo"));
        let root = mount_at(&mounts, "/");
        match want {
            Some(w) => assert!(
                root.optional.iter().any(|o| o.starts_with(w)),
                "{prop}: {:?}",
                root.optional
            ),
            None => assert!(
                !root.optional.iter().any(|o| o.starts_with("shared:")),
                "{prop}: {:?}",
                root.optional
            ),
        }
    }
    let env = Env::new();
    env.edit(|v| v["linux"]["rootfsPropagation"] = json!("sideways"));
    env.hull(&[
        "run",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &unique_id(),
    ])
    .fails_with("linux.rootfsPropagation");
    assert!(env.ids().is_empty());
}

#[test]
fn oom_score_adj_is_set() {
    let Some(env) = Env::root() else {
        return;
    };
    let current: i32 = std::fs::read_to_string("/proc/self/oom_score_adj")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let want = (current + 100).min(1000);
    env.edit(|v| v["process"]["oomScoreAdj"] = json!(want));
    assert_eq!(
        env.sh("cat /proc/self/oom_score_adj").trim(),
        want.to_string()
    );
}

#[test]
fn mount_dir_permissions_survive() {
    if !require_root() {
        return;
    }
    // A bind of a 0700 host dir still works for root in the container.
    let env = Env::new();
    let dir = host_dir(&env, "private700");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    env.edit(|v| {
        add_mount(
            v,
            json!({"destination": "/p", "type": "bind", "source": dir, "options": ["bind"]}),
        )
    });
    assert_eq!(env.sh("stat -c %a /p; cat /p/hello"), "700\nfrom-host\n");
}

#[test]
fn sysctls_outside_the_container_namespaces_are_refused() {
    if !require_root() {
        return;
    }
    let host = |p: &str| std::fs::read_to_string(p).unwrap().trim().to_string();
    // Each value is the host's own, so even a runtime that wrongly wrote it changes nothing.
    let swappiness = host("/proc/sys/vm/swappiness");
    let fwd = host("/proc/sys/net/ipv4/ip_forward");
    let shm = host("/proc/sys/kernel/shm_rmid_forced");
    type Edit<'a> = Box<dyn Fn(&mut Value) + 'a>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|v: &mut Value| v["linux"]["sysctl"] = json!({"vm.swappiness": swappiness})),
            "not in a separate kernel namespace",
        ),
        (
            Box::new(|v: &mut Value| {
                v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": fwd});
                v["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|n| n["type"] != "network");
            }),
            "host's network namespace",
        ),
        (
            Box::new(|v: &mut Value| {
                v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": fwd});
                for n in v["linux"]["namespaces"].as_array_mut().unwrap() {
                    if n["type"] == "network" {
                        n["path"] = json!("/proc/1/ns/net");
                    }
                }
            }),
            "host's network namespace",
        ),
        (
            Box::new(|v: &mut Value| {
                v["linux"]["sysctl"] = json!({"kernel.shm_rmid_forced": shm});
                v["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|n| n["type"] != "ipc");
            }),
            "host's ipc namespace",
        ),
        (
            Box::new(|v: &mut Value| v["linux"]["sysctl"] = json!({"kernel.hostname": "x"})),
            "hostname",
        ),
    ];
    let same_netns_as_pid1 =
        std::fs::read_link("/proc/1/ns/net").ok() == std::fs::read_link("/proc/self/ns/net").ok();
    for (i, (edit, needle)) in cases.iter().enumerate() {
        if i == 2 && !same_netns_as_pid1 {
            eprintln!("SKIP (case 2): this test does not run in pid 1's network namespace");
            continue;
        }
        let env = Env::new();
        env.edit(|v| edit(v));
        let id = unique_id();
        let r = env.hull(&["run", "--bundle", env.bundle.to_str().unwrap(), &id]);
        r.fails_with("linux.sysctl");
        r.fails_with(needle);
        assert!(env.ids().is_empty());
        assert!(cgroup_dirs_for(&id).is_empty());
    }
    assert_eq!(host("/proc/sys/vm/swappiness"), swappiness);
    // kernel.domainname is namespaced with uts.
    let env = Env::new();
    env.edit(|v| v["linux"]["sysctl"] = json!({"kernel.domainname": "sysctl.example"}));
    assert_eq!(
        env.sh("cat /proc/sys/kernel/domainname"),
        "sysctl.example\n"
    );
}

#[test]
fn mount_through_an_absolute_symlink_stays_in_the_rootfs() {
    let Some(env) = Env::root() else {
        return;
    };
    // Inside the container /etc/link means /mnt/target; on the host it would mean the host's.
    std::fs::create_dir_all(env.rootfs.join("mnt/target")).unwrap();
    std::os::unix::fs::symlink("/mnt/target", env.rootfs.join("etc/link")).unwrap();
    env.edit(|v| add_mount(v, json!({"destination": "/etc/link", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]})));
    let mounts = mountinfo(&env.sh("cat /proc/self/mountinfo"));
    assert_eq!(mount_at(&mounts, "/mnt/target").fstype, "tmpfs");
    let host = mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap());
    assert!(!host.iter().any(|m| m.mount_point == "/mnt/target"));
}

#[test]
fn idmapped_bind_mount_shows_files_under_the_mapped_owner() {
    let Some(env) = Env::root() else {
        return;
    };
    let host = env.tmp.path().join("shared");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("owned-by-root"), "x").unwrap();
    std::os::unix::fs::chown(host.join("owned-by-root"), Some(0), Some(0)).unwrap();
    env.edit(|v| {
        v["mounts"].as_array_mut().unwrap().push(serde_json::json!({
            "destination": "/mnt/shared", "type": "bind", "source": host, "options": ["rbind", "ro"],
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 1}]
        }));
    });
    // On-disk uid/gid 0 appear as 1000/2000 through the mount; the mount is read-only.
    let out = env.sh("stat -c '%u %g' /mnt/shared/owned-by-root; grep ' /mnt/shared ' /proc/self/mountinfo | grep -c idmapped; touch /mnt/shared/new 2>/dev/null || echo ro");
    assert_eq!(out, "1000 2000\n1\nro\n");
    // On the host the file is untouched.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(host.join("owned-by-root")).unwrap().uid(),
        0
    );
}

#[test]
fn idmapped_mount_errors_name_the_field() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|v| {
        v["mounts"].as_array_mut().unwrap().push(serde_json::json!({
            "destination": "/mnt/x", "type": "tmpfs", "source": "tmpfs",
            "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
            "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]
        }));
    });
    let r = env.run(&["true"]);
    r.fails_with("only bind mounts can be idmapped");
    assert!(env.ids().is_empty());
}
