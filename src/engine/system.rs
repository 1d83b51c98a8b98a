//! Whole-root reports and cleanup: `info`, `version`, `system df`, `system prune`.

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::container::{self, Container};
use super::error::Result;
use super::lifecycle;
use super::{images, networks, volumes};
use crate::sys::dir_size;

/// docker's `info` fields that apply to berth (names as `docker info --format` knows them).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Info {
    pub containers: usize,
    pub containers_running: usize,
    pub containers_paused: usize,
    pub containers_stopped: usize,
    pub images: usize,
    pub driver: String,
    pub cgroup_driver: String,
    pub cgroup_version: String,
    pub kernel_version: String,
    pub operating_system: String,
    #[serde(rename = "OSType")]
    pub os_type: String,
    pub architecture: String,
    #[serde(rename = "NCPU")]
    pub ncpu: usize,
    pub mem_total: u64,
    pub docker_root_dir: String,
    pub name: String,
    pub server_version: String,
    /// name -> {"path": ...}
    pub runtimes: BTreeMap<String, BTreeMap<String, String>>,
    pub default_runtime: String,
}

fn os_release() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

/// 2 on the unified hierarchy, else 1 (what the runtime will find).
pub fn cgroup_version() -> &'static str {
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

pub fn info(root: &Path) -> Result<Info> {
    let all = container::list(root)?;
    let running = all
        .iter()
        .filter(|c| c.docker_status() == container::Status::Running)
        .count();
    let paused = all
        .iter()
        .filter(|c| c.docker_status() == container::Status::Paused)
        .count();
    let uts = nix::sys::utsname::uname().ok();
    let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uts.as_ref()
            .map(|u| f(u).to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut runtimes = BTreeMap::new();
    for name in ["hull", "runc", "crun"] {
        if let Ok(p) = super::runtime::resolve(Some(name)) {
            runtimes.insert(name.to_string(), BTreeMap::from([("path".into(), p)]));
        }
    }
    Ok(Info {
        containers: all.len(),
        containers_running: running,
        containers_paused: paused,
        containers_stopped: all.len() - running - paused,
        images: images::list(root, None, &[])?.len(),
        driver: "overlay".into(),
        cgroup_driver: "cgroupfs".into(),
        cgroup_version: cgroup_version().into(),
        kernel_version: field(|u| u.release()),
        operating_system: os_release(),
        os_type: "linux".into(),
        architecture: field(|u| u.machine()),
        ncpu: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        mem_total: super::query::mem_total(),
        docker_root_dir: root.display().to_string(),
        name: field(|u| u.nodename()),
        server_version: env!("CARGO_PKG_VERSION").into(),
        runtimes,
        default_runtime: "hull".into(),
    })
}

/// One `system df` row.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DfRow {
    #[serde(rename = "Type")]
    pub typ: String,
    pub total_count: usize,
    pub active: usize,
    pub size: u64,
    pub reclaimable: u64,
}

/// `system df -v`'s per-object lines: (name, size, in use by N containers).
#[derive(Debug, Clone, Default)]
pub struct DfItem {
    pub name: String,
    pub size: u64,
    pub links: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Df {
    pub rows: Vec<DfRow>,
    pub images: Vec<DfItem>,
    pub containers: Vec<DfItem>,
    pub volumes: Vec<DfItem>,
}

fn row(typ: &str, items: &[DfItem]) -> DfRow {
    DfRow {
        typ: typ.into(),
        total_count: items.len(),
        active: items.iter().filter(|i| i.links > 0).count(),
        size: items.iter().map(|i| i.size).sum(),
        reclaimable: items.iter().filter(|i| i.links == 0).map(|i| i.size).sum(),
    }
}

/// Disk use by images, containers (their writable layers), volumes and the build cache.
pub fn df(root: &Path) -> Result<Df> {
    let all = container::list(root)?;
    let mut by_image: BTreeMap<String, usize> = BTreeMap::new();
    for c in &all {
        *by_image.entry(c.config.image_id.clone()).or_default() += 1;
    }
    let mut seen = BTreeSet::new();
    let mut imgs = Vec::new();
    for r in images::list(root, None, &[])? {
        let id = r.id.to_string();
        if !seen.insert(id.clone()) {
            continue;
        }
        imgs.push(DfItem {
            name: r.name.map(|n| n.to_string()).unwrap_or(id.clone()),
            size: r.size,
            links: by_image.get(&id).copied().unwrap_or(0),
        });
    }
    let ctrs: Vec<DfItem> = all
        .iter()
        .map(|c: &Container| DfItem {
            name: c.config.name.clone(),
            size: dir_size(&c.upper()),
            links: usize::from(c.is_running()),
        })
        .collect();
    let vols: Vec<DfItem> = volumes::list(root)
        .into_iter()
        .map(|v| DfItem {
            size: dir_size(Path::new(&v.mountpoint)),
            links: volumes::users(root, &v.name).len(),
            name: v.name,
        })
        .collect();
    Ok(Df {
        rows: vec![
            row("Images", &imgs),
            row("Containers", &ctrs),
            row("Local Volumes", &vols),
            row("Build Cache", &[]),
        ],
        images: imgs,
        containers: ctrs,
        volumes: vols,
    })
}

/// What `system prune` removed.
#[derive(Debug, Default)]
pub struct PruneReport {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    pub images: Vec<String>,
    /// Build-cache records removed (step image ids), as `builder prune` does.
    pub build_cache: Vec<String>,
    pub reclaimed: u64,
}

/// Stopped containers, unused networks, dangling (`all`: unused) images, with `volumes` unused
/// anonymous volumes, and the dangling (`all`: whole) build cache, in the order that frees each
/// for the next.
pub fn prune(root: &Path, all: bool, with_volumes: bool) -> Result<PruneReport> {
    let c = lifecycle::prune(root)?;
    let mut r = PruneReport {
        containers: c.removed,
        reclaimed: c.reclaimed,
        ..Default::default()
    };
    r.networks = networks::prune(root)?;
    if with_volumes {
        for v in volumes::list(root) {
            if v.anonymous && volumes::users(root, &v.name).is_empty() {
                r.reclaimed += dir_size(Path::new(&v.mountpoint));
            }
        }
        r.volumes = volumes::prune(root, false)?;
    }
    let i = images::prune(root, all)?;
    r.images = i.deleted.iter().map(|d| d.to_string()).collect();
    r.reclaimed += i.reclaimed;
    // docker's system prune takes the build cache too: dangling entries, all with -a.
    let b = crate::image::store::Store::open(root)?.prune_build_cache(all, None)?;
    r.build_cache = b.removed;
    r.reclaimed += b.reclaimed;
    Ok(r)
}
