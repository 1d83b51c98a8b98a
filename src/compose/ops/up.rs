//! `up`: the project's networks and volumes, its images, then its containers level by level in
//! dependency order (services of one level in parallel). Idempotent: a container whose
//! `config-hash` label and image match the service is left alone (started if stopped); a
//! changed one is recreated; replicas beyond the scale are removed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use super::convert::{create_options, networks};
use super::{images, parallel, project_containers, wait, Action, Event, Kind, Member};
use super::{OpError, Result, Sink};
use crate::compose::model::{Condition, Project, Service};
use crate::compose::naming::{config_hash, service_image, LABEL_CONFIG_HASH};
use crate::compose::{select, start_levels, used_networks, used_volumes};
use crate::engine::{container, create, lifecycle, run, volumes, Container};
use crate::image::store::Store;
use crate::network;

#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// SERVICE arguments (all when empty).
    pub services: Vec<String>,
    pub no_deps: bool,
    pub force_recreate: bool,
    /// Keep existing containers even when their configuration changed.
    pub no_recreate: bool,
    /// Build images before starting (`--build`).
    pub build: bool,
    pub remove_orphans: bool,
    /// Create only (`compose create`).
    pub no_start: bool,
    /// Wait for running (and healthy, with a health check) before returning.
    pub wait: bool,
    /// Bound on `--wait` and on waiting for `depends_on` conditions (default 600 s).
    pub timeout: Option<Duration>,
}

/// The containers of the selected services after `up`, by service.
#[derive(Debug, Default)]
pub struct UpReport {
    pub containers: BTreeMap<String, Vec<Container>>,
}

/// Makes the project's networks used by `services` exist (external ones must already).
pub fn ensure_networks(
    root: &Path,
    p: &Project,
    keys: &BTreeSet<String>,
    sink: Sink,
) -> Result<()> {
    for key in keys {
        let Some(net) = p.networks.get(key) else {
            continue;
        };
        let exists = network::load(root, &net.name).is_ok();
        if net.external {
            if !exists {
                crate::compose_fail!(
                    "network {} declared as external, but could not be found",
                    net.name
                );
            }
            continue;
        }
        if exists {
            continue;
        }
        let path = format!("networks.{key}");
        if let Some(d) = net.driver.as_deref().filter(|d| *d != "bridge") {
            crate::compose_fail!("{path}.driver: driver {d:?} is not supported (only bridge)");
        }
        if net.enable_ipv6 {
            crate::compose_fail!("{path}.enable_ipv6: not supported by berth's engine");
        }
        if !net.labels.is_empty() {
            crate::compose_fail!("{path}.labels: not supported by berth's engine");
        }
        if net.subnets.len() > 1 {
            crate::compose_fail!("{path}.ipam.config: berth takes one subnet per network");
        }
        let mut o = network::ops::CreateOptions {
            name: net.name.clone(),
            driver: "bridge".into(),
            internal: net.internal,
            ..Default::default()
        };
        if let Some(s) = net.subnets.first() {
            if s.ip_range.is_some() {
                crate::compose_fail!(
                    "{path}.ipam.config.ip_range: not supported by berth's engine"
                );
            }
            o.subnet = Some(s.subnet.clone());
            o.gateway = match &s.gateway {
                Some(g) => Some(g.parse().map_err(|_| {
                    OpError::Failed(format!("{path}.ipam.config.gateway: invalid address {g:?}"))
                })?),
                None => None,
            };
        }
        for (k, v) in &net.driver_opts {
            network::ops::apply_option(&mut o, &format!("{k}={v}"))
                .map_err(|e| OpError::Failed(format!("{path}.driver_opts: {e:#}")))?;
        }
        sink(Event::new(Kind::Network, &net.name, Action::Creating));
        network::ops::create(root, &o).map_err(|e| {
            OpError::Failed(format!("{path}: creating network {}: {e:#}", net.name))
        })?;
        sink(Event::new(Kind::Network, &net.name, Action::Created));
    }
    Ok(())
}

/// Makes the project's named volumes used by `services` exist, labelled as compose's.
pub fn ensure_volumes(root: &Path, p: &Project, keys: &BTreeSet<String>, sink: Sink) -> Result<()> {
    for key in keys {
        let Some(v) = p.volumes.get(key) else {
            continue;
        };
        let exists = volumes::get(root, &v.name).is_ok();
        if v.external {
            if !exists {
                crate::compose_fail!("external volume {:?} not found (volumes.{key})", v.name);
            }
            continue;
        }
        if let Some(d) = v.driver.as_deref().filter(|d| *d != "local") {
            crate::compose_fail!(
                "volumes.{key}.driver: driver {d:?} is not supported (only local)"
            );
        }
        if !v.driver_opts.is_empty() {
            crate::compose_fail!("volumes.{key}.driver_opts: not supported by berth's engine");
        }
        if exists {
            continue;
        }
        let mut labels = crate::compose::naming::volume_labels(&p.name, key);
        labels.extend(v.labels.clone());
        volumes::create_labeled(root, &v.name, labels)?;
        sink(Event::new(Kind::Volume, &v.name, Action::Created));
    }
    Ok(())
}

fn image_id(root: &Path, image: &str) -> Option<String> {
    let store = Store::open(root).ok()?;
    store
        .lookup(image)
        .ok()
        .map(|(_, img)| img.id().to_string())
}

/// Creates container `number` of `s`, joins its other networks, starts it unless `no_start`.
pub fn create_container(
    root: &Path,
    p: &Project,
    s: &Service,
    number: u32,
    no_start: bool,
    events: &mut Vec<Event>,
) -> Result<Container> {
    let o = create_options(root, p, s, number, None)?;
    let name = o.name.clone().unwrap_or_default();
    events.push(Event::new(Kind::Container, &name, Action::Creating));
    let c = create::create(root, &o)?;
    let (_, extra) = networks(p, s)?;
    // `networks()` keeps the order of `networks:`, whose first entry is the created-on one.
    let ips = super::hostcfg::fixed_ips(s)?.into_iter().skip(1);
    for (net, ip) in extra.into_iter().zip(ips) {
        let aliases = &o.network_aliases;
        if let Err(e) = crate::engine::networks::connect(root, c.id(), &net, aliases, ip) {
            let _ = lifecycle::remove_container(root, &c, true);
            return Err(e.into());
        }
    }
    let c = container::reload(&c)?;
    events.push(Event::new(Kind::Container, &name, Action::Created));
    if !no_start {
        events.push(Event::new(Kind::Container, &name, Action::Starting));
        run::start(root, &c, false)?;
        events.push(Event::new(Kind::Container, &name, Action::Started));
    }
    Ok(container::reload(&c)?)
}

/// Stops and removes one container (with its anonymous volumes).
pub fn stop_remove(root: &Path, c: &Container, events: &mut Vec<Event>) -> Result<()> {
    let name = &c.config.name;
    if c.is_running() {
        events.push(Event::new(Kind::Container, name, Action::Stopping));
        lifecycle::stop(root, c, None, None)?;
        events.push(Event::new(Kind::Container, name, Action::Stopped));
    }
    events.push(Event::new(Kind::Container, name, Action::Removing));
    let c = container::reload(c).unwrap_or_else(|_| c.clone());
    lifecycle::remove_container(root, &c, true)?;
    events.push(Event::new(Kind::Container, name, Action::Removed));
    Ok(())
}

/// Waits for the conditions `s` puts on the services it depends on (those in `selected`).
fn wait_dependencies(
    root: &Path,
    p: &Project,
    s: &Service,
    selected: &BTreeSet<String>,
    timeout: Duration,
    ev: &mut Vec<Event>,
) -> Result<()> {
    for (dep, d) in &s.depends_on {
        if !selected.contains(dep) || d.condition == Condition::Started {
            continue;
        }
        for m in project_containers(root, &p.name, false)?
            .into_iter()
            .filter(|m| &m.service == dep)
        {
            let name = &m.container.config.name;
            ev.push(Event::new(Kind::Container, name, Action::Waiting));
            wait::until(&m.container, d.condition, dep, timeout)?;
            let done = match d.condition {
                Condition::Healthy => Action::Healthy,
                _ => Action::Exited(0),
            };
            ev.push(Event::new(Kind::Container, name, done));
        }
    }
    Ok(())
}

/// Brings one service to its configuration; the events of the work, then its containers.
fn converge(
    root: &Path,
    p: &Project,
    s: &Service,
    existing: &[Member],
    o: &UpOptions,
    selected: &BTreeSet<String>,
) -> (Vec<Event>, Result<Vec<Container>>) {
    let mut ev = Vec::new();
    let r = converge_inner(root, p, s, existing, o, selected, &mut ev);
    (ev, r)
}

fn converge_inner(
    root: &Path,
    p: &Project,
    s: &Service,
    existing: &[Member],
    o: &UpOptions,
    selected: &BTreeSet<String>,
    ev: &mut Vec<Event>,
) -> Result<Vec<Container>> {
    if !o.no_start {
        wait_dependencies(
            root,
            p,
            s,
            selected,
            o.timeout.unwrap_or(wait::DEFAULT_TIMEOUT),
            ev,
        )?;
    }
    let hash = config_hash(s);
    let image = image_id(root, &service_image(&p.name, s));
    for m in existing
        .iter()
        .filter(|m| m.number > s.replicas || m.number == 0)
    {
        stop_remove(root, &m.container, ev)?;
    }
    let mut out = Vec::new();
    for n in 1..=s.replicas {
        let Some(m) = existing.iter().find(|m| m.number == n) else {
            out.push(create_container(root, p, s, n, o.no_start, ev)?);
            continue;
        };
        let c = &m.container;
        let same = c.config.labels.get(LABEL_CONFIG_HASH) == Some(&hash)
            && image.as_ref().is_none_or(|i| *i == c.config.image_id);
        if o.force_recreate || (!same && !o.no_recreate) {
            stop_remove(root, c, ev)?;
            let new = create_container(root, p, s, n, o.no_start, ev)?;
            ev.push(Event::new(
                Kind::Container,
                &new.config.name,
                Action::Recreated,
            ));
            out.push(new);
            continue;
        }
        let name = &c.config.name;
        if c.is_running() || o.no_start {
            ev.push(Event::new(Kind::Container, name, Action::Running));
        } else {
            ev.push(Event::new(Kind::Container, name, Action::Starting));
            run::start(root, c, false)?;
            ev.push(Event::new(Kind::Container, name, Action::Started));
        }
        out.push(container::reload(c)?);
    }
    Ok(out)
}

/// Removes (with `remove`) or reports the containers of services the project no longer has.
pub fn orphans(root: &Path, p: &Project, remove: bool, sink: Sink) -> Result<()> {
    let known = |s: &str| p.services.contains_key(s) || p.disabled_services.contains_key(s);
    let orphans: Vec<Member> = project_containers(root, &p.name, false)?
        .into_iter()
        .filter(|m| !known(&m.service))
        .collect();
    if orphans.is_empty() {
        return Ok(());
    }
    if !remove {
        let names: Vec<&str> = orphans
            .iter()
            .map(|m| m.container.config.name.as_str())
            .collect();
        sink(Event::Warning(format!(
            "Found orphan containers ([{}]) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.",
            names.join(" ")
        )));
        return Ok(());
    }
    for m in &orphans {
        let mut ev = Vec::new();
        let r = stop_remove(root, &m.container, &mut ev);
        ev.into_iter().for_each(&mut *sink);
        r?;
    }
    Ok(())
}

pub fn up(root: &Path, p: &Project, o: &UpOptions, sink: Sink) -> Result<UpReport> {
    let selected = select(p, &o.services, o.no_deps)?;
    let levels = start_levels(p, &selected)?;
    for w in &p.warnings {
        sink(Event::Warning(w.clone()));
    }
    for s in selected.iter().filter_map(|n| p.services.get(n)) {
        // Refuse what the engine cannot do before anything is made.
        create_options(root, p, s, 1, None)?;
    }
    images::ensure(root, p, &selected, o.build, sink)?;
    ensure_networks(root, p, &used_networks(p, &selected), sink)?;
    ensure_volumes(root, p, &used_volumes(p, &selected), sink)?;
    orphans(root, p, o.remove_orphans, sink)?;
    let mut report = UpReport::default();
    for level in levels {
        let existing = project_containers(root, &p.name, false)?;
        let results = parallel(&level, |name| {
            let Some(s) = p.services.get(name) else {
                return (vec![], Ok(vec![]));
            };
            let mine: Vec<Member> = existing
                .iter()
                .filter(|m| &m.service == name)
                .cloned()
                .collect();
            converge(root, p, s, &mine, o, &selected)
        });
        let mut first_err = None;
        for (name, (events, r)) in level.iter().zip(results) {
            events.into_iter().for_each(&mut *sink);
            match r {
                Ok(cs) => {
                    report.containers.insert(name.clone(), cs);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
    }
    if o.wait && !o.no_start {
        let timeout = o.timeout.unwrap_or(wait::DEFAULT_TIMEOUT);
        let all: Vec<(String, Container)> = report
            .containers
            .iter()
            .flat_map(|(s, cs)| cs.iter().map(move |c| (s.clone(), c.clone())))
            .collect();
        for (s, c) in &all {
            sink(Event::new(Kind::Container, &c.config.name, Action::Waiting));
            wait::ready(c, s, timeout)?;
            let a = if c.config.healthcheck.is_some() {
                Action::Healthy
            } else {
                Action::Running
            };
            sink(Event::new(Kind::Container, &c.config.name, a));
        }
    }
    Ok(report)
}
