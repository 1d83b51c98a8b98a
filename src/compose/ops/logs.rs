//! Interleaved logs of a project's containers: one reader thread per container, lines handed
//! to the caller as they come. Followed until every container stopped or `stop` is set.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use super::{of_services, project_containers, Result};
use crate::compose::model::Project;
use crate::engine::{container, logs};

/// One log line of one container.
#[derive(Debug, Clone)]
pub struct LogLine {
    /// `service-N` (docker compose's prefix), the container name for a one-off.
    pub source: String,
    pub service: String,
    pub stream: String,
    pub time: String,
    pub text: String,
}

#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    pub services: Vec<String>,
    pub follow: bool,
    pub tail: Option<usize>,
}

/// Streams the logs of the project's containers to `emit`.
pub fn logs(
    root: &Path,
    p: &Project,
    o: &LogsOptions,
    stop: &AtomicBool,
    emit: &mut dyn FnMut(LogLine),
) -> Result<()> {
    for s in &o.services {
        if !p.services.contains_key(s) {
            return Err(
                crate::compose::ComposeError::NotFound(format!("no such service: {s}")).into(),
            );
        }
    }
    let selected: BTreeSet<String> = o.services.iter().cloned().collect();
    let members = of_services(project_containers(root, &p.name, false)?, &selected);
    let (tx, rx) = mpsc::channel::<LogLine>();
    std::thread::scope(|scope| {
        for m in &members {
            let tx = tx.clone();
            let source = format!("{}-{}", m.service, m.number);
            let c = m.container.clone();
            let service = m.service.clone();
            scope.spawn(move || {
                let running = || {
                    !stop.load(Ordering::Relaxed)
                        && container::reload(&c).is_ok_and(|c| c.monitor_alive())
                };
                let _ = logs::show(&c.log_path(), o.tail, o.follow, &running, &mut |l| {
                    let _ = tx.send(LogLine {
                        source: source.clone(),
                        service: service.clone(),
                        stream: l.stream.clone(),
                        time: l.time.clone(),
                        text: l.log.clone(),
                    });
                });
            });
        }
        drop(tx);
        for line in rx {
            emit(line);
        }
    });
    Ok(())
}
