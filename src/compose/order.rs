//! Dependency order: `depends_on`, `links` and `network_mode`/`pid`/`ipc: service:X` edges;
//! start order topological with ties broken by name (so it is the same every run), stop order
//! its reverse.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{MountType, Project, Service};
use super::ComposeError;

/// The services `s` must start after, among `known` ones (a `required: false` dependency on a
/// missing service is no edge).
pub fn dependencies(s: &Service) -> BTreeSet<String> {
    let mut deps: BTreeSet<String> = s.depends_on.keys().cloned().collect();
    if let Some(other) = s
        .network_mode
        .as_deref()
        .and_then(|m| m.strip_prefix("service:"))
    {
        deps.insert(other.to_string());
    }
    // `links` and `pid`/`ipc: service:X` need X's container, as in compose.
    for l in &s.links {
        deps.insert(l.split_once(':').map_or(l.as_str(), |(n, _)| n).to_string());
    }
    for m in [&s.pid, &s.ipc].into_iter().flatten() {
        if let Some(other) = m.strip_prefix("service:") {
            deps.insert(other.to_string());
        }
    }
    deps
}

fn graph(services: &BTreeMap<String, Service>) -> BTreeMap<String, BTreeSet<String>> {
    services
        .iter()
        .map(|(name, s)| {
            let deps = dependencies(s)
                .into_iter()
                .filter(|d| services.contains_key(d))
                .collect();
            (name.clone(), deps)
        })
        .collect()
}

/// A dependency cycle as `a -> b -> a`, the first found in name order.
pub fn find_cycle(services: &BTreeMap<String, Service>) -> Option<Vec<String>> {
    let g = graph(services);
    // 0 unvisited, 1 on the current path, 2 done.
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    let mut stack: Vec<String> = Vec::new();
    fn visit<'a>(
        n: &'a str,
        g: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let start = stack.iter().position(|s| s == n).unwrap_or(0);
                let mut cycle = stack[start..].to_vec();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(n, 1);
        stack.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, g, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(n, 2);
        None
    }
    for n in g.keys() {
        if let Some(c) = visit(n, &g, &mut state, &mut stack) {
            return Some(c);
        }
    }
    None
}

/// The services to act on: `requested` (all when empty) plus, unless `no_deps`, everything they
/// depend on, transitively.
pub fn select(
    project: &Project,
    requested: &[String],
    no_deps: bool,
) -> Result<BTreeSet<String>, ComposeError> {
    for r in requested {
        if project.disabled_services.contains_key(r) {
            return Err(ComposeError::invalid(
                &format!("services.{r}"),
                "service is disabled by its profiles",
            ));
        }
        if !project.services.contains_key(r) {
            return Err(ComposeError::NotFound(format!("no such service: {r}")));
        }
    }
    if requested.is_empty() {
        return Ok(project.services.keys().cloned().collect());
    }
    let mut out: BTreeSet<String> = requested.iter().cloned().collect();
    if no_deps {
        return Ok(out);
    }
    let g = graph(&project.services);
    let mut todo: Vec<String> = out.iter().cloned().collect();
    while let Some(n) = todo.pop() {
        for d in g.get(&n).into_iter().flatten() {
            if out.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    Ok(out)
}

/// Start order of `subset` (dependencies first). Edges to services outside the subset are
/// ignored (`--no-deps`).
pub fn start_order(
    project: &Project,
    subset: &BTreeSet<String>,
) -> Result<Vec<String>, ComposeError> {
    let g = graph(&project.services);
    let mut pending: BTreeMap<&str, BTreeSet<&str>> = subset
        .iter()
        .map(|n| {
            let deps = g
                .get(n)
                .into_iter()
                .flatten()
                .filter(|d| subset.contains(*d))
                .map(String::as_str)
                .collect();
            (n.as_str(), deps)
        })
        .collect();
    let mut order = Vec::new();
    while !pending.is_empty() {
        let ready: Vec<&str> = pending
            .iter()
            .filter(|(_, deps)| deps.is_empty())
            .map(|(n, _)| *n)
            .collect();
        if ready.is_empty() {
            let cycle = find_cycle(&project.services)
                .unwrap_or_default()
                .join(" -> ");
            return Err(ComposeError::invalid(
                "depends_on",
                format!("dependency cycle: {cycle}"),
            ));
        }
        // One at a time, smallest name first: a deterministic order.
        let next = ready[0];
        pending.remove(next);
        for deps in pending.values_mut() {
            deps.remove(next);
        }
        order.push(next.to_string());
    }
    Ok(order)
}

/// Stop order: dependents before what they depend on.
pub fn stop_order(
    project: &Project,
    subset: &BTreeSet<String>,
) -> Result<Vec<String>, ComposeError> {
    let mut o = start_order(project, subset)?;
    o.reverse();
    Ok(o)
}

/// Project networks (keys of `Project::networks`) that the services of `subset` join.
pub fn used_networks(project: &Project, subset: &BTreeSet<String>) -> BTreeSet<String> {
    subset
        .iter()
        .filter_map(|n| project.services.get(n))
        .flat_map(|s| s.networks.keys().cloned())
        .collect()
}

/// Project volumes (keys of `Project::volumes`) that the services of `subset` mount.
pub fn used_volumes(project: &Project, subset: &BTreeSet<String>) -> BTreeSet<String> {
    subset
        .iter()
        .filter_map(|n| project.services.get(n))
        .flat_map(|s| s.volumes.iter())
        .filter(|m| m.kind == MountType::Volume)
        .filter_map(|m| m.source.clone())
        .collect()
}

/// Groups that can start in parallel, in order: each group depends only on earlier ones.
pub fn start_levels(
    project: &Project,
    subset: &BTreeSet<String>,
) -> Result<Vec<Vec<String>>, ComposeError> {
    let order = start_order(project, subset)?;
    let g = graph(&project.services);
    let mut level: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &order {
        let l = g
            .get(n)
            .into_iter()
            .flatten()
            .filter_map(|d| level.get(d.as_str()))
            .map(|l| l + 1)
            .max()
            .unwrap_or(0);
        level.insert(n, l);
    }
    let mut levels: Vec<Vec<String>> = Vec::new();
    for n in &order {
        let l = level[n.as_str()];
        if levels.len() <= l {
            levels.resize(l + 1, Vec::new());
        }
        levels[l].push(n.clone());
    }
    Ok(levels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::model::{Condition, Dependency};

    fn project(edges: &[(&str, &[&str])]) -> Project {
        let mut p = Project::default();
        for (name, deps) in edges {
            let mut s = Service {
                name: name.to_string(),
                replicas: 1,
                ..Service::default()
            };
            for d in *deps {
                s.depends_on.insert(
                    d.to_string(),
                    Dependency {
                        condition: Condition::Started,
                        restart: false,
                        required: true,
                    },
                );
            }
            p.services.insert(name.to_string(), s);
        }
        p
    }

    fn all(p: &Project) -> BTreeSet<String> {
        p.services.keys().cloned().collect()
    }

    #[test]
    fn topological_and_deterministic() {
        let p = project(&[
            ("web", &["db", "cache"]),
            ("worker", &["cache"]),
            ("db", &[]),
            ("cache", &[]),
            ("proxy", &["web"]),
        ]);
        let o = start_order(&p, &all(&p)).unwrap();
        assert_eq!(o, vec!["cache", "db", "web", "proxy", "worker"]);
        let s = stop_order(&p, &all(&p)).unwrap();
        assert_eq!(s, vec!["worker", "proxy", "web", "db", "cache"]);
        let l = start_levels(&p, &all(&p)).unwrap();
        assert_eq!(
            l,
            vec![vec!["cache", "db"], vec!["web", "worker"], vec!["proxy"]]
        );
    }

    #[test]
    fn network_mode_service_is_an_edge() {
        let mut p = project(&[("a", &[]), ("b", &[])]);
        p.services.get_mut("a").unwrap().network_mode = Some("service:b".into());
        assert_eq!(start_order(&p, &all(&p)).unwrap(), vec!["b", "a"]);
    }

    #[test]
    fn cycles_are_named() {
        let p = project(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]);
        assert_eq!(find_cycle(&p.services).unwrap(), vec!["a", "b", "c", "a"]);
        let e = start_order(&p, &all(&p)).unwrap_err().to_string();
        assert_eq!(e, "depends_on: dependency cycle: a -> b -> c -> a");
        let p = project(&[("a", &["a"])]);
        assert_eq!(find_cycle(&p.services).unwrap(), vec!["a", "a"]);
    }

    #[test]
    fn subsets_with_and_without_deps() {
        let p = project(&[
            ("web", &["db"]),
            ("db", &["vol"]),
            ("vol", &[]),
            ("other", &[]),
        ]);
        let s = select(&p, &["web".into()], false).unwrap();
        assert_eq!(s.into_iter().collect::<Vec<_>>(), vec!["db", "vol", "web"]);
        let s = select(&p, &["web".into()], true).unwrap();
        assert_eq!(start_order(&p, &s).unwrap(), vec!["web"]);
        assert_eq!(select(&p, &[], false).unwrap().len(), 4);
        let e = select(&p, &["nope".into()], false).unwrap_err().to_string();
        assert_eq!(e, "no such service: nope");
    }
}
