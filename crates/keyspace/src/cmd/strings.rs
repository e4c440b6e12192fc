//! String commands: GET, SET, MGET, MSET, INCR and friends.

use bytes::Bytes;
use cairn_resp::Frame;

use super::args::arg;
use super::{Ctx, ERR_NOT_FLOAT, ERR_NOT_INT, ERR_SYNTAX, TableBuilder, err, int, is, parse_int};
use crate::notify::Class;
use crate::num::string2ll;
use crate::value::Value;

pub(crate) fn register(t: &mut TableBuilder) {
    t.redis("get", get);
    t.redis("set", set);
    t.redis("setnx", setnx);
    t.redis("setex", setex);
    t.redis("psetex", setex);
    t.redis("getset", getset);
    t.redis("getdel", getdel);
    t.redis("getex", getex);
    t.redis("mget", mget);
    t.redis("mset", mset);
    t.redis("msetnx", mset);
    t.redis("incr", incr);
    t.redis("decr", incr);
    t.redis("incrby", incr);
    t.redis("decrby", incr);
    t.redis("incrbyfloat", incrbyfloat);
    t.redis("append", append);
    t.redis("strlen", strlen);
    t.redis("getrange", getrange);
    t.redis("substr", getrange);
    t.redis("setrange", setrange);
    t.redis("lcs", lcs);
}

/// The bulk reply for a string value, or WRONGTYPE.
fn string_reply(v: Option<&Value>) -> Frame {
    match v {
        None => Frame::Null,
        Some(v) => match v.string_bytes() {
            Ok(b) => Frame::Bulk(b),
            Err(e) => e.into(),
        },
    }
}

fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    string_reply(ctx.shard(key).value(key))
}

/// How a command asked to set the expiry.
enum Expiry {
    /// Leave as the command's default (SET: clear it).
    Unset,
    /// Absolute unix ms.
    At(i64),
    /// KEEPTTL.
    Keep,
    /// PERSIST (GETEX).
    Persist,
}

/// Parses the expire amount after EX/PX/EXAT/PXAT into absolute unix ms,
/// with Redis 7.0's checks and texts.
fn parse_expire(
    ctx: &Ctx<'_>,
    raw: &[u8],
    unit_secs: bool,
    absolute: bool,
    cmd: &str,
) -> Result<i64, Frame> {
    let n = parse_int(raw)?;
    let invalid = || Frame::error(format!("ERR invalid expire time in '{cmd}' command"));
    if n <= 0 || (unit_secs && n > i64::MAX / 1000) {
        return Err(invalid());
    }
    let ms = if unit_secs { n * 1000 } else { n };
    if absolute {
        Ok(ms)
    } else {
        ms.checked_add(ctx.now_ms()).ok_or_else(invalid)
    }
}

/// SET's and GETEX's options, checked for syntax only: the expire amount
/// stays raw, because Redis 7.0 reads it after the syntax (and, for GETEX,
/// after the key).
#[derive(Default)]
struct StringOpts<'a> {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    /// The last EX/PX/EXAT/PXAT: its amount, (unit is seconds, absolute).
    expire: Option<(&'a [u8], (bool, bool))>,
}

impl StringOpts<'_> {
    /// The expiry asked for, its amount checked as Redis'
    /// `getExpireMillisecondsOrReply` does.
    fn expiry(&self, ctx: &Ctx<'_>, cmd: &str) -> Result<Expiry, Frame> {
        Ok(match self.expire {
            Some((raw, (secs, abs))) => Expiry::At(parse_expire(ctx, raw, secs, abs, cmd)?),
            None if self.keepttl => Expiry::Keep,
            None if self.persist => Expiry::Persist,
            None => Expiry::Unset,
        })
    }
}

/// Redis 7.0's `parseExtendedStringArgumentsOrReply`: options from
/// `args[from..]`; an option may repeat (the last amount wins), but
/// options that contradict each other are a syntax error.
fn parse_string_opts(args: &[Bytes], from: usize, set: bool) -> Result<StringOpts<'_>, Frame> {
    let mut o = StringOpts::default();
    let mut i = from;
    while let Some(opt) = args.get(i) {
        let next = args.get(i + 1);
        if set && is(opt, "nx") && !o.xx {
            o.nx = true;
        } else if set && is(opt, "xx") && !o.nx {
            o.xx = true;
        } else if set && is(opt, "get") {
            o.get = true;
        } else if set && is(opt, "keepttl") && !o.persist && o.expire.is_none() {
            o.keepttl = true;
        } else if !set && is(opt, "persist") && !o.keepttl && o.expire.is_none() {
            o.persist = true;
        } else if let (Some(v), Some(kind)) = (next, expire_word(opt))
            && !o.keepttl
            && !o.persist
            && o.expire.is_none_or(|(_, k)| k == kind)
        {
            o.expire = Some((&v[..], kind));
            i += 1;
        } else {
            return Err(err(ERR_SYNTAX));
        }
        i += 1;
    }
    Ok(o)
}

fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    // Redis' order: the syntax, then the expire amount, then (for GET)
    // the key's type.
    let opts = match parse_string_opts(args, 3, true) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let expiry = match opts.expiry(ctx, "set") {
        Ok(x) => x,
        Err(e) => return e,
    };
    let StringOpts { nx, xx, get, .. } = opts;
    let value = Value::string(arg(args, 2));
    let mut shard = ctx.shard(key);
    // With GET, Redis reads the old value with `lookupKeyRead`.
    let reading = crate::stats::reads(get);
    let old = match shard.get(key) {
        Some(e) if get && !e.value().is_string() => return super::wrongtype(),
        Some(e) => Some(e.value().clone()),
        None => None,
    };
    drop(reading);
    let exists = old.is_some();
    if (nx && exists) || (xx && !exists) {
        return if get {
            string_reply(old.as_ref())
        } else {
            Frame::Null
        };
    }
    match expiry {
        Expiry::Keep => {
            shard.set_keep_ttl(key, value);
            ctx.notify(Class::String, "set", key);
        }
        Expiry::At(at) => {
            // Even a time already past is stored (Redis 7.0 has no
            // `checkAlreadyExpired` in SET): the key counts in DBSIZE
            // until it is next touched or reaped, as in Redis.
            shard.set(key, value, Some(at));
            ctx.notify(Class::String, "set", key);
            ctx.notify(Class::Generic, "expire", key);
        }
        Expiry::Unset | Expiry::Persist => {
            shard.set(key, value, None);
            ctx.notify(Class::String, "set", key);
        }
    }
    if get {
        string_reply(old.as_ref())
    } else {
        Frame::ok()
    }
}

/// EX/PX/EXAT/PXAT → (unit is seconds, absolute).
fn expire_word(opt: &[u8]) -> Option<(bool, bool)> {
    if is(opt, "ex") {
        Some((true, false))
    } else if is(opt, "px") {
        Some((false, false))
    } else if is(opt, "exat") {
        Some((true, true))
    } else if is(opt, "pxat") {
        Some((false, true))
    } else {
        None
    }
}

fn setnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let mut shard = ctx.shard(key);
    if shard.contains(key) {
        return Frame::Integer(0);
    }
    shard.set(key, Value::string(arg(args, 2)), None);
    ctx.notify(Class::String, "set", key);
    Frame::Integer(1)
}

fn setex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let secs = ctx.command() == "setex";
    let at = match parse_expire(ctx, arg(args, 2), secs, false, ctx.command()) {
        Ok(at) => at,
        Err(e) => return e,
    };
    ctx.shard(key)
        .set(key, Value::string(arg(args, 3)), Some(at));
    ctx.notify(Class::String, "set", key);
    ctx.notify(Class::Generic, "expire", key);
    Frame::ok()
}

fn getset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let mut shard = ctx.shard(key);
    let reading = crate::stats::reads(true);
    if let Some(v) = shard.value(key)
        && !v.is_string()
    {
        return super::wrongtype();
    }
    drop(reading);
    let old = shard.set(key, Value::string(arg(args, 2)), None);
    ctx.notify(Class::String, "set", key);
    string_reply(old.as_ref().map(|e| e.value()))
}

fn getdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let mut shard = ctx.shard(key);
    let reading = crate::stats::reads(true);
    let found = shard.value(key).is_some();
    drop(reading);
    if !found {
        return Frame::Null;
    }
    match shard.value(key) {
        None => Frame::Null,
        Some(v) if !v.is_string() => super::wrongtype(),
        Some(_) => {
            let old = shard.remove(key);
            ctx.notify(Class::Generic, "del", key);
            string_reply(old.as_ref().map(|e| e.value()))
        }
    }
}

fn getex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    // Redis' order: the syntax, then the key (missing: nil; WRONGTYPE),
    // then the expire amount.
    let opts = match parse_string_opts(args, 2, false) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let now = ctx.now_ms();
    let mut shard = ctx.shard(key);
    let reading = crate::stats::reads(true);
    let reply = match shard.value(key) {
        None => return Frame::Null,
        Some(v) => string_reply(Some(v)),
    };
    drop(reading);
    if reply.is_error() {
        return reply;
    }
    let expiry = match opts.expiry(ctx, "getex") {
        Ok(x) => x,
        Err(e) => return e,
    };
    match expiry {
        Expiry::At(at) if at <= now => {
            shard.remove(key);
            ctx.notify(Class::Generic, "del", key);
        }
        Expiry::At(at) => {
            if let Some(mut e) = shard.entry_mut(key) {
                e.set_expires_at_ms(Some(at));
                ctx.notify(Class::Generic, "expire", key);
            }
        }
        Expiry::Persist => {
            if let Some(mut e) = shard.entry_mut(key)
                && e.expires_at_ms().is_some()
            {
                e.set_expires_at_ms(None);
                ctx.notify(Class::Generic, "persist", key);
            }
        }
        Expiry::Unset | Expiry::Keep => {}
    }
    reply
}

fn mget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let out = args
        .iter()
        .skip(1)
        .map(|k| match ctx.shard(k).value(k) {
            Some(v) => v.string_bytes().map(Frame::Bulk).unwrap_or(Frame::Null),
            None => Frame::Null,
        })
        .collect();
    Frame::Array(out)
}

fn mset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    if args.len().is_multiple_of(2) {
        return Frame::error(format!(
            "ERR wrong number of arguments for '{}' command",
            ctx.command()
        ));
    }
    let nx = ctx.command() == "msetnx";
    let db = ctx.db();
    let pairs = || args.get(1..).unwrap_or_default().chunks_exact(2);
    let mut locked = ctx.lock_keys(pairs().map(|p| (db, &p[0][..])));
    if nx && pairs().any(|p| locked.shard(db, &p[0]).contains(&p[0])) {
        return Frame::Integer(0);
    }
    for p in pairs() {
        if let [k, v] = p {
            locked.shard(db, k).set(k, Value::string(v), None);
            ctx.notify(Class::String, "set", k);
        }
    }
    if nx { Frame::Integer(1) } else { Frame::ok() }
}

fn incr(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let delta = match ctx.command() {
        "incr" => 1,
        "decr" => -1,
        cmd => match parse_int(arg(args, 2)) {
            // DECRBY of i64::MIN cannot be negated: Redis refuses it too.
            Ok(n) if cmd == "decrby" => match n.checked_neg() {
                Some(n) => n,
                None => return err("ERR decrement would overflow"),
            },
            Ok(n) => n,
            Err(e) => return e,
        },
    };
    let mut shard = ctx.shard(key);
    let Some(mut e) = shard.entry_mut(key) else {
        shard.set(key, Value::Int(delta), None);
        ctx.notify(Class::String, "incrby", key);
        return Frame::Integer(delta);
    };
    let cur = match e.value() {
        Value::Int(n) => *n,
        Value::Str(b) => match string2ll(b) {
            Some(n) => n,
            None => return err(ERR_NOT_INT),
        },
        _ => return super::wrongtype(),
    };
    let Some(new) = cur.checked_add(delta) else {
        return err("ERR increment or decrement would overflow");
    };
    *e.value_mut() = Value::Int(new);
    ctx.notify(Class::String, "incrby", key);
    Frame::Integer(new)
}

/// INCRBYFLOAT in 80-bit long double arithmetic, as Redis does it, so
/// results and their text match exactly (`0.1` + `0.2` is `0.3`).
fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    use crate::num::ld;
    let key = arg(args, 1);
    let overflow = || err("ERR increment would produce NaN or Infinity");
    let mut shard = ctx.shard(key);
    // Redis' order: the key's type, then its value, then the increment;
    // an infinity in either only fails once added.
    let cur = match shard.value(key) {
        None => ld::Parsed::Finite(ld::Ld::ZERO),
        Some(v) => match v.with_str(ld::parse) {
            Err(e) => return e.into(),
            Ok(None) => return err(ERR_NOT_FLOAT),
            Ok(Some(c)) => c,
        },
    };
    let delta = match ld::parse(arg(args, 2)) {
        None => return err(ERR_NOT_FLOAT),
        Some(d) => d,
    };
    let (ld::Parsed::Finite(cur), ld::Parsed::Finite(delta)) = (cur, delta) else {
        return overflow();
    };
    let Some(new) = ld::sum(cur, delta) else {
        return overflow();
    };
    let text = ld::format(new);
    shard.set_keep_ttl(key, Value::string(text.as_bytes()));
    ctx.notify(Class::String, "incrbyfloat", key);
    Frame::Bulk(Bytes::from(text))
}

fn append(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let add = arg(args, 2);
    let max = super::proto_max_bulk_len(ctx);
    let mut shard = ctx.shard(key);
    let Some(mut e) = shard.entry_mut(key) else {
        shard.set(key, Value::string(add), None);
        ctx.notify(Class::String, "append", key);
        return int(add.len());
    };
    let cur_len = match e.value().str_len() {
        Ok(n) => n,
        Err(w) => return w.into(),
    };
    if (cur_len + add.len()) as u64 > max {
        return err("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    }
    let mut buf = Vec::with_capacity(cur_len + add.len());
    let _ = e.value().with_str(|b| buf.extend_from_slice(b));
    buf.extend_from_slice(add);
    let len = buf.len();
    *e.value_mut() = Value::Str(buf.into_boxed_slice());
    ctx.notify(Class::String, "append", key);
    int(len)
}

fn strlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    match ctx.shard(key).value(key) {
        None => Frame::Integer(0),
        Some(v) => match v.str_len() {
            Ok(n) => int(n),
            Err(e) => e.into(),
        },
    }
}

fn getrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let (start, end) = match (parse_int(arg(args, 2)), parse_int(arg(args, 3))) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let mut shard = ctx.shard(key);
    let Some(v) = shard.value(key) else {
        return Frame::Bulk(Bytes::new());
    };
    match v.with_str(|b| {
        slice_range(b, start, end)
            .map(Bytes::copy_from_slice)
            .unwrap_or_default()
    }) {
        Ok(b) => Frame::Bulk(b),
        Err(e) => e.into(),
    }
}

/// Redis' GETRANGE index rules: negative from the end, clamped, inclusive.
fn slice_range(b: &[u8], start: i64, end: i64) -> Option<&[u8]> {
    let len = b.len() as i64;
    if start < 0 && end < 0 && start > end {
        return None;
    }
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let end = if end < 0 { (len + end).max(0) } else { end };
    let end = end.min(len - 1);
    if start > end || len == 0 {
        return None;
    }
    b.get(start as usize..=end as usize)
}

fn setrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let value = arg(args, 3);
    let offset = match parse_int(arg(args, 2)) {
        Ok(n) if n < 0 => return err("ERR offset is out of range"),
        Ok(n) => n as usize,
        Err(e) => return e,
    };
    let max = super::proto_max_bulk_len(ctx);
    let mut shard = ctx.shard(key);
    let cur_len = match shard.value(key) {
        None => None,
        Some(v) => match v.str_len() {
            Ok(n) => Some(n),
            Err(e) => return e.into(),
        },
    };
    if value.is_empty() {
        return int(cur_len.unwrap_or(0));
    }
    if offset.saturating_add(value.len()) as u64 > max {
        return err("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    }
    let mut buf = Vec::new();
    if let Some(v) = shard.value(key) {
        let _ = v.with_str(|b| buf.extend_from_slice(b));
    }
    if buf.len() < offset + value.len() {
        buf.resize(offset + value.len(), 0);
    }
    if let Some(dst) = buf.get_mut(offset..offset + value.len()) {
        dst.copy_from_slice(value);
    }
    let len = buf.len();
    match shard.entry_mut(key) {
        Some(mut e) => *e.value_mut() = Value::Str(buf.into_boxed_slice()),
        None => {
            shard.set(key, Value::Str(buf.into_boxed_slice()), None);
        }
    }
    ctx.notify(Class::String, "setrange", key);
    int(len)
}

/// LCS's options after the two keys.
struct LcsOpts {
    len: bool,
    idx: bool,
    with_match_len: bool,
    min_match_len: u64,
}

/// Parses LCS's options as Redis 7.0 does: last MINMATCHLEN wins, a
/// negative one counts as 0, and the LEN+IDX clash is checked only after
/// the whole line parsed.
fn parse_lcs_opts(args: &[Bytes]) -> Result<LcsOpts, Frame> {
    let mut o = LcsOpts {
        len: false,
        idx: false,
        with_match_len: false,
        min_match_len: 0,
    };
    let mut i = 3;
    while let Some(opt) = args.get(i) {
        if is(opt, "idx") {
            o.idx = true;
        } else if is(opt, "len") {
            o.len = true;
        } else if is(opt, "withmatchlen") {
            o.with_match_len = true;
        } else if is(opt, "minmatchlen") && i + 1 < args.len() {
            i += 1;
            o.min_match_len = parse_int(arg(args, i))?.max(0).unsigned_abs();
        } else {
            return Err(err(ERR_SYNTAX));
        }
        i += 1;
    }
    if o.idx && o.len {
        return Err(err(
            "ERR If you want both the length and indexes, please just use IDX.",
        ));
    }
    Ok(o)
}

/// The string at `key` for LCS: a missing key reads as empty.
fn lcs_operand(v: Option<&Value>) -> Result<Bytes, Frame> {
    match v {
        None => Ok(Bytes::new()),
        // Redis 7.0's LCS has its own type error rather than WRONGTYPE.
        Some(v) => v
            .string_bytes()
            .map_err(|_| err("ERR The specified keys must contain string values")),
    }
}

fn lcs(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let (k1, k2) = (arg(args, 1), arg(args, 2));
    let db = ctx.db();
    // Copy both operands under one lock, then release it: the table below
    // is O(n*m) work that must not hold other clients off the shards.
    let (a, b) = {
        let mut locked = ctx.lock_keys([(db, k1), (db, k2)]);
        let a = lcs_operand(locked.shard(db, k1).value(k1));
        let b = lcs_operand(locked.shard(db, k2).value(k2));
        match (a, b) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return e,
        }
    };
    let opts = match parse_lcs_opts(args) {
        Ok(o) => o,
        Err(e) => return e,
    };
    // Redis refuses strings whose lengths would not fit its u32 table.
    let limit = u32::MAX as usize - 1;
    if a.len() >= limit || b.len() >= limit {
        return err("ERR String too long for LCS");
    }
    let max_bulk = super::proto_max_bulk_len(ctx);
    let cells = (a.len() as u128 + 1) * (b.len() as u128 + 1);
    if cells * 4 > u128::from(max_bulk) {
        return err("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    }
    let Some(table) = lcs_table(&a, &b) else {
        return err("ERR Insufficient memory, failed allocating transient memory for LCS");
    };
    let total = table.at(a.len(), b.len());
    if opts.len {
        return Frame::Integer(i64::from(total));
    }
    let (common, matches) = lcs_walk(&table, &a, &b, &opts);
    if opts.idx {
        Frame::Map(vec![
            (
                Frame::Bulk(Bytes::from_static(b"matches")),
                Frame::Array(matches),
            ),
            (
                Frame::Bulk(Bytes::from_static(b"len")),
                Frame::Integer(i64::from(total)),
            ),
        ])
    } else {
        Frame::Bulk(Bytes::from(common))
    }
}

/// The DP table: `at(i, j)` is the LCS length of `a[..i]` and `b[..j]`.
struct LcsTable {
    cells: Vec<u32>,
    width: usize,
}

impl LcsTable {
    fn at(&self, i: usize, j: usize) -> u32 {
        self.cells.get(i * self.width + j).copied().unwrap_or(0)
    }
}

/// Fills the table in O(n*m); `None` when the allocation fails.
fn lcs_table(a: &[u8], b: &[u8]) -> Option<LcsTable> {
    let width = b.len() + 1;
    let size = (a.len() + 1).checked_mul(width)?;
    let mut cells = Vec::new();
    cells.try_reserve_exact(size).ok()?;
    cells.resize(size, 0u32);
    for (i, &ai) in a.iter().enumerate() {
        let (done, rest) = cells.split_at_mut((i + 1) * width);
        let prev = done.get(i * width..).unwrap_or_default();
        let cur = rest.get_mut(..width).unwrap_or_default();
        let mut left = 0u32;
        for ((&bj, up), out) in b.iter().zip(prev.windows(2)).zip(cur.iter_mut().skip(1)) {
            let (diag, above) = match up {
                [d, a] => (*d, *a),
                _ => (0, 0),
            };
            let v = if ai == bj {
                diag.saturating_add(1)
            } else {
                above.max(left)
            };
            *out = v;
            left = v;
        }
    }
    Some(LcsTable { cells, width })
}

/// Walks the table back from the end as Redis does, building the common
/// subsequence and the IDX match ranges (from the last to the first), with
/// Redis' tie rule so that the ranges are the same as Redis'.
fn lcs_walk(t: &LcsTable, a: &[u8], b: &[u8], o: &LcsOpts) -> (Vec<u8>, Vec<Frame>) {
    let total = t.at(a.len(), b.len()) as usize;
    let mut common = vec![0u8; total];
    let mut k = total;
    let mut matches = Vec::new();
    // The current range, inclusive, as (a_start, a_end, b_start, b_end).
    let mut range: Option<(usize, usize, usize, usize)> = None;
    let (mut i, mut j) = (a.len(), b.len());
    while i > 0 && j > 0 {
        let mut emit = false;
        let (ai, bj) = (
            a.get(i - 1).copied().unwrap_or(0),
            b.get(j - 1).copied().unwrap_or(1),
        );
        if ai == bj {
            k = k.saturating_sub(1);
            if let Some(c) = common.get_mut(k) {
                *c = ai;
            }
            match &mut range {
                None => range = Some((i - 1, i - 1, j - 1, j - 1)),
                Some((a_start, _, b_start, _)) if *a_start == i && *b_start == j => {
                    *a_start -= 1;
                    *b_start -= 1;
                }
                Some(_) => emit = true,
            }
            if let Some((a_start, _, b_start, _)) = range
                && (a_start == 0 || b_start == 0)
            {
                emit = true;
            }
            i -= 1;
            j -= 1;
        } else {
            if t.at(i - 1, j) > t.at(i, j - 1) {
                i -= 1;
            } else {
                j -= 1;
            }
            emit = range.is_some();
        }
        if emit && let Some((a_start, a_end, b_start, b_end)) = range.take() {
            let len = a_end - a_start + 1;
            if o.idx && (o.min_match_len == 0 || len as u64 >= o.min_match_len) {
                let pos = |s: usize, e: usize| Frame::Array(vec![int(s), int(e)]);
                let mut m = vec![pos(a_start, a_end), pos(b_start, b_end)];
                if o.with_match_len {
                    m.push(int(len));
                }
                matches.push(Frame::Array(m));
            }
        }
    }
    (common, matches)
}
