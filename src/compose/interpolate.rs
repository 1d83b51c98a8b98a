//! Variable interpolation as compose does it: `$VAR`, `${VAR}`, `${VAR:-d}`, `${VAR-d}`,
//! `${VAR:?e}`, `${VAR?e}`, `${VAR:+r}`, `${VAR+r}`, `$$`, with nesting inside the
//! default/replacement/error text. Applied to every string value (never keys) of a file's tree.

use std::collections::BTreeMap;

use super::node::Node;
use super::ComposeError;

/// The variables interpolation sees: the process environment over the `.env`/`--env-file` ones.
pub type Env = BTreeMap<String, String>;

#[derive(Debug, PartialEq)]
pub enum TemplateError {
    Required { var: String, msg: String },
    Invalid,
}

/// Substitutes one string. Unset plain references become empty, and are reported in `unset`.
pub fn substitute(
    s: &str,
    env: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, TemplateError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '$' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                let end = closing_brace(&chars, i + 2).ok_or(TemplateError::Invalid)?;
                let inner: String = chars[i + 2..end].iter().collect();
                out.push_str(&braced(&inner, env, unset)?);
                i = end + 1;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == '_' => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let name: String = chars[start..j].iter().collect();
                out.push_str(&lookup_plain(&name, env, unset));
                i = j;
            }
            _ => return Err(TemplateError::Invalid),
        }
    }
    Ok(out)
}

/// Index of the `}` closing a `${` whose body starts at `from`, skipping nested `${...}`.
fn closing_brace(chars: &[char], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = from;
    while i < chars.len() {
        match chars[i] {
            '$' if chars.get(i + 1) == Some(&'$') => i += 1,
            '$' if chars.get(i + 1) == Some(&'{') => {
                depth += 1;
                i += 1;
            }
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

fn lookup_plain(
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> String {
    env(name).unwrap_or_else(|| {
        if !unset.iter().any(|u| u == name) {
            unset.push(name.to_string());
        }
        String::new()
    })
}

fn braced(
    inner: &str,
    env: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<String, TemplateError> {
    let name_len = inner
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphanumeric() || c == '_') || (i == 0 && c.is_ascii_digit()))
        .map_or(inner.len(), |(i, _)| i);
    if name_len == 0 {
        return Err(TemplateError::Invalid);
    }
    let (name, rest) = inner.split_at(name_len);
    if rest.is_empty() {
        return Ok(lookup_plain(name, env, unset));
    }
    let value = env(name);
    let (op, arg) = ["-", "?", "+"]
        .iter()
        .find_map(|op| {
            rest.strip_prefix(&format!(":{op}"))
                .map(|a| (format!(":{op}"), a))
                .or_else(|| rest.strip_prefix(op).map(|a| (op.to_string(), a)))
        })
        .ok_or(TemplateError::Invalid)?;
    let colon = op.starts_with(':');
    // With a colon, an empty value counts as unset.
    let is_set = match &value {
        Some(v) => !(colon && v.is_empty()),
        None => false,
    };
    let expand = |a: &str, unset: &mut Vec<String>| substitute(a, env, unset);
    match op.trim_start_matches(':') {
        "-" if is_set => Ok(value.unwrap_or_default()),
        "-" => expand(arg, unset),
        "?" if is_set => Ok(value.unwrap_or_default()),
        "?" => Err(TemplateError::Required {
            var: name.to_string(),
            msg: expand(arg, unset)?,
        }),
        "+" if is_set => expand(arg, unset),
        _ => Ok(String::new()),
    }
}

/// Interpolates every string of a tree in place. `path` names the node in errors.
pub fn interpolate_tree(
    node: &mut Node,
    path: &str,
    env: &Env,
    warnings: &mut Vec<String>,
) -> Result<(), ComposeError> {
    let lookup = |k: &str| env.get(k).cloned();
    walk(node, path, &lookup, warnings)
}

fn walk(
    node: &mut Node,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<(), ComposeError> {
    match node {
        Node::Str(s) => {
            let mut unset = Vec::new();
            let new = substitute(s, env, &mut unset).map_err(|e| match e {
                TemplateError::Required { var, msg } if msg.is_empty() => ComposeError::invalid(
                    path,
                    format!("required variable {var} is missing a value"),
                ),
                TemplateError::Required { var, msg } => ComposeError::invalid(
                    path,
                    format!("required variable {var} is missing a value: {msg}"),
                ),
                TemplateError::Invalid => ComposeError::invalid(
                    path,
                    format!(
                        "invalid interpolation format {s:?}: you may need to escape any $ with another $"
                    ),
                ),
            })?;
            for var in unset {
                let w = format!("the {var:?} variable is not set, defaulting to a blank string");
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
            }
            *s = new;
        }
        Node::Seq(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                walk(item, &format!("{path}[{i}]"), env, warnings)?;
            }
        }
        Node::Map(m) => {
            for (k, v) in m.iter_mut() {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                walk(v, &p, env, warnings)?;
            }
        }
        Node::Override(inner) => walk(inner, path, env, warnings)?,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(s: &str) -> Result<String, TemplateError> {
        let env = |k: &str| match k {
            "SET" => Some("value".to_string()),
            "EMPTY" => Some(String::new()),
            "TAG" => Some("1.2".to_string()),
            _ => None,
        };
        substitute(s, &env, &mut Vec::new())
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(sub("a-$SET-b").unwrap(), "a-value-b");
        assert_eq!(sub("${SET}x").unwrap(), "valuex");
        assert_eq!(sub("$SET.x").unwrap(), "value.x");
        assert_eq!(sub("img:${TAG}").unwrap(), "img:1.2");
        assert_eq!(sub("$UNSET|${UNSET}").unwrap(), "|");
    }

    #[test]
    fn escape() {
        assert_eq!(sub("$$SET").unwrap(), "$SET");
        assert_eq!(sub("a$$").unwrap(), "a$");
        assert_eq!(sub("$${SET}").unwrap(), "${SET}");
    }

    #[test]
    fn defaults() {
        assert_eq!(sub("${UNSET:-d}").unwrap(), "d");
        assert_eq!(sub("${EMPTY:-d}").unwrap(), "d");
        assert_eq!(sub("${EMPTY-d}").unwrap(), "");
        assert_eq!(sub("${UNSET-d}").unwrap(), "d");
        assert_eq!(sub("${SET:-d}").unwrap(), "value");
        assert_eq!(sub("${UNSET:-}").unwrap(), "");
        assert_eq!(sub("${UNSET:-a b:c}").unwrap(), "a b:c");
    }

    #[test]
    fn nested_defaults() {
        assert_eq!(sub("${UNSET:-${SET}}").unwrap(), "value");
        assert_eq!(sub("${UNSET:-${ALSO:-deep}}").unwrap(), "deep");
        assert_eq!(sub("${UNSET:-x${TAG}y}-z").unwrap(), "x1.2y-z");
        assert_eq!(sub("${SET:+${TAG}}").unwrap(), "1.2");
    }

    #[test]
    fn required() {
        assert_eq!(
            sub("${UNSET:?need it}"),
            Err(TemplateError::Required {
                var: "UNSET".into(),
                msg: "need it".into()
            })
        );
        assert!(matches!(
            sub("${EMPTY:?x}"),
            Err(TemplateError::Required { .. })
        ));
        assert_eq!(sub("${EMPTY?x}").unwrap(), "");
        assert!(matches!(
            sub("${UNSET?x}"),
            Err(TemplateError::Required { .. })
        ));
        assert_eq!(sub("${SET:?x}").unwrap(), "value");
    }

    #[test]
    fn replacement() {
        assert_eq!(sub("${SET:+r}").unwrap(), "r");
        assert_eq!(sub("${EMPTY:+r}").unwrap(), "");
        assert_eq!(sub("${EMPTY+r}").unwrap(), "r");
        assert_eq!(sub("${UNSET+r}").unwrap(), "");
    }

    #[test]
    fn invalid() {
        assert_eq!(sub("${"), Err(TemplateError::Invalid));
        assert_eq!(sub("${}"), Err(TemplateError::Invalid));
        assert_eq!(sub("$"), Err(TemplateError::Invalid));
        assert_eq!(sub("${A B}"), Err(TemplateError::Invalid));
        assert_eq!(sub("${1A}"), Err(TemplateError::Invalid));
    }

    #[test]
    fn tree_errors_name_path_and_variable() {
        let mut node = super::super::node::parse_yaml(
            "services:\n  web:\n    image: \"app:${TAG:?error text}\"\n",
            "f",
        )
        .unwrap();
        let err = interpolate_tree(&mut node, "", &Env::new(), &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "services.web.image: required variable TAG is missing a value: error text"
        );
    }

    #[test]
    fn tree_warns_unset_and_keeps_keys() {
        let mut node = super::super::node::parse_yaml("a:\n  $K: [\"${X}\", 1]\n", "f").unwrap();
        let mut warnings = Vec::new();
        interpolate_tree(&mut node, "", &Env::new(), &mut warnings).unwrap();
        let Node::Map(top) = node else { panic!() };
        let Node::Map(a) = &top["a"] else { panic!() };
        assert_eq!(
            a["$K"],
            Node::Seq(vec![Node::Str(String::new()), Node::Int(1)])
        );
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("\"X\""));
    }
}
