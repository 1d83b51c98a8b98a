//! Go's text/template over JSON values, for `--format`.
//!
//! crates.io's Go-template engines were not taken: `gtmpl` (0.7.1) is marked
//! passively maintained, has not been released for years, ranges over maps in
//! hash order (Go sorts the keys) and has no `json`/`join`/`split`/`title`;
//! `go-template` is a 2022 fork of it with three releases. This one covers
//! what docker's `--format` uses: text and `{{ }}` actions with `-` trim
//! markers and comments, fields (`.A.B`, `$x.A`, `(pipe).A`), variables
//! (`$`, `$x :=`, `$x =`), pipelines (`|`), `if`/`else if`/`else`, `range`
//! (with `$i, $v :=`, `else`), `with`, and docker's functions.
//!
//! A missing map key yields `<no value>` as Go does for maps; a method-style
//! call with arguments (`.Label "k"`) looks the argument up in the field's
//! object, which is how docker's `Label` method reads.

use serde_json::Value;

mod exec;
mod funcs;
#[cfg(test)]
mod tests;

pub type Error = String;

#[derive(Debug, Clone)]
pub(super) enum Arg {
    Dot,
    Field(Box<Arg>, Vec<String>),
    Var(String),
    Func(String),
    Lit(Value),
    Pipe(Box<Pipeline>),
}

#[derive(Debug, Clone)]
pub(super) struct Pipeline {
    pub(super) decl: Vec<String>,
    pub(super) assign: bool,
    pub(super) cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone)]
pub(super) enum Node {
    Text(String),
    Out(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    pub(super) nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Field(String),
    /// `.B` right after an operand (`.A.B`, `$x.B`, `(..).B`).
    Chain(String),
    Var(String),
    Ident(String),
    Str(String),
    Num(Value),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

/// `{{ ... }}` bodies and the text between them, trim markers applied.
enum Piece {
    Text(String),
    Action(Vec<Tok>),
}

fn split_pieces(src: &str) -> Result<Vec<Piece>, Error> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(i) = rest.find("{{") {
        let mut text = &rest[..i];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[i + 2..];
        let (after, trim_prev) = match after.strip_prefix("- ") {
            Some(a) => (a, true),
            None => (after, false),
        };
        if trim_prev {
            text = text.trim_end();
        }
        out.push(Piece::Text(text.to_string()));
        let end = find_close(after).ok_or_else(|| "unclosed action".to_string())?;
        let mut body = &after[..end];
        trim_next = false;
        if let Some(b) = body.strip_suffix(" -") {
            body = b;
            trim_next = true;
        }
        rest = &after[end + 2..];
        let b = body.trim();
        if b.starts_with("/*") {
            if !b.ends_with("*/") {
                return Err("unclosed comment".into());
            }
            continue;
        }
        out.push(Piece::Action(lex(body)?));
    }
    let mut text = rest;
    if trim_next {
        text = text.trim_start();
    }
    out.push(Piece::Text(text.to_string()));
    Ok(out)
}

/// The `}}` that closes an action, skipping ones inside string literals.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        match quote {
            Some(q) if b[i] == b'\\' && q == b'"' => i += 1,
            Some(q) if b[i] == q => quote = None,
            Some(_) => {}
            None if b[i] == b'"' || b[i] == b'`' => quote = Some(b[i]),
            None if b[i] == b'}' && b.get(i + 1) == Some(&b'}') => return Some(i),
            None => {}
        }
        i += 1;
    }
    None
}

fn lex(s: &str) -> Result<Vec<Tok>, Error> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut toks = Vec::new();
    let word = |i: &mut usize| {
        let st = *i;
        while *i < c.len() && (c[*i].is_alphanumeric() || c[*i] == '_') {
            *i += 1;
        }
        c[st..*i].iter().collect::<String>()
    };
    while i < c.len() {
        let ch = c[i];
        match ch {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' | ')' | '|' | ',' | '=' => {
                toks.push(match ch {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    '|' => Tok::Pipe,
                    ',' => Tok::Comma,
                    _ => Tok::Assign,
                });
                i += 1;
            }
            ':' if c.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2;
            }
            '.' if c.get(i + 1).is_some_and(|n| n.is_alphabetic() || *n == '_') => {
                let chained =
                    i > 0 && (c[i - 1].is_alphanumeric() || matches!(c[i - 1], '_' | ')' | '$'));
                i += 1;
                let w = word(&mut i);
                toks.push(if chained {
                    Tok::Chain(w)
                } else {
                    Tok::Field(w)
                });
            }
            '.' => {
                toks.push(Tok::Ident(".".into()));
                i += 1;
            }
            '$' => {
                i += 1;
                toks.push(Tok::Var(format!("${}", word(&mut i))));
            }
            '"' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match c.get(i) {
                        None => return Err("unterminated quoted string".into()),
                        Some('"') => break,
                        Some('\\') => {
                            i += 1;
                            v.push(match c.get(i) {
                                Some('n') => '\n',
                                Some('t') => '\t',
                                Some(o) => *o,
                                None => return Err("unterminated quoted string".into()),
                            });
                        }
                        Some(o) => v.push(*o),
                    }
                    i += 1;
                }
                i += 1;
                toks.push(Tok::Str(v));
            }
            '`' => {
                let st = i + 1;
                let end = c[st..]
                    .iter()
                    .position(|x| *x == '`')
                    .ok_or("unterminated raw quoted string")?;
                toks.push(Tok::Str(c[st..st + end].iter().collect()));
                i = st + end + 1;
            }
            '-' | '0'..='9' => {
                let st = i;
                i += 1;
                while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.') {
                    i += 1;
                }
                let t: String = c[st..i].iter().collect();
                let n = if let Ok(n) = t.parse::<i64>() {
                    Value::from(n)
                } else {
                    let f: f64 = t.parse().map_err(|_| format!("bad number syntax: {t:?}"))?;
                    Value::from(f)
                };
                toks.push(Tok::Num(n));
            }
            c0 if c0.is_alphabetic() || c0 == '_' => toks.push(Tok::Ident(word(&mut i))),
            other => return Err(format!("unexpected {other:?} in command")),
        }
    }
    Ok(toks)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn pipeline(&mut self) -> Result<Pipeline, Error> {
        let mut p = Pipeline {
            decl: vec![],
            assign: false,
            cmds: vec![],
        };
        // `$x :=`, `$i, $v :=` or `$x =`
        let save = self.pos;
        let mut vars = vec![];
        while let Some(Tok::Var(v)) = self.peek().cloned() {
            self.pos += 1;
            vars.push(v);
            match self.peek() {
                Some(Tok::Comma) => self.pos += 1,
                Some(Tok::Declare) | Some(Tok::Assign) => break,
                _ => break,
            }
        }
        match self.peek() {
            Some(Tok::Declare) if !vars.is_empty() => {
                self.pos += 1;
                p.decl = vars;
            }
            Some(Tok::Assign) if vars.len() == 1 => {
                self.pos += 1;
                p.decl = vars;
                p.assign = true;
            }
            _ => self.pos = save,
        }
        loop {
            let mut cmd = vec![];
            while let Some(t) = self.peek().cloned() {
                match t {
                    Tok::Pipe | Tok::RParen => break,
                    _ => cmd.push(self.operand()?),
                }
            }
            if cmd.is_empty() {
                return Err("missing command".into());
            }
            p.cmds.push(cmd);
            if self.peek() == Some(&Tok::Pipe) {
                self.pos += 1;
            } else {
                break;
            }
        }
        Ok(p)
    }

    fn operand(&mut self) -> Result<Arg, Error> {
        let t = self.toks[self.pos].clone();
        self.pos += 1;
        let base = match t {
            Tok::Field(f) => Arg::Field(Box::new(Arg::Dot), vec![f]),
            Tok::Var(v) => Arg::Var(v),
            Tok::Ident(i) => match i.as_str() {
                "." => Arg::Dot,
                "true" => Arg::Lit(Value::Bool(true)),
                "false" => Arg::Lit(Value::Bool(false)),
                "nil" => Arg::Lit(Value::Null),
                _ => Arg::Func(i),
            },
            Tok::Str(s) => Arg::Lit(Value::String(s)),
            Tok::Num(n) => Arg::Lit(n),
            Tok::LParen => {
                let p = self.pipeline()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err("unclosed left paren".into());
                }
                self.pos += 1;
                Arg::Pipe(Box::new(p))
            }
            other => return Err(format!("unexpected {other:?} in operand")),
        };
        // Field chains right after an operand: `.A.B`, `$x.A`, `(pipe).A`.
        let mut chain = vec![];
        while let Some(Tok::Chain(f)) = self.peek().cloned() {
            if matches!(base, Arg::Func(_) | Arg::Lit(_)) {
                return Err(format!("unexpected .{f} after {base:?}"));
            }
            chain.push(f);
            self.pos += 1;
        }
        Ok(match base {
            Arg::Field(b, mut first) if !chain.is_empty() => {
                first.extend(chain);
                Arg::Field(b, first)
            }
            b if !chain.is_empty() => Arg::Field(Box::new(b), chain),
            b => b,
        })
    }
}

enum Ctl {
    If,
    With,
    Range,
}

/// Parses `src`; errors name what is wrong as Go's parser does.
pub fn parse(src: &str) -> Result<Template, Error> {
    let pieces = split_pieces(src)?;
    let mut it = pieces.into_iter().peekable();
    match parse_list(&mut it)? {
        (nodes, Stop::Eof) => Ok(Template { nodes }),
        (_, Stop::End) => Err("unexpected {{end}}".into()),
        (_, _) => Err("unexpected {{else}}".into()),
    }
}

type Pieces = std::iter::Peekable<std::vec::IntoIter<Piece>>;

enum Stop {
    Eof,
    End,
    Else,
    ElseIf(Vec<Tok>),
}

/// Nodes up to an `end`/`else`/`else if` (returned) or the input's end.
fn parse_list(it: &mut Pieces) -> Result<(Vec<Node>, Stop), Error> {
    let mut nodes = vec![];
    while let Some(p) = it.next() {
        let toks = match p {
            Piece::Text(t) => {
                if !t.is_empty() {
                    nodes.push(Node::Text(t));
                }
                continue;
            }
            Piece::Action(t) => t,
        };
        let kw = match toks.first() {
            Some(Tok::Ident(k)) => k.clone(),
            _ => String::new(),
        };
        let ctl = match kw.as_str() {
            "end" if toks.len() == 1 => return Ok((nodes, Stop::End)),
            "else" if toks.len() == 1 => return Ok((nodes, Stop::Else)),
            "else" if toks.get(1) == Some(&Tok::Ident("if".into())) => {
                return Ok((nodes, Stop::ElseIf(toks[2..].to_vec())))
            }
            "end" | "else" => return Err(format!("unexpected tokens after {kw}")),
            "if" => Ctl::If,
            "with" => Ctl::With,
            "range" => Ctl::Range,
            _ => {
                nodes.push(Node::Out(parse_pipe(toks)?));
                continue;
            }
        };
        nodes.push(parse_control(it, ctl, toks[1..].to_vec())?);
    }
    Ok((nodes, Stop::Eof))
}

fn parse_pipe(toks: Vec<Tok>) -> Result<Pipeline, Error> {
    let mut p = Parser { toks, pos: 0 };
    let pipe = p.pipeline()?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected {:?} in command", p.toks[p.pos]));
    }
    Ok(pipe)
}

fn parse_control(it: &mut Pieces, ctl: Ctl, toks: Vec<Tok>) -> Result<Node, Error> {
    let name = match ctl {
        Ctl::If => "if",
        Ctl::With => "with",
        Ctl::Range => "range",
    };
    if toks.is_empty() {
        return Err(format!("missing value for {name}"));
    }
    let pipe = parse_pipe(toks)?;
    let (body, end) = parse_list(it)?;
    let other = match end {
        Stop::Eof => return Err(format!("unexpected EOF: {name} has no {{{{end}}}}")),
        Stop::End => vec![],
        Stop::Else => match parse_list(it)? {
            (nodes, Stop::End) => nodes,
            _ => return Err(format!("expected {{{{end}}}} after {{{{else}}}} of {name}")),
        },
        Stop::ElseIf(t) if matches!(ctl, Ctl::If) => vec![parse_control(it, Ctl::If, t)?],
        Stop::ElseIf(_) => return Err(format!("else if inside {name}")),
    };
    Ok(match ctl {
        Ctl::If => Node::If(pipe, body, other),
        Ctl::With => Node::With(pipe, body, other),
        Ctl::Range => Node::Range(pipe, body, other),
    })
}
