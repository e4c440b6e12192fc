//! The hash tables behind hash and set values, with uniform O(1) random
//! access for SPOP, SRANDMEMBER and HRANDFIELD.
//!
//! `hashbrown::HashSet`/`HashMap` offer no way to reach an element at
//! random, so a uniform pick had to walk half the table. These wrap
//! hashbrown's `HashTable`, whose bucket-index API (`num_buckets`,
//! `get_bucket`, `get_bucket_entry`) gives random access, the way the
//! engine's key table does for RANDOMKEY and active expiry:
//!
//! - A pick draws bucket indices uniformly until one is full (rejection
//!   sampling: every element is equally likely). While at least one bucket
//!   in [`SPARSE`] is full that takes at most `SPARSE` draws on average.
//! - Removals shrink a table that falls below that fill, as Redis' dict
//!   shrinks below 10% (`htNeedsResize`); a shrink rehashes the remaining
//!   elements, which is amortized over the removals that made it sparse.
//! - A table can still be sparse when it was built with room for
//!   duplicates; after [`MAX_PROBES`] empty buckets a pick falls back to
//!   the n-th element for a uniform n, so its cost stays bounded and the
//!   result stays uniform (both branches are).
//!
//! Small hashes and sets are packed instead (`packed.rs`), as Redis keeps
//! them in listpacks and intsets; random picks there draw an index.
//! HRANDFIELD/SRANDMEMBER with a positive count return a listpack's
//! members in its order in Redis and in random order here: both are a
//! uniformly chosen subset.

use std::cell::RefCell;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;

use bytes::Bytes;
use hashbrown::hash_table::{self, HashTable};
use hashbrown::{DefaultHashBuilder, HashSet};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};

use crate::encoding::Limits;
use crate::packed::{Elem, IntSet, Pack, PackIter, Probe};
use crate::value::parse_canonical_i64;

/// A table shrinks when fewer than one bucket in `SPARSE` is full.
const SPARSE: usize = 8;
/// Tables this small never shrink: a pick in them is cheap either way.
const MIN_SHRINK_BUCKETS: usize = 16;
/// Empty buckets a pick draws before it falls back to a linear walk. At the
/// fill removals maintain (at least 1/`SPARSE`) the fallback happens with
/// probability (7/8)^128 < 4e-8.
const MAX_PROBES: usize = 128;
/// Below `count * SAMPLE_FROM_ALL > len`, a distinct sample draws random
/// elements until it has enough; above it shuffles all of them, as Redis'
/// SRANDMEMBER_SUB_STRATEGY_MUL and HRANDFIELD_SUB_STRATEGY_MUL decide.
const SAMPLE_FROM_ALL: usize = 3;

thread_local! {
    /// The random source of SPOP, SRANDMEMBER and HRANDFIELD on this thread.
    /// Seeded from the thread's OS-seeded generator on first use, or by
    /// [`seed_thread_rng`] so a test can replay its draws.
    static RNG: RefCell<Option<StdRng>> = const { RefCell::new(None) };
}

/// Makes this thread's SPOP, SRANDMEMBER and HRANDFIELD picks a
/// deterministic function of `seed` (and the commands run since): for
/// tests that check their distribution and print the seed to replay.
pub fn seed_thread_rng(seed: u64) {
    RNG.with(|cell| {
        if let Ok(mut slot) = cell.try_borrow_mut() {
            *slot = Some(StdRng::seed_from_u64(seed));
        }
    });
}

/// Runs `f` with this thread's command random source.
pub(crate) fn with_rng<T>(f: impl FnOnce(&mut dyn RngCore) -> T) -> T {
    RNG.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            let rng = slot.get_or_insert_with(|| StdRng::from_rng(&mut rand::rng()));
            f(rng)
        }
        // Only reachable if `f` itself asked for the source again; the
        // thread generator is just as random.
        Err(_) => f(&mut rand::rng()),
    })
}

/// What a table stores: a member, or a field with its value.
pub(crate) trait Keyed {
    fn key(&self) -> &[u8];
}

impl Keyed for Bytes {
    fn key(&self) -> &[u8] {
        self
    }
}

impl Keyed for (Bytes, f64) {
    fn key(&self) -> &[u8] {
        &self.0
    }
}

impl Keyed for (Bytes, Bytes) {
    fn key(&self) -> &[u8] {
        &self.0
    }
}

/// A `HashTable` keyed by byte strings, with its hasher.
#[derive(Clone, Default)]
struct Table<T> {
    table: HashTable<T>,
    hasher: DefaultHashBuilder,
}

impl<T: Keyed> Table<T> {
    fn with_capacity(n: usize) -> Table<T> {
        Table {
            table: HashTable::with_capacity(n),
            hasher: DefaultHashBuilder::default(),
        }
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    fn len(&self) -> usize {
        self.table.len()
    }

    fn get(&self, key: &[u8]) -> Option<&T> {
        self.table.find(self.hash(key), |e| e.key() == key)
    }

    fn get_mut(&mut self, key: &[u8]) -> Option<&mut T> {
        let h = self.hash(key);
        self.table.find_mut(h, |e| e.key() == key)
    }

    /// The element at `key`, or `make()` inserted there.
    fn get_or_insert_with(&mut self, key: &[u8], make: impl FnOnce() -> T) -> &mut T {
        let h = self.hash(key);
        let hasher = &self.hasher;
        self.table
            .entry(h, |e| e.key() == key, |e| hasher.hash_one(e.key()))
            .or_insert_with(make)
            .into_mut()
    }

    /// Inserts `e` if its key is new; otherwise hands back the stored
    /// element and `e`, so the caller decides what to keep.
    fn insert(&mut self, e: T) -> Result<(), (&mut T, T)> {
        let h = self.hash(e.key());
        let hasher = &self.hasher;
        match self
            .table
            .entry(h, |x| x.key() == e.key(), |x| hasher.hash_one(x.key()))
        {
            hash_table::Entry::Occupied(o) => Err((o.into_mut(), e)),
            hash_table::Entry::Vacant(v) => {
                v.insert(e);
                Ok(())
            }
        }
    }

    fn remove(&mut self, key: &[u8]) -> Option<T> {
        let h = self.hash(key);
        let removed = match self.table.find_entry(h, |e| e.key() == key) {
            Ok(o) => Some(o.remove().0),
            Err(_) => None,
        };
        if removed.is_some() {
            self.shrink_if_sparse();
        }
        removed
    }

    /// Rehashes into a smaller table when fewer than one bucket in
    /// [`SPARSE`] is full, so random picks stay O(1).
    fn shrink_if_sparse(&mut self) {
        let buckets = self.table.num_buckets();
        if buckets > MIN_SHRINK_BUCKETS && self.len().saturating_mul(SPARSE) < buckets {
            let hasher = &self.hasher;
            self.table.shrink_to_fit(|e| hasher.hash_one(e.key()));
        }
    }

    /// The bucket index of a uniformly chosen element.
    fn random_index<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<usize> {
        if self.table.is_empty() {
            return None;
        }
        let buckets = self.table.num_buckets();
        for _ in 0..MAX_PROBES {
            let i = rng.random_range(0..buckets);
            if self.table.get_bucket(i).is_some() {
                return Some(i);
            }
        }
        let n = rng.random_range(0..self.len());
        self.table.iter_buckets().nth(n)
    }

    fn random<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<&T> {
        self.random_index(rng)
            .and_then(|i| self.table.get_bucket(i))
    }

    fn pop_random<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Option<T> {
        let i = self.random_index(rng)?;
        let popped = self.table.get_bucket_entry(i).ok()?.remove().0;
        self.shrink_if_sparse();
        Some(popped)
    }
}

/// Elements a segment of a large table holds on average before the table
/// doubles its segments.
const SEGMENT: usize = 4096;

/// A large set or map: hash tables ("segments") picked by the top bits of
/// an element's hash, each behind its own `Arc`.
///
/// A point-in-time view shares a collection by its outer `Arc`; the first
/// write after the view copies the collection (`Arc::make_mut`), which
/// here copies the list of segment pointers, and then the one segment the
/// write lands in: O(size / `SEGMENT` + `SEGMENT`) instead of the whole
/// collection (a 10^6-field hash written during BGSAVE copies one 4,096-
/// element segment, not a million fields). Later writes to the same
/// segment copy nothing more.
#[derive(Clone)]
pub(crate) struct Segmented<T> {
    hasher: DefaultHashBuilder,
    /// A power of two of them.
    segs: Vec<Arc<Table<T>>>,
    len: usize,
}

impl<T: Keyed + Clone> Default for Segmented<T> {
    fn default() -> Segmented<T> {
        Segmented::with_capacity(0)
    }
}

/// The elements of a [`Segmented`] table, segment by segment.
#[derive(Clone)]
pub(crate) struct SegIter<'a, T> {
    segs: std::slice::Iter<'a, Arc<Table<T>>>,
    cur: Option<hash_table::Iter<'a, T>>,
    left: usize,
}

impl<'a, T> Iterator for SegIter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        loop {
            if let Some(e) = self.cur.as_mut().and_then(Iterator::next) {
                self.left = self.left.saturating_sub(1);
                return Some(e);
            }
            self.cur = Some(self.segs.next()?.table.iter());
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<T> ExactSizeIterator for SegIter<'_, T> {}

impl<T: Keyed + Clone> Segmented<T> {
    fn with_capacity(n: usize) -> Segmented<T> {
        let count = n.div_ceil(SEGMENT).max(1).next_power_of_two();
        Segmented {
            hasher: DefaultHashBuilder::default(),
            segs: (0..count)
                .map(|_| Arc::new(Table::with_capacity(n / count)))
                .collect(),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes of the table structure itself (MEMORY USAGE): the segment
    /// pointers, and per segment its `Arc`'d header and hashbrown's slots
    /// (one element plus one control byte per bucket, plus a group of
    /// trailing control bytes). The elements' own heap is not included.
    pub(crate) fn structure_bytes(&self) -> usize {
        const ARC_COUNTS: usize = 16;
        const GROUP: usize = 16;
        self.segs.capacity() * std::mem::size_of::<Arc<Table<T>>>()
            + self
                .segs
                .iter()
                .map(|t| {
                    let buckets = t.table.num_buckets();
                    let slots = if buckets == 0 {
                        0
                    } else {
                        buckets * (std::mem::size_of::<T>() + 1) + GROUP
                    };
                    ARC_COUNTS + std::mem::size_of::<Table<T>>() + slots
                })
                .sum::<usize>()
    }

    fn seg_of(&self, key: &[u8]) -> usize {
        let bits = self.segs.len().trailing_zeros();
        if bits == 0 {
            0
        } else {
            (self.hasher.hash_one(key) >> (64 - bits)) as usize
        }
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&T> {
        self.segs.get(self.seg_of(key))?.get(key)
    }

    /// The segment `key` belongs to, for writing (copied first while a
    /// view shares it).
    fn seg_mut(&mut self, key: &[u8]) -> Option<&mut Table<T>> {
        let i = self.seg_of(key);
        self.segs.get_mut(i).map(Arc::make_mut)
    }

    /// The element at `key`, for writing (its segment copied first while
    /// a view shares it).
    pub(crate) fn get_mut(&mut self, key: &[u8]) -> Option<&mut T> {
        self.seg_mut(key)?.get_mut(key)
    }

    /// Doubles the segments once they hold twice [`SEGMENT`] on average.
    fn grow_if_full(&mut self) {
        if self.len <= self.segs.len() * SEGMENT * 2 {
            return;
        }
        let mut bigger = Segmented::with_capacity(self.len * 2);
        bigger.hasher = self.hasher.clone();
        for seg in std::mem::take(&mut self.segs) {
            let table = Arc::try_unwrap(seg).unwrap_or_else(|shared| (*shared).clone());
            for e in table.table {
                let i = bigger.seg_of(e.key());
                if let Some(t) = bigger.segs.get_mut(i).map(Arc::make_mut) {
                    let _ = t.insert(e);
                }
            }
        }
        self.segs = bigger.segs;
    }

    fn get_or_insert_with(&mut self, key: &[u8], make: impl FnOnce() -> T) -> Option<&mut T> {
        let i = self.seg_of(key);
        let before = self.segs.get(i)?.len();
        let grew = {
            let t = Arc::make_mut(self.segs.get_mut(i)?);
            t.get_or_insert_with(key, make);
            t.len() > before
        };
        if grew {
            self.len += 1;
            self.grow_if_full();
        }
        self.seg_mut(key)?.get_mut(key)
    }

    /// Inserts `e` if its key is new (true); leaves the stored one alone
    /// otherwise.
    pub(crate) fn insert(&mut self, e: T) -> bool {
        let Some(t) = self.seg_mut(e.key()) else {
            return false;
        };
        let added = t.insert(e).is_ok();
        if added {
            self.len += 1;
            self.grow_if_full();
        }
        added
    }

    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<T> {
        // Only a present key is worth a copy of its segment.
        self.get(key)?;
        let removed = self.seg_mut(key)?.remove(key);
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    fn iter(&self) -> SegIter<'_, T> {
        SegIter {
            segs: self.segs.iter(),
            cur: None,
            left: self.len,
        }
    }

    fn into_vec(self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len);
        for seg in self.segs {
            match Arc::try_unwrap(seg) {
                Ok(t) => out.extend(t.table),
                Err(shared) => out.extend(shared.table.iter().cloned()),
            }
        }
        out
    }

    /// The segment holding the element of uniformly chosen rank `r`.
    fn seg_at(&self, mut r: usize) -> Option<usize> {
        for (i, s) in self.segs.iter().enumerate() {
            if r < s.len() {
                return Some(i);
            }
            r -= s.len();
        }
        None
    }

    /// A uniformly chosen element: a segment weighted by its size, then a
    /// uniform pick in it.
    fn random<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<&T> {
        if self.len == 0 {
            return None;
        }
        let i = self.seg_at(rng.random_range(0..self.len))?;
        self.segs.get(i)?.random(rng)
    }

    fn pop_random<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let i = self.seg_at(rng.random_range(0..self.len))?;
        let popped = Arc::make_mut(self.segs.get_mut(i)?).pop_random(rng);
        if popped.is_some() {
            self.len -= 1;
        }
        popped
    }

    fn sample_distinct<R: Rng + ?Sized>(&self, count: usize, rng: &mut R) -> Vec<&T> {
        let len = self.len;
        if count >= len {
            return self.iter().collect();
        }
        if count.saturating_mul(SAMPLE_FROM_ALL) > len {
            let mut all: Vec<&T> = self.iter().collect();
            let (picked, _) = all.partial_shuffle(rng, count);
            return picked.to_vec();
        }
        let mut seen = HashSet::with_capacity(count);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let Some(i) = self.seg_at(rng.random_range(0..len)) else {
                break;
            };
            let Some(seg) = self.segs.get(i) else {
                break;
            };
            let Some(b) = seg.random_index(rng) else {
                continue;
            };
            if seen.insert((i, b))
                && let Some(e) = seg.table.get_bucket(b)
            {
                out.push(e);
            }
        }
        out
    }

    fn shrink_if_sparse(&mut self) {
        for seg in &mut self.segs {
            Arc::make_mut(seg).shrink_if_sparse();
        }
    }
}

/// Most members of a packed set of strings (Redis 7.0 has no such
/// encoding; 7.2's `set-max-listpack-entries` default).
pub(crate) const SET_PACK_ENTRIES: usize = 128;
/// Longest member a packed set of strings holds.
pub(crate) const SET_PACK_VALUE: usize = 64;

/// Uniformly chosen distinct indices below `len`, in random order; all of
/// them in order when `count` is at least `len`.
fn sample_indices<R: Rng + ?Sized>(len: usize, count: usize, rng: &mut R) -> Vec<usize> {
    if count >= len {
        return (0..len).collect();
    }
    rand::seq::index::sample(rng, len, count).into_vec()
}

/// The set type of set values: distinct byte-string members.
///
/// Three encodings, converted one way only (as Redis does): a sorted
/// [`IntSet`] while every member is the canonical form of an integer and
/// there are at most `set-max-intset-entries` of them; a [`Pack`] of up to
/// [`SET_PACK_ENTRIES`] short members; a hash table beyond. Members come
/// back as owned `Bytes` (copied out of the packed forms).
#[derive(Clone)]
pub struct HashSetBytes(SetRepr);

#[derive(Clone)]
enum SetRepr {
    Ints(IntSet),
    Pack(Pack),
    Table(Box<Segmented<Bytes>>),
}

impl Default for HashSetBytes {
    fn default() -> HashSetBytes {
        HashSetBytes(SetRepr::Ints(IntSet::default()))
    }
}

/// The members of a [`HashSetBytes`], in the encoding's order.
#[derive(Clone)]
pub struct SetIter<'a>(SetIterRepr<'a>);

#[derive(Clone)]
enum SetIterRepr<'a> {
    Ints(&'a IntSet, std::ops::Range<usize>),
    Pack(PackIter<'a>),
    Table(SegIter<'a, Bytes>),
}

impl Iterator for SetIter<'_> {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        match &mut self.0 {
            SetIterRepr::Ints(s, r) => r.next().and_then(|i| s.get(i)).map(int_bytes),
            SetIterRepr::Pack(p) => p.next().map(Elem::to_bytes),
            SetIterRepr::Table(t) => t.next().cloned(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            SetIterRepr::Ints(_, r) => r.size_hint(),
            SetIterRepr::Pack(p) => p.size_hint(),
            SetIterRepr::Table(t) => t.size_hint(),
        }
    }
}

impl ExactSizeIterator for SetIter<'_> {}

fn int_bytes(n: i64) -> Bytes {
    Elem::Int(n).to_bytes()
}

impl HashSetBytes {
    /// An empty set (an intset until a member says otherwise).
    pub fn new() -> HashSetBytes {
        HashSetBytes::default()
    }

    /// An empty set about to receive `n` members. The encoding still
    /// follows the members as they come, as in Redis.
    pub fn with_capacity(_n: usize) -> HashSetBytes {
        HashSetBytes::default()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        match &self.0 {
            SetRepr::Ints(s) => s.len(),
            SetRepr::Pack(p) => p.count(),
            SetRepr::Table(t) => t.len(),
        }
    }

    /// Whether the set has no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name OBJECT ENCODING gives this set's encoding in Redis 7.0
    /// (which has no packed form for sets of strings: `hashtable`).
    pub fn encoding(&self) -> &'static str {
        match &self.0 {
            SetRepr::Ints(_) => "intset",
            SetRepr::Pack(_) | SetRepr::Table(_) => "hashtable",
        }
    }

    /// Heap bytes held by the packed encodings' buffers (0 for a table).
    pub fn packed_bytes(&self) -> usize {
        match &self.0 {
            SetRepr::Ints(s) => s.bytes(),
            SetRepr::Pack(p) => p.bytes(),
            SetRepr::Table(_) => 0,
        }
    }

    /// MEMORY USAGE's estimate of the heap this set holds: the packed
    /// buffer, or the table's structure plus its members' bytes averaged
    /// over the first `samples` members and scaled to all of them (Redis
    /// samples large aggregates the same way).
    pub(crate) fn usage(&self, samples: usize) -> usize {
        match &self.0 {
            SetRepr::Ints(s) => s.bytes(),
            SetRepr::Pack(p) => p.bytes(),
            SetRepr::Table(t) => {
                t.structure_bytes()
                    + crate::usage::scaled(t.iter().map(|m| m.len()), samples, t.len())
            }
        }
    }

    /// Whether `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        match &self.0 {
            SetRepr::Ints(s) => parse_canonical_i64(member).is_some_and(|n| s.contains(n)),
            SetRepr::Pack(p) => p.find(&Probe::new(member), 1).is_some(),
            SetRepr::Table(t) => t.get(member).is_some(),
        }
    }

    /// The stored member equal to `member`.
    pub fn get(&self, member: &[u8]) -> Option<Bytes> {
        match &self.0 {
            SetRepr::Table(t) => t.get(member).cloned(),
            _ => self
                .contains(member)
                .then(|| Bytes::copy_from_slice(member)),
        }
    }

    /// Moves every member into the encoding `target` names (`Pack` or
    /// `Table`), never back.
    fn convert(&mut self, to_table: bool) {
        let members: Vec<Bytes> = self.iter().collect();
        self.0 = if to_table {
            let mut t = Segmented::with_capacity(members.len() + 1);
            for m in members {
                t.insert(m);
            }
            SetRepr::Table(Box::new(t))
        } else {
            let mut p = Pack::default();
            let refs: Vec<&[u8]> = members.iter().map(|m| &m[..]).collect();
            p.push(&refs);
            SetRepr::Pack(p)
        };
    }

    /// Adds `member` if it is new, converting first when it would not fit
    /// the current encoding; `make` builds the stored copy for a table.
    fn add(&mut self, member: &[u8], make: impl FnOnce(&[u8]) -> Bytes) -> bool {
        if let SetRepr::Ints(s) = &mut self.0 {
            match parse_canonical_i64(member) {
                Some(n) if s.contains(n) => return false,
                Some(n) if s.len() < Limits::current().set_intset_entries => {
                    return s.insert(n);
                }
                _ => {
                    let fits = self.len() < SET_PACK_ENTRIES
                        && member.len() <= SET_PACK_VALUE
                        && self.iter().all(|m| m.len() <= SET_PACK_VALUE);
                    self.convert(!fits);
                }
            }
        }
        if let SetRepr::Pack(p) = &mut self.0 {
            if p.find(&Probe::new(member), 1).is_some() {
                return false;
            }
            if p.count() < SET_PACK_ENTRIES && member.len() <= SET_PACK_VALUE {
                p.push(&[member]);
                return true;
            }
            self.convert(true);
        }
        match &mut self.0 {
            SetRepr::Table(t) => {
                let before = t.len();
                t.get_or_insert_with(member, || make(member));
                t.len() > before
            }
            _ => false,
        }
    }

    /// Adds `member`; false if it was already there (the stored one stays).
    pub fn insert(&mut self, member: Bytes) -> bool {
        let m = member.clone();
        self.add(&m, |_| member)
    }

    /// Adds `member` if it is new, copying it with `make(member)` only
    /// then; true if it was added.
    pub fn get_or_insert_with(&mut self, member: &[u8], make: impl FnOnce(&[u8]) -> Bytes) -> bool {
        self.add(member, make)
    }

    /// Removes `member`; false if it was not there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match &mut self.0 {
            SetRepr::Ints(s) => parse_canonical_i64(member).is_some_and(|n| s.remove(n)),
            SetRepr::Pack(p) => match p.find(&Probe::new(member), 1) {
                Some(i) => {
                    p.splice(i, 1, &[]);
                    true
                }
                None => false,
            },
            SetRepr::Table(t) => t.remove(member).is_some(),
        }
    }

    /// The members: an intset's in ascending order, a packed set's in
    /// insertion order, a table's in table order.
    pub fn iter(&self) -> SetIter<'_> {
        SetIter(match &self.0 {
            SetRepr::Ints(s) => SetIterRepr::Ints(s, 0..s.len()),
            SetRepr::Pack(p) => SetIterRepr::Pack(p.iter()),
            SetRepr::Table(t) => SetIterRepr::Table(t.iter()),
        })
    }

    /// Calls `f` with every member in [`HashSetBytes::iter`]'s order,
    /// borrowed (nothing allocated per member, and a table member's `Bytes`
    /// is not cloned: cloning a vector-backed `Bytes` allocates a shared
    /// header that then stays with the member); stops at the first error.
    ///
    /// # Errors
    /// The first error `f` returns.
    pub fn try_for_each_slice<E>(
        &self,
        mut f: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        match &self.0 {
            SetRepr::Ints(s) => {
                for i in 0..s.len() {
                    if let Some(n) = s.get(i) {
                        Elem::Int(n).with_str(&mut f)?;
                    }
                }
            }
            SetRepr::Pack(p) => {
                for e in p.iter() {
                    e.with_str(&mut f)?;
                }
            }
            SetRepr::Table(t) => {
                for m in t.iter() {
                    f(m)?;
                }
            }
        }
        Ok(())
    }

    /// The member at index `i` of a packed encoding.
    fn nth_packed(&self, i: usize) -> Option<Bytes> {
        match &self.0 {
            SetRepr::Ints(s) => s.get(i).map(int_bytes),
            SetRepr::Pack(p) => p.get(i).map(Elem::to_bytes),
            SetRepr::Table(_) => None,
        }
    }

    /// A uniformly chosen member, O(1) expected.
    pub fn random<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<Bytes> {
        match &self.0 {
            SetRepr::Table(t) => t.random(rng).cloned(),
            _ if self.is_empty() => None,
            _ => self.nth_packed(rng.random_range(0..self.len())),
        }
    }

    /// Removes and returns a uniformly chosen member, O(1) expected.
    pub fn pop_random<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Option<Bytes> {
        if self.is_empty() {
            return None;
        }
        let i = rng.random_range(0..self.len());
        match &mut self.0 {
            SetRepr::Ints(s) => s.remove_at(i).map(int_bytes),
            SetRepr::Pack(p) => {
                let m = p.get(i).map(Elem::to_bytes);
                p.splice(i, 1, &[]);
                m
            }
            SetRepr::Table(t) => t.pop_random(rng),
        }
    }

    /// `count` distinct members chosen uniformly, in random order; all of
    /// them when `count` is at least the size.
    pub fn sample_distinct<R: Rng + ?Sized>(&self, count: usize, rng: &mut R) -> Vec<Bytes> {
        match &self.0 {
            SetRepr::Table(t) => t.sample_distinct(count, rng).into_iter().cloned().collect(),
            _ => sample_indices(self.len(), count, rng)
                .into_iter()
                .filter_map(|i| self.nth_packed(i))
                .collect(),
        }
    }

    /// `count` members each chosen uniformly, repeats allowed.
    pub fn sample_repeated<R: Rng + ?Sized>(&self, count: usize, rng: &mut R) -> Vec<Bytes> {
        (0..count).filter_map(|_| self.random(rng)).collect()
    }
}

impl PartialEq for HashSetBytes {
    fn eq(&self, other: &HashSetBytes) -> bool {
        self.len() == other.len() && self.iter().all(|m| other.contains(&m))
    }
}

impl Eq for HashSetBytes {}

impl fmt::Debug for HashSetBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<Bytes> for HashSetBytes {
    fn from_iter<I: IntoIterator<Item = Bytes>>(iter: I) -> HashSetBytes {
        let mut s = HashSetBytes::new();
        s.extend(iter);
        s
    }
}

impl Extend<Bytes> for HashSetBytes {
    fn extend<I: IntoIterator<Item = Bytes>>(&mut self, iter: I) {
        for m in iter {
            self.insert(m);
        }
        if let SetRepr::Table(t) = &mut self.0 {
            // Room reserved for repeated members would leave the table sparse.
            t.shrink_if_sparse();
        }
    }
}

impl<'a> IntoIterator for &'a HashSetBytes {
    type Item = Bytes;
    type IntoIter = SetIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl IntoIterator for HashSetBytes {
    type Item = Bytes;
    type IntoIter = std::vec::IntoIter<Bytes>;

    fn into_iter(self) -> Self::IntoIter {
        match self.0 {
            SetRepr::Table(t) => t.into_vec().into_iter(),
            _ => self.iter().collect::<Vec<_>>().into_iter(),
        }
    }
}

/// The map type of hash values: byte-string fields to byte-string values.
///
/// Two encodings, as Redis 7.0's: a [`Pack`] of field, value, field, value
/// ... in insertion order while there are at most
/// `hash-max-listpack-entries` fields and none and no value is longer than
/// `hash-max-listpack-value`; a hash table beyond, never converted back.
/// Fields and values come back as owned `Bytes`.
#[derive(Clone)]
pub struct HashMapBytes(MapRepr);

#[derive(Clone)]
enum MapRepr {
    Pack(Pack),
    Table(Box<Segmented<(Bytes, Bytes)>>),
}

impl Default for HashMapBytes {
    fn default() -> HashMapBytes {
        HashMapBytes(MapRepr::Pack(Pack::default()))
    }
}

/// The (field, value) pairs of a [`HashMapBytes`], in its order.
#[derive(Clone)]
pub struct MapIter<'a>(MapIterRepr<'a>);

#[derive(Clone)]
enum MapIterRepr<'a> {
    Pack(PackIter<'a>),
    Table(SegIter<'a, (Bytes, Bytes)>),
}

impl Iterator for MapIter<'_> {
    type Item = (Bytes, Bytes);

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            MapIterRepr::Pack(p) => {
                let f = p.next()?.to_bytes();
                let v = p.next().map(Elem::to_bytes).unwrap_or_default();
                Some((f, v))
            }
            MapIterRepr::Table(t) => t.next().cloned(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match &self.0 {
            MapIterRepr::Pack(p) => p.len() / 2,
            MapIterRepr::Table(t) => t.len(),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for MapIter<'_> {}

/// The fields or the values of a [`HashMapBytes`].
#[derive(Clone)]
pub struct HalfIter<'a> {
    inner: HalfRepr<'a>,
}

#[derive(Clone)]
enum HalfRepr<'a> {
    Pack(std::iter::StepBy<std::iter::Skip<PackIter<'a>>>),
    Table(SegIter<'a, (Bytes, Bytes)>, bool),
}

impl Iterator for HalfIter<'_> {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        match &mut self.inner {
            HalfRepr::Pack(p) => p.next().map(Elem::to_bytes),
            HalfRepr::Table(t, values) => t
                .next()
                .map(|(f, v)| if *values { v.clone() } else { f.clone() }),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.inner {
            HalfRepr::Pack(p) => p.size_hint(),
            HalfRepr::Table(t, _) => t.size_hint(),
        }
    }
}

impl ExactSizeIterator for HalfIter<'_> {}

impl HashMapBytes {
    /// An empty map (packed).
    pub fn new() -> HashMapBytes {
        HashMapBytes::default()
    }

    /// An empty map about to receive `n` fields: a table from the start
    /// when they cannot fit the packed form.
    pub fn with_capacity(n: usize) -> HashMapBytes {
        if n > Limits::current().hash_entries {
            HashMapBytes(MapRepr::Table(Box::new(Segmented::with_capacity(n))))
        } else {
            HashMapBytes::default()
        }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        match &self.0 {
            MapRepr::Pack(p) => p.count() / 2,
            MapRepr::Table(t) => t.len(),
        }
    }

    /// Whether the map has no fields.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name OBJECT ENCODING gives this encoding.
    pub fn encoding(&self) -> &'static str {
        match &self.0 {
            MapRepr::Pack(_) => "listpack",
            MapRepr::Table(_) => "hashtable",
        }
    }

    /// MEMORY USAGE's estimate of the heap this hash holds (see
    /// [`HashSetBytes::usage`]).
    pub(crate) fn usage(&self, samples: usize) -> usize {
        match &self.0 {
            MapRepr::Pack(p) => p.bytes(),
            MapRepr::Table(t) => {
                t.structure_bytes()
                    + crate::usage::scaled(
                        t.iter().map(|(f, v)| f.len() + v.len()),
                        samples,
                        t.len(),
                    )
            }
        }
    }

    /// Heap bytes held by the packed buffer (0 for a table).
    pub fn packed_bytes(&self) -> usize {
        match &self.0 {
            MapRepr::Pack(p) => p.bytes(),
            MapRepr::Table(_) => 0,
        }
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<Bytes> {
        match &self.0 {
            MapRepr::Pack(p) => {
                let i = p.find(&Probe::new(field), 2)?;
                p.get(i + 1).map(Elem::to_bytes)
            }
            MapRepr::Table(t) => t.get(field).map(|e| e.1.clone()),
        }
    }

    /// The length of the value of `field`.
    pub fn value_len(&self, field: &[u8]) -> Option<usize> {
        match &self.0 {
            MapRepr::Pack(p) => {
                let i = p.find(&Probe::new(field), 2)?;
                p.get(i + 1).map(Elem::str_len)
            }
            MapRepr::Table(t) => t.get(field).map(|e| e.1.len()),
        }
    }

    /// Whether `field` is in the map.
    pub fn contains_key(&self, field: &[u8]) -> bool {
        match &self.0 {
            MapRepr::Pack(p) => p.find(&Probe::new(field), 2).is_some(),
            MapRepr::Table(t) => t.get(field).is_some(),
        }
    }

    fn convert_to_table(&mut self) {
        if let MapRepr::Pack(p) = &self.0 {
            let mut t = Segmented::with_capacity(p.count() / 2 + 1);
            let mut it = p.iter();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                t.insert((f.to_bytes(), v.to_bytes()));
            }
            self.0 = MapRepr::Table(Box::new(t));
        }
    }

    /// Sets `field` to `value`; returns the value it replaced. The packed
    /// form copies the slices; a table stores `make_field(field)` (only
    /// for a new field) and `make_value()`.
    fn put(
        &mut self,
        field: &[u8],
        value: &[u8],
        make_field: impl FnOnce(&[u8]) -> Bytes,
        make_value: impl FnOnce() -> Bytes,
    ) -> Option<Bytes> {
        let limits = Limits::current();
        if let MapRepr::Pack(p) = &mut self.0 {
            if field.len() > limits.hash_value || value.len() > limits.hash_value {
                self.convert_to_table();
            } else {
                match p.find(&Probe::new(field), 2) {
                    Some(i) => {
                        let old = p.get(i + 1).map(Elem::to_bytes);
                        p.splice(i + 1, 1, &[value]);
                        // Redis' `hashTypeSet` checks the length after an
                        // update too: a limit lowered by CONFIG SET converts
                        // the hash on its next write.
                        if p.count() / 2 > limits.hash_entries {
                            self.convert_to_table();
                        }
                        return old;
                    }
                    None => {
                        p.push(&[field, value]);
                        if p.count() / 2 > limits.hash_entries {
                            self.convert_to_table();
                        }
                        return None;
                    }
                }
            }
        }
        match &mut self.0 {
            MapRepr::Table(t) => {
                let mut fresh = false;
                let slot = t.get_or_insert_with(field, || {
                    fresh = true;
                    (make_field(field), Bytes::new())
                })?;
                let old = std::mem::replace(&mut slot.1, make_value());
                (!fresh).then_some(old)
            }
            MapRepr::Pack(_) => None,
        }
    }

    /// Sets `field` to `value`; returns the value it replaced (the stored
    /// field stays).
    pub fn insert(&mut self, field: Bytes, value: Bytes) -> Option<Bytes> {
        let (f, v) = (field.clone(), value.clone());
        self.put(&f, &v, |_| field, || value)
    }

    /// Sets `field` to `value`, copying the field only when it is new;
    /// true if it was new.
    pub fn upsert(&mut self, field: &[u8], value: Bytes) -> bool {
        let v = value.clone();
        self.put(field, &v, Bytes::copy_from_slice, || value)
            .is_none()
    }

    /// Sets `field` to `value` from slices: a packed map copies them into
    /// its buffer, a table stores `make_field(field)` (new fields only)
    /// and `make_value()`. True if the field was new.
    pub fn upsert_with(
        &mut self,
        field: &[u8],
        value: &[u8],
        make_field: impl FnOnce(&[u8]) -> Bytes,
        make_value: impl FnOnce() -> Bytes,
    ) -> bool {
        self.put(field, value, make_field, make_value).is_none()
    }

    /// Removes `field`; returns its value.
    pub fn remove(&mut self, field: &[u8]) -> Option<Bytes> {
        match &mut self.0 {
            MapRepr::Pack(p) => {
                let i = p.find(&Probe::new(field), 2)?;
                let old = p.get(i + 1).map(Elem::to_bytes);
                p.splice(i, 2, &[]);
                old
            }
            MapRepr::Table(t) => t.remove(field).map(|(_, v)| v),
        }
    }

    /// The (field, value) pairs: insertion order while packed, table
    /// order after.
    pub fn iter(&self) -> MapIter<'_> {
        MapIter(match &self.0 {
            MapRepr::Pack(p) => MapIterRepr::Pack(p.iter()),
            MapRepr::Table(t) => MapIterRepr::Table(t.iter()),
        })
    }

    /// Calls `f` with every (field, value) pair in [`HashMapBytes::iter`]'s
    /// order, borrowed (see [`HashSetBytes::try_for_each_slice`] for why);
    /// stops at the first error.
    ///
    /// # Errors
    /// The first error `f` returns.
    pub fn try_for_each_pair<E>(
        &self,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        match &self.0 {
            MapRepr::Pack(p) => {
                let mut it = p.iter();
                while let Some(field) = it.next() {
                    let value = it.next().unwrap_or(Elem::Str(&[]));
                    field.with_str(|fb| value.with_str(|vb| f(fb, vb)))?;
                }
            }
            MapRepr::Table(t) => {
                for (field, value) in t.iter() {
                    f(field, value)?;
                }
            }
        }
        Ok(())
    }

    fn half(&self, values: bool) -> HalfIter<'_> {
        HalfIter {
            inner: match &self.0 {
                MapRepr::Pack(p) => HalfRepr::Pack(p.iter().skip(usize::from(values)).step_by(2)),
                MapRepr::Table(t) => HalfRepr::Table(t.iter(), values),
            },
        }
    }

    /// The fields, in [`HashMapBytes::iter`]'s order.
    pub fn keys(&self) -> HalfIter<'_> {
        self.half(false)
    }

    /// The values, in [`HashMapBytes::iter`]'s order.
    pub fn values(&self) -> HalfIter<'_> {
        self.half(true)
    }

    fn nth_packed(&self, i: usize) -> Option<(Bytes, Bytes)> {
        match &self.0 {
            MapRepr::Pack(p) => {
                let mut it = p.iter().skip(2 * i);
                Some((it.next()?.to_bytes(), it.next()?.to_bytes()))
            }
            MapRepr::Table(_) => None,
        }
    }

    /// A uniformly chosen (field, value), O(1) expected.
    pub fn random<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<(Bytes, Bytes)> {
        match &self.0 {
            MapRepr::Table(t) => t.random(rng).cloned(),
            _ if self.is_empty() => None,
            _ => self.nth_packed(rng.random_range(0..self.len())),
        }
    }

    /// `count` distinct fields chosen uniformly with their values, in
    /// random order; all of them when `count` is at least the size.
    pub fn sample_distinct<R: Rng + ?Sized>(
        &self,
        count: usize,
        rng: &mut R,
    ) -> Vec<(Bytes, Bytes)> {
        match &self.0 {
            MapRepr::Table(t) => t.sample_distinct(count, rng).into_iter().cloned().collect(),
            MapRepr::Pack(_) => sample_indices(self.len(), count, rng)
                .into_iter()
                .filter_map(|i| self.nth_packed(i))
                .collect(),
        }
    }

    /// `count` (field, value) pairs each chosen uniformly, repeats allowed.
    pub fn sample_repeated<R: Rng + ?Sized>(
        &self,
        count: usize,
        rng: &mut R,
    ) -> Vec<(Bytes, Bytes)> {
        (0..count).filter_map(|_| self.random(rng)).collect()
    }
}

impl PartialEq for HashMapBytes {
    fn eq(&self, other: &HashMapBytes) -> bool {
        self.len() == other.len() && self.iter().all(|(f, v)| other.get(&f) == Some(v))
    }
}

impl Eq for HashMapBytes {}

impl fmt::Debug for HashMapBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl FromIterator<(Bytes, Bytes)> for HashMapBytes {
    fn from_iter<I: IntoIterator<Item = (Bytes, Bytes)>>(iter: I) -> HashMapBytes {
        let iter = iter.into_iter();
        let mut m = HashMapBytes::with_capacity(iter.size_hint().0);
        m.extend(iter);
        m
    }
}

impl Extend<(Bytes, Bytes)> for HashMapBytes {
    /// A repeated field takes the last value, as in a `HashMap`.
    fn extend<I: IntoIterator<Item = (Bytes, Bytes)>>(&mut self, iter: I) {
        for (f, v) in iter {
            self.insert(f, v);
        }
        if let MapRepr::Table(t) = &mut self.0 {
            // Room reserved for repeated fields would leave the table sparse.
            t.shrink_if_sparse();
        }
    }
}

impl<'a> IntoIterator for &'a HashMapBytes {
    type Item = (Bytes, Bytes);
    type IntoIter = MapIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl IntoIterator for HashMapBytes {
    type Item = (Bytes, Bytes);
    type IntoIter = std::vec::IntoIter<(Bytes, Bytes)>;

    fn into_iter(self) -> Self::IntoIter {
        match self.0 {
            MapRepr::Table(t) => t.into_vec().into_iter(),
            MapRepr::Pack(_) => self.iter().collect::<Vec<_>>().into_iter(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn b(s: String) -> Bytes {
        Bytes::from(s)
    }

    /// Removals keep at least one bucket in `SPARSE` full, so a pick takes
    /// O(1) draws; pops, removals and bulk building alike.
    #[test]
    fn removals_keep_tables_dense() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut set: HashSetBytes = (0..20_000).map(|i| b(format!("m{i}"))).collect();
        let dense = |s: &SetRepr| match s {
            SetRepr::Table(t) => t.segs.iter().all(|t| {
                t.table.num_buckets() <= MIN_SHRINK_BUCKETS
                    || t.len() * SPARSE >= t.table.num_buckets()
            }),
            _ => true,
        };
        let buckets = |s: &SetRepr| match s {
            SetRepr::Table(t) => t.segs.iter().map(|t| t.table.num_buckets()).sum(),
            _ => 0,
        };
        for i in 0..19_990 {
            if i % 2 == 0 {
                assert!(set.pop_random(&mut rng).is_some());
            } else {
                // Remove some member still there.
                let m = set.iter().next().unwrap();
                assert!(set.remove(&m));
            }
            assert!(
                dense(&set.0),
                "after {i}: {} in {}",
                set.len(),
                buckets(&set.0)
            );
        }
        assert_eq!(set.len(), 10);
        // Room reserved for repeats is given back once built.
        let repeats: HashSetBytes = (0..10_000).map(|_| b("same".into())).collect();
        assert_eq!(repeats.len(), 1);
        assert!(buckets(&repeats.0) <= MIN_SHRINK_BUCKETS);
    }

    #[test]
    fn set_and_map_semantics() {
        let mut set = HashSetBytes::new();
        let first = b("a".into());
        assert!(set.insert(first.clone()));
        assert!(!set.insert(b("a".into())));
        assert_eq!(set.len(), 1);
        assert_eq!(set.get(b"a").unwrap(), first);
        assert!(set.get_or_insert_with(b"b", Bytes::copy_from_slice));
        assert!(!set.get_or_insert_with(b"b", Bytes::copy_from_slice));
        assert!(set.contains(b"b") && set.remove(b"b") && !set.remove(b"b"));

        let mut map: HashMapBytes = [
            (b("f".into()), b("1".into())),
            (b("f".into()), b("2".into())),
        ]
        .into_iter()
        .collect();
        assert_eq!(map.len(), 1);
        assert_eq!(map.get(b"f").unwrap(), &b"2"[..], "the last value wins");
        assert_eq!(map.value_len(b"f"), Some(1));
        assert_eq!(
            map.insert(b("f".into()), b("3".into())),
            Some(b("2".into()))
        );
        assert_eq!(map.insert(b("g".into()), b("4".into())), None);
        assert!(!map.upsert(b"g", b("5".into())));
        let mut pairs: Vec<_> = map.iter().collect();
        pairs.sort();
        assert_eq!(
            pairs,
            [
                (b("f".into()), b("3".into())),
                (b("g".into()), b("5".into()))
            ]
        );
        assert_eq!(map.remove(b"f"), Some(b("3".into())));
        assert!(!map.contains_key(b"f"));
        let copy = map.clone();
        assert_eq!(copy, map);
        map.insert(b("g".into()), b("6".into()));
        assert_ne!(copy, map, "equal fields, different values");
    }

    #[test]
    fn samples_follow_the_count() {
        let mut rng = StdRng::seed_from_u64(11);
        let set: HashSetBytes = (0..100).map(|i| b(format!("m{i}"))).collect();
        for count in [0, 1, 33, 34, 99, 100, 1000] {
            let mut got = set.sample_distinct(count, &mut rng);
            assert_eq!(got.len(), count.min(100));
            got.sort();
            got.dedup();
            assert_eq!(got.len(), count.min(100), "distinct for {count}");
        }
        assert_eq!(set.sample_repeated(1000, &mut rng).len(), 1000);
        let empty = HashSetBytes::new();
        assert!(empty.random(&mut rng).is_none());
        assert!(empty.sample_repeated(5, &mut rng).is_empty());
        assert!(empty.sample_distinct(5, &mut rng).is_empty());
    }

    /// A write to a large map shared with a view copies one segment, not
    /// the map; the view keeps every old value.
    #[test]
    fn a_write_under_a_view_copies_one_segment() {
        let n = 100_000;
        let mut map = Arc::new(HashMapBytes::new());
        for i in 0..n {
            Arc::make_mut(&mut map).insert(b(format!("f{i}")), b(format!("v{i}")));
        }
        let MapRepr::Table(t) = &map.0 else {
            panic!("a large map is a table");
        };
        let segments = t.segs.len();
        assert!(segments >= n / SEGMENT / 2, "{segments} segments");
        let view = Arc::clone(&map);
        Arc::make_mut(&mut map).insert(b("f1".into()), b("changed".into()));
        let (MapRepr::Table(new), MapRepr::Table(old)) = (&map.0, &view.0) else {
            panic!("both tables");
        };
        let shared = new
            .segs
            .iter()
            .zip(&old.segs)
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert_eq!(shared, segments - 1, "only the written segment was copied");
        assert_eq!(view.get(b"f1").unwrap(), &b"v1"[..]);
        assert_eq!(map.get(b"f1").unwrap(), &b"changed"[..]);
        assert_eq!(view.len(), n);
        assert_eq!(map.len(), n);
        // Uniform picks still reach every segment.
        let mut rng = StdRng::seed_from_u64(3);
        let picked: std::collections::HashSet<Bytes> = (0..5000)
            .filter_map(|_| map.random(&mut rng))
            .map(|(f, _)| f)
            .collect();
        assert!(picked.len() > 4500);
        let distinct = map.sample_distinct(1000, &mut rng);
        let unique: std::collections::HashSet<_> = distinct.iter().map(|(f, _)| f).collect();
        assert_eq!(unique.len(), 1000);
    }
}
