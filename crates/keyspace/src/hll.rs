//! HyperLogLog in Redis 7.0's exact representation (`hyperloglog.c`), so
//! an HLL string written by cairn is byte for byte the one Redis writes,
//! and either server reads the other's.
//!
//! A 16-byte header (`HYLL`, the encoding byte, 3 unused bytes, the cached
//! cardinality as 8 little-endian bytes whose top bit marks it stale), then
//! 16384 registers of 6 bits: packed (dense, 12288 bytes) or run-length
//! coded (sparse: ZERO `00xxxxxx`, XZERO `01xxxxxx yyyyyyyy`, VAL
//! `1vvvvvxx`), promoted to dense once a register exceeds 32 or the string
//! would grow past `hll-sparse-max-bytes`. Elements are hashed with
//! MurmurHash64A (seed `0xadc83b19`); the estimate is Ertl's (Redis 7.0's
//! `hllTau`/`hllSigma`), computed in the same double-precision steps.

/// Register index bits.
const P: u32 = 14;
/// Hash bits left for the run of zeros.
const Q: u32 = 64 - P;
/// Number of registers.
pub(crate) const REGISTERS: usize = 1 << P;
const REGISTER_MAX: u8 = 63;
/// Header size.
pub(crate) const HDR: usize = 16;
/// Size of a dense HLL string.
pub(crate) const DENSE_SIZE: usize = HDR + (REGISTERS * 6).div_ceil(8);
/// Encoding byte of a dense HLL.
pub(crate) const DENSE: u8 = 0;
/// Encoding byte of a sparse HLL.
pub(crate) const SPARSE: u8 = 1;
const SEED: u64 = 0xadc8_3b19;

const SPARSE_VAL_MAX_VALUE: u8 = 32;
const SPARSE_VAL_MAX_LEN: usize = 4;
const SPARSE_ZERO_MAX_LEN: usize = 64;
const SPARSE_XZERO_MAX_LEN: usize = 16384;

/// A sparse representation that does not add up to 16384 registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("INVALIDOBJ Corrupted HLL object detected")]
pub(crate) struct Corrupt;

/// MurmurHash2, 64-bit version, as Redis' endian-neutral `MurmurHash64A`.
pub(crate) fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        let mut k = u64::from_le_bytes(w);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate() {
            h ^= u64::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element falls in and the length of its `0...01` run
/// (Redis' `hllPatLen`).
pub(crate) fn pat_len(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// Register `i` of packed registers (bytes after the header).
pub(crate) fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let b0 = u16::from(regs.get(byte).copied().unwrap_or(0));
    let b1 = u16::from(regs.get(byte + 1).copied().unwrap_or(0));
    (((b0 >> fb) | (b1 << (8 - fb))) & u16::from(REGISTER_MAX)) as u8
}

fn dense_put(regs: &mut [u8], i: usize, v: u8) {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let v = u16::from(v);
    if let Some(b) = regs.get_mut(byte) {
        *b &= !((u16::from(REGISTER_MAX) << fb) as u8);
        *b |= (v << fb) as u8;
    }
    if let Some(b) = regs.get_mut(byte + 1) {
        *b &= !((u16::from(REGISTER_MAX) >> (8 - fb)) as u8);
        *b |= (v >> (8 - fb)) as u8;
    }
}

/// Raises register `i` to `count`; whether it changed (`hllDenseSet`).
pub(crate) fn dense_set(regs: &mut [u8], i: usize, count: u8) -> bool {
    if count > dense_get(regs, i) {
        dense_put(regs, i, count);
        true
    } else {
        false
    }
}

/// A new, empty HLL: sparse, one XZERO run (`createHLLObject`).
pub(crate) fn new_sparse() -> Vec<u8> {
    let mut v = Vec::with_capacity(HDR + 2);
    v.extend_from_slice(b"HYLL");
    v.push(SPARSE);
    v.extend_from_slice(&[0u8; 11]);
    let mut left = REGISTERS;
    while left > 0 {
        let run = left.min(SPARSE_XZERO_MAX_LEN);
        push_xzero(&mut v, run);
        left -= run;
    }
    v
}

fn push_xzero(v: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    v.push(((l >> 8) as u8) | 0x40);
    v.push((l & 0xff) as u8);
}

fn is_zero(b: u8) -> bool {
    b & 0xc0 == 0
}
fn is_xzero(b: u8) -> bool {
    b & 0xc0 == 0x40
}
fn is_val(b: u8) -> bool {
    b & 0x80 != 0
}
fn zero_len(b: u8) -> usize {
    usize::from(b & 0x3f) + 1
}
fn xzero_len(b: u8, b2: u8) -> usize {
    ((usize::from(b & 0x3f) << 8) | usize::from(b2)) + 1
}
fn val_value(b: u8) -> u8 {
    ((b >> 2) & 0x1f) + 1
}
fn val_len(b: u8) -> usize {
    usize::from(b & 0x3) + 1
}
fn val_byte(value: u8, len: usize) -> u8 {
    ((value - 1) << 2) | ((len - 1) as u8) | 0x80
}

/// Whether `b` is an HLL string Redis accepts (`isHLLObjectOrReply`).
pub(crate) fn is_hll(b: &[u8]) -> bool {
    b.len() >= HDR
        && b.starts_with(b"HYLL")
        && b.get(4).is_some_and(|&e| e <= SPARSE)
        && !(b.get(4) == Some(&DENSE) && b.len() != DENSE_SIZE)
}

/// The encoding byte of a valid HLL.
pub(crate) fn encoding(b: &[u8]) -> u8 {
    b.get(4).copied().unwrap_or(DENSE)
}

/// Marks the cached cardinality stale.
pub(crate) fn invalidate_cache(b: &mut [u8]) {
    if let Some(c) = b.get_mut(15) {
        *c |= 0x80;
    }
}

/// The cached cardinality, if valid.
pub(crate) fn cached(b: &[u8]) -> Option<u64> {
    let card: [u8; 8] = b.get(8..16)?.try_into().ok()?;
    (card[7] & 0x80 == 0).then(|| u64::from_le_bytes(card))
}

/// Stores the cardinality in the cache.
pub(crate) fn set_cache(b: &mut [u8], card: u64) {
    if let Some(c) = b.get_mut(8..16) {
        c.copy_from_slice(&card.to_le_bytes());
    }
}

/// One sparse opcode: the registers it covers and its value (0 for the
/// zero runs), and its size in bytes.
fn opcode(b: &[u8], p: usize) -> Option<(usize, u8, usize)> {
    let op = *b.get(p)?;
    Some(if is_zero(op) {
        (zero_len(op), 0, 1)
    } else if is_xzero(op) {
        (xzero_len(op, b.get(p + 1).copied().unwrap_or(0)), 0, 2)
    } else {
        (val_len(op), val_value(op), 1)
    })
}

/// The dense form of a sparse HLL, header (and stale cache) kept
/// (`hllSparseToDense`); a dense HLL is returned as is.
pub(crate) fn to_dense(b: &[u8]) -> Result<Vec<u8>, Corrupt> {
    if encoding(b) == DENSE {
        return Ok(b.to_vec());
    }
    let mut d = vec![0u8; DENSE_SIZE];
    if let (Some(dh), Some(sh)) = (d.get_mut(..HDR), b.get(..HDR)) {
        dh.copy_from_slice(sh);
    }
    if let Some(e) = d.get_mut(4) {
        *e = DENSE;
    }
    let regs = d.get_mut(HDR..).unwrap_or_default();
    let mut idx = 0;
    let mut p = HDR;
    while let Some((run, val, size)) = opcode(b, p) {
        if val > 0 {
            if run + idx > REGISTERS {
                break;
            }
            for i in idx..idx + run {
                dense_put(regs, i, val);
            }
        }
        idx += run;
        p += size;
    }
    if idx != REGISTERS {
        return Err(Corrupt);
    }
    Ok(d)
}

/// Raises register `index` of the HLL in `b` to `count` (`hllSparseSet`
/// or `hllDenseSet`), promoting a sparse one to dense when `count` does
/// not fit a VAL opcode or the string would exceed `max_sparse` bytes.
/// Whether the register changed.
pub(crate) fn set(
    b: &mut Vec<u8>,
    index: usize,
    count: u8,
    max_sparse: usize,
) -> Result<bool, Corrupt> {
    if encoding(b) == DENSE {
        return Ok(dense_set(
            b.get_mut(HDR..).unwrap_or_default(),
            index,
            count,
        ));
    }
    if count > SPARSE_VAL_MAX_VALUE {
        return promote(b, index, count);
    }
    // Step 1: the opcode covering `index`.
    let end = b.len();
    let mut p = HDR;
    let mut first = 0usize;
    let mut prev: Option<usize> = None;
    let mut span = 0usize;
    let mut found = None;
    while p < end {
        let Some((run, val, size)) = opcode(b, p) else {
            break;
        };
        span = run;
        if index < first + span {
            found = Some((val, size));
            break;
        }
        prev = Some(p);
        p += size;
        first += span;
    }
    let Some((curval, oldlen)) = found else {
        return Err(Corrupt);
    };
    if span == 0 {
        return Err(Corrupt);
    }
    let runlen = span;
    let op = b.get(p).copied().unwrap_or(0);
    let val_op = is_val(op);
    // Cases A, B and C: no change, or a one-register opcode set in place.
    if val_op && curval >= count {
        return Ok(false);
    }
    if runlen == 1 && (val_op || is_zero(op)) {
        if let Some(x) = b.get_mut(p) {
            *x = val_byte(count, 1);
        }
    } else {
        // Case D: split the opcode into up to three.
        let last = first + span - 1;
        let mut seq: Vec<u8> = Vec::with_capacity(5);
        if !val_op {
            if index != first {
                let len = index - first;
                if len > SPARSE_ZERO_MAX_LEN {
                    push_xzero(&mut seq, len);
                } else {
                    seq.push((len - 1) as u8);
                }
            }
            seq.push(val_byte(count, 1));
            if index != last {
                let len = last - index;
                if len > SPARSE_ZERO_MAX_LEN {
                    push_xzero(&mut seq, len);
                } else {
                    seq.push((len - 1) as u8);
                }
            }
        } else {
            if index != first {
                seq.push(val_byte(curval, index - first));
            }
            seq.push(val_byte(count, 1));
            if index != last {
                seq.push(val_byte(curval, last - index));
            }
        }
        let grows = seq.len() > oldlen;
        if grows && b.len() + seq.len() - oldlen > max_sparse {
            return promote(b, index, count);
        }
        b.splice(p..p + oldlen, seq);
    }
    // Step 4: merge adjacent VAL opcodes of equal value, scanning up to
    // five opcodes from the one before the change.
    let mut p = prev.unwrap_or(HDR);
    let mut scan = 5;
    while p < b.len() && scan > 0 {
        scan -= 1;
        let op = b.get(p).copied().unwrap_or(0);
        if is_xzero(op) {
            p += 2;
            continue;
        }
        if is_zero(op) {
            p += 1;
            continue;
        }
        if let Some(&next) = b.get(p + 1)
            && is_val(next)
            && val_value(op) == val_value(next)
        {
            let len = val_len(op) + val_len(next);
            if len <= SPARSE_VAL_MAX_LEN {
                if let Some(x) = b.get_mut(p + 1) {
                    *x = val_byte(val_value(op), len);
                }
                b.remove(p);
                continue;
            }
        }
        p += 1;
    }
    invalidate_cache(b);
    Ok(true)
}

fn promote(b: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    *b = to_dense(b)?;
    Ok(dense_set(
        b.get_mut(HDR..).unwrap_or_default(),
        index,
        count,
    ))
}

/// Adds an element; whether a register changed.
pub(crate) fn add(b: &mut Vec<u8>, ele: &[u8], max_sparse: usize) -> Result<bool, Corrupt> {
    let (index, count) = pat_len(ele);
    set(b, index, count, max_sparse)
}

/// The register histogram of a valid HLL; `Err` for a sparse one that does
/// not cover exactly 16384 registers.
fn histogram(b: &[u8]) -> Result<[u32; 64], Corrupt> {
    let mut h = [0u32; 64];
    if encoding(b) == DENSE {
        let regs = b.get(HDR..).unwrap_or_default();
        for c in regs.chunks_exact(3) {
            let (b0, b1, b2) = (c[0], c[1], c[2]);
            h[usize::from(b0 & 63)] += 1;
            h[usize::from((b0 >> 6 | b1 << 2) & 63)] += 1;
            h[usize::from((b1 >> 4 | b2 << 4) & 63)] += 1;
            h[usize::from(b2 >> 2)] += 1;
        }
        return Ok(h);
    }
    let mut idx = 0;
    let mut p = HDR;
    while let Some((run, val, size)) = opcode(b, p) {
        idx += run;
        h[usize::from(val & 63)] += run as u32;
        p += size;
    }
    if idx != REGISTERS {
        return Err(Corrupt);
    }
    Ok(h)
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let prev = z;
        y *= 0.5;
        let d = 1.0 - x;
        z -= d * d * y;
        if prev == z {
            return z / 3.0;
        }
    }
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let prev = z;
        z += x * y;
        y += y;
        if prev == z {
            return z;
        }
    }
}

/// Ertl's estimate from a register histogram, in Redis' operation order.
fn estimate(h: &[u32; 64]) -> u64 {
    // 0.5 / ln(2), written as Redis writes it.
    #[allow(clippy::excessive_precision)]
    const ALPHA_INF: f64 = 0.721347520444481703680;
    let m = REGISTERS as f64;
    let mut z = m * tau((m - f64::from(h[Q as usize + 1])) / m);
    for j in (1..=Q as usize).rev() {
        z += f64::from(h[j]);
        z *= 0.5;
    }
    z += m * sigma(f64::from(h[0]) / m);
    (ALPHA_INF * m * m / z).round() as u64
}

/// The estimated cardinality of one HLL (`hllCount`).
pub(crate) fn count(b: &[u8]) -> Result<u64, Corrupt> {
    histogram(b).map(|h| estimate(&h))
}

/// Registers, one byte each, for unions (PFCOUNT of several keys, PFMERGE).
pub(crate) type Raw = [u8; REGISTERS];

/// `max[i] = max(max[i], register i)` over a valid HLL (`hllMerge`).
pub(crate) fn merge(max: &mut Raw, b: &[u8]) -> Result<(), Corrupt> {
    if encoding(b) == DENSE {
        let regs = b.get(HDR..).unwrap_or_default();
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(regs, i));
        }
        return Ok(());
    }
    let mut i = 0;
    let mut p = HDR;
    while let Some((run, val, size)) = opcode(b, p) {
        if val > 0 {
            if run + i > REGISTERS {
                break;
            }
            for m in max.iter_mut().skip(i).take(run) {
                *m = (*m).max(val);
            }
        }
        i += run;
        p += size;
    }
    if i != REGISTERS {
        return Err(Corrupt);
    }
    Ok(())
}

/// The estimate of the union held in `max`.
pub(crate) fn count_raw(max: &Raw) -> u64 {
    let mut h = [0u32; 64];
    for &r in max.iter() {
        h[usize::from(r & 63)] += 1;
    }
    estimate(&h)
}

/// PFDEBUG DECODE's text for a sparse HLL.
pub(crate) fn decode(b: &[u8]) -> String {
    let mut out = Vec::new();
    let mut p = HDR;
    while let Some(&op) = b.get(p) {
        if is_zero(op) {
            out.push(format!("z:{}", zero_len(op)));
            p += 1;
        } else if is_xzero(op) {
            out.push(format!(
                "Z:{}",
                xzero_len(op, b.get(p + 1).copied().unwrap_or(0))
            ));
            p += 2;
        } else {
            out.push(format!("v:{},{}", val_value(op), val_len(op)));
            p += 1;
        }
    }
    out.join(" ")
}

/// PFSELFTEST: the register packing and the estimator's error bounds, on
/// a dense and a sparse HLL fed the same elements (Redis' test, with the
/// same bounds). `Err` with Redis' failure text.
pub(crate) fn selftest(max_sparse: usize, rng: &mut impl rand::Rng) -> Result<(), String> {
    let mut dense = vec![0u8; DENSE_SIZE];
    let mut bytes = vec![0u8; REGISTERS];
    for _ in 0..1000 {
        let regs = dense.get_mut(HDR..).unwrap_or_default();
        for (i, b) in bytes.iter_mut().enumerate() {
            let r = rng.random::<u8>() & REGISTER_MAX;
            *b = r;
            dense_put(regs, i, r);
        }
        for (i, &b) in bytes.iter().enumerate() {
            let got = dense_get(regs, i);
            if got != b {
                return Err(format!(
                    "TESTFAILED Register {i} should be {b} but is {got}"
                ));
            }
        }
    }
    dense.fill(0);
    let mut sparse = new_sparse();
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let mut checkpoint: u64 = 1;
    let seed: u64 = rng.random();
    for j in 1..=10_000_000u64 {
        let ele = (j ^ seed).to_ne_bytes();
        let (index, c) = pat_len(&ele);
        dense_set(dense.get_mut(HDR..).unwrap_or_default(), index, c);
        set(&mut sparse, index, c, max_sparse).map_err(|e| e.to_string())?;
        if j != checkpoint {
            continue;
        }
        if (j as usize) < max_sparse / 2 && encoding(&sparse) != SPARSE {
            return Err("TESTFAILED sparse encoding not used".into());
        }
        let d = count(&dense).map_err(|e| e.to_string())?;
        if Ok(d) != count(&sparse) {
            return Err("TESTFAILED dense/sparse disagree".into());
        }
        let abserr = checkpoint.abs_diff(d);
        let mut maxerr = (relerr * 6.0 * checkpoint as f64).ceil() as u64;
        if j == 10 {
            maxerr = 1;
        }
        if abserr > maxerr {
            return Err(format!(
                "TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}"
            ));
        }
        checkpoint *= 10;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_hll_is_redis_bytes() {
        let h = new_sparse();
        let mut want = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0".to_vec();
        want.extend_from_slice(&[0x7f, 0xff]);
        assert_eq!(h, want);
        assert_eq!(count(&h), Ok(0));
        assert!(is_hll(&h));
    }

    #[test]
    fn dense_registers_round_trip() {
        let mut regs = vec![0u8; DENSE_SIZE - HDR];
        for i in 0..REGISTERS {
            dense_put(&mut regs, i, (i % 64) as u8);
        }
        for i in 0..REGISTERS {
            assert_eq!(dense_get(&regs, i), (i % 64) as u8, "{i}");
        }
    }

    /// Sparse and dense agree on every count, and a sparse HLL promotes at
    /// the size limit.
    #[test]
    fn sparse_and_dense_agree() {
        let mut sparse = new_sparse();
        let mut dense = to_dense(&sparse).unwrap();
        for i in 0..5000u32 {
            let e = i.to_string();
            add(&mut sparse, e.as_bytes(), 3000).unwrap();
            add(&mut dense, e.as_bytes(), 3000).unwrap();
            if i % 97 == 0 {
                assert_eq!(count(&sparse), count(&dense), "{i}");
                if encoding(&sparse) == SPARSE {
                    assert_eq!(to_dense(&sparse).unwrap()[HDR..], dense[HDR..]);
                }
            }
        }
        assert_eq!(encoding(&sparse), DENSE);
        assert_eq!(sparse[HDR..], dense[HDR..]);
    }

    #[test]
    fn corrupt_sparse_is_refused() {
        let mut h = new_sparse();
        h.truncate(HDR + 1);
        assert_eq!(count(&h), Err(Corrupt));
        let mut raw = [0u8; REGISTERS];
        assert_eq!(merge(&mut raw, &h), Err(Corrupt));
    }
}
