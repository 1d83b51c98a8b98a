//! Hostile rootfs paths: symlink swaps, absolute and .. symlinks, procfs, /dev/null, /dev/console and /proc writes redirected.

use super::*;

// ---- CVE-2021-30465: a mount destination swapped for a symlink during setup ----

#[test]
fn cve_2021_30465_racing_symlink_swap_cannot_mount_on_the_host() {
    if !require_root() {
        return;
    }
    let host = HostDir::new("30465");
    let src = HostDir::new("30465src");
    let env = Env::new();
    env.edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        for i in 0..4 {
            m.push(json!({"destination": format!("/race/d{i}"), "type": "tmpfs", "source": "tmpfs"}));
            m.push(json!({"destination": format!("/race/b{i}"), "type": "bind", "source": src.path(), "options": ["rbind"]}));
        }
    });
    let race = env.rootfs.join("race");
    let link_abs = env.rootfs.join("race.abs");
    let link_up = env.rootfs.join("race.up");
    std::fs::create_dir(&race).unwrap();
    symlink(host.path(), &link_abs).unwrap();
    symlink(
        format!("../../../../../../../..{}", host.path().display()),
        &link_up,
    )
    .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, race, link_abs, link_up) = (
            stop.clone(),
            race.clone(),
            link_abs.clone(),
            link_up.clone(),
        );
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // renameat2(RENAME_EXCHANGE) swaps the directory and a symlink atomically.
                let other = if n.is_multiple_of(2) {
                    &link_abs
                } else {
                    &link_up
                };
                let a = std::ffi::CString::new(race.as_os_str().as_encoded_bytes()).unwrap();
                let b = std::ffi::CString::new(other.as_os_str().as_encoded_bytes()).unwrap();
                // SAFETY: plain syscall with valid C strings.
                unsafe {
                    libc::renameat2(
                        libc::AT_FDCWD,
                        a.as_ptr(),
                        libc::AT_FDCWD,
                        b.as_ptr(),
                        libc::RENAME_EXCHANGE,
                    )
                };
                n += 1;
                std::thread::yield_now();
            }
        })
    };
    let (mut ok, mut refused) = (0, 0);
    for _ in 0..20 {
        let r = env.run(&["true"]);
        if r.code == 0 {
            ok += 1;
        } else {
            refused += 1;
        }
        host.assert_untouched();
        assert!(env.ids().is_empty());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    swapper.join().unwrap();
    eprintln!("race runs: {ok} ran, {refused} refused");
    host.assert_untouched();
    src.assert_untouched();
}

// ---- absolute and `..` symlinks in every path hull resolves in the rootfs ----

#[test]
fn symlinks_in_mount_destinations_stay_inside_or_are_refused() {
    if !require_root() {
        return;
    }
    let host = HostDir::new("dest");
    let env = Env::new();
    let inside = env.rootfs.join(host.path().strip_prefix("/").unwrap());
    std::fs::create_dir_all(&inside).unwrap();
    symlink(host.path(), env.rootfs.join("abs")).unwrap();
    symlink(
        format!("../../../../../../..{}", host.path().display()),
        env.rootfs.join("up"),
    )
    .unwrap();
    env.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/abs/sub", "type": "tmpfs", "source": "tmpfs"}));
    });
    let out = env.sh("grep -c ' /tmp/hull-host-dest' /proc/self/mountinfo || true");
    assert_eq!(
        out.trim(),
        "1",
        "the mount lands at the symlink's target inside the rootfs"
    );
    assert!(inside.join("sub").is_dir());
    host.assert_untouched();
    // A `..` link climbing out of the rootfs is refused outright, naming the mount.
    env.edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.pop();
        m.push(json!({"destination": "/up/sub", "type": "tmpfs", "source": "tmpfs"}));
    });
    let r = env.run(&["true"]);
    r.fails_with("a symlink on the way points outside the rootfs");
    assert!(
        r.stderr.contains("mounts[7].destination") && r.stderr.contains("/up/sub"),
        "{}",
        r.stderr
    );
    host.assert_untouched();
    // An absolute link to a path missing inside fails rather than creating it on the host.
    std::fs::remove_dir_all(&inside).unwrap();
    env.edit(|c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.pop();
        m.push(json!({"destination": "/abs/sub", "type": "tmpfs", "source": "tmpfs"}));
    });
    env.run(&["true"]).fails_with("/abs/sub");
    host.assert_untouched();
    assert!(env.ids().is_empty());
}

#[test]
fn symlinks_in_cwd_stay_inside() {
    if !require_root() {
        return;
    }
    let host = HostDir::new("cwd");
    let env = Env::new();
    writable(&env);
    symlink(host.path(), env.rootfs.join("abs")).unwrap();
    symlink(
        format!("../../../../../../..{}", host.path().display()),
        env.rootfs.join("up"),
    )
    .unwrap();
    for link in ["/abs", "/up", "/abs/new/deeper", "/up/new2"] {
        env.edit(|c| c["process"]["cwd"] = json!(link));
        let r = env.run(&["sh", "-c", "ls; cat ../../../../../../etc/hostname"]);
        if r.code == 0 {
            assert!(
                !r.stdout.contains("marker"),
                "{link}: cwd is the host dir: {}",
                r.stdout
            );
            assert!(r.stdout.ends_with("hull\n"), "{link}: {}", r.stdout);
        } else {
            assert!(r.stderr.contains("process.cwd"), "{link}: {}", r.stderr);
        }
        host.assert_untouched();
    }
}

#[test]
fn symlinks_in_device_paths_stay_inside() {
    if !require_root() {
        return;
    }
    let host = HostDir::new("dev");
    let env = Env::new();
    writable(&env);
    without_dev_tmpfs(&env, true);
    // The same path exists inside the rootfs: following the links must land there.
    let inside = env.rootfs.join(host.path().strip_prefix("/").unwrap());
    std::fs::create_dir_all(&inside).unwrap();
    symlink(host.path(), env.rootfs.join("dev/abs")).unwrap();
    symlink(
        format!("../../../../../../..{}", host.path().display()),
        env.rootfs.join("dev/up"),
    )
    .unwrap();
    env.edit(|c| {
        let d = c["linux"]["devices"].as_array_mut().unwrap();
        d.push(json!({"path": "/dev/abs/null1", "type": "c", "major": 1, "minor": 3}));
        d.push(json!({"path": "/dev/up/null2", "type": "c", "major": 1, "minor": 3}));
    });
    env.run(&["true"]).ok();
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(inside.join("null1"))
        .unwrap()
        .file_type()
        .is_char_device());
    assert!(std::fs::symlink_metadata(inside.join("null2"))
        .unwrap()
        .file_type()
        .is_char_device());
    host.assert_untouched();
    // A link to a directory missing inside fails rather than creating anything anywhere.
    std::fs::remove_dir_all(&inside).unwrap();
    assert_ne!(env.run(&["true"]).code, 0);
    assert!(!inside.exists());
    host.assert_untouched();
    assert!(env.ids().is_empty());
}

#[test]
fn symlinks_in_masked_and_readonly_paths_stay_inside() {
    if !require_root() {
        return;
    }
    let host = HostDir::new("mask");
    let env = Env::new();
    writable(&env);
    std::fs::write(env.rootfs.join("etc/secret"), "inside\n").unwrap();
    symlink("/etc/secret", env.rootfs.join("masklink")).unwrap();
    symlink(
        format!("../../../../../../..{}", host.path().display()),
        env.rootfs.join("rolink"),
    )
    .unwrap();
    symlink(
        format!("{}/marker", host.path().display()),
        env.rootfs.join("mask-host"),
    )
    .unwrap();
    env.edit(|c| {
        c["linux"]["maskedPaths"] = json!(["/masklink", "/mask-host"]);
        c["linux"]["readonlyPaths"] = json!(["/rolink"]);
    });
    let out = env.sh("cat /etc/secret; echo rc=$?");
    // The absolute link is followed inside the container: its own /etc/secret is masked.
    assert_eq!(out, "rc=0\n");
    host.assert_untouched();
    assert_eq!(
        std::fs::read_to_string(env.rootfs.join("etc/secret")).unwrap(),
        "inside\n"
    );
}

// ---- CVE-2019-16884 / CVE-2023-27561: procfs replaced by a volume or a symlink ----

#[test]
fn cve_2019_16884_proc_symlink_in_rootfs_is_safe() {
    if !require_root() {
        return;
    }
    let host = HostDir::new("proc");
    let env = Env::new();
    std::fs::remove_dir(env.rootfs.join("proc")).unwrap();
    symlink(host.path(), env.rootfs.join("proc")).unwrap();
    env.edit(|c| c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"}));
    let r = env.run(&[
        "sh",
        "-c",
        "stat -f -c %T /proc/self/; cat /proc/sys/net/ipv4/ip_forward",
    ]);
    if r.code == 0 {
        assert_eq!(r.stdout, "proc\n1\n");
    } else {
        assert!(r.stderr.contains("proc"), "{}", r.stderr);
    }
    host.assert_untouched();
    assert!(env.ids().is_empty());
}

#[test]
fn cve_2023_27561_volume_over_proc_cannot_receive_runtime_writes() {
    if !require_root() {
        return;
    }
    let fake = HostDir::new("fakeproc");
    std::fs::create_dir_all(fake.path().join("sys/net/ipv4")).unwrap();
    std::fs::write(fake.path().join("sys/net/ipv4/ip_forward"), "host\n").unwrap();
    let env = Env::new();
    env.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({"destination": "/proc", "type": "bind", "source": fake.path(), "options": ["rbind"]}));
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    });
    env.run(&["true"]).fails_with("is not on procfs");
    assert!(env.ids().is_empty());
    assert_eq!(
        std::fs::read_to_string(fake.path().join("sys/net/ipv4/ip_forward")).unwrap(),
        "host\n"
    );
    assert!(host_mounts_mention(fake.path()).is_empty());
}

// ---- CVE-2025-31133: the /dev/null used for masking replaced ----

#[test]
fn cve_2025_31133_dev_null_symlink_is_not_bound_over_masked_paths() {
    if !require_root() {
        return;
    }
    let host = HostDir::new("31133");
    let core_pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    // Variant 1: the image ships /dev/null as a symlink (no /dev tmpfs hides it).
    for target in [
        "/proc/sys/kernel/core_pattern".to_string(),
        format!("{}/marker", host.path().display()),
    ] {
        let env = Env::new();
        without_dev_tmpfs(&env, false);
        let _ = std::fs::remove_file(env.rootfs.join("dev/null"));
        symlink(&target, env.rootfs.join("dev/null")).unwrap();
        env.edit(|c| c["linux"]["maskedPaths"] = json!(["/etc/hostname"]));
        // hull makes the default devices as runc does, replacing the planted symlink with the
        // real null device before masking; refusing would be safe too. Either way the masked
        // file reads empty and the symlink's target is never bound.
        let r = env.run(&["sh", "-c", "ls -l /dev/null; cat /etc/hostname"]);
        if r.code == 0 {
            assert!(r.stdout.starts_with("crw"), "{}", r.stdout);
            assert_eq!(
                r.stdout.lines().count(),
                1,
                "masked file not empty: {}",
                r.stdout
            );
        } else {
            r.fails_with("/dev/null in the container is not the null device");
        }
        assert!(env.ids().is_empty());
    }
    // Variant 2: a config mount puts a host file at /dev/null.
    let env = Env::new();
    env.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/dev/null", "type": "bind",
            "source": host.path().join("marker"), "options": ["bind"]}));
        c["linux"]["maskedPaths"] = json!(["/etc/hostname"]);
    });
    // Refused, whichever check sees it first: the device creation (a mount point is in the way
    // of mknod) or the masking.
    let r = env.run(&["true"]);
    r.fails_with("/dev/null");
    assert!(env.ids().is_empty());
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
        core_pattern
    );
    host.assert_untouched();
}

// ---- CVE-2025-52565: /dev/console redirected ----

/// Runs the bundle with terminal: true and a console socket, returning the result and the
/// contents the container wrote to /result.
fn run_with_console(env: &Env, script: &str) -> (Ran, String) {
    writable(env);
    env.edit(|c| c["process"]["terminal"] = json!(true));
    env.set_args(&["sh", "-c", &format!("({script}) > /result 2>&1")]);
    let sock = env.tmp.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let keeper = std::thread::spawn(move || {
        // Hold the master until the run ends so the container's writes to the pty never block.
        let (conn, _) = listener.accept().ok()?;
        let master = hull::runtime::console::recv_fd(&conn).ok()?;
        let mut f = std::fs::File::from(master);
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut f, &mut sink);
        Some(())
    });
    let r = env.hull(&[
        "run",
        "--console-socket",
        sock.to_str().unwrap(),
        "--bundle",
        env.bundle.to_str().unwrap(),
        &unique_id(),
    ]);
    if r.code != 0 {
        // Nobody will connect: unblock the accept.
        let _ = std::os::unix::net::UnixStream::connect(&sock);
    }
    let _ = keeper.join();
    let result = std::fs::read_to_string(env.rootfs.join("result")).unwrap_or_default();
    (r, result)
}

/// The host side of CVE-2025-52565: hull binds the pty slave through its own fd (the source
/// cannot be redirected), and whatever /dev/console links to, nothing outside the rootfs is
/// created, changed or mounted on.
#[test]
fn cve_2025_52565_console_symlink_cannot_reach_the_host() {
    if !require_root() {
        return;
    }
    let host = HostDir::new("52565");
    let core_pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    for target in [
        format!("{}/marker", host.path().display()),
        format!("../../../../../../..{}/marker", host.path().display()),
        "/proc/sys/kernel/core_pattern".to_string(),
        "/etc/passwd".to_string(),
    ] {
        let env = Env::new();
        without_dev_tmpfs(&env, true);
        let _ = std::fs::remove_file(env.rootfs.join("dev/console"));
        symlink(&target, env.rootfs.join("dev/console")).unwrap();
        let passwd = std::fs::read_to_string(env.rootfs.join("etc/passwd")).unwrap();
        let (r, result) = run_with_console(&env, "echo ran");
        if r.code == 0 {
            assert_eq!(result, "ran\n", "{target}: {result}");
        } else {
            assert!(r.stderr.contains("console"), "{target}: {}", r.stderr);
        }
        assert_eq!(
            std::fs::read_to_string(env.rootfs.join("etc/passwd")).unwrap(),
            passwd
        );
        assert!(env.ids().is_empty());
        host.assert_untouched();
        assert_eq!(
            std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap(),
            core_pattern
        );
    }
}

/// The container side: the pty must go to /dev/console only, not onto whatever file a
/// /dev/console symlink in the image names (runc's fix refuses or replaces the link).
#[test]
fn cve_2025_52565_console_symlink_does_not_redirect_the_pty_inside() {
    if !require_root() {
        return;
    }
    for target in ["/proc/sys/kernel/core_pattern", "/etc/passwd"] {
        let env = Env::new();
        without_dev_tmpfs(&env, true);
        let _ = std::fs::remove_file(env.rootfs.join("dev/console"));
        symlink(target, env.rootfs.join("dev/console")).unwrap();
        let (r, result) = run_with_console(
            &env,
            "stat -c '%F' /proc/sys/kernel/core_pattern /etc/passwd",
        );
        if r.code == 0 {
            assert_eq!(
                result, "regular empty file\nregular file\n",
                "{target}: {result}"
            );
        } else {
            assert!(r.stderr.contains("console"), "{target}: {}", r.stderr);
        }
    }
}

// ---- CVE-2025-52881: runtime writes to /proc redirected ----

#[test]
fn cve_2025_52881_sysctl_redirected_off_procfs_is_refused() {
    if !require_root() {
        return;
    }
    let host = HostDir::new("52881");
    let file = host.path().join("marker");
    let env = Env::new();
    // A bind of a host file over the sysctl's /proc/sys path.
    env.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/proc/sys/net/ipv4/ip_forward", "type": "bind",
            "source": file, "options": ["bind"]}),
        );
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    });
    env.run(&["true"]).fails_with(
        "linux.sysctl: net.ipv4.ip_forward: /proc/sys/net/ipv4/ip_forward is not on procfs",
    );
    assert!(env.ids().is_empty());
    host.assert_untouched();
    // A tmpfs over /proc/sys with a planted file in it.
    let env = Env::new();
    env.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs"}));
        c["linux"]["sysctl"] = json!({"kernel.hostname": "x"});
    });
    let r = env.run(&["true"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stderr.contains("linux.sysctl: kernel.hostname"),
        "{}",
        r.stderr
    );
    assert!(env.ids().is_empty());
}
