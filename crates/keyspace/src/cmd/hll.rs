//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST, on
//! strings in Redis' representation ([`crate::hll`]).

use crate::notify::Class;
use bytes::Bytes;
use cairn_resp::Frame;

use super::args::arg;
use super::{Ctx, TableBuilder, err, int, is, wrongtype};
use crate::engine::Shard;
use crate::hll::{self, Corrupt};
use crate::value::Value;

const ERR_NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
const ERR_CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";

/// Redis' default `hll-sparse-max-bytes`.
const DEFAULT_SPARSE_MAX: usize = 3000;

pub(crate) fn register(t: &mut TableBuilder) {
    t.redis("pfadd", pfadd);
    t.redis("pfcount", pfcount);
    t.redis("pfmerge", pfmerge);
    t.redis("pfdebug", pfdebug);
    t.redis("pfselftest", pfselftest);
}

impl From<Corrupt> for Frame {
    fn from(_: Corrupt) -> Frame {
        err(ERR_CORRUPT)
    }
}

/// `hll-sparse-max-bytes` as configured (CONFIG SET takes effect on the
/// next write).
fn sparse_max(ctx: &Ctx<'_>) -> usize {
    ctx.keyspace()
        .config_param("hll-sparse-max-bytes")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(DEFAULT_SPARSE_MAX)
}

/// The HLL bytes at `key`: `Ok(None)` when absent, WRONGTYPE for another
/// type, the HLL WRONGTYPE for a string that is not an HLL (an integer
/// included, as Redis' `isHLLObjectOrReply`).
fn read_hll<'s>(shard: &'s mut Shard<'_>, key: &[u8]) -> Result<Option<&'s [u8]>, Frame> {
    match shard.value(key) {
        None => Ok(None),
        Some(Value::Str(b)) if hll::is_hll(b) => Ok(Some(b)),
        Some(v) if v.is_string() => Err(err(ERR_NOT_HLL)),
        Some(_) => Err(wrongtype()),
    }
}

/// Replaces the bytes at existing `key` (TTL kept): one change, WATCH
/// touched.
fn store(shard: &mut Shard<'_>, key: &[u8], bytes: Vec<u8>) {
    match shard.entry_mut(key) {
        Some(mut e) => *e.value_mut() = Value::Str(bytes.into_boxed_slice()),
        None => {
            shard.set(key, Value::Str(bytes.into_boxed_slice()), None);
        }
    }
}

fn pfadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let elements = args.get(2..).unwrap_or_default();
    let max_sparse = sparse_max(ctx);
    let mut shard = ctx.shard(key);
    let cur = match read_hll(&mut shard, key) {
        Err(e) => return e,
        Ok(cur) => cur,
    };
    let Some(cur) = cur else {
        let mut h = hll::new_sparse();
        let mut result = Ok(());
        for e in elements {
            if let Err(c) = hll::add(&mut h, e, max_sparse) {
                result = Err(c);
                break;
            }
        }
        // Created, so changed, even with no element.
        hll::invalidate_cache(&mut h);
        shard.set(key, Value::Str(h.into_boxed_slice()), None);
        return match result {
            Ok(()) => {
                ctx.notify(Class::String, "pfadd", key);
                Frame::Integer(1)
            }
            Err(c) => c.into(),
        };
    };
    // Dense: registers are raised in place, and only when one changes (an
    // add that changes nothing leaves the key, its WATCH and the change
    // count alone, as in Redis).
    if hll::encoding(cur) == hll::DENSE {
        let regs = cur.get(hll::HDR..).unwrap_or_default();
        let raises: Vec<(usize, u8)> = elements
            .iter()
            .map(|e| hll::pat_len(e))
            .filter(|&(i, c)| c > hll::dense_get(regs, i))
            .collect();
        if raises.is_empty() {
            return Frame::Integer(0);
        }
        if let Some(mut e) = shard.entry_mut(key)
            && let Value::Str(b) = e.value_mut()
        {
            let regs = b.get_mut(hll::HDR..).unwrap_or_default();
            for (i, c) in raises {
                hll::dense_set(regs, i, c);
            }
            hll::invalidate_cache(b);
        }
        ctx.notify(Class::String, "pfadd", key);
        return Frame::Integer(1);
    }
    // Sparse (at most hll-sparse-max-bytes): edited on a copy.
    let mut h = cur.to_vec();
    let mut updated = false;
    let mut result = Ok(());
    for e in elements {
        match hll::add(&mut h, e, max_sparse) {
            Ok(changed) => updated |= changed,
            Err(c) => {
                result = Err(c);
                break;
            }
        }
    }
    if updated {
        // A sparse update invalidated the cache itself; a promotion to
        // dense did not.
        if result.is_ok() {
            hll::invalidate_cache(&mut h);
        }
        store(&mut shard, key, h);
    }
    match result {
        Ok(()) => {
            if updated {
                ctx.notify(Class::String, "pfadd", key);
            }
            Frame::Integer(i64::from(updated))
        }
        Err(c) => c.into(),
    }
}

fn pfcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let keys = args.get(1..).unwrap_or_default();
    if let [key] = keys {
        return pfcount_one(ctx, key);
    }
    let db = ctx.db();
    let mut locked = ctx.lock_keys(keys.iter().map(|k| (db, &k[..])));
    let mut max: Box<hll::Raw> = Box::new([0u8; hll::REGISTERS]);
    for k in keys {
        match read_hll(locked.shard(db, k), k) {
            Err(e) => return e,
            Ok(None) => {}
            Ok(Some(b)) => {
                if let Err(c) = hll::merge(&mut max, b) {
                    return c.into();
                }
            }
        }
    }
    Frame::Integer(i64::try_from(hll::count_raw(&max)).unwrap_or(i64::MAX))
}

/// PFCOUNT of one key: the cached cardinality, or a fresh count that is
/// then cached in the value (a write, as in Redis).
fn pfcount_one(ctx: &mut Ctx<'_>, key: &[u8]) -> Frame {
    let mut shard = ctx.shard(key);
    let b = match read_hll(&mut shard, key) {
        Err(e) => return e,
        Ok(None) => return Frame::Integer(0),
        Ok(Some(b)) => b,
    };
    let card = match hll::cached(b) {
        Some(c) => c,
        None => {
            let c = match hll::count(b) {
                Ok(c) => c,
                Err(c) => return c.into(),
            };
            if let Some(mut e) = shard.entry_mut(key)
                && let Value::Str(b) = e.value_mut()
            {
                hll::set_cache(b, c);
            }
            c
        }
    };
    Frame::Integer(i64::try_from(card).unwrap_or(i64::MAX))
}

fn pfmerge(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let dest = arg(args, 1);
    // The destination is one of the inputs, as in Redis.
    let keys = args.get(1..).unwrap_or_default();
    let max_sparse = sparse_max(ctx);
    let db = ctx.db();
    let mut locked = ctx.lock_keys(keys.iter().map(|k| (db, &k[..])));
    let mut max: Box<hll::Raw> = Box::new([0u8; hll::REGISTERS]);
    let mut use_dense = false;
    for k in keys {
        // `lookupKeyRead` for every input, the destination included.
        let _reading = crate::stats::reads(true);
        match read_hll(locked.shard(db, k), k) {
            Err(e) => return e,
            Ok(None) => {}
            Ok(Some(b)) => {
                use_dense |= hll::encoding(b) == hll::DENSE;
                if let Err(c) = hll::merge(&mut max, b) {
                    return c.into();
                }
            }
        }
    }
    let s = locked.shard(db, dest);
    let mut h = match read_hll(s, dest) {
        Ok(Some(b)) => b.to_vec(),
        _ => hll::new_sparse(),
    };
    if use_dense {
        h = match hll::to_dense(&h) {
            Ok(d) => d,
            Err(c) => return c.into(),
        };
    }
    for (i, &m) in max.iter().enumerate() {
        if m != 0 {
            // Redis ignores a failure here (the inputs were checked).
            let _ = hll::set(&mut h, i, m, max_sparse);
        }
    }
    hll::invalidate_cache(&mut h);
    store(s, dest, h);
    ctx.notify(Class::String, "pfadd", dest);
    Frame::ok()
}

fn pfdebug(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let sub = arg(args, 1);
    let key = arg(args, 2);
    let mut shard = ctx.shard(key);
    let b = match read_hll(&mut shard, key) {
        Err(e) => return e,
        Ok(None) => return err("ERR The specified key does not exist"),
        Ok(Some(b)) => b,
    };
    let name = String::from_utf8_lossy(sub);
    if !["getreg", "decode", "encoding", "todense"]
        .iter()
        .any(|n| is(sub, n))
    {
        return Frame::error(format!("ERR Unknown PFDEBUG subcommand '{name}'"));
    }
    if args.len() != 3 {
        return Frame::error(format!(
            "ERR Wrong number of arguments for the '{name}' subcommand"
        ));
    }
    let sparse = hll::encoding(b) == hll::SPARSE;
    if is(sub, "encoding") {
        return Frame::simple(if sparse { "sparse" } else { "dense" });
    }
    if is(sub, "decode") {
        if !sparse {
            return err("ERR HLL encoding is not sparse");
        }
        return Frame::bulk(hll::decode(b));
    }
    // GETREG and TODENSE turn a sparse HLL dense (and store it so).
    let dense = match hll::to_dense(b) {
        Ok(d) => d,
        Err(c) => return c.into(),
    };
    let regs: Vec<Frame> = if is(sub, "getreg") {
        let r = dense.get(hll::HDR..).unwrap_or_default();
        (0..hll::REGISTERS)
            .map(|i| Frame::Integer(i64::from(hll::dense_get(r, i))))
            .collect()
    } else {
        Vec::new()
    };
    if sparse {
        store(&mut shard, key, dense);
    }
    if is(sub, "getreg") {
        Frame::Array(regs)
    } else {
        int(usize::from(sparse))
    }
}

fn pfselftest(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    let max_sparse = sparse_max(ctx);
    match hll::selftest(max_sparse, &mut rand::rng()) {
        Ok(()) => Frame::ok(),
        Err(e) => Frame::error(format!("ERR {e}")),
    }
}
