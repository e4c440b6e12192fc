//! `COMMAND GETKEYS` and `GETKEYSANDFLAGS`: a command's key arguments found
//! from Redis 7.0's key specs, embedded with its `COMMAND INFO`, by the
//! algorithm of Redis' `getKeysUsingKeySpecs` (index and keyword begin
//! searches; range and keynum key finding).

use bytes::Bytes;
use cairn_resp::Frame;

use super::{Table, err, is};
use crate::num::string2ll;

/// A field of a RESP3 map (or a flat array of pairs).
fn field<'a>(f: &'a Frame, name: &str) -> Option<&'a Frame> {
    match f {
        Frame::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| matches!(k, Frame::Bulk(b) | Frame::Simple(b) if is(b, name)))
            .map(|(_, v)| v),
        Frame::Array(items) => items
            .chunks(2)
            .find(|p| matches!(p.first(), Some(Frame::Bulk(b) | Frame::Simple(b)) if is(b, name)))
            .and_then(|p| p.get(1)),
        _ => None,
    }
}

fn num(f: &Frame, name: &str) -> Option<i64> {
    match field(f, name)? {
        Frame::Integer(n) => Some(*n),
        _ => None,
    }
}

fn text<'a>(f: &'a Frame, name: &str) -> Option<&'a [u8]> {
    match field(f, name)? {
        Frame::Bulk(b) | Frame::Simple(b) => Some(b),
        _ => None,
    }
}

fn spec_flags(spec: &Frame) -> Vec<Frame> {
    match field(spec, "flags") {
        Some(Frame::Set(v) | Frame::Array(v)) => v.clone(),
        _ => Vec::new(),
    }
}

fn has_spec_flag(spec: &Frame, flag: &str) -> bool {
    spec_flags(spec)
        .iter()
        .any(|f| matches!(f, Frame::Simple(b) | Frame::Bulk(b) if is(b, flag)))
}

/// Keys found by one spec: positions and the spec's flags; `Err` for an
/// invalid spec use (Redis' `invalid_spec`).
fn keys_of_spec(spec: &Frame, args: &[Bytes], arity: i32) -> Result<Vec<usize>, ()> {
    let argc = args.len() as i64;
    let bs = field(spec, "begin_search").ok_or(())?;
    let bs_spec = field(bs, "spec").ok_or(())?;
    let first: i64 = match text(bs, "type") {
        Some(t) if is(t, "index") => num(bs_spec, "index").ok_or(())?,
        Some(t) if is(t, "keyword") => {
            let keyword = text(bs_spec, "keyword").ok_or(())?;
            let from = num(bs_spec, "startfrom").ok_or(())?;
            let start = if from > 0 { from } else { argc + from };
            let end = if from > 0 { argc - 1 } else { 0 };
            let mut i = start;
            let mut found = 0;
            while i != end {
                if i >= argc || i < 1 {
                    break;
                }
                if args
                    .get(i as usize)
                    .is_some_and(|a| is(a, &String::from_utf8_lossy(keyword)))
                {
                    found = i + 1;
                    break;
                }
                i = if start <= end { i + 1 } else { i - 1 };
            }
            if found == 0 {
                return Ok(Vec::new());
            }
            found
        }
        _ => return Err(()),
    };
    let fk = field(spec, "find_keys").ok_or(())?;
    let fk_spec = field(fk, "spec").ok_or(())?;
    let (first, last, step) = match text(fk, "type") {
        Some(t) if is(t, "range") => {
            let lastkey = num(fk_spec, "lastkey").ok_or(())?;
            let limit = num(fk_spec, "limit").unwrap_or(0);
            let last = if lastkey >= 0 {
                first + lastkey
            } else if limit == 0 {
                argc + lastkey
            } else {
                first + ((argc - first) / limit + lastkey)
            };
            (first, last, num(fk_spec, "keystep").ok_or(())?)
        }
        Some(t) if is(t, "keynum") => {
            let idx = first + num(fk_spec, "keynumidx").ok_or(())?;
            let n = args
                .get(usize::try_from(idx).map_err(|_| ())?)
                .and_then(|a| string2ll(a))
                .filter(|n| *n >= 0)
                .ok_or(())?;
            let first = first + num(fk_spec, "firstkey").ok_or(())?;
            (first, first + n - 1, num(fk_spec, "keystep").ok_or(())?)
        }
        _ => return Err(()),
    };
    if last >= argc || last < first || first >= argc {
        return Err(());
    }
    let mut out = Vec::new();
    let mut i = first;
    while i <= last {
        if i >= argc || i < first {
            if arity < 0 {
                i += step.max(1);
                continue;
            }
            return Err(());
        }
        out.push(i as usize);
        i += step.max(1);
    }
    if has_spec_flag(spec, "incomplete") {
        return Err(());
    }
    Ok(out)
}

/// The key flags of SET (`setGetKeys`: with GET it reads) and BITFIELD
/// (`bitfieldGetKeys`: read-only when it only GETs).
fn variable_flags(name: &str, call: &[Bytes]) -> Option<&'static [&'static str]> {
    match name {
        "set" => Some(if call.iter().skip(3).any(|a| is(a, "get")) {
            &["RW", "access", "update"]
        } else {
            &["OW", "update"]
        }),
        "bitfield" => {
            let mut readonly = true;
            let mut i = 2;
            while i < call.len() {
                let rem = call.len() - i - 1;
                let a = call.get(i).map(|a| &a[..]).unwrap_or_default();
                if is(a, "get") && rem >= 2 {
                    i += 3;
                } else if is(a, "overflow") && rem >= 1 {
                    i += 2;
                } else {
                    readonly = false;
                    break;
                }
            }
            Some(if readonly {
                &["RO", "access"]
            } else {
                &["RW", "access", "update"]
            })
        }
        _ => None,
    }
}

const RO_ACCESS: &[&str] = &["RO", "access"];
const OW_UPDATE: &[&str] = &["OW", "update"];
/// The flags Redis' `genericGetKeys` and `georadiusGetKeys` give: none.
const NO_FLAGS: &[&str] = &[];

/// C's `atoi` as glibc has it (`(int) strtol(s, NULL, 10)`): leading
/// spaces, a sign, digits up to the first other byte; saturated to a long,
/// then truncated to an int.
fn atoi(s: &[u8]) -> i64 {
    let (mut i, neg) = crate::num::c_sign_prefix(s);
    let mut n: i64 = 0;
    while let Some(d) = s.get(i).filter(|c| c.is_ascii_digit()) {
        let d = i64::from(d - b'0');
        n = if neg {
            n.saturating_mul(10).saturating_sub(d)
        } else {
            n.saturating_mul(10).saturating_add(d)
        };
        i += 1;
    }
    i64::from(n as i32)
}

/// Redis' `genericGetKeys`: `num` keys (the count at `count_at`) from
/// `first` on, then the destination at `store` if any; none when the
/// count is out of range (the command will answer a syntax error).
fn generic_keys(
    call: &[Bytes],
    store: Option<usize>,
    count_at: usize,
    first: usize,
) -> Vec<(usize, &'static [&'static str])> {
    let num = call.get(count_at).map_or(0, |a| atoi(a));
    let room = call.len().saturating_sub(first) as i64;
    if num < 1 || num > room {
        return Vec::new();
    }
    let mut keys: Vec<_> = (first..first + num as usize)
        .map(|p| (p, NO_FLAGS))
        .collect();
    keys.extend(store.map(|p| (p, NO_FLAGS)));
    keys
}

/// Redis' `xreadGetKeys`: the keys after the `STREAMS` option (found by
/// skipping the other options' arguments), half of what follows it.
fn xread_keys(call: &[Bytes]) -> Vec<(usize, &'static [&'static str])> {
    let mut streams = None;
    let mut i = 1;
    while let Some(a) = call.get(i) {
        if is(a, "block") || is(a, "count") {
            i += 1;
        } else if is(a, "group") {
            i += 2;
        } else if is(a, "noack") {
        } else if is(a, "streams") {
            streams = Some(i);
            break;
        } else {
            break;
        }
        i += 1;
    }
    let Some(at) = streams else {
        return Vec::new();
    };
    let rest = call.len() - at - 1;
    if rest == 0 || !rest.is_multiple_of(2) {
        return Vec::new();
    }
    (at + 1..at + 1 + rest / 2).map(|p| (p, NO_FLAGS)).collect()
}

/// The command's own key finder (Redis' `getkeys_proc`), which Redis falls
/// back on when the key specs cannot say (an `unknown` or `incomplete`
/// spec, a key count out of range): `None` for a command without one.
/// MIGRATE's (`migrateGetKeys`) is not here: cairn has no MIGRATE.
fn getkeys_proc(name: &str, call: &[Bytes]) -> Option<Vec<(usize, &'static [&'static str])>> {
    Some(match name {
        "zunion" | "zinter" | "zdiff" | "zintercard" | "lmpop" | "zmpop" | "sintercard" => {
            generic_keys(call, None, 1, 2)
        }
        "zunionstore" | "zinterstore" | "zdiffstore" => generic_keys(call, Some(1), 2, 3),
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" | "blmpop"
        | "bzmpop" => generic_keys(call, None, 2, 3),
        "sort" => {
            let mut keys = vec![(1, RO_ACCESS)];
            let pos = super::sort::key_positions(call);
            keys.extend(pos.get(1).map(|&p| (p, OW_UPDATE)));
            keys
        }
        "sort_ro" => vec![(1, RO_ACCESS)],
        "georadius" | "georadiusbymember" => super::geo::georadius_key_positions(call)
            .into_iter()
            .map(|p| (p, NO_FLAGS))
            .collect(),
        "xread" | "xreadgroup" => xread_keys(call),
        _ => return None,
    })
}

/// The key arguments of a whole call (`args`, the command's name first),
/// found as Redis' `getKeysFromCommand` finds them: by the fixed range of
/// `spec` when it has one and no spec moves it, else by Redis 7.0's key
/// specs (numkeys-style commands such as ZUNION, SINTERCARD, EVAL, and
/// keyword ones such as XREAD's STREAMS). For client-side caching, which
/// remembers the keys a read-only command named. Empty when the
/// arguments do not fit the specs (Redis finds no keys then either).
pub(crate) fn call_keys<'a>(spec: &super::CommandSpec, args: &'a [Bytes]) -> Vec<&'a Bytes> {
    let fixed = spec.first_key > 0 && spec.subs.is_empty();
    if fixed && !super::meta::has_flag(spec.name, "movablekeys") {
        return spec.key_args(args).collect();
    }
    let (name, arity) = if spec.subs.is_empty() {
        (spec.name.to_owned(), spec.arity)
    } else {
        let Some(&(sub, arity)) = args
            .get(1)
            .and_then(|s| spec.subs.iter().find(|(n, _)| is(s, n)))
        else {
            return Vec::new();
        };
        (format!("{}|{sub}", spec.name), arity)
    };
    let mut out = Vec::new();
    for key_spec in &specs_of(&name) {
        match keys_of_spec(key_spec, args, arity) {
            Ok(pos) => out.extend(pos.into_iter().filter_map(|p| args.get(p))),
            // An incomplete spec (SORT_RO's BY/GET patterns): Redis asks the
            // command's getkeys function, which for the read-only commands
            // concerned gives the legacy range.
            Err(()) => return spec.key_args(args).collect(),
        }
    }
    out
}

/// Redis 7.0's key specs of command `name` (`container|sub` for a
/// subcommand).
fn specs_of(name: &str) -> Vec<Frame> {
    match super::meta::redis_info(name) {
        Some(Frame::Array(info)) => match info.get(8) {
            Some(Frame::Array(s) | Frame::Set(s)) => s.clone(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// `COMMAND GETKEYS|GETKEYSANDFLAGS command arg ...`.
pub(crate) fn getkeys(table: &Table, args: &[Bytes], with_flags: bool) -> Frame {
    let call = args.get(2..).unwrap_or_default();
    let Some(cmd) = call.first().and_then(|n| table.lookup(n)) else {
        return err("ERR Invalid command specified");
    };
    // A container's subcommand, as Redis' lookupCommand of the whole call.
    let (name, arity) = if cmd.spec.subs.is_empty() {
        (cmd.spec.name.to_owned(), cmd.spec.arity)
    } else {
        let Some(&(sub, arity)) = call
            .get(1)
            .and_then(|s| cmd.spec.subs.iter().find(|(n, _)| is(s, n)))
        else {
            return err("ERR Invalid command specified");
        };
        (format!("{}|{sub}", cmd.spec.name), arity)
    };
    let specs = specs_of(&name);
    let keyed = specs.iter().any(|s| !has_spec_flag(s, "not_key"));
    if !keyed {
        return err("ERR The command has no key arguments");
    }
    let argc = i64::try_from(call.len()).unwrap_or(i64::MAX);
    if (arity > 0 && i64::from(arity) != argc) || argc < -i64::from(arity) {
        return err("ERR Invalid number of arguments specified for command");
    }
    let mut found: Vec<(usize, Vec<Frame>)> = Vec::new();
    let mut invalid = false;
    for spec in &specs {
        match keys_of_spec(spec, call, arity) {
            Ok(pos) => found.extend(pos.into_iter().map(|p| (p, spec_flags(spec)))),
            Err(()) => {
                invalid = true;
                break;
            }
        }
    }
    if invalid {
        found.clear();
        // As Redis' `getKeysFromCommandWithSpecs`: the command's own key
        // finder, or no keys.
        if let Some(keys) = getkeys_proc(&name, call) {
            found = keys
                .into_iter()
                .map(|(p, flags)| (p, flags.iter().map(|f| Frame::simple(f)).collect()))
                .collect();
        }
    }
    // Specs flagged `variable_flags`: Redis asks the command's own getkeys
    // function, which decides the flags from the arguments.
    if let Some(flags) = variable_flags(&name, call)
        && let Some(first) = found.first_mut()
    {
        first.1 = flags.iter().map(|f| Frame::simple(f)).collect();
    }
    if found.is_empty() {
        return if super::meta::has_flag(&name, "no_mandatory_keys") {
            Frame::Array(Vec::new())
        } else {
            err("ERR Invalid arguments specified for command")
        };
    }
    Frame::Array(
        found
            .into_iter()
            .filter_map(|(p, flags)| {
                let key = Frame::Bulk(call.get(p)?.clone());
                Some(if with_flags {
                    Frame::Array(vec![key, Frame::Array(flags)])
                } else {
                    key
                })
            })
            .collect(),
    )
}
