//! What an interrupted build must undo besides the store's additions (which `Txn` and the
//! store's signal cleanup take back): the RUN container in flight and step mounts. A SIGKILLed
//! build can't clean up; its RUN containers carry the builder's pid as a label, and the next
//! build removes those whose builder is gone.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::engine::{container, lifecycle};

pub const BUILDER_LABEL: &str = "berth.build.pid";

static MOUNTS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// (berth root, container id) of the RUN step in flight.
static CONTAINER: Mutex<Option<(PathBuf, String)>> = Mutex::new(None);
/// The build's journal: what it lists is taken back by the store's own signal cleanup.
static JOURNAL: Mutex<Option<PathBuf>> = Mutex::new(None);

pub fn set_journal(p: Option<&Path>) {
    if let Ok(mut j) = JOURNAL.lock() {
        *j = p.map(Path::to_path_buf);
    }
}

pub fn note_mount(p: &Path) {
    if let Ok(mut v) = MOUNTS.lock() {
        v.push(p.to_path_buf());
    }
}

pub fn forget_mount(p: &Path) {
    if let Ok(mut v) = MOUNTS.lock() {
        v.retain(|x| x != p);
    }
}

pub fn set_container(root: &Path, id: Option<&str>) {
    if let Ok(mut c) = CONTAINER.lock() {
        *c = id.map(|id| (root.to_path_buf(), id.to_string()));
    }
}

/// Runs on SIGINT/SIGTERM/SIGHUP, before the store removes the build's temps and additions.
pub fn on_signal() {
    let current = CONTAINER.lock().ok().and_then(|mut c| c.take());
    if let Some((root, id)) = current {
        remove_container(&root, &id);
    }
    if let Ok(v) = MOUNTS.lock() {
        for m in v.iter() {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    if let Some(j) = JOURNAL.lock().ok().and_then(|mut j| j.take()) {
        let _ = std::fs::remove_file(j);
    }
}

pub fn remove_container(root: &Path, id: &str) {
    if let Ok(c) = container::find(root, id) {
        let _ = lifecycle::remove_container(root, &c, true);
    }
}

/// Removes RUN containers of builds that died without cleaning up (SIGKILL).
pub fn sweep_dead_builders(root: &Path) {
    let Ok(list) = container::list(root) else {
        return;
    };
    let me = std::process::id() as i32;
    for c in list {
        let Some(pid) = c
            .config
            .labels
            .get(BUILDER_LABEL)
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        if pid != me && !crate::sys::pid_alive(pid) {
            let _ = lifecycle::remove_container(root, &c, true);
        }
    }
}
