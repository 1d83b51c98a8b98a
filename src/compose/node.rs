//! The untyped tree a compose file is read into: interpolation and merging work on it, as the
//! Compose Specification defines them on the YAML tree, before the typed model is built.

use std::collections::BTreeMap;

use saphyr::{LoadableYamlNode, Scalar, Yaml};

use super::ComposeError;

pub type Map = BTreeMap<String, Node>;

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Map),
    /// `!reset`: removes the value inherited from an earlier file.
    Reset,
    /// `!override`: replaces the value from an earlier file instead of merging with it.
    Override(Box<Node>),
}

impl Node {
    pub fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Int(_) => "an integer",
            Node::Float(_) => "a number",
            Node::Str(_) => "a string",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
            Node::Reset | Node::Override(_) => "a tagged value",
        }
    }

    /// The scalar as text, as compose sees `KEY: 1` in environment-like mappings.
    pub fn scalar_text(&self) -> Option<String> {
        match self {
            Node::Bool(b) => Some(b.to_string()),
            Node::Int(i) => Some(i.to_string()),
            Node::Float(f) => Some(f.to_string()),
            Node::Str(s) => Some(s.clone()),
            _ => None,
        }
    }
}

/// Parses one compose file's text. `file` only labels errors.
pub fn parse_yaml(text: &str, file: &str) -> Result<Node, ComposeError> {
    let docs = Yaml::load_from_str(text).map_err(|e| ComposeError::Syntax {
        file: file.to_string(),
        line: e.marker().line(),
        column: e.marker().col() + 1,
        msg: e.info().to_string(),
    })?;
    let doc = match docs.len() {
        0 => return Ok(Node::Map(Map::new())),
        1 => &docs[0],
        _ => {
            return Err(ComposeError::invalid(
                file,
                "a compose file holds one YAML document, found several",
            ))
        }
    };
    let node = convert(doc, "")?;
    match node {
        Node::Map(_) => Ok(node),
        Node::Null => Ok(Node::Map(Map::new())),
        other => Err(ComposeError::invalid(
            file,
            format!("top level must be a mapping, found {}", other.kind()),
        )),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn convert(y: &Yaml, path: &str) -> Result<Node, ComposeError> {
    Ok(match y {
        Yaml::Value(s) => scalar(s),
        Yaml::Representation(text, _, _) => Node::Str(text.to_string()),
        Yaml::Sequence(items) => Node::Seq(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| convert(v, &format!("{path}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(m) => convert_map(m, path)?,
        Yaml::Tagged(tag, inner) => match tag.suffix.as_str() {
            "reset" if tag.handle == "!" => Node::Reset,
            "override" if tag.handle == "!" => Node::Override(Box::new(convert(inner, path)?)),
            _ => {
                return Err(ComposeError::invalid(
                    path,
                    format!("unsupported YAML tag {}{}", tag.handle, tag.suffix),
                ))
            }
        },
        Yaml::Alias(_) | Yaml::BadValue => {
            return Err(ComposeError::invalid(path, "invalid YAML value"))
        }
    })
}

fn scalar(s: &Scalar) -> Node {
    match s {
        Scalar::Null => Node::Null,
        Scalar::Boolean(b) => Node::Bool(*b),
        Scalar::Integer(i) => Node::Int(*i),
        Scalar::FloatingPoint(f) => Node::Float(f.into_inner()),
        Scalar::String(s) => Node::Str(s.to_string()),
    }
}

fn key_text(k: &Yaml, path: &str) -> Result<String, ComposeError> {
    match k {
        Yaml::Value(s) => match scalar(s) {
            Node::Null => Ok("null".into()),
            n => n
                .scalar_text()
                .ok_or_else(|| ComposeError::invalid(path, "mapping keys must be scalars")),
        },
        Yaml::Representation(t, _, _) => Ok(t.to_string()),
        _ => Err(ComposeError::invalid(path, "mapping keys must be scalars")),
    }
}

/// Builds a mapping, applying YAML merge keys (`<<: *anchor` or `<<: [*a, *b]`): keys written
/// in the mapping win over merged ones, and earlier merged mappings win over later ones.
fn convert_map(m: &saphyr::Mapping, path: &str) -> Result<Node, ComposeError> {
    let mut out = Map::new();
    let mut merged: Vec<Map> = Vec::new();
    for (k, v) in m {
        let key = key_text(k, path)?;
        let child = join(path, &key);
        if key == "<<" {
            match convert(v, &child)? {
                Node::Map(mm) => merged.push(mm),
                Node::Seq(items) => {
                    for item in items {
                        match item {
                            Node::Map(mm) => merged.push(mm),
                            other => {
                                return Err(ComposeError::invalid(
                                    &child,
                                    format!("merge key needs mappings, found {}", other.kind()),
                                ))
                            }
                        }
                    }
                }
                other => {
                    return Err(ComposeError::invalid(
                        &child,
                        format!("merge key needs a mapping, found {}", other.kind()),
                    ))
                }
            }
            continue;
        }
        out.insert(key, convert(v, &child)?);
    }
    for mm in merged {
        for (k, v) in mm {
            out.entry(k).or_insert(v);
        }
    }
    Ok(Node::Map(out))
}

/// Serializes a tree as block YAML. Mapping keys come out in the order the caller built them
/// (`Vec` pairs), so output code controls the canonical order.
pub enum Out {
    Scalar(Node),
    Seq(Vec<Out>),
    Map(Vec<(String, Out)>),
}

pub fn emit(out: &Out) -> String {
    let mut s = String::new();
    emit_into(&mut s, out, 0);
    s
}

fn emit_into(s: &mut String, out: &Out, indent: usize) {
    let pad = " ".repeat(indent);
    match out {
        Out::Map(entries) => {
            for (k, v) in entries {
                s.push_str(&pad);
                s.push_str(&quote(k));
                s.push(':');
                emit_value(s, v, indent);
            }
        }
        Out::Seq(items) => {
            for v in items {
                s.push_str(&pad);
                s.push('-');
                match v {
                    Out::Map(entries) if !entries.is_empty() => {
                        // The first entry shares the dash's line, as YAML writers do.
                        let mut sub = String::new();
                        emit_into(&mut sub, v, indent + 2);
                        s.push(' ');
                        s.push_str(sub.trim_start());
                    }
                    _ => emit_value(s, v, indent),
                }
            }
        }
        Out::Scalar(n) => {
            s.push_str(&pad);
            s.push_str(&scalar_text(n));
            s.push('\n');
        }
    }
}

fn emit_value(s: &mut String, v: &Out, indent: usize) {
    match v {
        Out::Scalar(n) => {
            s.push(' ');
            s.push_str(&scalar_text(n));
            s.push('\n');
        }
        Out::Map(e) if e.is_empty() => s.push_str(" {}\n"),
        Out::Seq(e) if e.is_empty() => s.push_str(" []\n"),
        _ => {
            s.push('\n');
            emit_into(s, v, indent + 2);
        }
    }
}

fn scalar_text(n: &Node) -> String {
    match n {
        Node::Null | Node::Reset | Node::Override(_) => "null".into(),
        Node::Bool(b) => b.to_string(),
        Node::Int(i) => i.to_string(),
        Node::Float(f) => f.to_string(),
        Node::Str(s) => quote(s),
        Node::Seq(_) | Node::Map(_) => "null".into(),
    }
}

/// Plain when YAML reads it back as the same string, double-quoted (JSON escapes, valid YAML)
/// otherwise.
fn quote(s: &str) -> String {
    let plain_chars = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_./-@%+=,~():".contains(c));
    // The reparse below catches what these allow but YAML reads otherwise (`a: b`, `- x`).
    let first_ok = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || "_./-".contains(c));
    let reparsed = Yaml::load_from_str(s).ok();
    let stays_string = matches!(
        reparsed.as_deref(),
        Some([Yaml::Value(Scalar::String(t))]) if t == s
    );
    // YAML 1.1 readers take `8080:80` for a base-60 number and `yes`/`off` for booleans.
    let sexagesimal = s.contains(':') && s.chars().all(|c| c.is_ascii_digit() || c == ':');
    let yaml11_bool = matches!(
        s.to_ascii_lowercase().as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off"
    );
    if plain_chars && first_ok && stays_string && !sexagesimal && !yaml11_bool {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keys_and_anchors() {
        let text = "x-base: &base\n  restart: always\n  image: a\nservices:\n  web:\n    <<: *base\n    image: b\n";
        let Node::Map(top) = parse_yaml(text, "f").unwrap() else {
            panic!()
        };
        let Node::Map(services) = &top["services"] else {
            panic!()
        };
        let Node::Map(web) = &services["web"] else {
            panic!()
        };
        assert_eq!(web["image"], Node::Str("b".into()));
        assert_eq!(web["restart"], Node::Str("always".into()));
        assert!(!web.contains_key("<<"));
    }

    #[test]
    fn merge_key_list_first_wins() {
        let text = "a: &a {x: 1}\nb: &b {x: 2, y: 3}\nc:\n  <<: [*a, *b]\n";
        let Node::Map(top) = parse_yaml(text, "f").unwrap() else {
            panic!()
        };
        let Node::Map(c) = &top["c"] else { panic!() };
        assert_eq!(c["x"], Node::Int(1));
        assert_eq!(c["y"], Node::Int(3));
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let err = parse_yaml("services:\n  web:\n    image: [a\n", "compose.yaml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("compose.yaml:"), "{msg}");
        match err {
            ComposeError::Syntax { line, column, .. } => {
                assert!(line >= 3, "{msg}");
                assert!(column >= 1);
            }
            _ => panic!("{msg}"),
        }
    }

    #[test]
    fn duplicate_keys_rejected() {
        assert!(parse_yaml("a: 1\na: 2\n", "f").is_err());
    }

    #[test]
    fn tags() {
        let Node::Map(top) = parse_yaml("a: !reset null\nb: !override [1]\n", "f").unwrap() else {
            panic!()
        };
        assert_eq!(top["a"], Node::Reset);
        assert_eq!(
            top["b"],
            Node::Override(Box::new(Node::Seq(vec![Node::Int(1)])))
        );
        let err = parse_yaml("a: !custom 1\n", "f").unwrap_err().to_string();
        assert!(err.contains("a: unsupported YAML tag !custom"), "{err}");
    }

    #[test]
    fn emit_round_trips_quoting() {
        let out = Out::Map(vec![
            ("a".into(), Out::Scalar(Node::Str("true".into()))),
            ("b".into(), Out::Scalar(Node::Str("8080:80".into()))),
            ("c".into(), Out::Scalar(Node::Str("plain".into()))),
            ("d".into(), Out::Scalar(Node::Str("".into()))),
            (
                "e".into(),
                Out::Seq(vec![Out::Map(vec![
                    ("k".into(), Out::Scalar(Node::Int(1))),
                    ("l".into(), Out::Scalar(Node::Str("x #y".into()))),
                ])]),
            ),
            ("f".into(), Out::Scalar(Node::Str("12".into()))),
            ("g".into(), Out::Scalar(Node::Str("no".into()))),
        ]);
        let text = emit(&out);
        assert!(text.contains("a: \"true\"\n"), "{text}");
        assert!(text.contains("c: plain\n"), "{text}");
        assert!(text.contains("b: \"8080:80\"\n"), "{text}");
        assert!(text.contains("e:\n  - k: 1\n    l: \"x #y\"\n"), "{text}");
        let Node::Map(back) = parse_yaml(&text, "f").unwrap() else {
            panic!()
        };
        assert_eq!(back["a"], Node::Str("true".into()));
        assert_eq!(back["b"], Node::Str("8080:80".into()));
        assert_eq!(back["d"], Node::Str("".into()));
        assert_eq!(back["f"], Node::Str("12".into()));
        assert!(text.contains("g: \"no\"\n"), "{text}");
    }
}
