//! Running a parsed template over a JSON value.

use serde_json::Value;

use super::funcs::call;
use super::{Arg, Error, Node, Pipeline, Template};

impl Template {
    /// Runs the template on `data`.
    pub fn execute(&self, data: &Value) -> Result<String, Error> {
        let mut out = String::new();
        let mut vars = vec![("$".to_string(), data.clone())];
        exec_list(&self.nodes, data, &mut vars, &mut out)?;
        Ok(out)
    }
}

fn exec_list(
    nodes: &[Node],
    dot: &Value,
    vars: &mut Vec<(String, Value)>,
    out: &mut String,
) -> Result<(), Error> {
    for n in nodes {
        let mark = vars.len();
        match n {
            Node::Text(t) => out.push_str(t),
            Node::Out(p) => {
                let v = eval_pipe(p, dot, vars)?;
                if p.decl.is_empty() {
                    out.push_str(&print(&v));
                }
                // Declarations live until the enclosing block ends.
                continue;
            }
            Node::If(p, yes, no) => {
                let v = eval_pipe(p, dot, vars)?;
                exec_list(if truth(&v) { yes } else { no }, dot, vars, out)?;
            }
            Node::With(p, yes, no) => {
                let v = eval_pipe(p, dot, vars)?;
                if truth(&v) {
                    exec_list(yes, &v, vars, out)?;
                } else {
                    exec_list(no, dot, vars, out)?;
                }
            }
            Node::Range(p, body, empty) => {
                let v = eval_pipe(p, dot, vars)?;
                let items: Vec<(Value, Value)> = match &v {
                    Value::Array(a) => a
                        .iter()
                        .enumerate()
                        .map(|(i, x)| (Value::from(i), x.clone()))
                        .collect(),
                    Value::Object(m) => {
                        let mut keys: Vec<&String> = m.keys().collect();
                        keys.sort();
                        keys.into_iter()
                            .map(|k| (Value::String(k.clone()), m[k].clone()))
                            .collect()
                    }
                    Value::Null => vec![],
                    Value::Number(n) if n.as_u64().is_some() => (0..n.as_u64().unwrap_or(0))
                        .map(|i| (Value::from(i), Value::from(i)))
                        .collect(),
                    other => return Err(format!("range can't iterate over {}", print(other))),
                };
                if items.is_empty() {
                    exec_list(empty, dot, vars, out)?;
                }
                for (k, x) in items {
                    let m = vars.len();
                    match p.decl.as_slice() {
                        [v] => vars.push((v.clone(), x.clone())),
                        [i, v] => {
                            vars.push((i.clone(), k));
                            vars.push((v.clone(), x.clone()));
                        }
                        _ => {}
                    }
                    exec_list(body, &x, vars, out)?;
                    vars.truncate(m);
                }
            }
        }
        vars.truncate(mark);
    }
    Ok(())
}

fn eval_pipe(p: &Pipeline, dot: &Value, vars: &mut Vec<(String, Value)>) -> Result<Value, Error> {
    let mut prev: Option<Value> = None;
    for cmd in &p.cmds {
        prev = Some(eval_cmd(cmd, dot, vars, prev)?);
    }
    let v = prev.unwrap_or(Value::Null);
    // A range's variables are bound per element by the range itself.
    if let [name] = p.decl.as_slice() {
        if p.assign {
            match vars.iter_mut().rev().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = v.clone(),
                None => return Err(format!("undefined variable: {name}")),
            }
        } else {
            vars.push((name.clone(), v.clone()));
        }
    }
    Ok(v)
}

fn eval_cmd(
    cmd: &[Arg],
    dot: &Value,
    vars: &mut Vec<(String, Value)>,
    piped: Option<Value>,
) -> Result<Value, Error> {
    let mut args = vec![];
    for a in &cmd[1..] {
        args.push(eval_arg(a, dot, vars)?);
    }
    if let Some(p) = piped.clone() {
        args.push(p);
    }
    match &cmd[0] {
        Arg::Func(name) => call(name, &args),
        // docker's methods with arguments, e.g. `.Label "com.example.x"`.
        Arg::Field(..) if !args.is_empty() => {
            let v = eval_arg(&cmd[0], dot, vars)?;
            match (&v, args.as_slice()) {
                (Value::Object(m), [Value::String(k)]) => {
                    Ok(m.get(k).cloned().unwrap_or(Value::String(String::new())))
                }
                (Value::String(_), _) => Ok(v),
                _ => Err(format!(
                    "can't give arguments to non-function {}",
                    print(&v)
                )),
            }
        }
        first if args.is_empty() => eval_arg(first, dot, vars),
        _ => Err("can't give argument to non-function".into()),
    }
}

fn eval_arg(a: &Arg, dot: &Value, vars: &mut Vec<(String, Value)>) -> Result<Value, Error> {
    Ok(match a {
        Arg::Dot => dot.clone(),
        Arg::Lit(v) => v.clone(),
        Arg::Var(n) => vars
            .iter()
            .rev()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("undefined variable: {n}"))?,
        Arg::Pipe(p) => eval_pipe(p, dot, vars)?,
        Arg::Func(f) => call(f, &[])?,
        Arg::Field(base, path) => {
            let mut cur = eval_arg(base, dot, vars)?;
            for f in path {
                cur = match &cur {
                    Value::Object(m) => m.get(f).cloned().unwrap_or(Value::Null),
                    Value::Null => Value::Null,
                    other => {
                        return Err(format!("can't evaluate field {f} in type {}", kind(other)))
                    }
                };
            }
            cur
        }
    })
}

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Go's truth: false, 0, nil and empty strings, arrays and maps are false.
pub(super) fn truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// How Go's fmt prints a value with %v.
pub fn print(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(print_inner).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", print_inner(&m[k])))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

pub(super) fn print_inner(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        other => print(other),
    }
}
