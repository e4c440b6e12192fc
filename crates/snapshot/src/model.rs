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
    /// The key, any bytes, any length (including empty). Empty on the chunk
    /// records of an entry after the one(s) holding its key (see [`Chunk`]).
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

/// Position of a chunk record inside its entry, and how its key and last
/// element continue into the next chunk.
///
/// The chunks of one entry are consecutive records with the same `db`,
/// `expires_at_ms` and value type, numbered from 0; the last one has
/// `last == true`. The key is written once, in the first chunk (or split
/// across the first chunks when it is larger than a chunk, see
/// [`key_continues`](Self::key_continues)); later chunks carry an empty key.
/// (Format version 1 repeated the key in every chunk; the
/// [`Assembler`](crate::Assembler) still accepts that.) Each chunk's value
/// is a value of the entry's type holding the next part of it: a byte range
/// of a string, or a run of elements of a collection, whose last element may
/// be the beginning of an element finished in the next chunk (see
/// [`continues`](Self::continues)).
///
/// The `*_len` fields are length hints that let a reader allocate a split
/// item's buffer once; the [`Assembler`](crate::Assembler) checks each
/// against the bytes that actually arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub struct Chunk {
    /// 0-based index of this chunk in its entry.
    pub index: u32,
    /// True on the final chunk of the entry.
    pub last: bool,
    /// This chunk's last element is incomplete: the next chunk's first
    /// element continues it, and the two are one element whose bytes are
    /// concatenated (hash pairs: field with field, value with value; sorted
    /// sets: member with member, the score repeated in each part). Never set
    /// on a string (strings are byte ranges anyway) or on the last chunk.
    /// Format version 2.
    pub continues: bool,
    /// This chunk's key is a fragment that the next chunk's key continues;
    /// such a chunk holds no value data (an empty value of the entry's
    /// type). The key is complete at the first chunk without this flag.
    /// Never set on the last chunk. Format version 2.
    pub key_continues: bool,
    /// On chunk 0 of an entry whose key is split: the key's total length.
    /// Format version 2.
    pub key_len: Option<u64>,
    /// On chunk 0 of a string entry: the string's total length. Format
    /// version 2.
    pub string_len: Option<u64>,
    /// On a chunk with [`continues`](Self::continues) whose last element
    /// begins in it: that element's total length in bytes (hash pair: field
    /// plus value). Format version 2.
    pub element_len: Option<u64>,
}

impl Chunk {
    /// Chunk `index` of an entry, the last one when `last`; no continuation,
    /// no hints (a chunk as format version 1 wrote it).
    pub const fn new(index: u32, last: bool) -> Self {
        Chunk {
            index,
            last,
            continues: false,
            key_continues: false,
            key_len: None,
            string_len: None,
            element_len: None,
        }
    }
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
    /// A stream, as the opaque items of cairn's stream layout (its
    /// metadata, then its entries block by block, then its consumer
    /// groups; see docs/snapshot-format.md). Chunked like a list: a large
    /// stream is written and read a run of items at a time. Value field 14.
    Stream(Vec<Bytes>),
    /// An extension payload (the record's key is its name, db 0): part of
    /// the dataset but not a key, e.g. Redis 7.0's function libraries.
    /// Never chunked. Value field 13.
    Payload(Bytes),
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
    /// [`Value::Payload`]
    Payload,
    /// [`Value::Stream`]
    Stream,
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
            Value::Payload(_) => ValueKind::Payload,
            Value::Stream(_) => ValueKind::Stream,
        }
    }

    /// Number of elements: bytes for a string, items for a collection.
    pub fn len(&self) -> usize {
        match self {
            Value::String(b) | Value::Payload(b) => b.len(),
            Value::List(v) | Value::Set(v) | Value::Stream(v) => v.len(),
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
