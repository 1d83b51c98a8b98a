//! A private "node": Debian's containerd with its CRI plugin, two runtime handlers (hull and
//! runc, both through the runc v2 shim with BinaryName), CNI bridge + host-local + portmap (and
//! the loopback plugin containerd adds), a locally built pause image and a busybox image.
//! Root, state, sockets, netns pins, IPAM data and pod logs all live under one temp dir; the
//! bridge, subnet and cgroup parent are unique to this process.

use super::berth_common::{busybox_tar, sha256_hex};
use super::common::{processes_mentioning, HULL};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const RUNC: &str = "/usr/sbin/runc";
pub const PAUSE_IMAGE: &str = "hull.test/pause:1";
pub const BUSYBOX_IMAGE: &str = "hull.test/busybox:1";
const CNI_BIN: &str = "/usr/lib/cni";

/// How containers' cgroups are named: kubelet's two cgroup drivers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Driver {
    Cgroupfs,
    Systemd,
}

pub struct Node {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    pub bridge: String,
    pub subnet_prefix: String,
    pub driver: Driver,
    /// The pods' cgroup parent: a path under each hierarchy, or a slice name (systemd driver).
    pub cgroup_parent: String,
    daemon: Option<Child>,
    host_cni: super::leftovers::HostCni,
}

impl Node {
    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The runtime handlers configured: (name, binary).
    pub fn handlers() -> Vec<(&'static str, &'static str)> {
        let mut v = vec![("hull", HULL)];
        if Path::new(RUNC).exists() {
            v.push(("runc", RUNC));
        } else {
            eprintln!("NOTE: {RUNC} missing: hull runs without a runc baseline");
        }
        v
    }

    pub fn start(driver: Driver) -> Result<Node, String> {
        let dir = tempfile::Builder::new()
            .prefix("hull-cri-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let pid = std::process::id();
        let cgroup_parent = match driver {
            Driver::Cgroupfs => format!("/hullcri{pid}"),
            Driver::Systemd => format!("hullcri{pid}.slice"),
        };
        let mut node = Node {
            sock: dir.path().join("containerd.sock"),
            dir,
            // An interface name has at most 15 bytes.
            bridge: format!("hcri{}", pid % 100_000),
            subnet_prefix: format!("10.217.{}", pid % 250),
            driver,
            cgroup_parent,
            daemon: None,
            host_cni: super::leftovers::HostCni::snapshot(),
        };
        node.write_cni()?;
        node.write_config()?;
        let log = std::fs::File::create(node.p("containerd.log")).map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(node.p("config.toml"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("spawn containerd: {e}"))?;
        node.daemon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !node.ctr(&["version"]).is_ok_and(|o| o.status.success()) {
            if Instant::now() > deadline {
                return Err(format!(
                    "containerd did not come up; log: {}",
                    node.log_tail(8)
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        node.import_images()?;
        Ok(node)
    }

    pub fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.p("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    fn ctr(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        Command::new("ctr")
            .arg("-a")
            .arg(&self.sock)
            .args(["-n", "k8s.io"])
            .args(args)
            .output()
    }

    fn write_cni(&self) -> Result<(), String> {
        let conf = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": format!("hullcri{}", std::process::id()),
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.bridge,
                    "isGateway": true,
                    // Pods talk only to each other and to the host here: no NAT rules.
                    "ipMasq": false,
                    "hairpinMode": true,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": format!("{}.0/24", self.subnet_prefix)}]],
                        "dataDir": self.p("cni-ipam"),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": true}},
            ],
        });
        std::fs::create_dir_all(self.p("cni-conf")).map_err(|e| e.to_string())?;
        std::fs::write(self.p("cni-conf/10-hull.conflist"), conf.to_string())
            .map_err(|e| e.to_string())
    }

    fn write_config(&self) -> Result<(), String> {
        let d = |rel: &str| self.p(rel).display().to_string();
        let systemd = self.driver == Driver::Systemd;
        let mut runtimes = String::new();
        for (name, bin) in Node::handlers() {
            runtimes.push_str(&format!(
                "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.{name}]\n  \
                 runtime_type = \"io.containerd.runc.v2\"\n\
                 [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.{name}.options]\n  \
                 BinaryName = \"{bin}\"\n  Root = \"{}\"\n  SystemdCgroup = {systemd}\n",
                d(&format!("runtime-root-{name}"))
            ));
        }
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = "{debug}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  enable_selinux = false
  restrict_oom_score_adj = {restrict_oom}
[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "{CNI_BIN}"
  conf_dir = "{cni}"
  max_conf_num = 1
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "native"
  default_runtime_name = "hull"
{runtimes}"#,
            root = d("root"),
            state = d("state"),
            sock = self.sock.display(),
            debug = d("debug.sock"),
            opt = d("opt"),
            restrict_oom = !can_lower_oom_score_adj(),
            cni = d("cni-conf"),
        );
        std::fs::write(self.p("config.toml"), config).map_err(|e| e.to_string())
    }

    /// Builds a docker-archive with one busybox layer and two images over it, the pause image
    /// (a shell that sleeps until killed) and a plain busybox, and imports it into k8s.io.
    fn import_images(&self) -> Result<(), String> {
        let stage = self.p("image");
        std::fs::create_dir_all(&stage).map_err(|e| e.to_string())?;
        let layer_tar = busybox_tar(&stage).ok_or("busybox-static missing")?;
        let layer = std::fs::read(&layer_tar).map_err(|e| e.to_string())?;
        let diff_id = sha256_hex(&layer);
        let mut files: Vec<(String, Vec<u8>)> = vec![(format!("{diff_id}/layer.tar"), layer)];
        let mut manifest = Vec::new();
        let pause = [
            "/bin/sh",
            "-c",
            "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done",
        ];
        for (tag, cmd) in [(PAUSE_IMAGE, &pause[..]), (BUSYBOX_IMAGE, &["/bin/sh"][..])] {
            let config = serde_json::json!({
                "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
                "config": {"Cmd": cmd, "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
                "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
            })
            .to_string();
            let name = format!("{}.json", sha256_hex(config.as_bytes()));
            manifest.push(serde_json::json!({
                "Config": name, "RepoTags": [tag], "Layers": [format!("{diff_id}/layer.tar")],
            }));
            files.push((name, config.into_bytes()));
        }
        files.push((
            "manifest.json".into(),
            serde_json::Value::Array(manifest).to_string().into_bytes(),
        ));
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in &files {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, name, data.as_slice())
                .map_err(|e| e.to_string())?;
        }
        let archive = stage.join("images.tar");
        std::fs::write(&archive, b.into_inner().map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        let out = self
            .ctr(&[
                "images",
                "import",
                "--snapshotter",
                "native",
                &archive.display().to_string(),
            ])
            .map_err(|e| format!("ctr images import: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "ctr images import: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    }

    /// Shim processes still running for this node (their command line names our socket).
    pub fn shims(&self) -> Vec<String> {
        processes_mentioning(&self.sock.display().to_string())
            .into_iter()
            .filter(|p| p.contains("containerd-shim"))
            .collect()
    }
}

/// Whether this host lets root give a process an oom_score_adj below its own: kubelet's pause
/// gets -998. Where it cannot (a sandbox without CAP_SYS_RESOURCE over the host), containerd's
/// `restrict_oom_score_adj` clamps the value instead, as its docs advise.
fn can_lower_oom_score_adj() -> bool {
    let Ok(mut child) = Command::new("sleep").arg("30").spawn() else {
        return false;
    };
    let ok = std::fs::write(format!("/proc/{}/oom_score_adj", child.id()), "-998").is_ok();
    let _ = child.kill();
    let _ = child.wait();
    if !ok {
        eprintln!("NOTE: oom_score_adj cannot be lowered here: restrict_oom_score_adj = true");
    }
    ok
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.daemon.take() {
            let pid = child.id() as i32;
            // SAFETY: a signal to the containerd we spawned and have not reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // Leftovers of a failed run: shims (named by our socket) and mounts under the temp dir.
        for p in processes_mentioning(&self.dir.path().display().to_string()) {
            if let Some(Ok(pid)) = p.split(':').next().map(str::parse::<i32>) {
                // SAFETY: a process started for this test: its command line names our temp dir.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        super::leftovers::unmount_under(self.dir.path());
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
        super::leftovers::remove_cgroup_parent(self);
        self.host_cni.restore();
    }
}
