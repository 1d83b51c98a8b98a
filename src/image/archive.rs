//! `import` (rootfs tar → image), `save` and `load` in docker-archive
//! (manifest.json + repositories + `<diffid>/layer.tar` + config) and
//! OCI-archive (a tarred OCI image layout) forms.

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use super::digest::Digest;
use super::layer::{decompress, sniff_compression};
use super::reference::Reference;
use super::sizelimit::SizeLimit;
use super::store::{Image, Store, TempPath, Txn};
use super::types::*;

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        other => other,
    }
}

fn layer_media_type(head: &[u8]) -> &'static str {
    match sniff_compression(head) {
        "gzip" => OCI_LAYER_GZIP,
        "zstd" => OCI_LAYER_ZSTD,
        _ => OCI_LAYER_TAR,
    }
}

fn read_head(p: &Path) -> Result<Vec<u8>> {
    let mut f = File::open(p).with_context(|| format!("opening {}", p.display()))?;
    let mut head = vec![0u8; 8];
    let n = f
        .read(&mut head)
        .with_context(|| format!("reading {}", p.display()))?;
    head.truncate(n);
    Ok(head)
}

/// Copies a reader (stdin or a file) into a temp file in the store; the
/// archive itself may not be larger than the limit either.
fn spool<R: Read>(store: &Store, r: R, what: &str, limit: &SizeLimit) -> Result<TempPath> {
    let tmp = store.temp_path("in");
    let mut f =
        File::create(tmp.path()).with_context(|| format!("creating {}", tmp.path().display()))?;
    let n = io::copy(&mut r.take(limit.max().saturating_add(1)), &mut f)
        .with_context(|| format!("reading {what}"))?;
    if n > limit.max() {
        bail!(
            "{what}: archive is larger than the size limit of {} bytes (--max-size or {})",
            limit.max(),
            super::sizelimit::ENV
        );
    }
    Ok(tmp)
}

/// `berth import`: makes a one-layer image from a rootfs tarball.
pub fn import<R: Read>(
    store: &Store,
    input: R,
    what: &str,
    name: Option<&Reference>,
    limit: &SizeLimit,
) -> Result<Image> {
    import_with(store, input, what, name, limit, RunConfig::default(), None)
}

/// `import` with the image config (`-c`) and history comment (`-m`) given.
pub fn import_with<R: Read>(
    store: &Store,
    input: R,
    what: &str,
    name: Option<&Reference>,
    limit: &SizeLimit,
    run_config: RunConfig,
    message: Option<String>,
) -> Result<Image> {
    store.clean_temps_on_signal();
    let _l = store.lock_shared()?;
    let txn = Txn::new(store);
    let raw = spool(store, input, what, limit)?;
    // Unpacking first validates the tar and yields the DiffID before any
    // blob becomes part of the store.
    let f = File::open(raw.path()).with_context(|| format!("opening {}", raw.path().display()))?;
    let (snap, diff_id) = store
        .unpack_to_temp(BufReader::new(f), limit)
        .with_context(|| format!("{what}: not a valid tar archive"))?;
    let f = File::open(raw.path()).with_context(|| format!("opening {}", raw.path().display()))?;
    let gz =
        flate2::read::GzEncoder::new(decompress(BufReader::new(f))?, flate2::Compression::fast());
    let (layer_d, layer_size) = txn.ingest(gz, None, None)?;
    txn.adopt_snapshot(snap, &diff_id)?;
    let created = now_rfc3339();
    let config = ImageConfig {
        created: Some(created.clone()),
        author: None,
        architecture: host_arch().into(),
        os: "linux".into(),
        variant: None,
        config: Some(run_config),
        rootfs: RootFs {
            typ: "layers".into(),
            diff_ids: vec![diff_id],
        },
        history: vec![History {
            created: Some(created),
            created_by: Some("berth import".into()),
            comment: Some(message.unwrap_or_else(|| format!("Imported from {what}"))),
            empty_layer: None,
        }],
    };
    let config_raw = serde_json::to_vec(&config)?;
    let config_d = txn.write_blob(&config_raw)?;
    let layer = Descriptor {
        media_type: OCI_LAYER_GZIP.into(),
        digest: layer_d,
        size: layer_size,
        platform: None,
        annotations: Default::default(),
    };
    let manifest = Manifest::oci(config_d, config_raw.len() as u64, vec![layer]);
    let desc = put_manifest(&txn, &manifest)?;
    store.set_ref(name, &desc)?;
    txn.commit();
    store.load_image(&desc)
}

fn put_manifest(txn: &Txn, m: &Manifest) -> Result<Descriptor> {
    let raw = serde_json::to_vec(m)?;
    let d = txn.write_blob(&raw)?;
    Ok(Descriptor {
        media_type: m.media_type.clone().unwrap_or_else(|| OCI_MANIFEST.into()),
        digest: d,
        size: raw.len() as u64,
        platform: None,
        annotations: Default::default(),
    })
}

#[derive(Serialize, Deserialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    Docker,
    Oci,
}

fn familiar_tagged(r: &Reference) -> String {
    format!(
        "{}:{}",
        r.familiar_name(),
        r.tag.as_deref().unwrap_or("latest")
    )
}

fn append_file<W: Write>(tb: &mut tar::Builder<W>, name: &str, path: &Path) -> Result<()> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let len = f
        .metadata()
        .with_context(|| format!("stat {}", path.display()))?
        .len();
    let mut h = tar::Header::new_ustar();
    h.set_size(len);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    tb.append_data(&mut h, name, &mut f)
        .with_context(|| format!("archiving {name}"))
}

fn append_bytes<W: Write>(tb: &mut tar::Builder<W>, name: &str, data: &[u8]) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    tb.append_data(&mut h, name, data)
        .with_context(|| format!("archiving {name}"))
}

fn append_dir<W: Write>(tb: &mut tar::Builder<W>, name: &str) -> Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(0);
    h.set_mode(0o755);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Directory);
    tb.append_data(&mut h, name, io::empty())
        .with_context(|| format!("archiving {name}"))
}

/// Writes `images` (with the names they were asked for) as an archive.
pub fn save<W: Write>(
    store: &Store,
    images: &[(Option<Reference>, Image)],
    format: Format,
    out: W,
) -> Result<()> {
    let _l = store.lock_shared()?;
    let mut tb = tar::Builder::new(out);
    match format {
        Format::Docker => {
            let mut entries = Vec::new();
            let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
            let mut written = std::collections::HashSet::new();
            for (name, img) in images {
                let cfg_name = format!("{}.json", img.id().hex());
                if written.insert(cfg_name.clone()) {
                    append_bytes(&mut tb, &cfg_name, &img.config_raw)?;
                }
                let mut layers = Vec::new();
                for (l, diff) in img.manifest.layers.iter().zip(&img.config.rootfs.diff_ids) {
                    let lname = format!("{}/layer.tar", diff.hex());
                    if written.insert(lname.clone()) {
                        append_dir(&mut tb, diff.hex())?;
                        // docker-archive layers are uncompressed: their digest is the DiffID.
                        let tmp = store.temp_path("save");
                        {
                            let mut dec = decompress(BufReader::new(store.open_blob(&l.digest)?))?;
                            let mut f = File::create(tmp.path())
                                .with_context(|| format!("creating {}", tmp.path().display()))?;
                            io::copy(&mut dec, &mut f)
                                .with_context(|| format!("decompressing layer {}", l.digest))?;
                        }
                        append_file(&mut tb, &lname, tmp.path())?;
                    }
                    layers.push(lname);
                }
                let name = name.as_ref().filter(|n| n.tag.is_some());
                let tags = name.map(|n| vec![familiar_tagged(n)]);
                if let (Some(n), Some(top)) = (name, img.config.rootfs.diff_ids.last()) {
                    repos.entry(n.familiar_name()).or_default().insert(
                        n.tag.clone().unwrap_or_else(|| "latest".into()),
                        top.hex().to_string(),
                    );
                }
                entries.push(DockerManifestEntry {
                    config: cfg_name,
                    repo_tags: tags,
                    layers,
                });
            }
            append_bytes(&mut tb, "manifest.json", &serde_json::to_vec(&entries)?)?;
            append_bytes(&mut tb, "repositories", &serde_json::to_vec(&repos)?)?;
        }
        Format::Oci => {
            append_bytes(&mut tb, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
            let mut index = Index::empty();
            let mut written = std::collections::HashSet::new();
            append_dir(&mut tb, "blobs")?;
            append_dir(&mut tb, "blobs/sha256")?;
            for (name, img) in images {
                let mut blobs = vec![
                    img.manifest_desc.digest.clone(),
                    img.manifest.config.digest.clone(),
                ];
                blobs.extend(img.manifest.layers.iter().map(|l| l.digest.clone()));
                for d in blobs {
                    if written.insert(d.clone()) {
                        append_file(
                            &mut tb,
                            &format!("blobs/sha256/{}", d.hex()),
                            &store.blob_path(&d),
                        )?;
                    }
                }
                let mut desc = img.manifest_desc.clone();
                desc.annotations.clear();
                if let Some(n) = name {
                    desc.annotations
                        .insert(ANNOTATION_REF_NAME.into(), n.to_string());
                    desc.annotations
                        .insert(ANNOTATION_IMAGE_NAME.into(), n.to_string());
                }
                index.manifests.push(desc);
            }
            append_bytes(&mut tb, "index.json", &serde_json::to_vec(&index)?)?;
        }
    }
    tb.into_inner()
        .context("finishing archive")?
        .flush()
        .context("writing archive")?;
    Ok(())
}

/// Extracts an archive into a temp dir. Only regular files, directories and
/// (docker's layer-dedupe) symlinks are accepted; names are kept inside.
fn extract(
    store: &Store,
    input: &Path,
    what: &str,
    limit: &SizeLimit,
) -> Result<(TempPath, HashMap<String, String>)> {
    let dir = store.temp_path("load");
    fs::create_dir_all(dir.path()).with_context(|| format!("creating {}", dir.path().display()))?;
    let f = File::open(input).with_context(|| format!("opening {what}"))?;
    let mut ar = tar::Archive::new(limit.reader(decompress(BufReader::new(f))?, what));
    let mut links = HashMap::new();
    let mut count = 0;
    for e in ar
        .entries()
        .with_context(|| format!("{what}: not a tar archive"))?
    {
        let mut e = e.with_context(|| format!("{what}: corrupt or truncated archive"))?;
        count += 1;
        let raw = e.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let clean = clean_name(&name).with_context(|| format!("{what}: bad entry {name:?}"))?;
        if clean.is_empty() {
            continue;
        }
        let dst = dir.path().join(&clean);
        match e.header().entry_type() {
            tar::EntryType::Directory => {
                fs::create_dir_all(&dst).with_context(|| format!("creating {}", dst.display()))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                limit.charge(e.size(), &format!("{what}: {name:?}"))?;
                if let Some(p) = dst.parent() {
                    fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
                }
                let mut out =
                    File::create(&dst).with_context(|| format!("creating {}", dst.display()))?;
                io::copy(&mut e, &mut out)
                    .with_context(|| format!("{what}: corrupt or truncated entry {name:?}"))?;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = e
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let base = if e.header().entry_type() == tar::EntryType::Symlink {
                    Path::new(&clean)
                        .parent()
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                let joined = clean_name(&format!("{base}/{target}"))
                    .with_context(|| format!("{what}: link {name:?} points outside the archive"))?;
                links.insert(clean, joined);
            }
            _ => {}
        }
    }
    if count == 0 {
        bail!("{what}: empty or not a tar archive");
    }
    Ok((dir, links))
}

/// Lexically normalizes an archive member name; `..` escaping the top is refused.
fn clean_name(name: &str) -> Result<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    bail!("path escapes the archive");
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

struct Extracted {
    dir: TempPath,
    links: HashMap<String, String>,
}

impl Extracted {
    fn path(&self, name: &str) -> Result<PathBuf> {
        let mut n = clean_name(name)?;
        for _ in 0..16 {
            match self.links.get(&n) {
                Some(t) => n = t.clone(),
                None => break,
            }
        }
        let p = self.dir.path().join(&n);
        if !p.is_file() {
            bail!("archive member {name:?} is missing");
        }
        Ok(p)
    }
}

/// `berth load`: reads a docker-archive or OCI-archive. Returns the loaded
/// image names (or IDs for untagged images).
pub fn load<R: Read>(
    store: &Store,
    input: R,
    what: &str,
    limit: &SizeLimit,
) -> Result<Vec<String>> {
    store.clean_temps_on_signal();
    let _l = store.lock_shared()?;
    let spooled = spool(store, input, what, limit)?;
    let (dir, links) = extract(store, spooled.path(), what, limit)?;
    drop(spooled);
    let x = Extracted { dir, links };
    let txn = Txn::new(store);
    let mut names: Vec<(Option<Reference>, Descriptor)> = Vec::new();
    if x.dir.path().join("manifest.json").is_file() {
        let raw = fs::read(x.dir.path().join("manifest.json"))
            .with_context(|| format!("{what}: reading manifest.json"))?;
        let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&raw)
            .with_context(|| format!("{what}: parsing manifest.json"))?;
        for ent in entries {
            let cfg_raw = fs::read(x.path(&ent.config)?)
                .with_context(|| format!("{what}: reading {}", ent.config))?;
            let config: ImageConfig = serde_json::from_slice(&cfg_raw)
                .with_context(|| format!("{what}: parsing image config {}", ent.config))?;
            if config.rootfs.diff_ids.len() != ent.layers.len() {
                bail!(
                    "{what}: config {} lists {} diff_ids but manifest.json has {} layers",
                    ent.config,
                    config.rootfs.diff_ids.len(),
                    ent.layers.len()
                );
            }
            let cfg_d = txn.write_blob(&cfg_raw)?;
            let chains = chain_ids(&config.rootfs.diff_ids);
            let mut layers = Vec::new();
            for (i, lname) in ent.layers.iter().enumerate() {
                let p = x.path(lname)?;
                let head = read_head(&p)?;
                let f = File::open(&p).with_context(|| format!("opening {}", p.display()))?;
                let (d, size) = txn.ingest(BufReader::new(f), None, None)?;
                txn.unpack_snapshot(&d, &config.rootfs.diff_ids[i], &chains[i], limit)
                    .with_context(|| format!("{what}: layer {lname}"))?;
                layers.push(Descriptor {
                    media_type: layer_media_type(&head).into(),
                    digest: d,
                    size,
                    platform: None,
                    annotations: Default::default(),
                });
            }
            let m = Manifest::oci(cfg_d, cfg_raw.len() as u64, layers);
            let desc = put_manifest(&txn, &m)?;
            let tags = ent.repo_tags.unwrap_or_default();
            if tags.is_empty() {
                names.push((None, desc.clone()));
            }
            for t in tags {
                let r = Reference::parse(&t)
                    .with_context(|| format!("{what}: RepoTags entry {t:?}"))?;
                names.push((Some(r), desc.clone()));
            }
        }
    } else if x.dir.path().join("index.json").is_file() {
        let raw = fs::read(x.dir.path().join("index.json"))
            .with_context(|| format!("{what}: reading index.json"))?;
        let idx: Index =
            serde_json::from_slice(&raw).with_context(|| format!("{what}: parsing index.json"))?;
        for top in &idx.manifests {
            let mut desc = top.clone();
            let mut body = load_blob(&x, &txn, &desc.digest, what)?;
            if is_index(&desc.media_type) {
                let inner: Index = serde_json::from_slice(&body)
                    .with_context(|| format!("{what}: parsing index {}", desc.digest))?;
                let want = Platform {
                    os: "linux".into(),
                    architecture: host_arch().into(),
                    variant: None,
                };
                let chosen = inner
                    .manifests
                    .iter()
                    .find(|m| m.platform.as_ref().is_none_or(|p| p.matches(&want)))
                    .ok_or_else(|| {
                        anyhow!(
                            "{what}: index {} has no linux/{} image",
                            desc.digest,
                            host_arch()
                        )
                    })?;
                body = load_blob(&x, &txn, &chosen.digest, what)?;
                desc = chosen.clone();
            }
            let m: Manifest = serde_json::from_slice(&body)
                .with_context(|| format!("{what}: parsing manifest {}", desc.digest))?;
            let cfg_raw = load_blob(&x, &txn, &m.config.digest, what)?;
            let config: ImageConfig = serde_json::from_slice(&cfg_raw)
                .with_context(|| format!("{what}: parsing image config {}", m.config.digest))?;
            let chains = chain_ids(&config.rootfs.diff_ids);
            if chains.len() != m.layers.len() {
                bail!(
                    "{what}: manifest {} and its config disagree on the layer count",
                    desc.digest
                );
            }
            for (i, l) in m.layers.iter().enumerate() {
                load_blob_file(&x, &txn, &l.digest, what)?;
                txn.unpack_snapshot(&l.digest, &config.rootfs.diff_ids[i], &chains[i], limit)
                    .with_context(|| format!("{what}: layer {}", l.digest))?;
            }
            let name = top
                .annotations
                .get(ANNOTATION_IMAGE_NAME)
                .or_else(|| top.annotations.get(ANNOTATION_REF_NAME))
                .and_then(|n| Reference::parse(n).ok());
            desc.annotations.clear();
            desc.platform = None;
            names.push((name, desc));
        }
    } else {
        bail!("{what}: neither a docker archive (manifest.json) nor an OCI layout (index.json)");
    }
    let mut out = Vec::new();
    for (n, d) in &names {
        store.set_ref(n.as_ref(), d)?;
        out.push(match n {
            Some(n) => format!("Loaded image: {}", familiar_tagged(n)),
            None => format!("Loaded image ID: {}", d.digest),
        });
    }
    txn.commit();
    Ok(out)
}

fn load_blob_file(x: &Extracted, txn: &Txn, d: &Digest, what: &str) -> Result<()> {
    let p = x
        .path(&format!("blobs/sha256/{}", d.hex()))
        .with_context(|| format!("{what}: blob {d}"))?;
    let f = File::open(&p).with_context(|| format!("opening {}", p.display()))?;
    txn.ingest(BufReader::new(f), Some(d), None)
        .with_context(|| format!("{what}: blob {d}"))?;
    Ok(())
}

fn load_blob(x: &Extracted, txn: &Txn, d: &Digest, what: &str) -> Result<Vec<u8>> {
    let p = x
        .path(&format!("blobs/sha256/{}", d.hex()))
        .with_context(|| format!("{what}: blob {d}"))?;
    let data = fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
    let got = Digest::of(&data);
    if &got != d {
        bail!("{what}: blob {d} is corrupt (content hashes to {got})");
    }
    txn.write_blob(&data)?;
    Ok(data)
}
