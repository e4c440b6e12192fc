//! Hash and set commands through a `Session`, asserting Redis 7.0 replies
//! (each expected reply was checked against redis-server 7.0.15, RESP2 and
//! RESP3). Replies whose order Redis leaves unspecified are sorted first.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use cairn_keyspace::{Keyspace, Value};
use cairn_resp::Frame;

fn e(s: &str) -> Frame {
    Frame::error(s)
}
fn b(s: &str) -> Frame {
    Frame::bulk(s)
}
fn i(n: i64) -> Frame {
    Frame::Integer(n)
}
fn arr(items: &[&str]) -> Frame {
    Frame::Array(items.iter().map(|s| b(s)).collect())
}
const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn text(f: &Frame) -> String {
    match f {
        Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("not a bulk: {other:?}"),
    }
}

/// The elements of an array or set reply, sorted.
fn sorted(f: Frame) -> Vec<String> {
    let items = match f {
        Frame::Array(v) | Frame::Set(v) => v,
        other => panic!("not a collection: {other:?}"),
    };
    let mut out: Vec<String> = items.iter().map(text).collect();
    out.sort();
    out
}

fn strs(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn map_of(f: Frame) -> BTreeMap<String, String> {
    match f {
        Frame::Map(pairs) => pairs.iter().map(|(k, v)| (text(k), text(v))).collect(),
        other => panic!("not a map: {other:?}"),
    }
}

#[test]
fn hset_hget_and_friends() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(
        s.command(&["hset", "h", "a", "1", "b", "2", "a", "3"]),
        i(2)
    );
    assert_eq!(s.command(&["hget", "h", "a"]), b("3"));
    assert_eq!(s.command(&["hset", "h", "a", "4", "c", "5"]), i(1));
    assert_eq!(s.command(&["hmset", "h", "d", "6"]), Frame::ok());
    assert_eq!(s.command(&["hget", "h", "zz"]), Frame::Null);
    assert_eq!(s.command(&["hget", "nokey", "a"]), Frame::Null);
    assert_eq!(s.command(&["hlen", "h"]), i(4));
    assert_eq!(s.command(&["hlen", "nokey"]), i(0));
    assert_eq!(s.command(&["hexists", "h", "a"]), i(1));
    assert_eq!(s.command(&["hexists", "h", "q"]), i(0));
    assert_eq!(s.command(&["hstrlen", "h", "a"]), i(1));
    assert_eq!(s.command(&["hstrlen", "h", "nope"]), i(0));
    assert_eq!(s.command(&["hstrlen", "nokey", "a"]), i(0));
    assert_eq!(
        s.command(&["hmget", "h", "a", "zz", "b"]),
        Frame::Array(vec![b("4"), Frame::Null, b("2")])
    );
    assert_eq!(
        s.command(&["hmget", "nokey", "a", "b"]),
        Frame::Array(vec![Frame::Null, Frame::Null])
    );
    assert_eq!(s.command(&["hsetnx", "h", "a", "9"]), i(0));
    assert_eq!(s.command(&["hsetnx", "h", "q", "9"]), i(1));
    assert_eq!(s.command(&["hsetnx", "new", "f", "v"]), i(1));
    assert_eq!(s.command(&["hget", "new", "f"]), b("v"));
    let all = map_of(s.command(&["hgetall", "h"]));
    let want: BTreeMap<String, String> =
        [("a", "4"), ("b", "2"), ("c", "5"), ("d", "6"), ("q", "9")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    assert_eq!(all, want);
    assert_eq!(
        sorted(s.command(&["hkeys", "h"])),
        strs(&["a", "b", "c", "d", "q"])
    );
    assert_eq!(
        sorted(s.command(&["hvals", "h"])),
        strs(&["2", "4", "5", "6", "9"])
    );
    assert_eq!(s.command(&["hgetall", "nokey"]), Frame::Map(vec![]));
    assert_eq!(s.command(&["hkeys", "nokey"]), Frame::Array(vec![]));
    assert_eq!(s.command(&["hvals", "nokey"]), Frame::Array(vec![]));
    assert_eq!(s.command(&["type", "h"]), Frame::simple("hash"));
    // Empty strings are valid fields and values.
    assert_eq!(s.command(&["hset", "h", "", ""]), i(1));
    assert_eq!(s.command(&["hget", "h", ""]), b(""));
}

#[test]
fn hash_argument_and_type_errors() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    s.command(&["set", "str", "v"]);
    assert_eq!(
        s.command(&["hset", "h"]),
        e("ERR wrong number of arguments for 'hset' command")
    );
    assert_eq!(
        s.command(&["hset", "h", "a"]),
        e("ERR wrong number of arguments for 'hset' command")
    );
    assert_eq!(
        s.command(&["hset", "h", "a", "1", "b"]),
        e("ERR wrong number of arguments for 'hset' command")
    );
    assert_eq!(
        s.command(&["hmset", "h", "a", "1", "b"]),
        e("ERR wrong number of arguments for 'hmset' command")
    );
    assert_eq!(s.command(&["exists", "h"]), i(0));
    for cmd in [
        &["hset", "str", "a", "1"][..],
        &["hsetnx", "str", "a", "1"],
        &["hget", "str", "a"],
        &["hmget", "str", "a"],
        &["hgetall", "str"],
        &["hkeys", "str"],
        &["hvals", "str"],
        &["hdel", "str", "a"],
        &["hlen", "str"],
        &["hexists", "str", "a"],
        &["hstrlen", "str", "a"],
        &["hincrby", "str", "a", "1"],
        &["hincrbyfloat", "str", "a", "1"],
        &["hrandfield", "str"],
        &["hrandfield", "str", "0"],
        &["hscan", "str", "0"],
    ] {
        assert_eq!(s.command(cmd), e(WRONGTYPE), "{cmd:?}");
    }
    // Argument errors come before the type check.
    assert_eq!(
        s.command(&["hincrby", "str", "a", "x"]),
        e("ERR value is not an integer or out of range")
    );
    assert_eq!(
        s.command(&["hincrbyfloat", "str", "a", "x"]),
        e("ERR value is not a valid float")
    );
    assert_eq!(s.command(&["hscan", "str", "x"]), e("ERR invalid cursor"));
    assert_eq!(s.command(&["get", "str"]), b("v"));
}

#[test]
fn hdel_removes_fields_and_empty_hashes() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    s.command(&["hset", "h", "a", "1", "b", "2", "c", "3"]);
    assert_eq!(s.command(&["hdel", "h", "a", "a", "zz"]), i(1));
    assert_eq!(s.command(&["hdel", "h", "zz"]), i(0));
    assert_eq!(s.command(&["hdel", "nokey", "a"]), i(0));
    assert_eq!(s.command(&["hdel", "h", "b", "c"]), i(2));
    assert_eq!(s.command(&["exists", "h"]), i(0));
    assert_eq!(s.command(&["type", "h"]), Frame::simple("none"));
}

#[test]
fn hincrby_and_hincrbyfloat() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(s.command(&["hincrby", "h", "n", "5"]), i(5));
    assert_eq!(s.command(&["hincrby", "h", "n", "-7"]), i(-2));
    assert_eq!(s.command(&["hget", "h", "n"]), b("-2"));
    assert_eq!(
        s.command(&["hincrby", "h", "n", "x"]),
        e("ERR value is not an integer or out of range")
    );
    assert_eq!(
        s.command(&[
            "hset",
            "h",
            "big",
            "9223372036854775807",
            "s",
            "abc",
            "sp",
            " 1",
            "z",
            "007"
        ]),
        i(4)
    );
    assert_eq!(
        s.command(&["hincrby", "h", "big", "1"]),
        e("ERR increment or decrement would overflow")
    );
    assert_eq!(
        s.command(&["hincrby", "h", "s", "1"]),
        e("ERR hash value is not an integer")
    );
    assert_eq!(
        s.command(&["hincrby", "h", "sp", "1"]),
        e("ERR hash value is not an integer")
    );
    assert_eq!(
        s.command(&["hincrby", "h", "z", "1"]),
        e("ERR hash value is not an integer")
    );
    assert_eq!(
        s.command(&["hincrby", "h", "n", "-9223372036854775808"]),
        e("ERR increment or decrement would overflow")
    );
    assert_eq!(s.command(&["hincrby", "h", "n", "2"]), i(0));
    assert_eq!(
        s.command(&["hincrby", "h", "n", "-9223372036854775808"]),
        i(i64::MIN)
    );
    assert_eq!(s.command(&["hincrbyfloat", "h", "f", "3.0e3"]), b("3000"));
    assert_eq!(
        s.command(&["hincrbyfloat", "h", "g", "5.0e-7"]),
        b("0.0000005")
    );
    assert_eq!(
        s.command(&["hincrbyfloat", "h", "g2", "1e20"]),
        b("100000000000000000000")
    );
    assert_eq!(s.command(&["hincrbyfloat", "h", "f", "-1.5"]), b("2998.5"));
    // Redis' long double arithmetic and "%.17Lf" text, exactly.
    assert_eq!(
        s.command(&["hincrbyfloat", "h", "big", "1"]),
        b("9223372036854775808")
    );
    assert_eq!(s.command(&["hincrbyfloat", "h", "t", "0.1"]), b("0.1"));
    assert_eq!(s.command(&["hincrbyfloat", "h", "t", "0.2"]), b("0.3"));
    assert_eq!(
        s.command(&["hincrbyfloat", "h", "f", "0.1"]),
        b("2998.60000000000000009")
    );
    assert_eq!(s.command(&["hincrbyfloat", "h", "x", "0x10"]), b("16"));
    assert_eq!(
        s.command(&["hincrbyfloat", "h", "f", "nan"]),
        e("ERR value is not a valid float")
    );
    assert_eq!(
        s.command(&["hincrbyfloat", "h", "f", "inf"]),
        e("ERR value is NaN or Infinity")
    );
    assert_eq!(
        s.command(&["hincrbyfloat", "h", "s", "1"]),
        e("ERR hash value is not a float")
    );
    assert_eq!(
        s.command(&["hincrbyfloat", "h", "sp", "1"]),
        e("ERR hash value is not a float")
    );
    let l308 = "99999999999999999996685879655845645660560099847415567207797047994921734868838061872100126921888539320446747225054013223152134749593960583597420814430196418767959100019603190778663109604507106667939153395788938914560543563061268364901618630217086589253444881623791300855757318142424510452728255046343928578048";
    assert_eq!(s.command(&["hincrbyfloat", "h", "nf", "1e308"]), b(l308));
    assert_eq!(s.command(&["hget", "h", "nf"]), b(l308));
    let Frame::Bulk(near_max) = s.command(&["hincrbyfloat", "h", "nf", "1e4932"]) else {
        panic!()
    };
    assert_eq!(near_max.len(), 4933);
    assert_eq!(
        s.command(&["hincrbyfloat", "h", "nf", "1e4932"]),
        e("ERR increment would produce NaN or Infinity")
    );
    assert_eq!(s.command(&["hget", "h", "nf"]), Frame::Bulk(near_max));
    assert_eq!(
        s.command(&["hincrbyfloat", "h", "nf", "1e5000"]),
        e("ERR value is not a valid float")
    );
    // A failed increment on a missing key creates nothing.
    assert_eq!(
        s.command(&["hincrbyfloat", "h2", "f", "inf"]),
        e("ERR value is NaN or Infinity")
    );
    assert_eq!(s.command(&["exists", "h2"]), i(0));
}

#[test]
fn hrandfield_counts() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(s.command(&["hrandfield", "nokey"]), Frame::Null);
    assert_eq!(
        s.command(&["hrandfield", "nokey", "2"]),
        Frame::Array(vec![])
    );
    assert_eq!(
        s.command(&["hrandfield", "nokey", "-2", "withvalues"]),
        Frame::Array(vec![])
    );
    assert_eq!(
        s.command(&["hrandfield", "nokey", "x"]),
        e("ERR value is not an integer or out of range")
    );
    s.command(&["hset", "h", "a", "1", "b", "2", "c", "3"]);
    let one = text(&s.command(&["hrandfield", "h"]));
    assert!(["a", "b", "c"].contains(&one.as_str()));
    assert_eq!(s.command(&["hrandfield", "h", "0"]), Frame::Array(vec![]));
    assert_eq!(
        s.command(&["hrandfield", "h", "0", "withvalues"]),
        Frame::Array(vec![])
    );
    assert_eq!(
        sorted(s.command(&["hrandfield", "h", "5"])),
        strs(&["a", "b", "c"])
    );
    let two = sorted(s.command(&["hrandfield", "h", "2"]));
    assert_eq!(two.len(), 2);
    assert_ne!(two[0], two[1]);
    let rep = sorted(s.command(&["hrandfield", "h", "-10"]));
    assert_eq!(rep.len(), 10);
    assert!(rep.iter().all(|f| ["a", "b", "c"].contains(&f.as_str())));
    // WITHVALUES: flat in RESP2, pairs in RESP3.
    let Frame::Array(flat) = s.command(&["hrandfield", "h", "-4", "withvalues"]) else {
        panic!()
    };
    assert_eq!(flat.len(), 8);
    for pair in flat.chunks(2) {
        let (f, v) = (text(&pair[0]), text(&pair[1]));
        assert_eq!(
            v,
            match f.as_str() {
                "a" => "1",
                "b" => "2",
                _ => "3",
            }
        );
    }
    let Frame::Array(flat) = s.command(&["hrandfield", "h", "9", "withvalues"]) else {
        panic!()
    };
    assert_eq!(flat.len(), 6);
    assert!(!s.command(&["hello", "3"]).is_error());
    let Frame::Array(pairs) = s.command(&["hrandfield", "h", "2", "withvalues"]) else {
        panic!()
    };
    assert_eq!(pairs.len(), 2);
    for p in &pairs {
        let Frame::Array(kv) = p else { panic!("{p:?}") };
        assert_eq!(kv.len(), 2);
    }
    assert_eq!(
        s.command(&["hrandfield", "h", "2", "withvalue"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["hrandfield", "h", "2", "withvalues", "x"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["hrandfield", "h", "x", "withvalues"]),
        e("ERR value is not an integer or out of range")
    );
    assert_eq!(
        s.command(&["hrandfield", "h", "-9223372036854775808"]),
        e(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
        )
    );
    assert_eq!(
        s.command(&["hrandfield", "h", "-4611686018427387904", "withvalues"]),
        e("ERR value is out of range")
    );
    assert_eq!(
        s.command(&["hrandfield", "h", "9223372036854775807", "withvalues"]),
        e("ERR value is out of range")
    );
    // Huge positive counts are just "everything".
    assert_eq!(
        sorted(s.command(&["hrandfield", "h", "9223372036854775807"])),
        strs(&["a", "b", "c"])
    );
    // A negative count beyond cairn's reply cap is refused instead of
    // exhausting memory (Redis 7.0.15 dies on it).
    assert_eq!(
        s.command(&["hrandfield", "h", "-9223372036854775807"]),
        e("ERR value is out of range")
    );
}

#[test]
fn sadd_srem_and_membership() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(s.command(&["sadd", "s", "a", "b", "a", "c"]), i(3));
    assert_eq!(s.command(&["sadd", "s", "a", "a", "a"]), i(0));
    assert_eq!(s.command(&["sadd", "s", "a", "d"]), i(1));
    assert_eq!(s.command(&["scard", "s"]), i(4));
    assert_eq!(s.command(&["scard", "nokey"]), i(0));
    assert_eq!(
        sorted(s.command(&["smembers", "s"])),
        strs(&["a", "b", "c", "d"])
    );
    assert!(matches!(s.command(&["smembers", "s"]), Frame::Set(_)));
    assert_eq!(s.command(&["smembers", "nokey"]), Frame::Set(vec![]));
    assert_eq!(s.command(&["sismember", "s", "a"]), i(1));
    assert_eq!(s.command(&["sismember", "s", "zz"]), i(0));
    assert_eq!(s.command(&["sismember", "nokey", "a"]), i(0));
    assert_eq!(
        s.command(&["smismember", "s", "a", "zz", "d"]),
        Frame::Array(vec![i(1), i(0), i(1)])
    );
    assert_eq!(
        s.command(&["smismember", "nokey", "a", "b"]),
        Frame::Array(vec![i(0), i(0)])
    );
    assert_eq!(s.command(&["srem", "s", "a", "a", "zz"]), i(1));
    assert_eq!(s.command(&["srem", "s", "zz"]), i(0));
    assert_eq!(s.command(&["srem", "nokey", "zz"]), i(0));
    assert_eq!(s.command(&["srem", "s", "b", "c", "d"]), i(3));
    assert_eq!(s.command(&["exists", "s"]), i(0));
    assert_eq!(s.command(&["sadd", "s", ""]), i(1));
    assert_eq!(s.command(&["sismember", "s", ""]), i(1));
    assert_eq!(s.command(&["type", "s"]), Frame::simple("set"));
}

#[test]
fn set_type_errors() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    s.command(&["set", "str", "v"]);
    s.command(&["sadd", "s", "a", "b", "c"]);
    for cmd in [
        &["sadd", "str", "a"][..],
        &["srem", "str", "a"],
        &["smembers", "str"],
        &["sismember", "str", "a"],
        &["smismember", "str", "a"],
        &["scard", "str"],
        &["spop", "str"],
        &["spop", "str", "0"],
        &["srandmember", "str"],
        &["srandmember", "str", "0"],
        &["smove", "s", "str", "a"],
        &["smove", "s", "str", "zz"],
        &["smove", "str", "s", "a"],
        &["sinter", "nokey", "str"],
        &["sinter", "s", "str"],
        &["sunion", "nokey", "str"],
        &["sdiff", "nokey", "str"],
        &["sdiff", "s", "str"],
        &["sinterstore", "d", "nokey", "str"],
        &["sunionstore", "d", "s", "str"],
        &["sdiffstore", "d", "s", "str"],
        &["sintercard", "1", "str"],
        &["sintercard", "2", "nokey", "str"],
        &["sscan", "str", "0"],
    ] {
        assert_eq!(s.command(cmd), e(WRONGTYPE), "{cmd:?}");
    }
    // A missing source means "nothing to move", whatever the destination.
    assert_eq!(s.command(&["smove", "nokey", "str", "a"]), i(0));
    assert_eq!(s.command(&["scard", "s"]), i(3));
    assert_eq!(s.command(&["exists", "d"]), i(0));
}

#[test]
fn spop_and_srandmember() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(s.command(&["spop", "nokey"]), Frame::Null);
    assert_eq!(s.command(&["spop", "nokey", "2"]), Frame::Set(vec![]));
    assert_eq!(s.command(&["srandmember", "nokey"]), Frame::Null);
    assert_eq!(
        s.command(&["srandmember", "nokey", "3"]),
        Frame::Array(vec![])
    );
    for bad in ["-1", "x"] {
        assert_eq!(
            s.command(&["spop", "nokey", bad]),
            e("ERR value is out of range, must be positive")
        );
    }
    assert_eq!(s.command(&["spop", "s", "1", "2"]), e("ERR syntax error"));
    assert_eq!(
        s.command(&["srandmember", "s", "1", "2"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["srandmember", "s", "x"]),
        e("ERR value is not an integer or out of range")
    );
    assert_eq!(
        s.command(&["srandmember", "s", "-9223372036854775808"]),
        e(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
        )
    );
    let members: Vec<String> = (0..20).map(|n| format!("m{n}")).collect();
    let mut cmd = vec!["sadd".to_string(), "s".into()];
    cmd.extend(members.iter().cloned());
    assert_eq!(s.command(&cmd), i(20));
    assert_eq!(s.command(&["srandmember", "s", "0"]), Frame::Array(vec![]));
    let five = sorted(s.command(&["srandmember", "s", "5"]));
    assert_eq!(five.len(), 5);
    assert_eq!(five.iter().collect::<BTreeSet<_>>().len(), 5, "distinct");
    assert_eq!(
        sorted(s.command(&["srandmember", "s", "9223372036854775807"])).len(),
        20
    );
    let rep = sorted(s.command(&["srandmember", "s", "-50"]));
    assert_eq!(rep.len(), 50);
    assert!(rep.iter().all(|m| members.contains(m)));
    assert_eq!(
        s.command(&["srandmember", "s", "-9223372036854775807"]),
        e("ERR value is out of range")
    );
    assert!(members.contains(&text(&s.command(&["srandmember", "s"]))));
    assert_eq!(s.command(&["scard", "s"]), i(20));

    assert_eq!(s.command(&["spop", "s", "0"]), Frame::Set(vec![]));
    let one = text(&s.command(&["spop", "s"]));
    assert_eq!(s.command(&["sismember", "s", &one]), i(0));
    let popped = sorted(s.command(&["spop", "s", "7"]));
    assert_eq!(popped.iter().collect::<BTreeSet<_>>().len(), 7);
    for m in &popped {
        assert_ne!(m, &one);
        assert_eq!(s.command(&["sismember", "s", m]), i(0));
    }
    assert_eq!(s.command(&["scard", "s"]), i(12));
    let rest = sorted(s.command(&["spop", "s", "100"]));
    assert_eq!(rest.len(), 12);
    assert_eq!(s.command(&["exists", "s"]), i(0));
    let mut all: Vec<String> = rest.into_iter().chain(popped).chain([one]).collect();
    all.sort();
    let mut want = members.clone();
    want.sort();
    assert_eq!(all, want, "every member popped exactly once");
    s.command(&["sadd", "s", "only"]);
    assert_eq!(s.command(&["spop", "s"]), b("only"));
    assert_eq!(s.command(&["exists", "s"]), i(0));
}

#[test]
fn smove_cases() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    s.command(&["sadd", "s", "a", "b"]);
    assert_eq!(s.command(&["smove", "nokey", "s", "a"]), i(0));
    assert_eq!(s.command(&["smove", "s", "s", "a"]), i(1));
    assert_eq!(s.command(&["smove", "s", "s", "q"]), i(0));
    assert_eq!(s.command(&["smove", "s", "d", "q"]), i(0));
    assert_eq!(s.command(&["exists", "d"]), i(0));
    assert_eq!(s.command(&["smove", "s", "d", "a"]), i(1));
    assert_eq!(s.command(&["smembers", "d"]), Frame::Set(vec![b("a")]));
    s.command(&["sadd", "d", "b"]);
    // Already in the destination: removed from the source only.
    assert_eq!(s.command(&["smove", "s", "d", "b"]), i(1));
    assert_eq!(s.command(&["exists", "s"]), i(0));
    assert_eq!(sorted(s.command(&["smembers", "d"])), strs(&["a", "b"]));
}

#[test]
fn set_algebra_and_stores() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    s.command(&["sadd", "s1", "a", "b", "c", "d"]);
    s.command(&["sadd", "s2", "c", "d", "e"]);
    s.command(&["sadd", "s3", "d", "e", "f"]);
    assert_eq!(
        sorted(s.command(&["sinter", "s1", "s2"])),
        strs(&["c", "d"])
    );
    assert_eq!(
        sorted(s.command(&["sinter", "s1", "s2", "s3"])),
        strs(&["d"])
    );
    assert_eq!(
        sorted(s.command(&["sinter", "s1"])),
        strs(&["a", "b", "c", "d"])
    );
    assert_eq!(s.command(&["sinter", "s1", "nokey"]), Frame::Set(vec![]));
    assert_eq!(
        sorted(s.command(&["sunion", "s1", "s2", "nokey"])),
        strs(&["a", "b", "c", "d", "e"])
    );
    assert_eq!(s.command(&["sunion", "nokey"]), Frame::Set(vec![]));
    assert_eq!(sorted(s.command(&["sdiff", "s1", "s2"])), strs(&["a", "b"]));
    assert_eq!(
        sorted(s.command(&["sdiff", "s1", "s2", "s3", "nokey"])),
        strs(&["a", "b"])
    );
    assert_eq!(
        sorted(s.command(&["sdiff", "s1", "nokey"])),
        strs(&["a", "b", "c", "d"])
    );
    assert_eq!(s.command(&["sdiff", "nokey", "s1"]), Frame::Set(vec![]));
    assert_eq!(s.command(&["sdiff", "s1", "s1"]), Frame::Set(vec![]));
    assert!(matches!(s.command(&["sunion", "s1"]), Frame::Set(_)));

    assert_eq!(s.command(&["sintercard", "2", "s1", "s2"]), i(2));
    assert_eq!(
        s.command(&["sintercard", "2", "s1", "s2", "limit", "1"]),
        i(1)
    );
    assert_eq!(s.command(&["sintercard", "1", "s1", "limit", "0"]), i(4));
    assert_eq!(
        s.command(&["sintercard", "1", "s1", "limit", "1", "limit", "3"]),
        i(3)
    );
    assert_eq!(s.command(&["sintercard", "2", "s1", "nokey"]), i(0));
    assert_eq!(
        s.command(&["sintercard", "0", "s1"]),
        e("ERR numkeys should be greater than 0")
    );
    assert_eq!(
        s.command(&["sintercard", "-1", "s1"]),
        e("ERR numkeys should be greater than 0")
    );
    assert_eq!(
        s.command(&["sintercard", "x", "s1"]),
        e("ERR numkeys should be greater than 0")
    );
    assert_eq!(
        s.command(&["sintercard", "3", "s1", "s2"]),
        e("ERR Number of keys can't be greater than number of args")
    );
    assert_eq!(
        s.command(&["sintercard", "9223372036854775807", "s1"]),
        e("ERR Number of keys can't be greater than number of args")
    );
    assert_eq!(
        s.command(&["sintercard", "1", "s1", "limit", "-1"]),
        e("ERR LIMIT can't be negative")
    );
    assert_eq!(
        s.command(&["sintercard", "1", "s1", "limit", "x"]),
        e("ERR LIMIT can't be negative")
    );
    assert_eq!(
        s.command(&["sintercard", "1", "s1", "foo", "1"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["sintercard", "1", "s1", "s2"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["sintercard", "1", "s1", "limit", "5", "limit"]),
        e("ERR syntax error")
    );

    // Stores replace any type and clear the expiry.
    s.command(&["set", "dst", "v", "ex", "100"]);
    assert_eq!(s.command(&["sinterstore", "dst", "s1", "s2"]), i(2));
    assert_eq!(s.command(&["ttl", "dst"]), i(-1));
    assert_eq!(sorted(s.command(&["smembers", "dst"])), strs(&["c", "d"]));
    assert_eq!(s.command(&["sunionstore", "dst", "s1", "s3"]), i(6));
    assert_eq!(s.command(&["sdiffstore", "dst", "s1", "s2"]), i(2));
    assert_eq!(sorted(s.command(&["smembers", "dst"])), strs(&["a", "b"]));
    // A destination that is also a source is read before being replaced.
    assert_eq!(s.command(&["sunionstore", "s1", "s1", "s3"]), i(6));
    assert_eq!(
        sorted(s.command(&["smembers", "s1"])),
        strs(&["a", "b", "c", "d", "e", "f"])
    );
    // Empty results delete the destination.
    assert_eq!(s.command(&["sinterstore", "dst", "nokey", "s1"]), i(0));
    assert_eq!(s.command(&["exists", "dst"]), i(0));
    s.command(&["sadd", "dst", "z"]);
    assert_eq!(s.command(&["sdiffstore", "dst", "s2", "s2"]), i(0));
    assert_eq!(s.command(&["exists", "dst"]), i(0));
    assert_eq!(s.command(&["sunionstore", "dst", "nokey"]), i(0));
    assert_eq!(s.command(&["exists", "dst"]), i(0));
}

/// Runs a full HSCAN/SSCAN and returns every element returned with the
/// number of calls it took.
fn full_scan(
    s: &mut cairn_keyspace::Session,
    cmd: &str,
    key: &str,
    extra: &[&str],
) -> (Vec<String>, usize) {
    let mut cursor = "0".to_string();
    let mut out = Vec::new();
    let mut calls = 0;
    loop {
        let mut args = vec![cmd, key, &cursor];
        args.extend_from_slice(extra);
        let Frame::Array(parts) = s.command(&args) else {
            panic!()
        };
        calls += 1;
        let [next, Frame::Array(items)] = &parts[..] else {
            panic!("{parts:?}")
        };
        out.extend(items.iter().map(text));
        cursor = text(next);
        if cursor == "0" {
            return (out, calls);
        }
        assert!(calls < 10_000, "scan does not terminate");
    }
}

#[test]
fn scans_small_and_large() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(
        s.command(&["sscan", "nokey", "0"]),
        Frame::Array(vec![b("0"), Frame::Array(vec![])])
    );
    // Options are only parsed for an existing key, as in Redis.
    assert_eq!(
        s.command(&["hscan", "nokey", "0", "count", "0"]),
        Frame::Array(vec![b("0"), Frame::Array(vec![])])
    );
    s.command(&["hset", "h", "a", "1", "b", "2", "c", "3"]);
    let Frame::Array(parts) = s.command(&["hscan", "h", "0"]) else {
        panic!()
    };
    assert_eq!(parts[0], b("0"));
    let Frame::Array(items) = &parts[1] else {
        panic!()
    };
    let pairs: BTreeMap<String, String> = items
        .chunks(2)
        .map(|p| (text(&p[0]), text(&p[1])))
        .collect();
    assert_eq!(pairs.len(), 3);
    assert_eq!(pairs["b"], "2");
    // A small collection ignores the cursor and returns everything.
    let Frame::Array(parts) = s.command(&["hscan", "h", "5", "match", "a*"]) else {
        panic!()
    };
    assert_eq!(parts, vec![b("0"), arr(&["a", "1"])]);
    for (args, want) in [
        (&["hscan", "h", "0", "count", "0"][..], "ERR syntax error"),
        (&["hscan", "h", "0", "count", "-1"], "ERR syntax error"),
        (
            &["hscan", "h", "0", "count", "x"],
            "ERR value is not an integer or out of range",
        ),
        (
            &["hscan", "h", "0", "count", "9223372036854775808"],
            "ERR value is not an integer or out of range",
        ),
        (&["hscan", "h", "x"], "ERR invalid cursor"),
        (
            &["hscan", "h", "18446744073709551616"],
            "ERR invalid cursor",
        ),
        (&["hscan", "h", "0", "match"], "ERR syntax error"),
        (&["hscan", "h", "0", "foo", "1"], "ERR syntax error"),
        (&["sscan", "h", " 0"], "ERR invalid cursor"),
    ] {
        assert_eq!(s.command(args), e(want), "{args:?}");
    }

    // Large: 1000 members, scanned in several calls, each exactly once.
    let members: Vec<String> = (0..1000).map(|n| format!("m{n}")).collect();
    let mut cmd = vec!["sadd".to_string(), "big".into()];
    cmd.extend(members.iter().cloned());
    s.command(&cmd);
    let (got, calls) = full_scan(&mut s, "sscan", "big", &["count", "10"]);
    assert!(calls > 1, "a large set takes several calls");
    assert!(calls <= 40, "{calls} calls: each must return a good share");
    let mut got_sorted = got.clone();
    got_sorted.sort();
    got_sorted.dedup();
    assert_eq!(got_sorted.len(), got.len(), "no duplicates");
    assert_eq!(got.len(), 1000);
    let (m, _) = full_scan(&mut s, "sscan", "big", &["match", "m1??", "count", "5"]);
    assert_eq!(m.len(), 900 - 800, "m100..m199");
    assert!(m.iter().all(|x| x.starts_with("m1") && x.len() == 4));
}

/// Elements present for a whole scan are returned exactly once even while
/// the collection changes between calls.
#[test]
fn scan_survives_concurrent_changes() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    let mut w = ks.session();
    for n in 0..2000 {
        s.command(&["hset", "h", &format!("keep{n}"), "v"]);
    }
    let mut cursor = "0".to_string();
    let mut seen: Vec<String> = Vec::new();
    let mut round = 0;
    loop {
        let Frame::Array(parts) = s.command(&["hscan", "h", &cursor, "count", "20"]) else {
            panic!()
        };
        let Frame::Array(items) = &parts[1] else {
            panic!()
        };
        seen.extend(items.chunks(2).map(|p| text(&p[0])));
        cursor = text(&parts[0]);
        if cursor == "0" {
            break;
        }
        // Grow by far more than the scan returns (forcing rehashes), and
        // delete some elements that are not "keep".
        for n in 0..300 {
            w.command(&["hset", "h", &format!("tmp{round}-{n}"), "v"]);
        }
        if round > 0 {
            for n in 0..300 {
                w.command(&["hdel", "h", &format!("tmp{}-{n}", round - 1)]);
            }
        }
        round += 1;
    }
    let keep: Vec<&String> = seen.iter().filter(|f| f.starts_with("keep")).collect();
    let unique: BTreeSet<&String> = keep.iter().copied().collect();
    assert_eq!(keep.len(), 2000, "every kept field exactly once");
    assert_eq!(unique.len(), 2000);
}

#[test]
fn resp3_shapes() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    s.command(&["hello", "3"]);
    s.command(&["hset", "h", "a", "1"]);
    s.command(&["sadd", "s", "x"]);
    assert_eq!(
        s.command(&["hgetall", "h"]),
        Frame::Map(vec![(b("a"), b("1"))])
    );
    assert_eq!(s.command(&["smembers", "s"]), Frame::Set(vec![b("x")]));
    assert_eq!(s.command(&["sinter", "s"]), Frame::Set(vec![b("x")]));
    assert_eq!(
        s.command(&["srandmember", "s", "1"]),
        Frame::Array(vec![b("x")])
    );
    assert_eq!(
        s.command(&["hrandfield", "h", "1", "withvalues"]),
        Frame::Array(vec![arr(&["a", "1"])])
    );
    assert_eq!(s.command(&["spop", "s", "1"]), Frame::Set(vec![b("x")]));
    assert_eq!(s.command(&["hincrbyfloat", "h", "a", "1.5"]), b("2.5"));
}

/// The change counter moves per element like Redis' `dirty`, and commands
/// that change nothing count nothing.
#[test]
fn change_counting() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    let step = |s: &mut cairn_keyspace::Session, cmd: &[&str]| {
        let before = ks.changes();
        s.command(cmd);
        ks.changes() - before
    };
    assert_eq!(step(&mut s, &["hset", "h", "a", "1", "b", "2"]), 2);
    assert_eq!(step(&mut s, &["hset", "h", "a", "1", "c", "2"]), 2);
    assert_eq!(step(&mut s, &["hsetnx", "h", "a", "1"]), 0);
    assert_eq!(step(&mut s, &["hdel", "h", "zz"]), 0);
    assert_eq!(step(&mut s, &["hdel", "h", "a", "b"]), 2);
    assert_eq!(step(&mut s, &["hincrby", "h", "n", "1"]), 1);
    assert_eq!(step(&mut s, &["sadd", "s", "a", "b", "c"]), 3);
    assert_eq!(step(&mut s, &["sadd", "s", "a", "b"]), 0);
    assert_eq!(step(&mut s, &["sadd", "s", "a", "d"]), 1);
    assert_eq!(step(&mut s, &["srem", "s", "zz"]), 0);
    assert_eq!(step(&mut s, &["srem", "s", "a", "b"]), 2);
    assert_eq!(step(&mut s, &["sadd", "s", "e"]), 1);
    assert_eq!(step(&mut s, &["spop", "s", "2"]), 2);
    assert_eq!(step(&mut s, &["spop", "s", "5"]), 1);
    assert_eq!(step(&mut s, &["sadd", "s", "a", "b", "c"]), 3);
    assert_eq!(step(&mut s, &["smove", "s", "d", "a"]), 2);
    assert_eq!(step(&mut s, &["smove", "s", "d", "zz"]), 0);
    assert_eq!(step(&mut s, &["sinterstore", "q", "s", "s"]), 1);
    assert_eq!(step(&mut s, &["sdiffstore", "q", "s", "s"]), 1);
    assert_eq!(step(&mut s, &["sdiffstore", "q", "s", "s"]), 0);
    assert_eq!(step(&mut s, &["smembers", "s"]), 0);
    assert_eq!(step(&mut s, &["get", "x"]), 0);
    // Errors change nothing, not even the counter.
    s.command(&["set", "str", "v"]);
    for cmd in [
        &["hset", "str", "a", "1"][..],
        &["hsetnx", "str", "a", "1"],
        &["hdel", "str", "a"],
        &["hincrby", "str", "a", "1"],
        &["hincrbyfloat", "str", "a", "1"],
        &["hincrby", "h", "n", "x"],
        &["sadd", "str", "a"],
        &["srem", "str", "a"],
        &["spop", "str"],
        &["smove", "str", "s", "a"],
        &["sunionstore", "d", "s", "str"],
    ] {
        assert_eq!(step(&mut s, cmd), 0, "{cmd:?}");
    }
}

/// A view taken before writes sees the old collections; the writes copy
/// instead of changing what the view holds.
#[test]
fn views_see_collections_as_of_the_cut() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    s.command(&["hset", "h", "a", "1"]);
    s.command(&["sadd", "s", "x", "y"]);
    let mut view = ks.view().unwrap();
    s.command(&["hset", "h", "a", "2", "b", "3"]);
    s.command(&["srem", "s", "x", "y"]);
    s.command(&["sadd", "s2", "new"]);
    let mut entries = Vec::new();
    while let Some(batch) = view.next_batch(100) {
        entries.extend(batch);
    }
    let by_key: BTreeMap<Vec<u8>, Value> = entries
        .into_iter()
        .map(|e| (e.key.to_vec(), e.value))
        .collect();
    assert_eq!(by_key.len(), 2, "{by_key:?}");
    let Value::Hash(h) = &by_key[&b"h".to_vec()] else {
        panic!()
    };
    assert_eq!(h.len(), 1);
    assert_eq!(&h.get(&b"a"[..]).unwrap()[..], b"1");
    let Value::Set(st) = &by_key[&b"s".to_vec()] else {
        panic!()
    };
    assert_eq!(st.len(), 2);
    assert_eq!(s.command(&["exists", "s"]), i(0));
    assert_eq!(s.command(&["hget", "h", "a"]), b("2"));
}

/// HINCRBYFLOAT parses the increment before looking at the key, and reads
/// values with 40+ integer digits and a fraction exactly (redis 7.0.15).
#[test]
fn hincrbyfloat_order_of_checks_and_wide_values() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(
        s.command(&[
            "hset",
            "hd",
            "f",
            "1000000000000000000000000000000000000000.5"
        ]),
        Frame::Integer(1)
    );
    assert_eq!(
        s.command(&["hincrbyfloat", "hd", "f", "0"]),
        Frame::bulk("999999999999999999993126004485993267200")
    );
    assert_eq!(
        s.command(&["hincrbyfloat", "hd", "f", "abc"]),
        Frame::error("ERR value is not a valid float")
    );
    assert_eq!(s.command(&["hset", "hd", "g", "abc"]), Frame::Integer(1));
    assert_eq!(
        s.command(&["hincrbyfloat", "hd", "g", "inf"]),
        Frame::error("ERR value is NaN or Infinity")
    );
    assert_eq!(
        s.command(&["hincrbyfloat", "hd", "g", "1"]),
        Frame::error("ERR hash value is not a float")
    );
    assert_eq!(s.command(&["hset", "hd", "i", "inf"]), Frame::Integer(1));
    assert_eq!(
        s.command(&["hincrbyfloat", "hd", "i", "1"]),
        Frame::error("ERR increment would produce NaN or Infinity")
    );
    assert_eq!(s.command(&["rpush", "l", "x"]), Frame::Integer(1));
    assert_eq!(
        s.command(&["hincrbyfloat", "l", "f", "1"]),
        Frame::error("WRONGTYPE Operation against a key holding the wrong kind of value")
    );
    assert_eq!(
        s.command(&["hincrbyfloat", "l", "f", "abc"]),
        Frame::error("ERR value is not a valid float")
    );
}
