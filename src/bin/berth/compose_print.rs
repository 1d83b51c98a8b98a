//! What `berth compose` prints: progress events (stderr), log lines with docker compose's
//! `service-1  | ` prefix (coloured on a terminal), and the ps/ls/top/images tables.

use anyhow::{bail, Result};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use hull::compose::ops::control::{LsRow, PsRow};
use hull::compose::ops::logs::LogLine;
use hull::compose::ops::Event;
use hull::compose::Project;
use hull::engine::query::Process;

use crate::format::print_table;

/// Progress on stderr, as docker compose's plain progress: ` Container app-web-1  Started`.
pub fn event(e: Event) {
    match e {
        Event::Progress { kind, name, action } => {
            eprintln!(" {} {name}  {action}", kind.as_str())
        }
        Event::Warning(w) => eprintln!("WARN: {w}"),
    }
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Ctrl-C (and SIGTERM) set a flag instead of killing berth, so `up` can stop the project.
pub fn install_interrupt() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let act = SigAction::new(
        SigHandler::Handler(on_interrupt),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for s in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        let _ = unsafe { sigaction(s, &act) };
    }
}

pub fn interrupted() -> &'static AtomicBool {
    &INTERRUPTED
}

const COLOURS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

/// How log lines are printed: prefix width, colours per service.
pub struct LogStyle {
    width: usize,
    services: Vec<String>,
    colour: bool,
    timestamps: bool,
    prefix: bool,
}

impl LogStyle {
    pub fn new(p: &Project, timestamps: bool, no_prefix: bool, no_colour: bool) -> LogStyle {
        let width = p
            .services
            .values()
            .map(|s| s.name.len() + 2 + s.replicas.max(1).to_string().len())
            .max()
            .unwrap_or(0);
        LogStyle {
            width,
            services: p.services.keys().cloned().collect(),
            colour: !no_colour && std::io::stdout().is_terminal(),
            timestamps,
            prefix: !no_prefix,
        }
    }

    pub fn print(&self, l: &LogLine) {
        let mut line = String::new();
        if self.prefix {
            let pre = format!("{:<w$} | ", l.source, w = self.width);
            if self.colour {
                let i = self
                    .services
                    .iter()
                    .position(|s| *s == l.service)
                    .unwrap_or(0);
                line.push_str(&format!("\x1b[{}m{pre}\x1b[0m", COLOURS[i % COLOURS.len()]));
            } else {
                line.push_str(&pre);
            }
        }
        if self.timestamps {
            line.push_str(&l.time);
            line.push(' ');
        }
        line.push_str(l.text.trim_end_matches('\n'));
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

pub fn ps(rows: &[PsRow], quiet: bool, format: &str) -> Result<()> {
    if quiet {
        rows.iter().for_each(|r| println!("{}", r.id));
        return Ok(());
    }
    match format {
        "table" => {
            let mut t = vec![[
                "NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS",
            ]
            .map(String::from)
            .to_vec()];
            for r in rows {
                t.push(vec![
                    r.name.clone(),
                    r.image.clone(),
                    crate::format::trunc(&r.command, 22),
                    r.service.clone(),
                    crate::format::human_ago(Some(&r.created)),
                    r.status.clone(),
                    r.ports.clone(),
                ]);
            }
            print_table(&t);
        }
        "json" => {
            for r in rows {
                let v = serde_json::json!({
                    "ID": r.id, "Name": r.name, "Image": r.image, "Command": r.command,
                    "Service": r.service, "CreatedAt": r.created, "State": r.state,
                    "Status": r.status, "Health": r.health, "ExitCode": r.exit_code,
                    "Publishers": r.ports,
                });
                println!("{v}");
            }
        }
        f => bail!("invalid --format {f:?}: want table or json"),
    }
    Ok(())
}

pub fn ls(rows: &[LsRow], quiet: bool) {
    if quiet {
        rows.iter().for_each(|r| println!("{}", r.name));
        return;
    }
    let mut t = vec![["NAME", "STATUS", "CONFIG FILES"]
        .map(String::from)
        .to_vec()];
    for r in rows {
        t.push(vec![
            r.name.clone(),
            r.status.clone(),
            r.config_files.clone(),
        ]);
    }
    print_table(&t);
}

pub fn top(list: &[(String, Vec<Process>)]) {
    for (name, procs) in list {
        println!("{name}");
        let mut t = vec![["UID", "PID", "PPID", "CMD"].map(String::from).to_vec()];
        for p in procs {
            t.push(vec![
                p.uid.clone(),
                p.pid.to_string(),
                p.ppid.clone(),
                p.cmd.clone(),
            ]);
        }
        print_table(&t);
        println!();
    }
}

pub fn images(rows: &[(String, String, String)]) {
    let mut t = vec![["CONTAINER", "REPOSITORY", "IMAGE ID"]
        .map(String::from)
        .to_vec()];
    for (c, image, id) in rows {
        let short = id.trim_start_matches("sha256:").chars().take(12).collect();
        t.push(vec![c.clone(), image.clone(), short]);
    }
    print_table(&t);
}
