//! `up --abort-on-container-exit` / `--exit-code-from`: the first of the project's containers
//! to exit for good (a restarting one has not), watched while `up` follows the logs.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{project_containers, Result};
use crate::engine::{container, Container};

/// A container that exited, with its compose names.
#[derive(Debug, Clone)]
pub struct Exited {
    pub service: String,
    /// docker compose's log prefix and its "exited with code" line: `<container name>`.
    pub container: String,
    pub exit_code: i32,
}

fn exited(c: &Container) -> Option<i32> {
    let now = container::reload(c).ok()?;
    (!now.is_running() && !now.state.finished_at.is_empty()).then_some(now.state.exit_code)
}

/// Polls `containers` (service, container) until one has exited, or `stop` or `done` is set
/// (then None). Sets `done` on return, so a log follower given `done` as its stop flag ends
/// too; the follower sets it when it fails, so this does not poll on alone.
pub fn first_exit(
    containers: &[(String, Container)],
    stop: &AtomicBool,
    done: &AtomicBool,
) -> Option<Exited> {
    let found = loop {
        if stop.load(Ordering::Relaxed) || done.load(Ordering::Relaxed) {
            break None;
        }
        let hit = containers.iter().find_map(|(service, c)| {
            exited(c).map(|exit_code| Exited {
                service: service.clone(),
                container: c.config.name.clone(),
                exit_code,
            })
        });
        if hit.is_some() {
            break hit;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    done.store(true, Ordering::Relaxed);
    found
}

/// `--exit-code-from SERVICE`: the exit code of the service's first container, once stopped.
pub fn exit_code_of(root: &Path, project: &str, service: &str) -> Result<i32> {
    let members = project_containers(root, project, false)?;
    let Some(m) = members.iter().find(|m| m.service == service) else {
        crate::compose_fail!("no container of service {service:?} to take the exit code from");
    };
    Ok(container::reload(&m.container)?.state.exit_code)
}
