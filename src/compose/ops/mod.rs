//! The command side of compose: what `berth compose up/down/ps/...` do, as library calls on
//! a loaded `Project` and berth's engine. Nothing here prints: progress goes to the caller's
//! `Sink` as `Event`s, results come back as reports.
//!
//! - `convert`: a service to the engine's `CreateOptions`
//! - `hostcfg`: its HostConfig keys (dns, sysctls, pid, devices, ...) with `berth run`'s checks
//! - `up`: networks, volumes, images, containers in dependency order (idempotent by
//!   `config_hash`), `--wait`; `run` (one-off containers)
//! - `down`: containers, networks, volumes, images of a project
//! - `control`: start/stop/restart/kill/rm/pause/unpause, ps, ls, top, port, images
//! - `logs`: interleaved logs of a project's containers (followed or not)
//! - `images`: pull, push, build

pub mod abort;
pub mod control;
pub mod convert;
pub mod down;
mod hostcfg;
pub mod images;
pub mod logs;
pub mod up;
mod wait;

use std::collections::BTreeSet;
use std::path::Path;

use super::naming::{LABEL_NUMBER, LABEL_ONEOFF, LABEL_PROJECT, LABEL_SERVICE};
use super::ComposeError;
use crate::engine::{container, Container, EngineError};

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Container,
    Network,
    Volume,
    Image,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Container => "Container",
            Kind::Network => "Network",
            Kind::Volume => "Volume",
            Kind::Image => "Image",
        }
    }
}

/// Progress of one object, in docker compose's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Creating,
    Created,
    Recreated,
    Starting,
    Started,
    Running,
    Waiting,
    Healthy,
    Exited(i32),
    Stopping,
    Stopped,
    Removing,
    Removed,
    Killed,
    Paused,
    Unpaused,
    Restarted,
    Pulling,
    Pulled,
    Building,
    Built,
    Pushed,
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Action::Exited(c) => return write!(f, "Exited ({c})"),
            Action::Creating => "Creating",
            Action::Created => "Created",
            Action::Recreated => "Recreated",
            Action::Starting => "Starting",
            Action::Started => "Started",
            Action::Running => "Running",
            Action::Waiting => "Waiting",
            Action::Healthy => "Healthy",
            Action::Stopping => "Stopping",
            Action::Stopped => "Stopped",
            Action::Removing => "Removing",
            Action::Removed => "Removed",
            Action::Killed => "Killed",
            Action::Paused => "Paused",
            Action::Unpaused => "Unpaused",
            Action::Restarted => "Restarted",
            Action::Pulling => "Pulling",
            Action::Pulled => "Pulled",
            Action::Building => "Building",
            Action::Built => "Built",
            Action::Pushed => "Pushed",
        };
        f.write_str(s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Progress {
        kind: Kind,
        name: String,
        action: Action,
    },
    /// Something the user should know that is no error (orphans, ignored settings).
    Warning(String),
}

impl Event {
    pub fn new(kind: Kind, name: &str, action: Action) -> Event {
        Event::Progress {
            kind,
            name: name.to_string(),
            action,
        }
    }
}

/// Where progress goes.
pub type Sink<'a> = &'a mut dyn FnMut(Event);

/// An event sink that drops everything.
pub fn discard(_: Event) {}

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error(transparent)]
    Model(#[from] ComposeError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A failure with the object it concerns named in the message.
    #[error("{0}")]
    Failed(String),
}

impl From<anyhow::Error> for OpError {
    fn from(e: anyhow::Error) -> OpError {
        OpError::Engine(EngineError::from(e))
    }
}

pub type Result<T> = std::result::Result<T, OpError>;

/// `Failed` with a formatted message.
#[macro_export]
macro_rules! compose_fail {
    ($($t:tt)*) => {
        return Err($crate::compose::ops::OpError::Failed(format!($($t)*)))
    };
}

/// A container of a project, with its compose labels read.
#[derive(Debug, Clone)]
pub struct Member {
    pub service: String,
    pub number: u32,
    pub oneoff: bool,
    pub container: Container,
}

/// The containers labelled with `project`, by service then number. One-off (`run`) containers
/// only with `oneoff`.
pub fn project_containers(root: &Path, project: &str, oneoff: bool) -> Result<Vec<Member>> {
    let mut out: Vec<Member> = container::list(root)?
        .into_iter()
        .filter(|c| c.config.labels.get(LABEL_PROJECT).map(String::as_str) == Some(project))
        .filter_map(|c| {
            let l = &c.config.labels;
            let is_oneoff = l.get(LABEL_ONEOFF).map(String::as_str) == Some("True");
            if is_oneoff && !oneoff {
                return None;
            }
            Some(Member {
                service: l.get(LABEL_SERVICE).cloned().unwrap_or_default(),
                number: l
                    .get(LABEL_NUMBER)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                oneoff: is_oneoff,
                container: c,
            })
        })
        .collect();
    out.sort_by(|a, b| (a.oneoff, &a.service, a.number).cmp(&(b.oneoff, &b.service, b.number)));
    Ok(out)
}

/// Only the members of the given services (all when `services` is empty).
pub fn of_services(members: Vec<Member>, services: &BTreeSet<String>) -> Vec<Member> {
    members
        .into_iter()
        .filter(|m| services.is_empty() || services.contains(&m.service))
        .collect()
}

/// Runs `f` on each item in its own thread; results in the items' order.
pub(crate) fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if items.len() <= 1 {
        return items.iter().map(&f).collect();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = items.iter().map(|i| s.spawn(|| f(i))).collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(p) => std::panic::resume_unwind(p),
            })
            .collect()
    })
}
