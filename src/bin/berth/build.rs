//! `build` / `image build`, `commit`, `export` and `import` (with `-c`/`-m`): flags to the
//! builder's and engine's typed requests, progress printed like docker's classic builder.

use anyhow::{anyhow, Context, Result};
use clap::Args;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use hull::build::config::{apply_change_line, ConfigState};
use hull::build::exec::{self, BuildRequest, Event, Sink};
use hull::engine::commit::{self, CommitOptions};
use hull::image::archive;
use hull::image::reference::Reference;
use hull::image::sizelimit::SizeLimit;
use hull::image::store::Store;
use hull::image::types::RunConfig;

#[derive(Args)]
pub struct BuildArgs {
    /// Name and optionally a tag (NAME[:TAG]); repeatable
    #[arg(short, long = "tag")]
    tag: Vec<String>,
    /// Name of the Dockerfile (default: CONTEXT/Dockerfile; - for stdin)
    #[arg(short, long)]
    file: Option<String>,
    /// Set a build-time variable (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg")]
    build_arg: Vec<String>,
    /// The stage to build
    #[arg(long)]
    target: Option<String>,
    /// Do not use the cache
    #[arg(long)]
    no_cache: bool,
    /// Always pull base images
    #[arg(long)]
    pull: bool,
    /// Network for RUN: bridge (default), host or none
    #[arg(long)]
    network: Option<String>,
    /// Set metadata on the image (KEY=VALUE); repeatable
    #[arg(long)]
    label: Vec<String>,
    /// Print only the image id
    #[arg(short, long)]
    quiet: bool,
    /// Write the image id to this file
    #[arg(long)]
    iidfile: Option<PathBuf>,
    /// Target platform (os/arch[/variant])
    #[arg(long)]
    platform: Option<String>,
    /// OCI runtime for RUN: a path or a name (default: hull next to berth)
    #[arg(long)]
    runtime: Option<String>,
    /// Context directory, or - for a Dockerfile on stdin and no context
    context: String,
}

/// Prints like docker's classic builder.
struct Printer {
    quiet: bool,
    at_line_start: bool,
}

impl Printer {
    fn line(&mut self, s: &str) {
        let mut out = std::io::stdout().lock();
        if !self.at_line_start {
            let _ = writeln!(out);
        }
        let _ = writeln!(out, "{s}");
        self.at_line_start = true;
    }
}

impl Sink for Printer {
    fn event(&mut self, e: Event<'_>) {
        if let Event::Warning(w) = e {
            eprintln!("[Warning] {w}");
            return;
        }
        if self.quiet {
            return;
        }
        match e {
            Event::Step {
                number,
                total,
                text,
            } => self.line(&format!("Step {number}/{total} : {text}")),
            Event::CacheHit => self.line(" ---> Using cache"),
            Event::RunningIn(id) => self.line(&format!(" ---> Running in {id}")),
            Event::Output(data) => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(data);
                let _ = out.flush();
                self.at_line_start = data.ends_with(b"\n");
            }
            Event::StepDone(id) => self.line(&format!(" ---> {id}")),
            Event::Built(id) => {
                let short = id.strip_prefix("sha256:").unwrap_or(id);
                self.line(&format!(
                    "Successfully built {}",
                    &short[..12.min(short.len())]
                ))
            }
            Event::Tagged(t) => self.line(&format!("Successfully tagged {t}")),
            Event::Warning(_) => {}
        }
    }
}

fn key_values(list: &[String], flag: &str) -> Result<BTreeMap<String, String>> {
    list.iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("invalid {flag} {kv:?}: expected KEY=VALUE"))
        })
        .collect()
}

fn build_args(list: &[String]) -> BTreeMap<String, String> {
    let env = |n: &str| std::env::var(n).ok();
    list.iter()
        .filter_map(|a| hull::build::args::parse_build_arg(a, &env))
        .collect()
}

fn read_stdin() -> Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading the Dockerfile from stdin")?;
    Ok(s)
}

pub fn build(root: &Path, a: BuildArgs) -> Result<()> {
    if let Some(n) = a.network.as_deref() {
        if !matches!(n, "bridge" | "default" | "host" | "none") {
            return Err(anyhow!(
                "invalid --network {n:?}: berth build supports bridge, host and none"
            ));
        }
    }
    let mut empty_ctx = None;
    let (context, mut text) = if a.context == "-" {
        let d = tempfile_dir(root)?;
        let ctx = d.clone();
        empty_ctx = Some(d);
        (ctx, Some(read_stdin()?))
    } else {
        let p = PathBuf::from(&a.context);
        if !p.is_dir() {
            return Err(anyhow!(
                "unable to prepare context: path {:?} not found or not a directory",
                a.context
            ));
        }
        (p, None)
    };
    let dockerfile = match a.file.as_deref() {
        Some("-") => {
            if text.is_none() {
                text = Some(read_stdin()?);
            }
            None
        }
        Some(f) => Some(PathBuf::from(f)),
        None => None,
    };
    let req = BuildRequest {
        context,
        dockerfile,
        dockerfile_text: text,
        tags: a.tag.clone(),
        build_args: build_args(&a.build_arg),
        target: a.target.clone(),
        no_cache: a.no_cache,
        pull: a.pull,
        network: a.network.clone(),
        labels: key_values(&a.label, "--label")?,
        runtime: a.runtime.clone(),
        platform: a.platform.clone(),
    };
    let mut p = Printer {
        quiet: a.quiet,
        at_line_start: true,
    };
    let res = exec::build(root, &req, &mut p);
    if let Some(d) = empty_ctx {
        let _ = std::fs::remove_dir_all(d);
    }
    let id = res?;
    if a.quiet {
        println!("{id}");
    }
    if let Some(f) = &a.iidfile {
        std::fs::write(f, id.to_string()).with_context(|| format!("writing {}", f.display()))?;
    }
    Ok(())
}

/// An empty context for `build -` in the store's tmp dir.
fn tempfile_dir(root: &Path) -> Result<PathBuf> {
    let store = Store::open(root)?;
    let p = store.temp_path("ctx").keep();
    std::fs::create_dir_all(&p).with_context(|| format!("creating {}", p.display()))?;
    Ok(p)
}

fn change(cfg: &mut RunConfig, line: &str) -> std::result::Result<(), String> {
    let mut st = ConfigState {
        config: cfg.clone(),
        ..Default::default()
    };
    apply_change_line(&mut st, line).map_err(|e| e.message)?;
    *cfg = st.config;
    Ok(())
}

#[derive(Args)]
pub struct CommitArgs {
    /// Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR)
    #[arg(short, long)]
    change: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    message: Option<String>,
    /// Author
    #[arg(short, long)]
    author: Option<String>,
    /// Pause the container during commit (default true)
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pause: bool,
    container: String,
    reference: Option<String>,
}

pub fn commit(root: &Path, a: CommitArgs) -> Result<()> {
    let o = CommitOptions {
        container: a.container,
        reference: a.reference,
        message: a.message,
        author: a.author,
        pause: a.pause,
        changes: a.change,
    };
    let id = commit::commit(root, &o, &change)?;
    println!("{id}");
    Ok(())
}

#[derive(Args)]
pub struct ExportArgs {
    /// Write to a file instead of stdout
    #[arg(short, long)]
    output: Option<PathBuf>,
    container: String,
}

pub fn export(root: &Path, a: ExportArgs) -> Result<()> {
    match &a.output {
        Some(p) => {
            let tmp = p.with_extension("berth-partial");
            let mut f = std::fs::File::create(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            if let Err(e) = commit::export(root, &a.container, &mut f) {
                let _ = std::fs::remove_file(&tmp);
                return Err(e.into());
            }
            std::fs::rename(&tmp, p).with_context(|| format!("writing {}", p.display()))?;
        }
        None => {
            use std::io::IsTerminal;
            if std::io::stdout().is_terminal() {
                return Err(anyhow!(
                    "cowardly refusing to save to a terminal. Use the -o flag or redirect"
                ));
            }
            commit::export(root, &a.container, &mut std::io::stdout().lock())?;
        }
    }
    Ok(())
}

#[derive(Args)]
pub struct ImportArgs {
    /// Tarball path, or - for stdin
    file: String,
    /// REPOSITORY[:TAG] to name the image
    reference: Option<String>,
    /// Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR)
    #[arg(short, long)]
    change: Vec<String>,
    /// Commit message for the imported image
    #[arg(short, long)]
    message: Option<String>,
    /// Refuse a tarball that unpacks to more than this (e.g. 8g; default 32g or $BERTH_MAX_SIZE)
    #[arg(long)]
    max_size: Option<String>,
}

pub fn import(root: &Path, a: ImportArgs) -> Result<()> {
    let mut cfg = RunConfig::default();
    for line in &a.change {
        change(&mut cfg, line).map_err(|e| anyhow!("invalid change {line:?}: {e}"))?;
    }
    let name = a.reference.as_deref().map(Reference::parse).transpose()?;
    let limit = SizeLimit::from_flag_or_env(a.max_size.as_deref())?;
    let store = Store::open(root)?;
    let img = if a.file == "-" {
        let stdin = std::io::stdin().lock();
        archive::import_with(
            &store,
            stdin,
            "stdin",
            name.as_ref(),
            &limit,
            cfg,
            a.message,
        )?
    } else {
        let f = std::fs::File::open(&a.file).with_context(|| format!("opening {}", a.file))?;
        archive::import_with(&store, f, &a.file, name.as_ref(), &limit, cfg, a.message)?
    };
    hull::engine::events::object(root, "image", "import", &img.id().to_string(), &[]);
    println!("{}", img.id());
    Ok(())
}
