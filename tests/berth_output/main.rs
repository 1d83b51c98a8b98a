//! berth's output as a docker user reads it: Go templates on every
//! `--format`, `images` sizes and filters, `diff`, `top`, `stats`, closed
//! pipes, prune prompts and the `container/image/network/volume` sub-forms.
//! Real containers (busybox, hull runtime), one berth root per test.

#[path = "../berth_common/mod.rs"]
mod berth_common;

mod cp_links;
mod cp_logs;
mod flags;

use berth_common::ctr::{env, Env, Rt};
use std::process::Stdio;

/// `cp SRC -` (a container path as a tar on stdout), kept as `dir/out.tar`; `tar tvf`'s listing.
pub fn cp_tar_listing(e: &Env, src: &str, dir: &std::path::Path) -> String {
    let o = e.run(&["cp", src, "-"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::write(dir.join("out.tar"), &o.stdout).expect("write tar");
    let list = std::process::Command::new("tar")
        .arg("tvf")
        .arg(dir.join("out.tar"))
        .output()
        .expect("tar");
    String::from_utf8_lossy(&list.stdout).into_owned()
}

fn sleeper(e: &Env, name: &str, extra: &[&str]) {
    let mut args = vec!["-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sleep", "1000"]);
    e.ok(&e.run_args(&args));
}

#[test]
fn templates_on_every_format() {
    let Some(e) = env(60, Rt::Hull) else { return };
    sleeper(&e, "web", &["-l", "tier=front", "-l", "team=blue"]);
    // ps: docker's field names, functions and control flow.
    let out = e.ok(&[
        "ps",
        "--format",
        r#"{{.Names}}|{{.Label "tier"}}|{{upper .State}}|{{title .Names}}|{{len .Names}}|{{printf "%-5s|%03d" .Image 7}}|{{join (split .Labels ",") ";"}}|{{if eq .State "running"}}up{{else}}down{{end}}|{{index (split .Image "b") 1}}|{{lower "ABC"}}"#,
    ]);
    assert_eq!(
        out,
        "web|front|RUNNING|Web|3|busybox|007|team=blue;tier=front|up|usy|abc\n"
    );
    // table: docker's headers, tab-aligned columns (minwidth 10, padding 3).
    let out = e.ok(&[
        "ps",
        "--format",
        "table {{.ID}}\\t{{.Names}}\\t{{.RunningFor}}\\t{{.Networks}}",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("CONTAINER ID   NAMES     CREATED"),
        "{out}"
    );
    assert!(
        lines[1].contains("   web       ") && lines[1].ends_with("bridge"),
        "{out}"
    );
    // json: one object a line, docker's keys.
    let out = e.ok(&["ps", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json line");
    assert_eq!(v["Names"], "web");
    assert_eq!(v["Labels"], "team=blue,tier=front");
    assert_eq!(v["State"], "running");
    // inspect on each kind of object, with --type choosing among them.
    assert_eq!(
        e.inspect(
            "web",
            "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}} {{end}}{{json .State.Running}}"
        ),
        "team=blue tier=front true"
    );
    let img = e.ok(&["inspect", "--type", "image", "-f", "{{.Id}}", "busybox"]);
    assert!(img.starts_with("sha256:"), "{img}");
    e.ok(&["volume", "create", "--label", "k=v", "vol1"]);
    assert_eq!(
        e.ok(&[
            "inspect",
            "--type",
            "volume",
            "-f",
            "{{.Name}} {{.Labels.k}}",
            "vol1"
        ]),
        "vol1 v\n"
    );
    assert_eq!(
        e.ok(&[
            "network",
            "inspect",
            "-f",
            "{{.Name}}/{{.Driver}}",
            "bridge"
        ]),
        "bridge/bridge\n"
    );
    assert_eq!(
        e.ok(&["volume", "inspect", "--format", "{{.Driver}}", "vol1"]),
        "local\n"
    );
    e.err(
        &["inspect", "--type", "network", "web"],
        "network web not found",
    );
    // Lists: images, history, network ls, volume ls, stats.
    assert_eq!(
        e.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]),
        "busybox:latest\n"
    );
    let h = e.ok(&["history", "--format", "{{.ID}} {{.CreatedBy}}", "busybox"]);
    assert!(h.lines().count() >= 1 && h.starts_with(&img[7..19]), "{h}");
    let n = e.ok(&["network", "ls", "--format", "table {{.Name}}\\t{{.Driver}}"]);
    assert!(n.starts_with("NAME      DRIVER\nbridge    bridge\n"), "{n}");
    assert_eq!(
        e.ok(&["volume", "ls", "--format", "{{.Name}} {{.Label \"k\"}}"]),
        "vol1 v\n"
    );
    let s = e.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}} {{.Container}}",
        "web",
    ]);
    assert_eq!(s, "web 1 web\n");
    // A bad template: one error line, exit 1, nothing on stdout.
    for (args, needle) in [
        (vec!["ps", "--format", "{{.Names"], "unclosed action"),
        (vec!["ps", "--format", "{{nosuch .Names}}"], "nosuch"),
        (vec!["inspect", "-f", "{{if .Id}}x", "web"], "{{end}}"),
        (
            vec!["images", "--format", "{{.ID.X}}"],
            "can't evaluate field X",
        ),
    ] {
        let o = e.run(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?} printed {:?}", o.stdout);
        e.err(&args, needle);
    }
}

/// The bytes of every non-directory under `dir`, as docker sums a layer.
fn tree_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .flatten()
        .map(|e| {
            let m = std::fs::symlink_metadata(e.path()).expect("lstat");
            if m.is_dir() {
                tree_bytes(&e.path())
            } else {
                m.len()
            }
        })
        .sum()
}

#[test]
fn images_sizes_and_filters() {
    let Some(e) = env(61, Rt::Hull) else { return };
    e.ok(&["tag", "busybox", "other/bb:v2"]);
    // A second image, unnamed (dangling), made from a small tar.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("f"), vec![b'x'; 5000]).expect("write");
    let tar = dir.path().join("small.tar");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .arg("-cf")
        .arg(&tar)
        .arg("f")
        .status()
        .expect("tar");
    assert!(st.success());
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let small_id = e.ok(&["import", tar.to_str().expect("utf8")]);
    let rows = e.ok(&[
        "images",
        "--format",
        "{{.Repository}} {{.Tag}} {{.ID}} {{.Size}}",
    ]);
    let rows: Vec<&str> = rows.lines().collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    // One row per tag, the same id and size for both tags of busybox.
    let bb: Vec<&&str> = rows.iter().filter(|r| !r.starts_with("<none>")).collect();
    assert_eq!(bb.len(), 2, "{rows:?}");
    let tail = |r: &str| r.split(' ').skip(2).collect::<Vec<_>>().join(" ");
    assert_eq!(tail(bb[0]), tail(bb[1]));
    // The uncompressed size: the unpacked layer's bytes.
    let snaps: Vec<_> = std::fs::read_dir(e.root.join("snapshots"))
        .expect("snapshots")
        .flatten()
        .map(|d| d.path().join("fs"))
        .collect();
    let busybox_bytes = snaps
        .iter()
        .map(|s| tree_bytes(s))
        .max()
        .expect("a snapshot");
    let size = e.ok(&["images", "--format", "{{.Size}}", "busybox"]);
    assert_eq!(size.trim(), human_size(busybox_bytes), "{busybox_bytes}");
    assert_eq!(
        e.ok(&[
            "images",
            "--filter",
            "dangling=true",
            "--format",
            "{{.Repository}}:{{.Tag}} {{.Size}}"
        ]),
        "<none>:<none> 5kB\n"
    );
    let q = e.ok(&["images", "-q", "--no-trunc", "-f", "dangling=true"]);
    assert_eq!(q.trim(), small_id.trim());
    assert_eq!(
        e.ok(&[
            "images",
            "-f",
            "reference=other/*",
            "--format",
            "{{.Repository}}"
        ]),
        "other/bb\n"
    );
    assert_eq!(
        e.ok(&[
            "images",
            "-f",
            "reference=*:latest",
            "--format",
            "{{.Repository}}"
        ]),
        "busybox\n"
    );
    assert_eq!(
        e.ok(&["images", "-a", "-f", "since=busybox", "-q"]).trim(),
        &small_id.trim()[7..19]
    );
    assert_eq!(e.ok(&["images", "-f", "before=busybox", "-q"]), "");
    assert_eq!(e.ok(&["images", "-f", "label=nope", "-q"]), "");
    let d = e.ok(&["images", "--digests", "busybox"]);
    assert!(
        d.starts_with("REPOSITORY   TAG       DIGEST") && d.contains("sha256:"),
        "{d}"
    );
    e.err(&["images", "-f", "colour=red"], "invalid filter 'colour'");
}

/// docker's units.HumanSize (4 significant digits, decimal units).
fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let s = format!(
        "{:.*}",
        3usize.saturating_sub(v.log10().floor() as usize),
        v
    );
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", units[i])
}

#[test]
fn diff_top_stats_and_closed_pipes() {
    let Some(e) = env(62, Rt::Hull) else { return };
    sleeper(&e, "web", &[]);
    // berth's own /etc/hosts, hostname and resolv.conf are not changes.
    assert_eq!(e.ok(&["diff", "web"]), "");
    e.ok(&["exec", "web", "sh", "-c", "echo x > /etc/added; mkdir /new"]);
    assert_eq!(e.ok(&["diff", "web"]), "C /etc\nA /etc/added\nA /new\n");
    // top with ps options, rows only of the container's processes.
    let pid = e.inspect("web", "{{.State.Pid}}");
    let top = e.ok(&["top", "web", "aux"]);
    let lines: Vec<&str> = top.lines().collect();
    assert!(
        lines[0].starts_with("USER") && lines[0].contains("%CPU"),
        "{top}"
    );
    assert_eq!(lines.len(), 2, "{top}");
    assert!(
        lines[1].contains(&pid) && lines[1].ends_with("sleep 1000"),
        "{top}"
    );
    let top = e.ok(&["container", "top", "web", "-o", "pid,comm"]);
    assert_eq!(
        top.split_whitespace().collect::<Vec<_>>(),
        ["PID", "COMMAND", &pid, "sleep"]
    );
    e.err(&["top", "web", "-o", "nosuchfield"], "ps -o nosuchfield");
    // stats: docker's columns, full ids with --no-trunc.
    let id = e.inspect("web", "{{.Id}}");
    let s = e.ok(&["stats", "--no-stream", "--no-trunc"]);
    assert!(s.starts_with("CONTAINER ID"), "{s}");
    assert!(s.contains(&id) && s.contains("MEM USAGE / LIMIT"), "{s}");
    // A closed pipe ends a printing command quietly (SIGPIPE), never a panic.
    e.ok(&e.run_args(&["--name", "chatty", "busybox", "sh", "-c", "seq 1 20000"]));
    for args in [vec!["ps", "-a"], vec!["logs", "chatty"], vec!["images"]] {
        let mut child = e
            .cmd(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        drop(child.stdout.take());
        let o = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            !err.contains("panicked") && err.is_empty(),
            "{args:?}: {err}"
        );
        use std::os::unix::process::ExitStatusExt;
        assert!(
            o.status.success() || o.status.signal() == Some(libc::SIGPIPE),
            "{args:?}: {:?}",
            o.status
        );
    }
    // The same through a shell pipe, as a user types it.
    let cmd = format!(
        "{} --root {} logs chatty | head -1",
        berth_common::BERTH,
        e.root.display()
    );
    let o = std::process::Command::new("sh")
        .args(["-c", &cmd])
        .output()
        .expect("sh");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "1\n");
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn prune_prompts_and_sub_forms() {
    let Some(e) = env(65, Rt::Hull) else { return };
    e.ok(&e.run_args(&["--name", "done", "busybox", "true"]));
    // "n" (or nothing) keeps everything; "y" prunes.
    let o = e.run_stdin(&["container", "prune"], b"n\n");
    assert!(o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] "
    );
    assert_eq!(e.ok(&["container", "ls", "-aq"]).lines().count(), 1);
    let o = e.run_stdin(&["container", "prune"], b"");
    assert!(o.status.success());
    assert_eq!(e.ok(&["ps", "-aq"]).lines().count(), 1);
    let o = e.run_stdin(&["container", "prune"], b"y\n");
    assert!(o.status.success());
    assert_eq!(e.ok(&["ps", "-aq"]), "");
    e.ok(&["volume", "create", "v1"]);
    let o = e.run_stdin(&["volume", "prune", "-a"], b"N\n");
    assert!(String::from_utf8_lossy(&o.stdout)
        .starts_with("WARNING! This will remove all local volumes"));
    assert_eq!(e.ok(&["volume", "ls", "-q"]), "v1\n");
    e.ok(&["volume", "prune", "-a", "-f"]);
    assert_eq!(e.ok(&["volume", "list", "-q"]), "");
    let o = e.run_stdin(&["image", "prune", "-a"], b"no\n");
    assert!(String::from_utf8_lossy(&o.stdout).contains("[y/N]"));
    assert_eq!(e.ok(&["image", "ls", "-q"]).lines().count(), 1);
    let o = e.run_stdin(&["network", "prune"], b"\n");
    assert!(String::from_utf8_lossy(&o.stdout).contains("custom networks"));
    // Sub-forms reach the same commands.
    sleeper(&e, "web", &["-p", "127.0.0.1::80"]);
    assert_eq!(
        e.ok(&["container", "ls", "--format", "{{.Names}}"]),
        "web\n"
    );
    assert_eq!(e.ok(&["container", "ps", "-q"]).lines().count(), 1);
    assert_eq!(
        e.ok(&["container", "inspect", "-f", "{{.Name}}", "web"]),
        "/web\n"
    );
    e.err(
        &["container", "inspect", "busybox"],
        "No such container: busybox",
    );
    assert!(e
        .ok(&["container", "port", "web"])
        .starts_with("80/tcp -> 127.0.0.1:"));
    e.ok(&["container", "exec", "web", "touch", "/x"]);
    assert_eq!(e.ok(&["container", "diff", "web"]), "A /x\n");
    e.ok(&["container", "rename", "web", "web2"]);
    e.ok(&["container", "logs", "web2"]);
    e.ok(&["container", "stats", "--no-stream", "web2"]);
    e.ok(&["container", "stop", "-t", "1", "web2"]);
    e.ok(&["container", "rm", "web2"]);
    e.ok(&["image", "tag", "busybox", "bb:1"]);
    assert_eq!(
        e.ok(&["image", "inspect", "-f", "{{join .RepoTags \",\"}}", "bb:1"]),
        "busybox:latest,bb:1\n"
    );
    e.ok(&["image", "history", "-q", "bb:1"]);
    e.ok(&["image", "rm", "bb:1"]);
    let tar = berth_common::ctr::busybox_tar().to_str().expect("utf8");
    assert!(e
        .ok(&["image", "import", tar, "bb:2"])
        .starts_with("sha256:"));
    assert_eq!(e.ok(&["image", "list", "-q", "bb"]).lines().count(), 1);
    assert!(e.ok(&["network", "list", "-q"]).lines().count() >= 1);
    e.err(&["image", "inspect", "web2"], "No such image: web2");
}
