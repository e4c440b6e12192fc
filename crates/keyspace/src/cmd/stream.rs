//! Stream commands: XADD, XRANGE, XREVRANGE, XLEN, XDEL, XTRIM, XSETID,
//! XREAD, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM, XGROUP, XINFO.
//!
//! Argument checks, their order and their error texts follow Redis
//! 7.0.15's `t_stream.c`; the value type is [`crate::stream`]. Blocking
//! reads register a [`StreamWait`] with the family-neutral registry
//! (`blocking.rs`); XADD and XGROUP DESTROY signal the key, and the
//! engine signals a stream deleted, expired, flushed or replaced by a
//! value of another type (XREADGROUP waiters then get `-UNBLOCKED`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_resp::{Frame, Protocol};

use super::args::{arg, owned};
use super::{Ctx, ERR_SYNTAX, TableBuilder, err, int, is, parse_int, subcommand};
use crate::blocking::{BlockedOp, Served, block_or_timeout};
use crate::encoding::Limits;
use crate::engine::Locked;
use crate::notify::Class;
use crate::stream::{AppendError, Group, INVALID_ENTRIES_READ, NodeLimits, Stream, StreamId, Trim};
use crate::value::Value;

pub(crate) fn register(t: &mut TableBuilder) {
    t.redis("xadd", xadd);
    t.redis("xrange", xrange);
    t.redis("xrevrange", xrevrange);
    t.redis("xlen", xlen);
    t.redis("xdel", xdel);
    t.redis("xtrim", xtrim);
    t.redis("xsetid", xsetid);
    t.redis("xread", xread);
    t.redis("xreadgroup", xread);
    t.redis("xack", xack);
    t.redis("xpending", xpending);
    t.redis("xclaim", xclaim);
    t.redis("xautoclaim", xautoclaim);
    t.redis_with("xgroup", |s| s.subs(XGROUP_SUBS), xgroup);
    t.redis_with("xinfo", |s| s.subs(XINFO_SUBS), xinfo);
}

const XGROUP_SUBS: &[(&str, i32)] = &[
    ("create", -5),
    ("createconsumer", 5),
    ("delconsumer", 5),
    ("destroy", 4),
    ("setid", -5),
    ("help", 2),
];

const XINFO_SUBS: &[(&str, i32)] = &[("consumers", 4), ("groups", 3), ("stream", -3), ("help", 2)];

const ERR_INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

// ---------------------------------------------------------------------------
// Parsing

/// Redis' `string2ull`: `string2ll` for the canonical form, else
/// `strtoull` (leading spaces, a sign, leading zeros; a `-` negates).
fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(v) = crate::num::string2ll(s) {
        return u64::try_from(v).ok();
    }
    let (i, neg) = crate::num::c_sign_prefix(s);
    let digits = s.get(i..)?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// Redis' `streamGenericParseIDOrReply`. `star_seq`: `<ms>-*` is allowed
/// (XADD), reported as `seq_given == false`.
fn parse_id_full(
    a: &[u8],
    missing_seq: u64,
    strict: bool,
    star_seq: bool,
) -> Result<(StreamId, bool), Frame> {
    let invalid = || err(ERR_INVALID_ID);
    if a.len() > 127 {
        return Err(invalid());
    }
    if a == b"-" || a == b"+" {
        if strict {
            return Err(invalid());
        }
        return Ok((
            if a == b"-" {
                StreamId::MIN
            } else {
                StreamId::MAX
            },
            true,
        ));
    }
    // The C code stops at a NUL byte.
    let a = a.split(|&c| c == 0).next().unwrap_or_default();
    let (ms_part, seq_part) = match a.iter().position(|&c| c == b'-') {
        Some(p) => (&a[..p], Some(&a[p + 1..])),
        None => (a, None),
    };
    let ms = string2ull(ms_part).ok_or_else(invalid)?;
    match seq_part {
        None => Ok((StreamId::new(ms, missing_seq), true)),
        Some(b"*") if star_seq => Ok((StreamId::new(ms, 0), false)),
        Some(s) => Ok((StreamId::new(ms, string2ull(s).ok_or_else(invalid)?), true)),
    }
}

/// A strict ID (`-` and `+` refused).
fn parse_strict(a: &[u8]) -> Result<StreamId, Frame> {
    parse_id_full(a, 0, true, false).map(|(id, _)| id)
}

/// A range bound: `-`, `+`, an ID, or `(` ID for an exclusive bound.
fn parse_interval(a: &[u8], missing_seq: u64) -> Result<(StreamId, bool), Frame> {
    if a.len() > 1 && a.first() == Some(&b'(') {
        let id = parse_id_full(&a[1..], missing_seq, true, false)?.0;
        Ok((id, true))
    } else {
        Ok((parse_id_full(a, missing_seq, false, false)?.0, false))
    }
}

/// The start of a range, after an exclusive bound.
fn range_start(a: &[u8]) -> Result<StreamId, Frame> {
    let (id, ex) = parse_interval(a, 0)?;
    if ex {
        id.incr()
            .ok_or_else(|| err("ERR invalid start ID for the interval"))
    } else {
        Ok(id)
    }
}

fn range_end(a: &[u8]) -> Result<StreamId, Frame> {
    let (id, ex) = parse_interval(a, u64::MAX)?;
    if ex {
        id.decr()
            .ok_or_else(|| err("ERR invalid end ID for the interval"))
    } else {
        Ok(id)
    }
}

fn int_with(a: &[u8], msg: &'static str) -> Result<i64, Frame> {
    crate::num::string2ll(a).ok_or_else(|| err(msg))
}

fn node_limits() -> NodeLimits {
    let l = Limits::current();
    NodeLimits {
        max_bytes: l.stream_node_bytes,
        max_entries: l.stream_node_entries,
    }
}

/// XADD's and XTRIM's trimming options, and XADD's ID.
#[derive(Default)]
struct AddArgs {
    trim: Option<Trim>,
    approx: bool,
    limit: u64,
    /// `Some((id, seq_given))` for an explicit ID.
    id: Option<(StreamId, bool)>,
    nomkstream: bool,
    /// Index of the ID argument (XADD).
    id_pos: usize,
}

/// Redis' `streamParseAddOrTrimArgsOrReply`.
fn parse_add_trim(args: &[Bytes], xadd: bool) -> Result<AddArgs, Frame> {
    let mut p = AddArgs::default();
    let mut limit: Option<i64> = None;
    let mut i = 2;
    let both = "ERR syntax error, MAXLEN and MINID options at the same time are not compatible";
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = arg(args, i);
        if xadd && opt == b"*" {
            break;
        } else if is(opt, "maxlen") && more > 0 {
            if p.trim.is_some() {
                return Err(err(both));
            }
            p.approx = false;
            let next = arg(args, i + 1);
            if more >= 2 && next == b"~" {
                p.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let n = parse_int(arg(args, i + 1))?;
            if n < 0 {
                return Err(err("ERR The MAXLEN argument must be >= 0."));
            }
            i += 1;
            p.trim = Some(Trim::MaxLen(n.unsigned_abs()));
        } else if is(opt, "minid") && more > 0 {
            if p.trim.is_some() {
                return Err(err(both));
            }
            p.approx = false;
            let next = arg(args, i + 1);
            if more >= 2 && next == b"~" {
                p.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let id = parse_strict(arg(args, i + 1))?;
            i += 1;
            p.trim = Some(Trim::MinId(id));
        } else if is(opt, "limit") && more > 0 {
            let n = parse_int(arg(args, i + 1))?;
            if n < 0 {
                return Err(err("ERR The LIMIT argument must be >= 0."));
            }
            limit = Some(n);
            i += 1;
        } else if xadd && is(opt, "nomkstream") {
            p.nomkstream = true;
        } else if xadd {
            p.id = Some(parse_id_full(opt, 0, true, true)?);
            break;
        } else {
            return Err(err(ERR_SYNTAX));
        }
        i += 1;
    }
    p.id_pos = i;
    if limit.is_some_and(|l| l != 0) && p.trim.is_none() {
        return Err(err(
            "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && p.trim.is_none() {
        return Err(err(
            "ERR syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    match limit {
        Some(l) => {
            if !p.approx {
                return Err(err(
                    "ERR syntax error, LIMIT cannot be used without the special ~ option",
                ));
            }
            p.limit = l.unsigned_abs();
        }
        None if p.approx => {
            let n = 100u64.saturating_mul(Limits::current().stream_node_entries as u64);
            p.limit = if n == 0 || n > 10_000 { 10_000 } else { n };
        }
        None => p.limit = 0,
    }
    Ok(p)
}

// ---------------------------------------------------------------------------
// Replies

fn id_frame(id: StreamId) -> Frame {
    Frame::Bulk(id.to_bytes())
}

fn entry_frame(id: StreamId, fields: Vec<(Bytes, Bytes)>) -> Frame {
    let mut fv = Vec::with_capacity(fields.len() * 2);
    for (f, v) in fields {
        fv.push(Frame::Bulk(f));
        fv.push(Frame::Bulk(v));
    }
    Frame::Array(vec![id_frame(id), Frame::Array(fv)])
}

fn entries_frame(entries: Vec<(StreamId, Vec<(Bytes, Bytes)>)>) -> Frame {
    Frame::Array(
        entries
            .into_iter()
            .map(|(id, f)| entry_frame(id, f))
            .collect(),
    )
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn read_stream(v: Option<&Value>) -> Result<Option<&Stream>, Frame> {
    match v {
        None => Ok(None),
        Some(v) => v.as_stream().map(Some).map_err(Frame::from),
    }
}

fn nogroup_key_group(key: &[u8], group: &[u8]) -> Frame {
    Frame::error(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ))
}

// ---------------------------------------------------------------------------
// XADD, XRANGE, XLEN, XDEL, XTRIM, XSETID

fn xadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let p = match parse_add_trim(args, true) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let field_pos = p.id_pos + 1;
    let nf = args.len().saturating_sub(field_pos);
    if nf < 2 || nf % 2 == 1 {
        return Frame::error("ERR wrong number of arguments for 'xadd' command".to_string());
    }
    if let Some((id, true)) = p.id
        && id.is_zero()
    {
        return err("ERR The ID specified in XADD must be greater than 0-0");
    }
    let pairs: Vec<(&[u8], &[u8])> = args
        .get(field_pos..)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|c| (&c[0][..], &c[1][..]))
        .collect();
    let key = arg(args, 1);
    let now = ctx.now_ms();
    let limits = node_limits();
    let mut shard = ctx.shard(key);
    let exists = match read_stream(shard.value(key)) {
        Err(e) => return e,
        Ok(None) if p.nomkstream => return Frame::Null,
        Ok(None) => false,
        Ok(Some(s)) => {
            if s.last_id == StreamId::MAX {
                return err(
                    "ERR The stream has exhausted the last possible ID, unable to add more items",
                );
            }
            if let Err(e) = s.resolve_id(p.id, now) {
                return append_error(e);
            }
            true
        }
    };
    let trim = |s: &mut Stream| match p.trim {
        Some(how) => s.trim(how, p.approx, p.limit),
        None => 0,
    };
    let (id, trimmed) = if exists {
        let Some(mut e) = shard.entry_mut(key) else {
            return Frame::Null;
        };
        let Ok(s) = e.value_mut().as_stream_mut() else {
            return super::wrongtype();
        };
        match s.add(p.id, &pairs, now, limits) {
            Ok(id) => (id, trim(s)),
            Err(e) => return append_error(e),
        }
    } else {
        let mut s = Stream::new();
        match s.add(p.id, &pairs, now, limits) {
            Ok(id) => {
                let trimmed = trim(&mut s);
                shard.set(key, Value::Stream(Arc::new(s)), None);
                (id, trimmed)
            }
            Err(e) => return append_error(e),
        }
    };
    // Redis' order: `xadd`, then `xtrim` when MAXLEN/MINID removed entries.
    shard.notify(Class::Stream, "xadd", key);
    if trimmed > 0 {
        shard.notify(Class::Stream, "xtrim", key);
    }
    ctx.ks.signal_key_ready(ctx.db(), key);
    id_frame(id)
}

fn append_error(e: AppendError) -> Frame {
    match e {
        AppendError::NotGreater => {
            err("ERR The ID specified in XADD is equal or smaller than the target stream top item")
        }
        AppendError::TooLarge => err("ERR Elements are too large to be stored"),
    }
}

fn xrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    range_generic(ctx, args, false)
}

fn xrevrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    range_generic(ctx, args, true)
}

fn range_generic(ctx: &mut Ctx<'_>, args: &[Bytes], rev: bool) -> Frame {
    let (start_arg, end_arg) = if rev {
        (arg(args, 3), arg(args, 2))
    } else {
        (arg(args, 2), arg(args, 3))
    };
    let start = match range_start(start_arg) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let end = match range_end(end_arg) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if is(arg(args, j), "count") && j + 1 < args.len() {
            count = match parse_int(arg(args, j + 1)) {
                Ok(n) => n.max(0),
                Err(e) => return e,
            };
            j += 2;
        } else {
            return err(ERR_SYNTAX);
        }
    }
    let key = arg(args, 1);
    let mut shard = ctx.shard(key);
    match read_stream(shard.value(key)) {
        Err(e) => e,
        Ok(None) => Frame::Array(Vec::new()),
        Ok(Some(_)) if count == 0 => Frame::NullArray,
        Ok(Some(s)) => {
            let count = usize::try_from(count).unwrap_or(0);
            entries_frame(s.collect_range(start, end, rev, count))
        }
    }
}

fn xlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    match read_stream(ctx.shard(key).value(key)) {
        Err(e) => e,
        Ok(None) => Frame::Integer(0),
        Ok(Some(s)) => Frame::Integer(i64::try_from(s.len()).unwrap_or(i64::MAX)),
    }
}

fn xdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let mut shard = ctx.shard(key);
    let ids = match read_stream(shard.value(key)) {
        Err(e) => return e,
        Ok(None) => return Frame::Integer(0),
        Ok(Some(s)) => {
            let mut ids = Vec::with_capacity(args.len() - 2);
            for a in args.get(2..).unwrap_or_default() {
                match parse_strict(a) {
                    Ok(id) => ids.push(id),
                    Err(e) => return e,
                }
            }
            // Nothing to delete: no write (no copy under a view).
            if !ids.iter().any(|id| s.contains(*id)) {
                return Frame::Integer(0);
            }
            ids
        }
    };
    let Some(mut e) = shard.entry_mut(key) else {
        return Frame::Integer(0);
    };
    let Ok(s) = e.value_mut().as_stream_mut() else {
        return super::wrongtype();
    };
    let deleted = ids.iter().filter(|id| s.delete(**id)).count();
    if deleted > 0 {
        shard.notify(Class::Stream, "xdel", key);
    }
    shard.add_changes(deleted.saturating_sub(1) as u64);
    int(deleted)
}

fn xtrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let mut shard = ctx.shard(key);
    let noop = match read_stream(shard.value(key)) {
        Err(e) => return e,
        Ok(None) => return Frame::Integer(0),
        Ok(Some(s)) => s,
    };
    let p = match parse_add_trim(args, false) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let nothing = match p.trim {
        Some(Trim::MaxLen(n)) => noop.len() <= n,
        Some(Trim::MinId(id)) => noop.is_empty() || noop.first_id >= id,
        None => true,
    };
    if nothing {
        return Frame::Integer(0);
    }
    let Some(mut e) = shard.entry_mut(key) else {
        return Frame::Integer(0);
    };
    let Ok(s) = e.value_mut().as_stream_mut() else {
        return super::wrongtype();
    };
    let n = p.trim.map_or(0, |how| s.trim(how, p.approx, p.limit));
    if n > 0 {
        shard.notify(Class::Stream, "xtrim", key);
    }
    Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

fn xsetid(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let id = match parse_strict(arg(args, 2)) {
        Ok(id) => id,
        Err(e) => return e,
    };
    let mut entries_added: i64 = -1;
    let mut max_xdel = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = arg(args, i);
        if is(opt, "entriesadded") && more > 0 {
            entries_added = match parse_int(arg(args, i + 1)) {
                Ok(n) if n < 0 => return err("ERR entries_added must be positive"),
                Ok(n) => n,
                Err(e) => return e,
            };
            i += 2;
        } else if is(opt, "maxdeletedid") && more > 0 {
            max_xdel = match parse_strict(arg(args, i + 1)) {
                Ok(m) if id < m => {
                    return err(
                        "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                    );
                }
                Ok(m) => m,
                Err(e) => return e,
            };
            i += 2;
        } else {
            return err(ERR_SYNTAX);
        }
    }
    let key = arg(args, 1);
    let mut shard = ctx.shard(key);
    match read_stream(shard.value(key)) {
        Err(e) => return e,
        Ok(None) => return err("ERR no such key"),
        Ok(Some(s)) => {
            if !s.is_empty() {
                if id < s.last_live() {
                    return err(
                        "ERR The ID specified in XSETID is smaller than the target stream top item",
                    );
                }
                if entries_added != -1 && s.len() > entries_added.unsigned_abs() {
                    return err(
                        "ERR The entries_added specified in XSETID is smaller than the target stream length",
                    );
                }
            }
        }
    }
    let Some(mut e) = shard.entry_mut(key) else {
        return err("ERR no such key");
    };
    let Ok(s) = e.value_mut().as_stream_mut() else {
        return super::wrongtype();
    };
    s.last_id = id;
    if entries_added != -1 {
        s.entries_added = entries_added.unsigned_abs();
    }
    if !max_xdel.is_zero() {
        s.max_deleted = max_xdel;
    }
    shard.notify(Class::Stream, "xsetid", key);
    Frame::ok()
}

// ---------------------------------------------------------------------------
// XGROUP

fn xgroup(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let sub = match subcommand("xgroup", args, XGROUP_SUBS) {
        Ok(s) => s,
        Err(e) => return e,
    };
    if sub == "help" {
        return help(&[
            "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
            "HELP",
            "    Prints this help.",
        ]);
    }
    let syntax = || {
        Frame::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try XGROUP HELP.",
            String::from_utf8_lossy(arg(args, 1))
        ))
    };
    let entries_read_arg = |a: &[u8]| -> Result<i64, Frame> {
        let n = parse_int(a)?;
        if n < 0 && n != INVALID_ENTRIES_READ {
            return Err(err("ERR value for ENTRIESREAD must be positive or -1"));
        }
        Ok(n)
    };
    let mut mkstream = false;
    let mut entries_read = INVALID_ENTRIES_READ;
    match sub {
        "create" => {
            let mut i = 5;
            while i < args.len() {
                if is(arg(args, i), "mkstream") {
                    mkstream = true;
                    i += 1;
                } else if is(arg(args, i), "entriesread") && i + 1 < args.len() {
                    entries_read = match entries_read_arg(arg(args, i + 1)) {
                        Ok(n) => n,
                        Err(e) => return e,
                    };
                    i += 2;
                } else {
                    return syntax();
                }
            }
        }
        "setid" => {
            if args.len() == 7 {
                if !is(arg(args, 5), "entriesread") {
                    return syntax();
                }
                entries_read = match entries_read_arg(arg(args, 6)) {
                    Ok(n) => n,
                    Err(e) => return e,
                };
            } else if args.len() != 5 {
                return syntax();
            }
        }
        _ => {}
    }
    let key = arg(args, 2);
    let group = arg(args, 3);
    let now = ctx.now_ms();
    let mut shard = ctx.shard(key);
    let (exists, has_group, last_id) = match read_stream(shard.value(key)) {
        Err(e) => return e,
        Ok(None) => (false, false, StreamId::MIN),
        Ok(Some(s)) => (true, s.group(group).is_some(), s.last_id),
    };
    if !exists && !mkstream {
        return err(
            "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
        );
    }
    if !has_group && matches!(sub, "setid" | "createconsumer" | "delconsumer") {
        return Frame::error(format!(
            "NOGROUP No such consumer group '{}' for key name '{}'",
            String::from_utf8_lossy(group),
            String::from_utf8_lossy(key)
        ));
    }
    match sub {
        "create" => {
            let id = if arg(args, 4) == b"$" {
                last_id
            } else {
                match parse_strict(arg(args, 4)) {
                    Ok(id) => id,
                    Err(e) => return e,
                }
            };
            if has_group {
                return err("BUSYGROUP Consumer Group name already exists");
            }
            if !exists {
                let mut s = Stream::new();
                s.create_group(group, Group::new(id, entries_read));
                shard.set(key, Value::Stream(Arc::new(s)), None);
                shard.notify(Class::Stream, "xgroup-create", key);
                return Frame::ok();
            }
            let Some(mut e) = shard.entry_mut(key) else {
                return Frame::Null;
            };
            if let Ok(s) = e.value_mut().as_stream_mut() {
                s.create_group(group, Group::new(id, entries_read));
            }
            shard.notify(Class::Stream, "xgroup-create", key);
            Frame::ok()
        }
        "setid" => {
            let id = if arg(args, 4) == b"$" {
                last_id
            } else {
                match parse_id_full(arg(args, 4), 0, false, false) {
                    Ok((id, _)) => id,
                    Err(e) => return e,
                }
            };
            let Some(mut e) = shard.entry_mut(key) else {
                return Frame::Null;
            };
            if let Ok(s) = e.value_mut().as_stream_mut()
                && let Some(g) = s.group_mut(group)
            {
                g.last_id = id;
                g.entries_read = entries_read;
            }
            shard.notify(Class::Stream, "xgroup-setid", key);
            Frame::ok()
        }
        "destroy" => {
            if !has_group {
                return Frame::Integer(0);
            }
            let Some(mut e) = shard.entry_mut(key) else {
                return Frame::Integer(0);
            };
            if let Ok(s) = e.value_mut().as_stream_mut() {
                s.destroy_group(group);
            }
            shard.notify(Class::Stream, "xgroup-destroy", key);
            // Blocked XREADGROUP clients of the group get -NOGROUP.
            ctx.ks.signal_key_ready(ctx.db(), key);
            Frame::Integer(1)
        }
        "createconsumer" => {
            let name = arg(args, 4);
            let exists = shard
                .value(key)
                .and_then(|v| v.as_stream().ok())
                .and_then(|s| s.group(group))
                .is_some_and(|g| g.consumers.contains_key(name));
            if exists {
                return Frame::Integer(0);
            }
            let Some(mut e) = shard.entry_mut(key) else {
                return Frame::Integer(0);
            };
            let created = e
                .value_mut()
                .as_stream_mut()
                .ok()
                .and_then(|s| s.group_mut(group))
                .is_some_and(|g| g.create_consumer(name, now));
            if created {
                shard.notify(Class::Stream, "xgroup-createconsumer", key);
            }
            Frame::Integer(i64::from(created))
        }
        "delconsumer" => {
            let name = arg(args, 4);
            let exists = shard
                .value(key)
                .and_then(|v| v.as_stream().ok())
                .and_then(|s| s.group(group))
                .is_some_and(|g| g.consumers.contains_key(name));
            if !exists {
                return Frame::Integer(0);
            }
            let Some(mut e) = shard.entry_mut(key) else {
                return Frame::Integer(0);
            };
            let pending = e
                .value_mut()
                .as_stream_mut()
                .ok()
                .and_then(|s| s.group_mut(group))
                .and_then(|g| g.delete_consumer(name))
                .unwrap_or(0);
            shard.notify(Class::Stream, "xgroup-delconsumer", key);
            int(pending)
        }
        _ => syntax(),
    }
}

fn help(lines: &[&'static str]) -> Frame {
    Frame::Array(lines.iter().map(|l| Frame::simple(l)).collect())
}

// ---------------------------------------------------------------------------
// XACK, XPENDING, XCLAIM, XAUTOCLAIM

fn xack(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let group = arg(args, 2);
    let mut shard = ctx.shard(key);
    let ids = match read_stream(shard.value(key)) {
        Err(e) => return e,
        Ok(None) => return Frame::Integer(0),
        Ok(Some(s)) => {
            let Some(g) = s.group(group) else {
                return Frame::Integer(0);
            };
            let mut ids = Vec::with_capacity(args.len() - 3);
            for a in args.get(3..).unwrap_or_default() {
                match parse_strict(a) {
                    Ok(id) => ids.push(id),
                    Err(e) => return e,
                }
            }
            if !ids.iter().any(|id| g.pel.contains_key(id)) {
                return Frame::Integer(0);
            }
            ids
        }
    };
    let Some(mut e) = shard.entry_mut(key) else {
        return Frame::Integer(0);
    };
    let acked = e
        .value_mut()
        .as_stream_mut()
        .ok()
        .and_then(|s| s.group_mut(group))
        .map_or(0, |g| ids.iter().filter(|id| g.ack(**id)).count());
    shard.add_changes(acked.saturating_sub(1) as u64);
    int(acked)
}

fn xpending(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let justinfo = args.len() == 3;
    if args.len() != 3 && !(6..=9).contains(&args.len()) {
        return err(ERR_SYNTAX);
    }
    let mut start = StreamId::MIN;
    let mut end = StreamId::MAX;
    let mut count: i64 = 0;
    let mut minidle: i64 = 0;
    let mut consumer: Option<&[u8]> = None;
    if args.len() >= 6 {
        let mut at = 3;
        if is(arg(args, 3), "idle") {
            minidle = match parse_int(arg(args, 4)) {
                Ok(n) => n,
                Err(e) => return e,
            };
            if args.len() < 8 {
                return err(ERR_SYNTAX);
            }
            at += 2;
        }
        count = match parse_int(arg(args, at + 2)) {
            Ok(n) => n.max(0),
            Err(e) => return e,
        };
        start = match range_start(arg(args, at)) {
            Ok(s) => s,
            Err(e) => return e,
        };
        end = match range_end(arg(args, at + 1)) {
            Ok(s) => s,
            Err(e) => return e,
        };
        if at + 3 < args.len() {
            consumer = Some(arg(args, at + 3));
        }
    }
    let key = arg(args, 1);
    let group = arg(args, 2);
    let now = ctx.now_ms();
    let mut shard = ctx.shard(key);
    let g = match read_stream(shard.value(key)) {
        Err(e) => return e,
        Ok(s) => match s.and_then(|s| s.group(group)) {
            Some(g) => g,
            None => return nogroup_key_group(key, group),
        },
    };
    if justinfo {
        let (Some((first, _)), Some((last, _))) = (g.pel.first_key_value(), g.pel.last_key_value())
        else {
            return Frame::Array(vec![
                Frame::Integer(0),
                Frame::Null,
                Frame::Null,
                Frame::NullArray,
            ]);
        };
        let consumers = g
            .consumers
            .iter()
            .filter(|(_, c)| !c.pel.is_empty())
            .map(|(n, c)| {
                Frame::Array(vec![
                    Frame::Bulk(n.clone()),
                    Frame::Bulk(Bytes::from(c.pel.len().to_string())),
                ])
            })
            .collect();
        return Frame::Array(vec![
            int(g.pel.len()),
            id_frame(*first),
            id_frame(*last),
            Frame::Array(consumers),
        ]);
    }
    let ids: Vec<StreamId> = match consumer {
        Some(name) => match g.consumers.get(name) {
            None => return Frame::Array(Vec::new()),
            Some(c) => c.pel.range(start..).copied().collect(),
        },
        None => g.pel.range(start..).map(|(id, _)| *id).collect(),
    };
    let mut out = Vec::new();
    for id in ids {
        if count == 0 || id > end {
            break;
        }
        let Some(n) = g.pel.get(&id) else { continue };
        if minidle != 0 && now - n.delivery_time < minidle {
            continue;
        }
        count -= 1;
        out.push(Frame::Array(vec![
            id_frame(id),
            Frame::Bulk(n.consumer.clone()),
            Frame::Integer((now - n.delivery_time).max(0)),
            Frame::Integer(i64::try_from(n.delivery_count).unwrap_or(i64::MAX)),
        ]));
    }
    Frame::Array(out)
}

fn xclaim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let group = arg(args, 2);
    let name = owned(arg(args, 3));
    let now = ctx.now_ms();
    let mut shard = ctx.shard(key);
    match read_stream(shard.value(key)) {
        Err(e) => return e,
        Ok(s) => {
            if s.and_then(|s| s.group(group)).is_none() {
                return nogroup_key_group(key, group);
            }
        }
    }
    let minidle = match int_with(
        arg(args, 4),
        "ERR Invalid min-idle-time argument for XCLAIM",
    ) {
        Ok(n) => n.max(0),
        Err(e) => return e,
    };
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match parse_strict(arg(args, j)) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let (mut force, mut justid) = (false, false);
    let mut retrycount: i64 = -1;
    let mut deliverytime: i64 = -1;
    let mut last_id = StreamId::MIN;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = arg(args, j);
        if is(opt, "force") {
            force = true;
        } else if is(opt, "justid") {
            justid = true;
        } else if is(opt, "idle") && more > 0 {
            j += 1;
            match int_with(arg(args, j), "ERR Invalid IDLE option argument for XCLAIM") {
                Ok(n) => deliverytime = now.wrapping_sub(n),
                Err(e) => return e,
            }
        } else if is(opt, "time") && more > 0 {
            j += 1;
            match int_with(arg(args, j), "ERR Invalid TIME option argument for XCLAIM") {
                Ok(n) => deliverytime = n,
                Err(e) => return e,
            }
        } else if is(opt, "retrycount") && more > 0 {
            j += 1;
            match int_with(
                arg(args, j),
                "ERR Invalid RETRYCOUNT option argument for XCLAIM",
            ) {
                Ok(n) => retrycount = n,
                Err(e) => return e,
            }
        } else if is(opt, "lastid") && more > 0 {
            j += 1;
            match parse_strict(arg(args, j)) {
                Ok(id) => last_id = id,
                Err(e) => return e,
            }
        } else {
            return Frame::error(format!(
                "ERR Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(opt)
            ));
        }
        j += 1;
    }
    if deliverytime == -1 || deliverytime < 0 || deliverytime > now {
        deliverytime = now;
    }
    let Some(mut e) = shard.entry_mut(key) else {
        return Frame::Array(Vec::new());
    };
    let Ok(s) = e.value_mut().as_stream_mut() else {
        return super::wrongtype();
    };
    let Some((view, g)) = s.split_group(group) else {
        return Frame::Array(Vec::new());
    };
    if last_id > g.last_id {
        g.last_id = last_id;
    }
    let mut out = Vec::new();
    let mut consumer_ready = false;
    let mut created_consumer = false;
    for id in ids {
        let entry = view.get(id);
        if entry.is_none() {
            // The entry is gone: its pending record goes too.
            g.ack(id);
            continue;
        }
        let existed = g.pel.contains_key(&id);
        if !existed && !force {
            continue;
        }
        if existed
            && minidle != 0
            && let Some(n) = g.pel.get(&id)
            && now - n.delivery_time < minidle
        {
            continue;
        }
        if !consumer_ready {
            if let Some(c) = g.consumers.get_mut(&name) {
                c.seen_time = now;
            } else {
                g.create_consumer(&name, now);
                created_consumer = true;
            }
            consumer_ready = true;
        }
        if existed {
            g.transfer(id, &name);
        } else {
            g.pel.insert(
                id,
                // Redis creates the NACK as delivered once, then counts
                // this claim as below.
                crate::stream::Nack {
                    consumer: name.clone(),
                    delivery_time: now,
                    delivery_count: 1,
                },
            );
            if let Some(c) = g.consumers.get_mut(&name) {
                c.pel.insert(id);
            }
        }
        if let Some(n) = g.pel.get_mut(&id) {
            n.delivery_time = deliverytime;
            if retrycount >= 0 {
                n.delivery_count = retrycount.unsigned_abs();
            } else if !justid {
                n.delivery_count += 1;
            }
        }
        if justid {
            out.push(id_frame(id));
        } else {
            match entry {
                Some(f) => out.push(entry_frame(id, f)),
                None => out.push(Frame::Null),
            }
        }
    }
    if created_consumer {
        shard.notify(Class::Stream, "xgroup-createconsumer", key);
    }
    Frame::Array(out)
}

fn xautoclaim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let group = arg(args, 2);
    let name = owned(arg(args, 3));
    let minidle = match int_with(
        arg(args, 4),
        "ERR Invalid min-idle-time argument for XAUTOCLAIM",
    ) {
        Ok(n) => n.max(0),
        Err(e) => return e,
    };
    let start = match range_start(arg(args, 5)) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = arg(args, j);
        if is(opt, "count") && more > 0 {
            let max = i64::MAX / 16;
            match crate::num::string2ll(arg(args, j + 1)) {
                Some(n) if (1..=max).contains(&n) => count = n,
                _ => return err("ERR COUNT must be > 0"),
            }
            j += 1;
        } else if is(opt, "justid") {
            justid = true;
        } else {
            return err(ERR_SYNTAX);
        }
        j += 1;
    }
    let now = ctx.now_ms();
    let mut shard = ctx.shard(key);
    match read_stream(shard.value(key)) {
        Err(e) => return e,
        Ok(s) => {
            if s.and_then(|s| s.group(group)).is_none() {
                return nogroup_key_group(key, group);
            }
        }
    }
    let Some(mut e) = shard.entry_mut(key) else {
        return Frame::Array(Vec::new());
    };
    let Ok(s) = e.value_mut().as_stream_mut() else {
        return super::wrongtype();
    };
    let Some((view, g)) = s.split_group(group) else {
        return Frame::Array(Vec::new());
    };
    let mut attempts = count.saturating_mul(10);
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut cursor = start;
    let mut next: Option<StreamId> = None;
    let mut consumer_ready = false;
    let mut created_consumer = false;
    loop {
        if attempts == 0 || count == 0 {
            // Redis' iterator steps once more for the next cursor.
            next = g.pel.range(cursor..).next().map(|(id, _)| *id);
            break;
        }
        attempts -= 1;
        let Some((&id, n)) = g.pel.range(cursor..).next() else {
            break;
        };
        let delivered = n.delivery_time;
        cursor = match id.incr() {
            Some(c) => c,
            None => StreamId::MAX,
        };
        let Some(fields) = view.get(id) else {
            g.ack(id);
            deleted.push(id_frame(id));
            count -= 1;
            if id == StreamId::MAX {
                break;
            }
            continue;
        };
        if minidle != 0 && now - delivered < minidle {
            if id == StreamId::MAX {
                break;
            }
            continue;
        }
        if !consumer_ready {
            if let Some(c) = g.consumers.get_mut(&name) {
                c.seen_time = now;
            } else {
                g.create_consumer(&name, now);
                created_consumer = true;
            }
            consumer_ready = true;
        }
        g.transfer(id, &name);
        if let Some(n) = g.pel.get_mut(&id) {
            n.delivery_time = now;
            if !justid {
                n.delivery_count += 1;
            }
        }
        claimed.push(if justid {
            id_frame(id)
        } else {
            entry_frame(id, fields)
        });
        count -= 1;
        if id == StreamId::MAX {
            break;
        }
    }
    if created_consumer {
        shard.notify(Class::Stream, "xgroup-createconsumer", key);
    }
    Frame::Array(vec![
        id_frame(next.unwrap_or(StreamId::MIN)),
        Frame::Array(claimed),
        Frame::Array(deleted),
    ])
}

// ---------------------------------------------------------------------------
// XINFO

fn xinfo(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let sub = match subcommand("xinfo", args, XINFO_SUBS) {
        Ok(s) => s,
        Err(e) => return e,
    };
    if sub == "help" {
        return help(&[
            "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
            "HELP",
            "    Prints this help.",
        ]);
    }
    let key = arg(args, 2);
    let now = ctx.now_ms();
    let mut shard = ctx.shard(key);
    let s = match read_stream(shard.value(key)) {
        Err(e) => return e,
        Ok(None) => return err("ERR no such key"),
        Ok(Some(s)) => s,
    };
    let map = |pairs: Vec<(&str, Frame)>| {
        Frame::Map(pairs.into_iter().map(|(k, v)| (bulk(k), v)).collect())
    };
    let lag = |g: &Group| s.lag(g).map_or(Frame::Null, Frame::Integer);
    let entries_read = |g: &Group| {
        if g.entries_read == INVALID_ENTRIES_READ {
            Frame::Null
        } else {
            Frame::Integer(g.entries_read)
        }
    };
    match sub {
        "consumers" => {
            let group = arg(args, 3);
            let Some(g) = s.group(group) else {
                return Frame::error(format!(
                    "NOGROUP No such consumer group '{}' for key name '{}'",
                    String::from_utf8_lossy(group),
                    String::from_utf8_lossy(key)
                ));
            };
            Frame::Array(
                g.consumers
                    .iter()
                    .map(|(n, c)| {
                        map(vec![
                            ("name", Frame::Bulk(n.clone())),
                            ("pending", int(c.pel.len())),
                            ("idle", Frame::Integer((now - c.seen_time).max(0))),
                        ])
                    })
                    .collect(),
            )
        }
        "groups" => Frame::Array(
            s.groups()
                .map(|(n, g)| {
                    map(vec![
                        ("name", Frame::Bulk(n.clone())),
                        ("consumers", int(g.consumers.len())),
                        ("pending", int(g.pel.len())),
                        ("last-delivered-id", id_frame(g.last_id)),
                        ("entries-read", entries_read(g)),
                        ("lag", lag(g)),
                    ])
                })
                .collect(),
        ),
        _ => {
            // STREAM <key> [FULL [COUNT <count>]]
            let mut full = false;
            let mut count: i64 = 10;
            let syntax = || {
                Frame::error(format!(
                    "ERR unknown subcommand or wrong number of arguments for '{}'. Try XINFO HELP.",
                    String::from_utf8_lossy(arg(args, 1))
                ))
            };
            if args.len() > 3 {
                if !is(arg(args, 3), "full") {
                    return syntax();
                }
                full = true;
                if args.len() > 4 {
                    if args.len() != 6 || !is(arg(args, 4), "count") {
                        return syntax();
                    }
                    count = match parse_int(arg(args, 5)) {
                        Ok(n) if n < 0 => 10,
                        Ok(n) => n,
                        Err(e) => return e,
                    };
                }
            }
            let u = |n: u64| Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX));
            let mut pairs = vec![
                ("length", u(s.len())),
                ("radix-tree-keys", int(s.block_count())),
                ("radix-tree-nodes", int(rax_nodes_estimate(s.block_count()))),
                ("last-generated-id", id_frame(s.last_id)),
                ("max-deleted-entry-id", id_frame(s.max_deleted)),
                ("entries-added", u(s.entries_added)),
                ("recorded-first-entry-id", id_frame(s.first_id)),
            ];
            if !full {
                let edge = |rev: bool| {
                    s.collect_range(StreamId::MIN, StreamId::MAX, rev, 1)
                        .pop()
                        .map_or(Frame::Null, |(id, f)| entry_frame(id, f))
                };
                pairs.push(("groups", int(s.group_count())));
                pairs.push(("first-entry", edge(false)));
                pairs.push(("last-entry", edge(true)));
                return map(pairs);
            }
            let count = usize::try_from(count).unwrap_or(0);
            pairs.push((
                "entries",
                entries_frame(s.collect_range(StreamId::MIN, StreamId::MAX, false, count)),
            ));
            let take = |n: usize| if count == 0 { n } else { n.min(count) };
            let groups = s
                .groups()
                .map(|(n, g)| {
                    let pel = g
                        .pel
                        .iter()
                        .take(take(g.pel.len()))
                        .map(|(id, nack)| {
                            Frame::Array(vec![
                                id_frame(*id),
                                Frame::Bulk(nack.consumer.clone()),
                                Frame::Integer(nack.delivery_time),
                                u(nack.delivery_count),
                            ])
                        })
                        .collect();
                    let consumers = g
                        .consumers
                        .iter()
                        .map(|(cn, c)| {
                            let cpel = c
                                .pel
                                .iter()
                                .take(take(c.pel.len()))
                                .filter_map(|id| {
                                    let nack = g.pel.get(id)?;
                                    Some(Frame::Array(vec![
                                        id_frame(*id),
                                        Frame::Integer(nack.delivery_time),
                                        u(nack.delivery_count),
                                    ]))
                                })
                                .collect();
                            map(vec![
                                ("name", Frame::Bulk(cn.clone())),
                                ("seen-time", Frame::Integer(c.seen_time)),
                                ("pel-count", int(c.pel.len())),
                                ("pending", Frame::Array(cpel)),
                            ])
                        })
                        .collect();
                    map(vec![
                        ("name", Frame::Bulk(n.clone())),
                        ("last-delivered-id", id_frame(g.last_id)),
                        ("entries-read", entries_read(g)),
                        ("lag", lag(g)),
                        ("pel-count", int(g.pel.len())),
                        ("pending", Frame::Array(pel)),
                        ("consumers", Frame::Array(consumers)),
                    ])
                })
                .collect();
            pairs.push(("groups", Frame::Array(groups)));
            map(pairs)
        }
    }
}

/// XINFO STREAM's `radix-tree-nodes`: Redis counts the nodes of its rax,
/// which cairn does not have. An empty rax has one node; a rax of one
/// key has two (the compressed path and the key's leaf); beyond that the
/// figure depends on how the keys' bytes branch, so this reports the
/// lower bound `keys + 1` (documented in compatibility.md).
fn rax_nodes_estimate(keys: usize) -> usize {
    keys + 1
}

// ---------------------------------------------------------------------------
// XREAD, XREADGROUP

/// Entries returned per stream to a blocked XREAD without COUNT (Redis'
/// `XREAD_BLOCKED_DEFAULT_COUNT`).
const BLOCKED_DEFAULT_COUNT: usize = 1000;

/// A client blocked in XREAD or XREADGROUP.
struct StreamWait {
    /// Each key with the ID entries must be above (XREAD).
    keys: Vec<(Bytes, StreamId)>,
    /// XREADGROUP's group, consumer and NOACK.
    group: Option<(Bytes, Bytes, bool)>,
    count: usize,
    protocol: Protocol,
}

impl BlockedOp for StreamWait {
    fn answers_when_gone(&self) -> bool {
        self.group.is_some()
    }

    fn serve(&self, locked: &mut Locked<'_>, db: usize, key: &[u8]) -> Served {
        let Some(gt) = self
            .keys
            .iter()
            .find(|(k, _)| &k[..] == key)
            .map(|(_, id)| *id)
        else {
            return Served::WrongKind;
        };
        let shard = locked.shard(db, key);
        let now = shard.now_ms();
        let (stream_last, group_last) = match shard.value(key) {
            Some(Value::Stream(s)) => match &self.group {
                None => (s.last_id, gt),
                Some((g, _, _)) => match s.group(g) {
                    Some(grp) => (s.last_id, grp.last_id),
                    None => {
                        return Served::Reply(
                            err(
                                "NOGROUP the consumer group this client was blocked on no longer exists",
                            ),
                            None,
                        );
                    }
                },
            },
            // A group reader's key was deleted or replaced.
            _ if self.group.is_some() => {
                return Served::Reply(err("UNBLOCKED the stream key no longer exists"), None);
            }
            _ => return Served::WrongKind,
        };
        if stream_last <= group_last {
            return Served::WrongKind;
        }
        let start = group_last.incr().unwrap_or(StreamId::MAX);
        let entries = match &self.group {
            None => match shard.value(key) {
                Some(Value::Stream(s)) => s.collect_range(start, StreamId::MAX, false, self.count),
                _ => return Served::WrongKind,
            },
            Some((g, consumer, noack)) => {
                let Some(mut e) = shard.entry_mut(key) else {
                    return Served::WrongKind;
                };
                let Ok(s) = e.value_mut().as_stream_mut() else {
                    return Served::WrongKind;
                };
                let Some((view, grp)) = s.split_group(g) else {
                    return Served::WrongKind;
                };
                let created = touch_consumer(grp, consumer, now);
                let entries = view.deliver(grp, start, self.count, consumer, *noack, now);
                if created {
                    shard.notify(Class::Stream, "xgroup-createconsumer", key);
                }
                entries
            }
        };
        let body = entries_frame(entries);
        let reply = if self.protocol == Protocol::Resp2 {
            Frame::Array(vec![Frame::Array(vec![Frame::bulk(key), body])])
        } else {
            Frame::Map(vec![(Frame::bulk(key), body)])
        };
        Served::Reply(reply, None)
    }
}

/// Looks consumer `name` up (refreshing its seen-time) or creates it.
/// Returns whether it was created (Redis then emits
/// `xgroup-createconsumer`).
fn touch_consumer(g: &mut Group, name: &Bytes, now: i64) -> bool {
    match g.consumers.get_mut(name) {
        Some(c) => {
            c.seen_time = now;
            false
        }
        None => {
            g.create_consumer(name, now);
            true
        }
    }
}

fn xread(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    // Redis reads the streams with `lookupKeyRead`, XREADGROUP too.
    let _reading = crate::stats::reads(true);
    let cmd_name = arg(args, 0);
    let xreadgroup = ctx.command() == "xreadgroup";
    let mut timeout: Option<i64> = None;
    let mut count: i64 = 0;
    let mut streams_at = 0;
    let mut group: Option<(Bytes, Bytes)> = None;
    let mut noack = false;
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let o = arg(args, i);
        if is(o, "block") && more > 0 {
            if ctx.session.script {
                // Redis refuses it outright in scripts (not answered as in
                // MULTI), for backward compatibility.
                return Frame::error(format!(
                    "ERR {} command is not allowed with BLOCK option from scripts",
                    String::from_utf8_lossy(cmd_name)
                ));
            }
            i += 1;
            match int_with(
                arg(args, i),
                "ERR timeout is not an integer or out of range",
            ) {
                Ok(n) if n < 0 => return err("ERR timeout is negative"),
                Ok(n) => timeout = Some(n),
                Err(e) => return e,
            }
        } else if is(o, "count") && more > 0 {
            i += 1;
            count = match parse_int(arg(args, i)) {
                Ok(n) => n.max(0),
                Err(e) => return e,
            };
        } else if is(o, "streams") && more > 0 {
            streams_at = i + 1;
            if !(args.len() - streams_at).is_multiple_of(2) {
                // Redis 7.0.15 words it so for XREADGROUP too.
                return err(
                    "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                );
            }
            break;
        } else if is(o, "group") && more >= 2 {
            if !xreadgroup {
                return err(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                );
            }
            group = Some((owned(arg(args, i + 1)), owned(arg(args, i + 2))));
            i += 2;
        } else if is(o, "noack") {
            if !xreadgroup {
                return err(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                );
            }
            noack = true;
        } else {
            return err(ERR_SYNTAX);
        }
        i += 1;
    }
    if streams_at == 0 {
        return err(ERR_SYNTAX);
    }
    if xreadgroup && group.is_none() {
        return err("ERR Missing GROUP option for XREADGROUP");
    }
    let n = (args.len() - streams_at) / 2;
    let keys = args.get(streams_at..streams_at + n).unwrap_or_default();
    let id_args = args.get(streams_at + n..).unwrap_or_default();
    let db = ctx.db();
    let now = ctx.now_ms();
    let mut locked = ctx.lock_keys(keys.iter().map(|k| (db, &k[..])));
    // Parse the IDs and resolve the groups, in argument order.
    // `None` ID: XREADGROUP's `>`.
    let mut ids: Vec<Option<StreamId>> = Vec::with_capacity(n);
    for (key, raw) in keys.iter().zip(id_args) {
        let shard = locked.shard(db, key);
        let s = match read_stream(shard.value(key)) {
            Err(e) => return e,
            Ok(s) => s,
        };
        if let Some((g, _)) = &group
            && s.and_then(|s| s.group(g)).is_none()
        {
            return Frame::error(format!(
                "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(g)
            ));
        }
        if &raw[..] == b"$" {
            if xreadgroup {
                return err(
                    "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
                );
            }
            ids.push(Some(s.map_or(StreamId::MIN, |s| s.last_id)));
            continue;
        }
        if &raw[..] == b">" {
            if !xreadgroup {
                return err(
                    "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                );
            }
            ids.push(None);
            continue;
        }
        match parse_strict(raw) {
            Ok(id) => ids.push(Some(id)),
            Err(e) => return e,
        }
    }
    let count_u = usize::try_from(count).unwrap_or(0);
    let mut served: Vec<(Frame, Frame)> = Vec::new();
    for (key, id) in keys.iter().zip(&ids) {
        let shard = locked.shard(db, key);
        let Some(Value::Stream(s)) = shard.value(key) else {
            continue;
        };
        match &group {
            None => {
                let gt = id.unwrap_or(StreamId::MAX);
                if s.is_empty() || s.last_live() <= gt {
                    continue;
                }
                let start = gt.incr().unwrap_or(StreamId::MAX);
                let body = entries_frame(s.collect_range(start, StreamId::MAX, false, count_u));
                served.push((Frame::Bulk(key.clone()), body));
            }
            Some((gname, consumer)) => {
                let history = id.is_some();
                let last_delivered = s.group(gname).map_or(StreamId::MIN, |g| g.last_id);
                if !history && (s.is_empty() || s.last_live() <= last_delivered) {
                    continue;
                }
                let Some(mut e) = shard.entry_mut(key) else {
                    continue;
                };
                let Ok(s) = e.value_mut().as_stream_mut() else {
                    continue;
                };
                let Some((view, g)) = s.split_group(gname) else {
                    continue;
                };
                let created = touch_consumer(g, consumer, now);
                let body = match id {
                    Some(gt) => {
                        let start = gt.incr().unwrap_or(StreamId::MAX);
                        let ids: Vec<StreamId> = g
                            .consumers
                            .get(consumer)
                            .map(|c| {
                                c.pel
                                    .range(start..)
                                    .take(if count_u == 0 { usize::MAX } else { count_u })
                                    .copied()
                                    .collect()
                            })
                            .unwrap_or_default();
                        let mut out = Vec::with_capacity(ids.len());
                        for id in ids {
                            match view.get(id) {
                                Some(f) => {
                                    if let Some(n) = g.pel.get_mut(&id) {
                                        n.delivery_time = now;
                                        n.delivery_count += 1;
                                    }
                                    out.push(entry_frame(id, f));
                                }
                                None => {
                                    out.push(Frame::Array(vec![id_frame(id), Frame::NullArray]))
                                }
                            }
                        }
                        Frame::Array(out)
                    }
                    None => {
                        let start = last_delivered.incr().unwrap_or(StreamId::MAX);
                        entries_frame(view.deliver(g, start, count_u, consumer, noack, now))
                    }
                };
                if created {
                    shard.notify(Class::Stream, "xgroup-createconsumer", key);
                }
                served.push((Frame::Bulk(key.clone()), body));
            }
        }
    }
    if !served.is_empty() {
        return if ctx.session.protocol == Protocol::Resp2 {
            Frame::Array(
                served
                    .into_iter()
                    .map(|(k, v)| Frame::Array(vec![k, v]))
                    .collect(),
            )
        } else {
            Frame::Map(served)
        };
    }
    let Some(timeout) = timeout else {
        return Frame::NullArray;
    };
    let wait_keys = keys
        .iter()
        .zip(&ids)
        .map(|(k, id)| (k.clone(), id.unwrap_or(StreamId::MAX)))
        .collect();
    let op = StreamWait {
        keys: wait_keys,
        group: group.map(|(g, c)| (g, c, noack)),
        count: if count_u == 0 {
            BLOCKED_DEFAULT_COUNT
        } else {
            count_u
        },
        protocol: ctx.session.protocol,
    };
    let timeout = (timeout > 0).then(|| Duration::from_millis(timeout.unsigned_abs()));
    // Registered with the keys' shards still locked, so an XADD cannot
    // fall between the check above and the registration.
    let reply = block_or_timeout(
        ctx,
        keys.to_vec(),
        Arc::new(op),
        timeout,
        Frame::NullArray,
        Frame::NullArray,
    );
    drop(locked);
    reply
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_like_redis() {
        let p = |a: &str| parse_id_full(a.as_bytes(), 0, false, false).map(|x| x.0);
        assert_eq!(p("5").unwrap(), StreamId::new(5, 0));
        assert_eq!(p("5-3").unwrap(), StreamId::new(5, 3));
        assert_eq!(p("-").unwrap(), StreamId::MIN);
        assert_eq!(p("+").unwrap(), StreamId::MAX);
        assert_eq!(p("007-1").unwrap(), StreamId::new(7, 1));
        assert_eq!(p(" 7").unwrap(), StreamId::new(7, 0));
        assert_eq!(p("+7").unwrap(), StreamId::new(7, 0));
        assert!(p("-1").is_err());
        assert!(p("1-2-3").is_err());
        assert!(p("a").is_err());
        assert!(p("").is_err());
        assert!(p("18446744073709551616").is_err());
        assert_eq!(
            p("18446744073709551615-18446744073709551615").unwrap(),
            StreamId::MAX
        );
        assert!(parse_strict(b"-").is_err());
        assert_eq!(
            parse_id_full(b"5-*", 0, true, true).unwrap(),
            (StreamId::new(5, 0), false)
        );
        assert!(parse_id_full(b"5-*", 0, true, false).is_err());
    }
}
