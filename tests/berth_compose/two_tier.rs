//! The classic two-tier app: MariaDB from a real Debian image (data on a named volume, a
//! health check, an init file given as a compose `config`) and a PHP web tier built with
//! `build:` that waits for the database to be healthy, published on a host port; from the
//! host an HTTP request reads a row. `down` then `up` keeps the data, `down -v` removes it, nothing is left after `down`.

use super::berth_common::ctr::http_get;
use super::berth_common::{debian_image, free_port};
use super::{project, Proj};

const INDEX_PHP: &str = r#"<?php
mysqli_report(MYSQLI_REPORT_OFF);
$db = new mysqli('db', 'app', 'pw', 'app');
if ($db->connect_errno) { echo "connect failed: {$db->connect_error}\n"; exit; }
$r = $db->query('SELECT msg FROM notes ORDER BY id LIMIT 1');
echo ($r && ($row = $r->fetch_row())) ? "row: {$row[0]}\n" : "no rows\n";
"#;

/// The web tier's image: the app on top of a Debian base with php-cli and php-mysql.
const DOCKERFILE: &str = "FROM php:test\nCOPY index.php /app/index.php\nCMD [\"php\", \"-S\", \"0.0.0.0:80\", \"-t\", \"/app\"]\n";

/// mariadbd's --init-file takes one statement per line (`\n` in the YAML string is a newline).
const INIT_SQL: &str = "CREATE DATABASE IF NOT EXISTS app;\\nCREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY 'pw';\\nGRANT ALL ON app.* TO 'app'@'%';\\n";

fn compose_yaml(p: &Proj, port: u16) -> String {
    format!(
        r#"services:
  db:
    image: maria:test
    init: true
    command:
      - sh
      - -c
      - |
        mkdir -p /run/mysqld && chown mysql /run/mysqld
        [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
        chown -R mysql /var/lib/mysql
        exec mariadbd --user=mysql --bind-address=0.0.0.0 --skip-name-resolve --init-file=/init.sql
    volumes:
      - dbdata:/var/lib/mysql
    configs:
      - source: initsql
        target: /init.sql
    healthcheck:
      test: ["CMD", "mariadb-admin", "ping", "--silent"]
      interval: 1s
      timeout: 5s
      retries: 120
  web:
    build: ./web
    init: true
    ports:
      - "127.0.0.1:{port}:80"
    depends_on:
      db:
        condition: service_healthy
configs:
  initsql:
    content: "{INIT_SQL}"
volumes:
  dbdata: {{}}
{}"#,
        p.networks_yaml()
    )
}

fn sql(p: &Proj, q: &str) -> String {
    p.ok(&["exec", "db", "mariadb", "-uroot", "app", "-N", "-e", q])
}

#[test]
fn mariadb_and_php_with_health_volume_and_port() {
    let Some(p) = project(3, "tier") else { return };
    if !debian_image(&p.e.root, "maria:test", "mariadb-server")
        || !debian_image(&p.e.root, "php:test", "php-cli,php-mysql")
    {
        return;
    }
    let port = free_port();
    p.write("web/index.php", INDEX_PHP);
    p.write("web/Dockerfile", DOCKERFILE);
    p.write("compose.yaml", &compose_yaml(&p, port));
    let vol = format!("{}_dbdata", p.name);

    let out = p.run(&["up", "-d", "--wait", "--wait-timeout", "300"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // The web tier was created only once the database was healthy.
    let healthy = err.find(&format!("{}-db-1  Healthy", p.name));
    let created = err.find(&format!("{}-web-1  Creating", p.name));
    assert!(healthy.is_some() && healthy < created, "{err}");
    let ps = p.ok(&["ps"]);
    assert!(ps.contains("(healthy)"), "{ps}");
    assert_eq!(http_get(port).lines().last(), Some("no rows"));

    sql(&p, "CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, msg TEXT); INSERT INTO notes (msg) VALUES ('kept across down');");
    let body = http_get(port);
    assert!(body.ends_with("row: kept across down\n"), "{body}");

    // down keeps the named volume, and up finds the data again.
    p.ok(&["down"]);
    p.assert_clean(&[&vol]);
    p.ok(&["up", "-d", "--wait", "--wait-timeout", "300"]);
    let body = http_get(port);
    assert!(body.ends_with("row: kept across down\n"), "{body}");

    // down -v removes the data: a fresh database has no table.
    p.ok(&["down", "-v"]);
    p.assert_clean(&[]);
    p.ok(&["up", "-d", "--wait", "--wait-timeout", "300"]);
    let body = http_get(port);
    assert!(body.ends_with("no rows\n"), "{body}");
    let web_image = format!("{}-web", p.name);
    assert!(p.e.ok(&["images"]).contains(&web_image));
    p.ok(&["down", "-v", "--rmi", "local"]);
    p.assert_clean(&[]);
    let images = p.e.ok(&["images"]);
    assert!(
        !images.contains(&web_image) && images.contains("maria"),
        "{images}"
    );
}
