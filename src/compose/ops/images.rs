//! Images of a project: pull what is missing (or always, per `pull_policy`), build services
//! with `build:`, push. Builds go through the builder's library entry when it is present.

use std::collections::BTreeSet;
use std::path::Path;

use super::{Action, Event, Kind, OpError, Result, Sink};
use crate::compose::model::{Project, PullPolicy, Service};
use crate::compose::naming::service_image;
use crate::image::reference::Reference;
use crate::image::registry::{self, PullOptions, PushOptions};
use crate::image::store::Store;

/// Whether the store holds `image`.
pub fn present(root: &Path, image: &str) -> bool {
    Store::open(root).is_ok_and(|s| s.lookup(image).is_ok())
}

fn pull_one(root: &Path, image: &str) -> Result<()> {
    let r = Reference::parse(image)
        .map_err(|e| OpError::Failed(format!("invalid image {image:?}: {e:#}")))?;
    let store = Store::open(root)?;
    let opts = PullOptions {
        platform: crate::build::args::host_platform(),
        insecure: registry::is_insecure(root, &r.domain, None),
        quiet: true,
        jobs: 4,
    };
    registry::pull(&store, &r, &opts)
        .map_err(|e| OpError::Failed(format!("pulling {image}: {e:#}")))?;
    Ok(())
}

/// `compose pull`: every selected service with an `image:` (those only built are skipped);
/// `ignore_buildable` skips services that also have `build:`.
pub fn pull(
    root: &Path,
    p: &Project,
    services: &BTreeSet<String>,
    ignore_buildable: bool,
    sink: Sink,
) -> Result<()> {
    for s in services.iter().filter_map(|n| p.services.get(n)) {
        let Some(image) = &s.image else { continue };
        if ignore_buildable && s.build.is_some() {
            continue;
        }
        sink(Event::new(Kind::Image, image, Action::Pulling));
        pull_one(root, image)?;
        sink(Event::new(Kind::Image, image, Action::Pulled));
    }
    Ok(())
}

/// `compose build`: every selected service with `build:`.
pub fn build(root: &Path, p: &Project, services: &BTreeSet<String>, sink: Sink) -> Result<()> {
    for s in services.iter().filter_map(|n| p.services.get(n)) {
        if s.build.is_some() {
            build_service(root, p, s, sink)?;
        }
    }
    Ok(())
}

/// Build warnings go to the compose sink; step output is the builder's business.
struct BuildSink<'a, 'b>(&'a mut Sink<'b>);

impl crate::build::exec::Sink for BuildSink<'_, '_> {
    fn event(&mut self, e: crate::build::exec::Event<'_>) {
        if let crate::build::exec::Event::Warning(w) = e {
            (self.0)(Event::Warning(w.to_string()));
        }
    }
}

/// Builds the image of one service with berth's builder, tagged `service_image`.
pub fn build_service(root: &Path, p: &Project, s: &Service, mut sink: Sink) -> Result<()> {
    let Some(b) = &s.build else {
        return Ok(());
    };
    let image = service_image(&p.name, s);
    sink(Event::new(Kind::Image, &image, Action::Building));
    let req = crate::build::exec::BuildRequest {
        context: b.context.clone(),
        // compose's dockerfile is relative to the context.
        dockerfile: b.dockerfile.as_ref().map(|d| b.context.join(d)),
        dockerfile_text: b.dockerfile_inline.clone(),
        tags: vec![image.clone()],
        build_args: b
            .args
            .iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v)))
            .collect(),
        target: b.target.clone(),
        no_cache: b.no_cache,
        pull: b.pull,
        labels: b.labels.clone(),
        ..Default::default()
    };
    crate::build::exec::build(root, &req, &mut BuildSink(&mut sink))
        .map_err(|e| OpError::Failed(format!("services.{}.build: {e}", s.name)))?;
    sink(Event::new(Kind::Image, &image, Action::Built));
    Ok(())
}

/// What `up`/`run`/`create` do before creating containers: build (with `--build`, for
/// `pull_policy: build`, or when a buildable image is missing), pull (`pull_policy: always`,
/// or a missing image), refuse a missing image with `pull_policy: never`.
pub fn ensure(
    root: &Path,
    p: &Project,
    services: &BTreeSet<String>,
    force_build: bool,
    sink: Sink,
) -> Result<()> {
    for s in services.iter().filter_map(|n| p.services.get(n)) {
        let image = service_image(&p.name, s);
        let have = present(root, &image);
        let policy = s.pull_policy.unwrap_or(PullPolicy::Missing);
        if s.build.is_some() && (force_build || policy == PullPolicy::Build || !have) {
            build_service(root, p, s, sink)?;
            continue;
        }
        match policy {
            PullPolicy::Always => {}
            _ if have => continue,
            PullPolicy::Never => {
                return Err(OpError::Failed(format!(
                    "services.{}: image {image} is not present and pull_policy is never",
                    s.name
                )))
            }
            _ => {}
        }
        sink(Event::new(Kind::Image, &image, Action::Pulling));
        pull_one(root, &image)?;
        sink(Event::new(Kind::Image, &image, Action::Pulled));
    }
    Ok(())
}

/// `compose push`: services with both `build:` and `image:` (what docker compose pushes).
pub fn push(root: &Path, p: &Project, services: &BTreeSet<String>, sink: Sink) -> Result<()> {
    let store = Store::open(root)?;
    for s in services.iter().filter_map(|n| p.services.get(n)) {
        let (Some(image), Some(_)) = (&s.image, &s.build) else {
            continue;
        };
        let (dest, img) = crate::engine::images::push_target(&store, image, None)?;
        let opts = PushOptions {
            insecure: registry::is_insecure(root, &dest.domain, None),
            quiet: true,
        };
        registry::push(&store, &img, &dest, &opts)
            .map_err(|e| OpError::Failed(format!("pushing {image}: {e:#}")))?;
        sink(Event::new(Kind::Image, image, Action::Pushed));
    }
    Ok(())
}
