//! `commit`: a container's changes (its overlay upper dir) as a new image over the container's
//! image; `export`: the container's whole filesystem as a tar.

use anyhow::{anyhow, Context};
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

use super::container::{self, Container};
use super::error::Result;
use super::{lifecycle, rootfs};
use crate::image::digest::Digest;
use crate::image::layer::{write_layer_file, write_tar};
use crate::image::reference::Reference;
use crate::image::sizelimit::SizeLimit;
use crate::image::store::{Journal, Store, Txn};
use crate::image::types::{chain_ids, History, ImageConfig, RootFs, RunConfig};

#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub container: String,
    pub reference: Option<String>,
    /// `-m`: the history comment.
    pub message: Option<String>,
    /// `-a`: the image author.
    pub author: Option<String>,
    /// `-p` (docker's default): pause a running container while its changes are read.
    pub pause: bool,
    /// `-c` lines, applied by `apply_change` in order.
    pub changes: Vec<String>,
}

/// Applies one `-c` instruction to a config (the builder's `apply_change_line`, passed in so
/// the engine does not depend on the builder).
pub type ApplyChange<'a> = &'a dyn Fn(&mut RunConfig, &str) -> std::result::Result<(), String>;

/// The config of the committed image: the image's, with what the container ran instead.
fn container_config(base: &RunConfig, c: &Container) -> RunConfig {
    let mut cfg = base.clone();
    cfg.env = Some(c.config.env.clone());
    if !c.config.workdir.is_empty() {
        cfg.working_dir = Some(c.config.workdir.clone());
    }
    if !c.config.user.is_empty() {
        cfg.user = Some(c.config.user.clone());
    }
    let ep = base.entrypoint.clone().unwrap_or_default();
    let args = &c.config.args;
    if args.starts_with(&ep) {
        cfg.cmd = Some(args[ep.len()..].to_vec());
    } else {
        cfg.entrypoint = None;
        cfg.cmd = Some(args.clone());
    }
    cfg
}

/// Commits a container; returns the new image's id.
pub fn commit(root: &Path, o: &CommitOptions, apply_change: ApplyChange<'_>) -> Result<Digest> {
    let store = Store::open(root)?;
    let root = store.root().to_path_buf();
    let reference = o.reference.as_deref().map(Reference::parse).transpose()?;
    let mut c = container::find(&root, &o.container)?;
    let (_, base) = store
        .lookup(&c.config.image_id)
        .with_context(|| format!("image of container {}", c.config.name))?;
    let mut cfg = container_config(&base.config.config.clone().unwrap_or_default(), &c);
    for line in &o.changes {
        apply_change(&mut cfg, line).map_err(|e| anyhow!("invalid change {line:?}: {e}"))?;
    }
    store.clean_temps_on_signal();
    let _l = store.lock_shared()?;
    let txn = Txn::new(&store);
    let mut journal = Journal::open(&store)?;
    let paused = o.pause && c.is_running() && lifecycle::pause(&root, &mut c, true).is_ok();
    let tmp = store.temp_path("commit");
    let written = write_layer_file(&c.upper(), tmp.path());
    if paused {
        let _ = lifecycle::pause(&root, &mut c, false);
    }
    let l = written.with_context(|| format!("reading the changes of {}", c.config.name))?;
    let f = File::open(tmp.path()).with_context(|| format!("opening {}", tmp.path().display()))?;
    txn.ingest(f, Some(&l.digest), Some(l.size))?;
    let mut diff_ids = base.config.rootfs.diff_ids.clone();
    diff_ids.push(l.diff_id.clone());
    let chain = chain_ids(&diff_ids)
        .pop()
        .ok_or_else(|| anyhow!("no layers"))?;
    txn.unpack_snapshot(
        &l.digest,
        &l.diff_id,
        &chain,
        &SizeLimit::from_flag_or_env(None)?,
    )?;
    let mut layers = base.manifest.layers.clone();
    layers.push(crate::image::types::Descriptor {
        media_type: crate::image::types::OCI_LAYER_GZIP.into(),
        digest: l.digest,
        size: l.size,
        platform: None,
        annotations: Default::default(),
    });
    let created = crate::sys::now_rfc3339();
    let mut history = base.config.history.clone();
    history.push(History {
        created: Some(created.clone()),
        created_by: Some(c.config.args.join(" ")),
        comment: o.message.clone(),
        empty_layer: None,
    });
    let config = ImageConfig {
        created: Some(created),
        author: o.author.clone(),
        architecture: base.config.architecture.clone(),
        os: base.config.os.clone(),
        variant: base.config.variant.clone(),
        config: Some(cfg),
        rootfs: RootFs {
            typ: "layers".into(),
            diff_ids,
        },
        history,
    };
    let desc = txn.put_manifest(&config, layers, &mut journal)?;
    drop(journal);
    store.set_ref(reference.as_ref(), &desc)?;
    txn.commit();
    Ok(store.load_image(&desc)?.id().clone())
}

/// Writes the container's filesystem (image plus changes) as a tar to `out`.
pub fn export(root: &Path, name: &str, out: &mut dyn Write) -> Result<()> {
    let root = Store::open(root)?.root().to_path_buf();
    let c = container::find(&root, name)?;
    let mounted_here = !rootfs::is_mounted(&c.rootfs());
    if mounted_here {
        rootfs::mount_rootfs(&c.dir)?;
    }
    let res = write_tar(&c.rootfs(), io::BufWriter::new(out)).and_then(|mut w| {
        w.flush().context("writing the export")?;
        Ok(())
    });
    if mounted_here && !c.is_running() {
        rootfs::unmount_rootfs(&c.dir);
    }
    Ok(res?)
}
