//! Sorted-set commands through a `Session`, asserting exact Redis 7.0
//! replies (each expectation was checked against redis-server 7.0.15, in
//! RESP2 and RESP3).
#![allow(clippy::unwrap_used)]

use cairn_keyspace::{Keyspace, Session, Value};
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
fn d(v: f64) -> Frame {
    Frame::Double(v)
}
fn arr(v: Vec<Frame>) -> Frame {
    Frame::Array(v)
}
fn bulks(v: &[&str]) -> Frame {
    arr(v.iter().map(|s| b(s)).collect())
}
/// A flat RESP2 WITHSCORES reply.
fn flat(v: &[(&str, f64)]) -> Frame {
    arr(v.iter().flat_map(|(m, s)| [b(m), d(*s)]).collect())
}
/// A RESP3 WITHSCORES reply: [member, score] pairs.
fn pairs(v: &[(&str, f64)]) -> Frame {
    arr(v.iter().map(|(m, s)| arr(vec![b(m), d(*s)])).collect())
}

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

fn resp3(ks: &Keyspace) -> Session {
    let mut s = ks.session();
    assert!(!s.command(&["hello", "3"]).is_error());
    s
}

#[test]
fn zadd_options_and_errors() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(
        s.command(&["zadd", "z", "1", "a", "2", "b", "3", "c"]),
        i(3)
    );
    assert_eq!(
        s.command(&["zadd", "z", "nx", "xx", "1", "a"]),
        e("ERR XX and NX options at the same time are not compatible")
    );
    let gtlt = e("ERR GT, LT, and/or NX options at the same time are not compatible");
    assert_eq!(s.command(&["zadd", "z", "gt", "lt", "1", "a"]), gtlt);
    assert_eq!(s.command(&["zadd", "z", "nx", "gt", "1", "a"]), gtlt);
    assert_eq!(
        s.command(&["zadd", "z", "incr", "1", "a", "2", "b"]),
        e("ERR INCR option supports a single increment-element pair")
    );
    assert_eq!(
        s.command(&["zadd", "z", "1"]),
        e("ERR wrong number of arguments for 'zadd' command")
    );
    assert_eq!(
        s.command(&["zadd", "z", "1", "a", "2"]),
        e("ERR syntax error")
    );
    for bad in ["abc", "nan", "1e400", "1e-400", " 1", "1 ", ""] {
        assert_eq!(
            s.command(&["zadd", "z", bad, "a"]),
            e("ERR value is not a valid float"),
            "{bad:?}"
        );
    }
    assert_eq!(
        s.command(&["zadd", "h", "0x10", "a", "1e-310", "b", "-0", "c"]),
        i(3)
    );
    assert_eq!(
        s.command(&["zrange", "h", "0", "-1", "withscores"]),
        flat(&[("c", 0.0), ("b", 1e-310), ("a", 16.0)])
    );
    assert_eq!(
        s.command(&["zadd", "z", "incr", "inf", "a"]),
        d(f64::INFINITY)
    );
    assert_eq!(
        s.command(&["zadd", "z", "incr", "-inf", "a"]),
        e("ERR resulting score is not a number (NaN)")
    );
    assert_eq!(s.command(&["zadd", "z", "xx", "1", "q"]), i(0));
    assert_eq!(
        s.command(&["zadd", "nz", "xx", "incr", "1", "q"]),
        Frame::Null
    );
    assert_eq!(s.command(&["exists", "nz"]), i(0));
    // Duplicates in one call are applied in order.
    assert_eq!(
        s.command(&["zadd", "dup", "1", "e1", "2", "e2", "1", "e1"]),
        i(2)
    );
    assert_eq!(
        s.command(&["zadd", "dup", "ch", "5", "e1", "5", "e1", "6", "e1"]),
        i(2)
    );
    assert_eq!(s.command(&["zscore", "dup", "e1"]), d(6.0));
    assert_eq!(s.command(&["set", "str", "x"]), Frame::ok());
    assert_eq!(s.command(&["zadd", "str", "1", "a"]), e(WRONGTYPE));
    // The float error wins over WRONGTYPE, as in Redis.
    assert_eq!(
        s.command(&["zadd", "str", "x", "a"]),
        e("ERR value is not a valid float")
    );
}

#[test]
fn zadd_flag_matrix() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    /// (flags, reply, contents after).
    type Case = (&'static [&'static str], i64, &'static [(&'static str, f64)]);
    let cases: [Case; 8] = [
        (&["gt"], 1, &[("a", 1.5), ("b", 2.0), ("c", 7.0)]),
        (&["lt"], 1, &[("a", 1.0), ("b", 1.5), ("c", 7.0)]),
        (&["gt", "ch"], 2, &[("a", 1.5), ("b", 2.0), ("c", 7.0)]),
        (&["lt", "ch"], 2, &[("a", 1.0), ("b", 1.5), ("c", 7.0)]),
        (&["xx", "ch"], 2, &[("a", 1.5), ("b", 1.5)]),
        (&["nx", "ch"], 1, &[("a", 1.0), ("b", 2.0), ("c", 7.0)]),
        (&["xx", "gt", "ch"], 1, &[("a", 1.5), ("b", 2.0)]),
        (&["ch"], 3, &[("a", 1.5), ("b", 1.5), ("c", 7.0)]),
    ];
    for (flags, reply, after) in cases {
        s.command(&["del", "f"]);
        s.command(&["zadd", "f", "1", "a", "2", "b"]);
        let mut cmd = vec!["zadd", "f"];
        cmd.extend_from_slice(flags);
        cmd.extend_from_slice(&["1.5", "a", "1.5", "b", "7", "c"]);
        assert_eq!(s.command(&cmd), i(reply), "{flags:?}");
        assert_eq!(
            s.command(&["zrange", "f", "0", "-1", "withscores"]),
            flat(after),
            "{flags:?}"
        );
    }
    s.command(&["del", "f"]);
    s.command(&["zadd", "f", "1", "a"]);
    assert_eq!(
        s.command(&["zadd", "f", "incr", "gt", "-1", "a"]),
        Frame::Null
    );
    assert_eq!(s.command(&["zadd", "f", "incr", "lt", "-1", "a"]), d(0.0));
    assert_eq!(
        s.command(&["zadd", "f", "incr", "nx", "5", "a"]),
        Frame::Null
    );
    assert_eq!(s.command(&["zadd", "f", "incr", "gt", "5", "new"]), d(5.0));
    assert_eq!(s.command(&["zincrby", "f", "2.5", "zz"]), d(2.5));
    assert_eq!(
        s.command(&["zincrby", "f", "abc", "zz"]),
        e("ERR value is not a valid float")
    );
    assert_eq!(s.command(&["zincrby", "f", "0.1", "zz"]), d(2.6));
}

#[test]
fn reads_and_removal() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    s.command(&["zadd", "z", "1", "a", "2.5", "b", "3", "c"]);
    assert_eq!(s.command(&["zcard", "z"]), i(3));
    assert_eq!(s.command(&["zcard", "nokey"]), i(0));
    assert_eq!(s.command(&["zscore", "z", "b"]), d(2.5));
    assert_eq!(s.command(&["zscore", "z", "x"]), Frame::Null);
    assert_eq!(
        s.command(&["zmscore", "z", "c", "x"]),
        arr(vec![d(3.0), Frame::Null])
    );
    assert_eq!(
        s.command(&["zmscore", "nokey", "c"]),
        arr(vec![Frame::Null])
    );
    assert_eq!(s.command(&["zrank", "z", "c"]), i(2));
    assert_eq!(s.command(&["zrevrank", "z", "c"]), i(0));
    assert_eq!(s.command(&["zrank", "z", "x"]), Frame::Null);
    assert_eq!(s.command(&["zrem", "z", "a", "a", "x"]), i(1));
    assert_eq!(s.command(&["zrem", "z", "b", "c"]), i(2));
    assert_eq!(
        s.command(&["exists", "z"]),
        i(0),
        "an emptied sorted set is deleted"
    );
    s.command(&["set", "str", "1"]);
    for cmd in [
        &["zrange", "str", "0", "1"][..],
        &["zcard", "str"],
        &["zscore", "str", "a"],
        &["zpopmin", "str"],
        &["zunion", "2", "nokey", "str"],
        &["zrandmember", "str"],
        &["zscan", "str", "0"],
        &["zmpop", "1", "str", "min"],
        &["zrangestore", "d", "str", "0", "1"],
        &["zremrangebyrank", "str", "0", "1"],
        &["zrem", "str", "a"],
        &["zcount", "str", "0", "1"],
        &["zintercard", "1", "str"],
    ] {
        assert_eq!(s.command(cmd), e(WRONGTYPE), "{cmd:?}");
    }
}

#[test]
fn range_variants() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    s.command(&[
        "zadd", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e",
    ]);
    assert_eq!(
        s.command(&["zrange", "z", "0", "-1"]),
        bulks(&["a", "b", "c", "d", "e"])
    );
    assert_eq!(
        s.command(&["zrange", "z", "-2", "100", "withscores"]),
        flat(&[("d", 4.0), ("e", 5.0)])
    );
    assert_eq!(s.command(&["zrange", "z", "3", "1"]), bulks(&[]));
    assert_eq!(
        s.command(&["zrange", "z", "0", "1", "rev"]),
        bulks(&["e", "d"])
    );
    assert_eq!(
        s.command(&["zrevrange", "z", "0", "1", "withscores"]),
        flat(&[("e", 5.0), ("d", 4.0)])
    );
    assert_eq!(
        s.command(&["zrange", "z", "(1", "3", "byscore"]),
        bulks(&["b", "c"])
    );
    assert_eq!(
        s.command(&["zrange", "z", "", "3", "byscore"]),
        bulks(&["a", "b", "c"])
    );
    assert_eq!(
        s.command(&["zrange", "z", "(5", "1", "byscore", "rev"]),
        bulks(&["d", "c", "b", "a"])
    );
    assert_eq!(
        s.command(&["zrange", "z", "-inf", "+inf", "byscore", "limit", "1", "2"]),
        bulks(&["b", "c"])
    );
    assert_eq!(
        s.command(&["zrangebyscore", "z", "-inf", "+inf", "limit", "-1", "1"]),
        bulks(&[])
    );
    assert_eq!(
        s.command(&[
            "zrangebyscore",
            "z",
            "2",
            "4",
            "limit",
            "1",
            "-1",
            "withscores"
        ]),
        flat(&[("c", 3.0), ("d", 4.0)])
    );
    assert_eq!(
        s.command(&["zrevrangebyscore", "z", "+inf", "-inf", "limit", "1", "2"]),
        bulks(&["d", "c"])
    );
    assert_eq!(s.command(&["zcount", "z", "(1", "(5"]), i(3));
    assert_eq!(s.command(&["zcount", "z", " 1", "+inf"]), i(5));
    assert_eq!(s.command(&["zcount", "z", "5", "1"]), i(0));
    let syntax = e("ERR syntax error");
    assert_eq!(
        s.command(&["zrange", "z", "0", "-1", "limit", "0", "1"]),
        e("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
    );
    assert_eq!(
        s.command(&["zrangebylex", "z", "-", "+", "withscores"]),
        e("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
    );
    assert_eq!(
        s.command(&["zrangestore", "d", "z", "0", "-1", "withscores"]),
        syntax
    );
    assert_eq!(s.command(&["zrange", "z", "0", "-1", "rev", "rev"]), syntax);
    assert_eq!(s.command(&["zrange", "z", "0", "-1", "limit", "0"]), syntax);
    assert_eq!(s.command(&["zrangebyscore", "z", "0", "1", "rev"]), syntax);
    assert_eq!(
        s.command(&["zrange", "z", "abc", "3", "byscore"]),
        e("ERR min or max is not a float")
    );
    assert_eq!(
        s.command(&["zcount", "z", "1 ", "3"]),
        e("ERR min or max is not a float")
    );
    assert_eq!(
        s.command(&["zrange", "z", "a", "c", "bylex"]),
        e("ERR min or max not valid string range item")
    );
    assert_eq!(
        s.command(&["zrange", "z", "x", "1"]),
        e("ERR value is not an integer or out of range")
    );
    assert_eq!(s.command(&["zrange", "nokey", "0", "-1"]), bulks(&[]));
}

#[test]
fn lex_ranges() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    s.command(&[
        "zadd", "l", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e",
    ]);
    assert_eq!(
        s.command(&["zrangebylex", "l", "-", "+"]),
        bulks(&["a", "b", "c", "d", "e"])
    );
    assert_eq!(
        s.command(&["zrangebylex", "l", "(b", "[d"]),
        bulks(&["c", "d"])
    );
    assert_eq!(s.command(&["zrangebylex", "l", "+", "-"]), bulks(&[]));
    assert_eq!(
        s.command(&["zrevrangebylex", "l", "[d", "(b"]),
        bulks(&["d", "c"])
    );
    assert_eq!(
        s.command(&["zrange", "l", "+", "-", "bylex", "rev", "limit", "0", "2"]),
        bulks(&["e", "d"])
    );
    assert_eq!(s.command(&["zlexcount", "l", "[b", "(e"]), i(3));
    assert_eq!(
        s.command(&["zlexcount", "l", "a", "b"]),
        e("ERR min or max not valid string range item")
    );
    assert_eq!(s.command(&["zremrangebylex", "l", "[b", "(d"]), i(2));
    assert_eq!(
        s.command(&["zrange", "l", "0", "-1"]),
        bulks(&["a", "d", "e"])
    );
}

#[test]
fn remrange_and_store() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    s.command(&[
        "zadd", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e",
    ]);
    assert_eq!(
        s.command(&[
            "zrangestore",
            "dst",
            "z",
            "(1",
            "4",
            "byscore",
            "limit",
            "1",
            "5"
        ]),
        i(2)
    );
    assert_eq!(
        s.command(&["zrange", "dst", "0", "-1", "withscores"]),
        flat(&[("c", 3.0), ("d", 4.0)])
    );
    assert_eq!(
        s.command(&["zrangestore", "dst", "z", "0", "1", "rev"]),
        i(2)
    );
    assert_eq!(s.command(&["zrange", "dst", "0", "-1"]), bulks(&["d", "e"]));
    assert_eq!(s.command(&["zrangestore", "dst", "z", "5", "10"]), i(0));
    assert_eq!(
        s.command(&["exists", "dst"]),
        i(0),
        "an empty result deletes the destination"
    );
    assert_eq!(
        s.command(&["zremrangebyrank", "z", "a", "1"]),
        e("ERR value is not an integer or out of range")
    );
    assert_eq!(s.command(&["zremrangebyrank", "z", "-1", "-1"]), i(1));
    assert_eq!(s.command(&["zremrangebyscore", "z", "(1", "2"]), i(1));
    assert_eq!(
        s.command(&["zremrangebyscore", "z", "x", "2"]),
        e("ERR min or max is not a float")
    );
    assert_eq!(
        s.command(&["zrange", "z", "0", "-1"]),
        bulks(&["a", "c", "d"])
    );
    assert_eq!(s.command(&["zremrangebyrank", "z", "0", "-1"]), i(3));
    assert_eq!(s.command(&["exists", "z"]), i(0));
    assert_eq!(s.command(&["zremrangebyrank", "z", "0", "-1"]), i(0));
}

#[test]
fn pops() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    s.command(&[
        "zadd", "z", "1", "a", "2.5", "b", "3", "c", "4", "d", "5", "e",
    ]);
    assert_eq!(s.command(&["zpopmin", "z"]), flat(&[("a", 1.0)]));
    assert_eq!(s.command(&["zpopmin", "z", "1"]), flat(&[("b", 2.5)]));
    assert_eq!(
        s.command(&["zpopmax", "z", "2"]),
        flat(&[("e", 5.0), ("d", 4.0)])
    );
    assert_eq!(s.command(&["zpopmax", "z", "0"]), arr(vec![]));
    assert_eq!(
        s.command(&["zpopmin", "z", "-1"]),
        e("ERR value is out of range, must be positive")
    );
    assert_eq!(
        s.command(&["zpopmin", "z", "abc"]),
        e("ERR value is out of range, must be positive")
    );
    assert_eq!(s.command(&["zpopmin", "nokey"]), arr(vec![]));
    assert_eq!(s.command(&["zpopmin", "z", "100"]), flat(&[("c", 3.0)]));
    assert_eq!(s.command(&["exists", "z"]), i(0));

    s.command(&["zadd", "z", "1", "a", "2", "b", "3", "c"]);
    assert_eq!(
        s.command(&["zmpop", "2", "nokey", "z", "max", "count", "2"]),
        arr(vec![b("z"), pairs(&[("c", 3.0), ("b", 2.0)])])
    );
    assert_eq!(
        s.command(&["zmpop", "1", "z", "min", "count", "10"]),
        arr(vec![b("z"), pairs(&[("a", 1.0)])])
    );
    assert_eq!(s.command(&["zmpop", "1", "z", "min"]), Frame::NullArray);
    assert_eq!(
        s.command(&["zmpop", "0", "z", "min"]),
        e("ERR numkeys should be greater than 0")
    );
    assert_eq!(
        s.command(&["zmpop", "2", "z", "min"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["zmpop", "1", "z", "foo"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["zmpop", "1", "z", "min", "count", "0"]),
        e("ERR count should be greater than 0")
    );
    assert_eq!(
        s.command(&["zmpop", "1", "z", "min", "count", "1", "count", "2"]),
        e("ERR syntax error")
    );
}

#[test]
fn resp3_shapes() {
    let ks = Keyspace::new();
    let mut s = resp3(&ks);
    s.command(&["zadd", "z", "1", "a", "2.5", "b", "3", "c", "4", "d"]);
    assert_eq!(
        s.command(&["zrange", "z", "0", "1", "withscores"]),
        pairs(&[("a", 1.0), ("b", 2.5)])
    );
    assert_eq!(
        s.command(&["zrangebyscore", "z", "3", "3", "withscores"]),
        pairs(&[("c", 3.0)])
    );
    // Without a count ZPOPMIN stays flat; with one it nests.
    assert_eq!(s.command(&["zpopmin", "z"]), flat(&[("a", 1.0)]));
    assert_eq!(s.command(&["zpopmin", "z", "1"]), pairs(&[("b", 2.5)]));
    assert_eq!(
        s.command(&["zunion", "1", "z", "withscores"]),
        pairs(&[("c", 3.0), ("d", 4.0)])
    );
    let f = s.command(&["zrandmember", "z", "-3", "withscores"]);
    let Frame::Array(items) = f else {
        panic!("{f:?}")
    };
    assert_eq!(items.len(), 3);
    for p in items {
        let Frame::Array(p) = p else { panic!("{p:?}") };
        assert!(
            matches!(p.as_slice(), [Frame::Bulk(m), Frame::Double(sc)] if (&m[..] == b"c" && *sc == 3.0) || (&m[..] == b"d" && *sc == 4.0))
        );
    }
    // ZSCAN scores stay bulk strings in RESP3.
    assert_eq!(
        s.command(&["zscan", "z", "0"]),
        arr(vec![b("0"), bulks(&["c", "3", "d", "4"])])
    );
}

#[test]
fn set_algebra() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    s.command(&["zadd", "a", "1", "x", "2", "y", "3", "z"]);
    s.command(&["zadd", "b", "4", "y", "5", "z", "6", "w"]);
    assert_eq!(
        s.command(&["zunion", "2", "a", "b", "withscores"]),
        flat(&[("x", 1.0), ("w", 6.0), ("y", 6.0), ("z", 8.0)])
    );
    assert_eq!(
        s.command(&["zinter", "2", "a", "b", "withscores"]),
        flat(&[("y", 6.0), ("z", 8.0)])
    );
    assert_eq!(
        s.command(&["zdiff", "2", "a", "b", "withscores"]),
        flat(&[("x", 1.0)])
    );
    assert_eq!(s.command(&["zinter", "3", "a", "b", "nokey"]), bulks(&[]));
    assert_eq!(
        s.command(&[
            "zunion",
            "2",
            "a",
            "b",
            "weights",
            "2",
            "-1",
            "aggregate",
            "min",
            "withscores"
        ]),
        flat(&[("w", -6.0), ("z", -5.0), ("y", -4.0), ("x", 2.0)])
    );
    assert_eq!(
        s.command(&[
            "zinter",
            "2",
            "a",
            "b",
            "weights",
            "inf",
            "0",
            "aggregate",
            "max",
            "withscores"
        ]),
        flat(&[("y", f64::INFINITY), ("z", f64::INFINITY)])
    );
    s.command(&["zadd", "inf", "inf", "p", "-inf", "n"]);
    // inf + -inf and 0 * inf become 0, as in Redis.
    assert_eq!(
        s.command(&[
            "zunion",
            "2",
            "inf",
            "inf",
            "weights",
            "1",
            "-1",
            "withscores"
        ]),
        flat(&[("n", 0.0), ("p", 0.0)])
    );
    assert_eq!(s.command(&["zunionstore", "d", "2", "a", "b"]), i(4));
    assert_eq!(
        s.command(&["zrange", "d", "0", "-1"]),
        bulks(&["x", "w", "y", "z"])
    );
    assert_eq!(s.command(&["zdiffstore", "d", "2", "a", "a"]), i(0));
    assert_eq!(s.command(&["exists", "d"]), i(0));
    assert_eq!(
        s.command(&["zinterstore", "a", "2", "a", "b", "aggregate", "max"]),
        i(2),
        "destination may be an input"
    );
    assert_eq!(
        s.command(&["zrange", "a", "0", "-1", "withscores"]),
        flat(&[("y", 4.0), ("z", 5.0)])
    );
    assert_eq!(s.command(&["zintercard", "2", "a", "b"]), i(2));
    assert_eq!(
        s.command(&["zintercard", "2", "a", "b", "limit", "1"]),
        i(1)
    );
    assert_eq!(
        s.command(&["zintercard", "2", "a", "b", "limit", "0"]),
        i(2)
    );
    assert_eq!(
        s.command(&["zunion", "0", "a"]),
        e("ERR at least 1 input key is needed for 'zunion' command")
    );
    assert_eq!(
        s.command(&["zunionstore", "d", "0", "a"]),
        e("ERR at least 1 input key is needed for 'zunionstore' command")
    );
    assert_eq!(s.command(&["zunion", "3", "a"]), e("ERR syntax error"));
    assert_eq!(
        s.command(&["zunion", "1", "a", "weights", "abc"]),
        e("ERR weight value is not a float")
    );
    assert_eq!(
        s.command(&["zunion", "1", "a", "weights", "1", "2"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["zunion", "1", "a", "aggregate", "foo"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["zunionstore", "d", "1", "a", "withscores"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["zdiff", "1", "a", "weights", "1"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["zintercard", "0", "a"]),
        e("ERR at least 1 input key is needed for 'zintercard' command")
    );
    assert_eq!(
        s.command(&["zintercard", "1", "a", "limit", "-1"]),
        e("ERR LIMIT can't be negative")
    );
    assert_eq!(
        s.command(&["zintercard", "1", "a", "limit", "x"]),
        e("ERR LIMIT can't be negative")
    );
    assert_eq!(
        s.command(&["zintercard", "1", "a", "foo"]),
        e("ERR syntax error")
    );
}

#[test]
fn plain_sets_are_inputs_with_score_one() {
    let ks = Keyspace::new();
    // Built through the value API so this test does not depend on SADD.
    let set: cairn_keyspace::HashSetBytes =
        ["a", "x"].iter().map(|m| bytes::Bytes::from(*m)).collect();
    ks.atomic([(0, &b"s"[..])], |l| {
        l.shard(0, b"s")
            .set(b"s", Value::Set(std::sync::Arc::new(set)), None);
    });
    let mut s = ks.session();
    s.command(&["zadd", "z", "5", "a"]);
    assert_eq!(
        s.command(&["zinter", "1", "s", "withscores"]),
        flat(&[("a", 1.0), ("x", 1.0)])
    );
    assert_eq!(
        s.command(&["zunion", "2", "s", "z", "withscores"]),
        flat(&[("x", 1.0), ("a", 6.0)])
    );
    assert_eq!(s.command(&["zinterstore", "d", "2", "s", "z"]), i(1));
    assert_eq!(s.command(&["zadd", "s", "1", "a"]), e(WRONGTYPE));
}

#[test]
fn randmember() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(s.command(&["zrandmember", "nokey"]), Frame::Null);
    assert_eq!(s.command(&["zrandmember", "nokey", "2"]), arr(vec![]));
    let members: Vec<String> = (0..50).map(|n| format!("m{n}")).collect();
    for (n, m) in members.iter().enumerate() {
        s.command(&["zadd", "z", &n.to_string(), m]);
    }
    let Frame::Bulk(one) = s.command(&["zrandmember", "z"]) else {
        panic!()
    };
    assert!(members.iter().any(|m| m.as_bytes() == &one[..]));
    let Frame::Array(v) = s.command(&["zrandmember", "z", "20"]) else {
        panic!()
    };
    let names = |v: &[Frame]| -> std::collections::HashSet<Vec<u8>> {
        v.iter()
            .map(|f| {
                if let Frame::Bulk(m) = f {
                    m.to_vec()
                } else {
                    panic!("{f:?}")
                }
            })
            .collect()
    };
    let distinct = names(&v);
    assert_eq!((v.len(), distinct.len()), (20, 20));
    let Frame::Array(v) = s.command(&["zrandmember", "z", "100"]) else {
        panic!()
    };
    assert_eq!(
        names(&v).len(),
        50,
        "count above the size returns everything"
    );
    let Frame::Array(v) = s.command(&["zrandmember", "z", "-200", "withscores"]) else {
        panic!()
    };
    assert_eq!(v.len(), 400);
    for p in v.chunks(2) {
        let [Frame::Bulk(m), Frame::Double(sc)] = p else {
            panic!("{p:?}")
        };
        assert_eq!(format!("m{sc}"), String::from_utf8_lossy(m));
    }
    assert_eq!(s.command(&["zrandmember", "z", "0"]), arr(vec![]));
    assert_eq!(
        s.command(&["zrandmember", "z", "1", "foo"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["zrandmember", "z", "-9223372036854775808"]),
        e(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
        )
    );
    assert_eq!(
        s.command(&["zrandmember", "z", "-9223372036854775807", "withscores"]),
        e("ERR value is out of range")
    );
    // Redis would try to send 10^15 members; cairn refuses (documented).
    assert_eq!(
        s.command(&["zrandmember", "z", "-1000000000000000"]),
        e("ERR value is out of range")
    );
}

#[test]
fn zscan_returns_every_member_once_across_calls() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    for n in 0..1000 {
        s.command(&["zadd", "z", &n.to_string(), &format!("m{n}")]);
    }
    let mut cursor = "0".to_owned();
    let mut seen = std::collections::HashMap::new();
    let mut calls = 0;
    loop {
        let Frame::Array(reply) = s.command(&["zscan", "z", &cursor, "count", "37"]) else {
            panic!()
        };
        let [Frame::Bulk(next), Frame::Array(items)] = reply.as_slice() else {
            panic!()
        };
        for p in items.chunks(2) {
            let [Frame::Bulk(m), Frame::Bulk(sc)] = p else {
                panic!()
            };
            assert_eq!(
                format!("m{}", String::from_utf8_lossy(sc)),
                String::from_utf8_lossy(m)
            );
            *seen.entry(m.clone()).or_insert(0) += 1;
        }
        calls += 1;
        // Members removed mid-scan must not make others be skipped.
        if calls == 5 {
            for n in 0..100 {
                s.command(&["zrem", "z", &format!("m{n}")]);
            }
        }
        cursor = String::from_utf8(next.to_vec()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    assert!(
        calls > 20,
        "COUNT is honoured on large sets ({calls} calls)"
    );
    for n in 100..1000 {
        assert_eq!(seen.get(format!("m{n}").as_bytes()), Some(&1), "m{n}");
    }
    let Frame::Array(r) = s.command(&["zscan", "z", "0", "match", "m99?", "count", "10000"]) else {
        panic!()
    };
    let [Frame::Bulk(next), Frame::Array(items)] = r.as_slice() else {
        panic!()
    };
    assert_eq!(&next[..], b"0");
    let mut got: Vec<String> = items
        .iter()
        .map(|f| {
            if let Frame::Bulk(x) = f {
                String::from_utf8_lossy(x).into_owned()
            } else {
                panic!()
            }
        })
        .collect();
    got.sort();
    let mut want: Vec<String> = (990..1000)
        .flat_map(|n| [format!("m{n}"), n.to_string()])
        .collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(s.command(&["zscan", "z", "abc"]), e("ERR invalid cursor"));
    assert_eq!(
        s.command(&["zscan", "z", "0", "count", "0"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["zscan", "nokey", "0"]),
        arr(vec![b("0"), arr(vec![])])
    );
}

#[test]
fn changes_are_counted_per_element() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    let before = ks.changes();
    s.command(&["zadd", "z", "1", "a", "2", "b", "3", "c"]);
    assert_eq!(ks.changes() - before, 3);
    let before = ks.changes();
    assert_eq!(s.command(&["zadd", "z", "1", "a", "2", "b"]), i(0));
    assert_eq!(s.command(&["zadd", "z", "nx", "9", "a"]), i(0));
    assert_eq!(s.command(&["zrem", "z", "nope"]), i(0));
    assert_eq!(ks.changes(), before, "no-op writes count nothing");
    s.command(&["zadd", "z", "5", "a", "6", "b", "4", "d"]);
    assert_eq!(ks.changes() - before, 3);
    let before = ks.changes();
    s.command(&["zpopmin", "z", "2"]);
    assert_eq!(ks.changes() - before, 2);
}

#[test]
fn views_keep_the_old_sorted_set() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    s.command(&["zadd", "z", "1", "a", "2", "b"]);
    let view = ks.view().unwrap();
    s.command(&["zadd", "z", "3", "c"]);
    s.command(&["zrem", "z", "a"]);
    let entries: Vec<_> = view.collect();
    let [entry] = entries.as_slice() else {
        panic!("{entries:?}")
    };
    let Value::ZSet(z) = &entry.value else {
        panic!()
    };
    let got: Vec<_> = z.iter().map(|(m, sc)| (m.clone(), sc)).collect();
    assert_eq!(
        got,
        vec![
            (bytes::Bytes::from("a"), 1.0),
            (bytes::Bytes::from("b"), 2.0)
        ]
    );
    assert_eq!(s.command(&["zrange", "z", "0", "-1"]), bulks(&["b", "c"]));
}

#[test]
fn large_sets_keep_ranks_right() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    // Enough members for many chunks; scores interleave with insert order.
    for n in 0..3000i64 {
        let score = (n * 7919) % 3000;
        s.command(&["zadd", "big", &score.to_string(), &format!("m{n}")]);
    }
    for n in (0..3000i64).step_by(97) {
        let score = (n * 7919) % 3000;
        assert_eq!(s.command(&["zrank", "big", &format!("m{n}")]), i(score));
        assert_eq!(
            s.command(&["zrevrank", "big", &format!("m{n}")]),
            i(2999 - score)
        );
    }
    assert_eq!(s.command(&["zcount", "big", "(1000", "2000"]), i(1000));
    assert_eq!(
        s.command(&["zremrangebyrank", "big", "1000", "1999"]),
        i(1000)
    );
    assert_eq!(s.command(&["zcard", "big"]), i(2000));
    assert_eq!(
        s.command(&["zrange", "big", "999", "1000", "withscores"])
            .into_resp2(),
        arr(vec![
            b(&format!(
                "m{}",
                (0..3000i64).find(|n| (n * 7919) % 3000 == 999).unwrap()
            )),
            b("999"),
            b(&format!(
                "m{}",
                (0..3000i64).find(|n| (n * 7919) % 3000 == 2000).unwrap()
            )),
            b("2000"),
        ])
    );
}

#[test]
fn negative_zero_follows_the_encoding_redis_would_use() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    // Compact (listpack in Redis): -0 is stored as 0, but INCR replies
    // with the computed -0.
    assert_eq!(
        s.command(&["zadd", "z", "incr", "-0", "c"]).into_resp2(),
        b("-0")
    );
    assert_eq!(s.command(&["zscore", "z", "c"]).into_resp2(), b("0"));
    let mut big = vec!["zadd".to_string(), "big".to_string()];
    for n in 1..=200 {
        big.extend([n.to_string(), format!("m{n}")]);
    }
    big.extend(["-0".to_string(), "c".to_string()]);
    s.command(&big);
    assert_eq!(s.command(&["zscore", "big", "c"]).into_resp2(), b("-0"));
    // Small store results are compact again; ZUNIONSTORE's large ones not.
    assert_eq!(s.command(&["zrangestore", "d", "big", "0", "0"]), i(1));
    assert_eq!(s.command(&["zscore", "d", "c"]).into_resp2(), b("0"));
    assert_eq!(s.command(&["zunionstore", "d", "1", "big"]), i(201));
    assert_eq!(s.command(&["zscore", "d", "c"]).into_resp2(), b("-0"));
    // ZSCAN of a compact set prints scores as Redis' listpack stores them.
    s.command(&["zadd", "t", "1e17", "a", "1e19", "b"]);
    assert_eq!(
        s.command(&["zscan", "t", "0"]),
        arr(vec![
            b("0"),
            bulks(&["a", "100000000000000000", "b", "1e+19"])
        ])
    );
    assert_eq!(
        s.command(&["zrange", "t", "0", "-1", "withscores"])
            .into_resp2(),
        arr(vec![b("a"), b("1e+17"), b("b"), b("1e+19")])
    );
}

/// Redis 7.0 opens (and type-checks) the inputs of the set operations
/// before it parses WEIGHTS/AGGREGATE/WITHSCORES/LIMIT; the arity of the
/// keys comes first.
#[test]
fn set_operations_check_types_before_options() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(s.command(&["set", "k", "v"]), Frame::ok());
    assert_eq!(s.command(&["zadd", "zz", "1", "m"]), i(1));
    for cmd in [
        &["zunion", "2", "zz", "k", "aggregate", "avg"][..],
        &["zunion", "2", "zz", "k", "weights", "x"],
        &["zunion", "2", "zz", "k", "withscores", "bogus"],
        &["zinter", "2", "zz", "k", "aggregate", "avg"],
        &["zinter", "2", "zz", "k", "withscores", "bogus"],
        &["zdiff", "2", "zz", "k", "bogus"],
        &["zunionstore", "d", "2", "zz", "k", "weights", "x"],
        &["zinterstore", "d", "2", "zz", "k", "aggregate", "avg"],
        &["zdiffstore", "d", "2", "zz", "k", "bogus"],
        &["zintercard", "2", "zz", "k", "limit", "x"],
        &["zintercard", "2", "zz", "k", "bogus"],
    ] {
        assert_eq!(s.command(cmd), e(WRONGTYPE), "{cmd:?}");
    }
    assert_eq!(
        s.command(&["zunion", "3", "zz", "k"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["zunion", "2", "zz", "nokey", "weights", "x"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["zunion", "2", "zz", "nokey", "weights", "1", "x"]),
        e("ERR weight value is not a float")
    );
}

#[test]
fn mpop_zrandmember_and_zscan_argument_errors() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(s.command(&["zadd", "zz", "1", "m"]), i(1));
    assert_eq!(s.command(&["set", "k", "v"]), Frame::ok());
    let numkeys = e("ERR numkeys should be greater than 0");
    let count = e("ERR count should be greater than 0");
    assert_eq!(s.command(&["zmpop", "x", "zz", "min"]), numkeys);
    assert_eq!(
        s.command(&["zmpop", "99999999999999999999", "zz", "min"]),
        numkeys
    );
    assert_eq!(s.command(&["zmpop", "1", "zz", "min", "count", "x"]), count);
    assert_eq!(s.command(&["bzmpop", "0", "x", "zz", "min"]), numkeys);
    assert_eq!(
        s.command(&["bzmpop", "0", "1", "zz", "min", "count", "x"]),
        count
    );
    assert_eq!(s.command(&["lmpop", "x", "l", "left"]), numkeys);
    assert_eq!(s.command(&["lmpop", "1", "l", "left", "count", "x"]), count);
    assert_eq!(s.command(&["blmpop", "0", "x", "l", "left"]), numkeys);
    assert_eq!(
        s.command(&["blmpop", "0", "1", "l", "left", "count", "x"]),
        count
    );

    let not_int = e("ERR value is not an integer or out of range");
    let syntax = e("ERR syntax error");
    assert_eq!(
        s.command(&["zrandmember", "zz", "x", "withscores", "withscores"]),
        not_int
    );
    assert_eq!(s.command(&["zrandmember", "zz", "x", "bogus"]), not_int);
    assert_eq!(s.command(&["zrandmember", "nokey", "x", "bogus"]), not_int);
    assert_eq!(
        s.command(&["zrandmember", "zz", "1", "withscores", "withscores"]),
        syntax
    );
    assert_eq!(s.command(&["zrandmember", "k", "1", "bogus"]), syntax);

    let empty = arr(vec![b("0"), arr(vec![])]);
    assert_eq!(s.command(&["zscan", "nokey", "0", "count", "x"]), empty);
    assert_eq!(s.command(&["zscan", "nokey", "0", "count"]), empty);
    assert_eq!(s.command(&["zscan", "k", "0", "count", "x"]), e(WRONGTYPE));
    assert_eq!(s.command(&["zscan", "k", "0", "bogus"]), e(WRONGTYPE));
    assert_eq!(s.command(&["zscan", "k", "x"]), e("ERR invalid cursor"));
    let whole = arr(vec![b("0"), bulks(&["m", "1"])]);
    assert_eq!(s.command(&["zscan", "zz", ""]), whole);
    assert_eq!(s.command(&["zscan", "zz", "+0"]), whole);
    assert_eq!(s.command(&["zscan", "zz", "0", "count", "0"]), syntax);
}

fn block(s: &mut Session, args: &[&str]) -> cairn_resp::Pending {
    let args = args
        .iter()
        .map(|a| bytes::Bytes::copy_from_slice(a.as_bytes()))
        .collect();
    match s.execute(args) {
        cairn_resp::Outcome::Block(p) => p,
        cairn_resp::Outcome::Reply(f) | cairn_resp::Outcome::Close(f) => {
            panic!("expected to block, got {f:?}")
        }
        cairn_resp::Outcome::NoReply => panic!("expected to block, got no reply"),
    }
}

/// Resolves `p` if it is ready without waiting: with the tokio clock
/// paused, a zero timeout fires only after the future was polled once.
async fn ready_now(p: &mut cairn_resp::Pending) -> Option<Frame> {
    tokio::time::timeout(std::time::Duration::ZERO, p)
        .await
        .ok()
}

#[tokio::test(start_paused = true)]
async fn blocked_zset_pops_are_woken_by_every_zset_write() {
    let ks = Keyspace::new();
    let mut w = ks.session();
    let mut s = ks.session();
    let served = |k: &str, m: &str, sc: f64| arr(vec![b(k), b(m), d(sc)]);

    let mut p = block(&mut w, &["bzpopmin", "z1", "z2", "0"]);
    assert!(ready_now(&mut p).await.is_none());
    assert_eq!(s.command(&["zadd", "z2", "1.5", "m", "2.5", "n"]), i(2));
    assert_eq!(ready_now(&mut p).await, Some(served("z2", "m", 1.5)));
    assert_eq!(s.command(&["zrange", "z2", "0", "-1"]), bulks(&["n"]));

    let mut p = block(&mut w, &["bzmpop", "0", "1", "z3", "max", "count", "5"]);
    assert!(ready_now(&mut p).await.is_none());
    assert_eq!(s.command(&["zadd", "z3", "1.5", "m", "2.5", "n"]), i(2));
    assert_eq!(
        ready_now(&mut p).await,
        Some(arr(vec![b("z3"), pairs(&[("n", 2.5), ("m", 1.5)])]))
    );

    let mut p = block(&mut w, &["bzpopmax", "z4", "0"]);
    assert_eq!(s.command(&["zincrby", "z4", "3", "a"]), d(3.0));
    assert_eq!(ready_now(&mut p).await, Some(served("z4", "a", 3.0)));

    assert_eq!(s.command(&["zadd", "src", "1", "a", "2", "b"]), i(2));
    for (store, dst) in [
        (&["zunionstore", "d1", "1", "src"][..], "d1"),
        (&["zinterstore", "d2", "1", "src"], "d2"),
        (&["zdiffstore", "d3", "1", "src"], "d3"),
        (&["zrangestore", "d4", "src", "0", "0"], "d4"),
    ] {
        let mut p = block(&mut w, &["bzpopmin", dst, "0"]);
        assert!(ready_now(&mut p).await.is_none());
        assert!(!s.command(store).is_error(), "{store:?}");
        assert_eq!(
            ready_now(&mut p).await,
            Some(served(dst, "a", 1.0)),
            "{store:?}"
        );
    }
}
