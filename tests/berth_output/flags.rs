//! `network create --ip-range/--label`, `network ls --filter/--format/-q`,
//! `volume create -o/--label`, `volume ls --filter/--format/-q`, seen from
//! inside containers where they have an effect.

use crate::berth_common::ctr::{env, Rt};

#[test]
fn network_ip_range_and_labels() {
    let Some(mut e) = env(66, Rt::Hull) else {
        return;
    };
    let (net, br, subnet) = e.user_net(0);
    let range = subnet.replace(".0/24", ".192/27");
    let opt = format!("bridge={br}");
    let id = e.ok(&[
        "network",
        "create",
        "--subnet",
        &subnet,
        "--ip-range",
        &range,
        "--label",
        "team=red",
        "--label",
        "tier",
        "-o",
        &opt,
        &net,
    ]);
    // The container's own address, read inside it, comes from the range.
    let ip = e.ok(&e.run_args(&[
        "--rm",
        "--network",
        &net,
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0 | awk '{print $4}'",
    ]));
    let prefix = subnet.trim_end_matches("0/24");
    let last: u32 = ip
        .trim()
        .strip_prefix(prefix)
        .and_then(|r| r.strip_suffix("/24"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{ip} not in {subnet}"));
    assert!((192..224).contains(&last), "{ip} not in {range}");
    assert_eq!(
        e.ok(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.IPRange}}{{end}} {{.Labels.team}}",
            &net
        ]),
        format!("{range} red\n")
    );
    // ls: filters by name, id, label, driver; -q; --format.
    assert_eq!(
        e.ok(&["network", "ls", "-q", "--filter", "label=team=red"]),
        format!("{}\n", &id.trim()[..12])
    );
    assert_eq!(e.ok(&["network", "ls", "-q", "-f", "label=team=blue"]), "");
    assert_eq!(
        e.ok(&[
            "network",
            "ls",
            "-f",
            "label=tier",
            "-f",
            "driver=bridge",
            "--format",
            "{{.Name}} {{.Labels}}"
        ]),
        format!("{net} team=red,tier=\n")
    );
    assert_eq!(
        e.ok(&[
            "network",
            "ls",
            "--no-trunc",
            "-f",
            &format!("id={}", &id[..6]),
            "--format",
            "{{.ID}}"
        ]),
        id
    );
    assert_eq!(
        e.ok(&["network", "ls", "-f", "name=bri", "--format", "{{.Name}}"]),
        "bridge\n"
    );
    e.err(
        &["network", "ls", "-f", "colour=red"],
        "invalid filter 'colour'",
    );
    // A range outside the subnet is refused, and nothing is left of it.
    let (net2, br2, subnet2) = e.user_net(1);
    let o2 = format!("bridge={br2}");
    e.err(
        &[
            "network",
            "create",
            "--subnet",
            &subnet2,
            "--ip-range",
            &range,
            "-o",
            &o2,
            &net2,
        ],
        "is not inside subnet",
    );
    assert!(!e.ok(&["network", "ls"]).contains(&net2));
    assert!(!std::path::Path::new("/sys/class/net").join(&br2).exists());
}

#[test]
fn volume_options_and_filters() {
    let Some(e) = env(67, Rt::Hull) else { return };
    // The local driver's options mount a tmpfs of that size on the volume.
    e.ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=2m,nodev",
        "--label",
        "kind=scratch",
        "tmp1",
    ]);
    let df = e.ok(&e.run_args(&["--rm", "-v", "tmp1:/data", "busybox", "df", "-k", "/data"]));
    let row = df.lines().nth(1).unwrap_or_default().to_string();
    assert!(row.starts_with("tmpfs") && row.contains(" 2048 "), "{df}");
    e.ok(&e.run_args(&[
        "--rm",
        "-v",
        "tmp1:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]));
    assert_eq!(
        e.ok(&e.run_args(&["--rm", "-v", "tmp1:/data", "busybox", "cat", "/data/f"])),
        "kept\n"
    );
    e.err(
        &["volume", "create", "-o", "colour=red", "bad1"],
        "invalid option key",
    );
    e.err(&["volume", "create", "-o", "type=tmpfs", "bad2"], "device");
    assert!(!e.ok(&["volume", "ls", "-q"]).contains("bad"));
    e.ok(&[
        "volume",
        "create",
        "--label",
        "kind=data",
        "--label",
        "keep",
        "used",
    ]);
    e.ok(&e.run_args(&[
        "-d", "--name", "user", "-v", "used:/u", "busybox", "sleep", "100",
    ]));
    // ls: name, label, dangling filters, -q and --format.
    for (filter, want) in [
        ("label=kind=data", "used\n"),
        ("label=kind", "tmp1\nused\n"),
        ("dangling=true", "tmp1\n"),
        ("dangling=false", "used\n"),
        ("name=tm", "tmp1\n"),
    ] {
        assert_eq!(
            e.ok(&["volume", "ls", "-q", "-f", filter]),
            want,
            "{filter}"
        );
    }
    assert_eq!(
        e.ok(&["volume", "ls", "--format", "table {{.Name}}\\t{{.Labels}}"]),
        "VOLUME NAME   LABELS\ntmp1          kind=scratch\nused          keep=,kind=data\n"
    );
    e.err(&["volume", "ls", "-f", "dangling=maybe"], "dangling=maybe");
    // Removing the volume unmounts its tmpfs (the test's leak check looks).
    e.ok(&["rm", "-f", "user"]);
    e.ok(&["volume", "rm", "tmp1"]);
}
