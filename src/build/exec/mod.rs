//! The build executor: walks a [`crate::build::plan::Plan`] and makes the image, as
//! `src/build/mod.rs` describes. Every step's result is a (hidden) image in the store named by
//! its cache key, so a rebuild with nothing changed reads the context, hashes and looks up keys.
//!
//! One `Txn` and journal cover the whole build: a failing step, an error or SIGINT take back
//! everything the build added (no container, mount, snapshot or half image is left), and the
//! next operation removes what a SIGKILLed build added.
//!
//! Stable entry point for other modules (compose): [`build`] with a [`BuildRequest`] and a
//! [`Sink`] for progress.

mod cleanup;
mod copy;
mod overlay;
mod run;
mod stage;
mod write;

use anyhow::{anyhow, Context};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::context::Tree;
use super::plan::{self, BuildOptions};
use crate::image::digest::Digest;
use crate::image::reference::Reference;
use crate::image::store::{Image, Journal, Store, Txn};
use crate::image::types::Platform;

/// What to build (the flags of `berth build`, typed).
#[derive(Debug, Clone, Default)]
pub struct BuildRequest {
    /// The context directory.
    pub context: PathBuf,
    /// The Dockerfile; `context/Dockerfile` when `None`.
    pub dockerfile: Option<PathBuf>,
    /// The Dockerfile's text when it does not come from a file (`-f -`).
    pub dockerfile_text: Option<String>,
    /// `-t`: names for the final image.
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    /// Pull base images even when present.
    pub pull: bool,
    /// RUN's network: `bridge` (default), `host` or `none`.
    pub network: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// The OCI runtime for RUN (path or name; default hull).
    pub runtime: Option<String>,
    /// `--platform` (`os/arch[/variant]`).
    pub platform: Option<String>,
}

/// Progress of a build, for the caller to show.
#[derive(Debug)]
pub enum Event<'a> {
    Warning(&'a str),
    /// A step starts: 1-based number, total steps, the instruction as written.
    Step {
        number: usize,
        total: usize,
        text: &'a str,
    },
    /// The step's result came from the cache.
    CacheHit,
    /// A RUN container started (short id).
    RunningIn(&'a str),
    /// Output of a RUN.
    Output(&'a [u8]),
    /// The step's image (short id).
    StepDone(&'a str),
    /// The final image (full id `sha256:…`).
    Built(&'a str),
    Tagged(&'a str),
}

pub trait Sink {
    fn event(&mut self, e: Event<'_>);
}

/// Discards progress.
pub struct NoProgress;

impl Sink for NoProgress {
    fn event(&mut self, _: Event<'_>) {}
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildFailure {
    /// A Dockerfile or context problem, already naming the file and line.
    #[error("{0}")]
    Dockerfile(String),
    /// A RUN exited non-zero.
    #[error("{file}:{line}: The command '{command}' returned a non-zero code: {code}")]
    Run {
        file: String,
        line: usize,
        command: String,
        code: i32,
    },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

pub type Result<T> = std::result::Result<T, BuildFailure>;

fn dockerfile_name(req: &BuildRequest) -> String {
    match (&req.dockerfile, &req.dockerfile_text) {
        (_, Some(_)) => "Dockerfile".into(),
        (Some(p), None) => p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "Dockerfile".into()),
        (None, None) => "Dockerfile".into(),
    }
}

fn read_dockerfile(req: &BuildRequest) -> Result<String> {
    if let Some(t) = &req.dockerfile_text {
        return Ok(t.clone());
    }
    let p = req
        .dockerfile
        .clone()
        .unwrap_or_else(|| req.context.join("Dockerfile"));
    std::fs::read_to_string(&p).map_err(|e| {
        BuildFailure::Dockerfile(format!("failed to read Dockerfile {}: {e}", p.display()))
    })
}

/// Builds the image `req` describes in the store at `root`; returns its id (`sha256:…`).
pub fn build(root: &Path, req: &BuildRequest, sink: &mut dyn Sink) -> Result<Digest> {
    let tags = req
        .tags
        .iter()
        .map(|t| {
            Reference::parse(t).map_err(|e| {
                BuildFailure::Dockerfile(format!(
                    "invalid tag {t:?}: invalid reference format: {e}"
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let platform = req
        .platform
        .as_deref()
        .map(Platform::parse)
        .transpose()
        .map_err(|e| BuildFailure::Dockerfile(format!("--platform: {e}")))?;
    let name = dockerfile_name(req);
    let text = read_dockerfile(req)?;
    let df_err = |e: super::BuildError| BuildFailure::Dockerfile(e.in_file(&name));
    let tree = Tree::open_context(&req.context).map_err(df_err)?;

    let store = Store::open(root)?;
    let root = store.root().to_path_buf();
    cleanup::sweep_dead_builders(&root);
    crate::image::interrupt::register(Box::new(cleanup::on_signal));
    store.clean_temps_on_signal();
    let _lock = store.lock_shared()?;
    let txn = Txn::new(&store);
    let mut journal = Journal::open(&store)?;
    cleanup::set_journal(Some(journal.path()));

    let opts = BuildOptions {
        build_args: req.build_args.clone(),
        target: req.target.clone(),
        platform,
        labels: req.labels.clone(),
    };
    let mut bases: BTreeMap<String, Image> = BTreeMap::new();
    let mut resolve = |name: &str, p: &Platform| -> std::result::Result<_, String> {
        let img = stage::base_image(&store, name, p, req.pull).map_err(|e| format!("{e:#}"))?;
        let cfg = img.config.config.clone().unwrap_or_default();
        bases.insert(name.to_string(), img);
        Ok(cfg)
    };
    let plan = plan::plan(&text, &opts, &mut resolve).map_err(df_err)?;
    for w in &plan.warnings {
        sink.event(Event::Warning(w));
    }
    let sources = plan::resolve_context_sources(&plan, &tree).map_err(df_err)?;
    let mut ex = stage::Executor {
        store: &store,
        txn: &txn,
        journal: &mut journal,
        req,
        file: name.clone(),
        tree: &tree,
        sources,
        bases,
        done: BTreeMap::new(),
        number: 0,
        total: plan.stages.iter().map(|s| s.steps.len()).sum(),
        sink: &mut *sink,
    };
    let mut last = None;
    for (si, sp) in plan.stages.iter().enumerate() {
        last = Some(ex.stage(si, sp)?);
    }
    let img = last.ok_or_else(|| anyhow!("the Dockerfile has no stage"))?;
    let id = img.id().clone();
    sink.event(Event::Built(&id.to_string()));
    // What is named from now on must outlive a SIGKILL: the journal goes first.
    cleanup::set_journal(None);
    drop(journal);
    for t in &tags {
        store
            .set_ref(Some(t), &img.manifest_desc)
            .with_context(|| format!("tagging {t}"))?;
        let shown = format!(
            "{}:{}",
            t.familiar_name(),
            t.tag.as_deref().unwrap_or("latest")
        );
        sink.event(Event::Tagged(&shown));
    }
    txn.commit();
    Ok(id)
}
