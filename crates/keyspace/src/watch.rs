//! WATCH bookkeeping: which clients watch which keys, and the "touched"
//! signal every write sends (Redis' `touchWatchedKey`).
//!
//! A client's transaction is invalidated by setting its shared dirty flag;
//! EXEC reads the flag. Writers call [`Watches::touch`] while holding the
//! key's shard lock, and WATCH registers while holding that same lock, so a
//! write can never slip between a WATCH and its registration.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use hashbrown::HashMap;
use parking_lot::Mutex;

/// One client's "a watched key changed" flag, shared with the registry.
pub(crate) type DirtyFlag = Arc<AtomicBool>;

/// The registry of watched keys.
#[derive(Default)]
pub(crate) struct Watches {
    /// Number of (db, key) pairs watched by anyone: writers skip the lock
    /// entirely while it is 0, so WATCH costs nothing when unused.
    active: AtomicUsize,
    keys: Mutex<HashMap<u32, HashMap<Bytes, Vec<DirtyFlag>>>>,
}

impl Watches {
    /// Marks every client watching `key` in `db` dirty.
    #[inline]
    pub(crate) fn touch(&self, db: u32, key: &[u8]) {
        if self.active.load(Ordering::Relaxed) == 0 {
            return;
        }
        self.touch_slow(db, key);
    }

    #[cold]
    fn touch_slow(&self, db: u32, key: &[u8]) {
        let keys = self.keys.lock();
        if let Some(flags) = keys.get(&db).and_then(|m| m.get(key)) {
            for f in flags {
                f.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Whether anyone watches anything.
    pub(crate) fn any(&self) -> bool {
        self.active.load(Ordering::Relaxed) != 0
    }

    /// Registers `flag` as watching `key` in `db`; false if it already was.
    pub(crate) fn watch(&self, db: u32, key: &[u8], flag: &DirtyFlag) -> bool {
        let mut keys = self.keys.lock();
        let per_db = keys.entry(db).or_default();
        match per_db.get_mut(key) {
            Some(v) => {
                if v.iter().any(|f| Arc::ptr_eq(f, flag)) {
                    return false;
                }
                v.push(flag.clone());
            }
            None => {
                per_db.insert(Bytes::copy_from_slice(key), vec![flag.clone()]);
                self.active.fetch_add(1, Ordering::Relaxed);
            }
        }
        true
    }

    /// Removes `flag` from the watchers of `key` in `db`.
    pub(crate) fn unwatch(&self, db: u32, key: &[u8], flag: &DirtyFlag) {
        let mut keys = self.keys.lock();
        let Some(per_db) = keys.get_mut(&db) else {
            return;
        };
        let now_empty = match per_db.get_mut(key) {
            Some(v) => {
                v.retain(|f| !Arc::ptr_eq(f, flag));
                v.is_empty()
            }
            None => false,
        };
        if now_empty {
            per_db.remove(key);
            self.active.fetch_sub(1, Ordering::Relaxed);
        }
        if per_db.is_empty() {
            keys.remove(&db);
        }
    }

    /// The keys watched in `db` (FLUSHDB / SWAPDB decide which to touch).
    pub(crate) fn watched_in(&self, db: u32) -> Vec<Bytes> {
        if !self.any() {
            return Vec::new();
        }
        self.keys
            .lock()
            .get(&db)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn touch_marks_only_watchers_of_that_key_and_db() {
        let w = Watches::default();
        let a: DirtyFlag = Arc::default();
        let b: DirtyFlag = Arc::default();
        assert!(w.watch(0, b"k", &a));
        assert!(!w.watch(0, b"k", &a));
        assert!(w.watch(1, b"k", &b));
        w.touch(0, b"other");
        w.touch(2, b"k");
        assert!(!a.load(Ordering::Relaxed) && !b.load(Ordering::Relaxed));
        w.touch(0, b"k");
        assert!(a.load(Ordering::Relaxed));
        assert!(!b.load(Ordering::Relaxed));
        w.unwatch(0, b"k", &a);
        w.unwatch(1, b"k", &b);
        assert!(!w.any());
        assert!(w.watched_in(0).is_empty());
    }
}
