//! The record payload schema as prost messages.
//!
//! This is the protobuf definition of a record payload, declared in Rust
//! (no `.proto` file, no `protoc`). The codec in this crate writes and reads
//! these bytes by hand for speed and for bounded decoding, and its tests
//! check both directions against these derived messages, so any protobuf
//! library can read cairn records with this schema. As `.proto`:
//!
//! ```text
//! syntax = "proto3";
//! message Record {
//!   uint32 db = 1;
//!   bytes key = 2;
//!   optional sint64 expires_at_ms = 3;
//!   Chunk chunk = 4;
//!   oneof value {            // field numbers 8..=63 are reserved for value types
//!     bytes string = 8;
//!     List list = 9;
//!     Hash hash = 10;
//!     Set set = 11;
//!     SortedSet sorted_set = 12;
//!     bytes payload = 13;    // an extension payload; key = its name, db 0
//!   }
//! }
//! message Chunk {
//!   uint32 index = 1;
//!   bool last = 2;
//!   bool continues = 3;              // version 2: last element continues in the next chunk
//!   bool key_continues = 4;          // version 2: key continues in the next chunk
//!   optional uint64 key_len = 5;     // version 2: chunk 0 of a split key
//!   optional uint64 string_len = 6;  // version 2: chunk 0 of a string
//!   optional uint64 element_len = 7; // version 2: with continues, where the element begins
//! }
//! message List { repeated bytes items = 1; }
//! message Hash { repeated bytes fields = 1; repeated bytes values = 2; }
//! message Set { repeated bytes members = 1; }
//! message SortedSet { repeated bytes members = 1; repeated double scores = 2; }
//! ```

use bytes::Bytes;

/// One record payload.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Record {
    /// Database index.
    #[prost(uint32, tag = "1")]
    pub db: u32,
    /// The key.
    #[prost(bytes = "bytes", tag = "2")]
    pub key: Bytes,
    /// Absolute expiry in unix milliseconds; absent means no expiry.
    #[prost(sint64, optional, tag = "3")]
    pub expires_at_ms: Option<i64>,
    /// Present on chunk records only.
    #[prost(message, optional, tag = "4")]
    pub chunk: Option<Chunk>,
    /// The value (exactly one kind).
    #[prost(oneof = "ValueKind", tags = "8, 9, 10, 11, 12, 13")]
    pub value: Option<ValueKind>,
}

/// Position of a chunk in its entry; see [`crate::Chunk`].
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Chunk {
    /// 0-based chunk index.
    #[prost(uint32, tag = "1")]
    pub index: u32,
    /// True on the last chunk.
    #[prost(bool, tag = "2")]
    pub last: bool,
    /// The last element continues in the next chunk's first element.
    #[prost(bool, tag = "3")]
    pub continues: bool,
    /// The key continues in the next chunk's key.
    #[prost(bool, tag = "4")]
    pub key_continues: bool,
    /// Total key length, on chunk 0 of a split key.
    #[prost(uint64, optional, tag = "5")]
    pub key_len: Option<u64>,
    /// Total string length, on chunk 0 of a string.
    #[prost(uint64, optional, tag = "6")]
    pub string_len: Option<u64>,
    /// Total length of the continuing element, where it begins.
    #[prost(uint64, optional, tag = "7")]
    pub element_len: Option<u64>,
}

/// The value oneof.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum ValueKind {
    /// A string.
    #[prost(bytes = "bytes", tag = "8")]
    String(Bytes),
    /// A list.
    #[prost(message, tag = "9")]
    List(List),
    /// A hash.
    #[prost(message, tag = "10")]
    Hash(Hash),
    /// A set.
    #[prost(message, tag = "11")]
    Set(Set),
    /// A sorted set.
    #[prost(message, tag = "12")]
    SortedSet(SortedSet),
    /// An extension payload (its name in `key`).
    #[prost(bytes = "bytes", tag = "13")]
    Payload(Bytes),
    /// A stream's items.
    #[prost(message, tag = "14")]
    Stream(List),
}

/// List items, head first.
#[derive(Clone, PartialEq, prost::Message)]
pub struct List {
    /// The items.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub items: Vec<Bytes>,
}

/// Hash pairs as two parallel arrays of equal length.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Hash {
    /// The fields.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub fields: Vec<Bytes>,
    /// The values, `values[i]` belonging to `fields[i]`.
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub values: Vec<Bytes>,
}

/// Set members.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Set {
    /// The members.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub members: Vec<Bytes>,
}

/// Sorted-set members and scores as two parallel arrays of equal length.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SortedSet {
    /// The members.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub members: Vec<Bytes>,
    /// The scores (packed doubles), `scores[i]` belonging to `members[i]`.
    #[prost(double, repeated, tag = "2")]
    pub scores: Vec<f64>,
}

impl From<&crate::Record> for Record {
    fn from(r: &crate::Record) -> Self {
        use crate::Value;
        let value = match &r.value {
            Value::String(b) => ValueKind::String(b.clone()),
            Value::Payload(b) => ValueKind::Payload(b.clone()),
            Value::List(items) => ValueKind::List(List {
                items: items.clone(),
            }),
            Value::Stream(items) => ValueKind::Stream(List {
                items: items.clone(),
            }),
            Value::Set(members) => ValueKind::Set(Set {
                members: members.clone(),
            }),
            Value::Hash(pairs) => ValueKind::Hash(Hash {
                fields: pairs.iter().map(|(f, _)| f.clone()).collect(),
                values: pairs.iter().map(|(_, v)| v.clone()).collect(),
            }),
            Value::SortedSet(pairs) => ValueKind::SortedSet(SortedSet {
                members: pairs.iter().map(|(m, _)| m.clone()).collect(),
                scores: pairs.iter().map(|(_, s)| *s).collect(),
            }),
        };
        Record {
            db: r.db,
            key: r.key.clone(),
            expires_at_ms: r.expires_at_ms,
            chunk: r.chunk.map(|c| Chunk {
                index: c.index,
                last: c.last,
                continues: c.continues,
                key_continues: c.key_continues,
                key_len: c.key_len,
                string_len: c.string_len,
                element_len: c.element_len,
            }),
            value: Some(value),
        }
    }
}
