//! `cp` with tar streams, `-a` and `-L`, kept inside the container; `logs
//! --since/--until`; `ps -n/-l/-s`.

use crate::berth_common::ctr::{env, Rt};
use crate::{cp_tar_listing, sleeper};
use std::os::unix::fs::MetadataExt;
use std::process::Command;

#[test]
fn cp_tar_streams_archive_and_links() {
    let Some(e) = env(63, Rt::Hull) else { return };
    sleeper(&e, "web", &[]);
    e.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        "mkdir -p /d/sub && echo a > /d/a && echo s > /d/sub/s && chown 1234:567 /d/a \
         && ln -s /d/a /lnk && ln -s /etc /escape && ln -s ../../../../../.. /up",
    ]);
    let host = tempfile::tempdir().expect("tempdir");
    let h = host.path();
    // Container -> tar on stdout: the source's own name, owners kept.
    let list = cp_tar_listing(&e, "web:/d", h);
    assert!(list.contains("1234/567") && list.contains(" d/a"), "{list}");
    assert!(list.contains(" d/sub/s"), "{list}");
    // A tar on stdin -> a directory in the container.
    let src = h.join("src");
    std::fs::create_dir(&src).expect("mkdir");
    std::fs::write(src.join("in.txt"), "from the host\n").expect("write");
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&src)
        .args(["-cf", "-", "in.txt"])
        .output()
        .expect("tar");
    let o = e.run_stdin(&["cp", "-", "web:/d/sub"], &tar.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        e.ok(&["exec", "web", "cat", "/d/sub/in.txt"]),
        "from the host\n"
    );
    e.err(
        &["cp", "-", "web:/d/a"],
        "must be a directory when copying from a tar stream",
    );
    // Without -a the copy belongs to the caller; with -a the owner is kept.
    e.ok(&["cp", "web:/d/a", h.join("plain").to_str().expect("utf8")]);
    assert_eq!(std::fs::metadata(h.join("plain")).expect("stat").uid(), 0);
    e.ok(&[
        "cp",
        "-a",
        "web:/d/a",
        h.join("kept").to_str().expect("utf8"),
    ]);
    let m = std::fs::metadata(h.join("kept")).expect("stat");
    assert_eq!((m.uid(), m.gid()), (1234, 567));
    // Host -> container: root-owned there unless -a.
    let hf = h.join("hf");
    std::fs::write(&hf, "hf\n").expect("write");
    std::os::unix::fs::chown(&hf, Some(4321), Some(4321)).expect("chown");
    e.ok(&["cp", hf.to_str().expect("utf8"), "web:/d/"]);
    e.ok(&["cp", "-a", hf.to_str().expect("utf8"), "web:/d/hf2"]);
    assert_eq!(
        e.ok(&["exec", "web", "stat", "-c", "%u:%g", "/d/hf", "/d/hf2"]),
        "0:0\n4321:4321\n"
    );
    // -L copies what a symlink points at; without it, the link itself.
    e.ok(&["cp", "web:/lnk", h.join("link").to_str().expect("utf8")]);
    assert_eq!(
        std::fs::read_link(h.join("link")).expect("a link"),
        std::path::Path::new("/d/a")
    );
    e.ok(&[
        "cp",
        "-L",
        "web:/lnk",
        h.join("deref").to_str().expect("utf8"),
    ]);
    assert_eq!(
        std::fs::read_to_string(h.join("deref")).expect("a file"),
        "a\n"
    );
    // Paths resolve inside the container: `..`, absolute and climbing links
    // all land in its root, never on the host's /etc.
    let host_hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    // The rootfs' own /etc/hostname (the container's view has berth's bind mount over it).
    let direct = h.join("direct");
    e.ok(&["cp", "web:/etc/hostname", direct.to_str().expect("utf8")]);
    let ctr_hostname = std::fs::read_to_string(&direct).expect("copied");
    for p in [
        "web:/../../../../etc/hostname",
        "web:/escape/hostname",
        "web:/up/etc/hostname",
    ] {
        let dst = h.join("hn");
        let _ = std::fs::remove_file(&dst);
        e.ok(&["cp", "-L", p, dst.to_str().expect("utf8")]);
        let got = std::fs::read_to_string(&dst).expect("copied");
        assert_eq!(got, ctr_hostname, "{p}");
        if !host_hostname.is_empty() && host_hostname != ctr_hostname {
            assert_ne!(got, host_hostname, "{p} escaped to the host");
        }
    }
    let marker = format!("/etc/berth-cp-escape-{}", std::process::id());
    e.ok(&[
        "cp",
        hf.to_str().expect("utf8"),
        &format!("web:/escape/{}", &marker[5..]),
    ]);
    assert!(
        !std::path::Path::new(&marker).exists(),
        "wrote to the host's /etc"
    );
    assert_eq!(
        e.ok(&["exec", "web", "cat", &marker]),
        "hf\n",
        "the copy lands in the container's /etc"
    );
    e.err(
        &["cp", "web:/nope", h.to_str().expect("utf8")],
        "Could not find the file /nope in container web",
    );
}

#[test]
fn logs_window_and_ps_selection() {
    let Some(e) = env(64, Rt::Hull) else { return };
    e.ok(&e.run_args(&["--name", "first", "busybox", "echo", "one"]));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    e.ok(&e.run_args(&["--name", "second", "busybox", "echo", "two"]));
    sleeper(&e, "third", &[]);
    // --since/--until: RFC3339, Unix seconds or a duration back from now.
    assert_eq!(e.ok(&["logs", "--since", "10m", "first"]), "one\n");
    assert_eq!(e.ok(&["logs", "--until", "10m", "first"]), "");
    assert_eq!(
        e.ok(&["logs", "--since", "2099-01-01T00:00:00Z", "first"]),
        ""
    );
    assert_eq!(e.ok(&["logs", "--until", "2099-01-01", "first"]), "one\n");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert_eq!(
        e.ok(&["logs", "--since", &(now + 60).to_string(), "first"]),
        ""
    );
    assert_eq!(
        e.ok(&["logs", "--since", &(now - 600).to_string(), "first"]),
        "one\n"
    );
    e.err(&["logs", "--since", "yesterday", "first"], "--since");
    // -f ends at --until even while the container runs.
    let t0 = std::time::Instant::now();
    assert_eq!(e.ok(&["logs", "-f", "--until", "2s", "third"]), "");
    let until = (chrono_like_now() + 2).to_string();
    e.ok(&["logs", "-f", "--until", &until, "third"]);
    assert!(t0.elapsed() < std::time::Duration::from_secs(15));
    // ps -n N: the N last created, stopped ones too; -l: the last one.
    assert_eq!(
        e.ok(&["ps", "-n", "2", "--format", "{{.Names}}"]),
        "third\nsecond\n"
    );
    assert_eq!(e.ok(&["ps", "-l", "--format", "{{.Names}}"]), "third\n");
    assert_eq!(e.ok(&["ps", "--format", "{{.Names}}"]), "third\n");
    // ps -s: what the container wrote, and that with its image.
    e.ok(&[
        "exec",
        "third",
        "sh",
        "-c",
        "dd if=/dev/zero of=/blob bs=1000 count=300 2>/dev/null",
    ]);
    let s = e.ok(&["ps", "-s"]);
    let head = s.lines().next().expect("header");
    assert!(head.ends_with("NAMES   SIZE"), "{s}");
    assert!(s.contains("300kB (virtual "), "{s}");
    assert_eq!(
        e.ok(&["ps", "--format", "{{.Size}}"]).split(' ').next(),
        Some("300kB")
    );
}

#[test]
fn stats_redraws_on_a_terminal() {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let Some(e) = env(68, Rt::Hull) else { return };
    sleeper(&e, "web", &[]);
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let slave = std::fs::File::from(pty.slave);
    let mut child = e
        .cmd(&["stats", "--format", "{{.Name}} {{.PIDs}}"])
        .stdout(slave.try_clone().expect("dup"))
        .stderr(slave)
        .spawn()
        .expect("spawn stats");
    let mut master = std::fs::File::from(pty.master);
    // Read frames for a while: each is docker's clear-screen and cursor-home
    // sequence, then the table.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let clear = b"\x1b[2J\x1b[H";
    let frames = |g: &[u8]| g.windows(clear.len()).filter(|w| w == clear).count();
    // SAFETY: fcntl on an fd we own.
    unsafe {
        libc::fcntl(master.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK);
    }
    while frames(&got) < 3 && std::time::Instant::now() < deadline {
        match master.read(&mut buf) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => std::thread::sleep(std::time::Duration::from_millis(50)),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = String::from_utf8_lossy(&got);
    assert!(frames(&got) >= 3, "no redraws: {text:?}");
    let after_last = text.rsplit("\x1b[2J\x1b[H").next().unwrap_or_default();
    assert!(
        after_last.is_empty() || after_last.starts_with("web 1"),
        "{text:?}"
    );
    assert!(text.contains("\x1b[2J\x1b[Hweb 1\r\n"), "{text:?}");
    // Not a terminal: plain tables, no escape sequences.
    let plain = e.ok(&["stats", "--no-stream"]);
    assert!(!plain.contains('\x1b'), "{plain:?}");
}

fn chrono_like_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}
