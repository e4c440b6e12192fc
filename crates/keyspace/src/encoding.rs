//! The size limits that decide when a small (packed) collection converts
//! to its large form: Redis 7.0's `hash-max-listpack-entries`/`-value`,
//! `zset-max-listpack-entries`/`-value`, `set-max-intset-entries` and
//! `list-max-listpack-size`.
//!
//! The limits belong to a keyspace (CONFIG SET changes them), but the value
//! types that apply them (`HashMapBytes::insert`, ...) are called deep
//! inside command handlers with no keyspace at hand. So each command runs
//! with its keyspace's limits copied into a thread-local (`session::run`
//! sets it, a few relaxed loads per command), and the value types read
//! that. Code running outside a command (a restore's decoding threads, an
//! embedder building values) sees the limits last set on its thread, or
//! Redis' defaults.

use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};

/// Conversion thresholds, as Redis 7.0 names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `hash-max-listpack-entries`: more fields make a hash table.
    pub hash_entries: usize,
    /// `hash-max-listpack-value`: a longer field or value makes a hash table.
    pub hash_value: usize,
    /// `zset-max-listpack-entries`: more members make a skiplist.
    pub zset_entries: usize,
    /// `zset-max-listpack-value`: a longer member makes a skiplist.
    pub zset_value: usize,
    /// `set-max-intset-entries`: more members make a hash table.
    pub set_intset_entries: usize,
    /// `list-max-listpack-size`: positive, the most entries per quicklist
    /// node; negative, -1..-5 select 4, 8, 16, 32 or 64 KiB per node.
    pub list_size: i64,
    /// `stream-node-max-bytes`: a stream block closes once Redis' listpack
    /// for it would reach this size (0: no limit).
    pub stream_node_bytes: usize,
    /// `stream-node-max-entries`: a stream block closes at this many
    /// entries, deleted ones included (0: no limit).
    pub stream_node_entries: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::REDIS
    }
}

impl Limits {
    /// Redis 7.0's defaults.
    pub const REDIS: Limits = Limits {
        hash_entries: 512,
        hash_value: 64,
        zset_entries: 128,
        zset_value: 64,
        set_intset_entries: 512,
        list_size: -2,
        stream_node_bytes: 4096,
        stream_node_entries: 100,
    };

    /// The limits commands on this thread apply.
    pub fn current() -> Limits {
        LIMITS.with(Cell::get)
    }

    /// Makes commands and value updates on this thread apply `self`.
    pub fn install(self) {
        LIMITS.with(|l| l.set(self));
    }

    /// The byte budget of one quicklist node for a negative
    /// `list-max-listpack-size`, as Redis' `optimization_level`.
    pub fn list_node_bytes(self) -> Option<usize> {
        match self.list_size {
            n if n >= 0 => None,
            -1 => Some(4096),
            -2 => Some(8192),
            -3 => Some(16384),
            -4 => Some(32768),
            // Redis clamps anything below -5 to -5.
            _ => Some(65536),
        }
    }
}

thread_local! {
    static LIMITS: Cell<Limits> = const { Cell::new(Limits::REDIS) };
}

/// A keyspace's limits, changed by CONFIG SET and read before each command.
#[derive(Debug)]
pub(crate) struct SharedLimits {
    values: [AtomicI64; 8],
}

/// The CONFIG parameter names, in the order `SharedLimits` stores them;
/// Redis 7.0 still accepts the `ziplist` names as aliases.
const NAMES: [(&str, &str); 8] = [
    ("hash-max-listpack-entries", "hash-max-ziplist-entries"),
    ("hash-max-listpack-value", "hash-max-ziplist-value"),
    ("zset-max-listpack-entries", "zset-max-ziplist-entries"),
    ("zset-max-listpack-value", "zset-max-ziplist-value"),
    ("set-max-intset-entries", "set-max-intset-entries"),
    ("list-max-listpack-size", "list-max-ziplist-size"),
    ("stream-node-max-bytes", "stream-node-max-bytes"),
    ("stream-node-max-entries", "stream-node-max-entries"),
];

impl Default for SharedLimits {
    fn default() -> SharedLimits {
        let d = Limits::REDIS;
        let as_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        SharedLimits {
            values: [
                AtomicI64::new(as_i64(d.hash_entries)),
                AtomicI64::new(as_i64(d.hash_value)),
                AtomicI64::new(as_i64(d.zset_entries)),
                AtomicI64::new(as_i64(d.zset_value)),
                AtomicI64::new(as_i64(d.set_intset_entries)),
                AtomicI64::new(d.list_size),
                AtomicI64::new(as_i64(d.stream_node_bytes)),
                AtomicI64::new(as_i64(d.stream_node_entries)),
            ],
        }
    }
}

impl SharedLimits {
    /// The index of a CONFIG parameter this controls, by either name.
    fn index(name: &str) -> Option<usize> {
        NAMES
            .iter()
            .position(|(a, b)| name.eq_ignore_ascii_case(a) || name.eq_ignore_ascii_case(b))
    }

    /// Whether `name` is one of the limits.
    pub(crate) fn controls(name: &str) -> bool {
        SharedLimits::index(name).is_some()
    }

    /// Stores a new value for `name` (ignored for other names).
    pub(crate) fn set(&self, name: &str, value: i64) {
        if let Some(slot) = SharedLimits::index(name).and_then(|i| self.values.get(i)) {
            slot.store(value, Ordering::Relaxed);
        }
    }

    /// The limits in effect.
    pub(crate) fn load(&self) -> Limits {
        let get = |i: usize| self.values.get(i).map_or(0, |v| v.load(Ordering::Relaxed));
        let size = |i: usize| usize::try_from(get(i)).unwrap_or(0);
        Limits {
            hash_entries: size(0),
            hash_value: size(1),
            zset_entries: size(2),
            zset_value: size(3),
            set_intset_entries: size(4),
            list_size: get(5),
            stream_node_bytes: size(6),
            stream_node_entries: size(7),
        }
    }
}
