//! `down`: the project's containers (dependents first, each level in parallel), then its
//! networks, with `-v` its named and anonymous volumes, with `--rmi` its images.

use std::collections::BTreeSet;
use std::path::Path;

use super::up::stop_remove;
use super::{parallel, project_containers, Action, Event, Kind, Member, Result, Sink};
use crate::compose::model::Project;
use crate::compose::naming::service_image;
use crate::compose::start_levels;
use crate::engine::{images, networks, volumes};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rmi {
    /// Images built for services without `image:`.
    Local,
    /// Every image a service uses.
    All,
}

#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    pub volumes: bool,
    pub rmi: Option<Rmi>,
    pub remove_orphans: bool,
}

/// Stops and removes `members`, services in stop order, containers of a service in parallel.
pub fn remove_members(root: &Path, p: &Project, members: Vec<Member>, sink: Sink) -> Result<()> {
    let all: BTreeSet<String> = p.services.keys().cloned().collect();
    // Dependents first, a level at a time; orphans and one-offs of unknown services go first:
    // nothing depends on them.
    let orphans: BTreeSet<String> = members
        .iter()
        .map(|m| m.service.clone())
        .filter(|s| !all.contains(s))
        .collect();
    let mut levels = vec![orphans.into_iter().collect::<Vec<_>>()];
    levels.extend(start_levels(p, &all)?.into_iter().rev());
    let mut first_err = None;
    for level in levels {
        let mine: Vec<&Member> = members
            .iter()
            .filter(|m| level.contains(&m.service))
            .collect();
        let results = parallel(&mine, |m| {
            let mut ev = Vec::new();
            let r = stop_remove(root, &m.container, &mut ev);
            (ev, r)
        });
        for (ev, r) in results {
            ev.into_iter().for_each(&mut *sink);
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// A network's DNS helper holds the gateway's port 53 until it exits; the engine signals it
/// but may return first (it leaves by itself within 2 s once its network record is gone).
/// Waiting here lets an `up` right after `down` bind the same gateway again.
fn wait_gone(pid: i32) {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while crate::sys::pid_running(pid) && std::time::Instant::now() < end {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

pub fn down(root: &Path, p: &Project, o: &DownOptions, sink: Sink) -> Result<()> {
    let known = |s: &str| p.services.contains_key(s) || p.disabled_services.contains_key(s);
    let members: Vec<Member> = project_containers(root, &p.name, true)?
        .into_iter()
        .filter(|m| o.remove_orphans || m.oneoff || known(&m.service))
        .collect();
    remove_members(root, p, members, sink)?;
    for net in p.networks.values().filter(|n| !n.external) {
        if crate::network::load(root, &net.name).is_err() {
            continue;
        }
        sink(Event::new(Kind::Network, &net.name, Action::Removing));
        let dns = crate::network::dns::running(root, &net.name);
        networks::remove(root, &net.name)?;
        if let Some(pid) = dns {
            wait_gone(pid);
        }
        sink(Event::new(Kind::Network, &net.name, Action::Removed));
    }
    if o.volumes {
        for v in p.volumes.values().filter(|v| !v.external) {
            if volumes::get(root, &v.name).is_err() {
                continue;
            }
            sink(Event::new(Kind::Volume, &v.name, Action::Removing));
            volumes::remove(root, &v.name, false)?;
            sink(Event::new(Kind::Volume, &v.name, Action::Removed));
        }
    }
    if let Some(rmi) = o.rmi {
        let services = p.services.values().chain(p.disabled_services.values());
        let imgs: BTreeSet<String> = services
            .filter(|s| rmi == Rmi::All || s.image.is_none())
            .map(|s| service_image(&p.name, s))
            .filter(|i| super::images::present(root, i))
            .collect();
        for i in imgs {
            images::remove(root, std::slice::from_ref(&i), false)?;
            sink(Event::new(Kind::Image, &i, Action::Removed));
        }
    }
    Ok(())
}
