//! Image commands as library calls (rmi, prune, history, inspect, list,
//! tag): typed reports the CLI prints. The store, registry client and
//! archives themselves live in `crate::image`.

use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::error::{EngineError, Result};
use crate::image::digest::Digest;
use crate::image::reference::Reference;
use crate::image::store::{image_in_use, Entry, Image, Store};
use crate::image::types::{History, ANNOTATION_REF_NAME};

/// One line of `images`.
pub struct ImageRow {
    pub name: Option<Reference>,
    pub digest: Digest,
    pub id: Digest,
    pub created: Option<String>,
    /// docker's SIZE: the unpacked layers' bytes (the same for every tag of an image).
    pub size: u64,
    pub labels: BTreeMap<String, String>,
}

/// One `images --filter key=value`.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageFilter {
    Dangling(bool),
    Label(String, Option<String>),
    /// `repo[:tag]` with `*` globs, matched against every name.
    Reference(String),
    /// Created before / after the named image.
    Before(String),
    Since(String),
}

impl ImageFilter {
    pub fn parse(f: &str) -> Result<ImageFilter> {
        let Some((k, v)) = f.split_once('=') else {
            crate::invalid!("bad format of filter (expected name=value): {f}");
        };
        let v = v.to_string();
        Ok(match k {
            "dangling" => match v.as_str() {
                "true" | "1" => ImageFilter::Dangling(true),
                "false" | "0" => ImageFilter::Dangling(false),
                _ => crate::invalid!("invalid filter 'dangling={v}'"),
            },
            "label" => match v.split_once('=') {
                Some((a, b)) => ImageFilter::Label(a.into(), Some(b.into())),
                None => ImageFilter::Label(v, None),
            },
            "reference" => ImageFilter::Reference(v),
            "before" => ImageFilter::Before(v),
            "since" => ImageFilter::Since(v),
            _ => crate::invalid!("invalid filter '{k}'"),
        })
    }
}

/// `*` matches any run of characters except `/` (path.Match's rule).
pub fn glob(pat: &str, s: &str) -> bool {
    match pat.split_once('*') {
        None => pat == s,
        Some((head, rest)) => {
            let Some(tail) = s.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len())
                .take_while(|&i| i == 0 || !tail[..i].contains('/'))
                .filter(|&i| tail.is_char_boundary(i))
                .any(|i| glob(rest, &tail[i..]))
        }
    }
}

fn reference_matches(pat: &str, name: &Reference) -> bool {
    let repo = name.familiar_name();
    let tag = name.tag.clone().unwrap_or_default();
    if pat.contains(':') {
        glob(pat, &format!("{repo}:{tag}"))
    } else {
        glob(pat, &repo)
    }
}

/// Images newest first, optionally only one repository and those `filters` keep.
pub fn list(
    root: &Path,
    repository: Option<&str>,
    filters: &[ImageFilter],
) -> Result<Vec<ImageRow>> {
    let store = Store::open(root)?;
    let mut all = store.images()?;
    all.sort_by(|(_, x), (_, y)| y.config.created.cmp(&x.config.created));
    if let Some(repo) = repository {
        let want = Reference::parse(repo)?;
        all.retain(|(e, _)| {
            e.name
                .as_ref()
                .is_some_and(|n| n.full_name() == want.full_name())
        });
    }
    let created_of =
        |n: &str| -> Result<Option<String>> { Ok(store.lookup(n)?.1.config.created.clone()) };
    for f in filters {
        match f {
            ImageFilter::Dangling(d) => all.retain(|(e, _)| e.name.is_none() == *d),
            ImageFilter::Label(k, v) => all.retain(|(_, i)| {
                let labels = i.config.config.as_ref().and_then(|c| c.labels.as_ref());
                labels
                    .and_then(|l| l.get(k))
                    .is_some_and(|x| v.as_ref().is_none_or(|v| x == v))
            }),
            ImageFilter::Reference(p) => {
                all.retain(|(e, _)| e.name.as_ref().is_some_and(|n| reference_matches(p, n)))
            }
            ImageFilter::Before(n) => {
                let t = created_of(n)?;
                all.retain(|(_, i)| i.config.created < t);
            }
            ImageFilter::Since(n) => {
                let t = created_of(n)?;
                all.retain(|(_, i)| i.config.created > t);
            }
        }
    }
    Ok(all
        .into_iter()
        .map(|(e, img)| ImageRow {
            size: unpacked_size(&store, &img),
            labels: img
                .config
                .config
                .as_ref()
                .and_then(|c| c.labels.clone())
                .unwrap_or_default(),
            name: e.name,
            digest: e.desc.digest,
            id: img.id().clone(),
            created: img.config.created.clone(),
        })
        .collect())
}

/// docker's image size: the bytes of the unpacked layers' files, read from
/// the snapshots (cached beside each, which never changes); a layer not
/// unpacked yet counts its blob's size.
pub fn unpacked_size(store: &Store, img: &Image) -> u64 {
    img.chain_ids()
        .iter()
        .zip(&img.manifest.layers)
        .map(|(chain, l)| layer_size(store, chain).unwrap_or(l.size))
        .sum()
}

fn layer_size(store: &Store, chain: &Digest) -> Option<u64> {
    let fs_dir = store.snapshot_dir(chain);
    let cache = fs_dir.parent()?.join("size");
    if let Some(n) = std::fs::read_to_string(&cache)
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        return Some(n);
    }
    if !fs_dir.is_dir() {
        return None;
    }
    let n = dir_bytes(&fs_dir);
    let tmp = fs_dir.with_file_name(format!("size.{}", std::process::id()));
    if std::fs::write(&tmp, n.to_string()).is_ok() {
        let _ = std::fs::rename(&tmp, &cache);
    }
    Some(n)
}

/// The sizes of everything under `dir` that is not a directory (symlinks
/// count their own size), as docker's layer size is summed.
pub fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

pub fn tag(root: &Path, source: &str, target: &str) -> Result<()> {
    let s = Store::open(root)?;
    let (_, img) = s.lookup(source)?;
    let t = Reference::parse(target)?;
    if t.tag.is_none() {
        crate::invalid!("tag target {target:?} must not be a digest reference");
    }
    s.set_ref(Some(&t), &img.manifest_desc)?;
    let name = untagged(&t);
    let id = img.id().to_string();
    super::events::object(root, "image", "tag", &id, &[("name", &name)]);
    Ok(())
}

/// What `rmi` did, in order: ("Untagged"|"Deleted", text).
pub type RmiReport = Vec<(&'static str, String)>;

fn untagged(n: &Reference) -> String {
    format!(
        "{}:{}",
        n.familiar_name(),
        n.tag.as_deref().unwrap_or("latest")
    )
}

/// A container that uses image `id` (its id, and whether it runs), running ones first.
fn image_user(root: &Path, store: &Store, id: &Digest) -> Option<(String, bool)> {
    let users = crate::image::store::image_users(store, id);
    let running = |c: &String| super::container::find(root, c).is_ok_and(|c| c.is_running());
    let first = users.iter().find(|c| running(c)).or(users.first())?;
    Some((first.clone(), running(first)))
}

/// docker's 12-character short form of a container id.
fn short_id(id: &str) -> String {
    id.chars().take(12).collect()
}

/// Removes images by name or id; `force` removes images in use or named twice.
pub fn remove(root: &Path, images: &[String], force: bool) -> Result<RmiReport> {
    let store = Store::open(root)?;
    // A create killed midway must not keep its image "in use".
    super::create_txn::sweep(store.root())?;
    let mut report = Vec::new();
    let mut deleted_any = false;
    for arg in images {
        let (name, img) = store.lookup(arg)?;
        let entries = store.entries()?;
        let id = img.id().clone();
        let same_image: Vec<&Entry> = entries
            .iter()
            .filter(|e| store.load_image(&e.desc).is_ok_and(|i| i.id() == &id))
            .collect();
        let user = image_user(root, &store, &id);
        match &name {
            Some(n) => {
                let last = same_image.len() <= 1;
                if let Some((container, _)) = user.as_ref().filter(|_| last && !force) {
                    return Err(EngineError::ImageReferenced {
                        reference: arg.clone(),
                        container: short_id(container),
                        image: id.short().to_string(),
                    });
                }
                let s = n.to_string();
                store.untag(|d| d.annotations.get(ANNOTATION_REF_NAME) == Some(&s))?;
                report.push(("Untagged", untagged(n)));
                if last {
                    report.push(("Deleted", id.to_string()));
                    deleted_any = true;
                }
            }
            None => {
                let names: BTreeSet<String> = same_image
                    .iter()
                    .filter_map(|e| e.name.as_ref().map(|n| n.full_name()))
                    .collect();
                if names.len() > 1 && !force {
                    return Err(EngineError::ImageInRepositories(id.short().to_string()));
                }
                if let Some((container, running)) = user.filter(|(_, r)| *r || !force) {
                    return Err(EngineError::ImageUsed {
                        image: id.short().to_string(),
                        container: short_id(&container),
                        running,
                    });
                }
                let digests: BTreeSet<Digest> =
                    same_image.iter().map(|e| e.desc.digest.clone()).collect();
                for g in store.untag(|d| digests.contains(&d.digest))? {
                    if let Some(n) = g
                        .annotations
                        .get(ANNOTATION_REF_NAME)
                        .and_then(|n| Reference::parse(n).ok())
                        .filter(|n| n.tag.is_some())
                    {
                        report.push(("Untagged", untagged(&n)));
                    }
                }
                report.push(("Deleted", id.to_string()));
                deleted_any = true;
            }
        }
    }
    if deleted_any {
        store.gc()?;
    }
    for (what, text) in &report {
        let (action, name) = match *what {
            "Untagged" => ("untag", text.as_str()),
            _ => ("delete", ""),
        };
        super::events::object(root, "image", action, text, &[("name", name)]);
    }
    Ok(report)
}

/// docker's `image inspect` document for each name.
pub fn inspect(root: &Path, names: &[String]) -> Result<Vec<serde_json::Value>> {
    let store = Store::open(root)?;
    let entries = store.images()?;
    let mut out = Vec::new();
    for n in names {
        let (_, img) = store.lookup(n)?;
        let mine: Vec<&(Entry, Image)> =
            entries.iter().filter(|(_, i)| i.id() == img.id()).collect();
        let tags: Vec<String> = mine
            .iter()
            .filter_map(|(e, _)| e.name.as_ref())
            .filter(|r| r.tag.is_some())
            .map(untagged)
            .collect();
        let digests: BTreeSet<String> = mine
            .iter()
            .filter_map(|(e, _)| {
                e.name
                    .as_ref()
                    .map(|r| format!("{}@{}", r.familiar_name(), e.desc.digest))
            })
            .collect();
        let lower: Vec<String> = img
            .chain_ids()
            .iter()
            .rev()
            .map(|c| store.snapshot_dir(c).display().to_string())
            .collect();
        let cfg: serde_json::Value =
            serde_json::from_slice(&img.config_raw).context("parsing image config")?;
        out.push(serde_json::json!({
            "Id": img.id().to_string(),
            "RepoTags": tags,
            "RepoDigests": digests,
            "Created": img.config.created,
            "Author": img.config.author.clone().unwrap_or_default(),
            "Architecture": img.config.architecture,
            "Os": img.config.os,
            "Config": cfg.get("config").cloned().unwrap_or(serde_json::Value::Null),
            "Size": unpacked_size(&store, &img),
            "Manifest": {
                "Digest": img.manifest_desc.digest.to_string(),
                "MediaType": img.manifest_desc.media_type,
            },
            "GraphDriver": {"Name": "overlay", "Data": {"LowerDir": lower.join(":")}},
            "RootFS": {"Type": "layers", "Layers": img.config.rootfs.diff_ids},
        }));
    }
    Ok(out)
}

/// One history entry, newest first.
pub struct HistoryRow {
    pub created: Option<String>,
    pub created_by: String,
    pub size: u64,
    pub comment: String,
}

/// The image's id and its history, newest first.
pub fn history(root: &Path, image: &str) -> Result<(Digest, Vec<HistoryRow>)> {
    let store = Store::open(root)?;
    let (_, img) = store.lookup(image)?;
    let mut layer_sizes = img.manifest.layers.iter().map(|l| l.size);
    let hist: Vec<History> = if img.config.history.is_empty() {
        img.manifest
            .layers
            .iter()
            .map(|_| History::default())
            .collect()
    } else {
        img.config.history.clone()
    };
    let mut rows: Vec<HistoryRow> = hist
        .iter()
        .map(|h| HistoryRow {
            created: h.created.clone(),
            created_by: h.created_by.clone().unwrap_or_default(),
            size: if h.empty_layer == Some(true) {
                0
            } else {
                layer_sizes.next().unwrap_or(0)
            },
            comment: h.comment.clone().unwrap_or_default(),
        })
        .collect();
    rows.reverse();
    Ok((img.id().clone(), rows))
}

/// What `image prune` removed.
pub struct PruneReport {
    pub deleted: BTreeSet<Digest>,
    pub reclaimed: u64,
}

/// Removes dangling images (`all`: every image no container uses).
pub fn prune(root: &Path, all: bool) -> Result<PruneReport> {
    let store = Store::open(root)?;
    let entries = store.images()?;
    let named: BTreeSet<Digest> = entries
        .iter()
        .filter(|(e, _)| e.name.is_some())
        .map(|(_, i)| i.id().clone())
        .collect();
    let mut victims = BTreeSet::new();
    for (_, img) in &entries {
        let dangling = !named.contains(img.id());
        if (all || dangling) && !image_in_use(&store, img.id()) {
            victims.insert(img.id().clone());
        }
    }
    let digests: BTreeSet<Digest> = entries
        .iter()
        .filter(|(_, i)| victims.contains(i.id()))
        .map(|(e, _)| e.desc.digest.clone())
        .collect();
    store.untag(|d| digests.contains(&d.digest))?;
    let reclaimed = store.gc()?;
    Ok(PruneReport {
        deleted: victims,
        reclaimed,
    })
}

/// `save -o FILE`: written beside the target and renamed, so a failed save
/// leaves no partial file.
pub fn save_to_file(
    store: &Store,
    imgs: &[(Option<Reference>, Image)],
    format: crate::image::archive::Format,
    p: &Path,
) -> Result<()> {
    let tmp = p.with_file_name(format!(
        ".{}.berth-tmp",
        p.file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let res = (|| -> anyhow::Result<()> {
        let f =
            std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        crate::image::archive::save(store, imgs, format, std::io::BufWriter::new(f))?;
        std::fs::rename(&tmp, p).with_context(|| format!("writing {}", p.display()))
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(res?)
}

/// docker's registry name for a login server argument.
pub fn server_domain(s: Option<&str>) -> String {
    let s = s.unwrap_or("docker.io");
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let s = s.split('/').next().unwrap_or(s);
    match s {
        "index.docker.io" | "registry-1.docker.io" | "" => "docker.io".into(),
        other => other.to_string(),
    }
}

/// Checks an image name before a push: (destination, image).
pub fn push_target(
    store: &Store,
    image: &str,
    destination: Option<&str>,
) -> Result<(Reference, Image)> {
    let (name, img) = store.lookup(image)?;
    let dest = match destination {
        Some(d) => Reference::parse(d)?,
        None => match name {
            Some(n) => n,
            None => {
                return Err(anyhow::anyhow!(
                    "{image}: push needs a name; tag the image or give a destination"
                )
                .into())
            }
        },
    };
    if dest.digest.is_some() {
        return Err(anyhow::anyhow!("push destination {dest} must be a tag, not a digest").into());
    }
    Ok((dest, img))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_servers() {
        assert_eq!(server_domain(None), "docker.io");
        assert_eq!(
            server_domain(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(server_domain(Some("localhost:5000")), "localhost:5000");
    }
}
