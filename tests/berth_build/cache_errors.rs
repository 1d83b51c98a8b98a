//! The layer cache (hits, misses on a changed file or ARG, --no-cache), .dockerignore, and bad
//! input: errors naming the Dockerfile line, and a failing RUN leaving nothing behind.

use super::berth_common::ctr::{env, Rt};
use super::berth_common::tree_hash;
use super::{build_ok, context, IDX};
use std::time::Instant;

fn cache_lines(out: &str) -> usize {
    out.matches(" ---> Using cache").count()
}

#[test]
fn cache_hits_and_misses() {
    let Some(e) = env(IDX + 3, Rt::Hull) else {
        return;
    };
    let df = "FROM busybox\nARG N=1\nRUN echo first-$N > /first\nCOPY app.txt /app.txt\n\
              RUN cat /app.txt > /second\n";
    let ctx = context(&[("Dockerfile", df), ("app.txt", "v1")]);
    let first = build_ok(&e, ctx.path(), &["-t", "c:1"]);
    assert_eq!(cache_lines(&first), 0, "{first}");
    let id1 = e.ok(&["images", "-q", "c:1"]);

    let t = Instant::now();
    let again = build_ok(&e, ctx.path(), &["-t", "c:2"]);
    let cached = t.elapsed();
    assert_eq!(cache_lines(&again), 4, "every step cached: {again}");
    assert!(!again.contains("Running in"), "{again}");
    assert_eq!(e.ok(&["images", "-q", "c:2"]), id1, "same image id");
    eprintln!("fully cached rebuild: {cached:?}");
    assert!(cached.as_secs_f64() < 1.0, "cached rebuild took {cached:?}");

    // Touching a file without changing it keeps the cache; changing it misses from COPY on.
    std::fs::write(ctx.path().join("app.txt"), "v1").expect("touch");
    let same = build_ok(&e, ctx.path(), &[]);
    assert_eq!(cache_lines(&same), 4, "{same}");
    std::fs::write(ctx.path().join("app.txt"), "v2").expect("edit");
    let changed = build_ok(&e, ctx.path(), &["-t", "c:3"]);
    assert_eq!(
        cache_lines(&changed),
        2,
        "ARG and first RUN cached: {changed}"
    );
    let got = e.ok(&[
        "run",
        "--rm",
        "--runtime",
        e.rt.path(),
        "c:3",
        "cat",
        "/second",
    ]);
    assert_eq!(got.trim(), "v2");

    // A changed ARG misses from the ARG step on.
    let arg = build_ok(&e, ctx.path(), &["--build-arg", "N=2", "-t", "c:4"]);
    assert_eq!(cache_lines(&arg), 0, "{arg}");
    let got = e.ok(&[
        "run",
        "--rm",
        "--runtime",
        e.rt.path(),
        "c:4",
        "cat",
        "/first",
    ]);
    assert_eq!(got.trim(), "first-2");

    // --no-cache runs everything again.
    let none = build_ok(&e, ctx.path(), &["--no-cache"]);
    assert_eq!(cache_lines(&none), 0, "{none}");
    assert_eq!(none.matches("Running in").count(), 2, "{none}");
}

#[test]
fn dockerignore_with_exceptions() {
    let Some(e) = env(IDX + 4, Rt::Hull) else {
        return;
    };
    let df = "FROM busybox\nCOPY . /ctx/\nRUN cd /ctx && find . -type f | sort > /list\n";
    let ctx = context(&[
        ("Dockerfile", df),
        (".dockerignore", "*.log\n!keep.log\nsecret/\n**/*.tmp\n"),
        ("a.txt", "a"),
        ("x.log", "x"),
        ("keep.log", "k"),
        ("secret/key", "s"),
        ("deep/d/e.tmp", "t"),
        ("deep/d/f.txt", "f"),
    ]);
    build_ok(&e, ctx.path(), &["-t", "ign"]);
    let got = e.ok(&[
        "run",
        "--rm",
        "--runtime",
        e.rt.path(),
        "ign",
        "cat",
        "/list",
    ]);
    let files: Vec<&str> = got.lines().collect();
    for want in ["./a.txt", "./keep.log", "./deep/d/f.txt", "./Dockerfile"] {
        assert!(files.contains(&want), "{want} missing: {files:?}");
    }
    for gone in ["./x.log", "./secret/key", "./deep/d/e.tmp"] {
        assert!(!files.contains(&gone), "{gone} not ignored: {files:?}");
    }
    // An ignored file named as a source is missing, naming the line.
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY x.log /\n",
    )
    .expect("df");
    let c = ctx.path().to_str().expect("utf8");
    e.err(&["build", c], "Dockerfile:2: COPY failed");
}

#[test]
fn errors_name_the_line() {
    let Some(e) = env(IDX + 5, Rt::Hull) else {
        return;
    };
    let cases: &[(&str, &str)] = &[
        (
            "FROM busybox\nRUN true\nRUNN x\n",
            "Dockerfile:3: unknown instruction: RUNN",
        ),
        (
            "FROM busybox\nCOPY missing.txt /\n",
            "Dockerfile:2: COPY failed",
        ),
        ("FROM busybox\nCOPY --from=nope /a /b\n", "nope"),
        ("FROM a AS x\nFROM x AS a\n", "Dockerfile:"),
        ("FROM busybox\nEXPOSE 99999999\n", "Dockerfile:2:"),
    ];
    for (df, needle) in cases {
        let ctx = context(&[("Dockerfile", df)]);
        let c = ctx.path().to_str().expect("utf8");
        e.err(&["build", c], needle);
    }
    let ctx = context(&[("app.Dockerfile", "FROM busybox\nBOGUS\n")]);
    let f = ctx.path().join("app.Dockerfile");
    e.err(
        &[
            "build",
            "-f",
            f.to_str().expect("utf8"),
            ctx.path().to_str().expect("utf8"),
        ],
        "app.Dockerfile:2: unknown instruction: BOGUS",
    );
    e.err(
        &["build", "-t", "Bad Tag", ctx.path().to_str().expect("utf8")],
        "Bad Tag",
    );
    e.err(&["build", "/nonexistent-ctx"], "/nonexistent-ctx");
}

#[test]
fn failing_run_leaves_nothing() {
    let Some(e) = env(IDX + 6, Rt::Hull) else {
        return;
    };
    let ctx = context(&[("Dockerfile", "FROM busybox\nRUN true\n"), ("f", "x")]);
    build_ok(&e, ctx.path(), &[]);
    let before = tree_hash(&e.root);
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY f /f\nRUN touch /made && echo before-fail && exit 7\n",
    )
    .expect("df");
    let c = ctx.path().to_str().expect("utf8");
    let o = e.run(&["build", "--runtime", e.rt.path(), c]);
    assert!(!o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(out.contains("before-fail"), "RUN output streamed: {out}");
    assert!(
        err.contains("Dockerfile:3: The command '/bin/sh -c touch /made && echo before-fail && exit 7' returned a non-zero code: 7"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_eq!(e.container_count(), 0, "no RUN container left");
    assert_eq!(tree_hash(&e.root), before, "the store is as it was");
}
