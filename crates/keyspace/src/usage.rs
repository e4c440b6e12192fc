//! MEMORY USAGE: an estimate of the bytes a key holds, from its value's
//! representation (packed buffers, quicklist nodes, table segments,
//! sorted-set chunks, stream blocks) plus the key and its table slot.
//!
//! Large aggregates are sampled as Redis samples them: the elements'
//! (or list nodes') own heap is averaged over the first `samples` of them
//! and scaled to all (`SAMPLES 0`: every one). The structure around them
//! (slots, chunk vectors, node rings) is counted exactly. Heap sizes are
//! the lengths asked of the allocator, without its rounding (Redis counts
//! `zmalloc_size`, which includes it).

use crate::engine::Entry;
use crate::value::{Key, Value};

/// Reference counts in front of an `Arc`'d value.
const ARC_COUNTS: usize = 16;

/// The first `samples` sizes of `sizes` averaged and scaled to `total`
/// elements; every size when `samples >= total`.
pub(crate) fn scaled(sizes: impl Iterator<Item = usize>, samples: usize, total: usize) -> usize {
    let mut sum = 0usize;
    let mut n = 0usize;
    for s in sizes.take(samples) {
        sum = sum.saturating_add(s);
        n += 1;
    }
    if n == 0 || n >= total {
        return sum;
    }
    (sum as f64 / n as f64 * total as f64) as usize
}

/// The heap the value holds outside the entry.
pub(crate) fn value_bytes(v: &Value, samples: usize) -> usize {
    use std::mem::size_of;
    match v {
        Value::Str(b) => b.len(),
        Value::Int(_) => 0,
        Value::List(l) => ARC_COUNTS + size_of::<crate::quicklist::QuickList>() + l.usage(samples),
        Value::Hash(h) => ARC_COUNTS + size_of::<crate::hashed::HashMapBytes>() + h.usage(samples),
        Value::Set(s) => ARC_COUNTS + size_of::<crate::hashed::HashSetBytes>() + s.usage(samples),
        Value::ZSet(z) => ARC_COUNTS + size_of::<crate::zset::SortedSet>() + z.usage(samples),
        Value::Stream(s) => ARC_COUNTS + s.heap_bytes(),
    }
}

/// MEMORY USAGE of `key` stored as `entry`: its table slot (the key and
/// the entry are inline in it, with one control byte), a long key's heap
/// copy, and the value's heap.
pub(crate) fn key_usage(key: &[u8], entry: &Entry, samples: usize) -> usize {
    let slot = std::mem::size_of::<(Key, Entry)>() + 1;
    let key_heap = if key.len() > Key::INLINE {
        key.len()
    } else {
        0
    };
    slot + key_heap + value_bytes(entry.value(), samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_scales_the_average_of_the_first_elements() {
        let sizes = [10usize, 20, 30, 1000];
        assert_eq!(scaled(sizes.iter().copied(), 2, 4), 60);
        assert_eq!(scaled(sizes.iter().copied(), usize::MAX, 4), 1060);
        assert_eq!(scaled(sizes.iter().copied(), 4, 4), 1060);
        assert_eq!(scaled(std::iter::empty(), 5, 0), 0);
    }
}
