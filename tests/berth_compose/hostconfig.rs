//! A service's docker HostConfig keys reach the container: domainname, extra_hosts, dns,
//! dns_search, dns_opt, sysctls, shm_size, mem_reservation, cpuset, pid: host, ipc: shareable,
//! group_add and a fixed ipv4_address on a project network, each checked from inside.

use super::{project, Proj};

/// Its own subnet (10.213.231.0/24 is used by no other test) and bridge.
fn compose_yaml(p: &Proj) -> String {
    format!(
        r#"services:
  box:
    image: busybox
    init: true
    command: ["sleep", "600"]
    hostname: box
    domainname: example.test
    extra_hosts: ["db.internal=10.213.231.77"]
    dns: [10.213.231.53]
    dns_search: [corp.test]
    dns_opt: ["ndots:3"]
    sysctls:
      net.ipv4.ip_forward: "1"
      kernel.shm_rmid_forced: "1"
    shm_size: 96m
    mem_reservation: 32m
    cpuset: "0"
    pid: host
    ipc: shareable
    group_add: ["1234"]
    networks:
      default:
        ipv4_address: 10.213.231.9
networks:
  default:
    driver_opts:
      com.docker.network.bridge.name: {}
    ipam:
      config:
        - subnet: 10.213.231.0/24
"#,
        p.bridge()
    )
}

fn sh(p: &Proj, script: &str) -> String {
    p.ok(&["exec", "-T", "box", "sh", "-c", script])
}

#[test]
fn host_config_keys_reach_the_container() {
    let Some(p) = project(5, "hcfg") else { return };
    p.write("compose.yaml", &compose_yaml(&p));
    p.ok(&["up", "-d"]);

    let resolv = sh(&p, "cat /etc/resolv.conf");
    // On a project network the network's resolver stays the nameserver (docker keeps its
    // 127.0.0.11 too): it answers service names.
    assert!(resolv.contains("nameserver 10.213.231.1\n"), "{resolv}");
    assert!(resolv.contains("search corp.test"), "{resolv}");
    assert!(resolv.contains("options ndots:3"), "{resolv}");
    let hosts = sh(&p, "cat /etc/hosts");
    assert!(
        hosts
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["10.213.231.77", "db.internal"]),
        "{hosts}"
    );
    assert_eq!(
        sh(
            &p,
            "cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname"
        ),
        "box\nexample.test\n"
    );
    assert_eq!(
        sh(
            &p,
            "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced"
        ),
        "1\n1\n"
    );
    // 96m of /dev/shm: df's 1K-blocks column.
    let df = sh(&p, "df -k /dev/shm | tail -n 1");
    assert_eq!(df.split_whitespace().nth(1), Some("98304"), "{df}");
    let cpus = sh(&p, "grep Cpus_allowed_list /proc/self/status");
    assert_eq!(cpus.split_whitespace().nth(1), Some("0"), "{cpus}");
    let id = sh(&p, "id");
    assert!(id.contains("1234"), "group_add: {id}");
    // pid: host — this test's own process is visible; ipc: shareable — a namespace of its own.
    let me = std::process::id();
    assert_eq!(
        sh(&p, &format!("test -d /proc/{me} && echo seen")),
        "seen\n"
    );
    let host_ipc = std::fs::read_link("/proc/self/ns/ipc").expect("host ipc ns");
    let ctr_ipc = sh(&p, "readlink /proc/self/ns/ipc");
    assert_ne!(ctr_ipc.trim(), host_ipc.to_string_lossy(), "ipc: shareable");
    let addr = sh(&p, "ip -4 addr show eth0");
    assert!(addr.contains("inet 10.213.231.9/24"), "{addr}");
    // mem_reservation: the cgroup's soft limit (memory.low on cgroup v2, soft_limit on v1).
    let low = sh(&p, "cat /sys/fs/cgroup/memory.low 2>/dev/null || cat /sys/fs/cgroup/memory/memory.soft_limit_in_bytes");
    assert_eq!(low.trim(), (32u64 << 20).to_string());

    p.ok(&["down"]);
    p.assert_clean(&[]);
}
