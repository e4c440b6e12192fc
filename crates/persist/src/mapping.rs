//! Keyspace entries to snapshot records and back.
//!
//! The keyspace knows nothing of files and the codec nothing of the
//! keyspace; this module is the only place that knows both. Saving turns a
//! [`ViewEntry`] into one record, or into several chunk records when its
//! value is large (the codec's [`Chunker`] bounds each record, so neither the
//! encoder nor a loader ever holds one huge buffer). Loading feeds records
//! through an [`Assembler`] and hands whole entries to
//! [`Keyspace::load_entries`], which skips and counts keys already expired.

use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use bytes::Bytes;
use cairn_keyspace::{
    HashMapBytes, HashSetBytes, Key, Keyspace, LoadEntry, LoadStats, QuickList, SortedSet, Value,
    ViewEntry,
};
use cairn_snapshot::{Assembler, Chunker, Part, Record, Value as RecValue};
use cairn_store::{Damage, LoadSink, SinkError};

/// Writes one keyspace entry as the records that store it: one record, or
/// a run of chunk records for a value larger than the chunker's target,
/// handed to `out` as each is complete.
///
/// A collection is walked in place, element by element, in the view's copy
/// (the `Arc` the entry holds): each element is copied into a small arena
/// that lives only as long as the chunk being filled, so the writer holds
/// at most one chunk's elements, never a whole-value intermediate, and the
/// walk leaves nothing behind in the live value (cloning a table element's
/// vector-backed `Bytes` would allocate a shared header that stays with the
/// element for good: 84% of a 200,000-field hash's size, measured). A
/// string moves its allocation into the record and is cut into zero-copy
/// slices.
///
/// # Errors
/// The first error `out` returns; the entry's remaining records are not
/// built.
pub(crate) fn write_entry<E>(
    entry: ViewEntry,
    chunker: &Chunker,
    mut out: impl FnMut(&Record) -> Result<(), E>,
) -> Result<(), E> {
    let ViewEntry {
        db,
        key,
        expires_at_ms,
        value,
    } = entry;
    let mut arena = Arena::default();
    let mut emit = |records: Vec<Record>| -> Result<(), E> {
        for r in &records {
            out(r)?;
        }
        Ok(())
    };
    match value {
        Value::Str(b) => {
            let record =
                Record::new(db, key, RecValue::String(Bytes::from(b))).with_expiry(expires_at_ms);
            emit(chunker.split(record).collect())
        }
        Value::Int(n) => {
            let record = Record::new(db, key, RecValue::String(Bytes::from(n.to_string())))
                .with_expiry(expires_at_ms);
            emit(chunker.split(record).collect())
        }
        Value::List(l) => {
            let mut c = chunker.list(db, key, expires_at_ms);
            l.try_for_each_slice(|e| emit(c.push(arena.copy(e))))?;
            emit(c.finish())
        }
        Value::Set(s) => {
            let mut c = chunker.set(db, key, expires_at_ms);
            s.try_for_each_slice(|m| emit(c.push(arena.copy(m))))?;
            emit(c.finish())
        }
        Value::Hash(h) => {
            let mut c = chunker.hash(db, key, expires_at_ms);
            h.try_for_each_pair(|f, v| emit(c.push((arena.copy(f), arena.copy(v)))))?;
            emit(c.finish())
        }
        Value::ZSet(z) => {
            let mut c = chunker.sorted_set(db, key, expires_at_ms);
            z.try_for_each_pair(|m, s| emit(c.push((arena.copy(m), s))))?;
            emit(c.finish())
        }
        Value::Stream(s) => {
            let mut c = chunker.stream(db, key, expires_at_ms);
            crate::stream_items::encode_each(&s, |item| emit(c.push(arena.copy(item))))?;
            emit(c.finish())
        }
    }
}

/// Bytes of one arena block: elements are copied into blocks of this size
/// (or one of their own when larger), so a chunk's elements cost a few
/// allocations instead of one each.
const ARENA_BLOCK: usize = 64 << 10;

/// Copies of elements for the chunk being filled. A block is freed once
/// every element copied into it has been written (its records dropped).
#[derive(Default)]
struct Arena(bytes::BytesMut);

impl Arena {
    fn copy(&mut self, b: &[u8]) -> Bytes {
        if self.0.capacity() < b.len() {
            // Starts a fresh block; the old one lives on in the `Bytes`
            // already handed out, until their records are written.
            self.0 = bytes::BytesMut::with_capacity(b.len().max(ARENA_BLOCK));
        }
        self.0.extend_from_slice(b);
        self.0.split().freeze()
    }
}

/// The records of one keyspace entry, all at once (tests).
#[cfg(test)]
pub(crate) fn entry_records(entry: ViewEntry, chunker: &Chunker) -> Vec<Record> {
    let mut records = Vec::new();
    let _ = write_entry(entry, chunker, |r| {
        records.push(r.clone());
        Ok::<(), ()>(())
    });
    records
}

/// The record of an extension payload (function libraries): its name as
/// the key, in database 0, never chunked.
pub(crate) fn payload_record(name: String, data: Bytes) -> Record {
    Record::new(0, Bytes::from(name), RecValue::Payload(data))
}

/// Converts one whole (assembled) record into a keyspace entry; `None` for
/// an empty collection, which Redis never stores (a key whose last element
/// was removed no longer exists), or a malformed stream.
#[cfg(test)]
pub(crate) fn record_entry(record: Record) -> Option<LoadEntry> {
    let mut b = Builder::new(&record);
    b.add(record.value);
    b.finish()
}

/// A value being built from the parts of one entry (one part for an entry
/// written whole, one per chunk for a large one), so that a restore holds
/// a large value once: the value being built and one chunk's elements,
/// never all the elements and then the value.
///
/// Every byte kept is copied out of the parts: the store hands out slices
/// of a buffer shared by many records, and a kept slice would pin it all.
pub(crate) struct Builder {
    db: u32,
    key: Key,
    expires_at_ms: Option<i64>,
    value: Building,
}

enum Building {
    /// Strings come whole, in one part.
    Str(Option<Value>),
    List(QuickList),
    Hash(HashMapBytes),
    Set(HashSetBytes),
    ZSet(SortedSet),
    Stream(Option<Box<crate::stream_items::StreamDecoder>>),
    /// Not a key (an extension payload reaches the sink whole, elsewhere).
    Other,
}

impl Builder {
    /// Starts the value of the entry whose first part is `first`.
    pub(crate) fn new(first: &Record) -> Builder {
        let value = match &first.value {
            RecValue::String(_) => Building::Str(None),
            RecValue::List(_) => Building::List(QuickList::new()),
            RecValue::Hash(v) => Building::Hash(HashMapBytes::with_capacity(v.len())),
            RecValue::Set(v) => Building::Set(HashSetBytes::with_capacity(v.len())),
            RecValue::SortedSet(_) => Building::ZSet(SortedSet::new()),
            RecValue::Stream(_) => {
                Building::Stream(Some(Box::new(crate::stream_items::StreamDecoder::new())))
            }
            _ => Building::Other,
        };
        Builder {
            db: first.db,
            // Built here, on the decoding thread: the inserting thread, the
            // busier one of a restore, only moves it into the table.
            key: Key::new(&first.key),
            expires_at_ms: first.expires_at_ms,
            value,
        }
    }

    /// Adds the elements of the next part (of the entry's type: the
    /// assembler checked).
    pub(crate) fn add(&mut self, part: RecValue) {
        // A slice of a shared page is copied out; a buffer the assembler
        // built for a large string or element (nothing else holds it) is
        // taken over without a copy, so a 500 MB value is not held twice.
        let own = |b: Bytes| Bytes::from(Vec::<u8>::from(b));
        match (&mut self.value, part) {
            // `Value::string` keeps a canonical integer as a number, as SET does.
            (Building::Str(v), RecValue::String(b)) if b.len() <= MAX_INT_TEXT => {
                *v = Some(Value::string(&b));
            }
            (Building::Str(v), RecValue::String(b)) => {
                *v = Some(Value::Str(Vec::<u8>::from(b).into_boxed_slice()));
            }
            // Packed from the record's slices, nothing kept pointing into it.
            (Building::List(l), RecValue::List(items)) => {
                for e in items {
                    l.push_back(e);
                }
            }
            // Small collections are packed from the record's slices: only a
            // member that lands in a hash table gets a buffer of its own.
            (Building::Hash(h), RecValue::Hash(pairs)) => {
                for (f, x) in pairs {
                    h.upsert_with(
                        &f,
                        &x,
                        |f| own(Bytes::copy_from_slice(f)),
                        || own(x.clone()),
                    );
                }
            }
            (Building::Set(s), RecValue::Set(members)) => {
                for m in members {
                    s.get_or_insert_with(&m.clone(), |_| own(m));
                }
            }
            (Building::ZSet(z), RecValue::SortedSet(pairs)) => {
                for (m, s) in pairs {
                    z.insert(own(m), s);
                }
            }
            (Building::Stream(d), RecValue::Stream(items)) => {
                for item in items {
                    if let Some(dec) = d
                        && dec.push(&item).is_none()
                    {
                        // Malformed: the rest of this stream is ignored.
                        *d = None;
                    }
                }
            }
            _ => self.value = Building::Other,
        }
    }

    /// The entry; `None` for an empty collection, a malformed stream or a
    /// payload.
    pub(crate) fn finish(self) -> Option<LoadEntry> {
        let value = match self.value {
            Building::Str(v) => v?,
            Building::List(l) if !l.is_empty() => Value::List(Arc::new(l)),
            Building::Hash(h) if !h.is_empty() => Value::Hash(Arc::new(h)),
            Building::Set(s) if !s.is_empty() => Value::Set(Arc::new(s)),
            Building::ZSet(z) if !z.is_empty() => Value::ZSet(Arc::new(z)),
            // A stream is kept even with no entries (as Redis keeps it).
            Building::Stream(d) => match d.and_then(|d| d.finish()) {
                Some(s) => Value::Stream(Arc::new(s)),
                None => {
                    tracing::warn!(db = self.db, "malformed stream record skipped");
                    return None;
                }
            },
            _ => return None,
        };
        Some(LoadEntry {
            db: self.db,
            key: self.key,
            expires_at_ms: self.expires_at_ms,
            value,
        })
    }
}

/// The longest text a canonical `i64` can have ("-9223372036854775808");
/// longer strings are never numbers.
const MAX_INT_TEXT: usize = 20;

/// Entries handed to the keyspace per bulk load call.
const LOAD_BATCH: usize = 4096;
/// Batches queued for the inserting thread: enough to ride out a slow
/// batch on either side, few enough to bound the memory in flight.
const BATCHES_IN_FLIGHT: usize = 4;

/// Why a restore's sink refused the generation once it was read.
#[derive(Debug)]
pub(crate) enum SinkFailure {
    /// Keys in databases the keyspace does not have; the highest index.
    Databases { highest_db: u32 },
    /// The last entry's chunks were incomplete.
    Chunks(cairn_snapshot::Error),
}

/// Counts of one restore.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RestoreCounts {
    /// Keys stored.
    pub(crate) loaded: u64,
    /// Keys skipped because their expiry had passed.
    pub(crate) expired: u64,
    /// Empty collections skipped.
    pub(crate) empty: u64,
}

/// The thread that inserts decoded entries into the keyspace, so that
/// decoding and verifying (on the store's thread) overlap with inserting,
/// which costs about as much. A bounded channel keeps the two in step.
struct Inserter {
    tx: SyncSender<Vec<LoadEntry>>,
    thread: JoinHandle<LoadStats>,
}

impl Inserter {
    fn start(ks: Keyspace) -> std::io::Result<Inserter> {
        let (tx, rx) = sync_channel::<Vec<LoadEntry>>(BATCHES_IN_FLIGHT);
        let thread = std::thread::Builder::new()
            .name("cairn-restore-insert".into())
            .spawn(move || {
                let mut total = LoadStats::default();
                for batch in rx {
                    let s = ks.load_entries(batch);
                    total.loaded += s.loaded;
                    total.expired_skipped += s.expired_skipped;
                    total.bad_db_skipped += s.bad_db_skipped;
                }
                total
            })?;
        Ok(Inserter { tx, thread })
    }

    /// Waits until everything sent is inserted.
    fn finish(self) -> LoadStats {
        drop(self.tx);
        // A panic while inserting is a bug in the keyspace; surface it.
        match self.thread.join() {
            Ok(stats) => stats,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// A [`LoadSink`] that fills a keyspace.
///
/// If the store finds the generation damaged part-way it calls `abort`; the
/// keyspace is then emptied, since the store goes on to stream an older
/// generation from its start. Restoring runs before the server accepts
/// clients, so emptying it affects nobody.
pub(crate) struct KeyspaceSink {
    ks: Keyspace,
    assembler: Assembler,
    batch: Vec<LoadEntry>,
    counts: RestoreCounts,
    /// The highest database index seen that the keyspace does not have:
    /// such a snapshot is refused as a whole (loading the rest would drop
    /// those keys, and the next snapshot would make the loss permanent).
    missing_db: Option<u32>,
    /// Started with the first full batch; `None` before and after.
    inserter: Option<Inserter>,
    /// Whether batches go to an inserting thread; not when the caller
    /// holds the keyspace gate for write (DEBUG RELOAD), which that thread
    /// would wait for.
    threaded: bool,
    /// The large value being built from its chunks; `None` between
    /// entries and while skipping an entry of a missing database.
    building: Option<Builder>,
}

impl KeyspaceSink {
    pub(crate) fn new(ks: Keyspace) -> KeyspaceSink {
        KeyspaceSink {
            ks,
            assembler: Assembler::new(),
            batch: Vec::with_capacity(LOAD_BATCH),
            counts: RestoreCounts::default(),
            missing_db: None,
            inserter: None,
            threaded: true,
            building: None,
        }
    }

    /// A sink that inserts on the loading thread itself: for loading from
    /// inside a command that holds the keyspace gate (DEBUG RELOAD).
    pub(crate) fn inline(ks: Keyspace) -> KeyspaceSink {
        let mut sink = KeyspaceSink::new(ks);
        sink.threaded = false;
        sink
    }

    fn add(&mut self, stats: LoadStats) {
        self.counts.loaded += stats.loaded;
        self.counts.expired += stats.expired_skipped;
    }

    /// Hands the batch to the inserting thread (inserting here if that
    /// thread cannot be started or has gone).
    fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(LOAD_BATCH));
        if self.inserter.is_none() && self.threaded {
            match Inserter::start(self.ks.clone()) {
                Ok(i) => self.inserter = Some(i),
                Err(e) => tracing::warn!(error = %e, "restore: inserting on the loading thread"),
            }
        }
        let batch = match &self.inserter {
            Some(i) => match i.tx.send(batch) {
                Ok(()) => return,
                Err(back) => back.0,
            },
            None => batch,
        };
        let stats = self.ks.load_entries(batch);
        self.add(stats);
    }

    /// Waits for the inserting thread to drain, adding its counts.
    fn drain(&mut self) {
        if let Some(i) = self.inserter.take() {
            let stats = i.finish();
            self.add(stats);
        }
    }

    /// Loads what is still batched and checks that every database existed
    /// and no chunked entry was left incomplete; returns the counts.
    ///
    /// # Errors
    /// Keys in a database the keyspace does not have, or the assembler's
    /// error when the last entry's chunks are incomplete.
    pub(crate) fn finish(mut self) -> Result<RestoreCounts, SinkFailure> {
        self.flush();
        self.drain();
        self.ks.trim_after_load();
        if let Some(highest_db) = self.missing_db {
            return Err(SinkFailure::Databases { highest_db });
        }
        self.assembler.finish().map_err(SinkFailure::Chunks)?;
        Ok(self.counts)
    }
}

impl Drop for KeyspaceSink {
    fn drop(&mut self) {
        // Never leave a thread writing into the keyspace after the restore
        // returned (with an error, say).
        self.drain();
    }
}

impl LoadSink for KeyspaceSink {
    fn begin(&mut self, _generation: u64) -> Result<(), SinkError> {
        // Values are built on this thread: with the keyspace's encoding
        // thresholds, they get the encodings commands would give them.
        self.ks.encoding_limits().install();
        self.drain();
        self.assembler = Assembler::new();
        self.building = None;
        self.batch.clear();
        self.counts = RestoreCounts::default();
        self.missing_db = None;
        self.ks.clear_payloads();
        Ok(())
    }

    fn expect_records(&mut self, records: u64) {
        // Most data sits in database 0; tables sized for keys that end up
        // elsewhere are trimmed by `finish`. Capped so a damaged count
        // cannot make the hint itself exhaust memory before verification
        // fails.
        let keys = usize::try_from(records.min(64 << 20)).unwrap_or(0);
        self.ks.reserve_for_load(0, keys);
    }

    fn record(&mut self, record: Record) -> Result<(), SinkError> {
        // The store has checked every record's CRC, count and digest; an
        // out-of-order chunk here would mean a writer bug, so it stops the
        // load instead of loading half an entry.
        // A large value arrives a chunk at a time and is built as it comes,
        // so it is never held twice (its elements, then the value).
        let Some(part) = self.assembler.push_part(record)? else {
            return Ok(());
        };
        let Part {
            record: part,
            first,
            last,
        } = part;
        if first {
            self.building = None;
            if let RecValue::Payload(data) = &part.value {
                let name = String::from_utf8_lossy(&part.key).into_owned();
                self.ks
                    .load_payload(&name, Bytes::from(Vec::<u8>::from(data.clone())));
                return Ok(());
            }
            if part.db as usize >= self.ks.databases() {
                // Read on to the end, so the error names every database needed.
                self.missing_db = self.missing_db.max(Some(part.db));
                return Ok(());
            }
            self.building = Some(Builder::new(&part));
        }
        let Some(builder) = self.building.as_mut() else {
            return Ok(());
        };
        builder.add(part.value);
        if !last {
            return Ok(());
        }
        match self.building.take().and_then(Builder::finish) {
            Some(e) => self.batch.push(e),
            None => self.counts.empty += 1,
        }
        if self.batch.len() >= LOAD_BATCH {
            self.flush();
        }
        Ok(())
    }

    fn abort(&mut self, generation: u64, reason: &Damage) {
        tracing::warn!(generation, %reason, "discarding partly loaded generation");
        // Everything already handed over must be in before the flush below,
        // or it would survive it.
        self.drain();
        self.batch.clear();
        self.assembler = Assembler::new();
        self.building = None;
        self.counts = RestoreCounts::default();
        self.missing_db = None;
        self.ks.flush_all();
        self.ks.clear_payloads();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Writes the entries as the snapshot writer does and rebuilds them as
    /// the restore does: records through the real codec, parts from the
    /// assembler, values built part by part.
    fn round_trip(entries: Vec<ViewEntry>, chunker: &Chunker) -> (Vec<LoadEntry>, usize) {
        let mut records = Vec::new();
        for e in entries {
            write_entry(e, chunker, |r| {
                records.push(r.clone());
                Ok::<(), ()>(())
            })
            .unwrap();
        }
        let n = records.len();
        (rebuild(records), n)
    }

    fn rebuild(records: Vec<Record>) -> Vec<LoadEntry> {
        let mut asm = Assembler::new();
        let mut out = Vec::new();
        let mut building: Option<Builder> = None;
        for r in records {
            let mut framed = Vec::new();
            cairn_snapshot::encode_record(&r, &mut framed).unwrap();
            let back = cairn_snapshot::decode_record(&framed).unwrap();
            let Some(part) = asm.push_part(back).unwrap() else {
                continue;
            };
            if part.first {
                building = Some(Builder::new(&part.record));
            }
            let b = building.as_mut().unwrap();
            b.add(part.record.value);
            if part.last {
                out.push(building.take().unwrap().finish().unwrap());
            }
        }
        asm.finish().unwrap();
        out
    }

    /// A generation written before values were streamed (each value
    /// collected whole, then split: `Chunker::split`, as the code on main
    /// did) has the same records, and loads through the incremental
    /// restore.
    #[test]
    fn records_of_whole_values_split_as_before_load_the_same() {
        let chunker = Chunker::new().target_bytes(512);
        for e in every_type().into_iter().chain(large_entries(700)) {
            let whole = match e.value.clone() {
                Value::Str(b) => RecValue::String(Bytes::from(b)),
                Value::Int(n) => RecValue::String(Bytes::from(n.to_string())),
                Value::List(l) => RecValue::List(l.iter().collect()),
                Value::Hash(h) => RecValue::Hash(h.iter().collect()),
                Value::Set(s) => RecValue::Set(s.iter().collect()),
                Value::ZSet(z) => RecValue::SortedSet(z.iter().collect()),
                Value::Stream(s) => RecValue::Stream(crate::stream_items::encode(&s)),
            };
            let old: Vec<Record> = chunker
                .split(Record::new(e.db, e.key.clone(), whole).with_expiry(e.expires_at_ms))
                .collect();
            let new = entry_records(e.clone(), &chunker);
            assert_eq!(old, new, "key {:?}", e.key);
            let back = rebuild(old);
            assert_eq!(back.len(), 1);
            same(&e, &back[0]);
        }
    }

    /// Values of every type at sizes around the chunk boundaries: empty
    /// (a stream), one element, exactly filling one record, one element
    /// more, many chunks; elements split across chunks included.
    #[test]
    fn every_type_at_every_size_around_a_chunk_round_trips() {
        let target = 256;
        let chunker = Chunker::new().target_bytes(target);
        for n in [1usize, 2, 5, 9, 10, 11, 12, 20, 63, 64, 65, 300] {
            let entries = large_entries(n);
            let (back, records) = round_trip(entries.clone(), &chunker);
            assert!(records >= entries.len());
            assert_eq!(back.len(), entries.len(), "n = {n}");
            for (a, b) in entries.iter().zip(&back) {
                same(a, b);
            }
        }
        // An element larger than the target is split; it comes back whole.
        let big = Bytes::from(vec![b'x'; 3 * target + 7]);
        let list: QuickList = [Bytes::from("a"), big.clone(), Bytes::from("z")].into();
        let hash: HashMapBytes = [(big.clone(), big.clone()), (Bytes::from("f"), Bytes::new())]
            .into_iter()
            .collect();
        let entries = vec![
            view_entry(0, b"l", None, Value::List(Arc::new(list))),
            view_entry(0, b"h", None, Value::Hash(Arc::new(hash))),
        ];
        let (back, _) = round_trip(entries.clone(), &chunker);
        for (a, b) in entries.iter().zip(&back) {
            same(a, b);
        }
    }

    /// One entry of every collection type with `n` elements (the stream:
    /// `n` entries, some deleted, a group with a pending entry).
    fn large_entries(n: usize) -> Vec<ViewEntry> {
        use cairn_keyspace::{Group, NodeLimits, Stream, StreamId};
        let el = |i: usize| Bytes::from(format!("e{i}-{}", "x".repeat(i % 13)));
        let list: QuickList = (0..n).map(el).collect();
        let hash: HashMapBytes = (0..n).map(|i| (el(i), el(i + 1))).collect();
        let set: HashSetBytes = (0..n).map(el).collect();
        let ints: HashSetBytes = (0..n).map(|i| Bytes::from((i * 7).to_string())).collect();
        let mut z = SortedSet::new();
        for i in 0..n {
            z.insert(el(i), (i % 5) as f64 - 1.5);
        }
        let mut s = Stream::new();
        for i in 1..=n as u64 {
            let v = el(i as usize);
            s.add(
                Some((StreamId::new(i, 0), true)),
                &[(b"a", &v[..])],
                0,
                NodeLimits::default(),
            )
            .unwrap();
        }
        if n > 2 {
            s.delete(StreamId::new(2, 0));
        }
        let mut g = Group::new(StreamId::new(1, 0), 1);
        g.create_consumer(b"c", 5);
        g.deliver(StreamId::new(1, 0), &Bytes::from_static(b"c"), 9);
        s.create_group(b"g", g);
        vec![
            view_entry(0, b"list", None, Value::List(Arc::new(list))),
            view_entry(
                1,
                b"hash",
                Some(1_900_000_000_000),
                Value::Hash(Arc::new(hash)),
            ),
            view_entry(2, b"set", None, Value::Set(Arc::new(set))),
            view_entry(2, b"ints", None, Value::Set(Arc::new(ints))),
            view_entry(3, b"zset", None, Value::ZSet(Arc::new(z))),
            view_entry(4, b"stream", None, Value::Stream(Arc::new(s))),
            view_entry(
                4,
                b"empty stream",
                None,
                Value::Stream(Arc::new(Stream::new())),
            ),
        ]
    }

    /// A damaged chunk record in the middle of a large value is caught
    /// (record CRC) like any other damage: under `Fallback` the generation
    /// is quarantined, what the sink had built of it is dropped, and the
    /// older generation loads.
    #[test]
    fn a_damaged_chunk_record_quarantines_its_generation() {
        use cairn_store::testing::{Tamper, rewrite_generation};
        use cairn_store::{LoadPolicy, Store};
        let dir = tempfile::tempdir().unwrap();
        let chunker = Chunker::new().target_bytes(300);
        let store = Store::open(dir.path()).unwrap();
        let mut w = store.begin().unwrap();
        w.write(&Record::new(0, "old", RecValue::String("v".into())))
            .unwrap();
        let old = w.commit().unwrap().generation;
        let mut w = store.begin().unwrap();
        let mut chunks = Vec::new();
        for e in large_entries(200) {
            write_entry(e, &chunker, |r| {
                chunks.push(r.chunk.is_some());
                w.write(r)
            })
            .unwrap();
        }
        let new = w.commit().unwrap().generation;
        drop(store);
        let n = chunks.len() as u64;
        assert!(n > 30);
        for record in [n / 2, n - 2] {
            assert!(chunks[record as usize], "record {record} is a chunk");
        }
        rewrite_generation(
            dir.path(),
            new,
            Tamper::FlipPayloadBit {
                record: n / 2,
                offset: 5,
                bit: 2,
            },
        )
        .unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ks = Keyspace::new();
        let mut sink = KeyspaceSink::new(ks.clone());
        let report = store.load(&mut sink, LoadPolicy::Fallback).unwrap();
        assert_eq!(report.generation, Some(old));
        assert_eq!(report.failures.len(), 1);
        assert_eq!(report.failures[0].generation, new);
        assert!(
            matches!(report.failures[0].damage, Damage::Record(_)),
            "{:?}",
            report.failures[0].damage
        );
        assert_eq!(store.quarantined().entries, 1);
        let counts = sink.finish().unwrap();
        assert_eq!(counts.loaded, 1);
        let total: usize = (0..ks.databases()).map(|db| ks.dbsize(db)).sum();
        assert_eq!(total, 1, "nothing of the damaged generation is left");
    }

    /// The sink builds chunked values as their chunks arrive, skips a
    /// chunked entry of a missing database whole, and an abort in the
    /// middle of an entry leaves nothing of it.
    #[test]
    fn sink_builds_chunked_entries_and_discards_partial_ones() {
        let chunker = Chunker::new().target_bytes(300);
        let entries = large_entries(200);
        let mut records = Vec::new();
        for e in entries.clone() {
            records.extend(entry_records(e, &chunker));
        }
        assert!(records.len() > 20);
        let ks = Keyspace::builder().databases(4).build();
        let mut sink = KeyspaceSink::new(ks.clone());
        sink.begin(3).unwrap();
        // A partial generation: abort in the middle of the hash.
        for r in records.iter().take(records.len() / 3).cloned() {
            sink.record(r).unwrap();
        }
        sink.abort(3, &Damage::Digest);
        sink.begin(2).unwrap();
        for r in records {
            sink.record(r).unwrap();
        }
        // Database 4 does not exist: the streams make the load refuse.
        match sink.finish() {
            Err(SinkFailure::Databases { highest_db }) => assert_eq!(highest_db, 4),
            other => panic!("expected a refusal naming database 4, got {other:?}"),
        }
        let ks = Keyspace::new();
        let mut sink = KeyspaceSink::new(ks.clone());
        sink.begin(1).unwrap();
        for e in entries.clone() {
            for r in entry_records(e, &chunker) {
                sink.record(r).unwrap();
            }
        }
        let counts = sink.finish().unwrap();
        assert_eq!(counts.loaded, entries.len() as u64);
        let mut view = ks.view().unwrap();
        let mut got = Vec::new();
        while let Some(batch) = view.next_batch(100) {
            got.extend(batch);
        }
        assert_eq!(got.len(), entries.len());
        for e in &entries {
            let b = got.iter().find(|g| g.db == e.db && g.key == e.key).unwrap();
            assert_eq!(b.value, e.value, "key {:?}", e.key);
        }
    }

    fn view_entry(db: u32, key: &[u8], exp: Option<i64>, value: Value) -> ViewEntry {
        ViewEntry {
            db,
            key: Bytes::copy_from_slice(key),
            expires_at_ms: exp,
            value,
        }
    }

    fn same(a: &ViewEntry, b: &LoadEntry) {
        assert_eq!(a.db, b.db);
        assert_eq!(a.key, b.key.as_bytes());
        assert_eq!(a.expires_at_ms, b.expires_at_ms);
        assert_eq!(a.value, b.value, "key {:?}", a.key);
    }

    fn every_type() -> Vec<ViewEntry> {
        let list: QuickList = ["a", "b", "", "a"]
            .iter()
            .map(|s| Bytes::from(*s))
            .collect();
        let hash: HashMapBytes = [("f", "v"), ("", "empty field"), ("x", "")]
            .iter()
            .map(|(f, v)| (Bytes::from(*f), Bytes::from(*v)))
            .collect();
        let set: HashSetBytes = ["m1", "m2", "\u{0}bin"]
            .iter()
            .map(|s| Bytes::from(*s))
            .collect();
        let mut z = SortedSet::new();
        z.insert(Bytes::from("one"), 1.0);
        z.insert(Bytes::from("neg"), -2.5);
        z.insert(Bytes::from("inf"), f64::INFINITY);
        z.insert(Bytes::from("ninf"), f64::NEG_INFINITY);
        z.insert(Bytes::from("negzero"), -0.0);
        vec![
            view_entry(0, b"str", None, Value::Str(Box::from(&b"hello"[..]))),
            view_entry(0, b"", None, Value::Str(Box::from(&b"empty key"[..]))),
            view_entry(
                1,
                b"\x00\xff\r\nbinary",
                Some(1_900_000_000_000),
                Value::Str(Box::from(&b"\x00\x01\xfe"[..])),
            ),
            view_entry(2, b"int", Some(1), Value::Int(-42)),
            view_entry(2, b"intmax", None, Value::Int(i64::MAX)),
            view_entry(3, b"leading-zero", None, Value::Str(Box::from(&b"007"[..]))),
            view_entry(15, b"list", None, Value::List(Arc::new(list))),
            view_entry(
                4,
                b"hash",
                Some(2_000_000_000_000),
                Value::Hash(Arc::new(hash)),
            ),
            view_entry(5, b"set", None, Value::Set(Arc::new(set))),
            view_entry(6, b"zset", None, Value::ZSet(Arc::new(z))),
        ]
    }

    #[test]
    fn every_type_round_trips_unchunked() {
        let entries = every_type();
        let (back, records) = round_trip(entries.clone(), &Chunker::new());
        assert_eq!(records, entries.len(), "small values are one record each");
        assert_eq!(back.len(), entries.len());
        for (a, b) in entries.iter().zip(&back) {
            same(a, b);
        }
    }

    /// A stream spanning many chunk records (items split across them
    /// included) comes back equal: entries, blocks, tombstones, groups.
    #[test]
    fn streams_are_chunked_and_reassembled() {
        use cairn_keyspace::{Group, NodeLimits, Stream, StreamId};
        let mut s = Stream::new();
        let lim = NodeLimits::default();
        for i in 1..=5_000u64 {
            let v = format!("{i}-{}", "v".repeat((i % 300) as usize));
            s.add(
                Some((StreamId::new(i, 0), true)),
                &[(b"a", v.as_bytes()), (b"b", b"x")],
                0,
                lim,
            )
            .unwrap();
        }
        for i in (3..5_000).step_by(7) {
            s.delete(StreamId::new(i, 0));
        }
        let mut g = Group::new(StreamId::new(4_000, 0), 3_990);
        g.create_consumer(b"c", 17);
        for i in 1..200u64 {
            g.deliver(
                StreamId::new(i, 0),
                &Bytes::from_static(b"c"),
                100 + i as i64,
            );
        }
        s.create_group(b"g", g);
        let empty = Stream::new();
        let entries = vec![
            view_entry(0, b"stream", None, Value::Stream(Arc::new(s))),
            view_entry(
                1,
                b"empty",
                Some(1_900_000_000_000),
                Value::Stream(Arc::new(empty)),
            ),
        ];
        let chunker = Chunker::new().target_bytes(4096);
        let (back, records) = round_trip(entries.clone(), &chunker);
        assert!(records > 100, "expected many chunk records, got {records}");
        assert_eq!(back.len(), 2, "an empty stream is a key too");
        for (a, b) in entries.iter().zip(&back) {
            same(a, b);
        }
    }

    #[test]
    fn big_values_are_chunked_and_reassembled() {
        let n = 10_000;
        let list: QuickList = (0..n).map(|i| Bytes::from(format!("item-{i}"))).collect();
        let hash: HashMapBytes = (0..n)
            .map(|i| (Bytes::from(format!("f{i}")), Bytes::from(format!("v{i}"))))
            .collect();
        let set: HashSetBytes = (0..n).map(|i| Bytes::from(format!("m{i}"))).collect();
        let mut z = SortedSet::new();
        for i in 0..n {
            z.insert(Bytes::from(format!("z{i}")), f64::from(i) / 3.0);
        }
        let big_str: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let entries = vec![
            view_entry(
                0,
                b"list",
                Some(1_900_000_000_000),
                Value::List(Arc::new(list)),
            ),
            view_entry(1, b"hash", None, Value::Hash(Arc::new(hash))),
            view_entry(2, b"set", None, Value::Set(Arc::new(set))),
            view_entry(3, b"zset", None, Value::ZSet(Arc::new(z))),
            view_entry(4, b"\xffbig", None, Value::Str(big_str.into_boxed_slice())),
        ];
        // A small target so every entry above spans many records.
        let chunker = Chunker::new().target_bytes(4096);
        let (back, records) = round_trip(entries.clone(), &chunker);
        assert!(
            records > entries.len() * 10,
            "expected many chunk records, got {records}"
        );
        assert_eq!(back.len(), entries.len());
        for (a, b) in entries.iter().zip(&back) {
            same(a, b);
        }
        // Each chunk record stays near the target: no record holds the whole value.
        for e in entries {
            for r in entry_records(e, &chunker) {
                assert!(cairn_snapshot::framed_len(&r).unwrap() < 4096 * 2);
            }
        }
    }

    #[test]
    fn empty_collections_are_not_loaded() {
        let r = Record::new(0, "k", RecValue::List(Vec::new()));
        assert_eq!(record_entry(r), None);
        let r = Record::new(0, "k", RecValue::String(Bytes::new()));
        assert!(record_entry(r).is_some(), "an empty string is a real value");
    }

    #[test]
    fn sink_skips_expired_and_counts() {
        let ks = Keyspace::new();
        let now = ks.now_ms();
        let mut sink = KeyspaceSink::new(ks.clone());
        sink.begin(1).unwrap();
        sink.record(
            Record::new(0, "live", RecValue::String("v".into())).with_expiry(Some(now + 60_000)),
        )
        .unwrap();
        sink.record(
            Record::new(0, "dead", RecValue::String("v".into())).with_expiry(Some(now - 1)),
        )
        .unwrap();
        sink.record(Record::new(1, "forever", RecValue::String("v".into())))
            .unwrap();
        let counts = sink.finish().unwrap();
        assert_eq!(counts.loaded, 2);
        assert_eq!(counts.expired, 1);
        assert_eq!(ks.dbsize(0), 1);
        assert_eq!(ks.dbsize(1), 1);
    }

    #[test]
    fn sink_refuses_keys_in_databases_the_keyspace_lacks() {
        let ks = Keyspace::builder().databases(4).build();
        let mut sink = KeyspaceSink::new(ks.clone());
        sink.begin(1).unwrap();
        for (db, key) in [(0, "a"), (9, "b"), (3, "c"), (20, "d"), (5, "e")] {
            sink.record(Record::new(db, key, RecValue::String("v".into())))
                .unwrap();
        }
        match sink.finish() {
            Err(SinkFailure::Databases { highest_db }) => assert_eq!(highest_db, 20),
            other => panic!("expected a refusal naming database 20, got {other:?}"),
        }
    }

    #[test]
    fn sink_abort_discards_partial_generation() {
        let ks = Keyspace::new();
        let mut sink = KeyspaceSink::new(ks.clone());
        sink.begin(2).unwrap();
        for i in 0..(LOAD_BATCH + 10) {
            sink.record(Record::new(
                0,
                format!("k{i}"),
                RecValue::String("v".into()),
            ))
            .unwrap();
        }
        sink.abort(2, &Damage::Digest);
        sink.begin(1).unwrap();
        sink.record(Record::new(0, "older", RecValue::String("v".into())))
            .unwrap();
        let counts = sink.finish().unwrap();
        assert_eq!(counts.loaded, 1);
        assert_eq!(ks.dbsize(0), 1);
    }
}
