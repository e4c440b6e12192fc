//! Set commands: SADD, SREM, SPOP, SMOVE, the SINTER/SUNION/SDIFF
//! family, SSCAN and friends.
//!
//! Multi-key commands lock all their keys together, read each set by
//! cloning its `Arc` (O(1)), compute, and write the destination last, so a
//! destination that is also a source is read before it is replaced.

use crate::notify::Class;
use std::sync::Arc;

use bytes::Bytes;
use cairn_resp::Frame;

use super::args::{
    RandomCount, arg, empty_scan, owned, parse_cursor, parse_random_count, parse_scan_opts,
    random_count, scan_step,
};
use super::{Ctx, ERR_SYNTAX, TableBuilder, err, int, is, parse_int, wrongtype};
use crate::engine::Locked;
use crate::hashed::with_rng;
use crate::value::{HashSetBytes, Value};

pub(crate) fn register(t: &mut TableBuilder) {
    t.redis("sadd", sadd);
    t.redis("srem", srem);
    t.redis("smembers", smembers);
    t.redis("sismember", sismember);
    t.redis("smismember", smismember);
    t.redis("scard", scard);
    t.redis("spop", spop);
    t.redis("srandmember", srandmember);
    t.redis("smove", smove);
    t.redis("sinter", sinter);
    t.redis("sintercard", sintercard);
    t.redis("sinterstore", store);
    t.redis("sunion", sunion);
    t.redis("sunionstore", store);
    t.redis("sdiff", sdiff);
    t.redis("sdiffstore", store);
    t.redis("sscan", sscan);
}

/// The type check of a lookup: `Ok(None)` for a missing key.
fn read_set(v: Option<&Value>) -> Result<Option<&HashSetBytes>, Frame> {
    match v {
        None => Ok(None),
        Some(v) => v.as_set().map(Some).map_err(Frame::from),
    }
}

fn bulk(b: Bytes) -> Frame {
    Frame::Bulk(b)
}

fn sadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let members = args.get(2..).unwrap_or_default();
    let mut shard = ctx.shard(key);
    let added = match shard.entry_mut(key) {
        Some(mut e) => {
            match e.value().as_set() {
                Err(w) => return w.into(),
                // Nothing new: no write, so no copy of a set a view holds.
                Ok(s) if members.iter().all(|m| s.contains(&m[..])) => return Frame::Integer(0),
                Ok(_) => {}
            }
            let mut added = 0;
            if let Ok(s) = e.value_mut().as_set_mut() {
                for m in members {
                    let before = s.len();
                    // One lookup; copies the member only when it is new.
                    s.get_or_insert_with(&m[..], owned);
                    added += s.len() - before;
                }
            }
            added
        }
        None => {
            let mut s = HashSetBytes::with_capacity(members.len());
            for m in members {
                s.get_or_insert_with(&m[..], owned);
            }
            let n = s.len();
            shard.set(key, Value::Set(Arc::new(s)), None);
            n
        }
    };
    shard.add_changes(added.saturating_sub(1) as u64);
    if added > 0 {
        shard.notify(Class::Set, "sadd", key);
    }
    int(added)
}

fn srem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let members = args.get(2..).unwrap_or_default();
    let mut shard = ctx.shard(key);
    let Some(mut e) = shard.entry_mut(key) else {
        return Frame::Integer(0);
    };
    match e.value().as_set() {
        Err(w) => return w.into(),
        Ok(s) if !members.iter().any(|m| s.contains(&m[..])) => return Frame::Integer(0),
        Ok(_) => {}
    }
    let mut removed = 0;
    if let Ok(s) = e.value_mut().as_set_mut() {
        removed = members.iter().filter(|m| s.remove(&m[..])).count();
    }
    shard.notify(Class::Set, "srem", key);
    shard.remove_if_empty(key);
    shard.add_changes(removed.saturating_sub(1) as u64);
    int(removed)
}

fn smembers(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    match read_set(ctx.shard(key).value(key)) {
        Err(e) => e,
        Ok(s) => Frame::Set(s.map(|s| s.iter().map(bulk).collect()).unwrap_or_default()),
    }
}

fn sismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (key, m) = (arg(args, 1), arg(args, 2));
    match read_set(ctx.shard(key).value(key)) {
        Err(e) => e,
        Ok(s) => int(usize::from(s.is_some_and(|s| s.contains(m)))),
    }
}

fn smismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let members = args.get(2..).unwrap_or_default();
    match read_set(ctx.shard(key).value(key)) {
        Err(e) => e,
        Ok(s) => Frame::Array(
            members
                .iter()
                .map(|m| int(usize::from(s.is_some_and(|s| s.contains(&m[..])))))
                .collect(),
        ),
    }
}

fn scard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    match read_set(ctx.shard(key).value(key)) {
        Err(e) => e,
        Ok(s) => int(s.map_or(0, |s| s.len())),
    }
}

fn spop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let count = match args.get(2) {
        _ if args.len() > 3 => return err(ERR_SYNTAX),
        None => None,
        Some(raw) => match parse_int(raw) {
            Ok(n) if n >= 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            _ => return err("ERR value is out of range, must be positive"),
        },
    };
    let mut shard = ctx.shard(key);
    let Some(mut e) = shard.entry_mut(key) else {
        return if count.is_some() {
            Frame::Set(Vec::new())
        } else {
            Frame::Null
        };
    };
    let s = match e.value().as_set() {
        Ok(s) => s,
        Err(w) => return w.into(),
    };
    let picked: Vec<Bytes> = match count {
        Some(0) => return Frame::Set(Vec::new()),
        Some(n) if n >= s.len() => {
            let all: Vec<Frame> = s.iter().map(bulk).collect();
            shard.remove(key);
            shard.notify(Class::Set, "spop", key);
            shard.notify(Class::Generic, "del", key);
            // Redis counts one change per member popped here too.
            shard.add_changes(all.len().saturating_sub(1) as u64);
            return Frame::Set(all);
        }
        // Each pop is a uniform pick among the members left, so the
        // popped ones are a uniform subset in random order; each costs
        // O(1) expected, and shrinking the emptied table is amortized.
        Some(n) => match e.value_mut().as_set_mut() {
            Ok(s) => with_rng(|rng| (0..n).filter_map(|_| s.pop_random(rng)).collect()),
            Err(w) => return w.into(),
        },
        None => match e.value_mut().as_set_mut() {
            Ok(s) => with_rng(|rng| s.pop_random(rng)).into_iter().collect(),
            Err(w) => return w.into(),
        },
    };
    shard.notify(Class::Set, "spop", key);
    shard.remove_if_empty(key);
    shard.add_changes(picked.len().saturating_sub(1) as u64);
    match count {
        None => picked.into_iter().next().map_or(Frame::Null, Frame::Bulk),
        Some(_) => Frame::Set(picked.into_iter().map(Frame::Bulk).collect()),
    }
}

fn srandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    if args.len() > 3 {
        return err(ERR_SYNTAX);
    }
    let count = match args.get(2).map(|c| parse_random_count(c)) {
        None => None,
        Some(Ok(n)) => Some(n),
        Some(Err(e)) => return e,
    };
    let mut shard = ctx.shard(key);
    let s = match read_set(shard.value(key)) {
        Err(e) => return e,
        Ok(None) => {
            return if count.is_some() {
                Frame::Array(Vec::new())
            } else {
                Frame::Null
            };
        }
        Ok(Some(s)) => s,
    };
    let Some(count) = count else {
        return with_rng(|rng| s.random(rng)).map_or(Frame::Null, bulk);
    };
    let picked = match random_count(count) {
        None => return err("ERR value is out of range"),
        Some(RandomCount::Distinct(n)) => with_rng(|rng| s.sample_distinct(n, rng)),
        Some(RandomCount::Repeated(n)) => {
            let budget = ctx.reply_budget();
            with_rng(|rng| {
                crate::limits::bounded_draws(n, budget, Bytes::len, |k| s.sample_repeated(k, rng))
            })
        }
    };
    Frame::Array(picked.into_iter().map(bulk).collect())
}

fn smove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (src, dst, m) = (arg(args, 1), arg(args, 2), arg(args, 3));
    let db = ctx.db();
    let mut locked = ctx.lock_keys([(db, src), (db, dst)]);
    let src_has = match read_set(locked.shard(db, src).value(src)) {
        Err(e) => return e,
        Ok(None) => return Frame::Integer(0),
        Ok(Some(s)) => s.contains(m),
    };
    if let Err(e) = read_set(locked.shard(db, dst).value(dst)) {
        return e;
    }
    if src == dst || !src_has {
        return int(usize::from(src_has));
    }
    let s = locked.shard(db, src);
    if let Some(mut e) = s.entry_mut(src)
        && let Ok(set) = e.value_mut().as_set_mut()
    {
        set.remove(m);
    }
    s.notify(Class::Set, "srem", src);
    s.remove_if_empty(src);
    let d = locked.shard(db, dst);
    match d.entry_mut(dst) {
        Some(mut e) => {
            let present = e.value().as_set().is_ok_and(|s| s.contains(m));
            if !present && let Ok(set) = e.value_mut().as_set_mut() {
                set.insert(owned(m));
                d.notify(Class::Set, "sadd", dst);
            }
        }
        None => {
            let mut set = HashSetBytes::with_capacity(1);
            set.insert(owned(m));
            d.set(dst, Value::Set(Arc::new(set)), None);
            d.notify(Class::Set, "sadd", dst);
        }
    }
    Frame::Integer(1)
}

/// Which set algebra a command does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Inter,
    Union,
    Diff,
}

type Sets = Vec<Option<Arc<HashSetBytes>>>;

/// Reads the sets at `keys` under the command's lock (None: missing), or
/// replies WRONGTYPE if any key holds another type: Redis 7.0 checks every
/// key, even after a missing one. Cloning the `Arc`s is O(1); the caller
/// keeps the lock while it reads them so writers never have to copy.
fn load_sets(locked: &mut Locked<'_>, db: usize, keys: &[Bytes]) -> Result<Sets, Frame> {
    // `lookupKeyRead`, by the storing forms too.
    let _reading = crate::stats::reads(true);
    let mut sets = Vec::with_capacity(keys.len());
    for k in keys {
        match locked.shard(db, k).value(k) {
            None => sets.push(None),
            Some(Value::Set(s)) => sets.push(Some(Arc::clone(s))),
            Some(_) => return Err(wrongtype()),
        }
    }
    Ok(sets)
}

fn algebra(ctx: &mut Ctx<'_>, args: &[Bytes], op: Op) -> Frame {
    let keys = args.get(1..).unwrap_or_default();
    let db = ctx.db();
    let mut locked = ctx.lock_keys(keys.iter().map(|k| (db, &k[..])));
    match load_sets(&mut locked, db, keys) {
        Ok(sets) => Frame::Set(compute(op, &sets, 0).into_iter().map(bulk).collect()),
        Err(e) => e,
    }
}

fn sinter(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    algebra(ctx, args, Op::Inter)
}

fn sunion(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    algebra(ctx, args, Op::Union)
}

fn sdiff(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    algebra(ctx, args, Op::Diff)
}

/// SINTERSTORE, SUNIONSTORE, SDIFFSTORE: the destination is replaced (any
/// type, its expiry cleared) or deleted when the result is empty.
fn store(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let op = match ctx.command() {
        "sinterstore" => Op::Inter,
        "sunionstore" => Op::Union,
        _ => Op::Diff,
    };
    let dst = arg(args, 1);
    let keys = args.get(2..).unwrap_or_default();
    let db = ctx.db();
    let mut locked = ctx.lock_keys(args.iter().skip(1).map(|k| (db, &k[..])));
    let sets = match load_sets(&mut locked, db, keys) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let result: HashSetBytes = compute(op, &sets, 0).into_iter().collect();
    let n = result.len();
    let shard = locked.shard(db, dst);
    if n == 0 {
        if shard.remove(dst).is_some() {
            shard.notify(Class::Generic, "del", dst);
        }
    } else {
        shard.set(dst, Value::Set(Arc::new(result)), None);
        shard.notify(Class::Set, ctx.command(), dst);
    }
    int(n)
}

fn sintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let numkeys = match parse_int(arg(args, 1)) {
        Ok(n) if n >= 1 => n.unsigned_abs(),
        _ => return err("ERR numkeys should be greater than 0"),
    };
    if numkeys > (args.len() as u64).saturating_sub(2) {
        return err("ERR Number of keys can't be greater than number of args");
    }
    // Bounded by the argument count just above.
    let end = 2 + numkeys as usize;
    let keys = args.get(2..end).unwrap_or_default();
    let mut limit = 0;
    let mut i = end;
    while let Some(opt) = args.get(i) {
        match args.get(i + 1) {
            Some(v) if is(opt, "limit") => match parse_int(v) {
                Ok(n) if n >= 0 => limit = usize::try_from(n).unwrap_or(usize::MAX),
                _ => return err("ERR LIMIT can't be negative"),
            },
            _ => return err(ERR_SYNTAX),
        }
        i += 2;
    }
    let db = ctx.db();
    let mut locked = ctx.lock_keys(keys.iter().map(|k| (db, &k[..])));
    match load_sets(&mut locked, db, keys) {
        Ok(sets) => int(compute(Op::Inter, &sets, limit).len()),
        Err(e) => e,
    }
}

fn sscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    // Redis' order of checks: cursor, then the key, then the options.
    let Some(cursor) = parse_cursor(arg(args, 2)) else {
        return err("ERR invalid cursor");
    };
    let engine = ctx.keyspace().engine();
    let mut shard = ctx.shard(key);
    let s = match read_set(shard.value(key)) {
        Err(e) => return e,
        Ok(None) => return empty_scan(),
        Ok(Some(s)) => s,
    };
    let opts = match parse_scan_opts(args, 3, false) {
        Ok(o) => o,
        Err(e) => return e,
    };
    scan_step(s.iter().map(|m| (m, None)), cursor, &opts, |b| {
        engine.key_hash(b)
    })
}

/// The members of the result, borrowed from `sets`; `limit` (0: none)
/// stops an intersection early (SINTERCARD).
fn compute(op: Op, sets: &Sets, limit: usize) -> Vec<Bytes> {
    match op {
        Op::Inter => {
            let mut refs = Vec::with_capacity(sets.len());
            for s in sets {
                match s {
                    // Intersection with a missing (empty) set is empty.
                    None => return Vec::new(),
                    Some(s) => refs.push(&**s),
                }
            }
            refs.sort_by_key(|s| s.len());
            let Some((first, rest)) = refs.split_first() else {
                return Vec::new();
            };
            let mut out = Vec::new();
            for m in first.iter() {
                if rest.iter().all(|s| s.contains(&m)) {
                    out.push(m);
                    if out.len() == limit {
                        break;
                    }
                }
            }
            out
        }
        Op::Union => {
            let mut seen: hashbrown::HashSet<Bytes> = hashbrown::HashSet::new();
            for s in sets.iter().flatten() {
                seen.extend(s.iter());
            }
            seen.into_iter().collect()
        }
        Op::Diff => {
            let Some(Some(first)) = sets.first() else {
                return Vec::new();
            };
            let rest: Vec<&HashSetBytes> = sets.iter().skip(1).flatten().map(|s| &**s).collect();
            first
                .iter()
                .filter(|m| !rest.iter().any(|s| s.contains(m)))
                .collect()
        }
    }
}
