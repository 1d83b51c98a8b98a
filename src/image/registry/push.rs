//! `berth push` and the credential check of `berth login`.

use anyhow::Result;
use std::collections::BTreeSet;
use std::path::Path;

use super::pull::short;
use super::Client;
use crate::image::auth::Credentials;
use crate::image::digest::Digest;
use crate::image::progress::Progress;
use crate::image::reference::Reference;
use crate::image::store::{Image, Store};
use crate::image::types::*;

pub struct PushOptions {
    pub insecure: bool,
    pub quiet: bool,
}

/// Pushes local image `img` to `dest`. Blobs the registry already has are
/// skipped; blobs that a sibling repository on the same registry has are
/// mounted instead of uploaded.
pub fn push(store: &Store, img: &Image, dest: &Reference, opts: &PushOptions) -> Result<Digest> {
    let _lock = store.lock_shared()?;
    // Repositories on the same registry that hold this image's blobs.
    let mut mount_from: Vec<(String, BTreeSet<Digest>)> = Vec::new();
    for (e, other) in store.images()? {
        if let Some(n) = e.name {
            if n.domain == dest.domain && n.repo != dest.repo {
                let blobs: BTreeSet<Digest> = other
                    .manifest
                    .layers
                    .iter()
                    .map(|l| l.digest.clone())
                    .collect();
                mount_from.push((n.repo.clone(), blobs));
            }
        }
    }
    let mut scopes = vec![format!("repository:{}:pull,push", dest.repo)];
    for (repo, _) in &mount_from {
        scopes.push(format!("repository:{repo}:pull"));
    }
    let client = Client::new(store.root(), dest, opts.insecure, None, scopes)?;
    client.ping()?;
    let progress = Progress::new(opts.quiet);
    progress.println(&format!(
        "The push refers to repository [{}]",
        dest.full_name()
    ));
    let mut blobs: Vec<&Descriptor> = img.manifest.layers.iter().collect();
    blobs.push(&img.manifest.config);
    for b in blobs {
        let task = progress.task(&short(&b.digest), b.size, "Preparing");
        if client.blob_exists(&dest.repo, &b.digest)? {
            task.done("Layer already exists");
            continue;
        }
        let from = mount_from.iter().find(|(_, set)| set.contains(&b.digest));
        if let Some((repo, _)) = from {
            if client.mount_blob(&dest.repo, &b.digest, repo)? {
                task.done(&format!("Mounted from {repo}"));
                continue;
            }
        }
        task.set("Pushing");
        let path = store.blob_path(&b.digest);
        client
            .upload_blob(&dest.repo, &b.digest, &path, b.size, Some(&task))
            .inspect_err(|_| task.fail("Failed"))?;
        task.done("Pushed");
    }
    let raw = store.read_blob(&img.manifest_desc.digest)?;
    let tag = dest.manifest_ref();
    client.put_manifest(&dest.repo, &tag, &img.manifest_desc.media_type, &raw)?;
    let d = Digest::of(&raw);
    progress.println(&format!("{tag}: digest: {d} size: {}", raw.len()));
    Ok(d)
}

/// Checks credentials against a registry (used by `berth login`).
pub fn login_check(root: &Path, domain: &str, insecure: bool, creds: &Credentials) -> Result<()> {
    let r = Reference {
        domain: domain.to_string(),
        repo: "library/x".into(),
        tag: None,
        digest: None,
    };
    let c = Client::new(root, &r, insecure, Some(creds.clone()), vec![])?;
    c.ping()
}
