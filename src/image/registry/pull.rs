//! `berth pull`: manifest (through an index), config, then the layers in
//! parallel, each verified before the image gets its name.

use anyhow::{anyhow, bail, Context, Result};
use std::collections::VecDeque;
use std::sync::Mutex;

use super::Client;
use crate::image::digest::Digest;
use crate::image::progress::{Progress, ProgressReader};
use crate::image::reference::Reference;
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

/// Pulls `r` into the store and unpacks its layers. Returns the image.
pub fn pull(store: &Store, r: &Reference, opts: &PullOptions) -> Result<Image> {
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
    let (mut mt, mut body, top_digest) = client.get_manifest(&r.repo, &r.manifest_ref(), &shown)?;
    if let Some(want) = &r.digest {
        if &top_digest != want {
            bail!("manifest for {shown}: registry sent content with digest {top_digest}");
        }
    }
    let mut digest = top_digest.clone();
    if is_index(&mt) {
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
        let (m2, b2, d2) = client.get_manifest(&r.repo, &chosen.digest.to_string(), &shown)?;
        if d2 != chosen.digest {
            bail!(
                "manifest {} for {shown}: registry sent content with digest {d2}",
                chosen.digest
            );
        }
        (mt, body, digest) = (m2, b2, d2);
    }
    if !is_manifest(&mt) {
        bail!("{shown}: unsupported manifest media type {mt:?}");
    }
    let manifest: Manifest = serde_json::from_slice(&body)
        .with_context(|| format!("parsing manifest {digest} for {shown}"))?;

    // Config first: its diff_ids name the snapshots.
    let cfg_d = &manifest.config.digest;
    if !store.has_blob(cfg_d) {
        let resp = client.get_blob(&r.repo, cfg_d)?;
        txn.ingest(resp.into_reader(), Some(cfg_d), Some(manifest.config.size))
            .with_context(|| format!("pulling config of {shown}"))?;
    }
    let config_raw = store.read_blob(cfg_d)?;
    let config: ImageConfig = serde_json::from_slice(&config_raw)
        .with_context(|| format!("parsing image config {cfg_d}"))?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        bail!(
            "{shown}: manifest has {} layers but config {cfg_d} lists {} diff_ids",
            manifest.layers.len(),
            config.rootfs.diff_ids.len()
        );
    }
    let chains = chain_ids(&config.rootfs.diff_ids);

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
                let l = &manifest.layers[i];
                let res = (|| -> Result<()> {
                    let snap = store.snapshot_dir(&chains[i]);
                    if store.has_blob(&l.digest) && snap.is_dir() {
                        progress.task(&short(&l.digest), l.size, "Already exists");
                        return Ok(());
                    }
                    let task = progress.task(&short(&l.digest), l.size, "Pulling fs layer");
                    if !store.has_blob(&l.digest) {
                        task.set("Downloading");
                        let resp = client
                            .get_blob(&r.repo, &l.digest)
                            .inspect_err(|_| task.fail("Failed"))?;
                        let reader = ProgressReader {
                            inner: resp.into_reader(),
                            task: &task,
                        };
                        txn.ingest(reader, Some(&l.digest), Some(l.size))
                            .inspect_err(|_| task.fail("Failed"))?;
                        task.set("Download complete");
                    }
                    task.set("Extracting");
                    txn.unpack_snapshot(&l.digest, &config.rootfs.diff_ids[i], &chains[i])
                        .inspect_err(|_| task.fail("Failed"))?;
                    task.done("Pull complete");
                    Ok(())
                })();
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
