//! Image commands as library calls (rmi, prune, history, inspect, list,
//! tag): typed reports the CLI prints. The store, registry client and
//! archives themselves live in `crate::image`.

use anyhow::Context;
use std::collections::BTreeSet;
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
    pub size: u64,
}

/// Images newest first, optionally only one repository.
pub fn list(root: &Path, repository: Option<&str>) -> Result<Vec<ImageRow>> {
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
    Ok(all
        .into_iter()
        .map(|(e, img)| ImageRow {
            name: e.name,
            digest: e.desc.digest,
            id: img.id().clone(),
            created: img.config.created.clone(),
            size: img.size(),
        })
        .collect())
}

pub fn tag(root: &Path, source: &str, target: &str) -> Result<()> {
    let s = Store::open(root)?;
    let (_, img) = s.lookup(source)?;
    let t = Reference::parse(target)?;
    if t.tag.is_none() {
        crate::invalid!("tag target {target:?} must not be a digest reference");
    }
    Ok(s.set_ref(Some(&t), &img.manifest_desc)?)
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
        let in_use = image_in_use(&store, &id);
        match &name {
            Some(n) => {
                let last = same_image.len() <= 1;
                if last && in_use && !force {
                    return Err(EngineError::InUse(format!(
                        "conflict: unable to remove {arg}: image {} is in use by a container",
                        id.short()
                    )));
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
                    return Err(EngineError::InUse(format!(
                        "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                        id.short()
                    )));
                }
                if in_use && !force {
                    return Err(EngineError::InUse(format!("conflict: unable to delete {} (must be forced) - image is in use by a container", id.short())));
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
            "Size": img.size(),
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
