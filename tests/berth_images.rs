//! End-to-end tests of berth's image commands against a real
//! docker-registry on 127.0.0.1, real tarballs, skopeo and podman.

#[path = "berth_common/mod.rs"]
mod common;

use common::*;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// A three-layer image whose upper layers delete and hide lower content.
fn whiteout_layers() -> Vec<Vec<u8>> {
    vec![
        layer_tar(&[
            Ent::Dir("etc"),
            Ent::File("etc/keep", b"base"),
            Ent::File("etc/gone", b"to be deleted"),
            Ent::Dir("data"),
            Ent::File("data/old1", b"1"),
            Ent::File("data/old2", b"2"),
            Ent::Sym("etc/link", "keep"),
        ]),
        layer_tar(&[
            Ent::Dir("etc"),
            Ent::Whiteout("etc/gone"),
            Ent::File("etc/added", b"two"),
        ]),
        layer_tar(&[
            Ent::Dir("data"),
            Ent::Opaque("data"),
            Ent::File("data/new", b"3"),
            Ent::File("etc/hard-src", b"hl"),
            Ent::Hard("etc/hard-dst", "etc/hard-src"),
        ]),
    ]
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

#[test]
fn import_push_pull_roundtrip() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let t = tmp();
    let Some(tar) = busybox_tar(t.path()) else {
        return;
    };
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    let name = format!("{}/test/busybox:1.0", reg.addr);
    let id = berth_ok(&a, &["import", tar.to_str().unwrap(), &name]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let out = berth_ok(&a, &["push", "--tls-verify=false", &name]);
    assert!(out.contains("Pushed"), "{out}");
    // Second push: every blob is already there.
    let out = berth_ok(&a, &["push", "--tls-verify=false", &name]);
    assert!(out.contains("already exists"), "{out}");
    // Another repository on the same registry: the layer is mounted, not uploaded.
    let sibling = format!("{}/test/sibling:1", reg.addr);
    let out = berth_ok(&a, &["push", "--tls-verify=false", &name, &sibling]);
    assert!(out.contains("Mounted from test/busybox"), "{out}");

    let out = berth_ok(&b, &["pull", "--tls-verify=false", &name]);
    assert!(out.contains("Pull complete"), "{out}");
    assert_eq!(local_digest(&a, &name), local_digest(&b, &name));
    let images = berth_ok(&b, &["images"]);
    let header = images.lines().next().unwrap();
    for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(header.contains(col), "{images}");
    }
    assert!(
        images.contains(&format!("{}/test/busybox", reg.addr)) && images.contains("1.0"),
        "{images}"
    );
    let ids = berth_ok(&b, &["images", "-q"]);
    assert_eq!(
        ids.trim(),
        &id.trim()["sha256:".len().."sha256:".len() + 12]
    );

    // The snapshot holds a working busybox.
    let dirs = lowerdirs(&b, &name);
    assert_eq!(dirs.len(), 1);
    let bb = Path::new(&dirs[0]).join("bin/busybox");
    let st = Command::new(&bb).arg("true").status().expect("run busybox");
    assert!(st.success());
    assert_eq!(
        std::fs::read_link(Path::new(&dirs[0]).join("bin/sh")).unwrap(),
        Path::new("busybox")
    );

    // Pull by digest: named repo@digest, no tag.
    let c = t.path().join("c");
    let by_digest = format!("{}/test/busybox@{}", reg.addr, local_digest(&a, &name));
    berth_ok(&c, &["pull", "--tls-verify=false", &by_digest]);
    let images = berth_ok(&c, &["images"]);
    assert!(
        images.lines().nth(1).unwrap().contains("<none>"),
        "{images}"
    );
    assert_eq!(local_digest(&c, &by_digest), local_digest(&a, &name));

    // Re-pull reuses the verified blobs and snapshot.
    let out = berth_ok(&b, &["pull", "--tls-verify=false", &name]);
    assert!(out.contains("Already exists"), "{out}");

    // The store is an OCI layout that skopeo reads.
    if have("skopeo") {
        let full = format!("{}/images", std::fs::canonicalize(&b).unwrap().display());
        let o = Command::new("skopeo")
            .args(["inspect", "--raw", &format!("oci:{full}:{name}")])
            .output()
            .expect("skopeo");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            format!("sha256:{}", sha256_hex(&o.stdout)),
            local_digest(&b, &name)
        );
    } else {
        eprintln!("SKIP (part): skopeo not installed, OCI layout readability not checked");
    }

    // An image used by a container can't be removed without -f.
    let c = b.join("containers/c1");
    std::fs::create_dir_all(&c).unwrap();
    std::fs::write(c.join("image-id"), id.trim()).unwrap();
    berth_err(&b, &["rmi", &name], "in use by a container");
    let o = berth(&b, &["image", "prune", "-a"]);
    assert!(o.status.success());
    assert!(
        berth_ok(&b, &["images"]).contains("test/busybox"),
        "prune -a removed an image in use"
    );
    std::fs::remove_dir_all(&c).unwrap();

    // tag, rmi of one tag keeps the image; rmi of the last deletes blobs.
    berth_ok(&b, &["tag", &name, "other:latest"]);
    let out = berth_ok(&b, &["rmi", "other"]);
    assert!(
        out.contains("Untagged: other:latest") && !out.contains("Deleted"),
        "{out}"
    );
    let out = berth_ok(&b, &["rmi", &name]);
    assert!(out.contains("Deleted: sha256:"), "{out}");
    assert_eq!(
        std::fs::read_dir(b.join("images/blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(std::fs::read_dir(b.join("snapshots")).unwrap().count(), 0);
}

#[test]
fn multilayer_whiteouts_through_registry() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let t = tmp();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    let name = format!("{}/test/layers:v1", reg.addr);
    let arch = oci_archive(t.path(), &name, &whiteout_layers());
    let out = berth_ok(&a, &["load", "-i", arch.to_str().unwrap()]);
    assert!(out.contains("Loaded image"), "{out}");
    berth_ok(&a, &["push", "--tls-verify=false", &name]);
    berth_ok(&b, &["pull", "--tls-verify=false", &name]);
    assert_eq!(local_digest(&a, &name), local_digest(&b, &name));

    let dirs = lowerdirs(&b, &name);
    assert_eq!(dirs.len(), 3);
    let (top, mid, base) = (
        Path::new(&dirs[0]),
        Path::new(&dirs[1]),
        Path::new(&dirs[2]),
    );
    assert_eq!(
        std::fs::read(base.join("etc/gone")).unwrap(),
        b"to be deleted"
    );
    let wo = std::fs::symlink_metadata(mid.join("etc/gone")).unwrap();
    assert!(
        wo.file_type().is_char_device() && wo.rdev() == 0,
        "whiteout is not a 0:0 char device"
    );
    let mut buf = [0u8; 4];
    let p = std::ffi::CString::new(top.join("data").as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid C strings and buffer.
    let n = unsafe {
        libc::getxattr(
            p.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr().cast(),
            4,
        )
    };
    assert_eq!((n, buf[0]), (1, b'y'), "opaque xattr missing");
    assert_eq!(
        std::fs::metadata(top.join("etc/hard-dst")).unwrap().nlink(),
        2
    );

    // The library call the containers code uses agrees with inspect.
    let store = hull::image::store::Store::open(&b).unwrap();
    let rf = store.rootfs(&name).unwrap();
    let lib_dirs: Vec<String> = rf
        .lowerdirs
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(lib_dirs, dirs);
    assert_eq!(
        rf.config.config.unwrap().cmd,
        Some(vec!["/bin/sh".to_string()])
    );

    // Stack them the way the containers code will and look through overlay.
    let mnt = t.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let opts = format!("lowerdir={}", dirs.join(":"));
    let st = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(&mnt)
        .status();
    if !st.is_ok_and(|s| s.success()) {
        eprintln!(
            "SKIP (part): cannot mount overlay here; snapshot contents were checked directly"
        );
        return;
    }
    let seen = (
        mnt.join("etc/gone").exists(),
        std::fs::read(mnt.join("etc/keep")).ok(),
        std::fs::read(mnt.join("etc/added")).ok(),
        mnt.join("data/old1").exists(),
        std::fs::read(mnt.join("data/new")).ok(),
        std::fs::read(mnt.join("etc/link")).ok(),
    );
    let _ = Command::new("umount").arg(&mnt).status();
    assert!(!seen.0, "whiteout did not hide etc/gone");
    assert_eq!(seen.1.as_deref(), Some(&b"base"[..]));
    assert_eq!(seen.2.as_deref(), Some(&b"two"[..]));
    assert!(!seen.3, "opaque dir did not hide data/old1");
    assert_eq!(seen.4.as_deref(), Some(&b"3"[..]));
    assert_eq!(seen.5.as_deref(), Some(&b"base"[..]));
}

#[test]
fn basic_auth_login_push_pull() {
    let Some(reg) = Registry::start(Some(("alice", "s3cret"))) else {
        return;
    };
    let t = tmp();
    let a = t.path().join("a");
    let name = format!("{}/priv/img:1", reg.addr);
    let arch = oci_archive(
        t.path(),
        &name,
        &[layer_tar(&[Ent::File("hello", b"world")])],
    );
    berth_ok(&a, &["load", "-i", arch.to_str().unwrap()]);
    berth_err(
        &a,
        &["push", "--tls-verify=false", &name],
        "authentication required",
    );
    berth_err(
        &a,
        &[
            "login",
            "--tls-verify=false",
            "-u",
            "alice",
            "-p",
            "wrong",
            &reg.addr,
        ],
        "invalid username/password",
    );
    assert!(!a.join("auth.json").exists());
    let out = berth_ok(
        &a,
        &[
            "login",
            "--tls-verify=false",
            "-u",
            "alice",
            "-p",
            "s3cret",
            &reg.addr,
        ],
    );
    assert!(out.contains("Login Succeeded"));
    berth_ok(&a, &["push", "--tls-verify=false", &name]);
    let b = t.path().join("b");
    // Credentials are also read from docker's ~/.docker/config.json (HOME=root).
    std::fs::create_dir_all(b.join(".docker")).unwrap();
    std::fs::copy(a.join("auth.json"), b.join(".docker/config.json")).unwrap();
    berth_ok(&b, &["pull", "--tls-verify=false", &name]);
    assert_eq!(local_digest(&a, &name), local_digest(&b, &name));
    berth_ok(&a, &["logout", &reg.addr]);
    berth_ok(&a, &["rmi", &name]);
    berth_err(
        &a,
        &["pull", "--tls-verify=false", &name],
        "authentication required",
    );
}

#[test]
fn insecure_registries_from_env_and_conf() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let t = tmp();
    let a = t.path().join("a");
    let name = format!("{}/x/y:z", reg.addr);
    let arch = oci_archive(t.path(), &name, &[layer_tar(&[Ent::File("f", b"1")])]);
    berth_ok(&a, &["load", "-i", arch.to_str().unwrap()]);
    // Without marking it insecure, berth speaks HTTPS and fails clearly.
    berth_err(&a, &["push", &name], "--tls-verify=false");
    std::fs::write(
        a.join("registries.conf"),
        format!("# plain-HTTP registries\n{}\n", reg.addr),
    )
    .unwrap();
    berth_ok(&a, &["push", &name]);
    let b = t.path().join("b");
    let o = Command::new(BERTH)
        .arg("--root")
        .arg(&b)
        .args(["pull", &name])
        .env("BERTH_INSECURE_REGISTRIES", &reg.addr)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn tampered_and_truncated_blobs_leave_store_unchanged() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let t = tmp();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    let good = format!("{}/ok/img:1", reg.addr);
    let bad = format!("{}/bad/img:1", reg.addr);
    let short = format!("{}/short/img:1", reg.addr);
    let l_good = layer_tar(&[Ent::File("good", b"g")]);
    let l_bad = layer_tar(&[Ent::File("bad", &[b'b'; 5000])]);
    let l_short = layer_tar(&[Ent::File("short", &[b's'; 9000])]);
    for (n, l) in [(&good, &l_good), (&bad, &l_bad), (&short, &l_short)] {
        let arch = oci_archive(t.path(), n, &[l_good.clone(), l.clone()]);
        berth_ok(&a, &["load", "-i", arch.to_str().unwrap()]);
        berth_ok(&a, &["push", "--tls-verify=false", n]);
    }
    // Corrupt the registry's copies: same length, different bytes; and cut short.
    let d_bad = format!("sha256:{}", sha256_hex(&gzip(&l_bad)));
    let f = reg.blob_data(&d_bad);
    let mut data = std::fs::read(&f).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    std::fs::write(&f, data).unwrap();
    let d_short = format!("sha256:{}", sha256_hex(&gzip(&l_short)));
    let f = reg.blob_data(&d_short);
    let data = std::fs::read(&f).unwrap();
    std::fs::write(&f, &data[..data.len() / 2]).unwrap();

    berth_ok(&b, &["pull", "--tls-verify=false", &good]);
    let before = tree_hash(&b);
    let e = berth_err(&b, &["pull", "--tls-verify=false", &bad], &d_bad);
    assert!(e.contains("digest mismatch"), "{e}");
    assert_eq!(before, tree_hash(&b), "failed pull changed the store");
    let e = berth_err(&b, &["pull", "--tls-verify=false", &short], &d_short);
    assert!(
        e.contains("size mismatch") || e.contains("truncated") || e.contains("digest"),
        "{e}"
    );
    assert_eq!(before, tree_hash(&b), "failed pull changed the store");
    let images = berth_ok(&b, &["images"]);
    assert!(
        !images.contains("bad/img") && !images.contains("short/img"),
        "{images}"
    );
}

#[test]
fn unknown_images_and_malformed_references() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let t = tmp();
    let a = t.path().join("a");
    berth_ok(&a, &["images"]);
    let before = tree_hash(&a);
    let missing = format!("{}/no/such:thing", reg.addr);
    berth_err(&a, &["pull", "--tls-verify=false", &missing], "no/such");
    berth_err(&a, &["rmi", "nosuchimage"], "no such image: nosuchimage");
    berth_err(
        &a,
        &["image", "inspect", "nosuchimage:v2"],
        "nosuchimage:v2",
    );
    berth_err(&a, &["pull", "Bad_Name:x"], "invalid reference format");
    berth_err(&a, &["pull", "foo@sha256:1234"], "invalid reference format");
    berth_err(&a, &["tag", "nosuch", "x:y"], "no such image: nosuch");
    assert_eq!(before, tree_hash(&a));
}

#[test]
fn corrupt_archives_leave_store_unchanged() {
    let t = tmp();
    let a = t.path().join("a");
    let name = "example.com/good/img:1";
    let good = oci_archive(t.path(), name, &[layer_tar(&[Ent::File("x", b"1")])]);
    berth_ok(&a, &["load", "-i", good.to_str().unwrap()]);
    let before = tree_hash(&a);

    let junk = t.path().join("junk.tar");
    std::fs::write(
        &junk,
        b"this is not a tar archive at all, just some bytes....",
    )
    .unwrap();
    berth_err(&a, &["load", "-i", junk.to_str().unwrap()], "junk.tar");

    let other = oci_archive(
        t.path(),
        "example.com/other/img:1",
        &[layer_tar(&[Ent::File(
            "y",
            &(0..40_000u32)
                .map(|x| (x.wrapping_mul(2654435761) >> 13) as u8)
                .collect::<Vec<u8>>(),
        )])],
    );
    let data = std::fs::read(&other).unwrap();
    let cut = t.path().join("cut.tar");
    std::fs::write(&cut, &data[..data.len() - 9000]).unwrap();
    berth_err(&a, &["load", "-i", cut.to_str().unwrap()], "cut.tar");

    // Valid tar, but a blob whose content does not match its name.
    let mut ar = tar::Archive::new(&data[..]);
    let mut b = tar::Builder::new(Vec::new());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut body).unwrap();
        let path = e.path().unwrap().into_owned();
        if body.len() > 100 && path.starts_with("blobs") && body[0] == 0x1f {
            let n = body.len();
            body[n - 10] ^= 0x55;
        }
        let mut h = e.header().clone();
        b.append_data(&mut h, path, &body[..]).unwrap();
    }
    let bad = t.path().join("tampered.tar");
    std::fs::write(&bad, b.into_inner().unwrap()).unwrap();
    berth_err(&a, &["load", "-i", bad.to_str().unwrap()], "tampered.tar");
    assert_eq!(before, tree_hash(&a), "failed loads changed the store");
    assert!(!berth_ok(&a, &["images"]).contains("other/img"));
}

#[test]
fn save_load_docker_and_oci_archives() {
    let t = tmp();
    let (a, b, c) = (t.path().join("a"), t.path().join("b"), t.path().join("c"));
    let name = "example.com/ns/multi:2";
    let arch = oci_archive(t.path(), name, &whiteout_layers());
    berth_ok(&a, &["load", "-i", arch.to_str().unwrap()]);
    let id = berth_ok(&a, &["images", "-q", "--no-trunc"]);

    let docker = t.path().join("docker.tar");
    berth_ok(&a, &["save", "-o", docker.to_str().unwrap(), name]);
    // The docker-archive has manifest.json, repositories, config and layer.tar files.
    let mut names = Vec::new();
    for e in tar::Archive::new(std::fs::File::open(&docker).unwrap())
        .entries()
        .unwrap()
    {
        names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
    }
    assert!(
        names.contains(&"manifest.json".to_string()) && names.contains(&"repositories".to_string())
    );
    assert_eq!(
        names.iter().filter(|n| n.ends_with("/layer.tar")).count(),
        3,
        "{names:?}"
    );
    let out = berth_ok(&b, &["load", "-i", docker.to_str().unwrap()]);
    assert!(
        out.contains("Loaded image: example.com/ns/multi:2"),
        "{out}"
    );
    assert_eq!(
        berth_ok(&b, &["images", "-q", "--no-trunc"]),
        id,
        "image ID changed through docker-archive"
    );

    let oci = t.path().join("oci.tar");
    berth_ok(
        &a,
        &[
            "save",
            "--format",
            "oci-archive",
            "-o",
            oci.to_str().unwrap(),
            name,
        ],
    );
    berth_ok(&c, &["load", "-i", oci.to_str().unwrap()]);
    assert_eq!(local_digest(&a, name), local_digest(&c, name));
    assert_eq!(lowerdirs(&c, name).len(), 3);

    // history shows one row per history entry, newest first.
    let h = berth_ok(&c, &["history", name]);
    let rows: Vec<&str> = h.lines().collect();
    assert_eq!(rows.len(), 4, "{h}");
    assert!(
        rows[1].contains("layer 2") && rows[3].contains("layer 0"),
        "{h}"
    );
}

#[test]
fn concurrent_pulls_share_one_store() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let t = tmp();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    let name = format!("{}/conc/img:1", reg.addr);
    let layers: Vec<Vec<u8>> = (0..4)
        .map(|i| {
            let big: Vec<u8> = (0..400_000u32)
                .map(|x| (x.wrapping_mul(2654435761) >> (i + 3)) as u8)
                .collect();
            layer_tar(&[Ent::File(&format!("f{i}"), &big)])
        })
        .collect();
    let arch = oci_archive(t.path(), &name, &layers);
    berth_ok(&a, &["load", "-i", arch.to_str().unwrap()]);
    berth_ok(&a, &["push", "--tls-verify=false", &name]);
    let kids: Vec<_> = (0..3)
        .map(|_| {
            Command::new(BERTH)
                .arg("--root")
                .arg(&b)
                .args(["pull", "-q", "--tls-verify=false", &name])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for k in kids {
        let o = k.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.join("images/index.json")).unwrap()).unwrap();
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(std::fs::read_dir(b.join("snapshots")).unwrap().count(), 4);
    assert_eq!(std::fs::read_dir(b.join("tmp")).unwrap().count(), 0);
    for d in lowerdirs(&b, &name) {
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 1);
    }
    // Every stored blob hashes to its name.
    for e in std::fs::read_dir(b.join("images/blobs/sha256")).unwrap() {
        let e = e.unwrap();
        let data = std::fs::read(e.path()).unwrap();
        assert_eq!(sha256_hex(&data), e.file_name().to_string_lossy());
    }
}

#[test]
fn skopeo_interop_both_directions() {
    if !have("skopeo") {
        eprintln!("SKIP: skopeo not installed (hack/deps.sh)");
        return;
    }
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let t = tmp();
    let a = t.path().join("a");
    let name = format!("{}/sk/berth:1", reg.addr);
    let arch = oci_archive(t.path(), &name, &whiteout_layers());
    berth_ok(&a, &["load", "-i", arch.to_str().unwrap()]);
    berth_ok(&a, &["push", "--tls-verify=false", &name]);
    // berth → registry → skopeo
    let o = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            &format!("docker://{name}"),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        local_digest(&a, &name)
    );
    let dir = t.path().join("skdir");
    let o = Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{name}"),
        ])
        .arg(format!("dir:{}", dir.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // skopeo → registry (as docker schema 2) → berth
    let other = format!("{}/sk/skopeo:2", reg.addr);
    let o = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--format", "v2s2"])
        .arg(format!("dir:{}", dir.display()))
        .arg(format!("docker://{other}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            "--format",
            "{{.Digest}}",
            &format!("docker://{other}"),
        ])
        .output()
        .unwrap();
    let sk_digest = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let b = t.path().join("b");
    berth_ok(&b, &["pull", "--tls-verify=false", &other]);
    assert_eq!(local_digest(&b, &other), sk_digest);
    assert_eq!(lowerdirs(&b, &other).len(), 3);
}

#[test]
fn podman_interop_registry_and_archives() {
    if !have("podman") {
        eprintln!("SKIP: podman not installed (hack/deps.sh)");
        return;
    }
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let t = tmp();
    let (a, b, pod) = (
        t.path().join("a"),
        t.path().join("b"),
        t.path().join("podman"),
    );
    let name = format!("{}/pm/berth:1", reg.addr);
    let arch = oci_archive(t.path(), &name, &whiteout_layers());
    berth_ok(&a, &["load", "-i", arch.to_str().unwrap()]);
    berth_ok(&a, &["push", "--tls-verify=false", &name]);
    let id = berth_ok(&a, &["images", "-q", "--no-trunc"])
        .trim()
        .to_string();

    // berth → registry → podman: same manifest digest and image ID.
    podman_ok(&pod, &["pull", "-q", "--tls-verify=false", &name]);
    let pd = podman_ok(
        &pod,
        &["image", "inspect", "--format", "{{.Digest}} {{.Id}}", &name],
    );
    assert_eq!(
        pd.trim(),
        format!(
            "{} {}",
            local_digest(&a, &name),
            id.trim_start_matches("sha256:")
        )
    );

    // podman → registry → berth.
    let other = format!("{}/pm/podman:2", reg.addr);
    let df = t.path().join("digest");
    podman_ok(
        &pod,
        &[
            "push",
            "-q",
            "--tls-verify=false",
            "--digestfile",
            df.to_str().unwrap(),
            &name,
            &other,
        ],
    );
    berth_ok(&b, &["pull", "--tls-verify=false", &other]);
    assert_eq!(
        local_digest(&b, &other),
        std::fs::read_to_string(&df).unwrap().trim()
    );
    assert_eq!(lowerdirs(&b, &other).len(), 3);

    // podman save (both formats) → berth load: same image ID.
    for fmt in ["docker-archive", "oci-archive"] {
        let f = t.path().join(format!("pod-{fmt}.tar"));
        podman_ok(
            &pod,
            &["save", "--format", fmt, "-o", f.to_str().unwrap(), &name],
        );
        let r = t.path().join(format!("load-{fmt}"));
        let out = berth_ok(&r, &["load", "-i", f.to_str().unwrap()]);
        assert!(out.contains("Loaded image"), "{out}");
        assert_eq!(
            berth_ok(&r, &["images", "-q", "--no-trunc"]).trim(),
            id,
            "{fmt}"
        );
    }

    // berth save (both formats) → podman load: same image ID.
    for fmt in ["docker-archive", "oci-archive"] {
        let p2 = t.path().join(format!("podman-{fmt}"));
        let f = t.path().join(format!("berth-{fmt}.tar"));
        berth_ok(
            &a,
            &["save", "--format", fmt, "-o", f.to_str().unwrap(), &name],
        );
        let out = podman_ok(&p2, &["load", "-i", f.to_str().unwrap()]);
        assert!(out.contains(&name), "{fmt}: {out}");
        let pid = podman_ok(&p2, &["image", "inspect", "--format", "{{.Id}}", &name]);
        assert_eq!(format!("sha256:{}", pid.trim()), id, "{fmt}");
    }
}

#[test]
fn platform_selection_from_an_image_index() {
    if !have("skopeo") {
        eprintln!("SKIP: skopeo not installed (needed to push an image index)");
        return;
    }
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let t = tmp();
    let (layout, digests) = multiarch_layout(
        t.path(),
        "multi",
        &[
            ("amd64", vec![layer_tar(&[Ent::File("arch", b"amd64")])]),
            ("arm64", vec![layer_tar(&[Ent::File("arch", b"arm64")])]),
        ],
    );
    let name = format!("{}/multi/img:1", reg.addr);
    let o = Command::new("skopeo")
        .args(["copy", "--all", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:multi", layout.display()))
        .arg(format!("docker://{name}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (arch, want) in &digests {
        let r = t.path().join(arch);
        berth_ok(
            &r,
            &[
                "pull",
                "--tls-verify=false",
                "--platform",
                &format!("linux/{arch}"),
                &name,
            ],
        );
        assert_eq!(&local_digest(&r, &name), want);
        let dirs = lowerdirs(&r, &name);
        assert_eq!(
            std::fs::read(Path::new(&dirs[0]).join("arch")).unwrap(),
            arch.as_bytes()
        );
    }
    // The same as a docker manifest list of schema-2 manifests.
    let list = format!("{}/multi/list:1", reg.addr);
    let o = Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--format",
            "v2s2",
            "--dest-tls-verify=false",
        ])
        .arg(format!("oci:{}:multi", layout.display()))
        .arg(format!("docker://{list}"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let raw = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{list}"),
        ])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        v["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    let r = t.path().join("list-arm64");
    berth_ok(
        &r,
        &[
            "pull",
            "--tls-verify=false",
            "--platform",
            "linux/arm64",
            &list,
        ],
    );
    let dirs = lowerdirs(&r, &list);
    assert_eq!(
        std::fs::read(Path::new(&dirs[0]).join("arch")).unwrap(),
        b"arm64"
    );
    let out = berth_ok(&r, &["image", "inspect", &list]);
    assert!(
        out.contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{out}"
    );
    let r = t.path().join("none");
    berth_err(
        &r,
        &[
            "pull",
            "--tls-verify=false",
            "--platform",
            "linux/s390x",
            &name,
        ],
        "linux/s390x",
    );
}

#[test]
fn killed_pull_leaves_no_image_and_repull_works() {
    let Some(reg) = Registry::start(None) else {
        return;
    };
    let t = tmp();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    let name = format!("{}/crash/img:1", reg.addr);
    // Incompressible layers, so the pull takes long enough to interrupt.
    let mut seed = 0x2545F4914F6CDD1Du64;
    let layers: Vec<Vec<u8>> = (0..4)
        .map(|i| {
            let data: Vec<u8> = (0..6_000_000)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            layer_tar(&[Ent::File(&format!("big{i}"), &data)])
        })
        .collect();
    let arch = oci_archive(t.path(), &name, &layers);
    berth_ok(&a, &["load", "-i", arch.to_str().unwrap()]);
    berth_ok(&a, &["push", "--tls-verify=false", &name]);
    berth_ok(&b, &["images"]);
    let mut interrupted = 0;
    for delay_ms in [30u64, 120, 300] {
        let mut child = Command::new(BERTH)
            .arg("--root")
            .arg(&b)
            .args(["pull", "-q", "--tls-verify=false", &name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        // SIGKILL: a crash, no chance to clean up.
        // SAFETY: child.id() is our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let st = child.wait().unwrap();
        if st.success() {
            break; // finished before the kill; nothing left to check
        }
        interrupted += 1;
        let idx: serde_json::Value =
            serde_json::from_slice(&std::fs::read(b.join("images/index.json")).unwrap()).unwrap();
        assert_eq!(
            idx["manifests"].as_array().unwrap().len(),
            0,
            "half-pulled image is visible"
        );
        assert_eq!(berth_ok(&b, &["images", "-q"]), "");
        berth_err(&b, &["image", "inspect", &name], "no such image");
    }
    eprintln!("interrupted {interrupted} pulls");
    let out = berth_ok(&b, &["pull", "--tls-verify=false", &name]);
    assert!(out.contains(&name), "{out}");
    assert_eq!(local_digest(&a, &name), local_digest(&b, &name));
    for d in lowerdirs(&b, &name) {
        assert_eq!(
            std::fs::metadata(
                Path::new(&d).join(
                    std::fs::read_dir(&d)
                        .unwrap()
                        .next()
                        .unwrap()
                        .unwrap()
                        .file_name()
                )
            )
            .unwrap()
            .len(),
            6_000_000
        );
    }
    // prune clears what the killed pulls left in tmp/.
    berth_ok(&b, &["image", "prune"]);
    assert_eq!(std::fs::read_dir(b.join("tmp")).unwrap().count(), 0);
    let snaps: Vec<_> = std::fs::read_dir(b.join("snapshots"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(snaps.len(), 4, "leftover temp snapshots after prune");
}

#[test]
fn hostile_rootfs_tar_is_refused_by_import() {
    let t = tmp();
    let a = t.path().join("a");
    let outside = t.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    berth_ok(&a, &["images"]);
    let before = tree_hash(&a);
    // tar::Builder refuses `..`, so write the raw header name as an attacker would.
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(1);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    let evil = "../outside/pwned";
    h.as_old_mut().name[..evil.len()].copy_from_slice(evil.as_bytes());
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b"x"[..]).unwrap();
    let f = t.path().join("evil.tar");
    std::fs::write(&f, b.into_inner().unwrap()).unwrap();
    let e = berth_err(&a, &["import", f.to_str().unwrap(), "evil:1"], "evil.tar");
    assert!(e.contains("'..'"), "{e}");
    assert_eq!(before, tree_hash(&a), "refused import changed the store");

    // A symlink to an absolute host path, then a file through it: contained.
    let tar = layer_tar(&[
        Ent::Sym("escape", outside.to_str().unwrap()),
        Ent::File("escape/pwned", b"x"),
    ]);
    let f = t.path().join("sym.tar");
    std::fs::write(&f, tar).unwrap();
    let o = berth(&a, &["import", f.to_str().unwrap(), "sym:1"]);
    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "layer wrote outside its snapshot"
    );
    if !o.status.success() {
        assert_eq!(before, tree_hash(&a));
    }
}

#[test]
fn import_from_stdin_and_legacy_docker_archive_symlinks() {
    let t = tmp();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    let rootfs = layer_tar(&[Ent::Dir("etc"), Ent::File("etc/hostname", b"berth\n")]);
    let mut child = Command::new(BERTH)
        .arg("--root")
        .arg(&a)
        .args(["import", "-", "stdin/img:7"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &gzip(&rootfs)).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    let id = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let dirs = lowerdirs(&a, "stdin/img:7");
    assert_eq!(
        std::fs::read(Path::new(&dirs[0]).join("etc/hostname")).unwrap(),
        b"berth\n"
    );
    let inspect = berth_ok(&a, &["image", "inspect", "stdin/img:7"]);
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v[0]["Id"], id.as_str());
    assert_eq!(
        v[0]["RootFS"]["Layers"][0],
        format!("sha256:{}", sha256_hex(&rootfs))
    );

    // Old docker saves dedupe layers with symlinks: point the manifest at a
    // symlink to the real layer.tar.
    let saved = t.path().join("saved.tar");
    berth_ok(&a, &["save", "-o", saved.to_str().unwrap(), "stdin/img:7"]);
    let mut out = tar::Builder::new(Vec::new());
    let mut ar = tar::Archive::new(std::fs::File::open(&saved).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut body).unwrap();
        if path == "manifest.json" {
            let mut m: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let real = m[0]["Layers"][0].as_str().unwrap().to_string();
            m[0]["Layers"][0] = "dup/layer.tar".into();
            body = serde_json::to_vec(&m).unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            out.append_link(&mut h, "dup/layer.tar", format!("../{real}"))
                .unwrap();
        }
        let mut h = e.header().clone();
        h.set_size(body.len() as u64);
        out.append_data(&mut h, &path, &body[..]).unwrap();
    }
    let legacy = t.path().join("legacy.tar");
    std::fs::write(&legacy, out.into_inner().unwrap()).unwrap();
    let o = berth_ok(&b, &["load", "-i", legacy.to_str().unwrap()]);
    assert!(o.contains("Loaded image: stdin/img:7"), "{o}");
    assert_eq!(berth_ok(&b, &["images", "-q", "--no-trunc"]).trim(), id);
}
