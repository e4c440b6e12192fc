//! The in-memory record model.

use bytes::Bytes;

/// One database entry, or one chunk of a large entry, as stored in a snapshot.
///
/// Every field is owned and cheap to move: keys, strings and elements are
/// [`Bytes`], so building a record from values already held as `Bytes` copies
/// no data.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Database index (`SELECT n`).
    pub db: u32,
    /// The key, any bytes, any length (including empty).
    pub key: Bytes,
    /// Absolute expiry in unix milliseconds, or `None` for a key without TTL.
    /// Any `i64` round-trips, including 0 and negative values.
    pub expires_at_ms: Option<i64>,
    /// The value, or this chunk's part of it.
    pub value: Value,
    /// `None` for a whole entry; `Some` when this record is one chunk of an
    /// entry split by a [`Chunker`](crate::Chunker).
    pub chunk: Option<Chunk>,
}

impl Record {
    /// A whole (unchunked) entry without expiry.
    pub fn new(db: u32, key: impl Into<Bytes>, value: Value) -> Self {
        Record {
            db,
            key: key.into(),
            expires_at_ms: None,
            value,
            chunk: None,
        }
    }

    /// Sets the absolute expiry in unix milliseconds.
    #[must_use]
    pub fn with_expiry(mut self, expires_at_ms: Option<i64>) -> Self {
        self.expires_at_ms = expires_at_ms;
        self
    }
}

/// Position of a chunk record inside its entry.
///
/// The chunks of one entry are consecutive records with the same `db`, `key`,
/// `expires_at_ms` and value type, numbered from 0; the last one has
/// `last == true`. Each chunk's value is a valid value of the entry's type
/// (a byte range of a string, a run of elements of a collection), so a loader
/// may apply chunks one by one instead of assembling them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Chunk {
    /// 0-based index of this chunk in its entry.
    pub index: u32,
    /// True on the final chunk of the entry.
    pub last: bool,
}

/// A value of one of the Redis data types.
///
/// Collections are plain vectors in the order the writer chose (Redis list
/// order for lists; any order for hashes, sets and sorted sets). The codec
/// does not deduplicate or sort.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// A string (bytes).
    String(Bytes),
    /// A list, head first.
    List(Vec<Bytes>),
    /// A hash as (field, value) pairs.
    Hash(Vec<(Bytes, Bytes)>),
    /// A set's members.
    Set(Vec<Bytes>),
    /// A sorted set as (member, score) pairs. Scores are stored bit-exactly
    /// (±inf, -0.0 and subnormals round-trip); NaN is rejected.
    SortedSet(Vec<(Bytes, f64)>),
}

/// The type of a [`Value`], without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ValueKind {
    /// [`Value::String`]
    String,
    /// [`Value::List`]
    List,
    /// [`Value::Hash`]
    Hash,
    /// [`Value::Set`]
    Set,
    /// [`Value::SortedSet`]
    SortedSet,
}

impl Value {
    /// The value's type.
    pub fn kind(&self) -> ValueKind {
        match self {
            Value::String(_) => ValueKind::String,
            Value::List(_) => ValueKind::List,
            Value::Hash(_) => ValueKind::Hash,
            Value::Set(_) => ValueKind::Set,
            Value::SortedSet(_) => ValueKind::SortedSet,
        }
    }

    /// Number of elements: bytes for a string, items for a collection.
    pub fn len(&self) -> usize {
        match self {
            Value::String(b) => b.len(),
            Value::List(v) | Value::Set(v) => v.len(),
            Value::Hash(v) => v.len(),
            Value::SortedSet(v) => v.len(),
        }
    }

    /// True when [`len`](Self::len) is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Bounds that keep a hostile or corrupt input from allocating without limit.
///
/// The encoder enforces the same limits, so whatever it writes a reader with
/// the same (or larger) limits accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest record payload in bytes. Default 64 MiB.
    pub max_record_bytes: u32,
    /// Most elements (list items, set members, hash pairs, sorted-set
    /// members) in one record. Default 1 Mi. Bounds the memory of a decoded
    /// record, since an empty element costs 2 bytes on the wire but a
    /// [`Bytes`] in memory.
    pub max_elements: u32,
}

impl Limits {
    /// The default limits: 64 MiB records, 1 Mi elements per record.
    pub const DEFAULT: Limits = Limits {
        max_record_bytes: 64 << 20,
        max_elements: 1 << 20,
    };

    /// Sets [`max_record_bytes`](Self::max_record_bytes). Values above
    /// `u32::MAX - 1` are not possible: `0xFFFF_FFFF` marks the footer.
    #[must_use]
    pub fn max_record_bytes(mut self, bytes: u32) -> Self {
        self.max_record_bytes = bytes.min(u32::MAX - 1);
        self
    }

    /// Sets [`max_elements`](Self::max_elements).
    #[must_use]
    pub fn max_elements(mut self, elements: u32) -> Self {
        self.max_elements = elements;
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}
