//! Generic key commands: DEL, EXISTS, EXPIRE family, TTL, TYPE, RENAME,
//! KEYS, SCAN, RANDOMKEY, MOVE.

use crate::notify::Class;
use bytes::Bytes;
use cairn_resp::Frame;
use rand::Rng;

use super::args::{arg, parse_cursor, parse_scan_opts};
use super::{Ctx, ERR_SYNTAX, TableBuilder, err, int, is, parse_int};
use crate::glob::glob_match;
use crate::value::ValueType;

pub(crate) fn register(t: &mut TableBuilder) {
    t.redis("del", del);
    t.redis("unlink", del);
    t.redis("exists", exists);
    t.redis("touch", touch);
    t.redis("expire", expire);
    t.redis("pexpire", expire);
    t.redis("expireat", expire);
    t.redis("pexpireat", expire);
    t.redis("ttl", ttl);
    t.redis("pttl", ttl);
    t.redis("expiretime", ttl);
    t.redis("pexpiretime", ttl);
    t.redis("persist", persist);
    t.redis("type", key_type);
    t.redis("rename", rename);
    t.redis("renamenx", rename);
    t.redis("move", move_key);
    t.redis("copy", copy);
    t.redis("keys", keys);
    t.redis("scan", scan);
    t.redis("randomkey", randomkey);
}

fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let db = ctx.db();
    let keys = args.get(1..).unwrap_or_default();
    if let [k] = keys {
        let gone = ctx.shard(k).remove(k).is_some();
        if gone {
            ctx.notify(Class::Generic, "del", k);
        }
        return int(usize::from(gone));
    }
    let mut locked = ctx.lock_keys(keys.iter().map(|k| (db, &k[..])));
    int(keys
        .iter()
        .filter(|k| {
            let gone = locked.shard(db, k).remove(k).is_some();
            if gone {
                ctx.notify(Class::Generic, "del", k);
            }
            gone
        })
        .count())
}

fn exists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    // Duplicates count each time, as in Redis.
    int(args
        .iter()
        .skip(1)
        // Not an access to the key (Redis' LOOKUP_NOTOUCH).
        .filter(|k| ctx.shard(k).get_untouched(k).is_some())
        .count())
}

/// TOUCH: EXISTS that counts as an access to each key.
fn touch(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    int(args
        .iter()
        .skip(1)
        .filter(|k| ctx.shard(k).contains(k))
        .count())
}

fn expire(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let cmd = ctx.command();
    let key = arg(args, 1);
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in args.iter().skip(3) {
        if is(opt, "nx") {
            nx = true;
        } else if is(opt, "xx") {
            xx = true;
        } else if is(opt, "gt") {
            gt = true;
        } else if is(opt, "lt") {
            lt = true;
        } else {
            return Frame::error(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(opt)
            ));
        }
    }
    if nx && (xx || gt || lt) {
        return err("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return err("ERR GT and LT options at the same time are not compatible");
    }
    let n = match parse_int(arg(args, 2)) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let invalid = || Frame::error(format!("ERR invalid expire time in '{cmd}' command"));
    let secs = cmd == "expire" || cmd == "expireat";
    let ms = if secs {
        match n.checked_mul(1000) {
            Some(ms) => ms,
            None => return invalid(),
        }
    } else {
        n
    };
    let base = if cmd.ends_with("at") { 0 } else { ctx.now_ms() };
    let Some(when) = ms.checked_add(base) else {
        return invalid();
    };
    let now = ctx.now_ms();
    let mut shard = ctx.shard(key);
    let Some(mut e) = shard.entry_mut(key) else {
        return Frame::Integer(0);
    };
    let cur = e.expires_at_ms();
    let refused = (nx && cur.is_some())
        || (xx && cur.is_none())
        || (gt && cur.is_none_or(|c| when <= c))
        || (lt && cur.is_some_and(|c| when >= c));
    if refused {
        return Frame::Integer(0);
    }
    if when <= now {
        shard.remove(key);
        ctx.notify(Class::Generic, "del", key);
    } else {
        e.set_expires_at_ms(Some(when));
        ctx.notify(Class::Generic, "expire", key);
    }
    Frame::Integer(1)
}

fn ttl(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let cmd = ctx.command();
    let key = arg(args, 1);
    let now = ctx.now_ms();
    let mut shard = ctx.shard(key);
    let Some(e) = shard.get_untouched(key) else {
        return Frame::Integer(-2);
    };
    let Some(at) = e.expires_at_ms() else {
        return Frame::Integer(-1);
    };
    Frame::Integer(match cmd {
        "ttl" => ((at - now).max(0) + 500) / 1000,
        "pttl" => (at - now).max(0),
        "expiretime" => (at + 500) / 1000,
        _ => at,
    })
}

fn persist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let mut shard = ctx.shard(key);
    match shard.entry_mut(key) {
        Some(mut e) if e.expires_at_ms().is_some() => {
            e.set_expires_at_ms(None);
            ctx.notify(Class::Generic, "persist", key);
            Frame::Integer(1)
        }
        _ => Frame::Integer(0),
    }
}

fn key_type(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let name = ctx
        .shard(key)
        .get_untouched(key)
        .map(|e| e.value().value_type().name())
        .unwrap_or("none");
    Frame::simple(name)
}

fn rename(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let nx = ctx.command() == "renamenx";
    let (src, dst) = (arg(args, 1), arg(args, 2));
    let db = ctx.db();
    let mut locked = ctx.lock_keys([(db, src), (db, dst)]);
    let Some(entry) = locked.shard(db, src).get(src).cloned() else {
        return err("ERR no such key");
    };
    if src == dst {
        return if nx { Frame::Integer(0) } else { Frame::ok() };
    }
    let dst_exists = locked.shard(db, dst).contains(dst);
    if nx && dst_exists {
        return Frame::Integer(0);
    }
    if dst_exists {
        // Redis deletes the destination, then adds it anew.
        ctx.notify(Class::New, "new", dst);
    }
    locked.shard(db, src).remove(src);
    let d = locked.shard(db, dst);
    d.set(dst, entry.value().clone(), entry.expires_at_ms());
    // Redis moves the object, and its access field with it.
    d.set_access(dst, entry.access());
    ctx.keyspace().signal_key_ready(db, dst);
    ctx.notify(Class::Generic, "rename_from", src);
    ctx.notify(Class::Generic, "rename_to", dst);
    if nx { Frame::Integer(1) } else { Frame::ok() }
}

/// COPY source destination [DB destination-db] [REPLACE]
fn copy(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (src, dst) = (arg(args, 1), arg(args, 2));
    let src_db = ctx.db();
    let mut dst_db = src_db;
    let mut replace = false;
    let mut i = 3;
    while let Some(opt) = args.get(i) {
        if is(opt, "replace") {
            replace = true;
            i += 1;
        } else if is(opt, "db") && i + 1 < args.len() {
            dst_db = match parse_int(arg(args, i + 1)) {
                Ok(n) if n >= 0 && (n as u64) < ctx.keyspace().databases() as u64 => n as usize,
                Ok(_) => return err("ERR DB index is out of range"),
                Err(e) => return e,
            };
            i += 2;
        } else {
            return err(ERR_SYNTAX);
        }
    }
    if src_db == dst_db && src == dst {
        return err("ERR source and destination objects are the same");
    }
    let mut locked = ctx.lock_keys([(src_db, src), (dst_db, dst)]);
    let reading = crate::stats::reads(true);
    let Some(entry) = locked.shard(src_db, src).get(src).cloned() else {
        return Frame::Integer(0);
    };
    drop(reading);
    let d = locked.shard(dst_db, dst);
    let dst_exists = d.contains(dst);
    if dst_exists && !replace {
        return Frame::Integer(0);
    }
    if dst_exists {
        ctx.notify_db(Class::New, "new", dst_db, dst);
    }
    // Values are copy-on-write: the copy shares storage until either side
    // is written.
    d.set(dst, entry.value().clone(), entry.expires_at_ms());
    d.renew_access(dst);
    ctx.keyspace().signal_key_ready(dst_db, dst);
    ctx.notify_db(Class::Generic, "copy_to", dst_db, dst);
    Frame::Integer(1)
}

fn move_key(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let src = ctx.db();
    let dst = match parse_int(arg(args, 2)) {
        Ok(n) if n >= 0 && (n as u64) < ctx.keyspace().databases() as u64 => n as usize,
        Ok(_) => return err("ERR DB index is out of range"),
        Err(e) => return e,
    };
    if src == dst {
        return err("ERR source and destination objects are the same");
    }
    let mut locked = ctx.lock_keys([(src, key), (dst, key)]);
    let Some(entry) = locked.shard(src, key).get(key).cloned() else {
        return Frame::Integer(0);
    };
    if locked.shard(dst, key).contains(key) {
        return Frame::Integer(0);
    }
    locked.shard(src, key).remove(key);
    let d = locked.shard(dst, key);
    d.set(key, entry.value().clone(), entry.expires_at_ms());
    d.set_access(key, entry.access());
    ctx.keyspace().signal_key_ready(dst, key);
    ctx.notify_db(Class::Generic, "move_from", src, key);
    ctx.notify_db(Class::Generic, "move_to", dst, key);
    Frame::Integer(1)
}

fn keys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let pat = arg(args, 1);
    let all = pat == b"*";
    let e = ctx.keyspace().engine();
    let mut out = Vec::new();
    for i in e.db_shards(ctx.db()) {
        let s = e.lock_index(i, ctx.now_ms());
        for (k, _) in s.keys() {
            if all || glob_match(pat, k.as_bytes(), false) {
                out.push(Frame::Bulk(k.to_bytes()));
            }
        }
    }
    Frame::Array(out)
}

/// Bits of a SCAN cursor holding the position inside a shard; the shard
/// number sits above them.
const POS_BITS: u32 = 48;
const POS_MASK: u64 = (1 << POS_BITS) - 1;

/// SCAN walks the database's shards in order and, inside a shard, keys in
/// ascending order of a 48-bit hash of the key. The cursor is (shard,
/// next hash). Keys never move between shards and their hash never changes,
/// so every key present for the whole scan is returned, whatever rehashing
/// happens in between; each call costs one pass over one shard.
fn scan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    // strtoul semantics as in Redis: "" is 0, a negative cursor wraps.
    let Some(cursor) = parse_cursor(arg(args, 1)) else {
        return err("ERR invalid cursor");
    };
    let opts = match parse_scan_opts(args, 2, true) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let (pattern, count) = (opts.pattern, opts.count);
    let ty = opts.ty.map(ValueType::from_name);
    let e = ctx.keyspace().engine();
    let shards = e.db_shards(ctx.db());
    let per_db = shards.len() as u64;
    let mut shard = cursor >> POS_BITS;
    let mut lower = cursor & POS_MASK;
    let mut out = Vec::new();
    while shard < per_db && out.len() < count {
        let s = e.lock_index(shards.start + shard as usize, ctx.now_ms());
        let mut found: Vec<(u64, &crate::value::Key, &crate::engine::Entry)> = s
            .keys()
            .map(|(k, en)| (e.key_hash(k.as_bytes()) & POS_MASK, k, en))
            .filter(|(h, _, _)| *h >= lower)
            .collect();
        found.sort_unstable_by_key(|(h, _, _)| *h);
        // COUNT is a hint (as in Redis). Each call costs a pass over the
        // shard, so take at least a sixteenth of it per call: a full scan
        // then costs O(16 × keys), not O(keys² / COUNT).
        let want = (count - out.len()).max(s.len() / 16);
        let mut taken = 0;
        let mut last = None;
        for (h, k, en) in &found {
            // Never split keys of equal hash across two calls.
            if taken >= want && last != Some(*h) {
                break;
            }
            taken += 1;
            last = Some(*h);
            let type_ok = match ty {
                None => true,
                Some(t) => Some(en.value().value_type()) == t,
            };
            if type_ok && pattern.is_none_or(|p| glob_match(p, k.as_bytes(), false)) {
                out.push(Frame::Bulk(k.to_bytes()));
            }
        }
        match (taken < found.len(), last) {
            (true, Some(h)) if h < POS_MASK => lower = h + 1,
            _ => {
                shard += 1;
                lower = 0;
            }
        }
        // Stop after a partial shard: the cursor resumes inside it.
        if lower != 0 {
            break;
        }
    }
    let next = if shard >= per_db {
        0
    } else {
        (shard << POS_BITS) | lower
    };
    Frame::Array(vec![
        Frame::Bulk(Bytes::from(next.to_string())),
        Frame::Array(out),
    ])
}

/// Random (shard, bucket) draws RANDOMKEY makes before it falls back to
/// walking the shards; a draw is a lock and an index, so this bounds the
/// cost for an empty or very sparse database.
const RANDOMKEY_DRAWS: usize = 64;

/// RANDOMKEY: an exactly uniform pick among the live keys, O(1) expected.
/// Each draw takes a random shard of the database and a random index below
/// the largest table's bucket count; it hits when that index is a bucket
/// holding a live key, which every live key is equally likely to be. After
/// [`RANDOMKEY_DRAWS`] misses (an empty, sparse or mostly expired database)
/// it counts the live keys and picks one by rank, still uniformly.
fn randomkey(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
    let e = ctx.keyspace().engine();
    let shards = e.db_shards(ctx.db());
    let now = ctx.now_ms();
    crate::hashed::with_rng(|rng| {
        let mut bound = shards
            .clone()
            .map(|idx| e.lock_index(idx, now).num_buckets())
            .max()
            .unwrap_or(0);
        for _ in 0..RANDOMKEY_DRAWS {
            let idx = shards.start + rng.random_range(0..shards.len().max(1));
            let s = e.lock_index(idx, now);
            if s.num_buckets() > bound {
                // The table grew since the bound was taken: a hit now would
                // favour this shard's keys, so widen the bound and redraw.
                bound = s.num_buckets();
                continue;
            }
            if let Some(k) = s.random_bucket_key(&mut *rng, bound) {
                return Frame::Bulk(k.to_bytes());
            }
        }
        random_key_by_rank(ctx, rng, shards, now)
    })
}

/// RANDOMKEY's fallback, O(keys): counts the live keys of every shard, draws
/// a rank among them and returns the key at that rank. A shard that changed
/// between the count and the pick (other clients run in between) gives its
/// nearest live key instead, or passes the draw to the next shard.
fn random_key_by_rank(
    ctx: &Ctx<'_>,
    rng: &mut dyn rand::RngCore,
    shards: std::ops::Range<usize>,
    now: i64,
) -> Frame {
    let e = ctx.keyspace().engine();
    let counts: Vec<usize> = shards
        .clone()
        .map(|idx| e.lock_index(idx, now).keys().count())
        .collect();
    let total: usize = counts.iter().sum();
    if total == 0 {
        return Frame::Null;
    }
    let mut rank = rng.random_range(0..total);
    let first = counts
        .iter()
        .position(|&c| {
            if rank < c {
                true
            } else {
                rank -= c;
                false
            }
        })
        .unwrap_or(0);
    for step in 0..counts.len() {
        let idx = shards.start + (first + step) % counts.len();
        let s = e.lock_index(idx, now);
        let live = s.keys().count();
        if live == 0 {
            continue;
        }
        if let Some((k, _)) = s.keys().nth(rank.min(live - 1)) {
            return Frame::Bulk(k.to_bytes());
        }
    }
    Frame::Null
}
