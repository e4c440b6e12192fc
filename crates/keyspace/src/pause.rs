//! `CLIENT PAUSE`: clients' commands held back until a deadline or
//! `CLIENT UNPAUSE`, as Redis 7.0's `pauseClients`.
//!
//! A held command does not run and does not hold a worker thread: the
//! session answers it with a future that waits for the pause to end and
//! asks the connection to hand the command back ([`Session::take_retry`]),
//! the same path a command takes while a busy script runs.
//!
//! [`Session::take_retry`]: cairn_resp::Session::take_retry

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// What a pause holds back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PauseKind {
    /// Commands that may write or replicate (writes, PUBLISH, EVAL, ...),
    /// and expiry.
    Write,
    /// Every command.
    All,
}

const NONE: u8 = 0;
const WRITE: u8 = 1;
const ALL: u8 = 2;

/// The pause in effect.
#[derive(Default)]
pub(crate) struct Pause {
    /// NONE, WRITE or ALL: read by every command without a lock.
    kind: AtomicU8,
    until: Mutex<Option<Instant>>,
    changed: Notify,
}

impl Pause {
    /// `CLIENT PAUSE`: replaces any pause in effect.
    pub(crate) fn pause(&self, kind: PauseKind, until: Instant) {
        let mut u = self.until.lock();
        *u = Some(until);
        let k = match kind {
            PauseKind::Write => WRITE,
            PauseKind::All => ALL,
        };
        self.kind.store(k, Ordering::Release);
        drop(u);
        self.changed.notify_waiters();
    }

    /// `CLIENT UNPAUSE`, or the deadline passed.
    pub(crate) fn unpause(&self) {
        let mut u = self.until.lock();
        *u = None;
        self.kind.store(NONE, Ordering::Release);
        drop(u);
        self.changed.notify_waiters();
    }

    /// The pause in effect now, ending it if its deadline has passed.
    pub(crate) fn current(&self) -> Option<PauseKind> {
        let k = self.kind.load(Ordering::Acquire);
        if k == NONE {
            return None;
        }
        let until = *self.until.lock();
        match until {
            Some(t) if Instant::now() < t => Some(if k == ALL {
                PauseKind::All
            } else {
                PauseKind::Write
            }),
            _ => {
                self.unpause();
                None
            }
        }
    }

    /// Waits until no pause is in effect (or it changed: the caller checks
    /// again).
    pub(crate) async fn wait(&self) {
        loop {
            let changed = self.changed.notified();
            let until = *self.until.lock();
            let Some(until) = until else { return };
            if Instant::now() >= until {
                self.unpause();
                return;
            }
            tokio::select! {
                () = changed => return,
                () = tokio::time::sleep_until(until.into()) => {}
            }
        }
    }
}
