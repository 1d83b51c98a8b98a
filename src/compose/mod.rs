//! The compose project model: from compose files to a resolved, validated `Project`, following
//! the Compose Specification and docker compose v2. Pure: reads files, starts nothing.
//!
//! Pipeline (as compose-go does it): find files → read `.env` → per file: parse YAML (anchors,
//! merge keys), interpolate variables → merge files in order → type every key (unsupported
//! ones are errors) → defaults (project network) → profiles → validate.
//!
//! What the engine side (`berth compose up/down/ps/...`) calls:
//! - `load_project(&LoadOptions)` once per command (`-f`, `-p`, `--env-file`, `--profile`,
//!   `--project-directory`, the SERVICE arguments, the process env);
//! - `project.set_scale(service, n)` for `--scale`;
//! - `select(&project, services, no_deps)` then `start_order`/`start_levels`/`stop_order`;
//! - per service: `service.replicas` containers named `container_name(project, svc, n)`,
//!   image `naming::service_image`, labels `container_labels` (holding `config_hash`: equal
//!   hash on the running container means leave it alone); `memory_limit`, `cpu_limit`,
//!   `pids`, `restart_policy` fold the two ways compose spells those;
//! - `used_networks`/`used_volumes` of the selection: `project.networks`/`project.volumes`
//!   entries with their engine `name`s (skip `external` ones, but
//!   check they exist) and `naming::network_labels`/`volume_labels`;
//! - `project_yaml(&project)` for `config`, `project.warnings` printed to stderr.

mod conv;
pub mod dotenv;
mod files;
pub mod interpolate;
pub mod merge;
pub mod model;
pub mod naming;
pub mod node;
pub mod ops;
pub mod order;
pub mod output;
mod parts;
pub mod ports;
mod service;
mod toplevel;
mod validate;
pub mod volumes;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use files::{find_compose_file, find_override_file, DEFAULT_FILES, OVERRIDE_FILES};
pub use model::*;
pub use naming::{config_hash, container_labels, container_name, service_image};
pub use order::{select, start_levels, start_order, stop_order, used_networks, used_volumes};
pub use output::project_yaml;

use conv::{child, is_extension, map, string};
use interpolate::{interpolate_tree, Env};
use node::{Map, Node};
use volumes::PathCtx;

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("{file}:{line}:{column}: YAML syntax error: {msg}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        msg: String,
    },
    /// A problem at a key path (`services.web.ports[0]`) or a named thing.
    #[error("{path}: {msg}")]
    Invalid { path: String, msg: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    NotFound(String),
}

impl ComposeError {
    pub fn invalid(path: &str, msg: impl Into<String>) -> ComposeError {
        ComposeError::Invalid {
            path: path.to_string(),
            msg: msg.into(),
        }
    }
}

/// What the command line and environment give the loader.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// The current directory (discovery starts here; `-f`/`--env-file` are relative to it).
    pub cwd: PathBuf,
    /// `--project-directory`; default: the first file's directory.
    pub project_directory: Option<PathBuf>,
    /// `-f`, in order. Empty: `COMPOSE_FILE`, else discovery.
    pub files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--env-file`, in order (later ones win). Empty: `<project dir>/.env` if present.
    pub env_files: Vec<PathBuf>,
    /// `--profile`. Empty: `COMPOSE_PROFILES`.
    pub profiles: Vec<String>,
    /// Services named on the command line: enabled whatever their profiles.
    pub services: Vec<String>,
    /// The process environment; it wins over `.env` values.
    pub environment: BTreeMap<String, String>,
}

impl LoadOptions {
    /// Options with the process's cwd and environment.
    pub fn from_process() -> Result<LoadOptions, ComposeError> {
        let cwd = std::env::current_dir().map_err(|e| ComposeError::Io {
            path: ".".into(),
            source: e,
        })?;
        Ok(LoadOptions {
            cwd,
            environment: std::env::vars().collect(),
            ..LoadOptions::default()
        })
    }
}

fn read(path: &Path) -> Result<String, ComposeError> {
    std::fs::read_to_string(path).map_err(|e| ComposeError::Io {
        path: path.display().to_string(),
        source: e,
    })
}

fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    volumes::normalize(&cwd.join(p))
}

/// The project environment: `.env`/`--env-file` values, overridden by the process's.
pub fn load_env(
    opts: &LoadOptions,
    project_dir: &Path,
) -> Result<BTreeMap<String, String>, ComposeError> {
    let mut files: Vec<(PathBuf, bool)> = opts
        .env_files
        .iter()
        .map(|f| (absolute(&opts.cwd, f), true))
        .collect();
    if files.is_empty() {
        files.push((project_dir.join(".env"), false));
    }
    let mut env: Env = BTreeMap::new();
    for (file, required) in files {
        if !required && !file.exists() {
            continue;
        }
        let text = read(&file)?;
        let lookup = |k: &str| opts.environment.get(k).or_else(|| env.get(k)).cloned();
        let vars = dotenv::parse(&text, &file.display().to_string(), &lookup)?;
        env.extend(vars);
    }
    env.extend(opts.environment.clone());
    Ok(env)
}

/// Loads, merges, resolves and validates a project.
pub fn load_project(opts: &LoadOptions) -> Result<Project, ComposeError> {
    let files = files::config_files(opts)?;
    let project_dir = match &opts.project_directory {
        Some(d) => absolute(&opts.cwd, d),
        None => files[0]
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| opts.cwd.clone()),
    };
    let env = load_env(opts, &project_dir)?;
    let mut warnings = Vec::new();
    let mut merged: Option<Node> = None;
    for file in &files {
        let label = file.display().to_string();
        let mut tree = node::parse_yaml(&read(file)?, &label)?;
        interpolate_tree(&mut tree, "", &env, &mut warnings)?;
        merged = Some(match merged {
            None => merge::strip(tree),
            Some(base) => merge::merge_files(base, tree),
        });
    }
    let top = match merged {
        Some(Node::Map(m)) => m,
        _ => Map::new(),
    };
    let name = project_name(opts, &env, &top, &project_dir)?;
    let mut project = build_project(&top, &name, &project_dir, &env, &mut warnings)?;
    project.config_files = files;
    project.warnings = warnings;
    let profiles = if opts.profiles.is_empty() {
        env.get("COMPOSE_PROFILES")
            .map(|p| {
                p.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    } else {
        opts.profiles.clone()
    };
    validate::apply_profiles(&mut project, &profiles, &opts.services)?;
    // Disabled services are not checked, as compose does not check them.
    validate::validate(&mut project)?;
    Ok(project)
}

/// `-p`, then `COMPOSE_PROJECT_NAME`, then `name:`, then the project directory's name.
fn project_name(
    opts: &LoadOptions,
    env: &Env,
    top: &Map,
    project_dir: &Path,
) -> Result<String, ComposeError> {
    if let Some(n) = &opts.project_name {
        naming::check_project_name(n, "-p")?;
        return Ok(n.clone());
    }
    if let Some(n) = env.get("COMPOSE_PROJECT_NAME").filter(|n| !n.is_empty()) {
        naming::check_project_name(n, "COMPOSE_PROJECT_NAME")?;
        return Ok(n.clone());
    }
    if let Some(n) = top.get("name") {
        let n = string(n, "name")?;
        naming::check_project_name(&n, "name")?;
        return Ok(n);
    }
    let dir = project_dir
        .file_name()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = naming::normalize_project_name(&dir);
    if n.is_empty() {
        return Err(ComposeError::invalid(
            "name",
            format!("cannot derive a project name from directory {dir:?}: use -p or name:"),
        ));
    }
    Ok(n)
}

fn build_project(
    top: &Map,
    name: &str,
    project_dir: &Path,
    env: &Env,
    warnings: &mut Vec<String>,
) -> Result<Project, ComposeError> {
    let home = env.get("HOME").map(String::as_str);
    let paths = PathCtx {
        base: project_dir,
        home,
    };
    let mut p = Project {
        name: name.to_string(),
        working_dir: project_dir.to_path_buf(),
        ..Project::default()
    };
    for (k, v) in top {
        match k.as_str() {
            "name" | "services" => {}
            "version" => warnings.push("the top-level `version` is obsolete and ignored".into()),
            "networks" => p.networks = toplevel::parse_networks(v, k, name)?,
            "volumes" => p.volumes = toplevel::parse_volumes(v, k, name)?,
            "secrets" => p.secrets = toplevel::parse_file_objects(v, k, name, &paths, false)?,
            "configs" => p.configs = toplevel::parse_file_objects(v, k, name, &paths, true)?,
            k if is_extension(k) => {}
            _ => return Err(conv::unsupported("", k)),
        }
    }
    let ctx = service::Ctx { paths, env };
    if let Some(services) = top.get("services") {
        for (sname, body) in map(services, "services")? {
            if is_extension(sname) {
                continue;
            }
            let path = child("services", sname);
            if !sname
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            {
                return Err(ComposeError::invalid(&path, "invalid service name"));
            }
            let mut s = service::parse_service(sname, body, &path, &ctx)?;
            if s.networks.is_empty() && s.network_mode.is_none() {
                s.networks
                    .insert("default".into(), ServiceNetwork::default());
            }
            p.services.insert(sname.clone(), s);
        }
    }
    let uses_default = p
        .services
        .values()
        .any(|s| s.networks.contains_key("default"));
    if uses_default && !p.networks.contains_key("default") {
        p.networks.insert(
            "default".into(),
            Network {
                name: naming::scoped_name(name, "default"),
                ..Network::default()
            },
        );
    }
    Ok(p)
}
