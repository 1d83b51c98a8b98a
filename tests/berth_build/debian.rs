//! A real Debian bookworm base: a RUN that apt-get installs a server from Debian's archive
//! (through the default bridge's NAT), the built image serving on a published port, and the
//! image saved into podman (which runs it) and read by skopeo.

use super::berth_common::ctr::{env, http_get, Rt};
use super::berth_common::{debian_image, free_port, have, podman, podman_ok};
use super::{build_ok, context, IDX};
use std::process::Command;

const DOCKERFILE: &str = "FROM debian:bookworm
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends lighttpd \\
 && rm -rf /var/lib/apt/lists/*
COPY index.html /var/www/html/index.html
EXPOSE 80
CMD [\"lighttpd\", \"-D\", \"-f\", \"/etc/lighttpd/lighttpd.conf\"]
";

#[test]
fn apt_get_server_then_podman_and_skopeo() {
    let Some(e) = env(IDX + 10, Rt::Hull) else {
        return;
    };
    if !debian_image(&e.root, "debian:bookworm", "") {
        return;
    }
    let ctx = context(&[
        ("Dockerfile", DOCKERFILE),
        ("index.html", "built by berth\n"),
    ]);
    let out = build_ok(&e, ctx.path(), &["-t", "web:v1"]);
    assert!(out.contains("Setting up lighttpd"), "{out}");
    let port = free_port();
    let publish = format!("{port}:80");
    e.ok(&[
        "run",
        "-d",
        "--runtime",
        e.rt.path(),
        "--name",
        "web",
        "-p",
        &publish,
        "web:v1",
    ]);
    let page = http_get(port);
    assert!(page.contains("built by berth"), "{page}");
    e.ok(&["rm", "-f", "web"]);

    // berth save -> podman load -> podman run; skopeo reads the archive.
    if !have("podman") || !have("skopeo") {
        eprintln!("SKIP: podman or skopeo not installed (hack/deps.sh)");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let arch = dir.path().join("web.tar");
    let a = arch.to_str().expect("utf8");
    e.ok(&["save", "-o", a, "web:v1"]);
    let o = Command::new("skopeo")
        .args(["inspect", &format!("docker-archive:{a}")])
        .output()
        .expect("skopeo");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("skopeo json");
    assert_eq!(v["Layers"].as_array().map(Vec::len), Some(3), "{v}");
    podman_ok(dir.path(), &["load", "-i", a]);
    // runc and cgroupfs: crun refuses hybrid cgroup hosts; limits under the test's hard ones.
    let run = |cmd: &[&str]| {
        let mut args = vec![
            "--runtime",
            "runc",
            "--cgroup-manager",
            "cgroupfs",
            "run",
            "--rm",
            "--net",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
            "web:v1",
        ];
        args.extend_from_slice(cmd);
        podman_ok(dir.path(), &args)
    };
    let got = run(&["cat", "/var/www/html/index.html"]);
    assert_eq!(got.trim(), "built by berth");
    let got = run(&["sh", "-c", "command -v lighttpd"]);
    assert!(got.contains("lighttpd"), "{got}");
    let _ = podman(dir.path(), &["rmi", "-a", "-f"]);
}
