//! `MONITOR`: every command executed, fed to the monitoring clients as
//! Redis' `replicationFeedMonitors` writes it (after the command ran).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use cairn_resp::{Event, Frame};
use parking_lot::RwLock;
use tokio::sync::mpsc;

/// The monitoring clients.
#[derive(Default)]
pub(crate) struct Monitors {
    /// How many: checked by every command without a lock.
    count: AtomicUsize,
    clients: RwLock<Vec<(u64, mpsc::UnboundedSender<Event>)>>,
}

impl Monitors {
    /// Adds a client; false if it was monitoring already.
    pub(crate) fn add(&self, id: u64, tx: mpsc::UnboundedSender<Event>) -> bool {
        let mut c = self.clients.write();
        if c.iter().any(|(i, _)| *i == id) {
            return false;
        }
        c.push((id, tx));
        self.count.store(c.len(), Ordering::Release);
        true
    }

    /// Removes a client (closed or RESET).
    pub(crate) fn remove(&self, id: u64) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut c = self.clients.write();
        c.retain(|(i, _)| *i != id);
        self.count.store(c.len(), Ordering::Release);
    }

    /// Whether client `id` monitors.
    pub(crate) fn contains(&self, id: u64) -> bool {
        self.active() && self.clients.read().iter().any(|(i, _)| *i == id)
    }

    /// Whether anyone monitors.
    pub(crate) fn active(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// Sends a command's line to every monitor: `origin` is `0
    /// 127.0.0.1:60866` or `0 lua`.
    pub(crate) fn feed(&self, origin: &str, args: &[Bytes]) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let mut line = format!("{}.{:06} [{origin}]", now.as_secs(), now.subsec_micros());
        for a in args {
            line.push(' ');
            repr(&mut line, a);
        }
        let frame = Frame::Simple(Bytes::from(line));
        for (_, tx) in self.clients.read().iter() {
            let _ = tx.send(Event::Push(frame.clone()));
        }
    }
}

/// Redis' `sdscatrepr`: a quoted string with C escapes.
fn repr(out: &mut String, s: &[u8]) {
    out.push('"');
    for &b in s {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    #[test]
    fn repr_escapes_as_redis() {
        let mut s = String::new();
        super::repr(&mut s, b"a\"b\\c\n\x01\xff ");
        assert_eq!(s, "\"a\\\"b\\\\c\\n\\x01\\xff \"");
    }
}
