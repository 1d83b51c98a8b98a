//! Pruning the build cache (`berth builder prune`). The build cache is what `berth build`
//! records under `buildcache/` (see commit.rs): `images/<id>`, a build-step image's manifest
//! descriptor, and `keys/<cache key>`, the id a step with that key made. The step images'
//! blobs and snapshots are kept by `gc` only while a record or a name points at them, so
//! pruning is: drop records, drop the keys that point at dropped (or missing) records, `gc`.
//!
//! - dangling (the default): records of images no name in index.json points at, i.e. the
//!   intermediate step images and untagged build results;
//! - `all`: every record (a tagged image keeps its name, blobs and snapshots; only its cache
//!   entry goes);
//! - `until`: only records last used (made, or hit by a build) before that time.
//!
//! Never removed: the record of an image a container was made from (a container may run an
//! untagged build result by id, and needs the record to find it again). A build in progress
//! holds the store's shared lock for its whole run; pruning takes the exclusive lock, so it
//! waits for running builds and a build never sees a half-pruned cache.

use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::UNIX_EPOCH;

use super::{image_in_use, Store};
use crate::image::digest::Digest;

/// What `prune_build_cache` removed.
#[derive(Debug, Default)]
pub struct CachePruneReport {
    /// Ids (`sha256:…`) of the build-step images whose cache records were removed.
    pub removed: Vec<String>,
    /// Bytes freed: blobs and unpacked snapshots no longer referenced.
    pub reclaimed: u64,
}

/// Modification time of `p` in nanoseconds since the epoch (0 when unknown: oldest).
fn mtime_nanos(p: &Path) -> i64 {
    fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64)
}

/// A record or key name: 64 lowercase hex digits (anything else is a writer's temp file).
fn is_hex_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl Store {
    /// Marks the cache record of image `hex` as used now (for `--filter until`).
    pub(super) fn touch_cache_record(&self, hex: &str) {
        let p = self.root.join("buildcache/images").join(hex);
        if let Ok(f) = fs::File::options().write(true).open(&p) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
    }

    /// Removes build-cache entries as the module docs say; `until`: nanoseconds since the
    /// epoch. Then collects the blobs and snapshots nothing needs any more.
    pub fn prune_build_cache(&self, all: bool, until: Option<i64>) -> Result<CachePruneReport> {
        let mut report = CachePruneReport::default();
        {
            let _l = self.lock_exclusive()?;
            let named: BTreeSet<Digest> = self
                .images()?
                .into_iter()
                .map(|(_, img)| img.id().clone())
                .collect();
            let images = self.root.join("buildcache/images");
            let mut kept = BTreeSet::new();
            let rd = match fs::read_dir(&images) {
                Ok(rd) => Some(rd),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e).with_context(|| format!("listing {}", images.display())),
            };
            for ent in rd.into_iter().flatten().flatten() {
                let hex = ent.file_name().to_string_lossy().into_owned();
                let Some(id) = is_hex_id(&hex)
                    .then(|| Digest::parse(&format!("sha256:{hex}")).ok())
                    .flatten()
                else {
                    continue;
                };
                let old_enough = until.is_none_or(|u| mtime_nanos(&ent.path()) < u);
                let dangling = !named.contains(&id);
                if !old_enough || !(all || dangling) || image_in_use(self, &id) {
                    kept.insert(hex);
                    continue;
                }
                fs::remove_file(ent.path())
                    .with_context(|| format!("removing {}", ent.path().display()))?;
                report.removed.push(id.to_string());
            }
            self.drop_stale_keys(&kept)?;
        }
        report.removed.sort();
        let (blobs, snapshots) = self.gc_sizes()?;
        report.reclaimed = blobs + snapshots;
        Ok(report)
    }

    /// Removes cache keys naming an image whose record is not in `kept`.
    fn drop_stale_keys(&self, kept: &BTreeSet<String>) -> Result<()> {
        let keys = self.root.join("buildcache/keys");
        let Ok(rd) = fs::read_dir(&keys) else {
            return Ok(());
        };
        for ent in rd.flatten() {
            if !is_hex_id(&ent.file_name().to_string_lossy()) {
                continue;
            }
            let id = fs::read_to_string(ent.path()).unwrap_or_default();
            let hex = id.trim().trim_start_matches("sha256:");
            if !kept.contains(hex) {
                fs::remove_file(ent.path())
                    .with_context(|| format!("removing {}", ent.path().display()))?;
            }
        }
        Ok(())
    }
}
