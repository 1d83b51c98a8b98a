//! One stage at a time: the cache-key chain, cache lookups and, on a miss, the step itself.

use anyhow::{anyhow, Context};
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::copy::{self, Download, Source};
use super::overlay;
use super::run::{run_step, RunEnv, RunOutcome};
use super::write::RootWriter;
use super::{BuildFailure, BuildRequest, Event, Result, Sink};
use crate::build::cache::{base_key, step_key};
use crate::build::context::{Resolved, Tree};
use crate::build::plan::{is_url, Base, CopyFrom, CopyStep, RunStep, StagePlan, Step, StepKind};
use crate::image::reference::Reference;
use crate::image::registry::{self, PullOptions};
use crate::image::sizelimit::SizeLimit;
use crate::image::store::{Image, Journal, NewImage, NewSnapshot, Store, TempPath, Txn};
use crate::image::types::{History, ImageConfig, Platform};

/// A base image from the store, pulled when missing (or always with `--pull`).
pub fn base_image(store: &Store, name: &str, p: &Platform, pull: bool) -> anyhow::Result<Image> {
    if !pull {
        if let Ok((_, img)) = store.lookup(name) {
            return Ok(img);
        }
    }
    let r = Reference::parse(name)?;
    let opts = PullOptions {
        platform: p.clone(),
        insecure: registry::is_insecure(store.root(), &r.domain, None),
        quiet: true,
        jobs: 4,
    };
    registry::pull(store, &r, &opts)
}

pub struct Executor<'a, 's> {
    pub store: &'a Store,
    pub txn: &'a Txn<'a>,
    pub journal: &'a mut Journal,
    pub req: &'a BuildRequest,
    pub file: String,
    pub tree: &'a Tree,
    /// Context sources by (stage position in the plan, step index).
    pub sources: BTreeMap<(usize, usize), Resolved>,
    pub bases: BTreeMap<String, Image>,
    /// Built stages by Dockerfile index: their image and final cache key.
    pub done: BTreeMap<usize, (Image, String)>,
    pub number: usize,
    pub total: usize,
    pub sink: &'s mut dyn Sink,
}

fn now() -> String {
    crate::sys::now_rfc3339()
}

/// What a step needs besides the plan, found before its key is computed.
enum Prepared {
    None,
    Copy {
        from: Option<Box<Image>>,
        downloads: Vec<(Download, TempPath)>,
    },
}

impl<'a, 's> Executor<'a, 's> {
    fn event(&mut self, e: Event<'_>) {
        self.sink.event(e);
    }

    fn line_err(&self, line: usize, msg: impl std::fmt::Display) -> BuildFailure {
        BuildFailure::Dockerfile(format!("{}:{line}: {msg}", self.file))
    }

    pub fn stage(&mut self, si: usize, sp: &StagePlan) -> Result<Image> {
        let (mut cur, base_id) = match &sp.base {
            Base::Scratch => (None, String::new()),
            Base::Image(name) => {
                let img = match self.bases.get(name) {
                    Some(i) => i.clone(),
                    None => base_image(self.store, name, &sp.platform, self.req.pull)?,
                };
                let id = img.id().to_string();
                (Some(img), id)
            }
            Base::Stage(i) => {
                let (img, key) = self
                    .done
                    .get(i)
                    .cloned()
                    .ok_or_else(|| anyhow!("stage {i} was not built"))?;
                (Some(img), key)
            }
        };
        let mut key = base_key(&sp.base, &base_id);
        for (i, step) in sp.steps.iter().enumerate() {
            self.number += 1;
            let (number, total) = (self.number, self.total);
            self.event(Event::Step {
                number,
                total,
                text: &step.display,
            });
            if i == 0 {
                if let Some(c) = &cur {
                    let short = c.id().short().to_string();
                    self.event(Event::StepDone(&short));
                }
                continue;
            }
            let (prepared, inputs) = self.prepare(si, i, step)?;
            let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            key = step_key(&key, step, &refs);
            let hit = (!self.req.no_cache)
                .then(|| self.store.cached_step(&key))
                .flatten();
            let img = match hit {
                Some(img) => {
                    self.event(Event::CacheHit);
                    img
                }
                None => {
                    let img = self.execute(si, i, step, cur.as_ref(), prepared)?;
                    self.txn
                        .record_step(&img.manifest_desc, img.id(), Some(&key), self.journal)?;
                    img
                }
            };
            let short = img.id().short().to_string();
            self.event(Event::StepDone(&short));
            cur = Some(img);
        }
        let fin = self.finish(sp, cur.as_ref(), &key)?;
        self.done.insert(sp.index, fin.clone());
        Ok(fin.0)
    }

    /// Inputs of the key besides the instruction: source content for COPY/ADD.
    fn prepare(&mut self, si: usize, i: usize, step: &Step) -> Result<(Prepared, Vec<String>)> {
        let StepKind::Copy(c) = &step.kind else {
            return Ok((Prepared::None, Vec::new()));
        };
        let mut inputs = Vec::new();
        if let Some(r) = self.sources.get(&(si, i)) {
            inputs.push(r.hash.clone());
        }
        let from = match &c.from {
            CopyFrom::Context => None,
            CopyFrom::Stage(idx) => {
                let (img, k) = self
                    .done
                    .get(idx)
                    .cloned()
                    .ok_or_else(|| anyhow!("stage {idx} was not built"))?;
                inputs.push(k);
                Some(Box::new(img))
            }
            CopyFrom::Image(name) => {
                let img = base_image(self.store, name, &self.platform_of(), self.req.pull)
                    .map_err(|e| self.line_err(step.line, format!("COPY --from={name}: {e:#}")))?;
                inputs.push(img.id().to_string());
                Some(Box::new(img))
            }
        };
        let mut downloads = Vec::new();
        if c.add {
            let limit = SizeLimit::from_flag_or_env(None)?;
            for url in c.sources.iter().filter(|s| is_url(s)) {
                let tmp = self.store.temp_path("dl");
                let hash = copy::download(url, tmp.path(), &limit)
                    .map_err(|e| self.line_err(step.line, format!("{e:#}")))?;
                if let Some(want) = &c.checksum {
                    if want.strip_prefix("sha256:").unwrap_or(want) != hash {
                        return Err(self.line_err(
                            step.line,
                            format!("ADD {url}: checksum mismatch: got sha256:{hash}, want {want}"),
                        ));
                    }
                }
                inputs.push(hash);
                let d = Download {
                    path: tmp.path().to_path_buf(),
                    name: copy::url_file_name(url),
                };
                downloads.push((d, tmp));
            }
        }
        Ok((Prepared::Copy { from, downloads }, inputs))
    }

    fn platform_of(&self) -> Platform {
        self.req
            .platform
            .as_deref()
            .and_then(|p| Platform::parse(p).ok())
            .unwrap_or_else(crate::build::args::host_platform)
    }

    fn history(created_by: String) -> History {
        History {
            created: Some(now()),
            created_by: Some(created_by),
            comment: None,
            empty_layer: None,
        }
    }

    fn put(
        &mut self,
        parent: Option<&Image>,
        layer: Option<NewSnapshot>,
        history: History,
        platform: &Platform,
    ) -> Result<Image> {
        let desc = self.txn.put_image(
            NewImage {
                parent,
                layer,
                config: None,
                author: None,
                history,
                platform: platform.clone(),
            },
            self.journal,
        )?;
        Ok(self.store.load_image(&desc)?)
    }

    fn execute(
        &mut self,
        si: usize,
        i: usize,
        step: &Step,
        cur: Option<&Image>,
        prepared: Prepared,
    ) -> Result<Image> {
        let platform = self.platform_of();
        match &step.kind {
            StepKind::From(_) | StepKind::ConfigOnly => {
                let h = Self::history(step.created_by.clone());
                self.put(cur, None, h, &platform)
            }
            StepKind::Workdir { path, user } => {
                let snap = self.store.new_snapshot()?;
                {
                    let m = overlay::writable(&snap, &self.lowers(cur)?)?;
                    let w = RootWriter::open(m.path())?;
                    // Created directories belong to the USER, as with BuildKit (the classic
                    // builder made them root's).
                    let owner = match user {
                        Some(u) => w.resolve_user(u).map_err(|e| {
                            self.line_err(step.line, format!("WORKDIR {path}: USER {u}: {e}"))
                        })?,
                        None => (0, 0),
                    };
                    w.mkdir_all_owned(path, owner)
                        .map_err(|e| self.line_err(step.line, format!("WORKDIR {path}: {e:#}")))?;
                }
                let empty = std::fs::read_dir(snap.fs())
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(true);
                let h = Self::history(step.created_by.clone());
                self.put(cur, (!empty).then_some(snap), h, &platform)
            }
            StepKind::Run(r) => self.run(step, r, cur, &platform),
            StepKind::Copy(c) => {
                let Prepared::Copy { from, downloads } = prepared else {
                    return Err(anyhow!("COPY step without its sources").into());
                };
                self.copy(si, i, step, c, cur, from, downloads, &platform)
            }
        }
    }

    fn lowers(&self, img: Option<&Image>) -> Result<Vec<PathBuf>> {
        match img {
            None => Ok(Vec::new()),
            Some(img) => Ok(self.store.rootfs(&img.id().to_string())?.lowerdirs),
        }
    }

    fn run(
        &mut self,
        step: &Step,
        r: &RunStep,
        cur: Option<&Image>,
        platform: &Platform,
    ) -> Result<Image> {
        let Some(img) = cur else {
            return Err(self.line_err(
                step.line,
                "RUN on an empty (scratch) image: no shell to run it",
            ));
        };
        let root = self.store.root().to_path_buf();
        let env = RunEnv {
            root: &root,
            store: self.store,
            network: self.req.network.as_deref(),
            runtime: self.req.runtime.as_deref(),
        };
        let outcome = run_step(&env, &img.id().to_string(), r, self.sink)
            .map_err(|e| self.line_err(step.line, format!("RUN: {e:#}")))?;
        match outcome {
            RunOutcome::Failed(code) => Err(BuildFailure::Run {
                file: self.file.clone(),
                line: step.line,
                command: r.argv.join(" "),
                code,
            }),
            RunOutcome::Done(snap) => {
                let h = Self::history(step.created_by.clone());
                self.put(Some(img), Some(snap), h, platform)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn copy(
        &mut self,
        si: usize,
        i: usize,
        step: &Step,
        c: &CopyStep,
        cur: Option<&Image>,
        from: Option<Box<Image>>,
        downloads: Vec<(Download, TempPath)>,
        platform: &Platform,
    ) -> Result<Image> {
        let limit = SizeLimit::from_flag_or_env(None)?;
        let view = match &from {
            Some(img) => Some(overlay::read_only(self.store, &self.lowers(Some(&**img))?)?),
            None => None,
        };
        let from_tree;
        let resolved_from;
        let (tree, resolved, keep_owner) = match &view {
            Some(v) => {
                from_tree = Tree::open_root(v.mount.path())
                    .map_err(|e| self.line_err(step.line, e.message))?;
                resolved_from = from_tree
                    .resolve(&c.sources, c.instruction(), step.line)
                    .map_err(|e| BuildFailure::Dockerfile(e.in_file(&self.file)))?;
                (&from_tree, Some(&resolved_from), true)
            }
            None => (self.tree, self.sources.get(&(si, i)), false),
        };
        let snap = self.store.new_snapshot()?;
        {
            let m = overlay::writable(&snap, &self.lowers(cur)?)?;
            let mut w = RootWriter::open(m.path())?;
            w.chmod = c.chmod;
            if let Some(spec) = &c.chown {
                w.owner = Some(
                    w.resolve_owner(spec)
                        .map_err(|e| self.line_err(step.line, format!("{e:#}")))?,
                );
            }
            let src = Source {
                tree,
                resolved,
                keep_owner,
            };
            let dl: Vec<Download> = downloads
                .iter()
                .map(|(d, _)| Download {
                    path: d.path.clone(),
                    name: d.name.clone(),
                })
                .collect();
            copy::apply(&w, c, &src, &dl, &limit).map_err(|e| {
                self.line_err(step.line, format!("{} failed: {e:#}", c.instruction()))
            })?;
        }
        let (kind, hash) = match resolved {
            Some(r) => (r.kind, r.hash.clone()),
            None => ("file", String::new()),
        };
        let created_by = c.created_by(kind, &hash);
        drop(view);
        let h = Self::history(created_by);
        self.put(cur, Some(snap), h, platform)
    }

    /// The stage's image: the last step's layers and history with the stage's config.
    fn finish(
        &mut self,
        sp: &StagePlan,
        cur: Option<&Image>,
        key: &str,
    ) -> Result<(Image, String)> {
        let cfg_json = serde_json::to_string(&sp.state.config).context("serializing config")?;
        let fin = Step {
            line: 0,
            display: String::new(),
            kind: StepKind::ConfigOnly,
            created_by: String::new(),
            cache_text: format!("FINAL config={cfg_json} author={:?}", sp.state.author),
        };
        let fkey = step_key(key, &fin, &[]);
        if !self.req.no_cache {
            if let Some(img) = self.store.cached_step(&fkey) {
                return Ok((img, fkey));
            }
        }
        let (diff_ids, layers, history) = match cur {
            Some(p) => (
                p.config.rootfs.diff_ids.clone(),
                p.manifest.layers.clone(),
                p.config.history.clone(),
            ),
            None => (Vec::new(), Vec::new(), Vec::new()),
        };
        let config = ImageConfig {
            created: Some(now()),
            author: sp.state.author.clone(),
            architecture: sp.platform.architecture.clone(),
            os: sp.platform.os.clone(),
            variant: sp.platform.variant.clone(),
            config: Some(sp.state.config.clone()),
            rootfs: crate::image::types::RootFs {
                typ: "layers".into(),
                diff_ids,
            },
            history,
        };
        let desc = self.txn.put_manifest(&config, layers, self.journal)?;
        let img = self.store.load_image(&desc)?;
        self.txn
            .record_step(&desc, img.id(), Some(&fkey), self.journal)?;
        Ok((img, fkey))
    }
}
