//! Interrupting a build mid-RUN: SIGINT leaves the store as it was at once; after SIGKILL the
//! next berth command removes what the build had added, including its RUN container.

use super::berth_common::ctr::{env, Env, Rt};
use super::berth_common::tree_hash;
use super::{build_ok, context, IDX};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Starts a build whose second layer step is a long RUN; returns once that RUN is running.
fn start_long_build(e: &Env, ctx: &std::path::Path) -> Child {
    let mut c = e.cmd(&[
        "build",
        "--runtime",
        e.rt.path(),
        ctx.to_str().expect("utf8"),
    ]);
    let mut ch = c
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn build");
    let out = ch.stdout.take().expect("stdout");
    let mut r = BufReader::new(out);
    let end = Instant::now() + Duration::from_secs(60);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).expect("read") == 0 || Instant::now() > end {
            panic!("the build never reached its long RUN");
        }
        if line.trim() == "long-run-started" {
            break;
        }
    }
    // Keep draining so the build never blocks on a full pipe.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut r, &mut std::io::sink());
    });
    ch
}

fn signal(ch: &Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(ch.id() as i32), sig).expect("kill");
}

fn interrupted(idx: u32, sig: nix::sys::signal::Signal) {
    let Some(e) = env(idx, Rt::Hull) else {
        return;
    };
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN true\n"), ("f", "data")]);
    build_ok(&e, ctx.path(), &[]);
    let before = tree_hash(&e.root);
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY f /f\nRUN echo x > /x\nRUN echo long-run-started && sleep 60\n",
    )
    .expect("df");
    let mut ch = start_long_build(&e, ctx.path());
    assert_eq!(e.container_count(), 1, "the RUN container runs");
    signal(&ch, sig);
    let st = ch.wait().expect("wait");
    assert!(!st.success());
    if sig == nix::sys::signal::Signal::SIGKILL {
        // The next command cleans up after the dead build.
        let bad = context(&[("Dockerfile", "FROM busybox\nRUNN x\n")]);
        e.err(&["build", bad.path().to_str().expect("utf8")], "RUNN");
    }
    assert_eq!(e.container_count(), 0, "no RUN container left");
    assert_eq!(tree_hash(&e.root), before, "the store is as it was");
}

#[test]
fn sigint_mid_run() {
    interrupted(IDX + 7, nix::sys::signal::Signal::SIGINT);
}

#[test]
fn sigkill_mid_run_then_next_command_cleans() {
    interrupted(IDX + 8, nix::sys::signal::Signal::SIGKILL);
}
