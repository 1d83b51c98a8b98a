//! `cp` never follows a container's symlinks below the path it names: links in the tree are
//! copied as links, a link where a directory is written is replaced (docker's untar) rather
//! than written through, and a container swapping a directory for a link mid-copy cannot point
//! the copy at the host. `-L` follows the named path only, and only inside the rootfs.

use crate::berth_common::ctr::{env, Env, Rt};
use crate::{cp_tar_listing, sleeper};
use std::path::Path;
use std::process::Command;

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// Host files no copy may touch: a directory with a marker, named by absolute path.
fn bait() -> (tempfile::TempDir, String) {
    let d = tempfile::Builder::new()
        .prefix("berth-cp-bait-")
        .tempdir()
        .expect("tempdir");
    std::fs::write(d.path().join("host-secret"), "host\n").expect("write");
    let p = s(d.path()).to_string();
    (d, p)
}

fn assert_untouched(bait: &str) {
    let names: Vec<_> = std::fs::read_dir(bait)
        .expect("bait dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        names,
        ["host-secret"],
        "a copy wrote into the host's {bait}"
    );
}

fn into_container_replaces_links(e: &Env, bait: &str, h: &Path) {
    // The container's /dst/src/sub is a link to the host's bait directory (an absolute path
    // that exists on the host, not in the container).
    e.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        &format!("mkdir -p /dst/src && ln -s {bait} /dst/src/sub && ln -s {bait}/f /dst/src/top"),
    ]);
    let src = h.join("src");
    std::fs::create_dir_all(src.join("sub")).expect("mkdir");
    std::fs::write(src.join("sub/f"), "copied\n").expect("write");
    std::fs::write(src.join("top"), "top\n").expect("write");
    e.ok(&["cp", s(&src), "web:/dst/"]);
    assert_untouched(bait);
    assert_eq!(
        e.ok(&[
            "exec",
            "web",
            "sh",
            "-c",
            "test -d /dst/src/sub && ! test -L /dst/src/sub && cat /dst/src/sub/f /dst/src/top"
        ]),
        "copied\ntop\n",
        "the links were replaced inside the container"
    );
    // A tar on stdin with the same shape stays inside too.
    e.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        &format!("rm -rf /dst/src/sub && ln -s {bait} /dst/src/sub"),
    ]);
    let tar = Command::new("tar")
        .arg("-C")
        .arg(h)
        .args(["-cf", "-", "src"])
        .output()
        .expect("tar");
    let o = e.run_stdin(&["cp", "-", "web:/dst"], &tar.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_untouched(bait);
}

fn out_of_container_keeps_links(e: &Env, h: &Path) {
    e.ok(&[
        "exec",
        "web",
        "sh",
        "-c",
        "mkdir -p /out/sub && echo in > /out/sub/f && ln -s / /out/root \
         && ln -s /etc /out/etc && ln -s ../../../../.. /out/sub/up",
    ]);
    let to = h.join("copied");
    std::fs::create_dir(&to).expect("mkdir");
    e.ok(&["cp", "web:/out", s(&to)]);
    let out = to.join("out");
    assert_eq!(
        std::fs::read_link(out.join("root")).expect("link"),
        Path::new("/")
    );
    assert_eq!(
        std::fs::read_link(out.join("etc")).expect("link"),
        Path::new("/etc")
    );
    assert_eq!(
        std::fs::read_link(out.join("sub/up")).expect("link"),
        Path::new("../../../../..")
    );
    assert_eq!(
        std::fs::read_to_string(out.join("sub/f")).expect("file"),
        "in\n"
    );
    // As a tar: the same links, as links.
    let list = cp_tar_listing(e, "web:/out", h);
    assert!(list.contains("out/root -> /\n"), "{list}");
    assert!(list.contains("out/etc -> /etc\n"), "{list}");
    assert!(list.contains("out/sub/f\n"), "{list}");
    assert_eq!(list.lines().count(), 6, "{list}");
    // -L follows the named link only, and inside the container: /out/etc is the container's
    // /etc (its passwd, not the host's), and links below it stay links.
    e.ok(&["exec", "web", "ln", "-s", "/", "/etc/lnk-to-root"]);
    let deref = h.join("deref");
    e.ok(&["cp", "-L", "web:/out/etc", s(&deref)]);
    assert!(deref.is_dir() && !deref.is_symlink());
    let passwd = std::fs::read_to_string(deref.join("passwd")).expect("copied");
    assert_eq!(passwd, e.ok(&["exec", "web", "cat", "/etc/passwd"]));
    assert_eq!(
        std::fs::read_link(deref.join("lnk-to-root")).expect("still a link"),
        Path::new("/")
    );
}

/// The container flips /race/src/sub between a directory and a link to the host's bait while
/// berth copies in and out; whatever each copy sees, the bait is never read or written.
fn racing_swaps(e: &Env, bait: &str, h: &Path) {
    // The swapper is a container's own command (an `exec -d` would hold the client's pipes).
    e.ok(&e.run_args(&[
        "-d",
        "--name",
        "racer",
        "busybox",
        "sh",
        "-c",
        &format!(
            "mkdir -p /race/src/sub && echo c > /race/src/sub/f; \
             while :; do mv /race/src/sub /race/real; ln -s {bait} /race/src/sub; \
             rm /race/src/sub; mv /race/real /race/src/sub; done"
        ),
    ]));
    let src = h.join("src");
    for i in 0..40 {
        // In: the host tree's src/sub/f lands in /race/src/sub (or fails on a swap).
        let _ = e.run(&["cp", s(&src), "racer:/race/"]);
        // Out: the container's tree, links as links.
        let to = h.join(format!("race{i}"));
        let _ = e.run(&["cp", "racer:/race/src", s(&to)]);
        // A copied link is fine; a real directory must hold the container's file only.
        let sub = to.join("sub");
        if std::fs::symlink_metadata(&sub).is_ok_and(|m| m.is_dir()) {
            assert!(
                !sub.join("host-secret").exists(),
                "copy {i} read the host's {bait}"
            );
        }
        assert_untouched(bait);
    }
}

#[test]
fn cp_never_follows_container_links() {
    let Some(e) = env(98, Rt::Hull) else { return };
    sleeper(&e, "web", &[]);
    let (_keep, bait) = bait();
    let host = tempfile::tempdir().expect("tempdir");
    into_container_replaces_links(&e, &bait, host.path());
    out_of_container_keeps_links(&e, host.path());
    racing_swaps(&e, &bait, host.path());
}

/// A volume's first use copies the image's mount point into it: when that mount point is a
/// link to a host path, the copy resolves it inside the rootfs, never on the host.
#[test]
fn volume_populate_stays_in_the_image() {
    let Some(e) = env(99, Rt::Hull) else { return };
    let (_keep, bait) = bait();
    sleeper(&e, "src", &[]);
    e.ok(&[
        "exec",
        "src",
        "sh",
        "-c",
        &format!(
            "mkdir -p {bait} && ln -s {bait} /data && mkdir -p /seed && echo seed > /seed/own \
             && ln -s /seed /seed2"
        ),
    ]);
    e.ok(&["commit", "src", "linked:1"]);
    e.ok(&["rm", "-f", "src"]);
    // /data -> a path that holds the bait on the host and an empty directory in the image:
    // the image's (empty) directory is what the volume gets.
    e.ok(&e.run_args(&["--rm", "-v", "pv:/data", "linked:1", "true"]));
    let mp = e.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "pv"]);
    let listed: Vec<_> = std::fs::read_dir(mp.trim())
        .expect("volume dir")
        .flatten()
        .map(|d| d.file_name())
        .collect();
    assert!(
        listed.is_empty(),
        "host files copied into the volume: {listed:?}"
    );
    // A link inside the image is followed inside it: the image's /seed is copied.
    let out = e.ok(&e.run_args(&["--rm", "-v", "pv2:/seed2", "linked:1", "cat", "/seed2/own"]));
    assert_eq!(out, "seed\n");
    e.ok(&["volume", "rm", "pv", "pv2"]);
}
