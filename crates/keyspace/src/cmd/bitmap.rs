//! Bitmap commands on strings: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
//! BITFIELD, BITFIELD_RO, as Redis 7.0's `bitops.c`.
//!
//! Bits are numbered from the most significant bit of the first byte.
//! BITCOUNT and BITOP work a machine word at a time (`count_ones` on
//! 64-bit words, byte loops the compiler vectorises), so a 64 MB string is
//! counted or combined at memory speed.

use crate::notify::Class;
use bytes::Bytes;
use cairn_resp::Frame;

use super::args::arg;
use super::{Ctx, ERR_SYNTAX, TableBuilder, err, int, is, parse_int};
use crate::engine::Shard;
use crate::num::string2ll;
use crate::value::Value;

const ERR_BIT_OFFSET: &str = "ERR bit offset is not an integer or out of range";
const ERR_BIT_VALUE: &str = "ERR bit is not an integer or out of range";
const ERR_BITFIELD_TYPE: &str = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

pub(crate) fn register(t: &mut TableBuilder) {
    t.redis("setbit", setbit);
    t.redis("getbit", getbit);
    t.redis("bitcount", bitcount);
    t.redis("bitpos", bitpos);
    t.redis("bitop", bitop);
    t.redis("bitfield", bitfield);
    t.redis("bitfield_ro", bitfield);
}

fn max_bulk(ctx: &Ctx<'_>) -> u64 {
    super::proto_max_bulk_len(ctx)
}

/// Redis' `getBitOffsetFromArgument`: a non-negative integer whose byte is
/// below `proto-max-bulk-len`; with `bits` (BITFIELD), `#n` means `n *
/// bits` (multiplied as C does, wrapping).
fn bit_offset(raw: &[u8], bits: Option<u32>, max_bulk: u64) -> Result<u64, Frame> {
    let (hash, digits) = match (raw.split_first(), bits) {
        (Some((b'#', rest)), Some(b)) if b > 0 => (Some(b), rest),
        _ => (None, raw),
    };
    let mut n = string2ll(digits).ok_or_else(|| err(ERR_BIT_OFFSET))?;
    if let Some(b) = hash {
        n = n.wrapping_mul(i64::from(b));
    }
    match u64::try_from(n) {
        Ok(n) if (n >> 3) < max_bulk => Ok(n),
        _ => Err(err(ERR_BIT_OFFSET)),
    }
}

/// Writes the string at `key` through `f`, grown with zero bytes to at
/// least `need` bytes and created if absent (Redis'
/// `lookupStringForBitCommand`): one change counted, WATCH touched, the
/// old version kept for an active view. An integer-encoded string becomes
/// raw bytes, as Redis' `dbUnshareStringValue` makes it. WRONGTYPE for
/// another type.
fn write_bits<R>(
    shard: &mut Shard<'_>,
    key: &[u8],
    need: usize,
    f: impl FnOnce(&mut [u8]) -> R,
) -> Result<R, Frame> {
    let Some(mut e) = shard.entry_mut(key) else {
        let mut buf = vec![0u8; need];
        let r = f(&mut buf);
        shard.set(key, Value::Str(buf.into_boxed_slice()), None);
        return Ok(r);
    };
    if !e.value().is_string() {
        return Err(super::wrongtype());
    }
    let v = e.value_mut();
    if let Value::Int(n) = v {
        *v = Value::Str(n.to_string().into_bytes().into_boxed_slice());
    }
    if let Value::Str(b) = v
        && b.len() < need
    {
        // Grown in its own allocation: `realloc` can extend a block in
        // place (glibc remaps large ones), where copying into a new
        // buffer would make a bitmap built bit by bit quadratic.
        let mut grown = std::mem::take(b).into_vec();
        grown.reserve_exact(need - grown.len());
        grown.resize(need, 0);
        *b = grown.into_boxed_slice();
    }
    match v {
        Value::Str(b) => Ok(f(b)),
        _ => Err(super::wrongtype()),
    }
}

fn setbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let offset = match bit_offset(arg(args, 2), None, max_bulk(ctx)) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let on = match string2ll(arg(args, 3)) {
        Some(v @ (0 | 1)) => v == 1,
        _ => return err(ERR_BIT_VALUE),
    };
    // `offset >> 3` is below proto-max-bulk-len, a u64 that fits usize on
    // the 64-bit targets cairn supports.
    let byte = usize::try_from(offset >> 3).unwrap_or(usize::MAX);
    let shift = 7 - (offset & 7) as u32;
    let mut shard = ctx.shard(key);
    // (length, old bit) of an existing string.
    let cur = match shard.value(key) {
        None => None,
        Some(v) => {
            match v.with_str(|b| (b.len(), b.get(byte).is_some_and(|v| (v >> shift) & 1 == 1))) {
                Ok(x) => Some(x),
                Err(e) => return e.into(),
            }
        }
    };
    let old = cur.is_some_and(|(_, bit)| bit);
    // Neither created, grown nor changed: no write, as in Redis.
    if cur.is_some_and(|(len, bit)| len > byte && bit == on) {
        return Frame::Integer(i64::from(old));
    }
    let set = |b: &mut [u8]| {
        if let Some(v) = b.get_mut(byte) {
            *v = (*v & !(1 << shift)) | (u8::from(on) << shift);
        }
    };
    if let Err(e) = write_bits(&mut shard, key, byte + 1, set) {
        return e;
    }
    ctx.notify(Class::String, "setbit", key);
    Frame::Integer(i64::from(old))
}

fn getbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let offset = match bit_offset(arg(args, 2), None, max_bulk(ctx)) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let byte = usize::try_from(offset >> 3).unwrap_or(usize::MAX);
    let shift = 7 - (offset & 7) as u32;
    let mut shard = ctx.shard(key);
    let Some(v) = shard.value(key) else {
        return Frame::Integer(0);
    };
    match v.with_str(|b| b.get(byte).is_some_and(|v| (v >> shift) & 1 == 1)) {
        Ok(bit) => Frame::Integer(i64::from(bit)),
        Err(e) => e.into(),
    }
}

/// Set bits of `bytes`, eight bytes at a time.
pub(crate) fn popcount(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(32);
    let mut total = 0u64;
    for c in &mut chunks {
        // Four independent words per step keep the adders busy.
        let mut sum = 0u32;
        for w in c.chunks_exact(8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            sum += u64::from_ne_bytes(word).count_ones();
        }
        total += u64::from(sum);
    }
    total
        + chunks
            .remainder()
            .iter()
            .map(|b| u64::from(b.count_ones()))
            .sum::<u64>()
}

/// A bit range resolved against a string as BITCOUNT and BITPOS do:
/// inclusive byte bounds, and masks of the bits of the first and last
/// byte that lie outside a BIT range.
struct Range {
    start: usize,
    end: usize,
    first_mask: u8,
    last_mask: u8,
}

/// Redis' index arithmetic: negative indexes from the end, clamped to the
/// string; `None` for an empty range.
fn resolve(mut start: i64, mut end: i64, len: usize, bit: bool) -> Option<Range> {
    let total = if bit { (len as i64) << 3 } else { len as i64 };
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    if start > end {
        return None;
    }
    let (mut first_mask, mut last_mask) = (0u8, 0u8);
    if bit {
        first_mask = !((1u16 << (8 - (start & 7))) - 1) as u8;
        last_mask = ((1u16 << (7 - (end & 7))) - 1) as u8;
        start >>= 3;
        end >>= 3;
    }
    Some(Range {
        start: start as usize,
        end: end as usize,
        first_mask,
        last_mask,
    })
}

/// Parses BITCOUNT's and BITPOS's optional `BYTE|BIT`.
fn unit(a: Option<&Bytes>) -> Result<bool, Frame> {
    match a {
        None => Ok(false),
        Some(u) if is(u, "bit") => Ok(true),
        Some(u) if is(u, "byte") => Ok(false),
        Some(_) => Err(err(ERR_SYNTAX)),
    }
}

fn bitcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let mut shard = ctx.shard(key);
    // Redis 7.0 looks the key up before reading the range.
    let Some(v) = shard.value(key) else {
        return Frame::Integer(0);
    };
    let r = v.with_str(|b| -> Result<u64, Frame> {
        let range = match args.len() {
            2 => resolve(0, -1, b.len(), false),
            4 | 5 => {
                let start = parse_int(arg(args, 2))?;
                let end = parse_int(arg(args, 3))?;
                // Redis 7.0 answers an inverted negative range before it
                // reads BYTE|BIT.
                if start < 0 && end < 0 && start > end {
                    return Ok(0);
                }
                let bit = unit(args.get(4))?;
                resolve(start, end, b.len(), bit)
            }
            _ => return Err(err(ERR_SYNTAX)),
        };
        let Some(r) = range else { return Ok(0) };
        let bytes = b.get(r.start..=r.end).unwrap_or_default();
        let mut n = popcount(bytes);
        let first = b.get(r.start).copied().unwrap_or(0) & r.first_mask;
        let last = b.get(r.end).copied().unwrap_or(0) & r.last_mask;
        n -= u64::from(first.count_ones() + last.count_ones());
        Ok(n)
    });
    match r {
        Err(e) => e.into(),
        Ok(Err(e)) => e,
        Ok(Ok(n)) => Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX)),
    }
}

/// Position of the first bit equal to `bit` in `bytes`, or `None`.
fn find_bit(bytes: &[u8], bit: bool) -> Option<u64> {
    let skip = if bit { 0u8 } else { 0xff };
    let skip_word = if bit { 0u64 } else { u64::MAX };
    let mut i = 0;
    // Whole words that cannot hold the bit are skipped eight bytes at a time.
    while let Some(w) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        if u64::from_ne_bytes(word) != skip_word {
            break;
        }
        i += 8;
    }
    let (idx, b) = bytes
        .iter()
        .enumerate()
        .skip(i)
        .find(|(_, b)| **b != skip)?;
    let lead = if bit {
        b.leading_zeros()
    } else {
        (!b).leading_zeros()
    };
    Some(idx as u64 * 8 + u64::from(lead))
}

fn bitpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let bit = match parse_int(arg(args, 2)) {
        Ok(0) => false,
        Ok(1) => true,
        Ok(_) => return err("ERR The bit argument must be 1 or 0."),
        Err(e) => return e,
    };
    let mut shard = ctx.shard(key);
    // A missing key is an infinite run of zeros.
    let Some(v) = shard.value(key) else {
        return Frame::Integer(if bit { -1 } else { 0 });
    };
    let r = v.with_str(|b| -> Result<i64, Frame> {
        let len = b.len();
        let (range, end_given) = match args.len() {
            3 => (resolve(0, -1, len, false), false),
            4..=6 => {
                let start = parse_int(arg(args, 3))?;
                let isbit = if args.len() == 6 {
                    unit(args.get(5))?
                } else {
                    false
                };
                let (end, given) = if args.len() >= 5 {
                    (parse_int(arg(args, 4))?, true)
                } else if isbit {
                    (((len as i64) << 3) + 7, false)
                } else {
                    (len as i64 - 1, false)
                };
                (resolve(start, end, len, isbit), given)
            }
            _ => return Err(err(ERR_SYNTAX)),
        };
        // An empty range holds neither a 0 nor a 1.
        let Some(r) = range else { return Ok(-1) };
        let mut bytes: Vec<u8> = Vec::new();
        let slice = b.get(r.start..=r.end).unwrap_or_default();
        let view: &[u8] = if r.first_mask != 0 || r.last_mask != 0 {
            // Bits outside a BIT range are forced to the value not sought.
            bytes.extend_from_slice(slice);
            let force = |v: &mut u8, mask: u8| {
                if bit {
                    *v &= !mask;
                } else {
                    *v |= mask;
                }
            };
            if let Some(f) = bytes.first_mut() {
                force(f, r.first_mask);
            }
            if let Some(l) = bytes.last_mut() {
                force(l, r.last_mask);
            }
            &bytes
        } else {
            slice
        };
        let base = r.start as i64 * 8;
        Ok(match find_bit(view, bit) {
            Some(p) => base + p as i64,
            None if bit => -1,
            // With an explicit end the bits past the range are not zeros
            // to report; without one, the string continues with zeros.
            None if end_given => -1,
            None => base + view.len() as i64 * 8,
        })
    });
    match r {
        Err(e) => e.into(),
        Ok(Err(e)) => e,
        Ok(Ok(n)) => Frame::Integer(n),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

fn bitop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let name = arg(args, 1);
    let op = if is(name, "and") {
        BitOp::And
    } else if is(name, "or") {
        BitOp::Or
    } else if is(name, "xor") {
        BitOp::Xor
    } else if is(name, "not") {
        BitOp::Not
    } else {
        return err(ERR_SYNTAX);
    };
    if op == BitOp::Not && args.len() != 4 {
        return err("ERR BITOP NOT must be called with a single source key.");
    }
    let dest = arg(args, 2);
    let sources = args.get(3..).unwrap_or_default();
    let db = ctx.db();
    let mut locked = ctx.lock_keys(
        std::iter::once(dest)
            .chain(sources.iter().map(|k| &k[..]))
            .map(|k| (db, k)),
    );
    // Lengths and types first; then the sources are read in place (an
    // integer is formatted), the result built in one buffer as Redis does.
    // Redis looks each source up once, with `lookupKeyRead`.
    let mut maxlen = 0;
    for k in sources {
        let _reading = crate::stats::reads(true);
        match locked.shard(db, k).value(k).map(Value::str_len) {
            None => {}
            Some(Ok(n)) => maxlen = maxlen.max(n),
            Some(Err(e)) => return e.into(),
        }
    }
    if maxlen == 0 {
        if locked.shard(db, dest).remove(dest).is_some() {
            ctx.notify(Class::Generic, "del", dest);
        }
        return Frame::Integer(0);
    }
    let mut out = vec![0u8; maxlen];
    // One pass over the result, as Redis' word loop: each chunk of it stays
    // in cache while every source is folded in, instead of the whole result
    // being written once per source.
    for (c, part) in out.chunks_mut(BITOP_CHUNK).enumerate() {
        let at = c * BITOP_CHUNK;
        for (i, k) in sources.iter().enumerate() {
            match locked.shard(db, k).value(k) {
                Some(v) => {
                    let _ = v.with_str(|src| {
                        combine(op, i == 0, part, src.get(at..).unwrap_or_default())
                    });
                }
                None => combine(op, i == 0, part, &[]),
            }
        }
    }
    locked
        .shard(db, dest)
        .set(dest, Value::Str(out.into_boxed_slice()), None);
    ctx.notify(Class::String, "set", dest);
    int(maxlen)
}

/// Bytes of the BITOP result combined at a time: well inside L2.
const BITOP_CHUNK: usize = 64 * 1024;

/// Folds one source into `out` (zeros past a shorter source or for a
/// missing key); the first source is copied in (inverted for NOT).
fn combine(op: BitOp, first: bool, out: &mut [u8], src: &[u8]) {
    let n = src.len().min(out.len());
    let (head, tail) = out.split_at_mut(n);
    let src = src.get(..n).unwrap_or_default();
    // Plain byte loops over equal lengths: the compiler vectorises them
    // into wide loads, a word (or more) per instruction.
    match (op, first) {
        (BitOp::Not, _) => {
            head.iter_mut().zip(src).for_each(|(d, s)| *d = !*s);
            tail.fill(0xff);
        }
        (_, true) => head.copy_from_slice(src),
        (BitOp::And, false) => {
            head.iter_mut().zip(src).for_each(|(d, s)| *d &= *s);
            tail.fill(0);
        }
        (BitOp::Or, false) => head.iter_mut().zip(src).for_each(|(d, s)| *d |= *s),
        (BitOp::Xor, false) => head.iter_mut().zip(src).for_each(|(d, s)| *d ^= *s),
    }
}

// ---------------------------------------------------------------------------
// BITFIELD

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldOp {
    Get,
    Set,
    Incrby,
}

#[derive(Clone, Copy)]
struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    offset: u64,
    value: i64,
    overflow: Overflow,
}

/// Redis' `getBitfieldTypeFromArgument`: `i1`..`i64` or `u1`..`u63`.
fn field_type(raw: &[u8]) -> Result<(bool, u32), Frame> {
    let signed = match raw.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(err(ERR_BITFIELD_TYPE)),
    };
    match string2ll(raw.get(1..).unwrap_or_default()) {
        Some(n) if n >= 1 && (n <= 63 || (signed && n == 64)) => Ok((signed, n as u32)),
        _ => Err(err(ERR_BITFIELD_TYPE)),
    }
}

fn parse_fields(args: &[Bytes], max_bulk: u64) -> Result<Vec<Field>, Frame> {
    let mut out = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut j = 2;
    while let Some(sub) = args.get(j) {
        let remaining = args.len() - j - 1;
        let op = if is(sub, "get") && remaining >= 2 {
            FieldOp::Get
        } else if is(sub, "set") && remaining >= 3 {
            FieldOp::Set
        } else if is(sub, "incrby") && remaining >= 3 {
            FieldOp::Incrby
        } else if is(sub, "overflow") && remaining >= 1 {
            let w = arg(args, j + 1);
            overflow = if is(w, "wrap") {
                Overflow::Wrap
            } else if is(w, "sat") {
                Overflow::Sat
            } else if is(w, "fail") {
                Overflow::Fail
            } else {
                return Err(err("ERR Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(err(ERR_SYNTAX));
        };
        let (signed, bits) = field_type(arg(args, j + 1))?;
        let offset = bit_offset(arg(args, j + 2), Some(bits), max_bulk)?;
        let value = if op == FieldOp::Get {
            0
        } else {
            parse_int(arg(args, j + 3))?
        };
        out.push(Field {
            op,
            signed,
            bits,
            offset,
            value,
            overflow,
        });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }
    Ok(out)
}

/// Reads `bits` bits from `offset`, most significant first; bytes past the
/// end read as zeros.
fn get_unsigned(p: &[u8], offset: u64, bits: u32) -> u64 {
    let mut v = 0u64;
    for i in 0..u64::from(bits) {
        let o = offset + i;
        let byte = p.get((o >> 3) as usize).copied().unwrap_or(0);
        v = (v << 1) | u64::from((byte >> (7 - (o & 7))) & 1);
    }
    v
}

fn get_signed(p: &[u8], offset: u64, bits: u32) -> i64 {
    let v = get_unsigned(p, offset, bits);
    if bits < 64 && v & (1 << (bits - 1)) != 0 {
        (v | (u64::MAX << bits)) as i64
    } else {
        v as i64
    }
}

fn set_bits(p: &mut [u8], offset: u64, bits: u32, value: u64) {
    for i in 0..u64::from(bits) {
        let bit = (value >> (u64::from(bits) - 1 - i)) & 1;
        let o = offset + i;
        if let Some(byte) = p.get_mut((o >> 3) as usize) {
            let shift = 7 - (o & 7);
            *byte = (*byte & !(1 << shift)) | ((bit as u8) << shift);
        }
    }
}

/// Redis' `checkUnsignedBitfieldOverflow`: whether `value + incr`
/// overflows `bits`, and the value WRAP or SAT gives then.
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> Option<u64> {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = (value as i64).wrapping_neg();
    let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX.checked_shl(bits).unwrap_or(0));
    if value > max || (incr > 0 && incr > maxincr) {
        Some(match ow {
            Overflow::Wrap => wrap(),
            _ => max,
        })
    } else if incr < 0 && incr < minincr {
        Some(match ow {
            Overflow::Wrap => wrap(),
            _ => 0,
        })
    } else {
        None
    }
}

/// Redis' `checkSignedBitfieldOverflow`.
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> Option<i64> {
    let max = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        Some(match ow {
            Overflow::Wrap => wrap(),
            _ => max,
        })
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        Some(match ow {
            Overflow::Wrap => wrap(),
            _ => min,
        })
    } else {
        None
    }
}

/// Runs one SET or INCRBY on `p`: the reply (`Null` when FAIL refused it).
fn apply(p: &mut [u8], f: &Field) -> Frame {
    if f.signed {
        let old = get_signed(p, f.offset, f.bits);
        let (new, overflow, reply) = if f.op == FieldOp::Incrby {
            let o = signed_overflow(old, f.value, f.bits, f.overflow);
            let new = o.unwrap_or_else(|| old.wrapping_add(f.value));
            (new, o.is_some(), new)
        } else {
            let o = signed_overflow(f.value, 0, f.bits, f.overflow);
            (o.unwrap_or(f.value), o.is_some(), old)
        };
        if overflow && f.overflow == Overflow::Fail {
            return Frame::Null;
        }
        set_bits(p, f.offset, f.bits, new as u64);
        Frame::Integer(reply)
    } else {
        let old = get_unsigned(p, f.offset, f.bits);
        let (new, overflow, reply) = if f.op == FieldOp::Incrby {
            let o = unsigned_overflow(old, f.value, f.bits, f.overflow);
            let new = o.unwrap_or_else(|| old.wrapping_add(f.value as u64));
            (new, o.is_some(), new)
        } else {
            let o = unsigned_overflow(f.value as u64, 0, f.bits, f.overflow);
            (o.unwrap_or(f.value as u64), o.is_some(), old)
        };
        if overflow && f.overflow == Overflow::Fail {
            return Frame::Null;
        }
        set_bits(p, f.offset, f.bits, new);
        // Unsigned fields are at most 63 bits wide: the cast is exact.
        Frame::Integer(reply as i64)
    }
}

fn read_field(p: &[u8], f: &Field) -> Frame {
    if f.signed {
        Frame::Integer(get_signed(p, f.offset, f.bits))
    } else {
        Frame::Integer(get_unsigned(p, f.offset, f.bits) as i64)
    }
}

fn bitfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let fields = match parse_fields(args, max_bulk(ctx)) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let highest = fields
        .iter()
        .filter(|f| f.op != FieldOp::Get)
        .map(|f| f.offset + u64::from(f.bits) - 1)
        .max();
    let mut shard = ctx.shard(key);
    let Some(highest) = highest else {
        // Only reads: a missing key reads as zeros. Redis reads it with
        // `lookupKeyRead` (BITFIELD too).
        let _reading = crate::stats::reads(true);
        let Some(v) = shard.value(key) else {
            return Frame::Array(fields.iter().map(|f| read_field(&[], f)).collect());
        };
        return match v.with_str(|b| fields.iter().map(|f| read_field(b, f)).collect()) {
            Ok(out) => Frame::Array(out),
            Err(e) => e.into(),
        };
    };
    if ctx.command() == "bitfield_ro" {
        return err("ERR BITFIELD_RO only supports the GET subcommand");
    }
    let byte = usize::try_from(highest >> 3).unwrap_or(usize::MAX);
    // Every SET/INCRBY counts as a change, FAIL or not, as in Redis.
    // Redis reports `setbit` when a SET/INCRBY wrote and either the
    // string was created or grown or the field's value changed.
    let grows = shard
        .value(key)
        .is_none_or(|v| v.str_len().is_ok_and(|l| l < byte + 1));
    let out = write_bits(&mut shard, key, byte + 1, |p| {
        let mut changed = false;
        let out = fields
            .iter()
            .map(|f| match f.op {
                FieldOp::Get => read_field(p, f),
                _ => {
                    let before = read_field(p, f);
                    let r = apply(p, f);
                    // A FAIL overflow (nil) writes nothing.
                    let wrote = r != Frame::Null;
                    changed |= wrote && (grows || read_field(p, f) != before);
                    r
                }
            })
            .collect::<Vec<_>>();
        (out, changed)
    });
    let (out, changed) = match out {
        Ok(out) => out,
        Err(e) => return e,
    };
    let changes = fields.iter().filter(|f| f.op != FieldOp::Get).count();
    if changes > 1 {
        shard.add_changes(changes as u64 - 1);
    }
    if changed {
        ctx.notify(Class::String, "setbit", key);
    }
    Frame::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn popcount_counts_every_byte() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let want: u64 = bytes.iter().map(|b| u64::from(b.count_ones())).sum();
        assert_eq!(popcount(&bytes), want);
        assert_eq!(popcount(&[]), 0);
    }

    #[test]
    fn find_bit_skips_words() {
        let mut b = vec![0u8; 40];
        assert_eq!(find_bit(&b, true), None);
        assert_eq!(find_bit(&b, false), Some(0));
        b[33] = 0b0001_0000;
        assert_eq!(find_bit(&b, true), Some(33 * 8 + 3));
        let ones = vec![0xffu8; 17];
        assert_eq!(find_bit(&ones, false), None);
    }

    #[test]
    fn overflow_rules_match_redis() {
        // BITFIELD k OVERFLOW WRAP INCRBY u2 0 5 on 0: (0 + 5) & 3 = 1.
        assert_eq!(unsigned_overflow(0, 5, 2, Overflow::Wrap), Some(1));
        assert_eq!(unsigned_overflow(0, 5, 2, Overflow::Sat), Some(3));
        assert_eq!(unsigned_overflow(1, -2, 2, Overflow::Sat), Some(0));
        assert_eq!(unsigned_overflow(1, 1, 2, Overflow::Sat), None);
        assert_eq!(signed_overflow(127, 1, 8, Overflow::Wrap), Some(-128));
        assert_eq!(signed_overflow(-128, -1, 8, Overflow::Sat), Some(-128));
        assert_eq!(
            signed_overflow(i64::MAX, 1, 64, Overflow::Wrap),
            Some(i64::MIN)
        );
        assert_eq!(signed_overflow(5, 0, 64, Overflow::Fail), None);
    }
}
