//! The list type of list values: a deque of packed nodes, as Redis 7.0's
//! quicklist of listpacks.
//!
//! Each node is a [`Pack`] of consecutive elements, filled up to
//! `list-max-listpack-size` (a count when positive, with an 8 KiB safety
//! cap as Redis has; a byte budget of 4 to 64 KiB when negative). A list of
//! ten short elements is one small buffer instead of ten `Bytes` with their
//! own allocations; pushes and pops at either end touch one node; an
//! index walks node counts (O(nodes)), as in Redis. Elements come back as
//! owned `Bytes` copied out of the nodes.

use std::collections::VecDeque;
use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use bytes::Bytes;

use crate::encoding::Limits;
use crate::packed::{Elem, Pack, PackIter, Put, encoded_len};

/// Redis' `SIZE_SAFETY_LIMIT`: a node never grows past this many bytes
/// when the fill is a count.
const SAFETY_BYTES: usize = 8192;

/// A list of byte strings in packed nodes.
///
/// Each node sits behind its own `Arc`, so cloning a list (what the first
/// write after a point-in-time view does, through `Arc::make_mut` on the
/// value) copies the node pointers, and the write then copies only the
/// node it changes (`Arc::make_mut` on the node): O(nodes + node size)
/// instead of every node's buffer. Memory stays put: the deque holds
/// 8-byte pointers instead of 24-byte `Pack`s, which pays for the `Arc`'s
/// own allocation.
#[derive(Clone, Default)]
pub struct QuickList {
    nodes: VecDeque<Arc<Pack>>,
    len: usize,
}

/// Whether `node` may take one more element of `add` encoded bytes.
fn fits(limits: Limits, node: &Pack, add: usize) -> bool {
    let bytes = node.bytes() + add;
    match limits.list_node_bytes() {
        Some(max) => bytes <= max,
        None => {
            let count = usize::try_from(limits.list_size).unwrap_or(0);
            node.count() < count.max(1) && bytes <= SAFETY_BYTES
        }
    }
}

fn bounds(r: impl RangeBounds<usize>, len: usize) -> (usize, usize) {
    let a = match r.start_bound() {
        Bound::Included(&a) => a,
        Bound::Excluded(&a) => a.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let b = match r.end_bound() {
        Bound::Included(&b) => b.saturating_add(1),
        Bound::Excluded(&b) => b,
        Bound::Unbounded => len,
    };
    let b = b.min(len);
    (a.min(b), b)
}

impl QuickList {
    /// An empty list.
    pub fn new() -> QuickList {
        QuickList::default()
    }

    /// An empty list (the nodes are sized by `list-max-listpack-size`,
    /// not by a count of elements).
    pub fn with_capacity(_n: usize) -> QuickList {
        QuickList::default()
    }

    /// Nothing to reserve: nodes grow as elements come.
    pub fn reserve(&mut self, _n: usize) {}

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the list has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of nodes (DEBUG OBJECT's `ql_nodes`).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// MEMORY USAGE's estimate of the heap this list holds: the node
    /// ring of pointers, and each node (its shared allocation: two
    /// reference counts and the `Pack`, then its buffer) averaged over the
    /// first `samples` nodes and scaled to all of them (Redis samples
    /// quicklist nodes).
    pub(crate) fn usage(&self, samples: usize) -> usize {
        let node = 2 * std::mem::size_of::<usize>() + std::mem::size_of::<Pack>();
        self.nodes.capacity() * std::mem::size_of::<Arc<Pack>>()
            + crate::usage::scaled(
                self.nodes.iter().map(|n| node + n.bytes()),
                samples,
                self.nodes.len(),
            )
    }

    /// Heap bytes held by the nodes' buffers.
    pub fn packed_bytes(&self) -> usize {
        self.nodes.iter().map(|n| n.bytes()).sum()
    }

    /// Adds `e` at the end.
    pub fn push_back(&mut self, e: impl AsRef<[u8]>) {
        let e = e.as_ref();
        let add = encoded_len(Put::Auto(e));
        match self.nodes.back_mut() {
            Some(n) if fits(Limits::current(), n, add) => Arc::make_mut(n).push(&[e]),
            _ => {
                let mut n = Pack::default();
                n.push(&[e]);
                self.nodes.push_back(Arc::new(n));
            }
        }
        self.len += 1;
    }

    /// Adds `e` at the front.
    pub fn push_front(&mut self, e: impl AsRef<[u8]>) {
        let e = e.as_ref();
        let add = encoded_len(Put::Auto(e));
        match self.nodes.front_mut() {
            Some(n) if fits(Limits::current(), n, add) => Arc::make_mut(n).splice(0, 0, &[e]),
            _ => {
                let mut n = Pack::default();
                n.push(&[e]);
                self.nodes.push_front(Arc::new(n));
            }
        }
        self.len += 1;
    }

    /// Removes and returns the first element.
    pub fn pop_front(&mut self) -> Option<Bytes> {
        let n = self.nodes.front_mut()?;
        let e = n.get(0).map(Elem::to_bytes);
        if n.count() <= 1 {
            // The last element goes with its node: nothing to copy.
            self.nodes.pop_front();
            self.len = self.len.saturating_sub(1);
            return e;
        }
        let n = Arc::make_mut(n);
        n.splice(0, 1, &[]);
        if n.count() == 0 {
            self.nodes.pop_front();
        }
        self.len = self.len.saturating_sub(1);
        e
    }

    /// Removes and returns the last element.
    pub fn pop_back(&mut self) -> Option<Bytes> {
        let n = self.nodes.back_mut()?;
        let last = n.count().checked_sub(1)?;
        let e = n.get(last).map(Elem::to_bytes);
        if last == 0 {
            self.nodes.pop_back();
            self.len = self.len.saturating_sub(1);
            return e;
        }
        let n = Arc::make_mut(n);
        n.splice(last, 1, &[]);
        if n.count() == 0 {
            self.nodes.pop_back();
        }
        self.len = self.len.saturating_sub(1);
        e
    }

    /// The node holding index `i` and the offset in it.
    fn locate(&self, i: usize) -> Option<(usize, usize)> {
        if i >= self.len {
            return None;
        }
        // Walk from the nearer end.
        if i < self.len / 2 {
            let mut rest = i;
            for (ni, n) in self.nodes.iter().enumerate() {
                if rest < n.count() {
                    return Some((ni, rest));
                }
                rest -= n.count();
            }
        } else {
            let mut end = self.len;
            for (ni, n) in self.nodes.iter().enumerate().rev() {
                let start = end - n.count();
                if i >= start {
                    return Some((ni, i - start));
                }
                end = start;
            }
        }
        None
    }

    /// The element at index `i`.
    pub fn get(&self, i: usize) -> Option<Bytes> {
        let (ni, off) = self.locate(i)?;
        self.nodes.get(ni)?.get(off).map(Elem::to_bytes)
    }

    /// Replaces the element at index `i`; false if out of range.
    pub fn set(&mut self, i: usize, e: &[u8]) -> bool {
        let Some((ni, off)) = self.locate(i) else {
            return false;
        };
        if let Some(n) = self.nodes.get_mut(ni) {
            Arc::make_mut(n).splice(off, 1, &[e]);
        }
        self.split_if_over(ni);
        true
    }

    /// Inserts `e` before index `i` (at the end when `i == len`).
    pub fn insert(&mut self, i: usize, e: impl AsRef<[u8]>) {
        let e = e.as_ref();
        if i >= self.len {
            self.push_back(e);
            return;
        }
        if i == 0 {
            self.push_front(e);
            return;
        }
        let Some((ni, off)) = self.locate(i) else {
            return;
        };
        if let Some(n) = self.nodes.get_mut(ni) {
            Arc::make_mut(n).splice(off, 0, &[e]);
        }
        self.len += 1;
        self.split_if_over(ni);
    }

    /// Splits node `ni` in two when an insertion or a replacement made it
    /// larger than a node may be.
    fn split_if_over(&mut self, ni: usize) {
        let limits = Limits::current();
        let Some(n) = self.nodes.get(ni) else {
            return;
        };
        let over = match limits.list_node_bytes() {
            Some(max) => n.bytes() > max,
            None => {
                let count = usize::try_from(limits.list_size).unwrap_or(0).max(1);
                n.count() > count || n.bytes() > SAFETY_BYTES
            }
        };
        if !over || n.count() < 2 {
            return;
        }
        let elems: Vec<Bytes> = n.iter().map(Elem::to_bytes).collect();
        let (a, b) = elems.split_at(elems.len() / 2);
        let pack = |part: &[Bytes]| {
            let mut p = Pack::default();
            let refs: Vec<&[u8]> = part.iter().map(|e| &e[..]).collect();
            p.push(&refs);
            p
        };
        if let Some(slot) = self.nodes.get_mut(ni) {
            *slot = Arc::new(pack(a));
        }
        self.nodes.insert(ni + 1, Arc::new(pack(b)));
    }

    /// Removes the elements in `range` and returns them in order.
    pub fn drain(&mut self, range: impl RangeBounds<usize>) -> std::vec::IntoIter<Bytes> {
        let (a, b) = bounds(range, self.len);
        let mut out = Vec::with_capacity(b - a);
        if a == b {
            return out.into_iter();
        }
        let mut start = 0;
        let mut ni = 0;
        while let Some(n) = self.nodes.get_mut(ni) {
            let count = n.count();
            let (lo, hi) = (a.max(start), b.min(start + count));
            start += count;
            if lo >= hi {
                ni += 1;
            } else {
                out.extend(
                    n.iter()
                        .skip(lo - (start - count))
                        .take(hi - lo)
                        .map(Elem::to_bytes),
                );
                if hi - lo == count {
                    self.nodes.remove(ni);
                } else {
                    Arc::make_mut(n).splice(lo - (start - count), hi - lo, &[]);
                    ni += 1;
                }
            }
            if start >= b {
                break;
            }
        }
        self.len -= out.len();
        out.into_iter()
    }

    /// Keeps the first `n` elements.
    pub fn truncate(&mut self, n: usize) {
        if n < self.len {
            self.drain(n..);
        }
    }

    /// Removes every element.
    pub fn clear(&mut self) {
        self.nodes.clear();
        self.len = 0;
    }

    /// Keeps the elements for which `keep` holds, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8]) -> bool) {
        let old = std::mem::take(self);
        for e in old.iter() {
            if keep(&e) {
                self.push_back(e);
            }
        }
    }

    /// Calls `f` with every element front to back, borrowed from the nodes
    /// (nothing allocated per element); stops at the first error. For
    /// walks that must leave no trace, such as a snapshot's.
    ///
    /// # Errors
    /// The first error `f` returns.
    pub fn try_for_each_slice<E>(
        &self,
        mut f: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        for n in &self.nodes {
            for e in n.iter() {
                e.with_str(&mut f)?;
            }
        }
        Ok(())
    }

    /// The elements front to back; `.rev()` walks them back to front.
    pub fn iter(&self) -> ListIter<'_> {
        self.range(..)
    }

    /// The elements with indices in `range` (clamped to the list).
    pub fn range(&self, range: impl RangeBounds<usize>) -> ListIter<'_> {
        let (a, b) = bounds(range, self.len);
        let mut it = ListIter {
            list: self,
            left: b - a,
            front: None,
            back: None,
        };
        if a < b {
            if let Some((ni, off)) = self.locate(a)
                && let Some(n) = self.nodes.get(ni)
            {
                let mut p = n.iter();
                for _ in 0..off {
                    p.next();
                }
                it.front = Some((ni, p));
            }
            if let Some((ni, off)) = self.locate(b - 1)
                && let Some(n) = self.nodes.get(ni)
            {
                let elems: Vec<Elem<'_>> = n.iter().take(off + 1).collect();
                it.back = Some((ni, elems));
            }
        }
        it
    }
}

/// The elements of a [`QuickList`] in a range, double-ended.
pub struct ListIter<'a> {
    list: &'a QuickList,
    left: usize,
    front: Option<(usize, PackIter<'a>)>,
    /// The back node's elements not yet taken from the back.
    back: Option<(usize, Vec<Elem<'a>>)>,
}

impl Iterator for ListIter<'_> {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        if self.left == 0 {
            return None;
        }
        loop {
            let (ni, it) = self.front.as_mut()?;
            if let Some(e) = it.next() {
                self.left -= 1;
                return Some(e.to_bytes());
            }
            let next = *ni + 1;
            self.front = self.list.nodes.get(next).map(|n| (next, n.iter()));
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl DoubleEndedIterator for ListIter<'_> {
    fn next_back(&mut self) -> Option<Bytes> {
        if self.left == 0 {
            return None;
        }
        loop {
            let (ni, elems) = self.back.as_mut()?;
            if let Some(e) = elems.pop() {
                self.left -= 1;
                return Some(e.to_bytes());
            }
            let prev = ni.checked_sub(1)?;
            self.back = self
                .list
                .nodes
                .get(prev)
                .map(|n| (prev, n.iter().collect()));
        }
    }
}

impl ExactSizeIterator for ListIter<'_> {}

impl PartialEq for QuickList {
    fn eq(&self, other: &QuickList) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl Eq for QuickList {}

impl fmt::Debug for QuickList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl FromIterator<Bytes> for QuickList {
    fn from_iter<I: IntoIterator<Item = Bytes>>(iter: I) -> QuickList {
        let mut l = QuickList::new();
        for e in iter {
            l.push_back(e);
        }
        l
    }
}

impl<const N: usize> From<[Bytes; N]> for QuickList {
    fn from(elems: [Bytes; N]) -> QuickList {
        elems.into_iter().collect()
    }
}

impl<'a> IntoIterator for &'a QuickList {
    type Item = Bytes;
    type IntoIter = ListIter<'a>;

    fn into_iter(self) -> ListIter<'a> {
        self.iter()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Every operation against a `VecDeque`, with nodes small enough that
    /// the lists span many of them.
    #[test]
    fn matches_a_vecdeque_under_random_operations() {
        for list_size in [1, 3, -1] {
            Limits {
                list_size,
                ..Limits::REDIS
            }
            .install();
            let seed: u64 = rand::random();
            println!("seed {seed} list_size {list_size}");
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut q = QuickList::new();
            let mut m: VecDeque<Bytes> = VecDeque::new();
            for step in 0..4000 {
                let e = if rng.random_bool(0.3) {
                    Bytes::from(rng.random_range(-1000i64..1000).to_string())
                } else {
                    Bytes::from(vec![b'a' + (step % 26) as u8; rng.random_range(0..300)])
                };
                match rng.random_range(0..11) {
                    0 | 1 => {
                        q.push_back(e.clone());
                        m.push_back(e);
                    }
                    2 | 3 => {
                        q.push_front(e.clone());
                        m.push_front(e);
                    }
                    4 => assert_eq!(q.pop_front(), m.pop_front()),
                    5 => assert_eq!(q.pop_back(), m.pop_back()),
                    6 => {
                        let i = rng.random_range(0..=m.len());
                        q.insert(i, e.clone());
                        m.insert(i, e);
                    }
                    7 if !m.is_empty() => {
                        let i = rng.random_range(0..m.len());
                        assert!(q.set(i, &e));
                        m[i] = e;
                    }
                    8 => {
                        let a = rng.random_range(0..=m.len());
                        let b = rng.random_range(a..=m.len());
                        let got: Vec<Bytes> = q.drain(a..b).collect();
                        let want: Vec<Bytes> = m.drain(a..b).collect();
                        assert_eq!(got, want);
                    }
                    9 => {
                        let c = b'a' + rng.random_range(0..26u8);
                        q.retain(|x| x.first() != Some(&c));
                        m.retain(|x| x.first() != Some(&c));
                    }
                    _ => {
                        let n = rng.random_range(0..=m.len() + 2);
                        q.truncate(n);
                        m.truncate(n);
                    }
                }
                assert_eq!(q.len(), m.len());
                if step % 50 == 0 {
                    assert!(q.iter().eq(m.iter().cloned()));
                    assert!(q.iter().rev().eq(m.iter().rev().cloned()));
                    let a = rng.random_range(0..=m.len());
                    let b = rng.random_range(0..=m.len() + 2);
                    assert!(q.range(a..b).eq(m.range(a..b.min(m.len()).max(a)).cloned()));
                    assert!(
                        q.range(a..b)
                            .rev()
                            .eq(m.range(a..b.min(m.len()).max(a)).rev().cloned())
                    );
                    for i in [0, m.len() / 2, m.len().saturating_sub(1), m.len()] {
                        assert_eq!(q.get(i), m.get(i).cloned());
                    }
                    assert!(q.nodes.iter().all(|n| n.count() > 0));
                }
            }
        }
        Limits::REDIS.install();
    }

    #[test]
    fn nodes_follow_list_max_listpack_size() {
        Limits {
            list_size: 4,
            ..Limits::REDIS
        }
        .install();
        let q: QuickList = (0..10).map(|i| Bytes::from(format!("e{i}"))).collect();
        assert_eq!(q.node_count(), 3);
        Limits::REDIS.install();
        // -2: 8 KiB per node.
        let q: QuickList = (0..1000).map(|_| Bytes::from(vec![b'x'; 100])).collect();
        assert_eq!(q.node_count(), 1000usize.div_ceil(8192 / 102));
    }

    /// A clone (what a write under a view makes) shares every node; each
    /// kind of write then copies only the node it changes, and the original
    /// (the view's) keeps its elements.
    #[test]
    fn a_write_after_a_clone_copies_only_the_node_written() {
        Limits {
            list_size: 4,
            ..Limits::REDIS
        }
        .install();
        let base: QuickList = (0..40).map(|i| Bytes::from(format!("e{i}"))).collect();
        assert_eq!(base.node_count(), 10);
        let copied = |q: &QuickList| {
            q.nodes
                .iter()
                .filter(|n| !base.nodes.iter().any(|b| Arc::ptr_eq(b, n)))
                .count()
        };
        type Write = fn(&mut QuickList);
        let writes: [(&str, Write); 7] = [
            ("lset", |q| assert!(q.set(17, b"x"))),
            ("linsert", |q| q.insert(21, b"y")),
            ("rpush", |q| q.push_back(b"z")),
            ("lpush", |q| q.push_front(b"z")),
            ("lpop", |q| assert!(q.pop_front().is_some())),
            ("rpop", |q| assert!(q.pop_back().is_some())),
            ("lrem one", |q| assert_eq!(q.drain(9..10).count(), 1)),
        ];
        for (name, write) in writes {
            let mut q = base.clone();
            assert_eq!(copied(&q), 0, "{name}: a clone copies no node");
            write(&mut q);
            // LINSERT splits its full node in two fresh halves; pushes to a
            // full end node add a new one.
            assert!(copied(&q) <= 2, "{name}: copied {} nodes", copied(&q));
            assert!(q.nodes.len() >= 9, "{name}");
        }
        let expect: Vec<Bytes> = (0..40).map(|i| Bytes::from(format!("e{i}"))).collect();
        assert_eq!(
            base.iter().collect::<Vec<_>>(),
            expect,
            "the view's list is untouched"
        );
        Limits::REDIS.install();
    }
}
