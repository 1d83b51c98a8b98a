//! Planning a RUN: its argv (shell/exec form, heredocs as buildkit runs them), environment,
//! `--mount`/`--network` flags, history text and cache text.

use std::collections::BTreeMap;

use super::config::{self, ConfigState};
use super::parse::{self, CmdForm, Flag, Heredoc};
use super::plan::{InlineFile, RunStep, StepKind};
use super::{BuildError, Result};

/// (kind, created_by, cache_text)
pub type Planned = (StepKind, String, String);

pub fn plan_run(
    flags: &[Flag],
    cmd: &CmdForm,
    heredocs: &[Heredoc],
    state: &ConfigState,
    run_args: &[(String, String)],
    proxy: Vec<(String, String)>,
    x: impl Fn(&str) -> std::result::Result<String, String>,
) -> Result<Planned> {
    let c = &state.config;
    let mut mounts = Vec::new();
    let mut network = None;
    for f in flags {
        let v = x(f.value.as_deref().unwrap_or("")).map_err(BuildError::general)?;
        match f.name.as_str() {
            "mount" => mounts.push(parse_mount(&v)?),
            "network" => {
                if !matches!(v.as_str(), "default" | "none" | "host") {
                    return Err(BuildError::general(format!(
                        "RUN --network={v}: expected default, none or host"
                    )));
                }
                network = Some(v);
            }
            "security" if v == "sandbox" => {}
            _ => {
                return Err(BuildError::general(format!(
                    "RUN --{}={v} is not supported",
                    f.name
                )))
            }
        }
    }
    let (argv, script) = run_argv(cmd, heredocs, c);
    let mut env = c.env.clone().unwrap_or_default();
    env.extend(run_args.iter().map(|(k, v)| format!("{k}={v}")));
    for (k, v) in proxy {
        if c.env_get(&k).is_none() && !run_args.iter().any(|(n, _)| *n == k) {
            env.push(format!("{k}={v}"));
        }
    }
    let created_by = config::run_created_by(&argv, run_args);
    let workdir = c.working_dir.clone().unwrap_or_else(|| "/".to_string());
    // Proxy values stay out of the cache text (as docker keeps them out of the cache).
    let cache_text = format!(
        "RUN {created_by:?} env={:?} user={:?} workdir={workdir} network={network:?} mounts={mounts:?} script={script:?}",
        c.env.clone().unwrap_or_default(),
        c.user
    );
    let step = RunStep {
        argv,
        env,
        user: c.user.clone(),
        workdir,
        network,
        mounts,
        script,
    };
    Ok((StepKind::Run(step), created_by, cache_text))
}

/// argv for RUN. With heredocs: a lone heredoc is the script itself (a `#!` one is run as a
/// file); otherwise the shell gets the line and the heredocs verbatim and does the redirections.
fn run_argv(
    cmd: &CmdForm,
    heredocs: &[Heredoc],
    c: &crate::image::types::RunConfig,
) -> (Vec<String>, Option<InlineFile>) {
    let CmdForm::Shell(line) = cmd else {
        return (c.command(cmd), None);
    };
    if heredocs.is_empty() {
        return (c.command(cmd), None);
    }
    let lone = heredocs.len() == 1 && parse::heredoc_word(line.trim()).is_some();
    if lone {
        let h = &heredocs[0];
        let body = h.body();
        if body.starts_with("#!") {
            let argv = vec![format!("/dev/pipes/{}", h.name)];
            return (
                argv,
                Some(InlineFile {
                    name: h.name.clone(),
                    content: body,
                }),
            );
        }
        let mut argv = c.shell();
        argv.push(body);
        return (argv, None);
    }
    let mut script = format!("{line}\n");
    for h in heredocs {
        script.push_str(&h.content);
        script.push_str(&h.name);
        script.push('\n');
    }
    let mut argv = c.shell();
    argv.push(script);
    (argv, None)
}

/// `type=cache,target=/x,from=stage` → map; `type` defaults to `bind` as in buildkit.
fn parse_mount(v: &str) -> Result<BTreeMap<String, String>> {
    let mut m = BTreeMap::new();
    for kv in v.split(',').filter(|s| !s.is_empty()) {
        let (k, val) = kv.split_once('=').unwrap_or((kv, "true"));
        let k = match k {
            "dst" | "destination" => "target",
            "src" => "source",
            other => other,
        };
        m.insert(k.to_string(), val.to_string());
    }
    m.entry("type".to_string())
        .or_insert_with(|| "bind".to_string());
    let ty = m.get("type").cloned().unwrap_or_default();
    if !matches!(ty.as_str(), "bind" | "cache" | "tmpfs" | "secret" | "ssh") {
        return Err(BuildError::general(format!(
            "RUN --mount: unknown type {ty:?}"
        )));
    }
    if !m.contains_key("target") && matches!(ty.as_str(), "bind" | "cache" | "tmpfs") {
        return Err(BuildError::general(format!(
            "RUN --mount={v}: target is required"
        )));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heredoc(name: &str, content: &str, chomp: bool) -> Heredoc {
        Heredoc {
            name: name.into(),
            content: content.into(),
            expand: true,
            chomp,
        }
    }

    fn run(cmd: CmdForm, docs: &[Heredoc], flags: &[Flag]) -> Result<RunStep> {
        let mut st = ConfigState::default();
        st.config.env_set("PATH", "/bin");
        st.config.env_set("OVER", "env");
        let args = vec![("V".to_string(), "1".to_string())];
        let proxy = vec![("http_proxy".to_string(), "http://p".to_string())];
        match plan_run(flags, &cmd, docs, &st, &args, proxy, |w| Ok(w.to_string()))?.0 {
            StepKind::Run(r) => Ok(r),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn forms_and_env() {
        let r = run(CmdForm::Shell("make all".into()), &[], &[]).unwrap();
        assert_eq!(r.argv, vec!["/bin/sh", "-c", "make all"]);
        assert_eq!(
            r.env,
            vec!["PATH=/bin", "OVER=env", "V=1", "http_proxy=http://p"]
        );
        assert_eq!(r.workdir, "/");
        let r = run(CmdForm::Exec(vec!["echo".into(), "$V".into()]), &[], &[]).unwrap();
        assert_eq!(r.argv, vec!["echo", "$V"]);
    }

    #[test]
    fn heredoc_forms() {
        let r = run(
            CmdForm::Shell("<<-EOF".into()),
            &[heredoc("EOF", "\techo a\n", true)],
            &[],
        )
        .unwrap();
        assert_eq!(r.argv, vec!["/bin/sh", "-c", "echo a\n"]);
        let r = run(
            CmdForm::Shell("<<EOF".into()),
            &[heredoc("EOF", "#!/usr/bin/env python3\nprint(1)\n", false)],
            &[],
        )
        .unwrap();
        assert_eq!(r.argv, vec!["/dev/pipes/EOF"]);
        assert_eq!(
            r.script.unwrap().content,
            "#!/usr/bin/env python3\nprint(1)\n"
        );
        let docs = [heredoc("A", "x\n", false), heredoc("B", "\ty\n", true)];
        let r = run(
            CmdForm::Shell("cat <<A >/a && cat <<-B >/b".into()),
            &docs,
            &[],
        )
        .unwrap();
        assert_eq!(r.argv[2], "cat <<A >/a && cat <<-B >/b\nx\nA\n\ty\nB\n");
    }

    #[test]
    fn flags() {
        let f = |n: &str, v: &str| Flag {
            name: n.into(),
            value: Some(v.into()),
        };
        let r = run(
            CmdForm::Shell("x".into()),
            &[],
            &[f("mount", "type=cache,dst=/c"), f("network", "none")],
        )
        .unwrap();
        assert_eq!(r.mounts[0]["target"], "/c");
        assert_eq!(r.network.as_deref(), Some("none"));
        assert!(run(CmdForm::Shell("x".into()), &[], &[f("network", "bridge0")]).is_err());
        assert!(run(
            CmdForm::Shell("x".into()),
            &[],
            &[f("mount", "type=weird,target=/x")]
        )
        .is_err());
        assert!(run(CmdForm::Shell("x".into()), &[], &[f("mount", "type=bind")]).is_err());
        assert!(run(
            CmdForm::Shell("x".into()),
            &[],
            &[f("security", "insecure")]
        )
        .is_err());
    }
}
