//! List commands (LPUSH, LRANGE, LMOVE, LMPOP, ...), the blocking list
//! pops (BLPOP, BRPOP, BRPOPLPUSH, BLMOVE, BLMPOP) and the blocking
//! sorted-set pops (BZPOPMIN, BZPOPMAX, BZMPOP).
//!
//! A blocking command first tries its non-blocking form with every key's
//! shard locked; only if all keys are empty does it register with the
//! keyspace's blocked-client registry (see `blocking.rs`) and reply later.
//! Every command here that makes a list non-empty calls
//! [`Keyspace::signal_key_ready`](crate::Keyspace) under the shard lock.

use crate::notify::Class;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use cairn_resp::Frame;

use super::args::{arg, owned, parse_mpop, parse_timeout};
use super::{Ctx, ERR_SYNTAX, TableBuilder, err, int, is, parse_int, wrongtype};
use crate::blocking::{BlockedOp, Served, block_or_timeout};
use crate::engine::{Locked, Shard};
use crate::value::{QuickList, Value, WrongType};

pub(crate) fn register(t: &mut TableBuilder) {
    t.redis("lpush", lpush);
    t.redis("rpush", rpush);
    t.redis("lpushx", lpushx);
    t.redis("rpushx", rpushx);
    t.redis("lpop", lpop);
    t.redis("rpop", rpop);
    t.redis("llen", llen);
    t.redis("lrange", lrange);
    t.redis("lindex", lindex);
    t.redis("lset", lset);
    t.redis("linsert", linsert);
    t.redis("lrem", lrem);
    t.redis("ltrim", ltrim);
    t.redis("lpos", lpos);
    t.redis("lmove", lmove);
    t.redis("rpoplpush", rpoplpush);
    t.redis("lmpop", lmpop);
    t.redis("blpop", blpop);
    t.redis("brpop", brpop);
    t.redis("brpoplpush", brpoplpush);
    t.redis("blmove", blmove);
    t.redis("blmpop", blmpop);
}

/// Adds `n` to the change counter. `EntryMut::value_mut` counts one change
/// per command; Redis counts one per element for these commands.
fn add_dirty(ctx: &Ctx<'_>, n: usize) {
    if n > 0 {
        ctx.ks
            .engine()
            .counters
            .dirty
            .fetch_add(n as u64, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------
// Pushes

fn lpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    push(ctx, args, true, false)
}
fn rpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    push(ctx, args, false, false)
}
fn lpushx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    push(ctx, args, true, true)
}
fn rpushx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    push(ctx, args, false, true)
}

fn push(ctx: &mut Ctx<'_>, args: &[Bytes], left: bool, only_existing: bool) -> Frame {
    let key = arg(args, 1);
    let elems = args.get(2..).unwrap_or_default();
    let mut s = ctx.shard(key);
    let len = match s.entry_mut(key) {
        Some(mut e) => {
            if e.value().as_list().is_err() {
                return wrongtype();
            }
            let Ok(list) = e.value_mut().as_list_mut() else {
                return wrongtype();
            };
            push_all(list, elems, left);
            list.len()
        }
        None if only_existing => return int(0),
        None => {
            let mut list = QuickList::with_capacity(elems.len());
            push_all(&mut list, elems, left);
            let n = list.len();
            s.set(key, Value::List(Arc::new(list)), None);
            n
        }
    };
    s.notify(Class::List, if left { "lpush" } else { "rpush" }, key);
    ctx.ks.signal_key_ready(ctx.db(), key);
    drop(s);
    add_dirty(ctx, elems.len().saturating_sub(1));
    int(len)
}

fn push_all(list: &mut QuickList, elems: &[Bytes], left: bool) {
    list.reserve(elems.len());
    for e in elems {
        if left {
            list.push_front(owned(e));
        } else {
            list.push_back(owned(e));
        }
    }
}

/// Pushes one element onto `key`'s list in `s`, creating it; the caller
/// has checked the type.
fn push_one(s: &mut Shard<'_>, key: &[u8], elem: Bytes, left: bool) -> Result<(), WrongType> {
    match s.entry_mut(key) {
        Some(mut e) => {
            let list = e.value_mut().as_list_mut()?;
            if left {
                list.push_front(elem);
            } else {
                list.push_back(elem);
            }
        }
        None => {
            s.set(key, Value::List(Arc::new(QuickList::from([elem]))), None);
        }
    }
    s.notify(Class::List, if left { "lpush" } else { "rpush" }, key);
    Ok(())
}

// ---------------------------------------------------------------------------
// Pops

/// Pops up to `count` elements from one end of `key`'s list, deleting the
/// key when it empties. `Ok(None)`: no such key.
fn pop_n(
    s: &mut Shard<'_>,
    key: &[u8],
    left: bool,
    count: usize,
) -> Result<Option<Vec<Bytes>>, WrongType> {
    let Some(mut e) = s.entry_mut(key) else {
        return Ok(None);
    };
    let len = e.value().as_list()?.len();
    let n = count.min(len);
    if n == 0 {
        return Ok(Some(Vec::new()));
    }
    let list = e.value_mut().as_list_mut()?;
    let out: Vec<Bytes> = if left {
        list.drain(..n).collect()
    } else {
        (0..n).filter_map(|_| list.pop_back()).collect()
    };
    s.notify(Class::List, pop_event(left), key);
    s.remove_if_empty(key);
    Ok(Some(out))
}

fn pop_event(left: bool) -> &'static str {
    if left { "lpop" } else { "rpop" }
}

/// Pops one element; `Ok(None)`: no such key.
fn pop_one(s: &mut Shard<'_>, key: &[u8], left: bool) -> Result<Option<Bytes>, WrongType> {
    let v = pop_one_keep(s, key, left)?;
    if v.is_some() {
        s.notify(Class::List, pop_event(left), key);
    }
    s.remove_if_empty(key);
    Ok(v)
}

/// Pops one element, leaving an emptied list in place (LMOVE pushes
/// before it reports the pop and deletes the source, as Redis).
fn pop_one_keep(s: &mut Shard<'_>, key: &[u8], left: bool) -> Result<Option<Bytes>, WrongType> {
    let Some(mut e) = s.entry_mut(key) else {
        return Ok(None);
    };
    e.value().as_list()?;
    let list = e.value_mut().as_list_mut()?;
    Ok(if left {
        list.pop_front()
    } else {
        list.pop_back()
    })
}

fn lpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    pop_cmd(ctx, args, true)
}
fn rpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    pop_cmd(ctx, args, false)
}

fn pop_cmd(ctx: &mut Ctx<'_>, args: &[Bytes], left: bool) -> Frame {
    if args.len() > 3 {
        return Frame::error(format!(
            "ERR wrong number of arguments for '{}' command",
            ctx.command()
        ));
    }
    let key = arg(args, 1);
    let count = match args.get(2) {
        None => None,
        Some(c) => match parse_int(c) {
            Ok(n) if n >= 0 => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            _ => return err("ERR value is out of range, must be positive"),
        },
    };
    let mut s = ctx.shard(key);
    match count {
        None => match pop_one(&mut s, key, left) {
            Ok(Some(v)) => Frame::Bulk(v),
            Ok(None) => Frame::Null,
            Err(e) => e.into(),
        },
        Some(count) => match pop_n(&mut s, key, left, count) {
            Ok(Some(v)) => {
                drop(s);
                add_dirty(ctx, v.len().saturating_sub(1));
                Frame::Array(v.into_iter().map(Frame::Bulk).collect())
            }
            Ok(None) => Frame::NullArray,
            Err(e) => e.into(),
        },
    }
}

// ---------------------------------------------------------------------------
// Reads

fn llen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    match ctx.shard(key).value(key) {
        None => int(0),
        Some(v) => match v.as_list() {
            Ok(l) => int(l.len()),
            Err(e) => e.into(),
        },
    }
}

/// Redis' start/end normalization for LRANGE/LTRIM: `None` when the range
/// is empty, else inclusive indices within `0..len`.
fn range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let start = if start < 0 {
        (len.saturating_add(start)).max(0)
    } else {
        start
    };
    let end = if end < 0 {
        len.saturating_add(end)
    } else {
        end
    };
    if start > end || start >= len {
        return None;
    }
    let end = end.min(len - 1);
    Some((usize::try_from(start).ok()?, usize::try_from(end).ok()?))
}

fn lrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (start, end) = match (parse_int(arg(args, 2)), parse_int(arg(args, 3))) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let key = arg(args, 1);
    let mut s = ctx.shard(key);
    let Some(v) = s.value(key) else {
        return Frame::Array(Vec::new());
    };
    let list = match v.as_list() {
        Ok(l) => l,
        Err(e) => return e.into(),
    };
    match range(start, end, list.len()) {
        None => Frame::Array(Vec::new()),
        Some((a, b)) => Frame::Array(list.range(a..=b).map(Frame::Bulk).collect()),
    }
}

/// A Redis list index (negative counts from the end) as a position.
fn index_of(index: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let i = if index < 0 {
        len.checked_add(index)?
    } else {
        index
    };
    if (0..len).contains(&i) {
        usize::try_from(i).ok()
    } else {
        None
    }
}

fn lindex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let mut s = ctx.shard(key);
    let Some(v) = s.value(key) else {
        return Frame::Null;
    };
    let list = match v.as_list() {
        Ok(l) => l,
        Err(e) => return e.into(),
    };
    let index = match parse_int(arg(args, 2)) {
        Ok(i) => i,
        Err(e) => return e,
    };
    match index_of(index, list.len()).and_then(|i| list.get(i)) {
        Some(e) => Frame::Bulk(e.clone()),
        None => Frame::Null,
    }
}

fn lpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let elem = arg(args, 2);
    let mut rank: i64 = 1;
    let mut count: Option<i64> = None;
    let mut maxlen: i64 = 0;
    let mut j = 3;
    while j < args.len() {
        let opt = arg(args, j);
        let Some(val) = args.get(j + 1) else {
            return err(ERR_SYNTAX);
        };
        if is(opt, "RANK") {
            rank = match parse_int(val) {
                Ok(r) => r,
                Err(e) => return e,
            };
            if rank == 0 {
                return err(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                );
            }
        } else if is(opt, "COUNT") {
            match parse_int(val) {
                Ok(c) if c >= 0 => count = Some(c),
                _ => return err("ERR COUNT can't be negative"),
            }
        } else if is(opt, "MAXLEN") {
            match parse_int(val) {
                Ok(m) if m >= 0 => maxlen = m,
                _ => return err("ERR MAXLEN can't be negative"),
            }
        } else {
            return err(ERR_SYNTAX);
        }
        j += 2;
    }
    let mut s = ctx.shard(key);
    let Some(v) = s.value(key) else {
        return if count.is_some() {
            Frame::Array(Vec::new())
        } else {
            Frame::Null
        };
    };
    let list = match v.as_list() {
        Ok(l) => l,
        Err(e) => return e.into(),
    };
    let from_tail = rank < 0;
    // Redis 7.0 negates RANK in a C long: i64::MIN stays negative, so every
    // match qualifies and the COUNT check never stops the scan. Reproduced.
    let (skip, limit) = if rank == i64::MIN {
        (0u64, None)
    } else {
        (
            rank.unsigned_abs() - 1,
            count.filter(|&c| c > 0).map(|c| c.unsigned_abs()),
        )
    };
    let scan = if maxlen == 0 {
        list.len()
    } else {
        usize::try_from(maxlen)
            .unwrap_or(usize::MAX)
            .min(list.len())
    };
    let len = list.len();
    let mut found: Vec<Frame> = Vec::new();
    let mut matches: u64 = 0;
    for step in 0..scan {
        let idx = if from_tail { len - 1 - step } else { step };
        if list.get(idx).is_some_and(|e| e[..] == *elem) {
            matches += 1;
            if matches > skip {
                found.push(int(idx));
                if count.is_none() || limit.is_some_and(|l| found.len() as u64 >= l) {
                    break;
                }
            }
        }
    }
    match count {
        Some(_) => Frame::Array(found),
        None => found.into_iter().next().unwrap_or(Frame::Null),
    }
}

// ---------------------------------------------------------------------------
// In-place edits

fn lset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let mut s = ctx.shard(key);
    // Redis looks the key up and checks its type before parsing the index.
    let Some(mut e) = s.entry_mut(key) else {
        return err("ERR no such key");
    };
    let len = match e.value().as_list() {
        Ok(l) => l.len(),
        Err(w) => return w.into(),
    };
    let index = match parse_int(arg(args, 2)) {
        Ok(i) => i,
        Err(f) => return f,
    };
    let Some(i) = index_of(index, len) else {
        return err("ERR index out of range");
    };
    if let Ok(list) = e.value_mut().as_list_mut() {
        list.set(i, arg(args, 3));
    }
    s.notify(Class::List, "lset", key);
    Frame::ok()
}

fn linsert(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let after = match arg(args, 2) {
        w if is(w, "AFTER") => true,
        w if is(w, "BEFORE") => false,
        _ => return err(ERR_SYNTAX),
    };
    let key = arg(args, 1);
    let pivot = arg(args, 3);
    let mut s = ctx.shard(key);
    let Some(mut e) = s.entry_mut(key) else {
        return int(0);
    };
    let pos = match e.value().as_list() {
        Ok(l) => l.iter().position(|x| x[..] == *pivot),
        Err(w) => return w.into(),
    };
    let Some(pos) = pos else {
        return Frame::Integer(-1);
    };
    let Ok(list) = e.value_mut().as_list_mut() else {
        return wrongtype();
    };
    list.insert(if after { pos + 1 } else { pos }, owned(arg(args, 4)));
    let n = list.len();
    s.notify(Class::List, "linsert", key);
    ctx.ks.signal_key_ready(ctx.db(), key);
    int(n)
}

fn lrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let count = match parse_int(arg(args, 2)) {
        Ok(c) => c,
        Err(e) => return e,
    };
    let key = arg(args, 1);
    let elem = arg(args, 3);
    let mut s = ctx.shard(key);
    let Some(mut e) = s.entry_mut(key) else {
        return int(0);
    };
    let (matching, cut) = match e.value().as_list() {
        Ok(l) => {
            let matching = l.iter().filter(|x| x[..] == *elem).count();
            // For a negative count, the position of the |count|-th match from
            // the tail: matches at or after it are removed.
            let cut = if count < 0 {
                let want = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
                l.iter()
                    .enumerate()
                    .rev()
                    .filter(|(_, x)| x[..] == *elem)
                    .take(want)
                    .last()
                    .map_or(0, |(i, _)| i)
            } else {
                0
            };
            (matching, cut)
        }
        Err(w) => return w.into(),
    };
    if matching == 0 {
        return int(0);
    }
    let Ok(list) = e.value_mut().as_list_mut() else {
        return wrongtype();
    };
    let limit = if count > 0 {
        usize::try_from(count).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    let mut removed = 0usize;
    let mut i = 0usize;
    list.retain(|x| {
        let here = i;
        i += 1;
        if here >= cut && removed < limit && x[..] == *elem {
            removed += 1;
            false
        } else {
            true
        }
    });
    s.notify(Class::List, "lrem", key);
    s.remove_if_empty(key);
    drop(s);
    add_dirty(ctx, removed.saturating_sub(1));
    int(removed)
}

fn ltrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (start, end) = match (parse_int(arg(args, 2)), parse_int(arg(args, 3))) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let key = arg(args, 1);
    let mut s = ctx.shard(key);
    let Some(mut e) = s.entry_mut(key) else {
        return Frame::ok();
    };
    let len = match e.value().as_list() {
        Ok(l) => l.len(),
        Err(w) => return w.into(),
    };
    let keep = range(start, end, len);
    let (a, b) = keep.unwrap_or((len, len));
    let removed = if keep.is_some() {
        a + (len - 1 - b)
    } else {
        len
    };
    if removed > 0 {
        let Ok(list) = e.value_mut().as_list_mut() else {
            return wrongtype();
        };
        if keep.is_some() {
            list.truncate(b + 1);
            list.drain(..a);
        } else {
            list.clear();
        }
        s.notify(Class::List, "ltrim", key);
        s.remove_if_empty(key);
        drop(s);
        add_dirty(ctx, removed - 1);
    } else {
        // Redis reports the trim even when it removed nothing.
        s.notify(Class::List, "ltrim", key);
    }
    Frame::ok()
}

// ---------------------------------------------------------------------------
// Moves

/// Parses LEFT/RIGHT: true for LEFT.
fn parse_side(a: &[u8]) -> Option<bool> {
    if is(a, "LEFT") {
        Some(true)
    } else if is(a, "RIGHT") {
        Some(false)
    } else {
        None
    }
}

/// LMOVE under locks holding both keys: pops from `src`, pushes onto
/// `dst`. `Ok(None)`: `src` does not exist. Checks both types before
/// changing anything.
fn move_locked(
    locked: &mut Locked<'_>,
    db: usize,
    src: &[u8],
    dst: &[u8],
    from_left: bool,
    to_left: bool,
) -> Result<Option<Bytes>, WrongType> {
    match locked.shard(db, src).value(src) {
        None => return Ok(None),
        Some(v) => {
            v.as_list()?;
        }
    }
    if let Some(v) = locked.shard(db, dst).value(dst) {
        v.as_list()?;
    }
    if src == dst {
        // Rotation: pop and push on the same list without ever emptying it.
        let s = locked.shard(db, src);
        let Some(mut e) = s.entry_mut(src) else {
            return Ok(None);
        };
        let list = e.value_mut().as_list_mut()?;
        let Some(v) = (if from_left {
            list.pop_front()
        } else {
            list.pop_back()
        }) else {
            return Ok(None);
        };
        if to_left {
            list.push_front(v.clone());
        } else {
            list.push_back(v.clone());
        }
        s.notify(Class::List, if to_left { "lpush" } else { "rpush" }, src);
        s.notify(Class::List, pop_event(from_left), src);
        return Ok(Some(v));
    }
    let Some(v) = pop_one_keep(locked.shard(db, src), src, from_left)? else {
        return Ok(None);
    };
    push_one(locked.shard(db, dst), dst, v.clone(), to_left)?;
    let s = locked.shard(db, src);
    s.notify(Class::List, pop_event(from_left), src);
    s.remove_if_empty(src);
    Ok(Some(v))
}

fn lmove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (Some(from), Some(to)) = (parse_side(arg(args, 3)), parse_side(arg(args, 4))) else {
        return err(ERR_SYNTAX);
    };
    move_cmd(ctx, arg(args, 1), arg(args, 2), from, to)
}

fn rpoplpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    move_cmd(ctx, arg(args, 1), arg(args, 2), false, true)
}

fn move_cmd(ctx: &mut Ctx<'_>, src: &[u8], dst: &[u8], from_left: bool, to_left: bool) -> Frame {
    let db = ctx.db();
    let mut locked = ctx.lock_keys([(db, src), (db, dst)]);
    match move_locked(&mut locked, db, src, dst, from_left, to_left) {
        Ok(Some(v)) => {
            ctx.ks.signal_key_ready(db, dst);
            Frame::Bulk(v)
        }
        Ok(None) => Frame::Null,
        Err(e) => e.into(),
    }
}

// ---------------------------------------------------------------------------
// LMPOP / BLMPOP / BZMPOP argument parsing

fn mpop_reply(key: &[u8], elems: Vec<Frame>) -> Frame {
    Frame::Array(vec![Frame::bulk(key), Frame::Array(elems)])
}

fn lmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let p = match parse_mpop(args, 1, ["left", "right"]) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let db = ctx.db();
    let mut locked = ctx.lock_keys(p.keys.iter().map(|k| (db, &k[..])));
    match try_pop_lists(ctx, &mut locked, p.keys, p.first, Some(p.count)) {
        Some(f) => f,
        None => Frame::NullArray,
    }
}

/// The non-blocking attempt shared by LMPOP and the blocking list pops:
/// pops from the first existing key. `count` None: BLPOP's `[key, elem]`
/// reply; Some: LMPOP's `[key, [elems]]`. `None` when every key is absent.
fn try_pop_lists(
    ctx: &Ctx<'_>,
    locked: &mut Locked<'_>,
    keys: &[Bytes],
    left: bool,
    count: Option<usize>,
) -> Option<Frame> {
    let db = ctx.db();
    for key in keys {
        let s = locked.shard(db, key);
        match s.value(key) {
            None => continue,
            Some(v) if v.as_list().is_err() => return Some(wrongtype()),
            Some(_) => {}
        }
        let frame = match count {
            None => match pop_one(s, key, left) {
                Ok(Some(v)) => Frame::Array(vec![Frame::Bulk(key.clone()), Frame::Bulk(v)]),
                Ok(None) => continue,
                Err(e) => e.into(),
            },
            Some(n) => match pop_n(s, key, left, n) {
                Ok(Some(v)) => {
                    add_dirty(ctx, v.len().saturating_sub(1));
                    mpop_reply(key, v.into_iter().map(Frame::Bulk).collect())
                }
                Ok(None) => continue,
                Err(e) => e.into(),
            },
        };
        return Some(frame);
    }
    None
}

// ---------------------------------------------------------------------------
// Blocking

/// What a client blocked by a list command waits to do once a key it
/// watches is ready; the list family's serve callback for the registry.
#[derive(Clone, Debug)]
enum ListOp {
    /// BLPOP/BRPOP: reply `[key, element]`.
    Pop { left: bool },
    /// BLMPOP: reply `[key, [elements]]`.
    MPop { left: bool, count: usize },
    /// BLMOVE/BRPOPLPUSH: reply the element moved to `dest`.
    Move {
        from_left: bool,
        to_left: bool,
        dest: Bytes,
    },
}

impl BlockedOp for ListOp {
    fn other_key(&self) -> Option<&Bytes> {
        match self {
            ListOp::Move { dest, .. } => Some(dest),
            _ => None,
        }
    }

    fn serve(&self, locked: &mut Locked<'_>, db: usize, key: &[u8]) -> Served {
        match locked.shard(db, key).value(key) {
            Some(Value::List(l)) if !l.is_empty() => {}
            None | Some(Value::List(_)) => return Served::Nothing,
            // Another type (a sorted set a BZPOP waiter may take).
            Some(_) => return Served::WrongKind,
        }
        let s = locked.shard(db, key);
        match self {
            ListOp::Pop { left } => match pop_one(s, key, *left) {
                Ok(Some(v)) => {
                    Served::Reply(Frame::Array(vec![Frame::bulk(key), Frame::Bulk(v)]), None)
                }
                _ => Served::Nothing,
            },
            ListOp::MPop { left, count } => match pop_n(s, key, *left, *count) {
                Ok(Some(v)) if !v.is_empty() => Served::Reply(
                    mpop_reply(key, v.into_iter().map(Frame::Bulk).collect()),
                    None,
                ),
                _ => Served::Nothing,
            },
            ListOp::Move {
                from_left,
                to_left,
                dest,
            } => {
                match move_locked(locked, db, key, dest, *from_left, *to_left) {
                    Ok(Some(v)) => Served::Reply(Frame::Bulk(v), Some(dest.clone())),
                    Ok(None) => Served::Nothing,
                    // The destination holds another type: Redis unblocks the
                    // client with the error and leaves the source alone.
                    Err(e) => Served::Reply(e.into(), None),
                }
            }
        }
    }
}

fn blpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    bpop(ctx, args, true)
}
fn brpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    bpop(ctx, args, false)
}

fn bpop(ctx: &mut Ctx<'_>, args: &[Bytes], left: bool) -> Frame {
    let timeout = match parse_timeout(arg(args, args.len() - 1)) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let keys = args.get(1..args.len() - 1).unwrap_or_default();
    let db = ctx.db();
    let mut locked = ctx.lock_keys(keys.iter().map(|k| (db, &k[..])));
    if let Some(f) = try_pop_lists(ctx, &mut locked, keys, left, None) {
        return f;
    }
    block_or_timeout(
        ctx,
        keys.to_vec(),
        Arc::new(ListOp::Pop { left }),
        timeout,
        Frame::NullArray,
        Frame::NullArray,
    )
}

fn blmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let p = match parse_mpop(args, 2, ["left", "right"]) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let timeout = match parse_timeout(arg(args, 1)) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let db = ctx.db();
    let mut locked = ctx.lock_keys(p.keys.iter().map(|k| (db, &k[..])));
    if let Some(f) = try_pop_lists(ctx, &mut locked, p.keys, p.first, Some(p.count)) {
        return f;
    }
    let op = ListOp::MPop {
        left: p.first,
        count: p.count,
    };
    block_or_timeout(
        ctx,
        p.keys.to_vec(),
        Arc::new(op),
        timeout,
        Frame::NullArray,
        Frame::NullArray,
    )
}

fn brpoplpush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    bmove(ctx, arg(args, 1), arg(args, 2), false, true, arg(args, 3))
}

fn blmove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (Some(from), Some(to)) = (parse_side(arg(args, 3)), parse_side(arg(args, 4))) else {
        return err(ERR_SYNTAX);
    };
    bmove(ctx, arg(args, 1), arg(args, 2), from, to, arg(args, 5))
}

fn bmove(
    ctx: &mut Ctx<'_>,
    src: &[u8],
    dst: &[u8],
    from_left: bool,
    to_left: bool,
    timeout: &[u8],
) -> Frame {
    let timeout = match parse_timeout(timeout) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let db = ctx.db();
    let mut locked = ctx.lock_keys([(db, src), (db, dst)]);
    match locked.shard(db, src).value(src) {
        Some(v) if v.as_list().is_err() => return wrongtype(),
        Some(_) => {
            return match move_locked(&mut locked, db, src, dst, from_left, to_left) {
                Ok(Some(v)) => {
                    ctx.ks.signal_key_ready(db, dst);
                    Frame::Bulk(v)
                }
                Ok(None) => Frame::Null,
                Err(e) => e.into(),
            };
        }
        // The destination's type is only checked once there is something
        // to move, as in Redis.
        None => {}
    }
    let op = ListOp::Move {
        from_left,
        to_left,
        dest: owned(dst),
    };
    block_or_timeout(
        ctx,
        vec![owned(src)],
        Arc::new(op),
        timeout,
        Frame::NullArray,
        Frame::Null,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn ranges_normalize_like_redis() {
        assert_eq!(range(0, -1, 3), Some((0, 2)));
        assert_eq!(range(-100, 100, 3), Some((0, 2)));
        assert_eq!(range(2, 1, 3), None);
        assert_eq!(range(3, 5, 3), None);
        assert_eq!(range(i64::MIN, i64::MAX, 3), Some((0, 2)));
        assert_eq!(range(0, i64::MIN, 3), None);
        assert_eq!(range(0, 0, 0), None);
    }

    #[test]
    fn indices() {
        assert_eq!(index_of(-1, 3), Some(2));
        assert_eq!(index_of(-4, 3), None);
        assert_eq!(index_of(3, 3), None);
        assert_eq!(index_of(i64::MIN, 3), None);
    }

    fn run_nested(
        ks: &crate::Keyspace,
        st: &mut crate::SessionState,
        args: &[&str],
        gate: bool,
    ) -> Frame {
        let args: Vec<Bytes> = args
            .iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let cmd = ks.inner.table.lookup(&args[0]).unwrap();
        match crate::session::run(ks, st, cmd, &args, gate) {
            cairn_resp::Outcome::Reply(f) => f,
            _ => panic!("{args:?} blocked or closed"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn swapdb_signal_serves_waiters_of_the_swapped_in_database() {
        let ks = crate::Keyspace::new();
        let mut w = ks.session();
        let args = ["blpop", "k", "0"]
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .to_vec();
        let cairn_resp::Outcome::Block(mut p) = w.execute(args) else {
            panic!("did not block")
        };
        let mut s = ks.session();
        assert_eq!(s.command(&["select", "1"]), Frame::ok());
        assert_eq!(s.command(&["rpush", "k", "a", "b"]), Frame::Integer(2));
        assert!(tokio::time::timeout(Duration::ZERO, &mut p).await.is_err());
        {
            let _swap = ks.engine().gate.write();
            ks.engine().swap_dbs(0, 1);
            ks.signal_db_ready(0);
            ks.signal_db_ready(1);
            ks.serve_blocked();
        }
        let got = tokio::time::timeout(Duration::ZERO, &mut p).await.ok();
        assert_eq!(
            got,
            Some(Frame::Array(vec![Frame::bulk("k"), Frame::bulk("a")]))
        );
        assert_eq!(s.command(&["select", "0"]), Frame::ok());
        assert_eq!(
            s.command(&["lrange", "k", "0", "-1"]),
            Frame::Array(vec![Frame::bulk("b")])
        );
        assert_eq!(ks.blocked_clients(), 0);
    }

    #[test]
    fn blocking_commands_never_block_inside_exec_or_multi() {
        let ks = crate::Keyspace::new();
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let mut st = crate::SessionState::new(1, None, true, tx);
        // EXEC runs its queue with the gate held exclusively, gate = false.
        {
            let _exec = ks.engine().gate.write();
            let cases: [(&[&str], Frame); 6] = [
                (&["blpop", "k", "0"], Frame::NullArray),
                (&["brpop", "k", "k2", "0"], Frame::NullArray),
                (&["brpoplpush", "k", "d", "0"], Frame::Null),
                (&["blmove", "k", "d", "left", "right", "0"], Frame::Null),
                (&["blmpop", "0", "1", "k", "left"], Frame::NullArray),
                (&["bzpopmin", "k", "0"], Frame::NullArray),
            ];
            for (args, want) in cases {
                assert_eq!(run_nested(&ks, &mut st, args, false), want, "{args:?}");
            }
            assert_eq!(
                run_nested(&ks, &mut st, &["bzmpop", "0", "1", "k", "max"], false),
                Frame::NullArray
            );
            assert_eq!(
                run_nested(&ks, &mut st, &["rpush", "k", "a"], false),
                Frame::Integer(1)
            );
            assert_eq!(
                run_nested(&ks, &mut st, &["blpop", "k", "0"], false),
                Frame::Array(vec![Frame::bulk("k"), Frame::bulk("a")])
            );
        }
        // A session whose MULTI state is set does not block either.
        st.multi = Some(Vec::new());
        assert_eq!(
            run_nested(&ks, &mut st, &["blpop", "k", "0"], true),
            Frame::NullArray
        );
        assert_eq!(ks.blocked_clients(), 0);
    }
}
