//! issue 15, security items 1-4 on berth's image side: the berth root is
//! closed to other users (checked as `nobody`), a hostile registry can't
//! fill the disk, stall a pull or smuggle a layer past its diff_id, and
//! import/load refuse archives that unpack past the size limit. Each
//! failure must leave the store exactly as it was, with no temp file.

mod berth_common;
#[path = "berth_security/hostile.rs"]
mod hostile;

use berth_common::ctr::{env, Rt};
use berth_common::*;
use hostile::{Hostile, Serve};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A temp dir that `nobody` may traverse, so that the berth root inside is
/// the only barrier the access tests meet.
fn open_tmp() -> tempfile::TempDir {
    let t = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    t
}

fn berth_env(root: &Path, envs: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(BERTH);
    c.arg("--root").arg(root).args(args).env("HOME", root);
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("running berth")
}

fn failed_with(o: &Output, needle: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(!o.status.success(), "should have failed: {err}");
    assert!(
        err.contains(needle),
        "error {err:?} does not mention {needle:?}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one-line error: {err:?}");
    err
}

/// Every temp file or dir anywhere in the store.
fn temps(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with(".tmp-") {
                out.push(p.clone());
            }
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(p);
            }
        }
    }
    out
}

fn assert_unchanged(root: &Path, before: &str, what: &str) {
    assert_eq!(before, tree_hash(root), "{what} changed the store");
    assert_eq!(temps(root), Vec::<PathBuf>::new(), "{what} left temp files");
}

/// Runs `argv` as uid/gid 65534 with no supplementary groups. setpriv
/// still holds root's capabilities when it execs, so a path to exec must
/// go through a trampoline (`env PATH`) to be resolved as nobody.
fn as_nobody(argv: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(argv)
        .output()
        .expect("running setpriv")
}

fn lowerdirs(root: &Path, name: &str) -> Vec<String> {
    let out = berth_ok(root, &["image", "inspect", name]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("inspect json");
    v[0]["GraphDriver"]["Data"]["LowerDir"]
        .as_str()
        .expect("LowerDir")
        .split(':')
        .map(str::to_string)
        .collect()
}

/// A rootfs tar with a setuid-root copy of id(1).
fn suid_tar() -> Vec<u8> {
    let id = std::fs::read("/usr/bin/id").expect("reading /usr/bin/id");
    let mut b = tar::Builder::new(Vec::new());
    b.append_data(&mut dir_header(0o755), "bin/", std::io::empty())
        .expect("tar");
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(id.len() as u64);
    h.set_mode(0o4755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "bin/suid-id", &id[..]).expect("tar");
    b.into_inner().expect("tar")
}

#[test]
fn store_is_closed_to_other_users() {
    if !is_root() || !have("setpriv") {
        eprintln!("SKIP: needs root and setpriv (util-linux)");
        return;
    }
    let t = open_tmp();
    let root = t.path().join("root");
    let tar = t.path().join("suid.tar");
    std::fs::write(&tar, suid_tar()).expect("write tar");
    berth_ok(&root, &["import", tar.to_str().expect("utf8"), "suid:1"]);
    berth_ok(&root, &["volume", "create", "v1"]);
    let md = std::fs::metadata(&root).expect("stat root");
    assert_eq!(md.mode() & 0o7777, 0o710, "berth root mode");
    assert_eq!((md.uid(), md.gid()), (0, 0), "berth root owner");
    let snap = PathBuf::from(&lowerdirs(&root, "suid:1")[0]);
    let suid = snap.join("bin/suid-id");
    assert_eq!(
        std::fs::metadata(&suid).expect("stat").mode() & 0o7777,
        0o4755,
        "the layer keeps its setuid bit (the point of the barrier)"
    );
    let check_closed = |when: &str| {
        for p in [
            root.join("snapshots"),
            snap.clone(),
            root.join("images/blobs/sha256"),
            root.join("volumes/v1/_data"),
            root.join("containers"),
        ] {
            let o = as_nobody(&["ls", p.to_str().expect("utf8")]);
            assert!(
                !o.status.success(),
                "{when}: nobody can list {}",
                p.display()
            );
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains("Permission denied"), "{when}: {err}");
        }
        let o = as_nobody(&["env", suid.to_str().expect("utf8")]);
        assert!(
            !o.status.success(),
            "{when}: nobody ran the image's setuid binary"
        );
    };
    check_closed("fresh root");

    // The test sees an open root: a 0755 root lets nobody run the layer's
    // setuid binary with euid 0 (what the issue reported)...
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let o = as_nobody(&["env", suid.to_str().expect("utf8")]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("euid=0"),
        "control: expected euid=0, got {out:?}"
    );
    // ...and the next berth command closes it again.
    berth_ok(&root, &["images"]);
    assert_eq!(
        std::fs::metadata(&root).expect("stat").mode() & 0o7777,
        0o710
    );
    check_closed("repaired root");

    // A root that exists before berth first runs (as `mkdir -p` makes it).
    let pre = t.path().join("pre");
    std::fs::create_dir(&pre).expect("mkdir");
    std::fs::set_permissions(&pre, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    berth_ok(&pre, &["images"]);
    assert_eq!(
        std::fs::metadata(&pre).expect("stat").mode() & 0o7777,
        0o710
    );
}

fn volume_as_nobody(rt: Rt, idx: u32) {
    let Some(e) = env(idx, rt) else { return };
    if !have("setpriv") {
        eprintln!("SKIP: setpriv (util-linux) not installed");
        return;
    }
    e.ok(&e.run_args(&[
        "--rm",
        "-v",
        "vol:/data",
        "busybox",
        "sh",
        "-c",
        "echo hi > /data/f && mkdir /data/mine && chown nobody /data/mine",
    ]));
    // The container's user reaches the volume through its mount, not
    // through the closed berth root.
    let out = e.ok(&e.run_args(&[
        "--rm",
        "-u",
        "nobody",
        "-v",
        "vol:/data",
        "busybox",
        "sh",
        "-c",
        "id -u; cat /data/f; touch /data/mine/x && ls /data/mine",
    ]));
    assert_eq!(out, "65534\nhi\nx\n");
    // From the host, nobody gets nowhere near it.
    let data = e.root.join("volumes/vol/_data");
    assert!(data.join("mine/x").exists());
    let o = as_nobody(&["ls", data.to_str().expect("utf8")]);
    assert!(
        !o.status.success(),
        "nobody can list the volume from the host"
    );
    e.ok(&["volume", "rm", "vol"]);
}

#[test]
fn volume_as_nobody_hull() {
    volume_as_nobody(Rt::Hull, 60);
}

#[test]
fn volume_as_nobody_runc() {
    volume_as_nobody(Rt::Runc, 61);
}

/// A fresh store with one honest image in it, and its tree hash.
fn store_with_an_image(t: &Path) -> (PathBuf, String) {
    let root = t.join("root");
    let l = layer_tar(&[Ent::File("ok", b"fine")]);
    let arch = oci_archive(t, "ok:1", &[l]);
    berth_ok(&root, &["load", "-i", arch.to_str().expect("utf8")]);
    let before = tree_hash(&root);
    (root, before)
}

#[test]
fn blob_longer_than_its_descriptor_is_not_written() {
    let t = open_tmp();
    let (root, before) = store_with_an_image(t.path());
    let reg = Hostile::start();
    let l = gzip(&layer_tar(&[Ent::File("a", b"layer")]));
    let diff = format!(
        "sha256:{}",
        sha256_hex(&layer_tar(&[Ent::File("a", b"layer")]))
    );
    let (blobs, manifest) = hostile::image(std::slice::from_ref(&l), &[diff]);
    // Close-delimited: the registry just keeps sending after the blob.
    let long = reg.image("long/a", &blobs, &manifest);
    reg.route(
        &Hostile::blob_path("long/a", &blobs[0].0),
        Serve::Longer(l.clone(), 200 << 20),
    );
    let start = Instant::now();
    let o = berth(&root, &["pull", "-q", "--tls-verify=false", &long]);
    failed_with(&o, "more than the");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
    assert_unchanged(&root, &before, "a blob past its size");
    // berth stopped reading: the server could not hand over its 200 MiB.
    std::thread::sleep(Duration::from_millis(300));
    assert!(reg.cut_short.load(std::sync::atomic::Ordering::SeqCst) >= 1);

    // A Content-Length over the descriptor's size is refused up front.
    let claims = reg.image("claims/a", &blobs, &manifest);
    reg.route(
        &Hostile::blob_path("claims/a", &blobs[0].0),
        Serve::Claims {
            claimed: 10 << 30,
            sent: 1 << 20,
        },
    );
    let o = berth(&root, &["pull", "-q", "--tls-verify=false", &claims]);
    failed_with(&o, "announces 10737418240 bytes");
    assert_unchanged(&root, &before, "a blob claiming 10 GiB");
}

#[test]
fn oversized_manifest_is_refused() {
    let t = open_tmp();
    let (root, before) = store_with_an_image(t.path());
    let reg = Hostile::start();
    reg.route(
        "/v2/big/a/manifests/1",
        Serve::Claims {
            claimed: 100 << 20,
            sent: 100 << 20,
        },
    );
    let o = berth(
        &root,
        &[
            "pull",
            "-q",
            "--tls-verify=false",
            &format!("{}/big/a:1", reg.addr),
        ],
    );
    failed_with(
        &o,
        "announces 104857600 bytes, more than the 4194304 allowed",
    );
    assert_unchanged(&root, &before, "a 100 MiB manifest");
    // Without a Content-Length, reading stops one byte past the limit.
    reg.route(
        "/v2/big/b/manifests/1",
        Serve::Longer(Vec::new(), 100 << 20),
    );
    let o = berth(
        &root,
        &[
            "pull",
            "-q",
            "--tls-verify=false",
            &format!("{}/big/b:1", reg.addr),
        ],
    );
    failed_with(&o, "more than the 4194304 bytes allowed");
    assert_unchanged(&root, &before, "an endless manifest");
    std::thread::sleep(Duration::from_millis(300));
    assert!(reg.cut_short.load(std::sync::atomic::Ordering::SeqCst) >= 2);
}

#[test]
fn stalled_blob_fails_within_the_idle_timeout() {
    let t = open_tmp();
    let (root, before) = store_with_an_image(t.path());
    let reg = Hostile::start();
    // Incompressible, so half of it is a real partial download.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let data: Vec<u8> = (0..1_000_000)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let tar = layer_tar(&[Ent::File("big", &data)]);
    let gz = gzip(&tar);
    let (blobs, manifest) = hostile::image(
        std::slice::from_ref(&gz),
        &[format!("sha256:{}", sha256_hex(&tar))],
    );
    let name = reg.image("stall/a", &blobs, &manifest);
    reg.route(
        &Hostile::blob_path("stall/a", &blobs[0].0),
        Serve::Stall(gz.clone(), gz.len() / 2, 30),
    );
    let start = Instant::now();
    let o = berth_env(
        &root,
        &[("BERTH_REGISTRY_IDLE_TIMEOUT", "1.5")],
        &["pull", "-q", "--tls-verify=false", &name],
    );
    let took = start.elapsed();
    failed_with(&o, "idle timeout");
    assert!(took < Duration::from_secs(10), "stalled pull took {took:?}");
    assert_unchanged(&root, &before, "a stalled pull");
    let o = berth_env(
        &root,
        &[("BERTH_REGISTRY_IDLE_TIMEOUT", "soon")],
        &["pull", &name],
    );
    failed_with(&o, "BERTH_REGISTRY_IDLE_TIMEOUT");
}

#[test]
fn layer_not_matching_its_diff_id_is_refused_even_with_a_snapshot() {
    let t = open_tmp();
    let root = t.path().join("root");
    berth_ok(&root, &["images"]);
    let reg = Hostile::start();
    let honest = layer_tar(&[Ent::File("etc/motd", b"honest")]);
    let evil = layer_tar(&[Ent::File("etc/motd", b"evil!!")]);
    let honest_diff = format!("sha256:{}", sha256_hex(&honest));
    let (blobs, manifest) = hostile::image(&[gzip(&honest)], std::slice::from_ref(&honest_diff));
    let good = reg.image("good/a", &blobs, &manifest);
    // The config names the honest layer; the manifest serves another one.
    let (lie_blobs, lie_manifest) =
        hostile::image(&[gzip(&evil)], std::slice::from_ref(&honest_diff));
    let lie = reg.image("lie/a", &lie_blobs, &lie_manifest);

    // With no snapshot yet, unpacking catches it.
    let fresh = t.path().join("fresh");
    berth_ok(&fresh, &["images"]);
    let before = tree_hash(&fresh);
    let o = berth(&fresh, &["pull", "-q", "--tls-verify=false", &lie]);
    failed_with(&o, &format!("but the image config says {honest_diff}"));
    assert_unchanged(&fresh, &before, "a lying config");

    // With the honest image's snapshot under that chain id, the evil blob
    // must still be checked, not reused as "Already exists".
    berth_ok(&root, &["pull", "-q", "--tls-verify=false", &good]);
    let before = tree_hash(&root);
    let o = berth(&root, &["pull", "-q", "--tls-verify=false", &lie]);
    failed_with(&o, &format!("but the image config says {honest_diff}"));
    assert_unchanged(&root, &before, "a lying config over an existing snapshot");
    berth_err(&root, &["image", "inspect", &lie], "No such image");
    // The honest image pulls again as "Already exists" (checked once).
    berth_ok(&root, &["pull", "-q", "--tls-verify=false", &good]);

    // load: the same lie in an OCI archive, over the existing snapshot.
    let (lb, lm) = hostile::image(&[gzip(&evil)], std::slice::from_ref(&honest_diff));
    let arch = oci_layout_archive(t.path(), "lie:2", &lb, &lm);
    let before = tree_hash(&root);
    let o = berth(&root, &["load", "-i", arch.to_str().expect("utf8")]);
    failed_with(&o, &format!("but the image config says {honest_diff}"));
    assert_unchanged(&root, &before, "loading a lying config");
}

/// An OCI archive of given blobs (layers, then config) and manifest.
fn oci_layout_archive(dir: &Path, name: &str, blobs: &[(String, Vec<u8>)], m: &[u8]) -> PathBuf {
    let md = sha256_hex(m);
    let index = serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{md}"), "size": m.len(),
        "annotations": {"org.opencontainers.image.ref.name": name},
    }]}))
    .expect("json");
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |n: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, n, data).expect("tar");
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add("index.json", &index);
    add(&format!("blobs/sha256/{md}"), m);
    for (d, data) in blobs {
        add(&format!("blobs/sha256/{d}"), data);
    }
    let p = dir.join(format!("{md}.oci.tar"));
    std::fs::write(&p, b.into_inner().expect("tar")).expect("write archive");
    p
}

/// A tar whose one file header claims `size` bytes, with no data after it.
fn claiming_tar(size: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_path("huge").expect("path");
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// gzip of a tar holding `size` zero bytes, streamed (a few hundred KB).
fn zero_bomb(size: u64) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_path("zeros").expect("path");
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    gz.write_all(h.as_bytes()).expect("gz");
    let chunk = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let k = left.min(chunk.len() as u64) as usize;
        gz.write_all(&chunk[..k]).expect("gz");
        left -= k as u64;
    }
    gz.write_all(&[0u8; 1024]).expect("gz");
    gz.finish().expect("gz")
}

#[test]
fn import_and_load_refuse_archives_over_the_size_limit() {
    let t = open_tmp();
    let (root, before) = store_with_an_image(t.path());
    // A 1 KB tar claiming 1 TiB: refused before a byte is written.
    let claim = t.path().join("claim.tar");
    std::fs::write(&claim, claiming_tar(1 << 40)).expect("write");
    let o = berth(&root, &["import", claim.to_str().expect("utf8"), "claim:1"]);
    failed_with(&o, "over the size limit of 34359738368 bytes");
    assert_unchanged(&root, &before, "a tar claiming 1 TiB");

    // A ~200 KB gzip of a 192 MiB zero file, with a 64 MiB limit.
    let bomb = zero_bomb(192 << 20);
    assert!(bomb.len() < 1 << 20, "bomb is {} bytes", bomb.len());
    let bomb_p = t.path().join("bomb.tar.gz");
    std::fs::write(&bomb_p, &bomb).expect("write");
    let o = berth(
        &root,
        &[
            "import",
            "--max-size",
            "64m",
            bomb_p.to_str().expect("utf8"),
            "b:1",
        ],
    );
    failed_with(&o, "over the size limit of 67108864 bytes");
    assert_unchanged(&root, &before, "a gzip bomb import");
    let o = berth_env(
        &root,
        &[("BERTH_MAX_SIZE", "64m")],
        &["import", bomb_p.to_str().expect("utf8")],
    );
    failed_with(&o, "over the size limit of 67108864 bytes");
    assert_unchanged(&root, &before, "a gzip bomb import (env)");

    // load: the bomb as the layer of an OCI archive, and an archive member
    // claiming 1 TiB.
    let tarbytes_diff = "sha256:".to_string() + &"0".repeat(64);
    let (blobs, m) = hostile::image(std::slice::from_ref(&bomb), &[tarbytes_diff]);
    let arch = oci_layout_archive(t.path(), "bomb:1", &blobs, &m);
    let o = berth_env(
        &root,
        &[("BERTH_MAX_SIZE", "64m")],
        &["load", "-i", arch.to_str().expect("utf8")],
    );
    failed_with(&o, "over the size limit of 67108864 bytes");
    assert_unchanged(&root, &before, "loading a gzip-bomb layer");
    let o = berth(
        &root,
        &[
            "load",
            "--max-size",
            "1g",
            "-i",
            claim.to_str().expect("utf8"),
        ],
    );
    failed_with(&o, "over the size limit of 1073741824 bytes");
    assert_unchanged(&root, &before, "loading an archive claiming 1 TiB");

    // Bad limits are named; a small import under a small limit works.
    let o = berth(
        &root,
        &[
            "import",
            "--max-size",
            "lots",
            claim.to_str().expect("utf8"),
        ],
    );
    failed_with(&o, "--max-size");
    let small = t.path().join("small.tar");
    std::fs::write(&small, layer_tar(&[Ent::File("x", b"small")])).expect("write");
    berth_ok(
        &root,
        &[
            "import",
            "--max-size",
            "64k",
            small.to_str().expect("utf8"),
            "small:1",
        ],
    );
}

#[test]
fn killed_pulls_leave_no_temp_behind_for_long() {
    let t = open_tmp();
    let (root, _) = store_with_an_image(t.path());
    // What a SIGKILLed pull leaves: temps named after a pid that is gone.
    let mut c = Command::new("true").spawn().expect("spawn");
    let dead = c.id();
    c.wait().expect("wait");
    let blob = root.join(format!("tmp/.tmp-blob-{dead}-0"));
    let snap = root.join(format!("snapshots/.tmp-snap-{dead}-1/fs"));
    std::fs::write(&blob, vec![0u8; 4096]).expect("write");
    std::fs::create_dir_all(&snap).expect("mkdir");
    let l = t.path().join("l.tar");
    std::fs::write(&l, layer_tar(&[Ent::File("y", b"y")])).expect("write");
    berth_ok(&root, &["import", l.to_str().expect("utf8"), "y:1"]);
    assert_eq!(temps(&root), Vec::<PathBuf>::new());
    let _ = berth_common::free_port();
}

#[test]
fn interrupted_pull_removes_its_temps_at_once() {
    use std::os::unix::process::ExitStatusExt;
    let t = open_tmp();
    let (root, before) = store_with_an_image(t.path());
    let reg = Hostile::start();
    let tar = layer_tar(&[Ent::File("f", &vec![7u8; 2_000_000])]);
    let blob = tar.clone(); // uncompressed layer: half of it is a real partial download
    let (blobs, manifest) = hostile::image(
        std::slice::from_ref(&blob),
        &[format!("sha256:{}", sha256_hex(&tar))],
    );
    for (i, sig) in [libc::SIGINT, libc::SIGTERM].into_iter().enumerate() {
        let repo = format!("int/a{i}");
        let name = reg.image(&repo, &blobs, &manifest);
        reg.route(
            &Hostile::blob_path(&repo, &blobs[0].0),
            Serve::Stall(blob.clone(), blob.len() / 2, 30),
        );
        let mut child = Command::new(BERTH)
            .arg("--root")
            .arg(&root)
            .args(["pull", "-q", "--tls-verify=false", &name])
            .env("HOME", &root)
            .env("BERTH_REGISTRY_IDLE_TIMEOUT", "60")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn berth");
        let end = Instant::now() + Duration::from_secs(20);
        while temps(&root).is_empty() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        let seen = temps(&root);
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(child.id() as i32, sig) };
        let st = child.wait().expect("wait");
        assert!(!seen.is_empty(), "the pull never started writing");
        assert_eq!(
            st.signal(),
            Some(sig),
            "berth should end by the signal: {st:?}"
        );
        assert_unchanged(&root, &before, "an interrupted pull");
    }
}
