//! The cairn keyspace: databases, typed values, expiry, the command table
//! and its execution, client sessions, and point-in-time views.
//!
//! A [`Keyspace`] holds every database (16 by default), each split into
//! shards of versioned [`Entry`]s. It implements [`cairn_resp::Service`]:
//! the connection server opens one [`Session`] per client and hands it
//! commands; replies are [`cairn_resp::Frame`]s, so everything here is
//! testable without a socket. [`Keyspace::view`] takes a consistent
//! point-in-time [`View`] of all databases without copying them, which the
//! persistence layer iterates on another thread.
//!
//! # Example
//!
//! ```
//! use cairn_keyspace::Keyspace;
//! use cairn_resp::Frame;
//!
//! let ks = Keyspace::new();
//! let mut s = ks.session();
//! assert_eq!(s.command(&["SET", "greeting", "hello"]), Frame::ok());
//! assert_eq!(s.command(&["GET", "greeting"]), Frame::bulk("hello"));
//!
//! let mut view = ks.view()?;
//! s.command(&["SET", "greeting", "changed"]); // after the view: not in it
//! let entries: Vec<_> = view.by_ref().collect();
//! assert_eq!(entries.len(), 1);
//! assert_eq!(&entries[0].key[..], b"greeting");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod access;
mod auth;
mod blocking;
mod clock;
mod cmd;
pub mod config;
mod digest;
mod encoding;
mod engine;
mod evict;
mod geohash;
mod glob;
mod hashed;
mod hll;
mod keyspace;
mod limits;
mod memory;
mod monitor;
mod notify;
mod num;
mod packed;
mod pause;
mod pqsort;
mod pubsub;
mod quicklist;
mod session;
mod slowlog;
mod stats;
mod stream;
mod usage;
mod value;
mod view;
mod watch;
mod zset;

/// The Redis version cairn reports (`INFO`, `HELLO`): the one whose
/// behaviour it follows.
pub const REDIS_VERSION: &str = "7.0.15";

/// The reply value and the deferred reply of a blocking command, re-exported so
/// extensions (persistence, scripting) need not depend on `cairn-resp`.
pub use cairn_resp::{Frame, Pending, Protocol};

pub use crate::{
    clock::{Clock, ManualClock, SystemClock},
    cmd::{CommandFn, CommandSpec, Completion, Ctx, Extension, Flags, TableBuilder},
    encoding::Limits,
    engine::{Entry, EntryMut, ExpireStats, Locked, Shard},
    glob::glob_match,
    hashed::seed_thread_rng,
    keyspace::{Busy, Keyspace, KeyspaceBuilder},
    memory::{AllocatorReading, AllocatorStats},
    notify::Class,
    quicklist::ListIter,
    session::{NestedClient, NestedError, NestedRules, Session, SessionState},
    stream::{
        Consumer, EntryRef, Group, INVALID_ENTRIES_READ, Nack, NodeLimits, Stream, StreamId,
        StreamView, Trim,
    },
    value::{
        HalfIter, HashMapBytes, HashSetBytes, Key, MapIter, QuickList, Score, SetIter, SortedSet,
        Value, ValueType, WrongType, parse_canonical_i64,
    },
    view::{LoadEntry, LoadStats, View, ViewEntry, ViewError},
    zset::ZIter,
};
