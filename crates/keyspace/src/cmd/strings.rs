//! String commands: GET, SET, MGET, MSET, INCR and friends.

use bytes::Bytes;
use cairn_resp::Frame;

use super::{
    CommandSpec as S, Ctx, ERR_NOT_FLOAT, ERR_NOT_INT, ERR_SYNTAX, Flags, TableBuilder, err, int,
    is, parse_int,
};
use crate::value::{Value, parse_canonical_i64};

const W: Flags = Flags::WRITE;
const R: Flags = Flags::READONLY;
const DENY: Flags = Flags::DENYOOM;
const FAST: Flags = Flags::FAST;

/// Redis' default `proto-max-bulk-len`: the largest string SETRANGE and
/// APPEND may build.
const MAX_STRING: usize = 512 * 1024 * 1024;

pub(crate) fn register(t: &mut TableBuilder) {
    let g = "string";
    t.add(
        S::new("get", 2, R | FAST, g)
            .keys(1, 1, 1)
            .doc("Get the value of a key", "1.0.0"),
        get,
    );
    t.add(
        S::new("set", -3, W | DENY, g)
            .keys(1, 1, 1)
            .doc("Set the string value of a key", "1.0.0"),
        set,
    );
    t.add(S::new("setnx", 3, W | DENY | FAST, g).keys(1, 1, 1), setnx);
    t.add(S::new("setex", 4, W | DENY, g).keys(1, 1, 1), setex);
    t.add(S::new("psetex", 4, W | DENY, g).keys(1, 1, 1), setex);
    t.add(
        S::new("getset", 3, W | DENY | FAST, g).keys(1, 1, 1),
        getset,
    );
    t.add(
        S::new("getdel", 2, W | FAST, g)
            .keys(1, 1, 1)
            .doc("Get the value of a key and delete the key", "6.2.0"),
        getdel,
    );
    t.add(
        S::new("getex", -2, W | FAST, g).keys(1, 1, 1).doc(
            "Get the value of a key and optionally set its expiration",
            "6.2.0",
        ),
        getex,
    );
    t.add(
        S::new("mget", -2, R | FAST, g)
            .keys(1, -1, 1)
            .doc("Get the values of all the given keys", "1.0.0"),
        mget,
    );
    t.add(
        S::new("mset", -3, W | DENY, g)
            .keys(1, -1, 2)
            .doc("Set multiple keys to multiple values", "1.0.1"),
        mset,
    );
    t.add(S::new("msetnx", -3, W | DENY, g).keys(1, -1, 2), mset);
    t.add(S::new("incr", 2, W | DENY | FAST, g).keys(1, 1, 1), incr);
    t.add(S::new("decr", 2, W | DENY | FAST, g).keys(1, 1, 1), incr);
    t.add(S::new("incrby", 3, W | DENY | FAST, g).keys(1, 1, 1), incr);
    t.add(S::new("decrby", 3, W | DENY | FAST, g).keys(1, 1, 1), incr);
    t.add(
        S::new("incrbyfloat", 3, W | DENY | FAST, g).keys(1, 1, 1),
        incrbyfloat,
    );
    t.add(
        S::new("append", 3, W | DENY | FAST, g).keys(1, 1, 1),
        append,
    );
    t.add(S::new("strlen", 2, R | FAST, g).keys(1, 1, 1), strlen);
    t.add(S::new("getrange", 4, R, g).keys(1, 1, 1), getrange);
    t.add(S::new("substr", 4, R, g).keys(1, 1, 1), getrange);
    t.add(S::new("setrange", 4, W | DENY, g).keys(1, 1, 1), setrange);
}

fn arg(args: &[Bytes], i: usize) -> &[u8] {
    args.get(i).map(|b| &b[..]).unwrap_or_default()
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
    let old = match shard.get(key) {
        Some(e) if get && !e.value().is_string() => return super::wrongtype(),
        Some(e) => Some(e.value().clone()),
        None => None,
    };
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
        }
        Expiry::At(at) => {
            // Even a time already past is stored (Redis 7.0 has no
            // `checkAlreadyExpired` in SET): the key counts in DBSIZE
            // until it is next touched or reaped, as in Redis.
            shard.set(key, value, Some(at));
        }
        Expiry::Unset | Expiry::Persist => {
            shard.set(key, value, None);
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
    Frame::ok()
}

fn getset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let mut shard = ctx.shard(key);
    if let Some(v) = shard.value(key)
        && !v.is_string()
    {
        return super::wrongtype();
    }
    let old = shard.set(key, Value::string(arg(args, 2)), None);
    string_reply(old.as_ref().map(|e| e.value()))
}

fn getdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let mut shard = ctx.shard(key);
    match shard.value(key) {
        None => Frame::Null,
        Some(v) if !v.is_string() => super::wrongtype(),
        Some(_) => string_reply(shard.remove(key).as_ref().map(|e| e.value())),
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
    let reply = match shard.value(key) {
        None => return Frame::Null,
        Some(v) => string_reply(Some(v)),
    };
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
        }
        Expiry::At(at) => {
            if let Some(mut e) = shard.entry_mut(key) {
                e.set_expires_at_ms(Some(at));
            }
        }
        Expiry::Persist => {
            if let Some(mut e) = shard.entry_mut(key)
                && e.expires_at_ms().is_some()
            {
                e.set_expires_at_ms(None);
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
        return Frame::Integer(delta);
    };
    let cur = match e.value() {
        Value::Int(n) => *n,
        Value::Str(b) => match parse_canonical_i64(b) {
            Some(n) => n,
            None => return err(ERR_NOT_INT),
        },
        _ => return super::wrongtype(),
    };
    let Some(new) = cur.checked_add(delta) else {
        return err("ERR increment or decrement would overflow");
    };
    *e.value_mut() = Value::Int(new);
    Frame::Integer(new)
}

/// INCRBYFLOAT in 80-bit long double arithmetic, as Redis does it, so
/// results and their text match exactly (`0.1` + `0.2` is `0.3`).
fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    use super::hash::ld;
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
    Frame::Bulk(Bytes::from(text))
}

fn append(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let key = arg(args, 1);
    let add = arg(args, 2);
    let mut shard = ctx.shard(key);
    let Some(mut e) = shard.entry_mut(key) else {
        shard.set(key, Value::string(add), None);
        return int(add.len());
    };
    let cur_len = match e.value().str_len() {
        Ok(n) => n,
        Err(w) => return w.into(),
    };
    if cur_len + add.len() > MAX_STRING {
        return err("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    }
    let mut buf = Vec::with_capacity(cur_len + add.len());
    let _ = e.value().with_str(|b| buf.extend_from_slice(b));
    buf.extend_from_slice(add);
    let len = buf.len();
    *e.value_mut() = Value::Str(buf.into_boxed_slice());
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
    if offset.saturating_add(value.len()) > MAX_STRING {
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
    int(len)
}
