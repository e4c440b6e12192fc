//! Packed encodings and their conversions: OBJECT ENCODING at, one below
//! and one above every threshold, with Redis' defaults and after CONFIG SET
//! changes them (aliases included); the orders small encodings give; and
//! the contents surviving each conversion. Expected encodings were checked
//! against redis-server 7.0.15.
#![allow(clippy::unwrap_used)]

use cairn_keyspace::{Keyspace, Session};
use cairn_resp::Frame;

fn enc(s: &mut Session, key: &str) -> String {
    match s.command(&["OBJECT", "ENCODING", key]) {
        Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("OBJECT ENCODING {key}: {other:?}"),
    }
}

fn ok(s: &mut Session, args: &[&str]) {
    let r = s.command(args);
    assert!(!matches!(r, Frame::Error(_)), "{args:?}: {r:?}");
}

fn strings(f: Frame) -> Vec<String> {
    let f = match f {
        Frame::Map(pairs) => Frame::Array(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        other => other,
    };
    match f {
        Frame::Array(v) | Frame::Set(v) => v
            .into_iter()
            .map(|x| match x {
                Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
                Frame::Double(d) => cairn_resp::format_double(d),
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("{other:?}"),
    }
}

/// Fills `key` with `n` elements through `cmd` (one command per element)
/// and returns its encoding; `long` makes the last element that long.
fn fill(s: &mut Session, kind: &str, key: &str, n: usize, long: Option<usize>) -> String {
    ok(s, &["DEL", key]);
    for i in 0..n {
        let mut elem = format!("e{i}");
        if i + 1 == n
            && let Some(len) = long
        {
            elem = "x".repeat(len);
        }
        let score = i.to_string();
        match kind {
            "hash" => ok(s, &["HSET", key, &elem, "v"]),
            "hashvalue" => ok(s, &["HSET", key, &format!("f{i}"), &elem]),
            "intset" => ok(s, &["SADD", key, &score]),
            "set" => ok(s, &["SADD", key, &elem]),
            "zset" => ok(s, &["ZADD", key, &score, &elem]),
            "list" => ok(s, &["RPUSH", key, &elem]),
            _ => unreachable!(),
        }
    }
    enc(s, key)
}

#[test]
fn default_thresholds_at_below_and_above() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    for (kind, max, small, large) in [
        ("hash", 512, "listpack", "hashtable"),
        ("zset", 128, "listpack", "skiplist"),
        ("intset", 512, "intset", "hashtable"),
    ] {
        for n in [max - 1, max] {
            assert_eq!(fill(&mut s, kind, "k", n, None), small, "{kind} {n}");
        }
        assert_eq!(
            fill(&mut s, kind, "k", max + 1, None),
            large,
            "{kind} {max}+1"
        );
    }
    for (kind, small, large) in [
        ("hash", "listpack", "hashtable"),
        ("hashvalue", "listpack", "hashtable"),
        ("zset", "listpack", "skiplist"),
    ] {
        for len in [63, 64] {
            assert_eq!(fill(&mut s, kind, "k", 5, Some(len)), small, "{kind} {len}");
        }
        assert_eq!(fill(&mut s, kind, "k", 5, Some(65)), large, "{kind} 65");
    }
    // Redis 7.0 has no small encoding for sets of strings, nor lists.
    assert_eq!(fill(&mut s, "set", "k", 3, None), "hashtable");
    assert_eq!(fill(&mut s, "list", "k", 3, None), "quicklist");
    assert_eq!(fill(&mut s, "list", "k", 3000, None), "quicklist");
}

#[test]
fn config_set_moves_the_thresholds() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    for (param, kind, small, large) in [
        ("hash-max-listpack-entries", "hash", "listpack", "hashtable"),
        ("hash-max-ziplist-entries", "hash", "listpack", "hashtable"),
        ("zset-max-listpack-entries", "zset", "listpack", "skiplist"),
        ("zset-max-ziplist-entries", "zset", "listpack", "skiplist"),
        ("set-max-intset-entries", "intset", "intset", "hashtable"),
    ] {
        ok(&mut s, &["CONFIG", "SET", param, "4"]);
        assert_eq!(fill(&mut s, kind, "k", 3, None), small, "{param}");
        assert_eq!(fill(&mut s, kind, "k", 4, None), small, "{param}");
        assert_eq!(fill(&mut s, kind, "k", 5, None), large, "{param}");
        ok(&mut s, &["CONFIG", "SET", param, "0"]);
        assert_eq!(fill(&mut s, kind, "k", 1, None), large, "{param} 0");
        ok(&mut s, &["CONFIG", "SET", param, "1000"]);
        assert_eq!(fill(&mut s, kind, "k", 900, None), small, "{param} 1000");
    }
    for (param, kind) in [
        ("hash-max-listpack-value", "hash"),
        ("hash-max-ziplist-value", "hashvalue"),
        ("zset-max-listpack-value", "zset"),
    ] {
        ok(&mut s, &["CONFIG", "SET", param, "10"]);
        let small = "listpack";
        assert_eq!(fill(&mut s, kind, "k", 3, Some(10)), small, "{param}");
        assert_ne!(fill(&mut s, kind, "k", 3, Some(11)), small, "{param}");
        ok(&mut s, &["CONFIG", "SET", param, "1kb"]);
        assert_eq!(fill(&mut s, kind, "k", 3, Some(1000)), small, "{param} 1kb");
        ok(&mut s, &["CONFIG", "SET", param, "64"]);
    }
    // The alias reads back the same value, as in Redis.
    ok(&mut s, &["CONFIG", "SET", "hash-max-ziplist-entries", "7"]);
    assert_eq!(
        strings(s.command(&["CONFIG", "GET", "hash-max-listpack-entries"])),
        ["hash-max-listpack-entries", "7"]
    );
    // Refused as Redis refuses them.
    for (param, value, reason) in [
        (
            "hash-max-listpack-entries",
            "-1",
            "argument must be between 0 and 9223372036854775807 inclusive",
        ),
        (
            "set-max-intset-entries",
            "-1",
            "argument must be between 0 and 9223372036854775807 inclusive",
        ),
        (
            "list-max-listpack-size",
            "3000000000",
            "argument must be between -2147483648 and 2147483647 inclusive",
        ),
        (
            "zset-max-listpack-value",
            "-1",
            "argument must be a memory value",
        ),
    ] {
        assert_eq!(
            s.command(&["CONFIG", "SET", param, value]),
            Frame::error(format!(
                "ERR CONFIG SET failed (possibly related to argument '{param}') - {reason}"
            ))
        );
    }
    // A second keyspace keeps its own limits.
    let other = Keyspace::new();
    let mut o = other.session();
    assert_eq!(fill(&mut o, "hash", "k", 100, None), "listpack");
}

#[test]
fn conversions_are_one_way_and_keep_contents() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    // A string member turns an intset into a table, which stays one.
    ok(&mut s, &["SADD", "s", "3", "1", "2"]);
    assert_eq!(enc(&mut s, "s"), "intset");
    assert_eq!(strings(s.command(&["SMEMBERS", "s"])), ["1", "2", "3"]);
    ok(&mut s, &["SADD", "s", "a"]);
    assert_eq!(enc(&mut s, "s"), "hashtable");
    ok(&mut s, &["SREM", "s", "a"]);
    assert_eq!(enc(&mut s, "s"), "hashtable");
    let mut m = strings(s.command(&["SMEMBERS", "s"]));
    m.sort();
    assert_eq!(m, ["1", "2", "3"]);
    // A small hash answers in insertion order; shrinking keeps a table.
    ok(&mut s, &["HSET", "h", "b", "1", "a", "2", "c", "3"]);
    assert_eq!(
        strings(s.command(&["HGETALL", "h"])),
        ["b", "1", "a", "2", "c", "3"]
    );
    assert_eq!(strings(s.command(&["HKEYS", "h"])), ["b", "a", "c"]);
    assert_eq!(strings(s.command(&["HVALS", "h"])), ["1", "2", "3"]);
    let long = "y".repeat(65);
    ok(&mut s, &["HSET", "h", "d", &long]);
    assert_eq!(enc(&mut s, "h"), "hashtable");
    ok(&mut s, &["HDEL", "h", "d"]);
    assert_eq!(enc(&mut s, "h"), "hashtable");
    assert_eq!(s.command(&["HGET", "h", "a"]), Frame::bulk("2"));
    // A sorted set converts with its scores, -0 included.
    ok(
        &mut s,
        &[
            "ZADD", "z", "-0", "neg", "1.5", "b", "1e300", "c", "-7", "d",
        ],
    );
    assert_eq!(
        strings(s.command(&["ZRANGE", "z", "0", "-1", "WITHSCORES"])),
        [
            "d",
            "-7",
            "neg",
            "0",
            "b",
            "1.5",
            "c",
            "1.0000000000000001e+300"
        ]
    );
    ok(&mut s, &["ZADD", "z", "2", &long]);
    assert_eq!(enc(&mut s, "z"), "skiplist");
    assert_eq!(s.command(&["ZRANK", "z", "b"]), Frame::Integer(2));
    assert_eq!(s.command(&["ZCARD", "z"]), Frame::Integer(5));
}

#[test]
fn integer_like_elements_read_back_byte_for_byte() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    let values = [
        "0",
        "-0",
        "007",
        "1",
        "-1",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        " 1",
        "1.0",
        "",
    ];
    for (i, v) in values.iter().enumerate() {
        ok(&mut s, &["HSET", "h", &format!("f{i}"), v]);
        ok(&mut s, &["HSET", "h2", v, &format!("v{i}")]);
        ok(&mut s, &["RPUSH", "l", v]);
        ok(&mut s, &["SADD", "s", v]);
        ok(&mut s, &["ZADD", "z", &i.to_string(), v]);
    }
    for (i, v) in values.iter().enumerate() {
        assert_eq!(s.command(&["HGET", "h", &format!("f{i}")]), Frame::bulk(*v));
        assert_eq!(s.command(&["HGET", "h2", v]), Frame::bulk(format!("v{i}")));
        assert_eq!(s.command(&["LINDEX", "l", &i.to_string()]), Frame::bulk(*v));
        assert_eq!(s.command(&["SISMEMBER", "s", v]), Frame::Integer(1));
        assert_eq!(s.command(&["ZSCORE", "z", v]), Frame::Double(i as f64));
    }
    assert_eq!(s.command(&["HSTRLEN", "h", "f2"]), Frame::Integer(3));
}
