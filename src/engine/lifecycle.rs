//! Stopping, killing, waiting for and removing containers. The monitor
//! depends on this module (its `--rm` and cleanup); this module never
//! starts a monitor (that is `run.rs`).

use anyhow::{bail, Context};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use super::container::{self, Container, State};
use super::error::{EngineError, Op, Result};
use super::runtime::{self, Runtime};
use super::{events, rootfs, volumes};

pub fn runtime_of(root: &Path, c: &Container) -> Runtime {
    Runtime::new(&c.config.runtime, root)
}

/// SIGTERM (or the stop signal), then SIGKILL after the timeout.
pub fn stop(root: &Path, c: &Container, time: Option<u64>, signal: Option<&str>) -> Result<()> {
    if !c.is_running() {
        return Ok(());
    }
    let _ = fs::write(c.stop_marker(), "");
    let t = time.unwrap_or(c.config.stop_timeout);
    let sig = signal.unwrap_or(&c.config.stop_signal);
    let rt = runtime_of(root, c);
    let _ = rt.kill(c.id(), sig, false);
    events::container(root, c, "kill", &[("signal", signal_number(sig))]);
    if wait_exit(c, Duration::from_secs(t)) {
        events::container(root, c, "stop", &[]);
        return Ok(());
    }
    let _ = rt.kill(c.id(), "KILL", true);
    events::container(root, c, "kill", &[("signal", "9".into())]);
    if !wait_exit(c, Duration::from_secs(10)) {
        return Err(
            anyhow::anyhow!("container {} did not stop after SIGKILL", c.config.name).into(),
        );
    }
    events::container(root, c, "stop", &[]);
    Ok(())
}

/// Sends a signal; SIGKILL also marks the container as stopped by the user
/// (no restart).
pub fn kill(root: &Path, c: &Container, signal: &str) -> Result<()> {
    if !c.is_running() {
        return Err(EngineError::not_running(&c.config.name, Op::Kill));
    }
    if signal
        .trim_start_matches("SIG")
        .eq_ignore_ascii_case("KILL")
    {
        let _ = fs::write(c.stop_marker(), "");
    }
    runtime_of(root, c).kill(c.id(), signal, false)?;
    events::container(root, c, "kill", &[("signal", signal_number(signal))]);
    Ok(())
}

/// docker's events give the signal as a number.
fn signal_number(sig: &str) -> String {
    let name = sig.trim_start_matches("SIG").to_ascii_uppercase();
    if name.parse::<i32>().is_ok() {
        return name;
    }
    format!("SIG{name}")
        .parse::<nix::sys::signal::Signal>()
        .map(|s| (s as i32).to_string())
        .unwrap_or(name)
}

/// Waits for the monitor to record the exit (and finish its cleanup).
pub fn wait_exit(c: &Container, d: Duration) -> bool {
    let end = Instant::now() + d;
    loop {
        let s: State = crate::sys::read_json(&c.dir.join("state.json")).unwrap_or_default();
        let now = Container {
            dir: c.dir.clone(),
            config: c.config.clone(),
            state: s,
        };
        // A monitor that died is no exit while the runtime still runs the container.
        if now.state.monitor_pid == 0 || (!now.monitor_alive() && !now.orphan_alive()) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Blocks until the container stops; its exit code.
pub fn wait(c: &Container) -> Result<i32> {
    wait_exit(c, Duration::from_secs(u32::MAX as u64));
    let s: State = crate::sys::read_json(&c.dir.join("state.json")).unwrap_or_default();
    Ok(s.exit_code)
}

/// `rm`: refuses a running container unless `force`.
pub fn remove(root: &Path, c: &Container, force: bool, with_volumes: bool) -> Result<()> {
    if c.is_running() && !force {
        return Err(EngineError::IsRunning(c.config.name.clone()));
    }
    remove_container(root, c, with_volumes)
}

/// Removes everything of a container: process, mounts, network, records.
pub fn remove_container(root: &Path, c: &Container, with_volumes: bool) -> Result<()> {
    if c.monitor_alive() || c.orphan_alive() {
        // A monitor still starting has no container to kill yet and clears the stop marker
        // when it begins: repeat both until it is gone.
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let _ = fs::write(c.stop_marker(), "");
            let _ = runtime_of(root, c).kill(c.id(), "KILL", true);
            if wait_exit(c, Duration::from_millis(250)) {
                break;
            }
            if Instant::now() >= end {
                return Err(anyhow::anyhow!("container {} did not stop", c.config.name).into());
            }
        }
    }
    // A monitor registers under the containers lock (`monitor::main`): under it, either one
    // registered since `c` was read, or none will find this container any more.
    let lock = crate::sys::lock(&container::lock_path(root))?;
    let now = match container::reload(c) {
        Ok(now) => now,
        // Its --rm monitor removed it meanwhile.
        Err(_) if !c.dir.exists() => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if now.state.monitor_pid != c.state.monitor_pid && now.monitor_alive() {
        drop(lock);
        return remove_container(root, &now, with_volumes);
    }
    runtime_of(root, c).delete(c.id());
    Ok(remove_files(root, c, with_volumes)?)
}

/// Undoes what the monitor set up before `<runtime> create`; safe to repeat.
pub fn cleanup(root: &Path, c: &Container) {
    crate::network::teardown(root, &c.net_member());
    rootfs::unmount_rootfs(&c.dir);
}

/// Removes a stopped container's mounts, network and records (also the
/// monitor's `--rm`, after it deleted the runtime's container itself).
pub fn remove_files(root: &Path, c: &Container, with_volumes: bool) -> anyhow::Result<()> {
    cleanup(root, c);
    // The runtime's state dir goes with its last container (only when empty).
    let rs = runtime::state_root(root);
    if fs::remove_dir(&rs).is_ok() && rs.starts_with("/run/berth") {
        let _ = fs::remove_dir("/run/berth");
    }
    if rootfs::is_mounted(&c.rootfs()) {
        bail!("container {}: rootfs still mounted", c.config.name);
    }
    match fs::remove_dir_all(&c.dir) {
        // A --rm monitor may have removed it at the same moment.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        r => r.with_context(|| format!("removing {}", c.dir.display()))?,
    }
    events::container(root, c, "destroy", &[]);
    if with_volumes {
        for m in &c.config.mounts {
            if m.anonymous {
                let _ = volumes::remove(root, &m.source, true);
            }
        }
    }
    Ok(())
}

/// What `container prune` removed.
#[derive(Debug, Default)]
pub struct PruneReport {
    pub removed: Vec<String>,
    pub reclaimed: u64,
}

/// Removes every container whose monitor is gone and that does not run.
pub fn prune(root: &Path) -> Result<PruneReport> {
    let mut r = PruneReport::default();
    super::create_txn::sweep(root)?;
    for c in container::list(root)? {
        if !c.monitor_alive() && !c.is_running() {
            r.reclaimed += crate::sys::dir_size(&c.upper());
            remove_container(root, &c, false)?;
            r.removed.push(c.id().to_string());
        }
    }
    Ok(r)
}

/// Pauses (`true`) or resumes the container's processes through the runtime.
pub fn pause(root: &Path, c: &mut Container, pause: bool) -> Result<()> {
    if !c.is_running() {
        return Err(EngineError::not_running(&c.config.name, Op::Other));
    }
    let rt = runtime_of(root, c);
    if pause {
        rt.pause(c.id())?;
    } else {
        rt.resume(c.id())?;
    }
    let _l = c.lock_state()?;
    c.reload_state();
    c.state.status = if pause {
        container::Status::Paused
    } else {
        container::Status::Running
    };
    c.save_state()?;
    events::container(root, c, if pause { "pause" } else { "unpause" }, &[]);
    Ok(())
}

/// Renames a container (and its DNS name on user networks).
pub fn rename(root: &Path, key: &str, new_name: &str) -> Result<()> {
    container::valid_name(new_name)?;
    let _l = crate::sys::lock(&container::lock_path(root))?;
    let mut c = container::find(root, key)?;
    if let Some(other) = container::name_taken(root, new_name)? {
        return Err(EngineError::NameConflict {
            name: new_name.to_string(),
            id: other,
        });
    }
    crate::network::rename(root, c.id(), new_name);
    let old = std::mem::replace(&mut c.config.name, new_name.to_string());
    c.save_config()?;
    events::container(root, &c, "rename", &[("oldName", format!("/{old}"))]);
    Ok(())
}
