//! Dockerfile parsing, after moby/buildkit's `frontend/dockerfile/parser` and `instructions`:
//! parser directives (`escape`, `syntax`, `check`), comments, line continuations with the escape
//! character, heredocs (`<<EOF`, `<<-EOF`, quoted delimiters, several per line) and every
//! instruction. Values are kept raw (quotes and `$` intact): expansion happens per stage in `plan`,
//! where the variables are known.
//!
//! Written here rather than taken from a crate: `parse-dockerfile` 0.1.9 (well kept) only finds a
//! heredoc at the very start of RUN, one per instruction, and leaves ENV/ARG/LABEL unsplit;
//! `dockerfile-parser` 0.9 has no heredocs or escape directive and pulls pest+regex+snafu 0.6.

use super::{BuildError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Dockerfile {
    pub escape: char,
    pub syntax: Option<String>,
    pub instructions: Vec<Instruction>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// The logical line after joining continuations (for step output), e.g. `RUN make all`.
    pub original: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    pub name: String,
    pub value: Option<String>,
}

/// Exec form (JSON array) or shell form (raw string).
#[derive(Debug, Clone, PartialEq)]
pub enum CmdForm {
    Exec(Vec<String>),
    Shell(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Heredoc {
    pub name: String,
    /// Raw content, one `\n` after every line.
    pub content: String,
    /// False when the delimiter was quoted (`<<"EOF"`): no expansion.
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the content.
    pub chomp: bool,
}

impl Heredoc {
    pub fn body(&self) -> String {
        if !self.chomp {
            return self.content.clone();
        }
        self.content
            .split_inclusive('\n')
            .map(|l| l.trim_start_matches('\t'))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CopyArgs {
    pub flags: Vec<Flag>,
    /// Raw source words; `<<NAME` names a heredoc in `heredocs`.
    pub sources: Vec<String>,
    pub dest: String,
    pub heredocs: Vec<Heredoc>,
    /// Sources and dest came from a JSON array (no word splitting happened).
    pub json: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Healthcheck {
    None,
    Cmd { flags: Vec<Flag>, cmd: CmdForm },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    From {
        flags: Vec<Flag>,
        image: String,
        alias: Option<String>,
    },
    Run {
        flags: Vec<Flag>,
        cmd: CmdForm,
        heredocs: Vec<Heredoc>,
    },
    Cmd(CmdForm),
    Entrypoint(CmdForm),
    /// Raw `(key, value)` pairs.
    Env(Vec<(String, String)>),
    Arg(Vec<(String, Option<String>)>),
    Label(Vec<(String, String)>),
    Expose(Vec<String>),
    Volume(Vec<String>),
    Workdir(String),
    User(String),
    StopSignal(String),
    Maintainer(String),
    Copy(CopyArgs),
    Add(CopyArgs),
    Shell(Vec<String>),
    Healthcheck(Healthcheck),
    /// The trigger, parsed (for validation) and raw (what goes into the image config).
    OnBuild(Box<Instruction>, String),
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::From { .. } => "FROM",
            Kind::Run { .. } => "RUN",
            Kind::Cmd(_) => "CMD",
            Kind::Entrypoint(_) => "ENTRYPOINT",
            Kind::Env(_) => "ENV",
            Kind::Arg(_) => "ARG",
            Kind::Label(_) => "LABEL",
            Kind::Expose(_) => "EXPOSE",
            Kind::Volume(_) => "VOLUME",
            Kind::Workdir(_) => "WORKDIR",
            Kind::User(_) => "USER",
            Kind::StopSignal(_) => "STOPSIGNAL",
            Kind::Maintainer(_) => "MAINTAINER",
            Kind::Copy(_) => "COPY",
            Kind::Add(_) => "ADD",
            Kind::Shell(_) => "SHELL",
            Kind::Healthcheck(_) => "HEALTHCHECK",
            Kind::OnBuild(..) => "ONBUILD",
        }
    }
}

/// Parses a whole Dockerfile.
pub fn parse(text: &str) -> Result<Dockerfile> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();
    let (escape, syntax, mut i) = directives(&lines)?;
    let mut instructions = Vec::new();
    while i < lines.len() {
        let start = i;
        let first = lines[i].trim_start();
        i += 1;
        if first.is_empty() || first.starts_with('#') {
            continue;
        }
        let (mut logical, mut done) = trim_continuation(first, escape);
        while !done && i < lines.len() {
            let raw = lines[i];
            i += 1;
            let t = raw.trim_start();
            // Comment and empty lines inside a continuation are dropped, as docker does.
            if t.starts_with('#') || t.trim().is_empty() {
                continue;
            }
            let (part, end) = trim_continuation(raw, escape);
            logical.push_str(&part);
            done = end;
        }
        let mut ins = parse_logical(&logical, start + 1, escape)?;
        if let Some(names) = heredoc_names(&ins.kind, &logical, escape) {
            let docs = read_heredocs(&lines, &mut i, names, start + 1)?;
            attach_heredocs(&mut ins.kind, docs);
        }
        instructions.push(ins);
    }
    Ok(Dockerfile {
        escape,
        syntax,
        instructions,
    })
}

/// Parses one instruction line (for `commit -c` / `import -c`).
pub fn parse_line(line: &str) -> Result<Instruction> {
    let mut df = parse(line)?;
    match df.instructions.len() {
        1 => Ok(df.instructions.remove(0)),
        0 => Err(BuildError::general("empty instruction")),
        _ => Err(BuildError::general("expected a single instruction")),
    }
}

fn directives(lines: &[&str]) -> Result<(char, Option<String>, usize)> {
    let (mut escape, mut syntax) = (None, None);
    let mut i = 0;
    while i < lines.len() {
        let Some(body) = lines[i].trim().strip_prefix('#') else {
            break;
        };
        let Some((key, value)) = body.split_once('=') else {
            break;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        let valid_key = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && key.chars().all(|c| c.is_ascii_alphanumeric());
        if !valid_key || value.is_empty() {
            break;
        }
        match key.as_str() {
            "escape" => {
                if escape.is_some() {
                    return Err(BuildError::at(
                        i + 1,
                        "only one escape parser directive can be used",
                    ));
                }
                escape = Some(match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(BuildError::at(
                            i + 1,
                            format!("invalid escape token '{value}' does not match ` or \\"),
                        ))
                    }
                });
            }
            "syntax" => syntax = Some(value.to_string()),
            // Build checks configuration: accepted, nothing to configure here.
            "check" => {}
            // An unknown directive is a comment, and a comment ends the directives (docker).
            _ => break,
        }
        i += 1;
    }
    Ok((escape.unwrap_or('\\'), syntax, i))
}

/// Strips a trailing escape character (plus trailing blanks); false when the line continues.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(rest) => (rest.to_string(), false),
        None => (line.to_string(), true),
    }
}

fn parse_logical(logical: &str, line: usize, escape: char) -> Result<Instruction> {
    let logical = logical.trim();
    let (word, rest) = match logical.find([' ', '\t']) {
        Some(p) => (&logical[..p], logical[p..].trim_start()),
        None => (logical, ""),
    };
    let kind = parse_kind(&word.to_ascii_uppercase(), word, rest, line, escape)
        .map_err(|e| e.or_line(line))?;
    Ok(Instruction {
        line,
        original: logical.to_string(),
        kind,
    })
}

fn err<T>(line: usize, msg: impl Into<String>) -> Result<T> {
    Err(BuildError::at(line, msg))
}

fn parse_kind(upper: &str, word: &str, rest: &str, line: usize, esc: char) -> Result<Kind> {
    let need_args = |kind: &str| -> Result<()> {
        if rest.is_empty() {
            return err(line, format!("{kind} requires at least one argument"));
        }
        Ok(())
    };
    Ok(match upper {
        "FROM" => parse_from(rest, line, esc)?,
        "RUN" => {
            let (flags, rest) = take_flags(rest, esc);
            check_flags("RUN", &flags, &["mount", "network", "security"], line)?;
            if rest.is_empty() {
                return err(line, "RUN requires at least one argument");
            }
            Kind::Run {
                flags,
                cmd: maybe_json(&rest),
                heredocs: Vec::new(),
            }
        }
        "CMD" => Kind::Cmd(maybe_json(rest)),
        "ENTRYPOINT" => Kind::Entrypoint(maybe_json(rest)),
        "ENV" => {
            need_args("ENV")?;
            Kind::Env(name_values("ENV", rest, line, esc)?)
        }
        "LABEL" => {
            need_args("LABEL")?;
            Kind::Label(name_values("LABEL", rest, line, esc)?)
        }
        "ARG" => {
            need_args("ARG")?;
            let args = split_words(rest, esc)
                .into_iter()
                .map(|w| match w.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (w, None),
                })
                .collect();
            Kind::Arg(args)
        }
        "EXPOSE" => {
            need_args("EXPOSE")?;
            Kind::Expose(split_words(rest, esc))
        }
        "VOLUME" => {
            need_args("VOLUME")?;
            match json_array(rest) {
                Some(v) if !v.is_empty() => Kind::Volume(v),
                _ => Kind::Volume(split_words(rest, esc)),
            }
        }
        "WORKDIR" | "USER" | "STOPSIGNAL" | "MAINTAINER" => {
            if rest.is_empty() {
                return err(line, format!("{upper} requires exactly one argument"));
            }
            let s = rest.to_string();
            match upper {
                "WORKDIR" => Kind::Workdir(s),
                "USER" => Kind::User(s),
                "STOPSIGNAL" => Kind::StopSignal(s),
                _ => Kind::Maintainer(s),
            }
        }
        "COPY" | "ADD" => parse_copy(upper, rest, line, esc)?,
        "SHELL" => match json_array(rest) {
            Some(v) if !v.is_empty() => Kind::Shell(v),
            _ => return err(line, "SHELL requires the arguments to be in JSON form"),
        },
        "HEALTHCHECK" => parse_healthcheck(rest, line, esc)?,
        "ONBUILD" => {
            need_args("ONBUILD")?;
            let trigger = parse_logical(rest, line, esc)?;
            match trigger.kind {
                Kind::OnBuild(..) => return err(line, "ONBUILD ONBUILD is not allowed"),
                Kind::From { .. } | Kind::Maintainer(_) => {
                    return err(
                        line,
                        format!(
                            "{} isn't allowed as an ONBUILD trigger",
                            trigger.kind.name()
                        ),
                    )
                }
                _ => {}
            }
            Kind::OnBuild(Box::new(trigger), rest.to_string())
        }
        _ => return err(line, format!("unknown instruction: {word}")),
    })
}

fn parse_from(rest: &str, line: usize, esc: char) -> Result<Kind> {
    let (flags, rest) = take_flags(rest, esc);
    check_flags("FROM", &flags, &["platform"], line)?;
    let words = split_words(&rest, esc);
    match words.as_slice() {
        [image] => Ok(Kind::From {
            flags,
            image: image.clone(),
            alias: None,
        }),
        [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
            if !valid {
                return err(line, format!("invalid name for build stage: {name:?}, name can't start with a number or contain symbols"));
            }
            Ok(Kind::From {
                flags,
                image: image.clone(),
                alias: Some(name.to_ascii_lowercase()),
            })
        }
        _ => err(
            line,
            "FROM requires either one or three arguments: FROM <image> [AS <name>]",
        ),
    }
}

fn parse_copy(upper: &str, rest: &str, line: usize, esc: char) -> Result<Kind> {
    let (flags, rest) = take_flags(rest, esc);
    let allowed: &[&str] = if upper == "COPY" {
        &["from", "chown", "chmod", "link"]
    } else {
        &["chown", "chmod", "link", "checksum", "keep-git-dir"]
    };
    check_flags(upper, &flags, allowed, line)?;
    let (mut words, json) = match json_array(&rest) {
        Some(v) => (v, true),
        None => (split_words(&rest, esc), false),
    };
    if words.len() < 2 {
        return err(line, format!("{upper} requires at least two arguments"));
    }
    let dest = words.pop().unwrap_or_default();
    let args = CopyArgs {
        flags,
        sources: words,
        dest,
        heredocs: Vec::new(),
        json,
    };
    Ok(if upper == "COPY" {
        Kind::Copy(args)
    } else {
        Kind::Add(args)
    })
}

fn parse_healthcheck(rest: &str, line: usize, esc: char) -> Result<Kind> {
    let (flags, rest) = take_flags(rest, esc);
    let (word, cmd) = match rest.find([' ', '\t']) {
        Some(p) => (&rest[..p], rest[p..].trim_start()),
        None => (rest.as_str(), ""),
    };
    match word.to_ascii_uppercase().as_str() {
        "NONE" => {
            if !flags.is_empty() || !cmd.is_empty() {
                return err(line, "HEALTHCHECK NONE takes no arguments");
            }
            Ok(Kind::Healthcheck(Healthcheck::None))
        }
        "CMD" => {
            let allowed = [
                "interval",
                "timeout",
                "start-period",
                "start-interval",
                "retries",
            ];
            check_flags("HEALTHCHECK", &flags, &allowed, line)?;
            if cmd.is_empty() {
                return err(line, "Missing command after HEALTHCHECK CMD");
            }
            Ok(Kind::Healthcheck(Healthcheck::Cmd {
                flags,
                cmd: maybe_json(cmd),
            }))
        }
        other => err(
            line,
            format!("Unknown type {other:?} in HEALTHCHECK (try CMD)"),
        ),
    }
}

fn check_flags(kind: &str, flags: &[Flag], allowed: &[&str], line: usize) -> Result<()> {
    for f in flags {
        if !allowed.contains(&f.name.as_str()) {
            return err(line, format!("{kind}: unknown flag: --{}", f.name));
        }
    }
    Ok(())
}

/// Leading `--name[=value]` words; returns them and the rest of the line.
fn take_flags(rest: &str, esc: char) -> (Vec<Flag>, String) {
    let mut flags = Vec::new();
    let mut s = rest.trim_start();
    while let Some(body) = s.strip_prefix("--") {
        let end = word_end(body, esc);
        let word = &body[..end];
        if word.is_empty() {
            break;
        }
        let flag = match word.split_once('=') {
            Some((n, v)) => Flag {
                name: n.to_string(),
                value: Some(v.to_string()),
            },
            None => Flag {
                name: word.to_string(),
                value: None,
            },
        };
        flags.push(flag);
        s = body[end..].trim_start();
    }
    (flags, s.to_string())
}

/// Byte offset of the end of the first word (quotes and escapes respected).
fn word_end(s: &str, esc: char) -> usize {
    let mut quote = None;
    let mut it = s.char_indices();
    while let Some((i, c)) = it.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) if c == esc => {
                it.next();
            }
            Some(_) => {}
            None if c == ' ' || c == '\t' => return i,
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == esc => {
                it.next();
            }
            None => {}
        }
    }
    s.len()
}

/// Splits on unquoted blanks, keeping quotes and escapes (docker's `parseWords`).
pub fn split_words(s: &str, esc: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let end = word_end(rest, esc);
        out.push(rest[..end].to_string());
        rest = rest[end..].trim_start();
    }
    out
}

fn json_array(s: &str) -> Option<Vec<String>> {
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(s).ok()
}

fn maybe_json(s: &str) -> CmdForm {
    match json_array(s) {
        Some(v) => CmdForm::Exec(v),
        None => CmdForm::Shell(s.to_string()),
    }
}

/// ENV/LABEL: `k=v k2="v 2"` or the legacy `k value with spaces`.
fn name_values(kind: &str, rest: &str, line: usize, esc: char) -> Result<Vec<(String, String)>> {
    let words = split_words(rest, esc);
    if !words[0].contains('=') {
        let key = words[0].clone();
        let value = rest[word_end(rest, esc)..].trim_start();
        if value.is_empty() {
            return err(line, format!("{kind} must have two arguments"));
        }
        return Ok(vec![(key, value.to_string())]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => err(
                line,
                format!("Syntax error - can't find = in {w:?}. Must be of the form: name=value"),
            ),
        })
        .collect()
}

/// Heredoc delimiters named on a RUN/COPY/ADD shell-form line: (name, expand, chomp).
fn heredoc_names(kind: &Kind, logical: &str, esc: char) -> Option<Vec<(String, bool, bool)>> {
    match kind {
        Kind::Run {
            cmd: CmdForm::Shell(_),
            ..
        } => {}
        Kind::Copy(a) | Kind::Add(a) if !a.json => {}
        _ => return None,
    }
    if !logical.contains("<<") {
        return None;
    }
    let names: Vec<_> = split_words(logical, esc)
        .iter()
        .filter_map(|w| heredoc_word(w))
        .collect();
    (!names.is_empty()).then_some(names)
}

/// `[n]<<[-]NAME`, `<<"NAME"`, `<<'NAME'` (buildkit's `^(\d*)<<(-?)([^<]*)$`).
pub fn heredoc_word(word: &str) -> Option<(String, bool, bool)> {
    let rest = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let rest = rest.strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    for q in ['"', '\''] {
        if let Some(inner) = rest.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return (!inner.is_empty()).then(|| (inner.to_string(), false, chomp));
        }
    }
    Some((rest.to_string(), true, chomp))
}

fn read_heredocs(
    lines: &[&str],
    i: &mut usize,
    names: Vec<(String, bool, bool)>,
    line: usize,
) -> Result<Vec<Heredoc>> {
    let mut docs = Vec::new();
    for (name, expand, chomp) in names {
        let mut content = String::new();
        let mut terminated = false;
        while *i < lines.len() {
            let l = lines[*i];
            *i += 1;
            let candidate = if chomp { l.trim_start_matches('\t') } else { l };
            if candidate == name {
                terminated = true;
                break;
            }
            content.push_str(l);
            content.push('\n');
        }
        if !terminated {
            return err(line, format!("unterminated heredoc {name}"));
        }
        docs.push(Heredoc {
            name,
            content,
            expand,
            chomp,
        });
    }
    Ok(docs)
}

fn attach_heredocs(kind: &mut Kind, docs: Vec<Heredoc>) {
    match kind {
        Kind::Run { heredocs, .. } => *heredocs = docs,
        Kind::Copy(a) | Kind::Add(a) => a.heredocs = docs,
        _ => {}
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
