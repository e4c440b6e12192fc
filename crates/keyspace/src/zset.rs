//! The sorted-set structure: an order-statistics list of (score, member)
//! plus a member → score map.
//!
//! Redis keeps a skiplist with spans so that ranks cost O(log n). A safe
//! Rust skiplist needs an arena and is slow to clone; instead the ordered
//! side here is a list of sorted chunks of at most [`CHUNK_MAX`] entries
//! with a Fenwick tree over the chunk lengths. Finding a position by
//! (score, member) or by rank is two binary searches plus an O(log chunks)
//! tree walk; an insert or removal moves at most `CHUNK_MAX` entries
//! inside one chunk. Splitting or dropping a chunk rebuilds the tree in
//! O(chunks), which happens at most once every `CHUNK_MAX / 2` updates to
//! that chunk. Cloning (copy-on-write under a view) copies flat vectors,
//! which is cheap compared to a pointer-linked structure.
//!
//! The set also tracks which encoding Redis 7.0 would be using for it
//! (listpack or skiplist, see [`SortedSet::is_compact`]), because a few
//! replies depend on it: how a -0 score reads back, whether ZSCAN returns
//! everything at once, and what a lex range over mixed scores returns.

use std::cmp::Ordering;

use std::sync::Arc;

use bytes::Bytes;

use crate::encoding::Limits;
use crate::hashed::Segmented;
use crate::packed::{Elem, Pack, Probe, Put};

/// Most entries a chunk holds before it is split in two.
const CHUNK_MAX: usize = 128;

type Item = (f64, Bytes);

/// Orders entries as Redis does: by score, then by member bytes. Scores
/// are never NaN (commands refuse it), so `partial_cmp` only fails never;
/// -0 and 0 compare equal, as in Redis.
fn cmp_item(a_score: f64, a_member: &[u8], b_score: f64, b_member: &[u8]) -> Ordering {
    a_score
        .partial_cmp(&b_score)
        .unwrap_or(Ordering::Equal)
        .then_with(|| a_member.cmp(b_member))
}

/// NaN must never reach the ordered side, where it would break the order.
/// In a compact set `+ 0.0` turns -0 into 0: Redis' listpack stores scores
/// as text, and writes -0 as `0`; its skiplist keeps -0 (see
/// [`SortedSet::is_compact`]).
fn normalize(score: f64, compact: bool) -> f64 {
    if score.is_nan() {
        0.0
    } else if compact {
        score + 0.0
    } else {
        score
    }
}

/// The large form: members ordered by (score, member bytes) with
/// O(log n) rank queries, plus a member → score map for O(1) score
/// lookups.
///
/// Chunks sit behind `Arc`s and the score map is a [`Segmented`] table, so
/// the first write under a view copies the chunk pointers, one chunk and
/// one map segment, not the whole set.
#[derive(Clone, Default)]
struct Chunked {
    chunks: Vec<Arc<Vec<Item>>>,
    /// Fenwick tree over `chunks[i].len()`: `fenwick[i]` covers the chunks
    /// `(i + 1) - lowbit(i + 1) .. i + 1`.
    fenwick: Vec<usize>,
    scores: Segmented<(Bytes, f64)>,
}

impl std::fmt::Debug for Chunked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunked")
            .field("len", &self.len())
            .field("chunks", &self.chunks.len())
            .finish()
    }
}

impl Chunked {
    /// The number of members.
    fn len(&self) -> usize {
        self.scores.len()
    }

    /// The score of `member`.
    fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).map(|e| e.1)
    }

    /// Sets `member`'s score; returns the previous score if it was present.
    /// A NaN score is stored as 0 (callers refuse NaN before this).
    fn insert(&mut self, member: Bytes, score: f64) -> Option<f64> {
        if let Some(prev) = self.update_score(&member, score) {
            return Some(prev);
        }
        let score = normalize(score, false);
        self.scores.insert((member.clone(), score));
        self.link(score, member);
        None
    }

    /// Changes the score of `member` if it is present (returning the old
    /// score); does nothing otherwise. Unlike [`SortedSet::insert`] it
    /// needs no owned member, so updates allocate nothing.
    fn update_score(&mut self, member: &[u8], score: f64) -> Option<f64> {
        let score = normalize(score, false);
        let prev = self.scores.get(member)?.1;
        // An equal score (0 for -0 included) changes nothing, as in Redis
        // (and copies nothing a view shares).
        if prev != score {
            let slot = self.scores.get_mut(member)?;
            slot.1 = score;
            let key = slot.0.clone();
            self.unlink(prev, member);
            self.link(score, key);
        }
        Some(prev)
    }

    /// Removes `member`; returns its score if it was present.
    fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let score = self.scores.remove(member)?.1;
        self.unlink(score, member);
        Some(score)
    }

    /// The 0-based ascending rank of `member`.
    fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        let (ci, off) = self.locate(score, member).ok()?;
        Some(self.prefix(ci) + off)
    }

    /// The member and score at ascending rank `rank`.
    fn get_by_rank(&self, rank: usize) -> Option<(&Bytes, f64)> {
        if rank >= self.len() {
            return None;
        }
        let (ci, off) = self.find_rank(rank);
        self.chunks.get(ci)?.get(off).map(|(s, m)| (m, *s))
    }

    /// The entries with ascending ranks in `start..end` (clamped to the
    /// set), in ascending order; `.rev()` walks them descending.
    fn range(
        &self,
        start: usize,
        end: usize,
    ) -> impl DoubleEndedIterator<Item = (&Bytes, f64)> + '_ {
        let end = end.min(self.len());
        let (first, last) = if start < end {
            let (cs, os) = self.find_rank(start);
            let (ce, oe) = self.find_rank(end - 1);
            ((cs, os), (ce, oe + 1))
        } else {
            ((0, 0), (0, 0))
        };
        let chunks = if start < end {
            self.chunks.get(first.0..=last.0).unwrap_or_default()
        } else {
            &[]
        };
        let n = chunks.len();
        chunks.iter().enumerate().flat_map(move |(j, c)| {
            let lo = if j == 0 { first.1 } else { 0 };
            let hi = if j + 1 == n { last.1 } else { c.len() };
            c.get(lo..hi)
                .unwrap_or_default()
                .iter()
                .map(|(s, m)| (m, *s))
        })
    }

    /// The number of entries, from the lowest, for which `below` holds;
    /// `below` must hold for a prefix of the order and fail for the rest.
    /// With "score < min" this is the rank of the first entry >= min.
    fn partition_point(&self, mut below: impl FnMut(f64, &[u8]) -> bool) -> usize {
        let ci = self
            .chunks
            .partition_point(|c| c.last().is_some_and(|(s, m)| below(*s, m)));
        match self.chunks.get(ci) {
            None => self.len(),
            Some(c) => self.prefix(ci) + c.partition_point(|(s, m)| below(*s, m)),
        }
    }

    /// Finds (score, member) in the chunks: `Ok` with its position, or
    /// `Err` with where it would be inserted.
    fn locate(&self, score: f64, member: &[u8]) -> Result<(usize, usize), (usize, usize)> {
        let before = |s: f64, m: &[u8]| cmp_item(s, m, score, member) == Ordering::Less;
        let ci = self
            .chunks
            .partition_point(|c| c.last().is_some_and(|(s, m)| before(*s, m)));
        let Some(c) = self.chunks.get(ci) else {
            // After everything: append to the last chunk.
            let last = self.chunks.len().saturating_sub(1);
            let off = self.chunks.get(last).map_or(0, |c| c.len());
            return Err((last, off));
        };
        match c.binary_search_by(|(s, m)| cmp_item(*s, m, score, member)) {
            Ok(off) => Ok((ci, off)),
            Err(off) => Err((ci, off)),
        }
    }

    fn link(&mut self, score: f64, member: Bytes) {
        let (ci, off) = match self.locate(score, &member) {
            Ok(pos) | Err(pos) => pos,
        };
        if self.chunks.is_empty() {
            self.chunks.push(Arc::new(Vec::with_capacity(4)));
            self.rebuild();
        }
        let Some(chunk) = self.chunks.get_mut(ci).map(Arc::make_mut) else {
            return;
        };
        chunk.insert(off.min(chunk.len()), (score, member));
        if chunk.len() > CHUNK_MAX {
            let tail = chunk.split_off(chunk.len() / 2);
            self.chunks.insert(ci + 1, Arc::new(tail));
            self.rebuild();
        } else {
            self.fen_add(ci, 1, true);
        }
    }

    fn unlink(&mut self, score: f64, member: &[u8]) {
        let Ok((ci, off)) = self.locate(score, member) else {
            return;
        };
        let Some(chunk) = self.chunks.get_mut(ci).map(Arc::make_mut) else {
            return;
        };
        chunk.remove(off);
        let len = chunk.len();
        if len == 0 {
            self.chunks.remove(ci);
            self.rebuild();
        } else if let Some(next_len) = self.chunks.get(ci + 1).map(|c| c.len())
            && len + next_len <= CHUNK_MAX / 2
        {
            // Keep chunks from thinning out after many removals.
            let next = self.chunks.remove(ci + 1);
            if let Some(chunk) = self.chunks.get_mut(ci).map(Arc::make_mut) {
                chunk.extend(next.iter().cloned());
            }
            self.rebuild();
        } else {
            self.fen_add(ci, 1, false);
        }
    }

    fn rebuild(&mut self) {
        let n = self.chunks.len();
        self.fenwick.clear();
        self.fenwick.extend(self.chunks.iter().map(|c| c.len()));
        for i in 1..=n {
            let j = i + (i & i.wrapping_neg());
            if j <= n {
                let v = self.fenwick.get(i - 1).copied().unwrap_or(0);
                if let Some(t) = self.fenwick.get_mut(j - 1) {
                    *t += v;
                }
            }
        }
    }

    fn fen_add(&mut self, ci: usize, delta: usize, grow: bool) {
        let mut i = ci + 1;
        while let Some(t) = self.fenwick.get_mut(i - 1) {
            *t = if grow {
                *t + delta
            } else {
                t.saturating_sub(delta)
            };
            i += i & i.wrapping_neg();
        }
    }

    /// Total length of the chunks before `ci`.
    fn prefix(&self, ci: usize) -> usize {
        let mut sum = 0;
        let mut i = ci.min(self.fenwick.len());
        while i > 0 {
            sum += self.fenwick.get(i - 1).copied().unwrap_or(0);
            i &= i - 1;
        }
        sum
    }

    /// (chunk, offset) of ascending rank `rank` (< len).
    fn find_rank(&self, rank: usize) -> (usize, usize) {
        let n = self.fenwick.len();
        let mut pos = 0;
        let mut rem = rank;
        let mut step = if n == 0 {
            0
        } else {
            1 << (usize::BITS - 1 - n.leading_zeros())
        };
        while step > 0 {
            if pos + step <= n
                && let Some(&t) = self.fenwick.get(pos + step - 1)
                && t <= rem
            {
                pos += step;
                rem -= t;
            }
            step >>= 1;
        }
        (pos, rem)
    }
}

/// A sorted set in one of Redis 7.0's two encodings: a [`Pack`] of
/// member, score, member, score ... in (score, member) order while it has
/// at most `zset-max-listpack-entries` members of at most
/// `zset-max-listpack-value` bytes (`listpack`), the chunked order
/// statistics structure beyond (`skiplist`), never converted back except
/// where Redis does (a store command's result, [`SortedSet::with_size_hint`]).
///
/// A packed score is an integer entry when it is integral and exact in an
/// `f64` (most scores: counts, timestamps), else its 8 bytes.
#[derive(Clone, Debug)]
pub struct SortedSet(Repr);

#[derive(Clone, Debug)]
enum Repr {
    Pack(Pack),
    Big(Box<Chunked>),
}

impl Default for SortedSet {
    fn default() -> SortedSet {
        SortedSet(Repr::Pack(Pack::default()))
    }
}

impl PartialEq for SortedSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|(a, b)| a.0 == b.0 && a.1 == b.1)
    }
}

impl Eq for SortedSet {}

/// Integral scores up to this magnitude are held as integers.
const EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// How a packed score is written.
fn score_put(score: f64, raw: &mut [u8; 8]) -> Put<'_> {
    if score.fract() == 0.0
        && score.abs() <= EXACT_INT
        && !(score == 0.0 && score.is_sign_negative())
    {
        Put::Int(score as i64)
    } else {
        *raw = score.to_le_bytes();
        Put::Str(raw)
    }
}

fn score_of(e: Option<Elem<'_>>) -> f64 {
    match e {
        Some(Elem::Int(n)) => n as f64,
        Some(Elem::Str(b)) => {
            let mut raw = [0u8; 8];
            if let Some(dst) = raw.get_mut(..b.len().min(8)) {
                dst.copy_from_slice(b.get(..dst.len()).unwrap_or_default());
            }
            f64::from_le_bytes(raw)
        }
        None => 0.0,
    }
}

/// The (member, score) pairs of a pack in order.
fn pairs(p: &Pack) -> impl Iterator<Item = (Elem<'_>, f64)> + '_ {
    let mut it = p.iter();
    std::iter::from_fn(move || {
        let m = it.next()?;
        Some((m, score_of(it.next())))
    })
}

/// Entries of a sorted set, in ascending order; `.rev()` walks them
/// descending.
pub struct ZIter<'a>(ZIterRepr<'a>);

enum ZIterRepr<'a> {
    Vec(std::vec::IntoIter<(Bytes, f64)>),
    Big(Box<dyn DoubleEndedIterator<Item = (&'a Bytes, f64)> + 'a>),
}

impl Iterator for ZIter<'_> {
    type Item = (Bytes, f64);

    fn next(&mut self) -> Option<(Bytes, f64)> {
        match &mut self.0 {
            ZIterRepr::Vec(v) => v.next(),
            ZIterRepr::Big(b) => b.next().map(|(m, s)| (m.clone(), s)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            ZIterRepr::Vec(v) => v.size_hint(),
            ZIterRepr::Big(b) => b.size_hint(),
        }
    }
}

impl DoubleEndedIterator for ZIter<'_> {
    fn next_back(&mut self) -> Option<(Bytes, f64)> {
        match &mut self.0 {
            ZIterRepr::Vec(v) => v.next_back(),
            ZIterRepr::Big(b) => b.next_back().map(|(m, s)| (m.clone(), s)),
        }
    }
}

impl SortedSet {
    /// An empty sorted set (packed).
    pub fn new() -> SortedSet {
        SortedSet::default()
    }

    /// An empty sorted set about to receive `len` members, the longest
    /// `max_member` bytes long: like Redis' `zsetTypeCreate`, it starts
    /// out as a skiplist when those would not fit a listpack.
    pub fn with_size_hint(len: usize, max_member: usize) -> SortedSet {
        let limits = Limits::current();
        if len > limits.zset_entries || max_member > limits.zset_value {
            SortedSet(Repr::Big(Box::default()))
        } else {
            SortedSet::default()
        }
    }

    /// Whether the set is in its compact listpack encoding. Some
    /// observable details follow the encoding in Redis 7.0: a listpack
    /// shows a -0 score as `0`, ZSCAN returns it whole, and lex ranges scan
    /// it linearly.
    pub fn is_compact(&self) -> bool {
        matches!(self.0, Repr::Pack(_))
    }

    /// The name OBJECT ENCODING gives the encoding.
    pub fn encoding(&self) -> &'static str {
        if self.is_compact() {
            "listpack"
        } else {
            "skiplist"
        }
    }

    /// MEMORY USAGE's estimate of the heap this sorted set holds: the
    /// packed buffer; or the chunks (their `Arc`'d vectors of (score,
    /// member) items), the Fenwick tree and the score table's structure,
    /// plus the members' bytes (shared by a chunk item and the table)
    /// averaged over the first `samples` members and scaled to all.
    pub(crate) fn usage(&self, samples: usize) -> usize {
        match &self.0 {
            Repr::Pack(p) => p.bytes(),
            Repr::Big(b) => {
                let item = std::mem::size_of::<Item>();
                let chunks: usize = b
                    .chunks
                    .iter()
                    .map(|c| 16 + std::mem::size_of::<Vec<Item>>() + c.capacity() * item)
                    .sum();
                let members = b.chunks.iter().flat_map(|c| c.iter()).map(|(_, m)| m.len());
                std::mem::size_of::<Chunked>()
                    + b.chunks.capacity() * std::mem::size_of::<Arc<Vec<Item>>>()
                    + chunks
                    + b.fenwick.capacity() * std::mem::size_of::<usize>()
                    + b.scores.structure_bytes()
                    + crate::usage::scaled(members, samples, b.len())
            }
        }
    }

    /// Heap bytes held by the packed buffer (0 for a skiplist).
    pub fn packed_bytes(&self) -> usize {
        match &self.0 {
            Repr::Pack(p) => p.bytes(),
            Repr::Big(_) => 0,
        }
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Pack(p) => p.count() / 2,
            Repr::Big(b) => b.len(),
        }
    }

    /// Whether there are no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The score of `member`.
    pub fn score(&self, member: &[u8]) -> Option<f64> {
        match &self.0 {
            Repr::Pack(p) => {
                let i = p.find(&Probe::new(member), 2)?;
                Some(score_of(p.get(i + 1)))
            }
            Repr::Big(b) => b.score(member),
        }
    }

    fn convert(&mut self) {
        if let Repr::Pack(p) = &self.0 {
            let mut big = Chunked::default();
            for (m, s) in pairs(p) {
                big.insert(m.to_bytes(), s);
            }
            self.0 = Repr::Big(Box::new(big));
        }
    }

    /// Puts (member, score) in a pack at its place in the order.
    fn pack_link(p: &mut Pack, member: &[u8], score: f64) {
        let at = pairs(p)
            .position(|(m, s)| {
                let ord = match m {
                    Elem::Str(b) => cmp_item(s, b, score, member),
                    Elem::Int(_) => cmp_item(s, &m.to_bytes(), score, member),
                };
                ord == Ordering::Greater
            })
            .map_or(p.count(), |i| 2 * i);
        let mut raw = [0u8; 8];
        let put = score_put(score, &mut raw);
        p.splice_puts(at, 0, &[Put::Auto(member), put]);
    }

    /// Sets `member`'s score; returns the previous score if it was present.
    /// A NaN score is stored as 0 (callers refuse NaN before this).
    pub fn insert(&mut self, member: Bytes, score: f64) -> Option<f64> {
        if let Some(prev) = self.update_score(&member, score) {
            return Some(prev);
        }
        let limits = Limits::current();
        if let Repr::Pack(p) = &mut self.0 {
            if p.count() / 2 < limits.zset_entries && member.len() <= limits.zset_value {
                SortedSet::pack_link(p, &member, normalize(score, true));
                return None;
            }
            self.convert();
        }
        match &mut self.0 {
            Repr::Big(b) => b.insert(member, score),
            Repr::Pack(_) => None,
        }
    }

    /// Changes the score of `member` if it is present (returning the old
    /// score); does nothing otherwise. Unlike [`SortedSet::insert`] it
    /// needs no owned member, so updates allocate nothing.
    pub fn update_score(&mut self, member: &[u8], score: f64) -> Option<f64> {
        match &mut self.0 {
            Repr::Pack(p) => {
                let i = p.find(&Probe::new(member), 2)?;
                let prev = score_of(p.get(i + 1));
                let score = normalize(score, true);
                // An equal score (0 for -0 included) changes nothing.
                if prev != score {
                    p.splice(i, 2, &[]);
                    SortedSet::pack_link(p, member, score);
                }
                Some(prev)
            }
            Repr::Big(b) => b.update_score(member, score),
        }
    }

    /// Removes `member`; returns its score if it was present.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        match &mut self.0 {
            Repr::Pack(p) => {
                let i = p.find(&Probe::new(member), 2)?;
                let prev = score_of(p.get(i + 1));
                p.splice(i, 2, &[]);
                Some(prev)
            }
            Repr::Big(b) => b.remove(member),
        }
    }

    /// Members with their scores in ascending (score, member) order.
    pub fn iter(&self) -> ZIter<'_> {
        self.range(0, self.len())
    }

    /// Calls `f` with every (member, score) in ascending order, the member
    /// borrowed (nothing allocated per member, no `Bytes` cloned); stops at
    /// the first error. For walks that must leave no trace, such as a
    /// snapshot's.
    ///
    /// # Errors
    /// The first error `f` returns.
    pub fn try_for_each_pair<E>(
        &self,
        mut f: impl FnMut(&[u8], f64) -> Result<(), E>,
    ) -> Result<(), E> {
        match &self.0 {
            Repr::Pack(p) => {
                for (m, s) in pairs(p) {
                    m.with_str(|b| f(b, s))?;
                }
            }
            Repr::Big(b) => {
                for (m, s) in b.range(0, b.len()) {
                    f(m, s)?;
                }
            }
        }
        Ok(())
    }

    /// The 0-based ascending rank of `member`.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        match &self.0 {
            Repr::Pack(p) => p.find(&Probe::new(member), 2).map(|i| i / 2),
            Repr::Big(b) => b.rank(member),
        }
    }

    /// The member and score at ascending rank `rank`.
    pub fn get_by_rank(&self, rank: usize) -> Option<(Bytes, f64)> {
        match &self.0 {
            Repr::Pack(p) => pairs(p).nth(rank).map(|(m, s)| (m.to_bytes(), s)),
            Repr::Big(b) => b.get_by_rank(rank).map(|(m, s)| (m.clone(), s)),
        }
    }

    /// The entries with ascending ranks in `start..end` (clamped to the
    /// set), in ascending order; `.rev()` walks them descending.
    pub fn range(&self, start: usize, end: usize) -> ZIter<'_> {
        ZIter(match &self.0 {
            Repr::Pack(p) => ZIterRepr::Vec(
                pairs(p)
                    .skip(start)
                    .take(end.saturating_sub(start))
                    .map(|(m, s)| (m.to_bytes(), s))
                    .collect::<Vec<_>>()
                    .into_iter(),
            ),
            Repr::Big(b) => ZIterRepr::Big(Box::new(b.range(start, end))),
        })
    }

    /// The number of entries, from the lowest, for which `below` holds;
    /// `below` must hold for a prefix of the order and fail for the rest.
    /// With "score < min" this is the rank of the first entry >= min.
    pub fn partition_point(&self, mut below: impl FnMut(f64, &[u8]) -> bool) -> usize {
        match &self.0 {
            Repr::Pack(p) => pairs(p)
                .take_while(|(m, s)| match m {
                    Elem::Str(b) => below(*s, b),
                    Elem::Int(_) => below(*s, &m.to_bytes()),
                })
                .count(),
            Repr::Big(b) => b.partition_point(below),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn ranks_and_ranges_match_a_sorted_vec_under_churn() {
        let seed: u64 = rand::random();
        println!("seed {seed}");
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut z = SortedSet::new();
        let mut model: std::collections::BTreeMap<Bytes, f64> = Default::default();
        for step in 0..6000 {
            let m = Bytes::from(format!("m{}", rng.random_range(0..700)));
            if rng.random_bool(0.6) {
                let s = f64::from(rng.random_range(-50i32..50));
                assert_eq!(z.insert(m.clone(), s), model.insert(m, s));
            } else {
                assert_eq!(z.remove(&m), model.remove(&m));
            }
            if step % 97 == 0 {
                let mut want: Vec<(Bytes, f64)> =
                    model.iter().map(|(m, s)| (m.clone(), *s)).collect();
                want.sort_by(|a, b| cmp_item(a.1, &a.0, b.1, &b.0));
                let got: Vec<(Bytes, f64)> = z.iter().map(|(m, s)| (m.clone(), s)).collect();
                assert_eq!(got, want);
                for (r, (m, s)) in want.iter().enumerate() {
                    assert_eq!(z.rank(m), Some(r));
                    assert_eq!(z.get_by_rank(r), Some((m.clone(), *s)));
                }
                let a = rng.random_range(0..=want.len());
                let b = rng.random_range(0..=want.len() + 3);
                let got: Vec<_> = z.range(a, b).map(|(m, _)| m.clone()).collect();
                let exp: Vec<_> = want
                    .iter()
                    .skip(a)
                    .take(b.saturating_sub(a))
                    .map(|(m, _)| m.clone())
                    .collect();
                assert_eq!(got, exp);
                let rev: Vec<_> = z.range(a, b).rev().map(|(m, _)| m.clone()).collect();
                assert_eq!(rev, exp.into_iter().rev().collect::<Vec<_>>());
                let cut = f64::from(rng.random_range(-60i32..60));
                assert_eq!(
                    z.partition_point(|s, _| s < cut),
                    want.iter().filter(|(_, s)| *s < cut).count()
                );
            }
        }
    }

    #[test]
    fn negative_zero_is_kept_only_once_non_compact() {
        let mut z = SortedSet::new();
        z.insert(Bytes::from_static(b"b"), -0.0);
        z.insert(Bytes::from_static(b"a"), 0.0);
        let s = z.score(b"b").unwrap();
        assert!(s == 0.0 && s.is_sign_positive());
        assert_eq!(z.rank(b"a"), Some(0));
        assert_eq!(z.rank(b"b"), Some(1));
        for i in 0..127 {
            z.insert(Bytes::from(format!("m{i}")), 1.0);
        }
        assert!(!z.is_compact(), "the 129th member converts");
        z.insert(Bytes::from_static(b"c"), -0.0);
        assert!(z.score(b"c").unwrap().is_sign_negative());
        assert_eq!(z.rank(b"c"), Some(2), "-0 sorts with 0");
        for i in 0..127 {
            z.remove(format!("m{i}").as_bytes());
        }
        assert!(!z.is_compact(), "shrinking never converts back");
        let long = SortedSet::with_size_hint(1, 65);
        assert!(!long.is_compact());
    }

    /// A write to a large sorted set shared with a view copies one chunk
    /// and one score segment; the view keeps the old order and scores.
    #[test]
    fn a_write_under_a_view_copies_one_chunk() {
        let mut z = Arc::new(SortedSet::new());
        for i in 0..50_000 {
            Arc::make_mut(&mut z).insert(Bytes::from(format!("m{i}")), f64::from(i));
        }
        let view = Arc::clone(&z);
        Arc::make_mut(&mut z).update_score(b"m10", -1.0);
        let (Repr::Big(new), Repr::Big(old)) = (&z.0, &view.0) else {
            panic!("large sets are chunked");
        };
        let shared = new
            .chunks
            .iter()
            .filter(|c| old.chunks.iter().any(|o| Arc::ptr_eq(c, o)))
            .count();
        assert!(
            shared + 2 >= new.chunks.len(),
            "{shared} of {} chunks shared",
            new.chunks.len()
        );
        assert_eq!(view.score(b"m10"), Some(10.0));
        assert_eq!(z.score(b"m10"), Some(-1.0));
        assert_eq!(z.rank(b"m10"), Some(0));
        assert_eq!(view.rank(b"m10"), Some(10));
    }
}
