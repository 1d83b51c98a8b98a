//! `berth build` without the engine: Dockerfile parsing, variable expansion, ARG scoping, stage
//! selection, image-config evolution, `.dockerignore`, build-context hashing, cache keys and the
//! build plan the executor walks.
//!
//! Everything here is library code over data (and, for the context, read-only file access
//! confined to the context directory), so it is unit-tested without root.
//!
//! What the executor does with it:
//! 1. [`context::Tree::open_context`] on the context dir; read the Dockerfile itself directly
//!    (docker always "sends" it, whatever `.dockerignore` says).
//! 2. [`plan::plan`] with the text, [`plan::BuildOptions`] and a base resolver that pulls/looks up
//!    an image and returns its [`config::RunConfig`] (parsed from the config's `config`
//!    key). Print [`plan::Plan::warnings`].
//! 3. [`plan::resolve_context_sources`]: every context COPY/ADD resolved and hashed up front.
//! 4. Per stage of `plan.stages` (dependencies come first; the last is the target): start the key
//!    chain with [`cache::base_key`], then per step [`cache::step_key`] and, on a miss, execute:
//!    `Run` as a container (argv/env/user/workdir/network; `script` mounted at `/dev/pipes`),
//!    `Copy` from the context (resolved files), a stage's rootfs or an image
//!    ([`context::Tree::open_root`] + `resolve` there too), `Workdir` as mkdir-if-missing,
//!    `ConfigOnly` as nothing. History: `Step::created_by` (`CopyStep::created_by` with the hash),
//!    `empty_layer` for config-only steps.
//! 5. The image config is `StagePlan::state` (`config`, `author`) of the target.
//!
//! `commit -c` / `import -c` use [`config::apply_change_line`].

pub mod args;
pub mod cache;
pub mod config;
pub mod context;
pub mod exec;
pub mod expand;
pub mod glob;
pub mod health;
pub mod ignore;
pub mod parse;
pub mod plan;
pub mod plan_run;
pub mod stages;

#[cfg(test)]
mod e2e_tests;

use std::fmt;

/// A build error, naming the Dockerfile line when there is one (`Dockerfile:7: ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    /// 1-based line of the instruction, 0 when the error is not tied to a line.
    pub line: usize,
    pub message: String,
}

impl BuildError {
    pub fn at(line: usize, message: impl Into<String>) -> BuildError {
        BuildError {
            line,
            message: message.into(),
        }
    }

    pub fn general(message: impl Into<String>) -> BuildError {
        BuildError::at(0, message)
    }

    /// The message with the Dockerfile's own name (`-f app.Dockerfile`): `app.Dockerfile:7: ...`.
    pub fn in_file(&self, name: &str) -> String {
        if self.line == 0 {
            self.message.clone()
        } else {
            format!("{name}:{}: {}", self.line, self.message)
        }
    }

    /// Attaches a line to an error that has none yet.
    pub fn or_line(mut self, line: usize) -> BuildError {
        if self.line == 0 {
            self.line = line;
        }
        self
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "Dockerfile:{}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for BuildError {}

pub type Result<T> = std::result::Result<T, BuildError>;
