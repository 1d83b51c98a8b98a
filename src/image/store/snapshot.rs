//! Snapshots: unpacked layers under `snapshots/<chain>/fs`, each unpacked
//! from a blob whose uncompressed digest was checked against the image
//! config's diff_id. `snapshots/<chain>/verified/<blob>` records which
//! blobs were checked to be that layer, so that a blob arriving for an
//! existing snapshot (another image, a re-pull, a load) is checked too
//! rather than trusted because the chain id matches.

use anyhow::{anyhow, bail, Context, Result};
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::{temp_name, Image, Store, TempPath};
use crate::image::digest::Digest;
use crate::image::layer;
use crate::image::sizelimit::SizeLimit;

fn record(snap_root: &Path, blob: &Digest) -> Result<()> {
    let dir = snap_root.join("verified");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let p = dir.join(blob.hex());
    fs::write(&p, b"").with_context(|| format!("writing {}", p.display()))
}

impl Store {
    pub(super) fn snapshot_root(&self, chain: &Digest) -> PathBuf {
        self.root.join("snapshots").join(chain.hex())
    }

    /// Whether the snapshot for `chain` exists and `blob` was checked to be
    /// its layer.
    pub fn snapshot_verified(&self, blob: &Digest, chain: &Digest) -> bool {
        self.snapshot_dir(chain).is_dir()
            && self
                .snapshot_root(chain)
                .join("verified")
                .join(blob.hex())
                .is_file()
    }

    /// Checks that `blob` uncompresses to `diff_id`, the layer of the
    /// existing snapshot `chain`, and records it; refuses a blob that doesn't.
    pub fn verify_layer_blob(
        &self,
        blob: &Digest,
        diff_id: &Digest,
        chain: &Digest,
        limit: &SizeLimit,
    ) -> Result<()> {
        if self.snapshot_verified(blob, chain) {
            return Ok(());
        }
        let f = self.open_blob(blob)?;
        let got = layer::diff_id_of(io::BufReader::with_capacity(256 * 1024, f), limit)
            .with_context(|| format!("checking layer {blob}"))?;
        if &got != diff_id {
            bail!("layer {blob}: uncompressed content hashes to {got}, but the image config says {diff_id}");
        }
        record(&self.snapshot_root(chain), blob)
    }

    /// Unpacks layer `i` of `img` into its snapshot unless it exists.
    pub fn ensure_snapshot(&self, img: &Image, i: usize) -> Result<PathBuf> {
        let chains = img.chain_ids();
        let layer = img
            .manifest
            .layers
            .get(i)
            .ok_or_else(|| anyhow!("image {} has no layer {i}", img.id()))?;
        let (Some(chain), Some(diff_id)) = (chains.get(i), img.config.rootfs.diff_ids.get(i))
        else {
            bail!(
                "image {}: manifest has {} layers but config lists {} diff_ids",
                img.id(),
                img.manifest.layers.len(),
                img.config.rootfs.diff_ids.len()
            );
        };
        let dst = self.snapshot_dir(chain);
        if dst.is_dir() {
            // Made by a pull, load or import that checked it: the hot path
            // of a container start stays a stat.
            return Ok(dst);
        }
        let limit = SizeLimit::from_flag_or_env(None)?;
        self.unpack_snapshot(&layer.digest, diff_id, chain, &limit)
    }

    /// Unpacks `blob` into the snapshot for `chain` (which must not exist
    /// yet, or is reused as is), refusing it unless it is the layer `diff_id`.
    pub fn unpack_snapshot(
        &self,
        blob: &Digest,
        diff_id: &Digest,
        chain: &Digest,
        limit: &SizeLimit,
    ) -> Result<PathBuf> {
        let dst = self.snapshot_dir(chain);
        if dst.is_dir() {
            return Ok(dst);
        }
        let f = self.open_blob(blob)?;
        let (tmp, got) = self
            .unpack_to_temp(io::BufReader::with_capacity(256 * 1024, f), limit)
            .with_context(|| format!("unpacking layer {blob}"))?;
        if &got != diff_id {
            bail!("layer {blob}: uncompressed content hashes to {got}, but the image config says {diff_id}");
        }
        record(tmp.path(), blob)?;
        self.adopt_snapshot(tmp, chain)
    }

    /// Unpacks a layer stream into a fresh temp snapshot; returns it and the DiffID.
    pub fn unpack_to_temp<R: Read>(&self, r: R, limit: &SizeLimit) -> Result<(TempPath, Digest)> {
        let tmp = TempPath::new(self.root.join("snapshots").join(temp_name("snap")));
        let fsdir = tmp.path().join("fs");
        fs::create_dir_all(&fsdir).with_context(|| format!("creating {}", fsdir.display()))?;
        fs::set_permissions(&fsdir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .with_context(|| format!("chmod {}", fsdir.display()))?;
        let got = layer::unpack_layer(r, &fsdir, limit)?;
        Ok((tmp, got))
    }

    /// Moves a temp snapshot into place under its chain id. Concurrent
    /// unpackers race on the rename; the loser's copy is discarded.
    pub fn adopt_snapshot(&self, tmp: TempPath, chain: &Digest) -> Result<PathBuf> {
        let final_dir = self.snapshot_root(chain);
        match fs::rename(tmp.path(), &final_dir) {
            Ok(()) => {
                tmp.keep();
            }
            Err(_) if final_dir.is_dir() => {}
            Err(e) => return Err(e).with_context(|| format!("storing snapshot {chain}")),
        }
        Ok(self.snapshot_dir(chain))
    }
}
