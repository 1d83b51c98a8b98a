//! The image store under `<root>`:
//!
//! ```text
//! images/            an OCI image layout (oci-layout, index.json, blobs/sha256/…)
//! snapshots/<chain>/fs  one unpacked layer, keyed by chain id, shared by images
//! snapshots/<chain>/verified/<blob>  blobs checked to uncompress to that layer
//! tmp/               in-flight downloads; never referenced by index.json
//! buildcache/        build-step images and cache keys (commit.rs; pruned by buildcache.rs)
//! containers/        (owned by the containers code) what keeps images in use
//! lock               shared by writers that add content, exclusive for GC
//! index.lock         serializes index.json read-modify-write
//! ```
//!
//! Every blob and index.json is written to a temp file and renamed into
//! place, and index.json only ever names content that is already complete,
//! so an interrupted pull leaves nothing visible. The root itself is 0710
//! (see `rootdir`): unpacked layers keep their setuid bits and devices.
mod buildcache;
mod commit;
mod snapshot;
mod temp;
mod txn;

use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::digest::{Digest, HashWriter};
use super::reference::Reference;
use super::types::*;

pub use buildcache::CachePruneReport;
pub use commit::{Journal, NewImage, NewSnapshot};
use temp::{sweep_dead, sweep_own};
pub use temp::{temp_name, write_atomic, TempPath};
pub use txn::Txn;

pub const DEFAULT_ROOT: &str = "/var/lib/berth";

pub struct Store {
    root: PathBuf,
}

/// A held flock; released on drop.
pub struct Lock {
    _f: File,
}

fn flock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening lock file {}", path.display()))
}

fn flock(path: &Path, exclusive: bool) -> Result<Lock> {
    let f = flock_file(path)?;
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    loop {
        // SAFETY: valid fd.
        let r = unsafe { libc::flock(f.as_raw_fd(), op) };
        if r == 0 {
            return Ok(Lock { _f: f });
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e).with_context(|| format!("locking {}", path.display()));
        }
    }
}

/// An image as recorded in the store.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest_desc: Descriptor,
    pub manifest: Manifest,
    pub config_raw: Vec<u8>,
    pub config: ImageConfig,
}

impl Image {
    /// docker's image ID: the config digest.
    pub fn id(&self) -> &Digest {
        &self.manifest.config.digest
    }
    pub fn size(&self) -> u64 {
        self.manifest.config.size + self.manifest.layers.iter().map(|l| l.size).sum::<u64>()
    }
    pub fn chain_ids(&self) -> Vec<Digest> {
        chain_ids(&self.config.rootfs.diff_ids)
    }
}

/// One index.json entry: a name (`repo:tag`, or `repo@digest` for an image
/// pulled by digest; None if unnamed) and the manifest it points at.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: Option<Reference>,
    pub desc: Descriptor,
}

/// What the containers code needs to build an overlay mount.
#[derive(Debug, Clone)]
pub struct ImageRootfs {
    pub id: Digest,
    /// Snapshot dirs, topmost layer first (overlayfs lowerdir order).
    pub lowerdirs: Vec<PathBuf>,
    pub config: ImageConfig,
}

impl Store {
    pub fn open(root: &Path) -> Result<Store> {
        // Absolute paths: snapshot dirs are handed to mount(2) later.
        let root = super::rootdir::ensure(root)?;
        let s = Store { root };
        for d in [
            s.blobs_dir(),
            s.root.join("snapshots"),
            s.root.join("tmp"),
            s.root.join("containers"),
        ] {
            fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        }
        // Lock files exist from the start so that later operations, even
        // failing ones, never change the tree.
        for l in ["lock", "index.lock"] {
            drop(flock_file(&s.root.join(l))?);
        }
        let layout = s.images_dir().join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        let index = s.images_dir().join("index.json");
        if !index.exists() {
            let _l = s.lock_index()?;
            if !index.exists() {
                s.write_index(&Index::empty())?;
            }
        }
        Ok(s)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }
    fn blobs_dir(&self) -> PathBuf {
        self.images_dir().join("blobs").join("sha256")
    }
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.hex())
    }
    pub fn snapshot_dir(&self, chain: &Digest) -> PathBuf {
        self.root.join("snapshots").join(chain.hex()).join("fs")
    }

    /// Held (shared) while adding content, so GC (exclusive) can't delete
    /// blobs that a pull has written but not yet referenced.
    pub fn lock_shared(&self) -> Result<Lock> {
        flock(&self.root.join("lock"), false)
    }
    pub fn lock_exclusive(&self) -> Result<Lock> {
        flock(&self.root.join("lock"), true)
    }
    fn lock_index(&self) -> Result<Lock> {
        flock(&self.root.join("index.lock"), true)
    }

    pub fn temp_path(&self, prefix: &str) -> TempPath {
        TempPath::new(self.root.join("tmp").join(temp_name(prefix)))
    }

    /// Clears what killed pulls, imports and loads left in the store's temp
    /// places; called when a new operation starts adding content.
    pub fn sweep_dead_temps(&self) {
        sweep_dead(&self.temp_dirs());
        self.sweep_dead_journals();
    }

    /// Where temps are made: tmp/, snapshots/, the blob dir and images/.
    fn temp_dirs(&self) -> Vec<PathBuf> {
        vec![
            self.root.join("tmp"),
            self.root.join("snapshots"),
            self.blobs_dir(),
            self.images_dir(),
        ]
    }

    /// An interrupt (when the caller handles signals, `interrupt::handle_signals`)
    /// first removes this process's temps in the store. Called by pull, import and load.
    pub fn clean_temps_on_signal(&self) {
        let dirs = self.temp_dirs();
        super::interrupt::register(Box::new(move || sweep_own(&dirs)));
    }

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        fs::read(self.blob_path(d)).with_context(|| format!("reading blob {d}"))
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        File::open(self.blob_path(d)).with_context(|| format!("opening blob {d}"))
    }

    /// Streams `r` into the store, verifying it against `expected` (and
    /// `size`) before it becomes visible. Returns the digest and size.
    pub fn ingest<R: Read>(
        &self,
        mut r: R,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<(Digest, u64)> {
        let tmp = self.temp_path("blob");
        let f = File::create(tmp.path())
            .with_context(|| format!("creating {}", tmp.path().display()))?;
        let mut w = HashWriter::new(io::BufWriter::with_capacity(256 * 1024, f));
        let what = expected
            .map(|d| d.to_string())
            .unwrap_or_else(|| "blob".into());
        // A blob with a known size is read one byte past it at most, so a
        // source that keeps sending can't fill the disk.
        let limit = size.map_or(u64::MAX, |s| s.saturating_add(1));
        io::copy(&mut (&mut r).take(limit), &mut w)
            .with_context(|| format!("downloading {what}"))?;
        let (bw, got, n) = w.finish();
        bw.into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {what}"))?;
        if let Some(want) = expected {
            if let Some(sz) = size {
                if n > sz {
                    bail!("blob {want}: size mismatch: the source sent more than the {sz} bytes its descriptor declares");
                }
                if n != sz {
                    bail!("blob {want}: size mismatch: got {n} bytes, expected {sz} (truncated?)");
                }
            }
            if &got != want {
                bail!("blob {want}: digest mismatch: content hashes to {got}");
            }
        }
        self.commit_temp(tmp, &got)?;
        Ok((got, n))
    }

    fn commit_temp(&self, tmp: TempPath, d: &Digest) -> Result<()> {
        let dst = self.blob_path(d);
        fs::rename(tmp.path(), &dst).with_context(|| format!("storing blob {d}"))?;
        tmp.keep();
        Ok(())
    }

    pub fn write_blob(&self, data: &[u8]) -> Result<Digest> {
        let d = Digest::of(data);
        if !self.has_blob(&d) {
            self.ingest(data, Some(&d), Some(data.len() as u64))?;
        }
        Ok(d)
    }

    pub fn read_index(&self) -> Result<Index> {
        let p = self.images_dir().join("index.json");
        let data = fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_slice(&data).with_context(|| format!("parsing {}", p.display()))
    }

    fn write_index(&self, idx: &Index) -> Result<()> {
        let data = serde_json::to_vec(idx).context("serializing index.json")?;
        write_atomic(&self.images_dir().join("index.json"), &data)
    }

    /// Applies `f` to index.json under the index lock.
    pub fn update_index<T>(&self, f: impl FnOnce(&mut Index) -> Result<T>) -> Result<T> {
        let _l = self.lock_index()?;
        let mut idx = self.read_index()?;
        let out = f(&mut idx)?;
        self.write_index(&idx)?;
        Ok(out)
    }

    pub fn entries(&self) -> Result<Vec<Entry>> {
        let idx = self.read_index()?;
        Ok(idx
            .manifests
            .into_iter()
            .map(|desc| {
                let name = desc
                    .annotations
                    .get(ANNOTATION_IMAGE_NAME)
                    .or_else(|| desc.annotations.get(ANNOTATION_REF_NAME))
                    .and_then(|n| Reference::parse(n).ok());
                Entry { name, desc }
            })
            .collect())
    }

    /// Points `name` (or, untagged, just the manifest) at `desc`.
    pub fn set_ref(&self, name: Option<&Reference>, desc: &Descriptor) -> Result<()> {
        let mut d = desc.clone();
        d.platform = None;
        d.annotations.clear();
        if let Some(n) = name {
            d.annotations
                .insert(ANNOTATION_REF_NAME.into(), n.to_string());
            d.annotations
                .insert(ANNOTATION_IMAGE_NAME.into(), n.to_string());
        }
        self.update_index(|idx| {
            match name {
                Some(n) => {
                    let s = n.to_string();
                    idx.manifests.retain(|m| {
                        m.annotations.get(ANNOTATION_REF_NAME) != Some(&s)
                            // an untagged entry for the same manifest is now redundant
                            && !(m.digest == d.digest && m.annotations.is_empty())
                    });
                }
                None => {
                    if idx.manifests.iter().any(|m| m.digest == d.digest) {
                        return Ok(());
                    }
                }
            }
            idx.manifests.push(d);
            Ok(())
        })
    }

    pub fn load_image(&self, desc: &Descriptor) -> Result<Image> {
        let raw = self.read_blob(&desc.digest)?;
        let manifest: Manifest = serde_json::from_slice(&raw)
            .with_context(|| format!("parsing manifest {}", desc.digest))?;
        let config_raw = self.read_blob(&manifest.config.digest)?;
        let config: ImageConfig = serde_json::from_slice(&config_raw)
            .with_context(|| format!("parsing image config {}", manifest.config.digest))?;
        Ok(Image {
            manifest_desc: desc.clone(),
            manifest,
            config_raw,
            config,
        })
    }

    /// Finds an image by name (`busybox`, `x:5000/a:b`), by full or short
    /// ID (config digest), or by `name@digest`/manifest digest.
    pub fn lookup(&self, s: &str) -> Result<(Option<Reference>, Image)> {
        let entries = self.entries()?;
        let hexish = s.strip_prefix("sha256:").unwrap_or(s);
        let looks_like_id = hexish.len() >= 4
            && hexish.len() <= 64
            && hexish
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
        if let Ok(r) = Reference::parse(s) {
            if let Some(d) = &r.digest {
                if let Some(e) = entries.iter().find(|e| &e.desc.digest == d) {
                    return Ok((None, self.load_image(&e.desc)?));
                }
            } else if let Some(e) = entries.iter().find(|e| e.name.as_ref() == Some(&r)) {
                return Ok((Some(r), self.load_image(&e.desc)?));
            }
        }
        if let Some(img) = self.hidden_image(s)? {
            return Ok((None, img));
        }
        if looks_like_id {
            let mut found: Option<Image> = None;
            for e in &entries {
                let img = self.load_image(&e.desc)?;
                if img.id().hex().starts_with(hexish) || e.desc.digest.hex().starts_with(hexish) {
                    if let Some(f) = &found {
                        if f.id() != img.id() {
                            bail!("image ID prefix {s:?} is ambiguous");
                        }
                    }
                    found = Some(img);
                }
            }
            if let Some(img) = found {
                return Ok((None, img));
            }
        }
        // Distinguish a malformed reference from a missing image.
        if !looks_like_id {
            Reference::parse(s)?;
        }
        Err(NoSuchImage(s.to_string()).into())
    }

    pub fn images(&self) -> Result<Vec<(Entry, Image)>> {
        let mut out = Vec::new();
        for e in self.entries()? {
            let img = self.load_image(&e.desc)?;
            out.push((e, img));
        }
        Ok(out)
    }

    /// The overlay lower dirs (topmost first) and config for an image,
    /// unpacking any snapshot that is missing.
    pub fn rootfs(&self, image: &str) -> Result<ImageRootfs> {
        let _l = self.lock_shared()?;
        let (_, img) = self.lookup(image)?;
        let mut dirs = Vec::new();
        for i in 0..img.manifest.layers.len() {
            dirs.push(self.ensure_snapshot(&img, i)?);
        }
        dirs.reverse();
        Ok(ImageRootfs {
            id: img.id().clone(),
            lowerdirs: dirs,
            config: img.config,
        })
    }

    /// Drops everything not reachable from index.json: blobs, snapshots,
    /// and leftovers of interrupted pulls. Returns bytes freed.
    pub fn gc(&self) -> Result<u64> {
        self.gc_sizes().map(|(blobs, _)| blobs)
    }

    /// `gc`, returning the bytes of blobs and of unpacked snapshots it freed.
    pub fn gc_sizes(&self) -> Result<(u64, u64)> {
        let _l = self.lock_exclusive()?;
        let mut keep_blobs = BTreeSet::new();
        let mut keep_chains = BTreeSet::new();
        for e in self.entries()?.into_iter().chain(self.hidden_entries()) {
            keep_blobs.insert(e.desc.digest.hex().to_string());
            if let Ok(img) = self.load_image(&e.desc) {
                keep_blobs.insert(img.manifest.config.digest.hex().to_string());
                for l in &img.manifest.layers {
                    keep_blobs.insert(l.digest.hex().to_string());
                }
                for c in img.chain_ids() {
                    keep_chains.insert(c.hex().to_string());
                }
            }
        }
        let mut freed = 0;
        for ent in fs::read_dir(self.blobs_dir()).context("listing blobs")? {
            let ent = ent.context("listing blobs")?;
            let name = ent.file_name().to_string_lossy().into_owned();
            if !keep_blobs.contains(&name) {
                freed += ent.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(ent.path()).with_context(|| format!("removing blob {name}"))?;
            }
        }
        let mut snap_freed = 0;
        let snaps = self.root.join("snapshots");
        for ent in fs::read_dir(&snaps).context("listing snapshots")? {
            let ent = ent.context("listing snapshots")?;
            let name = ent.file_name().to_string_lossy().into_owned();
            if !keep_chains.contains(&name) {
                snap_freed += crate::sys::dir_size(&ent.path());
                fs::remove_dir_all(ent.path())
                    .with_context(|| format!("removing snapshot {name}"))?;
            }
        }
        for ent in fs::read_dir(self.root.join("tmp")).context("listing tmp")? {
            let ent = ent.context("listing tmp")?;
            let _ = fs::remove_file(ent.path()).or_else(|_| fs::remove_dir_all(ent.path()));
        }
        Ok((freed, snap_freed))
    }

    /// Removes names (or all names of an image) from index.json.
    pub fn untag(&self, pred: impl Fn(&Descriptor) -> bool) -> Result<Vec<Descriptor>> {
        self.update_index(|idx| {
            let (gone, kept): (Vec<_>, Vec<_>) = idx.manifests.drain(..).partition(|m| pred(m));
            idx.manifests = kept;
            Ok(gone)
        })
    }
}

/// Whether a container still uses image `id`. The containers code records
/// each container's image ID in `<root>/containers/<name>/image-id`.
/// `lookup` found nothing by that name or id (docker's wording; the engine carries it up as
/// `EngineError::NoSuchImage`).
#[derive(Debug, thiserror::Error)]
#[error("No such image: {0}")]
pub struct NoSuchImage(pub String);

pub fn image_in_use(store: &Store, id: &Digest) -> bool {
    !image_users(store, id).is_empty()
}

/// The ids (directory names) of the containers whose image is `id`.
pub fn image_users(store: &Store, id: &Digest) -> Vec<String> {
    let Ok(rd) = fs::read_dir(store.root().join("containers")) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|c| {
            fs::read_to_string(c.path().join("image-id"))
                .map(|s| s.trim() == id.to_string() || s.trim() == id.hex())
                .unwrap_or(false)
        })
        .map(|c| c.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Group the index entries by image ID (for `images`, `rmi`).
pub fn by_id(entries: &[(Entry, Image)]) -> BTreeMap<Digest, Vec<usize>> {
    let mut m: BTreeMap<Digest, Vec<usize>> = BTreeMap::new();
    for (i, (_, img)) in entries.iter().enumerate() {
        m.entry(img.id().clone()).or_default().push(i);
    }
    m
}
