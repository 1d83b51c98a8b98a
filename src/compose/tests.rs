//! End to end: realistic projects written to a temp dir, loaded through `load_project`.

use std::path::Path;
use std::time::Duration;

use super::*;

const BASE: &str = r#"
name: ${APP_NAME:-shop}
x-common: &common
  restart: unless-stopped
  labels:
    tier: app

services:
  db:
    image: mariadb:${MARIADB_TAG:?set MARIADB_TAG in .env}
    environment:
      MARIADB_ROOT_PASSWORD: ${DB_ROOT_PW}
      MARIADB_DATABASE: shop
      LITERAL: "$$NOT_A_VAR"
    volumes:
      - db-data:/var/lib/mysql
    healthcheck:
      test: ["CMD", "healthcheck.sh", "--connect", "--innodb_initialized"]
      interval: 5s
      timeout: 3s
      retries: 10
      start_period: 1m30s
  web:
    <<: *common
    build:
      context: ./web
      dockerfile: Dockerfile
      args:
        PHP_VERSION: "8.2"
      target: prod
    command: php -S 0.0.0.0:80 -t /srv 'index.php'
    environment:
      - DB_HOST=db
      - DB_ROOT_PW
    ports:
      - "${WEB_PORT:-8080}:80"
    depends_on:
      db:
        condition: service_healthy
    volumes:
      - ./web/src:/srv:ro
    stop_grace_period: 20s
  redis:
    image: redis:7
    profiles: [queue]
  worker:
    image: shop-worker:latest
    profiles: [queue]
    restart: on-failure
    depends_on: [redis]
    deploy:
      replicas: 3
      resources:
        limits: {cpus: "0.5", memory: 128m}
    environment:
      QUEUE: redis://redis:6379

volumes:
  db-data:
"#;

const OVERRIDE: &str = r#"
services:
  web:
    environment:
      APP_ENV: dev
    ports:
      - "127.0.0.1:9229:9229"
    command: ["php", "-S", "0.0.0.0:80", "-t", "/srv", "-d", "display_errors=1"]
  worker:
    environment:
      QUEUE_DEBUG: "1"
"#;

fn write_project(dir: &Path) {
    std::fs::create_dir_all(dir.join("web/src")).unwrap();
    std::fs::write(dir.join("web/Dockerfile"), "FROM debian\n").unwrap();
    std::fs::write(dir.join("compose.yaml"), BASE).unwrap();
    std::fs::write(dir.join("compose.dev.yaml"), OVERRIDE).unwrap();
    std::fs::write(
        dir.join(".env"),
        "MARIADB_TAG=11.4\nDB_ROOT_PW=secret\nWEB_PORT=8081\n",
    )
    .unwrap();
}

fn opts(dir: &Path) -> LoadOptions {
    LoadOptions {
        cwd: dir.to_path_buf(),
        files: vec!["compose.yaml".into(), "compose.dev.yaml".into()],
        ..LoadOptions::default()
    }
}

#[test]
fn two_file_project_resolves() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    write_project(dir);
    let p = load_project(&opts(dir)).unwrap();
    assert_eq!(p.name, "shop");
    assert_eq!(p.working_dir, dir);
    assert_eq!(p.config_files.len(), 2);
    // Profiles: queue is not active, so redis and worker are disabled.
    assert_eq!(p.services.keys().collect::<Vec<_>>(), vec!["db", "web"]);
    assert_eq!(
        p.disabled_services.keys().collect::<Vec<_>>(),
        vec!["redis", "worker"]
    );

    let db = &p.services["db"];
    assert_eq!(db.image.as_deref(), Some("mariadb:11.4"));
    assert_eq!(
        db.environment["MARIADB_ROOT_PASSWORD"].as_deref(),
        Some("secret")
    );
    let hc = db.healthcheck.as_ref().unwrap();
    assert_eq!(hc.test[0], "CMD");
    assert_eq!(hc.interval, Some(Duration::from_secs(5)));
    assert_eq!(hc.start_period, Some(Duration::from_secs(90)));
    assert_eq!(hc.retries, Some(10));
    assert_eq!(db.volumes[0].kind, MountType::Volume);
    assert_eq!(db.volumes[0].source.as_deref(), Some("db-data"));
    assert_eq!(p.volumes["db-data"].name, "shop_db-data");

    let web = &p.services["web"];
    assert_eq!(web.restart.as_deref(), Some("unless-stopped"));
    assert_eq!(web.labels["tier"], "app");
    let b = web.build.as_ref().unwrap();
    assert_eq!(b.context, dir.join("web"));
    assert_eq!(b.args["PHP_VERSION"].as_deref(), Some("8.2"));
    assert_eq!(b.target.as_deref(), Some("prod"));
    // The override's command replaces; environment merges by key.
    assert_eq!(
        web.command.as_ref().unwrap().last().unwrap(),
        "display_errors=1"
    );
    assert_eq!(web.environment["DB_HOST"].as_deref(), Some("db"));
    assert_eq!(web.environment["DB_ROOT_PW"].as_deref(), Some("secret"));
    assert_eq!(web.environment["APP_ENV"].as_deref(), Some("dev"));
    // Ports append: .env's WEB_PORT, and the override's debug port.
    assert_eq!(web.ports.len(), 2);
    assert_eq!(
        (web.ports[0].published, web.ports[0].target),
        (Some((8081, 8081)), 80)
    );
    assert_eq!(web.ports[1].host_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(web.depends_on["db"].condition, Condition::Healthy);
    assert_eq!(web.volumes[0].kind, MountType::Bind);
    assert_eq!(
        web.volumes[0].source.as_deref(),
        Some(dir.join("web/src").to_str().unwrap())
    );
    assert!(web.volumes[0].read_only);
    assert_eq!(web.stop_grace_period, Some(Duration::from_secs(20)));
    assert!(web.networks.contains_key("default"));
    assert_eq!(p.networks["default"].name, "shop_default");

    let subset = select(&p, &[], false).unwrap();
    assert_eq!(start_order(&p, &subset).unwrap(), vec!["db", "web"]);
    assert_eq!(stop_order(&p, &subset).unwrap(), vec!["web", "db"]);
    assert_eq!(
        used_volumes(&p, &subset).into_iter().collect::<Vec<_>>(),
        vec!["db-data"]
    );
    assert_eq!(
        used_networks(&p, &subset).into_iter().collect::<Vec<_>>(),
        vec!["default"]
    );
    let web_only = select(&p, &["web".into()], true).unwrap();
    assert!(used_volumes(&p, &web_only).is_empty());
    assert_eq!(container_name(&p.name, web, 1), "shop-web-1");
}

#[test]
fn profiles_env_and_scale() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    write_project(dir);
    let mut o = opts(dir);
    o.profiles = vec!["queue".into()];
    o.environment.insert("WEB_PORT".into(), "9000".into());
    o.environment.insert("APP_NAME".into(), "shop2".into());
    let p = load_project(&o).unwrap();
    assert_eq!(p.name, "shop2");
    assert_eq!(p.services.len(), 4);
    // The process environment wins over .env.
    assert_eq!(p.services["web"].ports[0].published, Some((9000, 9000)));
    let w = &p.services["worker"];
    assert_eq!(w.replicas, 3);
    assert_eq!(w.restart.as_deref(), Some("on-failure"));
    let limits = &w.deploy.as_ref().unwrap().limits;
    assert_eq!((limits.cpus, limits.memory), (Some(0.5), Some(128 << 20)));
    assert_eq!(
        (w.cpu_limit(), w.memory_limit()),
        (Some(0.5), Some(128 << 20))
    );
    assert_eq!(w.restart_policy(), "on-failure");
    assert_eq!(w.environment["QUEUE_DEBUG"].as_deref(), Some("1"));
    let order = start_order(&p, &select(&p, &[], false).unwrap()).unwrap();
    assert_eq!(order, vec!["db", "redis", "web", "worker"]);
    let names: Vec<String> = (1..=w.replicas)
        .map(|n| container_name(&p.name, w, n))
        .collect();
    assert_eq!(
        names,
        vec!["shop2-worker-1", "shop2-worker-2", "shop2-worker-3"]
    );

    let mut p = p;
    p.set_scale("worker", 5).unwrap();
    assert_eq!(p.services["worker"].replicas, 5);
    assert!(p.set_scale("nope", 2).is_err());
    p.services.get_mut("db").unwrap().container_name = Some("db".into());
    assert!(p.set_scale("db", 2).is_err());

    // Naming a service enables it and its profile (so redis comes along).
    let mut o = opts(dir);
    o.services = vec!["worker".into()];
    let p = load_project(&o).unwrap();
    assert!(p.services.contains_key("worker") && p.services.contains_key("redis"));
    let s = select(&p, &["worker".into()], false).unwrap();
    assert_eq!(start_order(&p, &s).unwrap(), vec!["redis", "worker"]);
    let s = select(&p, &["worker".into()], true).unwrap();
    assert_eq!(start_order(&p, &s).unwrap(), vec!["worker"]);

    // COMPOSE_PROFILES and -p.
    let mut o = opts(dir);
    o.environment
        .insert("COMPOSE_PROFILES".into(), "queue".into());
    o.project_name = Some("explicit".into());
    let p = load_project(&o).unwrap();
    assert_eq!(p.name, "explicit");
    assert_eq!(p.services.len(), 4);
}

#[test]
fn config_output_and_hash() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    write_project(dir);
    let p = load_project(&opts(dir)).unwrap();
    let text = project_yaml(&p);
    assert!(text.starts_with("name: shop\nservices:\n  db:\n"), "{text}");
    assert!(text.contains("    image: mariadb:11.4\n"), "{text}");
    assert!(text.contains("      start_period: 1m30s\n"), "{text}");
    assert!(
        text.contains("networks:\n  default:\n    name: shop_default\n"),
        "{text}"
    );
    // What `config` prints loads again to the same model.
    std::fs::write(dir.join("resolved.yaml"), &text).unwrap();
    let again = load_project(&LoadOptions {
        cwd: dir.to_path_buf(),
        files: vec!["resolved.yaml".into()],
        ..LoadOptions::default()
    })
    .unwrap();
    assert_eq!(again.services, p.services);
    assert_eq!(again.volumes, p.volumes);
    assert_eq!(again.networks, p.networks);
    for (name, s) in &p.services {
        assert_eq!(config_hash(s), config_hash(&again.services[name]), "{name}");
    }

    // A changed environment changes web's hash only.
    let mut o = opts(dir);
    o.environment.insert("DB_ROOT_PW".into(), "other".into());
    let changed = load_project(&o).unwrap();
    assert_ne!(
        config_hash(&changed.services["web"]),
        config_hash(&p.services["web"])
    );
    let mut o = opts(dir);
    o.environment.insert("WEB_PORT".into(), "8081".into());
    let same = load_project(&o).unwrap();
    assert_eq!(
        config_hash(&same.services["web"]),
        config_hash(&p.services["web"])
    );
    let labels = container_labels(&p, &p.services["web"], 1, false);
    assert_eq!(labels["com.docker.compose.project"], "shop");
    assert_eq!(
        labels["com.docker.compose.depends_on"],
        "db:service_healthy:false"
    );
}

fn load_err(dir: &Path, yaml: &str) -> String {
    std::fs::write(dir.join("compose.yaml"), yaml).unwrap();
    load_project(&LoadOptions {
        cwd: dir.to_path_buf(),
        ..LoadOptions::default()
    })
    .unwrap_err()
    .to_string()
}

#[test]
fn bad_files_give_one_clear_error() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let e = load_err(dir, "services:\n  web:\n    image: a\n   bad: [\n");
    assert!(
        e.contains("compose.yaml:") && e.contains("YAML syntax error"),
        "{e}"
    );
    let e = load_err(dir, "services:\n  web:\n    image: a\n    foo: 1\n");
    assert_eq!(e, "services.web.foo: unsupported key");
    let e = load_err(dir, "services:\n  web:\n    image: a\ninclude: [x.yaml]\n");
    assert_eq!(e, "include: unsupported key");
    let e = load_err(
        dir,
        "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [c]}\n  c: {image: x, depends_on: [a]}\n",
    );
    assert_eq!(e, "services: dependency cycle: a -> b -> c -> a");
    let e = load_err(
        dir,
        "services:\n  web:\n    image: \"a:${TAG:?error text}\"\n",
    );
    assert_eq!(
        e,
        "services.web.image: required variable TAG is missing a value: error text"
    );
    let e = load_err(dir, "services:\n  web:\n    build: ./nope\n");
    assert!(
        e.starts_with("services.web.build.context: build context "),
        "{e}"
    );
    let e = load_err(dir, "services:\n  web: {image: a, depends_on: [db]}\n");
    assert_eq!(
        e,
        "services.web.depends_on.db: depends on undefined service \"db\""
    );
    let e = load_err(
        dir,
        "services:\n  web: {image: a, container_name: w, scale: 2}\n",
    );
    assert!(e.starts_with("services.web.container_name: "), "{e}");
    let e = load_err(
        dir,
        "services:\n  web: {image: a, ports: [\"8000-8001:80-82\"]}\n",
    );
    assert!(
        e.starts_with("services.web.ports[0]: port ranges don't match"),
        "{e}"
    );
    let e = load_err(
        dir,
        "services:\n  web: {image: a, volumes: [\"data:/d\"]}\n",
    );
    assert!(e.contains("named volume \"data\" is not declared"), "{e}");
    let e = load_err(dir, "services:\n  web: {image: a, networks: [front]}\n");
    assert_eq!(
        e,
        "services.web.networks.front: refers to undefined network \"front\""
    );
    let e = load_err(
        dir,
        "services:\n  web: {image: a, mem_limit: 1g, deploy: {resources: {limits: {memory: 2g}}}}\n",
    );
    assert_eq!(
        e,
        "services.web.mem_limit: differs from the value in deploy.resources.limits"
    );
    let e = load_err(
        dir,
        "services:\n  web: {image: a, secrets: [pw]}\nsecrets:\n  pw: {file: ./pw.txt}\n",
    );
    assert!(
        e.starts_with("secrets.pw.file: ") && e.ends_with("pw.txt does not exist"),
        "{e}"
    );
    let e = load_err(dir, "services:\n  web: {image: a, secrets: [pw]}\n");
    assert_eq!(
        e,
        "services.web.secrets[0]: refers to undefined secret \"pw\""
    );
    let e = load_err(dir, "services:\n  web: {restart: always}\n");
    assert_eq!(e, "services.web: has neither image nor build");
    let e = load_err(
        dir,
        "services:\n  web: {image: a, depends_on: [db]}\n  db: {image: b, profiles: [x]}\n",
    );
    assert!(
        e.starts_with("services.web.depends_on.db: service \"db\" is disabled"),
        "{e}"
    );
    // A disabled service is not checked.
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  web: {image: a}\n  dev: {build: ./nope, profiles: [dev]}\n",
    )
    .unwrap();
    let o = LoadOptions {
        cwd: dir.to_path_buf(),
        ..LoadOptions::default()
    };
    assert!(load_project(&o).is_ok());
    let e = load_project(&LoadOptions {
        profiles: vec!["dev".into()],
        ..o
    })
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("services.dev.build.context: "), "{e}");
    let e = load_err(dir, "services:\n  web: {image: \"$\"}\n");
    assert!(
        e.starts_with("services.web.image: invalid interpolation format"),
        "{e}"
    );
}

#[test]
fn names_and_dotenv_details() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("My Project.1");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("docker-compose.yml"), "services:\n  a:\n    image: x\n    environment: [FROM_ENV_FILE]\nx-anything: {ignored: true}\n").unwrap();
    std::fs::write(dir.join("custom.env"), "FROM_ENV_FILE=yes\n").unwrap();
    std::fs::write(
        dir.join(".env"),
        "FROM_ENV_FILE=dotenv\nCOMPOSE_PROJECT_NAME=fromenv\n",
    )
    .unwrap();
    let p = load_project(&LoadOptions {
        cwd: dir.clone(),
        ..LoadOptions::default()
    })
    .unwrap();
    assert_eq!(p.name, "fromenv");
    assert_eq!(
        p.services["a"].environment["FROM_ENV_FILE"].as_deref(),
        Some("dotenv")
    );
    // --env-file replaces .env: the name falls back to the directory, normalized.
    let p = load_project(&LoadOptions {
        cwd: dir.clone(),
        env_files: vec!["custom.env".into()],
        ..LoadOptions::default()
    })
    .unwrap();
    assert_eq!(p.name, "myproject1");
    assert_eq!(
        p.services["a"].environment["FROM_ENV_FILE"].as_deref(),
        Some("yes")
    );
    let e = load_project(&LoadOptions {
        cwd: dir.clone(),
        project_name: Some("Bad Name".into()),
        ..LoadOptions::default()
    })
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("-p: invalid project name"), "{e}");
}

#[test]
fn version_is_a_warning_and_unset_vars_warn() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    std::fs::write(
        dir.join("compose.yaml"),
        "version: \"3.8\"\nname: w\nservices:\n  a: {image: \"x:${UNSET_TAG}latest\"}\n",
    )
    .unwrap();
    let p = load_project(&LoadOptions {
        cwd: dir.to_path_buf(),
        ..LoadOptions::default()
    })
    .unwrap();
    assert_eq!(p.services["a"].image.as_deref(), Some("x:latest"));
    assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
}
