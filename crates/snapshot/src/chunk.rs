//! Splitting large entries into bounded records and putting them back together.

use bytes::{Bytes, BytesMut};

use crate::error::{ChunkError, Error, Result};
use crate::model::{Chunk, Limits, Record, Value, ValueKind};

/// Default target size of one chunk's value: 1 MiB.
pub const DEFAULT_CHUNK_BYTES: usize = 1 << 20;

/// Splits whole entries into chunk records of bounded size.
///
/// A record whose value fits is passed through unchanged (`chunk: None`).
/// Otherwise strings are cut into byte ranges of at most `target_bytes`
/// (zero-copy slices of the original [`Bytes`]), and collections into runs
/// of consecutive elements whose encoded size stays under `target_bytes`
/// (a single element larger than that gets a chunk of its own) and whose
/// count stays under [`Limits::max_elements`]. Chunks are numbered from 0 and
/// the final one has `last: true`.
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

    /// Sets the target size of one chunk's value in bytes (at least 1).
    /// Default [`DEFAULT_CHUNK_BYTES`].
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
        // `max_elements` bounds collections only: a string is one element.
        let fits = record.chunk.is_some()
            || match &record.value {
                Value::String(b) => b.len() <= self.target_bytes,
                // One element never splits, however large.
                v => {
                    v.len() <= 1
                        || (value_size(v) <= self.target_bytes && v.len() <= self.max_elements)
                }
            };
        let Record {
            db,
            key,
            expires_at_ms,
            value,
            chunk,
        } = record;
        let rest = if fits {
            Rest::Whole(Some(Record {
                db,
                key: key.clone(),
                expires_at_ms,
                value,
                chunk,
            }))
        } else {
            match value {
                Value::String(b) => Rest::String(b),
                Value::List(v) => Rest::List(v.into_iter().peekable()),
                Value::Set(v) => Rest::Set(v.into_iter().peekable()),
                Value::Hash(v) => Rest::Hash(v.into_iter().peekable()),
                Value::SortedSet(v) => Rest::SortedSet(v.into_iter().peekable()),
            }
        };
        Chunks {
            db,
            key,
            expires_at_ms,
            next_index: 0,
            config: *self,
            rest,
        }
    }
}

impl Chunker {
    /// Starts a list entry whose items are pushed one at a time, for writers
    /// that walk a large collection without first collecting it.
    pub fn list(&self, db: u32, key: Bytes, expires_at_ms: Option<i64>) -> EntryChunker<Bytes> {
        EntryChunker::new(*self, db, key, expires_at_ms, ValueKind::List)
    }

    /// Starts a set entry; see [`list`](Self::list).
    pub fn set(&self, db: u32, key: Bytes, expires_at_ms: Option<i64>) -> EntryChunker<Bytes> {
        EntryChunker::new(*self, db, key, expires_at_ms, ValueKind::Set)
    }

    /// Starts a hash entry of (field, value) pairs; see [`list`](Self::list).
    pub fn hash(
        &self,
        db: u32,
        key: Bytes,
        expires_at_ms: Option<i64>,
    ) -> EntryChunker<(Bytes, Bytes)> {
        EntryChunker::new(*self, db, key, expires_at_ms, ValueKind::Hash)
    }

    /// Starts a sorted-set entry of (member, score) pairs; see
    /// [`list`](Self::list).
    pub fn sorted_set(
        &self,
        db: u32,
        key: Bytes,
        expires_at_ms: Option<i64>,
    ) -> EntryChunker<(Bytes, f64)> {
        EntryChunker::new(*self, db, key, expires_at_ms, ValueKind::SortedSet)
    }
}

mod sealed {
    pub trait Sealed: Sized {
        fn encoded_size(&self) -> usize;
        fn into_value(run: Vec<Self>, kind: super::ValueKind) -> super::Value;
    }
}

/// An element of a collection that [`EntryChunker`] accepts: [`Bytes`]
/// (list items, set members), `(Bytes, Bytes)` (hash pairs) or
/// `(Bytes, f64)` (sorted-set pairs).
pub trait ChunkElement: sealed::Sealed {}

impl ChunkElement for Bytes {}
impl ChunkElement for (Bytes, Bytes) {}
impl ChunkElement for (Bytes, f64) {}

impl sealed::Sealed for Bytes {
    fn encoded_size(&self) -> usize {
        field_size(self.len())
    }
    fn into_value(run: Vec<Self>, kind: ValueKind) -> Value {
        match kind {
            ValueKind::Set => Value::Set(run),
            _ => Value::List(run),
        }
    }
}

impl sealed::Sealed for (Bytes, Bytes) {
    fn encoded_size(&self) -> usize {
        field_size(self.0.len()) + field_size(self.1.len())
    }
    fn into_value(run: Vec<Self>, _: ValueKind) -> Value {
        Value::Hash(run)
    }
}

impl sealed::Sealed for (Bytes, f64) {
    fn encoded_size(&self) -> usize {
        field_size(self.0.len()) + 8
    }
    fn into_value(run: Vec<Self>, _: ValueKind) -> Value {
        Value::SortedSet(run)
    }
}

/// Builds the chunk records of one collection entry from elements pushed
/// one at a time; at most one chunk's elements are held. Made by
/// [`Chunker::list`], [`Chunker::set`], [`Chunker::hash`] and
/// [`Chunker::sorted_set`]. The records are the same as
/// [`Chunker::split`] gives for the whole entry.
#[derive(Debug)]
pub struct EntryChunker<E> {
    config: Chunker,
    db: u32,
    key: Bytes,
    expires_at_ms: Option<i64>,
    kind: ValueKind,
    run: Vec<E>,
    run_bytes: usize,
    next_index: u32,
}

impl<E: ChunkElement> EntryChunker<E> {
    fn new(
        config: Chunker,
        db: u32,
        key: Bytes,
        expires_at_ms: Option<i64>,
        kind: ValueKind,
    ) -> Self {
        EntryChunker {
            config,
            db,
            key,
            expires_at_ms,
            kind,
            run: Vec::new(),
            run_bytes: 0,
            next_index: 0,
        }
    }

    /// Adds the next element; returns a chunk record when the elements
    /// before this one filled a chunk. (That chunk is known not to be the
    /// last, since this element follows it.)
    pub fn push(&mut self, element: E) -> Option<Record> {
        let size = element.encoded_size();
        let full = !self.run.is_empty()
            && (self.run_bytes + size > self.config.target_bytes
                || self.run.len() >= self.config.max_elements);
        let out = full.then(|| {
            let run = std::mem::take(&mut self.run);
            self.run_bytes = 0;
            self.record(run, Some(false))
        });
        self.run_bytes += size;
        self.run.push(element);
        out
    }

    /// Ends the entry: the last chunk, or the whole entry as one record
    /// (`chunk: None`) when it never filled a chunk.
    pub fn finish(mut self) -> Record {
        let run = std::mem::take(&mut self.run);
        let last = if self.next_index == 0 {
            None
        } else {
            Some(true)
        };
        self.record(run, last)
    }

    fn record(&mut self, run: Vec<E>, last: Option<bool>) -> Record {
        let chunk = last.map(|last| Chunk {
            index: self.next_index,
            last,
        });
        self.next_index = self.next_index.saturating_add(1);
        Record {
            db: self.db,
            key: self.key.clone(),
            expires_at_ms: self.expires_at_ms,
            value: E::into_value(run, self.kind),
            chunk,
        }
    }
}

/// Splits `record` with the default [`Chunker`].
pub fn split_entry(record: Record) -> Chunks {
    Chunker::new().split(record)
}

fn field_size(len: usize) -> usize {
    // key byte + length varint + data
    1 + (64 - (len as u64 | 1).leading_zeros() as usize).div_ceil(7) + len
}

fn value_size(value: &Value) -> usize {
    match value {
        Value::String(b) => b.len(),
        Value::List(v) | Value::Set(v) => v.iter().map(|b| field_size(b.len())).sum(),
        Value::Hash(v) => v
            .iter()
            .map(|(f, x)| field_size(f.len()) + field_size(x.len()))
            .sum(),
        Value::SortedSet(v) => v.iter().map(|(m, _)| field_size(m.len()) + 8).sum(),
    }
}

type Run<T> = std::iter::Peekable<std::vec::IntoIter<T>>;

#[derive(Debug)]
enum Rest {
    Whole(Option<Record>),
    String(Bytes),
    List(Run<Bytes>),
    Set(Run<Bytes>),
    Hash(Run<(Bytes, Bytes)>),
    SortedSet(Run<(Bytes, f64)>),
}

/// The chunk records of one entry, in order; see [`Chunker`].
#[derive(Debug)]
pub struct Chunks {
    db: u32,
    key: Bytes,
    expires_at_ms: Option<i64>,
    next_index: u32,
    config: Chunker,
    rest: Rest,
}

fn take_run<T>(run: &mut Run<T>, cfg: &Chunker, size: impl Fn(&T) -> usize) -> Vec<T> {
    let mut out = Vec::new();
    let mut bytes = 0usize;
    while let Some(next) = run.peek() {
        let s = size(next);
        if !out.is_empty() && (bytes + s > cfg.target_bytes || out.len() >= cfg.max_elements) {
            break;
        }
        bytes += s;
        if let Some(item) = run.next() {
            out.push(item);
        }
    }
    out
}

impl Iterator for Chunks {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let cfg = self.config;
        let (value, last) = match &mut self.rest {
            Rest::Whole(record) => return record.take(),
            Rest::String(b) => {
                if b.is_empty() && self.next_index > 0 {
                    return None;
                }
                let part = b.split_to(cfg.target_bytes.min(b.len()));
                (Value::String(part), b.is_empty())
            }
            Rest::List(run) => {
                let v = take_run(run, &cfg, |b| field_size(b.len()));
                if v.is_empty() && self.next_index > 0 {
                    return None;
                }
                (Value::List(v), run.peek().is_none())
            }
            Rest::Set(run) => {
                let v = take_run(run, &cfg, |b| field_size(b.len()));
                if v.is_empty() && self.next_index > 0 {
                    return None;
                }
                (Value::Set(v), run.peek().is_none())
            }
            Rest::Hash(run) => {
                let v = take_run(run, &cfg, |(f, x)| {
                    field_size(f.len()) + field_size(x.len())
                });
                if v.is_empty() && self.next_index > 0 {
                    return None;
                }
                (Value::Hash(v), run.peek().is_none())
            }
            Rest::SortedSet(run) => {
                let v = take_run(run, &cfg, |(m, _)| field_size(m.len()) + 8);
                if v.is_empty() && self.next_index > 0 {
                    return None;
                }
                (Value::SortedSet(v), run.peek().is_none())
            }
        };
        let index = self.next_index;
        if last {
            // Makes the next call see an exhausted, already-started entry.
            self.rest = Rest::Whole(None);
        }
        self.next_index = self.next_index.saturating_add(1);
        Some(Record {
            db: self.db,
            key: self.key.clone(),
            expires_at_ms: self.expires_at_ms,
            value,
            chunk: Some(Chunk { index, last }),
        })
    }
}

/// Rebuilds whole entries from the records of a snapshot, in order.
///
/// Feed every record to [`push`](Self::push): a whole record comes straight
/// back; chunk records are collected until the last one, and then the whole
/// entry comes back with `chunk: None`. Call [`finish`](Self::finish) after
/// the last record to detect an entry left incomplete.
///
/// The assembled entry is as large as the entry itself; a loader that must
/// not hold a huge value twice can instead apply each chunk's value
/// directly, using [`check`](Self::check) to validate the sequence.
#[derive(Debug, Default)]
pub struct Assembler {
    pending: Option<Partial>,
    pushed: u64,
}

#[derive(Debug)]
struct Partial {
    db: u32,
    key: Bytes,
    expires_at_ms: Option<i64>,
    kind: ValueKind,
    /// Index of the most recent chunk.
    index: u32,
    /// Assembled so far; `None` in check-only mode.
    value: Option<Acc>,
}

#[derive(Debug)]
enum Acc {
    String(BytesMut),
    Other(Value),
}

impl Assembler {
    /// An assembler with no entry in progress.
    pub fn new() -> Self {
        Assembler::default()
    }

    /// Takes the next record; returns a whole entry when one is complete.
    ///
    /// # Errors
    ///
    /// [`Error::Chunk`] when the record does not continue the sequence:
    /// out of order, duplicated, missing (a new entry began before the last
    /// chunk), or a chunk of a different key, db, expiry or type. After an
    /// error the entry in progress is dropped.
    pub fn push(&mut self, record: Record) -> Result<Option<Record>> {
        self.step(record, true)
    }

    /// Like [`push`](Self::push) but assembles nothing: validates that the
    /// record continues the sequence and returns it as it is.
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push).
    pub fn check(&mut self, record: Record) -> Result<Record> {
        let chunk = record.chunk;
        let mut probe = record;
        let value = std::mem::replace(&mut probe.value, Value::String(Bytes::new()));
        let kind = value.kind();
        self.validate(&probe, kind, chunk, false)?;
        probe.value = value;
        Ok(probe)
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

    fn step(&mut self, mut record: Record, assemble: bool) -> Result<Option<Record>> {
        let chunk = record.chunk;
        let kind = record.value.kind();
        let value = std::mem::replace(&mut record.value, Value::String(Bytes::new()));
        let finished = self.validate(&record, kind, chunk, assemble)?;
        let Some(chunk) = chunk else {
            record.value = value;
            return Ok(Some(record));
        };
        if let Some(p) = &mut self.pending
            && let Some(acc) = &mut p.value
        {
            append(acc, value);
        } else if chunk.index == 0 {
            // A single-chunk entry: nothing pending was created.
            record.value = value;
            record.chunk = None;
            return Ok(Some(record));
        }
        if !finished {
            return Ok(None);
        }
        let Some(p) = self.pending.take() else {
            return Ok(None);
        };
        let value = match p.value {
            Some(Acc::String(b)) => Value::String(b.freeze()),
            Some(Acc::Other(v)) => v,
            None => return Ok(None),
        };
        Ok(Some(Record {
            db: p.db,
            key: p.key,
            expires_at_ms: p.expires_at_ms,
            value,
            chunk: None,
        }))
    }

    /// Checks `record` against the sequence and updates `pending`; returns
    /// true when `record` completes a multi-chunk entry.
    fn validate(
        &mut self,
        record: &Record,
        kind: ValueKind,
        chunk: Option<Chunk>,
        assemble: bool,
    ) -> Result<bool> {
        self.pushed += 1;
        let Some(chunk) = chunk else {
            return match self.pending.take() {
                Some(p) => Err(self.error(ChunkError::Missing {
                    last_index: p.index,
                })),
                None => Ok(false),
            };
        };
        let Some(p) = &mut self.pending else {
            if chunk.index != 0 {
                return Err(self.error(ChunkError::OutOfOrder {
                    expected: 0,
                    found: chunk.index,
                }));
            }
            if !chunk.last {
                self.pending = Some(Partial {
                    db: record.db,
                    key: record.key.clone(),
                    expires_at_ms: record.expires_at_ms,
                    kind,
                    index: 0,
                    value: assemble.then(|| match kind {
                        ValueKind::String => Acc::String(BytesMut::new()),
                        _ => Acc::Other(empty(kind)),
                    }),
                });
            }
            return Ok(false);
        };
        let same_key = p.key == record.key && p.db == record.db;
        let expected = p.index.saturating_add(1);
        let err = if chunk.index < expected {
            Some(if same_key {
                ChunkError::Duplicate { index: chunk.index }
            } else {
                ChunkError::Missing {
                    last_index: p.index,
                }
            })
        } else if chunk.index > expected {
            Some(ChunkError::OutOfOrder {
                expected,
                found: chunk.index,
            })
        } else if p.key != record.key {
            Some(ChunkError::Mismatch {
                index: chunk.index,
                field: "key",
            })
        } else if p.db != record.db {
            Some(ChunkError::Mismatch {
                index: chunk.index,
                field: "db",
            })
        } else if p.expires_at_ms != record.expires_at_ms {
            Some(ChunkError::Mismatch {
                index: chunk.index,
                field: "expires_at_ms",
            })
        } else if p.kind != kind {
            Some(ChunkError::Mismatch {
                index: chunk.index,
                field: "value type",
            })
        } else {
            None
        };
        if let Some(kind) = err {
            self.pending = None;
            return Err(self.error(kind));
        }
        p.index = chunk.index;
        if chunk.last && !assemble {
            self.pending = None;
        }
        Ok(chunk.last)
    }
}

fn empty(kind: ValueKind) -> Value {
    match kind {
        ValueKind::String => Value::String(Bytes::new()),
        ValueKind::List => Value::List(Vec::new()),
        ValueKind::Hash => Value::Hash(Vec::new()),
        ValueKind::Set => Value::Set(Vec::new()),
        ValueKind::SortedSet => Value::SortedSet(Vec::new()),
    }
}

fn append(acc: &mut Acc, value: Value) {
    match (acc, value) {
        (Acc::String(dst), Value::String(b)) => dst.extend_from_slice(&b),
        (Acc::Other(Value::List(dst)), Value::List(v))
        | (Acc::Other(Value::Set(dst)), Value::Set(v)) => dst.extend(v),
        (Acc::Other(Value::Hash(dst)), Value::Hash(v)) => dst.extend(v),
        (Acc::Other(Value::SortedSet(dst)), Value::SortedSet(v)) => dst.extend(v),
        // `validate` has checked that the kinds agree.
        _ => {}
    }
}
