//! Output helpers: tables, docker's human sizes and durations, and the Go
//! template subset `--format` accepts.

use std::io::Write;

/// Left-aligned columns three spaces apart; the last column unpadded.
pub fn print_table(rows: &[Vec<String>]) {
    let cols = rows.first().map(|r| r.len()).unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = std::io::stdout().lock();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == cols {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[c]));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// docker's units.HumanSize: decimal units, 4 significant digits.
pub fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
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
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
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

/// A small subset of Go templates: `{{.A.B}}` and `{{json .A}}`.
pub fn template(v: &serde_json::Value, f: &str) -> String {
    let mut out = String::new();
    let mut rest = f;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find("}}") else { break };
        let expr = rest[i + 2..i + j].trim();
        let (json_mode, path) = match expr.strip_prefix("json ") {
            Some(p) => (true, p.trim()),
            None => (false, expr),
        };
        let mut cur = v;
        for part in path
            .trim_start_matches('.')
            .split('.')
            .filter(|s| !s.is_empty())
        {
            cur = cur.get(part).unwrap_or(&serde_json::Value::Null);
        }
        match cur {
            serde_json::Value::String(s) if !json_mode => out.push_str(s),
            serde_json::Value::Null if !json_mode => out.push_str("<no value>"),
            other => out.push_str(&other.to_string()),
        }
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
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
        assert_eq!(template(&v, "{{.A.B}}-{{.N}}-{{.Z}}"), "x-3-<no value>");
        assert_eq!(template(&v, "{{json .A}}"), "{\"B\":\"x\"}");
        assert_eq!(trunc("abcdef", 4), "abc…");
    }
}
