//! End to end over the library: a realistic multi-stage Dockerfile planned against a real
//! context directory, its COPY sources resolved and hashed, the cache-key chain computed, and
//! the final image config checked field by field.

use std::collections::BTreeMap;
use std::fs;

use super::cache::{base_key, step_key};
use super::context::Tree;
use super::plan::{plan, resolve_context_sources, Base, BuildOptions, CopyFrom, Plan, StepKind};
use crate::image::types::Platform;
use crate::image::types::RunConfig;

const DOCKERFILE: &str = r#"# syntax=docker/dockerfile:1
# escape=\
ARG GO_VERSION=1.22
ARG DEBIAN=bookworm

FROM golang:${GO_VERSION}-${DEBIAN} AS builder
ARG VERSION=dev
WORKDIR /src
COPY go.mod main.go ./
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -ldflags "-X main.version=${VERSION}" -o /out/app .
RUN <<EOF
set -e
echo "built ${VERSION}" > /out/BUILD_INFO
EOF

FROM debian:${DEBIAN}-slim
LABEL org.opencontainers.image.title="demo app" \
      maintainer=ops@example.com
ENV APP_HOME=/srv/app \
    PORT=8080
WORKDIR $APP_HOME
COPY --from=builder /out/app /out/BUILD_INFO ./
COPY --chmod=0644 static/ static/
USER 10001:10001
EXPOSE ${PORT}/tcp
VOLUME ["/srv/app/data"]
HEALTHCHECK --interval=30s --timeout=3s --retries=3 \
  CMD ["/srv/app/app", "-healthcheck"]
ONBUILD COPY . /srv/app/extra/
STOPSIGNAL SIGINT
ENTRYPOINT ["/srv/app/app"]
CMD ["-port", "8080"]
"#;

fn resolver(name: &str, _p: &Platform) -> Result<RunConfig, String> {
    let mut c = RunConfig::default();
    match name {
        "golang:1.22-bookworm" => {
            c.env_set(
                "PATH",
                "/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/bin:/bin",
            );
            c.env_set("GOLANG_VERSION", "1.22.5");
            c.working_dir = Some("/go".into());
        }
        "debian:bookworm-slim" => {
            c.env_set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/bin:/bin");
            c.cmd = Some(vec!["bash".into()]);
        }
        other => return Err(format!("unexpected base {other}")),
    }
    Ok(c)
}

fn build_plan(args: &[(&str, &str)]) -> Plan {
    let opts = BuildOptions {
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    let mut r = resolver;
    plan(DOCKERFILE, &opts, &mut r).unwrap()
}

#[test]
fn multi_stage_plan_and_final_config() {
    let p = build_plan(&[("VERSION", "1.4.2")]);
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert_eq!(p.stages.len(), 2);

    let builder = &p.stages[0];
    assert_eq!(builder.name.as_deref(), Some("builder"));
    assert_eq!(builder.base, Base::Image("golang:1.22-bookworm".into()));
    let displays: Vec<&str> = builder.steps.iter().map(|s| s.display.as_str()).collect();
    assert_eq!(
        displays[0],
        "FROM golang:${GO_VERSION}-${DEBIAN} AS builder"
    );
    assert_eq!(displays[1], "ARG VERSION=dev");
    let StepKind::Copy(c) = &builder.steps[3].kind else {
        panic!("{:?}", builder.steps[3])
    };
    assert_eq!(c.sources, vec!["go.mod".to_string(), "main.go".to_string()]);
    assert_eq!(c.dest, "/src/");
    let StepKind::Run(build) = &builder.steps[4].kind else {
        panic!()
    };
    assert_eq!(builder.steps[4].line, 10);
    assert_eq!(build.argv[..2], ["/bin/sh".to_string(), "-c".to_string()]);
    // RUN is not expanded by the builder; the shell sees ${VERSION} and the build arg in its env.
    assert!(build.argv[2].contains("-X main.version=${VERSION}"));
    assert!(build.env.contains(&"VERSION=1.4.2".to_string()));
    assert!(build.env.contains(&"GOLANG_VERSION=1.22.5".to_string()));
    assert_eq!(build.workdir, "/src");
    assert_eq!(build.mounts[0]["type"], "cache");
    assert!(builder.steps[4]
        .created_by
        .starts_with("|1 VERSION=1.4.2 /bin/sh -c CGO_ENABLED=0"));
    let StepKind::Run(heredoc) = &builder.steps[5].kind else {
        panic!()
    };
    assert_eq!(
        heredoc.argv[2],
        "set -e\necho \"built ${VERSION}\" > /out/BUILD_INFO\n"
    );

    let fin = p.target();
    assert_eq!(fin.index, 1);
    assert_eq!(fin.base, Base::Image("debian:bookworm-slim".into()));
    let StepKind::Copy(from_builder) = &fin.steps[4].kind else {
        panic!()
    };
    assert_eq!(from_builder.from, CopyFrom::Stage(0));
    assert_eq!(from_builder.dest, "/srv/app/");
    let StepKind::Copy(stat) = &fin.steps[5].kind else {
        panic!()
    };
    assert_eq!(stat.chmod, Some(0o644));
    assert_eq!(stat.dest, "/srv/app/static/");
    assert!(matches!(&fin.steps[3].kind, StepKind::Workdir { path, .. } if path == "/srv/app"));

    let json = serde_json::to_value(&fin.state.config).unwrap();
    let want = serde_json::json!({
        "User": "10001:10001",
        "ExposedPorts": {"8080/tcp": {}},
        "Env": [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/bin:/bin",
            "APP_HOME=/srv/app",
            "PORT=8080"
        ],
        "Entrypoint": ["/srv/app/app"],
        "Cmd": ["-port", "8080"],
        "Healthcheck": {
            "Test": ["CMD", "/srv/app/app", "-healthcheck"],
            "Interval": 30_000_000_000i64,
            "Timeout": 3_000_000_000i64,
            "Retries": 3
        },
        "Volumes": {"/srv/app/data": {}},
        "WorkingDir": "/srv/app",
        "Labels": {"org.opencontainers.image.title": "demo app", "maintainer": "ops@example.com"},
        "StopSignal": "SIGINT",
        "OnBuild": ["COPY . /srv/app/extra/"]
    });
    assert_eq!(json, want);
    let history: Vec<&str> = fin.steps[1..]
        .iter()
        .map(|s| s.created_by.as_str())
        .collect();
    assert_eq!(
        history[0],
        "/bin/sh -c #(nop)  LABEL org.opencontainers.image.title=demo app maintainer=ops@example.com"
    );
    assert_eq!(
        history[1],
        "/bin/sh -c #(nop)  ENV APP_HOME=/srv/app PORT=8080"
    );
}

/// The executor's walk, reduced to keys: a key per step, context COPY sources hashed.
fn keys(p: &Plan, tree: &Tree) -> Vec<String> {
    let mut stage_keys: BTreeMap<usize, String> = BTreeMap::new();
    let mut all = Vec::new();
    for sp in &p.stages {
        let base_id = match &sp.base {
            Base::Stage(i) => stage_keys[i].clone(),
            _ => "sha256:fixed-config-digest".to_string(),
        };
        let mut key = base_key(&sp.base, &base_id);
        for step in &sp.steps[1..] {
            let inputs: Vec<String> = match &step.kind {
                StepKind::Copy(c) => match c.from {
                    CopyFrom::Context => vec![
                        tree.resolve(&c.sources, c.instruction(), step.line)
                            .unwrap()
                            .hash,
                    ],
                    CopyFrom::Stage(i) => vec![stage_keys[&i].clone()],
                    CopyFrom::Image(_) => vec![],
                },
                _ => vec![],
            };
            let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            key = step_key(&key, step, &refs);
            all.push(key.clone());
        }
        stage_keys.insert(sp.index, key);
    }
    all
}

#[test]
fn context_hashes_and_cache_chain() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("go.mod"), "module demo\n").unwrap();
    fs::write(d.join("main.go"), "package main\n").unwrap();
    fs::create_dir(d.join("static")).unwrap();
    fs::write(d.join("static/index.html"), "<h1>hi</h1>").unwrap();
    fs::write(d.join("notes.tmp"), "scratch").unwrap();
    fs::write(d.join(".dockerignore"), "*.tmp\n").unwrap();
    let tree = Tree::open_context(d).unwrap();

    let p = build_plan(&[]);
    let k1 = keys(&p, &tree);
    assert_eq!(
        k1,
        keys(&build_plan(&[]), &tree),
        "nothing changed: all hit"
    );
    // An ignored file changing invalidates nothing.
    fs::write(d.join("notes.tmp"), "changed").unwrap();
    assert_eq!(k1, keys(&p, &tree));
    // Touching a static file invalidates from the final stage's `COPY static/` on.
    fs::write(d.join("static/index.html"), "<h1>hello</h1>").unwrap();
    let k2 = keys(&p, &tree);
    let n_builder = p.stages[0].steps.len() - 1;
    let first_diff = k1.iter().zip(&k2).position(|(a, b)| a != b);
    assert_eq!(first_diff, Some(n_builder + 4));
    assert_eq!(k1[..n_builder + 4], k2[..n_builder + 4]);
    // A changed build arg invalidates the builder from its ARG step on; the final stage keeps
    // its first steps and misses from `COPY --from=builder` on.
    let k3 = keys(&build_plan(&[("VERSION", "2")]), &tree);
    let differ: Vec<bool> = k3.iter().zip(&k2).map(|(a, b)| a != b).collect();
    assert!(differ[..n_builder].iter().all(|d| *d));
    assert_eq!(differ[n_builder..n_builder + 3], [false, false, false]);
    assert!(differ[n_builder + 3..].iter().all(|d| *d));
    // Up-front resolution: both context COPYs, nothing for COPY --from.
    let resolved = resolve_context_sources(&p, &tree).unwrap();
    let at: Vec<&(usize, usize)> = resolved.keys().collect();
    assert_eq!(at, vec![&(0, 3), &(1, 5)]);
    assert_eq!(resolved[&(0, 3)].kind, "multi");
    assert_eq!(resolved[&(1, 5)].kind, "dir");
    // A missing source names its line, before anything runs.
    fs::remove_file(d.join("main.go")).unwrap();
    let e = resolve_context_sources(&p, &tree).unwrap_err();
    assert_eq!(e.line, 9);
    let StepKind::Copy(c) = &p.stages[0].steps[3].kind else {
        panic!()
    };
    let e = tree.resolve(&c.sources, "COPY", 9).unwrap_err();
    assert_eq!(e.to_string(), "Dockerfile:9: COPY failed: file not found in build context or excluded by .dockerignore: stat main.go: file does not exist");
}
