//! Streams against a real Redis 7.0: every stream command and its error
//! paths, consumer-group histories, claims and pending lists, XINFO, and
//! blocking reads served by another client, in RESP2 and RESP3.
//!
//! Each case goes to both servers and the replies are compared after
//! masking what depends on the clock: IDs generated from it (`*`), unix
//! times within a minute of now (seen-time, delivery times), idle times
//! (to the 10 s bucket; the cases set them with XCLAIM IDLE/TIME so they
//! are deterministic up to the few ms between the two servers), and
//! XINFO's `radix-tree-nodes` (Redis' rax internals; see
//! docs/compatibility.md).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_tests::cairn::CairnServer;
use cairn_tests::oracle::RedisOracle;
use cairn_tests::wire::{Conn, Reply};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Keys whose value is an idle time (ms since something).
const IDLE_KEYS: &[&str] = &["idle"];

fn mask_int(n: i64, idle: bool) -> i64 {
    let now = now_ms();
    if (now - 60_000..now + 60_000).contains(&n) {
        return -1;
    }
    if idle {
        return n / 10_000 * 10_000;
    }
    n
}

fn mask_bulk(b: &[u8]) -> Vec<u8> {
    // A clock-made ID: `<ms within a minute of now>-<seq>`.
    if let Ok(s) = std::str::from_utf8(b)
        && let Some((ms, seq)) = s.split_once('-')
        && let Ok(ms) = ms.parse::<i64>()
        && seq.parse::<u64>().is_ok()
        && (now_ms() - 60_000..now_ms() + 60_000).contains(&ms)
    {
        // The sequence too: one server may make two IDs in the same ms.
        return b"NOW".to_vec();
    }
    b.to_vec()
}

/// Masks clock-dependent parts of a reply to `cmd`.
fn mask(r: &Reply, cmd: &[&str]) -> Reply {
    let name = cmd.first().map(|c| c.to_uppercase()).unwrap_or_default();
    mask_in(r, &name, false)
}

fn mask_in(r: &Reply, cmd: &str, idle: bool) -> Reply {
    // SCAN's order is the hash table's.
    if cmd == "SCAN"
        && let Reply::Array(parts) = r
        && let [cursor, Reply::Array(keys)] = &parts[..]
    {
        let mut keys = keys.clone();
        keys.sort();
        return Reply::Array(vec![cursor.clone(), Reply::Array(keys)]);
    }
    match r {
        Reply::Integer(n) => Reply::Integer(mask_int(*n, idle)),
        Reply::Bulk(b) => Reply::Bulk(mask_bulk(b)),
        Reply::Map(pairs) => Reply::Map(
            pairs
                .iter()
                .map(|(k, v)| (mask_in(k, cmd, false), mask_value(k, v, cmd)))
                .collect(),
        ),
        Reply::Array(items) => {
            // XPENDING's extended form: [id, consumer, idle, count].
            if cmd == "XPENDING"
                && items.len() == 4
                && matches!(items[0], Reply::Bulk(_))
                && matches!(items[1], Reply::Bulk(_))
            {
                return Reply::Array(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, x)| mask_in(x, cmd, i == 2))
                        .collect(),
                );
            }
            // Flat field/value arrays (RESP2 maps).
            let mut out = Vec::with_capacity(items.len());
            let mut i = 0;
            while i < items.len() {
                let x = &items[i];
                if let (Reply::Bulk(k), Some(v)) = (x, items.get(i + 1))
                    && is_info_key(k)
                {
                    out.push(mask_in(x, cmd, false));
                    out.push(mask_value(x, v, cmd));
                    i += 2;
                    continue;
                }
                out.push(mask_in(x, cmd, idle));
                i += 1;
            }
            Reply::Array(out)
        }
        other => other.clone(),
    }
}

fn is_info_key(k: &[u8]) -> bool {
    [
        &b"idle"[..],
        b"radix-tree-nodes",
        b"seen-time",
        b"length",
        b"name",
    ]
    .contains(&k)
}

fn mask_value(k: &Reply, v: &Reply, cmd: &str) -> Reply {
    match k {
        Reply::Bulk(b) if b == b"radix-tree-nodes" => Reply::Integer(0),
        Reply::Bulk(b) if IDLE_KEYS.iter().any(|i| i.as_bytes() == &b[..]) => mask_in(v, cmd, true),
        _ => mask_in(v, cmd, false),
    }
}

/// The scripted cases, run in order on one connection per server.
const CASES: &[&[&str]] = &[
    // XADD and its options.
    &["XADD", "s", "1-1", "a", "1", "b", "2"],
    &["XADD", "s", "1-1", "a", "1"],
    &["XADD", "s", "1-0", "a", "1"],
    &["XADD", "s", "1-*", "a", "3"],
    &["XADD", "s", "2-*", "c", "4"],
    &["XADD", "s", "3", "a", "5", "b", "6"],
    &["XADD", "s", "0-0", "a", "1"],
    &["XADD", "new", "0-0", "a", "1"],
    &["EXISTS", "new"],
    &["XADD", "s", "4-1", "a"],
    &["XADD", "s", "4-1"],
    &["XADD", "s", "4-1", "a", "1", "b"],
    &["XADD", "s", "bad", "a", "1"],
    &["XADD", "s", "4-x", "a", "1"],
    &["XADD", "s", "-", "a", "1"],
    &["XADD", "s", "+", "a", "1"],
    &["XADD", "s", "-1", "a", "1"],
    &["XADD", "s", "18446744073709551616", "a", "1"],
    &["XADD", "nomk", "NOMKSTREAM", "*", "a", "1"],
    &["EXISTS", "nomk"],
    &["XADD", "s", "NOMKSTREAM", "5-0", "a", "1"],
    &["XADD", "s", "MAXLEN", "-1", "6-0", "a", "1"],
    &["XADD", "s", "MAXLEN", "x", "6-0", "a", "1"],
    &["XADD", "s", "MAXLEN", "10", "MINID", "0", "6-0", "a", "1"],
    &["XADD", "s", "LIMIT", "10", "6-0", "a", "1"],
    &["XADD", "s", "MAXLEN", "10", "LIMIT", "10", "6-0", "a", "1"],
    &[
        "XADD", "s", "MAXLEN", "~", "10", "LIMIT", "-1", "6-0", "a", "1",
    ],
    &["XADD", "s", "MAXLEN", "=", "100", "6-0", "a", "1"],
    &[
        "XADD", "s", "MAXLEN", "~", "100", "LIMIT", "5", "7-0", "a", "1",
    ],
    &["XADD", "s", "MINID", "bad", "8-0", "a", "1"],
    &["XADD", "s", "MINID", "~", "0", "8-0", "a", "1"],
    &["XADD", "auto", "*", "f", "v"],
    &["XADD", "auto", "*", "f", "v"],
    &["XLEN", "auto"],
    &["XLEN", "s"],
    &["XLEN", "missing"],
    &["SET", "str", "x"],
    &["XADD", "str", "*", "a", "1"],
    &["XLEN", "str"],
    &[
        "XADD",
        "max",
        "18446744073709551615-18446744073709551615",
        "a",
        "1",
    ],
    &["XADD", "max", "*", "a", "1"],
    &[
        "XADD",
        "max2",
        "18446744073709551615-18446744073709551614",
        "a",
        "1",
    ],
    &["XADD", "max2", "18446744073709551615-*", "a", "1"],
    &["XADD", "max2", "18446744073709551615-*", "a", "1"],
    &["XADD", "max3", "5-18446744073709551615", "a", "1"],
    &["XADD", "max3", "5-*", "a", "1"],
    &["XADD", "max3", "*", "a", "1"],
    // XRANGE / XREVRANGE.
    &["XRANGE", "s", "-", "+"],
    &["XRANGE", "s", "-", "+", "COUNT", "2"],
    &["XRANGE", "s", "-", "+", "COUNT", "0"],
    &["XRANGE", "s", "-", "+", "COUNT", "-5"],
    &["XRANGE", "s", "-", "+", "COUNT"],
    &["XRANGE", "s", "-", "+", "LIMIT", "2"],
    &["XRANGE", "s", "(1-1", "+"],
    &["XRANGE", "s", "1", "1"],
    &["XRANGE", "s", "(1", "(3"],
    &["XRANGE", "s", "2", "1"],
    &["XRANGE", "s", "(-", "+"],
    &[
        "XRANGE",
        "s",
        "(18446744073709551615-18446744073709551615",
        "+",
    ],
    &["XRANGE", "s", "-", "(0-0"],
    &["XRANGE", "s", "x", "+"],
    &["XRANGE", "missing", "-", "+"],
    &["XRANGE", "missing", "-", "+", "COUNT", "0"],
    &["XRANGE", "str", "-", "+"],
    &["XREVRANGE", "s", "+", "-"],
    &["XREVRANGE", "s", "+", "-", "COUNT", "3"],
    &["XREVRANGE", "s", "(3", "(1-1"],
    &["XREVRANGE", "s", "-", "+"],
    // XDEL.
    &["XDEL", "missing", "bad"],
    &["XDEL", "str", "1-1"],
    &["XDEL", "s", "bad"],
    &["XDEL", "s", "1-1", "bad"],
    &["XDEL", "s", "99-1"],
    &["XDEL", "s", "1-2", "1-2", "2-0"],
    &["XRANGE", "s", "-", "+"],
    &["XINFO", "STREAM", "s"],
    // XTRIM.
    &["XTRIM", "missing", "bogus"],
    &["XTRIM", "str", "MAXLEN", "1"],
    &["XTRIM", "s"],
    &["XTRIM", "s", "MAXLEN"],
    &["XTRIM", "s", "bogus", "1"],
    &["XTRIM", "s", "LIMIT", "1"],
    &["XTRIM", "s", "MAXLEN", "~", "1", "LIMIT", "x"],
    &["XTRIM", "s", "MAXLEN", "100"],
    &["XTRIM", "s", "MAXLEN", "~", "1"],
    &["XTRIM", "s", "MINID", "3"],
    &["XRANGE", "s", "-", "+"],
    &["XTRIM", "s", "MAXLEN", "0"],
    &["XINFO", "STREAM", "s"],
    &["XADD", "s", "8-0", "a", "1"],
    &["XINFO", "STREAM", "s"],
    // XSETID.
    &["XSETID", "missing", "1-1"],
    &["XSETID", "str", "1-1"],
    &["XSETID", "s", "bad"],
    &["XSETID", "s", "1-1"],
    &["XSETID", "s", "9-0", "ENTRIESADDED"],
    &["XSETID", "s", "9-0", "ENTRIESADDED", "-1"],
    &["XSETID", "s", "9-0", "ENTRIESADDED", "0"],
    &["XSETID", "s", "9-0", "MAXDELETEDID", "10-0"],
    &["XSETID", "s", "9-0", "MAXDELETEDID", "1-0"],
    &[
        "XSETID",
        "s",
        "9-0",
        "ENTRIESADDED",
        "50",
        "MAXDELETEDID",
        "2-0",
    ],
    &["XSETID", "s", "9-0", "BOGUS", "1"],
    &["XINFO", "STREAM", "s"],
    &["XADD", "s", "9-0", "a", "1"],
    &["XADD", "s", "*", "a", "1"],
    &["XDEL", "s", "8-0"],
    &["XSETID", "s", "7-0"],
    &["XINFO", "STREAM", "s", "FULL"],
    // Consumer groups.
    &["DEL", "q"],
    &["XGROUP", "CREATE", "q", "g", "$"],
    &["XGROUP", "CREATE", "q", "g", "$", "MKSTREAM"],
    &["XGROUP", "CREATE", "q", "g", "$", "MKSTREAM"],
    &["XGROUP", "CREATE", "q", "g2", "bad"],
    &["XGROUP", "CREATE", "q", "g2", "0", "BOGUS"],
    &["XGROUP", "CREATE", "q", "g2", "0", "ENTRIESREAD", "-5"],
    &["XGROUP", "CREATE", "q", "g2", "0", "ENTRIESREAD", "x"],
    &["XGROUP", "CREATE", "q", "g2", "0", "ENTRIESREAD", "3"],
    &["XGROUP", "CREATE", "str", "g", "$"],
    &["XGROUP", "CREATECONSUMER", "q", "nog", "c"],
    &["XGROUP", "CREATECONSUMER", "q", "g", "c1"],
    &["XGROUP", "CREATECONSUMER", "q", "g", "c1"],
    &["XGROUP", "DELCONSUMER", "q", "g", "nobody"],
    &["XGROUP", "DELCONSUMER", "missing", "g", "c"],
    &["XGROUP", "DESTROY", "q", "nog"],
    &["XGROUP", "DESTROY", "q", "g2"],
    &["XGROUP", "SETID", "q", "nog", "0"],
    &["XGROUP", "SETID", "q", "g", "0", "BOGUS", "1"],
    &["XGROUP", "SETID", "q", "g", "0", "ENTRIESREAD"],
    &["XGROUP", "BOGUS", "q", "g"],
    &["XGROUP", "CREATE", "q"],
    &["XGROUP", "HELP"],
    &["XGROUP"],
    &["XINFO", "HELP"],
    &["XINFO", "BOGUS", "q"],
    &["XINFO", "GROUPS", "missing"],
    &["XINFO", "GROUPS", "str"],
    &["XINFO", "CONSUMERS", "q", "nog"],
    &["XINFO", "STREAM", "q", "FULL", "COUNT"],
    &["XINFO", "STREAM", "q", "FULL", "COUNT", "x"],
    &["XINFO", "STREAM", "q", "BOGUS"],
    &["XADD", "q", "1-0", "f", "a"],
    &["XADD", "q", "2-0", "f", "b"],
    &["XADD", "q", "3-0", "f", "c"],
    &["XADD", "q", "4-0", "f", "d"],
    &["XADD", "q", "5-0", "f", "e"],
    &["XINFO", "GROUPS", "q"],
    &[
        "XREADGROUP",
        "GROUP",
        "g",
        "c1",
        "COUNT",
        "2",
        "STREAMS",
        "q",
        ">",
    ],
    &[
        "XREADGROUP",
        "GROUP",
        "g",
        "c2",
        "COUNT",
        "1",
        "STREAMS",
        "q",
        ">",
    ],
    &[
        "XREADGROUP",
        "GROUP",
        "g",
        "c3",
        "NOACK",
        "COUNT",
        "1",
        "STREAMS",
        "q",
        ">",
    ],
    &["XINFO", "GROUPS", "q"],
    &["XINFO", "CONSUMERS", "q", "g"],
    &["XPENDING", "q", "g"],
    &["XPENDING", "q", "g", "-", "+", "10"],
    &["XPENDING", "q", "g", "-", "+", "10", "c1"],
    &["XPENDING", "q", "g", "-", "+", "10", "nobody"],
    &["XPENDING", "q", "g", "(1-0", "+", "1"],
    &["XPENDING", "q", "g", "IDLE", "0", "-", "+", "10"],
    &["XPENDING", "q", "g", "IDLE", "999999", "-", "+", "10"],
    &["XPENDING", "q", "g", "IDLE", "x", "-", "+", "10"],
    &["XPENDING", "q", "g", "IDLE", "1", "-", "+"],
    &["XPENDING", "q", "g", "-", "+"],
    &["XPENDING", "q", "g", "-", "+", "x"],
    &["XPENDING", "q", "g", "x", "+", "1"],
    &["XPENDING", "q", "nog"],
    &["XPENDING", "missing", "g"],
    &["XPENDING", "str", "g"],
    // History reads.
    &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "q", "0"],
    &[
        "XREADGROUP",
        "GROUP",
        "g",
        "c1",
        "COUNT",
        "1",
        "STREAMS",
        "q",
        "0",
    ],
    &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "q", "1-0"],
    &["XREADGROUP", "GROUP", "g", "nobody", "STREAMS", "q", "0"],
    &["XPENDING", "q", "g", "-", "+", "10"],
    &["XDEL", "q", "2-0"],
    &["XREADGROUP", "GROUP", "g", "c1", "STREAMS", "q", "0"],
    &["XINFO", "GROUPS", "q"],
    // XACK.
    &["XACK", "q", "g", "bad"],
    &["XACK", "q", "g", "1-0", "bad"],
    &["XACK", "q", "g", "1-0", "1-0", "9-9"],
    &["XACK", "q", "nog", "1-0"],
    &["XACK", "missing", "g", "1-0"],
    &["XACK", "str", "g", "1-0"],
    &["XPENDING", "q", "g"],
    // XCLAIM.
    &["XCLAIM", "q", "nog", "c", "0", "1-0"],
    &["XCLAIM", "missing", "g", "c", "0", "1-0"],
    &["XCLAIM", "str", "g", "c", "0", "1-0"],
    &["XCLAIM", "q", "g", "c", "x", "1-0"],
    &["XCLAIM", "q", "g", "c", "0", "bad"],
    &["XCLAIM", "q", "g", "c", "0", "3-0", "IDLE", "x"],
    &["XCLAIM", "q", "g", "c", "0", "3-0", "TIME", "x"],
    &["XCLAIM", "q", "g", "c", "0", "3-0", "RETRYCOUNT", "x"],
    &["XCLAIM", "q", "g", "c", "0", "3-0", "LASTID", "x"],
    &["XCLAIM", "q", "g", "c", "0", "3-0", "IDLE"],
    &["XCLAIM", "q", "g", "c4", "3600000", "3-0"],
    &[
        "XCLAIM",
        "q",
        "g",
        "c4",
        "0",
        "3-0",
        "IDLE",
        "500000",
        "RETRYCOUNT",
        "7",
    ],
    &["XPENDING", "q", "g", "-", "+", "10"],
    &["XCLAIM", "q", "g", "c5", "0", "3-0", "JUSTID"],
    &["XCLAIM", "q", "g", "c5", "0", "4-0", "5-0", "JUSTID"],
    &[
        "XCLAIM", "q", "g", "c5", "0", "4-0", "5-0", "FORCE", "JUSTID",
    ],
    &["XCLAIM", "q", "g", "c5", "0", "1-0", "FORCE"],
    &["XCLAIM", "q", "g", "c5", "0", "2-0", "FORCE"],
    &[
        "XCLAIM", "q", "g", "c5", "0", "5-0", "TIME", "1000", "LASTID", "9-0",
    ],
    &["XPENDING", "q", "g", "-", "+", "10"],
    &["XINFO", "GROUPS", "q"],
    &["XINFO", "CONSUMERS", "q", "g"],
    // XAUTOCLAIM.
    &["XAUTOCLAIM", "q", "nog", "c", "0", "0"],
    &["XAUTOCLAIM", "q", "g", "c", "x", "0"],
    &["XAUTOCLAIM", "q", "g", "c", "0", "bad"],
    &["XAUTOCLAIM", "q", "g", "c", "0", "0", "COUNT", "0"],
    &["XAUTOCLAIM", "q", "g", "c", "0", "0", "COUNT", "x"],
    &["XAUTOCLAIM", "q", "g", "c", "0", "0", "BOGUS"],
    &["XAUTOCLAIM", "missing", "g", "c", "0", "0"],
    &["XAUTOCLAIM", "q", "g", "c6", "0", "0", "COUNT", "1"],
    &[
        "XAUTOCLAIM",
        "q",
        "g",
        "c6",
        "0",
        "0",
        "COUNT",
        "1",
        "JUSTID",
    ],
    &["XAUTOCLAIM", "q", "g", "c6", "3600000", "0"],
    &["XDEL", "q", "4-0"],
    &["XAUTOCLAIM", "q", "g", "c7", "0", "(1-0"],
    &["XPENDING", "q", "g"],
    &["XINFO", "STREAM", "q", "FULL"],
    &["XINFO", "STREAM", "q", "FULL", "COUNT", "1"],
    &["XINFO", "STREAM", "q", "FULL", "COUNT", "0"],
    &["XGROUP", "DELCONSUMER", "q", "g", "c5"],
    &["XGROUP", "SETID", "q", "g", "$"],
    &["XGROUP", "SETID", "q", "g", "1", "ENTRIESREAD", "1"],
    &["XINFO", "GROUPS", "q"],
    &["XGROUP", "SETID", "q", "g", "-"],
    &["XINFO", "GROUPS", "q"],
    &["XGROUP", "DESTROY", "q", "g"],
    &["XINFO", "GROUPS", "q"],
    // XREAD.
    &["XREAD", "STREAMS", "q", "0"],
    &["XREAD", "COUNT", "1", "STREAMS", "q", "s", "0", "0"],
    &["XREAD", "STREAMS", "q", "$"],
    &["XREAD", "STREAMS", "missing", "0"],
    &["XREAD", "STREAMS", "q"],
    &["XREAD", "STREAMS", "q", "s", "0"],
    &["XREAD", "STREAMS", "q", ">"],
    &["XREAD", "STREAMS", "q", "bad"],
    &["XREAD", "COUNT", "x", "STREAMS", "q", "0"],
    &["XREAD", "BLOCK", "x", "STREAMS", "q", "0"],
    &["XREAD", "BLOCK", "-1", "STREAMS", "q", "0"],
    &["XREAD", "GROUP", "g", "c", "STREAMS", "q", "0"],
    &["XREAD", "NOACK", "STREAMS", "q", "0"],
    &["XREAD", "BOGUS", "STREAMS", "q", "0"],
    &["XREAD", "COUNT", "1"],
    &["XREAD", "STREAMS", "str", "0"],
    &["XREADGROUP", "STREAMS", "q", ">"],
    &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "q", ">"],
    &["XGROUP", "CREATE", "q", "g", "0"],
    &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "q", "$"],
    &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "q"],
    &[
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "STREAMS",
        "q",
        "missing",
        ">",
        ">",
    ],
    &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "q", "bad"],
    &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "q", ">"],
    &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "q", ">"],
    &["XINFO", "CONSUMERS", "q", "g"],
    &[
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "BLOCK",
        "10",
        "STREAMS",
        "q",
        ">",
    ],
    &["XREAD", "BLOCK", "10", "STREAMS", "q", "$"],
    &["MULTI"],
    &["XREAD", "BLOCK", "0", "STREAMS", "q", "$"],
    &[
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "BLOCK",
        "0",
        "STREAMS",
        "q",
        ">",
    ],
    &["XADD", "q", "6-0", "f", "g"],
    &["EXEC"],
    // Generic commands on streams.
    &["TYPE", "q"],
    &["OBJECT", "ENCODING", "q"],
    &["COPY", "q", "qcopy"],
    &["XINFO", "STREAM", "qcopy", "FULL"],
    &["RENAME", "qcopy", "qmoved"],
    &["XRANGE", "qmoved", "-", "+"],
    &["XINFO", "GROUPS", "qmoved"],
    &["DEL", "qmoved"],
    &["EXISTS", "qmoved"],
    &["LPUSH", "q", "x"],
    &["HSET", "q", "a", "b"],
    &["GET", "q"],
    &["SCAN", "0", "TYPE", "stream", "COUNT", "1000"],
    // An empty stream stays.
    &["XADD", "e", "1-0", "a", "1"],
    &["XDEL", "e", "1-0"],
    &["EXISTS", "e"],
    &["XLEN", "e"],
    &["XINFO", "STREAM", "e"],
    &["XADD", "e", "1-0", "a", "1"],
    &["XADD", "e", "MAXLEN", "0", "2-0", "a", "1"],
    &["XINFO", "STREAM", "e"],
    // Large-ish streams: block boundaries and approximate trimming.
    &["CONFIG", "SET", "stream-node-max-entries", "10"],
];

/// Adds enough entries to `big` (through XADD, varied field sets) that
/// several blocks fill, then trims and inspects it.
fn bulk_cases() -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let v = |xs: &[&str]| xs.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    for i in 1..=120u32 {
        let id = format!("{i}-1");
        let val = "x".repeat((i as usize * 7) % 50);
        if i % 13 == 0 {
            out.push(v(&["XADD", "big", &id, "other", &val]));
        } else {
            out.push(v(&["XADD", "big", &id, "a", &val, "n", &i.to_string()]));
        }
    }
    out.push(v(&["XDEL", "big", "5-1", "50-1", "51-1"]));
    out.push(v(&["XINFO", "STREAM", "big"]));
    out.push(v(&["XTRIM", "big", "MAXLEN", "~", "100"]));
    out.push(v(&["XTRIM", "big", "MAXLEN", "~", "95", "LIMIT", "5"]));
    out.push(v(&["XTRIM", "big", "MINID", "~", "40"]));
    out.push(v(&["XTRIM", "big", "MINID", "45"]));
    out.push(v(&["XINFO", "STREAM", "big"]));
    out.push(v(&["XRANGE", "big", "-", "+", "COUNT", "7"]));
    out.push(v(&["XREVRANGE", "big", "+", "-", "COUNT", "7"]));
    out.push(v(&["XRANGE", "big", "60", "70"]));
    out.push(v(&["XADD", "big", "MAXLEN", "~", "30", "200-1", "a", "y"]));
    out.push(v(&["XINFO", "STREAM", "big"]));
    out.push(v(&["CONFIG", "SET", "stream-node-max-entries", "0"]));
    out.push(v(&["CONFIG", "SET", "stream-node-max-bytes", "200"]));
    for i in 1..=40u32 {
        let id = format!("{i}-0");
        let val = "y".repeat((i as usize * 11) % 70);
        out.push(v(&["XADD", "bytes", &id, "f", &val, "g", "12345"]));
    }
    out.push(v(&["XINFO", "STREAM", "bytes"]));
    out.push(v(&["XTRIM", "bytes", "MAXLEN", "~", "20"]));
    out.push(v(&["XINFO", "STREAM", "bytes"]));
    out.push(v(&["CONFIG", "SET", "stream-node-max-bytes", "4096"]));
    out.push(v(&["CONFIG", "SET", "stream-node-max-entries", "100"]));
    out
}

struct Pair {
    redis: Conn,
    cairn: Conn,
}

async fn open(redis: &RedisOracle, cairn: &CairnServer, resp3: bool) -> anyhow::Result<Pair> {
    let c = |a| async move {
        if resp3 {
            Conn::connect_resp3(a).await
        } else {
            Conn::connect(a).await
        }
    };
    Ok(Pair {
        redis: c(redis.addr()).await?,
        cairn: c(cairn.addr()).await?,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_commands_match_redis() -> anyhow::Result<()> {
    let Some(redis) = RedisOracle::start_or_skip("stream_commands_match_redis")? else {
        return Ok(());
    };
    let cairn = CairnServer::start().await?;
    let mut differences = Vec::new();
    let mut compared = 0usize;
    for resp3 in [false, true] {
        let mut p = open(&redis, &cairn, resp3).await?;
        p.redis.call(&["FLUSHALL"]).await?;
        p.cairn.call(&["FLUSHALL"]).await?;
        let mut cases: Vec<Vec<String>> = CASES
            .iter()
            .map(|c| c.iter().map(|s| (*s).to_owned()).collect())
            .collect();
        cases.extend(bulk_cases());
        for cmd in &cases {
            let r = p.redis.call(cmd).await?;
            let c = p.cairn.call(cmd).await?;
            let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
            let (rm, cm) = (mask(&r, &refs), mask(&c, &refs));
            compared += 1;
            if rm != cm {
                differences.push(format!(
                    "resp{} {}\n  redis: {r}\n  cairn: {c}",
                    if resp3 { 3 } else { 2 },
                    cmd.join(" ")
                ));
            }
        }
    }
    println!(
        "stream_commands_match_redis: {compared} comparisons, {} differences",
        differences.len()
    );
    for d in &differences {
        println!("{d}");
    }
    cairn.shutdown().await?;
    anyhow::ensure!(differences.is_empty(), "{} differences", differences.len());
    Ok(())
}

/// A step of a blocking scenario over two clients per server.
enum B {
    /// Client sends without reading.
    Send(usize, &'static [&'static str]),
    /// Client sends and reads the reply.
    Call(usize, &'static [&'static str]),
    /// Client reads the reply to what it sent.
    Read(usize),
}

/// How long a blocked client may take to be served.
const PATIENCE: Duration = Duration::from_secs(3);

async fn reply_within(conn: &mut Conn) -> Reply {
    match tokio::time::timeout(PATIENCE, conn.read_reply()).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Reply::Error(format!("(client) {e}")),
        Err(_) => Reply::Error("(client) no reply".to_owned()),
    }
}

/// Waits until the server reports `n` blocked clients, so the next step
/// cannot overtake the blocking command.
async fn until_blocked(conn: &mut Conn, n: usize) -> anyhow::Result<()> {
    let want = format!("blocked_clients:{n}");
    for _ in 0..500 {
        let r = conn.call(&["INFO", "clients"]).await?;
        if r.as_bytes()
            .is_some_and(|b| String::from_utf8_lossy(b).contains(&want))
        {
            return Ok(());
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    anyhow::bail!("the client never blocked")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_stream_reads_match_redis() -> anyhow::Result<()> {
    let Some(redis) = RedisOracle::start_or_skip("blocking_stream_reads_match_redis")? else {
        return Ok(());
    };
    let cairn = CairnServer::start().await?;
    let script: &[B] = &[
        B::Call(1, &["XADD", "s", "1-0", "a", "1"]),
        B::Send(0, &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]),
        B::Call(1, &["XADD", "s", "2-0", "b", "2"]),
        B::Read(0),
        B::Send(
            0,
            &[
                "XREAD", "BLOCK", "0", "COUNT", "1", "STREAMS", "other", "s", "0", "2-0",
            ],
        ),
        B::Call(1, &["XADD", "s", "3-0", "c", "3"]),
        B::Read(0),
        B::Send(0, &["XREAD", "BLOCK", "0", "STREAMS", "new", "$"]),
        B::Call(1, &["XADD", "new", "5-0", "x", "y"]),
        B::Read(0),
        B::Call(1, &["XGROUP", "CREATE", "s", "g", "$"]),
        B::Send(
            0,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "BLOCK",
                "0",
                "STREAMS",
                "s",
                ">",
            ],
        ),
        B::Call(1, &["XINFO", "CONSUMERS", "s", "g"]),
        B::Call(1, &["XADD", "s", "4-0", "d", "4"]),
        B::Read(0),
        B::Call(1, &["XPENDING", "s", "g"]),
        B::Call(1, &["XINFO", "GROUPS", "s"]),
        B::Send(
            0,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "NOACK",
                "BLOCK",
                "0",
                "STREAMS",
                "s",
                ">",
            ],
        ),
        B::Call(1, &["XADD", "s", "5-0", "e", "5"]),
        B::Read(0),
        B::Call(1, &["XPENDING", "s", "g"]),
        B::Send(
            0,
            &[
                "XREADGROUP",
                "GROUP",
                "g",
                "c",
                "BLOCK",
                "0",
                "STREAMS",
                "s",
                ">",
            ],
        ),
        B::Call(1, &["XGROUP", "DESTROY", "s", "g"]),
        B::Read(0),
        B::Send(0, &["XREAD", "BLOCK", "50", "STREAMS", "s", "$"]),
        B::Read(0),
        B::Call(1, &["XGROUP", "CREATE", "s", "g2", "$"]),
        B::Send(
            0,
            &[
                "XREADGROUP",
                "GROUP",
                "g2",
                "c",
                "BLOCK",
                "50",
                "STREAMS",
                "s",
                ">",
            ],
        ),
        B::Read(0),
        B::Call(1, &["XINFO", "CONSUMERS", "s", "g2"]),
    ];
    let mut differences = Vec::new();
    let mut compared = 0;
    for resp3 in [false, true] {
        let mut waiters = open(&redis, &cairn, resp3).await?;
        let mut others = open(&redis, &cairn, false).await?;
        others.redis.call(&["FLUSHALL"]).await?;
        others.cairn.call(&["FLUSHALL"]).await?;
        let mut pending: Option<Vec<&str>> = None;
        for step in script {
            match step {
                B::Send(c, cmd) => {
                    let p = if *c == 0 { &mut waiters } else { &mut others };
                    p.redis.send(cmd).await?;
                    p.cairn.send(cmd).await?;
                    pending = Some(cmd.to_vec());
                    let timed = cmd.contains(&"50");
                    if !timed {
                        until_blocked(&mut others.redis, 1).await?;
                        until_blocked(&mut others.cairn, 1).await?;
                    }
                }
                B::Call(c, cmd) => {
                    let p = if *c == 0 { &mut waiters } else { &mut others };
                    let r = p.redis.call(cmd).await?;
                    let cr = p.cairn.call(cmd).await?;
                    compared += 1;
                    if mask(&r, cmd) != mask(&cr, cmd) {
                        differences.push(format!(
                            "resp{} {}\n  redis: {r}\n  cairn: {cr}",
                            if resp3 { 3 } else { 2 },
                            cmd.join(" ")
                        ));
                    }
                }
                B::Read(c) => {
                    let p = if *c == 0 { &mut waiters } else { &mut others };
                    let r = reply_within(&mut p.redis).await;
                    let cr = reply_within(&mut p.cairn).await;
                    let cmd = pending.take().unwrap_or_default();
                    compared += 1;
                    if mask(&r, &cmd) != mask(&cr, &cmd) {
                        differences.push(format!(
                            "resp{} (served) {}\n  redis: {r}\n  cairn: {cr}",
                            if resp3 { 3 } else { 2 },
                            cmd.join(" ")
                        ));
                    }
                }
            }
        }
    }
    println!(
        "blocking_stream_reads_match_redis: {compared} comparisons, {} differences",
        differences.len()
    );
    for d in &differences {
        println!("{d}");
    }
    cairn.shutdown().await?;
    anyhow::ensure!(differences.is_empty(), "{} differences", differences.len());
    Ok(())
}

/// A step of a release scenario over three clients per server.
enum R {
    /// Client sends a blocking command without reading; the step waits
    /// until the server reports it blocked.
    Block(usize, &'static [&'static str]),
    /// Client sends and reads the reply.
    Call(usize, &'static [&'static str]),
    /// Client reads the reply to the blocking command it sent.
    Read(usize),
}

/// XREADGROUP clients released when their stream is deleted, replaced by
/// another type, renamed away, moved, flushed, swapped out or expired
/// (`-UNBLOCKED`), or their group destroyed or missing from the stream
/// put in its place (`-NOGROUP`); XREAD clients left blocked by the same;
/// a BLPOP client blocked on the same key first; and XREAD/XREADGROUP
/// with BLOCK inside MULTI and scripts, which never block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocked_group_readers_are_released_as_redis() -> anyhow::Result<()> {
    let Some(redis) = RedisOracle::start_or_skip("blocked_group_readers_are_released_as_redis")?
    else {
        return Ok(());
    };
    let cairn = CairnServer::start().await?;
    const G: &[&str] = &[
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ];
    const NEW_S: &[&str] = &["XADD", "s", "1-0", "f", "v"];
    const NEW_G: &[&str] = &["XGROUP", "CREATE", "s", "g", "$"];
    let mut script: Vec<R> = Vec::new();
    // Each way a stream can go, with a fresh stream and group before it.
    let releases: &[&[&[&str]]] = &[
        &[&["DEL", "s"]],
        &[&["UNLINK", "s"]],
        &[&["SET", "s", "x"]],
        &[&["RPUSH", "t", "x"], &["RENAME", "t", "s"]],
        &[&["RENAME", "s", "t"]],
        &[&["MOVE", "s", "1"]],
        &[&["FLUSHDB"]],
        &[&["FLUSHALL"]],
        &[&["SWAPDB", "0", "1"]],
        &[&["XGROUP", "DESTROY", "s", "g"]],
        &[&["PEXPIRE", "s", "20"]],
        // Deleted and recreated with its group in one transaction: served.
        &[
            &["MULTI"],
            &["DEL", "s"],
            &["XADD", "s", "9-0", "a", "b"],
            &["XGROUP", "CREATE", "s", "g", "0"],
            &["EXEC"],
        ],
        // Replaced by a stream without the group, or with it.
        &[&["XADD", "t", "5-0", "a", "b"], &["RENAME", "t", "s"]],
        &[
            &["XADD", "t", "5-0", "a", "b"],
            &["XGROUP", "CREATE", "t", "g", "0"],
            &["RENAME", "t", "s"],
        ],
        &[
            &["XADD", "t", "5-0", "a", "b"],
            &["SET", "t", "x"],
            &["COPY", "t", "s", "REPLACE"],
        ],
    ];
    for steps in releases {
        script.push(R::Call(1, &["FLUSHALL"]));
        script.push(R::Call(1, NEW_S));
        script.push(R::Call(1, NEW_G));
        script.push(R::Block(0, G));
        for s in *steps {
            script.push(R::Call(1, s));
        }
        script.push(R::Read(0));
        script.push(R::Call(1, &["EXISTS", "s"]));
    }
    // Two streams, one deleted; the group destroyed on the other.
    let two: &[&str] = &[
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "BLOCK",
        "0",
        "STREAMS",
        "s2",
        "s",
        ">",
        ">",
    ];
    for gone in [&["DEL", "s"][..], &["XGROUP", "DESTROY", "s2", "g"]] {
        script.extend([
            R::Call(1, &["FLUSHALL"]),
            R::Call(1, NEW_S),
            R::Call(1, NEW_G),
            R::Call(1, &["XADD", "s2", "1-0", "f", "v"]),
            R::Call(1, &["XGROUP", "CREATE", "s2", "g", "$"]),
            R::Block(0, two),
        ]);
        script.push(R::Call(1, gone));
        script.push(R::Read(0));
    }
    // XREAD stays blocked through a deletion and a type change, and is
    // served by the next stream under the key.
    script.extend([
        R::Call(1, &["FLUSHALL"]),
        R::Call(1, NEW_S),
        R::Block(0, &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]),
        R::Call(1, &["DEL", "s"]),
        R::Call(1, &["SET", "s", "x"]),
        R::Call(1, &["DEL", "s"]),
        R::Call(1, &["XADD", "s", "7-0", "late", "1"]),
        R::Read(0),
    ]);
    // A BLPOP waiter first in line on the key: it stays blocked, the
    // XREADGROUP behind it is released.
    script.extend([
        R::Call(1, &["FLUSHALL"]),
        R::Block(2, &["BLPOP", "s", "0"]),
        R::Call(1, NEW_S),
        R::Call(1, NEW_G),
        R::Block(0, G),
        R::Call(1, &["DEL", "s"]),
        R::Read(0),
        R::Call(1, &["RPUSH", "s", "x"]),
        R::Read(2),
    ]);
    // No blocking inside MULTI or a script: the timeout reply at once.
    script.extend([
        R::Call(1, &["FLUSHALL"]),
        R::Call(1, NEW_S),
        R::Call(1, NEW_G),
        R::Call(0, &["MULTI"]),
        R::Call(0, &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]),
        R::Call(0, G),
        R::Call(0, &["XREAD", "BLOCK", "0", "STREAMS", "s", "0"]),
        R::Call(0, &["EXEC"]),
        R::Call(
            0,
            &[
                "EVAL",
                "return redis.call('xread','block','0','streams',KEYS[1],'$')",
                "1",
                "s",
            ],
        ),
        R::Call(
            0,
            &[
                "EVAL",
                "return redis.call('xreadgroup','group','g','c','block','0','streams',KEYS[1],'>')",
                "1",
                "s",
            ],
        ),
        R::Call(
            0,
            &[
                "EVAL",
                "return type(redis.call('xread','block','100','streams',KEYS[1],'$'))",
                "1",
                "s",
            ],
        ),
        R::Call(1, &["XADD", "s", "2-0", "f", "v"]),
        R::Call(
            0,
            &[
                "EVAL",
                "return redis.call('xreadgroup','group','g','c','block','0','streams',KEYS[1],'>')",
                "1",
                "s",
            ],
        ),
        R::Call(0, &["XPENDING", "s", "g"]),
    ]);
    let mut differences = Vec::new();
    let mut compared = 0;
    for resp3 in [false, true] {
        let mut conns = [
            open(&redis, &cairn, resp3).await?,
            open(&redis, &cairn, false).await?,
            open(&redis, &cairn, resp3).await?,
        ];
        let mut pending: [Option<&[&str]>; 3] = [None; 3];
        let mut blocked = 0usize;
        for step in &script {
            match step {
                R::Block(c, cmd) => {
                    conns[*c].redis.send(cmd).await?;
                    conns[*c].cairn.send(cmd).await?;
                    pending[*c] = Some(cmd);
                    blocked += 1;
                    until_blocked(&mut conns[1].redis, blocked).await?;
                    until_blocked(&mut conns[1].cairn, blocked).await?;
                }
                R::Call(c, cmd) => {
                    let p = &mut conns[*c];
                    let r = p.redis.call(cmd).await?;
                    let cr = p.cairn.call(cmd).await?;
                    compared += 1;
                    if mask(&r, cmd) != mask(&cr, cmd) {
                        differences.push(format!(
                            "resp{} {}\n  redis: {r}\n  cairn: {cr}",
                            if resp3 { 3 } else { 2 },
                            cmd.join(" ")
                        ));
                    }
                }
                R::Read(c) => {
                    let p = &mut conns[*c];
                    let r = reply_within(&mut p.redis).await;
                    let cr = reply_within(&mut p.cairn).await;
                    let cmd = pending[*c].take().unwrap_or_default();
                    blocked = blocked.saturating_sub(1);
                    compared += 1;
                    if mask(&r, cmd) != mask(&cr, cmd) {
                        differences.push(format!(
                            "resp{} (released) {}\n  redis: {r}\n  cairn: {cr}",
                            if resp3 { 3 } else { 2 },
                            cmd.join(" ")
                        ));
                    }
                }
            }
        }
    }
    println!(
        "blocked_group_readers_are_released_as_redis: {compared} comparisons, {} differences",
        differences.len()
    );
    for d in &differences {
        println!("{d}");
    }
    cairn.shutdown().await?;
    anyhow::ensure!(differences.is_empty(), "{} differences", differences.len());
    Ok(())
}

/// The persistence campaigns' stream model (`cairn_tests::data`) against
/// the real server: seeded streams written with its commands, seeded
/// stream changes (XADD, XDEL, XTRIM, XACK, XGROUP, XCLAIM) applied to it
/// and to the server, then the dump (`XINFO STREAM FULL`) must equal the
/// model, on Redis (so the model is Redis') and on cairn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_campaigns_stream_model_is_redis() -> anyhow::Result<()> {
    use cairn_tests::data::{self, Mutator, Spec, TypeMix};
    let Some(redis) = RedisOracle::start_or_skip("the_campaigns_stream_model_is_redis")? else {
        return Ok(());
    };
    let cairn = CairnServer::start().await?;
    let seed = std::env::var("CAIRN_STREAM_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now_ms() as u64);
    println!("the_campaigns_stream_model_is_redis: seed {seed}");
    let spec = Spec {
        types: TypeMix {
            string: 1,
            list: 0,
            hash: 0,
            set: 0,
            zset: 0,
            stream: 6,
        },
        ..Spec::small(seed, 150)
    };
    let addrs = [("redis", redis.addr()), ("cairn", cairn.addr())];
    let results = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        let mut failures = Vec::new();
        for (name, addr) in addrs {
            let mut conn = data::connect(addr)?;
            redis::cmd("FLUSHALL").query::<()>(&mut conn)?;
            let mut model = spec.generate();
            data::populate(&mut conn, &model)?;
            let got = data::dump(&mut conn, data::DATABASES)?;
            let d = model.diff(&got, data::TTL_TOLERANCE_MS);
            if !d.is_empty() {
                failures.push(format!("{name}, as populated: {d}"));
            }
            let mut m = Mutator::new(spec.clone());
            for _ in 0..20 {
                m.apply_n(&mut conn, &mut model, 50)?;
            }
            let got = data::dump(&mut conn, data::DATABASES)?;
            let d = model.diff(&got, data::TTL_TOLERANCE_MS);
            if !d.is_empty() {
                failures.push(format!("{name}, after 1000 changes: {d}"));
            }
            let streams = got
                .items
                .values()
                .filter(|i| matches!(i.value, data::Val::Stream(_)))
                .count();
            anyhow::ensure!(streams > 50, "{name}: only {streams} streams");
        }
        Ok(failures)
    })
    .await??;
    cairn.shutdown().await?;
    for f in &results {
        println!("{f}");
    }
    anyhow::ensure!(
        results.is_empty(),
        "seed {seed}: the model and the servers differ"
    );
    Ok(())
}
