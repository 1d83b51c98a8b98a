//! Signals while a client is attached: SIGWINCH (the terminal was
//! resized) becomes a message for the relay, and with docker's sig-proxy
//! the usual termination signals go to the container instead of ending
//! the client.

use std::path::Path;
use std::sync::mpsc::{channel, Receiver};

use hull::engine::container::Container;
use hull::engine::lifecycle;
use nix::sys::signal::{SigSet, Signal};

const PROXIED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Window-size changes, one message per SIGWINCH.
pub struct Resizes(pub Receiver<()>);

/// Blocks SIGWINCH (and, with `proxy_to`, the proxied signals) and starts
/// the thread that waits for them. Must run before any other thread
/// exists: threads inherit the mask, and a thread with them unblocked
/// would take (and lose, or die of) them.
pub fn install(proxy_to: Option<(&Path, &Container)>) -> Resizes {
    let mut set = SigSet::empty();
    set.add(Signal::SIGWINCH);
    if proxy_to.is_some() {
        for s in PROXIED {
            set.add(s);
        }
    }
    let (tx, rx) = channel();
    if set.thread_block().is_err() {
        return Resizes(rx);
    }
    let target = proxy_to.map(|(root, c)| (lifecycle::runtime_of(root, c), c.id().to_string()));
    std::thread::spawn(move || {
        while let Ok(sig) = set.wait() {
            match (sig, &target) {
                (Signal::SIGWINCH, _) => {
                    // Nobody listens any more once the relay is done.
                    let _ = tx.send(());
                }
                (_, Some((rt, id))) => {
                    let _ = rt.kill(id, sig.as_str(), false);
                }
                _ => {}
            }
        }
    });
    Resizes(rx)
}
