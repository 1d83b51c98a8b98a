//! The event log: docker's events as JSON lines in `<root>/events.log`, appended under a flock,
//! rotated to `events.log.1` past a size bound. Writers are every berth process and the
//! monitors (there is no daemon to hold them), so writing must never fail an operation: every
//! error is swallowed. `read`/`follow` serve `berth events`.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::container::Container;

/// Rotation bound of the live file; one rotated file is kept, so at most twice this is stored.
pub const MAX_LOG_BYTES: u64 = 4 << 20;
/// An event line longer than this is not read back (nothing berth writes comes near it).
const MAX_LINE: usize = 64 << 10;

/// docker's event message (`docker events --format '{{json .}}'`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// Legacy fields docker still sends for container and image events.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub from: String,
    #[serde(rename = "Type")]
    pub typ: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes")]
    pub attributes: BTreeMap<String, String>,
}

pub fn log_path(root: &Path) -> PathBuf {
    root.join("events.log")
}

fn rotated_path(root: &Path) -> PathBuf {
    root.join("events.log.1")
}

fn lock_path(root: &Path) -> PathBuf {
    root.join("events.lock")
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

impl Event {
    pub fn new(typ: &str, action: &str, id: &str, attributes: BTreeMap<String, String>) -> Event {
        let time_nano = now_nanos();
        let legacy = typ == "container" || typ == "image";
        Event {
            status: if legacy { action.into() } else { String::new() },
            id: if legacy { id.into() } else { String::new() },
            from: if typ == "container" {
                attributes.get("image").cloned().unwrap_or_default()
            } else {
                String::new()
            },
            typ: typ.into(),
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes,
            },
            scope: "local".into(),
            time: time_nano.div_euclid(1_000_000_000),
            time_nano,
        }
    }

    /// docker's text line: `2026-12-02T01:02:03.000000000Z container start <id> (image=x, name=y)`.
    pub fn line(&self) -> String {
        let t = chrono::DateTime::from_timestamp_nanos(self.time_nano)
            .format("%Y-%m-%dT%H:%M:%S%.9fZ")
            .to_string();
        let attrs: Vec<String> = self
            .actor
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut s = format!("{t} {} {} {}", self.typ, self.action, self.actor.id);
        if !attrs.is_empty() {
            s.push_str(&format!(" ({})", attrs.join(", ")));
        }
        s
    }
}

/// Appends an event. Never fails: a berth without a writable event log still works.
pub fn emit(root: &Path, ev: &Event) {
    let _ = try_emit(root, ev);
}

fn try_emit(root: &Path, ev: &Event) -> Result<()> {
    let mut line = serde_json::to_vec(ev)?;
    line.push(b'\n');
    let _l = crate::sys::lock(&lock_path(root))?;
    let path = log_path(root);
    if fs::metadata(&path).map(|m| m.len()).unwrap_or(0) + line.len() as u64 > MAX_LOG_BYTES {
        fs::rename(&path, rotated_path(root))?;
    }
    let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
    f.write_all(&line)?;
    Ok(())
}

/// A container event with docker's attributes: image, name, the labels, then `extra`.
pub fn container(root: &Path, c: &Container, action: &str, extra: &[(&str, String)]) {
    let mut a: BTreeMap<String, String> = c.config.labels.clone();
    a.insert("image".into(), c.config.image.clone());
    a.insert("name".into(), c.config.name.clone());
    for (k, v) in extra {
        a.insert((*k).into(), v.clone());
    }
    emit(root, &Event::new("container", action, c.id(), a));
}

/// An image, network or volume event; `attrs` as docker names them (`name`, `container`, ...).
pub fn object(root: &Path, typ: &str, action: &str, id: &str, attrs: &[(&str, &str)]) {
    let a = attrs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    emit(root, &Event::new(typ, action, id, a));
}

/// What `berth events` selects: a time window and docker's filters.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Nanoseconds since the epoch.
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// `key=value`; values of one key are alternatives, different keys must all match.
    pub filters: Vec<(String, String)>,
}

const FILTER_KEYS: &[&str] = &[
    "container",
    "event",
    "image",
    "label",
    "type",
    "network",
    "volume",
    "scope",
];

impl Query {
    pub fn add_filter(&mut self, f: &str) -> crate::engine::error::Result<()> {
        let Some((k, v)) = f.split_once('=') else {
            crate::invalid!("bad format of filter (expected name=value): {f}");
        };
        if !FILTER_KEYS.contains(&k) {
            crate::invalid!("invalid filter '{k}'");
        }
        self.filters.push((k.into(), v.into()));
        Ok(())
    }

    pub fn in_window(&self, e: &Event) -> bool {
        self.since.is_none_or(|s| e.time_nano >= s) && self.until.is_none_or(|u| e.time_nano <= u)
    }

    pub fn matches(&self, e: &Event) -> bool {
        let mut keys: Vec<&str> = self.filters.iter().map(|(k, _)| k.as_str()).collect();
        keys.dedup();
        keys.iter().all(|k| {
            self.filters
                .iter()
                .filter(|(fk, _)| fk == k)
                .any(|(_, v)| filter_matches(e, k, v))
        })
    }
}

fn filter_matches(e: &Event, key: &str, v: &str) -> bool {
    let attr = |n: &str| e.actor.attributes.get(n).map(String::as_str);
    match key {
        // health_status and exec_* carry a detail after a colon; the bare word matches them all.
        "event" => e.action == v || e.action.split(':').next() == Some(v),
        "type" => e.typ == v,
        "scope" => e.scope == v,
        "container" => {
            e.typ == "container"
                && ((!v.is_empty() && e.actor.id.starts_with(v)) || attr("name") == Some(v))
                || attr("container").is_some_and(|c| !v.is_empty() && c.starts_with(v))
        }
        "image" => {
            (e.typ == "container" && attr("image") == Some(v))
                || (e.typ == "image" && (e.actor.id == v || attr("name") == Some(v)))
        }
        "network" | "volume" => {
            e.typ == key && (e.actor.id.starts_with(v) || attr("name") == Some(v))
        }
        "label" => match v.split_once('=') {
            Some((k, val)) => attr(k) == Some(val),
            None => attr(v).is_some(),
        },
        _ => false,
    }
}

/// The stored events that the query selects, oldest first.
pub fn read(root: &Path, q: &Query) -> Vec<Event> {
    let mut out = Vec::new();
    for p in [rotated_path(root), log_path(root)] {
        let Ok(f) = fs::File::open(&p) else { continue };
        for line in std::io::BufReader::new(f)
            .split(b'\n')
            .map_while(|l| l.ok())
        {
            if line.len() > MAX_LINE {
                continue;
            }
            if let Ok(e) = serde_json::from_slice::<Event>(&line) {
                if q.in_window(&e) && q.matches(&e) {
                    out.push(e);
                }
            }
        }
    }
    out
}

/// Calls `each` for every new event the query selects, from now on, until it returns false
/// or the `until` time passes. Polls the file (writers are other processes) and follows a
/// rotation by reading the rest of the rotated file first.
pub fn follow(root: &Path, q: &Query, mut each: impl FnMut(&Event) -> bool) -> Result<()> {
    let path = log_path(root);
    let mut pos = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let mut ino = inode(&path);
    let mut partial = Vec::new();
    loop {
        if q.until.is_some_and(|u| now_nanos() > u) {
            return Ok(());
        }
        let cur = inode(&path);
        if cur != ino {
            // Rotated: the old file is now events.log.1; finish it, then start the new one.
            if ino.is_some() && inode(&rotated_path(root)) == ino {
                read_new(&rotated_path(root), &mut pos, &mut partial)?;
                if !deliver(&mut partial, q, &mut each) {
                    return Ok(());
                }
            }
            partial.clear();
            pos = 0;
            ino = cur;
        }
        read_new(&path, &mut pos, &mut partial)?;
        if !deliver(&mut partial, q, &mut each) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn inode(p: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(p).ok().map(|m| m.ino())
}

/// Appends what was written after `pos` (bounded per call) to `partial`.
fn read_new(p: &Path, pos: &mut u64, partial: &mut Vec<u8>) -> Result<()> {
    let Ok(mut f) = fs::File::open(p) else {
        return Ok(());
    };
    f.seek(SeekFrom::Start(*pos))
        .with_context(|| format!("seeking {}", p.display()))?;
    let n = f
        .take(MAX_LOG_BYTES)
        .read_to_end(partial)
        .with_context(|| format!("reading {}", p.display()))?;
    *pos += n as u64;
    Ok(())
}

/// Hands the complete lines of `partial` to `each`, keeping an unfinished last line.
fn deliver(partial: &mut Vec<u8>, q: &Query, each: &mut impl FnMut(&Event) -> bool) -> bool {
    let Some(end) = partial.iter().rposition(|&b| b == b'\n') else {
        if partial.len() > MAX_LINE {
            partial.clear();
        }
        return true;
    };
    let rest = partial.split_off(end + 1);
    let done = std::mem::replace(partial, rest);
    for line in done.split(|&b| b == b'\n') {
        if let Ok(e) = serde_json::from_slice::<Event>(line) {
            if q.in_window(&e) && q.matches(&e) && !each(&e) {
                return false;
            }
        }
    }
    true
}

/// `--since`/`--until` values: a Unix timestamp (`1700000000[.123]`), an RFC 3339 time or
/// date, or a Go duration counted back from `now` (`10m`). Nanoseconds since the epoch.
pub fn parse_time(s: &str, now: i64) -> crate::engine::error::Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        if let Some(n) = t.timestamp_nanos_opt() {
            return Ok(n);
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        if let Some(n) = d
            .and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_utc().timestamp_nanos_opt())
        {
            return Ok(n);
        }
    }
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    if !secs.is_empty()
        && secs.bytes().all(|b| b.is_ascii_digit())
        && frac.len() <= 9
        && frac.bytes().all(|b| b.is_ascii_digit())
    {
        if let Ok(sec) = secs.parse::<i64>() {
            let nanos: i64 = format!("{frac:0<9}").parse().unwrap_or(0);
            return Ok(sec.saturating_mul(1_000_000_000).saturating_add(nanos));
        }
    }
    if let Some(d) = crate::sys::go_duration(s) {
        return Ok(now.saturating_sub(d.as_nanos().min(i64::MAX as u128) as i64));
    }
    crate::invalid!(
        "invalid time {s:?}: expected a Unix timestamp, an RFC 3339 date or a duration such as 10m"
    )
}
