//! Stages: splitting a Dockerfile at FROM, naming, `--target`, the dependency graph (FROM
//! `<stage>`, `COPY --from=<stage|index>`, `RUN --mount=from=<stage>`), cycle detection and the
//! order in which the stages a target needs are built.
//!
//! As in BuildKit, a stage name may be referenced before the stage is defined; a reference that is
//! neither a stage name nor a stage index is an image reference.

use super::parse::{Dockerfile, Flag, Instruction, Kind};
use super::{BuildError, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub index: usize,
    /// Lowercased `AS` name.
    pub name: Option<String>,
    pub line: usize,
    pub from_flags: Vec<Flag>,
    /// The raw (unexpanded) base: an image reference, `scratch` or a stage name.
    pub base: String,
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// The name used in messages: the alias or the index.
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.index.to_string())
    }
}

/// Splits into the global ARGs (before the first FROM) and the stages.
pub fn split(df: &Dockerfile) -> Result<(Vec<Instruction>, Vec<Stage>)> {
    let mut globals = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for ins in &df.instructions {
        match &ins.kind {
            Kind::From {
                flags,
                image,
                alias,
            } => {
                if let Some(a) = alias {
                    if stages.iter().any(|s| s.name.as_deref() == Some(a)) {
                        return Err(BuildError::at(
                            ins.line,
                            format!("duplicate stage name {a:?}"),
                        ));
                    }
                }
                stages.push(Stage {
                    index: stages.len(),
                    name: alias.clone(),
                    line: ins.line,
                    from_flags: flags.clone(),
                    base: image.clone(),
                    instructions: Vec::new(),
                });
            }
            _ => match stages.last_mut() {
                Some(s) => s.instructions.push(ins.clone()),
                None if matches!(ins.kind, Kind::Arg(_)) => globals.push(ins.clone()),
                None => {
                    return Err(BuildError::at(
                        ins.line,
                        format!(
                            "{} before the first FROM: no build stage in current context",
                            ins.kind.name()
                        ),
                    ))
                }
            },
        }
    }
    if stages.is_empty() {
        return Err(BuildError::general(
            "Dockerfile has no FROM instruction (no build stage)",
        ));
    }
    Ok((globals, stages))
}

/// A stage by name (case-insensitive) or by index.
pub fn find(stages: &[Stage], name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    if let Some(s) = stages.iter().find(|s| s.name.as_deref() == Some(&lower)) {
        return Some(s.index);
    }
    name.parse::<usize>().ok().filter(|i| *i < stages.len())
}

/// `--target`: the named stage, or the last one.
pub fn target(stages: &[Stage], target: Option<&str>) -> Result<usize> {
    match target {
        None => Ok(stages.len() - 1),
        Some(t) => stages
            .iter()
            .find(|s| s.name.as_deref() == Some(&t.to_ascii_lowercase()))
            .map(|s| s.index)
            .ok_or_else(|| BuildError::general(format!("target stage {t:?} could not be found"))),
    }
}

/// Resolves a `--from` value: a stage index or name, else an image reference. A bare number
/// that is not a stage index is an error (it cannot be an image).
pub fn resolve_from(stages: &[Stage], value: &str, line: usize) -> Result<Option<usize>> {
    if let Some(i) = find(stages, value) {
        return Ok(Some(i));
    }
    if !value.is_empty() && value.chars().all(|c| c.is_ascii_digit()) {
        return Err(BuildError::at(
            line,
            format!(
                "--from={value}: no stage with index {value} (the Dockerfile has {} stages)",
                stages.len()
            ),
        ));
    }
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_ascii_uppercase() || c.is_whitespace())
    {
        return Err(BuildError::at(
            line,
            format!("--from={value:?}: unknown stage and not a valid image reference"),
        ));
    }
    Ok(None)
}

/// The `from=` of each `--mount` flag of a RUN.
pub fn mount_froms(flags: &[Flag]) -> Vec<String> {
    flags
        .iter()
        .filter(|f| f.name == "mount")
        .filter_map(|f| f.value.as_deref())
        .filter_map(|v| {
            v.split(',')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "from")
                .map(|(_, v)| v.to_string())
        })
        .collect()
}

/// The stages a stage depends on. `expand` expands FROM and `--from` values (global scope).
pub fn deps(
    stage: &Stage,
    stages: &[Stage],
    expand: &dyn Fn(&str, usize) -> Result<String>,
) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    let base = expand(&stage.base, stage.line)?;
    if let Some(i) = find_by_name(stages, &base) {
        out.push(i);
    }
    for ins in &stage.instructions {
        let froms: Vec<String> = match &ins.kind {
            Kind::Copy(a) => a
                .flags
                .iter()
                .filter(|f| f.name == "from")
                .filter_map(|f| f.value.clone())
                .collect(),
            Kind::Run { flags, .. } => mount_froms(flags),
            _ => continue,
        };
        for f in froms {
            let v = expand(&f, ins.line)?;
            if let Some(i) = resolve_from(stages, &v, ins.line)? {
                out.push(i);
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// FROM only refers to stages by name (not by index).
pub fn find_by_name(stages: &[Stage], name: &str) -> Option<usize> {
    let lower = name.to_ascii_lowercase();
    stages
        .iter()
        .find(|s| s.name.as_deref() == Some(&lower))
        .map(|s| s.index)
}

/// The stages `target` needs, dependencies first; errors on a cycle.
pub fn build_order(stages: &[Stage], deps: &[Vec<usize>], target: usize) -> Result<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        i: usize,
        stages: &[Stage],
        deps: &[Vec<usize>],
        marks: &mut [Mark],
        order: &mut Vec<usize>,
    ) -> Result<()> {
        match marks[i] {
            Mark::Done => return Ok(()),
            Mark::Active => {
                return Err(BuildError::at(
                    stages[i].line,
                    format!(
                        "circular dependency detected on stage: {}",
                        stages[i].label()
                    ),
                ))
            }
            Mark::New => {}
        }
        marks[i] = Mark::Active;
        for &d in &deps[i] {
            visit(d, stages, deps, marks, order)?;
        }
        marks[i] = Mark::Done;
        order.push(i);
        Ok(())
    }
    let mut marks = vec![Mark::New; stages.len()];
    let mut order = Vec::new();
    visit(target, stages, deps, &mut marks, &mut order)?;
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    fn setup(text: &str) -> (Vec<Instruction>, Vec<Stage>, Vec<Vec<usize>>) {
        let df = parse(text).unwrap();
        let (g, s) = split(&df).unwrap();
        let expand = |w: &str, _| Ok(w.replace("$B", "b"));
        let d = s.iter().map(|st| deps(st, &s, &expand).unwrap()).collect();
        (g, s, d)
    }

    const MULTI: &str = "ARG X=1\nFROM alpine AS a\nRUN a\nFROM a AS b\nFROM busybox AS c\nCOPY --from=0 /x /x\nRUN --mount=type=bind,from=$B,target=/m true\nFROM scratch AS unused\nFROM c\nCOPY --from=c /y /y\n";

    #[test]
    fn split_and_names() {
        let (g, s, _) = setup(MULTI);
        assert_eq!(g.len(), 1);
        assert_eq!(s.len(), 5);
        assert_eq!(s[1].base, "a");
        assert_eq!(s[4].name, None);
        assert_eq!(s[4].label(), "4");
        assert_eq!(find(&s, "C"), Some(2));
        assert_eq!(find(&s, "3"), Some(3));
        assert_eq!(find(&s, "alpine"), None);
    }

    #[test]
    fn deps_and_order() {
        let (_, s, d) = setup(MULTI);
        assert_eq!(d[1], vec![0]);
        assert_eq!(d[2], vec![0, 1]);
        assert_eq!(d[4], vec![2]);
        assert_eq!(build_order(&s, &d, 4).unwrap(), vec![0, 1, 2, 4]);
        let t = target(&s, Some("b")).unwrap();
        assert_eq!(build_order(&s, &d, t).unwrap(), vec![0, 1]);
        assert_eq!(target(&s, None).unwrap(), 4);
        assert_eq!(
            target(&s, Some("nope")).unwrap_err().to_string(),
            "target stage \"nope\" could not be found"
        );
    }

    #[test]
    fn cycles_and_bad_refs() {
        let (_, s, d) = setup("FROM b AS a\nFROM a AS b\n");
        let e = build_order(&s, &d, 1).unwrap_err();
        assert!(
            e.message.contains("circular dependency detected on stage"),
            "{e}"
        );
        let (_, s, d) = setup("FROM alpine AS a\nCOPY --from=a /x /y\n");
        assert!(build_order(&s, &d, 0).is_err());
        let df = parse("FROM a\nCOPY --from=7 /x /y\n").unwrap();
        let (_, s) = split(&df).unwrap();
        let e = deps(&s[0], &s, &|w, _| Ok(w.to_string())).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(resolve_from(&s, "Builder", 3).is_err());
        assert_eq!(resolve_from(&s, "nginx:1.25", 3).unwrap(), None);
    }

    #[test]
    fn structure_errors() {
        let df = parse("ENV A=1\nFROM a\n").unwrap();
        assert_eq!(split(&df).unwrap_err().line, 1);
        let df = parse("ARG A\n").unwrap();
        assert!(split(&df).is_err());
        let df = parse("FROM a AS x\nFROM b AS X\n").unwrap();
        assert_eq!(
            split(&df).unwrap_err().to_string(),
            "Dockerfile:2: duplicate stage name \"x\""
        );
    }
}
