//! The day-to-day commands on a busybox project: `up` attached (prefixed logs, Ctrl-C stops
//! the project), start, ps, port, pause/unpause, restart, exec, run --rm, top, config, kill,
//! rm, down.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::berth_common::ctr::http_get;
use super::berth_common::free_port;
use super::{project, Proj};

fn compose_yaml(p: &Proj, port: u16) -> String {
    format!(
        r#"x-common: &common
  image: busybox
  init: true
services:
  web:
    <<: *common
    command: httpd -f -p 80 -h /var/www
    ports: ["127.0.0.1:{port}:80"]
    healthcheck:
      test: ["CMD", "wget", "-qO-", "http://127.0.0.1/"]
      interval: 1s
      retries: 30
  echo:
    <<: *common
    command: ["sh", "-c", "echo hello-from-$$(hostname); exec sleep 1000"]
    hostname: echo-host
    depends_on:
      web:
        condition: service_healthy
{}"#,
        p.networks_yaml()
    )
}

fn state(p: &Proj, svc: &str) -> String {
    p.inspect(&p.container(svc, 1), "{{.State.Status}}")
}

/// `up` in the foreground until `needle` is printed, then Ctrl-C; its stdout.
fn up_attached_then_interrupt(p: &Proj, needle: &str) -> String {
    let mut child =
        p.e.cmd(&["compose", "-p", &p.name, "up"])
            .current_dir(&p.dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning compose up");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut seen = String::new();
    let end = Instant::now() + Duration::from_secs(60);
    while !seen.contains(needle) {
        assert!(Instant::now() < end, "up never printed {needle:?}: {seen}");
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push_str(&l);
            seen.push('\n');
        }
    }
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT to up");
    let st = child.wait().expect("waiting for up");
    assert!(st.success(), "up after Ctrl-C: {st:?}");
    seen
}

#[test]
fn attached_up_and_the_service_commands() {
    let Some(p) = project(4, "cmds") else { return };
    let port = free_port();
    p.write("compose.yaml", &compose_yaml(&p, port));

    let out = up_attached_then_interrupt(&p, "hello-from-echo-host");
    assert!(
        out.lines()
            .any(|l| l.starts_with("echo-1  | hello-from-echo-host")),
        "{out}"
    );
    assert_eq!(state(&p, "web"), "exited", "Ctrl-C stops the project");
    assert_eq!(state(&p, "echo"), "exited");

    p.ok(&["start"]);
    assert_eq!(state(&p, "echo"), "running");
    assert!(http_get(port).contains("hello from busybox httpd"));
    assert_eq!(
        p.ok(&["port", "web", "80"]).trim(),
        format!("127.0.0.1:{port}")
    );
    let json = p.ok(&["ps", "--format", "json"]);
    let rows: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("ps json"))
        .collect();
    assert_eq!(rows.len(), 2, "{json}");
    assert!(rows.iter().all(|r| r["State"] == "running"), "{json}");

    p.ok(&["pause", "echo"]);
    assert_eq!(state(&p, "echo"), "paused");
    p.ok(&["unpause", "echo"]);
    assert_eq!(state(&p, "echo"), "running");
    let before = p.inspect(&p.container("echo", 1), "{{.State.StartedAt}}");
    p.ok(&["restart", "echo"]);
    assert_ne!(
        p.inspect(&p.container("echo", 1), "{{.State.StartedAt}}"),
        before
    );

    // Services reach each other by name on the project network.
    let got = p.ok(&["exec", "-T", "echo", "wget", "-qO-", "http://web/"]);
    assert!(got.contains("hello from busybox httpd"), "{got}");
    let top = p.ok(&["top", "echo"]);
    assert!(top.contains("sleep 1000"), "{top}");
    assert_eq!(p.ok(&["config", "--services"]), "echo\nweb\n");

    let n = p.containers().len();
    let one = p.ok(&["run", "--rm", "-T", "--no-deps", "echo", "echo", "one-off"]);
    assert_eq!(one.trim(), "one-off");
    p.until(10, "run --rm removed its container", || {
        (p.containers().len() == n).then_some(())
    });

    p.ok(&["kill", "echo"]);
    p.until(10, "echo killed", || {
        (state(&p, "echo") == "exited").then_some(())
    });
    p.ok(&["rm", "-f", "echo"]);
    assert!(!p.containers().contains(&p.container("echo", 1)));
    p.ok(&["down"]);
    p.assert_clean(&[]);
}
