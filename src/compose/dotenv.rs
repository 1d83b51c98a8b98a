//! `.env`, `--env-file` and service `env_file` files: `KEY=VALUE` lines as compose reads them
//! (`export` prefix, `#` comments, single quotes literal, double quotes with escapes and
//! interpolation, unquoted values interpolated with inline ` #` comments cut).

use std::collections::BTreeMap;

use super::interpolate::{substitute, TemplateError};
use super::ComposeError;

/// Parses `text`; `env` resolves references not defined earlier in the file, and bare `KEY`
/// lines. `file` labels errors.
pub fn parse(
    text: &str,
    file: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, String)>, ComposeError> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let lineno = i + 1;
        let line = lines[i].trim_start();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let err = |msg: &str| ComposeError::invalid(&format!("{file}:{lineno}"), msg.to_string());
        let Some((key, raw)) = line.split_once('=') else {
            let key = line.trim();
            if !valid_key(key) {
                return Err(err(&format!("invalid variable name {key:?}")));
            }
            let known: BTreeMap<_, _> = vars.iter().cloned().collect();
            if let Some(v) = known.get(key).cloned().or_else(|| env(key)) {
                vars.push((key.to_string(), v));
            }
            continue;
        };
        let key = key.trim();
        if !valid_key(key) {
            return Err(err(&format!("invalid variable name {key:?}")));
        }
        let raw = raw.trim_start();
        let known: BTreeMap<String, String> = vars.iter().cloned().collect();
        let lookup = |k: &str| known.get(k).cloned().or_else(|| env(k));
        let value = match raw.chars().next() {
            Some(q @ ('\'' | '"')) => {
                // A quoted value may run over several lines.
                let mut body = raw[1..].to_string();
                while !closes(&body, q) {
                    let Some(next) = lines.get(i) else {
                        return Err(err("unterminated quoted value"));
                    };
                    body.push('\n');
                    body.push_str(next);
                    i += 1;
                }
                let end = close_index(&body, q).unwrap_or(body.len());
                let inner = &body[..end];
                if q == '\'' {
                    inner.to_string()
                } else {
                    let unescaped = unescape(inner);
                    expand(&unescaped, &lookup).map_err(|m| err(&m))?
                }
            }
            _ => {
                let cut = raw.find(" #").map_or(raw, |p| &raw[..p]);
                expand(cut.trim_end(), &lookup).map_err(|m| err(&m))?
            }
        };
        vars.retain(|(k, _)| k != key);
        vars.push((key.to_string(), value));
    }
    Ok(vars)
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
}

fn close_index(body: &str, q: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        if q == '"' && c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        if c == q && !escaped {
            return Some(i);
        }
        escaped = false;
    }
    None
}

fn closes(body: &str, q: char) -> bool {
    close_index(body, q).is_some()
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

fn expand(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    substitute(s, lookup, &mut Vec::new()).map_err(|e| match e {
        TemplateError::Required { var, msg } => {
            format!("required variable {var} is missing a value: {msg}")
        }
        TemplateError::Invalid => format!("invalid interpolation format {s:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Vec<(String, String)> {
        let env = |k: &str| (k == "HOME_X").then(|| "/h".to_string());
        parse(text, ".env", &env).unwrap()
    }

    #[test]
    fn forms() {
        let vars = p("# c\n\nA=1\nexport B = two \nC='lit $A'\nD=\"q ${A}\\n\"\nE=x #cmt\nF=\nG=${HOME_X}/y\nHOME_X\n");
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("A"), Some("1"));
        assert_eq!(get("B"), Some("two"));
        assert_eq!(get("C"), Some("lit $A"));
        assert_eq!(get("D"), Some("q 1\n"));
        assert_eq!(get("E"), Some("x"));
        assert_eq!(get("F"), Some(""));
        assert_eq!(get("G"), Some("/h/y"));
        assert_eq!(get("HOME_X"), Some("/h"));
    }

    #[test]
    fn multiline_and_override() {
        let vars = p("K=\"a\nb\"\nK=2\n");
        assert_eq!(vars, vec![("K".to_string(), "2".to_string())]);
        let vars = p("K=\"a\nb\"\n");
        assert_eq!(vars[0].1, "a\nb");
    }

    #[test]
    fn errors_name_file_and_line() {
        let env = |_: &str| None;
        let e = parse("A=1\n1B=2\n", ".env", &env).unwrap_err().to_string();
        assert!(e.starts_with(".env:2:"), "{e}");
        let e = parse("A=\"open\n", ".env", &env).unwrap_err().to_string();
        assert!(e.contains("unterminated"), "{e}");
    }
}
