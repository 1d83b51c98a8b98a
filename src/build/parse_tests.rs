use super::*;

fn kinds(text: &str) -> Vec<Kind> {
    parse(text)
        .unwrap()
        .instructions
        .into_iter()
        .map(|i| i.kind)
        .collect()
}

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn directives_comments_continuations() {
    let df = parse(
        "# syntax=docker/dockerfile:1\n# escape=`\n# a comment\nFROM scratch\nRUN echo a `\n  # dropped comment\n\n  b\n",
    )
    .unwrap();
    assert_eq!(df.escape, '`');
    assert_eq!(df.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.instructions.len(), 2);
    assert_eq!(df.instructions[1].line, 5);
    assert_eq!(
        df.instructions[1].kind,
        Kind::Run {
            flags: vec![],
            cmd: CmdForm::Shell(s("echo a   b")),
            heredocs: vec![]
        }
    );
    // An unknown directive is a comment, so a later escape directive is one too.
    assert_eq!(
        parse("# foo=bar\n# escape=`\nFROM a\n").unwrap().escape,
        '\\'
    );
    assert_eq!(
        parse("# check=skip=all\n# escape=`\nFROM a\n")
            .unwrap()
            .escape,
        '`'
    );
    // A directive after a comment is just a comment; backslash continues by default.
    let df = parse("# hello\n# escape=`\nFROM a\nRUN x \\\n y\n").unwrap();
    assert_eq!(df.escape, '\\');
    assert_eq!(df.instructions[1].original, "RUN x  y");
}

#[test]
fn bad_escape_and_unknown_instruction_name_the_line() {
    let e = parse("# escape=x\nFROM a\n").unwrap_err();
    assert_eq!(e.line, 1);
    let e = parse("FROM a\n\n# c\n\nENV A=1\n\nRUNN foo\n").unwrap_err();
    assert_eq!(e.to_string(), "Dockerfile:7: unknown instruction: RUNN");
    assert_eq!(
        e.in_file("app.Dockerfile"),
        "app.Dockerfile:7: unknown instruction: RUNN"
    );
}

#[test]
fn from_forms() {
    let k = kinds("ARG V=1\nFROM --platform=linux/amd64 img:$V AS Build\nFROM scratch\n");
    assert_eq!(k[0], Kind::Arg(vec![(s("V"), Some(s("1")))]));
    assert_eq!(
        k[1],
        Kind::From {
            flags: vec![Flag {
                name: s("platform"),
                value: Some(s("linux/amd64"))
            }],
            image: s("img:$V"),
            alias: Some(s("build"))
        }
    );
    assert!(parse("FROM a AS\n").is_err());
    assert!(parse("FROM a AS 1x\n").is_err());
    assert!(parse("FROM --foo=1 a\n").is_err());
}

#[test]
fn run_cmd_entrypoint_forms() {
    let k = kinds(
        "FROM a\nRUN [\"echo\", \"hi\"]\nRUN --mount=type=cache,target=/c --network=none make\nCMD [\"a\"\nENTRYPOINT [\"/e\"]\n",
    );
    assert_eq!(
        k[1],
        Kind::Run {
            flags: vec![],
            cmd: CmdForm::Exec(vec![s("echo"), s("hi")]),
            heredocs: vec![]
        }
    );
    match &k[2] {
        Kind::Run { flags, cmd, .. } => {
            assert_eq!(flags.len(), 2);
            assert_eq!(flags[1].value.as_deref(), Some("none"));
            assert_eq!(cmd, &CmdForm::Shell(s("make")));
        }
        other => panic!("{other:?}"),
    }
    // Invalid JSON falls back to shell form, as docker does.
    assert_eq!(k[3], Kind::Cmd(CmdForm::Shell(s("[\"a\""))));
    assert_eq!(k[4], Kind::Entrypoint(CmdForm::Exec(vec![s("/e")])));
}

#[test]
fn heredocs() {
    let text = "FROM a\nRUN <<EOF1 cat >/f && <<-\"EOF2\" sh\nhello $A\nEOF1\n\techo $B\n\tEOF2\nRUN <<EOT\nx\nEOT\nCOPY <<-EOF /etc/conf\n\tkey=1\n\tEOF\nRUN echo done\n";
    let df = parse(text).unwrap();
    let Kind::Run { cmd, heredocs, .. } = &df.instructions[1].kind else {
        panic!()
    };
    assert_eq!(cmd, &CmdForm::Shell(s("<<EOF1 cat >/f && <<-\"EOF2\" sh")));
    assert_eq!(heredocs.len(), 2);
    assert_eq!(heredocs[0].name, "EOF1");
    assert_eq!(heredocs[0].content, "hello $A\n");
    assert!(heredocs[0].expand && !heredocs[0].chomp);
    assert_eq!(heredocs[1].name, "EOF2");
    assert!(!heredocs[1].expand && heredocs[1].chomp);
    assert_eq!(heredocs[1].body(), "echo $B\n");
    assert_eq!(df.instructions[2].line, 7);
    let Kind::Copy(c) = &df.instructions[3].kind else {
        panic!()
    };
    assert_eq!(c.sources, vec![s("<<-EOF")]);
    assert_eq!(c.heredocs[0].body(), "key=1\n");
    assert_eq!(df.instructions[4].line, 13);
    let e = parse("FROM a\nRUN <<EOF\nnever ends\n").unwrap_err();
    assert_eq!(e.to_string(), "Dockerfile:2: unterminated heredoc EOF");
    assert_eq!(heredoc_word("3<<'X'"), Some((s("X"), false, false)));
    assert_eq!(heredoc_word("<<<X"), None);
}

#[test]
fn env_label_arg() {
    let k = kinds(
        "FROM a\nENV A=1 B=\"x y\" C=a\\ b\nENV D e f\nLABEL \"a b\"=c d='e'\nARG X\nARG Y=2 Z\n",
    );
    assert_eq!(
        k[1],
        Kind::Env(vec![
            (s("A"), s("1")),
            (s("B"), s("\"x y\"")),
            (s("C"), s("a\\ b"))
        ])
    );
    assert_eq!(k[2], Kind::Env(vec![(s("D"), s("e f"))]));
    assert_eq!(
        k[3],
        Kind::Label(vec![(s("\"a b\""), s("c")), (s("d"), s("'e'"))])
    );
    assert_eq!(k[4], Kind::Arg(vec![(s("X"), None)]));
    assert_eq!(
        k[5],
        Kind::Arg(vec![(s("Y"), Some(s("2"))), (s("Z"), None)])
    );
    assert!(parse("FROM a\nENV A=1 B\n").is_err());
    assert!(parse("FROM a\nENV A\n").is_err());
}

#[test]
fn copy_add_forms() {
    let k = kinds("FROM a\nCOPY --from=build --chown=1:2 --chmod=755 [\"a b\", \"c\", \"/d/\"]\nADD --link x* \"y z\" /e/\n");
    let Kind::Copy(c) = &k[1] else { panic!() };
    assert!(c.json);
    assert_eq!(c.flags.len(), 3);
    assert_eq!(c.sources, vec![s("a b"), s("c")]);
    assert_eq!(c.dest, "/d/");
    let Kind::Add(a) = &k[2] else { panic!() };
    assert_eq!(a.sources, vec![s("x*"), s("\"y z\"")]);
    assert!(parse("FROM a\nCOPY onlyone\n").is_err());
    let e = parse("FROM a\nCOPY --parents a b\n").unwrap_err();
    assert_eq!(e.to_string(), "Dockerfile:2: COPY: unknown flag: --parents");
    assert!(parse("FROM a\nADD --from=x a b\n").is_err());
}

#[test]
fn misc_instructions() {
    let k = kinds("FROM a\nEXPOSE 80/tcp 90-95/udp\nVOLUME [\"/a\", \"/b\"]\nVOLUME /c /d\nWORKDIR /w\nUSER u:g\nSTOPSIGNAL SIGTERM\nMAINTAINER me <m@e>\nSHELL [\"/bin/bash\", \"-c\"]\n");
    assert_eq!(k[1], Kind::Expose(vec![s("80/tcp"), s("90-95/udp")]));
    assert_eq!(k[2], Kind::Volume(vec![s("/a"), s("/b")]));
    assert_eq!(k[3], Kind::Volume(vec![s("/c"), s("/d")]));
    assert_eq!(k[4], Kind::Workdir(s("/w")));
    assert_eq!(k[5], Kind::User(s("u:g")));
    assert_eq!(k[6], Kind::StopSignal(s("SIGTERM")));
    assert_eq!(k[7], Kind::Maintainer(s("me <m@e>")));
    assert_eq!(k[8], Kind::Shell(vec![s("/bin/bash"), s("-c")]));
    assert!(parse("FROM a\nSHELL /bin/sh -c\n").is_err());
    assert!(parse("FROM a\nWORKDIR\n").is_err());
}

#[test]
fn healthcheck_and_onbuild() {
    let k = kinds("FROM a\nHEALTHCHECK --interval=5s --retries=3 CMD curl -f http://x/\nHEALTHCHECK NONE\nonbuild run echo hi\n");
    match &k[1] {
        Kind::Healthcheck(Healthcheck::Cmd { flags, cmd }) => {
            assert_eq!(flags.len(), 2);
            assert_eq!(cmd, &CmdForm::Shell(s("curl -f http://x/")));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(k[2], Kind::Healthcheck(Healthcheck::None));
    match &k[3] {
        Kind::OnBuild(t, raw) => {
            assert_eq!(raw, "run echo hi");
            assert_eq!(t.kind.name(), "RUN");
        }
        other => panic!("{other:?}"),
    }
    assert!(parse("FROM a\nHEALTHCHECK --bad=1 CMD x\n").is_err());
    assert!(parse("FROM a\nHEALTHCHECK FOO\n").is_err());
    let e = parse("FROM a\nONBUILD ONBUILD RUN x\n").unwrap_err();
    assert_eq!(e.message, "ONBUILD ONBUILD is not allowed");
    assert!(parse("FROM a\nONBUILD FROM b\n").is_err());
}

#[test]
fn single_line() {
    let i = parse_line("CMD [\"/bin/sh\"]").unwrap();
    assert_eq!(i.kind, Kind::Cmd(CmdForm::Exec(vec![s("/bin/sh")])));
    assert!(parse_line("").is_err());
}

#[test]
fn crlf_case_and_backtick_paths() {
    let df = parse("# escape=`\r\nfrom base\r\n  copy C:\\src\\app `\r\n   \r\n C:\\dst\\\r\nworkdir C:\\w\r\n").unwrap();
    assert_eq!(df.instructions.len(), 3);
    let Kind::Copy(c) = &df.instructions[1].kind else {
        panic!()
    };
    assert_eq!(c.sources, vec![s("C:\\src\\app")]);
    assert_eq!(c.dest, "C:\\dst\\");
    assert_eq!(df.instructions[2].line, 6);
    assert_eq!(df.instructions[2].kind, Kind::Workdir(s("C:\\w")));
}
