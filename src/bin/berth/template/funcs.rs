//! The functions templates may call: Go's builtins and docker's.

use serde_json::Value;
use std::fmt::Write as _;

use super::exec::{kind, print, print_inner, truth};
use super::Error;

fn want_str<'a>(f: &str, v: &'a Value) -> Result<&'a str, Error> {
    v.as_str()
        .ok_or_else(|| format!("{f}: wrong argument type {}; expected string", kind(v)))
}

fn arity(f: &str, args: &[Value], n: usize) -> Result<(), Error> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {f}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

pub(super) fn call(f: &str, args: &[Value]) -> Result<Value, Error> {
    let s = |v: &str| Ok(Value::String(v.to_string()));
    match f {
        "json" => {
            arity(f, args, 1)?;
            Ok(Value::String(
                serde_json::to_string(&args[0]).map_err(|e| e.to_string())?,
            ))
        }
        "upper" | "lower" | "title" => {
            arity(f, args, 1)?;
            let x = want_str(f, &args[0])?;
            match f {
                "upper" => s(&x.to_uppercase()),
                "lower" => s(&x.to_lowercase()),
                _ => s(&title(x)),
            }
        }
        "join" => {
            arity(f, args, 2)?;
            let sep = want_str(f, &args[1])?;
            let parts: Vec<String> = match &args[0] {
                Value::Array(a) => a.iter().map(print).collect(),
                Value::Null => vec![],
                other => return Err(format!("join: wrong argument type {}", kind(other))),
            };
            s(&parts.join(sep))
        }
        "split" => {
            arity(f, args, 2)?;
            let (x, sep) = (want_str(f, &args[0])?, want_str(f, &args[1])?);
            Ok(Value::Array(
                x.split(sep).map(|p| Value::String(p.into())).collect(),
            ))
        }
        "truncate" => {
            arity(f, args, 2)?;
            let n = args[1]
                .as_u64()
                .ok_or("truncate: length must be a number")? as usize;
            s(&want_str(f, &args[0])?.chars().take(n).collect::<String>())
        }
        "len" => {
            arity(f, args, 1)?;
            let n = match &args[0] {
                Value::String(x) => x.len(),
                Value::Array(a) => a.len(),
                Value::Object(m) => m.len(),
                Value::Null => 0,
                other => return Err(format!("len of type {}", kind(other))),
            };
            Ok(Value::from(n))
        }
        "index" => index(args),
        "printf" => {
            let fmt = want_str(f, args.first().ok_or("printf: missing format")?)?;
            s(&sprintf(fmt, &args[1..]))
        }
        "print" | "println" => {
            let mut o = args.iter().map(print_inner).collect::<Vec<_>>().join(" ");
            if f == "println" {
                o.push('\n');
            }
            s(&o)
        }
        "not" => {
            arity(f, args, 1)?;
            Ok(Value::Bool(!truth(&args[0])))
        }
        "and" | "or" => {
            let want = f == "or";
            let last = args
                .last()
                .cloned()
                .ok_or(format!("{f}: missing arguments"))?;
            Ok(args
                .iter()
                .find(|a| truth(a) == want)
                .cloned()
                .unwrap_or(last))
        }
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" => compare(f, args),
        _ => Err(format!("function {f:?} not defined")),
    }
}

fn title(x: &str) -> String {
    let mut out = String::new();
    let mut start = true;
    for c in x.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

fn index(args: &[Value]) -> Result<Value, Error> {
    let mut cur = args.first().cloned().ok_or("index: missing arguments")?;
    for k in &args[1..] {
        cur = match (&cur, k) {
            (Value::Object(m), Value::String(s)) => m.get(s).cloned().unwrap_or(Value::Null),
            (Value::Array(a), n) if n.as_u64().is_some() => {
                let i = n.as_u64().unwrap_or(0) as usize;
                a.get(i)
                    .cloned()
                    .ok_or_else(|| format!("index out of range: {i}"))?
            }
            (Value::Null, _) => Value::Null,
            (c, k) => {
                return Err(format!(
                    "can't index item of type {} with {}",
                    kind(c),
                    print(k)
                ))
            }
        };
    }
    Ok(cur)
}

fn compare(f: &str, args: &[Value]) -> Result<Value, Error> {
    if args.len() < 2 {
        return Err(format!("{f}: missing argument for comparison"));
    }
    let ord = |a: &Value, b: &Value| -> Result<std::cmp::Ordering, Error> {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => Ok(x
                .as_f64()
                .partial_cmp(&y.as_f64())
                .unwrap_or(std::cmp::Ordering::Equal)),
            (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
            (Value::Bool(x), Value::Bool(y)) if matches!(f, "eq" | "ne") => Ok(x.cmp(y)),
            (Value::Null, Value::Null) if matches!(f, "eq" | "ne") => Ok(std::cmp::Ordering::Equal),
            _ => Err(format!("{f}: incompatible types for comparison")),
        }
    };
    use std::cmp::Ordering::*;
    let r = match f {
        "eq" => {
            let mut any = false;
            for b in &args[1..] {
                any |= ord(&args[0], b)? == Equal;
            }
            any
        }
        "ne" => ord(&args[0], &args[1])? != Equal,
        "lt" => ord(&args[0], &args[1])? == Less,
        "le" => ord(&args[0], &args[1])? != Greater,
        "gt" => ord(&args[0], &args[1])? == Greater,
        _ => ord(&args[0], &args[1])? != Less,
    };
    Ok(Value::Bool(r))
}

/// Go's fmt verbs that formats use: %s %v %d %q %f %x %t %%, with flags,
/// width and precision.
pub fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = fmt.chars().peekable();
    let mut next = args.iter();
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&d) = it.peek() {
            if d.is_ascii_digit() || matches!(d, '-' | '+' | '.' | ' ' | '0' | '#') {
                spec.push(d);
                it.next();
            } else {
                break;
            }
        }
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(a) = next.next() else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        let left = spec.starts_with('-');
        let zero = spec.trim_start_matches('-').starts_with('0');
        let mut parts = spec.trim_start_matches(['-', '+', ' ', '#']).splitn(2, '.');
        let width: usize = parts.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        let prec: Option<usize> = parts.next().map(|p| p.parse().unwrap_or(0));
        let body = match verb {
            'd' => match a.as_i64() {
                Some(n) => n.to_string(),
                None => format!("%!d({})", print(a)),
            },
            'f' | 'g' | 'e' => match a.as_f64() {
                Some(x) => format!("{x:.p$}", p = prec.unwrap_or(6)),
                None => format!("%!f({})", print(a)),
            },
            'q' => serde_json::to_string(&Value::String(print(a))).unwrap_or_default(),
            'x' => match a {
                Value::Number(n) => n.as_i64().map(|n| format!("{n:x}")).unwrap_or_default(),
                other => print(other).bytes().map(|b| format!("{b:02x}")).collect(),
            },
            't' => print(a),
            _ => {
                let s = print(a);
                match prec {
                    Some(p) if verb == 's' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
        };
        let pad = width.saturating_sub(body.chars().count());
        if left {
            out.push_str(&body);
            out.push_str(&" ".repeat(pad));
        } else if zero && verb != 's' {
            out.push_str(&"0".repeat(pad));
            out.push_str(&body);
        } else {
            out.push_str(&" ".repeat(pad));
            out.push_str(&body);
        }
    }
    out
}
