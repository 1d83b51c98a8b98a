//! The build plan: for the stages the target needs (dependencies first), the ordered, fully
//! expanded steps the executor walks, and each stage's final image config.
//!
//! Base-image configs come from the caller (`resolve_base`), since their Env, Shell, WorkingDir
//! and ONBUILD triggers shape the plan; planning itself touches no file or network.

use std::collections::BTreeMap;

use super::args::{self, Args};
use super::config::{self, ConfigState};
use super::context::{Resolved, Tree};
use super::expand::{process_heredoc, process_word};
use super::parse::{self, CopyArgs, Instruction, Kind};
use super::plan_run::{plan_run, Planned};
use super::stages::{self, Stage};
use super::{BuildError, Result};
use crate::image::types::Platform;
use crate::image::types::RunConfig;

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    /// `--platform`; the host's when `None`.
    pub platform: Option<Platform>,
    /// `--label`: applied to the final image.
    pub labels: BTreeMap<String, String>,
}

/// Looks up a base image's config (pulling if needed): `(reference, platform)`.
pub type ResolveBase<'a> =
    &'a mut dyn FnMut(&str, &Platform) -> std::result::Result<RunConfig, String>;

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The needed stages in build order; the last one is the target.
    pub stages: Vec<StagePlan>,
    /// Non-fatal messages (e.g. unused `--build-arg`), for the caller to print.
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn target(&self) -> &StagePlan {
        // plan() never returns an empty stage list.
        &self.stages[self.stages.len() - 1]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Base {
    Scratch,
    Image(String),
    /// A previous stage (its index in the Dockerfile).
    Stage(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct StagePlan {
    pub index: usize,
    pub name: Option<String>,
    pub base: Base,
    pub platform: Platform,
    pub steps: Vec<Step>,
    /// The config (and author) of the stage's image after the last step.
    pub state: ConfigState,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub line: usize,
    /// What the step prints: the instruction as written.
    pub display: String,
    pub kind: StepKind,
    /// History `created_by`; for COPY/ADD use [`CopyStep::created_by`] once the hash is known.
    pub created_by: String,
    /// Canonical expanded text for the cache key (see `cache`).
    pub cache_text: String,
}

impl Step {
    /// FROM and config-only steps never make a layer (history `empty_layer: true`, and FROM no
    /// history entry of its own). WORKDIR is empty-layer only when the directory existed.
    pub fn is_config_only(&self) -> bool {
        matches!(self.kind, StepKind::ConfigOnly | StepKind::From(_))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    From(Base),
    Run(RunStep),
    Copy(CopyStep),
    /// WORKDIR: create the directory if missing (mode 0755, owned by the current USER as
    /// BuildKit does); a layer only when something was created.
    Workdir {
        path: String,
        /// The USER in effect (`user[:group]`), owner of the directories WORKDIR creates.
        user: Option<String>,
    },
    /// Changes only the config (already folded into `StagePlan::state`); no layer.
    ConfigOnly,
}

#[derive(Debug, Clone, PartialEq)]
pub struct InlineFile {
    pub name: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunStep {
    pub argv: Vec<String>,
    /// The process environment: config Env, then build args ENV does not override, then proxies.
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: String,
    /// `--network=default|none|host`.
    pub network: Option<String>,
    /// `--mount` options as key/value maps (`type`, `from`, `target`, ...), not yet executed.
    pub mounts: Vec<BTreeMap<String, String>>,
    /// A single heredoc starting with `#!`: mount it read-only at `/dev/pipes/<name>` (mode
    /// 0755); `argv` runs it (buildkit's behaviour).
    pub script: Option<InlineFile>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CopyFrom {
    Context,
    Stage(usize),
    Image(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CopyStep {
    pub add: bool,
    pub from: CopyFrom,
    /// Expanded source paths/patterns (relative to the context or the source root), or URLs (ADD).
    pub sources: Vec<String>,
    /// Heredoc sources, written as files named `name` into the destination.
    pub inline: Vec<InlineFile>,
    /// Absolute destination (joined to WORKDIR); a trailing `/` means "into this directory".
    pub dest: String,
    pub chown: Option<String>,
    /// Validated octal mode.
    pub chmod: Option<u32>,
    pub link: bool,
    pub checksum: Option<String>,
    /// The shell at this step, for `created_by`.
    pub shell: Vec<String>,
}

impl CopyStep {
    pub fn instruction(&self) -> &'static str {
        if self.add {
            "ADD"
        } else {
            "COPY"
        }
    }

    /// Docker's shape; `kind` is `file`, `dir` or `multi`, `hash_hex` the sources' content hash.
    pub fn created_by(&self, kind: &str, hash_hex: &str) -> String {
        let c = RunConfig {
            shell: Some(self.shell.clone()),
            ..Default::default()
        };
        config::copy_created_by(&c, self.instruction(), kind, hash_hex, &self.dest)
    }
}

/// Plans a build of `dockerfile` text.
pub fn plan(dockerfile: &str, opts: &BuildOptions, resolve_base: ResolveBase<'_>) -> Result<Plan> {
    let df = parse::parse(dockerfile)?;
    let (globals, stage_list) = stages::split(&df)?;
    let host = args::host_platform();
    let target_platform = opts.platform.clone().unwrap_or_else(|| host.clone());
    let mut args = Args::new(
        opts.build_args.clone(),
        args::platform_args(&target_platform, &host),
    );
    for g in &globals {
        if let Kind::Arg(list) = &g.kind {
            for (name, default) in list {
                args.declare_global(name, default.as_deref(), df.escape, g.line)?;
            }
        }
    }
    let global_expand = |w: &str, line: usize| -> Result<String> {
        process_word(w, &|n| args.global_lookup(n), df.escape).map_err(|e| BuildError::at(line, e))
    };
    let deps = stage_list
        .iter()
        .map(|s| stages::deps(s, &stage_list, &global_expand))
        .collect::<Result<Vec<_>>>()?;
    let target = stages::target(&stage_list, opts.target.as_deref())?;
    let order = stages::build_order(&stage_list, &deps, target)?;

    let mut planned: Vec<StagePlan> = Vec::new();
    for i in order {
        let ctx = StageCtx {
            stages: &stage_list,
            planned: &planned,
            escape: df.escape,
            platform: &target_platform,
        };
        let mut sp = plan_stage(&ctx, &stage_list[i], &mut args, resolve_base)?;
        if i == target && !opts.labels.is_empty() {
            let labels = sp.state.config.labels.get_or_insert_with(BTreeMap::new);
            labels.extend(opts.labels.clone());
        }
        planned.push(sp);
    }
    Ok(Plan {
        stages: planned,
        warnings: args.warnings(),
    })
}

struct StageCtx<'a> {
    stages: &'a [Stage],
    planned: &'a [StagePlan],
    escape: char,
    platform: &'a Platform,
}

/// The variables a stage's instructions see: ENV wins over ARG.
struct Vars {
    args: Vec<(String, Option<String>)>,
}

impl Vars {
    fn lookup(&self, config: &RunConfig, name: &str) -> Option<String> {
        config.env_get(name).or_else(|| {
            self.args
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| v.clone())
        })
    }

    /// Build args in effect for RUN (declared, with a value, not overridden by ENV).
    fn run_args(&self, config: &RunConfig) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (n, v) in &self.args {
            if let Some(v) = v {
                if config.env_get(n).is_none() {
                    out.retain(|(k, _)| k != n);
                    out.push((n.clone(), v.clone()));
                }
            }
        }
        out
    }
}

fn plan_stage(
    ctx: &StageCtx<'_>,
    stage: &Stage,
    args: &mut Args,
    resolve_base: ResolveBase<'_>,
) -> Result<StagePlan> {
    let gx = |w: &str| {
        process_word(w, &|n| args.global_lookup(n), ctx.escape)
            .map_err(|e| BuildError::at(stage.line, e))
    };
    let base_name = gx(&stage.base)?;
    if base_name.is_empty() {
        return Err(BuildError::at(
            stage.line,
            "base name (FROM) should not be blank",
        ));
    }
    let platform = match stage.from_flags.iter().find(|f| f.name == "platform") {
        Some(f) => {
            let p = gx(f.value.as_deref().unwrap_or(""))?;
            Platform::parse(&p).map_err(|e| BuildError::at(stage.line, e.to_string()))?
        }
        None => ctx.platform.clone(),
    };
    let (base, mut state) = if base_name.eq_ignore_ascii_case("scratch") {
        (Base::Scratch, ConfigState::default())
    } else if let Some(i) = stages::find_by_name(ctx.stages, &base_name) {
        let parent = ctx.planned.iter().find(|p| p.index == i).ok_or_else(|| {
            BuildError::at(
                stage.line,
                format!("stage {base_name} is not built before this one"),
            )
        })?;
        let config = parent.state.config.clone();
        (
            Base::Stage(i),
            ConfigState {
                config,
                cmd_set: false,
                author: parent.state.author.clone(),
            },
        )
    } else {
        let config = resolve_base(&base_name, &platform)
            .map_err(|e| BuildError::at(stage.line, format!("{base_name}: {e}")))?;
        (
            Base::Image(base_name.clone()),
            ConfigState {
                config,
                ..Default::default()
            },
        )
    };
    let mut steps = vec![Step {
        line: stage.line,
        display: from_display(stage),
        kind: StepKind::From(base.clone()),
        created_by: String::new(),
        cache_text: format!("FROM {base_name} {}", args::platform_string(&platform)),
    }];
    let mut vars = Vars { args: Vec::new() };
    // ONBUILD triggers of the base run first, then are not inherited further.
    let triggers = state.config.on_build.take().unwrap_or_default();
    let mut instructions: Vec<(Instruction, String)> = Vec::new();
    for t in &triggers {
        let mut ins = parse::parse_line(t).map_err(|e| {
            BuildError::at(stage.line, format!("ONBUILD trigger {t:?}: {}", e.message))
        })?;
        ins.line = stage.line;
        instructions.push((ins, format!("{t} (ONBUILD trigger)")));
    }
    instructions.extend(
        stage
            .instructions
            .iter()
            .map(|i| (i.clone(), i.original.clone())),
    );
    for (ins, display) in instructions {
        let step = plan_instruction(ctx, &ins, &mut state, &mut vars, args)
            .map_err(|e| e.or_line(ins.line))?;
        let (kind, created_by, cache_text) = step;
        steps.push(Step {
            line: ins.line,
            display,
            kind,
            created_by,
            cache_text,
        });
    }
    Ok(StagePlan {
        index: stage.index,
        name: stage.name.clone(),
        base,
        platform,
        steps,
        state,
    })
}

fn from_display(stage: &Stage) -> String {
    let mut s = String::from("FROM ");
    for f in &stage.from_flags {
        s.push_str(&format!(
            "--{}={} ",
            f.name,
            f.value.as_deref().unwrap_or("")
        ));
    }
    s.push_str(&stage.base);
    if let Some(n) = &stage.name {
        s.push_str(&format!(" AS {n}"));
    }
    s
}

fn plan_instruction(
    ctx: &StageCtx<'_>,
    ins: &Instruction,
    state: &mut ConfigState,
    vars: &mut Vars,
    args: &mut Args,
) -> Result<Planned> {
    let line = ins.line;
    let esc = ctx.escape;
    match &ins.kind {
        Kind::Arg(list) => {
            let mut texts = Vec::new();
            for (name, default) in list {
                let default = match default {
                    Some(d) => Some(
                        process_word(d, &|n| vars.lookup(&state.config, n), esc)
                            .map_err(|e| BuildError::at(line, e))?,
                    ),
                    None => None,
                };
                let value = args.stage_value(name, default);
                texts.push(match &value {
                    Some(v) => format!("{name}={v}"),
                    None => name.clone(),
                });
                vars.args.push((name.clone(), value));
            }
            let text = format!("ARG {}", texts.join(" "));
            Ok((
                StepKind::ConfigOnly,
                config::nop_created_by(&state.config, &text),
                text,
            ))
        }
        Kind::Run {
            flags,
            cmd,
            heredocs,
        } => {
            let st: &ConfigState = state;
            let run_args = vars.run_args(&st.config);
            plan_run(flags, cmd, heredocs, st, &run_args, args.proxy_env(), |w| {
                process_word(w, &|n| vars.lookup(&st.config, n), esc)
            })
        }
        Kind::Copy(a) | Kind::Add(a) => {
            let add = matches!(ins.kind, Kind::Add(_));
            let lookup = |n: &str| vars.lookup(&state.config, n);
            let step = plan_copy(ctx, a, add, state, &lookup, line)?;
            let text = copy_cache_text(&step);
            Ok((StepKind::Copy(step), String::new(), text))
        }
        Kind::From { .. } => Err(BuildError::at(line, "unexpected FROM")),
        kind => {
            let change = config::to_change(kind, &|n| vars.lookup(&state.config, n), esc)
                .map_err(|e| BuildError::at(line, e))?
                .ok_or_else(|| {
                    BuildError::at(line, format!("{} cannot be planned", kind.name()))
                })?;
            let text = config::apply(state, &change).map_err(|e| BuildError::at(line, e))?;
            let created_by = config::nop_created_by(&state.config, &text);
            let step = match kind {
                Kind::Workdir(_) => StepKind::Workdir {
                    path: state
                        .config
                        .working_dir
                        .clone()
                        .unwrap_or_else(|| "/".into()),
                    user: state.config.user.clone().filter(|u| !u.is_empty()),
                },
                _ => StepKind::ConfigOnly,
            };
            Ok((step, created_by, text))
        }
    }
}

fn plan_copy(
    ctx: &StageCtx<'_>,
    a: &CopyArgs,
    add: bool,
    state: &ConfigState,
    lookup: &dyn Fn(&str) -> Option<String>,
    line: usize,
) -> Result<CopyStep> {
    let x = |w: &str| process_word(w, lookup, ctx.escape).map_err(|e| BuildError::at(line, e));
    let flag = |name: &str| -> Result<Option<String>> {
        a.flags
            .iter()
            .rev()
            .find(|f| f.name == name)
            .map(|f| x(f.value.as_deref().unwrap_or("")))
            .transpose()
    };
    let from = match flag("from")? {
        None => CopyFrom::Context,
        Some(v) => match stages::resolve_from(ctx.stages, &v, line)? {
            Some(i) if ctx.planned.iter().any(|p| p.index == i) => CopyFrom::Stage(i),
            Some(_) => {
                return Err(BuildError::at(line, format!("--from={v}: stage is not built before this one (a stage cannot copy from itself or from a later stage through a variable set inside the stage)")))
            }
            None => CopyFrom::Image(v),
        },
    };
    let chmod = match flag("chmod")? {
        Some(m) => Some(
            u32::from_str_radix(&m, 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| {
                    BuildError::at(
                        line,
                        format!("invalid chmod parameter: {m:?} (octal mode expected)"),
                    )
                })?,
        ),
        None => None,
    };
    let mut sources = Vec::new();
    let mut inline = Vec::new();
    for s in &a.sources {
        let doc = parse::heredoc_word(s)
            .and_then(|(name, _, _)| a.heredocs.iter().find(|h| h.name == name));
        match doc {
            Some(h) if !a.json => {
                let body = h.body();
                let content = if h.expand {
                    process_heredoc(&body, lookup, ctx.escape)
                        .map_err(|e| BuildError::at(line, e))?
                } else {
                    body
                };
                inline.push(InlineFile {
                    name: h.name.clone(),
                    content,
                });
            }
            // Docker expands the JSON form too.
            _ => sources.push(x(s)?),
        }
    }
    if !add && sources.iter().any(|s| is_url(s)) {
        return Err(BuildError::at(line, "COPY does not take URLs: use ADD"));
    }
    let raw_dest = x(&a.dest)?;
    let mut dest = config::join_workdir(state.config.working_dir.as_deref(), &raw_dest);
    let into_dir = raw_dest.ends_with('/') || raw_dest == "." || raw_dest.ends_with("/.");
    if into_dir && dest != "/" {
        dest.push('/');
    }
    if sources.len() + inline.len() > 1 && !into_dir {
        return Err(BuildError::at(line, format!("When using {} with more than one source file, the destination must be a directory and end with a /", if add { "ADD" } else { "COPY" })));
    }
    Ok(CopyStep {
        add,
        from,
        sources,
        inline,
        dest,
        chown: flag("chown")?,
        chmod,
        link: a
            .flags
            .iter()
            .any(|f| f.name == "link" && f.value.as_deref() != Some("false")),
        checksum: flag("checksum")?,
        shell: state.config.shell(),
    })
}

fn copy_cache_text(c: &CopyStep) -> String {
    let from = match &c.from {
        CopyFrom::Context => "context".to_string(),
        CopyFrom::Stage(i) => format!("stage:{i}"),
        CopyFrom::Image(r) => format!("image:{r}"),
    };
    let inline: Vec<String> = c
        .inline
        .iter()
        .map(|f| format!("{}={:?}", f.name, f.content))
        .collect();
    format!(
        "{} from={from} src={:?} inline={inline:?} dest={} chown={:?} chmod={:?} link={} checksum={:?}",
        c.instruction(), c.sources, c.dest, c.chown, c.chmod, c.link, c.checksum
    )
}

/// Resolves and hashes the context sources of every COPY/ADD in the plan up front, so a missing
/// source fails the build (naming its line) before any RUN, and the cache keys are ready.
/// Keyed by (stage index in `plan.stages`, step index). URL sources of ADD are left out.
pub fn resolve_context_sources(
    plan: &Plan,
    tree: &Tree,
) -> Result<BTreeMap<(usize, usize), Resolved>> {
    let mut out = BTreeMap::new();
    for (si, sp) in plan.stages.iter().enumerate() {
        for (i, step) in sp.steps.iter().enumerate() {
            let StepKind::Copy(c) = &step.kind else {
                continue;
            };
            if c.from != CopyFrom::Context {
                continue;
            }
            let local: Vec<String> = c
                .sources
                .iter()
                .filter(|s| !(c.add && is_url(s)))
                .cloned()
                .collect();
            if local.is_empty() {
                continue;
            }
            out.insert((si, i), tree.resolve(&local, c.instruction(), step.line)?);
        }
    }
    Ok(out)
}

/// ADD downloads these instead of reading the context.
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
