//! A fixed address on every network of a service (`ipv4_address` on each), and
//! `berth network connect --ip`, each seen from inside with `ip addr`; kept across a restart.

use super::{project, Proj};

/// Subnets 10.217.9.0/24, 10.217.109.0/24 and 10.217.209.0/24 (no other test uses them), the
/// bridges `<project bridge>`, `...b`, `...c`.
fn compose_yaml(p: &Proj) -> String {
    format!(
        r#"services:
  box:
    image: busybox
    init: true
    command: ["sleep", "600"]
    networks:
      front:
        ipv4_address: 10.217.9.5
      back:
        ipv4_address: 10.217.109.6
networks:
  front:
    driver_opts:
      com.docker.network.bridge.name: {b}
    ipam:
      config:
        - subnet: 10.217.9.0/24
  back:
    driver_opts:
      com.docker.network.bridge.name: {b}b
    ipam:
      config:
        - subnet: 10.217.109.0/24
"#,
        b = p.bridge()
    )
}

fn addrs(p: &Proj) -> String {
    p.ok(&["exec", "-T", "box", "ip", "-4", "addr"])
}

#[test]
fn fixed_address_on_every_network() {
    let Some(mut p) = project(9, "fips") else {
        return;
    };
    let b = p.bridge();
    p.e.bridges.extend([format!("{b}b"), format!("{b}c")]);
    p.write("compose.yaml", &compose_yaml(&p));
    p.ok(&["up", "-d"]);
    let a = addrs(&p);
    assert!(a.contains("inet 10.217.9.5/24"), "{a}");
    assert!(a.contains("inet 10.217.109.6/24"), "{a}");

    // network connect --ip: checked, then the address on the new interface.
    let opt = format!("com.docker.network.bridge.name={b}c");
    p.e.ok(&[
        "network",
        "create",
        "--subnet",
        "10.217.209.0/24",
        "-o",
        &opt,
        "fipsx",
    ]);
    let ctr = p.container("box", 1);
    p.e.err(
        &["network", "connect", "--ip", "10.9.9.9", "fipsx", &ctr],
        "10.9.9.9",
    );
    p.e.err(
        &["network", "connect", "--ip", "nope", "fipsx", &ctr],
        "--ip",
    );
    p.e.ok(&["network", "connect", "--ip", "10.217.209.7", "fipsx", &ctr]);
    let a = addrs(&p);
    assert!(a.contains("inet 10.217.209.7/24"), "{a}");
    assert_eq!(
        p.inspect(&ctr, "{{.NetworkSettings.Networks.fipsx.IPAddress}}"),
        "10.217.209.7"
    );

    // A restart attaches every network again with its fixed address.
    p.ok(&["restart", "box"]);
    let a = addrs(&p);
    for want in ["10.217.9.5/24", "10.217.109.6/24", "10.217.209.7/24"] {
        assert!(
            a.contains(&format!("inet {want}")),
            "after restart, {want}: {a}"
        );
    }

    p.e.ok(&["network", "disconnect", "fipsx", &ctr]);
    p.e.ok(&["network", "rm", "fipsx"]);
    p.ok(&["down"]);
    p.assert_clean(&[]);
}
