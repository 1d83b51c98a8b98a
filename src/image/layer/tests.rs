//! Hostile and ordinary layer tarballs through `unpack_layer`.

use super::*;
use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

fn big() -> SizeLimit {
    SizeLimit::new(1 << 30)
}

fn hdr(path: &str, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_mtime(1_600_000_000);
    h.set_uid(0);
    h.set_gid(0);
    // set_path refuses `..`; write the raw name so hostile cases are real.
    let name = &mut h.as_old_mut().name;
    name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_cksum();
    h
}

enum E<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Sym(&'a str, &'a str),
    Hard(&'a str, &'a str),
}

fn build(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        match e {
            E::File(p, data) => {
                let h = hdr(p, tar::EntryType::Regular, data.len() as u64);
                b.append(&h, *data).unwrap();
            }
            E::Dir(p) => b
                .append(&hdr(p, tar::EntryType::Directory, 0), io::empty())
                .unwrap(),
            E::Sym(p, t) | E::Hard(p, t) => {
                let kind = if matches!(e, E::Sym(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                let mut h = hdr(p, kind, 0);
                let ln = &mut h.as_old_mut().linkname;
                ln[..t.len()].copy_from_slice(t.as_bytes());
                h.set_cksum();
                b.append(&h, io::empty()).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

struct Sandbox {
    _t: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn sandbox() -> Sandbox {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("snap");
    let outside = t.path().join("outside");
    std::fs::create_dir(&root).unwrap();
    std::fs::create_dir(&outside).unwrap();
    Sandbox {
        _t: t,
        root,
        outside,
    }
}

fn outside_is_empty(s: &Sandbox) -> bool {
    std::fs::read_dir(&s.outside).unwrap().next().is_none()
        && std::fs::read_dir(s.root.parent().unwrap()).unwrap().count() == 2
}

#[test]
fn dotdot_is_rejected() {
    let s = sandbox();
    let tar = build(&[E::File("../outside/pwned", b"x")]);
    let err = unpack_layer(&tar[..], &s.root, &big()).unwrap_err();
    assert!(format!("{err:#}").contains("'..'"), "{err:#}");
    assert!(outside_is_empty(&s));
}

#[test]
fn absolute_path_is_contained() {
    let s = sandbox();
    let abs = format!("{}/pwned", s.outside.display());
    let tar = build(&[E::File(&abs, b"x")]);
    unpack_layer(&tar[..], &s.root, &big()).unwrap();
    assert!(outside_is_empty(&s));
    let inside = s.root.join(abs.trim_start_matches('/'));
    assert_eq!(std::fs::read(inside).unwrap(), b"x");
}

#[test]
fn write_through_planted_absolute_symlink_is_contained() {
    let s = sandbox();
    let target = s.outside.display().to_string();
    let tar = build(&[E::Sym("evil", &target), E::File("evil/pwned", b"x")]);
    // Either contained under root/<target> or refused; never outside.
    let r = unpack_layer(&tar[..], &s.root, &big());
    assert!(outside_is_empty(&s), "escaped: {r:?}");
    if r.is_ok() {
        let inside = s.root.join(target.trim_start_matches('/')).join("pwned");
        assert_eq!(std::fs::read(inside).unwrap(), b"x");
    }
}

#[test]
fn write_through_planted_relative_symlink_is_contained() {
    let s = sandbox();
    let tar = build(&[
        E::Dir("a"),
        E::Sym("a/up", "../../outside"),
        E::File("a/up/pwned", b"x"),
    ]);
    let r = unpack_layer(&tar[..], &s.root, &big());
    assert!(outside_is_empty(&s), "escaped: {r:?}");
}

#[test]
fn overwrite_planted_symlink_replaces_link_not_target() {
    let s = sandbox();
    let victim = s.outside.join("victim");
    std::fs::write(&victim, b"orig").unwrap();
    let tar = build(&[E::Sym("f", victim.to_str().unwrap()), E::File("f", b"new")]);
    unpack_layer(&tar[..], &s.root, &big()).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"orig");
    assert_eq!(std::fs::read(s.root.join("f")).unwrap(), b"new");
}

#[test]
fn hardlink_outside_is_rejected_or_contained() {
    let s = sandbox();
    let victim = s.outside.join("victim");
    std::fs::write(&victim, b"secret").unwrap();
    let tar = build(&[E::Hard("l", "../outside/victim")]);
    assert!(unpack_layer(&tar[..], &s.root, &big()).is_err());
    let tar = build(&[E::Hard("l", victim.to_str().unwrap())]);
    assert!(unpack_layer(&tar[..], &s.root, &big()).is_err());
    assert!(!s.root.join("l").exists());
    // Through a planted symlink dir: resolves inside root, so target missing.
    let tar = build(&[
        E::Sym("d", s.outside.to_str().unwrap()),
        E::Hard("l2", "d/victim"),
    ]);
    assert!(unpack_layer(&tar[..], &s.root, &big()).is_err());
    assert_eq!(std::fs::metadata(&victim).unwrap().nlink(), 1);
}

#[test]
fn whiteouts_become_overlay_form() {
    let s = sandbox();
    let tar = build(&[
        E::Dir("etc"),
        E::File("etc/.wh.passwd", b""),
        E::Dir("opq"),
        E::File("opq/.wh..wh..opq", b""),
        E::File("opq/keep", b"k"),
    ]);
    unpack_layer(&tar[..], &s.root, &big()).unwrap();
    let m = std::fs::symlink_metadata(s.root.join("etc/passwd")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), 0);
    assert!(!s.root.join("etc/.wh.passwd").exists());
    let p = CString::new(s.root.join("opq").as_os_str().as_bytes()).unwrap();
    let mut buf = [0u8; 8];
    // SAFETY: valid C strings and buffer.
    let n = unsafe {
        libc::getxattr(
            p.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
        )
    };
    assert_eq!(n, 1, "opaque xattr missing");
    assert_eq!(buf[0], b'y');
    assert!(!s.root.join("opq/.wh..wh..opq").exists());
}

#[test]
fn hardlinks_symlinks_modes_mtimes() {
    let s = sandbox();
    let tar = build(&[
        E::Dir("d"),
        E::File("d/a", b"hello"),
        E::Hard("d/b", "d/a"),
        E::Sym("d/s", "a"),
    ]);
    let diff = unpack_layer(&tar[..], &s.root, &big()).unwrap();
    assert_eq!(diff, Digest::of(&tar));
    let a = std::fs::metadata(s.root.join("d/a")).unwrap();
    assert_eq!(a.nlink(), 2);
    assert_eq!(a.mode() & 0o7777, 0o644);
    assert_eq!(a.mtime(), 1_600_000_000);
    assert_eq!(
        std::fs::read_link(s.root.join("d/s")).unwrap(),
        Path::new("a")
    );
    assert_eq!(
        std::fs::metadata(s.root.join("d")).unwrap().mtime(),
        1_600_000_000
    );
}

#[test]
fn gzip_layers_are_detected() {
    let s = sandbox();
    let tar = build(&[E::File("x", b"1")]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let diff = unpack_layer(&gz[..], &s.root, &big()).unwrap();
    assert_eq!(diff, Digest::of(&tar));
    assert_eq!(std::fs::read(s.root.join("x")).unwrap(), b"1");
}

#[test]
fn devices_ownership_xattrs_and_zstd() {
    let s = sandbox();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = hdr("null", tar::EntryType::Char, 0);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    h.set_mode(0o666);
    h.set_cksum();
    b.append(&h, io::empty()).unwrap();
    b.append(&hdr("fifo", tar::EntryType::Fifo, 0), io::empty())
        .unwrap();
    // pax record carrying an xattr, then the file it applies to.
    let rec = |k: &str, v: &str| {
        let body = format!(" {k}={v}\n");
        let mut n = body.len() + 1;
        while format!("{n}{body}").len() != n {
            n += 1;
        }
        format!("{n}{body}")
    };
    let pax = rec("SCHILY.xattr.user.berth", "yes") + &rec("uid", "3000000");
    b.append(
        &hdr("pax", tar::EntryType::XHeader, pax.len() as u64),
        pax.as_bytes(),
    )
    .unwrap();
    let mut h = hdr("owned", tar::EntryType::Regular, 2);
    h.set_uid(1234);
    h.set_gid(5678);
    h.set_mode(0o4750);
    h.set_cksum();
    b.append(&h, &b"hi"[..]).unwrap();
    let tar = b.into_inner().unwrap();
    let zst =
        ruzstd::encoding::compress_to_vec(&tar[..], ruzstd::encoding::CompressionLevel::Fastest);
    assert_eq!(sniff_compression(&zst), "zstd");
    let diff = unpack_layer(&zst[..], &s.root, &big()).unwrap();
    assert_eq!(diff, Digest::of(&tar));
    let null = std::fs::symlink_metadata(s.root.join("null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), libc::makedev(1, 3));
    assert!(std::fs::symlink_metadata(s.root.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    let owned = std::fs::metadata(s.root.join("owned")).unwrap();
    assert_eq!(
        (owned.uid(), owned.gid()),
        (3_000_000, 5678),
        "pax uid ignored"
    );
    assert_eq!(owned.mode() & 0o7777, 0o4750, "setuid lost to chown");
    let p = CString::new(s.root.join("owned").as_os_str().as_bytes()).unwrap();
    let mut buf = [0u8; 8];
    // SAFETY: valid C strings and buffer.
    let n = unsafe {
        libc::getxattr(
            p.as_ptr(),
            c"user.berth".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    assert_eq!(&buf[..n.max(0) as usize], b"yes");
}

#[test]
fn truncated_layer_is_an_error() {
    let s = sandbox();
    let tar = build(&[E::File("x", &[7u8; 4000])]);
    assert!(unpack_layer(&tar[..1000], &s.root, &big()).is_err());
}
