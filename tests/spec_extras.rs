//! The runtime-spec 1.2/1.3 additions: `linux.memoryPolicy`, `process.execCPUAffinity`,
//! `linux.netDevices` and `linux.intelRdt`, each observed from inside the container (or from
//! the kernel), and each refusal checked for one clear line and nothing left behind.

mod common;
mod veth;
use common::*;
use serde_json::{json, Value};

/// `hull run` under a fresh id must fail with `needle` on a single line and leave nothing.
/// The text log quotes the message, so its quotes appear escaped.
fn refused(env: &Env, needle: &str) {
    let id = unique_id();
    let r = env.hull(&["run", "--bundle", env.bundle.to_str().unwrap(), &id]);
    r.fails_with(&needle.replace('"', "\\\""));
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    assert_nothing_left(env, &id);
}

fn first_id(list: &str) -> Option<u32> {
    list.split([',', '-']).next()?.trim().parse().ok()
}

/// The first memory node of the host, or None (SKIP printed) without NUMA support.
fn numa_node() -> Option<u32> {
    if !std::path::Path::new("/proc/self/numa_maps").exists() {
        eprintln!("SKIP: the kernel has no NUMA support (no /proc/self/numa_maps)");
        return None;
    }
    let has = std::fs::read_to_string("/sys/devices/system/node/has_memory").unwrap_or_default();
    first_id(&has).or_else(|| {
        eprintln!("SKIP: the kernel has no NUMA support (no memory node in /sys/devices/system/node/has_memory)");
        None
    })
}

/// The policy numa_maps shows on the stack of the process reading it: the task's policy.
const STACK_POLICY: &str = "grep -m1 ' stack' /proc/self/numa_maps";

fn policy_of(line: &str) -> String {
    let rest = line.trim().split_once(' ').map_or("", |(_, r)| r);
    rest.split(" stack").next().unwrap_or("").to_string()
}

#[test]
fn memory_policy_reaches_the_container_and_exec() {
    if !require_root() {
        return;
    }
    let Some(n) = numa_node() else { return };
    let env = Env::new();
    env.edit(|c| {
        c["linux"]["memoryPolicy"] =
            json!({"mode": "MPOL_BIND", "nodes": n.to_string(), "flags": ["MPOL_F_STATIC_NODES"]})
    });
    assert_eq!(policy_of(&env.sh(STACK_POLICY)), format!("bind=static:{n}"));
    // An exec'd process is in the container too: same policy.
    let id = env.run_detached(&["sleep", "30"]);
    let out = env.hull(&["exec", &id, "sh", "-c", STACK_POLICY]);
    assert_eq!(policy_of(out.ok()), format!("bind=static:{n}"));
    env.hull(&["delete", "--force", &id]).ok();
    // Without a policy, the kernel's default.
    env.edit(|c| {
        c["linux"].as_object_mut().unwrap().remove("memoryPolicy");
    });
    assert_eq!(policy_of(&env.sh(STACK_POLICY)), "default");
}

#[test]
fn memory_policy_refusals_name_the_field_and_leave_nothing() {
    if !require_root() {
        return;
    }
    if numa_node().is_none() {
        return;
    }
    let possible = std::fs::read_to_string("/sys/devices/system/node/possible").unwrap_or_default();
    let last: u32 = possible
        .trim()
        .rsplit([',', '-'])
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let env = Env::new();
    env.set_args(&["true"]);
    let set = |p: Value| env.edit(|c| c["linux"]["memoryPolicy"] = p);
    // The kernel's refusals: a node the host does not have, a flag the mode does not take.
    set(json!({"mode": "MPOL_BIND", "nodes": (last + 1).to_string()}));
    refused(
        &env,
        "linux.memoryPolicy: the kernel refuses mode MPOL_BIND",
    );
    set(json!({"mode": "MPOL_INTERLEAVE", "nodes": "0", "flags": ["MPOL_F_NUMA_BALANCING"]}));
    refused(
        &env,
        "linux.memoryPolicy: the kernel refuses mode MPOL_INTERLEAVE",
    );
    // Hull's own checks, before anything is made.
    set(json!({"mode": "MPOL_DEFAULT", "nodes": "0"}));
    refused(
        &env,
        "linux.memoryPolicy.nodes: MPOL_DEFAULT takes no nodes",
    );
    set(json!({"mode": "MPOL_BIND"}));
    refused(
        &env,
        "linux.memoryPolicy.nodes: MPOL_BIND needs at least one node",
    );
    set(json!({"mode": "MPOL_BIND", "nodes": "0-x"}));
    refused(&env, "linux.memoryPolicy.nodes");
    set(json!({"mode": "MPOL_NOPE"}));
    refused(&env, "linux.memoryPolicy.mode: unknown mode \"MPOL_NOPE\"");
    set(json!({"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_NOPE"]}));
    refused(&env, "linux.memoryPolicy.flags[0]: unknown flag");
}

/// The test's own allowed CPUs (what an unpinned container process gets), and two of them.
fn own_cpus() -> Option<(String, u32, u32)> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string();
    let cpus = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
    let mut two = (0..nix::sched::CpuSet::count()).filter(|&c| cpus.is_set(c).unwrap_or(false));
    match (two.next(), two.next()) {
        (Some(a), Some(b)) => Some((list, a as u32, b as u32)),
        _ => {
            eprintln!("SKIP: fewer than two CPUs allowed to the test (execCPUAffinity needs two)");
            None
        }
    }
}

const CPUS: &str = "grep Cpus_allowed_list /proc/self/status | cut -f2";

#[test]
fn exec_cpu_affinity_applies_to_exec_and_not_to_the_init() {
    if !require_root() {
        return;
    }
    let Some((all, a, b)) = own_cpus() else {
        return;
    };
    let env = Env::new();
    env.edit(|c| {
        c["process"]["execCPUAffinity"] = json!({"initial": a.to_string(), "final": b.to_string()})
    });
    // config.md: "not applicable to the container's init process".
    assert_eq!(env.sh(CPUS).trim(), all);
    let id = env.run_detached(&["sleep", "30"]);
    // `hull exec` uses the container's process, hence its execCPUAffinity: final wins.
    assert_eq!(
        env.hull(&["exec", &id, "sh", "-c", CPUS]).ok().trim(),
        b.to_string()
    );
    let with = |aff: Value| {
        let p = json!({"args": ["sh", "-c", CPUS], "cwd": "/", "user": {"uid": 0, "gid": 0},
            "execCPUAffinity": aff});
        let f = env.tmp.path().join("process.json");
        std::fs::write(&f, p.to_string()).unwrap();
        env.hull(&["exec", "--process", f.to_str().unwrap(), &id])
    };
    // Only initial: set before the cgroup move, and the kernel keeps a user-set mask there.
    assert_eq!(
        with(json!({"initial": b.to_string()})).ok().trim(),
        b.to_string()
    );
    assert_eq!(
        with(json!({"final": a.to_string()})).ok().trim(),
        a.to_string()
    );
    assert_eq!(with(json!({})).ok().trim(), all);
    // A CPU the host cannot have: the kernel refuses, the field is named.
    with(json!({"final": "1023"})).fails_with("process.execCPUAffinity.final: sched_setaffinity");
    with(json!({"initial": "1023"}))
        .fails_with("process.execCPUAffinity.initial: sched_setaffinity");
    assert_eq!(env.state(&id)["status"], "running");
    env.hull(&["delete", "--force", &id]).ok();

    env.set_args(&["true"]);
    env.edit(|c| c["process"]["execCPUAffinity"] = json!({"initial": "0", "final": "1-x"}));
    refused(&env, "process.execCPUAffinity.final");
    // Empty means unchanged (config.md).
    env.edit(|c| c["process"]["execCPUAffinity"] = json!({"initial": "", "final": ""}));
    assert_eq!(env.run(&["true"]).code, 0);
}

#[test]
fn net_device_is_moved_renamed_up_with_its_addresses() {
    if !require_root() {
        return;
    }
    let Some(v) = veth::Veth::new() else { return };
    v.addr("192.0.2.10/24", &[]);
    v.addr("2001:db8::10/64", &["nodad"]);
    // Not permanent-global: the spec keeps only those.
    v.addr("198.51.100.1/32", &["scope", "link"]);
    let env = Env::new();
    env.edit(|c| c["linux"]["netDevices"] = json!({&v.a: {"name": "ctr0"}}));
    let out = env.sh("ls /sys/class/net; cat /sys/class/net/ctr0/flags; ip -o addr show dev ctr0");
    let mut lines = out.lines();
    let names: Vec<&str> = lines
        .by_ref()
        .take_while(|l| !l.starts_with("0x"))
        .collect();
    assert_eq!(names, ["ctr0", "lo"], "{out}");
    let flags = out.lines().find(|l| l.starts_with("0x")).unwrap();
    assert_eq!(
        u32::from_str_radix(&flags[2..], 16).unwrap() & 1,
        1,
        "not up: {out}"
    );
    assert!(out.contains("inet 192.0.2.10/24"), "{out}");
    assert!(out.contains("inet6 2001:db8::10/64"), "{out}");
    assert!(!out.contains("198.51.100.1"), "{out}");
    // The spec: not moved back on delete; a virtual device dies with the namespace.
    assert!(v.gone_from_host(), "{} or {} still on the host", v.a, v.b);
}

#[test]
fn net_device_keeps_its_name_or_takes_a_template() {
    if !require_root() {
        return;
    }
    let Some(v) = veth::Veth::new() else { return };
    let env = Env::new();
    env.edit(|c| c["linux"]["netDevices"] = json!({&v.a: {}}));
    let id = env.run_detached(&["sleep", "30"]);
    let out = env.hull(&["exec", &id, "ls", "/sys/class/net"]);
    assert_eq!(
        out.ok().split_whitespace().collect::<Vec<_>>(),
        [v.a.as_str(), "lo"]
    );
    assert!(!veth::exists(&v.a), "{} is still on the host", v.a);
    env.hull(&["delete", "--force", &id]).ok();
    assert!(v.gone_from_host());

    let Some(v) = veth::Veth::new() else { return };
    env.edit(|c| c["linux"]["netDevices"] = json!({&v.a: {"name": "eth%d"}}));
    assert_eq!(
        env.sh("ls /sys/class/net")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["eth0", "lo"]
    );
}

#[test]
fn net_device_refusals_name_the_field_and_leave_the_device() {
    if !require_root() {
        return;
    }
    let Some(v) = veth::Veth::new() else { return };
    let env = Env::new();
    env.set_args(&["true"]);
    let missing = format!("{}x", v.b);
    env.edit(|c| c["linux"]["netDevices"] = json!({&missing: {}}));
    refused(
        &env,
        &format!("linux.netDevices[\"{missing}\"]: no such network device in the runtime's network namespace"),
    );
    env.edit(|c| c["linux"]["netDevices"] = json!({&v.a: {"name": "lo"}}));
    refused(
        &env,
        &format!("linux.netDevices[\"{}\"]: name \"lo\" already exists in the container's network namespace", v.a),
    );
    env.edit(|c| c["linux"]["netDevices"] = json!({&v.a: {"name": "a/b"}}));
    refused(&env, &format!("linux.netDevices[\"{}\"].name", v.a));
    // The runtime's own namespace: refused, never moved out of the host.
    env.edit(|c| {
        c["linux"]["netDevices"] = json!({&v.a: {}});
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
    });
    refused(
        &env,
        "linux.netDevices: the container must have a network namespace other than the runtime's",
    );
    env.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "network", "path": "/proc/self/ns/net"}))
    });
    refused(
        &env,
        "linux.netDevices: the container must have a network namespace other than the runtime's",
    );
    assert!(
        veth::exists(&v.a) && veth::exists(&v.b),
        "the device was lost"
    );
}

#[test]
fn intel_rdt_without_resctrl_is_refused() {
    let Some(env) = Env::root() else {
        return;
    };
    env.set_args(&["true"]);
    env.edit(|c| c["linux"]["intelRdt"] = json!({"memBwSchema": "L3:0=1"}));
    refused(&env, "linux.intelRdt.memBwSchema: must start with \"MB:\"");
    env.edit(|c| c["linux"]["intelRdt"] = json!({"closID": "../x"}));
    refused(&env, "linux.intelRdt.closID");
    if hull::runtime::rdt::resctrl_mount().is_some() {
        eprintln!("SKIP: this host has resctrl; the refusal path cannot be exercised");
        return;
    }
    env.edit(|c| c["linux"]["intelRdt"] = json!({"closID": "hull-test"}));
    refused(&env, "linux.intelRdt: no resctrl filesystem is mounted");
}

#[test]
fn net_device_reaches_a_container_with_its_own_user_namespace() {
    if !require_root() {
        return;
    }
    let Some(v) = veth::Veth::new() else { return };
    v.addr("192.0.2.20/24", &[]);
    let env = Env::new();
    // The init runs as host uid 100000 and must traverse the bundle path.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(env.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    env.edit(|c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["netDevices"] = json!({&v.a: {"name": "ctr0"}});
    });
    let out = env.sh("ip -o addr show dev ctr0; cat /sys/class/net/ctr0/flags");
    assert!(out.contains("inet 192.0.2.20/24"), "{out}");
    assert!(v.gone_from_host());
}
