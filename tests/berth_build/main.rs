//! `berth build` end to end: real Dockerfiles on a busybox image (and a real Debian base in
//! debian.rs), RUN steps as real containers, the built images run and inspected.

#[path = "../berth_common/mod.rs"]
mod berth_common;
mod cache_errors;
mod commit_export;
mod copy_meta;
mod debian;
mod dockerd;
mod interrupt;
#[path = "../common/leftovers.rs"]
mod leftovers;
mod prune;
mod pull;

use berth_common::ctr::{env, Env, Rt};
use std::path::Path;

/// Indexes 80.. keep bridge names and subnets apart from the other berth test binaries.
const IDX: u32 = 80;

/// A context directory with `files` (path, content); a path ending in `/` is a directory.
pub fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("berth-bctx-")
        .tempdir()
        .expect("tempdir");
    for (p, c) in files {
        let path = d.path().join(p);
        if p.ends_with('/') {
            std::fs::create_dir_all(&path).expect("mkdir");
            continue;
        }
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, c).expect("write");
    }
    d
}

pub fn build_ok(e: &Env, ctx: &Path, extra: &[&str]) -> String {
    let mut args = vec!["build", "--runtime", e.rt.path()];
    args.extend_from_slice(extra);
    let c = ctx.to_str().expect("utf8");
    args.push(c);
    e.ok(&args)
}

/// `run --rm` of `image_and_args` (image, then command) under the test's runtime, without a
/// network; its stdout.
pub fn run_image(e: &Env, image_and_args: &[&str]) -> String {
    let mut args = vec!["run", "--rm", "--runtime", e.rt.path(), "--network", "none"];
    args.extend_from_slice(image_and_args);
    e.ok(&args)
}

pub fn config(e: &Env, image: &str) -> serde_json::Value {
    let out = e.ok(&["image", "inspect", image]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("inspect json");
    v[0]["Config"].clone()
}

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).expect("tar");
    }
    b.into_inner().expect("tar")
}

const EVERY_INSTRUCTION: &str = r#"# syntax=docker/dockerfile:1
# escape=\
ARG BASE=busybox
FROM ${BASE}:latest AS base
LABEL stage=base
RUN echo from-base > /base.txt

FROM base
ARG VERSION=0.1
ARG FROM_CLI
ENV APP=/srv/app \
    GREETING="hello world"
LABEL org.example.version=$VERSION maintainer=me
WORKDIR $APP
WORKDIR sub
COPY --chown=nobody:nogroup --chmod=0640 conf/*.conf ./conf/
COPY dir/ /copied/
COPY --from=base /base.txt /from-base.txt
ADD bundle.tar /unpacked/
COPY <<EOF /inline.txt
inline ${VERSION}
EOF
RUN echo "version=$VERSION cli=$FROM_CLI greeting=$GREETING pwd=$(pwd)" > /run.txt
RUN ["/bin/sh", "-c", "echo exec-form > /exec.txt"]
RUN <<EOT
echo heredoc-line1 > /heredoc.txt
echo heredoc-line2 >> /heredoc.txt
EOT
SHELL ["/bin/sh", "-c"]
RUN rm /base.txt && mkdir -p /opaque && touch /opaque/kept
EXPOSE 8080/tcp 53/udp
VOLUME ["/data"]
USER nobody
HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD ["true"]
STOPSIGNAL SIGQUIT
ONBUILD RUN echo child
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /run.txt"]
"#;

fn every_instruction(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    let bundle = tar_of(&[("b/one.txt", b"one\n"), ("two.txt", b"two\n")]);
    let ctx = context(&[
        ("Dockerfile", EVERY_INSTRUCTION),
        ("conf/a.conf", "a\n"),
        ("conf/b.conf", "b\n"),
        ("conf/skip.txt", "x\n"),
        ("dir/x/y.txt", "deep\n"),
        ("dir/top.txt", "top\n"),
    ]);
    std::fs::write(ctx.path().join("bundle.tar"), bundle).expect("tar");
    let out = build_ok(
        &e,
        ctx.path(),
        &[
            "-t",
            "every:v1",
            "-t",
            "every:latest",
            "--build-arg",
            "FROM_CLI=yes",
            "--label",
            "built-by=test",
        ],
    );
    assert!(out.contains("Step 1/"), "{out}");
    assert!(out.contains(" ---> Running in "), "{out}");
    assert!(out.contains("Successfully tagged every:v1"), "{out}");
    assert!(out.contains("Successfully tagged every:latest"), "{out}");

    let c = config(&e, "every:v1");
    assert_eq!(c["WorkingDir"], "/srv/app/sub");
    assert_eq!(c["User"], "nobody");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/sh", "-c"]));
    assert_eq!(c["Cmd"], serde_json::json!(["cat /run.txt"]));
    assert_eq!(c["StopSignal"], "SIGQUIT");
    assert_eq!(c["Labels"]["org.example.version"], "0.1");
    assert_eq!(c["Labels"]["built-by"], "test");
    assert_eq!(c["Labels"]["stage"], "base");
    assert!(c["ExposedPorts"]["8080/tcp"].is_object(), "{c}");
    assert!(c["ExposedPorts"]["53/udp"].is_object(), "{c}");
    assert!(c["Volumes"]["/data"].is_object(), "{c}");
    assert_eq!(c["Healthcheck"]["Test"], serde_json::json!(["CMD", "true"]));
    assert_eq!(c["Healthcheck"]["Retries"], 4);
    assert_eq!(c["OnBuild"], serde_json::json!(["RUN echo child"]));
    let env: Vec<String> = serde_json::from_value(c["Env"].clone()).expect("env");
    assert!(env.contains(&"GREETING=hello world".to_string()), "{env:?}");
    assert!(
        !env.iter().any(|v| v.starts_with("VERSION=")),
        "ARG leaked: {env:?}"
    );

    // ENTRYPOINT + CMD combine; RUN saw ARGs, ENV and the WORKDIR.
    let run = e.ok(&["run", "--rm", "--runtime", e.rt.path(), "every:v1"]);
    assert_eq!(
        run.trim(),
        "version=0.1 cli=yes greeting=hello world pwd=/srv/app/sub"
    );
    let script = "id -u; ls -ln /srv/app/sub/conf; cat /srv/app/sub/conf/a.conf /copied/top.txt \
        /copied/x/y.txt /from-base.txt /unpacked/b/one.txt /unpacked/two.txt /inline.txt \
        /exec.txt /heredoc.txt; ls /base.txt 2>&1; ls /opaque";
    let got = e.ok(&["run", "--rm", "--runtime", e.rt.path(), "every:v1", script]);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines[0], "65534", "{got}");
    let confs: Vec<&&str> = lines.iter().filter(|l| l.contains(".conf")).collect();
    assert_eq!(confs.len(), 2, "only the *.conf files: {got}");
    for l in confs {
        assert!(l.starts_with("-rw-r-----") && l.contains("65534"), "{l}");
    }
    for want in [
        "a",
        "top",
        "deep",
        "from-base",
        "one",
        "two",
        "inline 0.1",
        "exec-form",
        "heredoc-line1",
        "heredoc-line2",
        "kept",
    ] {
        assert!(lines.contains(&want), "{want:?} missing from {got}");
    }
    assert!(got.contains("/base.txt: No such file"), "whiteout: {got}");

    // history: one created_by per step; config-only steps are empty layers.
    let h = e.ok(&["history", "--no-trunc", "every:v1"]);
    assert!(h.contains("ENV APP=/srv/app"), "{h}");
    assert!(
        h.contains("COPY --chown") || h.contains("COPY multi:"),
        "{h}"
    );
    assert!(h.contains("echo exec-form"), "{h}");
}

macro_rules! both {
    ($name:ident, $idx:expr) => {
        mod $name {
            #[test]
            fn hull() {
                super::$name(super::Rt::Hull, super::IDX + $idx * 2);
            }
            #[test]
            fn runc() {
                super::$name(super::Rt::Runc, super::IDX + $idx * 2 + 1);
            }
        }
    };
}
both!(every_instruction, 0);

#[test]
fn multi_stage_target() {
    let Some(e) = env(IDX + 2, Rt::Hull) else {
        return;
    };
    let df = "FROM busybox AS builder\nRUN mkdir /out && echo built > /out/app\n\
              FROM busybox AS unused\nRUN echo never-run-unused\n\
              FROM busybox\nCOPY --from=builder /out/app /app\nCMD [\"cat\", \"/app\"]\n";
    let ctx = context(&[("Dockerfile", df)]);
    let out = build_ok(&e, ctx.path(), &["-t", "ms"]);
    assert!(
        !out.contains("never-run-unused"),
        "unused stage was built: {out}"
    );
    let got = e.ok(&["run", "--rm", "--runtime", e.rt.path(), "ms"]);
    assert_eq!(got.trim(), "built");
    // --target builds only up to that stage.
    let out = build_ok(&e, ctx.path(), &["--target", "builder", "-t", "ms:builder"]);
    assert!(!out.contains("COPY --from"), "{out}");
    let got = e.ok(&[
        "run",
        "--rm",
        "--runtime",
        e.rt.path(),
        "ms:builder",
        "cat",
        "/out/app",
    ]);
    assert_eq!(got.trim(), "built");
    // -q prints only the id; --iidfile gets it too.
    let iid = ctx.path().join("iid");
    let out = build_ok(
        &e,
        ctx.path(),
        &["-q", "--iidfile", iid.to_str().expect("utf8")],
    );
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.trim().starts_with("sha256:"), "{out}");
    assert_eq!(std::fs::read_to_string(&iid).expect("iid"), out.trim());
    // `image build` and -f - (Dockerfile on stdin).
    let mut c = e.cmd(&[
        "image",
        "build",
        "--runtime",
        e.rt.path(),
        "-q",
        "-f",
        "-",
        "-t",
        "stdin",
    ]);
    c.arg(ctx.path());
    let o = pipe(c, b"FROM busybox\nRUN echo piped > /p\n");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = e.ok(&[
        "run",
        "--rm",
        "--runtime",
        e.rt.path(),
        "stdin",
        "cat",
        "/p",
    ]);
    assert_eq!(got.trim(), "piped");
}

pub fn pipe(mut c: std::process::Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut ch = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    ch.stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write");
    ch.wait_with_output().expect("wait")
}

/// Serves `body` once per connection on a loopback port (ADD's downloads come from the host).
fn serve(body: &'static [u8]) -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut s = s;
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let head = format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
    });
    port
}

#[test]
fn add_url_and_build_networks() {
    let Some(e) = env(IDX + 11, Rt::Hull) else {
        return;
    };
    let port = serve(b"downloaded content\n");
    let df = format!(
        "FROM busybox\nADD http://127.0.0.1:{port}/files/data.txt /dl/\n\
         RUN grep -c : /proc/net/dev > /ifaces\n"
    );
    let ctx = context(&[("Dockerfile", &df)]);
    build_ok(&e, ctx.path(), &["--network", "none", "-t", "dl"]);
    let got = e.ok(&[
        "run",
        "--rm",
        "--runtime",
        e.rt.path(),
        "dl",
        "sh",
        "-c",
        "cat /dl/data.txt; stat -c %a /dl/data.txt; cat /ifaces",
    ]);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines, ["downloaded content", "600", "1"], "{got}");
    // --network host: the RUN sees the host's interfaces.
    build_ok(
        &e,
        ctx.path(),
        &["--network", "host", "--no-cache", "-t", "dl:host"],
    );
    let got = e.ok(&[
        "run",
        "--rm",
        "--runtime",
        e.rt.path(),
        "dl:host",
        "cat",
        "/ifaces",
    ]);
    assert!(got.trim().parse::<u32>().expect("count") > 1, "{got}");
    e.err(
        &[
            "build",
            "--network",
            "weird",
            ctx.path().to_str().expect("utf8"),
        ],
        "--network",
    );
}
