//! Wildcard matching: Go's `filepath.Match` (COPY sources, `.dockerignore`) and the shell-pattern
//! variant used by `${VAR#pattern}` (where `*` also matches `/`).

/// A malformed pattern (unterminated `[`, trailing `\`), as Go's `ErrBadPattern`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPattern(pub String);

impl std::fmt::Display for BadPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "syntax error in pattern {:?}", self.0)
    }
}

/// Go `filepath.Match`: `*` and `?` never match `/`.
pub fn path_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    matches(pattern, name, Some('/'))
}

/// Shell pattern matching for parameter expansion: `*` and `?` match any character.
pub fn shell_match(pattern: &str, text: &str) -> Result<bool, BadPattern> {
    matches(pattern, text, None)
}

/// True when the pattern has wildcard syntax (so COPY treats it as a pattern, not a path).
pub fn has_wildcards(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

fn matches(pattern: &str, text: &str, sep: Option<char>) -> Result<bool, BadPattern> {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    validate(&p).map_err(|()| BadPattern(pattern.to_string()))?;
    Ok(match_from(&p, &t, sep))
}

/// Go reports a bad pattern even when the text fails to match earlier, so check up front.
fn validate(p: &[char]) -> Result<(), ()> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err(());
                }
                i += 2;
            }
            '[' => i = parse_class(p, i + 1)?.2,
            _ => i += 1,
        }
    }
    Ok(())
}

/// A parsed `[...]` class: (negated, ranges, index after `]`). Mirrors Go's matchChunk/getEsc.
type Class = (bool, Vec<(char, char)>, usize);

fn parse_class(p: &[char], mut i: usize) -> Result<Class, ()> {
    let negated = p.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if p.get(i) == Some(&']') && !ranges.is_empty() {
            return Ok((negated, ranges, i + 1));
        }
        let (lo, next) = class_char(p, i)?;
        i = next;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            let (h, next) = class_char(p, i + 1)?;
            hi = h;
            i = next;
        }
        ranges.push((lo, hi));
    }
}

fn class_char(p: &[char], i: usize) -> Result<(char, usize), ()> {
    match p.get(i) {
        None | Some('-') | Some(']') => Err(()),
        Some('\\') => p.get(i + 1).map(|c| (*c, i + 2)).ok_or(()),
        Some(c) => Ok((*c, i + 1)),
    }
}

fn match_from(p: &[char], t: &[char], sep: Option<char>) -> bool {
    let (mut pi, mut ti) = (0, 0);
    // Backtracking point for the last `*`: (pattern index after it, text index it resumes at).
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi + 1, ti));
                    pi += 1;
                    continue;
                }
                '?' if ti < t.len() && Some(t[ti]) != sep => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' if ti < t.len() && Some(t[ti]) != sep => {
                    // Validated already, so the class is well formed.
                    if let Ok((negated, ranges, end)) = parse_class(p, pi + 1) {
                        let c = t[ti];
                        if ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != negated {
                            pi = end;
                            ti += 1;
                            continue;
                        }
                    }
                }
                '\\' if ti < t.len() && p.get(pi + 1) == Some(&t[ti]) => {
                    pi += 2;
                    ti += 1;
                    continue;
                }
                c if !matches!(c, '*' | '?' | '[' | '\\') && t.get(ti) == Some(&c) => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
        } else if ti == t.len() {
            return true;
        }
        // Mismatch: let the last `*` swallow one more character (never a separator).
        match star {
            Some((sp, st)) if st < t.len() && Some(t[st]) != sep => {
                star = Some((sp, st + 1));
                pi = sp;
                ti = st + 1;
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_filepath_match_table() {
        // Cases from Go's path/filepath match_test.go.
        let cases: &[(&str, &str, bool)] = &[
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*", "abc", true),
            ("a*", "ab/c", false),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
            ("a*b?c*x", "abxbbxdbxebxczzx", true),
            ("a*b?c*x", "abxbbxdbxebxczzy", false),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^b-d]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("[a-ζ]*", "α", true),
            ("*[a-ζ]", "A", false),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("[\\]a]", "]", true),
            ("[\\-]", "-", true),
            ("[x\\-]", "x", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            ("[\\-x]", "-", true),
            ("*x", "xxx", true),
        ];
        for (p, s, want) in cases {
            assert_eq!(path_match(p, s), Ok(*want), "pattern {p:?} on {s:?}");
        }
    }

    #[test]
    fn bad_patterns() {
        for p in ["[", "[^", "[^bc", "a[", "[]a]", "[-]", "[x-]", "\\", "a\\"] {
            assert!(path_match(p, "a").is_err(), "{p:?} should be bad");
        }
    }

    #[test]
    fn shell_star_crosses_slash() {
        assert_eq!(shell_match("*/", "a/b/"), Ok(true));
        assert_eq!(path_match("*/", "a/b/"), Ok(false));
        assert!(has_wildcards("a*.txt") && !has_wildcards("a.txt"));
    }
}
