//! The network's resolver forwards a container's other queries to that container's own DNS
//! servers (`berth run --dns` on a user network, compose's `dns:`), as docker's embedded DNS
//! does, and to the host's otherwise; `up` right after `down` binds the resolver again.

use super::dns_server::{TestDns, ANSWER, NAME};
use super::{project, Proj};

/// The test's DNS server on its own interface: 10.218.<idx>.53 (no other test uses
/// 10.218.0.0/16).
fn test_dns(p: &Proj) -> Option<TestDns> {
    let idx = p.e.idx - 100;
    let link = format!("bd{}{idx:02}", std::process::id() % 1000);
    TestDns::start(&link, format!("10.218.{idx}.53").parse().expect("ip"))
}

fn nslookup(p: &Proj, args: &[&str]) -> (bool, String) {
    let o = p.e.run(args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    (o.status.success(), out)
}

fn box_service(name: &str, dns: Option<&str>) -> String {
    let dns = dns.map(|d| format!("    dns: [{d}]\n")).unwrap_or_default();
    format!(
        "  {name}:\n    image: busybox\n    init: true\n    command: [\"sleep\", \"600\"]\n{dns}"
    )
}

#[test]
fn compose_dns_is_where_the_resolver_forwards() {
    let Some(p) = project(6, "cdns") else { return };
    let Some(srv) = test_dns(&p) else { return };
    let yaml = format!(
        "services:\n{}{}{}",
        box_service("asker", Some(&srv.addr.to_string())),
        box_service("plain", None),
        p.networks_yaml()
    );
    p.write("compose.yaml", &yaml);
    p.ok(&["up", "-d"]);

    // The nameserver inside stays the network's resolver (docker's 127.0.0.11).
    let resolv = p.ok(&["exec", "-T", "asker", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 10.217.6.1\n"), "{resolv}");
    let asker = p.container("asker", 1);
    let (ok, out) = nslookup(&p, &["exec", &asker, "nslookup", NAME]);
    assert!(ok && out.contains(&ANSWER.to_string()), "asker: {out}");
    assert!(srv.hits.load(std::sync::atomic::Ordering::Relaxed) > 0);
    // Service names are still the resolver's own answers.
    let (ok, out) = nslookup(&p, &["exec", &asker, "nslookup", "plain"]);
    assert!(ok && out.contains("10.217.6."), "plain by name: {out}");
    // A member without dns: goes to the host's resolvers (none in tests): not found.
    let plain = p.container("plain", 1);
    let (ok, out) = nslookup(&p, &["exec", &plain, "nslookup", NAME]);
    assert!(!ok && !out.contains(&ANSWER.to_string()), "plain: {out}");

    p.ok(&["down"]);
    p.assert_clean(&[]);
}

#[test]
fn run_dns_on_a_user_network() {
    let Some(p) = project(7, "rdns") else { return };
    let Some(srv) = test_dns(&p) else { return };
    let e = &p.e;
    let bridge = format!("com.docker.network.bridge.name={}", p.bridge());
    e.ok(&[
        "network",
        "create",
        "--subnet",
        "10.217.7.0/24",
        "-o",
        &bridge,
        "rdnsnet",
    ]);
    let dns = srv.addr.to_string();
    e.ok(&e.run_args(&[
        "-d",
        "--name",
        "asker",
        "--network",
        "rdnsnet",
        "--dns",
        &dns,
        "busybox",
        "sleep",
        "600",
    ]));
    e.ok(&e.run_args(&[
        "-d",
        "--name",
        "plain",
        "--network",
        "rdnsnet",
        "busybox",
        "sleep",
        "600",
    ]));
    let resolv = e.ok(&["exec", "asker", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 10.217.7.1\n"), "{resolv}");
    let (ok, out) = nslookup(&p, &["exec", "asker", "nslookup", NAME]);
    assert!(ok && out.contains(&ANSWER.to_string()), "asker: {out}");
    let (ok, out) = nslookup(&p, &["exec", "asker", "nslookup", "plain"]);
    assert!(ok && out.contains("10.217.7."), "plain by name: {out}");
    let (ok, out) = nslookup(&p, &["exec", "plain", "nslookup", NAME]);
    assert!(!ok && !out.contains(&ANSWER.to_string()), "plain: {out}");

    e.ok(&["rm", "-f", "asker", "plain"]);
    e.ok(&["network", "rm", "rdnsnet"]);
    assert!(!std::path::Path::new("/sys/class/net")
        .join(p.bridge())
        .exists());
}

/// `up` right after `down` of the same project, ten times: the new network has the same
/// gateway, and its resolver must bind it again and answer (once "Address already in use").
#[test]
fn up_right_after_down_rebinds_the_resolver() {
    let Some(p) = project(8, "loop") else { return };
    let yaml = format!("services:\n{}{}", box_service("a", None), p.networks_yaml());
    p.write("compose.yaml", &yaml);
    let t = std::time::Instant::now();
    for i in 0..10 {
        p.ok(&["up", "-d"]);
        let (ok, out) = nslookup(&p, &["exec", &p.container("a", 1), "nslookup", "a"]);
        assert!(ok && out.contains("10.217.8."), "loop {i}: {out}");
        if i == 0 {
            // A helper that does not end on SIGTERM (stopped here; a blocked mask would do the
            // same) must not outlive `down` and keep the next resolver off the gateway.
            let pid = helper_pid(&p);
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGSTOP)
                .expect("stopping the DNS helper");
        }
        p.ok(&["down"]);
    }
    eprintln!("10 up/down cycles: {:?}", t.elapsed());
    p.assert_clean(&[]);
}

/// The pid of the project network's DNS helper, from its pid file.
fn helper_pid(p: &Proj) -> i32 {
    let f =
        p.e.root
            .join("networks")
            .join(format!("{}_default.dns.pid", p.name));
    std::fs::read_to_string(&f)
        .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
        .trim()
        .parse()
        .expect("a pid")
}
