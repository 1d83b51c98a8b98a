//! Taking back a failed operation's additions to the store.

use anyhow::Result;
use std::fs;
use std::io::Read;
use std::path::PathBuf;

use super::{Store, TempPath};
use crate::image::digest::Digest;
use crate::image::interrupt;
use crate::image::sizelimit::SizeLimit;

/// Records what an operation adds to the store so that a failure can take
/// it back out, leaving the store as it was. Dropped without `commit()`,
/// it removes the new blobs and snapshots.
pub struct Txn<'a> {
    store: &'a Store,
    /// New blob files and snapshot dirs; also known to the signal cleanup.
    added: std::sync::Mutex<Vec<PathBuf>>,
    committed: bool,
}

impl<'a> Txn<'a> {
    pub fn new(store: &'a Store) -> Txn<'a> {
        store.sweep_dead_temps();
        Txn {
            store,
            added: Default::default(),
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
            self.note(self.store.blob_path(&d));
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
            self.store.verify_layer_blob(blob, diff_id, chain, limit)?;
            return Ok(self.store.snapshot_dir(chain));
        }
        let p = self.store.unpack_snapshot(blob, diff_id, chain, limit)?;
        self.note(self.store.snapshot_root(chain));
        Ok(p)
    }

    pub fn adopt_snapshot(&self, tmp: TempPath, chain: &Digest) -> Result<PathBuf> {
        if self.store.snapshot_dir(chain).is_dir() {
            return Ok(self.store.snapshot_dir(chain));
        }
        let p = self.store.adopt_snapshot(tmp, chain)?;
        self.note(self.store.snapshot_root(chain));
        Ok(p)
    }

    pub(super) fn note(&self, p: PathBuf) {
        interrupt::track(p.clone());
        if let Ok(mut v) = self.added.lock() {
            v.push(p);
        }
    }

    pub fn commit(mut self) {
        self.committed = true;
        if let Ok(v) = self.added.lock() {
            interrupt::untrack(&v);
        }
    }
}

impl Drop for Txn<'_> {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if let Ok(v) = self.added.lock() {
            for p in v.iter() {
                let _ = if p.is_dir() {
                    fs::remove_dir_all(p)
                } else {
                    fs::remove_file(p)
                };
            }
            interrupt::untrack(&v);
        }
    }
}
