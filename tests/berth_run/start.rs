//! `start` and `run -t` as docker 20.10 answers them (checked against a private dockerd): a
//! start whose command is missing or not executable exits 1 with one error line and leaves the
//! container Created with docker's 127/126 in `.State.ExitCode`; without `-a` the other names
//! still start; `-a`/`-i` take one container; `run -t` without `-i` runs with a terminal and
//! stdin left alone, whatever stdin is.

use crate::berth_common::ctr::{env, Env, Rt};
use crate::stderr;
use std::process::Stdio;

fn state(e: &Env, name: &str) -> String {
    e.inspect(name, "{{.State.Status}} {{.State.ExitCode}}")
}

fn start_failures(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    for (name, cmd) in [("nf", "nosuchcmd"), ("nx", "/etc/passwd")] {
        e.ok(&[
            "create",
            "--runtime",
            rt.path(),
            "--name",
            name,
            "busybox",
            cmd,
        ]);
    }
    e.ok(&[
        "create",
        "--runtime",
        rt.path(),
        "--name",
        "good",
        "busybox",
        "echo",
        "ran inside",
    ]);
    // Not found: exit 1, one line, Created with 127 and the error recorded.
    let err = e.err(&["start", "nf"], "executable file not found in $PATH");
    assert_eq!(
        err,
        "Error: exec: \"nosuchcmd\": executable file not found in $PATH\n"
    );
    assert_eq!(state(&e, "nf"), "created 127");
    // Not executable: 126; `start -a` answers the same way.
    e.err(
        &["start", "-a", "nx"],
        "exec: \"/etc/passwd\": permission denied",
    );
    assert_eq!(state(&e, "nx"), "created 126");
    assert!(e
        .inspect("nx", "{{.State.Error}}")
        .contains("permission denied"));
    // Several names: a failure does not stop the others; each failure is its own line.
    let o = e.run(&["start", "nf", "good", "nx"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "good\n");
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(err.lines().all(|l| l.starts_with("Error: exec: ")), "{err}");
    let _ = e.run(&["wait", "good"]);
    assert_eq!(e.ok(&["logs", "good"]), "ran inside\n");
    assert_eq!(state(&e, "good"), "exited 0");
    // A later good start clears the failure's record (docker resets both).
    e.ok(&["start", "-a", "good"]);
    assert_eq!(state(&e, "good"), "exited 0");
    // -a and -i take one container.
    let o = e.run(&["start", "-a", "good", "nf"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "you cannot start and attach multiple containers at once\n"
    );
    assert_eq!(state(&e, "nf"), "created 127", "nothing was started");
}
both!(start_failures, 46);

/// docker's `run -t` without `-i`: a terminal inside, stdin not attached, so a pipe on berth's
/// stdin neither fails the run nor reaches the container.
fn tty_without_stdin(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    let args = e.run_args(&[
        "--rm",
        "-t",
        "busybox",
        "sh",
        "-c",
        "tty; read -t 1 x; echo \"got[$x]\"",
    ]);
    let o = e.run_stdin(&args, b"from the pipe\n");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("/dev/pts/"), "a terminal inside: {out:?}");
    assert!(out.ends_with("got[]\r\n"), "stdin stays detached: {out:?}");
    // With -i, a pipe is no terminal: docker's one line and exit 1, nothing left.
    let mut args = e.run_args(&["-it", "busybox", "true"]);
    args.insert(1, "--rm");
    let o = e.cmd(&args).stdin(Stdio::piped()).output().expect("berth");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "the input device is not a TTY\n");
    assert_eq!(e.container_count(), 0);
}
both!(tty_without_stdin, 47);
