//! Packed small collections: Redis' listpack and intset ideas.
//!
//! A [`Pack`] holds byte-string entries back to back in one buffer, each
//! behind a varint header: an even header `2n` is a string of `n` bytes
//! that follow; an odd one is an integer (strings that are the canonical
//! decimal form of an `i64`, so they read back byte for byte): `2z + 3`
//! carries the zigzag form `z` of a small one, `1` is followed by eight
//! little-endian bytes for the rest. A 10-field hash of short strings is
//! one allocation of about 150 bytes where a table of `Bytes` pairs costs
//! a kilobyte or more. Lookups walk the buffer (the size limits keep it
//! short, as in Redis); edits rebuild the changed tail in place.
//!
//! An [`IntSet`] holds distinct integers sorted, each in the narrowest of
//! 2, 4 or 8 bytes that fits all of them (Redis' intset).

use bytes::Bytes;

use crate::value::{format_i64, parse_canonical_i64};

/// One entry read from a pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Elem<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Elem<'_> {
    /// The entry as an owned string.
    pub(crate) fn to_bytes(self) -> Bytes {
        match self {
            Elem::Str(b) => Bytes::copy_from_slice(b),
            Elem::Int(n) => {
                let mut buf = [0u8; 20];
                let len = format_i64(n, &mut buf);
                Bytes::copy_from_slice(buf.get(..len).unwrap_or_default())
            }
        }
    }

    /// Calls `f` with the entry's string form, borrowed for a string entry
    /// and formatted on the stack for an integer: nothing is allocated.
    pub(crate) fn with_str<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Elem::Str(b) => f(b),
            Elem::Int(n) => {
                let mut buf = [0u8; 20];
                let len = format_i64(n, &mut buf);
                f(buf.get(..len).unwrap_or_default())
            }
        }
    }

    /// The length of the entry's string form.
    pub(crate) fn str_len(self) -> usize {
        match self {
            Elem::Str(b) => b.len(),
            Elem::Int(n) => {
                let mut buf = [0u8; 20];
                format_i64(n, &mut buf)
            }
        }
    }

    /// Whether the entry reads as `probe`.
    fn matches(self, probe: &Probe<'_>) -> bool {
        match (self, probe.int) {
            (Elem::Int(n), Some(p)) => n == p,
            (Elem::Str(b), None) => b == probe.bytes,
            _ => false,
        }
    }
}

/// A key to look up, classified once: an integer form matches only
/// integer entries, anything else only string entries.
pub(crate) struct Probe<'a> {
    bytes: &'a [u8],
    int: Option<i64>,
}

impl<'a> Probe<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Probe<'a> {
        Probe {
            bytes,
            int: parse_canonical_i64(bytes),
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The varint at `buf[pos..]` and the position after it; a truncated one
/// (never written by `Pack`) reads as the end of the buffer.
fn get_varint(buf: &[u8], mut pos: usize) -> (u64, usize) {
    let mut v = 0u64;
    let mut shift = 0;
    while let Some(&b) = buf.get(pos) {
        pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return (v, pos);
        }
        shift += 7;
        if shift >= 64 {
            break;
        }
    }
    (0, buf.len())
}

/// An entry to write.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Put<'a> {
    /// A string, held as an integer when it is one's canonical form.
    Auto(&'a [u8]),
    /// A string held as bytes whatever they are.
    Str(&'a [u8]),
    /// An integer.
    Int(i64),
}

impl Put<'_> {
    fn int(self) -> Option<i64> {
        match self {
            Put::Auto(b) => parse_canonical_i64(b),
            Put::Str(_) => None,
            Put::Int(n) => Some(n),
        }
    }
}

/// Appends the encoding of `put` to `out`.
fn encode(out: &mut Vec<u8>, put: Put<'_>) {
    match put.int() {
        Some(n) => {
            let z = ((n << 1) ^ (n >> 63)) as u64;
            match z.checked_mul(2).and_then(|d| d.checked_add(3)) {
                Some(h) => put_varint(out, h),
                None => {
                    out.push(1);
                    out.extend_from_slice(&n.to_le_bytes());
                }
            }
        }
        None => {
            let bytes = match put {
                Put::Auto(b) | Put::Str(b) => b,
                Put::Int(_) => &[],
            };
            put_varint(out, (bytes.len() as u64) << 1);
            out.extend_from_slice(bytes);
        }
    }
}

/// The encoded size of `put`.
pub(crate) fn encoded_len(put: Put<'_>) -> usize {
    match (put.int(), put) {
        (None, Put::Auto(b) | Put::Str(b)) => varint_len((b.len() as u64) << 1) + b.len(),
        (Some(n), _) => {
            let z = ((n << 1) ^ (n >> 63)) as u64;
            match z.checked_mul(2).and_then(|d| d.checked_add(3)) {
                Some(h) => varint_len(h),
                None => 9,
            }
        }
        (None, Put::Int(_)) => 0,
    }
}

/// The bytes `put_varint` writes for `v`.
fn varint_len(v: u64) -> usize {
    (64 - v.leading_zeros() as usize).max(1).div_ceil(7)
}

/// The entry at `buf[pos..]` and the position after it.
fn decode(buf: &[u8], pos: usize) -> (Elem<'_>, usize) {
    let (h, p) = get_varint(buf, pos);
    if h & 1 == 0 {
        let len = usize::try_from(h >> 1).unwrap_or(usize::MAX);
        let end = p.saturating_add(len).min(buf.len());
        (Elem::Str(buf.get(p..end).unwrap_or_default()), end)
    } else if h == 1 {
        let end = (p + 8).min(buf.len());
        let mut raw = [0u8; 8];
        if let Some(src) = buf.get(p..end)
            && let Some(dst) = raw.get_mut(..src.len())
        {
            dst.copy_from_slice(src);
        }
        (Elem::Int(i64::from_le_bytes(raw)), end)
    } else {
        let z = (h - 3) >> 1;
        let n = ((z >> 1) as i64) ^ -((z & 1) as i64);
        (Elem::Int(n), p)
    }
}

/// Byte strings back to back in one buffer, in insertion order.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub(crate) struct Pack {
    buf: Box<[u8]>,
    count: u32,
}

/// The entries of a pack, front to back, with their byte offsets.
#[derive(Clone)]
pub(crate) struct PackIter<'a> {
    buf: &'a [u8],
    pos: usize,
    left: usize,
}

impl<'a> Iterator for PackIter<'a> {
    type Item = Elem<'a>;

    fn next(&mut self) -> Option<Elem<'a>> {
        if self.left == 0 {
            return None;
        }
        let (e, next) = decode(self.buf, self.pos);
        self.pos = next;
        self.left -= 1;
        Some(e)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for PackIter<'_> {}

impl Pack {
    /// The number of entries.
    pub(crate) fn count(&self) -> usize {
        self.count as usize
    }

    /// The buffer's size in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn iter(&self) -> PackIter<'_> {
        PackIter {
            buf: &self.buf,
            pos: 0,
            left: self.count(),
        }
    }

    /// The entry at index `i`.
    pub(crate) fn get(&self, i: usize) -> Option<Elem<'_>> {
        self.iter().nth(i)
    }

    /// The byte offset of entry `i` (the buffer's end for `count`).
    fn offset(&self, i: usize) -> usize {
        let mut pos = 0;
        for _ in 0..i.min(self.count()) {
            pos = decode(&self.buf, pos).1;
        }
        pos
    }

    /// The index of the first entry at a multiple of `stride` that reads
    /// as `probe` (stride 2: the fields of field/value pairs).
    pub(crate) fn find(&self, probe: &Probe<'_>, stride: usize) -> Option<usize> {
        let stride = stride.max(1);
        self.iter()
            .enumerate()
            .step_by(stride)
            .find(|(_, e)| e.matches(probe))
            .map(|(i, _)| i)
    }

    /// Replaces the `remove` entries from index `at` with `insert`.
    pub(crate) fn splice(&mut self, at: usize, remove: usize, insert: &[&[u8]]) {
        let puts: Vec<Put<'_>> = insert.iter().map(|b| Put::Auto(b)).collect();
        self.splice_puts(at, remove, &puts);
    }

    /// [`Pack::splice`] with entries whose form the caller chose.
    pub(crate) fn splice_puts(&mut self, at: usize, remove: usize, insert: &[Put<'_>]) {
        let at = at.min(self.count());
        let remove = remove.min(self.count() - at);
        // Appending needs no walk.
        let start = if at == self.count() {
            self.buf.len()
        } else {
            self.offset(at)
        };
        let mut end = start;
        for _ in 0..remove {
            end = decode(&self.buf, end).1;
        }
        let mut new = Vec::with_capacity(insert.iter().map(|&p| encoded_len(p)).sum());
        for &p in insert {
            encode(&mut new, p);
        }
        // In place: the allocator can often grow or shrink the buffer
        // without moving it, and only the tail after the edit moves.
        let mut buf = std::mem::take(&mut self.buf).into_vec();
        buf.reserve_exact(new.len().saturating_sub(end - start));
        buf.splice(start..end.min(buf.len()), new);
        self.buf = buf.into_boxed_slice();
        self.count = (self.count() - remove + insert.len()) as u32;
    }

    /// Appends entries at the end.
    pub(crate) fn push(&mut self, entries: &[&[u8]]) {
        self.splice(self.count(), 0, entries);
    }
}

/// Distinct integers in ascending order, each stored in `width` bytes.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct IntSet {
    width: u8,
    data: Box<[u8]>,
}

impl Default for IntSet {
    fn default() -> IntSet {
        IntSet {
            width: 2,
            data: Box::default(),
        }
    }
}

fn width_of(n: i64) -> u8 {
    if i16::try_from(n).is_ok() {
        2
    } else if i32::try_from(n).is_ok() {
        4
    } else {
        8
    }
}

impl IntSet {
    pub(crate) fn len(&self) -> usize {
        self.data.len() / usize::from(self.width)
    }

    /// The buffer's size in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.data.len()
    }

    pub(crate) fn get(&self, i: usize) -> Option<i64> {
        let w = usize::from(self.width);
        let raw = self.data.get(i * w..i * w + w)?;
        Some(match *raw {
            [a, b] => i64::from(i16::from_le_bytes([a, b])),
            [a, b, c, d] => i64::from(i32::from_le_bytes([a, b, c, d])),
            [a, b, c, d, e, f, g, h] => i64::from_le_bytes([a, b, c, d, e, f, g, h]),
            _ => 0,
        })
    }

    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = i64> + Clone + '_ {
        (0..self.len()).map(|i| self.get(i).unwrap_or(0))
    }

    /// `Ok(index)` of `n`, or `Err(index)` where it would go.
    fn search(&self, n: i64) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.get(mid).unwrap_or(0).cmp(&n) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    pub(crate) fn contains(&self, n: i64) -> bool {
        self.search(n).is_ok()
    }

    fn rebuild(&self, width: u8, values: impl Iterator<Item = i64>) -> Box<[u8]> {
        let mut out = Vec::with_capacity(self.len().saturating_add(1) * usize::from(width));
        for v in values {
            match width {
                2 => out.extend_from_slice(&(v as i16).to_le_bytes()),
                4 => out.extend_from_slice(&(v as i32).to_le_bytes()),
                _ => out.extend_from_slice(&v.to_le_bytes()),
            }
        }
        out.into_boxed_slice()
    }

    /// Adds `n`; false if it was there.
    pub(crate) fn insert(&mut self, n: i64) -> bool {
        let Err(at) = self.search(n) else {
            return false;
        };
        let width = self.width.max(width_of(n));
        let values = self
            .iter()
            .take(at)
            .chain(std::iter::once(n))
            .chain(self.iter().skip(at));
        self.data = self.rebuild(width, values);
        self.width = width;
        true
    }

    /// Removes `n`; false if it was not there. The width stays, as in
    /// Redis (an intset never narrows).
    pub(crate) fn remove(&mut self, n: i64) -> bool {
        let Ok(at) = self.search(n) else {
            return false;
        };
        self.remove_at(at);
        true
    }

    /// Removes and returns the member at index `at`.
    pub(crate) fn remove_at(&mut self, at: usize) -> Option<i64> {
        let n = self.get(at)?;
        let values = self
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != at)
            .map(|(_, v)| v);
        self.data = self.rebuild(self.width, values);
        Some(n)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_in_both_forms() {
        let samples: Vec<Vec<u8>> = [
            &b""[..],
            b"0",
            b"-0",
            b"007",
            b"1",
            b"-1",
            b"63",
            b"64",
            b"9223372036854775807",
            b"-9223372036854775808",
            b"4611686018427387903",
            b"-4611686018427387904",
            b"4611686018427387904",
            b"9223372036854775808",
            b"field",
            b"\x00\xff",
        ]
        .iter()
        .map(|b| b.to_vec())
        .chain(std::iter::once(vec![b'x'; 300]))
        .collect();
        let mut p = Pack::default();
        let refs: Vec<&[u8]> = samples.iter().map(|s| &s[..]).collect();
        p.push(&refs);
        assert_eq!(p.count(), samples.len());
        let back: Vec<Bytes> = p.iter().map(Elem::to_bytes).collect();
        assert_eq!(back, samples);
        for (i, s) in samples.iter().enumerate() {
            assert_eq!(p.find(&Probe::new(s), 1), Some(i), "{s:?}");
            assert_eq!(p.get(i).unwrap().str_len(), s.len());
            assert_eq!(encoded_len(Put::Auto(s)), {
                let mut v = Vec::new();
                encode(&mut v, Put::Auto(s));
                v.len()
            });
        }
        // Integers take less room than their text.
        let mut small = Vec::new();
        encode(&mut small, Put::Auto(b"1733600000"));
        assert!(small.len() < 10);
        p.splice(1, 2, &[b"a", b"b", b"c"]);
        assert_eq!(p.count(), samples.len() + 1);
        assert_eq!(p.get(0).unwrap().to_bytes(), &b""[..]);
        assert_eq!(p.get(3).unwrap().to_bytes(), &b"c"[..]);
        assert_eq!(p.get(4).unwrap().to_bytes(), &b"007"[..]);
        assert_eq!(p.find(&Probe::new(b"63"), 2), None, "even indices only");
        assert_eq!(p.find(&Probe::new(b"64"), 2), Some(8));
    }

    #[test]
    fn intset_widens_and_keeps_order() {
        let mut s = IntSet::default();
        for n in [5, -3, 40_000, 5, i64::MIN, 7] {
            s.insert(n);
        }
        assert_eq!(s.iter().collect::<Vec<_>>(), [i64::MIN, -3, 5, 7, 40_000]);
        assert_eq!(s.bytes(), 5 * 8);
        assert!(s.remove(i64::MIN) && !s.remove(i64::MIN));
        assert!(s.contains(40_000) && !s.contains(6));
        assert_eq!(s.remove_at(0), Some(-3));
        assert_eq!(s.iter().collect::<Vec<_>>(), [5, 7, 40_000]);
    }
}
