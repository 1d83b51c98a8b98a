//! `berth pull`: manifest (through an index), config, then the layers in
//! parallel, each verified before the image gets its name.

use anyhow::{anyhow, bail, Context, Result};
use std::collections::VecDeque;
use std::sync::Mutex;

use super::limits::{MAX_CONFIG, MAX_MANIFEST};
use super::Client;
use crate::image::digest::Digest;
use crate::image::progress::{Progress, ProgressReader};
use crate::image::reference::Reference;
use crate::image::sizelimit::SizeLimit;
use crate::image::store::{Image, Store, Txn};
use crate::image::types::*;

pub struct PullOptions {
    pub platform: Platform,
    pub insecure: bool,
    pub quiet: bool,
    pub jobs: usize,
}

pub(super) fn short(d: &Digest) -> String {
    d.short().to_string()
}

/// The image manifest for `r` on this platform, through an index if the
/// registry serves one: (media type, raw bytes, digest, top-level digest).
fn fetch_manifest(
    client: &Client,
    r: &Reference,
    opts: &PullOptions,
    shown: &str,
) -> Result<(String, Vec<u8>, Digest, Digest)> {
    let (mt, body, top_digest) = client.get_manifest(&r.repo, &r.manifest_ref(), shown)?;
    if let Some(want) = &r.digest {
        if &top_digest != want {
            bail!("manifest for {shown}: registry sent content with digest {top_digest}");
        }
    }
    if !is_index(&mt) {
        return Ok((mt, body, top_digest.clone(), top_digest));
    }
    let idx: Index =
        serde_json::from_slice(&body).with_context(|| format!("parsing index for {shown}"))?;
    let chosen = idx
        .manifests
        .iter()
        .find(|m| {
            m.platform
                .as_ref()
                .is_some_and(|p| p.matches(&opts.platform))
        })
        .ok_or_else(|| {
            let avail: Vec<String> = idx
                .manifests
                .iter()
                .filter_map(|m| m.platform.as_ref())
                .map(|p| format!("{}/{}", p.os, p.architecture))
                .collect();
            anyhow!(
                "{shown}: no image for platform {}/{} (available: {})",
                opts.platform.os,
                opts.platform.architecture,
                avail.join(", ")
            )
        })?;
    if chosen.size > MAX_MANIFEST {
        bail!(
            "manifest {} for {shown}: size {} is over the {MAX_MANIFEST}-byte limit",
            chosen.digest,
            chosen.size
        );
    }
    let (m2, b2, d2) = client.get_manifest(&r.repo, &chosen.digest.to_string(), shown)?;
    if d2 != chosen.digest {
        bail!(
            "manifest {} for {shown}: registry sent content with digest {d2}",
            chosen.digest
        );
    }
    Ok((m2, b2, d2, top_digest))
}

/// Downloads (unless stored) and unpacks (unless a verified snapshot
/// exists) layer `l`, whose uncompressed content the config says is `diff_id`.
#[allow(clippy::too_many_arguments)]
fn pull_layer(
    client: &Client,
    repo: &str,
    txn: &Txn,
    progress: &Progress,
    l: &Descriptor,
    diff_id: &Digest,
    chain: &Digest,
    limit: &SizeLimit,
) -> Result<()> {
    let store = txn.store();
    if store.has_blob(&l.digest) && store.snapshot_verified(&l.digest, chain) {
        progress.task(&short(&l.digest), l.size, "Already exists");
        return Ok(());
    }
    let task = progress.task(&short(&l.digest), l.size, "Pulling fs layer");
    let res = (|| -> Result<()> {
        if !store.has_blob(&l.digest) {
            task.set("Downloading");
            let reader = ProgressReader {
                inner: client.get_blob(repo, &l.digest, l.size)?,
                task: &task,
            };
            txn.ingest(reader, Some(&l.digest), Some(l.size))?;
            task.set("Download complete");
        }
        task.set("Extracting");
        txn.unpack_snapshot(&l.digest, diff_id, chain, limit)?;
        Ok(())
    })();
    match res {
        Ok(()) => {
            task.done("Pull complete");
            Ok(())
        }
        Err(e) => {
            task.fail("Failed");
            Err(e)
        }
    }
}

/// Pulls `r` into the store and unpacks its layers. Returns the image.
pub fn pull(store: &Store, r: &Reference, opts: &PullOptions) -> Result<Image> {
    store.clean_temps_on_signal();
    let _lock = store.lock_shared()?;
    let shown = r.to_string();
    let client = Client::new(
        store.root(),
        r,
        opts.insecure,
        None,
        vec![format!("repository:{}:pull", r.repo)],
    )?;
    let progress = Progress::new(opts.quiet);
    let txn = Txn::new(store);
    if let Some(t) = &r.tag {
        progress.println(&format!("{t}: Pulling from {}", r.repo));
    } else {
        progress.println(&format!("Pulling {shown}"));
    }
    let (mt, body, digest, top_digest) = fetch_manifest(&client, r, opts, &shown)?;
    if !is_manifest(&mt) {
        bail!("{shown}: unsupported manifest media type {mt:?}");
    }
    let manifest: Manifest = serde_json::from_slice(&body)
        .with_context(|| format!("parsing manifest {digest} for {shown}"))?;

    // Config first: its diff_ids name the snapshots.
    let cfg = &manifest.config;
    if cfg.size > MAX_CONFIG {
        bail!(
            "{shown}: config {} size {} is over the {MAX_CONFIG}-byte limit",
            cfg.digest,
            cfg.size
        );
    }
    if !store.has_blob(&cfg.digest) {
        let body = client.get_blob(&r.repo, &cfg.digest, cfg.size)?;
        txn.ingest(body, Some(&cfg.digest), Some(cfg.size))
            .with_context(|| format!("pulling config of {shown}"))?;
    }
    let config_raw = store.read_blob(&cfg.digest)?;
    let config: ImageConfig = serde_json::from_slice(&config_raw)
        .with_context(|| format!("parsing image config {}", cfg.digest))?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        bail!(
            "{shown}: manifest has {} layers but config {} lists {} diff_ids",
            manifest.layers.len(),
            cfg.digest,
            config.rootfs.diff_ids.len()
        );
    }
    let chains = chain_ids(&config.rootfs.diff_ids);
    // A registry can't make a few KB of gzip unpack to the whole disk either.
    let limit = SizeLimit::from_flag_or_env(None)?;

    let queue: Mutex<VecDeque<usize>> = Mutex::new((0..manifest.layers.len()).collect());
    let errors: Mutex<Vec<anyhow::Error>> = Mutex::new(Vec::new());
    let workers = opts.jobs.max(1).min(manifest.layers.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let Some(i) = queue.lock().ok().and_then(|mut q| q.pop_front()) else {
                    return;
                };
                if errors.lock().map(|e| !e.is_empty()).unwrap_or(true) {
                    return;
                }
                let (l, diff_id) = (&manifest.layers[i], &config.rootfs.diff_ids[i]);
                let res = pull_layer(
                    &client, &r.repo, &txn, &progress, l, diff_id, &chains[i], &limit,
                );
                if let Err(e) = res {
                    if let Ok(mut v) = errors.lock() {
                        v.push(e);
                    }
                }
            });
        }
    });
    if let Some(e) = errors
        .into_inner()
        .ok()
        .and_then(|mut v| (!v.is_empty()).then(|| v.remove(0)))
    {
        return Err(e.context(format!("pulling {shown}")));
    }

    // Only now, with every blob and snapshot complete, does the image get a name.
    let stored = txn.write_blob(&body)?;
    if stored != digest {
        bail!("internal: manifest digest changed while storing");
    }
    let desc = Descriptor {
        media_type: mt,
        digest: digest.clone(),
        size: body.len() as u64,
        platform: None,
        annotations: Default::default(),
    };
    store.set_ref(Some(r), &desc)?;
    txn.commit();
    progress.println(&format!("Digest: {top_digest}"));
    progress.println(&format!("Status: Downloaded image for {shown}"));
    store.load_image(&desc)
}
