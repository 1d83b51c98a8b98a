//! The pod scenarios kubelet drives, each run for one runtime handler.

use super::client::{Cri, R};
use super::leftovers;
use super::node::{Driver, Node, BUSYBOX_IMAGE, RUNC};
use super::Matrix;
use k8s_cri::v1::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const MIB: i64 = 1024 * 1024;

/// Every scenario for handler `rt`.
pub fn all(m: &mut Matrix, cri: &mut Cri, node: &Node, rt: &'static str) {
    m.step(rt, "Version", || {
        let v = cri.version()?;
        if v.runtime_name != "containerd" || v.runtime_api_version != "v1" {
            return Err(format!("unexpected version: {v:?}"));
        }
        Ok(())
    });
    two_containers(m, cri, node, rt);
    host_port(m, cri, node, rt);
    exits(m, cri, node, rt);
}

/// Polls `f` until it succeeds or `secs` pass; returns the last error.
fn eventually<T>(secs: u64, mut f: impl FnMut() -> R<T>) -> R<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

fn contains(text: &str, needle: &str) -> R<()> {
    if text.contains(needle) {
        Ok(())
    } else {
        Err(format!("{:?} lacks {needle:?}", text.trim()))
    }
}

/// A pod as kubelet describes it: its own log directory and cgroup parent.
fn pod_config(node: &Node, name: &str, ports: Vec<PortMapping>) -> PodSandboxConfig {
    let log_dir = node.p(&format!("pod-logs/{name}"));
    let _ = std::fs::create_dir_all(&log_dir);
    let cgroup_parent = match node.driver {
        Driver::Cgroupfs => format!("{}/{name}", node.cgroup_parent),
        // A slice nests in the one its name extends with a dash.
        Driver::Systemd => format!(
            "{}-{name}.slice",
            node.cgroup_parent.trim_end_matches(".slice")
        ),
    };
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}-{}", std::process::id()),
            namespace: "hulltest".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: log_dir.display().to_string(),
        port_mappings: ports,
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_config(
    name: &str,
    cmd: &[&str],
    resources: Option<LinuxContainerResources>,
) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: BUSYBOX_IMAGE.into(),
            ..Default::default()
        }),
        command: cmd.iter().map(|s| s.to_string()).collect(),
        // kubelet's layout: <pod log dir>/<container>/<restart count>.log
        log_path: format!("{name}/0.log"),
        linux: Some(LinuxContainerConfig {
            resources,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A running pod of handler `rt` and the ids of its containers.
struct Pod {
    id: String,
    config: PodSandboxConfig,
    containers: Vec<String>,
}

/// RunPodSandbox, checking the sandbox runs under the handler's runtime.
fn run_pod(cri: &mut Cri, node: &Node, rt: &str, name: &str, ports: Vec<PortMapping>) -> R<Pod> {
    let config = pod_config(node, name, ports);
    let id = cri.run_pod(config.clone(), rt)?;
    let pod = Pod {
        id,
        config,
        containers: Vec::new(),
    };
    // Proof the shim ran this handler's runtime: only it reads its own state.
    let bin = if rt == "runc" {
        RUNC
    } else {
        super::common::HULL
    };
    let root = node.p(&format!("runtime-root-{rt}/k8s.io"));
    let out = std::process::Command::new(bin)
        .arg("--root")
        .arg(&root)
        .args(["state", &pod.id])
        .output()
        .map_err(|e| e.to_string())?;
    contains(&String::from_utf8_lossy(&out.stdout), "\"running\"")
        .map_err(|e| format!("{bin} state of the sandbox: {e}"))?;
    Ok(pod)
}

fn add(cri: &mut Cri, pod: &mut Pod, config: ContainerConfig) -> R<String> {
    let id = cri.create(&pod.id, config, &pod.config)?;
    pod.containers.push(id.clone());
    cri.start(&id)?;
    Ok(id)
}

fn wait_exited(cri: &mut Cri, id: &str, secs: u64) -> R<ContainerStatus> {
    eventually(secs, || {
        let st = cri.status(id)?;
        if st.state == ContainerState::ContainerExited as i32 {
            Ok(st)
        } else {
            Err(format!("state {} after {secs}s", st.state))
        }
    })
}

/// kubelet's teardown: stop and remove the containers, stop and remove the sandbox; then
/// nothing of the pod may be left.
fn teardown(m: &mut Matrix, cri: &mut Cri, node: &Node, rt: &'static str, pod: Pod, tag: &str) {
    // The same check sees the live pod's cgroups, mounts, veth, IP lease and shim, so an empty
    // answer after the removal means they went, not that the check looks in the wrong place.
    let live = leftovers::check(node);
    m.step(rt, &format!("{tag}: live pod seen"), || {
        for kind in ["cgroup ", "mount ", "veth ", "IP lease ", "shim "] {
            if !live.iter().any(|l| l.starts_with(kind)) {
                return Err(format!("no {kind}in {live:?}"));
            }
        }
        if node.driver == Driver::Systemd {
            // The sandbox is a transient scope in the pod's slice.
            let (_, active, cgroup) = leftovers::scope(&pod.id);
            let slice = &pod
                .config
                .linux
                .as_ref()
                .map(|l| l.cgroup_parent.clone())
                .unwrap_or_default();
            if active != "active"
                || !cgroup.contains(&format!("/{slice}/cri-containerd-{}.scope", pod.id))
            {
                return Err(format!(
                    "sandbox scope: {active} in {cgroup:?}, want active in {slice}"
                ));
            }
        }
        Ok(())
    });
    m.step(rt, &format!("{tag}: Stop/RemoveContainer"), || {
        for c in &pod.containers {
            // A grace period the exit's handling fits in, as kubelet's (30 s by default): these
            // containers end on SIGTERM (they share the sandbox's pid namespace, so none is a
            // namespace init that ignores it), and CRI sees the exit only after the shim ran
            // `kill --all` and containerd's `delete`. A SIGKILL sent while that deletion runs
            // waits in the shim behind it, and containerd 1.6 closes the task's shim connection
            // the moment the deletion returns: StopContainer then fails with "ttrpc: closed"
            // (either runtime; under TCG emulation the handling takes seconds).
            cri.stop(c, 10)?;
            cri.remove(c)?;
        }
        let left = cri.list_containers(&pod.id)?;
        if !left.is_empty() {
            return Err(format!("ListContainers after removal: {left:?}"));
        }
        Ok(())
    });
    m.step(rt, &format!("{tag}: Stop/RemovePodSandbox"), || {
        cri.stop_pod(&pod.id)?;
        cri.remove_pod(&pod.id)?;
        if cri.list_pods()?.iter().any(|p| p.id == pod.id) {
            return Err("ListPodSandbox still lists the pod".into());
        }
        Ok(())
    });
    m.step(rt, &format!("{tag}: nothing left"), || {
        // The shim exits a moment after the sandbox's removal.
        eventually(10, || match leftovers::check(node) {
            left if left.is_empty() => Ok(()),
            left => Err(left.join("; ")),
        })?;
        if node.driver == Driver::Systemd {
            for id in pod.containers.iter().chain([&pod.id]) {
                let (load, active, _) = leftovers::scope(id);
                if load != "not-found" && active != "inactive" {
                    return Err(format!(
                        "scope of {id}: LoadState={load} ActiveState={active}"
                    ));
                }
            }
        }
        Ok(())
    });
    leftovers::remove_pod_cgroups(node);
}

/// Two containers in one pod: a web server on localhost and a client.
fn two_containers(m: &mut Matrix, cri: &mut Cri, node: &Node, rt: &'static str) {
    let mut pod = None;
    m.step(rt, "RunPodSandbox", || {
        pod = Some(run_pod(cri, node, rt, &format!("two{rt}"), Vec::new())?);
        Ok(())
    });
    let Some(mut pod) = pod else { return };
    let page = format!("hull-cri-{rt}-page");
    let web_cmd = format!(
        "mkdir -p /www && echo {page} > /www/index.html && exec httpd -f -p 127.0.0.1:8080 -h /www"
    );
    let (mut web, mut client) = (String::new(), String::new());
    let started = m.step(rt, "Create+StartContainer x2", || {
        web = add(
            cri,
            &mut pod,
            container_config("web", &["sh", "-c", &web_cmd], None),
        )?;
        let loop_cmd = "echo client-started; echo to-stderr >&2; while :; do sleep 1; done";
        client = add(
            cri,
            &mut pod,
            container_config("client", &["sh", "-c", loop_cmd], None),
        )?;
        Ok(())
    });
    if started {
        pod_steps(m, cri, node, rt, &pod, &web, &client, &page);
    }
    teardown(m, cri, node, rt, pod, "two containers");
}

#[allow(clippy::too_many_arguments)]
fn pod_steps(
    m: &mut Matrix,
    cri: &mut Cri,
    node: &Node,
    rt: &'static str,
    pod: &Pod,
    web: &str,
    client: &str,
    page: &str,
) {
    m.step(rt, "ListContainers/ListPodSandbox", || {
        let running = cri
            .list_containers(&pod.id)?
            .iter()
            .filter(|c| c.state == ContainerState::ContainerRunning as i32)
            .count();
        if running != 2 {
            return Err(format!("{running} running containers listed, want 2"));
        }
        let pods = cri.list_pods()?;
        match pods.iter().find(|p| p.id == pod.id) {
            Some(p) if p.state == PodSandboxState::SandboxReady as i32 => Ok(()),
            p => Err(format!("pod listed as {p:?}")),
        }
    });
    m.step(rt, "ContainerStatus running", || {
        let st = cri.status(web)?;
        if st.state != ContainerState::ContainerRunning as i32 || st.started_at == 0 {
            return Err(format!("status {st:?}"));
        }
        contains(&st.log_path, "web/0.log")
    });
    m.step(rt, "localhost between containers", || {
        // The server may still be coming up.
        let body = eventually(10, || {
            cri.exec(client, &["wget", "-qO-", "http://127.0.0.1:8080/"])
        })?;
        contains(&body, page)
    });
    m.step(rt, "shared pod IP and hostname", || {
        let ip = cri
            .pod_status(&pod.id)?
            .network
            .map(|n| n.ip)
            .unwrap_or_default();
        if !ip.starts_with(&format!("{}.", node.subnet_prefix)) {
            return Err(format!("pod IP {ip:?} not in {}.0/24", node.subnet_prefix));
        }
        for c in [web, client] {
            let addr = cri.exec(c, &["ip", "-4", "-o", "addr", "show", "eth0"])?;
            contains(&addr, &format!("inet {ip}/"))?;
            contains(&cri.exec(c, &["hostname"])?, &format!("two{rt}"))?;
        }
        Ok(())
    });
    m.step(rt, "container log file (CRI format)", || {
        let path = node.p(&format!("pod-logs/two{rt}/client/0.log"));
        let text = eventually(10, || {
            let t =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            contains(&t, "to-stderr").map(|()| t)
        })?;
        check_cri_log(
            &text,
            &[("stdout", "client-started"), ("stderr", "to-stderr")],
        )
    });
    m.step(rt, "UpdateContainerResources", || {
        cri.update(client, LinuxContainerResources {
            memory_limit_in_bytes: 96 * MIB,
            cpu_shares: 512,
            ..Default::default()
        })?;
        let limit = cri.exec(client, &["sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max"])?;
        if limit.trim() != (96 * MIB).to_string() {
            return Err(format!("memory limit inside is {:?}", limit.trim()));
        }
        // v1 takes the shares as they are; v2 converts them to a weight as runc does.
        let cpu = cri.exec(client, &["sh", "-c", "cat /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/cpu.weight"])?;
        if !matches!(cpu.trim(), "512" | "20") {
            return Err(format!("cpu shares/weight inside is {:?}", cpu.trim()));
        }
        Ok(())
    });
    m.step(rt, "ContainerStats", || {
        // Burn a little CPU so the usage is not zero.
        cri.exec(
            client,
            &[
                "sh",
                "-c",
                "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done",
            ],
        )?;
        let st = cri.stats(client)?;
        let mem = st
            .memory
            .and_then(|m| m.working_set_bytes)
            .map(|v| v.value)
            .unwrap_or(0);
        let cpu = st
            .cpu
            .and_then(|c| c.usage_core_nano_seconds)
            .map(|v| v.value)
            .unwrap_or(0);
        if mem == 0 || cpu == 0 {
            return Err(format!("working set {mem} B, cpu {cpu} ns"));
        }
        Ok(())
    });
    m.step(rt, "StopContainer reports exit", || {
        // The web server ignores nothing: SIGTERM ends it well within the grace period.
        cri.stop(web, 10)?;
        let st = wait_exited(cri, web, 10)?;
        if st.finished_at == 0 {
            return Err(format!("no finish time: {st:?}"));
        }
        Ok(())
    });
}

/// Checks kubelet's log format: `<RFC 3339 time> <stream> <F|P> <text>` per line, and that
/// each (stream, text) pair is there.
fn check_cri_log(text: &str, want: &[(&str, &str)]) -> R<()> {
    for line in text.lines() {
        let parts: Vec<&str> = line.splitn(4, ' ').collect();
        let [ts, stream, tag, _] = parts[..] else {
            return Err(format!("malformed log line {line:?}"));
        };
        chrono::DateTime::parse_from_rfc3339(ts).map_err(|e| format!("time in {line:?}: {e}"))?;
        if !matches!(stream, "stdout" | "stderr") || !matches!(tag, "F" | "P") {
            return Err(format!("malformed log line {line:?}"));
        }
    }
    for (stream, msg) in want {
        if !text
            .lines()
            .any(|l| l.contains(&format!(" {stream} F {msg}")))
        {
            return Err(format!("no {stream} line {msg:?} in {text:?}"));
        }
    }
    Ok(())
}

/// A hostPort mapping reached from the host.
fn host_port(m: &mut Matrix, cri: &mut Cri, node: &Node, rt: &'static str) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let ports = vec![PortMapping {
        protocol: Protocol::Tcp as i32,
        container_port: 80,
        host_port: port as i32,
        host_ip: String::new(),
    }];
    let mut pod = None;
    m.step(rt, "hostPort: RunPodSandbox", || {
        pod = Some(run_pod(cri, node, rt, &format!("port{rt}"), ports)?);
        Ok(())
    });
    let Some(mut pod) = pod else { return };
    let page = format!("hull-hostport-{rt}");
    let cmd =
        format!("mkdir -p /www && echo {page} > /www/index.html && exec httpd -f -p 80 -h /www");
    let ok = m.step(rt, "hostPort: start server", || {
        add(
            cri,
            &mut pod,
            container_config("server", &["sh", "-c", &cmd], None),
        )
        .map(drop)
    });
    if ok {
        m.step(rt, "hostPort from the host (127.0.0.1)", || {
            eventually(15, || http_get(&format!("127.0.0.1:{port}")))
                .and_then(|b| contains(&b, &page))
        });
        m.step(rt, "hostPort from the host (bridge IP)", || {
            let addr = format!("{}.1:{port}", node.subnet_prefix);
            eventually(15, || http_get(&addr)).and_then(|b| contains(&b, &page))
        });
    }
    teardown(m, cri, node, rt, pod, "hostPort");
}

fn http_get(addr: &str) -> R<String> {
    let mut s = std::net::TcpStream::connect_timeout(
        &addr.parse().map_err(|e| format!("{addr}: {e}"))?,
        Duration::from_secs(3),
    )
    .map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut body = String::new();
    s.take(64 * 1024)
        .read_to_string(&mut body)
        .map_err(|e| e.to_string())?;
    Ok(body)
}

/// A failing command and an OOM kill, as ContainerStatus reports them.
fn exits(m: &mut Matrix, cri: &mut Cri, node: &Node, rt: &'static str) {
    let mut pod = None;
    m.step(rt, "exits: RunPodSandbox", || {
        pod = Some(run_pod(cri, node, rt, &format!("exit{rt}"), Vec::new())?);
        Ok(())
    });
    let Some(mut pod) = pod else { return };
    m.step(rt, "failing command: exit code, Error", || {
        let id = add(
            cri,
            &mut pod,
            container_config("fail", &["sh", "-c", "echo failing >&2; exit 3"], None),
        )?;
        let st = wait_exited(cri, &id, 20)?;
        if st.exit_code != 3 || st.reason != "Error" {
            return Err(format!("exit code {} reason {:?}", st.exit_code, st.reason));
        }
        Ok(())
    });
    m.step(rt, "memory hog: OOMKilled", || {
        let limit = LinuxContainerResources {
            memory_limit_in_bytes: 32 * MIB,
            ..Default::default()
        };
        let id = add(
            cri,
            &mut pod,
            container_config("hog", &["tail", "/dev/zero"], Some(limit)),
        )?;
        wait_exited(cri, &id, 60)?;
        // The shim sends the exit and the OOM event separately: containerd may record the exit
        // first and the reason a moment later, which kubelet's next status poll sees.
        eventually(10, || {
            let st = cri.status(&id)?;
            if st.reason != "OOMKilled" || st.exit_code != 137 {
                return Err(format!("exit code {} reason {:?}", st.exit_code, st.reason));
            }
            Ok(())
        })
    });
    teardown(m, cri, node, rt, pod, "exits");
}
