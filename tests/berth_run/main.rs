//! berth run/create as a docker user types them, as root with real
//! containers: pulling a missing image, exit codes and failed starts,
//! `-h`, volumes; flags.rs and limits.rs hold the HostConfig flags.

#[path = "../berth_common/mod.rs"]
#[macro_use]
mod berth_common;

mod flags;
mod limits;
mod start;

use berth_common::ctr::{env, Env, Rt};
use berth_common::Registry;

// Test indexes 58..79 (bridge names and subnets apart from the other suites); `both!` is
// berth_common::ctr's.

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The state and error of the only container of the root.
fn only_container(e: &Env) -> (String, String) {
    let ids = e.ok(&["ps", "-aq"]);
    let id = ids.trim();
    assert_eq!(id.lines().count(), 1, "want one container: {ids:?}");
    (
        e.inspect(id, "{{.State.Status}}"),
        e.inspect(id, "{{.State.Error}}"),
    )
}

fn exit_codes(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    // 127: not found, one clear line (not the runtime's log record).
    let o = e.run(&e.run_args(&["--name", "nf", "busybox", "nosuchcmd"]));
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "Error: exec: \"nosuchcmd\": executable file not found in $PATH\n"
    );
    // The container stays, Created, with the error recorded (docker's run without --rm).
    let (status, error) = only_container(&e);
    assert_eq!(status, "created");
    assert!(error.contains("executable file not found"), "{error}");
    assert!(e.ok(&["ps", "-a"]).contains("Created"));
    e.ok(&["rm", "nf"]);
    // 126: found but not executable; --rm removes the failed container.
    let o = e.run(&e.run_args(&["--rm", "busybox", "/etc/passwd"]));
    assert_eq!(o.status.code(), Some(126), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "Error: exec: \"/etc/passwd\": permission denied\n"
    );
    assert_eq!(e.container_count(), 0, "--rm left the failed container");
    // 125: berth itself failed (bad flag, no such image, bad value); nothing left.
    let o = e.run(&e.run_args(&["--bogus-flag", "busybox", "true"]));
    assert_eq!(o.status.code(), Some(125));
    let o = e.run(&e.run_args(&["--pull", "never", "nosuchimage", "true"]));
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(stderr(&o), "Error: No such image: nosuchimage\n");
    let o = e.run(&["create", "--cpus", "-1", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    // The container's own exit status passes through; other commands keep exit 1.
    let o = e.run(&e.run_args(&["--rm", "busybox", "sh", "-c", "exit 3"]));
    assert_eq!(o.status.code(), Some(3));
    let o = e.run(&["rm", "nosuchcontainer"]);
    assert_eq!(o.status.code(), Some(1));
    // `start` of a container whose command is missing: exit 1 and still Created.
    e.ok(&["create", "--runtime", rt.path(), "busybox", "nosuchcmd"]);
    let id = e.ok(&["ps", "-aq"]);
    let o = e.run(&["start", id.trim()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("executable file not found"));
    assert_eq!(only_container(&e).0, "created");
    assert_eq!(e.container_count(), 1);
}
both!(exit_codes, 30);

fn hostname_flags(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    let out = e.ok(&e.run_args(&[
        "--rm",
        "-h",
        "web1",
        "--domainname",
        "example.com",
        "busybox",
        "sh",
        "-c",
        "hostname; cat /proc/sys/kernel/domainname; grep web1 /etc/hosts",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "web1");
    assert_eq!(lines[1], "example.com");
    assert!(lines[2].ends_with("\tweb1.example.com web1"), "{out}");
    // --help still prints help (exit 0), -h is not help.
    let o = e.run(&["run", "--help"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("--hostname"));
    // The host's network and UTS namespace come with the host's name.
    let host = nix::unistd::gethostname().unwrap();
    let host = host.to_string_lossy();
    let out = e.ok(&e.run_args(&["--rm", "--network", "host", "busybox", "hostname"]));
    assert_eq!(out.trim(), host);
    let out = e.ok(&e.run_args(&[
        "--rm",
        "--uts",
        "host",
        "busybox",
        "readlink",
        "/proc/self/ns/uts",
    ]));
    let mine = std::fs::read_link("/proc/self/ns/uts").unwrap();
    assert_eq!(out.trim(), mine.to_string_lossy());
    e.err(
        &e.run_args(&["--uts", "host", "-h", "x", "busybox", "true"]),
        "conflicting options",
    );
    e.err(
        &e.run_args(&["--uts", "container:x", "busybox"]),
        "invalid UTS mode",
    );
}
both!(hostname_flags, 31);

fn volume_paths(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    let t = tempfile::tempdir().unwrap();
    let missing = t.path().join("a/b/c");
    let v = format!("{}:/x", missing.display());
    let out = e.ok(&e.run_args(&[
        "--rm",
        "-v",
        &v,
        "busybox",
        "sh",
        "-c",
        "echo hi > /x/f && cat /x/f",
    ]));
    assert_eq!(out, "hi\n");
    assert!(missing.is_dir(), "-v did not create the host directory");
    assert_eq!(std::fs::read_to_string(missing.join("f")).unwrap(), "hi\n");
    // A relative host path is refused with docker's message, never resolved against cwd.
    for rel in ["../../etc:/x", "./d:/x", "d/e:/x"] {
        let o = e.run(&e.run_args(&["--rm", "-v", rel, "busybox", "true"]));
        assert_eq!(o.status.code(), Some(125));
        let err = stderr(&o);
        assert!(
            err.contains("includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1);
    }
    assert_eq!(e.container_count(), 0);
    assert_eq!(e.ok(&["volume", "ls", "-q"]), "");
    // --mount keeps refusing a missing bind source (docker's difference between the two).
    let m = format!(
        "type=bind,source={},target=/y",
        t.path().join("nope").display()
    );
    e.err(
        &e.run_args(&["--rm", "--mount", &m, "busybox", "true"]),
        "bind source path does not exist",
    );
    assert!(!t.path().join("nope").exists());
}
both!(volume_paths, 32);

/// `run` pulls a missing image with progress on stderr; `--pull never|always`.
#[test]
fn pull_on_run() {
    let Some(e) = env(2 * 33, Rt::Hull) else {
        return;
    };
    let Some(reg) = Registry::start(None) else {
        return;
    };
    std::fs::write(e.root.join("registries.conf"), format!("{}\n", reg.addr)).unwrap();
    let name = format!("{}/run/bb", reg.addr);
    e.ok(&["tag", "busybox", &name]);
    e.ok(&["push", &name]);
    e.ok(&["rmi", &name, "busybox"]);
    assert_eq!(e.ok(&["images", "-q"]), "");
    let o = e.run(&["run", "--rm", "--pull", "never", &name, "echo", "hi"]);
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(stderr(&o), format!("Error: No such image: {name}\n"));
    let o = e.run(&[
        "run",
        "--rm",
        "--platform",
        "linux/amd64",
        &name,
        "echo",
        "hi",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "hi\n",
        "stdout is the container's alone"
    );
    let err = stderr(&o);
    assert!(
        err.starts_with(&format!("Unable to find image '{name}:latest' locally\n")),
        "{err}"
    );
    assert!(
        err.contains("Pull complete") || err.contains("Download"),
        "no progress: {err}"
    );
    assert_eq!(e.ok(&["images", "-q"]).lines().count(), 1);
    // Present: no pull, no message.
    let o = e.run(&["run", "--rm", &name, "echo", "again"]);
    assert!(o.status.success());
    assert_eq!(stderr(&o), "");
    // always: asks the registry even though the image is here.
    let o = e.run(&["create", "--pull", "always", &name, "true"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("Unable to find"));
    assert!(!stderr(&o).is_empty(), "--pull always did not pull");
    e.err(
        &["run", "--pull", "sometimes", &name],
        "invalid pull option",
    );
    // A registry that does not have it: 125, no container.
    let missing = format!("{}/run/none", reg.addr);
    let o = e.run(&["run", "--rm", &missing, "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert_eq!(e.container_count(), 1);
}
