//! Hash commands: HSET, HGET, HDEL, HINCRBY, HRANDFIELD, HSCAN and friends.
//!
//! Also home of the helpers the set family shares with it: element scans
//! (HSCAN/SSCAN), random-count parsing (HRANDFIELD/SRANDMEMBER), and the
//! `long double` arithmetic of HINCRBYFLOAT ([`ld`]).
//!
//! # HSCAN and SSCAN cursors
//!
//! A hash or set of at most [`SMALL_SCAN`] elements is returned whole in
//! one reply with cursor 0, whatever cursor was given, as Redis does for
//! its small (listpack/intset) encodings. Larger ones are walked in
//! ascending order of a process-stable 64-bit hash of each element; the
//! cursor is the next hash to return from. An element present for the
//! whole scan is returned exactly once however the collection grows,
//! shrinks or rehashes in between, which is stronger than Redis' "at least
//! once". The collection has no index by that hash, so each call is one
//! pass over it; so that a full scan costs at most about [`SCAN_PASSES`]
//! passes, a call returns at least that fraction of the elements even
//! when COUNT asks for fewer (COUNT is only a hint in Redis too).

use std::sync::Arc;

use bytes::Bytes;
use cairn_resp::{Frame, Protocol};

use super::{
    CommandSpec as S, Ctx, ERR_NOT_FLOAT, ERR_SYNTAX, Flags, TableBuilder, err, int, is, parse_int,
};
use crate::glob::glob_match;
use crate::hashed::with_rng;
use crate::value::{HashMapBytes, Value, parse_canonical_i64};

const W: Flags = Flags::WRITE;
const R: Flags = Flags::READONLY;
const DENY: Flags = Flags::DENYOOM;
const FAST: Flags = Flags::FAST;

/// Collections up to this size are scanned in a single reply.
pub(super) const SMALL_SCAN: usize = 128;

/// A scan of a large collection takes at most about this many calls.
pub(super) const SCAN_PASSES: usize = 32;

/// Largest reply HRANDFIELD/SRANDMEMBER build for a negative count (with
/// repetitions). Redis streams such replies and grows its output buffer
/// until memory runs out (`SRANDMEMBER s -9223372036854775807` kills a
/// 7.0.15 server); cairn builds replies in memory, so it refuses beyond this.
pub(super) const MAX_RANDOM_REPLY: u64 = 1 << 24;

pub(crate) fn register(t: &mut TableBuilder) {
    let g = "hash";
    t.add(
        S::new("hset", -4, W | DENY | FAST, g)
            .keys(1, 1, 1)
            .doc("Set the string value of a hash field", "2.0.0"),
        hset,
    );
    t.add(
        S::new("hmset", -4, W | DENY | FAST, g)
            .keys(1, 1, 1)
            .doc("Set multiple hash fields to multiple values", "2.0.0"),
        hset,
    );
    t.add(
        S::new("hsetnx", 4, W | DENY | FAST, g).keys(1, 1, 1).doc(
            "Set the value of a hash field, only if the field does not exist",
            "2.0.0",
        ),
        hsetnx,
    );
    t.add(
        S::new("hget", 3, R | FAST, g)
            .keys(1, 1, 1)
            .doc("Get the value of a hash field", "2.0.0"),
        hget,
    );
    t.add(
        S::new("hmget", -3, R | FAST, g)
            .keys(1, 1, 1)
            .doc("Get the values of all the given hash fields", "2.0.0"),
        hmget,
    );
    t.add(
        S::new("hgetall", 2, R, g)
            .keys(1, 1, 1)
            .doc("Get all the fields and values in a hash", "2.0.0"),
        hgetall,
    );
    t.add(
        S::new("hkeys", 2, R, g)
            .keys(1, 1, 1)
            .doc("Get all the fields in a hash", "2.0.0"),
        hkeys,
    );
    t.add(
        S::new("hvals", 2, R, g)
            .keys(1, 1, 1)
            .doc("Get all the values in a hash", "2.0.0"),
        hvals,
    );
    t.add(
        S::new("hdel", -3, W | FAST, g)
            .keys(1, 1, 1)
            .doc("Delete one or more hash fields", "2.0.0"),
        hdel,
    );
    t.add(
        S::new("hlen", 2, R | FAST, g)
            .keys(1, 1, 1)
            .doc("Get the number of fields in a hash", "2.0.0"),
        hlen,
    );
    t.add(
        S::new("hexists", 3, R | FAST, g)
            .keys(1, 1, 1)
            .doc("Determine if a hash field exists", "2.0.0"),
        hexists,
    );
    t.add(
        S::new("hstrlen", 3, R | FAST, g)
            .keys(1, 1, 1)
            .doc("Get the length of the value of a hash field", "3.2.0"),
        hstrlen,
    );
    t.add(
        S::new("hincrby", 4, W | DENY | FAST, g).keys(1, 1, 1).doc(
            "Increment the integer value of a hash field by the given number",
            "2.0.0",
        ),
        hincrby,
    );
    t.add(
        S::new("hincrbyfloat", 4, W | DENY | FAST, g)
            .keys(1, 1, 1)
            .doc(
                "Increment the float value of a hash field by the given amount",
                "2.6.0",
            ),
        hincrbyfloat,
    );
    t.add(
        S::new("hrandfield", -2, R, g)
            .keys(1, 1, 1)
            .doc("Get one or multiple random fields from a hash", "6.2.0"),
        hrandfield,
    );
    t.add(
        S::new("hscan", -3, R, g).keys(1, 1, 1).doc(
            "Incrementally iterate hash fields and associated values",
            "2.8.0",
        ),
        hscan,
    );
}

pub(super) fn arg(args: &[Bytes], i: usize) -> &[u8] {
    args.get(i).map(|b| &b[..]).unwrap_or_default()
}

/// Stored elements are copied out of the argument: arguments are slices of
/// the connection's read buffer and would pin all of it.
pub(super) fn owned(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}

fn wrong_args(cmd: &str) -> Frame {
    Frame::error(format!("ERR wrong number of arguments for '{cmd}' command"))
}

fn hset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let cmd = ctx.command();
    let pairs = args.get(2..).unwrap_or_default();
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return wrong_args(cmd);
    }
    let key = arg(args, 1);
    let mut shard = ctx.shard(key);
    let added = match shard.entry_mut(key) {
        Some(mut e) => {
            // Type check before `value_mut`, which counts a change.
            if let Err(w) = e.value().as_hash() {
                return w.into();
            }
            let Ok(h) = e.value_mut().as_hash_mut() else {
                return super::wrongtype();
            };
            let mut added = 0;
            for p in pairs.chunks_exact(2) {
                if let [f, v] = p {
                    // The field is copied only when it is new.
                    if h.upsert(&f[..], owned(v)) {
                        added += 1;
                    }
                }
            }
            added
        }
        None => {
            let mut h = HashMapBytes::with_capacity(pairs.len() / 2);
            for p in pairs.chunks_exact(2) {
                if let [f, v] = p {
                    h.insert(owned(f), owned(v));
                }
            }
            let n = h.len();
            shard.set(key, Value::Hash(Arc::new(h)), None);
            n
        }
    };
    // Redis counts every field set, new or not.
    shard.add_changes((pairs.len() / 2 - 1) as u64);
    if cmd == "hmset" {
        Frame::ok()
    } else {
        int(added)
    }
}

/// The type check of a lookup: `Ok(None)` for a missing key.
fn read_hash(v: Option<&Value>) -> Result<Option<&HashMapBytes>, Frame> {
    match v {
        None => Ok(None),
        Some(v) => v.as_hash().map(Some).map_err(Frame::from),
    }
}

fn hsetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (key, field, value) = (arg(args, 1), arg(args, 2), arg(args, 3));
    let mut shard = ctx.shard(key);
    match shard.entry_mut(key) {
        Some(mut e) => {
            match e.value().as_hash() {
                Err(w) => return w.into(),
                Ok(h) if h.contains_key(field) => return Frame::Integer(0),
                Ok(_) => {}
            }
            if let Ok(h) = e.value_mut().as_hash_mut() {
                h.insert(owned(field), owned(value));
            }
        }
        None => {
            let mut h = HashMapBytes::with_capacity(1);
            h.insert(owned(field), owned(value));
            shard.set(key, Value::Hash(Arc::new(h)), None);
        }
    }
    Frame::Integer(1)
}

fn hget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (key, field) = (arg(args, 1), arg(args, 2));
    match read_hash(ctx.shard(key).value(key)) {
        Err(e) => e,
        Ok(h) => h
            .and_then(|h| h.get(field))
            .map_or(Frame::Null, |v| Frame::Bulk(v.clone())),
    }
}

fn hmget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let fields = args.get(2..).unwrap_or_default();
    match read_hash(ctx.shard(key).value(key)) {
        Err(e) => e,
        Ok(h) => Frame::Array(
            fields
                .iter()
                .map(|f| {
                    h.and_then(|h| h.get(&f[..]))
                        .map_or(Frame::Null, |v| Frame::Bulk(v.clone()))
                })
                .collect(),
        ),
    }
}

fn hgetall(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    match read_hash(ctx.shard(key).value(key)) {
        Err(e) => e,
        Ok(None) => Frame::Map(Vec::new()),
        Ok(Some(h)) => Frame::Map(
            h.iter()
                .map(|(f, v)| (Frame::Bulk(f.clone()), Frame::Bulk(v.clone())))
                .collect(),
        ),
    }
}

fn hkeys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    match read_hash(ctx.shard(key).value(key)) {
        Err(e) => e,
        Ok(None) => Frame::Array(Vec::new()),
        Ok(Some(h)) => Frame::Array(h.keys().map(|f| Frame::Bulk(f.clone())).collect()),
    }
}

fn hvals(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    match read_hash(ctx.shard(key).value(key)) {
        Err(e) => e,
        Ok(None) => Frame::Array(Vec::new()),
        Ok(Some(h)) => Frame::Array(h.values().map(|v| Frame::Bulk(v.clone())).collect()),
    }
}

fn hdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let fields = args.get(2..).unwrap_or_default();
    let mut shard = ctx.shard(key);
    let Some(mut e) = shard.entry_mut(key) else {
        return Frame::Integer(0);
    };
    match e.value().as_hash() {
        Err(w) => return w.into(),
        // Nothing to delete: no write, so no copy of a hash a view holds.
        Ok(h) if !fields.iter().any(|f| h.contains_key(&f[..])) => return Frame::Integer(0),
        Ok(_) => {}
    }
    let mut deleted = 0;
    if let Ok(h) = e.value_mut().as_hash_mut() {
        deleted = fields.iter().filter(|f| h.remove(&f[..]).is_some()).count();
    }
    shard.remove_if_empty(key);
    shard.add_changes(deleted.saturating_sub(1) as u64);
    int(deleted)
}

fn hlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    match read_hash(ctx.shard(key).value(key)) {
        Err(e) => e,
        Ok(h) => int(h.map_or(0, |h| h.len())),
    }
}

fn hexists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (key, field) = (arg(args, 1), arg(args, 2));
    match read_hash(ctx.shard(key).value(key)) {
        Err(e) => e,
        Ok(h) => int(usize::from(h.is_some_and(|h| h.contains_key(field)))),
    }
}

fn hstrlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (key, field) = (arg(args, 1), arg(args, 2));
    match read_hash(ctx.shard(key).value(key)) {
        Err(e) => e,
        Ok(h) => int(h.and_then(|h| h.get(field)).map_or(0, |v| v.len())),
    }
}

/// Applies `update` to the current value of a hash field (None: absent),
/// creating the hash if needed, and stores what it returns. The error of
/// `update` is replied as is and nothing is written.
fn update_field(
    ctx: &mut Ctx<'_>,
    args: &[Bytes],
    update: impl FnOnce(Option<&[u8]>) -> Result<Bytes, Frame>,
) -> Result<Bytes, Frame> {
    let (key, field) = (arg(args, 1), arg(args, 2));
    let mut shard = ctx.shard(key);
    match shard.entry_mut(key) {
        Some(mut e) => {
            let cur = e.value().as_hash().map_err(Frame::from)?.get(field);
            let new = update(cur.as_deref())?;
            if let Ok(h) = e.value_mut().as_hash_mut() {
                h.upsert(field, new.clone());
            }
            Ok(new)
        }
        None => {
            let new = update(None)?;
            let mut h = HashMapBytes::with_capacity(1);
            h.insert(owned(field), new.clone());
            shard.set(key, Value::Hash(Arc::new(h)), None);
            Ok(new)
        }
    }
}

fn hincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let delta = match parse_int(arg(args, 3)) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let mut result = 0;
    let r = update_field(ctx, args, |cur| {
        let cur = match cur {
            None => 0,
            Some(b) => {
                parse_canonical_i64(b).ok_or_else(|| err("ERR hash value is not an integer"))?
            }
        };
        result = cur
            .checked_add(delta)
            .ok_or_else(|| err("ERR increment or decrement would overflow"))?;
        Ok(Bytes::from(result.to_string()))
    });
    match r {
        Ok(_) => Frame::Integer(result),
        Err(e) => e,
    }
}

fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let delta = match ld::parse(arg(args, 3)) {
        None => return err(ERR_NOT_FLOAT),
        Some(ld::Parsed::Inf) => return err("ERR value is NaN or Infinity"),
        Some(ld::Parsed::Finite(d)) => d,
    };
    let overflow = || err("ERR increment would produce NaN or Infinity");
    let r = update_field(ctx, args, |cur| {
        let cur = match cur.map(ld::parse) {
            None => ld::Ld::ZERO,
            Some(None) => return Err(err("ERR hash value is not a float")),
            Some(Some(ld::Parsed::Inf)) => return Err(overflow()),
            Some(Some(ld::Parsed::Finite(c))) => c,
        };
        let new = ld::sum(cur, delta).ok_or_else(overflow)?;
        Ok(Bytes::from(ld::format(new)))
    });
    match r {
        Ok(b) => Frame::Bulk(b),
        Err(e) => e,
    }
}

/// Parses the count of HRANDFIELD/SRANDMEMBER as Redis'
/// `getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX)` does.
pub(super) fn parse_random_count(raw: &[u8]) -> Result<i64, Frame> {
    match parse_int(raw)? {
        i64::MIN => Err(err(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        )),
        n => Ok(n),
    }
}

/// What HRANDFIELD/SRANDMEMBER with a count pick.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RandomCount {
    /// A positive count: this many distinct elements (all of them when it
    /// exceeds the size).
    Distinct(usize),
    /// A negative count: this many elements, repetitions allowed.
    Repeated(usize),
}

/// Reads a parsed count as HRANDFIELD/SRANDMEMBER do; `None` when a
/// negative count asks for more than [`MAX_RANDOM_REPLY`].
pub(super) fn random_count(count: i64) -> Option<RandomCount> {
    if count >= 0 {
        return Some(RandomCount::Distinct(
            usize::try_from(count).unwrap_or(usize::MAX),
        ));
    }
    let want = count.unsigned_abs();
    // `want` <= MAX_RANDOM_REPLY fits any usize.
    (want <= MAX_RANDOM_REPLY).then_some(RandomCount::Repeated(want as usize))
}

fn out_of_range() -> Frame {
    err("ERR value is out of range")
}

fn hrandfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    if args.len() == 2 {
        let mut shard = ctx.shard(key);
        return match read_hash(shard.value(key)) {
            Err(e) => e,
            Ok(None) => Frame::Null,
            Ok(Some(h)) => match with_rng(|rng| h.random(rng)) {
                Some((f, _)) => Frame::Bulk(f.clone()),
                None => Frame::Null,
            },
        };
    }
    let count = match parse_random_count(arg(args, 2)) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let withvalues = match args.get(3) {
        None => false,
        Some(w) if args.len() == 4 && is(w, "withvalues") => true,
        Some(_) => return err(ERR_SYNTAX),
    };
    // Redis doubles the count for the reply length.
    if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return out_of_range();
    }
    let resp3 = ctx.session().protocol == Protocol::Resp3;
    let mut shard = ctx.shard(key);
    let h = match read_hash(shard.value(key)) {
        Err(e) => return e,
        Ok(None) => return Frame::Array(Vec::new()),
        Ok(Some(h)) => h,
    };
    let picked = match random_count(count) {
        None => return out_of_range(),
        Some(RandomCount::Distinct(n)) => with_rng(|rng| h.sample_distinct(n, rng)),
        Some(RandomCount::Repeated(n)) => with_rng(|rng| h.sample_repeated(n, rng)),
    };
    let bulk = Frame::Bulk;
    Frame::Array(match (withvalues, resp3) {
        (false, _) => picked.into_iter().map(|(f, _)| bulk(f)).collect(),
        (true, true) => picked
            .into_iter()
            .map(|(f, v)| Frame::Array(vec![bulk(f), bulk(v)]))
            .collect(),
        (true, false) => picked
            .into_iter()
            .flat_map(|(f, v)| [bulk(f), bulk(v)])
            .collect(),
    })
}

/// Parses a SCAN cursor as Redis' `strtoull`-based parser does: optional
/// sign (a minus wraps), digits, nothing else; the empty string is 0.
pub(super) fn parse_cursor(raw: &[u8]) -> Option<u64> {
    let (neg, digits) = match raw.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, raw),
    };
    if digits.is_empty() {
        // strtoull consumes nothing: "" is cursor 0, a lone sign is invalid.
        return raw.is_empty().then_some(0);
    }
    let mut acc: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        acc = acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { acc.wrapping_neg() } else { acc })
}

/// MATCH and COUNT of HSCAN/SSCAN.
pub(super) struct ScanOpts<'a> {
    pattern: Option<&'a [u8]>,
    count: usize,
}

pub(super) fn parse_scan_opts(args: &[Bytes]) -> Result<ScanOpts<'_>, Frame> {
    let mut opts = ScanOpts {
        pattern: None,
        count: 10,
    };
    let mut i = 3;
    while let Some(opt) = args.get(i) {
        let Some(v) = args.get(i + 1) else {
            return Err(err(ERR_SYNTAX));
        };
        if is(opt, "count") {
            match parse_int(v)? {
                n if n < 1 => return Err(err(ERR_SYNTAX)),
                n => opts.count = usize::try_from(n).unwrap_or(usize::MAX),
            }
        } else if is(opt, "match") {
            opts.pattern = (&v[..] != b"*").then_some(&v[..]);
        } else {
            return Err(err(ERR_SYNTAX));
        }
        i += 2;
    }
    Ok(opts)
}

/// One HSCAN/SSCAN step over `items` (element, value for hashes); see the
/// module doc for the cursor scheme. `hash` must be stable for the process.
pub(super) fn scan_step(
    items: impl ExactSizeIterator<Item = (Bytes, Option<Bytes>)>,
    cursor: u64,
    opts: &ScanOpts<'_>,
    hash: impl Fn(&[u8]) -> u64,
) -> Frame {
    let len = items.len();
    let mut out = Vec::new();
    let mut emit = |e: Bytes, v: Option<Bytes>| {
        if opts.pattern.is_none_or(|p| glob_match(p, &e, false)) {
            out.push(Frame::Bulk(e));
            if let Some(v) = v {
                out.push(Frame::Bulk(v));
            }
        }
    };
    let mut next = 0;
    if len <= SMALL_SCAN {
        items.for_each(|(e, v)| emit(e, v));
    } else {
        let batch = opts.count.max(len.div_ceil(SCAN_PASSES)).max(1);
        let mut found: Vec<(u64, Bytes, Option<Bytes>)> = items
            .map(|(e, v)| (hash(&e), e, v))
            .filter(|(h, _, _)| *h >= cursor)
            .collect();
        if found.len() > batch {
            found.select_nth_unstable_by_key(batch - 1, |(h, _, _)| *h);
            let pivot = found.get(batch - 1).map_or(u64::MAX, |(h, _, _)| *h);
            // Elements of equal hash go out together, so the next call can
            // start strictly above the pivot.
            found.retain(|(h, _, _)| *h <= pivot);
            next = pivot.checked_add(1).unwrap_or(0);
        }
        for (_, e, v) in found {
            emit(e, v);
        }
    }
    Frame::Array(vec![
        Frame::Bulk(Bytes::from(next.to_string())),
        Frame::Array(out),
    ])
}

fn hscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    // Redis' order of checks: cursor, then the key, then the options.
    let Some(cursor) = parse_cursor(arg(args, 2)) else {
        return err("ERR invalid cursor");
    };
    let engine = ctx.keyspace().engine();
    let mut shard = ctx.shard(key);
    let h = match read_hash(shard.value(key)) {
        Err(e) => return e,
        Ok(None) => return empty_scan(),
        Ok(Some(h)) => h,
    };
    let opts = match parse_scan_opts(args) {
        Ok(o) => o,
        Err(e) => return e,
    };
    scan_step(h.iter().map(|(f, v)| (f, Some(v))), cursor, &opts, |b| {
        engine.key_hash(b)
    })
}

pub(super) fn empty_scan() -> Frame {
    Frame::Array(vec![
        Frame::Bulk(Bytes::from_static(b"0")),
        Frame::Array(Vec::new()),
    ])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse_like_strtoull() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"+7"), Some(7));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b"18446744073709551616"[..],
            b" 0",
            b"0x",
            b"-",
            b"+",
            b"1 ",
        ] {
            assert_eq!(parse_cursor(bad), None, "{bad:?}");
        }
    }

    /// HINCRBYFLOAT's arithmetic against replies of redis-server 7.0.15
    /// (field value, increment, reply).
    #[test]
    fn long_double_matches_redis() {
        let cases = [
            ("0", "0.1", "0.1"),
            ("0.1", "0.2", "0.3"),
            ("3000", "0.1", "3000.10000000000000009"),
            ("1.5", "0.1", "1.6"),
            ("9223372036854775807", "1", "9223372036854775808"),
            (
                "0",
                "1e308",
                "99999999999999999996685879655845645660560099847415567207797047994921734868838061872100126921888539320446747225054013223152134749593960583597420814430196418767959100019603190778663109604507106667939153395788938914560543563061268364901618630217086589253444881623791300855757318142424510452728255046343928578048",
            ),
            (
                "1e308",
                "1e308",
                "199999999999999999993371759311691291321120199694831134415594095989843469737676123744200253843777078640893494450108026446304269499187921167194841628860392837535918200039206381557326219209014213335878306791577877829121087126122536729803237260434173178506889763247582601711514636284849020905456510092687857156096",
            ),
            ("0", "5.0e-7", "0.0000005"),
            ("0", "1.23456789012345678", "1.23456789012345678"),
            ("10.5", "-10.5", "0"),
            ("-0", "-0", "0"),
            ("0", "-0.0", "0"),
            (
                "1e4932",
                "1e4932",
                "ERR increment would produce NaN or Infinity",
            ),
            ("1", "1e-30", "1"),
            ("0", "3.6e-4951", "0"),
            ("0", "1e-4960", "ERR value is not a valid float"),
            ("0", "1e-20", "0"),
            ("0", "123456789.987654321", "123456789.98765432099753525"),
            ("2.5", "-7.25", "-4.75"),
            ("0", "1.", "1"),
            ("0", ".5", "0.5"),
            ("0", "+3", "3"),
            ("0", "0x10", "16"),
            ("0", " 1", "ERR value is not a valid float"),
            ("0", "1 ", "ERR value is not a valid float"),
            ("0", "1e", "ERR value is not a valid float"),
            ("0", "inf", "ERR value is NaN or Infinity"),
            ("0", "nan", "ERR value is not a valid float"),
            ("0", "1e5000", "ERR value is not a valid float"),
            ("100", "-1e-17", "99.99999999999999999"),
            ("0", "0.000000000000000005", "0"),
            ("0", "0.000000000000000015", "0.00000000000000002"),
            ("0", "0.000000000000000025", "0.00000000000000002"),
            ("-320874", "-26.86", "-320900.86000000000001364"),
            ("-0.818574", "29e10", "289999999999.18142598867416382"),
            ("8954.179", "-90.68", "8863.49900000000000055"),
            ("-7644.155", "-79.39", "-7723.54499999999999993"),
            ("0.2380192", "41e-1", "4.3380192"),
            ("-936.312", "-0.39950176290874939", "-936.71150176290874939"),
            ("-0.8535983", "-67.01", "-67.8635983"),
            (
                "1.1615150531e+29",
                "-0.29964322456166337",
                "116151505310000000000206045184",
            ),
            ("-855794", "83e6", "82144206"),
            (
                "4.3325558880e+29",
                "-95.49",
                "433255588800000000007667187712",
            ),
            ("-8820.912", "-20.42", "-8841.33199999999999985"),
            ("-0.7261477", "54e-8", "-0.72614716"),
            ("-2391.174", "63e23", "6300000000000000000000000"),
            (
                "-9.9181279323e+29",
                "17e14",
                "-991812793229998299984206757888",
            ),
            ("-0.8920142", "-0.21175996804927166", "-1.10377416804927166"),
            ("-869457", "-31.99", "-869488.99000000000000909"),
            ("-7970.713", "33e-8", "-7970.71299966999999986"),
            ("-0.02386388", "19e-24", "-0.02386388"),
            ("-281441", "47e-21", "-281441"),
            ("139115", "39.24", "139154.23999999999999488"),
            ("6.5184794986e+28", "27.29", "65184794986000000000748158976"),
            (
                "-5212.247",
                "-0.28887491329008363",
                "-5212.5358749132900833",
            ),
            ("0.9130302", "61.71", "62.6230302"),
            ("-0.324525", "1e0", "0.675475"),
            ("0.3211713", "56.46", "56.7811713"),
        ];
        for (cur, inc, want) in cases {
            let got = (|| {
                let Some(ld::Parsed::Finite(d)) = ld::parse(inc.as_bytes()) else {
                    return match ld::parse(inc.as_bytes()) {
                        Some(_) => "ERR value is NaN or Infinity".to_string(),
                        None => "ERR value is not a valid float".to_string(),
                    };
                };
                let Some(ld::Parsed::Finite(c)) = ld::parse(cur.as_bytes()) else {
                    return "ERR hash value is not a float".to_string();
                };
                match ld::sum(c, d) {
                    Some(v) => ld::format(v),
                    None => "ERR increment would produce NaN or Infinity".to_string(),
                }
            })();
            assert_eq!(got, want, "{cur} + {inc}");
        }
    }

    #[test]
    fn random_counts_follow_their_sign() {
        assert_eq!(random_count(10), Some(RandomCount::Distinct(10)));
        assert_eq!(random_count(0), Some(RandomCount::Distinct(0)));
        assert_eq!(
            random_count(i64::MAX),
            Some(RandomCount::Distinct(i64::MAX as usize))
        );
        assert_eq!(random_count(-500), Some(RandomCount::Repeated(500)));
        let max = MAX_RANDOM_REPLY as i64;
        assert_eq!(
            random_count(-max),
            Some(RandomCount::Repeated(MAX_RANDOM_REPLY as usize))
        );
        assert_eq!(random_count(-max - 1), None);
    }
}

/// Redis' HINCRBYFLOAT (and INCRBYFLOAT) arithmetic, emulated exactly:
/// `strtold` into an x87 80-bit `long double` (64-bit significand, round
/// to nearest even), one addition in that precision, and `%.17Lf` with
/// trailing zeros trimmed (`ld2string(LD_STR_HUMAN)`). Plain `f64` gives
/// different text for everyday inputs (0.1 + 0.2 is "0.3" in Redis and
/// "0.30000000000000004" in f64), so the arithmetic is done here on exact
/// big integers instead. Hexadecimal floats (`0x1p3`), which `strtold`
/// also reads, are refused.
pub(crate) mod ld {
    use std::cmp::Ordering;

    /// A finite long double: `(-1)^neg * mant * 2^exp`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct Ld {
        neg: bool,
        mant: u64,
        exp: i32,
    }

    /// A parsed number: finite or an infinity (NaN is never accepted).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum Parsed {
        Finite(Ld),
        Inf,
    }

    impl Ld {
        /// Positive zero.
        pub(crate) const ZERO: Ld = Ld {
            neg: false,
            mant: 0,
            exp: 0,
        };
    }

    /// Exponent of the smallest subnormal (2^-16445).
    const MIN_EXP: i64 = -16445;
    /// Largest exponent of a finite value with a 64-bit significand.
    const MAX_EXP: i64 = 16320;
    /// Redis' `MAX_LONG_DOUBLE_CHARS`: longer inputs are refused.
    const MAX_CHARS: usize = 5 * 1024;

    /// Little-endian base-2^32 limbs, no trailing zero limbs.
    type Big = Vec<u32>;

    fn trim(a: &mut Big) {
        while a.last() == Some(&0) {
            a.pop();
        }
    }

    fn from_u64(x: u64) -> Big {
        let mut a = vec![x as u32, (x >> 32) as u32];
        trim(&mut a);
        a
    }

    fn mul_small_add(a: &mut Big, m: u32, add: u32) {
        let mut carry = u64::from(add);
        for limb in a.iter_mut() {
            let v = u64::from(*limb) * u64::from(m) + carry;
            *limb = v as u32;
            carry = v >> 32;
        }
        if carry > 0 {
            a.push(carry as u32);
        }
    }

    fn bitlen(a: &Big) -> u64 {
        match a.last() {
            None => 0,
            Some(top) => (a.len() as u64 - 1) * 32 + u64::from(32 - top.leading_zeros()),
        }
    }

    fn bit(a: &Big, i: u64) -> bool {
        a.get((i / 32) as usize)
            .is_some_and(|l| (l >> (i % 32)) & 1 == 1)
    }

    /// Whether any bit below `i` is set.
    fn any_below(a: &Big, i: u64) -> bool {
        let whole = (i / 32) as usize;
        if a.iter().take(whole).any(|&l| l != 0) {
            return true;
        }
        let part = i % 32;
        part > 0 && a.get(whole).is_some_and(|l| l & ((1u32 << part) - 1) != 0)
    }

    fn shl(a: &Big, n: u64) -> Big {
        if a.is_empty() {
            return Big::new();
        }
        let (limbs, bits) = ((n / 32) as usize, (n % 32) as u32);
        let mut out = vec![0u32; limbs];
        if bits == 0 {
            out.extend_from_slice(a);
        } else {
            let mut carry = 0u32;
            for &l in a {
                out.push((l << bits) | carry);
                carry = l >> (32 - bits);
            }
            out.push(carry);
        }
        trim(&mut out);
        out
    }

    /// The low 128 bits of `a >> n`.
    fn shr_u128(a: &Big, n: u64) -> u128 {
        (0..128u64)
            .filter(|&i| bit(a, n + i))
            .fold(0u128, |acc, i| acc | (1u128 << i))
    }

    fn cmp(a: &Big, b: &Big) -> Ordering {
        a.len()
            .cmp(&b.len())
            .then_with(|| a.iter().rev().cmp(b.iter().rev()))
    }

    fn add(a: &Big, b: &Big) -> Big {
        let mut out = Vec::with_capacity(a.len().max(b.len()) + 1);
        let mut carry = 0u64;
        for i in 0..a.len().max(b.len()) {
            let v = u64::from(a.get(i).copied().unwrap_or(0))
                + u64::from(b.get(i).copied().unwrap_or(0))
                + carry;
            out.push(v as u32);
            carry = v >> 32;
        }
        out.push(carry as u32);
        trim(&mut out);
        out
    }

    /// `a - b` for `a >= b`.
    fn sub(a: &Big, b: &Big) -> Big {
        let mut out = Vec::with_capacity(a.len());
        let mut borrow = 0i64;
        for (i, &l) in a.iter().enumerate() {
            let mut v = i64::from(l) - i64::from(b.get(i).copied().unwrap_or(0)) - borrow;
            borrow = 0;
            if v < 0 {
                v += 1 << 32;
                borrow = 1;
            }
            out.push(v as u32);
        }
        trim(&mut out);
        out
    }

    fn pow10(n: u64) -> Big {
        let mut a = vec![1u32];
        let mut left = n;
        while left > 0 {
            let step = left.min(9);
            mul_small_add(&mut a, 10u32.pow(step as u32), 0);
            left -= step;
        }
        a
    }

    /// `num / den` for a quotient below 2^127, and whether a remainder
    /// was left.
    fn div(num: &Big, den: &Big) -> (u128, bool) {
        let (nl, dl) = (bitlen(num), bitlen(den));
        if nl < dl {
            return (0, !num.is_empty());
        }
        let qbits = (nl - dl + 1).min(127);
        let mut rem = num.clone();
        let mut q = 0u128;
        for i in (0..qbits).rev() {
            let d = shl(den, i);
            if cmp(&rem, &d) != Ordering::Less {
                rem = sub(&rem, &d);
                q |= 1 << i;
            }
        }
        (q, !rem.is_empty())
    }

    /// Rounds `n * 2^e` (plus a nonzero tail below it when `sticky`) to a
    /// long double; `None` on overflow.
    fn round(neg: bool, n: &Big, e: i64, sticky: bool) -> Option<Ld> {
        let len = bitlen(n) as i64;
        let s = (len - 64).max(MIN_EXP - e);
        let (mut q, exp) = if s <= 0 {
            // Exact; normalized (top bit set) unless that would go below
            // the subnormal exponent.
            (shr_u128(n, 0) << s.unsigned_abs(), e + s)
        } else {
            let s_u = s as u64;
            let mut q = shr_u128(n, s_u);
            let half = bit(n, s_u - 1);
            let rest = sticky || any_below(n, s_u - 1);
            if half && (rest || q & 1 == 1) {
                q += 1;
            }
            (q, e + s)
        };
        let mut exp = exp;
        if q >> 64 != 0 {
            q >>= 1;
            exp += 1;
        }
        if exp > MAX_EXP && q != 0 {
            return None;
        }
        if q == 0 {
            exp = 0;
        }
        Some(Ld {
            neg,
            mant: q as u64,
            exp: exp as i32,
        })
    }

    /// The signed decimal exponent after `e`/`p`, as `strtold` reads it;
    /// saturated far beyond any finite range, so it cannot overflow.
    fn exponent(rest: &[u8]) -> Option<i64> {
        let (neg, digits) = match rest.split_first() {
            Some((b'-', r)) => (true, r),
            Some((b'+', r)) => (false, r),
            _ => (false, rest),
        };
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut ex: i64 = 0;
        for &d in digits {
            ex = (ex * 10 + i64::from(d - b'0')).min(1 << 40);
        }
        Some(if neg { -ex } else { ex })
    }

    /// Parses as Redis' `string2ld`: `strtold` on the whole input, no
    /// leading space, no NaN, overflow or underflow to zero refused.
    pub(crate) fn parse(raw: &[u8]) -> Option<Parsed> {
        if raw.is_empty() || raw.len() >= MAX_CHARS {
            return None;
        }
        let (neg, body) = match raw.split_first() {
            Some((b'-', r)) => (true, r),
            Some((b'+', r)) => (false, r),
            _ => (false, raw),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(Parsed::Inf);
        }
        if let Some(hex) = body
            .strip_prefix(b"0x")
            .or_else(|| body.strip_prefix(b"0X"))
            && hex
                .first()
                .is_some_and(|c| c.is_ascii_hexdigit() || *c == b'.')
        {
            return parse_hex(neg, hex);
        }
        let mut digits = Big::new();
        let mut nd = 0u64; // significant digits taken into `digits`
        let mut scale = 0i64; // decimal exponent adjustment
        let mut seen = false;
        let mut i = 0;
        let mut dot = false;
        while let Some(&c) = body.get(i) {
            match c {
                b'0'..=b'9' => {
                    seen = true;
                    if nd > 0 || c != b'0' {
                        mul_small_add(&mut digits, 10, u32::from(c - b'0'));
                        nd += 1;
                    }
                    if dot {
                        scale -= 1;
                    }
                }
                b'.' if !dot => dot = true,
                _ => break,
            }
            i += 1;
        }
        if !seen {
            return None;
        }
        if let Some(&c) = body.get(i)
            && (c == b'e' || c == b'E')
        {
            scale += exponent(body.get(i + 1..).unwrap_or_default())?;
            i = body.len();
        }
        if i != body.len() {
            return None;
        }
        if digits.is_empty() {
            return Some(Parsed::Finite(Ld {
                neg,
                mant: 0,
                exp: 0,
            }));
        }
        // Magnitude is in [10^(top-1), 10^top): decide far overflow or
        // underflow before building huge numbers.
        let top = scale + nd as i64;
        if top > 4934 {
            return None;
        }
        if top < -4952 {
            return None;
        }
        let ld = if scale >= 0 {
            round(neg, &shl_dec(&digits, scale as u64), 0, false)
        } else {
            // Scale by 2^t so the quotient has 66-68 bits: enough for a
            // 64-bit significand plus guard and sticky bits, and within
            // `div`'s 127-bit limit. A negative t (many integer digits
            // before a fraction) shifts the divisor instead.
            let den = pow10(scale.unsigned_abs());
            let t = 66 + bitlen(&den) as i64 - bitlen(&digits) as i64 + 1;
            let (q, rem) = if t >= 0 {
                div(&shl(&digits, t as u64), &den)
            } else {
                div(&digits, &shl(&den, t.unsigned_abs()))
            };
            round(neg, &from_u128(q), -t, rem)
        }?;
        // strtold reports underflow to zero as an error; string2ld refuses it.
        (ld.mant != 0).then_some(Parsed::Finite(ld))
    }

    /// The part after `0x` of a hexadecimal float: hex digits with an
    /// optional point, then an optional binary exponent `p[+-]N`.
    fn parse_hex(neg: bool, hex: &[u8]) -> Option<Parsed> {
        let mut digits = Big::new();
        let mut e: i64 = 0;
        let (mut seen, mut dot, mut i) = (false, false, 0);
        while let Some(&c) = hex.get(i) {
            if let Some(d) = (c as char).to_digit(16) {
                seen = true;
                mul_small_add(&mut digits, 16, d);
                if dot {
                    e -= 4;
                }
                // Bound the work: beyond this many digits the value is
                // out of range or the tail only rounds.
                if bitlen(&digits) > 40_000 {
                    return None;
                }
            } else if c == b'.' && !dot {
                dot = true;
            } else {
                break;
            }
            i += 1;
        }
        if !seen {
            return None;
        }
        if let Some(&c) = hex.get(i)
            && (c == b'p' || c == b'P')
        {
            e += exponent(hex.get(i + 1..).unwrap_or_default())?;
            i = hex.len();
        }
        if i != hex.len() {
            return None;
        }
        if digits.is_empty() {
            return Some(Parsed::Finite(Ld {
                neg,
                mant: 0,
                exp: 0,
            }));
        }
        if e + (bitlen(&digits) as i64) < MIN_EXP - 1 {
            return None;
        }
        let ld = round(neg, &digits, e, false)?;
        (ld.mant != 0).then_some(Parsed::Finite(ld))
    }

    fn shl_dec(a: &Big, tens: u64) -> Big {
        let mut out = a.clone();
        let p = pow10(tens);
        out = mul(&out, &p);
        out
    }

    fn mul(a: &Big, b: &Big) -> Big {
        let mut out = vec![0u32; a.len() + b.len()];
        for (i, &x) in a.iter().enumerate() {
            let mut carry = 0u64;
            for (j, &y) in b.iter().enumerate() {
                let idx = i + j;
                let cur = out.get(idx).copied().unwrap_or(0);
                let v = u64::from(x) * u64::from(y) + u64::from(cur) + carry;
                if let Some(slot) = out.get_mut(idx) {
                    *slot = v as u32;
                }
                carry = v >> 32;
            }
            let mut idx = i + b.len();
            while carry > 0 {
                if let Some(slot) = out.get_mut(idx) {
                    let v = u64::from(*slot) + carry;
                    *slot = v as u32;
                    carry = v >> 32;
                } else {
                    break;
                }
                idx += 1;
            }
        }
        trim(&mut out);
        out
    }

    fn from_u128(x: u128) -> Big {
        let mut a: Big = (0..4).map(|i| (x >> (32 * i)) as u32).collect();
        trim(&mut a);
        a
    }

    /// `a + b` in long double precision; `None` when it overflows.
    pub(crate) fn sum(a: Ld, b: Ld) -> Option<Ld> {
        let e = i64::from(a.exp.min(b.exp));
        let ma = shl(&from_u64(a.mant), (i64::from(a.exp) - e) as u64);
        let mb = shl(&from_u64(b.mant), (i64::from(b.exp) - e) as u64);
        if a.neg == b.neg {
            return round(a.neg, &add(&ma, &mb), e, false);
        }
        match cmp(&ma, &mb) {
            // x + (-x) is +0 when rounding to nearest.
            Ordering::Equal => Some(Ld {
                neg: false,
                mant: 0,
                exp: 0,
            }),
            Ordering::Greater => round(a.neg, &sub(&ma, &mb), e, false),
            Ordering::Less => round(b.neg, &sub(&mb, &ma), e, false),
        }
    }

    /// `%.17Lf` with trailing zeros (and a trailing dot) removed, "-0"
    /// printed as "0".
    pub(crate) fn format(v: Ld) -> String {
        // round(|v| * 10^17), ties to even, as glibc's printf does.
        let scaled = mul(&from_u64(v.mant), &pow10(17));
        let n = if v.exp >= 0 {
            shl(&scaled, v.exp.unsigned_abs().into())
        } else {
            let s = u64::from(v.exp.unsigned_abs());
            let mut q = shr_big(&scaled, s);
            let half = bit(&scaled, s - 1);
            if half && (any_below(&scaled, s - 1) || q.first().is_some_and(|l| l & 1 == 1)) {
                q = add(&q, &vec![1]);
            }
            q
        };
        let mut digits = to_decimal(&n);
        if digits.len() < 18 {
            digits = format!("{}{digits}", "0".repeat(18 - digits.len()));
        }
        let (int_part, frac) = digits.split_at(digits.len() - 17);
        let frac = frac.trim_end_matches('0');
        let mut out = String::with_capacity(digits.len() + 2);
        if v.neg {
            out.push('-');
        }
        out.push_str(int_part);
        if !frac.is_empty() {
            out.push('.');
            out.push_str(frac);
        }
        if out == "-0" { "0".to_string() } else { out }
    }

    fn shr_big(a: &Big, n: u64) -> Big {
        let (limbs, bits) = ((n / 32) as usize, (n % 32) as u32);
        let src = a.get(limbs..).unwrap_or_default();
        let mut out: Big = if bits == 0 {
            src.to_vec()
        } else {
            src.iter()
                .enumerate()
                .map(|(i, &l)| (l >> bits) | src.get(i + 1).map_or(0, |&h| h << (32 - bits)))
                .collect()
        };
        trim(&mut out);
        out
    }

    fn to_decimal(a: &Big) -> String {
        if a.is_empty() {
            return "0".to_string();
        }
        let mut n = a.clone();
        let mut chunks = Vec::new();
        while !n.is_empty() {
            let mut rem = 0u64;
            for limb in n.iter_mut().rev() {
                let cur = (rem << 32) | u64::from(*limb);
                *limb = (cur / 1_000_000_000) as u32;
                rem = cur % 1_000_000_000;
            }
            trim(&mut n);
            chunks.push(rem as u32);
        }
        let mut s = String::with_capacity(chunks.len() * 9);
        for (i, c) in chunks.iter().rev().enumerate() {
            if i == 0 {
                s.push_str(&c.to_string());
            } else {
                s.push_str(&format!("{c:09}"));
            }
        }
        s
    }
}
