//! Resource, device, sysctl and namespace flags, read back from inside the
//! container (its cgroup v1 files, /proc/self, /dev) on this host's layout.

use super::berth_common::ctr::{env, Rt};

/// A container's view of a cgroup v1 controller file (berth mounts cgroupfs read-only inside).
fn cg(ctl: &str, file: &str) -> String {
    format!("cat /sys/fs/cgroup/{ctl}/{file}")
}

fn v1() -> bool {
    let ok = std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists();
    if !ok {
        eprintln!("SKIP: no cgroup v1 memory controller (these checks read v1 files)");
    }
    ok
}

fn resources(rt: Rt, idx: u32) {
    if !v1() {
        return;
    }
    let Some(e) = env(idx, rt) else { return };
    let script = [
        cg("memory", "memory.limit_in_bytes"),
        cg("memory", "memory.memsw.limit_in_bytes"),
        cg("memory", "memory.soft_limit_in_bytes"),
        format!("{} | head -1", cg("memory", "memory.oom_control")),
        cg("cpuset", "cpuset.cpus"),
        cg("cpu", "cpu.cfs_quota_us"),
        cg("cpu", "cpu.cfs_period_us"),
        "cat /proc/self/oom_score_adj".into(),
        "grep memory /proc/self/cgroup | cut -d: -f3 | cut -d/ -f2".into(),
    ]
    .join("; ");
    let have_swap =
        std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists();
    let parent = format!("/berthtest-{}-{idx}", std::process::id());
    let mut args = vec!["--rm", "-m", "64m", "--memory-reservation", "32m"];
    if have_swap {
        args.extend(["--memory-swap", "128m"]);
    }
    args.extend([
        "--oom-kill-disable",
        "--cpuset-cpus",
        "0",
        "--cpu-quota",
        "50000",
        "--cpu-period",
        "100000",
        "--oom-score-adj",
        "321",
        "--cgroup-parent",
        &parent,
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    let out = e.ok(&e.run_args(&args));
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], (64u64 << 20).to_string());
    if have_swap {
        assert_eq!(l[1], (128u64 << 20).to_string());
    }
    assert_eq!(l[2], (32u64 << 20).to_string());
    assert_eq!(l[3], "oom_kill_disable 1");
    assert_eq!(l[4], "0");
    assert_eq!((l[5], l[6]), ("50000", "100000"));
    assert_eq!(l[7], "321");
    assert_eq!(l[8], &parent[1..], "--cgroup-parent not used: {out}");
    // The parent is made on demand and, as docker's, outlives the container.
    for ctl in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(ctl.path().join(&parent[1..]));
    }
    // blkio weight exists only with a proportional I/O scheduler; without one it is dropped.
    if !std::path::Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists() {
        e.ok(&e.run_args(&["--rm", "--blkio-weight", "300", "busybox", "true"]));
    } else {
        let out = e.ok(&e.run_args(&[
            "--rm",
            "--blkio-weight",
            "300",
            "busybox",
            "sh",
            "-c",
            &cg("blkio", "blkio.weight"),
        ]));
        assert_eq!(out.trim(), "300");
    }
    // docker's checks, one line each, nothing left.
    e.err(
        &e.run_args(&["--memory-swap", "1g", "busybox", "true"]),
        "You should always set the Memory limit when using Memoryswap limit",
    );
    e.err(
        &e.run_args(&[
            "-m",
            "64m",
            "--memory-reservation",
            "128m",
            "busybox",
            "true",
        ]),
        "Minimum memory limit can not be less than memory reservation limit",
    );
    e.err(
        &e.run_args(&["--cpus", "1", "--cpu-period", "50000", "busybox", "true"]),
        "Conflicting options",
    );
    e.err(
        &e.run_args(&["--cpu-period", "10", "busybox", "true"]),
        "CPU cfs period can not be less than 1ms",
    );
    e.err(
        &e.run_args(&["--oom-score-adj", "5000", "busybox", "true"]),
        "range for oom score adj is [-1000, 1000]",
    );
    e.err(
        &e.run_args(&["--cpuset-cpus", "4096", "busybox", "true"]),
        "requested CPUs are not available",
    );
    e.err(
        &e.run_args(&["--blkio-weight", "5", "busybox", "true"]),
        "Range of blkio weight is from 10 to 1000",
    );
    assert_eq!(e.container_count(), 0);
}
both!(resources, 37);

fn shm_sysctl_groups_devices(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    let out = e.ok(&e.run_args(&[
        "--rm",
        "--shm-size",
        "8m",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        "--sysctl",
        "kernel.shmmni=1234",
        "--group-add",
        "10",
        "--group-add",
        "4321",
        "--device",
        "/dev/null:/dev/mynull",
        "busybox",
        "sh",
        "-c",
        "df -k /dev/shm | tail -1 | awk '{print $2}'; cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni; id -G; \
         stat -c '%t:%T %F' /dev/mynull; echo x > /dev/mynull && echo written; head -c1 /dev/mynull || echo noread",
    ]));
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "8192", "{out}");
    assert_eq!((l[1], l[2]), ("1", "1234"));
    assert_eq!(l[3], "0 10 4321");
    assert_eq!(l[4], "1:3 character special file");
    assert_eq!(l[5], "written");
    // A user's mount on /dev/shm replaces berth's tmpfs there, as with docker.
    e.ok(&e.run_args(&[
        "--rm",
        "-v",
        "shmv:/dev/shm",
        "busybox",
        "sh",
        "-c",
        "echo kept > /dev/shm/f",
    ]));
    let out = e.ok(&e.run_args(&["--rm", "-v", "shmv:/x", "busybox", "cat", "/x/f"]));
    assert_eq!(out, "kept\n");
    // The cgroup rule follows the perms (/dev/null is allowed anyway; loop-control is not).
    if std::path::Path::new("/dev/loop-control").exists() {
        let probe = "exec 3</dev/lc && echo read; (exec 4>/dev/lc) 2>/dev/null && echo write || echo nowrite";
        for (perms, want) in [("r", "read\nnowrite\n"), ("rw", "read\nwrite\n")] {
            let dev = format!("/dev/loop-control:/dev/lc:{perms}");
            let out = e.ok(&e.run_args(&["--rm", "--device", &dev, "busybox", "sh", "-c", probe]));
            assert_eq!(out, want, "--device {dev}");
        }
        let o = e.run(&e.run_args(&["--rm", "busybox", "sh", "-c", "exec 3</dev/loop-control"]));
        assert!(
            !o.status.success(),
            "loop-control reachable without --device"
        );
    }
    e.err(
        &e.run_args(&["--sysctl", "vm.swappiness=1", "busybox", "true"]),
        "sysctl 'vm.swappiness' is not allowed",
    );
    e.err(
        &e.run_args(&[
            "--network",
            "host",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "busybox",
            "true",
        ]),
        "not allowed with --network host",
    );
    e.err(
        &e.run_args(&["--device", "/dev/nosuchdev", "busybox", "true"]),
        "/dev/nosuchdev",
    );
    e.err(
        &e.run_args(&["--device", "/dev/null:/dev/n:rwx", "busybox", "true"]),
        "invalid device mode",
    );
    e.err(
        &e.run_args(&["--group-add", "nosuchgroup", "busybox", "true"]),
        "Unable to find group nosuchgroup",
    );
    assert_eq!(e.container_count(), 0);
}
both!(shm_sysctl_groups_devices, 38);

fn ns_link(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn namespaces(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    // host modes: the container's namespace links are this process's.
    let out = e.ok(&e.run_args(&[
        "--rm", "--pid", "host", "--ipc", "host", "--userns", "host", "--cgroupns", "host",
        "--uts", "host", "busybox", "sh", "-c",
        "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc; readlink /proc/self/ns/user; cat /proc/1/comm; \
         readlink /proc/self/ns/cgroup; readlink /proc/self/ns/uts",
    ]));
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], ns_link("self", "pid"));
    assert_eq!(l[1], ns_link("self", "ipc"));
    assert_eq!(l[2], ns_link("self", "user"));
    let init = std::fs::read_to_string("/proc/1/comm").unwrap();
    assert_eq!(l[3], init.trim());
    assert_eq!(l[4], ns_link("self", "cgroup"), "--cgroupns host: {out}");
    assert_eq!(l[5], ns_link("self", "uts"), "--uts host: {out}");
    // container:NAME joins the other's pid and ipc namespaces (and /dev/shm).
    e.ok(&e.run_args(&["-d", "--name", "holder", "busybox", "sh", "-c", "sleep 60"]));
    let hpid = e.inspect("holder", "{{.State.Pid}}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = e.ok(&e.run_args(&[
        "--rm",
        "--pid",
        "container:holder",
        "--ipc",
        "container:holder",
        "busybox",
        "sh",
        "-c",
        "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc; ps -o comm | grep -c sleep",
    ]));
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], ns_link(&hpid, "pid"), "{out}");
    assert_eq!(l[1], ns_link(&hpid, "ipc"));
    assert_eq!(l[2], "1", "the holder's sleep is not visible: {out}");
    // private (default) stays apart; --cgroupns private gives a cgroup namespace of its own.
    let out = e.ok(&e.run_args(&[
        "--rm", "--ipc", "shareable", "--cgroupns", "private", "busybox", "sh", "-c",
        "readlink /proc/self/ns/ipc; readlink /proc/self/ns/cgroup; grep memory /proc/self/cgroup | cut -d: -f3",
    ]));
    let l: Vec<&str> = out.lines().collect();
    assert_ne!(l[0], ns_link("self", "ipc"));
    assert_ne!(l[1], ns_link("self", "cgroup"));
    assert_eq!(l[2], "/", "{out}");
    e.err(
        &e.run_args(&["--pid", "container:nosuch", "busybox", "true"]),
        "nosuch",
    );
    e.err(
        &e.run_args(&["--ipc", "weird", "busybox", "true"]),
        "invalid --ipc mode",
    );
    e.err(
        &e.run_args(&["--userns", "remap", "busybox", "true"]),
        "--userns",
    );
    e.err(
        &e.run_args(&["--cgroupns", "other", "busybox", "true"]),
        "invalid cgroup namespace mode",
    );
    e.ok(&["rm", "-f", "holder"]);
    assert_eq!(e.container_count(), 0);
}
both!(namespaces, 39);
