//! Hosts, DNS, links and the record-keeping flags, checked from inside
//! the container.

use super::berth_common::ctr::{env, Rt};
use super::stderr;

fn hosts_and_dns(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    let out = e.ok(&e.run_args(&[
        "--rm",
        "--add-host",
        "db.local:10.1.2.3",
        "--add-host",
        "gw:host-gateway",
        "--dns",
        "192.0.2.53",
        "--dns-search",
        "example.org",
        "--dns-option",
        "ndots:3",
        "busybox",
        "cat",
        "/etc/hosts",
        "/etc/resolv.conf",
    ]));
    assert!(out.contains("10.1.2.3\tdb.local\n"), "{out}");
    // host-gateway is the default bridge's gateway: the subnet's first address.
    let gw = e.subnet().replace(".0/24", ".1");
    assert!(out.contains(&format!("{gw}\tgw\n")), "{out}");
    let resolv: Vec<&str> = out
        .lines()
        .filter(|l| {
            l.starts_with("nameserver") || l.starts_with("search") || l.starts_with("options")
        })
        .collect();
    assert_eq!(
        resolv,
        [
            "nameserver 192.0.2.53",
            "search example.org",
            "options ndots:3"
        ]
    );
    e.err(
        &e.run_args(&["--add-host", "x:notanip", "busybox", "true"]),
        "invalid IP address in add-host",
    );
    e.err(
        &e.run_args(&["--dns", "nope", "busybox", "true"]),
        "is not an ip address",
    );
    assert_eq!(e.container_count(), 0);
}
both!(hosts_and_dns, 34);

fn link_and_expose(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    e.ok(&e.run_args(&["-d", "--name", "db", "busybox", "sleep", "60"]));
    let ip = e.inspect("db", "{{.NetworkSettings.IPAddress}}");
    let out = e.ok(&e.run_args(&[
        "--rm",
        "--link",
        "db:database",
        "--expose",
        "7000-7001/udp",
        "busybox",
        "sh",
        "-c",
        "grep database /etc/hosts; ping -c1 -W2 database >/dev/null && echo reachable",
    ]));
    let line = out.lines().next().unwrap();
    assert!(line.starts_with(&format!("{ip}\tdatabase ")), "{out}");
    assert!(line.ends_with(" db"), "{out}");
    assert!(out.contains("reachable"), "{out}");
    e.ok(&[
        "create",
        "--name",
        "ex",
        "--expose",
        "7000-7001/udp",
        "busybox",
        "true",
    ]);
    assert_eq!(
        e.inspect("ex", "{{json .Config.ExposedPorts}}"),
        r#"{"7000/udp":{},"7001/udp":{}}"#
    );
    // -P publishes --expose'd ports too.
    e.ok(&[
        "create", "--name", "pub", "-P", "--expose", "7100", "busybox", "true",
    ]);
    assert!(e.ok(&["port", "pub"]).contains("7100/tcp -> 0.0.0.0:"));
    e.ok(&["rm", "pub"]);
    e.err(
        &e.run_args(&["--link", "nosuch:x", "busybox", "true"]),
        "nosuch",
    );
    // rm -l drops the link (and its /etc/hosts line), not the containers.
    e.ok(&e.run_args(&[
        "-d",
        "--name",
        "app",
        "--link",
        "db:database",
        "busybox",
        "sleep",
        "60",
    ]));
    assert!(e
        .ok(&["exec", "app", "cat", "/etc/hosts"])
        .contains("\tdatabase "));
    assert_eq!(e.ok(&["rm", "-l", "app/database"]), "app/database\n");
    assert!(!e
        .ok(&["exec", "app", "cat", "/etc/hosts"])
        .contains("database"));
    assert_eq!(e.inspect("db", "{{.State.Status}}"), "running");
    e.err(&["rm", "-l", "app/database"], "no such link");
    e.ok(&["rm", "-f", "app"]);
    e.err(
        &["create", "--expose", "x-y", "busybox", "true"],
        "invalid range format for --expose",
    );
    e.ok(&["rm", "-f", "db", "ex"]);
}
both!(link_and_expose, 35);

/// --cidfile, --label-file, --volumes-from, --log-driver none, exec --env-file.
fn records(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    let t = tempfile::tempdir().unwrap();
    let cid = t.path().join("cid");
    let labels = t.path().join("labels");
    std::fs::write(&labels, "a=1\n# a comment\nb=2\n").unwrap();
    let (cid_s, labels_s) = (cid.to_str().unwrap(), labels.to_str().unwrap());
    let id = e.ok(&e.run_args(&[
        "-d",
        "--name",
        "src",
        "--cidfile",
        cid_s,
        "--label-file",
        labels_s,
        "-l",
        "b=3",
        "-v",
        "/data",
        "busybox",
        "sh",
        "-c",
        "echo shared > /data/f; sleep 60",
    ]));
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id.trim());
    assert_eq!(
        e.inspect("src", "{{json .Config.Labels}}"),
        r#"{"a":"1","b":"3"}"#
    );
    e.err(
        &e.run_args(&["--cidfile", cid_s, "busybox", "true"]),
        "Container ID file found",
    );
    // volumes-from: the same volume, read-only when asked.
    let out = e.ok(&e.run_args(&[
        "--rm",
        "--volumes-from",
        "src:ro",
        "busybox",
        "sh",
        "-c",
        "cat /data/f; touch /data/g 2>/dev/null || echo readonly",
    ]));
    assert_eq!(out, "shared\nreadonly\n");
    e.err(
        &e.run_args(&["--volumes-from", "nosuch", "busybox", "true"]),
        "nosuch",
    );
    // exec --env-file, with -e over it.
    let envf = t.path().join("env");
    std::fs::write(&envf, "E1=one\nE2=two\n").unwrap();
    let out = e.ok(&[
        "exec",
        "--env-file",
        envf.to_str().unwrap(),
        "-e",
        "E2=over",
        "src",
        "sh",
        "-c",
        "echo $E1 $E2",
    ]);
    assert_eq!(out, "one over\n");
    // --log-driver none: no log file, and `logs` errors as docker's does.
    e.ok(&e.run_args(&[
        "--name",
        "quiet",
        "--log-driver",
        "none",
        "busybox",
        "echo",
        "hi",
    ]));
    let dir = e
        .root
        .join("containers")
        .join(e.inspect("quiet", "{{.Id}}"));
    let logs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|d| d.ok())
        .filter(|d| d.file_name().to_string_lossy().ends_with("-json.log"))
        .collect();
    assert!(logs.is_empty(), "--log-driver none wrote a log");
    let o = e.run(&["logs", "quiet"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("configured logging driver does not support reading"));
    e.err(
        &e.run_args(&["--log-driver", "syslog", "busybox", "true"]),
        "--log-driver",
    );
    e.ok(&["rm", "-f", "-v", "src", "quiet"]);
}
both!(records, 36);

fn ip_and_mac(rt: Rt, idx: u32) {
    let Some(mut e) = env(idx, rt) else { return };
    let (net, br, subnet) = e.user_net(0);
    let opt = format!("bridge={br}");
    e.ok(&["network", "create", "--subnet", &subnet, "-o", &opt, &net]);
    let ip = subnet.replace(".0/24", ".77");
    let out = e.ok(&e.run_args(&[
        "--rm",
        "--network",
        &net,
        "--ip",
        &ip,
        "--mac-address",
        "02:42:de:ad:be:ef",
        "busybox",
        "ip",
        "addr",
        "show",
        "eth0",
    ]));
    assert!(out.contains(&format!("inet {ip}/24")), "{out}");
    assert!(out.contains("link/ether 02:42:de:ad:be:ef"), "{out}");
    // Taken: the second start fails (125) and stays Created, as docker's.
    e.ok(&e.run_args(&[
        "-d",
        "--name",
        "a",
        "--network",
        &net,
        "--ip",
        &ip,
        "busybox",
        "sleep",
        "60",
    ]));
    let o = e.run(&e.run_args(&[
        "--name",
        "b",
        "--network",
        &net,
        "--ip",
        &ip,
        "busybox",
        "true",
    ]));
    assert_eq!(o.status.code(), Some(125));
    assert!(
        super::stderr(&o).contains("Address already in use"),
        "{}",
        super::stderr(&o)
    );
    assert_eq!(e.inspect("b", "{{.State.Status}}"), "created");
    e.err(
        &e.run_args(&["--ip", "10.1.1.1", "busybox", "true"]),
        "user specified IP address is supported on user defined networks only",
    );
    e.err(
        &e.run_args(&["--network", &net, "--ip", "192.0.2.1", "busybox", "true"]),
        "no configured subnet or ip-range contain the IP address 192.0.2.1",
    );
    e.err(
        &e.run_args(&["--mac-address", "nope", "busybox", "true"]),
        "is not a valid mac address",
    );
    e.ok(&["rm", "-f", "a", "b"]);
    e.ok(&["network", "rm", &net]);
}
both!(ip_and_mac, 29);

fn attach_streams(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    let both = "echo out; echo err >&2";
    let o = e.run(&e.run_args(&["--rm", "-a", "stdout", "busybox", "sh", "-c", both]));
    assert!(o.status.success());
    assert_eq!(
        (
            String::from_utf8_lossy(&o.stdout).as_ref(),
            stderr(&o).as_str()
        ),
        ("out\n", "")
    );
    let o = e.run(&e.run_args(&["--rm", "-a", "STDERR", "busybox", "sh", "-c", both]));
    assert_eq!(
        (
            String::from_utf8_lossy(&o.stdout).as_ref(),
            stderr(&o).as_str()
        ),
        ("", "err\n")
    );
    // stdin only when attached: without -a stdin, cat sees no input.
    use std::io::Write;
    let pipe_in = |args: &[&str]| {
        let mut c = e.cmd(&e.run_args(args));
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut ch = c.spawn().unwrap();
        ch.stdin.take().unwrap().write_all(b"typed\n").unwrap();
        String::from_utf8_lossy(&ch.wait_with_output().unwrap().stdout).into_owned()
    };
    let args = [
        "--rm", "-i", "-a", "stdin", "-a", "stdout", "busybox", "cat",
    ];
    assert_eq!(pipe_in(&args), "typed\n");
    let args = [
        "--rm",
        "-i",
        "-a",
        "stdout",
        "busybox",
        "sh",
        "-c",
        "read -t 2 x; echo \"got:$x\"",
    ];
    assert_eq!(pipe_in(&args), "got:\n");
    e.err(
        &e.run_args(&["-a", "stdout", "-d", "busybox", "true"]),
        "Conflicting options: -a and -d",
    );
    e.err(
        &e.run_args(&["-a", "bogus", "busybox", "true"]),
        "valid streams are STDIN, STDOUT and STDERR",
    );
    assert_eq!(e.container_count(), 0);
}
both!(attach_streams, 28);
