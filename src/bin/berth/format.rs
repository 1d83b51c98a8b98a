//! Output helpers: tables, docker's human sizes and durations, and the Go
//! template subset `--format` accepts.

use std::io::Write;

/// `-q`, `--filter` and `--format` of `network ls` and `volume ls`.
#[derive(clap::Args)]
pub struct ListArgs {
    /// Only names (volumes) or IDs (networks)
    #[arg(short, long)]
    pub quiet: bool,
    /// KEY=VALUE: name, label (KEY or KEY=VALUE), driver; networks: id, type; volumes: dangling
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Go template (`table ...`, `json`) per row: .Name .Driver .Scope .Labels .CreatedAt,
    /// networks' .ID .Internal, volumes' .Mountpoint
    #[arg(long)]
    pub format: Option<String>,
}

/// `n` in the largest of `units` (each `base` times the last) that keeps it >= 1.
pub fn scale(n: u64, base: f64, units: &[&str]) -> (f64, usize) {
    let mut v = n as f64;
    let mut i = 0;
    while v >= base && i < units.len() - 1 {
        v /= base;
        i += 1;
    }
    (v, i)
}

/// docker's units.HumanSize: decimal units, 4 significant digits.
pub fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let (v, i) = scale(n, 1000.0, &units);
    let digits = if v >= 1000.0 {
        0
    } else if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", units[i])
}

/// `stats`' byte counts: plain bytes, else 3 decimals of kB/MB/...
pub fn stats_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let (v, i) = scale(n, 1000.0, &units);
    if i == 0 {
        format!("{n}B")
    } else {
        format!("{v:.3}{}", units[i])
    }
}

/// "3 hours ago" for image timestamps ("N/A" when unknown).
pub fn human_ago(created: Option<&str>) -> String {
    let Some(t) = created.and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok()) else {
        return "N/A".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    format!("{} ago", ago_words(secs))
}

fn ago_words(secs: i64) -> String {
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 1 {
        "Less than a second".to_string()
    } else if secs == 1 {
        "1 second".to_string()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if m == 1 {
        "About a minute".into()
    } else if m < 60 {
        format!("{m} minutes")
    } else if h == 1 {
        "About an hour".into()
    } else if h < 48 {
        format!("{h} hours")
    } else if d < 14 {
        format!("{d} days")
    } else if d < 60 {
        format!("{} weeks", d / 7)
    } else if d < 730 {
        format!("{} months", d / 30)
    } else {
        format!("{} years", d / 365)
    }
}

/// Cuts to `n` characters with an ellipsis.
pub fn trunc(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Renders one value through a Go template (`inspect -f`, `info -f`, ...).
/// A bad template is one error line and nothing printed.
pub fn template(v: &serde_json::Value, f: &str) -> anyhow::Result<String> {
    let t = crate::template::parse(f)
        .map_err(|e| anyhow::anyhow!("template parsing error: template: {e}"))?;
    t.execute(v)
        .map_err(|e| anyhow::anyhow!("template: executing: {e}"))
}

/// A list command's `--format`: `json` (one JSON object a line), `table
/// TEMPLATE` (docker's header from `headers`, then tab-aligned columns) or a
/// template per item. `\t`/`\n` typed literally become tab/newline, as docker's.
/// Everything is rendered before anything is printed.
pub fn print_list(
    fmt: &str,
    items: &[serde_json::Value],
    headers: &[(&str, &str)],
) -> anyhow::Result<()> {
    let (table, body) = match fmt.strip_prefix("table") {
        Some(rest) => (true, rest),
        None => (false, fmt),
    };
    let body = body
        .trim_matches(' ')
        .replace("\\t", "\t")
        .replace("\\n", "\n");
    let body = if body == "json" {
        "{{json .}}".to_string()
    } else {
        body
    };
    let t = crate::template::parse(&body)
        .map_err(|e| anyhow::anyhow!("template parsing error: template: {e}"))?;
    let mut lines = Vec::new();
    if table {
        let mut h = serde_json::Map::new();
        for k in field_names(&body) {
            h.insert(k.clone(), header_of(&k).into());
        }
        for (k, v) in headers {
            h.insert(k.to_string(), v.to_string().into());
        }
        lines.push(exec(&t, &serde_json::Value::Object(h))?);
    }
    for it in items {
        lines.push(exec(&t, it)?);
    }
    let text = if table {
        tab_align(&lines, 10)
    } else {
        lines.iter().map(|l| format!("{l}\n")).collect()
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// docker's prune prompt on stdout; the answer is read from stdin (y/yes).
pub fn confirm(warning: &str) -> anyhow::Result<bool> {
    let mut out = std::io::stdout().lock();
    write!(
        out,
        "WARNING! {warning}\nAre you sure you want to continue? [y/N] "
    )?;
    out.flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}

fn exec(t: &crate::template::Template, v: &serde_json::Value) -> anyhow::Result<String> {
    t.execute(v)
        .map_err(|e| anyhow::anyhow!("template: executing: {e}"))
}

/// The `.Name`s a template mentions (for its header row, even with no rows).
fn field_names(t: &str) -> Vec<String> {
    let c: Vec<char> = t.chars().collect();
    let mut out = vec![];
    for i in 0..c.len() {
        if c[i] == '.' && c.get(i + 1).is_some_and(|x| x.is_ascii_uppercase()) {
            let name: String = c[i + 1..]
                .iter()
                .take_while(|x| x.is_alphanumeric() || **x == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

/// `CreatedAt` -> `CREATED AT`, for fields a command names no header for.
fn header_of(k: &str) -> String {
    let mut s = String::new();
    let mut prev_lower = false;
    for c in k.chars() {
        if c.is_uppercase() && prev_lower {
            s.push(' ');
        }
        prev_lower = c.is_lowercase();
        s.extend(c.to_uppercase());
    }
    s
}

/// Left-aligned columns three spaces apart; the last column unpadded.
pub fn print_table(rows: &[Vec<String>]) {
    let lines: Vec<String> = rows.iter().map(|r| r.join("\t")).collect();
    print!("{}", tab_align(&lines, 0));
}

/// Go's tabwriter as docker sets it up (padding 3, `minwidth` 10 for lists,
/// 20 for top): cells end at tabs; a line's last cell is not padded.
pub fn tab_align(lines: &[String], minwidth: usize) -> String {
    let rows: Vec<Vec<&str>> = lines
        .iter()
        .flat_map(|l| l.split('\n'))
        .map(|l| l.split('\t').collect())
        .collect();
    let mut widths: Vec<usize> = vec![];
    for r in &rows {
        for (i, c) in r.iter().enumerate().take(r.len().saturating_sub(1)) {
            let w = (c.chars().count() + 3).max(minwidth);
            if widths.len() <= i {
                widths.push(w);
            } else {
                widths[i] = widths[i].max(w);
            }
        }
    }
    let mut out = String::new();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                out.push_str(&format!("{c:<w$}", w = widths[i]));
            } else {
                out.push_str(c);
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_templates() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1_234_567), "1.235MB");
        assert_eq!(stats_size(12), "12B");
        assert_eq!(stats_size(1500), "1.500kB");
        assert_eq!(ago_words(90), "About a minute");
        assert_eq!(ago_words(3 * 86400), "3 days");
        let v = serde_json::json!({"A": {"B": "x"}, "N": 3});
        assert_eq!(template(&v, "{{.A.B}}-{{.N}}").unwrap(), "x-3");
        assert!(template(&v, "{{.A").is_err());
        assert_eq!(header_of("CreatedAt"), "CREATED AT");
        assert_eq!(field_names("{{.ID}}\t{{.Label \"x\"}}"), ["ID", "Label"]);
        let t = tab_align(&["ID\tNAME".into(), "abcdefghijkl\tx".into()], 10);
        assert_eq!(t, "ID             NAME\nabcdefghijkl   x\n");
        assert_eq!(trunc("abcdef", 4), "abc…");
    }
}
