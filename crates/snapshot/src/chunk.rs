//! Splitting large entries into bounded records and putting them back together.
//!
//! Every chunk record's key and value data stay within the chunker's target
//! (plus the framing of its fields), whatever the size of the key or of any
//! single element: a key longer than the target is split across the first
//! chunks ([`Chunk::key_continues`]), and an element longer than the target
//! across consecutive chunks ([`Chunk::continues`]). The key is written once.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::error::{ChunkError, Error, Result};
use crate::model::{Chunk, Limits, Record, Value, ValueKind};
use sealed::{Growing, SplitAcc};

/// Default target size of one chunk's key and value data: 1 MiB.
pub const DEFAULT_CHUNK_BYTES: usize = 1 << 20;

/// Default cap on what an [`Assembler`] allocates up front from a length
/// hint: 512 MiB, Redis' `proto-max-bulk-len`. Bytes beyond it are still
/// accepted, by growing the buffer.
pub const DEFAULT_PREALLOC_LIMIT: usize = 512 << 20;

/// Splits whole entries into chunk records of bounded size.
///
/// A record whose key and value fit the target together is passed through
/// unchanged (`chunk: None`), and so is a record that already is a chunk.
/// Otherwise:
///
/// - a key longer than `target_bytes` is cut into fragments of
///   `target_bytes`, each in a chunk of its own flagged
///   [`key_continues`](Chunk::key_continues) but the last; the chunk with
///   the last (or only) key fragment also starts the value; later chunks
///   carry no key;
/// - a string is cut into byte ranges (zero-copy slices of the original
///   [`Bytes`]) filling each chunk up to `target_bytes` with the key bytes
///   it carries;
/// - a collection is cut into runs of consecutive elements whose encoded
///   size stays within `target_bytes` and whose count stays within
///   [`Limits::max_elements`]. An element that does not fit the rest of a
///   chunk goes whole to the next one if it fits a chunk on its own;
///   otherwise it is split (zero-copy) across consecutive chunks, each but
///   the one holding its end flagged [`continues`](Chunk::continues).
///
/// Chunks are numbered from 0 and the final one has `last: true`. A target
/// smaller than an element's framing (a few bytes) still makes progress:
/// each chunk then holds at least one byte or one empty element.
#[derive(Debug, Clone, Copy)]
pub struct Chunker {
    target_bytes: usize,
    max_elements: usize,
}

impl Default for Chunker {
    fn default() -> Self {
        Chunker::new()
    }
}

impl Chunker {
    /// A chunker with [`DEFAULT_CHUNK_BYTES`] and [`Limits::DEFAULT`].
    pub fn new() -> Self {
        Chunker {
            target_bytes: DEFAULT_CHUNK_BYTES,
            max_elements: Limits::DEFAULT.max_elements as usize,
        }
    }

    /// Sets the target size of one chunk's key and value data in bytes (at
    /// least 1). Default [`DEFAULT_CHUNK_BYTES`].
    #[must_use]
    pub fn target_bytes(mut self, bytes: usize) -> Self {
        self.target_bytes = bytes.max(1);
        self
    }

    /// Sets the most elements per chunk (at least 1). Default
    /// [`Limits::DEFAULT`]`.max_elements`.
    #[must_use]
    pub fn max_elements(mut self, elements: usize) -> Self {
        self.max_elements = elements.max(1);
        self
    }

    /// Splits one whole entry. The iterator owns the entry and builds each
    /// chunk only when asked for it.
    pub fn split(&self, record: Record) -> Chunks {
        let key_len = record.key.len();
        // `max_elements` bounds collections only: a string is one element.
        let fits = record.chunk.is_some()
            || match &record.value {
                Value::String(b) => key_len.saturating_add(b.len()) <= self.target_bytes,
                // Payloads are small metadata (function libraries): never split.
                Value::Payload(_) => true,
                v => {
                    v.len() <= self.max_elements
                        && key_len.saturating_add(value_size(v)) <= self.target_bytes
                }
            };
        if fits {
            return Chunks(Rest::Whole(Some(record)));
        }
        let Record {
            db,
            key,
            expires_at_ms,
            value,
            chunk: _,
        } = record;
        let head = |kind| Head::new(*self, db, key.clone(), expires_at_ms, kind);
        Chunks(match value {
            Value::String(b) => {
                let mut head = head(ValueKind::String);
                head.string_len = Some(b.len() as u64);
                Rest::String {
                    head,
                    rest: b,
                    done: false,
                }
            }
            Value::List(v) => Rest::List(Packer::new(head(ValueKind::List)), v.into_iter()),
            Value::Stream(v) => Rest::List(Packer::new(head(ValueKind::Stream)), v.into_iter()),
            Value::Set(v) => Rest::Set(Packer::new(head(ValueKind::Set)), v.into_iter()),
            Value::Hash(v) => Rest::Hash(Packer::new(head(ValueKind::Hash)), v.into_iter()),
            Value::SortedSet(v) => {
                Rest::SortedSet(Packer::new(head(ValueKind::SortedSet)), v.into_iter())
            }
            // Handled by `fits` above.
            Value::Payload(b) => Rest::Whole(Some(Record {
                db,
                key,
                expires_at_ms,
                value: Value::Payload(b),
                chunk: None,
            })),
        })
    }
}

impl Chunker {
    /// Starts a list entry whose items are pushed one at a time, for writers
    /// that walk a large collection without first collecting it.
    pub fn list(&self, db: u32, key: Bytes, expires_at_ms: Option<i64>) -> EntryChunker<Bytes> {
        EntryChunker::new(Head::new(*self, db, key, expires_at_ms, ValueKind::List))
    }

    /// Starts a stream entry, whose items are opaque byte strings chunked
    /// as a list's; see [`list`](Self::list).
    pub fn stream(&self, db: u32, key: Bytes, expires_at_ms: Option<i64>) -> EntryChunker<Bytes> {
        EntryChunker::new(Head::new(*self, db, key, expires_at_ms, ValueKind::Stream))
    }

    /// Starts a set entry; see [`list`](Self::list).
    pub fn set(&self, db: u32, key: Bytes, expires_at_ms: Option<i64>) -> EntryChunker<Bytes> {
        EntryChunker::new(Head::new(*self, db, key, expires_at_ms, ValueKind::Set))
    }

    /// Starts a hash entry of (field, value) pairs; see [`list`](Self::list).
    pub fn hash(
        &self,
        db: u32,
        key: Bytes,
        expires_at_ms: Option<i64>,
    ) -> EntryChunker<(Bytes, Bytes)> {
        EntryChunker::new(Head::new(*self, db, key, expires_at_ms, ValueKind::Hash))
    }

    /// Starts a sorted-set entry of (member, score) pairs; see
    /// [`list`](Self::list).
    pub fn sorted_set(
        &self,
        db: u32,
        key: Bytes,
        expires_at_ms: Option<i64>,
    ) -> EntryChunker<(Bytes, f64)> {
        EntryChunker::new(Head::new(
            *self,
            db,
            key,
            expires_at_ms,
            ValueKind::SortedSet,
        ))
    }
}

// Not nameable outside the crate, though reachable through `ChunkElement`.
mod sealed {
    use super::{ChunkError, Value, ValueKind};

    /// A byte buffer filled from fragments, checked against its length hint.
    #[derive(Debug)]
    pub struct Growing {
        pub(super) buf: Vec<u8>,
        pub(super) expected: Option<u64>,
    }

    /// An element being joined from fragments.
    #[derive(Debug)]
    pub struct SplitAcc {
        /// A hash pair's field bytes followed by its value bytes; otherwise the
        /// element's bytes.
        pub(super) bytes: Growing,
        /// Hash: bytes of `bytes` that are the field.
        pub(super) field_len: usize,
        /// Hash: value bytes have begun (field bytes may no longer come).
        pub(super) in_value: bool,
        /// Sorted set: the score every fragment must repeat, as bits.
        pub(super) score: Option<u64>,
    }

    pub trait Sealed: Sized {
        /// Data bytes (a hash pair: field plus value).
        fn data_len(&self) -> usize;
        /// Encoded size inside its value message.
        fn encoded_size(&self) -> usize;
        /// The most data bytes of one fragment whose encoded size stays
        /// within `budget` (0 when not even one byte fits).
        fn fit(budget: usize) -> usize;
        /// The fragment holding data bytes `from..to`, sharing the buffers.
        fn fragment(&self, from: usize, to: usize) -> Self;
        fn into_value(run: Vec<Self>, kind: ValueKind) -> Value;
        /// Appends this fragment's bytes to an element being joined.
        fn join(self, acc: &mut SplitAcc, index: u32) -> Result<(), ChunkError>;
        /// The joined element.
        fn assemble(acc: SplitAcc, index: u32) -> Result<Self, ChunkError>;
    }
}

/// An element of a collection that [`EntryChunker`] accepts: [`Bytes`]
/// (list items, set members), `(Bytes, Bytes)` (hash pairs) or
/// `(Bytes, f64)` (sorted-set pairs).
pub trait ChunkElement: sealed::Sealed {}

impl ChunkElement for Bytes {}
impl ChunkElement for (Bytes, Bytes) {}
impl ChunkElement for (Bytes, f64) {}

/// Size of a protobuf length-delimited field with a one-byte key.
fn field_size(len: usize) -> usize {
    1 + varint_len(len) + len
}

fn varint_len(n: usize) -> usize {
    (64 - (n as u64 | 1).leading_zeros() as usize).div_ceil(7)
}

/// A slice of `b` clamped to its bounds (never panics).
fn clamped(b: &Bytes, from: usize, to: usize) -> Bytes {
    let to = to.min(b.len());
    b.slice(from.min(to)..to)
}

impl sealed::Sealed for Bytes {
    fn data_len(&self) -> usize {
        self.len()
    }
    fn encoded_size(&self) -> usize {
        field_size(self.len())
    }
    fn fit(budget: usize) -> usize {
        budget.saturating_sub(1 + varint_len(budget))
    }
    fn fragment(&self, from: usize, to: usize) -> Self {
        clamped(self, from, to)
    }
    fn into_value(run: Vec<Self>, kind: ValueKind) -> Value {
        match kind {
            ValueKind::Set => Value::Set(run),
            ValueKind::Stream => Value::Stream(run),
            _ => Value::List(run),
        }
    }
    fn join(self, acc: &mut SplitAcc, index: u32) -> Result<(), ChunkError> {
        acc.bytes.extend(&self, index, "element")
    }
    fn assemble(acc: SplitAcc, index: u32) -> Result<Self, ChunkError> {
        acc.bytes.finish(index, "element")
    }
}

impl sealed::Sealed for (Bytes, Bytes) {
    fn data_len(&self) -> usize {
        self.0.len() + self.1.len()
    }
    fn encoded_size(&self) -> usize {
        field_size(self.0.len()) + field_size(self.1.len())
    }
    fn fit(budget: usize) -> usize {
        // Every pair fragment is two fields, even when one part is empty.
        budget.saturating_sub(2 * (1 + varint_len(budget)))
    }
    fn fragment(&self, from: usize, to: usize) -> Self {
        // The pair's bytes are its field's followed by its value's.
        let f = self.0.len();
        (
            clamped(&self.0, from, to),
            clamped(&self.1, from.saturating_sub(f), to.saturating_sub(f)),
        )
    }
    fn into_value(run: Vec<Self>, _: ValueKind) -> Value {
        Value::Hash(run)
    }
    fn join(self, acc: &mut SplitAcc, index: u32) -> Result<(), ChunkError> {
        let (field, value) = self;
        if !field.is_empty() {
            if acc.in_value {
                return Err(ChunkError::Continuation {
                    index,
                    reason: "hash field bytes after the pair's value bytes began",
                });
            }
            acc.bytes.extend(&field, index, "element")?;
            acc.field_len += field.len();
        }
        if !value.is_empty() {
            acc.in_value = true;
            acc.bytes.extend(&value, index, "element")?;
        }
        Ok(())
    }
    fn assemble(acc: SplitAcc, index: u32) -> Result<Self, ChunkError> {
        let field_len = acc.field_len;
        let mut value = acc.bytes.finish(index, "element")?;
        // Field and value share the one buffer; splitting it copies nothing.
        if field_len > value.len() {
            return Err(ChunkError::Continuation {
                index,
                reason: "hash field longer than the joined pair",
            });
        }
        let field = value.split_to(field_len);
        Ok((field, value))
    }
}

impl sealed::Sealed for (Bytes, f64) {
    fn data_len(&self) -> usize {
        self.0.len()
    }
    fn encoded_size(&self) -> usize {
        field_size(self.0.len()) + 8
    }
    fn fit(budget: usize) -> usize {
        budget.saturating_sub(1 + varint_len(budget) + 8)
    }
    fn fragment(&self, from: usize, to: usize) -> Self {
        (clamped(&self.0, from, to), self.1)
    }
    fn into_value(run: Vec<Self>, _: ValueKind) -> Value {
        Value::SortedSet(run)
    }
    fn join(self, acc: &mut SplitAcc, index: u32) -> Result<(), ChunkError> {
        let (member, score) = self;
        match acc.score {
            Some(bits) if bits != score.to_bits() => {
                return Err(ChunkError::Mismatch {
                    index,
                    field: "score",
                });
            }
            _ => acc.score = Some(score.to_bits()),
        }
        acc.bytes.extend(&member, index, "element")
    }
    fn assemble(acc: SplitAcc, index: u32) -> Result<Self, ChunkError> {
        let score = f64::from_bits(acc.score.unwrap_or(0));
        Ok((acc.bytes.finish(index, "element")?, score))
    }
}

/// What every chunk of one entry shares, and the key as it is handed out.
#[derive(Debug)]
struct Head {
    db: u32,
    key: Bytes,
    expires_at_ms: Option<i64>,
    kind: ValueKind,
    target: usize,
    max_elements: usize,
    /// Key bytes already placed in records.
    key_sent: usize,
    /// Index of the next record.
    index: u32,
    /// The total length of a string entry, hinted on chunk 0.
    string_len: Option<u64>,
}

impl Head {
    fn new(
        config: Chunker,
        db: u32,
        key: Bytes,
        expires_at_ms: Option<i64>,
        kind: ValueKind,
    ) -> Self {
        Head {
            db,
            key,
            expires_at_ms,
            kind,
            target: config.target_bytes,
            max_elements: config.max_elements,
            key_sent: 0,
            index: 0,
            string_len: None,
        }
    }

    /// The next record holding only a key fragment, while more than one
    /// record's worth of key is left.
    fn key_fragment(&mut self) -> Option<Record> {
        let end = self.key_sent.checked_add(self.target)?;
        if end >= self.key.len() {
            return None;
        }
        let part = self.key.slice(self.key_sent..end);
        self.key_sent = end;
        let value = empty(self.kind);
        Some(self.record(part, value, false, Flags::KEY_CONTINUES, None))
    }

    /// The rest of the key, for the first record that holds value data;
    /// empty for every later record.
    fn key_rest(&mut self) -> Bytes {
        let rest = clamped(&self.key, self.key_sent, self.key.len());
        self.key_sent = self.key.len();
        rest
    }

    /// Builds the next record; the first one is the whole entry when it is
    /// also the last.
    fn record(
        &mut self,
        key: Bytes,
        value: Value,
        last: bool,
        flags: Flags,
        element_len: Option<u64>,
    ) -> Record {
        let index = self.index;
        self.index = self.index.saturating_add(1);
        let chunk = if index == 0 && last {
            None
        } else {
            let mut c = Chunk::new(index, last);
            c.continues = flags.continues;
            c.key_continues = flags.key_continues;
            c.element_len = element_len;
            if index == 0 {
                c.key_len = (self.key.len() > self.target).then_some(self.key.len() as u64);
                c.string_len = self.string_len;
            }
            Some(c)
        };
        Record {
            db: self.db,
            key,
            expires_at_ms: self.expires_at_ms,
            value,
            chunk,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Flags {
    continues: bool,
    key_continues: bool,
}

impl Flags {
    const NONE: Flags = Flags {
        continues: false,
        key_continues: false,
    };
    const CONTINUES: Flags = Flags {
        continues: true,
        key_continues: false,
    };
    const KEY_CONTINUES: Flags = Flags {
        continues: false,
        key_continues: true,
    };
}

/// The record being filled.
#[derive(Debug)]
struct Open<E> {
    key: Bytes,
    run: Vec<E>,
    /// Encoded size of `run`.
    size: usize,
    /// What `run` may take: the target minus the key bytes carried.
    budget: usize,
}

impl<E> Open<E> {
    fn is_empty(&self) -> bool {
        self.key.is_empty() && self.run.is_empty()
    }
}

/// Packs the elements of one collection entry into chunk records; shared by
/// [`Chunks`] and [`EntryChunker`] so that both give the same records.
///
/// Elements come in through [`add`](Self::add); records go out through
/// [`pop`](Self::pop) once they are known not to be the last, and through
/// [`finish`](Self::finish) for the last one.
#[derive(Debug)]
struct Packer<E> {
    head: Head,
    open: Option<Open<E>>,
    /// An element being split, and how many of its bytes are placed.
    carry: Option<(E, usize)>,
    /// Records closed and not yet handed out, in order.
    ready: VecDeque<Record>,
}

impl<E: ChunkElement> Packer<E> {
    fn new(head: Head) -> Self {
        Packer {
            head,
            open: None,
            carry: None,
            ready: VecDeque::new(),
        }
    }

    /// The record being filled, opening one (after any pure key fragments)
    /// if there is none.
    fn open(&mut self) -> &mut Open<E> {
        let head = &mut self.head;
        let ready = &mut self.ready;
        self.open.get_or_insert_with(|| {
            while let Some(r) = head.key_fragment() {
                ready.push_back(r);
            }
            let key = head.key_rest();
            let budget = head.target.saturating_sub(key.len());
            Open {
                key,
                run: Vec::new(),
                size: 0,
                budget,
            }
        })
    }

    /// Closes the record being filled (not the entry's last).
    fn close(&mut self, flags: Flags, element_len: Option<u64>) {
        if let Some(open) = self.open.take() {
            let value = E::into_value(open.run, self.head.kind);
            let record = self.head.record(open.key, value, false, flags, element_len);
            self.ready.push_back(record);
        }
    }

    /// The next record known not to be the entry's last: a closed record, a
    /// key fragment, or the next fragment of an element being split.
    fn pop(&mut self) -> Option<Record> {
        if let Some(r) = self.ready.pop_front() {
            return Some(r);
        }
        if let Some(r) = self.head.key_fragment() {
            return Some(r);
        }
        self.continue_split();
        self.ready.pop_front()
    }

    /// Places the next part of the element being split: the rest, into a
    /// fresh record, when it fits one; otherwise one more full fragment.
    fn continue_split(&mut self) {
        let Some((element, placed)) = self.carry.take() else {
            return;
        };
        let len = element.data_len();
        let rest = element.fragment(placed, len);
        let open = self.open();
        let size = rest.encoded_size();
        let room = open.budget.saturating_sub(open.size);
        let take = E::fit(room).max(1);
        if size <= room || take >= len - placed {
            open.size += size;
            open.run.push(rest);
            return;
        }
        open.run.push(element.fragment(placed, placed + take));
        self.carry = Some((element, placed + take));
        self.close(Flags::CONTINUES, None);
    }

    /// Adds the next element.
    fn add(&mut self, element: E) {
        // Callers drain `pop` first; stay correct if one does not.
        while self.carry.is_some() {
            self.continue_split();
        }
        let size = element.encoded_size();
        let target = self.head.target;
        let max = self.head.max_elements;
        let open = self.open();
        if open.run.len() < max && open.size + size <= open.budget {
            open.size += size;
            open.run.push(element);
            return;
        }
        // An element that fits a record of its own is never split: it
        // starts the next record. A larger one is split starting here if
        // a byte of it fits.
        let room = open.budget.saturating_sub(open.size);
        let split_here = open.run.len() < max && size > target && E::fit(room) > 0;
        if !split_here && !open.is_empty() {
            self.close(Flags::NONE, None);
            let open = self.open();
            if size <= open.budget {
                open.size += size;
                open.run.push(element);
                return;
            }
        }
        self.start_split(element);
    }

    /// Places the first fragment of an element too large for the room left.
    fn start_split(&mut self, element: E) {
        let len = element.data_len();
        let open = self.open();
        let room = open.budget.saturating_sub(open.size);
        let mut take = E::fit(room);
        if take == 0 && open.is_empty() {
            // A target smaller than an element's framing: progress anyway.
            take = 1;
        }
        if take >= len {
            // Only when forced progress covers the whole (tiny) element.
            open.size += element.encoded_size();
            open.run.push(element);
            return;
        }
        open.run.push(element.fragment(0, take));
        self.carry = Some((element, take));
        self.close(Flags::CONTINUES, Some(len as u64));
    }

    /// The entry's last record (the whole entry when nothing was closed
    /// before). Call after `pop` returned `None`.
    fn finish(&mut self) -> Record {
        let open = self.open.take();
        let (key, run) = match open {
            Some(open) => (open.key, open.run),
            None => (self.head.key_rest(), Vec::new()),
        };
        let value = E::into_value(run, self.head.kind);
        self.head.record(key, value, true, Flags::NONE, None)
    }
}

/// Builds the chunk records of one collection entry from elements pushed
/// one at a time; holds at most one chunk's elements (and an element being
/// split). Made by [`Chunker::list`], [`Chunker::set`], [`Chunker::hash`]
/// and [`Chunker::sorted_set`]. The records are the same as
/// [`Chunker::split`] gives for the whole entry.
#[derive(Debug)]
pub struct EntryChunker<E> {
    packer: Packer<E>,
}

impl<E: ChunkElement> EntryChunker<E> {
    fn new(head: Head) -> Self {
        EntryChunker {
            packer: Packer::new(head),
        }
    }

    /// Adds the next element; returns the chunk records this completed, in
    /// order (none while a chunk is filling; several when a large key or a
    /// large element fills chunks of its own). None of them is the last.
    pub fn push(&mut self, element: E) -> Vec<Record> {
        let mut out = Vec::new();
        self.packer.add(element);
        while let Some(r) = self.packer.pop() {
            out.push(r);
        }
        out
    }

    /// Ends the entry: the records still due, the last one last; a single
    /// record with `chunk: None` (the whole entry) when it never filled a
    /// chunk.
    pub fn finish(mut self) -> Vec<Record> {
        let mut out = Vec::new();
        while let Some(r) = self.packer.pop() {
            out.push(r);
        }
        out.push(self.packer.finish());
        out
    }
}

/// Splits `record` with the default [`Chunker`].
pub fn split_entry(record: Record) -> Chunks {
    Chunker::new().split(record)
}

fn value_size(value: &Value) -> usize {
    use sealed::Sealed;
    match value {
        Value::String(b) | Value::Payload(b) => b.len(),
        Value::List(v) | Value::Set(v) | Value::Stream(v) => {
            v.iter().map(Sealed::encoded_size).sum()
        }
        Value::Hash(v) => v.iter().map(Sealed::encoded_size).sum(),
        Value::SortedSet(v) => v.iter().map(Sealed::encoded_size).sum(),
    }
}

type Source<T> = std::vec::IntoIter<T>;

#[derive(Debug)]
enum Rest {
    Whole(Option<Record>),
    String { head: Head, rest: Bytes, done: bool },
    List(Packer<Bytes>, Source<Bytes>),
    Set(Packer<Bytes>, Source<Bytes>),
    Hash(Packer<(Bytes, Bytes)>, Source<(Bytes, Bytes)>),
    SortedSet(Packer<(Bytes, f64)>, Source<(Bytes, f64)>),
}

/// The chunk records of one entry, in order; see [`Chunker`].
#[derive(Debug)]
pub struct Chunks(Rest);

/// The next record of a collection: pulls elements into the packer until a
/// record is complete.
fn next_packed<E: ChunkElement>(packer: &mut Packer<E>, source: &mut Source<E>) -> Record {
    loop {
        if let Some(r) = packer.pop() {
            return r;
        }
        match source.next() {
            Some(element) => packer.add(element),
            None => return packer.finish(),
        }
    }
}

impl Iterator for Chunks {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let record = match &mut self.0 {
            Rest::Whole(record) => return record.take(),
            Rest::String { head, rest, done } => {
                if *done {
                    return None;
                }
                if let Some(r) = head.key_fragment() {
                    return Some(r);
                }
                let key = head.key_rest();
                let take = head.target.saturating_sub(key.len()).min(rest.len());
                let part = rest.split_to(take);
                *done = rest.is_empty();
                return Some(head.record(key, Value::String(part), *done, Flags::NONE, None));
            }
            Rest::List(p, s) | Rest::Set(p, s) => next_packed(p, s),
            Rest::Hash(p, s) => next_packed(p, s),
            Rest::SortedSet(p, s) => next_packed(p, s),
        };
        let last = record.chunk.is_none_or(|c| c.last);
        if last {
            // Makes the next call see an exhausted entry.
            self.0 = Rest::Whole(None);
        }
        Some(record)
    }
}

/// Rebuilds whole entries from the records of a snapshot, in order.
///
/// Feed every record to [`push`](Self::push): a whole record comes straight
/// back; chunk records are collected until the last one, and then the whole
/// entry comes back with `chunk: None` and its whole key. Call
/// [`finish`](Self::finish) after the last record to detect an entry left
/// incomplete. Reads both format versions: version 1's key in every chunk
/// must then equal the entry's key.
///
/// Memory: the entry being assembled, plus the chunk being added. A string,
/// a split key and a split element are each built in one buffer, allocated
/// once from the length hint of their first chunk (up to
/// [`prealloc_limit`](Self::prealloc_limit)) and handed out as [`Bytes`]
/// without a copy; every hint is checked against the bytes that arrive.
#[derive(Debug)]
pub struct Assembler {
    pending: Option<Partial>,
    pushed: u64,
    prealloc_limit: usize,
    /// [`push_part`](Self::push_part) has handed out part of the entry in
    /// progress.
    emitted: bool,
}

/// A piece of an entry, as [`Assembler::push_part`] hands them out.
///
/// `record` has the entry's db, whole key and expiry, `chunk: None`, and a
/// value of the entry's type holding the elements completed since the
/// previous part (an element split across chunks comes whole, in the part
/// of the chunk where it ends). A string comes whole, in one part.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// The next piece of the entry.
    pub record: Record,
    /// The entry's first part: a reader starts a new value.
    pub first: bool,
    /// The entry's last part: the value is complete.
    pub last: bool,
}

impl Default for Assembler {
    fn default() -> Self {
        Assembler::new()
    }
}

#[derive(Debug)]
struct Partial {
    db: u32,
    expires_at_ms: Option<i64>,
    kind: ValueKind,
    /// Index of the most recent chunk.
    index: u32,
    key: KeyAcc,
    /// The element being joined: the previous chunk's last element
    /// continues.
    split: Option<SplitAcc>,
    value: Acc,
}

#[derive(Debug)]
enum KeyAcc {
    /// Fragments so far; the last chunk had `key_continues`.
    Partial(Growing),
    Done(Bytes),
}

#[derive(Debug)]
enum Acc {
    String(Growing),
    List(Vec<Bytes>),
    Set(Vec<Bytes>),
    Stream(Vec<Bytes>),
    Hash(Vec<(Bytes, Bytes)>),
    SortedSet(Vec<(Bytes, f64)>),
}

impl Growing {
    fn new(hint: Option<u64>, limit: usize) -> Self {
        let mut buf = Vec::new();
        if let Some(hint) = hint {
            let want = usize::try_from(hint).unwrap_or(usize::MAX).min(limit);
            // When this fails the buffer grows as bytes arrive instead.
            let _ = buf.try_reserve_exact(want);
        }
        Growing {
            buf,
            expected: hint,
        }
    }

    fn extend(&mut self, bytes: &[u8], index: u32, what: &'static str) -> Result<(), ChunkError> {
        let found = (self.buf.len() as u64).saturating_add(bytes.len() as u64);
        if let Some(expected) = self.expected
            && found > expected
        {
            return Err(ChunkError::LengthMismatch {
                index,
                what,
                expected,
                found,
            });
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    fn finish(self, index: u32, what: &'static str) -> Result<Bytes, ChunkError> {
        let found = self.buf.len() as u64;
        match self.expected {
            Some(expected) if expected != found => Err(ChunkError::LengthMismatch {
                index,
                what,
                expected,
                found,
            }),
            // No copy: `Bytes` takes over the vector's allocation.
            _ => Ok(Bytes::from(self.buf)),
        }
    }
}

/// Checks the rules a chunk must follow on its own.
fn check_alone(chunk: &Chunk, value: &Value) -> Result<(), ChunkError> {
    let index = chunk.index;
    let kind = value.kind();
    let continuation = |reason| Err(ChunkError::Continuation { index, reason });
    let key_fragment = |reason| Err(ChunkError::KeyFragment { index, reason });
    if chunk.continues {
        if chunk.last {
            return continuation("the last chunk's element cannot continue");
        }
        if kind == ValueKind::String {
            return continuation("a string chunk cannot continue an element");
        }
        if value.is_empty() {
            return continuation("a chunk without elements cannot continue one");
        }
    }
    if chunk.key_continues {
        if chunk.last {
            return key_fragment("the last chunk's key cannot continue");
        }
        if !value.is_empty() {
            return key_fragment("a chunk whose key continues holds value data");
        }
    }
    let misplaced = |field| Err(ChunkError::Misplaced { index, field });
    if chunk.key_len.is_some() && (index != 0 || !chunk.key_continues) {
        return misplaced("key_len");
    }
    if chunk.string_len.is_some() && (index != 0 || kind != ValueKind::String) {
        return misplaced("string_len");
    }
    if chunk.element_len.is_some() && !chunk.continues {
        return misplaced("element_len");
    }
    Ok(())
}

impl Assembler {
    /// An assembler with no entry in progress, allocating up to
    /// [`DEFAULT_PREALLOC_LIMIT`] bytes up front from one length hint.
    pub fn new() -> Self {
        Assembler {
            pending: None,
            pushed: 0,
            prealloc_limit: DEFAULT_PREALLOC_LIMIT,
            emitted: false,
        }
    }

    /// Sets the most bytes one length hint may make the assembler allocate
    /// before the bytes arrive. A hint is data from the snapshot: a damaged
    /// or hostile one may claim any length, and is only found wrong once
    /// its item ends.
    #[must_use]
    pub fn prealloc_limit(mut self, bytes: usize) -> Self {
        self.prealloc_limit = bytes;
        self
    }

    /// Takes the next record; returns a whole entry when one is complete.
    ///
    /// # Errors
    ///
    /// [`Error::Chunk`] when the record does not continue the sequence:
    /// out of order, duplicated, missing (a new entry began before the last
    /// chunk), a chunk of a different db, expiry or type, a key differing
    /// from the entry's, a misused continuation or key fragment, a length
    /// hint that disagrees with the bytes, sorted-set fragments with
    /// different scores. After an error the entry in progress is dropped.
    pub fn push(&mut self, record: Record) -> Result<Option<Record>> {
        self.pushed += 1;
        self.step(record).map_err(|kind| {
            self.pending = None;
            self.error(kind)
        })
    }

    /// Takes the next record like [`push`](Self::push), but hands a
    /// chunked collection out as it arrives: each chunk's completed
    /// elements come back as a [`Part`] at once, so a reader can build the
    /// value incrementally and never hold it twice (the elements and the
    /// value built from them). A whole record is one part, first and last.
    /// Use either `push` or `push_part` for one stream of records.
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push). After an error the entry in progress is
    /// dropped (and its parts already handed out belong to no entry).
    pub fn push_part(&mut self, record: Record) -> Result<Option<Part>> {
        let chunked = record.chunk.is_some();
        let whole = match self.push(record) {
            Ok(whole) => whole,
            Err(e) => {
                self.emitted = false;
                return Err(e);
            }
        };
        if let Some(record) = whole {
            let first = !(chunked && self.emitted);
            self.emitted = false;
            return Ok(Some(Part {
                record,
                first,
                last: true,
            }));
        }
        let Some(p) = self.pending.as_mut() else {
            return Ok(None);
        };
        let KeyAcc::Done(key) = &p.key else {
            // The elements wait until the key is whole.
            return Ok(None);
        };
        let value = match &mut p.value {
            Acc::String(_) => return Ok(None),
            Acc::List(v) => Value::List(std::mem::take(v)),
            Acc::Set(v) => Value::Set(std::mem::take(v)),
            Acc::Stream(v) => Value::Stream(std::mem::take(v)),
            Acc::Hash(v) => Value::Hash(std::mem::take(v)),
            Acc::SortedSet(v) => Value::SortedSet(std::mem::take(v)),
        };
        let first = !self.emitted;
        if !first && value.is_empty() {
            return Ok(None);
        }
        self.emitted = true;
        Ok(Some(Part {
            record: Record {
                db: p.db,
                key: key.clone(),
                expires_at_ms: p.expires_at_ms,
                value,
                chunk: None,
            },
            first,
            last: false,
        }))
    }

    /// True when no entry is waiting for more chunks.
    pub fn is_idle(&self) -> bool {
        self.pending.is_none()
    }

    /// Ends the input.
    ///
    /// # Errors
    ///
    /// [`ChunkError::Missing`] when an entry is waiting for more chunks.
    pub fn finish(&mut self) -> Result<()> {
        self.emitted = false;
        match self.pending.take() {
            Some(p) => Err(self.error(ChunkError::Missing {
                last_index: p.index,
            })),
            None => Ok(()),
        }
    }

    fn error(&self, kind: ChunkError) -> Error {
        Error::Chunk {
            kind,
            record: Some(self.pushed.saturating_sub(1)),
        }
    }

    fn step(&mut self, record: Record) -> Result<Option<Record>, ChunkError> {
        let Some(chunk) = record.chunk else {
            if let Some(p) = &self.pending {
                return Err(ChunkError::Missing {
                    last_index: p.index,
                });
            }
            return Ok(Some(record));
        };
        check_alone(&chunk, &record.value)?;
        match self.pending.take() {
            None => self.first(record, chunk),
            Some(p) => self.next(p, record, chunk),
        }
    }

    fn first(&mut self, record: Record, chunk: Chunk) -> Result<Option<Record>, ChunkError> {
        if chunk.index != 0 {
            return Err(ChunkError::OutOfOrder {
                expected: 0,
                found: chunk.index,
            });
        }
        if chunk.last {
            // A single-chunk entry (`check_alone` excluded continuations).
            if let (Some(expected), Value::String(b)) = (chunk.string_len, &record.value)
                && expected != b.len() as u64
            {
                return Err(ChunkError::LengthMismatch {
                    index: 0,
                    what: "string",
                    expected,
                    found: b.len() as u64,
                });
            }
            return Ok(Some(Record {
                chunk: None,
                ..record
            }));
        }
        let limit = self.prealloc_limit;
        let key = if chunk.key_continues {
            let mut g = Growing::new(chunk.key_len, limit);
            g.extend(&record.key, 0, "key")?;
            KeyAcc::Partial(g)
        } else {
            KeyAcc::Done(record.key)
        };
        let value = match record.value.kind() {
            ValueKind::String => Acc::String(Growing::new(chunk.string_len, limit)),
            ValueKind::List => Acc::List(Vec::new()),
            ValueKind::Stream => Acc::Stream(Vec::new()),
            ValueKind::Set => Acc::Set(Vec::new()),
            ValueKind::Hash => Acc::Hash(Vec::new()),
            ValueKind::SortedSet => Acc::SortedSet(Vec::new()),
            ValueKind::Payload => {
                return Err(ChunkError::Mismatch {
                    index: chunk.index,
                    field: "payloads are never chunked",
                });
            }
        };
        let mut p = Partial {
            db: record.db,
            expires_at_ms: record.expires_at_ms,
            kind: record.value.kind(),
            index: 0,
            key,
            split: None,
            value,
        };
        absorb(&mut p, record.value, &chunk, limit)?;
        self.pending = Some(p);
        Ok(None)
    }

    fn next(
        &mut self,
        mut p: Partial,
        record: Record,
        chunk: Chunk,
    ) -> Result<Option<Record>, ChunkError> {
        let index = chunk.index;
        let expected = p.index.saturating_add(1);
        if index != expected {
            let repeats_first = index == 0
                && record.db == p.db
                && matches!(&p.key, KeyAcc::Done(k) if *k == record.key);
            return Err(if index > expected {
                ChunkError::OutOfOrder {
                    expected,
                    found: index,
                }
            } else if index > 0 || repeats_first {
                ChunkError::Duplicate { index }
            } else {
                // Chunk 0 of another entry: this one ended early.
                ChunkError::Missing {
                    last_index: p.index,
                }
            });
        }
        let mismatch = |field| Err(ChunkError::Mismatch { index, field });
        if p.db != record.db {
            return mismatch("db");
        }
        if p.expires_at_ms != record.expires_at_ms {
            return mismatch("expires_at_ms");
        }
        if p.kind != record.value.kind() {
            return mismatch("value type");
        }
        p.key = match p.key {
            KeyAcc::Partial(mut g) => {
                g.extend(&record.key, index, "key")?;
                if chunk.key_continues {
                    KeyAcc::Partial(g)
                } else {
                    KeyAcc::Done(g.finish(index, "key")?)
                }
            }
            KeyAcc::Done(key) => {
                if chunk.key_continues {
                    return Err(ChunkError::KeyFragment {
                        index,
                        reason: "a key fragment after the key was complete",
                    });
                }
                // Format version 1 repeats the key in every chunk.
                if !record.key.is_empty() && record.key != key {
                    return mismatch("key");
                }
                KeyAcc::Done(key)
            }
        };
        absorb(&mut p, record.value, &chunk, self.prealloc_limit)?;
        p.index = index;
        if !chunk.last {
            self.pending = Some(p);
            return Ok(None);
        }
        // `check_alone` rules out `continues` and `key_continues` here, so
        // the key is complete and no element is left open.
        let key = match p.key {
            KeyAcc::Done(key) => key,
            KeyAcc::Partial(g) => g.finish(index, "key")?,
        };
        let value = match p.value {
            Acc::String(g) => Value::String(g.finish(index, "string")?),
            Acc::List(v) => Value::List(v),
            Acc::Stream(v) => Value::Stream(v),
            Acc::Set(v) => Value::Set(v),
            Acc::Hash(v) => Value::Hash(v),
            Acc::SortedSet(v) => Value::SortedSet(v),
        };
        Ok(Some(Record {
            db: p.db,
            key,
            expires_at_ms: p.expires_at_ms,
            value,
            chunk: None,
        }))
    }
}

/// Adds one chunk's value to the entry: joins its first element to the
/// element left open by the previous chunk, and leaves its last element open
/// when it continues.
fn absorb(p: &mut Partial, value: Value, chunk: &Chunk, limit: usize) -> Result<(), ChunkError> {
    match (&mut p.value, value) {
        (Acc::String(g), Value::String(b)) => g.extend(&b, chunk.index, "string"),
        (Acc::List(dst), Value::List(v))
        | (Acc::Set(dst), Value::Set(v))
        | (Acc::Stream(dst), Value::Stream(v)) => absorb_run(dst, &mut p.split, v, chunk, limit),
        (Acc::Hash(dst), Value::Hash(v)) => absorb_run(dst, &mut p.split, v, chunk, limit),
        (Acc::SortedSet(dst), Value::SortedSet(v)) => {
            absorb_run(dst, &mut p.split, v, chunk, limit)
        }
        // The caller compared the kinds.
        _ => Err(ChunkError::Mismatch {
            index: chunk.index,
            field: "value type",
        }),
    }
}

fn absorb_run<E: ChunkElement>(
    dst: &mut Vec<E>,
    split: &mut Option<SplitAcc>,
    run: Vec<E>,
    chunk: &Chunk,
    limit: usize,
) -> Result<(), ChunkError> {
    let index = chunk.index;
    let n = run.len();
    let mut run = run.into_iter();
    let mut whole = n;
    if let Some(mut acc) = split.take() {
        let Some(first) = run.next() else {
            return Err(ChunkError::Continuation {
                index,
                reason: "the continued element is missing",
            });
        };
        first.join(&mut acc, index)?;
        whole -= 1;
        if n == 1 && chunk.continues {
            // A middle fragment: the element goes on in the next chunk.
            if chunk.element_len.is_some() {
                return Err(ChunkError::Misplaced {
                    index,
                    field: "element_len",
                });
            }
            *split = Some(acc);
            return Ok(());
        }
        dst.push(E::assemble(acc, index)?);
    }
    if chunk.continues {
        whole = whole.saturating_sub(1);
    }
    dst.reserve(whole);
    dst.extend(run.by_ref().take(whole));
    if let Some(last) = run.next() {
        let mut acc = SplitAcc {
            bytes: Growing::new(chunk.element_len, limit),
            field_len: 0,
            in_value: false,
            score: None,
        };
        last.join(&mut acc, index)?;
        *split = Some(acc);
    }
    Ok(())
}

fn empty(kind: ValueKind) -> Value {
    match kind {
        ValueKind::String => Value::String(Bytes::new()),
        ValueKind::Payload => Value::Payload(Bytes::new()),
        ValueKind::List => Value::List(Vec::new()),
        ValueKind::Stream => Value::Stream(Vec::new()),
        ValueKind::Hash => Value::Hash(Vec::new()),
        ValueKind::Set => Value::Set(Vec::new()),
        ValueKind::SortedSet => Value::SortedSet(Vec::new()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    /// Where the buffer being filled lives and how much it can hold:
    /// the string's, else the split element's, else the split key's.
    fn buffer(a: &Assembler) -> (*const u8, usize) {
        let p = a.pending.as_ref().unwrap();
        let g = match (&p.value, &p.split, &p.key) {
            (Acc::String(g), ..) => g,
            (_, Some(s), _) => &s.bytes,
            (_, None, KeyAcc::Partial(g)) => g,
            _ => panic!("nothing is being joined"),
        };
        (g.buf.as_ptr(), g.buf.capacity())
    }

    /// A hinted item is built in one allocation of exactly its size, which
    /// never moves and becomes the assembled entry's `Bytes` as it is.
    fn allocated_once(record: Record, chunker: Chunker, total: usize) -> Bytes {
        let chunks: Vec<Record> = chunker.split(record).collect();
        assert!(chunks.len() > 3);
        let mut a = Assembler::new();
        let mut first = None;
        let mut out = None;
        for c in chunks {
            if let Some(whole) = a.push(c).unwrap() {
                out = Some(whole);
                break;
            }
            if a.pending.as_ref().is_some_and(|p| {
                p.split.is_some()
                    || matches!(p.value, Acc::String(_))
                    || matches!(p.key, KeyAcc::Partial(_))
            }) {
                let now = buffer(&a);
                assert_eq!(now.1, total, "capacity is the hinted length");
                assert_eq!(*first.get_or_insert(now), now, "the buffer moved");
            }
        }
        let (ptr, _) = first.unwrap();
        let out = out.unwrap();
        let joined = match out.value {
            Value::String(b) if b.len() == total => b,
            Value::List(v) => v.into_iter().find(|b| b.len() == total).unwrap(),
            _ => out.key,
        };
        assert_eq!(joined.as_ptr(), ptr, "handed over without a copy");
        joined
    }

    #[test]
    fn hinted_items_are_allocated_once_and_never_copied() {
        let big = Bytes::from((0..10_000_003u32).map(|i| i as u8).collect::<Vec<u8>>());
        let joined = allocated_once(
            Record::new(0, "s", Value::String(big.clone())),
            Chunker::new(),
            big.len(),
        );
        assert_eq!(joined, big);
        let joined = allocated_once(
            Record::new(0, "l", Value::List(vec![Bytes::from("x"), big.clone()])),
            Chunker::new(),
            big.len(),
        );
        assert_eq!(joined, big);
        let key = big.slice(..5000);
        let joined = allocated_once(
            Record::new(0, key.clone(), Value::Set(vec![])),
            Chunker::new().target_bytes(1000),
            key.len(),
        );
        assert_eq!(joined, key);
    }

    #[test]
    fn a_hint_beyond_the_limit_allocates_only_the_limit() {
        let g = Growing::new(Some(u64::MAX), 1 << 10);
        assert_eq!(g.buf.capacity(), 1 << 10);
        let g = Growing::new(Some(3), 1 << 10);
        assert_eq!(g.buf.capacity(), 3);
        let g = Growing::new(None, 1 << 10);
        assert_eq!(g.buf.capacity(), 0);
    }
}
