//! `hull features` must advertise only what works: every listed name goes through a real
//! container. Also the process privileges the spec defines (personality, ioPriority,
//! scheduler, ambient capabilities, LSM labels), observed from inside the container.

mod common;
mod veth;
use common::*;
use serde_json::{json, Value};
use std::str::FromStr;

fn features() -> Value {
    let out = std::process::Command::new(HULL)
        .arg("features")
        .output()
        .expect("hull features");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("features is JSON")
}

fn strings(v: &Value) -> Vec<String> {
    serde_json::from_value(v.clone()).expect("array of strings")
}

#[test]
fn features_document_has_the_spec_fields() {
    let f = features();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["ociVersionMax"].as_str().unwrap().starts_with("1."));
    assert_eq!(
        strings(&f["hooks"]),
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ]
    );
    let linux = &f["linux"];
    // Exercised in a systemd VM by tests/systemd_cgroup.rs (hack/test-systemd.sh).
    assert_eq!(linux["cgroup"]["systemd"], true);
    assert_eq!(linux["cgroup"]["v2"], true);
    assert_eq!(linux["seccomp"]["enabled"], true);
    // Exercised by rootfs::idmapped_bind_mount_shows_files_under_the_mapped_owner.
    assert_eq!(linux["mountExtensions"]["idmap"]["enabled"], true);
    let resctrl = hull::runtime::rdt::resctrl_mount().is_some();
    assert_eq!(linux["intelRdt"]["enabled"], resctrl);
    assert_eq!(linux["netDevices"]["enabled"], true);
    assert!(strings(&linux["capabilities"]).contains(&"CAP_SYS_ADMIN".to_string()));
    // Exercised with a real agent by tests/seccomp_notify.rs.
    assert!(strings(&linux["seccomp"]["actions"]).contains(&"SCMP_ACT_NOTIFY".to_string()));
    assert!(f["annotations"]["org.opencontainers.hull.version"].is_string());
}

#[test]
fn mount_attribute_options_are_listed_when_the_kernel_has_mount_setattr() {
    use hull::runtime::mount_opts::{RECURSIVE_OPTIONS, SYMFOLLOW_OPTIONS};
    let listed = strings(&features()["mountOptions"]);
    let uts = nix::sys::utsname::uname().unwrap();
    let release = uts.release().to_string_lossy().into_owned();
    let v: Vec<u32> = release
        .split(|c: char| !c.is_ascii_digit())
        .take(2)
        .map(|p| p.parse().unwrap())
        .collect();
    // mount_setattr came in 5.12, MOUNT_ATTR_NOSYMFOLLOW in 5.14. What is listed is applied
    // by tests/mount_attrs.rs and by every_advertised_mount_option_is_accepted_... below.
    if (v[0], v[1]) < (5, 14) {
        eprintln!("SKIP: kernel {release} predates mount_setattr with nosymfollow");
        return;
    }
    for (name, _) in RECURSIVE_OPTIONS.iter().chain(SYMFOLLOW_OPTIONS) {
        assert!(listed.iter().any(|o| o == name), "{name} not listed");
    }
}

#[test]
fn every_advertised_namespace_is_recognized() {
    let f = features();
    for ns in strings(&f["linux"]["namespaces"]) {
        let cfg = json!({"ociVersion": "1.2.0", "process": {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": ns}]}});
        hull::runtime::spec::parse(&cfg.to_string()).unwrap_or_else(|e| panic!("{ns}: {e:#}"));
    }
    let bogus = json!({"ociVersion": "1.2.0", "process": {"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "linux": {"namespaces": [{"type": "bogus"}]}});
    assert!(hull::runtime::spec::parse(&bogus.to_string()).is_err());
}

#[test]
fn every_advertised_mount_option_is_accepted_by_a_real_container() {
    let Some(env) = Env::root() else {
        return;
    };
    let src = env.tmp.path().join("bindsrc");
    std::fs::create_dir(&src).unwrap();
    let opts = strings(&features()["mountOptions"]);
    assert!(opts.len() > 20);
    env.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        for o in &opts {
            let bind = o == "bind" || o == "rbind";
            mounts.push(json!({
                "destination": format!("/opt/{o}"),
                "type": if bind { "bind" } else { "tmpfs" },
                "source": if bind { src.to_str().unwrap() } else { "tmpfs" },
                "options": [o],
            }));
            // Each option is one the parser recognized, not filesystem data.
            let parsed = hull::runtime::rootfs::parse_options(std::slice::from_ref(o));
            assert!(parsed.data.is_empty(), "{o} is passed through as data");
        }
    });
    let out =
        env.sh("grep -c ' /opt/' /proc/self/mountinfo; grep ' /opt/ro ' /proc/self/mountinfo");
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap().parse::<usize>().unwrap(),
        opts.len(),
        "{out}"
    );
    assert!(lines.next().unwrap().contains(" ro,"), "{out}");
}

#[test]
fn every_advertised_seccomp_name_compiles_and_runs() {
    if !require_root() {
        return;
    }
    let sc = &features()["linux"]["seccomp"];
    let ops: Vec<Value> = strings(&sc["operators"])
        .iter()
        .map(|op| json!({"index": 2, "value": 0x7777_0000u64, "valueTwo": 1, "op": op}))
        .collect();
    // Syscalls busybox `true` never makes, so every action can be installed at once.
    let unused = [
        "acct",
        "swapon",
        "swapoff",
        "syslog",
        "vhangup",
        "pivot_root",
        "reboot",
        "kexec_load",
    ];
    // SCMP_ACT_NOTIFY needs an agent on listenerPath: tests/seccomp_notify.rs runs one.
    let actions: Vec<String> = strings(&sc["actions"])
        .into_iter()
        .filter(|a| a != "SCMP_ACT_NOTIFY")
        .collect();
    let rules: Vec<Value> = actions
        .iter()
        .zip(unused.iter())
        .map(|(a, s)| json!({"names": [s], "action": a, "args": ops}))
        .collect();
    assert_eq!(
        rules.len(),
        actions.len(),
        "more actions than unused syscalls"
    );
    let env = Env::new();
    env.edit(|c| {
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": sc["archs"],
            "flags": sc["supportedFlags"], "syscalls": rules});
    });
    assert_eq!(env.run(&["true"]).code, 0);
}

/// The capability mask of this (the test's) process, which bounds what a container can get.
fn own_caps(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap()
        .trim();
    u64::from_str_radix(hex, 16).unwrap()
}

#[test]
fn every_advertised_capability_is_granted() {
    if !require_root() {
        return;
    }
    let caps = strings(&features()["linux"]["capabilities"]);
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let ours = own_caps("CapEff:");
    // Every name is accepted in the bounding set; the ones this kernel and this (possibly
    // sandboxed) test process hold are also granted.
    let held: Vec<&String> = caps
        .iter()
        .filter(|c| {
            let bit = caps::Capability::from_str(c).unwrap().index() as u32;
            bit <= last && ours & (1 << bit) != 0
        })
        .collect();
    assert!(held.len() > 30, "{held:?}");
    let want = held.iter().fold(0u64, |m, c| {
        m | caps::Capability::from_str(c).unwrap().bitmask()
    });
    let env = Env::new();
    env.edit(|c| {
        c["process"]["capabilities"]["bounding"] = json!(caps);
        c["process"]["capabilities"]["effective"] = json!(held);
        c["process"]["capabilities"]["permitted"] = json!(held);
    });
    let out = env.sh("grep -E '^Cap(Eff|Bnd):' /proc/self/status");
    assert!(
        out.contains(&format!("CapEff:\t{want:016x}")),
        "{out} vs {want:016x}"
    );
    assert!(
        out.contains(&format!("CapBnd:\t{:016x}", own_caps("CapBnd:"))),
        "{out}"
    );
}

#[test]
fn personality_linux32_shows_a_32_bit_machine() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|c| c["linux"]["personality"] = json!({"domain": "LINUX32"}));
    let m = env.sh("uname -m");
    if std::env::consts::ARCH == "x86_64" {
        assert_eq!(m.trim(), "i686");
    } else {
        assert_ne!(m.trim(), std::env::consts::ARCH);
    }
    env.edit(|c| c["linux"]["personality"] = json!({"domain": "LINUX"}));
    assert_eq!(env.sh("uname -m").trim(), std::env::consts::ARCH);
    env.edit(|c| {
        c["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]})
    });
    env.run(&["true"]).fails_with("linux.personality.flags");
    assert!(env.ids().is_empty());
}

#[test]
fn io_priority_is_applied() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|c| c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_IDLE", "priority": 0}));
    assert!(env.sh("ionice -p $$").contains("idle"), "idle class");
    env.edit(|c| c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 6}));
    assert_eq!(env.sh("ionice -p $$").trim(), "best-effort: prio 6");
    env.edit(|c| c["process"]["ioPriority"] = json!({"class": "IOPRIO_CLASS_BE", "priority": 9}));
    env.run(&["true"]).fails_with("process.ioPriority.priority");
}

#[test]
fn scheduler_policy_and_nice_are_applied() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|c| c["process"]["scheduler"] = json!({"policy": "SCHED_BATCH", "nice": 7}));
    // /proc/self/stat field 19 is the nice value, field 41 the policy (3 = SCHED_BATCH).
    let out = env.sh("cut -d' ' -f19,41 /proc/self/stat");
    assert_eq!(out.trim(), "7 3");
    env.edit(|c| c["process"]["scheduler"] = json!({"policy": "SCHED_IDLE"}));
    assert_eq!(env.sh("cut -d' ' -f41 /proc/self/stat").trim(), "5");
    // Realtime needs an RT budget in the container's cpu cgroup (CONFIG_RT_GROUP_SCHED), which
    // hosts rarely give: either it applies, or it fails naming the field.
    env.edit(|c| c["process"]["scheduler"] = json!({"policy": "SCHED_FIFO", "priority": 10}));
    env.set_args(&["cut", "-d ", "-f40,41", "/proc/self/stat"]);
    let r = env.hull(&[
        "run",
        "--bundle",
        env.bundle.to_str().unwrap(),
        &unique_id(),
    ]);
    if r.code == 0 {
        assert_eq!(r.stdout.trim(), "10 1");
    } else {
        r.fails_with("process.scheduler: sched_setattr");
    }
    env.edit(|c| c["process"]["scheduler"] = json!({"policy": "SCHED_ISO"}));
    env.run(&["true"]).fails_with("process.scheduler.policy");
}

#[test]
fn ambient_capability_is_kept_by_a_non_root_user() {
    let Some(env) = Env::root() else {
        return;
    };
    env.edit(|c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        let caps = json!(["CAP_NET_BIND_SERVICE"]);
        for set in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            c["process"]["capabilities"][set] = caps.clone();
        }
    });
    let out = env.sh("id -u; grep -E '^Cap(Amb|Eff|Prm):' /proc/self/status");
    // CAP_NET_BIND_SERVICE is bit 10: 0x400.
    assert!(out.starts_with("1000\n"), "{out}");
    assert!(out.contains("CapAmb:\t0000000000000400"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000400"), "{out}");
    // Without the inheritable bit the kernel refuses the ambient one; runc warns and goes on.
    env.edit(|c| c["process"]["capabilities"]["inheritable"] = json!([]));
    let out = env.sh("grep ^CapAmb: /proc/self/status");
    assert!(out.contains("CapAmb:\t0000000000000000"), "{out}");
}

#[test]
fn lsm_labels_fail_clearly_when_the_host_cannot_apply_them() {
    let Some(env) = Env::root() else {
        return;
    };
    let apparmor = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .is_ok_and(|s| s.trim() == "Y");
    if apparmor {
        eprintln!("SKIP: apparmor is enabled on this host; the refusal path cannot be exercised");
    } else {
        env.edit(|c| c["process"]["apparmorProfile"] = json!("hull-test-profile"));
        env.run(&["true"])
            .fails_with("process.apparmorProfile: AppArmor is not enabled on this host");
        assert!(env.ids().is_empty());
        env.edit(|c| {
            c["process"]
                .as_object_mut()
                .unwrap()
                .remove("apparmorProfile");
        });
    }
    if std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        eprintln!("SKIP: SELinux is enabled on this host; the refusal path cannot be exercised");
    } else {
        env.edit(|c| c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0"));
        env.run(&["true"])
            .fails_with("process.selinuxLabel: SELinux is not enabled on this host");
        assert!(env.ids().is_empty());
    }
    // An empty label means none, as in runc.
    env.edit(|c| {
        c["process"]["selinuxLabel"] = json!("");
        c["process"]["apparmorProfile"] = json!("");
    });
    assert_eq!(env.run(&["true"]).code, 0);
}

/// What /proc/PID/numa_maps shows for a mode (the kernel's mpol_to_str names).
fn numa_maps_name(mode: &str) -> &'static str {
    match mode {
        "MPOL_DEFAULT" => "default",
        "MPOL_BIND" => "bind",
        "MPOL_INTERLEAVE" => "interleave",
        "MPOL_WEIGHTED_INTERLEAVE" => "weighted interleave",
        "MPOL_PREFERRED" => "prefer",
        "MPOL_PREFERRED_MANY" => "prefer (many)",
        "MPOL_LOCAL" => "local",
        "MPOL_F_STATIC_NODES" => "=static",
        "MPOL_F_RELATIVE_NODES" => "=relative",
        "MPOL_F_NUMA_BALANCING" => "=balancing",
        other => panic!("unknown memory policy name {other}"),
    }
}

#[test]
fn every_advertised_memory_policy_mode_and_flag_is_applied() {
    if !require_root() {
        return;
    }
    if !std::path::Path::new("/proc/self/numa_maps").exists() {
        eprintln!("SKIP: the kernel has no NUMA support (no /proc/self/numa_maps)");
        return;
    }
    let has = std::fs::read_to_string("/sys/devices/system/node/has_memory").unwrap();
    let node: u32 = has
        .split([',', '-'])
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mp = &features()["linux"]["memoryPolicy"];
    let env = Env::new();
    // The task's policy shows on the stack line of the process reading numa_maps.
    let policy = |p: Value| {
        env.edit(|c| c["linux"]["memoryPolicy"] = p);
        let line = env.sh("grep -m1 ' stack' /proc/self/numa_maps");
        let rest = line.trim().split_once(' ').unwrap().1;
        rest.split(" stack").next().unwrap().to_string()
    };
    let modes = strings(&mp["modes"]);
    assert_eq!(modes.len(), 7);
    for mode in &modes {
        let nodeless = mode == "MPOL_DEFAULT" || mode == "MPOL_LOCAL";
        let got = if nodeless {
            policy(json!({"mode": mode}))
        } else {
            policy(json!({"mode": mode, "nodes": node.to_string()}))
        };
        let want = numa_maps_name(mode);
        let want = if nodeless {
            want.to_string()
        } else {
            format!("{want}:{node}")
        };
        assert_eq!(got, want, "{mode}");
    }
    let flags = strings(&mp["flags"]);
    assert_eq!(flags.len(), 3);
    for flag in &flags {
        let got = policy(json!({"mode": "MPOL_BIND", "nodes": node.to_string(), "flags": [flag]}));
        assert_eq!(
            got,
            format!("bind{}:{node}", numa_maps_name(flag)),
            "{flag}"
        );
    }
}

#[test]
fn net_devices_are_moved_as_advertised() {
    if !require_root() {
        return;
    }
    assert_eq!(features()["linux"]["netDevices"]["enabled"], true);
    let Some(v) = veth::Veth::new() else { return };
    let env = Env::new();
    env.edit(|c| c["linux"]["netDevices"] = json!({&v.a: {"name": "moved0"}}));
    let out = env.sh("ls /sys/class/net");
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["lo", "moved0"]);
    assert!(v.gone_from_host());
}

#[test]
fn intel_rdt_works_exactly_when_advertised() {
    if !require_root() {
        return;
    }
    let enabled = features()["linux"]["intelRdt"]["enabled"] == true;
    let env = Env::new();
    env.edit(|c| c["linux"]["intelRdt"] = json!({}));
    let Some(mount) = hull::runtime::rdt::resctrl_mount() else {
        assert!(!enabled);
        eprintln!("SKIP: no resctrl on this host: only the refusal is tested");
        let id = unique_id();
        env.set_args(&["true"]);
        env.hull(&["run", "--bundle", env.bundle.to_str().unwrap(), &id])
            .fails_with("linux.intelRdt: no resctrl filesystem is mounted");
        assert_nothing_left(&env, &id);
        return;
    };
    assert!(enabled);
    // Without closID the group is the container's id, made and removed by hull.
    let id = env.run_detached(&["sleep", "30"]);
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    let tasks = std::fs::read_to_string(mount.join(&id).join("tasks")).unwrap();
    assert!(tasks.lines().any(|l| l == pid.to_string()), "{tasks}");
    env.hull(&["delete", "--force", &id]).ok();
    assert!(!mount.join(&id).exists());
}
