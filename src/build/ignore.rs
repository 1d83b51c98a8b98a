//! `.dockerignore`, with docker's rules (moby/patternmatcher and its `ignorefile` reader): one
//! pattern a line, `#` comments, blanks trimmed, paths cleaned and a leading `/` dropped; Go
//! `filepath.Match` syntax plus `**` for any number of directories; `!` re-includes; the last
//! matching pattern wins; a pattern that matches a directory excludes everything under it.
//!
//! The Dockerfile and `.dockerignore` are read by the builder whatever the patterns say (docker
//! "still sends" them); patterns only decide what COPY/ADD can see.

use super::config::clean_path;
use super::glob::BadPattern;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    /// `*`: any run of non-`/` characters.
    Star,
    /// `**` followed by more pattern: `(.*/)?`.
    AnyDirs,
    /// A trailing `**`: anything.
    AnyAll,
    Question,
    /// `[...]`: negated, ranges.
    Class(bool, Vec<(char, char)>),
}

#[derive(Debug, Clone, PartialEq)]
struct Pattern {
    exclusion: bool,
    toks: Vec<Tok>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
}

impl Ignore {
    /// Parses `.dockerignore` text.
    pub fn parse(text: &str) -> Result<Ignore, BadPattern> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let mut p = line.trim();
            if p.is_empty() {
                continue;
            }
            let exclusion = p.starts_with('!');
            if exclusion {
                p = p[1..].trim();
            }
            if p.is_empty() {
                continue;
            }
            let cleaned = clean_rel(p);
            patterns.push(Pattern {
                exclusion,
                toks: compile(&cleaned).map_err(|()| BadPattern(p.to_string()))?,
            });
        }
        Ok(Ignore { patterns })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether some `!` pattern exists (then excluded directories must still be walked).
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exclusion)
    }

    /// Whether `path` (relative, `/`-separated) is excluded: the last pattern matching the path
    /// or one of its parent directories decides.
    pub fn excluded(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        let mut matched = false;
        for p in &self.patterns {
            // Only a pattern that could flip the result needs evaluating.
            if p.exclusion != matched {
                continue;
            }
            let hit = (1..=parts.len()).any(|n| {
                let candidate: Vec<char> = parts[..n].join("/").chars().collect();
                match_toks(&p.toks, &candidate)
            });
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }
}

/// Go's `filepath.Clean` on a relative pattern, leading `/` dropped.
fn clean_rel(p: &str) -> String {
    let absolute = p.starts_with('/');
    // `..` cannot climb above the context: Go keeps a leading `..` in a relative pattern, but
    // such a pattern can never match a context path, so clamping changes nothing that matters.
    let cleaned = if absolute {
        clean_path(p)
    } else {
        clean_path(&format!("/{p}"))
    };
    let out = cleaned.trim_start_matches('/').to_string();
    if out.is_empty() {
        ".".to_string()
    } else {
        out
    }
}

fn compile(p: &str) -> Result<Vec<Tok>, ()> {
    let c: Vec<char> = p.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '*' if c.get(i + 1) == Some(&'*') => {
                i += 2;
                if c.get(i) == Some(&'/') {
                    i += 1;
                }
                toks.push(if i >= c.len() {
                    Tok::AnyAll
                } else {
                    Tok::AnyDirs
                });
                continue;
            }
            '*' => toks.push(Tok::Star),
            '?' => toks.push(Tok::Question),
            '\\' => {
                i += 1;
                toks.push(Tok::Lit(*c.get(i).ok_or(())?));
            }
            '[' => {
                let (neg, ranges, next) = class(&c, i + 1)?;
                toks.push(Tok::Class(neg, ranges));
                i = next;
                continue;
            }
            ch => toks.push(Tok::Lit(ch)),
        }
        i += 1;
    }
    Ok(toks)
}

type ParsedClass = (bool, Vec<(char, char)>, usize);

fn class(c: &[char], mut i: usize) -> Result<ParsedClass, ()> {
    let neg = c.get(i) == Some(&'^');
    if neg {
        i += 1;
    }
    let mut ranges = Vec::new();
    let one = |i: usize| -> Result<(char, usize), ()> {
        match c.get(i) {
            None | Some('-') | Some(']') => Err(()),
            Some('\\') => c.get(i + 1).map(|ch| (*ch, i + 2)).ok_or(()),
            Some(ch) => Ok((*ch, i + 1)),
        }
    };
    loop {
        if c.get(i) == Some(&']') && !ranges.is_empty() {
            return Ok((neg, ranges, i + 1));
        }
        let (lo, next) = one(i)?;
        i = next;
        let mut hi = lo;
        if c.get(i) == Some(&'-') {
            let (h, next) = one(i + 1)?;
            hi = h;
            i = next;
        }
        ranges.push((lo, hi));
    }
}

fn match_toks(toks: &[Tok], s: &[char]) -> bool {
    let Some((first, rest)) = toks.split_first() else {
        return s.is_empty();
    };
    match first {
        Tok::Lit(c) => s.first() == Some(c) && match_toks(rest, &s[1..]),
        Tok::Question => s.first().is_some_and(|c| *c != '/') && match_toks(rest, &s[1..]),
        Tok::Class(neg, ranges) => {
            s.first().is_some_and(|c| {
                *c != '/' && ranges.iter().any(|(lo, hi)| lo <= c && c <= hi) != *neg
            }) && match_toks(rest, &s[1..])
        }
        Tok::Star => {
            let limit = s.iter().position(|c| *c == '/').unwrap_or(s.len());
            (0..=limit).any(|n| match_toks(rest, &s[n..]))
        }
        Tok::AnyAll => true,
        // `(.*/)?`: nothing, or any prefix ending in `/`.
        Tok::AnyDirs => {
            match_toks(rest, s)
                || (0..s.len()).any(|n| s[n] == '/' && match_toks(rest, &s[n + 1..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ig(text: &str) -> Ignore {
        Ignore::parse(text).unwrap()
    }

    #[test]
    fn basics_and_parents() {
        let i = ig("# comment\n  node_modules  \n/build\n*.log\n\n");
        assert!(i.excluded("node_modules"));
        assert!(i.excluded("node_modules/a/b.js"));
        assert!(i.excluded("build/out.o"));
        assert!(i.excluded("x.log"));
        assert!(!i.excluded("sub/x.log"), "* does not cross /");
        assert!(
            !i.excluded("src/node_modules"),
            "patterns are anchored at the root"
        );
        assert!(!i.excluded("main.go"));
    }

    #[test]
    fn double_star() {
        let i = ig("**/*.tmp\ndocs/**\na/**/z\n");
        assert!(i.excluded("x.tmp"));
        assert!(i.excluded("deep/er/x.tmp"));
        assert!(i.excluded("docs/a/b"));
        assert!(
            !i.excluded("docs"),
            "docs/** is docs' contents, not docs itself"
        );
        assert!(i.excluded("a/z") && i.excluded("a/b/c/z"));
        assert!(!i.excluded("a/zz"));
    }

    #[test]
    fn exceptions_last_wins() {
        let i = ig("*.md\n!README.md\nREADME*.md\n");
        assert!(i.excluded("CHANGES.md"));
        assert!(
            i.excluded("README.md"),
            "a later exclusion wins over the exception"
        );
        let i = ig("logs\n!logs/keep.txt\n");
        assert!(i.excluded("logs/other.txt"));
        assert!(!i.excluded("logs/keep.txt"));
        assert!(i.has_exceptions());
        let i = ig("*\n!src\n");
        assert!(!i.excluded("src/main.rs"));
        assert!(i.excluded("Cargo.toml"));
    }

    #[test]
    fn cleaning_and_classes() {
        let i = ig("./a/../b/\n!/b/keep\nfile[0-9].txt\nq?.c\n");
        assert!(i.excluded("b/x"));
        assert!(!i.excluded("b/keep"));
        assert!(i.excluded("file7.txt") && !i.excluded("fileX.txt"));
        assert!(i.excluded("q1.c") && !i.excluded("q/.c"));
        assert!(Ignore::parse("a[\n").is_err());
        assert!(ig("").is_empty());
    }
}
