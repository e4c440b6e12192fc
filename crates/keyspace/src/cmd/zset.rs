//! Sorted-set commands: ZADD, ZRANGE and its variants, ZPOP*, ZRANDMEMBER,
//! the ZUNION/ZINTER/ZDIFF algebra, ZSCAN and the rest of Redis 7.0's
//! `sorted_set` group (the blocking BZ* variants live with the blocking
//! machinery and call [`zpop`]).
//!
//! Scores go out as `Frame::Double`, which the encoder writes as Redis'
//! `%.17g` (bulk in RESP2, `,` in RESP3). Replies WITH scores are flat
//! `[member, score, ...]` in RESP2 and `[[member, score], ...]` in RESP3,
//! as Redis 7.0 sends them, so those depend on the session's protocol.

use crate::notify::Class;
use std::sync::Arc;

use bytes::Bytes;
use cairn_resp::{Frame, Protocol};
use rand::Rng;
use rand::seq::index::sample;

use super::args::{
    RandomCount, arg, parse_cursor, parse_mpop, parse_random_count, parse_scan_opts, parse_timeout,
    random_count,
};
use super::{Ctx, ERR_NOT_FLOAT, ERR_SYNTAX, TableBuilder, err, int, is, parse_int, wrongtype};
use crate::blocking::{BlockedOp, Served, block_or_timeout};
use crate::engine::{Locked, Shard};
use crate::glob::glob_match;
use crate::num::{d2string, is_c_space, parse_score, strtod};
use crate::value::{SortedSet, Value};

const ERR_MINMAX_FLOAT: &str = "ERR min or max is not a float";
const ERR_MINMAX_LEX: &str = "ERR min or max not valid string range item";
const ERR_NAN: &str = "ERR resulting score is not a number (NaN)";
const ERR_POSITIVE: &str = "ERR value is out of range, must be positive";

pub(crate) fn register(t: &mut TableBuilder) {
    t.redis("zadd", zadd);
    t.redis("zincrby", zincrby);
    t.redis("zrem", zrem);
    t.redis("zcard", zcard);
    t.redis("zscore", zscore);
    t.redis("zmscore", zmscore);
    t.redis("zrank", zrank);
    t.redis("zrevrank", zrank);
    t.redis("zcount", zcount);
    t.redis("zlexcount", zlexcount);
    t.redis("zrange", zrange);
    t.redis("zrevrange", zrange);
    t.redis("zrangebyscore", zrange);
    t.redis("zrevrangebyscore", zrange);
    t.redis("zrangebylex", zrange);
    t.redis("zrevrangebylex", zrange);
    t.redis("zrangestore", zrange);
    t.redis("zremrangebyrank", zremrange);
    t.redis("zremrangebyscore", zremrange);
    t.redis("zremrangebylex", zremrange);
    t.redis("zpopmin", zpopminmax);
    t.redis("zpopmax", zpopminmax);
    t.redis("zmpop", zmpop);
    t.redis("zrandmember", zrandmember);
    t.redis("zunion", zsetop);
    t.redis("zinter", zsetop);
    t.redis("zdiff", zsetop);
    t.redis("zunionstore", zsetop);
    t.redis("zinterstore", zsetop);
    t.redis("zdiffstore", zsetop);
    t.redis("zintercard", zintercard);
    t.redis("zscan", zscan);
    t.redis("bzpopmin", bzpop);
    t.redis("bzpopmax", bzpop);
    t.redis("bzmpop", bzmpop);
}

fn resp3(ctx: &Ctx<'_>) -> bool {
    ctx.session.protocol == Protocol::Resp3
}

/// Appends one member (and its score when asked) in the protocol's shape.
fn push_member(out: &mut Vec<Frame>, m: Bytes, s: f64, withscores: bool, resp3: bool) {
    if !withscores {
        out.push(Frame::Bulk(m));
    } else if resp3 {
        out.push(Frame::Array(vec![Frame::Bulk(m), Frame::Double(s)]));
    } else {
        out.push(Frame::Bulk(m));
        out.push(Frame::Double(s));
    }
}

/// The sorted set at `key` for reading; `Ok(None)` when there is none.
pub(crate) fn read<'s>(
    shard: &'s mut Shard<'_>,
    key: &[u8],
) -> Result<Option<&'s SortedSet>, Frame> {
    match shard.value(key) {
        None => Ok(None),
        Some(v) => v.as_zset().map(Some).map_err(Frame::from),
    }
}

/// Runs `f` on the stored sorted set for writing (one change counted,
/// the old version preserved for an active view), then deletes the key if
/// `f` emptied it. `None` when the key is absent or not a sorted set.
/// `event` is the keyspace event reported before that deletion.
fn modify<R>(
    shard: &mut Shard<'_>,
    key: &[u8],
    event: &str,
    f: impl FnOnce(&mut SortedSet) -> R,
) -> Option<R> {
    let r = {
        let mut e = shard.entry_mut(key)?;
        let z = e.value_mut().as_zset_mut().ok()?;
        f(z)
    };
    shard.notify(Class::Zset, event, key);
    shard.remove_if_empty(key);
    Some(r)
}

/// Counts the changes beyond the one the write path already counted.
fn count_changes(shard: &Shard<'_>, n: usize) {
    if n > 1 {
        shard.add_changes(n as u64 - 1);
    }
}

// ---------------------------------------------------------------------------
// Number parsing, as Redis' two float parsers do it.

/// `zslParseRange` for one bound: `(` makes it exclusive; the rest goes
/// through plain `strtod`, which skips leading spaces, reads an empty
/// string as 0 and lets overflow become infinity.
fn parse_score_bound(a: &[u8]) -> Option<(f64, bool)> {
    let (text, exclusive) = match a.split_first() {
        Some((b'(', rest)) => (rest, true),
        _ => (a, false),
    };
    if text.is_empty() {
        return Some((0.0, exclusive));
    }
    let start = text.iter().position(|c| !is_c_space(*c))?;
    let v = strtod(text.get(start..)?)?;
    Some((v, exclusive))
}

/// A lexicographic range bound: `-`, `+`, `[member` or `(member`.
#[derive(Clone, Copy)]
enum Lex<'a> {
    Min,
    Max,
    Incl(&'a [u8]),
    Excl(&'a [u8]),
}

fn parse_lex(a: &[u8]) -> Option<Lex<'_>> {
    match a.split_first()? {
        (b'-', []) => Some(Lex::Min),
        (b'+', []) => Some(Lex::Max),
        (b'[', rest) => Some(Lex::Incl(rest)),
        (b'(', rest) => Some(Lex::Excl(rest)),
        _ => None,
    }
}

/// Whether `m` lies below the range's lower bound `min`.
fn lex_below(min: Lex<'_>, m: &[u8]) -> bool {
    match min {
        Lex::Min => false,
        Lex::Max => true,
        Lex::Incl(b) => m < b,
        Lex::Excl(b) => m <= b,
    }
}

/// Whether `m` lies at or below the range's upper bound `max`.
fn lex_upto(max: Lex<'_>, m: &[u8]) -> bool {
    match max {
        Lex::Min => false,
        Lex::Max => true,
        Lex::Incl(b) => m <= b,
        Lex::Excl(b) => m < b,
    }
}

/// Which members a range query selects.
#[derive(Clone, Copy)]
enum Range<'a> {
    /// By rank, Redis' `start`/`stop` with negatives counting from the end.
    Rank(i64, i64),
    /// By score: (min, min exclusive), (max, max exclusive).
    Score((f64, bool), (f64, bool)),
    /// By member bytes.
    Lex(Lex<'a>, Lex<'a>),
}

/// The ascending ranks `start..end` a score or lex range covers.
fn span(z: &SortedSet, range: Range<'_>) -> (usize, usize) {
    match range {
        Range::Rank(start, stop) => {
            let len = z.len() as i64;
            let start = if start < 0 {
                (len + start).max(0)
            } else {
                start
            };
            let stop = if stop < 0 { len + stop } else { stop };
            if start > stop || start >= len {
                return (0, 0);
            }
            (start as usize, (stop.min(len - 1) + 1) as usize)
        }
        Range::Score((min, minex), (max, maxex)) => {
            let start = z.partition_point(|s, _| if minex { s <= min } else { s < min });
            let end = z.partition_point(|s, _| if maxex { s < max } else { s <= max });
            (start, end.max(start))
        }
        Range::Lex(min, max) if !z.is_compact() => {
            let start = z.partition_point(|_, m| lex_below(min, m));
            let end = z.partition_point(|_, m| lex_upto(max, m));
            (start, end.max(start))
        }
        Range::Lex(min, max) => lex_scan(z, min, max, false, None),
    }
}

/// Redis' `sdscmplex` on two bounds: `-` below every string, `+` above.
fn lex_cmp<'a>(a: Lex<'a>, b: Lex<'a>) -> std::cmp::Ordering {
    fn key<'a>(l: Lex<'a>) -> (u8, &'a [u8]) {
        match l {
            Lex::Min => (0, &[]),
            Lex::Incl(x) | Lex::Excl(x) => (1, x),
            Lex::Max => (2, &[]),
        }
    }
    key(a).cmp(&key(b))
}

/// A lex range over a small set, scanned as Redis scans a listpack: empty
/// when the bounds cross or every member is outside them; otherwise
/// anchored on the first member >= min (the last <= max when reversed),
/// moved by the LIMIT offset without checks, then extended while members
/// stay within the far bound. With equal scores this is exactly the
/// sorted range; with mixed scores (undefined by the docs) it is what
/// Redis answers. Returns ascending ranks `start..end`.
fn lex_scan(
    z: &SortedSet,
    min: Lex<'_>,
    max: Lex<'_>,
    rev: bool,
    limit: Option<(i64, i64)>,
) -> (usize, usize) {
    let len = z.len();
    let excl = |l: Lex<'_>| !matches!(l, Lex::Incl(_));
    match lex_cmp(min, max) {
        std::cmp::Ordering::Greater => return (0, 0),
        std::cmp::Ordering::Equal if excl(min) || excl(max) => return (0, 0),
        _ => {}
    }
    let (Some((first, _)), Some((last, _))) = (
        z.get_by_rank(0),
        len.checked_sub(1).and_then(|r| z.get_by_rank(r)),
    ) else {
        return (0, 0);
    };
    if lex_below(min, &last) || !lex_upto(max, &first) {
        return (0, 0);
    }
    let (offset, count) = match limit {
        None => (0, usize::MAX),
        Some((o, _)) if o < 0 => return (0, 0),
        Some((o, c)) => (
            usize::try_from(o).unwrap_or(usize::MAX),
            usize::try_from(c).unwrap_or(usize::MAX),
        ),
    };
    if !rev {
        let Some((anchor, (m, _))) = z.iter().enumerate().find(|(_, (m, _))| !lex_below(min, m))
        else {
            return (0, 0);
        };
        if !lex_upto(max, &m) {
            return (0, 0);
        }
        let Some(p) = anchor.checked_add(offset).filter(|p| *p < len) else {
            return (0, 0);
        };
        let n = z
            .range(p, len)
            .take(count)
            .take_while(|(m, _)| lex_upto(max, m))
            .count();
        (p, p + n)
    } else {
        let Some((from_top, (m, _))) = z
            .iter()
            .rev()
            .enumerate()
            .find(|(_, (m, _))| lex_upto(max, m))
        else {
            return (0, 0);
        };
        if lex_below(min, &m) {
            return (0, 0);
        }
        let Some(top) = (len - 1 - from_top).checked_sub(offset) else {
            return (0, 0);
        };
        let n = z
            .range(0, top + 1)
            .rev()
            .take(count)
            .take_while(|(m, _)| !lex_below(min, m))
            .count();
        (top + 1 - n, top + 1)
    }
}

/// The members a range query selects, in reply order.
fn select<'z>(
    z: &'z SortedSet,
    range: Range<'_>,
    rev: bool,
    limit: Option<(i64, i64)>,
) -> Box<dyn Iterator<Item = (Bytes, f64)> + 'z> {
    let (mut a, mut b) = match (range, rev) {
        (Range::Rank(start, stop), true) => {
            // REV ranks count from the highest member.
            let (s, e) = span(z, Range::Rank(start, stop));
            (z.len() - e, z.len() - s)
        }
        (Range::Lex(min, max), _) if z.is_compact() => {
            let (a, b) = lex_scan(z, min, max, rev, limit);
            return if rev {
                Box::new(z.range(a, b).rev())
            } else {
                Box::new(z.range(a, b))
            };
        }
        _ => span(z, range),
    };
    if let Some((offset, count)) = limit {
        if offset < 0 {
            return Box::new(std::iter::empty());
        }
        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
        if rev {
            b = b.saturating_sub(offset).max(a);
        } else {
            a = a.saturating_add(offset).min(b);
        }
        if let Ok(count) = usize::try_from(count) {
            if rev {
                a = a.max(b.saturating_sub(count));
            } else {
                b = b.min(a.saturating_add(count));
            }
        }
    }
    if rev {
        Box::new(z.range(a, b).rev())
    } else {
        Box::new(z.range(a, b))
    }
}

// ---------------------------------------------------------------------------
// ZADD / ZINCRBY

/// ZADD's options (GEOADD passes NX, XX and CH through).
#[derive(Clone, Copy, Default)]
pub(crate) struct AddFlags {
    pub(crate) nx: bool,
    pub(crate) xx: bool,
    pub(crate) gt: bool,
    pub(crate) lt: bool,
    pub(crate) ch: bool,
    pub(crate) incr: bool,
}

/// What adding one element did.
#[derive(Clone, Copy, PartialEq)]
enum Added {
    New(f64),
    Updated(f64),
    Same(f64),
    Nop,
}

/// Redis' `zsetAdd` decision for one element against the current score.
fn decide(cur: Option<f64>, score: f64, f: AddFlags) -> Result<Added, Frame> {
    match cur {
        None if f.xx => Ok(Added::Nop),
        None => Ok(Added::New(score)),
        Some(_) if f.nx => Ok(Added::Nop),
        Some(cur) => {
            let new = if f.incr { cur + score } else { score };
            if new.is_nan() {
                return Err(err(ERR_NAN));
            }
            if (f.gt && new <= cur) || (f.lt && new >= cur) {
                Ok(Added::Nop)
            } else if new != cur {
                Ok(Added::Updated(new))
            } else {
                Ok(Added::Same(new))
            }
        }
    }
}

fn zadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let mut f = AddFlags::default();
    let mut i = 2;
    while let Some(a) = args.get(i) {
        if is(a, "nx") {
            f.nx = true;
        } else if is(a, "xx") {
            f.xx = true;
        } else if is(a, "gt") {
            f.gt = true;
        } else if is(a, "lt") {
            f.lt = true;
        } else if is(a, "ch") {
            f.ch = true;
        } else if is(a, "incr") {
            f.incr = true;
        } else {
            break;
        }
        i += 1;
    }
    let pairs = args.get(i..).unwrap_or_default();
    if pairs.is_empty() || pairs.len() % 2 != 0 {
        return err(ERR_SYNTAX);
    }
    if f.nx && f.xx {
        return err("ERR XX and NX options at the same time are not compatible");
    }
    if (f.nx && (f.gt || f.lt)) || (f.gt && f.lt) {
        return err("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if f.incr && pairs.len() > 2 {
        return err("ERR INCR option supports a single increment-element pair");
    }
    let mut elems = Vec::with_capacity(pairs.len() / 2);
    for p in pairs.chunks_exact(2) {
        let (Some(s), Some(m)) = (p.first(), p.get(1)) else {
            continue;
        };
        match parse_score(s) {
            Some(score) => elems.push((score, &m[..])),
            None => return err(ERR_NOT_FLOAT),
        }
    }
    add_elements(ctx, arg(args, 1), &elems, f)
}

fn zincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let Some(score) = parse_score(arg(args, 2)) else {
        return err(ERR_NOT_FLOAT);
    };
    let f = AddFlags {
        incr: true,
        ..AddFlags::default()
    };
    add_elements(ctx, arg(args, 1), &[(score, arg(args, 3))], f)
}

/// ZADD's work once arguments are parsed: adds or updates `elems`
/// (score, member) at `key` under `f`, replying as ZADD does.
pub(crate) fn add_elements(
    ctx: &mut Ctx<'_>,
    key: &[u8],
    elems: &[(f64, &[u8])],
    f: AddFlags,
) -> Frame {
    let mut shard = ctx.shard(key);
    let reply = |added: usize, updated: usize, last: Added| {
        if f.incr {
            match last {
                Added::New(s) | Added::Updated(s) | Added::Same(s) => Frame::Double(s),
                Added::Nop => Frame::Null,
            }
        } else {
            int(if f.ch { added + updated } else { added })
        }
    };
    let existing = match read(&mut shard, key) {
        Err(e) => return e,
        Ok(z) => z,
    };
    match existing {
        None => {
            if f.xx {
                return reply(0, 0, Added::Nop);
            }
            // Like Redis 7.0, a new set starts compact whatever its size
            // and converts while it fills (see `SortedSet::is_compact`).
            let mut z = SortedSet::new();
            let (mut added, mut updated) = (0, 0);
            let mut last = Added::Nop;
            for (score, m) in elems {
                // A fresh set: only duplicates within the call can meet.
                last = match decide(z.score(m), *score, f) {
                    Ok(a) => a,
                    Err(e) => return e,
                };
                match last {
                    Added::New(_) => added += 1,
                    Added::Updated(_) => updated += 1,
                    _ => {}
                }
                apply(&mut z, m, last);
            }
            shard.set(key, Value::ZSet(Arc::new(z)), None);
            if added + updated > 0 {
                shard.notify(Class::Zset, if f.incr { "zincr" } else { "zadd" }, key);
            }
            // Still under the key's lock, as `signal_key_ready` requires.
            ctx.keyspace().signal_key_ready(ctx.db(), key);
            count_changes(&shard, added + updated);
            reply(added, updated, last)
        }
        Some(z) => {
            // Decide against the current state first: a call that changes
            // nothing must not count a change or copy the set for a view.
            // The first element that changes anything sees the unchanged
            // state, so checking each element alone finds it.
            let mut any = false;
            let mut last = Added::Nop;
            for (score, m) in elems {
                last = match decide(z.score(m), *score, f) {
                    Ok(a) => a,
                    Err(e) => return e,
                };
                any |= matches!(last, Added::New(_) | Added::Updated(_));
            }
            if !any {
                return reply(0, 0, last);
            }
            let event = if f.incr { "zincr" } else { "zadd" };
            let done = modify(&mut shard, key, event, |z| {
                let (mut added, mut updated) = (0, 0);
                let mut last = Added::Nop;
                for (score, m) in elems {
                    // Only INCR can fail (NaN), and it has one element,
                    // which the check above already decided.
                    last = decide(z.score(m), *score, f).unwrap_or(Added::Nop);
                    match last {
                        Added::New(_) => added += 1,
                        Added::Updated(_) => updated += 1,
                        _ => {}
                    }
                    apply(z, m, last);
                }
                (added, updated, last)
            });
            let Some((added, updated, last)) = done else {
                return wrongtype();
            };
            if added > 0 {
                ctx.keyspace().signal_key_ready(ctx.db(), key);
            }
            count_changes(&shard, added + updated);
            reply(added, updated, last)
        }
    }
}

fn apply(z: &mut SortedSet, m: &[u8], what: Added) {
    match what {
        Added::New(s) => {
            // Copy: the argument may be a slice of the connection's buffer.
            z.insert(Bytes::copy_from_slice(m), s);
        }
        Added::Updated(s) => {
            z.update_score(m, s);
        }
        Added::Same(_) | Added::Nop => {}
    }
}

// ---------------------------------------------------------------------------
// Simple reads and ZREM

fn zrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let members = args.get(2..).unwrap_or_default();
    let mut shard = ctx.shard(key);
    match read(&mut shard, key) {
        Err(e) => return e,
        Ok(None) => return Frame::Integer(0),
        Ok(Some(z)) if !members.iter().any(|m| z.score(m).is_some()) => return Frame::Integer(0),
        Ok(Some(_)) => {}
    }
    let removed = modify(&mut shard, key, "zrem", |z| {
        members.iter().filter(|m| z.remove(m).is_some()).count()
    })
    .unwrap_or(0);
    count_changes(&shard, removed);
    int(removed)
}

fn zcard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    match read(&mut ctx.shard(key), key) {
        Err(e) => e,
        Ok(z) => int(z.map_or(0, SortedSet::len)),
    }
}

fn zscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    match read(&mut ctx.shard(key), key) {
        Err(e) => e,
        Ok(z) => z
            .and_then(|z| z.score(arg(args, 2)))
            .map_or(Frame::Null, Frame::Double),
    }
}

fn zmscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    match read(&mut ctx.shard(key), key) {
        Err(e) => e,
        Ok(z) => Frame::Array(
            args.iter()
                .skip(2)
                .map(|m| {
                    z.and_then(|z| z.score(m))
                        .map_or(Frame::Null, Frame::Double)
                })
                .collect(),
        ),
    }
}

fn zrank(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let rev = ctx.command() == "zrevrank";
    let key = arg(args, 1);
    match read(&mut ctx.shard(key), key) {
        Err(e) => e,
        Ok(z) => match z.and_then(|z| Some((z.rank(arg(args, 2))?, z.len()))) {
            None => Frame::Null,
            Some((r, len)) => int(if rev { len - 1 - r } else { r }),
        },
    }
}

fn zcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (Some(min), Some(max)) = (
        parse_score_bound(arg(args, 2)),
        parse_score_bound(arg(args, 3)),
    ) else {
        return err(ERR_MINMAX_FLOAT);
    };
    count_range(ctx, arg(args, 1), Range::Score(min, max))
}

fn zlexcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (Some(min), Some(max)) = (parse_lex(arg(args, 2)), parse_lex(arg(args, 3))) else {
        return err(ERR_MINMAX_LEX);
    };
    count_range(ctx, arg(args, 1), Range::Lex(min, max))
}

fn count_range(ctx: &mut Ctx<'_>, key: &[u8], range: Range<'_>) -> Frame {
    match read(&mut ctx.shard(key), key) {
        Err(e) => e,
        Ok(None) => Frame::Integer(0),
        Ok(Some(z)) => {
            let (a, b) = span(z, range);
            int(b - a)
        }
    }
}

// ---------------------------------------------------------------------------
// ZRANGE and its variants

/// How each command of the ZRANGE family reads its arguments.
#[derive(Clone, Copy, PartialEq)]
enum By {
    Auto,
    Rank,
    Score,
    Lex,
}

/// Redis' `zrangeGenericCommand`: ZRANGE, ZREVRANGE, Z[REV]RANGEBYSCORE,
/// Z[REV]RANGEBYLEX and ZRANGESTORE.
fn zrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let cmd = ctx.command();
    let store = cmd == "zrangestore";
    let (mut by, mut rev) = match cmd {
        "zrevrange" => (By::Rank, Some(true)),
        "zrangebyscore" => (By::Score, Some(false)),
        "zrevrangebyscore" => (By::Score, Some(true)),
        "zrangebylex" => (By::Lex, Some(false)),
        "zrevrangebylex" => (By::Lex, Some(true)),
        _ => (By::Auto, None),
    };
    let first = if store { 2 } else { 1 };
    let mut withscores = false;
    let mut limit = None;
    let mut j = first + 3;
    while let Some(a) = args.get(j) {
        let left = args.len() - j - 1;
        if !store && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && left >= 2 {
            let (o, c) = match (parse_int(arg(args, j + 1)), parse_int(arg(args, j + 2))) {
                (Ok(o), Ok(c)) => (o, c),
                (Err(e), _) | (_, Err(e)) => return e,
            };
            limit = Some((o, c));
            j += 2;
        } else if rev.is_none() && is(a, "rev") {
            rev = Some(true);
        } else if by == By::Auto && is(a, "bylex") {
            by = By::Lex;
        } else if by == By::Auto && is(a, "byscore") {
            by = By::Score;
        } else {
            return err(ERR_SYNTAX);
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    if by == By::Auto {
        by = By::Rank;
    }
    // Redis tells "no LIMIT" by a count of -1, so `LIMIT n -1` passes here.
    if limit.is_some_and(|(_, count)| count != -1) && by == By::Rank {
        return err(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        );
    }
    if by == By::Rank {
        // ... and then ignores it.
        limit = None;
    }
    if withscores && by == By::Lex {
        return err("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    }
    let (mut lo, mut hi) = (arg(args, first + 1), arg(args, first + 2));
    if rev && by != By::Rank {
        // Reversed score and lex ranges are written max first.
        std::mem::swap(&mut lo, &mut hi);
    }
    let range = match by {
        By::Score => match (parse_score_bound(lo), parse_score_bound(hi)) {
            (Some(min), Some(max)) => Range::Score(min, max),
            _ => return err(ERR_MINMAX_FLOAT),
        },
        By::Lex => match (parse_lex(lo), parse_lex(hi)) {
            (Some(min), Some(max)) => Range::Lex(min, max),
            _ => return err(ERR_MINMAX_LEX),
        },
        By::Rank | By::Auto => match (parse_int(lo), parse_int(hi)) {
            (Ok(a), Ok(b)) => Range::Rank(a, b),
            (Err(e), _) | (_, Err(e)) => return e,
        },
    };
    let src = arg(args, first);
    if store {
        return range_store(ctx, arg(args, 1), src, range, rev, limit);
    }
    let resp3 = resp3(ctx);
    let mut shard = ctx.shard(src);
    match read(&mut shard, src) {
        Err(e) => e,
        Ok(None) => Frame::Array(Vec::new()),
        Ok(Some(z)) => {
            let mut out = Vec::new();
            for (m, s) in select(z, range, rev, limit) {
                push_member(&mut out, m, s, withscores, resp3);
            }
            Frame::Array(out)
        }
    }
}

fn range_store(
    ctx: &mut Ctx<'_>,
    dst: &[u8],
    src: &[u8],
    range: Range<'_>,
    rev: bool,
    limit: Option<(i64, i64)>,
) -> Frame {
    let db = ctx.db();
    let mut locked = ctx.lock_keys([(db, src), (db, dst)]);
    // The source is read with `lookupKeyRead`.
    let reading = crate::stats::reads(true);
    let result = match read(locked.shard(db, src), src) {
        Err(e) => return e,
        Ok(None) => SortedSet::new(),
        Ok(Some(z)) => {
            let picked: Vec<(Bytes, f64)> = select(z, range, rev, limit).collect();
            // Redis sizes the destination by the result only for rank
            // ranges; the others start compact and convert while filling
            // (see `SortedSet::is_compact`), in reply order.
            let mut out = match range {
                Range::Rank(..) => SortedSet::with_size_hint(picked.len(), 0),
                Range::Score(..) | Range::Lex(..) => SortedSet::new(),
            };
            for (m, s) in picked {
                out.insert(m, s);
            }
            out
        }
    };
    drop(reading);
    store_result(ctx, locked.shard(db, dst), dst, result)
}

/// Stores a computed sorted set at `dst` (deleting `dst` when it is empty,
/// as Redis does) and replies with its size. The caller holds `dst`'s
/// shard, so a client blocked on `dst` is woken under the lock.
pub(crate) fn store_result(
    ctx: &Ctx<'_>,
    shard: &mut Shard<'_>,
    dst: &[u8],
    result: SortedSet,
) -> Frame {
    let n = result.len();
    if n == 0 {
        if shard.remove(dst).is_some() {
            shard.notify(Class::Generic, "del", dst);
        }
    } else {
        shard.set(dst, Value::ZSet(Arc::new(result)), None);
        // GEORADIUS and GEORADIUSBYMEMBER with STORE name their event
        // `georadiusstore`, as Redis' `georadiusGeneric`.
        let event = match ctx.command() {
            "georadius" | "georadiusbymember" => "georadiusstore",
            other => other,
        };
        shard.notify(Class::Zset, event, dst);
        ctx.keyspace().signal_key_ready(ctx.db(), dst);
    }
    int(n)
}

fn zremrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let (lo, hi) = (arg(args, 2), arg(args, 3));
    let range = match ctx.command() {
        "zremrangebyscore" => match (parse_score_bound(lo), parse_score_bound(hi)) {
            (Some(min), Some(max)) => Range::Score(min, max),
            _ => return err(ERR_MINMAX_FLOAT),
        },
        "zremrangebylex" => match (parse_lex(lo), parse_lex(hi)) {
            (Some(min), Some(max)) => Range::Lex(min, max),
            _ => return err(ERR_MINMAX_LEX),
        },
        _ => match (parse_int(lo), parse_int(hi)) {
            (Ok(a), Ok(b)) => Range::Rank(a, b),
            (Err(e), _) | (_, Err(e)) => return e,
        },
    };
    let mut shard = ctx.shard(key);
    let (a, b) = match read(&mut shard, key) {
        Err(e) => return e,
        Ok(None) => return Frame::Integer(0),
        Ok(Some(z)) => span(z, range),
    };
    if a >= b {
        return Frame::Integer(0);
    }
    let removed = modify(&mut shard, key, ctx.command(), |z| {
        let doomed: Vec<Bytes> = z.range(a, b).map(|(m, _)| m.clone()).collect();
        for m in &doomed {
            z.remove(m);
        }
        doomed.len()
    })
    .unwrap_or(0);
    count_changes(&shard, removed);
    int(removed)
}

// ---------------------------------------------------------------------------
// Pops and random members

/// Which end ZPOP* and ZMPOP take from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// Lowest scores first (ZPOPMIN, BZPOPMIN, ZMPOP MIN).
    Min,
    /// Highest scores first (ZPOPMAX, BZPOPMAX, ZMPOP MAX).
    Max,
}

/// Removes up to `count` members from the `end` of the sorted set at
/// `key`, deleting the key when it empties, counting one change per member
/// as Redis does. `Ok(empty)` when the key is absent (or `count` is 0),
/// `Err` with a WRONGTYPE reply when it holds another type.
///
/// The non-blocking core of ZPOPMIN/ZPOPMAX/ZMPOP, for the blocking
/// BZPOPMIN/BZPOPMAX/BZMPOP to call once a key is ready.
pub(crate) fn zpop(
    shard: &mut Shard<'_>,
    key: &[u8],
    end: End,
    count: usize,
) -> Result<Vec<(Bytes, f64)>, Frame> {
    match read(shard, key)? {
        None => return Ok(Vec::new()),
        Some(z) if z.is_empty() || count == 0 => return Ok(Vec::new()),
        Some(_) => {}
    }
    let event = match end {
        End::Min => "zpopmin",
        End::Max => "zpopmax",
    };
    let popped = modify(shard, key, event, |z| {
        let n = count.min(z.len());
        let picked: Vec<(Bytes, f64)> = match end {
            End::Min => z.range(0, n).map(|(m, s)| (m.clone(), s)).collect(),
            End::Max => z
                .range(z.len() - n, z.len())
                .rev()
                .map(|(m, s)| (m.clone(), s))
                .collect(),
        };
        for (m, _) in &picked {
            z.remove(m);
        }
        picked
    })
    .unwrap_or_default();
    count_changes(shard, popped.len());
    Ok(popped)
}

/// The reply of ZPOPMIN/ZPOPMAX for popped members: flat, except pairs
/// in RESP3 when a count was given.
pub(crate) fn pop_reply(popped: &[(Bytes, f64)], nested: bool) -> Frame {
    let mut out = Vec::with_capacity(popped.len() * 2);
    for (m, s) in popped {
        push_member(&mut out, m.clone(), *s, true, nested);
    }
    Frame::Array(out)
}

fn zpopminmax(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let end = if ctx.command() == "zpopmin" {
        End::Min
    } else {
        End::Max
    };
    let count = match args.get(2) {
        None => None,
        Some(c) if args.len() == 3 => match parse_int(c) {
            Ok(n) if n >= 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            _ => return err(ERR_POSITIVE),
        },
        Some(_) => return err(ERR_SYNTAX),
    };
    let nested = resp3(ctx) && count.is_some();
    let key = arg(args, 1);
    match zpop(&mut ctx.shard(key), key, end, count.unwrap_or(1)) {
        Err(e) => e,
        Ok(popped) => pop_reply(&popped, nested),
    }
}

/// Parses ZMPOP's and BZMPOP's `numkeys key... MIN|MAX [COUNT count]`
/// from `args[at]` on.
fn parse_zmpop(args: &[Bytes], at: usize) -> Result<(&[Bytes], End, usize), Frame> {
    let p = parse_mpop(args, at, ["min", "max"])?;
    let end = if p.first { End::Min } else { End::Max };
    Ok((p.keys, end, p.count))
}

/// The reply of ZMPOP/BZMPOP: `[key, [[member, score], ...]]` in both
/// protocols.
pub(crate) fn mpop_reply(key: &[u8], popped: &[(Bytes, f64)]) -> Frame {
    let items = popped
        .iter()
        .map(|(m, s)| Frame::Array(vec![Frame::Bulk(m.clone()), Frame::Double(*s)]))
        .collect();
    Frame::Array(vec![Frame::bulk(key), Frame::Array(items)])
}

/// The reply of BZPOPMIN/BZPOPMAX once a member was popped: the flat
/// `[key, member, score]` in both protocols. (A timeout replies
/// `Frame::NullArray`, as for BZMPOP.)
pub(crate) fn bzpop_reply(key: &[u8], member: Bytes, score: f64) -> Frame {
    Frame::Array(vec![
        Frame::bulk(key),
        Frame::Bulk(member),
        Frame::Double(score),
    ])
}

fn zmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (keys, end, count) = match parse_zmpop(args, 1) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let db = ctx.db();
    // All keys locked together: the first non-empty one wins atomically.
    let mut locked = ctx.lock_keys(keys.iter().map(|k| (db, &k[..])));
    for k in keys {
        match zpop(locked.shard(db, k), k, end, count) {
            Err(e) => return e,
            Ok(popped) if popped.is_empty() => {}
            Ok(popped) => return mpop_reply(k, &popped),
        }
    }
    Frame::NullArray
}

fn zrandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    // Redis' order: the count first, then the arity and WITHSCORES, then
    // the WITHSCORES range.
    let (count, withscores) = if args.len() == 2 {
        (None, false)
    } else {
        let n = match parse_random_count(arg(args, 2)) {
            Ok(n) => n,
            Err(e) => return e,
        };
        let withscores = match args.get(3) {
            None => false,
            Some(w) if args.len() == 4 && is(w, "withscores") => true,
            Some(_) => return err(ERR_SYNTAX),
        };
        if withscores && !(-i64::MAX / 2..=i64::MAX / 2).contains(&n) {
            return err("ERR value is out of range");
        }
        (Some(n), withscores)
    };
    let resp3 = resp3(ctx);
    let budget = ctx.reply_budget().unwrap_or(usize::MAX);
    let mut shard = ctx.shard(key);
    let z = match read(&mut shard, key) {
        Err(e) => return e,
        Ok(None) => {
            return if count.is_some() {
                Frame::Array(Vec::new())
            } else {
                Frame::Null
            };
        }
        Ok(Some(z)) => z,
    };
    let mut rng = rand::rng();
    let len = z.len();
    let Some(count) = count else {
        let r = rng.random_range(0..len.max(1));
        return z
            .get_by_rank(r)
            .map_or(Frame::Null, |(m, _)| Frame::Bulk(m.clone()));
    };
    let mut out = Vec::new();
    if count < 0 {
        // Repetitions allowed: |count| independent draws.
        let Some(RandomCount::Repeated(n)) = random_count(count) else {
            return err("ERR value is out of range");
        };
        // Past the client's output limit the connection is closed anyway:
        // stop drawing there (see `limits::bounded_draws`).
        let mut bytes = 0usize;
        for _ in 0..n {
            if bytes >= budget {
                break;
            }
            if let Some((m, s)) = z.get_by_rank(rng.random_range(0..len.max(1))) {
                bytes = bytes.saturating_add(m.len() + 32);
                push_member(&mut out, m, s, withscores, resp3);
            }
        }
    } else {
        let n = usize::try_from(count).unwrap_or(usize::MAX).min(len);
        for r in sample(&mut rng, len, n) {
            if let Some((m, s)) = z.get_by_rank(r) {
                push_member(&mut out, m, s, withscores, resp3);
            }
        }
    }
    Frame::Array(out)
}

// ---------------------------------------------------------------------------
// ZUNION / ZINTER / ZDIFF and their STORE forms, ZINTERCARD

#[derive(Clone, Copy, PartialEq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// Redis' `zunionInterAggregate`, comparisons included: MIN and MAX keep
/// the accumulator on ties and NaN, and a NaN sum (inf + -inf) becomes 0.
fn aggregate(agg: Aggregate, acc: f64, v: f64) -> f64 {
    match agg {
        Aggregate::Sum => {
            let s = acc + v;
            if s.is_nan() { 0.0 } else { s }
        }
        Aggregate::Min => {
            if v < acc {
                v
            } else {
                acc
            }
        }
        Aggregate::Max => {
            if v > acc {
                v
            } else {
                acc
            }
        }
    }
}

/// One input of the set algebra: a sorted set, or a plain set whose
/// members all score 1.
enum Input {
    Z(Arc<SortedSet>),
    S(Arc<crate::value::HashSetBytes>),
    Empty,
}

impl Input {
    fn len(&self) -> usize {
        match self {
            Input::Z(z) => z.len(),
            Input::S(s) => s.len(),
            Input::Empty => 0,
        }
    }

    fn score(&self, m: &[u8]) -> Option<f64> {
        match self {
            Input::Z(z) => z.score(m),
            Input::S(s) => s.contains(m).then_some(1.0),
            Input::Empty => None,
        }
    }

    fn for_each(&self, mut f: impl FnMut(&Bytes, f64)) {
        match self {
            Input::Z(z) => z.iter().for_each(|(m, s)| f(&m, s)),
            Input::S(s) => s.iter().for_each(|m| f(&m, 1.0)),
            Input::Empty => {}
        }
    }
}

/// Takes the inputs from their (locked) shards: O(1) each, as values sit
/// behind `Arc`s.
fn inputs(
    locked: &mut crate::engine::Locked<'_>,
    db: usize,
    keys: &[Bytes],
) -> Result<Vec<Input>, Frame> {
    keys.iter()
        .map(|k| match locked.shard(db, k).value(k) {
            None => Ok(Input::Empty),
            Some(Value::ZSet(z)) => Ok(Input::Z(z.clone())),
            Some(Value::Set(s)) => Ok(Input::S(s.clone())),
            Some(_) => Err(wrongtype()),
        })
        .collect()
}

/// The set algebra as Redis 7.0's `zunionInterDiffGenericCommand` does
/// it, down to the order of floating-point operations (which decides what
/// inf, -inf, NaN and -0 become): union and intersection take the inputs
/// from the smallest to the largest (a stable sort, as glibc's qsort is
/// for small arrays), a weighted score that is NaN becomes 0 except for
/// the probed inputs of an intersection, and the difference keeps the
/// first input's scores.
fn compute(op: SetOp, sets: &[Input], weights: &[f64], agg: Aggregate) -> Vec<(Bytes, f64)> {
    let mut order: Vec<(usize, &Input)> = sets.iter().enumerate().collect();
    if op != SetOp::Diff {
        order.sort_by_key(|(_, s)| s.len());
    }
    let weight = |i: usize| weights.get(i).copied().unwrap_or(1.0);
    let weighted = |i: usize, s: f64| {
        let v = s * weight(i);
        if v.is_nan() { 0.0 } else { v }
    };
    let mut acc: hashbrown::HashMap<Bytes, f64> = hashbrown::HashMap::new();
    match op {
        SetOp::Union => {
            for (i, set) in &order {
                set.for_each(|m, s| {
                    let v = weighted(*i, s);
                    match acc.get_mut(&m[..]) {
                        Some(a) => *a = aggregate(agg, *a, v),
                        None => {
                            acc.insert(m.clone(), v);
                        }
                    }
                });
            }
        }
        SetOp::Inter => {
            if let Some(((i0, base), rest)) = order.split_first() {
                base.for_each(|m, s| {
                    let mut total = weighted(*i0, s);
                    for (i, set) in rest {
                        let Some(v) = set.score(m) else { return };
                        total = aggregate(agg, total, v * weight(*i));
                    }
                    acc.insert(m.clone(), total);
                });
            }
        }
        SetOp::Diff => {
            if let Some(((_, first), rest)) = order.split_first() {
                first.for_each(|m, s| {
                    if rest.iter().all(|(_, o)| o.score(m).is_none()) {
                        acc.insert(m.clone(), s);
                    }
                });
            }
        }
    }
    // Kept as computed (a -0 stays -0 in the reply, as in Redis; storing
    // normalizes it) and sorted as the sorted set would be.
    let mut out: Vec<(Bytes, f64)> = acc.into_iter().collect();
    out.sort_unstable_by(|a, b| {
        a.1.partial_cmp(&b.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.0.cmp(&b.0))
    });
    out
}

fn zsetop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let cmd = ctx.command();
    let store = cmd.ends_with("store");
    let op = if cmd.starts_with("zunion") {
        SetOp::Union
    } else if cmd.starts_with("zinter") {
        SetOp::Inter
    } else {
        SetOp::Diff
    };
    let at = if store { 2 } else { 1 };
    let numkeys = match parse_int(arg(args, at)) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if numkeys < 1 {
        return Frame::error(format!(
            "ERR at least 1 input key is needed for '{cmd}' command"
        ));
    }
    let nk = usize::try_from(numkeys).unwrap_or(usize::MAX);
    let Some(keys) = (at + 1).checked_add(nk).and_then(|e| args.get(at + 1..e)) else {
        return err(ERR_SYNTAX);
    };
    let db = ctx.db();
    let dst = arg(args, 1);
    let resp3 = resp3(ctx);
    let lock = keys
        .iter()
        .map(|k| (db, &k[..]))
        .chain(store.then_some((db, dst)));
    let mut locked = ctx.lock_keys(lock);
    // Redis opens the inputs (WRONGTYPE) before it parses the options,
    // with `lookupKeyRead` in the storing forms too.
    let reading = crate::stats::reads(true);
    let sets = match inputs(&mut locked, db, keys) {
        Ok(s) => s,
        Err(e) => return e,
    };
    drop(reading);
    let (weights, agg, withscores) = match setop_options(args, at + 1 + nk, nk, op, store) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let result = compute(op, &sets, &weights, agg);
    if store {
        let longest = result.iter().map(|(m, _)| m.len()).max().unwrap_or(0);
        let mut z = SortedSet::with_size_hint(result.len(), longest);
        for (m, s) in result {
            z.insert(m, s);
        }
        return store_result(ctx, locked.shard(db, dst), dst, z);
    }
    let mut out = Vec::with_capacity(result.len() * if withscores && !resp3 { 2 } else { 1 });
    for (m, s) in result {
        push_member(&mut out, m, s, withscores, resp3);
    }
    Frame::Array(out)
}

/// WEIGHTS, AGGREGATE and WITHSCORES of ZUNION/ZINTER/ZDIFF (and their
/// STORE forms) from `args[from..]`, with Redis 7.0's error replies.
fn setop_options(
    args: &[Bytes],
    from: usize,
    nk: usize,
    op: SetOp,
    store: bool,
) -> Result<(Vec<f64>, Aggregate, bool), Frame> {
    let mut weights = Vec::new();
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut j = from;
    while let Some(a) = args.get(j) {
        let left = args.len() - j - 1;
        if op != SetOp::Diff && is(a, "weights") && left >= nk {
            for w in args.get(j + 1..j + 1 + nk).unwrap_or_default() {
                match parse_score(w) {
                    Some(v) => weights.push(v),
                    None => return Err(err("ERR weight value is not a float")),
                }
            }
            j += nk;
        } else if op != SetOp::Diff && is(a, "aggregate") && left >= 1 {
            let w = arg(args, j + 1);
            agg = if is(w, "sum") {
                Aggregate::Sum
            } else if is(w, "min") {
                Aggregate::Min
            } else if is(w, "max") {
                Aggregate::Max
            } else {
                return Err(err(ERR_SYNTAX));
            };
            j += 1;
        } else if !store && is(a, "withscores") {
            withscores = true;
        } else {
            return Err(err(ERR_SYNTAX));
        }
        j += 1;
    }
    Ok((weights, agg, withscores))
}

fn zintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let numkeys = match parse_int(arg(args, 1)) {
        Ok(n) => n,
        Err(e) => return e,
    };
    if numkeys < 1 {
        return err("ERR at least 1 input key is needed for 'zintercard' command");
    }
    let nk = usize::try_from(numkeys).unwrap_or(usize::MAX);
    let Some(keys) = 2usize.checked_add(nk).and_then(|e| args.get(2..e)) else {
        return err(ERR_SYNTAX);
    };
    let db = ctx.db();
    let mut locked = ctx.lock_keys(keys.iter().map(|k| (db, &k[..])));
    let sets = match inputs(&mut locked, db, keys) {
        Ok(s) => s,
        Err(e) => return e,
    };
    // As in Redis, the inputs' types are checked before LIMIT.
    let mut limit = 0usize;
    let mut j = 2 + nk;
    while let Some(a) = args.get(j) {
        if is(a, "limit") && args.get(j + 1).is_some() {
            match parse_int(arg(args, j + 1)) {
                Ok(n) if n >= 0 => limit = usize::try_from(n).unwrap_or(usize::MAX),
                _ => return err("ERR LIMIT can't be negative"),
            }
            j += 2;
        } else {
            return err(ERR_SYNTAX);
        }
    }
    let Some(small) = sets.iter().min_by_key(|s| s.len()) else {
        return Frame::Integer(0);
    };
    let mut n = 0usize;
    small.for_each(|m, _| {
        if (limit == 0 || n < limit) && sets.iter().all(|s| s.score(m).is_some()) {
            n += 1;
        }
    });
    int(n)
}

// ---------------------------------------------------------------------------
// ZSCAN

/// Small sets come back whole with cursor 0, like Redis' listpack sets.
/// Larger ones are walked in ascending order of a hash of the member: the
/// cursor is the next hash to return, so a member present for the whole
/// scan is returned exactly once whatever is added or removed meanwhile
/// (a member's hash never changes), at O(n) per call (Redis' dict scan is
/// O(COUNT); a full scan of a large set here costs O(n^2 / COUNT)).
fn zscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    // Redis' order of checks, as for HSCAN: cursor, then the key, then
    // the options.
    let Some(cursor) = parse_cursor(arg(args, 2)) else {
        return err("ERR invalid cursor");
    };
    let hasher = ctx.keyspace().engine();
    let mut shard = ctx.shard(key);
    let z = match read(&mut shard, key) {
        Err(e) => return e,
        Ok(None) => return Frame::Array(vec![Frame::bulk("0"), Frame::Array(Vec::new())]),
        Ok(Some(z)) => z,
    };
    let opts = match parse_scan_opts(args, 3, false) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let (pattern, count) = (opts.pattern, opts.count);
    let keep = |m: &[u8]| pattern.is_none_or(|p| glob_match(p, m, false));
    let mut out = Vec::new();
    let compact = z.is_compact();
    let push = |out: &mut Vec<Frame>, m: Bytes, s: f64| {
        out.push(Frame::Bulk(m));
        // A listpack holds scores as Redis' `d2string` wrote them; a
        // skiplist's are formatted like every other score reply.
        let text = if compact {
            d2string(s)
        } else {
            cairn_resp::format_double(s)
        };
        out.push(Frame::Bulk(Bytes::from(text)));
    };
    if compact {
        for (m, s) in z.iter().filter(|(m, _)| keep(m)) {
            push(&mut out, m, s);
        }
        return Frame::Array(vec![Frame::bulk("0"), Frame::Array(out)]);
    }
    // 63-bit hashes plus one: never 0 (the cursor that means "done") and
    // never overflowing.
    let h = |m: &[u8]| (hasher.key_hash(m) >> 1) + 1;
    let mut found: Vec<(u64, Bytes, f64)> = z
        .iter()
        .map(|(m, s)| (h(&m), m, s))
        .filter(|(hm, _, _)| *hm >= cursor)
        .collect();
    let mut next = 0u64;
    if found.len() > count {
        // Only the `count` smallest hashes matter: a selection, not a sort.
        found.select_nth_unstable_by_key(count, |(hm, _, _)| *hm);
        let cut = found.get(count).map_or(0, |(hm, _, _)| *hm);
        // Members of equal hash are never split across two calls: stop
        // before `cut`, or, when the first count+1 all share it (a 63-bit
        // collision), take that whole hash and go on after it.
        let end = if found.iter().any(|(hm, _, _)| *hm < cut) {
            next = cut;
            cut
        } else {
            next = found
                .iter()
                .map(|(hm, _, _)| *hm)
                .filter(|hm| *hm > cut)
                .min()
                .unwrap_or(0);
            cut + 1
        };
        found.retain(|(hm, _, _)| *hm < end);
    }
    for (_, m, sc) in found {
        if keep(&m) {
            push(&mut out, m, sc);
        }
    }
    Frame::Array(vec![
        Frame::Bulk(Bytes::from(next.to_string())),
        Frame::Array(out),
    ])
}

// ---------------------------------------------------------------------------
// Blocking pops: BZPOPMIN, BZPOPMAX, BZMPOP

/// What a client blocked by BZPOPMIN/BZPOPMAX/BZMPOP waits to do once a key
/// it watches is ready; the sorted-set family's serve callback.
#[derive(Clone, Copy, Debug)]
struct BlockedPop {
    end: End,
    /// `None`: BZPOPMIN's `[key, member, score]`; Some: BZMPOP's
    /// `[key, [[member, score]...]]`.
    count: Option<usize>,
}

impl BlockedOp for BlockedPop {
    fn serve(&self, locked: &mut Locked<'_>, db: usize, key: &[u8]) -> Served {
        match locked.shard(db, key).value(key) {
            Some(Value::ZSet(z)) if !z.is_empty() => {}
            None | Some(Value::ZSet(_)) => return Served::Nothing,
            // Another type (a list a BLPOP waiter may take).
            Some(_) => return Served::WrongKind,
        }
        match zpop(
            locked.shard(db, key),
            key,
            self.end,
            self.count.unwrap_or(1),
        ) {
            Ok(v) if !v.is_empty() => Served::Reply(blocked_pop_reply(key, v, self.count), None),
            _ => Served::Nothing,
        }
    }
}

fn blocked_pop_reply(key: &[u8], mut popped: Vec<(Bytes, f64)>, count: Option<usize>) -> Frame {
    match count {
        None => {
            let (m, score) = popped.swap_remove(0);
            bzpop_reply(key, m, score)
        }
        Some(_) => mpop_reply(key, &popped),
    }
}

/// The non-blocking attempt of the blocking pops: pops from the first
/// existing key (`None` when every key is absent).
fn try_pop_zsets(
    locked: &mut Locked<'_>,
    db: usize,
    keys: &[Bytes],
    op: BlockedPop,
) -> Option<Frame> {
    for key in keys {
        match zpop(locked.shard(db, key), key, op.end, op.count.unwrap_or(1)) {
            Ok(v) if v.is_empty() => continue,
            // The ZPOP core counts its own changes.
            Ok(v) => return Some(blocked_pop_reply(key, v, op.count)),
            Err(e) => return Some(e),
        }
    }
    None
}

/// Pops at once, or blocks the client on `keys` until one can be served.
fn pop_or_block(ctx: &mut Ctx<'_>, keys: &[Bytes], op: BlockedPop, timeout: &[u8]) -> Frame {
    let timeout = match parse_timeout(timeout) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let db = ctx.db();
    let mut locked = ctx.lock_keys(keys.iter().map(|k| (db, &k[..])));
    if let Some(f) = try_pop_zsets(&mut locked, db, keys, op) {
        return f;
    }
    block_or_timeout(
        ctx,
        keys.to_vec(),
        Arc::new(op),
        timeout,
        Frame::NullArray,
        Frame::NullArray,
    )
}

fn bzpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let end = if ctx.command() == "bzpopmin" {
        End::Min
    } else {
        End::Max
    };
    let keys = args.get(1..args.len() - 1).unwrap_or_default();
    let op = BlockedPop { end, count: None };
    pop_or_block(ctx, keys, op, arg(args, args.len() - 1))
}

fn bzmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (keys, end, count) = match parse_zmpop(args, 2) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let op = BlockedPop {
        end,
        count: Some(count),
    };
    pop_or_block(ctx, keys, op, arg(args, 1))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pop_helpers_for_the_blocking_commands() {
        let ks = crate::Keyspace::new();
        let mut s = ks.session();
        s.command(&["zadd", "z", "1", "a", "2", "b", "3", "c"]);
        s.command(&["set", "str", "x"]);
        let engine = ks.engine();
        let mut shard = engine.lock(0, b"z", 0);
        let popped = zpop(&mut shard, b"z", End::Max, 2).unwrap();
        assert_eq!(
            popped,
            vec![(Bytes::from("c"), 3.0), (Bytes::from("b"), 2.0)]
        );
        assert_eq!(
            bzpop_reply(b"z", Bytes::from("a"), 1.0),
            Frame::Array(vec![Frame::bulk("z"), Frame::bulk("a"), Frame::Double(1.0)])
        );
        assert_eq!(
            zpop(&mut shard, b"z", End::Min, 5).unwrap(),
            vec![(Bytes::from("a"), 1.0)]
        );
        assert!(
            !shard.contains(b"z"),
            "popping the last member deletes the key"
        );
        assert_eq!(zpop(&mut shard, b"z", End::Min, 5).unwrap(), vec![]);
        drop(shard);
        let mut shard = engine.lock(0, b"str", 0);
        assert!(
            zpop(&mut shard, b"str", End::Min, 1)
                .unwrap_err()
                .is_error()
        );
        drop(shard);
        let args: Vec<Bytes> = ["bzmpop", "0", "2", "k1", "k2", "MAX", "COUNT", "3"]
            .iter()
            .map(|a| Bytes::from(*a))
            .collect();
        let (keys, end, count) = parse_zmpop(&args, 2).unwrap();
        assert_eq!((keys.len(), end, count), (2, End::Max, 3));
        let bad: Vec<Bytes> = ["bzmpop", "0", "1", "k1", "left"]
            .iter()
            .map(|a| Bytes::from(*a))
            .collect();
        assert!(parse_zmpop(&bad, 2).is_err());
    }

    #[test]
    fn range_bounds_follow_zsl_parse_range() {
        assert_eq!(parse_score_bound(b""), Some((0.0, false)));
        assert_eq!(parse_score_bound(b"("), Some((0.0, true)));
        assert_eq!(parse_score_bound(b" 1"), Some((1.0, false)));
        assert_eq!(parse_score_bound(b"(1e400"), Some((f64::INFINITY, true)));
        assert_eq!(parse_score_bound(b"1 "), None);
        assert_eq!(parse_score_bound(b"  "), None);
        assert_eq!(parse_score_bound(b"nan"), None);
    }
}
