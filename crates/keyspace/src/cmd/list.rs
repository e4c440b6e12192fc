//! List commands (LPUSH, LRANGE, LMOVE, LMPOP, ...), the blocking list
//! pops (BLPOP, BRPOP, BRPOPLPUSH, BLMOVE, BLMPOP) and the blocking
//! sorted-set pops (BZPOPMIN, BZPOPMAX, BZMPOP).
//!
//! A blocking command first tries its non-blocking form with every key's
//! shard locked; only if all keys are empty does it register with the
//! keyspace's blocked-client registry (see `blocking.rs`) and reply later.
//! Every command here that makes a list non-empty calls
//! [`Keyspace::signal_key_ready`](crate::Keyspace) under the shard lock.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use cairn_resp::Frame;
use tokio::time::Instant;

use super::zset::{End, bzpop_reply, mpop_reply as zmpop_reply};
use super::{
    CommandSpec as S, Ctx, ERR_SYNTAX, Flags, TableBuilder, err, int, is, parse_float, parse_int,
    wrongtype,
};
use crate::blocking::{Served, block_on_keys};
use crate::engine::{Locked, Shard};
use crate::value::{QuickList, Value, WrongType};

const W: Flags = Flags::WRITE;
const R: Flags = Flags::READONLY;
const DENY: Flags = Flags::DENYOOM;
const FAST: Flags = Flags::FAST;
const BLOCK: Flags = Flags::BLOCKING;
const NOSCRIPT: Flags = Flags::NOSCRIPT;

pub(crate) fn register(t: &mut TableBuilder) {
    let g = "list";
    t.add(
        S::new("lpush", -3, W | DENY | FAST, g)
            .keys(1, 1, 1)
            .doc("Prepend one or multiple elements to a list", "1.0.0"),
        lpush,
    );
    t.add(
        S::new("rpush", -3, W | DENY | FAST, g)
            .keys(1, 1, 1)
            .doc("Append one or multiple elements to a list", "1.0.0"),
        rpush,
    );
    t.add(
        S::new("lpushx", -3, W | DENY | FAST, g).keys(1, 1, 1).doc(
            "Prepend an element to a list, only if the list exists",
            "2.2.0",
        ),
        lpushx,
    );
    t.add(
        S::new("rpushx", -3, W | DENY | FAST, g).keys(1, 1, 1).doc(
            "Append an element to a list, only if the list exists",
            "2.2.0",
        ),
        rpushx,
    );
    t.add(
        S::new("lpop", -2, W | FAST, g)
            .keys(1, 1, 1)
            .doc("Remove and get the first elements in a list", "1.0.0"),
        lpop,
    );
    t.add(
        S::new("rpop", -2, W | FAST, g)
            .keys(1, 1, 1)
            .doc("Remove and get the last elements in a list", "1.0.0"),
        rpop,
    );
    t.add(
        S::new("llen", 2, R | FAST, g)
            .keys(1, 1, 1)
            .doc("Get the length of a list", "1.0.0"),
        llen,
    );
    t.add(
        S::new("lrange", 4, R, g)
            .keys(1, 1, 1)
            .doc("Get a range of elements from a list", "1.0.0"),
        lrange,
    );
    t.add(
        S::new("lindex", 3, R, g)
            .keys(1, 1, 1)
            .doc("Get an element from a list by its index", "1.0.0"),
        lindex,
    );
    t.add(
        S::new("lset", 4, W | DENY, g).keys(1, 1, 1).doc(
            "Set the value of an element in a list by its index",
            "1.0.0",
        ),
        lset,
    );
    t.add(
        S::new("linsert", 5, W | DENY, g).keys(1, 1, 1).doc(
            "Insert an element before or after another element in a list",
            "2.2.0",
        ),
        linsert,
    );
    t.add(
        S::new("lrem", 4, W, g)
            .keys(1, 1, 1)
            .doc("Remove elements from a list", "1.0.0"),
        lrem,
    );
    t.add(
        S::new("ltrim", 4, W, g)
            .keys(1, 1, 1)
            .doc("Trim a list to the specified range", "1.0.0"),
        ltrim,
    );
    t.add(
        S::new("lpos", -3, R, g)
            .keys(1, 1, 1)
            .doc("Return the index of matching elements on a list", "6.0.6"),
        lpos,
    );
    t.add(
        S::new("lmove", 5, W | DENY, g).keys(1, 2, 1).doc(
            "Pop an element from a list, push it to another list and return it",
            "6.2.0",
        ),
        lmove,
    );
    t.add(
        S::new("rpoplpush", 3, W | DENY, g).keys(1, 2, 1).doc(
            "Remove the last element in a list, prepend it to another list and return it",
            "1.2.0",
        ),
        rpoplpush,
    );
    // Key positions of the numkeys commands are "movable" in Redis (0 0 0).
    t.add(
        S::new("lmpop", -4, W, g).doc("Pop elements from a list", "7.0.0"),
        lmpop,
    );
    t.add(
        S::new("blpop", -3, W | NOSCRIPT | BLOCK, g)
            .keys(1, -2, 1)
            .doc(
                "Remove and get the first element in a list, or block until one is available",
                "2.0.0",
            ),
        blpop,
    );
    t.add(
        S::new("brpop", -3, W | NOSCRIPT | BLOCK, g)
            .keys(1, -2, 1)
            .doc(
                "Remove and get the last element in a list, or block until one is available",
                "2.0.0",
            ),
        brpop,
    );
    t.add(S::new("brpoplpush", 4, W | DENY | NOSCRIPT | BLOCK, g).keys(1, 2, 1).doc("Pop an element from a list, push it to another list and return it; or block until one is available", "2.2.0"), brpoplpush);
    t.add(S::new("blmove", 6, W | DENY | NOSCRIPT | BLOCK, g).keys(1, 2, 1).doc("Pop an element from a list, push it to another list and return it; or block until one is available", "6.2.0"), blmove);
    t.add(
        S::new("blmpop", -5, W | BLOCK, g).doc(
            "Pop elements from a list, or block until one is available",
            "7.0.0",
        ),
        blmpop,
    );
    let z = "sorted-set";
    t.add(S::new("bzpopmin", -3, W | NOSCRIPT | FAST | BLOCK, z).keys(1, -2, 1).doc("Remove and return the member with the lowest score from one or more sorted sets, or block until one is available", "5.0.0"), bzpopmin);
    t.add(S::new("bzpopmax", -3, W | NOSCRIPT | FAST | BLOCK, z).keys(1, -2, 1).doc("Remove and return the member with the highest score from one or more sorted sets, or block until one is available", "5.0.0"), bzpopmax);
    t.add(
        S::new("bzmpop", -5, W | BLOCK, z).doc(
            "Remove and return members with scores in a sorted set or block until one is available",
            "7.0.0",
        ),
        bzmpop,
    );
}

fn arg(args: &[Bytes], i: usize) -> &[u8] {
    args.get(i).map(|b| &b[..]).unwrap_or_default()
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

/// Copies an argument for storage: arguments may be slices of the
/// connection's read buffer, which a stored element must not pin.
fn own(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
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
    ctx.ks.signal_key_ready(ctx.db(), key);
    drop(s);
    add_dirty(ctx, elems.len().saturating_sub(1));
    int(len)
}

fn push_all(list: &mut QuickList, elems: &[Bytes], left: bool) {
    list.reserve(elems.len());
    for e in elems {
        if left {
            list.push_front(own(e));
        } else {
            list.push_back(own(e));
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
    s.remove_if_empty(key);
    Ok(Some(out))
}

/// Pops one element; `Ok(None)`: no such key.
fn pop_one(s: &mut Shard<'_>, key: &[u8], left: bool) -> Result<Option<Bytes>, WrongType> {
    let Some(mut e) = s.entry_mut(key) else {
        return Ok(None);
    };
    e.value().as_list()?;
    let list = e.value_mut().as_list_mut()?;
    let v = if left {
        list.pop_front()
    } else {
        list.pop_back()
    };
    s.remove_if_empty(key);
    Ok(v)
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
    list.insert(if after { pos + 1 } else { pos }, own(arg(args, 4)));
    let n = list.len();
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
        s.remove_if_empty(key);
        drop(s);
        add_dirty(ctx, removed - 1);
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
        return Ok(Some(v));
    }
    let Some(v) = pop_one(locked.shard(db, src), src, from_left)? else {
        return Ok(None);
    };
    push_one(locked.shard(db, dst), dst, v.clone(), to_left)?;
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

/// Parsed `numkeys key... LEFT|RIGHT|MIN|MAX [COUNT n]`.
struct MPopArgs<'a> {
    keys: &'a [Bytes],
    /// LEFT or MIN.
    first: bool,
    count: usize,
}

/// Parses from `args[numkeys_idx]` on, with Redis 7.0's checks and texts;
/// `zset` selects MIN/MAX instead of LEFT/RIGHT.
fn parse_mpop(args: &[Bytes], numkeys_idx: usize, zset: bool) -> Result<MPopArgs<'_>, Frame> {
    let numkeys = match parse_int(arg(args, numkeys_idx)) {
        Ok(n) if n > 0 => usize::try_from(n).unwrap_or(usize::MAX),
        _ => return Err(err("ERR numkeys should be greater than 0")),
    };
    let where_idx = numkeys_idx
        .checked_add(numkeys)
        .and_then(|i| i.checked_add(1))
        .filter(|&i| i < args.len());
    let Some(where_idx) = where_idx else {
        return Err(err(ERR_SYNTAX));
    };
    let w = arg(args, where_idx);
    let first = match (zset, w) {
        (false, w) if is(w, "LEFT") => true,
        (false, w) if is(w, "RIGHT") => false,
        (true, w) if is(w, "MIN") => true,
        (true, w) if is(w, "MAX") => false,
        _ => return Err(err(ERR_SYNTAX)),
    };
    let mut count = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        if count.is_none() && is(arg(args, j), "COUNT") && j + 1 < args.len() {
            j += 1;
            match parse_int(arg(args, j)) {
                Ok(n) if n > 0 => count = Some(usize::try_from(n).unwrap_or(usize::MAX)),
                _ => return Err(err("ERR count should be greater than 0")),
            }
        } else {
            return Err(err(ERR_SYNTAX));
        }
        j += 1;
    }
    let keys = args.get(numkeys_idx + 1..where_idx).unwrap_or_default();
    Ok(MPopArgs {
        keys,
        first,
        count: count.unwrap_or(1),
    })
}

fn mpop_reply(key: &[u8], elems: Vec<Frame>) -> Frame {
    Frame::Array(vec![Frame::bulk(key), Frame::Array(elems)])
}

fn lmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let p = match parse_mpop(args, 1, false) {
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

/// What a blocked client waits to do once a key it watches is ready.
#[derive(Clone, Debug)]
pub(crate) enum BlockOp {
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
    /// BZPOPMIN/BZPOPMAX: reply `[key, member, score]`.
    ZPop { min: bool },
    /// BZMPOP: reply `[key, [[member, score]...]]`.
    ZMPop { min: bool, count: usize },
}

/// Serves one blocked client on ready `key` with the shards of `key` (and
/// of a move's destination) locked. Called by the registry.
pub(crate) fn serve_op(locked: &mut Locked<'_>, db: usize, key: &[u8], op: &BlockOp) -> Served {
    let is_list = match locked.shard(db, key).value(key) {
        Some(Value::List(l)) if !l.is_empty() => true,
        Some(Value::ZSet(z)) if !z.is_empty() => false,
        _ => return Served::Nothing,
    };
    let wants_list = matches!(
        op,
        BlockOp::Pop { .. } | BlockOp::MPop { .. } | BlockOp::Move { .. }
    );
    if wants_list != is_list {
        return Served::WrongKind;
    }
    let s = locked.shard(db, key);
    match op {
        BlockOp::Pop { left } => match pop_one(s, key, *left) {
            Ok(Some(v)) => {
                Served::Reply(Frame::Array(vec![Frame::bulk(key), Frame::Bulk(v)]), None)
            }
            _ => Served::Nothing,
        },
        BlockOp::MPop { left, count } => match pop_n(s, key, *left, *count) {
            Ok(Some(v)) if !v.is_empty() => Served::Reply(
                mpop_reply(key, v.into_iter().map(Frame::Bulk).collect()),
                None,
            ),
            _ => Served::Nothing,
        },
        BlockOp::Move {
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
        BlockOp::ZPop { min } => match zpop(s, key, *min, 1) {
            Ok(mut v) if !v.is_empty() => {
                let (m, score) = v.swap_remove(0);
                Served::Reply(bzpop_reply(key, m, score), None)
            }
            _ => Served::Nothing,
        },
        BlockOp::ZMPop { min, count } => match zpop(s, key, *min, *count) {
            Ok(v) if !v.is_empty() => Served::Reply(zmpop_reply(key, &v), None),
            _ => Served::Nothing,
        },
    }
}

/// Whether the calling client may block: not inside MULTI/EXEC (nor any
/// other batch that runs commands under the exclusive gate, e.g. a future
/// script runner), where Redis runs blocking commands as their
/// non-blocking form and replies the timeout reply at once.
pub(crate) fn may_block(ctx: &Ctx<'_>) -> bool {
    // A non-exclusive command runs with the gate held for read; finding it
    // held exclusively means our caller (EXEC) holds it for the whole batch.
    ctx.session.multi.is_none() && !ctx.ks.engine().gate.is_locked_exclusive()
}

/// Longest timeout honoured as such; longer ones block forever (Redis
/// adds it to the clock in a 64-bit integer, where it cannot expire either).
const MAX_TIMEOUT_MS: i64 = 100 * 365 * 24 * 3600 * 1000;

/// Parses a blocking timeout in seconds as Redis 7.0's
/// `getTimeoutFromObjectOrReply` does: a float, rounded up to whole
/// milliseconds; `None` means forever (0, or a tiny negative that rounds
/// to 0).
pub(crate) fn parse_timeout(a: &[u8]) -> Result<Option<Duration>, Frame> {
    let Some(secs) = parse_float(a) else {
        return Err(err("ERR timeout is not a float or out of range"));
    };
    let ms = (secs * 1000.0).ceil();
    // C converts out-of-range doubles to LLONG_MIN on x86: "negative".
    if !(0.0..9_223_372_036_854_775_808.0).contains(&ms) {
        return Err(err("ERR timeout is negative"));
    }
    let ms = ms as i64;
    if ms == 0 || ms > MAX_TIMEOUT_MS {
        return Ok(None);
    }
    Ok(Some(Duration::from_millis(ms.unsigned_abs())))
}

fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
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
        BlockOp::Pop { left },
        timeout,
        Frame::NullArray,
        Frame::NullArray,
    )
}

/// Blocks (the shards must still be locked by the caller) or, when the
/// client may not block, replies `no_block` at once.
fn block_or_timeout(
    ctx: &mut Ctx<'_>,
    keys: Vec<Bytes>,
    op: BlockOp,
    timeout: Option<Duration>,
    timeout_reply: Frame,
    no_block: Frame,
) -> Frame {
    if !may_block(ctx) {
        return no_block;
    }
    let pending = block_on_keys(ctx.ks, ctx.db(), keys, op, deadline(timeout), timeout_reply);
    ctx.block(pending)
}

fn blmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let p = match parse_mpop(args, 2, false) {
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
    let op = BlockOp::MPop {
        left: p.first,
        count: p.count,
    };
    block_or_timeout(
        ctx,
        p.keys.to_vec(),
        op,
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
    let op = BlockOp::Move {
        from_left,
        to_left,
        dest: own(dst),
    };
    block_or_timeout(
        ctx,
        vec![own(src)],
        op,
        timeout,
        Frame::NullArray,
        Frame::Null,
    )
}

// ---------------------------------------------------------------------------
// Blocking sorted-set pops

/// Pops up to `count` members with the lowest (`min`) or highest scores
/// with the sorted-set family's ZPOP core (empty when the key is absent).
fn zpop(
    s: &mut Shard<'_>,
    key: &[u8],
    min: bool,
    count: usize,
) -> Result<Vec<(Bytes, f64)>, Frame> {
    super::zset::zpop(s, key, if min { End::Min } else { End::Max }, count)
}

fn bzpopmin(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    bzpop(ctx, args, true)
}
fn bzpopmax(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    bzpop(ctx, args, false)
}

/// The non-blocking attempt of the sorted-set pops: pops from the first
/// existing key; `count` None gives BZPOPMIN's `[key, member, score]`.
fn try_pop_zsets(
    ctx: &Ctx<'_>,
    locked: &mut Locked<'_>,
    keys: &[Bytes],
    min: bool,
    count: Option<usize>,
) -> Option<Frame> {
    let db = ctx.db();
    for key in keys {
        let s = locked.shard(db, key);
        match zpop(s, key, min, count.unwrap_or(1)) {
            Ok(v) if v.is_empty() => continue,
            // The ZPOP core counts its own changes.
            Ok(mut v) => {
                return Some(match count {
                    None => {
                        let (m, score) = v.swap_remove(0);
                        bzpop_reply(key, m, score)
                    }
                    Some(_) => zmpop_reply(key, &v),
                });
            }
            Err(e) => return Some(e),
        }
    }
    None
}

fn bzpop(ctx: &mut Ctx<'_>, args: &[Bytes], min: bool) -> Frame {
    let timeout = match parse_timeout(arg(args, args.len() - 1)) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let keys = args.get(1..args.len() - 1).unwrap_or_default();
    let db = ctx.db();
    let mut locked = ctx.lock_keys(keys.iter().map(|k| (db, &k[..])));
    if let Some(f) = try_pop_zsets(ctx, &mut locked, keys, min, None) {
        return f;
    }
    block_or_timeout(
        ctx,
        keys.to_vec(),
        BlockOp::ZPop { min },
        timeout,
        Frame::NullArray,
        Frame::NullArray,
    )
}

fn bzmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let p = match parse_mpop(args, 2, true) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let timeout = match parse_timeout(arg(args, 1)) {
        Ok(t) => t,
        Err(e) => return e,
    };
    let db = ctx.db();
    let mut locked = ctx.lock_keys(p.keys.iter().map(|k| (db, &k[..])));
    if let Some(f) = try_pop_zsets(ctx, &mut locked, p.keys, p.first, Some(p.count)) {
        return f;
    }
    let op = BlockOp::ZMPop {
        min: p.first,
        count: p.count,
    };
    block_or_timeout(
        ctx,
        p.keys.to_vec(),
        op,
        timeout,
        Frame::NullArray,
        Frame::NullArray,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
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

    #[test]
    fn timeouts_parse_as_redis() {
        assert_eq!(parse_timeout(b"0").unwrap(), None);
        assert_eq!(parse_timeout(b"-0.0001").unwrap(), None);
        assert_eq!(
            parse_timeout(b"0.0001").unwrap(),
            Some(Duration::from_millis(1))
        );
        assert_eq!(
            parse_timeout(b"1.5").unwrap(),
            Some(Duration::from_millis(1500))
        );
        let neg = err("ERR timeout is negative");
        let bad = err("ERR timeout is not a float or out of range");
        for (a, want) in [
            ("-1", &neg),
            ("inf", &neg),
            ("1e17", &neg),
            ("abc", &bad),
            ("nan", &bad),
            (" 1", &bad),
            ("", &bad),
        ] {
            assert_eq!(&parse_timeout(a.as_bytes()).unwrap_err(), want, "{a}");
        }
        // Redis computes in long double; f64 rounds 9223372036854775 up past
        // 2^63 ms ("negative"), a documented edge. Just below still blocks.
        assert_eq!(parse_timeout(b"9223372036854774").unwrap(), None);
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
