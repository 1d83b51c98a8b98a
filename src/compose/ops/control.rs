//! The per-container commands over a project (start, stop, restart, kill, rm, pause,
//! unpause), the reports (ps, ls, top, port, images), and the targets of exec and run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::up::{self, UpOptions};
use super::{convert, of_services, parallel, project_containers, Action, Event, Kind, Member};
use super::{OpError, Result, Sink};
use crate::compose::model::Project;
use crate::compose::naming::{oneoff_container_name, LABEL_CONFIG_FILES, LABEL_PROJECT};
use crate::compose::{select, start_order, stop_order};
use crate::engine::{container, lifecycle, query, run, Container, CreateOptions};

/// What to do to each container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    Start,
    Stop { timeout: Option<u64> },
    Restart { timeout: Option<u64> },
    Kill { signal: String },
    Pause,
    Unpause,
}

fn act(root: &Path, c: &Container, what: &Control) -> (Vec<Event>, Result<()>) {
    let name = &c.config.name;
    let mut ev = Vec::new();
    let ok = |ev: &mut Vec<Event>, a: Action| ev.push(Event::new(Kind::Container, name, a));
    let r: Result<()> = (|| {
        match what {
            Control::Start => {
                ok(&mut ev, Action::Starting);
                run::start(root, c, false)?;
                ok(&mut ev, Action::Started);
            }
            Control::Stop { timeout } => {
                ok(&mut ev, Action::Stopping);
                lifecycle::stop(root, c, *timeout, None)?;
                ok(&mut ev, Action::Stopped);
            }
            Control::Restart { timeout } => {
                run::restart(root, c, *timeout)?;
                ok(&mut ev, Action::Restarted);
            }
            Control::Kill { signal } => {
                lifecycle::kill(root, c, signal)?;
                ok(&mut ev, Action::Killed);
            }
            Control::Pause | Control::Unpause => {
                let mut c = c.clone();
                let p = *what == Control::Pause;
                lifecycle::pause(root, &mut c, p)?;
                ok(&mut ev, if p { Action::Paused } else { Action::Unpaused });
            }
        }
        Ok(())
    })();
    (ev, r)
}

/// Applies `what` to the containers of `services` (all when empty), in dependency order
/// (start order for start/restart/unpause, reverse for the others).
pub fn control(
    root: &Path,
    p: &Project,
    services: &[String],
    what: &Control,
    sink: Sink,
) -> Result<()> {
    let selected = select(p, services, true)?;
    let order = match what {
        Control::Start | Control::Restart { .. } | Control::Unpause => start_order(p, &selected)?,
        _ => stop_order(p, &selected)?,
    };
    let members = project_containers(root, &p.name, false)?;
    let mut first_err = None;
    for s in order {
        let cs: Vec<&Container> = members
            .iter()
            .filter(|m| m.service == s)
            .map(|m| &m.container)
            .filter(|c| match what {
                Control::Start => !c.is_running(),
                Control::Restart { .. } => true,
                Control::Stop { .. } => c.is_running(),
                Control::Kill { .. } | Control::Pause => c.is_running(),
                Control::Unpause => c.state.status == container::Status::Paused,
            })
            .collect();
        for (ev, r) in parallel(&cs, |c| act(root, c, what)) {
            ev.into_iter().for_each(&mut *sink);
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// `rm`: stopped containers of `services` (running ones too with `stop`).
pub fn rm(root: &Path, p: &Project, services: &[String], stop: bool, sink: Sink) -> Result<()> {
    let selected = select(p, services, true)?;
    let members: Vec<Member> = of_services(project_containers(root, &p.name, false)?, &selected)
        .into_iter()
        .filter(|m| stop || !m.container.is_running())
        .collect();
    super::down::remove_members(root, p, members, sink)
}

/// One line of `ps`.
#[derive(Debug, Clone)]
pub struct PsRow {
    pub name: String,
    pub id: String,
    pub image: String,
    pub command: String,
    pub service: String,
    pub created: String,
    /// `Up 3 seconds (healthy)`, `Exited (0) 2 minutes ago`.
    pub status: String,
    pub state: String,
    pub health: String,
    pub exit_code: i32,
    pub ports: String,
}

/// `ps [-a]` of `services` (all when empty).
pub fn ps(root: &Path, p: &Project, services: &[String], all: bool) -> Result<Vec<PsRow>> {
    let selected: BTreeSet<String> = services.iter().cloned().collect();
    for s in services {
        if !p.services.contains_key(s) {
            return Err(
                crate::compose::ComposeError::NotFound(format!("no such service: {s}")).into(),
            );
        }
    }
    Ok(
        of_services(project_containers(root, &p.name, false)?, &selected)
            .into_iter()
            .filter(|m| all || m.container.is_running())
            .map(|m| ps_row(&m))
            .collect(),
    )
}

fn ps_row(m: &Member) -> PsRow {
    let c = &m.container;
    let health = c
        .state
        .health
        .as_ref()
        .filter(|_| c.is_running())
        .map(|h| h.status.as_str().to_string())
        .unwrap_or_default();
    let mut status = c.status_text();
    if !health.is_empty() {
        status = format!("{status} ({health})");
    }
    PsRow {
        name: c.config.name.clone(),
        id: c.id().to_string(),
        image: c.config.image.clone(),
        command: format!("\"{}\"", c.config.args.join(" ")),
        service: m.service.clone(),
        created: c.config.created.clone(),
        status,
        state: c.docker_status().as_str().to_string(),
        health,
        exit_code: c.state.exit_code,
        ports: query::ports_text(c),
    }
}

/// One line of `ls`.
#[derive(Debug, Clone, PartialEq)]
pub struct LsRow {
    pub name: String,
    /// `running(2), exited(1)`.
    pub status: String,
    pub config_files: String,
    pub running: usize,
}

/// `ls`: projects found from the labels of the containers of this root; without `all` only
/// those with a running container.
pub fn ls(root: &Path, all: bool) -> Result<Vec<LsRow>> {
    let mut by: BTreeMap<String, (BTreeMap<String, usize>, String)> = BTreeMap::new();
    for c in container::list(root)? {
        let Some(proj) = c.config.labels.get(LABEL_PROJECT) else {
            continue;
        };
        let e = by.entry(proj.clone()).or_default();
        *e.0.entry(c.docker_status().as_str().to_string())
            .or_default() += 1;
        if e.1.is_empty() {
            e.1 = convert::label(&c.config.labels, LABEL_CONFIG_FILES).to_string();
        }
    }
    Ok(by
        .into_iter()
        .map(|(name, (states, files))| {
            let running = states.get("running").copied().unwrap_or(0);
            let status = states
                .iter()
                .map(|(s, n)| format!("{s}({n})"))
                .collect::<Vec<_>>()
                .join(", ");
            LsRow {
                name,
                status,
                config_files: files,
                running,
            }
        })
        .filter(|r| all || r.running > 0)
        .collect())
}

/// Container `index` (from 1) of `service`, for exec, port and top.
pub fn service_container(root: &Path, p: &Project, service: &str, index: u32) -> Result<Container> {
    if !p.services.contains_key(service) {
        return Err(
            crate::compose::ComposeError::NotFound(format!("no such service: {service}")).into(),
        );
    }
    project_containers(root, &p.name, false)?
        .into_iter()
        .find(|m| m.service == service && m.number == index)
        .map(|m| m.container)
        .ok_or_else(|| {
            OpError::Failed(format!(
                "service {service:?} is not running container #{index}"
            ))
        })
}

/// `top`: the processes of each running container of `services`.
pub fn top(
    root: &Path,
    p: &Project,
    services: &[String],
) -> Result<Vec<(String, Vec<query::Process>)>> {
    let selected: BTreeSet<String> = select(p, services, true)?;
    let mut out = Vec::new();
    for m in of_services(project_containers(root, &p.name, false)?, &selected) {
        if m.container.is_running() {
            out.push((
                m.container.config.name.clone(),
                query::top(root, &m.container)?,
            ));
        }
    }
    Ok(out)
}

/// `port SERVICE PRIVATE_PORT[/PROTO]`: the host address it is published on.
pub fn port(
    root: &Path,
    p: &Project,
    service: &str,
    private: &str,
    index: u32,
) -> Result<Option<(String, u16)>> {
    let c = service_container(root, p, service, index)?;
    let key = if private.contains('/') {
        private.to_string()
    } else {
        format!("{private}/tcp")
    };
    Ok(query::ports(&c, Some(&key))
        .into_iter()
        .next()
        .map(|(_, ip, port)| (ip, port)))
}

/// `images`: (container, image, image id) of the project's containers.
pub fn images(root: &Path, p: &Project) -> Result<Vec<(String, String, String)>> {
    Ok(project_containers(root, &p.name, false)?
        .into_iter()
        .map(|m| {
            let c = m.container;
            (c.config.name, c.config.image, c.config.image_id)
        })
        .collect())
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub service: String,
    /// Replaces the service's command when not empty.
    pub command: Vec<String>,
    pub entrypoint: Option<String>,
    pub name: Option<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub rm: bool,
    pub no_deps: bool,
    /// Publish the service's ports (not done by default, so a one-off does not collide).
    pub service_ports: bool,
    pub tty: bool,
    pub interactive: bool,
    /// Start attached (the caller attaches) or detached.
    pub detach: bool,
}

/// `run`: starts the service's dependencies (unless `no_deps`), then a one-off container of the
/// service, started; the caller attaches to it unless detached.
pub fn run(root: &Path, p: &Project, o: &RunOptions, sink: Sink) -> Result<Container> {
    let s = p.services.get(&o.service).ok_or_else(|| {
        crate::compose::ComposeError::NotFound(format!("no such service: {}", o.service))
    })?;
    let deps: Vec<String> = s.depends_on.keys().cloned().collect();
    if !o.no_deps && !deps.is_empty() {
        let uo = UpOptions {
            services: deps,
            ..UpOptions::default()
        };
        up::up(root, p, &uo, sink)?;
    } else {
        let one: BTreeSet<String> = [o.service.clone()].into();
        super::images::ensure(root, p, &one, false, sink)?;
        up::ensure_networks(root, p, &crate::compose::used_networks(p, &one), sink)?;
        up::ensure_volumes(root, p, &crate::compose::used_volumes(p, &one), sink)?;
    }
    let suffix = &crate::sys::random_id()[..12];
    let name = o
        .name
        .clone()
        .unwrap_or_else(|| oneoff_container_name(&p.name, &o.service, suffix));
    let mut co: CreateOptions = convert::create_options(root, p, s, 1, Some(&name))?;
    if !o.command.is_empty() {
        co.command = o.command.clone();
    }
    if o.entrypoint.is_some() {
        co.entrypoint = o.entrypoint.clone();
    }
    co.env.extend(o.env.iter().cloned());
    if o.user.is_some() {
        co.user = o.user.clone();
    }
    if o.workdir.is_some() {
        co.workdir = o.workdir.clone();
    }
    if !o.service_ports {
        co.ports.clear();
    }
    co.auto_remove = o.rm;
    co.tty = o.tty;
    co.interactive = o.interactive;
    let c = crate::engine::create::create(root, &co)?;
    run::start(root, &c, !o.detach)?;
    Ok(container::reload(&c)?)
}
