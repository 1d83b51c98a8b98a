//! What COPY keeps of its sources (mtimes of files, directories and symlinks; hard links inside
//! a copied tree), from the context and from a stage, and WORKDIR creating missing directories
//! owned by the current USER (BuildKit's behaviour), each read with stat inside the built image.

use super::berth_common::ctr::{env, Rt};
use super::{build_ok, context, run_image, IDX};
use std::fs::File;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

const DOCKERFILE: &str = "FROM busybox AS src
COPY tree/ /copied/
FROM busybox
COPY --from=src /copied/ /again/
COPY tree/ /copied/
USER nobody
WORKDIR /home/nobody/work
RUN touch by-user
USER 1234:5678
WORKDIR /num/x
WORKDIR /tmp
";

fn set_mtime(p: &Path, secs: u64) {
    let f = File::open(p).expect("open for mtime");
    f.set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .expect("set mtime");
}

#[test]
fn copy_keeps_mtimes_and_hard_links_workdir_owned_by_user() {
    let Some(e) = env(IDX + 12, Rt::Hull) else {
        return;
    };
    let ctx = context(&[
        ("Dockerfile", DOCKERFILE),
        ("tree/a.txt", "a\n"),
        ("tree/sub/b.txt", "b\n"),
    ]);
    let t = ctx.path().join("tree");
    std::fs::hard_link(t.join("a.txt"), t.join("hl")).expect("hard link");
    std::os::unix::fs::symlink("a.txt", t.join("ln")).expect("symlink");
    set_mtime(&t.join("a.txt"), 1_600_000_000);
    set_mtime(&t.join("sub/b.txt"), 1_400_000_000);
    nix::sys::stat::lutimes(
        &t.join("ln"),
        &nix::sys::time::TimeVal::new(1_300_000_000, 0),
        &nix::sys::time::TimeVal::new(1_300_000_000, 0),
    )
    .expect("lutimes");
    // Directories last: adding their entries changed their mtimes.
    set_mtime(&t.join("sub"), 1_500_000_000);
    set_mtime(&t, 1_200_000_000);
    build_ok(&e, ctx.path(), &["-t", "meta"]);

    let stat = |paths: &str, fmt: &str| {
        let script = format!("stat -c '{fmt}' {paths}");
        run_image(&e, &["meta", "sh", "-c", &script])
    };
    let got = stat(
        "/copied /copied/a.txt /copied/hl /copied/ln /copied/sub /copied/sub/b.txt \
         /again /again/a.txt /again/hl /again/ln /again/sub /again/sub/b.txt",
        "%n %Y %h",
    );
    let want = [
        "/copied 1200000000",
        "/copied/a.txt 1600000000 2",
        "/copied/hl 1600000000 2",
        "/copied/ln 1300000000 1",
        "/copied/sub 1500000000",
        "/copied/sub/b.txt 1400000000 1",
        "/again 1200000000",
        "/again/a.txt 1600000000 2",
        "/again/hl 1600000000 2",
        "/again/ln 1300000000 1",
        "/again/sub 1500000000",
        "/again/sub/b.txt 1400000000 1",
    ];
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), want.len(), "{got}");
    for (l, w) in lines.iter().zip(want) {
        // Directories' link counts depend on their subdirectories: only name and mtime.
        assert!(l.starts_with(w), "got {l:?}, want {w:?}\n{got}");
    }
    // One inode per hard-linked pair.
    let inodes = stat("/copied/a.txt /copied/hl /again/a.txt /again/hl", "%i");
    let i: Vec<&str> = inodes.lines().collect();
    assert_eq!(i.len(), 4, "{inodes}");
    assert_eq!(i[0], i[1], "copied hard link: {inodes}");
    assert_eq!(i[2], i[3], "hard link through --from: {inodes}");

    // WORKDIR: created directories are the USER's, existing ones keep their owner; the USER
    // can write into its WORKDIR.
    let got = stat(
        "/home /home/nobody /home/nobody/work /home/nobody/work/by-user /num /num/x /tmp",
        "%n %u:%g %a",
    );
    let base = run_image(
        &e,
        &["busybox", "stat", "-c", "%n %u:%g %a", "/home", "/tmp"],
    );
    let base: Vec<&str> = base.lines().collect();
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(
        lines,
        [
            base[0],
            "/home/nobody 65534:65534 755",
            "/home/nobody/work 65534:65534 755",
            "/home/nobody/work/by-user 65534:65534 644",
            "/num 1234:5678 755",
            "/num/x 1234:5678 755",
            base[1],
        ],
        "{got}"
    );
    let c = super::config(&e, "meta");
    assert_eq!(c["WorkingDir"], "/tmp");

    // A USER the image does not know: the WORKDIR line fails, naming it.
    let bad = context(&[("Dockerfile", "FROM busybox\nUSER ghost\nWORKDIR /w\n")]);
    e.err(
        &[
            "build",
            "--runtime",
            e.rt.path(),
            bad.path().to_str().expect("utf8"),
        ],
        "Dockerfile:3: WORKDIR /w: USER ghost: unable to find user ghost",
    );
}
