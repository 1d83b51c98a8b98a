//! Starting containers: `start`, `restart`, and `run` = create + start.
//! Starting means spawning the container's monitor.

use std::path::Path;
use std::time::Duration;

use super::container::{self, Container};
use super::create::{create, CreateOptions};
use super::error::Result;
use super::{lifecycle, monitor};

/// Starts a created or exited container. `attach`: the monitor waits for
/// a client on the attach socket before starting the process.
/// Returns false if it was already running.
pub fn start(root: &Path, c: &Container, attach: bool) -> Result<bool> {
    if c.is_running() {
        return Ok(false);
    }
    let mut c = c.clone();
    // A monitor still cleaning up after the last exit would tear
    // down what the new one sets up (same netns and veth names).
    if c.monitor_alive() {
        lifecycle::wait_exit(&c, Duration::from_secs(10));
        c = container::reload(&c)?;
    }
    clear_leftovers(root, &c);
    monitor::spawn(root, &c, attach)?;
    Ok(true)
}

pub fn restart(root: &Path, c: &Container, time: Option<u64>) -> Result<()> {
    lifecycle::stop(root, c, time, None)?;
    let c = container::reload(c)?;
    clear_leftovers(root, &c);
    monitor::spawn(root, &c, false)?;
    super::events::container(root, &c, "restart", &[]);
    Ok(())
}

/// A monitor that was killed (it zeroes `monitor_pid` when it ends normally) may have left
/// the runtime's container, mounts and network behind: the new one would trip over them.
fn clear_leftovers(root: &Path, c: &Container) {
    if c.state.monitor_pid != 0 && !c.monitor_alive() {
        lifecycle::runtime_of(root, c).delete(c.id());
        lifecycle::cleanup(root, c);
    }
}

/// create + start. As docker's, a container that fails to start stays
/// `Created` with the error in its state, unless `--rm` asked for its removal.
pub fn run(root: &Path, o: &CreateOptions, attach: bool) -> Result<Container> {
    let c = create(root, o)?;
    if let Err(e) = monitor::spawn(root, &c, attach) {
        if o.auto_remove {
            let _ = lifecycle::remove_container(root, &c, true);
        }
        return Err(e.into());
    }
    Ok(c)
}

/// The exit code after an attach ended without one (detached, or the
/// monitor went away): the recorded one if the container finished.
pub fn exit_code_after_detach(c: &Container) -> i32 {
    match container::reload(c) {
        Ok(c) if !c.monitor_alive() && !c.state.finished_at.is_empty() => c.state.exit_code,
        _ => 0,
    }
}
