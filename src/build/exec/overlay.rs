//! A step's writable view of an image: overlay(lowers = the image's snapshots, upper = a new
//! snapshot dir) mounted inside the snapshot's temp dir, for COPY/ADD/WORKDIR, and read-only
//! views of a stage's or image's rootfs for `COPY --from`. Unmounted on drop; the mountpoints
//! are also known to the signal cleanup.

use anyhow::{Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::fs;
use std::path::{Path, PathBuf};

use super::cleanup;
use crate::image::store::{NewSnapshot, Store, TempPath};

/// A mounted overlay; unmounted (lazily, so a stray open fd cannot block it) on drop.
pub struct Mounted {
    target: PathBuf,
}

impl Mounted {
    pub fn path(&self) -> &Path {
        &self.target
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = umount2(&self.target, MntFlags::MNT_DETACH);
        cleanup::forget_mount(&self.target);
    }
}

fn overlay(target: &Path, opts: &str, readonly: bool) -> Result<Mounted> {
    fs::create_dir_all(target).with_context(|| format!("creating {}", target.display()))?;
    cleanup::note_mount(target);
    let flags = if readonly {
        MsFlags::MS_RDONLY
    } else {
        MsFlags::empty()
    };
    if let Err(e) = mount(Some("overlay"), target, Some("overlay"), flags, Some(opts)) {
        cleanup::forget_mount(target);
        return Err(e).with_context(|| format!("mounting overlay on {}", target.display()));
    }
    Ok(Mounted {
        target: target.to_path_buf(),
    })
}

fn lower_opt(lowers: &[PathBuf], empty: &Path) -> Result<String> {
    fs::create_dir_all(empty).with_context(|| format!("creating {}", empty.display()))?;
    let mut l: Vec<String> = lowers
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    // overlayfs wants a lower dir even for an empty (scratch) image, and two without an upper.
    l.push(empty.to_string_lossy().into_owned());
    Ok(l.join(":"))
}

/// Mounts `snap` as the upper dir over `lowers` (topmost first).
pub fn writable(snap: &NewSnapshot, lowers: &[PathBuf]) -> Result<Mounted> {
    let base = snap.tmp.path();
    let work = base.join("work");
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower_opt(lowers, &base.join("empty"))?,
        snap.fs().display(),
        work.display()
    );
    overlay(&base.join("mnt"), &opts, false)
}

/// A read-only view of an image's rootfs (for `COPY --from`), in a temp dir of the store.
pub struct View {
    // Field order: unmount before the temp dir goes.
    pub mount: Mounted,
    _tmp: TempPath,
}

pub fn read_only(store: &Store, lowers: &[PathBuf]) -> Result<View> {
    let tmp = store.temp_path("view");
    let opts = format!("lowerdir={}", lower_opt(lowers, &tmp.path().join("empty"))?);
    let mount = overlay(&tmp.path().join("mnt"), &opts, true)?;
    Ok(View { mount, _tmp: tmp })
}
