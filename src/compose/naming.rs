//! docker compose's naming conventions and labels, so berth's objects look like compose's and
//! `up` can find and compare what an earlier `up` made.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::model::{Project, Service};
use super::node::emit;
use super::output::service_out;
use super::ComposeError;

pub const LABEL_PROJECT: &str = "com.docker.compose.project";
pub const LABEL_SERVICE: &str = "com.docker.compose.service";
pub const LABEL_NUMBER: &str = "com.docker.compose.container-number";
pub const LABEL_ONEOFF: &str = "com.docker.compose.oneoff";
pub const LABEL_CONFIG_HASH: &str = "com.docker.compose.config-hash";
pub const LABEL_WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const LABEL_CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const LABEL_VERSION: &str = "com.docker.compose.version";
pub const LABEL_DEPENDS_ON: &str = "com.docker.compose.depends_on";
pub const LABEL_NETWORK: &str = "com.docker.compose.network";
pub const LABEL_VOLUME: &str = "com.docker.compose.volume";

/// The version written in `com.docker.compose.version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A directory name made a project name: lowercase, only `[a-z0-9_-]`, starting with a letter
/// or digit.
pub fn normalize_project_name(s: &str) -> String {
    let lower: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    lower.trim_start_matches(['_', '-']).to_string()
}

/// Names given explicitly (`-p`, `COMPOSE_PROJECT_NAME`, `name:`) are checked, not rewritten.
pub fn check_project_name(s: &str, origin: &str) -> Result<(), ComposeError> {
    let ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ComposeError::invalid(
            origin,
            format!(
                "invalid project name {s:?}: must contain only lowercase letters, digits, dashes and underscores, and start with a letter or digit"
            ),
        ))
    }
}

/// `<project>_<name>`: networks, volumes, secrets and configs.
pub fn scoped_name(project: &str, name: &str) -> String {
    format!("{project}_{name}")
}

/// `<project>-<service>-<n>`, `n` from 1; or the service's `container_name`.
pub fn container_name(project: &str, service: &Service, number: u32) -> String {
    match &service.container_name {
        Some(n) => n.clone(),
        None => format!("{project}-{}-{number}", service.name),
    }
}

/// The tag given to an image built for a service without `image:`: `<project>-<service>`.
pub fn default_image_name(project: &str, service: &str) -> String {
    format!("{project}-{service}")
}

/// The image a service runs: its `image`, else the one `build` makes.
pub fn service_image(project: &str, service: &Service) -> String {
    service
        .image
        .clone()
        .unwrap_or_else(|| default_image_name(project, &service.name))
}

/// `<project>-<service>-run-<suffix>` for `compose run`.
pub fn oneoff_container_name(project: &str, service: &str, suffix: &str) -> String {
    format!("{project}-{service}-run-{suffix}")
}

/// Digest of what makes a service's containers what they are: equal hashes mean `up` leaves the
/// container alone. As docker compose does, scale, build, pull policy, dependencies and
/// profiles are left out: changing those does not recreate containers.
pub fn config_hash(service: &Service) -> String {
    let mut s = service.clone();
    s.build = None;
    s.pull_policy = None;
    s.replicas = 1;
    if let Some(d) = s.deploy.as_mut() {
        d.replicas = None;
    }
    s.depends_on.clear();
    s.profiles.clear();
    hex::encode(Sha256::digest(emit(&service_out(&s)).as_bytes()))
}

/// The labels of one container of `service`, on top of the service's own labels.
pub fn container_labels(
    project: &Project,
    service: &Service,
    number: u32,
    oneoff: bool,
) -> BTreeMap<String, String> {
    let mut l = service.labels.clone();
    let files: Vec<String> = project
        .config_files
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let deps: Vec<String> = service
        .depends_on
        .iter()
        .map(|(name, d)| format!("{name}:{}:{}", d.condition.as_str(), d.restart))
        .collect();
    for (k, v) in [
        (LABEL_PROJECT, project.name.clone()),
        (LABEL_SERVICE, service.name.clone()),
        (LABEL_NUMBER, number.to_string()),
        (
            LABEL_ONEOFF,
            if oneoff { "True" } else { "False" }.to_string(),
        ),
        (LABEL_CONFIG_HASH, config_hash(service)),
        (
            LABEL_WORKING_DIR,
            project.working_dir.to_string_lossy().into_owned(),
        ),
        (LABEL_CONFIG_FILES, files.join(",")),
        (LABEL_VERSION, VERSION.to_string()),
        (LABEL_DEPENDS_ON, deps.join(",")),
    ] {
        l.insert(k.to_string(), v);
    }
    l
}

/// Labels of a project network (`key` as in the file, e.g. `default`).
pub fn network_labels(project: &str, key: &str) -> BTreeMap<String, String> {
    [
        (LABEL_PROJECT.to_string(), project.to_string()),
        (LABEL_NETWORK.to_string(), key.to_string()),
        (LABEL_VERSION.to_string(), VERSION.to_string()),
    ]
    .into()
}

/// Labels of a project volume.
pub fn volume_labels(project: &str, key: &str) -> BTreeMap<String, String> {
    [
        (LABEL_PROJECT.to_string(), project.to_string()),
        (LABEL_VOLUME.to_string(), key.to_string()),
        (LABEL_VERSION.to_string(), VERSION.to_string()),
    ]
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc() -> Service {
        Service {
            name: "web".into(),
            image: Some("nginx".into()),
            replicas: 1,
            ..Service::default()
        }
    }

    #[test]
    fn project_names() {
        assert_eq!(normalize_project_name("My App.v2"), "myappv2");
        assert_eq!(normalize_project_name("_-x_y-"), "x_y-");
        assert!(check_project_name("my-app_1", "-p").is_ok());
        let e = check_project_name("My App", "-p").unwrap_err().to_string();
        assert!(e.starts_with("-p: invalid project name \"My App\""), "{e}");
        assert!(check_project_name("", "name").is_err());
        assert!(check_project_name("-x", "name").is_err());
    }

    #[test]
    fn names() {
        let mut s = svc();
        assert_eq!(container_name("app", &s, 2), "app-web-2");
        assert_eq!(service_image("app", &s), "nginx");
        s.image = None;
        assert_eq!(service_image("app", &s), "app-web");
        s.container_name = Some("fixed".into());
        assert_eq!(container_name("app", &s, 1), "fixed");
        assert_eq!(scoped_name("app", "default"), "app_default");
    }

    #[test]
    fn hash_is_stable_and_ignores_scale() {
        let a = svc();
        let mut b = svc();
        assert_eq!(config_hash(&a), config_hash(&b));
        assert_eq!(config_hash(&a).len(), 64);
        b.replicas = 5;
        b.profiles = vec!["x".into()];
        assert_eq!(config_hash(&a), config_hash(&b));
        b.environment.insert("A".into(), Some("1".into()));
        assert_ne!(config_hash(&a), config_hash(&b));
        let mut c = svc();
        c.image = Some("nginx:2".into());
        assert_ne!(config_hash(&a), config_hash(&c));
    }

    #[test]
    fn labels() {
        let p = Project {
            name: "app".into(),
            working_dir: "/w".into(),
            config_files: vec!["/w/compose.yaml".into(), "/w/compose.override.yaml".into()],
            ..Project::default()
        };
        let l = container_labels(&p, &svc(), 3, false);
        assert_eq!(l[LABEL_PROJECT], "app");
        assert_eq!(l[LABEL_SERVICE], "web");
        assert_eq!(l[LABEL_NUMBER], "3");
        assert_eq!(l[LABEL_ONEOFF], "False");
        assert_eq!(l[LABEL_CONFIG_HASH], config_hash(&svc()));
        assert_eq!(l[LABEL_WORKING_DIR], "/w");
        assert_eq!(
            l[LABEL_CONFIG_FILES],
            "/w/compose.yaml,/w/compose.override.yaml"
        );
        assert_eq!(network_labels("app", "default")[LABEL_NETWORK], "default");
    }
}
