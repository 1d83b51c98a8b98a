//! Network namespaces berth creates: `<root>/netns/<id>`, a bind mount of
//! a namespace unshared by a short-lived thread (as `ip netns add` does).

use anyhow::{Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

pub fn path(root: &Path, id: &str) -> PathBuf {
    root.join("netns").join(id)
}

pub fn create(root: &Path, id: &str) -> Result<PathBuf> {
    let p = path(root, id);
    if crate::sys::is_mounted(&p) {
        return Ok(p);
    }
    let dir = root.join("netns");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    File::create(&p).with_context(|| format!("creating {}", p.display()))?;
    let target = p.clone();
    // unshare(CLONE_NEWNET) only moves the calling thread, so a scratch
    // thread keeps berth itself in the host namespace.
    let r = std::thread::spawn(move || -> Result<()> {
        unshare(CloneFlags::CLONE_NEWNET).context("unshare(CLONE_NEWNET)")?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("bind-mounting the netns on {}", target.display()))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("netns thread panicked"))?;
    if let Err(e) = r {
        let _ = fs::remove_file(&p);
        return Err(e);
    }
    Ok(p)
}

pub fn remove(root: &Path, id: &str) {
    let p = path(root, id);
    while crate::sys::is_mounted(&p) {
        if umount2(&p, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
    let _ = fs::remove_file(&p);
}

/// Runs `f` on a thread that joined the namespace at `ns`.
pub fn run_in<T: Send + 'static>(
    ns: &Path,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let file = File::open(ns).with_context(|| format!("opening netns {}", ns.display()))?;
    std::thread::spawn(move || -> Result<T> {
        setns(&file, CloneFlags::CLONE_NEWNET).context("setns into the container netns")?;
        f()
    })
    .join()
    .map_err(|_| anyhow::anyhow!("netns thread panicked"))?
}
