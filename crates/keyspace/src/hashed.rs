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
//! Redis keeps small hashes and sets in listpacks and intsets; cairn has
//! one representation, and OBJECT ENCODING reports the one Redis would
//! use. The only reply that differs by encoding is the order of
//! HRANDFIELD/SRANDMEMBER with a positive count on a listpack, which is
//! the listpack's order in Redis and random here: both are a uniformly
//! chosen subset.

use std::cell::RefCell;
use std::fmt;
use std::hash::BuildHasher;

use bytes::Bytes;
use hashbrown::hash_table::{self, HashTable};
use hashbrown::{DefaultHashBuilder, HashSet};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};

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
trait Elem {
    fn key(&self) -> &[u8];
}

impl Elem for Bytes {
    fn key(&self) -> &[u8] {
        self
    }
}

impl Elem for (Bytes, Bytes) {
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

impl<T: Elem> Table<T> {
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

    /// `count` distinct elements chosen uniformly, in random order (all of
    /// them, in table order, when `count` is at least the size).
    fn sample_distinct<R: Rng + ?Sized>(&self, count: usize, rng: &mut R) -> Vec<&T> {
        let len = self.len();
        if count >= len {
            return self.table.iter().collect();
        }
        if count.saturating_mul(SAMPLE_FROM_ALL) > len {
            // A large share: shuffling all is cheaper than drawing until
            // `count` distinct ones came up.
            let mut all: Vec<&T> = self.table.iter().collect();
            let (picked, _) = all.partial_shuffle(rng, count);
            return picked.to_vec();
        }
        // At most a third of the draws repeat an earlier one.
        let mut seen = HashSet::with_capacity(count);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let Some(i) = self.random_index(rng) else {
                break;
            };
            if seen.insert(i)
                && let Some(e) = self.table.get_bucket(i)
            {
                out.push(e);
            }
        }
        out
    }

    /// `count` elements each chosen uniformly (repeats allowed).
    fn sample_repeated<R: Rng + ?Sized>(&self, count: usize, rng: &mut R) -> Vec<&T> {
        (0..count).filter_map(|_| self.random(rng)).collect()
    }
}

/// The set type of set values: distinct byte-string members.
#[derive(Clone, Default)]
pub struct HashSetBytes(Table<Bytes>);

impl HashSetBytes {
    /// An empty set.
    pub fn new() -> HashSetBytes {
        HashSetBytes::default()
    }

    /// An empty set with room for `n` members.
    pub fn with_capacity(n: usize) -> HashSetBytes {
        HashSetBytes(Table::with_capacity(n))
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set has no members.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// Whether `member` is in the set.
    pub fn contains(&self, member: &[u8]) -> bool {
        self.0.get(member).is_some()
    }

    /// The stored member equal to `member`.
    pub fn get(&self, member: &[u8]) -> Option<&Bytes> {
        self.0.get(member)
    }

    /// Adds `member`; false if it was already there (the stored one stays).
    pub fn insert(&mut self, member: Bytes) -> bool {
        self.0.insert(member).is_ok()
    }

    /// The stored member equal to `member`, inserting `make(member)` first
    /// if there is none: one lookup, and a copy only for a new member.
    pub fn get_or_insert_with(
        &mut self,
        member: &[u8],
        make: impl FnOnce(&[u8]) -> Bytes,
    ) -> &Bytes {
        self.0.get_or_insert_with(member, || make(member))
    }

    /// Removes `member`; false if it was not there.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        self.0.remove(member).is_some()
    }

    /// The members, in table order.
    pub fn iter(&self) -> hash_table::Iter<'_, Bytes> {
        self.0.table.iter()
    }

    /// A uniformly chosen member, O(1) expected.
    pub fn random<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<&Bytes> {
        self.0.random(rng)
    }

    /// Removes and returns a uniformly chosen member, O(1) expected.
    pub fn pop_random<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Option<Bytes> {
        self.0.pop_random(rng)
    }

    /// `count` distinct members chosen uniformly, in random order; all of
    /// them when `count` is at least the size.
    pub fn sample_distinct<R: Rng + ?Sized>(&self, count: usize, rng: &mut R) -> Vec<&Bytes> {
        self.0.sample_distinct(count, rng)
    }

    /// `count` members each chosen uniformly, repeats allowed.
    pub fn sample_repeated<R: Rng + ?Sized>(&self, count: usize, rng: &mut R) -> Vec<&Bytes> {
        self.0.sample_repeated(count, rng)
    }
}

impl PartialEq for HashSetBytes {
    fn eq(&self, other: &HashSetBytes) -> bool {
        self.len() == other.len() && self.iter().all(|m| other.contains(m))
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
        let iter = iter.into_iter();
        let mut s = HashSetBytes::with_capacity(iter.size_hint().0);
        s.extend(iter);
        s
    }
}

impl Extend<Bytes> for HashSetBytes {
    fn extend<I: IntoIterator<Item = Bytes>>(&mut self, iter: I) {
        for m in iter {
            self.insert(m);
        }
        // Room reserved for repeated members would leave the table sparse.
        self.0.shrink_if_sparse();
    }
}

impl<'a> IntoIterator for &'a HashSetBytes {
    type Item = &'a Bytes;
    type IntoIter = hash_table::Iter<'a, Bytes>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl IntoIterator for HashSetBytes {
    type Item = Bytes;
    type IntoIter = hash_table::IntoIter<Bytes>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.table.into_iter()
    }
}

/// The map type of hash values: byte-string fields to byte-string values.
#[derive(Clone, Default)]
pub struct HashMapBytes(Table<(Bytes, Bytes)>);

/// The (field, value) pairs of a [`HashMapBytes`], in table order.
#[derive(Clone)]
pub struct MapIter<'a>(hash_table::Iter<'a, (Bytes, Bytes)>);

impl<'a> Iterator for MapIter<'a> {
    type Item = (&'a Bytes, &'a Bytes);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(pair)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for MapIter<'_> {}

fn pair(e: &(Bytes, Bytes)) -> (&Bytes, &Bytes) {
    (&e.0, &e.1)
}

impl HashMapBytes {
    /// An empty map.
    pub fn new() -> HashMapBytes {
        HashMapBytes::default()
    }

    /// An empty map with room for `n` fields.
    pub fn with_capacity(n: usize) -> HashMapBytes {
        HashMapBytes(Table::with_capacity(n))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the map has no fields.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<&Bytes> {
        self.0.get(field).map(|e| &e.1)
    }

    /// The value of `field`, for writing.
    pub fn get_mut(&mut self, field: &[u8]) -> Option<&mut Bytes> {
        self.0.get_mut(field).map(|e| &mut e.1)
    }

    /// Whether `field` is in the map.
    pub fn contains_key(&self, field: &[u8]) -> bool {
        self.0.get(field).is_some()
    }

    /// Sets `field` to `value`; returns the value it replaced (the stored
    /// field stays).
    pub fn insert(&mut self, field: Bytes, value: Bytes) -> Option<Bytes> {
        match self.0.insert((field, value)) {
            Ok(()) => None,
            Err((slot, (_, value))) => Some(std::mem::replace(&mut slot.1, value)),
        }
    }

    /// Removes `field`; returns its value.
    pub fn remove(&mut self, field: &[u8]) -> Option<Bytes> {
        self.0.remove(field).map(|(_, v)| v)
    }

    /// The (field, value) pairs, in table order.
    pub fn iter(&self) -> MapIter<'_> {
        MapIter(self.0.table.iter())
    }

    /// The fields, in table order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &Bytes> + Clone {
        self.0.table.iter().map(|e| &e.0)
    }

    /// The values, in table order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &Bytes> + Clone {
        self.0.table.iter().map(|e| &e.1)
    }

    /// A uniformly chosen (field, value), O(1) expected.
    pub fn random<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<(&Bytes, &Bytes)> {
        self.0.random(rng).map(pair)
    }

    /// `count` distinct fields chosen uniformly with their values, in
    /// random order; all of them when `count` is at least the size.
    pub fn sample_distinct<R: Rng + ?Sized>(
        &self,
        count: usize,
        rng: &mut R,
    ) -> Vec<(&Bytes, &Bytes)> {
        self.0
            .sample_distinct(count, rng)
            .into_iter()
            .map(pair)
            .collect()
    }

    /// `count` (field, value) pairs each chosen uniformly, repeats allowed.
    pub fn sample_repeated<R: Rng + ?Sized>(
        &self,
        count: usize,
        rng: &mut R,
    ) -> Vec<(&Bytes, &Bytes)> {
        self.0
            .sample_repeated(count, rng)
            .into_iter()
            .map(pair)
            .collect()
    }
}

impl PartialEq for HashMapBytes {
    fn eq(&self, other: &HashMapBytes) -> bool {
        self.len() == other.len() && self.iter().all(|(f, v)| other.get(f) == Some(v))
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
        // Room reserved for repeated fields would leave the table sparse.
        self.0.shrink_if_sparse();
    }
}

impl<'a> IntoIterator for &'a HashMapBytes {
    type Item = (&'a Bytes, &'a Bytes);
    type IntoIter = MapIter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl IntoIterator for HashMapBytes {
    type Item = (Bytes, Bytes);
    type IntoIter = hash_table::IntoIter<(Bytes, Bytes)>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.table.into_iter()
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
        let dense = |t: &Table<Bytes>| {
            t.table.num_buckets() <= MIN_SHRINK_BUCKETS || t.len() * SPARSE >= t.table.num_buckets()
        };
        for i in 0..19_990 {
            if i % 2 == 0 {
                assert!(set.pop_random(&mut rng).is_some());
            } else {
                // Remove some member still there.
                let m = set.iter().next().cloned().unwrap();
                assert!(set.remove(&m));
            }
            assert!(
                dense(&set.0),
                "after {i}: {} in {}",
                set.len(),
                set.0.table.num_buckets()
            );
        }
        assert_eq!(set.len(), 10);
        // Room reserved for repeats is given back once built.
        let repeats: HashSetBytes = (0..10_000).map(|_| b("same".into())).collect();
        assert_eq!(repeats.len(), 1);
        assert!(repeats.0.table.num_buckets() <= MIN_SHRINK_BUCKETS);
    }

    #[test]
    fn set_and_map_semantics() {
        let mut set = HashSetBytes::new();
        let first = b("a".into());
        assert!(set.insert(first.clone()));
        assert!(!set.insert(b("a".into())));
        assert_eq!(set.len(), 1);
        // The stored member stays (same buffer).
        assert_eq!(set.get(b"a").unwrap().as_ptr(), first.as_ptr());
        assert_eq!(
            set.get_or_insert_with(b"b", Bytes::copy_from_slice),
            &b"b"[..]
        );
        assert!(set.contains(b"b") && set.remove(b"b") && !set.remove(b"b"));

        let mut map: HashMapBytes = [
            (b("f".into()), b("1".into())),
            (b("f".into()), b("2".into())),
        ]
        .into_iter()
        .collect();
        assert_eq!(map.len(), 1);
        assert_eq!(map.get(b"f").unwrap(), &b"2"[..], "the last value wins");
        assert_eq!(
            map.insert(b("f".into()), b("3".into())),
            Some(b("2".into()))
        );
        assert_eq!(map.insert(b("g".into()), b("4".into())), None);
        *map.get_mut(b"g").unwrap() = b("5".into());
        let mut pairs: Vec<_> = map.iter().collect();
        pairs.sort();
        assert_eq!(
            pairs,
            [
                (&b("f".into()), &b("3".into())),
                (&b("g".into()), &b("5".into()))
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
}
