//! The storage engine: sharded databases of versioned entries, lazy and
//! active expiry, and the write hook that feeds point-in-time views.
//!
//! Every mutation of an entry goes through [`Shard`]'s methods or an
//! [`EntryMut`]; that single path stamps the entry with the shard's current
//! epoch and, while a view has not yet walked the shard, first preserves the
//! old (key, value, expiry) for the view. See `view.rs` for the reader side.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hashbrown::HashTable;
use parking_lot::{Mutex, MutexGuard, RwLock};
use rand::Rng;

use crate::clock::Clock;
use crate::value::{Key, Value};
use crate::view::ViewEntry;

/// Expiry stored in an entry: 0 means none (real expiry times are always in
/// the future of a positive wall clock when stored).
const NO_EXPIRY: i64 = 0;

/// One key's stored state.
#[derive(Clone, Debug)]
pub struct Entry {
    value: Value,
    expires_at: i64,
    /// The epoch of the last write (or of the view walk that copied it).
    version: u32,
    /// Whether a copy of the key sits in the shard's TTL sample vector.
    in_ttl_index: bool,
    /// Redis' 24-bit `lru`: the LRU clock or the LFU time and counter at
    /// the last access (see `access.rs`). Three bytes so the entry does not
    /// grow: they fill the padding after `in_ttl_index`. Changed by
    /// lookups without stamping `version`, so a read never makes a view
    /// copy the entry.
    access: [u8; 3],
}

impl Entry {
    /// The value.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The absolute expiry in unix milliseconds, if any.
    pub fn expires_at_ms(&self) -> Option<i64> {
        (self.expires_at != NO_EXPIRY).then_some(self.expires_at)
    }

    /// The epoch of the last write to this entry.
    pub fn version(&self) -> u32 {
        self.version
    }

    pub(crate) fn set_version(&mut self, v: u32) {
        self.version = v;
    }

    /// The access field (Redis' `lru`): an LRU clock reading or, under an
    /// LFU policy, minutes << 8 | counter. See `access.rs`.
    pub fn access(&self) -> u32 {
        crate::access::unpack(self.access)
    }

    fn set_access(&mut self, field: u32) {
        self.access = crate::access::pack(field);
    }

    fn is_expired(&self, now: i64) -> bool {
        self.expires_at != NO_EXPIRY && self.expires_at <= now
    }
}

/// One shard's keys: a hash table of (key, entry) with its hasher.
///
/// A `HashTable` rather than a `HashMap` for one thing the map does not
/// offer: reading a bucket by its index. A view walks a shard in chunks,
/// releasing the lock between them; resuming at a bucket index is O(1),
/// where resuming a map iterator meant skipping every item already passed
/// (quadratic in the shard size).
///
/// A bucket index is only worth resuming at while no entry has moved, and
/// entries move not only when the table is resized: hashbrown also
/// rehashes in place (same bucket count) when an insert finds no free slot
/// left while at most half the capacity is used, the steady state of a
/// table with delete/insert churn. So every operation that may move
/// entries goes through this type and bumps [`Table::layout`]; removals and
/// in-place value changes never move other entries and leave it alone.
#[derive(Default)]
pub(crate) struct Table {
    table: HashTable<(Key, Entry)>,
    hasher: hashbrown::DefaultHashBuilder,
    /// Bumped by every operation that may have moved entries between
    /// buckets: equal readings mean every entry is where it was.
    layout: u64,
}

impl Table {
    fn with_hasher(hasher: hashbrown::DefaultHashBuilder) -> Table {
        Table {
            table: HashTable::new(),
            hasher,
            layout: 0,
        }
    }

    /// Changes whenever entries may have moved between buckets (a resize
    /// or an in-place rehash): a bucket index taken under one reading
    /// still points at the same entry under the same reading.
    pub(crate) fn layout(&self) -> u64 {
        self.layout
    }

    fn entries_may_move(&mut self) {
        self.layout = self.layout.wrapping_add(1);
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub(crate) fn capacity(&self) -> usize {
        self.table.capacity()
    }

    /// Number of buckets: bucket indices are `0..num_buckets()`.
    pub(crate) fn num_buckets(&self) -> usize {
        self.table.num_buckets()
    }

    /// The entry in bucket `index`, if that bucket is full.
    pub(crate) fn bucket(&self, index: usize) -> Option<(&Key, &Entry)> {
        self.table.get_bucket(index).map(|(k, e)| (k, e))
    }

    /// The entry in bucket `index`, if that bucket is full.
    pub(crate) fn bucket_mut(&mut self, index: usize) -> Option<(&Key, &mut Entry)> {
        self.table.get_bucket_mut(index).map(|(k, e)| (&*k, e))
    }

    /// The bucket index holding `key`: lets tests see entries move.
    #[cfg(test)]
    pub(crate) fn bucket_index(&self, key: &[u8]) -> Option<usize> {
        let h = self.hash(key);
        self.table
            .find_bucket_index(h, |(k, _)| k.as_bytes() == key)
    }

    /// Where hashbrown starts probing for `key` (the low bits of its
    /// hash): a key sitting a group (16 buckets) or more past it is one
    /// that a rehash moves.
    #[cfg(test)]
    pub(crate) fn home_index(&self, key: &[u8]) -> usize {
        (self.hash(key) as usize) & (self.num_buckets().max(1) - 1)
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&Entry> {
        let h = self.hash(key);
        self.table
            .find(h, |(k, _)| k.as_bytes() == key)
            .map(|(_, e)| e)
    }

    pub(crate) fn get_key_value_mut(&mut self, key: &[u8]) -> Option<(&Key, &mut Entry)> {
        let h = self.hash(key);
        self.table
            .find_mut(h, |(k, _)| k.as_bytes() == key)
            .map(|(k, e)| (&*k, e))
    }

    /// Inserts or replaces; returns the replaced entry.
    pub(crate) fn insert(&mut self, key: Key, entry: Entry) -> Option<Entry> {
        let h = self.hash(key.as_bytes());
        self.insert_hashed(h, key, entry)
    }

    /// [`insert`](Self::insert) with the key's hash already computed by
    /// this table's hasher.
    fn insert_hashed(&mut self, h: u64, key: Key, entry: Entry) -> Option<Entry> {
        // hashbrown 0.17's `entry` reserves room for one more item before
        // looking (even for a key that exists), and reserving reorganises
        // the table, resizing it or rehashing in place, exactly when no
        // free slot is left (`growth_left == 0`, i.e. len == capacity).
        if self.table.len() == self.table.capacity() {
            self.entries_may_move();
        }
        let hasher = &self.hasher;
        match self.table.entry(
            h,
            |(k, _)| k.as_bytes() == key.as_bytes(),
            |(k, _)| hasher.hash_one(k.as_bytes()),
        ) {
            hashbrown::hash_table::Entry::Occupied(mut o) => {
                Some(std::mem::replace(&mut o.get_mut().1, entry))
            }
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert((key, entry));
                None
            }
        }
    }

    pub(crate) fn remove_entry(&mut self, key: &[u8]) -> Option<(Key, Entry)> {
        let h = self.hash(key);
        match self.table.find_entry(h, |(k, _)| k.as_bytes() == key) {
            Ok(o) => Some(o.remove().0),
            Err(_) => None,
        }
    }

    /// The live entry for `key` at `now`; an expired one is removed and
    /// returned as `Err((key, entry))`. `Ok(None)`: absent.
    fn live_or_remove(&mut self, key: &[u8], now: i64) -> Result<Option<&mut Entry>, (Key, Entry)> {
        let h = self.hash(key);
        match self.table.find_entry(h, |(k, _)| k.as_bytes() == key) {
            Err(_) => Ok(None),
            Ok(o) if o.get().1.is_expired(now) => Err(o.remove().0),
            Ok(o) => Ok(Some(&mut o.into_mut().1)),
        }
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Entry> {
        self.table.iter().map(|(_, e)| e)
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut Entry> {
        self.table.iter_mut().map(|(_, e)| e)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&Key, &Entry)> {
        self.table.iter().map(|(k, e)| (k, e))
    }

    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = (&Key, &mut Entry)> {
        self.table.iter_mut().map(|(k, e)| (&*k, e))
    }

    fn drain(&mut self) -> impl Iterator<Item = (Key, Entry)> {
        self.entries_may_move();
        self.table.drain()
    }

    pub(crate) fn reserve(&mut self, additional: usize) {
        // hashbrown reorganises exactly when the room asked for exceeds
        // the free slots (`growth_left` = capacity - len).
        if additional > self.table.capacity() - self.table.len() {
            self.entries_may_move();
        }
        let hasher = &self.hasher;
        self.table
            .reserve(additional, |(k, _)| hasher.hash_one(k.as_bytes()));
    }

    pub(crate) fn shrink_to_fit(&mut self) {
        self.entries_may_move();
        let hasher = &self.hasher;
        self.table
            .shrink_to_fit(|(k, _)| hasher.hash_one(k.as_bytes()));
    }

    /// Empties the table and gives its memory back.
    fn clear_and_free(&mut self) {
        self.entries_may_move();
        self.table = HashTable::new();
    }

    /// Exchanges contents with `other` (SWAPDB). Each table's layout
    /// reading moves past both old ones, so a walk that took a reading on
    /// either shard cannot mistake the other table's for its own.
    fn swap_contents(&mut self, other: &mut Table) {
        std::mem::swap(&mut self.table, &mut other.table);
        std::mem::swap(&mut self.hasher, &mut other.hasher);
        let next = self.layout.max(other.layout).wrapping_add(1);
        self.layout = next;
        other.layout = next;
    }
}

/// The state behind one shard's lock.
#[derive(Default)]
pub(crate) struct ShardData {
    pub(crate) map: Table,
    /// Keys that had an expiry when set; may hold stale copies, cleaned by
    /// sampling and by rebuilds (see `maybe_rebuild_ttl_index`).
    ttl_keys: Vec<Key>,
    /// Exact number of entries with an expiry.
    ttl_count: usize,
    /// The version stamped on writes.
    pub(crate) epoch: u32,
    /// `Some` while the active view has not finished this shard: the old
    /// versions of entries written since the view was taken.
    pub(crate) preserved: Option<Preserved>,
}

/// A view's side buffer for one shard, in fixed-size chunks so that a
/// writer preserving an entry never pays for copying a large buffer on
/// growth (a single `Vec` made single SETs stall for milliseconds).
#[derive(Default)]
pub(crate) struct Preserved {
    chunks: Vec<Vec<ViewEntry>>,
}

impl Preserved {
    const CHUNK: usize = 256;

    pub(crate) fn push(&mut self, e: ViewEntry) {
        match self.chunks.last_mut() {
            Some(c) if c.len() < Self::CHUNK => c.push(e),
            _ => {
                let mut c = Vec::with_capacity(Self::CHUNK);
                c.push(e);
                self.chunks.push(c);
            }
        }
    }

    pub(crate) fn into_entries(self) -> impl Iterator<Item = ViewEntry> {
        self.chunks.into_iter().flatten()
    }
}

/// How the current thread holds the gate. A command runs synchronously on
/// one thread, so a thread-local is exact; it turns re-entrant use (a
/// command taking a view, or `Keyspace::atomic` inside a command) into
/// either a no-op or an error instead of a deadlock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Held {
    No,
    Read,
    Write,
}

thread_local! {
    static HELD: std::cell::Cell<Held> = const { std::cell::Cell::new(Held::No) };
}

/// How the calling thread holds the gate.
pub(crate) fn held() -> Held {
    HELD.with(|h| h.get())
}

/// [`Engine::enter_unless`] stopped waiting for the gate.
#[derive(Debug)]
pub(crate) struct GaveUp;

/// The gate as held by this thread; restores the previous state on drop.
pub(crate) struct GateGuard<'a> {
    _read: Option<parking_lot::RwLockReadGuard<'a, ()>>,
    _write: Option<parking_lot::RwLockWriteGuard<'a, ()>>,
    prev: Held,
}

impl Drop for GateGuard<'_> {
    fn drop(&mut self) {
        HELD.with(|h| h.set(self.prev));
    }
}

/// Counters shared by all shards.
pub(crate) struct Counters {
    pub(crate) dirty: AtomicU64,
    pub(crate) expired_keys: AtomicU64,
    pub(crate) preserved: AtomicU64,
    /// WATCHed keys; every write and expiry touches them.
    pub(crate) watches: crate::watch::Watches,
    /// Keyspace notifications and client-side caching invalidations.
    pub(crate) notify: Arc<crate::notify::Notifier>,
    /// How lookups update entries' access fields (`maxmemory-policy`).
    pub(crate) access: crate::access::AccessConfig,
    /// Clients blocked on keys: here, beside the write path, because a
    /// stream deleted or replaced by any path must release the XREADGROUP
    /// clients blocked on it.
    pub(crate) blocking: crate::blocking::Registry,
}

impl Counters {
    /// Redis' `signalModifiedKey`: every change of a key's value or
    /// existence, from the one write path below.
    #[inline]
    fn modified(&self, db: u32, key: &[u8]) {
        self.watches.touch(db, key);
        self.notify.key_changed(key);
    }

    /// Redis' `signalDeletedKeyAsReady`: a stream was deleted or
    /// overwritten (by a command, expiry, or a value of another type), so
    /// the XREADGROUP clients blocked on it are answered once the command
    /// ends (`-UNBLOCKED` or `-NOGROUP`, or served if a stream with their
    /// group took its place). One discriminant test and, when nobody is
    /// blocked, one atomic load.
    #[inline]
    fn value_gone(&self, db: u32, key: &[u8], old: &Value) {
        if matches!(old, Value::Stream(_)) {
            self.blocking.signal(db as usize, key);
        }
    }

    /// A key found expired and deleted (lazily or by the active cycle).
    #[inline]
    fn expired(&self, db: u32, key: &[u8]) {
        self.expired_keys.fetch_add(1, Ordering::Relaxed);
        self.notify
            .event(crate::notify::Class::Expired, "expired", db as usize, key);
        self.modified(db, key);
    }
}

/// The storage engine: all databases' shards and the view machinery.
pub(crate) struct Engine {
    shards: Box<[Mutex<ShardData>]>,
    databases: usize,
    per_db_shift: u32,
    hasher: hashbrown::DefaultHashBuilder,
    /// Held for read by every command and for write by whatever must be
    /// atomic against all of them (taking a view, FLUSHALL, SWAPDB, EXEC):
    /// this is what makes a view a cut between two commands.
    pub(crate) gate: RwLock<()>,
    pub(crate) epoch: AtomicU32,
    pub(crate) view_active: AtomicBool,
    pub(crate) counters: Counters,
    pub(crate) clock: Arc<dyn Clock>,
    expire_cursor: AtomicUsize,
}

impl Engine {
    pub(crate) fn new(
        databases: usize,
        shards_per_db: usize,
        clock: Arc<dyn Clock>,
        notify: Arc<crate::notify::Notifier>,
    ) -> Engine {
        let per_db = shards_per_db.max(1).next_power_of_two();
        let databases = databases.max(1);
        // Every shard's table hashes with the engine's hasher, so a hash
        // computed to pick the shard can be reused inside it.
        let hasher = hashbrown::DefaultHashBuilder::default();
        let shards = (0..databases * per_db)
            .map(|_| {
                Mutex::new(ShardData {
                    map: Table::with_hasher(hasher.clone()),
                    ..ShardData::default()
                })
            })
            .collect();
        Engine {
            shards,
            databases,
            per_db_shift: per_db.trailing_zeros(),
            hasher,
            gate: RwLock::new(()),
            epoch: AtomicU32::new(0),
            view_active: AtomicBool::new(false),
            counters: Counters {
                dirty: AtomicU64::new(0),
                expired_keys: AtomicU64::new(0),
                preserved: AtomicU64::new(0),
                watches: crate::watch::Watches::default(),
                notify,
                access: crate::access::AccessConfig::default(),
                blocking: crate::blocking::Registry::default(),
            },
            clock,
            expire_cursor: AtomicUsize::new(0),
        }
    }

    pub(crate) fn databases(&self) -> usize {
        self.databases
    }

    /// Takes the gate for read or write, or notes that this thread already
    /// holds it strongly enough. `None`: this thread holds it for read and
    /// asks for write, which would deadlock.
    pub(crate) fn enter(&self, want: Held) -> Option<GateGuard<'_>> {
        let prev = HELD.with(|h| h.get());
        let (read, write, now) = match (prev, want) {
            (Held::No, Held::Read) => (Some(self.gate.read()), None, Held::Read),
            (Held::No, Held::Write) => (None, Some(self.gate.write()), Held::Write),
            (Held::Read, Held::Write) => return None,
            (held, _) => (None, None, held),
        };
        HELD.with(|h| h.set(now));
        Some(GateGuard {
            _read: read,
            _write: write,
            prev,
        })
    }

    /// [`enter`](Self::enter) for a command a connection runs: while the
    /// gate is held by another thread, asks `give_up` every `GATE_POLL`
    /// and answers `Err(GaveUp)` when it says so. A busy script holds the
    /// gate on a tokio worker and declares itself busy only once it has
    /// run a while; a command already waiting for the gate then stops
    /// waiting (and holding its worker) and waits asynchronously instead.
    pub(crate) fn enter_unless(
        &self,
        want: Held,
        give_up: impl Fn() -> bool,
    ) -> Result<Option<GateGuard<'_>>, GaveUp> {
        /// Short enough that a worker caught waiting for a script frees
        /// itself at once on the scale of the busy threshold.
        const GATE_POLL: Duration = Duration::from_micros(500);
        let prev = HELD.with(|h| h.get());
        if prev != Held::No {
            return Ok(self.enter(want));
        }
        let (read, write) = loop {
            let got = match want {
                Held::Read => self.gate.try_read_for(GATE_POLL).map(|g| (Some(g), None)),
                Held::Write => self.gate.try_write_for(GATE_POLL).map(|g| (None, Some(g))),
                Held::No => Some((None, None)),
            };
            if let Some(g) = got {
                break g;
            }
            if give_up() {
                return Err(GaveUp);
            }
        };
        HELD.with(|h| h.set(want));
        Ok(Some(GateGuard {
            _read: read,
            _write: write,
            prev,
        }))
    }

    pub(crate) fn shards_per_db(&self) -> usize {
        1 << self.per_db_shift
    }

    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The global index of the shard holding `key` in `db`.
    pub(crate) fn shard_index(&self, db: usize, key: &[u8]) -> usize {
        self.shard_of_hash(db, self.hasher.hash_one(key))
    }

    /// The global index of the shard holding a key of hash `h` (from
    /// [`key_hash`](Self::key_hash)) in `db`.
    pub(crate) fn shard_of_hash(&self, db: usize, h: u64) -> usize {
        // High bits: hashbrown indexes buckets by the low bits and tags by
        // the top 7, so bits 40.. leave both undisturbed within a shard.
        let within = (h >> 40) as usize & (self.shards_per_db() - 1);
        (db << self.per_db_shift) | within
    }

    /// A process-stable hash of `key` (SCAN orders keys by it).
    pub(crate) fn key_hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    pub(crate) fn db_of_shard(&self, idx: usize) -> usize {
        idx >> self.per_db_shift
    }

    /// Locks the shard with global index `idx`.
    pub(crate) fn lock_index(&self, idx: usize, now: i64) -> Shard<'_> {
        let data = match self.shards.get(idx) {
            Some(s) => s.lock(),
            // Indices come from `shard_index`/ranges over `shard_count`.
            None => unreachable_shard(idx),
        };
        Shard {
            data,
            db: self.db_of_shard(idx) as u32,
            now,
            counters: &self.counters,
        }
    }

    /// Locks the shard holding `key` in `db`.
    pub(crate) fn lock(&self, db: usize, key: &[u8], now: i64) -> Shard<'_> {
        self.lock_index(self.shard_index(db, key), now)
    }

    /// The shards of `db` as a range of global indices.
    pub(crate) fn db_shards(&self, db: usize) -> std::ops::Range<usize> {
        let n = self.shards_per_db();
        db * n..(db + 1) * n
    }

    /// Number of keys and keys with an expiry in `db` (expired-but-not-yet
    /// -collected keys included, as in Redis' INFO keyspace).
    pub(crate) fn db_counts(&self, db: usize) -> (usize, usize) {
        let mut keys = 0;
        let mut expires = 0;
        for i in self.db_shards(db) {
            if let Some(s) = self.shards.get(i) {
                let s = s.lock();
                keys += s.map.len();
                expires += s.ttl_count;
            }
        }
        (keys, expires)
    }

    /// MEMORY STATS' `overhead.hashtable.main` and `.expires` of `db`:
    /// bytes of the shards' table slots (key and entry inline, plus a
    /// control byte per bucket) and of their TTL sample vectors.
    pub(crate) fn db_overhead(&self, db: usize) -> (usize, usize) {
        let slot = std::mem::size_of::<(Key, Entry)>() + 1;
        let mut main = 0;
        let mut expires = 0;
        for i in self.db_shards(db) {
            if let Some(s) = self.shards.get(i) {
                let s = s.lock();
                main += s.map.num_buckets() * slot;
                expires += s.ttl_keys.capacity() * std::mem::size_of::<Key>();
            }
        }
        (main, expires)
    }

    /// Sum of remaining TTLs and count of volatile keys in `db`, for INFO.
    pub(crate) fn db_ttl_sum(&self, db: usize, now: i64) -> (i128, usize) {
        let mut sum = 0i128;
        let mut n = 0;
        for i in self.db_shards(db) {
            if let Some(s) = self.shards.get(i) {
                let s = s.lock();
                if s.ttl_count == 0 {
                    continue;
                }
                for e in s.map.values() {
                    if e.expires_at != NO_EXPIRY {
                        sum += i128::from((e.expires_at - now).max(0));
                        n += 1;
                    }
                }
            }
        }
        (sum, n)
    }

    /// Makes room for `keys` more keys spread over `db`'s shards, so a
    /// bulk load does not rehash every table as it grows.
    pub(crate) fn reserve(&self, db: usize, keys: usize) {
        let per_shard = keys.div_ceil(self.shards_per_db());
        for i in self.db_shards(db) {
            if let Some(s) = self.shards.get(i) {
                s.lock().map.reserve(per_shard);
            }
        }
    }

    /// Gives back table space that a [`reserve`](Self::reserve) hint
    /// overestimated (a snapshot whose keys sit in other databases).
    pub(crate) fn trim(&self) {
        for s in self.shards.iter() {
            let mut s = s.lock();
            // Only tables at least 4x too large: shrinking rehashes, and a
            // table between 1/8 and 7/8 full is a normal state.
            if s.map.capacity() > 4 * s.map.len() + 64 {
                s.map.shrink_to_fit();
            }
        }
    }

    pub(crate) fn dirty(&self) -> u64 {
        self.counters.dirty.load(Ordering::Relaxed)
    }

    /// Removes every key of the given databases. The caller holds the gate
    /// for write so this is atomic against all commands.
    pub(crate) fn flush_dbs(&self, dbs: std::ops::Range<usize>) -> usize {
        let mut removed = 0;
        for db in dbs {
            for i in self.db_shards(db) {
                let mut s = self.lock_index(i, 0);
                removed += s.clear();
            }
            // XREADGROUP clients blocked on the flushed streams (Redis'
            // `scanDatabaseForDeletedStreams`).
            self.counters.blocking.signal_db(db);
        }
        removed
    }

    /// Swaps two databases' contents. The caller holds the gate for write.
    pub(crate) fn swap_dbs(&self, a: usize, b: usize) {
        if a == b {
            return;
        }
        for (ia, ib) in self.db_shards(a).zip(self.db_shards(b)) {
            let (lo, hi) = if ia < ib { (ia, ib) } else { (ib, ia) };
            let mut s_lo = self.lock_index(lo, 0);
            let mut s_hi = self.lock_index(hi, 0);
            // A view that has not walked one of these shards must still see
            // the pre-swap contents under the pre-swap db number: copy them
            // out now and mark everything as walked. Rare (SWAPDB during a
            // snapshot) and bounded by the two databases' sizes.
            s_lo.preserve_all();
            s_hi.preserve_all();
            let d_lo = &mut *s_lo.data;
            let d_hi = &mut *s_hi.data;
            d_lo.map.swap_contents(&mut d_hi.map);
            std::mem::swap(&mut d_lo.ttl_keys, &mut d_hi.ttl_keys);
            std::mem::swap(&mut d_lo.ttl_count, &mut d_hi.ttl_count);
            // Entries moved into a shard must not look older than its
            // epoch, or its view would walk them a second time.
            for d in [d_lo, d_hi] {
                if d.preserved.is_some() {
                    let epoch = d.epoch;
                    for e in d.map.values_mut() {
                        e.version = epoch;
                    }
                }
            }
        }
        self.counters.dirty.fetch_add(1, Ordering::Relaxed);
    }

    /// One bounded round of active expiry; see [`crate::Keyspace::active_expire_cycle`].
    /// `give_up`: asked while waiting for the gate; a busy script holds
    /// it, and the cycle must not hold the caller's worker meanwhile.
    pub(crate) fn active_expire_cycle(
        &self,
        budget: Duration,
        give_up: impl Fn() -> bool,
    ) -> ExpireStats {
        const SAMPLE: usize = 20;
        let start = Instant::now();
        let mut stats = ExpireStats::default();
        let n = self.shard_count();
        let first = self.expire_cursor.load(Ordering::Relaxed) % n.max(1);
        let mut rng = rand::rng();
        for step in 0..n {
            let idx = (first + step) % n;
            self.expire_cursor.store(idx + 1, Ordering::Relaxed);
            loop {
                let now = self.clock.now_ms();
                let (sampled, expired) = {
                    let Ok(_g) = self.enter_unless(Held::Read, &give_up) else {
                        return stats;
                    };
                    let mut s = self.lock_index(idx, now);
                    s.expire_sample(SAMPLE, &mut rng)
                };
                stats.sampled += sampled;
                stats.expired += expired;
                if start.elapsed() >= budget {
                    stats.timed_out = true;
                    return stats;
                }
                // Redis' rule: keep going on this shard while more than a
                // quarter of the sample had expired.
                if sampled == 0 || expired * 4 <= sampled {
                    break;
                }
            }
        }
        stats
    }
}

#[cold]
fn unreachable_shard(idx: usize) -> ! {
    // Only reachable through a bug in index arithmetic, never from input.
    panic!("shard index {idx} out of range")
}

/// What one active expiry cycle did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpireStats {
    /// Keys with an expiry that were looked at.
    pub sampled: usize,
    /// Keys deleted because they had expired.
    pub expired: usize,
    /// Whether the time budget ran out before every shard was visited.
    pub timed_out: bool,
}

/// A locked shard: the one place where entries are read and written.
///
/// Reads expire lazily (an expired key is deleted when touched and never
/// returned); writes stamp versions, count changes and preserve old
/// versions for an active view.
pub struct Shard<'a> {
    pub(crate) data: MutexGuard<'a, ShardData>,
    db: u32,
    now: i64,
    counters: &'a Counters,
}

/// Records the old version of `key` for the active view, if the view still
/// needs it. Takes the pieces of `ShardData` it needs so callers can hold a
/// borrow of the map at the same time.
fn preserve(
    preserved: &mut Option<Preserved>,
    epoch: u32,
    counters: &Counters,
    db: u32,
    key: &Key,
    entry: &Entry,
) {
    if entry.version < epoch
        && let Some(buf) = preserved
    {
        counters.preserved.fetch_add(1, Ordering::Relaxed);
        buf.push(ViewEntry {
            db,
            key: key.to_bytes(),
            expires_at_ms: entry.expires_at_ms(),
            value: entry.value.clone(),
        });
    }
}

impl<'a> Shard<'a> {
    /// The database this shard belongs to.
    pub fn db(&self) -> usize {
        self.db as usize
    }

    /// The command time used for expiry decisions.
    pub fn now_ms(&self) -> i64 {
        self.now
    }

    /// Publishes the keyspace event `event` of `class` for `key` in this
    /// shard's database (see [`Ctx::notify`](crate::Ctx::notify)), for
    /// helpers that hold a shard but no command context.
    #[inline]
    pub fn notify(&self, class: crate::notify::Class, event: &str, key: &[u8]) {
        self.counters
            .notify
            .event(class, event, self.db as usize, key);
    }

    /// Counts `n` more changes for commands that change several elements
    /// at once (Redis counts each one in `rdb_changes_since_last_save`).
    pub(crate) fn add_changes(&self, n: u64) {
        self.counters.dirty.fetch_add(n, Ordering::Relaxed);
    }

    /// Unlocks handing the lock straight to a waiting thread, so a writer
    /// waiting behind a view's walk gets in before the walker's next chunk.
    pub(crate) fn unlock_fair(self) {
        MutexGuard::unlock_fair(self.data);
    }

    /// The live entry for `key`, deleting it first if it has expired.
    ///
    /// A read-only command's lookups count as keyspace hits and misses
    /// (INFO) and a miss publishes `keymiss`, as Redis' `lookupKeyRead`.
    pub fn get(&mut self, key: &[u8]) -> Option<&Entry> {
        self.read_lookup(key, true)
    }

    /// [`get`](Self::get) without counting as an access to the key (its
    /// access field is left alone): Redis' `LOOKUP_NOTOUCH`, used by TYPE,
    /// EXISTS, TTL and its variants, and OBJECT. Hits, misses and `keymiss`
    /// count as for [`get`](Self::get) (NOTOUCH is not NONOTIFY).
    pub fn get_untouched(&mut self, key: &[u8]) -> Option<&Entry> {
        self.read_lookup(key, false)
    }

    /// A read's lookup: counted as a hit or a miss, and a miss published as
    /// `keymiss`, as Redis' `lookupKeyRead` does.
    fn read_lookup(&mut self, key: &[u8], touch: bool) -> Option<&Entry> {
        let (counters, db) = (self.counters, self.db);
        let found = self.lookup(key, touch).map(|e| &*e);
        if crate::stats::lookup(found.is_some())
            && found.is_none()
            && crate::stats::keymiss_wanted()
        {
            counters
                .notify
                .event(crate::notify::Class::KeyMiss, "keymiss", db as usize, key);
        }
        found
    }

    /// The entry stored for `key` as it is, expired or not, without
    /// deleting, counting or touching it: what Redis' MEMORY USAGE and
    /// DEBUG OBJECT read (`dictFind` on the main dictionary).
    pub fn peek(&self, key: &[u8]) -> Option<&Entry> {
        self.data.map.get(key)
    }

    /// Gives `key` the access field of a new key (COPY's destination is a
    /// new object in Redis, even when it replaces one).
    pub fn renew_access(&mut self, key: &[u8]) {
        let field = self.counters.access.new_field(self.now);
        self.set_access(key, field);
    }

    /// Sets the access field of `key` (a renamed or moved key keeps the
    /// field of its value, as Redis moves the object with its `lru`).
    /// Not a write: the version is left alone.
    pub fn set_access(&mut self, key: &[u8], field: u32) {
        if let Some((_, e)) = self.data.map.get_key_value_mut(key) {
            e.set_access(field);
        }
    }

    /// The live value for `key`.
    pub fn value(&mut self, key: &[u8]) -> Option<&Value> {
        self.get(key).map(Entry::value)
    }

    /// Whether `key` exists (and has not expired).
    pub fn contains(&mut self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    fn get_entry_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        self.lookup(key, true)
    }

    /// The live entry for `key` (lazily expiring it), and Redis'
    /// `lookupKey` update of its access field when `touch`. The field
    /// changes in place under the shard's lock, which every lookup holds
    /// exclusively: no atomic is needed, and the version is not stamped,
    /// so a view never copies an entry because it was read.
    fn lookup(&mut self, key: &[u8], touch: bool) -> Option<&mut Entry> {
        let now = self.now;
        let d = &mut *self.data;
        match d.map.live_or_remove(key, now) {
            Ok(Some(e)) => {
                if touch {
                    let field = self.counters.access.touched(e.access(), now);
                    e.set_access(field);
                }
                Some(e)
            }
            Ok(None) => None,
            Err((k, e)) => {
                preserve(&mut d.preserved, d.epoch, self.counters, self.db, &k, &e);
                if e.expires_at != NO_EXPIRY {
                    d.ttl_count -= 1;
                }
                self.counters.expired(self.db, k.as_bytes());
                self.counters.value_gone(self.db, k.as_bytes(), &e.value);
                None
            }
        }
    }

    /// The live entry for `key` opened for writing. Nothing is written (no
    /// version stamp, no change counted) until a mutating method is called.
    pub fn entry_mut(&mut self, key: &[u8]) -> Option<EntryMut<'_>> {
        // Lazy expiry first; then a second lookup to split the borrows.
        self.get_entry_mut(key)?;
        let d = &mut *self.data;
        let (k, entry) = d.map.get_key_value_mut(key)?;
        Some(EntryMut {
            key: k,
            entry,
            preserved: &mut d.preserved,
            epoch: d.epoch,
            ttl_keys: &mut d.ttl_keys,
            ttl_count: &mut d.ttl_count,
            counters: self.counters,
            db: self.db,
            written: false,
        })
    }

    /// Sets `key` to `value` with the given absolute expiry (None: no
    /// expiry), replacing any old value and expiry. Returns the old entry.
    pub fn set(&mut self, key: &[u8], value: Value, expires_at_ms: Option<i64>) -> Option<Entry> {
        self.store(key, value, Some(expires_at_ms.unwrap_or(NO_EXPIRY)))
    }

    /// Sets `key` to `value`, keeping the old expiry if the key existed.
    pub fn set_keep_ttl(&mut self, key: &[u8], value: Value) -> Option<Entry> {
        self.store(key, value, None)
    }

    /// `expires`: None keeps the current expiry; Some(NO_EXPIRY) clears it.
    fn store(&mut self, key: &[u8], value: Value, expires: Option<i64>) -> Option<Entry> {
        let now = self.now;
        let db = self.db;
        let counters = self.counters;
        counters.dirty.fetch_add(1, Ordering::Relaxed);
        let d = &mut *self.data;
        if let Some((k, e)) = d.map.get_key_value_mut(key) {
            let expired = e.is_expired(now);
            preserve(&mut d.preserved, d.epoch, counters, db, k, e);
            counters.value_gone(db, key, &e.value);
            if expired {
                // Redis deletes it first (lookupKeyWrite), then adds anew.
                counters.expired(db, key);
                counters
                    .notify
                    .event(crate::notify::Class::New, "new", db as usize, key);
            }
            counters.modified(db, key);
            let new_expiry = match expires {
                Some(x) => x,
                None if expired => NO_EXPIRY,
                None => e.expires_at,
            };
            let had = e.expires_at != NO_EXPIRY;
            let has = new_expiry != NO_EXPIRY;
            let old = Entry {
                value: std::mem::replace(&mut e.value, value),
                expires_at: e.expires_at,
                version: e.version,
                in_ttl_index: e.in_ttl_index,
                access: e.access,
            };
            // Redis' setKey looks the key up for writing first (an access),
            // then dbSetValue keeps the old LFU field or, under LRU, the
            // new object's fresh clock: both are one touch here. A key
            // that had expired is added anew.
            let field = if expired {
                counters.access.new_field(now)
            } else {
                counters.access.touched(e.access(), now)
            };
            e.set_access(field);
            e.expires_at = new_expiry;
            e.version = d.epoch;
            if has && !e.in_ttl_index {
                e.in_ttl_index = true;
                d.ttl_keys.push(k.clone());
            }
            match (had, has) {
                (false, true) => d.ttl_count += 1,
                (true, false) => d.ttl_count -= 1,
                _ => {}
            }
            return if expired { None } else { Some(old) };
        }
        counters
            .notify
            .event(crate::notify::Class::New, "new", db as usize, key);
        counters.modified(db, key);
        let expires_at = expires.unwrap_or(NO_EXPIRY);
        let has = expires_at != NO_EXPIRY;
        d.map.insert(
            Key::new(key),
            Entry {
                value,
                expires_at,
                version: d.epoch,
                in_ttl_index: has,
                access: crate::access::pack(counters.access.new_field(now)),
            },
        );
        if has {
            d.ttl_keys.push(Key::new(key));
            d.ttl_count += 1;
            maybe_rebuild_ttl_index(d);
        }
        None
    }

    /// Deletes `key`; returns its entry if it existed and had not expired.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        // Lazy expiry first so an expired key reports "absent".
        self.lookup(key, false)?;
        let d = &mut *self.data;
        let (k, e) = d.map.remove_entry(key)?;
        preserve(&mut d.preserved, d.epoch, self.counters, self.db, &k, &e);
        if e.expires_at != NO_EXPIRY {
            d.ttl_count -= 1;
        }
        self.counters.dirty.fetch_add(1, Ordering::Relaxed);
        self.counters.modified(self.db, key);
        self.counters.value_gone(self.db, key, &e.value);
        Some(e)
    }

    /// Deletes `key` if it holds an empty collection (Redis never keeps
    /// those); call after removing elements.
    pub fn remove_if_empty(&mut self, key: &[u8]) -> bool {
        let empty = self
            .data
            .map
            .get(key)
            .is_some_and(|e| e.value.is_empty_collection());
        if empty {
            let d = &mut *self.data;
            if let Some((k, e)) = d.map.remove_entry(key) {
                // The write that emptied it already preserved and stamped it.
                preserve(&mut d.preserved, d.epoch, self.counters, self.db, &k, &e);
                if e.expires_at != NO_EXPIRY {
                    d.ttl_count -= 1;
                }
            }
            // After the event of the command that emptied it, as Redis.
            self.counters
                .notify
                .event(crate::notify::Class::Generic, "del", self.db as usize, key);
        }
        empty
    }

    /// Number of keys stored in this shard, expired ones not yet collected
    /// included.
    pub fn len(&self) -> usize {
        self.data.map.len()
    }

    /// Whether the shard stores no keys.
    pub fn is_empty(&self) -> bool {
        self.data.map.is_empty()
    }

    /// The key at an index drawn uniformly from `0..bound`, if that index is
    /// a bucket of this shard's table holding a live key. With one `bound`
    /// at least every shard's [`Self::num_buckets`], each draw (of a shard,
    /// then an index) hits every live key of the database with the same
    /// probability, so drawing until a hit is an exactly uniform pick, in
    /// O(1) expected draws while the tables are not sparse.
    pub fn random_bucket_key<R: Rng + ?Sized>(&self, rng: &mut R, bound: usize) -> Option<&Key> {
        if bound == 0 || self.data.map.is_empty() {
            return None;
        }
        let index = rng.random_range(0..bound);
        if index >= self.data.map.num_buckets() {
            return None;
        }
        let (k, e) = self.data.map.bucket(index)?;
        (!e.is_expired(self.now)).then_some(k)
    }

    /// Number of buckets of this shard's table (see [`Self::random_bucket_key`]).
    pub fn num_buckets(&self) -> usize {
        self.data.map.num_buckets()
    }

    /// Live keys of this shard (expired ones skipped, not deleted).
    pub fn keys(&self) -> impl Iterator<Item = (&Key, &Entry)> + '_ {
        let now = self.now;
        self.data
            .map
            .iter()
            .filter(move |(_, e)| !e.is_expired(now))
    }

    /// Removes everything; returns the number of keys removed.
    pub(crate) fn clear(&mut self) -> usize {
        let d = &mut *self.data;
        let n = d.map.len();
        if let Some(buf) = &mut d.preserved {
            // Move (not copy) what the view still needs: flushing during a
            // snapshot costs no extra memory.
            let epoch = d.epoch;
            for (k, e) in d.map.drain() {
                if e.version < epoch {
                    self.counters.preserved.fetch_add(1, Ordering::Relaxed);
                    buf.push(ViewEntry {
                        db: self.db,
                        key: Bytes::from(Vec::from(k.as_bytes())),
                        expires_at_ms: e.expires_at_ms(),
                        value: e.value,
                    });
                }
            }
        }
        d.map.clear_and_free();
        d.ttl_keys = Vec::new();
        d.ttl_count = 0;
        self.counters.dirty.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// Copies every not-yet-walked entry out for the active view and marks
    /// all entries walked.
    fn preserve_all(&mut self) {
        let d = &mut *self.data;
        let epoch = d.epoch;
        if let Some(buf) = &mut d.preserved {
            for (k, e) in d.map.iter_mut() {
                if e.version < epoch {
                    self.counters.preserved.fetch_add(1, Ordering::Relaxed);
                    buf.push(ViewEntry {
                        db: self.db,
                        key: k.to_bytes(),
                        expires_at_ms: e.expires_at_ms(),
                        value: e.value.clone(),
                    });
                    e.version = epoch;
                }
            }
        }
    }

    /// Inserts a loaded entry without counting a change.
    ///
    /// `hash` is [`Engine::key_hash`] of the key (the shard's table hashes
    /// with the engine's hasher).
    pub(crate) fn load(&mut self, hash: u64, key: Key, value: Value, expires_at_ms: Option<i64>) {
        let d = &mut *self.data;
        let expires_at = expires_at_ms.unwrap_or(NO_EXPIRY);
        let has = expires_at != NO_EXPIRY;
        let ttl_key = has.then(|| key.clone());
        let old = d.map.insert_hashed(
            hash,
            key,
            Entry {
                value,
                expires_at,
                version: d.epoch,
                in_ttl_index: has,
                // Restored keys start as new ones: snapshots do not keep
                // access fields (Redis' RDB keeps them only under an
                // eviction policy that reads them).
                access: crate::access::pack(self.counters.access.new_field(self.now)),
            },
        );
        if let Some(o) = old
            && o.expires_at != NO_EXPIRY
        {
            d.ttl_count -= 1;
        }
        if let Some(k) = ttl_key {
            d.ttl_keys.push(k);
            d.ttl_count += 1;
        }
    }

    /// Number of entries with an expiry (eviction's volatile-* policies
    /// sample only shards that have some).
    pub(crate) fn volatile_len(&self) -> usize {
        self.data.ttl_count
    }

    /// Eviction's sample (Redis' `dictGetSomeKeys` on `db->dict`, or on
    /// `db->expires` when `volatile`): up to `n` keys with their access
    /// field and expiry, taken from consecutive buckets (or TTL sample
    /// slots) after a random one, at most `max_steps` of them (Redis walks
    /// `10 n`). Returns how many were taken. Nothing is changed: a sample
    /// is not an access.
    pub(crate) fn evict_sample(
        &self,
        n: usize,
        max_steps: usize,
        volatile: bool,
        rng: &mut impl Rng,
        out: &mut Vec<(Bytes, u32, Option<i64>)>,
    ) -> usize {
        let d = &*self.data;
        let slots = if volatile {
            if d.ttl_count == 0 {
                return 0;
            }
            d.ttl_keys.len()
        } else {
            if d.map.is_empty() {
                return 0;
            }
            d.map.num_buckets()
        };
        if slots == 0 || n == 0 {
            return 0;
        }
        let start = rng.random_range(0..slots);
        let mut got = 0;
        for step in 0..slots.min(max_steps) {
            let i = (start + step) % slots;
            let found = if volatile {
                d.ttl_keys.get(i).and_then(|k| {
                    d.map
                        .get(k.as_bytes())
                        .filter(|e| e.expires_at != NO_EXPIRY)
                        .map(|e| (k, e))
                })
            } else {
                d.map.bucket(i)
            };
            if let Some((k, e)) = found {
                out.push((k.to_bytes(), e.access(), e.expires_at_ms()));
                got += 1;
                if got == n {
                    break;
                }
            }
        }
        got
    }

    /// Samples up to `n` keys with an expiry; deletes the expired ones.
    /// Returns (sampled, expired).
    fn expire_sample(&mut self, n: usize, rng: &mut impl Rng) -> (usize, usize) {
        let now = self.now;
        let db = self.db;
        let counters = self.counters;
        let d = &mut *self.data;
        let mut sampled = 0;
        let mut expired = 0;
        let mut tries = 0;
        while sampled < n && !d.ttl_keys.is_empty() && d.ttl_count > 0 && tries < n * 4 {
            tries += 1;
            let i = rng.random_range(0..d.ttl_keys.len());
            let Some(key) = d.ttl_keys.get(i) else { break };
            let h = d.map.hash(key.as_bytes());
            let found = d
                .map
                .table
                .find_entry(h, |(k, _)| k.as_bytes() == key.as_bytes());
            match found {
                Err(_) => {
                    d.ttl_keys.swap_remove(i);
                }
                Ok(mut o) => {
                    if o.get().1.expires_at == NO_EXPIRY {
                        o.get_mut().1.in_ttl_index = false;
                        d.ttl_keys.swap_remove(i);
                        continue;
                    }
                    sampled += 1;
                    if o.get().1.is_expired(now) {
                        let ((k, e), _) = o.remove();
                        preserve(&mut d.preserved, d.epoch, counters, db, &k, &e);
                        d.ttl_count -= 1;
                        d.ttl_keys.swap_remove(i);
                        counters.expired(db, k.as_bytes());
                        counters.value_gone(db, k.as_bytes(), &e.value);
                        expired += 1;
                    }
                }
            }
        }
        (sampled, expired)
    }
}

/// Rebuilds the TTL sample vector when stale copies outnumber live ones, so
/// it stays O(live keys with TTL) in size; amortized O(1) per insert.
fn maybe_rebuild_ttl_index(d: &mut ShardData) {
    if d.ttl_keys.len() <= 2 * d.ttl_count + 64 {
        return;
    }
    let mut keys = Vec::with_capacity(d.ttl_count);
    for (k, e) in d.map.iter_mut() {
        e.in_ttl_index = e.expires_at != NO_EXPIRY;
        if e.in_ttl_index {
            keys.push(k.clone());
        }
    }
    d.ttl_keys = keys;
}

/// A live entry opened for writing; see [`Shard::entry_mut`].
pub struct EntryMut<'s> {
    key: &'s Key,
    entry: &'s mut Entry,
    preserved: &'s mut Option<Preserved>,
    epoch: u32,
    ttl_keys: &'s mut Vec<Key>,
    ttl_count: &'s mut usize,
    counters: &'s Counters,
    db: u32,
    written: bool,
}

impl EntryMut<'_> {
    /// The value, for reading.
    pub fn value(&self) -> &Value {
        &self.entry.value
    }

    /// The absolute expiry in unix milliseconds, if any.
    pub fn expires_at_ms(&self) -> Option<i64> {
        self.entry.expires_at_ms()
    }

    fn before_write(&mut self) {
        if !self.written {
            self.written = true;
            preserve(
                self.preserved,
                self.epoch,
                self.counters,
                self.db,
                self.key,
                self.entry,
            );
            self.entry.version = self.epoch;
            self.counters.dirty.fetch_add(1, Ordering::Relaxed);
            self.counters.modified(self.db, self.key.as_bytes());
        }
    }

    /// The value, for writing: counts one change and preserves the old
    /// version for an active view first.
    pub fn value_mut(&mut self) -> &mut Value {
        self.before_write();
        &mut self.entry.value
    }

    /// Sets or clears the expiry.
    pub fn set_expires_at_ms(&mut self, at: Option<i64>) {
        self.before_write();
        let had = self.entry.expires_at != NO_EXPIRY;
        self.entry.expires_at = at.unwrap_or(NO_EXPIRY);
        let has = self.entry.expires_at != NO_EXPIRY;
        match (had, has) {
            (false, true) => *self.ttl_count += 1,
            (true, false) => *self.ttl_count -= 1,
            _ => {}
        }
        if has && !self.entry.in_ttl_index {
            self.entry.in_ttl_index = true;
            self.ttl_keys.push(self.key.clone());
        }
    }
}

/// Several shards locked together, in ascending index order so that two
/// multi-key commands can never deadlock.
pub struct Locked<'a> {
    shards: Vec<(usize, Shard<'a>)>,
    engine: &'a Engine,
}

impl<'a> Locked<'a> {
    pub(crate) fn new(engine: &'a Engine, mut idx: Vec<usize>, now: i64) -> Locked<'a> {
        idx.sort_unstable();
        idx.dedup();
        let shards = idx
            .into_iter()
            .map(|i| (i, engine.lock_index(i, now)))
            .collect();
        Locked { shards, engine }
    }

    /// The locked shard holding `key` in `db`.
    ///
    /// # Panics
    ///
    /// If that shard was not among those locked: a bug in the command that
    /// declared its keys, never something a client can cause.
    pub fn shard(&mut self, db: usize, key: &[u8]) -> &mut Shard<'a> {
        let idx = self.engine.shard_index(db, key);
        match self.shards.iter_mut().find(|(i, _)| *i == idx) {
            Some((_, s)) => s,
            None => panic!("key's shard {idx} was not locked"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::VecDeque;

    use rand::{Rng, SeedableRng};

    use super::*;

    fn entry(n: i64) -> Entry {
        Entry {
            value: Value::Int(n),
            expires_at: NO_EXPIRY,
            version: 0,
            in_ttl_index: false,
            access: [0; 3],
        }
    }

    /// The access field fills padding: an entry is as large as without
    /// it, and so is a table slot (key + entry).
    #[test]
    fn the_access_field_does_not_grow_entries() {
        assert_eq!(std::mem::size_of::<Entry>(), 40);
        assert_eq!(std::mem::size_of::<(Key, Entry)>(), 64);
    }

    /// The premise of resuming a view's walk by bucket index: while
    /// [`Table::layout`] reads the same, no entry has changed bucket.
    ///
    /// Rounds of: fill a table to its last free slot (so many keys sit
    /// past their probe's first group), delete most keys, then churn
    /// (insert a new key and delete the oldest new one, now and then
    /// overwrite a survivor) until hashbrown rehashes in place, moving the
    /// displaced survivors; then reserve and shrink, which resize it. After
    /// every operation each entry present before and after must sit where
    /// it sat unless the reading changed. Pins the hashbrown behaviour
    /// `Table` relies on: an upgrade that reorganises tables on other
    /// calls fails here.
    #[test]
    fn entries_stay_in_their_buckets_while_the_layout_reading_holds() {
        #[derive(Clone, Copy)]
        enum Op {
            InsertSurvivor,
            InsertNew,
            Overwrite,
            RemoveOldestNew,
            RemoveSurvivor,
            Reserve(usize),
            Shrink,
        }
        struct Run {
            t: Table,
            survivors: Vec<u32>,
            window: VecDeque<u32>,
            next_key: u32,
            rng: rand::rngs::StdRng,
            ops: u64,
            in_place_moves: u64,
        }
        fn key(k: u32) -> Key {
            Key::new(&k.to_le_bytes())
        }
        impl Run {
            fn fresh_key(&mut self) -> u32 {
                self.next_key += 1;
                self.next_key
            }

            /// Applies `op`; true if the table was reorganised in place.
            fn step(&mut self, op: Op) -> bool {
                let before: Vec<(usize, Key)> = (0..self.t.num_buckets())
                    .filter_map(|i| self.t.bucket(i).map(|(k, _)| (i, k.clone())))
                    .collect();
                let (layout, buckets) = (self.t.layout(), self.t.num_buckets());
                match op {
                    Op::InsertSurvivor => {
                        let k = self.fresh_key();
                        self.t.insert(key(k), entry(1));
                        self.survivors.push(k);
                    }
                    Op::InsertNew => {
                        let k = self.fresh_key();
                        self.t.insert(key(k), entry(1));
                        self.window.push_back(k);
                    }
                    Op::Overwrite => {
                        let at = self.rng.random_range(0..self.survivors.len().max(1));
                        if let Some(&k) = self.survivors.get(at) {
                            self.t.insert(key(k), entry(2));
                        }
                    }
                    Op::RemoveOldestNew => {
                        if let Some(k) = self.window.pop_front() {
                            self.t.remove_entry(&k.to_le_bytes()).unwrap();
                        }
                    }
                    Op::RemoveSurvivor => {
                        let at = self.rng.random_range(0..self.survivors.len().max(1));
                        if at < self.survivors.len() {
                            let k = self.survivors.swap_remove(at);
                            self.t.remove_entry(&k.to_le_bytes()).unwrap();
                        }
                    }
                    Op::Reserve(n) => self.t.reserve(n),
                    Op::Shrink => self.t.shrink_to_fit(),
                }
                self.ops += 1;
                let t = &self.t;
                let moved = before
                    .iter()
                    .filter(|(i, k)| {
                        t.bucket(*i).map(|(now, _)| now) != Some(k) && t.get(k.as_bytes()).is_some()
                    })
                    .count();
                if t.layout() == layout {
                    assert_eq!(
                        moved, 0,
                        "op {}: {moved} entries moved, layout unchanged",
                        self.ops
                    );
                }
                let in_place = t.layout() != layout && t.num_buckets() == buckets;
                if in_place && moved > 0 {
                    self.in_place_moves += 1;
                }
                in_place
            }
        }

        let seed: u64 = rand::rng().random();
        println!("seed {seed}");
        let mut run = Run {
            t: Table::with_hasher(hashbrown::DefaultHashBuilder::default()),
            survivors: Vec::new(),
            window: VecDeque::new(),
            next_key: 0,
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            ops: 0,
            in_place_moves: 0,
        };
        // Not every in-place rehash moves a survivor; go on until several
        // have (a round takes a few thousand operations).
        let mut rounds = 0;
        while run.in_place_moves < 5 {
            rounds += 1;
            assert!(
                rounds <= 500,
                "{rounds} rounds and {} in-place rehashes that moved entries",
                run.in_place_moves
            );
            run.t = Table::with_hasher(hashbrown::DefaultHashBuilder::default());
            run.survivors.clear();
            run.window.clear();
            while !(run.t.num_buckets() >= 256 && run.t.len() == run.t.capacity()) {
                run.step(Op::InsertSurvivor);
            }
            while run.survivors.len() > run.t.capacity() / 3 {
                run.step(Op::RemoveSurvivor);
            }
            // Measured: the first in-place rehash comes after a few
            // thousand operations; the bound is a safety net.
            for _ in 0..1_000_000 {
                let mut in_place = run.step(Op::InsertNew);
                if run.window.len() > 8 {
                    in_place |= run.step(Op::RemoveOldestNew);
                }
                if run.rng.random_range(0..50) == 0 {
                    in_place |= run.step(Op::Overwrite);
                }
                if in_place {
                    break;
                }
            }
            let n = run.rng.random_range(0..run.t.capacity());
            run.step(Op::Reserve(n));
            run.step(Op::Shrink);
        }
        println!(
            "{} operations in {rounds} rounds; in-place rehashes that moved entries: {}",
            run.ops, run.in_place_moves
        );
    }

    /// FLUSHALL/FLUSHDB empty a table and SWAPDB exchanges two: a walk
    /// holding a reading of either shard must see it change, even when the
    /// two shards' readings were equal before.
    #[test]
    fn clearing_and_swapping_tables_change_their_layout_readings() {
        let hasher = hashbrown::DefaultHashBuilder::default();
        let mut a = Table::with_hasher(hasher.clone());
        let mut b = Table::with_hasher(hasher);
        a.insert(Key::new(b"a"), entry(1));
        b.insert(Key::new(b"b"), entry(2));
        let (la, lb) = (a.layout(), b.layout());
        a.swap_contents(&mut b);
        assert!(a.layout() != la && a.layout() != lb);
        assert!(b.layout() != la && b.layout() != lb);
        assert!(a.get(b"b").is_some() && b.get(b"a").is_some());
        let l = a.layout();
        a.drain().for_each(drop);
        assert_ne!(a.layout(), l);
        let l = b.layout();
        b.clear_and_free();
        assert_ne!(b.layout(), l);
    }
}
