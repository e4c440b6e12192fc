//! Hash commands: HSET, HGET, HDEL, HINCRBY, HRANDFIELD, HSCAN and friends.
//!
//! The helpers the set family shares with it (element scans, random
//! counts) are in [`super::args`]; the `long double` arithmetic of
//! HINCRBYFLOAT in [`crate::num::ld`].

use crate::notify::Class;
use std::sync::Arc;

use bytes::Bytes;
use cairn_resp::{Frame, Protocol};

use super::args::{
    RandomCount, arg, empty_scan, owned, parse_cursor, parse_random_count, parse_scan_opts,
    random_count, scan_step,
};
use super::{Ctx, ERR_NOT_FLOAT, ERR_SYNTAX, TableBuilder, err, int, is, parse_int};
use crate::hashed::with_rng;
use crate::num::ld;
use crate::num::string2ll;
use crate::value::{HashMapBytes, Value};

pub(crate) fn register(t: &mut TableBuilder) {
    t.redis("hset", hset);
    t.redis("hmset", hset);
    t.redis("hsetnx", hsetnx);
    t.redis("hget", hget);
    t.redis("hmget", hmget);
    t.redis("hgetall", hgetall);
    t.redis("hkeys", hkeys);
    t.redis("hvals", hvals);
    t.redis("hdel", hdel);
    t.redis("hlen", hlen);
    t.redis("hexists", hexists);
    t.redis("hstrlen", hstrlen);
    t.redis("hincrby", hincrby);
    t.redis("hincrbyfloat", hincrbyfloat);
    t.redis("hrandfield", hrandfield);
    t.redis("hscan", hscan);
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
    shard.notify(Class::Hash, "hset", key);
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
    shard.notify(Class::Hash, "hset", key);
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
    shard.notify(Class::Hash, "hdel", key);
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
            shard.notify(Class::Hash, ctx.command(), key);
            Ok(new)
        }
        None => {
            let new = update(None)?;
            let mut h = HashMapBytes::with_capacity(1);
            h.insert(owned(field), new.clone());
            shard.set(key, Value::Hash(Arc::new(h)), None);
            shard.notify(Class::Hash, ctx.command(), key);
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
            Some(b) => string2ll(b).ok_or_else(|| err("ERR hash value is not an integer"))?,
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
        Some(RandomCount::Repeated(n)) => {
            let budget = ctx.reply_budget();
            with_rng(|rng| {
                crate::limits::bounded_draws(
                    n,
                    budget,
                    |(f, v): &(Bytes, Bytes)| f.len() + v.len(),
                    |k| h.sample_repeated(k, rng),
                )
            })
        }
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
    let opts = match parse_scan_opts(args, 3, false) {
        Ok(o) => o,
        Err(e) => return e,
    };
    scan_step(h.iter().map(|(f, v)| (f, Some(v))), cursor, &opts, |b| {
        engine.key_hash(b)
    })
}
