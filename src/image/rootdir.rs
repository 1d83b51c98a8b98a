//! The berth root (`/var/lib/berth` or `--root`). Images, unpacked layers
//! (with their setuid binaries and device nodes), container dirs, volumes
//! and netns mounts all live under it, so its mode is the one barrier that
//! keeps other local users out. Like docker's /var/lib/docker it is 0710
//! and owned by root: only root (and members of root's group, who can
//! traverse but not list) get in. Containers are unaffected: their mounts
//! are made by the runtime as root, and a process inside a container
//! reaches a volume or an overlay through its mount, never through this
//! directory's path.

use anyhow::{Context, Result};
use std::fs::{self, DirBuilder, File, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const ROOT_MODE: u32 = 0o710;

/// Creates `root` (parents as usual) or repairs an existing one: owned by
/// our effective uid and gid, mode 0710. Returns its canonical path. Every
/// place that may create the root goes through here.
pub fn ensure(root: &Path) -> Result<PathBuf> {
    if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    match DirBuilder::new().mode(ROOT_MODE).create(root) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", root.display())),
    }
    let root = fs::canonicalize(root).with_context(|| format!("resolving {}", root.display()))?;
    // One fd for check and repair, so a rename in between can't redirect the chmod.
    let dir = File::open(&root).with_context(|| format!("opening {}", root.display()))?;
    let md = dir
        .metadata()
        .with_context(|| format!("stat {}", root.display()))?;
    if !md.is_dir() {
        anyhow::bail!("berth root {} is not a directory", root.display());
    }
    let (uid, gid) = (nix::unistd::geteuid(), nix::unistd::getegid());
    if md.uid() != uid.as_raw() || md.gid() != gid.as_raw() {
        std::os::unix::fs::fchown(&dir, Some(uid.as_raw()), Some(gid.as_raw())).with_context(
            || {
                format!(
                    "berth root {} is owned by {}:{}; taking it over",
                    root.display(),
                    md.uid(),
                    md.gid()
                )
            },
        )?;
    }
    if md.mode() & 0o7777 != ROOT_MODE {
        dir.set_permissions(Permissions::from_mode(ROOT_MODE))
            .with_context(|| format!("chmod {:o} {}", ROOT_MODE, root.display()))?;
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_and_repairs_the_mode() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().join("a/b/root");
        let got = ensure(&r).unwrap();
        assert_eq!(got, fs::canonicalize(&r).unwrap());
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&r), ROOT_MODE);
        fs::set_permissions(&r, Permissions::from_mode(0o4777)).unwrap();
        ensure(&r).unwrap();
        assert_eq!(mode(&r), ROOT_MODE);
        let f = t.path().join("file");
        fs::write(&f, b"").unwrap();
        assert!(ensure(&f).is_err());
    }
}
