//! RUN: a container made and started through the engine on the previous step's image, with the
//! step's argv/env/user/workdir and the build network, its output relayed over the attach
//! socket as it comes. On success its upper dir becomes the step's layer and snapshot; in every
//! case the container is removed.

use anyhow::{anyhow, Context, Result};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::cleanup::{self, BUILDER_LABEL};
use super::{Event, Sink};
use crate::build::plan::RunStep;
use crate::engine::attach::{self, EXIT, STDERR, STDOUT};
use crate::engine::opts::MountSpec;
use crate::engine::{container, create, lifecycle, rootfs, run as engine_run, CreateOptions};
use crate::image::store::{NewSnapshot, Store, TempPath};
use crate::network::NetworkMode;

/// What the executor passes down for every RUN.
pub struct RunEnv<'a> {
    pub root: &'a Path,
    pub store: &'a Store,
    /// The build's `--network` (`bridge`, `host`, `none`), unless the step says otherwise.
    pub network: Option<&'a str>,
    pub runtime: Option<&'a str>,
}

/// How a RUN ended.
pub enum RunOutcome {
    /// Exit 0: the upper dir, as a new snapshot.
    Done(NewSnapshot),
    Failed(i32),
}

fn network_mode(step: &RunStep, build: Option<&str>) -> NetworkMode {
    match step.network.as_deref() {
        Some("none") => NetworkMode::None,
        Some("host") => NetworkMode::Host,
        _ => NetworkMode::parse(build.unwrap_or("bridge")),
    }
}

fn mounts(env: &RunEnv<'_>, step: &RunStep, script: Option<&TempPath>) -> Result<Vec<MountSpec>> {
    let mut out = Vec::new();
    if let (Some(s), Some(file)) = (&step.script, script) {
        out.push(MountSpec {
            typ: "bind".into(),
            source: file.path().to_string_lossy().into_owned(),
            target: format!("/dev/pipes/{}", s.name),
            readonly: true,
            anonymous: false,
            options: vec![],
            create_source: false,
        });
    }
    for m in &step.mounts {
        let target = m.get("target").cloned().unwrap_or_default();
        match m.get("type").map(String::as_str) {
            Some("cache") => {
                // One directory per cache id (default: the target), kept across builds.
                let id = m.get("id").cloned().unwrap_or_else(|| target.clone());
                let dir = env
                    .store
                    .root()
                    .join("buildcache/mounts")
                    .join(crate::image::digest::Digest::of(id.as_bytes()).hex());
                fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
                out.push(MountSpec {
                    typ: "bind".into(),
                    source: dir.to_string_lossy().into_owned(),
                    target,
                    readonly: false,
                    anonymous: false,
                    options: vec![],
                    create_source: false,
                });
            }
            Some("tmpfs") => out.push(MountSpec {
                typ: "tmpfs".into(),
                source: String::new(),
                target,
                readonly: false,
                anonymous: false,
                options: vec![],
                create_source: false,
            }),
            other => {
                return Err(anyhow!(
                    "RUN --mount=type={}: not supported by berth build (cache and tmpfs are)",
                    other.unwrap_or("bind")
                ))
            }
        }
    }
    Ok(out)
}

/// Runs `step` on image `image` (its id).
pub fn run_step(
    env: &RunEnv<'_>,
    image: &str,
    step: &RunStep,
    sink: &mut dyn Sink,
) -> Result<RunOutcome> {
    let script = match &step.script {
        Some(s) => {
            let t = env.store.temp_path("script");
            fs::write(t.path(), &s.content)
                .with_context(|| format!("writing {}", t.path().display()))?;
            fs::set_permissions(
                t.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .with_context(|| format!("chmod {}", t.path().display()))?;
            Some(t)
        }
        None => None,
    };
    let mut labels = BTreeMap::new();
    labels.insert(BUILDER_LABEL.to_string(), std::process::id().to_string());
    let o = CreateOptions {
        image: image.to_string(),
        command: step.argv.clone(),
        entrypoint: Some(String::new()),
        env: step.env.clone(),
        mounts: mounts(env, step, script.as_ref())?,
        network: network_mode(step, env.network),
        workdir: Some(step.workdir.clone()),
        user: step.user.clone().filter(|u| !u.is_empty()),
        runtime: env.runtime.map(str::to_string),
        labels,
        no_healthcheck: true,
        ..Default::default()
    };
    let c = create::create(env.root, &o)?;
    cleanup::set_container(env.root, Some(c.id()));
    let res = attach_and_run(env, &c, sink);
    let outcome = match res {
        Ok(0) => {
            let r = take_upper(env, &c);
            r.map(RunOutcome::Done)
        }
        Ok(code) => Ok(RunOutcome::Failed(code)),
        Err(e) => Err(e),
    };
    cleanup::set_container(env.root, None);
    cleanup::remove_container(env.root, c.id());
    drop(script);
    outcome
}

fn attach_and_run(env: &RunEnv<'_>, c: &container::Container, sink: &mut dyn Sink) -> Result<i32> {
    engine_run::start(env.root, c, true)?;
    let c = container::reload(c)?;
    sink.event(Event::RunningIn(c.short_id()));
    let mut sock = attach::connect(&c.attach_sock())?;
    let mut code = None;
    while let Some((kind, data)) = attach::read_frame(&mut sock).context("reading RUN output")? {
        match kind {
            STDOUT | STDERR => sink.event(Event::Output(&data)),
            EXIT => {
                code = String::from_utf8_lossy(&data).trim().parse().ok();
                break;
            }
            _ => {}
        }
    }
    lifecycle::wait_exit(&c, std::time::Duration::from_secs(60));
    match code {
        Some(code) => Ok(code),
        None => lifecycle::wait(&c).map_err(|e| anyhow!("{e}")),
    }
}

/// Moves the container's upper dir out as a new snapshot, once nothing has it mounted.
fn take_upper(env: &RunEnv<'_>, c: &container::Container) -> Result<NewSnapshot> {
    rootfs::unmount_rootfs(&c.dir);
    if rootfs::is_mounted(&c.rootfs()) {
        return Err(anyhow!("RUN container {}: rootfs still mounted", c.id()));
    }
    let snap = env.store.new_snapshot()?;
    let fsdir = snap.fs();
    fs::remove_dir(&fsdir).with_context(|| format!("removing {}", fsdir.display()))?;
    fs::rename(c.upper(), &fsdir)
        .with_context(|| format!("moving {} to {}", c.upper().display(), fsdir.display()))?;
    Ok(snap)
}
