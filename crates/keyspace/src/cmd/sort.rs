//! SORT and SORT_RO, following Redis 7.0's `sortCommandGeneric`: BY
//! (constant patterns meaning "do not sort", `*` patterns, hash fields
//! with `->`), LIMIT, GET (several, `#`, hash fields), ASC|DESC, ALPHA and
//! STORE, on lists, sets and sorted sets, with Redis' quirks: a list or
//! sorted set not sorted keeps its order (reversed by DESC) and takes
//! LIMIT as a range; a set not sorted is sorted alphabetically anyway when
//! storing or inside a script, so the result is deterministic.
//!
//! Patterns name arbitrary keys, so a SORT that looks keys up locks every
//! shard of its database (Redis runs it single-threaded); one that does
//! not locks only its source and destination.

use std::cmp::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use cairn_resp::Frame;

use super::args::arg;
use super::{Ctx, ERR_SYNTAX, TableBuilder, err, int, is, parse_int, wrongtype};
use crate::engine::Locked;
use crate::notify::Class;
use crate::num::{is_c_space, strtod};
use crate::pqsort::pqsort;
use crate::value::{QuickList, Value};

pub(crate) fn register(t: &mut TableBuilder) {
    t.redis("sort", sort);
    t.redis("sort_ro", sort);
}

/// One element to sort: the element, its numeric weight or its ALPHA
/// comparison value from a BY pattern.
struct Item {
    obj: Bytes,
    score: f64,
    cmp: Option<Bytes>,
}

/// The options that decide the comparison (Redis keeps them in globals).
#[derive(Clone, Copy)]
struct Order {
    desc: bool,
    alpha: bool,
    by_pattern: bool,
    store: bool,
}

/// C's `strcmp` on the bytes up to the first NUL: `strcoll` in the C
/// locale Redis runs in, and what it compares ALPHA results with when not
/// storing.
fn c_str(a: &[u8]) -> &[u8] {
    match a.iter().position(|&b| b == 0) {
        Some(n) => a.get(..n).unwrap_or_default(),
        None => a,
    }
}

/// Redis' `sortCompare`.
fn compare(o: Order, a: &Item, b: &Item) -> Ordering {
    let cmp = if !o.alpha {
        match a.score.partial_cmp(&b.score) {
            Some(Ordering::Equal) | None => a.obj.cmp(&b.obj),
            Some(ord) => ord,
        }
    } else if o.by_pattern {
        match (&a.cmp, &b.cmp) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) if o.store => x.cmp(y),
            (Some(x), Some(y)) => c_str(x).cmp(c_str(y)),
        }
    } else if o.store {
        a.obj.cmp(&b.obj)
    } else {
        c_str(&a.obj).cmp(c_str(&b.obj))
    };
    if o.desc { cmp.reverse() } else { cmp }
}

/// A weight as SORT reads it: C `strtod` over the whole (C) string, so
/// an empty string is 0, leading spaces are skipped, and anything left
/// over, NaN or an overflow/underflow (`ERANGE`) is an error.
fn weight(v: &[u8]) -> Option<f64> {
    let s = c_str(v);
    if s.is_empty() {
        return Some(0.0);
    }
    let start = s.iter().position(|c| !is_c_space(*c))?;
    let text = s.get(start..)?;
    let d = strtod(text)?;
    let inf_word = text.windows(3).any(|w| w.eq_ignore_ascii_case(b"inf"));
    if d.is_nan() || (d.is_infinite() && !inf_word) {
        return None;
    }
    // Underflow: a subnormal or zero result from a nonzero mantissa.
    if d.abs() < f64::MIN_POSITIVE {
        let hex = text.windows(2).any(|w| w.eq_ignore_ascii_case(b"0x"));
        let stop: &[u8] = if hex { b"pP" } else { b"eE" };
        let mantissa = text.split(|c| stop.contains(c)).next().unwrap_or_default();
        let mantissa = if hex {
            mantissa
                .iter()
                .position(|c| *c == b'x' || *c == b'X')
                .and_then(|p| mantissa.get(p + 1..))
                .unwrap_or_default()
        } else {
            mantissa
        };
        let nonzero = mantissa
            .iter()
            .any(|c| c.is_ascii_hexdigit() && *c != b'0' && (hex || c.is_ascii_digit()));
        if nonzero {
            return None;
        }
    }
    Some(d)
}

/// Redis' `lookupKeyByPattern`: `#` is the element itself; otherwise the
/// first `*` is replaced by the element and the key read (a string, or
/// with `->field` a hash field). `None` when the pattern has no `*` or
/// the key or field is missing or of another type.
fn lookup(locked: &mut Locked<'_>, db: usize, pattern: &[u8], subst: &Bytes) -> Option<Bytes> {
    if pattern == b"#" {
        return Some(subst.clone());
    }
    let star = pattern.iter().position(|&c| c == b'*')?;
    let after = pattern.get(star + 1..).unwrap_or_default();
    let arrow = after
        .windows(2)
        .position(|w| w == b"->")
        .filter(|&f| f + 2 < after.len());
    let (post, field) = match arrow {
        Some(f) => (after.get(..f)?, after.get(f + 2..)),
        None => (after, None),
    };
    let mut key = Vec::with_capacity(pattern.len() + subst.len());
    key.extend_from_slice(pattern.get(..star)?);
    key.extend_from_slice(subst);
    key.extend_from_slice(post);
    // Redis' `lookupKeyByPattern` reads with `lookupKeyRead`, SORT too.
    let _reading = crate::stats::reads(true);
    let value = locked.shard(db, &key).value(&key)?;
    match field {
        Some(f) => value.as_hash().ok()?.get(f),
        None => value.string_bytes().ok(),
    }
}

/// The value SORT reads, collected before any pattern lookup.
enum Source {
    List(Vec<Bytes>),
    Set(Vec<Bytes>),
    ZSet(Vec<Bytes>),
}

fn sort(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Frame {
    let readonly = ctx.command() == "sort_ro";
    let (mut desc, mut alpha) = (false, false);
    let (mut limit_start, mut limit_count): (i64, i64) = (0, -1);
    let mut store: Option<&[u8]> = None;
    let mut sortby: Option<&[u8]> = None;
    let mut dontsort = false;
    let mut gets: Vec<&[u8]> = Vec::new();
    let mut j = 2;
    while let Some(a) = args.get(j) {
        let left = args.len() - j - 1;
        if is(a, "asc") {
            desc = false;
        } else if is(a, "desc") {
            desc = true;
        } else if is(a, "alpha") {
            alpha = true;
        } else if is(a, "limit") && left >= 2 {
            match (parse_int(arg(args, j + 1)), parse_int(arg(args, j + 2))) {
                (Ok(s), Ok(c)) => (limit_start, limit_count) = (s, c),
                (Err(e), _) | (_, Err(e)) => return e,
            }
            j += 2;
        } else if !readonly && is(a, "store") && left >= 1 {
            store = Some(arg(args, j + 1));
            j += 1;
        } else if is(a, "by") && left >= 1 {
            let p = arg(args, j + 1);
            sortby = Some(p);
            // A constant pattern weighs every element the same: no sort.
            dontsort = !p.contains(&b'*');
            j += 1;
        } else if is(a, "get") && left >= 1 {
            gets.push(arg(args, j + 1));
            j += 1;
        } else {
            return err(ERR_SYNTAX);
        }
        j += 1;
    }

    let key = arg(args, 1);
    let db = ctx.db();
    let needs_lookup = (sortby.is_some() && !dontsort) || gets.iter().any(|g| *g != b"#");
    let mut locked = if needs_lookup {
        let e = ctx.keyspace().engine();
        Locked::new(e, e.db_shards(db).collect(), ctx.now_ms())
    } else {
        let mut keys = vec![(db, key)];
        if let Some(s) = store {
            keys.push((db, s));
        }
        ctx.lock_keys(keys)
    };

    // Redis loads a list or sorted set not sorted straight from the
    // range LIMIT selects, in DESC order when asked; so does this.
    let reading = crate::stats::reads(true);
    let source = match locked.shard(db, key).value(key) {
        None => Source::List(Vec::new()),
        Some(Value::List(l)) => Source::List(l.iter().collect()),
        Some(Value::Set(s)) => Source::Set(s.iter().collect()),
        Some(Value::ZSet(z)) => Source::ZSet(z.iter().map(|(m, _)| m).collect()),
        Some(_) => return wrongtype(),
    };
    drop(reading);
    if dontsort && matches!(source, Source::Set(_)) && (store.is_some() || ctx.session.script) {
        dontsort = false;
        alpha = true;
        sortby = None;
    }
    let (elements, ordered) = match source {
        Source::List(v) | Source::ZSet(v) => (v, true),
        Source::Set(v) => (v, false),
    };

    let len = elements.len() as i64;
    let mut start = limit_start.max(0).min(len);
    let limit_count = limit_count.max(-1).min(len);
    let mut end = if limit_count < 0 {
        len - 1
    } else {
        start + limit_count - 1
    };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }

    let mut vector: Vec<Item> = if ordered && dontsort {
        let ranged = start != 0 || end != len - 1;
        let vlen = if ranged { end - start + 1 } else { len };
        let take = usize::try_from(vlen).unwrap_or(0);
        let skip = usize::try_from(start).unwrap_or(0);
        let picked: Vec<Bytes> = if end >= start {
            if desc {
                elements.into_iter().rev().skip(skip).take(take).collect()
            } else {
                elements.into_iter().skip(skip).take(take).collect()
            }
        } else {
            Vec::new()
        };
        if end >= start {
            end -= start;
            start = 0;
        }
        picked
            .into_iter()
            .map(|obj| Item {
                obj,
                score: 0.0,
                cmp: None,
            })
            .collect()
    } else {
        elements
            .into_iter()
            .map(|obj| Item {
                obj,
                score: 0.0,
                cmp: None,
            })
            .collect()
    };

    let mut conversion_error = false;
    if !dontsort {
        for item in &mut vector {
            let byval = match sortby {
                Some(p) => match lookup(&mut locked, db, p, &item.obj) {
                    Some(v) => v,
                    None => continue,
                },
                None => item.obj.clone(),
            };
            if alpha {
                if sortby.is_some() {
                    item.cmp = Some(byval);
                }
            } else {
                match weight(&byval) {
                    Some(d) => item.score = d,
                    None => conversion_error = true,
                }
            }
        }
        let order = Order {
            desc,
            alpha,
            by_pattern: sortby.is_some(),
            store: store.is_some(),
        };
        let cmp = |a: &Item, b: &Item| compare(order, a, b);
        if sortby.is_some() && (start != 0 || end != vector.len() as i64 - 1) {
            // Redis sorts only the LIMIT range then, with its own
            // (unstable) partial quicksort; equal ALPHA weights end up
            // where that leaves them. An empty range (`end < start`)
            // still runs it, on a range that selects nothing useful.
            let s = usize::try_from(start.max(0)).unwrap_or(0);
            let e = usize::try_from(end.max(start).max(0)).unwrap_or(0);
            pqsort(&mut vector, &cmp, s, e);
        } else {
            // glibc's `qsort` merge-sorts: stable.
            vector.sort_by(cmp);
        }
    }

    let picked = if end >= start {
        let (s, e) = (
            usize::try_from(start).unwrap_or(0),
            usize::try_from(end).unwrap_or(0),
        );
        vector.get(s..=e).unwrap_or_default()
    } else {
        &[]
    };
    let outputlen = if gets.is_empty() {
        picked.len()
    } else {
        gets.len() * picked.len()
    };
    if conversion_error {
        return err("ERR One or more scores can't be converted into double");
    }
    let Some(dst) = store else {
        let mut out = Vec::with_capacity(outputlen);
        for item in picked {
            if gets.is_empty() {
                out.push(Frame::Bulk(item.obj.clone()));
            }
            for g in &gets {
                out.push(lookup(&mut locked, db, g, &item.obj).map_or(Frame::Null, Frame::Bulk));
            }
        }
        return Frame::Array(out);
    };
    let mut list = QuickList::new();
    for item in picked {
        if gets.is_empty() {
            list.push_back(&item.obj);
        }
        for g in &gets {
            let v = lookup(&mut locked, db, g, &item.obj).unwrap_or_default();
            list.push_back(&v);
        }
    }
    let shard = locked.shard(db, dst);
    if outputlen > 0 {
        shard.set(dst, Value::List(Arc::new(list)), None);
        shard.notify(Class::List, "sortstore", dst);
        ctx.keyspace().signal_key_ready(db, dst);
        if outputlen > 1 {
            shard.add_changes(outputlen as u64 - 1);
        }
    } else if shard.remove(dst).is_some() {
        shard.notify(Class::Generic, "del", dst);
    }
    int(outputlen)
}

/// The key positions Redis' `sortGetKeys` reports for SORT and SORT_RO
/// (COMMAND GETKEYS): the sorted key, and the last STORE destination.
/// BY and GET patterns are not keys. Options named LIMIT, GET and BY skip
/// their arguments; anything else is taken as a one-word option.
pub(crate) fn key_positions(args: &[Bytes]) -> Vec<usize> {
    let mut keys = vec![1];
    let mut store = None;
    let mut i = 2;
    while i < args.len() {
        let a = arg(args, i);
        if is(a, "limit") {
            i += 2;
        } else if is(a, "get") || is(a, "by") {
            i += 1;
        } else if is(a, "store") && i + 1 < args.len() {
            store = Some(i + 1);
        }
        i += 1;
    }
    keys.extend(store);
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<Bytes> {
        a.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    #[test]
    fn key_positions_as_sort_get_keys() {
        assert_eq!(key_positions(&args(&["SORT", "k"])), vec![1]);
        assert_eq!(
            key_positions(&args(&["SORT", "k", "STORE", "a", "STORE", "b"])),
            vec![1, 5]
        );
        // A STORE read as an argument of BY, GET or LIMIT is not an option.
        assert_eq!(
            key_positions(&args(&[
                "SORT", "k", "BY", "store", "GET", "store", "LIMIT", "store", "store"
            ])),
            vec![1]
        );
        assert_eq!(
            key_positions(&args(&["SORT", "k", "ALPHA", "STORE"])),
            vec![1]
        );
    }

    #[test]
    fn weights_as_strtod_reads_them() {
        assert_eq!(weight(b""), Some(0.0));
        assert_eq!(weight(b" 2"), Some(2.0));
        assert_eq!(weight(b"0x10"), Some(16.0));
        assert_eq!(weight(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(weight(b"3 "), None);
        assert_eq!(weight(b"   "), None);
        assert_eq!(weight(b"nan"), None);
        assert_eq!(weight(b"1e400"), None);
        assert_eq!(weight(b"1e-400"), None);
        assert_eq!(weight(b"0e-400"), Some(0.0));
        assert_eq!(weight(b"12\0junk"), Some(12.0));
    }
}
