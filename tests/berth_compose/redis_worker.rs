//! A redis + worker app from a real Debian image: `deploy.replicas: 3`, `--scale`,
//! `restart: on-failure`, a profile, `.env` interpolation, two `-f` files merged,
//! `depends_on: service_healthy`, and `up` twice (the second a no-op; a changed service alone
//! is recreated).

use super::berth_common::debian_image;
use super::{project, Proj};

fn compose_yaml(p: &Proj) -> String {
    format!(
        r#"services:
  redis:
    image: ${{REDIS_IMAGE}}
    command: ["redis-server", "--protected-mode", "no", "--save", ""]
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
      interval: 1s
      timeout: 3s
      retries: 30
    networks:
      default:
        aliases: [cache]
  worker:
    image: ${{REDIS_IMAGE}}
    init: true
    # Reaches redis by its alias; counts itself in, then idles.
    command: ["sh", "-c", "redis-cli -h cache INCR hits | grep -q '^[0-9]' && exec sleep 1000"]
    deploy:
      replicas: 3
    restart: on-failure
    depends_on:
      redis:
        condition: service_healthy
    environment:
      GREETING: ${{GREETING:-unset}}
  flaky:
    image: busybox
    # Fails twice, succeeds the third time: restart on-failure brings it back.
    command: ["sh", "-c", "echo run >> /data/runs; test $$(wc -l < /data/runs) -ge 3"]
    restart: on-failure
    volumes: [runs:/data]
  debug:
    image: busybox
    profiles: [debug]
    init: true
    command: sleep 1000
volumes:
  runs: {{}}
{}"#,
        p.networks_yaml()
    )
}

fn extra_yaml(value: &str) -> String {
    format!("services:\n  worker:\n    environment:\n      EXTRA: {value}\n    labels:\n      tier: background\n")
}

/// (id, StartedAt) of a container.
fn identity(p: &Proj, c: &str) -> String {
    p.inspect(c, "{{.Id}} {{.State.StartedAt}}")
}

const FILES: [&str; 4] = ["-f", "compose.yaml", "-f", "extra.yaml"];

fn up(p: &Proj, extra: &[&str]) -> String {
    let mut a: Vec<&str> = FILES.to_vec();
    a.extend_from_slice(&["up", "-d"]);
    a.extend_from_slice(extra);
    p.ok(&a)
}

fn cmd(p: &Proj, args: &[&str]) -> String {
    let mut a: Vec<&str> = FILES.to_vec();
    a.extend_from_slice(args);
    p.ok(&a)
}

#[test]
fn redis_worker_replicas_scale_restart_profiles_idempotent_up() {
    let Some(p) = project(2, "rw") else { return };
    if !debian_image(&p.e.root, "redis:test", "redis-server") {
        return;
    }
    p.write(
        ".env",
        "GREETING=hello-from-dotenv\nREDIS_IMAGE=redis:test\n",
    );
    p.write("compose.yaml", &compose_yaml(&p));
    p.write("extra.yaml", &extra_yaml("one"));
    up(&p, &[]);
    let names = |svc: &str, n: u32| (1..=n).map(|i| p.container(svc, i)).collect::<Vec<_>>();
    let mut want = [names("flaky", 1), names("redis", 1), names("worker", 3)].concat();
    want.sort();
    assert_eq!(p.containers(), want, "debug is behind a profile");

    // Each worker reached redis by its alias once.
    p.until(60, "three workers counted", || {
        let v = cmd(&p, &["exec", "redis", "redis-cli", "GET", "hits"]);
        (v.trim() == "3").then_some(())
    });
    let env = cmd(&p, &["exec", "--index", "3", "worker", "env"]);
    assert!(env.contains("GREETING=hello-from-dotenv"), "{env}");
    assert!(env.contains("EXTRA=one"), "second -f file merged: {env}");
    let labels = p.inspect(&p.container("worker", 2), "{{json .Config.Labels}}");
    assert!(labels.contains(r#""tier":"background""#), "{labels}");
    assert!(
        labels.contains(r#""com.docker.compose.service":"worker""#),
        "{labels}"
    );

    // restart: on-failure ran flaky until it succeeded, on its named volume.
    let flaky = p.container("flaky", 1);
    p.until(60, "flaky to succeed", || {
        let s = p.inspect(&flaky, "{{.State.Status}} {{.State.ExitCode}}");
        (s == "exited 0").then_some(())
    });
    assert_eq!(p.inspect(&flaky, "{{.RestartCount}}"), "2");
    let vol = format!("{}_runs", p.name);
    let runs = p.e.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{vol}:/d"),
        "busybox",
        "cat",
        "/d/runs",
    ]);
    assert_eq!(runs, "run\nrun\nrun\n");

    let logs = cmd(&p, &["logs", "redis"]);
    assert!(
        logs.lines()
            .any(|l| l.starts_with("redis-1") && l.contains(" | ")),
        "{logs}"
    );
    assert!(logs.contains("Ready to accept connections"), "{logs}");
    let ls = p.ok(&["ls"]);
    assert!(ls.contains(&p.name) && ls.contains("running(4)"), "{ls}");

    // A second up changes nothing: the same containers, not restarted.
    let running: Vec<String> = [names("redis", 1), names("worker", 3)].concat();
    let before: Vec<String> = running.iter().map(|c| identity(&p, c)).collect();
    let flaky_id = p.inspect(&flaky, "{{.Id}}");
    up(&p, &[]);
    let after: Vec<String> = running.iter().map(|c| identity(&p, c)).collect();
    assert_eq!(before, after, "second up recreated or restarted something");
    assert_eq!(p.inspect(&flaky, "{{.Id}}"), flaky_id);

    // --scale down keeps the first two as they are.
    up(&p, &["--scale", "worker=2"]);
    assert!(!p.containers().contains(&p.container("worker", 3)));
    assert_eq!(identity(&p, &p.container("worker", 1)), before[1]);

    // Changing the worker recreates the workers only (and scales back to 3).
    p.write("extra.yaml", &extra_yaml("two"));
    let out = up(&p, &[]);
    assert_eq!(identity(&p, &p.container("redis", 1)), before[0], "{out}");
    for (i, c) in names("worker", 3).iter().enumerate() {
        let id = identity(&p, c);
        assert!(!before.contains(&id), "worker {} not recreated", i + 1);
    }
    let env = cmd(&p, &["exec", "worker", "env"]);
    assert!(env.contains("EXTRA=two"), "{env}");

    // The profile enables debug; nothing else moves.
    let mut a: Vec<&str> = FILES.to_vec();
    a.extend_from_slice(&["--profile", "debug", "up", "-d"]);
    p.ok(&a);
    assert!(p.containers().contains(&p.container("debug", 1)));
    assert_eq!(identity(&p, &p.container("redis", 1)), before[0]);

    let mut a: Vec<&str> = FILES.to_vec();
    a.extend_from_slice(&["--profile", "debug", "down", "-v"]);
    p.ok(&a);
    p.assert_clean(&[]);
}
