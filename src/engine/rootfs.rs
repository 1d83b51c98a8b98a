//! The container's overlay rootfs and `diff` over its upper dir.

use anyhow::{Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

pub fn lowerdirs_path(cdir: &Path) -> PathBuf {
    cdir.join("lowerdirs")
}

pub use crate::sys::is_mounted;

/// Mounts overlay(lowerdirs, upper, work) on `<cdir>/bundle/rootfs`.
pub fn mount_rootfs(cdir: &Path) -> Result<()> {
    let target = cdir.join("bundle/rootfs");
    if is_mounted(&target) {
        return Ok(());
    }
    let lowers = fs::read_to_string(lowerdirs_path(cdir))
        .with_context(|| format!("reading {}", lowerdirs_path(cdir).display()))?;
    let lowers: Vec<&str> = lowers.lines().filter(|l| !l.is_empty()).collect();
    for d in ["upper", "work", "bundle/rootfs"] {
        fs::create_dir_all(cdir.join(d))
            .with_context(|| format!("creating {}", cdir.join(d).display()))?;
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        cdir.join("upper").display(),
        cdir.join("work").display()
    );
    mount(
        Some("overlay"),
        &target,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    )
    .with_context(|| format!("mounting overlay on {}", target.display()))
}

pub fn unmount_rootfs(cdir: &Path) {
    let target = cdir.join("bundle/rootfs");
    while is_mounted(&target) {
        if umount2(&target, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
}

/// A/C/D lines as `docker diff` prints them, from the overlay upper dir:
/// whiteouts (0:0 char devices) are deletions; a path present in a lower
/// layer is a change, otherwise an addition.
pub fn diff(cdir: &Path) -> Result<Vec<(char, String)>> {
    let lowers: Vec<PathBuf> = fs::read_to_string(lowerdirs_path(cdir))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(PathBuf::from)
        .collect();
    let mut out = Vec::new();
    walk(&cdir.join("upper"), Path::new("/"), &lowers, &mut out)?;
    Ok(out)
}

fn walk(upper: &Path, rel: &Path, lowers: &[PathBuf], out: &mut Vec<(char, String)>) -> Result<()> {
    let dir = upper.join(rel.strip_prefix("/").unwrap_or(rel));
    let mut ents: Vec<_> = fs::read_dir(&dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .flatten()
        .collect();
    ents.sort_by_key(|e| e.file_name());
    for e in ents {
        let r = rel.join(e.file_name());
        let in_lower = lowers
            .iter()
            .any(|l| fs::symlink_metadata(l.join(r.strip_prefix("/").unwrap_or(&r))).is_ok());
        let md = e
            .metadata()
            .with_context(|| format!("stat {}", e.path().display()))?;
        let whiteout = md.file_type().is_char_device() && {
            use std::os::unix::fs::MetadataExt;
            md.rdev() == 0
        };
        let name = r.to_string_lossy().into_owned();
        if whiteout {
            out.push(('D', name));
            continue;
        }
        out.push((if in_lower { 'C' } else { 'A' }, name));
        if md.is_dir() {
            walk(upper, &r, lowers, out)?;
        }
    }
    Ok(())
}
