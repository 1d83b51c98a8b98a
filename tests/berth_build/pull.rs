//! `build --pull` against a private docker-registry on loopback: a base image pushed as
//! `base:1`, then a different image pushed under the same tag. A plain build keeps using the
//! stored base (and its cache); `--pull` fetches the new one. Asserted from inside the built
//! images.

use super::berth_common::ctr::{busybox_tar, env, Rt};
use super::berth_common::{berth_ok, Registry};
use super::{build_ok, context, run_image, IDX};

#[test]
fn pull_refreshes_the_base_only_when_asked() {
    let Some(e) = env(IDX + 13, Rt::Hull) else {
        return;
    };
    let Some(reg) = Registry::start(None) else {
        return;
    };
    // The publisher has its own root: what the builder knows of the base comes from the
    // registry only.
    let publisher = tempfile::tempdir().expect("tmp");
    let pub_root = publisher.path().join("root");
    let bb = busybox_tar().to_str().expect("utf8");
    berth_ok(&pub_root, &["import", bb, "busybox:latest"]);
    let base = format!("{}/test/base:1", reg.addr);
    let publish = |content: &str| {
        let ctx = context(&[
            ("Dockerfile", "FROM busybox\nCOPY a.txt /base.txt\n"),
            ("a.txt", content),
        ]);
        let c = ctx.path().to_str().expect("utf8");
        berth_ok(&pub_root, &["build", "-q", "-t", &base, c]);
        berth_ok(&pub_root, &["push", "--tls-verify=false", &base]);
    };
    publish("A\n");
    // The builder reaches the loopback registry over plain HTTP.
    std::fs::write(e.root.join("registries.conf"), &reg.addr).expect("registries.conf");

    let df = format!("FROM {base}\nRUN cat /base.txt > /seen\nCMD [\"cat\", \"/seen\"]\n");
    let ctx = context(&[("Dockerfile", &df)]);
    let run = |image: &str| run_image(&e, &[image]);
    // The base is missing: the first build pulls it.
    build_ok(&e, ctx.path(), &["-t", "child:1"]);
    assert_eq!(run("child:1").trim(), "A");

    publish("B\n");
    // Without --pull the stored base is used, cache and all.
    let out = build_ok(&e, ctx.path(), &["-t", "child:2"]);
    assert!(out.contains(" ---> Using cache"), "{out}");
    assert!(!out.contains("Running in"), "{out}");
    assert_eq!(run("child:2").trim(), "A");

    // --pull fetches the new base; the RUN on it is not a cache hit.
    let out = build_ok(&e, ctx.path(), &["--pull", "-t", "child:3"]);
    assert!(!out.contains(" ---> Using cache"), "{out}");
    assert_eq!(out.matches("Running in").count(), 1, "{out}");
    assert_eq!(run("child:3").trim(), "B");
    // The stored base is the new one now, and the old child still runs on the old base.
    let got = run_image(&e, &[&base, "cat", "/base.txt"]);
    assert_eq!(got.trim(), "B");
    assert_eq!(run("child:1").trim(), "A");
}
