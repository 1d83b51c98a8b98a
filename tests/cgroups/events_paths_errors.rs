//! Events and OOM, bad resources, hugetlb, unified keys and every cgroupsPath form.

use super::*;

#[test]
fn events_report_stats_and_oom() {
    if !require_root() {
        return;
    }
    if cg_dir("x", "memory").is_none() {
        eprintln!("SKIP: no memory controller");
        return;
    }
    let env = Env::new();
    let limit: i64 = 32 << 20;
    env.edit(|c| {
        c["linux"]["resources"] = json!({"memory": memory_no_swap(limit), "pids": {"limit": 20}})
    });
    let id = start(&env, &["sh", "-c", "sleep 2; tail /dev/zero; sleep 1000"]);
    let one: Value = serde_json::from_str(env.hull(&["events", "--stats", &id]).ok()).unwrap();
    assert_eq!(one["type"], "stats");
    assert_eq!(one["id"], id.as_str());
    let d = &one["data"];
    assert_eq!(d["memory"]["usage"]["limit"], limit);
    assert!(
        d["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{d}"
    );
    assert!(d["memory"]["raw"].is_object(), "{d}");
    assert!(d["cpu"]["usage"]["total"].as_u64().unwrap_or(0) > 0, "{d}");
    assert!(d["cpu"]["usage"].get("kernel").is_some() && d["cpu"]["usage"].get("user").is_some());
    if cg_dir("x", "pids").is_some() {
        assert_eq!(d["pids"]["limit"], 20);
        assert!(d["pids"]["current"].as_u64().unwrap_or(0) >= 1, "{d}");
    }
    for key in ["blkio", "hugetlb", "network_interfaces"] {
        assert!(d.get(key).is_some(), "no {key} in {d}");
    }

    let mut child = env
        .cmd()
        .args(["events", "--interval", "300ms", &id])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut stats, mut oom) = (0, 0);
    while Instant::now() < deadline && (stats < 2 || oom < 1) {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["id"], id.as_str());
            match v["type"].as_str() {
                Some("stats") => stats += 1,
                Some("oom") => oom += 1,
                other => panic!("unexpected event {other:?}"),
            }
        }
    }
    // The stream ends by itself once the container is gone.
    env.hull(&["kill", &id, "KILL"]).ok();
    let ended = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        child.try_wait().ok().flatten().is_some()
    });
    if !ended {
        let _ = child.kill();
    }
    let _ = child.wait();
    assert!(stats >= 2, "stats events: {stats}");
    assert_eq!(oom, 1, "oom events");
    assert!(ended, "events did not exit after the container stopped");
}

#[test]
fn bad_resources_fail_clearly_and_leave_nothing() {
    let Some(env) = Env::root() else {
        return;
    };
    env.set_args(&["true"]);
    let mut cases: Vec<(Value, &str)> = vec![
        (
            json!({"resources": {"unified": {"nosuch.thing": "1"}}}),
            "linux.resources.unified",
        ),
        (
            json!({"cgroupsPath": "/hull/../escape"}),
            "linux.cgroupsPath",
        ),
        (
            json!({"resources": {"memory": {"swappiness": 200}}}),
            "linux.resources.memory.swappiness",
        ),
        (
            json!({"resources": {"devices": [{"allow": true, "access": "rwx"}]}}),
            "linux.resources.devices[0].access",
        ),
        (
            json!({"resources": {"network": {"classID": 1048577}}}),
            "linux.resources.network",
        ),
        (
            json!({"resources": {"rdma": {"nosuch_hca": {"hcaHandles": 1}}}}),
            "linux.resources.rdma",
        ),
        (
            json!({"resources": {"cpu": {"cpus": "4096-4097"}}}),
            "linux.resources.cpu.cpus",
        ),
    ];
    if is_v2() {
        cases.push((
            json!({"resources": {"cpu": {"realtimeRuntime": 1000}}}),
            "linux.resources.cpu.realtime",
        ));
        cases.push((
            json!({"resources": {"memory": {"limit": 1048576, "swap": 1024}}}),
            "linux.resources.memory.swap",
        ));
    }
    if cg_dir("x", "hugetlb").is_none() {
        cases.push((
            json!({"resources": {"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}]}}),
            "linux.resources.hugepageLimits[0]",
        ));
    }
    for (linux, needle) in cases {
        let base = env.default_config();
        env.write_config(&base);
        env.set_args(&["true"]);
        env.edit(|c| {
            for (k, v) in linux.as_object().unwrap() {
                if k == "resources" {
                    for (rk, rv) in v.as_object().unwrap() {
                        c["linux"]["resources"][rk] = rv.clone();
                    }
                } else {
                    c["linux"][k] = v.clone();
                }
            }
        });
        let id = unique_id();
        let r = env.hull(&["create", "--bundle", env.bundle.to_str().unwrap(), &id]);
        assert_ne!(r.code, 0, "{needle}: unexpected success");
        assert!(r.stderr.contains(needle), "{needle}: stderr {:?}", r.stderr);
        assert_eq!(
            r.stderr.trim().lines().count(),
            1,
            "one-line error: {:?}",
            r.stderr
        );
        assert!(
            env.ids().is_empty(),
            "{needle}: state left: {:?}",
            env.ids()
        );
        assert!(
            cgroup_dirs_for(&id).is_empty(),
            "{needle}: cgroup left: {:?}",
            cgroup_dirs_for(&id)
        );
    }
}

#[test]
fn hugetlb_limits_when_the_host_has_them() {
    if !require_root() {
        return;
    }
    if cg_dir("x", "hugetlb").is_none() {
        eprintln!("SKIP: no hugetlb controller on this host");
        return;
    }
    let env = Env::new();
    env.edit(|c| {
        c["linux"]["resources"]["hugepageLimits"] = json!([{"pageSize": "2MB", "limit": 4194304}])
    });
    let id = start(&env, &["sleep", "1000"]);
    assert_eq!(
        cg_read(
            &id,
            "hugetlb",
            "hugetlb.2MB.limit_in_bytes",
            "hugetlb.2MB.max"
        ),
        "4194304"
    );
    let stats: Value = serde_json::from_str(env.hull(&["events", "--stats", &id]).ok()).unwrap();
    assert!(stats["data"]["hugetlb"]["2MB"].is_object(), "{stats}");
}

#[test]
fn unified_keys_on_v2_and_a_clear_error_elsewhere() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|c| {
        c["linux"]["resources"]["unified"] = json!({"pids.max": "7", "memory.high": "104857600"})
    });
    if !is_v2() {
        env.set_args(&["true"]);
        let id = unique_id();
        let r = env.hull(&["create", "--bundle", env.bundle.to_str().unwrap(), &id]);
        r.fails_with("linux.resources.unified: needs a cgroup v2 host");
        assert!(env.ids().is_empty() && cgroup_dirs_for(&id).is_empty());
        return;
    }
    let id = start(&env, &["sleep", "1000"]);
    assert_eq!(cg_read(&id, "pids", "", "pids.max"), "7");
    assert_eq!(cg_read(&id, "memory", "", "memory.high"), "104857600");
}

#[test]
fn cgroups_path_absolute_relative_nested_and_joined() {
    let Some(env) = Env::root() else {
        return;
    };
    let tag = unique_id();
    let abs = format!("/hulltest-{tag}/nested/deep");
    env.edit(|c| c["linux"]["cgroupsPath"] = json!(abs));
    let id = start(&env, &["sleep", "1000"]);
    let pid = env.state(&id)["pid"].as_i64().unwrap().to_string();
    let probe = if is_v2() { "memory" } else { "pids" };
    let dir = cg_dir_at(&abs, probe).expect("controller");
    assert!(
        read(&dir.join("cgroup.procs")).lines().any(|l| l == pid),
        "init not in {}",
        dir.display()
    );
    if !is_v2() && Path::new("/sys/fs/cgroup/unified/cgroup.procs").exists() {
        // Hybrid: the controller-less cgroup2 tree places the container too.
        let u = Path::new("/sys/fs/cgroup/unified").join(abs.trim_start_matches('/'));
        assert!(read(&u.join("cgroup.procs")).lines().any(|l| l == pid));
    }
    let self_cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(self_cg.contains(&abs), "{self_cg}");
    env.hull(&["delete", "--force", &id]).ok();
    assert!(!dir.exists(), "{} left", dir.display());
    // Clean up the parents hull made for the nested path (hull leaves shared parents alone).
    cleanup_parents(&format!("/hulltest-{tag}/nested"));

    // Relative: under hull's own cgroup, which is the root for these tests.
    let rel = format!("hullrel-{tag}");
    env.edit(|c| c["linux"]["cgroupsPath"] = json!(rel));
    let id = start(&env, &["sleep", "1000"]);
    let pid = env.state(&id)["pid"].as_i64().unwrap().to_string();
    let self_cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    assert!(self_cg.contains(&format!("/{rel}")), "{self_cg}");
    env.hull(&["delete", "--force", &id]).ok();

    // Joining a cgroup that already exists.
    let existing = format!("/hulljoin-{tag}");
    let pre = cg_dir_at(&existing, probe).unwrap();
    std::fs::create_dir_all(&pre).unwrap();
    env.edit(|c| c["linux"]["cgroupsPath"] = json!(existing));
    let id = start(&env, &["sleep", "1000"]);
    let pid = env.state(&id)["pid"].as_i64().unwrap().to_string();
    assert!(read(&pre.join("cgroup.procs")).lines().any(|l| l == pid));
    env.hull(&["delete", "--force", &id]).ok();
    cleanup_parents(&existing);
}

/// Removes `path` and its parents (up to the root) from every hierarchy, where empty.
fn cleanup_parents(path: &str) {
    let mut p = PathBuf::from(path);
    loop {
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in rd.flatten() {
                let _ = std::fs::remove_dir(h.path().join(p.strip_prefix("/").unwrap()));
            }
        }
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(p.strip_prefix("/").unwrap()));
        if !p.pop() || p == Path::new("/") {
            break;
        }
    }
}
