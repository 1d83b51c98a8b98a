//! berth's terminals as a docker user meets them, typed into a real pty
//! (a private tmux server): window sizes reaching run, attach and exec,
//! the detach keys, signal proxying, and `-it` without a terminal.

#[path = "../berth_common/mod.rs"]
#[macro_use]
mod berth_common;
mod tmux;

use berth_common::ctr::{env, Env, Rt};
use std::io::Write;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};
use tmux::Tmux;

/// Whether tmux is here (hack/deps.sh installs it); prints the SKIP.
fn have_tmux() -> bool {
    if !berth_common::have("tmux") {
        eprintln!("SKIP: tmux not installed (hack/deps.sh)");
        return false;
    }
    true
}

/// Runs berth with `input` on a pipe as stdin; fails the test if it takes
/// over 20 s (a hang is the bug some of these guard against).
fn piped(e: &Env, args: &[&str], input: &[u8]) -> Output {
    let mut child = e
        .cmd(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning berth");
    {
        let mut i = child.stdin.take().expect("stdin");
        let _ = i.write_all(input);
    }
    let end = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            let o = child.wait_with_output().expect("wait");
            panic!("berth {args:?} hung: {o:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn assert_not_a_tty(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(1), "{what}: {o:?}");
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "the input device is not a TTY\n",
        "{what}"
    );
}

/// Resizes the pane and asks the shell inside for its size until it
/// answers with the new one (`n`: answers of that size so far + 1). Asked
/// again after a while: the SIGWINCH relay and the typed keys travel
/// separately, and the keys may arrive first.
fn resized_inside(t: &Tmux, cols: u16, rows: u16, n: usize) {
    t.resize(cols, rows);
    let needle = format!("\n{rows} {cols}");
    for _ in 0..5 {
        t.line("stty size");
        if t.within(&needle, n, Duration::from_secs(3)).is_ok() {
            return;
        }
    }
    panic!("the container never saw {rows}x{cols}:\n{}", t.screen());
}

/// `stty size` inside follows the terminal berth runs in: at start, after
/// a resize, for run, attach and exec.
fn resize_reaches_container(rt: Rt, idx: u32) {
    if !have_tmux() {
        return;
    }
    let Some(e) = env(idx, rt) else { return };
    let t = Tmux::start(&e, 100, 30);
    t.line(&format!(
        "$B run -it --name sz --runtime {} busybox sh; echo R1=$?",
        rt.path()
    ));
    t.wait_for("/ # ");
    assert_eq!(t.pane_size(), "30 100");
    t.line("stty size");
    t.wait_for("\n30 100");
    resized_inside(&t, 120, 40, 1);
    // Detach, resize while away, attach: the new size is sent at attach.
    t.keys(&["C-p", "C-q"]);
    t.wait_for("R1=0");
    assert_eq!(e.inspect("sz", "{{.State.Running}}"), "true");
    t.resize(90, 25);
    t.line("$B attach sz; echo A1=$?");
    t.line("stty size");
    t.wait_for("\n25 90");
    resized_inside(&t, 110, 35, 1);
    t.keys(&["C-p", "C-q"]);
    t.wait_for("A1=1");
    // exec -it: the client sizes the exec's own pty.
    t.line("$B exec -it -e PS1=in-exec# sz sh; echo E1=$?");
    t.wait_for_n("in-exec#", 2);
    t.line("stty size");
    t.wait_for_n("\n35 110", 2);
    resized_inside(&t, 80, 20, 1);
    t.line("exit 3");
    t.wait_for("E1=3");
    // A one-shot exec has the size from its first instruction (it runs
    // before any resize could reach it: process.consoleSize).
    t.line("$B exec -t sz stty size; echo E2=$?");
    t.wait_for("E2=0");
    t.wait_for_n("\n20 80", 2);
    // The exec'd process gets SIGWINCH itself (no signal mask inherited from berth).
    t.line(
        "$B exec -it -e X=SEEN sz sh -c 'trap \"echo WINCH-\\$X\" WINCH; echo ready; \
         while :; do sleep 0.1; done'; echo E3=$?",
    );
    t.wait_for("\nready");
    t.resize(70, 18);
    t.wait_for("WINCH-SEEN");
    t.keys(&["C-c"]);
    t.wait_for("E3=130");
    assert_eq!(e.inspect("sz", "{{.State.Running}}"), "true");
}
both!(resize_reaches_container, 43);

/// Ctrl-P is held back only until the next key; Ctrl-P Ctrl-Q detaches
/// and leaves the container running; `--detach-keys` sets another
/// sequence for attach and exec, which print docker's message.
fn detach_keys(rt: Rt, idx: u32) {
    if !have_tmux() {
        return;
    }
    let Some(e) = env(idx, rt) else { return };
    let t = Tmux::start(&e, 100, 40);
    t.line(&format!(
        "$B run -it --name dk --runtime {} busybox sh -c \
         'echo go; read l; echo \"$l\" | od -c; read l; echo \"got:$l\" | od -c; sleep 1000'; echo D1=$?",
        rt.path()
    ));
    t.wait_for("\ngo\n");
    // A lone Ctrl-P followed by another key: both reach the container.
    t.keys(&["x", "C-p", "y", "Enter"]);
    t.wait_for("x 020   y");
    t.keys(&["C-p", "C-q"]);
    let s = t.wait_for("D1=0");
    // run detaches quietly, as docker's.
    assert!(!s.contains("read escape sequence"), "{s}");
    assert_eq!(e.inspect("dk", "{{.State.Running}}"), "true");
    // Another sequence: Ctrl-P is an ordinary key now.
    t.line("$B attach --detach-keys ctrl-x,e dk; echo D2=$?");
    t.keys(&["C-p", "z", "Enter"]);
    t.wait_for("g   o   t   : 020   z");
    t.keys(&["C-x", "e"]);
    let s = t.wait_for("D2=1");
    assert!(s.contains("read escape sequence"), "{s}");
    assert_eq!(e.inspect("dk", "{{.State.Running}}"), "true");
    // exec: detaching leaves the exec'd process running.
    t.line("$B exec -it --detach-keys ctrl-a -e PS1=ex# dk sh; echo D3=$?");
    t.wait_for_n("ex#", 2);
    t.keys(&["C-a"]);
    let s = t.wait_for("D3=1");
    assert!(s.matches("read escape sequence").count() >= 2, "{s}");
    let ps = e.ok(&["exec", "dk", "ps", "-o", "args"]);
    assert!(
        ps.lines().any(|l| l.trim() == "sh"),
        "detached exec gone:\n{ps}"
    );
    // A bad sequence: one line naming the flag, nothing created.
    e.err(
        &["attach", "--detach-keys", "ctrl-1", "dk"],
        "--detach-keys",
    );
    let n = e.container_count();
    e.err(
        &e.run_args(&["-t", "--detach-keys", "shift-a", "busybox", "true"]),
        "--detach-keys",
    );
    assert_eq!(e.container_count(), n);
}
both!(detach_keys, 44);

/// `attach` proxies SIGINT to a non-tty container (Ctrl-C stops it, 130);
/// with `--sig-proxy=false` Ctrl-C ends only the client; foreground `run`
/// proxies too.
#[test]
fn sig_proxy() {
    if !have_tmux() {
        return;
    }
    let Some(e) = env(90, Rt::Hull) else { return };
    let t = Tmux::start(&e, 100, 40);
    // The output words ($w$w, "CAUGHT $w") never appear in a typed line.
    let looping = |word: &str| {
        format!(
            r#"w={word}; trap "echo CAUGHT \$w; exit 130" INT; while :; do echo $w$w; sleep 0.2; done"#
        )
    };
    e.ok(&e.run_args(&[
        "-d",
        "--name",
        "sp",
        "busybox",
        "sh",
        "-c",
        &looping("tick"),
    ]));
    e.ok(&e.run_args(&[
        "-d",
        "--name",
        "sp2",
        "busybox",
        "sh",
        "-c",
        &looping("tock"),
    ]));
    t.line("$B attach sp; echo S1=$?");
    t.wait_for("ticktick");
    t.keys(&["C-c"]);
    t.wait_for("CAUGHT tick");
    t.wait_for("S1=130");
    assert_eq!(e.inspect("sp", "{{.State.ExitCode}}"), "130");
    // The client dies of the SIGINT, and the shell drops the rest of the
    // line: ask for its status on the next one.
    t.line("$B attach --sig-proxy=false sp2");
    t.wait_for("tocktock");
    t.keys(&["C-c"]);
    t.line("echo S2=$?");
    let s = t.wait_for("S2=130");
    assert!(!s.contains("CAUGHT tock"), "{s}");
    assert_eq!(e.inspect("sp2", "{{.State.Running}}"), "true");
    t.line(&format!(
        "$B run --rm --name sp3 busybox sh -c '{}'; echo S3=$?",
        looping("tack")
    ));
    t.wait_for("tacktack");
    t.keys(&["C-c"]);
    t.wait_for("CAUGHT tack");
    t.wait_for("S3=130");
}

/// `-it` with a stdin that is not a terminal fails at once, creating
/// nothing; `-i` alone relays a pipe and its EOF.
#[test]
fn not_a_tty_and_plain_stdin() {
    let Some(e) = env(91, Rt::Hull) else { return };
    let o = piped(&e, &e.run_args(&["-it", "busybox", "sh"]), b"echo hi\n");
    assert_not_a_tty(&o, "run -it");
    assert_eq!(e.container_count(), 0, "run -it left a container");
    e.ok(&e.run_args(&["-d", "-it", "--name", "live", "busybox", "sh"]));
    assert_not_a_tty(&piped(&e, &["exec", "-it", "live", "sh"], b""), "exec -it");
    assert_not_a_tty(&piped(&e, &["attach", "live"], b""), "attach");
    e.ok(&["create", "-it", "--name", "made", "busybox", "sh"]);
    assert_not_a_tty(&piped(&e, &["start", "-ai", "made"], b""), "start -ai");
    assert_eq!(e.inspect("made", "{{.State.Status}}"), "created");
    // -t alone does not read stdin: no check, as docker's.
    let o = piped(
        &e,
        &e.run_args(&["-t", "--rm", "busybox", "echo", "ok"]),
        b"",
    );
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    // -i without -t: data through, EOF closes the process' stdin.
    let o = piped(
        &e,
        &["exec", "-i", "live", "sh", "-c", "cat; echo eof"],
        b"one\n",
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "one\neof\n");
    e.ok(&[
        "create",
        "-i",
        "--name",
        "si",
        "busybox",
        "sh",
        "-c",
        "cat; echo end",
    ]);
    let o = piped(&e, &["start", "-ai", "si"], b"two\n");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "two\nend\n");
    assert_eq!(o.status.code(), Some(0));
}
