//! Taking back a failed operation's additions to the store.

use anyhow::Result;
use std::fs;
use std::io::Read;
use std::path::PathBuf;

use super::{Store, TempPath};
use crate::image::digest::Digest;
use crate::image::sizelimit::SizeLimit;

/// Records what an operation adds to the store so that a failure can take
/// it back out, leaving the store as it was. Dropped without `commit()`,
/// it removes the new blobs and snapshots.
pub struct Txn<'a> {
    store: &'a Store,
    blobs: std::sync::Mutex<Vec<Digest>>,
    snaps: std::sync::Mutex<Vec<Digest>>,
    committed: bool,
}

impl<'a> Txn<'a> {
    pub fn new(store: &'a Store) -> Txn<'a> {
        store.sweep_dead_temps();
        Txn {
            store,
            blobs: Default::default(),
            snaps: Default::default(),
            committed: false,
        }
    }

    pub fn ingest<R: Read>(
        &self,
        r: R,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<(Digest, u64)> {
        let existed = expected.is_some_and(|d| self.store.has_blob(d));
        let (d, n) = self.store.ingest(r, expected, size)?;
        if !existed {
            if let Ok(mut v) = self.blobs.lock() {
                v.push(d.clone());
            }
        }
        Ok((d, n))
    }

    pub fn write_blob(&self, data: &[u8]) -> Result<Digest> {
        let d = Digest::of(data);
        if !self.store.has_blob(&d) {
            self.ingest(data, Some(&d), Some(data.len() as u64))?;
        }
        Ok(d)
    }

    pub fn store(&self) -> &'a Store {
        self.store
    }

    /// Unpacks `blob` as layer `diff_id` into the snapshot for `chain`. An
    /// existing snapshot is reused only once `blob` is checked to be it.
    pub fn unpack_snapshot(
        &self,
        blob: &Digest,
        diff_id: &Digest,
        chain: &Digest,
        limit: &SizeLimit,
    ) -> Result<PathBuf> {
        if self.store.snapshot_dir(chain).is_dir() {
            self.store.verify_layer_blob(blob, diff_id, chain)?;
            return Ok(self.store.snapshot_dir(chain));
        }
        let p = self.store.unpack_snapshot(blob, diff_id, chain, limit)?;
        if let Ok(mut v) = self.snaps.lock() {
            v.push(chain.clone());
        }
        Ok(p)
    }

    pub fn adopt_snapshot(&self, tmp: TempPath, chain: &Digest) -> Result<PathBuf> {
        if self.store.snapshot_dir(chain).is_dir() {
            return Ok(self.store.snapshot_dir(chain));
        }
        let p = self.store.adopt_snapshot(tmp, chain)?;
        if let Ok(mut v) = self.snaps.lock() {
            v.push(chain.clone());
        }
        Ok(p)
    }

    pub fn commit(mut self) {
        self.committed = true;
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if let Ok(v) = self.blobs.lock() {
            for d in v.iter() {
                let _ = fs::remove_file(self.store.blob_path(d));
            }
        }
        if let Ok(v) = self.snaps.lock() {
            for c in v.iter() {
                let _ = fs::remove_dir_all(self.store.root().join("snapshots").join(c.hex()));
            }
        }
    }
}
