//! Round trips through skopeo and podman, platform selection, a killed pull and hostile or legacy archives.

use super::*;

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
        berth_err(&b, &["image", "inspect", &name], "No such image");
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
    berth_ok(&b, &["image", "prune", "-f"]);
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
