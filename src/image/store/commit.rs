//! New images made here rather than pulled: a directory in overlay upper-dir form (a build
//! step's or a container's upper dir) becomes a layer blob and, moved in as is, the snapshot of
//! that layer (no second unpack); then a config and manifest on top of a parent image.
//!
//! Build-step images are "hidden": not in index.json (so `images` doesn't list them), recorded
//! under `buildcache/images/<config hex>` with their manifest descriptor, found by `lookup` by
//! full id, and kept by `gc` while recorded. `buildcache/keys/<cache key>` names the image a
//! build step made.
//!
//! A build adds content over minutes; a journal (`buildcache/journals/<pid>`) lists every path
//! it added, so what a SIGKILLed build left is removed by the next operation (see
//! `sweep_dead_journals`), while `Txn` and the signal cleanup handle errors and SIGINT.

use anyhow::{Context, Result};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{temp_name, Image, Store, TempPath, Txn};
use crate::image::digest::Digest;
use crate::image::layer::write_layer_file;
use crate::image::types::*;

/// Write to a temp name and rename: readers see the old or the new content. Not fsync'ed (a
/// cache entry lost to a power cut is only a cache miss), which keeps a step's cost off the
/// disk's flush latency.
fn replace_file(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = TempPath::new(dir.join(temp_name("w")));
    fs::write(tmp.path(), data).with_context(|| format!("writing {}", tmp.path().display()))?;
    fs::rename(tmp.path(), path).with_context(|| format!("renaming into {}", path.display()))?;
    tmp.keep();
    Ok(())
}

/// A snapshot in the making: `<root>/snapshots/.tmp-snap-…/fs`, removed on drop unless adopted.
pub struct NewSnapshot {
    pub tmp: TempPath,
}

impl NewSnapshot {
    pub fn fs(&self) -> PathBuf {
        self.tmp.path().join("fs")
    }
}

impl Store {
    fn buildcache(&self) -> PathBuf {
        self.root.join("buildcache")
    }

    /// An empty directory to be filled in upper-dir form and then made a layer.
    pub fn new_snapshot(&self) -> Result<NewSnapshot> {
        let tmp = TempPath::new(self.root.join("snapshots").join(temp_name("snap")));
        let fsdir = tmp.path().join("fs");
        fs::create_dir_all(&fsdir).with_context(|| format!("creating {}", fsdir.display()))?;
        fs::set_permissions(&fsdir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .with_context(|| format!("chmod {}", fsdir.display()))?;
        Ok(NewSnapshot { tmp })
    }

    /// The image a build step with cache key `key` made, if it is still complete.
    pub fn cached_step(&self, key: &str) -> Option<Image> {
        let id = fs::read_to_string(self.buildcache().join("keys").join(key)).ok()?;
        let img = self.hidden_image(id.trim()).ok().flatten()?;
        // Last use, for `builder prune --filter until=`.
        self.touch_cache_record(img.id().hex());
        Some(img)
    }

    fn hidden_desc(&self, hex: &str) -> Option<Descriptor> {
        let raw = fs::read(self.buildcache().join("images").join(hex)).ok()?;
        serde_json::from_slice(&raw).ok()
    }

    /// A hidden image by full id (`sha256:…` or hex).
    pub fn hidden_image(&self, id: &str) -> Result<Option<Image>> {
        let hex = id.strip_prefix("sha256:").unwrap_or(id);
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let Some(desc) = self.hidden_desc(hex) else {
            return Ok(None);
        };
        let img = self.load_image(&desc)?;
        Ok(Some(img))
    }

    /// Manifest descriptors of every hidden image (for `gc`).
    pub fn hidden_entries(&self) -> Vec<super::Entry> {
        let Ok(rd) = fs::read_dir(self.buildcache().join("images")) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| self.hidden_desc(&e.file_name().to_string_lossy()))
            .map(|desc| super::Entry { name: None, desc })
            .collect()
    }

    /// Removes what SIGKILLed builds (dead pids) added, as listed in their journals.
    pub fn sweep_dead_journals(&self) {
        let dir = self.buildcache().join("journals");
        let Ok(rd) = fs::read_dir(&dir) else { return };
        for ent in rd.flatten() {
            let Some(pid) = ent.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let gone = pid != std::process::id() as i32
                && matches!(
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
                    Err(nix::errno::Errno::ESRCH)
                );
            if !gone {
                continue;
            }
            for line in fs::read_to_string(ent.path()).unwrap_or_default().lines() {
                let p = Path::new(line);
                // Only paths inside this store, whatever the journal says.
                if line.is_empty() || !p.starts_with(&self.root) || line.contains("/../") {
                    continue;
                }
                let _ = if p.is_dir() {
                    fs::remove_dir_all(p)
                } else {
                    fs::remove_file(p)
                };
            }
            let _ = fs::remove_file(ent.path());
        }
    }
}

/// Paths a build added, written down before each is made visible.
pub struct Journal {
    path: PathBuf,
    file: fs::File,
}

impl Journal {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn open(store: &Store) -> Result<Journal> {
        let dir = store.buildcache().join("journals");
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(std::process::id().to_string());
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Journal { path, file })
    }

    fn note(&mut self, p: &Path) -> Result<()> {
        // No fsync: the journal is for a killed process, whose writes the page cache keeps.
        writeln!(self.file, "{}", p.display())
            .with_context(|| format!("writing {}", self.path.display()))
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// What a new image is made of on top of its parent.
pub struct NewImage<'a> {
    pub parent: Option<&'a Image>,
    /// The new layer (a directory in upper-dir form), if the step made one.
    pub layer: Option<NewSnapshot>,
    /// The runtime config of the new image.
    pub config: Option<RunConfig>,
    pub author: Option<String>,
    /// History entry of the step (`empty_layer` is set from `layer`).
    pub history: History,
    pub platform: Platform,
}

impl<'a> Txn<'a> {
    /// Writes the layer of `snap` and moves `snap` in as its snapshot. Returns the layer's
    /// descriptor and DiffID.
    pub fn add_layer_dir(
        &self,
        snap: NewSnapshot,
        parent_chain: Option<&Digest>,
        journal: &mut Journal,
    ) -> Result<(Descriptor, Digest)> {
        let store = self.store();
        let blob_tmp = store.temp_path("blob");
        let l = write_layer_file(&snap.fs(), blob_tmp.path())?;
        let dst = store.blob_path(&l.digest);
        if !dst.exists() {
            journal.note(&dst)?;
            fs::rename(blob_tmp.path(), &dst)
                .with_context(|| format!("storing blob {}", l.digest))?;
            blob_tmp.keep();
            self.note(dst);
        }
        let chain = match parent_chain {
            None => l.diff_id.clone(),
            Some(p) => Digest::of(format!("{p} {}", l.diff_id).as_bytes()),
        };
        let _ = fs::remove_dir_all(snap.tmp.path().join("work"));
        fs::write(snap.tmp.path().join("verified").join(l.digest.hex()), b"")
            .or_else(|_| {
                fs::create_dir_all(snap.tmp.path().join("verified"))?;
                fs::write(snap.tmp.path().join("verified").join(l.digest.hex()), b"")
            })
            .context("recording the verified layer")?;
        if !store.snapshot_dir(&chain).is_dir() {
            journal.note(&store.snapshot_root(&chain))?;
        }
        self.adopt_snapshot(snap.tmp, &chain)?;
        Ok((
            Descriptor {
                media_type: OCI_LAYER_GZIP.into(),
                digest: l.digest,
                size: l.size,
                platform: None,
                annotations: Default::default(),
            },
            l.diff_id,
        ))
    }

    /// Makes an image from `n` (config and manifest blobs). Returns its manifest descriptor;
    /// the image is named by neither index.json nor the build cache yet.
    pub fn put_image(&self, n: NewImage<'_>, journal: &mut Journal) -> Result<Descriptor> {
        let (mut diff_ids, mut layers, mut history) = match n.parent {
            Some(p) => (
                p.config.rootfs.diff_ids.clone(),
                p.manifest.layers.clone(),
                p.config.history.clone(),
            ),
            None => (Vec::new(), Vec::new(), Vec::new()),
        };
        let mut h = n.history;
        if let Some(snap) = n.layer {
            let parent_chain = chain_ids(&diff_ids).pop();
            let (desc, diff_id) = self.add_layer_dir(snap, parent_chain.as_ref(), journal)?;
            layers.push(desc);
            diff_ids.push(diff_id);
            h.empty_layer = None;
        } else {
            h.empty_layer = Some(true);
        }
        let created = h.created.clone();
        history.push(h);
        let config = ImageConfig {
            created,
            author: n.author,
            architecture: n.platform.architecture,
            os: n.platform.os,
            variant: n.platform.variant,
            config: n.config,
            rootfs: RootFs {
                typ: "layers".into(),
                diff_ids,
            },
            history,
        };
        self.put_manifest(&config, layers, journal)
    }

    /// Config + manifest blobs for `config` over `layers`.
    pub fn put_manifest(
        &self,
        config: &ImageConfig,
        layers: Vec<Descriptor>,
        journal: &mut Journal,
    ) -> Result<Descriptor> {
        let config_raw = serde_json::to_vec(config).context("serializing image config")?;
        let config_d = Digest::of(&config_raw);
        self.journaled_blob(&config_raw, journal)?;
        let manifest = Manifest::oci(config_d, config_raw.len() as u64, layers);
        let raw = serde_json::to_vec(&manifest).context("serializing manifest")?;
        let d = self.journaled_blob(&raw, journal)?;
        Ok(Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: d,
            size: raw.len() as u64,
            platform: None,
            annotations: Default::default(),
        })
    }

    fn journaled_blob(&self, data: &[u8], journal: &mut Journal) -> Result<Digest> {
        let d = Digest::of(data);
        if !self.store().has_blob(&d) {
            journal.note(&self.store().blob_path(&d))?;
        }
        self.write_blob(data)
    }

    /// Records a hidden (build-step) image and, with `key`, the cache entry naming it.
    pub fn record_step(
        &self,
        desc: &Descriptor,
        id: &Digest,
        key: Option<&str>,
        journal: &mut Journal,
    ) -> Result<()> {
        let bc = self.store().buildcache();
        let img_path = bc.join("images").join(id.hex());
        if !img_path.exists() {
            fs::create_dir_all(bc.join("images")).context("creating buildcache/images")?;
            journal.note(&img_path)?;
            replace_file(&img_path, &serde_json::to_vec(desc)?)?;
            self.note(img_path);
        }
        if let Some(key) = key {
            let p = bc.join("keys").join(key);
            fs::create_dir_all(bc.join("keys")).context("creating buildcache/keys")?;
            if !p.exists() {
                journal.note(&p)?;
                self.note(p.clone());
            }
            replace_file(&p, id.to_string().as_bytes())?;
        }
        Ok(())
    }
}
