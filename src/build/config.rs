//! Image-config evolution: applying (expanded) instructions to docker's container config, the
//! history `created_by` text, and `commit -c` / `import -c` changes.
//!
//! [`RunConfig`] is the `config` object of an image config with docker's field names. It is a
//! superset of `image::types::RunConfig` (which lacks Healthcheck, Shell and OnBuild): read it
//! from the stored config bytes' `config` key and write it back the same way.
//!
//! History uses the classic docker builder's `created_by` shapes, which `docker history` users
//! know: `/bin/sh -c #(nop)  ENV A=1` for config-only steps, `/bin/sh -c apt-get ...` for RUN
//! (prefixed `|N K=V ...` with the build args in effect), `/bin/sh -c #(nop) COPY file:<hash> in
//! /dst ` for COPY/ADD (see [`copy_created_by`]).

use std::collections::BTreeMap;

use super::expand::process_word;
use super::parse::{self, CmdForm, Healthcheck, Kind};
use super::{BuildError, Result};
use crate::image::types::{HealthConfig, RunConfig};

pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

impl RunConfig {
    pub fn env_get(&self, name: &str) -> Option<String> {
        self.env.as_ref()?.iter().rev().find_map(|e| {
            let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
            (k == name).then(|| v.to_string())
        })
    }

    /// Sets a variable in place (keeping the order docker keeps).
    pub fn env_set(&mut self, name: &str, value: &str) {
        let env = self.env.get_or_insert_with(Vec::new);
        let entry = format!("{name}={value}");
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == name)
        {
            Some(e) => *e = entry,
            None => env.push(entry),
        }
    }

    pub fn shell(&self) -> Vec<String> {
        match &self.shell {
            Some(s) if !s.is_empty() => s.clone(),
            _ => DEFAULT_SHELL.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The argv of a shell- or exec-form command under this config's SHELL.
    pub fn command(&self, cmd: &CmdForm) -> Vec<String> {
        match cmd {
            CmdForm::Exec(v) => v.clone(),
            CmdForm::Shell(s) => {
                let mut argv = self.shell();
                argv.push(s.clone());
                argv
            }
        }
    }
}

/// A config-changing instruction with every expandable value expanded.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    Expose(Vec<String>),
    Volume(Vec<String>),
    Workdir(String),
    User(String),
    StopSignal(String),
    Cmd(CmdForm),
    Entrypoint(CmdForm),
    Shell(Vec<String>),
    Healthcheck(HealthConfig),
    OnBuild(String),
    Maintainer(String),
}

/// The config of a stage being built, plus the state docker's dispatcher keeps beside it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfigState {
    pub config: RunConfig,
    /// CMD was set in this stage: a later ENTRYPOINT keeps it (otherwise ENTRYPOINT resets CMD).
    pub cmd_set: bool,
    /// MAINTAINER sets the image's `author`.
    pub author: Option<String>,
}

/// Converts a parsed instruction into a [`Change`], expanding the instructions docker expands.
/// Returns `None` for instructions that are not config-only (FROM, RUN, COPY, ADD, ARG).
pub fn to_change(
    kind: &Kind,
    vars: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> std::result::Result<Option<Change>, String> {
    let x = |w: &str| process_word(w, vars, escape);
    let pairs = |p: &[(String, String)]| -> std::result::Result<Vec<(String, String)>, String> {
        p.iter().map(|(k, v)| Ok((x(k)?, x(v)?))).collect()
    };
    let list = |l: &[String]| -> std::result::Result<Vec<String>, String> {
        l.iter().map(|w| x(w)).collect()
    };
    Ok(Some(match kind {
        Kind::Env(p) => Change::Env(pairs(p)?),
        Kind::Label(p) => Change::Label(pairs(p)?),
        Kind::Expose(l) => Change::Expose(list(l)?),
        Kind::Volume(l) => Change::Volume(list(l)?),
        Kind::Workdir(w) => Change::Workdir(x(w)?),
        Kind::User(u) => Change::User(x(u)?),
        Kind::StopSignal(s) => Change::StopSignal(x(s)?),
        Kind::Cmd(c) => Change::Cmd(c.clone()),
        Kind::Entrypoint(c) => Change::Entrypoint(c.clone()),
        Kind::Shell(s) => Change::Shell(s.clone()),
        Kind::Healthcheck(Healthcheck::None) => Change::Healthcheck(HealthConfig::none()),
        Kind::Healthcheck(Healthcheck::Cmd { flags, cmd }) => {
            Change::Healthcheck(HealthConfig::from_cmd(flags, cmd)?)
        }
        Kind::OnBuild(_, raw) => Change::OnBuild(raw.clone()),
        Kind::Maintainer(m) => Change::Maintainer(m.clone()),
        _ => return Ok(None),
    }))
}

/// Applies a change; returns the text for history (`ENV A=1`, `CMD ["a" "b"]`).
pub fn apply(state: &mut ConfigState, change: &Change) -> std::result::Result<String, String> {
    let c = &mut state.config;
    Ok(match change {
        Change::Env(pairs) => {
            for (k, v) in pairs {
                c.env_set(k, v);
            }
            format!("ENV {}", join_pairs(pairs))
        }
        Change::Label(pairs) => {
            let labels = c.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in pairs {
                labels.insert(k.clone(), v.clone());
            }
            format!("LABEL {}", join_pairs(pairs))
        }
        Change::Expose(ports) => {
            let set = c.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in ports {
                for key in expand_port(p)? {
                    set.insert(key, serde_json::json!({}));
                }
            }
            format!("EXPOSE {}", ports.join(" "))
        }
        Change::Volume(vols) => {
            let set = c.volumes.get_or_insert_with(BTreeMap::new);
            for v in vols {
                if v.trim().is_empty() {
                    return Err("VOLUME specified can not be an empty string".to_string());
                }
                set.insert(v.clone(), serde_json::json!({}));
            }
            format!("VOLUME [{}]", vols.join(" "))
        }
        Change::Workdir(w) => {
            let dir = join_workdir(c.working_dir.as_deref(), w);
            c.working_dir = Some(dir.clone());
            format!("WORKDIR {dir}")
        }
        Change::User(u) => {
            c.user = Some(u.clone());
            format!("USER {u}")
        }
        Change::StopSignal(s) => {
            validate_signal(s)?;
            c.stop_signal = Some(s.clone());
            format!("STOPSIGNAL {s}")
        }
        Change::Cmd(cmd) => {
            let argv = c.command(cmd);
            c.cmd = Some(argv.clone());
            state.cmd_set = true;
            format!("CMD {}", go_quote_list(&argv))
        }
        Change::Entrypoint(cmd) => {
            let argv = match cmd {
                // `ENTRYPOINT ""` clears it, as docker does.
                CmdForm::Shell(s) if s.is_empty() => Vec::new(),
                _ => c.command(cmd),
            };
            c.entrypoint = (!argv.is_empty()).then(|| argv.clone());
            if !state.cmd_set {
                c.cmd = None;
            }
            format!("ENTRYPOINT {}", go_quote_list(&argv))
        }
        Change::Shell(s) => {
            c.shell = Some(s.clone());
            format!("SHELL [{}]", s.join(" "))
        }
        Change::Healthcheck(h) => {
            c.healthcheck = Some(h.clone());
            format!("HEALTHCHECK {}", go_quote_list(&h.test))
        }
        Change::OnBuild(t) => {
            c.on_build.get_or_insert_with(Vec::new).push(t.clone());
            format!("ONBUILD {t}")
        }
        Change::Maintainer(m) => {
            state.author = Some(m.clone());
            format!("MAINTAINER {m}")
        }
    })
}

/// `created_by` of a config-only step under the stage's shell.
pub fn nop_created_by(config: &RunConfig, text: &str) -> String {
    format!("{} #(nop)  {text}", config.shell().join(" "))
}

/// `created_by` of a RUN: `|N K=V ... <argv>` (the prefix only when build args are in effect).
pub fn run_created_by(argv: &[String], build_args: &[(String, String)]) -> String {
    let cmd = argv.join(" ");
    if build_args.is_empty() {
        return cmd;
    }
    let args: Vec<String> = build_args.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("|{} {} {cmd}", args.len(), args.join(" "))
}

/// `created_by` of COPY/ADD, docker's shape: `<shell> #(nop) COPY file:<hash> in <dest> `.
/// `kind` is `file` for a single file, `dir` for one directory, `multi` for several sources.
pub fn copy_created_by(
    config: &RunConfig,
    instr: &str,
    kind: &str,
    hash_hex: &str,
    dest: &str,
) -> String {
    format!(
        "{} #(nop) {instr} {kind}:{hash_hex} in {dest} ",
        config.shell().join(" ")
    )
}

fn join_pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Go's `%q` of a `[]string`: `["a" "b c"]`.
fn go_quote_list(v: &[String]) -> String {
    let quoted: Vec<String> = v
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    format!("[{}]", quoted.join(" "))
}

/// WORKDIR: absolute paths replace, relative ones join the previous directory; cleaned.
pub fn join_workdir(prev: Option<&str>, w: &str) -> String {
    let joined = if w.starts_with('/') {
        w.to_string()
    } else {
        format!("{}/{w}", prev.unwrap_or("/"))
    };
    clean_path(&joined)
}

/// Lexical cleaning of an absolute path (Go's `path.Clean`).
pub fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `80`, `80/tcp`, `8000-8002/udp` → `["8000/udp", ...]` (docker's nat.ParsePortSpecs).
pub fn expand_port(spec: &str) -> std::result::Result<Vec<String>, String> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let num = |s: &str| {
        s.parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("invalid containerPort: {s}"))
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => (num(ports)?, num(ports)?),
    };
    if hi < lo {
        return Err(format!(
            "invalid range specified for containerPort: {ports}"
        ));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

fn validate_signal(s: &str) -> std::result::Result<(), String> {
    const NAMES: [&str; 31] = [
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV",
        "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU",
        "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR",
    ];
    let name = s.strip_prefix("SIG").unwrap_or(s);
    let rt = name
        .strip_prefix("RTMIN")
        .or_else(|| name.strip_prefix("RTMAX"))
        .is_some();
    let ok = s.parse::<u32>().is_ok_and(|n| (1..=64).contains(&n)) || NAMES.contains(&name) || rt;
    if ok {
        Ok(())
    } else {
        Err(format!("Invalid signal: {s}"))
    }
}

/// The instructions `commit -c` and `import -c` accept (docker's list).
pub const COMMIT_CHANGES: [&str; 9] = [
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// `commit -c` / `import -c`: parses one instruction line, expands it against the config's Env
/// (as docker does) and applies it. Returns the history text.
pub fn apply_change_line(state: &mut ConfigState, line: &str) -> Result<String> {
    let ins = parse::parse_line(line).map_err(|e| BuildError::general(e.message))?;
    let name = ins.kind.name();
    if !COMMIT_CHANGES.contains(&name) {
        return Err(BuildError::general(format!(
            "{name} is not a valid change command"
        )));
    }
    let config = state.config.clone();
    let change = to_change(&ins.kind, &|n| config.env_get(n), '\\')
        .map_err(BuildError::general)?
        .ok_or_else(|| BuildError::general(format!("{name} is not a valid change command")))?;
    apply(state, &change).map_err(BuildError::general)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
