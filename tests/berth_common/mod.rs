//! Helpers for berth's integration tests: running the binary, a real
//! docker-registry on a free loopback port, and building real layer tars.

#![allow(dead_code)]

#[macro_use]
pub mod ctr;

use sha2::{Digest as _, Sha256};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

pub fn berth(root: &Path, args: &[&str]) -> Output {
    Command::new(BERTH)
        .arg("--root")
        .arg(root)
        .args(args)
        .env("HOME", root) // keep ~/.docker/config.json lookups hermetic
        .output()
        .expect("running berth")
}

/// Runs berth and asserts success; returns stdout.
pub fn berth_ok(root: &Path, args: &[&str]) -> String {
    let o = berth(root, args);
    assert!(
        o.status.success(),
        "berth {args:?} failed: {}\nstdout: {}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs berth, asserts failure with a one-line error containing `needle`.
pub fn berth_err(root: &Path, args: &[&str], needle: &str) -> String {
    let o = berth(root, args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !o.status.success(),
        "berth {args:?} should fail; stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        err.contains(needle),
        "berth {args:?}: error {err:?} does not mention {needle:?}"
    );
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "error should be one line: {err:?}"
    );
    err
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    l.local_addr().expect("local addr").port()
}

/// A docker-registry process; killed (by pid) and reaped on drop.
pub struct Registry {
    child: Child,
    pub port: u16,
    pub addr: String,
    pub storage: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// Starts a registry; `htpasswd` = Some((user, pass)) enables basic auth.
    /// None if docker-registry is not installed.
    pub fn start(htpasswd: Option<(&str, &str)>) -> Option<Registry> {
        if !Path::new("/usr/bin/docker-registry").exists() {
            eprintln!("SKIP: /usr/bin/docker-registry not installed (hack/deps.sh)");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = dir.path().join("data");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut auth = String::new();
        if let Some((u, p)) = htpasswd {
            if !have("htpasswd") {
                eprintln!("SKIP: htpasswd not installed (apache2-utils)");
                return None;
            }
            let out = Command::new("htpasswd")
                .args(["-Bbn", u, p])
                .output()
                .expect("running htpasswd");
            assert!(out.status.success());
            let f = dir.path().join("htpasswd");
            std::fs::write(&f, &out.stdout).expect("writing htpasswd");
            auth = format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                f.display()
            );
        }
        let cfg = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n{auth}",
            storage.display()
        );
        let cfg_path = dir.path().join("config.yml");
        std::fs::write(&cfg_path, cfg).expect("writing registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log file");
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&cfg_path)
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let reg = Registry {
            child,
            port,
            addr: addr.clone(),
            storage,
            _dir: dir,
        };
        let start = Instant::now();
        while TcpStream::connect(&addr).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "registry did not start on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(reg)
    }

    /// The registry's storage file for a blob.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

/// A busybox rootfs tarball (bin/busybox + applet symlinks), or None with
/// a SKIP line if busybox-static is missing.
pub fn busybox_tar(dir: &Path) -> Option<PathBuf> {
    let bb = Path::new("/bin/busybox");
    if !bb.exists() {
        eprintln!("SKIP: /bin/busybox missing (apt-get install busybox-static)");
        return None;
    }
    let list = Command::new(bb)
        .arg("--list")
        .output()
        .expect("busybox --list");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = dir_header(0o755);
    b.append_data(&mut h, "bin/", std::io::empty())
        .expect("tar");
    b.append_path_with_name(bb, "bin/busybox")
        .expect("tar busybox");
    for a in String::from_utf8_lossy(&list.stdout).lines() {
        if a == "busybox" || a.is_empty() {
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        b.append_link(&mut h, format!("bin/{a}"), "busybox")
            .expect("tar link");
    }
    let p = dir.join("busybox.tar");
    std::fs::write(&p, b.into_inner().expect("tar")).expect("write tar");
    Some(p)
}

pub fn dir_header(mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_size(0);
    h.set_mode(mode);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h
}

pub enum Ent<'a> {
    Dir(&'a str),
    File(&'a str, &'a [u8]),
    Sym(&'a str, &'a str),
    Hard(&'a str, &'a str),
    /// A whiteout for a path (`dir/name` → `dir/.wh.name`).
    Whiteout(&'a str),
    /// Marks a directory opaque (`dir/.wh..wh..opq`).
    Opaque(&'a str),
}

pub fn layer_tar(entries: &[Ent]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let file = |size: usize| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(size as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h
    };
    for e in entries {
        match e {
            Ent::Dir(p) => b
                .append_data(&mut dir_header(0o755), p, std::io::empty())
                .expect("tar"),
            Ent::File(p, d) => b.append_data(&mut file(d.len()), p, *d).expect("tar"),
            Ent::Sym(p, t) => {
                let mut h = file(0);
                h.set_entry_type(tar::EntryType::Symlink);
                b.append_link(&mut h, p, t).expect("tar")
            }
            Ent::Hard(p, t) => {
                let mut h = file(0);
                h.set_entry_type(tar::EntryType::Link);
                b.append_link(&mut h, p, t).expect("tar")
            }
            Ent::Whiteout(p) => {
                let (d, n) = p.rsplit_once('/').unwrap_or(("", p));
                let name = if d.is_empty() {
                    format!(".wh.{n}")
                } else {
                    format!("{d}/.wh.{n}")
                };
                b.append_data(&mut file(0), name, std::io::empty())
                    .expect("tar")
            }
            Ent::Opaque(d) => b
                .append_data(&mut file(0), format!("{d}/.wh..wh..opq"), std::io::empty())
                .expect("tar"),
        }
    }
    b.into_inner().expect("tar")
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

/// The blobs of a one-manifest image (gzip layers, config, manifest) and
/// the manifest's descriptor.
pub fn image_blobs(layers: &[Vec<u8>], arch: &str) -> (Vec<(String, Vec<u8>)>, serde_json::Value) {
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut layer_descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut history = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let gz = gzip(l);
        let d = sha256_hex(&gz);
        diff_ids.push(format!("sha256:{}", sha256_hex(l)));
        layer_descs.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": format!("sha256:{d}"),
            "size": gz.len(),
        }));
        history.push(serde_json::json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("layer {i}")}));
        blobs.push((d, gz));
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "created": "2024-01-01T00:00:00Z",
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }))
    .expect("json");
    let cd = sha256_hex(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{cd}"), "size": config.len()},
        "layers": layer_descs,
    }))
    .expect("json");
    let md = sha256_hex(&manifest);
    let desc = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{md}"),
        "size": manifest.len(),
        "platform": {"architecture": arch, "os": "linux"},
    });
    blobs.push((cd, config));
    blobs.push((md, manifest));
    (blobs, desc)
}

/// Writes an OCI-archive (tarred image layout) of the given layer tars,
/// gzip-compressed, named `name`. Returns the archive path.
pub fn oci_archive(dir: &Path, name: &str, layers: &[Vec<u8>]) -> PathBuf {
    let (blobs, mut desc) = image_blobs(layers, "amd64");
    desc.as_object_mut().expect("object").remove("platform");
    desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": name});
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [desc]}))
        .expect("json");
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, data).expect("tar");
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add("index.json", &index);
    for (d, data) in &blobs {
        add(&format!("blobs/sha256/{d}"), data);
    }
    let p = dir.join(format!("{}.oci.tar", sha256_hex(name.as_bytes())));
    std::fs::write(&p, b.into_inner().expect("tar")).expect("write archive");
    p
}

/// Writes an OCI layout directory whose index.json points at an image
/// index with one manifest per architecture (each with its own layers).
/// Returns the layout dir and the manifest digests by arch.
pub fn multiarch_layout(
    dir: &Path,
    tag: &str,
    per_arch: &[(&str, Vec<Vec<u8>>)],
) -> (PathBuf, Vec<(String, String)>) {
    let layout = dir.join("multiarch");
    let blobdir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobdir).expect("mkdir");
    let mut descs = Vec::new();
    let mut digests = Vec::new();
    for (arch, layers) in per_arch {
        let (blobs, desc) = image_blobs(layers, arch);
        for (d, data) in blobs {
            std::fs::write(blobdir.join(d), data).expect("write blob");
        }
        digests.push((
            arch.to_string(),
            desc["digest"].as_str().expect("digest").to_string(),
        ));
        descs.push(desc);
    }
    let inner = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": descs,
    }))
    .expect("json");
    let id = sha256_hex(&inner);
    std::fs::write(blobdir.join(&id), &inner).expect("write index");
    let top = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": format!("sha256:{id}"),
            "size": inner.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    }))
    .expect("json");
    std::fs::write(layout.join("index.json"), top).expect("write index.json");
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("write oci-layout");
    (layout, digests)
}

/// podman with its own storage under `dir` (vfs: works anywhere).
pub fn podman(dir: &Path, args: &[&str]) -> Output {
    Command::new("podman")
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .args(["--storage-driver", "vfs", "--events-backend", "file"])
        .args(args)
        .output()
        .expect("running podman")
}

pub fn podman_ok(dir: &Path, args: &[&str]) -> String {
    let o = podman(dir, args);
    assert!(
        o.status.success(),
        "podman {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A digest of a whole directory tree (names, types, modes, contents), to
/// check that failed operations leave the store untouched.
pub fn tree_hash(root: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let mut h = Sha256::new();
    fn walk(h: &mut Sha256, base: &Path, p: &Path) {
        let mut ents: Vec<_> = std::fs::read_dir(p).expect("read_dir").flatten().collect();
        ents.sort_by_key(|e| e.file_name());
        for e in ents {
            // The event log records what happened, failures included, and lock files are
            // made by whoever locks first: neither is store state.
            let name = e.file_name().to_string_lossy().into_owned();
            if p == base && (name.starts_with("events.log") || name.ends_with(".lock")) {
                continue;
            }
            let path = e.path();
            let rel = path
                .strip_prefix(base)
                .expect("prefix")
                .to_string_lossy()
                .into_owned();
            let m = std::fs::symlink_metadata(&path).expect("lstat");
            h.update(format!("{rel}\0{:o}\0", m.mode()).as_bytes());
            if m.is_dir() {
                walk(h, base, &path);
            } else if m.is_file() {
                h.update(std::fs::read(&path).expect("read"));
            } else if m.file_type().is_symlink() {
                h.update(
                    std::fs::read_link(&path)
                        .expect("readlink")
                        .as_os_str()
                        .as_encoded_bytes(),
                );
            }
        }
    }
    walk(&mut h, root, root);
    hex::encode(h.finalize())
}

/// Extracts the manifest digest of a named image from `berth images --digests`.
pub fn local_digest(root: &Path, name: &str) -> String {
    let out = berth_ok(root, &["image", "inspect", name]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("inspect json");
    v[0]["Manifest"]["Digest"]
        .as_str()
        .expect("digest")
        .to_string()
}

/// Imports a real Debian bookworm root (minbase plus `packages`, comma-separated), made once by
/// `hack/debian-image.sh` with mmdebstrap from Debian's archive, as image `name` into `root`.
/// False with a SKIP line when mmdebstrap is missing (CI installs it, so there it fails the run).
pub fn debian_image(root: &Path, name: &str, packages: &str) -> bool {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/hack/debian-image.sh");
    if !have("mmdebstrap") {
        eprintln!("SKIP: mmdebstrap not installed (hack/deps.sh installs it)");
        return false;
    }
    let o = Command::new(script)
        .arg(packages)
        .output()
        .expect("running hack/debian-image.sh");
    assert!(
        o.status.success(),
        "hack/debian-image.sh {packages}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let tar = String::from_utf8_lossy(&o.stdout).trim().to_string();
    berth_ok(root, &["import", &tar, name]);
    true
}
