//! Waiting on containers: `depends_on` conditions and `up --wait`. The health state is the
//! one the container's monitor records (`state.health`), read again from disk each poll.

use std::time::{Duration, Instant};

use super::{OpError, Result};
use crate::compose::model::Condition;
use crate::engine::{container, Container, HealthStatus};

/// How long a dependency may take to become healthy or to complete before `up` gives up
/// (docker compose waits forever; a bound keeps a broken check from hanging scripts).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Polls `c` until it meets `cond`. `service` names it in errors.
pub fn until(c: &Container, cond: Condition, service: &str, timeout: Duration) -> Result<()> {
    let end = Instant::now() + timeout;
    let name = &c.config.name;
    if cond == Condition::Healthy && c.config.healthcheck.is_none() {
        return Err(OpError::Failed(format!(
            "container {name} has no healthcheck configured (service {service:?} is depended on with condition service_healthy)"
        )));
    }
    loop {
        let now = container::reload(c)?;
        let running = now.is_running();
        let exited = !running && !now.state.finished_at.is_empty();
        match cond {
            Condition::Started => return Ok(()),
            Condition::CompletedSuccessfully if exited => {
                if now.state.exit_code == 0 {
                    return Ok(());
                }
                return Err(OpError::Failed(format!(
                    "service {service:?} didn't complete successfully: exit {}",
                    now.state.exit_code
                )));
            }
            Condition::Healthy => {
                match now.state.health.as_ref().map(|h| h.status) {
                    Some(HealthStatus::Healthy) if running => return Ok(()),
                    Some(HealthStatus::Unhealthy) => {
                        return Err(OpError::Failed(format!("container {name} is unhealthy")))
                    }
                    _ => {}
                }
                if exited && !restarting(&now) {
                    return Err(OpError::Failed(format!(
                        "container {name} exited ({}) before becoming healthy",
                        now.state.exit_code
                    )));
                }
            }
            _ => {}
        }
        if Instant::now() >= end {
            return Err(OpError::Failed(format!(
                "container {name}: timed out after {}s waiting for {}",
                timeout.as_secs(),
                cond.as_str()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn restarting(c: &Container) -> bool {
    c.monitor_alive()
}

/// `up --wait`: running, and healthy when it has a health check.
pub fn ready(c: &Container, service: &str, timeout: Duration) -> Result<()> {
    let end = Instant::now() + timeout;
    if c.config.healthcheck.is_some() {
        return until(c, Condition::Healthy, service, timeout);
    }
    loop {
        let now = container::reload(c)?;
        if now.is_running() {
            return Ok(());
        }
        if !now.state.finished_at.is_empty() && !now.monitor_alive() {
            return Err(OpError::Failed(format!(
                "container {} exited ({})",
                now.config.name, now.state.exit_code
            )));
        }
        if Instant::now() >= end {
            return Err(OpError::Failed(format!(
                "container {}: timed out waiting for it to run",
                now.config.name
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
