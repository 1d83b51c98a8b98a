//! Variable expansion with the rules of docker's shell lexer (moby/buildkit `frontend/dockerfile/
//! shell`): `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
//! `${VAR:?msg}`, `${VAR?msg}`, `${VAR#pat}`, `${VAR##pat}`, `${VAR%pat}`, `${VAR%%pat}`; single
//! quotes are literal, double quotes expand, the escape character (`\` or `` ` ``) quotes the next
//! character, and quotes are removed. Unset variables expand to the empty string.
//!
//! Which instructions expand is the caller's business (see `plan`): ADD, COPY, ENV, EXPOSE, FROM,
//! LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR and ARG defaults do; RUN, CMD, ENTRYPOINT, SHELL,
//! HEALTHCHECK and ONBUILD do not (the shell or a later build does).

use super::glob::shell_match;

/// Looks a variable up; `None` means unset (distinct from set-but-empty).
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands one word, removing quotes and escapes.
pub fn process_word(word: &str, vars: Lookup<'_>, escape: char) -> Result<String, String> {
    let mut lx = Lexer {
        chars: word.chars().collect(),
        pos: 0,
        vars,
        escape,
        skip_quotes: false,
    };
    lx.process_until(None)
}

/// Expands an unquoted-delimiter heredoc for COPY/ADD: quotes are ordinary characters there
/// (buildkit's `SkipProcessQuotes`), `$` and the escape character still work.
pub fn process_heredoc(text: &str, vars: Lookup<'_>, escape: char) -> Result<String, String> {
    let mut lx = Lexer {
        chars: text.chars().collect(),
        pos: 0,
        vars,
        escape,
        skip_quotes: true,
    };
    lx.process_until(None)
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    vars: Lookup<'a>,
    escape: char,
    skip_quotes: bool,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Processes up to `stop` (consumed) or the end. A missing `stop` is reported by the caller.
    fn process_until(&mut self, stop: Option<char>) -> Result<String, String> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok(out);
            }
            match c {
                '\'' if !self.skip_quotes => out.push_str(&self.single_quote()?),
                '"' if !self.skip_quotes => out.push_str(&self.double_quote()?),
                '$' => out.push_str(&self.dollar()?),
                _ => {
                    self.pos += 1;
                    if c == self.escape {
                        match self.next() {
                            Some(n) => out.push(n),
                            // A trailing escape stays (docker keeps it literally).
                            None => out.push(c),
                        }
                    } else {
                        out.push(c);
                    }
                }
            }
        }
        match stop {
            Some(_) => Err("missing '}'".to_string()),
            None => Ok(out),
        }
    }

    fn single_quote(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err("unexpected end of statement while looking for matching \
                                single-quote"
                        .to_string())
                }
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err("unexpected end of statement while looking for matching \
                                double-quote"
                        .to_string())
                }
                Some('"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) => {
                    self.pos += 1;
                    if c == self.escape {
                        match self.peek() {
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.pos += 1;
                                out.push(n);
                            }
                            _ => out.push(c),
                        }
                    } else {
                        out.push(c);
                    }
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        if let Some(c) = self.peek() {
            // Special parameters are one character and are never set in a build.
            if "@*#?-$!0123456789".contains(c) {
                self.pos += 1;
                return c.to_string();
            }
        }
        while let Some(c) = self.peek() {
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            name.push(c);
            self.pos += 1;
        }
        name
    }

    fn dollar(&mut self) -> Result<String, String> {
        self.pos += 1;
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok((self.vars)(&name).unwrap_or_default());
        }
        self.pos += 1;
        let name = self.name();
        if name.is_empty() {
            return Err("bad substitution: missing name".to_string());
        }
        let value = (self.vars)(&name);
        let Some(op) = self.next() else {
            return Err("missing '}'".to_string());
        };
        match op {
            '}' => Ok(value.unwrap_or_default()),
            ':' => {
                let kind = self.next();
                let word = self.process_until(Some('}'))?;
                let set = value.as_deref().is_some_and(|v| !v.is_empty());
                modifier(&name, kind, value, set, word)
            }
            '-' | '+' | '?' => {
                let word = self.process_until(Some('}'))?;
                let set = value.is_some();
                modifier(&name, Some(op), value, set, word)
            }
            '#' | '%' => {
                let longest = self.peek() == Some(op);
                if longest {
                    self.pos += 1;
                }
                let pattern = self.process_until(Some('}'))?;
                trim(&value.unwrap_or_default(), &pattern, op == '#', longest)
            }
            other => Err(format!("unsupported modifier ({other}) in substitution")),
        }
    }
}

fn modifier(
    name: &str,
    kind: Option<char>,
    value: Option<String>,
    set: bool,
    word: String,
) -> Result<String, String> {
    match kind {
        Some('-') => Ok(if set { value.unwrap_or_default() } else { word }),
        Some('+') => Ok(if set { word } else { String::new() }),
        Some('?') if set => Ok(value.unwrap_or_default()),
        Some('?') if word.is_empty() => Err(format!("{name}: is not allowed to be unset")),
        Some('?') => Err(format!("{name}: {word}")),
        Some(c) => Err(format!("unsupported modifier (:{c}) in substitution")),
        None => Err("missing '}'".to_string()),
    }
}

/// `${v#p}` / `${v##p}` remove a matching prefix, `${v%p}` / `${v%%p}` a matching suffix.
fn trim(value: &str, pattern: &str, prefix: bool, longest: bool) -> Result<String, String> {
    let mut cuts: Vec<usize> = value.char_indices().map(|(i, _)| i).collect();
    cuts.push(value.len());
    // Order the candidate cut points so the first match is the wanted one.
    let shortest_first = if prefix { !longest } else { longest };
    if !shortest_first {
        cuts.reverse();
    }
    for cut in cuts {
        let (part, rest) = if prefix {
            (&value[..cut], &value[cut..])
        } else {
            (&value[cut..], &value[..cut])
        };
        if shell_match(pattern, part).map_err(|e| e.to_string())? {
            return Ok(rest.to_string());
        }
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("a".into()),
            "EMPTY" => Some(String::new()),
            "PATH" => Some("/usr/local/bin:/usr/bin".into()),
            "FILE" => Some("dir/sub/name.tar.gz".into()),
            _ => None,
        }
    }

    fn x(word: &str) -> String {
        process_word(word, &env, '\\').unwrap()
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(x("$A"), "a");
        assert_eq!(x("${A}b"), "ab");
        assert_eq!(x("$Ab"), "");
        assert_eq!(x("x$UNSET.y"), "x.y");
        assert_eq!(x("${PATH}:/opt"), "/usr/local/bin:/usr/bin:/opt");
        assert_eq!(x("cost $"), "cost $");
        assert_eq!(x("$1"), "");
    }

    #[test]
    fn modifiers() {
        assert_eq!(x("${UNSET:-d}"), "d");
        assert_eq!(x("${EMPTY:-d}"), "d");
        assert_eq!(x("${EMPTY-d}"), "");
        assert_eq!(x("${UNSET-d}"), "d");
        assert_eq!(x("${A:-d}"), "a");
        assert_eq!(x("${A:+set}"), "set");
        assert_eq!(x("${EMPTY:+set}"), "");
        assert_eq!(x("${EMPTY+set}"), "set");
        assert_eq!(x("${UNSET:+set}"), "");
        assert_eq!(x("${UNSET:-$A-x}"), "a-x");
        assert_eq!(x("${UNSET:-\"q w\"}"), "q w");
        assert_eq!(x("${A:?must}"), "a");
        assert_eq!(
            process_word("${UNSET:?must be set}", &env, '\\'),
            Err("UNSET: must be set".to_string())
        );
        assert!(process_word("${EMPTY?x}", &env, '\\').is_ok());
    }

    #[test]
    fn pattern_trims() {
        assert_eq!(x("${FILE#*/}"), "sub/name.tar.gz");
        assert_eq!(x("${FILE##*/}"), "name.tar.gz");
        assert_eq!(x("${FILE%.*}"), "dir/sub/name.tar");
        assert_eq!(x("${FILE%%.*}"), "dir/sub/name");
        assert_eq!(x("${FILE#nomatch}"), "dir/sub/name.tar.gz");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(x("'$A'"), "$A");
        assert_eq!(x("\"$A b\""), "a b");
        assert_eq!(x("\\$A"), "$A");
        assert_eq!(x("\"\\$A\""), "$A");
        assert_eq!(x("\"a\\nb\""), "a\\nb");
        assert_eq!(x("a\\ b"), "a b");
        assert_eq!(x("\"say \\\"hi\\\"\""), "say \"hi\"");
        // Backtick escape (Windows-style `# escape=`): backslash is then literal.
        assert_eq!(process_word("C:\\dir`$A", &env, '`').unwrap(), "C:\\dir$A");
    }

    #[test]
    fn heredoc_keeps_quotes() {
        let out = process_heredoc("say \"$A\" '${UNSET:-d}' \\$A\n", &env, '\\').unwrap();
        assert_eq!(out, "say \"a\" 'd' $A\n");
    }

    #[test]
    fn errors() {
        assert!(process_word("${A", &env, '\\').is_err());
        assert!(process_word("'open", &env, '\\').is_err());
        assert!(process_word("\"open", &env, '\\').is_err());
        assert!(process_word("${}", &env, '\\').is_err());
        assert_eq!(
            process_word("${A/x/y}", &env, '\\'),
            Err("unsupported modifier (/) in substitution".to_string())
        );
    }
}
