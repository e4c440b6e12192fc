//! Point-in-time views of the whole keyspace, and bulk loading.
//!
//! Design "V" (versioned entries, see docs/architecture.md, "The keyspace and point-in-time views"): taking
//! a view bumps a global epoch and arms every shard while all commands are
//! held off by the gate — O(shards), no copying. Afterwards the first write
//! to an entry older than the epoch, on a shard the view has not walked
//! yet, preserves the old version in that shard's side buffer. The view walks
//! shard by shard, copying out entries older than the epoch in small chunks
//! (each copied entry is re-stamped so neither writers nor later chunks see
//! it again), then takes the shard's preserved buffer and disarms it.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::engine::{Engine, Held, Preserved};
use crate::value::{Key, Value};

/// Entries copied per shard lock acquisition: small enough that a writer
/// waiting on the shard is not held up for long (views-probe.md measured
/// stalls up to 19 ms with 512-bucket chunks of 100-byte values).
const CHUNK: usize = 128;

/// One key as it was at the instant a view was taken.
#[derive(Clone, Debug, PartialEq)]
pub struct ViewEntry {
    /// Database index.
    pub db: u32,
    /// The key.
    pub key: Bytes,
    /// Absolute expiry in unix milliseconds.
    pub expires_at_ms: Option<i64>,
    /// The value; collections are shared (`Arc`) with the live keyspace
    /// until a writer changes them.
    pub value: Value,
}

/// The error returned when a view cannot be taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViewError {
    /// Another view is still alive; only one may exist at a time.
    #[error("keyspace view error: another view is still in progress")]
    Busy,
    /// Called from inside a command that holds the keyspace gate for read;
    /// only commands flagged `EXCLUSIVE` (or code outside commands) may
    /// take a view.
    #[error(
        "keyspace view error: a view can only be taken outside commands or by an EXCLUSIVE command"
    )]
    InsideCommand,
}

/// Counts describing a view's iteration so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViewStats {
    /// Entries yielded.
    pub yielded: u64,
    /// Entries skipped because they had expired at the view's instant.
    pub expired_skipped: u64,
    /// Entries yielded from preserved (written-after-the-view) buffers.
    pub preserved: u64,
}

/// A consistent point-in-time view of every database.
///
/// `Send + 'static`: the persistence layer iterates it on a blocking thread
/// while commands keep running. Dropping it early disarms the shards it has
/// not walked. Only one view exists at a time.
pub struct View {
    engine: Arc<Engine>,
    epoch: u32,
    next_shard: usize,
    pending: Vec<ViewEntry>,
    /// Where the walk of the current shard resumes: a bucket index, valid
    /// while no entry of the shard's table has moved.
    resume: Option<Resume>,
    now_ms: i64,
    stats: ViewStats,
    /// Size of the last chunk's byte buffer: the next one is allocated at
    /// that size before the shard is locked.
    chunk_bytes: usize,
    /// The extension payloads (see [`Keyspace::set_payload`](crate::Keyspace::set_payload))
    /// as they were at the view's instant.
    payloads: Vec<(String, Bytes)>,
}

impl View {
    /// `payloads` runs under the gate, at the view's cut: the extension
    /// payloads it returns are the ones of the view's instant.
    pub(crate) fn take(
        engine: Arc<Engine>,
        payloads: impl FnOnce() -> Vec<(String, Bytes)>,
    ) -> Result<View, ViewError> {
        if engine.view_active.swap(true, Ordering::AcqRel) {
            return Err(ViewError::Busy);
        }
        let epoch;
        let now_ms;
        let captured;
        {
            let Some(_all) = engine.enter(Held::Write) else {
                engine.view_active.store(false, Ordering::Release);
                return Err(ViewError::InsideCommand);
            };
            epoch = engine.epoch.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
            now_ms = engine.clock.now_ms();
            captured = payloads();
            for i in 0..engine.shard_count() {
                let mut s = engine.lock_index(i, now_ms);
                s.data.epoch = epoch;
                s.data.preserved = Some(Preserved::default());
            }
        }
        Ok(View {
            engine,
            epoch,
            next_shard: 0,
            pending: Vec::new(),
            resume: None,
            now_ms,
            stats: ViewStats::default(),
            chunk_bytes: 0,
            payloads: captured,
        })
    }

    /// The wall-clock instant of the view (unix ms); entries that had
    /// expired by then are skipped.
    pub fn taken_at_ms(&self) -> i64 {
        self.now_ms
    }

    /// The extension payloads (name, bytes) at the view's instant, in name
    /// order: the persistence layer saves them beside the keys.
    pub fn payloads(&self) -> &[(String, Bytes)] {
        &self.payloads
    }

    /// Counts so far.
    pub fn stats(&self) -> ViewStats {
        self.stats
    }

    /// The next batch of at most `max` entries (at least 1 is returned per
    /// batch while any remain), or `None` when the view is exhausted.
    pub fn next_batch(&mut self, max: usize) -> Option<Vec<ViewEntry>> {
        let max = max.max(1);
        loop {
            if !self.pending.is_empty() {
                let take = self.pending.len().min(max);
                let rest = self.pending.split_off(take);
                let batch = std::mem::replace(&mut self.pending, rest);
                self.stats.yielded += batch.len() as u64;
                return Some(batch);
            }
            if self.next_shard >= self.engine.shard_count() {
                return None;
            }
            self.walk_chunk();
        }
    }

    /// Copies up to `CHUNK` not-yet-walked entries of the current shard into
    /// `pending`; when the shard has none left, also takes its preserved
    /// buffer and moves to the next shard.
    ///
    /// The shard stays locked only for what must happen under the lock
    /// (finding and re-stamping the entries, copying their bytes): keys and
    /// strings up to [`STAGE_MAX`] go back to back into one buffer, and the
    /// allocations that give each entry its own value happen after
    /// unlocking. Before
    /// copying, one pass reads the first byte of every key and value of the
    /// chunk, so their cache misses overlap instead of being waited for one
    /// by one. Measured (`cargo xtask bench latency`, 2 cores): the walk
    /// holding the lock through one allocation and one cache-missing copy
    /// per key and per value made writers to the shard wait long enough to
    /// be switched out.
    fn walk_chunk(&mut self) {
        let idx = self.next_shard;
        let epoch = self.epoch;
        let now = self.now_ms;
        let mut bytes = Vec::with_capacity(self.chunk_bytes);
        let mut staged: Vec<Staged> = Vec::with_capacity(CHUNK);
        let mut s = self.engine.lock_index(idx, now);
        let db = s.db() as u32;
        let d = &mut *s.data;
        // Resume at the bucket index where the last chunk stopped only if
        // no entry has moved since: every bucket below it was walked, and an
        // entry not yet walked could have been moved there by a resize or
        // by an in-place rehash (same bucket count), which churn alone
        // brings about. Otherwise start over; versions make revisiting an
        // entry harmless, and reorganisations are rare (one per growth
        // step, or per about half a table's worth of inserts).
        let buckets = d.map.num_buckets();
        let layout = d.map.layout();
        let mut pos = match self.resume {
            Some(r) if r.layout == layout => r.next,
            _ => 0,
        };
        touch_ahead(&d.map, pos, buckets, epoch);
        let mut done = true;
        while pos < buckets {
            let here = pos;
            pos += 1;
            let Some((k, e)) = d.map.bucket_mut(here) else {
                continue;
            };
            if e.version() >= epoch {
                continue;
            }
            mark_walked(e, epoch);
            if e.expires_at_ms().is_some_and(|t| t <= now) {
                self.stats.expired_skipped += 1;
                continue;
            }
            let key = match k.as_bytes() {
                small if small.len() <= STAGE_MAX => Part::Staged(stage(&mut bytes, small)),
                large => Part::Own(Bytes::copy_from_slice(large)),
            };
            let value = match e.value() {
                Value::Str(v) if v.len() <= STAGE_MAX => StagedValue::Str(stage(&mut bytes, v)),
                other => StagedValue::Own(other.clone()),
            };
            staged.push(Staged {
                key,
                expires_at_ms: e.expires_at_ms(),
                value,
            });
            if staged.len() >= CHUNK {
                self.resume = Some(Resume { next: pos, layout });
                done = false;
                break;
            }
        }
        let preserved = if done { d.preserved.take() } else { None };
        if done {
            self.resume = None;
            self.next_shard += 1;
        }
        s.unlock_fair();

        self.chunk_bytes = bytes.len();
        let bytes = Bytes::from(bytes);
        for st in staged {
            let key = match st.key {
                Part::Staged(range) => bytes.slice(range),
                Part::Own(key) => key,
            };
            let value = match st.value {
                StagedValue::Str(range) => {
                    Value::Str(Box::from(bytes.get(range).unwrap_or_default()))
                }
                StagedValue::Own(v) => v,
            };
            self.pending.push(ViewEntry {
                db,
                key,
                expires_at_ms: st.expires_at_ms,
                value,
            });
        }
        for entry in preserved.into_iter().flat_map(Preserved::into_entries) {
            if entry.expires_at_ms.is_some_and(|t| t <= now) {
                self.stats.expired_skipped += 1;
            } else {
                self.stats.preserved += 1;
                self.pending.push(entry);
            }
        }
    }
}

/// Keys and strings up to this size are staged in a chunk's byte buffer;
/// larger ones are copied on their own (their copy dwarfs an allocation),
/// so the buffer stays small and a large value is not held twice over.
const STAGE_MAX: usize = 4096;

/// One entry copied under the shard lock, waiting for its own allocations.
struct Staged {
    key: Part,
    expires_at_ms: Option<i64>,
    value: StagedValue,
}

/// A key: in the chunk's byte buffer, or copied on its own.
enum Part {
    Staged(std::ops::Range<usize>),
    Own(Bytes),
}

enum StagedValue {
    /// A string in the chunk's byte buffer.
    Str(std::ops::Range<usize>),
    /// A number, a large string (copied) or a collection (shared).
    Own(Value),
}

/// Appends `data` to the chunk buffer and returns where it lies.
fn stage(bytes: &mut Vec<u8>, data: &[u8]) -> std::ops::Range<usize> {
    let start = bytes.len();
    bytes.extend_from_slice(data);
    start..bytes.len()
}

/// Reads the first byte of the key and string value of up to [`CHUNK`]
/// not-yet-walked entries from bucket `from` on. The loads do not depend on
/// one another, so the processor has many of their cache misses in flight
/// at once; the copying pass that follows then finds them cached.
fn touch_ahead(map: &crate::engine::Table, from: usize, buckets: usize, epoch: u32) {
    let mut sum = 0u8;
    let mut seen = 0;
    for i in from..buckets {
        let Some((k, e)) = map.bucket(i) else {
            continue;
        };
        if e.version() >= epoch {
            continue;
        }
        sum ^= k.as_bytes().first().copied().unwrap_or(0);
        if let Value::Str(v) = e.value() {
            sum ^= v.first().copied().unwrap_or(0);
        }
        seen += 1;
        if seen >= CHUNK {
            break;
        }
    }
    std::hint::black_box(sum);
}

#[derive(Clone, Copy)]
struct Resume {
    /// The bucket index to continue at.
    next: usize,
    /// The table's [`layout`](crate::engine::Table::layout) reading when
    /// that index was taken.
    layout: u64,
}

fn mark_walked(e: &mut crate::engine::Entry, epoch: u32) {
    e.set_version(epoch);
}

impl Iterator for View {
    type Item = ViewEntry;

    fn next(&mut self) -> Option<ViewEntry> {
        if self.pending.is_empty() {
            while self.pending.is_empty() {
                if self.next_shard >= self.engine.shard_count() {
                    return None;
                }
                self.walk_chunk();
            }
            // Serve from the back so popping is O(1); order within a chunk
            // carries no meaning.
            self.pending.reverse();
        }
        let e = self.pending.pop()?;
        self.stats.yielded += 1;
        Some(e)
    }
}

impl Drop for View {
    fn drop(&mut self) {
        for i in self.next_shard..self.engine.shard_count() {
            let mut s = self.engine.lock_index(i, self.now_ms);
            s.data.preserved = None;
        }
        self.engine.view_active.store(false, Ordering::Release);
    }
}

/// One entry for [`crate::Keyspace::load_entries`].
#[derive(Clone, Debug, PartialEq)]
pub struct LoadEntry {
    /// Database index; entries for databases that do not exist are refused.
    pub db: u32,
    /// The key: built by whoever produces the entries (a restore's decoding
    /// thread), so the inserting thread only moves it into place.
    pub key: Key,
    /// Absolute expiry in unix milliseconds.
    pub expires_at_ms: Option<i64>,
    /// The value.
    pub value: Value,
}

/// What a bulk load did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Entries stored.
    pub loaded: u64,
    /// Entries skipped because they had already expired.
    pub expired_skipped: u64,
    /// Entries skipped because their database index does not exist.
    pub bad_db_skipped: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::{HashMap, VecDeque};

    use super::*;
    use crate::keyspace::Keyspace;

    fn str_value(v: &Value) -> Vec<u8> {
        match v {
            Value::Str(b) => b.to_vec(),
            other => panic!("not a string: {other:?}"),
        }
    }

    /// hashbrown rehashes a table in place (same bucket count, entries
    /// moved) when an insert finds no free slot left while the table holds
    /// at most half its capacity: the steady state of a table with
    /// delete/insert churn. Such a rehash between two chunks of a walk can
    /// move a not-yet-walked entry below the bucket index the walk resumes
    /// at; the walk must still yield it.
    ///
    /// The test picks which keys survive so that the first chunk ends just
    /// before an entry `x` that sits a whole group past the bucket where
    /// its probe starts: once the shard is sparse, any rehash puts `x` back
    /// in that first group, below the resume index. Churn (insert a new
    /// key, delete the oldest new one) runs until the table rehashes in
    /// place and `x` has provably moved; then the walk finishes and must
    /// yield every key of the cut exactly once with its value at the cut.
    #[test]
    fn walk_yields_every_key_when_its_shard_rehashes_in_place_mid_walk() {
        /// hashbrown's group width on x86_64 (SSE2), and its widest.
        const GROUP: usize = 16;
        /// Keys written after the view that churn keeps alive at a time.
        const WINDOW: usize = 16;
        /// A safety net: measured, the first in-place rehash of this
        /// 2,048-bucket table comes after about 20,000 operations.
        const MAX_CHURN: usize = 2_000_000;
        let ks = Keyspace::builder().databases(1).shards_per_db(1).build();
        let engine = ks.engine();
        let now = ks.now_ms();
        let value = |i: usize| format!("v{i}").into_bytes();
        let mut s = engine.lock_index(0, now);
        // Fill to the last free slot of 2,048 buckets (87.5% full), so many
        // keys sit past their probe's first group.
        let mut filled = 0;
        while !(s.data.map.num_buckets() == 2048 && s.data.map.len() == s.data.map.capacity()) {
            s.set(
                format!("k{filled}").as_bytes(),
                Value::Str(value(filled).into()),
                None,
            );
            filled += 1;
        }
        let mut by_pos: Vec<(usize, usize)> = (0..filled)
            .map(|i| {
                (
                    s.data.map.bucket_index(format!("k{i}").as_bytes()).unwrap(),
                    i,
                )
            })
            .collect();
        by_pos.sort_unstable();
        let key = |i: usize| format!("k{i}").into_bytes();
        let x = by_pos
            .iter()
            .map(|&(pos, i)| (pos, i, s.data.map.home_index(&key(i))))
            .find(|&(pos, _, home)| {
                pos >= 600
                    && home >= 300
                    && home + GROUP <= pos
                    && s.data.map.bucket(pos - 1).is_some()
            })
            .unwrap();
        let (x_pos, x_key, x_home) = x;
        // The survivors: the 127 lowest keys and the one just before `x`
        // (the first chunk), `x`, and every fifth key after it.
        let mut cut: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        for (n, &(pos, i)) in by_pos.iter().enumerate() {
            let survives =
                n < CHUNK - 1 || pos + 1 == x_pos || pos == x_pos || (pos > x_pos && i % 5 == 0);
            if survives {
                cut.insert(key(i), value(i));
            } else {
                s.remove(&key(i));
            }
        }
        drop(s);

        let mut view = ks.view().unwrap();
        let mut yielded: Vec<ViewEntry> = view.next_batch(CHUNK).unwrap();
        assert_eq!(yielded.len(), CHUNK);
        let resume_at = match view.resume {
            Some(r) if view.next_shard == 0 => r.next,
            _ => panic!("the first chunk did not stop inside the shard"),
        };
        assert_eq!(resume_at, x_pos, "the first chunk ends just before x");

        let mut window = VecDeque::new();
        let mut ops = 0;
        loop {
            assert!(ops < MAX_CHURN, "no in-place rehash after {ops} operations");
            let mut s = engine.lock_index(0, now);
            let buckets = s.data.map.num_buckets();
            // hashbrown reorganises the table on an insert exactly when it
            // has no free slot left (`growth_left == 0`).
            let reorganises = s.data.map.len() == s.data.map.capacity();
            let new_key = format!("new{ops}").into_bytes();
            s.set(&new_key, Value::Str(Box::from(&b"new"[..])), None);
            window.push_back(new_key);
            if window.len() > WINDOW
                && let Some(old) = window.pop_front()
            {
                s.remove(&old);
            }
            ops += 1;
            if reorganises {
                assert_eq!(
                    s.data.map.num_buckets(),
                    buckets,
                    "the table resized instead of rehashing in place"
                );
                let now_at = s.data.map.bucket_index(&key(x_key)).unwrap();
                assert!(
                    now_at < resume_at,
                    "the rehash left x at {now_at} (probe start {x_home}, was at {x_pos})"
                );
                println!(
                    "in-place rehash after {ops} churn operations moved x from {x_pos} to {now_at}, below the resume index {resume_at}"
                );
                break;
            }
        }

        while let Some(batch) = view.next_batch(1000) {
            yielded.extend(batch);
        }
        let mut seen: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        for e in &yielded {
            assert_eq!(e.db, 0);
            assert!(
                seen.insert(e.key.to_vec(), str_value(&e.value)).is_none(),
                "{:?} yielded twice",
                e.key
            );
        }
        let missing: Vec<_> = cut
            .keys()
            .filter(|k| !seen.contains_key(*k))
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        assert!(
            missing.is_empty(),
            "keys of the cut not yielded: {missing:?}"
        );
        assert_eq!(seen, cut);
    }
}
