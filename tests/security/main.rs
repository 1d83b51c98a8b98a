//! Container-escape regressions, one per class of published runc CVE, each with a hostile
//! rootfs or config, each asserting the host is untouched afterwards (no mount of a host path
//! in the test's own mount table, no file created or changed on the host).

#[path = "../common/mod.rs"]
mod common;
mod rootfs_paths;
use common::*;
use serde_json::json;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Whether any mount of the host (the test runs in the host mount namespace) involves `path`.
fn host_mounts_mention(path: &Path) -> Vec<String> {
    let needle = path.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_string)
        .collect()
}

/// A host directory outside the bundle, with a marker file, removed on drop.
struct HostDir {
    dir: tempfile::TempDir,
}

impl HostDir {
    fn new(tag: &str) -> HostDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("hull-host-{tag}-"))
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::write(dir.path().join("marker"), "host\n").unwrap();
        HostDir { dir }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    /// The directory holds exactly its marker, unchanged, and nothing is mounted on it.
    fn assert_untouched(&self) {
        let names: Vec<String> = std::fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["marker"],
            "host dir {} changed",
            self.path().display()
        );
        assert_eq!(
            std::fs::read_to_string(self.path().join("marker")).unwrap(),
            "host\n"
        );
        assert!(
            host_mounts_mention(self.path()).is_empty(),
            "{:?}",
            host_mounts_mention(self.path())
        );
    }
}

fn sha256_of(path: &Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

fn writable(env: &Env) {
    env.edit(|c| c["root"]["readonly"] = json!(false));
}

/// Keeps the image's own /dev (where a hostile image plants its links), with a real /dev/null
/// unless `null` is false (hull only creates the default devices on a /dev tmpfs).
fn without_dev_tmpfs(env: &Env, null: bool) {
    env.edit(|c| {
        c["mounts"].as_array_mut().unwrap().retain(|m| m["destination"] != "/dev");
        if null {
            c["linux"]["devices"] = json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 438}]);
        }
    });
}

// ---- CVE-2019-5736: overwriting the runtime binary through /proc/<pid>/exe ----

/// `env.hull(args)` with another hull binary.
fn hull_bin(bin: &Path, env: &Env, args: &[&str]) -> Ran {
    let mut c = std::process::Command::new(bin);
    c.arg("--root")
        .arg(&env.root)
        .args(args)
        .current_dir(&env.bundle)
        .stdin(Stdio::null());
    capture(c)
}

fn state_bin(bin: &Path, env: &Env, id: &str) -> serde_json::Value {
    serde_json::from_str(hull_bin(bin, env, &["state", id]).ok()).unwrap()
}

#[test]
fn cve_2019_5736_container_cannot_open_the_hull_init_exe() {
    if !require_root() {
        return;
    }
    // A private copy of the binary: the one under test, which no concurrent build replaces.
    let bin_dir = tempfile::tempdir().unwrap();
    let bin = bin_dir.path().join("hull");
    std::fs::copy(HULL, &bin).unwrap();
    let bin = bin.as_path();
    let before = sha256_of(bin);
    let out_dir = HostDir::new("5736");
    // Container A: a root process (no CAP_SYS_PTRACE, as by default) scanning its pid namespace
    // for any process whose exe it can read, and trying to write every exe it finds.
    let a = Env::new();
    a.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/out", "type": "bind",
            "source": out_dir.path().join("log").to_str().unwrap(), "options": ["rbind"]}));
    });
    std::fs::write(out_dir.path().join("log"), "").unwrap();
    a.set_args(&[
        "sh",
        "-c",
        r#"
        while :; do
          for d in /proc/[0-9]*; do
            p=${d#/proc/}; [ "$p" = "$$" ] && continue
            n=$(sed -n 's/^Name:\t//p' $d/status 2>/dev/null)
            case "$n" in sh|sed|sleep|"") continue;; esac
            if cat $d/exe >/dev/null 2>&1; then r=read; else r=denied; fi
            if (echo x >> $d/exe) 2>/dev/null; then w=wrote; else w=nowrite; fi
            echo "$p $n $r $w" >> /out
          done
          sleep 0.05
        done"#,
    ]);
    let a_id = unique_id();
    hull_bin(
        bin,
        &a,
        &[
            "run",
            "--detach",
            "--bundle",
            a.bundle.to_str().unwrap(),
            &a_id,
        ],
    )
    .ok();
    let a_pid = state_bin(bin, &a, &a_id)["pid"].as_i64().unwrap();
    // Container B joins A's pid namespace; its init waits for `start`, still running hull code.
    let b = Env::new();
    b.edit(|c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        for n in ns.iter_mut() {
            if n["type"] == "pid" {
                n["path"] = json!(format!("/proc/{a_pid}/ns/pid"));
            }
        }
    });
    b.set_args(&["true"]);
    let b_id = unique_id();
    hull_bin(
        bin,
        &b,
        &["create", "--bundle", b.bundle.to_str().unwrap(), &b_id],
    )
    .ok();
    let b_pid = state_bin(bin, &b, &b_id)["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{b_pid}/status")).unwrap();
    let in_a = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = std::fs::read_to_string(out_dir.path().join("log")).unwrap();
        if log.lines().any(|l| l.starts_with(&format!("{in_a} "))) || Instant::now() > deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    hull_bin(bin, &b, &["start", &b_id]).ok();
    hull_bin(bin, &b, &["delete", "--force", &b_id]);
    hull_bin(bin, &a, &["delete", "--force", &a_id]).ok();
    let seen: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with(&format!("{in_a} ")))
        .collect();
    assert!(
        !seen.is_empty(),
        "the attacker never saw hull's init (pid {in_a} in its namespace): {log}"
    );
    for l in &seen {
        assert!(
            l.ends_with("denied nowrite"),
            "hull's init exe was reachable: {l}"
        );
    }
    for l in log.lines() {
        assert!(!l.ends_with(" wrote"), "an exe was writable: {l}");
        assert!(
            !(l.contains(" hull ") && l.contains(" read ")),
            "a hull exe was readable: {l}"
        );
    }
    assert_eq!(sha256_of(bin), before, "the hull binary changed");
    // And from the host side: while the init has not exec'd, its exe is hull and the kernel
    // refuses writers (ETXTBSY), so a reopened fd cannot be used either.
    let env = Env::new();
    env.set_args(&["true"]);
    let id = unique_id();
    hull_bin(
        bin,
        &env,
        &["create", "--bundle", env.bundle.to_str().unwrap(), &id],
    )
    .ok();
    let pid = state_bin(bin, &env, &id)["pid"].as_i64().unwrap();
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/exe"))
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ETXTBSY), "{err}");
    hull_bin(bin, &env, &["delete", "--force", &id]).ok();
    assert_eq!(sha256_of(bin), before);
    out_dir.assert_untouched_except_log();
}

impl HostDir {
    fn assert_untouched_except_log(&self) {
        assert_eq!(
            std::fs::read_to_string(self.path().join("marker")).unwrap(),
            "host\n"
        );
        assert!(
            host_mounts_mention(self.path()).is_empty(),
            "{:?}",
            host_mounts_mention(self.path())
        );
    }
}

// ---- CVE-2024-21626: a leaked fd as cwd, or visible inside ----

#[test]
fn cve_2024_21626_cwd_through_proc_self_fd_fails_or_stays_inside() {
    let Some(env) = Env::root() else {
        return;
    };
    for n in 3..=10 {
        env.edit(|c| c["process"]["cwd"] = json!(format!("/proc/self/fd/{n}")));
        let r = env.run(&["sh", "-c", "pwd; cat ../../../../../../etc/hostname"]);
        if r.code == 0 {
            assert!(!r.stdout.contains("unreachable"), "fd {n}: {}", r.stdout);
            assert!(
                r.stdout.ends_with("hull\n"),
                "fd {n}: cwd outside the container: {}",
                r.stdout
            );
        } else {
            assert!(r.stderr.contains("process.cwd"), "fd {n}: {}", r.stderr);
        }
        assert!(env.ids().is_empty());
    }
}

/// Runs hull with a host directory open at fd 7 (not close-on-exec), as a careless caller would.
fn run_with_host_fd(env: &Env, host: &Path) -> Ran {
    hull_with_host_fd(
        env,
        host,
        &[
            "run",
            "--bundle",
            env.bundle.to_str().unwrap(),
            &unique_id(),
        ],
    )
}

fn hull_with_host_fd(env: &Env, host: &Path, args: &[&str]) -> Ran {
    use std::os::unix::process::CommandExt;
    let dir = std::fs::File::open(host).unwrap();
    let raw = std::os::fd::AsRawFd::as_raw_fd(&dir);
    let mut c = env.cmd();
    c.args(args).current_dir(&env.bundle);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(move || {
            if libc::dup2(raw, 7) < 0 || libc::fcntl(7, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = c.output().unwrap();
    drop(dir);
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

#[test]
fn cve_2024_21626_host_fd_of_the_caller_is_not_visible() {
    if !require_root() {
        return;
    }
    let host = HostDir::new("21626");
    let env = Env::new();
    env.set_args(&[
        "sh",
        "-c",
        "ls /proc/self/fd; ls -l /proc/self/fd | grep -c hull-host || true",
    ]);
    let r = run_with_host_fd(&env, host.path());
    let out = r.ok().to_string();
    let mut lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.pop(),
        Some("0"),
        "a host path is linked from an fd: {out}"
    );
    // 0, 1, 2 and the directory fd ls itself opened.
    assert_eq!(lines, ["0", "1", "2", "3"], "{out}");
    // And the fd cannot be used as cwd either.
    env.edit(|c| c["process"]["cwd"] = json!("/proc/self/fd/7"));
    env.set_args(&["sh", "-c", "pwd; ls"]);
    let r = run_with_host_fd(&env, host.path());
    assert!(r.code != 0 || !r.stdout.contains("marker"), "{}", r.stdout);
    assert!(env.ids().is_empty());
    host.assert_untouched();
}

/// `exec` is where runc leaked its fd: the same checks for a process joining a running container.
#[test]
fn cve_2024_21626_exec_with_leaked_fd_cwd_fails_or_stays_inside() {
    if !require_root() {
        return;
    }
    let host = HostDir::new("21626exec");
    let env = Env::new();
    env.set_args(&["sleep", "100"]);
    let id = unique_id();
    env.hull(&[
        "run",
        "--detach",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &id,
    ])
    .ok();
    let r = hull_with_host_fd(&env, host.path(), &["exec", &id, "ls", "/proc/self/fd"]);
    let fds = r.ok().to_string();
    for n in 3..=10 {
        let cwd = format!("/proc/self/fd/{n}");
        let r = hull_with_host_fd(
            &env,
            host.path(),
            &[
                "exec",
                "--cwd",
                &cwd,
                &id,
                "sh",
                "-c",
                "ls; cat ../../../../../../etc/hostname",
            ],
        );
        if r.code == 0 {
            assert!(
                !r.stdout.contains("marker"),
                "fd {n}: cwd is on the host: {}",
                r.stdout
            );
            assert!(r.stdout.ends_with("hull\n"), "fd {n}: {}", r.stdout);
        } else {
            assert!(r.stderr.contains("cwd"), "fd {n}: {}", r.stderr);
        }
    }
    env.hull(&["delete", "--force", &id]).ok();
    assert_eq!(fds, "0\n1\n2\n3\n", "fds seen by an exec'd process");
    host.assert_untouched();
}
