//! Typed reads of tree nodes, each naming its key path on error. After interpolation numbers and
//! booleans may arrive as strings (`replicas: ${N}`), so the readers accept both, as compose does.

use std::collections::BTreeMap;
use std::time::Duration;

use super::node::{Map, Node};
use super::ComposeError;

pub fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn wrong(path: &str, want: &str, n: &Node) -> ComposeError {
    ComposeError::invalid(path, format!("must be {want}, found {}", n.kind()))
}

pub fn unsupported(path: &str, key: &str) -> ComposeError {
    ComposeError::invalid(&child(path, key), "unsupported key")
}

/// `x-` extension keys are allowed in every object and ignored.
pub fn is_extension(key: &str) -> bool {
    key.starts_with("x-")
}

pub fn map<'a>(n: &'a Node, path: &str) -> Result<&'a Map, ComposeError> {
    match n {
        Node::Map(m) => Ok(m),
        other => Err(wrong(path, "a mapping", other)),
    }
}

pub fn string(n: &Node, path: &str) -> Result<String, ComposeError> {
    match n {
        Node::Str(s) => Ok(s.clone()),
        Node::Int(_) | Node::Float(_) => Ok(n.scalar_text().unwrap_or_default()),
        other => Err(wrong(path, "a string", other)),
    }
}

pub fn boolean(n: &Node, path: &str) -> Result<bool, ComposeError> {
    match n {
        Node::Bool(b) => Ok(*b),
        Node::Str(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "y" | "on" => Ok(true),
            "false" | "no" | "n" | "off" => Ok(false),
            _ => Err(ComposeError::invalid(
                path,
                format!("must be a boolean, found {s:?}"),
            )),
        },
        other => Err(wrong(path, "a boolean", other)),
    }
}

pub fn int(n: &Node, path: &str) -> Result<i64, ComposeError> {
    match n {
        Node::Int(i) => Ok(*i),
        Node::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| ComposeError::invalid(path, format!("must be an integer, found {s:?}"))),
        other => Err(wrong(path, "an integer", other)),
    }
}

pub fn uint<T: TryFrom<i64>>(n: &Node, path: &str) -> Result<T, ComposeError> {
    let i = int(n, path)?;
    T::try_from(i).map_err(|_| ComposeError::invalid(path, format!("{i} is out of range")))
}

pub fn float(n: &Node, path: &str) -> Result<f64, ComposeError> {
    match n {
        Node::Int(i) => Ok(*i as f64),
        Node::Float(f) => Ok(*f),
        Node::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| ComposeError::invalid(path, format!("must be a number, found {s:?}"))),
        other => Err(wrong(path, "a number", other)),
    }
}

/// A string or a list of strings (`dns: 8.8.8.8` or `dns: [..]`).
pub fn string_or_list(n: &Node, path: &str) -> Result<Vec<String>, ComposeError> {
    match n {
        Node::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| string(v, &format!("{path}[{i}]")))
            .collect(),
        other => Ok(vec![string(other, path)?]),
    }
}

pub fn list(n: &Node, path: &str) -> Result<Vec<String>, ComposeError> {
    match n {
        Node::Seq(_) => string_or_list(n, path),
        other => Err(wrong(path, "a list", other)),
    }
}

/// A mapping of scalars or a `KEY=VALUE` list (environment, labels, args, sysctls). In lists a
/// bare `KEY` gives `None`, in mappings a null value does.
pub fn dict(n: &Node, path: &str) -> Result<BTreeMap<String, Option<String>>, ComposeError> {
    let mut out = BTreeMap::new();
    match n {
        Node::Map(m) => {
            for (k, v) in m {
                let value = match v {
                    Node::Null => None,
                    other => Some(
                        other
                            .scalar_text()
                            .ok_or_else(|| wrong(&child(path, k), "a scalar", other))?,
                    ),
                };
                out.insert(k.clone(), value);
            }
        }
        Node::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                let s = string(item, &format!("{path}[{i}]"))?;
                match s.split_once('=') {
                    Some((k, v)) => out.insert(k.to_string(), Some(v.to_string())),
                    None => out.insert(s, None),
                };
            }
        }
        other => return Err(wrong(path, "a mapping or a list", other)),
    }
    Ok(out)
}

/// Like `dict`, for keys that need a value (labels, sysctls): a bare key means empty.
pub fn dict_strings(n: &Node, path: &str) -> Result<BTreeMap<String, String>, ComposeError> {
    Ok(dict(n, path)?
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// Go duration syntax (`1m30s`, `1.5s`, `100ms`, `2h`), as compose durations are written; a
/// bare integer is seconds.
pub fn duration(n: &Node, path: &str) -> Result<Duration, ComposeError> {
    let s = match n {
        Node::Int(i) if *i >= 0 => return Ok(Duration::from_secs(*i as u64)),
        other => string(other, path)?,
    };
    parse_duration(&s)
        .ok_or_else(|| ComposeError::invalid(path, format!("invalid duration {s:?} (e.g. 1m30s)")))
}

pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    Some(Duration::from_secs_f64(total))
}

/// Byte sizes as docker reads them (`512m`, `1g`, `1.5GiB`, `1024`): binary multiples.
pub fn bytes(n: &Node, path: &str) -> Result<u64, ComposeError> {
    let s = match n {
        Node::Int(i) if *i >= 0 => return Ok(*i as u64),
        other => string(other, path)?,
    };
    parse_bytes(&s)
        .ok_or_else(|| ComposeError::invalid(path, format!("invalid byte size {s:?} (e.g. 512m)")))
}

pub fn parse_bytes(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let num_len = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let value: f64 = t[..num_len].parse().ok()?;
    let unit = t[num_len..].trim();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(unit);
    let mult: u64 = match unit {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        "p" => 1 << 50,
        _ => return None,
    };
    Some((value * mult as f64) as u64)
}

/// Octal file modes: `0440` as a string, or the integer YAML gives for `0440`/`0o440`.
pub fn file_mode(n: &Node, path: &str) -> Result<u32, ComposeError> {
    match n {
        // YAML 1.2 reads `0440` as decimal 440 where compose's YAML 1.1 reader saw octal:
        // digits that read as octal are taken as octal (`0o440` arrives as 288 and stays).
        Node::Int(i) => u32::from_str_radix(&i.to_string(), 8)
            .or_else(|_| u32::try_from(*i))
            .map_err(|_| ComposeError::invalid(path, "invalid file mode")),
        other => {
            let s = string(other, path)?;
            let digits = s.trim_start_matches("0o");
            u32::from_str_radix(digits, 8)
                .map_err(|_| ComposeError::invalid(path, format!("invalid octal mode {s:?}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse_duration("1h2m"), Some(Duration::from_secs(3720)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("1x"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration(""), None);
        let e = duration(&Node::Str("soon".into()), "services.a.healthcheck.interval")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("services.a.healthcheck.interval: invalid duration"),
            "{e}"
        );
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("512m"), Some(512 << 20));
        assert_eq!(parse_bytes("1g"), Some(1 << 30));
        assert_eq!(parse_bytes("1GiB"), Some(1 << 30));
        assert_eq!(parse_bytes("2kb"), Some(2048));
        assert_eq!(parse_bytes("1.5g"), Some(3 << 29));
        assert_eq!(parse_bytes("100"), Some(100));
        assert_eq!(parse_bytes("100b"), Some(100));
        assert_eq!(parse_bytes("12q"), None);
        assert_eq!(bytes(&Node::Int(64), "x").unwrap(), 64);
    }

    #[test]
    fn dicts() {
        let n = Node::Seq(vec![Node::Str("A=1".into()), Node::Str("B".into())]);
        let d = dict(&n, "e").unwrap();
        assert_eq!(d["A"], Some("1".into()));
        assert_eq!(d["B"], None);
        let mut m = Map::new();
        m.insert("N".into(), Node::Int(3));
        m.insert("T".into(), Node::Bool(true));
        m.insert("U".into(), Node::Null);
        let d = dict(&Node::Map(m), "e").unwrap();
        assert_eq!(d["N"], Some("3".into()));
        assert_eq!(d["T"], Some("true".into()));
        assert_eq!(d["U"], None);
    }

    #[test]
    fn scalars_from_strings() {
        assert_eq!(int(&Node::Str("3".into()), "p").unwrap(), 3);
        assert!(boolean(&Node::Str("true".into()), "p").unwrap());
        assert!(int(&Node::Str("x".into()), "p").is_err());
        assert_eq!(file_mode(&Node::Str("0440".into()), "p").unwrap(), 0o440);
        assert_eq!(file_mode(&Node::Int(440), "p").unwrap(), 0o440);
        assert_eq!(file_mode(&Node::Int(288), "p").unwrap(), 288);
    }
}
