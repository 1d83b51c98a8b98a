//! `builder prune`: the prompt, `--filter until=`, dangling (intermediate) entries by default,
//! every entry with `-a`; after a prune a rebuild misses the cache, while tagged images and an
//! untagged build result a container was made from still run.

use super::berth_common::ctr::{env, Rt};
use super::{build_ok, context, pipe, run_image, IDX};
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

const DOCKERFILE: &str = "FROM busybox
RUN echo one > /one
COPY f.txt /f.txt
RUN cat /one /f.txt > /two
CMD [\"cat\", \"/two\"]
";

fn cache_lines(out: &str) -> usize {
    out.matches(" ---> Using cache").count()
}

#[test]
fn builder_prune_empties_the_cache_but_keeps_what_is_used() {
    let Some(e) = env(IDX + 15, Rt::Hull) else {
        return;
    };
    let ctx = context(&[("Dockerfile", DOCKERFILE), ("f.txt", "f\n")]);
    let net = ["--network", "none"];
    build_ok(&e, ctx.path(), &[&net[..], &["-t", "p:1"]].concat());
    let again = build_ok(&e, ctx.path(), &net);
    assert_eq!(cache_lines(&again), 4, "{again}");
    let run = |image: &str| run_image(&e, &[image]);

    // Without -f the prompt is docker's; anything but y keeps the cache.
    let o = pipe(e.cmd(&["builder", "prune"]), b"n\n");
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.starts_with(
            "WARNING! This will remove all dangling build cache. Are you sure you want to continue? [y/N] "
        ),
        "{out}"
    );
    // Nothing is older than an hour.
    let out = e.ok(&["builder", "prune", "-f", "--filter", "until=1h"]);
    assert_eq!(out, "Total reclaimed space: 0B\n");
    let again = build_ok(&e, ctx.path(), &net);
    assert_eq!(cache_lines(&again), 4, "the cache survived: {again}");
    e.err(
        &["builder", "prune", "-f", "--filter", "color=red"],
        "--filter color=red",
    );

    // until=: entries last used before then go, the others stay. Another build's entries are
    // made to look two hours old; p's were just used.
    let records = || -> BTreeSet<String> {
        std::fs::read_dir(e.root.join("buildcache/images"))
            .expect("records")
            .flatten()
            .map(|d| d.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let before = records();
    let aged = context(&[("Dockerfile", "FROM busybox\nRUN echo aged > /a\n")]);
    build_ok(&e, aged.path(), &net);
    let new: BTreeSet<String> = records().difference(&before).cloned().collect();
    assert_eq!(new.len(), 2, "the RUN step and the final image: {new:?}");
    let old = SystemTime::now() - Duration::from_secs(2 * 3600);
    for r in &new {
        let f = std::fs::File::options()
            .write(true)
            .open(e.root.join("buildcache/images").join(r))
            .expect("record");
        f.set_modified(old).expect("age the record");
    }
    let out = e.ok(&["builder", "prune", "-f", "--filter", "until=1h"]);
    let listed: BTreeSet<String> = out
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(String::from)
        .collect();
    assert_eq!(listed, new, "{out}");
    let again = build_ok(&e, ctx.path(), &net);
    assert_eq!(
        cache_lines(&again),
        4,
        "recently used entries stay: {again}"
    );
    let again = build_ok(&e, aged.path(), &net);
    assert_eq!(cache_lines(&again), 0, "aged entries went: {again}");

    // Dangling: the intermediate steps go; the rebuild runs every RUN again.
    let out = e.ok(&["builder", "prune", "-f"]);
    assert!(out.starts_with("Deleted build cache objects:\n"), "{out}");
    assert!(out.contains("\n\nTotal reclaimed space: "), "{out}");
    assert!(!out.ends_with(" 0B\n"), "{out}");
    assert_eq!(run("p:1").trim(), "one\nf");
    let rebuilt = build_ok(&e, ctx.path(), &[&net[..], &["-t", "p:2"]].concat());
    assert_eq!(cache_lines(&rebuilt), 0, "{rebuilt}");
    assert_eq!(rebuilt.matches("Running in").count(), 2, "{rebuilt}");

    // An untagged build result a container was made from survives even -a.
    let other = context(&[(
        "Dockerfile",
        "FROM busybox\nRUN echo kept > /k\nCMD [\"cat\", \"/k\"]\n",
    )]);
    let id = build_ok(&e, other.path(), &[&net[..], &["-q"]].concat());
    let id = id.trim();
    e.ok(&[
        "create",
        "--runtime",
        e.rt.path(),
        "--network",
        "none",
        "--name",
        "keep",
        id,
    ]);
    let out = e.ok(&["builder", "prune", "-a", "-f"]);
    assert!(out.starts_with("Deleted build cache objects:\n"), "{out}");
    assert!(!out.contains(id.trim_start_matches("sha256:")), "{out}");
    let records: Vec<String> = std::fs::read_dir(e.root.join("buildcache/images"))
        .expect("records")
        .flatten()
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(records, [id.trim_start_matches("sha256:")], "{records:?}");
    let started = e.ok(&["start", "-a", "keep"]);
    assert_eq!(started.trim(), "kept");
    assert_eq!(run("p:1").trim(), "one\nf");
    assert_eq!(run("p:2").trim(), "one\nf");
    let rebuilt = build_ok(&e, ctx.path(), &net);
    assert_eq!(cache_lines(&rebuilt), 0, "{rebuilt}");
    e.ok(&["rm", "keep"]);
}

/// `system prune` takes the dangling build cache too, as docker's does.
#[test]
fn system_prune_takes_the_dangling_build_cache() {
    let Some(e) = env(IDX + 16, Rt::Hull) else {
        return;
    };
    let ctx = context(&[("Dockerfile", DOCKERFILE), ("f.txt", "f\n")]);
    let net = ["--network", "none"];
    build_ok(&e, ctx.path(), &[&net[..], &["-t", "s:1"]].concat());
    let out = e.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Deleted build cache objects:\n"), "{out}");
    assert!(out.contains("Total reclaimed space: "), "{out}");
    let rebuilt = build_ok(&e, ctx.path(), &net);
    assert_eq!(cache_lines(&rebuilt), 0, "{rebuilt}");
    let got = run_image(&e, &["s:1"]);
    assert_eq!(got.trim(), "one\nf");
}
