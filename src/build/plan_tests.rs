use super::*;

fn base_config(name: &str) -> std::result::Result<RunConfig, String> {
    let mut c = RunConfig::default();
    match name {
        "busybox" | "alpine:3.19" | "alpine:3.20" | "debian:bookworm" => {
            c.env_set("PATH", "/usr/bin:/bin");
            c.cmd = Some(vec!["sh".into()]);
        }
        "onbuild-base" => {
            c.env_set("PATH", "/bin");
            c.on_build = Some(vec![
                "RUN echo triggered".into(),
                "ENV FROM_TRIGGER=1".into(),
            ]);
        }
        other => return Err(format!("pull access denied for {other}")),
    }
    Ok(c)
}

fn run_plan(text: &str, opts: &BuildOptions) -> Result<Plan> {
    let mut resolver = |name: &str, _p: &Platform| base_config(name);
    plan(text, opts, &mut resolver)
}

fn opts(args: &[(&str, &str)]) -> BuildOptions {
    BuildOptions {
        build_args: args
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

fn runs(sp: &StagePlan) -> Vec<&RunStep> {
    sp.steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Run(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn has_env(r: &RunStep, kv: &str) -> bool {
    r.env.iter().any(|e| e == kv)
}

#[test]
fn global_args_only_in_from_unless_redeclared() {
    let text = "ARG V=3.19\nFROM alpine:$V\nRUN echo one\nARG V\nRUN echo two\n";
    let p = run_plan(text, &opts(&[])).unwrap();
    let sp = p.target();
    assert_eq!(sp.base, Base::Image("alpine:3.19".into()));
    let r = runs(sp);
    assert!(!r[0].env.iter().any(|e| e.starts_with("V=")));
    assert!(has_env(r[1], "V=3.19"));
    let p = run_plan(text, &opts(&[("V", "3.20")])).unwrap();
    assert_eq!(p.target().base, Base::Image("alpine:3.20".into()));
    assert_eq!(
        p.target().steps[3].created_by,
        "|1 V=3.20 /bin/sh -c echo two"
    );
    assert!(p.warnings.is_empty());
}

#[test]
fn env_overrides_arg_and_base_env_expands() {
    let text = "FROM busybox\nARG X=a\nENV X=b\nWORKDIR /$X\nENV PATH=$PATH:/opt/bin\nRUN true\n";
    let p = run_plan(text, &opts(&[("X", "cli")])).unwrap();
    let sp = p.target();
    assert_eq!(sp.state.config.working_dir.as_deref(), Some("/b"));
    assert_eq!(
        sp.state.config.env_get("PATH").as_deref(),
        Some("/usr/bin:/bin:/opt/bin")
    );
    let r = runs(sp)[0];
    assert!(has_env(r, "X=b"));
    assert!(!has_env(r, "X=cli"));
    assert_eq!(r.workdir, "/b");
    assert!(matches!(sp.steps[3].kind, StepKind::Workdir { ref path, .. } if path == "/b"));
}

#[test]
fn proxies_platform_args_and_warnings() {
    let text = "FROM busybox\nARG TARGETARCH\nARG TARGETPLATFORM\nRUN echo $TARGETARCH\n";
    let mut o = opts(&[("HTTP_PROXY", "http://proxy:3128"), ("UNUSED", "1")]);
    o.platform = Some(Platform::parse("linux/arm64").unwrap());
    let p = run_plan(text, &o).unwrap();
    let step = &p.target().steps[3];
    let StepKind::Run(r) = &step.kind else {
        panic!()
    };
    assert!(has_env(r, "TARGETARCH=arm64"));
    assert!(has_env(r, "TARGETPLATFORM=linux/arm64"));
    assert!(has_env(r, "HTTP_PROXY=http://proxy:3128"));
    assert!(!step.created_by.contains("proxy"));
    assert!(!step.cache_text.contains("proxy"));
    assert_eq!(
        p.warnings,
        vec!["[Warning] One or more build-args [UNUSED] were not consumed".to_string()]
    );
}

#[test]
fn target_builds_only_needed_stages() {
    let text = "FROM busybox AS deps\nRUN fetch\nFROM busybox AS unused\nRUN slow\nFROM deps AS build\nRUN make\nFROM busybox AS test\nCOPY --from=build /out /out\nFROM scratch\nCOPY --from=2 /x /x\n";
    let p = run_plan(text, &opts(&[])).unwrap();
    let idx: Vec<usize> = p.stages.iter().map(|s| s.index).collect();
    assert_eq!(idx, vec![0, 2, 4], "unused (1) and test (3) are skipped");
    let mut o = opts(&[]);
    o.target = Some("test".into());
    let p = run_plan(text, &o).unwrap();
    let idx: Vec<usize> = p.stages.iter().map(|s| s.index).collect();
    assert_eq!(idx, vec![0, 2, 3]);
    assert_eq!(p.stages[1].base, Base::Stage(0));
    let StepKind::Copy(c) = &p.target().steps[1].kind else {
        panic!()
    };
    assert_eq!(c.from, CopyFrom::Stage(2));
}

#[test]
fn copy_details() {
    let text = "FROM busybox\nWORKDIR /app\nARG MODE=0640\nCOPY --chown=1000:1000 --chmod=$MODE a.txt rel/\nCOPY --from=nginx:1.25 /etc/nginx/nginx.conf conf\nCOPY <<EOF <<'RAW' ./\nhello $MODE\nEOF\nkeep $MODE\nRAW\nADD https://example.com/f.tgz /tmp/\n";
    let p = run_plan(text, &opts(&[])).unwrap();
    let copies: Vec<&CopyStep> = p
        .target()
        .steps
        .iter()
        .filter_map(|s| match &s.kind {
            StepKind::Copy(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(copies[0].dest, "/app/rel/");
    assert_eq!(copies[0].chmod, Some(0o640));
    assert_eq!(copies[0].chown.as_deref(), Some("1000:1000"));
    assert_eq!(copies[0].from, CopyFrom::Context);
    assert_eq!(copies[1].from, CopyFrom::Image("nginx:1.25".into()));
    assert_eq!(copies[1].dest, "/app/conf");
    assert_eq!(copies[2].inline[0].content, "hello 0640\n");
    assert_eq!(copies[2].inline[1].content, "keep $MODE\n");
    assert_eq!(copies[2].dest, "/app/");
    assert!(copies[3].add && copies[3].sources[0].starts_with("https://"));
    assert_eq!(
        copies[0].created_by("file", "abc"),
        "/bin/sh -c #(nop) COPY file:abc in /app/rel/ "
    );
}

#[test]
fn copy_errors_name_the_line() {
    let e = run_plan("FROM busybox\nCOPY a b c\n", &opts(&[])).unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.message.contains("must be a directory and end with a /"));
    let e = run_plan("FROM busybox\n\nCOPY --from=5 /a /b\n", &opts(&[])).unwrap_err();
    assert_eq!(e.line, 3);
    let e = run_plan("FROM busybox\nCOPY --chmod=999 a /b\n", &opts(&[])).unwrap_err();
    assert!(e.message.contains("invalid chmod"));
    let e = run_plan("FROM busybox\nCOPY https://x/y /b\n", &opts(&[])).unwrap_err();
    assert!(e.message.contains("use ADD"));
}

#[test]
fn required_args_and_base_errors() {
    let text = "FROM busybox\nARG VERSION\nRUN true\nLABEL v=\"${VERSION:?VERSION is required}\"\n";
    let e = run_plan(text, &opts(&[])).unwrap_err();
    assert_eq!(e.to_string(), "Dockerfile:4: VERSION: VERSION is required");
    assert!(run_plan(text, &opts(&[("VERSION", "1")])).is_ok());
    let e = run_plan("ARG B\nFROM ${B}\n", &opts(&[])).unwrap_err();
    assert_eq!(e.line, 2);
    let e = run_plan("FROM nosuchimage\n", &opts(&[])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Dockerfile:1: nosuchimage: pull access denied for nosuchimage"
    );
    let e = run_plan("FROM --platform=bogus busybox\n", &opts(&[])).unwrap_err();
    assert_eq!(e.line, 1);
}

#[test]
fn onbuild_triggers_and_stage_inheritance() {
    let text = "FROM onbuild-base AS a\nENV A=1\nONBUILD RUN echo later\nFROM a\nRUN true\n";
    let p = run_plan(text, &opts(&[])).unwrap();
    let a = &p.stages[0];
    assert_eq!(a.steps[1].display, "RUN echo triggered (ONBUILD trigger)");
    assert_eq!(a.steps[1].line, 1);
    assert_eq!(a.state.config.env_get("FROM_TRIGGER").as_deref(), Some("1"));
    assert_eq!(
        a.state.config.on_build,
        Some(vec!["RUN echo later".to_string()])
    );
    // A stage built FROM a runs a's triggers, inherits its Env, and does not pass triggers on.
    let b = p.target();
    assert_eq!(b.steps[1].display, "RUN echo later (ONBUILD trigger)");
    assert_eq!(b.state.config.env_get("A").as_deref(), Some("1"));
    assert_eq!(b.state.config.on_build, None);
}

#[test]
fn labels_option_and_scratch() {
    let mut o = opts(&[]);
    o.labels
        .insert("org.opencontainers.image.version".into(), "1.0".into());
    let p = run_plan("FROM scratch\nLABEL a=b\nCMD [\"/app\"]\n", &o).unwrap();
    let sp = p.target();
    assert_eq!(sp.base, Base::Scratch);
    let labels = sp.state.config.labels.as_ref().unwrap();
    assert_eq!(labels["a"], "b");
    assert_eq!(labels["org.opencontainers.image.version"], "1.0");
    assert_eq!(sp.steps[2].created_by, "/bin/sh -c #(nop)  CMD [\"/app\"]");
    assert!(matches!(sp.steps[0].kind, StepKind::From(Base::Scratch)));
}
