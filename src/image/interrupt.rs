//! Ctrl-C or SIGTERM in the middle of a pull, import or load: the temp
//! files and dirs it was writing (possibly gigabytes) are removed at once
//! rather than left for the next operation's sweep of dead processes, and
//! what the operation already added to the store is taken back out, as
//! its `Txn` would on an error.
//!
//! The library only records what to clean; whether a signal runs it is the
//! caller's choice: a CLI calls [`handle_signals`] before a command that
//! writes to the store. That blocks the signals in the calling thread (and
//! so in the worker threads it starts later) and takes them in one waiter
//! thread with sigwait, which runs the cleanup and then ends the process
//! with the same signal, so the exit status is what the shell expects.
//! Without it, leftovers are swept by the next operation (dead owners).

use anyhow::{Context, Result};
use nix::sys::signal::{self, SigHandler, SigSet, Signal};
use std::path::PathBuf;
use std::sync::Mutex;

type Cleanup = Box<dyn Fn() + Send>;

static CLEANUPS: Mutex<Vec<Cleanup>> = Mutex::new(Vec::new());
/// What unfinished operations have added to the store so far.
static ADDED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Marks a blob file or snapshot dir as added by an unfinished operation:
/// a signal removes it, so an interrupted pull leaves the store as it was.
pub fn track(p: PathBuf) {
    if let Ok(mut v) = ADDED.lock() {
        v.push(p);
    }
}

/// The operation finished (or cleaned up itself): forget its paths.
pub fn untrack(ps: &[PathBuf]) {
    if let Ok(mut v) = ADDED.lock() {
        v.retain(|p| !ps.contains(p));
    }
}

fn signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    set
}

fn waiter() {
    let set = signals();
    let Ok(sig) = set.wait() else { return };
    if let Ok(cleanups) = CLEANUPS.lock() {
        for c in cleanups.iter() {
            c();
        }
    }
    if let Ok(added) = ADDED.lock() {
        for p in added.iter() {
            let _ = if p.is_dir() {
                std::fs::remove_dir_all(p)
            } else {
                std::fs::remove_file(p)
            };
        }
    }
    // SAFETY: restoring the default action installs no handler code.
    let _ = unsafe { signal::signal(sig, SigHandler::SigDfl) };
    let mut one = SigSet::empty();
    one.add(sig);
    let _ = one.thread_unblock();
    let _ = signal::raise(sig);
    std::process::exit(128 + sig as i32);
}

/// Registers `cleanup` to run if a signal handled by [`handle_signals`] arrives.
pub fn register(cleanup: Cleanup) {
    if let Ok(mut v) = CLEANUPS.lock() {
        v.push(cleanup);
    }
}

/// From now on SIGINT, SIGTERM and SIGHUP run the registered cleanups and the
/// removal of tracked paths, then end the process as the signal would have.
/// Call it before starting any thread; calling it again does nothing.
pub fn handle_signals() -> Result<()> {
    static STARTED: std::sync::Once = std::sync::Once::new();
    let mut res = Ok(());
    STARTED.call_once(|| {
        res = signals()
            .thread_block()
            .context("blocking SIGINT/SIGTERM/SIGHUP")
            .and_then(|_| {
                std::thread::Builder::new()
                    .name("berth-signals".into())
                    .spawn(waiter)
                    .map(drop)
                    .context("starting the signal thread")
            });
    });
    res
}
