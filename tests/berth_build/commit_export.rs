//! `commit` (with -c/-m/-a), `export` and `import -c/-m`, each checked by running or reading
//! the result.

use super::berth_common::ctr::{env, Rt};
use super::{config, IDX};

#[test]
fn commit_export_import() {
    let Some(e) = env(IDX + 9, Rt::Hull) else {
        return;
    };
    let rt = e.rt.path();
    e.ok(&[
        "run",
        "--runtime",
        rt,
        "--name",
        "src",
        "busybox",
        "sh",
        "-c",
        "echo committed > /new.txt && rm /etc/group && mkdir -p /w",
    ]);
    let id = e.ok(&[
        "commit",
        "-c",
        "CMD [\"cat\", \"/new.txt\"]",
        "-c",
        "ENV MODE=prod",
        "-c",
        "WORKDIR /w",
        "-c",
        "EXPOSE 9000",
        "-m",
        "my message",
        "-a",
        "me <me@x>",
        "src",
        "committed:v1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let got = e.ok(&["run", "--rm", "--runtime", rt, "committed:v1"]);
    assert_eq!(got.trim(), "committed");
    let got = e.ok(&[
        "run",
        "--rm",
        "--runtime",
        rt,
        "committed:v1",
        "sh",
        "-c",
        "pwd; echo $MODE; ls /etc/group 2>&1; true",
    ]);
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines[0], "/w");
    assert_eq!(lines[1], "prod");
    assert!(
        lines[2].contains("No such file"),
        "deletion committed: {got}"
    );
    let c = config(&e, "committed:v1");
    assert!(c["ExposedPorts"]["9000/tcp"].is_object(), "{c}");
    let h = e.ok(&["history", "committed:v1"]);
    assert!(h.contains("my message"), "{h}");
    let out = e.ok(&["image", "inspect", "committed:v1"]);
    assert!(out.contains("me <me@x>"), "author: {out}");
    e.err(&["commit", "-c", "RUN echo no", "src"], "RUN");
    e.err(&["commit", "nosuchcontainer"], "nosuchcontainer");

    // export: the whole filesystem, changes included, as a plain tar.
    let dir = tempfile::tempdir().expect("tmp");
    let tar = dir.path().join("src.tar");
    e.ok(&["export", "-o", tar.to_str().expect("utf8"), "src"]);
    let mut names = Vec::new();
    let mut ar = tar::Archive::new(std::fs::File::open(&tar).expect("tar"));
    for ent in ar.entries().expect("entries") {
        let ent = ent.expect("entry");
        names.push(ent.path().expect("path").to_string_lossy().into_owned());
    }
    assert!(names.contains(&"new.txt".to_string()), "{names:?}");
    assert!(names.contains(&"bin/busybox".to_string()), "{names:?}");
    assert!(!names.contains(&"etc/group".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.contains(".wh.")), "{names:?}");

    // import -c/-m: the exported tar as an image with a config.
    e.ok(&[
        "import",
        "-c",
        "ENTRYPOINT [\"/bin/cat\"]",
        "-c",
        "CMD [\"/new.txt\"]",
        "-c",
        "ENV A=1",
        "-c",
        "USER nobody",
        "-c",
        "LABEL k=v",
        "-c",
        "VOLUME /vol",
        "-m",
        "imported here",
        tar.to_str().expect("utf8"),
        "imp:v1",
    ]);
    let got = e.ok(&["run", "--rm", "--runtime", rt, "imp:v1"]);
    assert_eq!(got.trim(), "committed");
    let c = config(&e, "imp:v1");
    assert_eq!(c["User"], "nobody");
    assert_eq!(c["Labels"]["k"], "v");
    assert!(c["Volumes"]["/vol"].is_object(), "{c}");
    assert!(c["Env"].to_string().contains("A=1"), "{c}");
    assert!(e.ok(&["history", "imp:v1"]).contains("imported here"));
    e.err(
        &["import", "-c", "FROM x", tar.to_str().expect("utf8")],
        "FROM",
    );
    e.ok(&["rm", "src"]);
}
