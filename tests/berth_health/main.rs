//! berth's health checks end to end, as root, with real busybox containers: the monitor's
//! probes through the runtime's exec, `.State.Health`, ps' STATUS words, the image's
//! HEALTHCHECK and `--no-healthcheck`.

#[path = "../berth_common/mod.rs"]
mod berth_common;

use berth_common::ctr::{env, Env, Rt};
use std::io::Read;
use std::time::{Duration, Instant};

/// Polls `inspect -f FMT` until it prints `want`; the last value otherwise.
fn wait_for(e: &Env, name: &str, fmt: &str, want: &str, limit: Duration) -> String {
    let end = Instant::now() + limit;
    loop {
        let v = e.inspect(name, fmt);
        if v == want || Instant::now() > end {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn health(e: &Env, name: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&e.ok(&["inspect", name])).expect("inspect JSON");
    v[0]["State"]["Health"].clone()
}

fn ps_status(e: &Env, name: &str) -> String {
    e.ok(&[
        "ps",
        "--filter",
        &format!("name={name}"),
        "--format",
        "{{.Status}}",
    ])
    .trim()
    .to_string()
}

fn starting_then_healthy(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    e.ok(&e.run_args(&[
        "-d",
        "--name",
        "web",
        "--health-cmd",
        "test -f /tmp/ready && echo fine",
        "--health-interval",
        "300ms",
        "--health-start-period",
        "1m",
        "--health-start-interval",
        "200ms",
        "busybox",
        "sh",
        "-c",
        "sleep 2; touch /tmp/ready; exec sleep 100",
    ]));
    let st = ps_status(&e, "web");
    assert!(st.ends_with("(health: starting)"), "ps STATUS {st:?}");
    // Failures inside the start period do not count.
    std::thread::sleep(Duration::from_millis(1000));
    let h = health(&e, "web");
    assert_eq!(h["Status"], "starting", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    assert!(h["Log"].as_array().is_some_and(|l| !l.is_empty()), "{h}");
    let s = wait_for(
        &e,
        "web",
        "{{.State.Health.Status}}",
        "healthy",
        Duration::from_secs(10),
    );
    assert_eq!(s, "healthy");
    let st = ps_status(&e, "web");
    assert!(
        st.starts_with("Up ") && st.ends_with("(healthy)"),
        "ps STATUS {st:?}"
    );
    let table = e.ok(&["ps"]);
    assert!(table.contains("(healthy)"), "{table}");
    // docker's inspect shape.
    let v: serde_json::Value = serde_json::from_str(&e.ok(&["inspect", "web"])).expect("json");
    let hc = &v[0]["Config"]["Healthcheck"];
    assert_eq!(hc["Test"][0], "CMD-SHELL", "{hc}");
    assert_eq!(hc["Interval"], 300_000_000u64, "{hc}");
    let h = &v[0]["State"]["Health"];
    let log = h["Log"].as_array().expect("Log");
    assert!(log.len() <= 5, "docker keeps 5 probes: {h}");
    let last = log.last().expect("a probe");
    assert_eq!(last["ExitCode"], 0, "{h}");
    assert_eq!(last["Output"], "fine\n", "{h}");
    for k in ["Start", "End"] {
        let t = last[k].as_str().expect("time");
        assert!(chrono::DateTime::parse_from_rfc3339(t).is_ok(), "{k} {t}");
    }
    assert_eq!(
        log.first().expect("probe")["ExitCode"],
        1,
        "the first probes failed: {h}"
    );
}

#[test]
fn starting_then_healthy_hull() {
    starting_then_healthy(Rt::Hull, 70);
}

#[test]
fn starting_then_healthy_runc() {
    starting_then_healthy(Rt::Runc, 71);
}

fn failing_check_turns_unhealthy(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    e.ok(&e.run_args(&[
        "-d",
        "--name",
        "bad",
        "--health-cmd",
        "echo broken >&2; exit 3",
        "--health-interval",
        "200ms",
        "--health-retries",
        "3",
        "busybox",
        "sleep",
        "100",
    ]));
    let s = wait_for(
        &e,
        "bad",
        "{{.State.Health.Status}}",
        "unhealthy",
        Duration::from_secs(10),
    );
    assert_eq!(s, "unhealthy");
    let h = health(&e, "bad");
    let streak = h["FailingStreak"].as_u64().expect("streak");
    assert!(streak >= 3, "{h}");
    let last = &h["Log"][h["Log"].as_array().expect("log").len() - 1];
    assert_eq!(last["ExitCode"], 3, "{h}");
    assert_eq!(last["Output"], "broken\n", "{h}");
    // It goes on probing: 5 probes kept, the streak grows.
    std::thread::sleep(Duration::from_millis(1500));
    let h = health(&e, "bad");
    assert_eq!(h["Log"].as_array().map(Vec::len), Some(5), "{h}");
    assert!(h["FailingStreak"].as_u64().expect("streak") > streak, "{h}");
    let st = ps_status(&e, "bad");
    assert!(st.ends_with("(unhealthy)"), "{st}");
    // Stopped: the record stays, the STATUS column shows the exit only.
    e.ok(&["stop", "-t", "1", "bad"]);
    let st = e.ok(&["ps", "-a", "--format", "{{.Status}}"]);
    assert!(st.starts_with("Exited (") && !st.contains("health"), "{st}");
}

#[test]
fn failing_check_turns_unhealthy_hull() {
    failing_check_turns_unhealthy(Rt::Hull, 72);
}

/// A probe that outlives --health-timeout is killed inside the container and counts as failed.
#[test]
fn timeout_kills_the_probe() {
    let Some(e) = env(73, Rt::Hull) else { return };
    e.ok(&e.run_args(&[
        "-d",
        "--name",
        "slow",
        "--health-cmd",
        "echo started; sleep 77",
        "--health-timeout",
        "500ms",
        "--health-interval",
        "300ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "100",
    ]));
    let s = wait_for(
        &e,
        "slow",
        "{{.State.Health.Status}}",
        "unhealthy",
        Duration::from_secs(10),
    );
    assert_eq!(s, "unhealthy");
    let h = health(&e, "slow");
    let p = &h["Log"][0];
    assert_eq!(p["ExitCode"], -1, "{h}");
    assert_eq!(p["Output"], "Health check exceeded timeout (500ms)", "{h}");
    let took = chrono::DateTime::parse_from_rfc3339(p["End"].as_str().expect("end")).expect("t")
        - chrono::DateTime::parse_from_rfc3339(p["Start"].as_str().expect("start")).expect("t");
    assert!(took.num_milliseconds() < 3000, "probe took {took}");
    // Between probes no `sleep 77` may be left in the container.
    e.ok(&["pause", "slow"]);
    let top = e.ok(&["top", "slow"]);
    e.ok(&["unpause", "slow"]);
    assert!(
        !top.contains("sleep 77"),
        "a timed-out probe survived:\n{top}"
    );
}

/// Builds `hc:latest`: busybox with a HEALTHCHECK in its config (save, edit, load).
fn image_with_healthcheck(e: &Env) {
    let dir = tempfile::tempdir().expect("tmp");
    let src = dir.path().join("bb.tar");
    e.ok(&["save", "-o", src.to_str().expect("utf8"), "busybox:latest"]);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut headers: Vec<tar::Header> = Vec::new();
    let mut a = tar::Archive::new(std::fs::File::open(&src).expect("open"));
    for ent in a.entries().expect("entries") {
        let mut ent = ent.expect("entry");
        let name = ent.path().expect("path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        ent.read_to_end(&mut data).expect("read");
        headers.push(ent.header().clone());
        files.push((name, data));
    }
    let mf_i = files
        .iter()
        .position(|f| f.0 == "manifest.json")
        .expect("manifest.json");
    let mut mf: serde_json::Value = serde_json::from_slice(&files[mf_i].1).expect("manifest");
    let cfg_name = mf[0]["Config"].as_str().expect("Config").to_string();
    let cfg_i = files.iter().position(|f| f.0 == cfg_name).expect("config");
    let mut cfg: serde_json::Value = serde_json::from_slice(&files[cfg_i].1).expect("config");
    cfg["config"]["Healthcheck"] = serde_json::json!({
        "Test": ["CMD-SHELL", "echo from-image"],
        "Interval": 200_000_000u64,
    });
    let data = serde_json::to_vec(&cfg).expect("json");
    let new_name = format!("{}.json", berth_common::sha256_hex(&data));
    files[cfg_i] = (new_name.clone(), data);
    mf[0]["Config"] = serde_json::json!(new_name);
    mf[0]["RepoTags"] = serde_json::json!(["hc:latest"]);
    files[mf_i].1 = serde_json::to_vec(&mf).expect("json");
    let out = dir.path().join("hc.tar");
    let mut b = tar::Builder::new(std::fs::File::create(&out).expect("create"));
    for ((name, data), mut h) in files.iter().zip(headers) {
        h.set_size(data.len() as u64);
        b.append_data(&mut h, name, data.as_slice())
            .expect("append");
    }
    b.finish().expect("tar");
    e.ok(&["load", "-i", out.to_str().expect("utf8")]);
}

#[test]
fn image_healthcheck_and_no_healthcheck() {
    let Some(e) = env(74, Rt::Hull) else { return };
    image_with_healthcheck(&e);
    e.ok(&e.run_args(&["-d", "--name", "img", "hc", "sleep", "100"]));
    let s = wait_for(
        &e,
        "img",
        "{{.State.Health.Status}}",
        "healthy",
        Duration::from_secs(10),
    );
    assert_eq!(s, "healthy");
    assert_eq!(health(&e, "img")["Log"][0]["Output"], "from-image\n");
    // Flags override parts of the image's check.
    e.ok(&e.run_args(&[
        "-d",
        "--name",
        "over",
        "--health-cmd",
        "exit 1",
        "--health-retries",
        "1",
        "hc",
        "sleep",
        "100",
    ]));
    let s = wait_for(
        &e,
        "over",
        "{{.State.Health.Status}}",
        "unhealthy",
        Duration::from_secs(10),
    );
    assert_eq!(s, "unhealthy");
    assert_eq!(
        e.inspect("over", "{{.Config.Healthcheck.Interval}}"),
        "200000000"
    );
    e.ok(&e.run_args(&[
        "-d",
        "--name",
        "off",
        "--no-healthcheck",
        "hc",
        "sleep",
        "100",
    ]));
    std::thread::sleep(Duration::from_millis(800));
    let v: serde_json::Value = serde_json::from_str(&e.ok(&["inspect", "off"])).expect("json");
    assert!(v[0]["State"].get("Health").is_none(), "{}", v[0]["State"]);
    assert!(
        v[0]["Config"].get("Healthcheck").is_none(),
        "{}",
        v[0]["Config"]
    );
    let st = ps_status(&e, "off");
    assert!(st.starts_with("Up ") && !st.contains('('), "{st}");
    e.err(
        &["create", "--no-healthcheck", "--health-cmd", "true", "hc"],
        "--no-healthcheck conflicts with --health-* options",
    );
    e.err(
        &["create", "--health-interval", "soon", "hc"],
        "--health-interval",
    );
    assert_eq!(e.container_count(), 3, "a refused create left a container");
}
