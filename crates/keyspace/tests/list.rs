//! List commands and blocking pops through a `Session`, asserting exact
//! Redis 7.0 replies (checked against redis-server 7.0.15 with RESP2 and
//! RESP3 raw replies), and the blocked-client machinery: hand-off on push,
//! FIFO order, timeouts under a paused tokio clock, and cancel-safety.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use cairn_keyspace::{Keyspace, Session};
use cairn_resp::{Frame, Outcome, Pending};

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
fn ints(items: &[i64]) -> Frame {
    Frame::Array(items.iter().map(|&n| i(n)).collect())
}

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

#[test]
fn push_pop_and_null_forms() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(s.command(&["lpop", "nokey"]), Frame::Null);
    assert_eq!(s.command(&["lpop", "nokey", "2"]), Frame::NullArray);
    assert_eq!(s.command(&["lpop", "nokey", "0"]), Frame::NullArray);
    assert_eq!(s.command(&["rpush", "l", "a", "b", "c"]), i(3));
    assert_eq!(s.command(&["lpop", "l", "0"]), Frame::Array(vec![]));
    assert_eq!(
        s.command(&["lpop", "l", "-1"]),
        e("ERR value is out of range, must be positive")
    );
    assert_eq!(
        s.command(&["lpop", "l", "x"]),
        e("ERR value is out of range, must be positive")
    );
    assert_eq!(
        s.command(&["lpop", "nokey", "x"]),
        e("ERR value is out of range, must be positive")
    );
    assert_eq!(
        s.command(&["lpop", "l", "1", "2"]),
        e("ERR wrong number of arguments for 'lpop' command")
    );
    assert_eq!(s.command(&["lpop", "l", "1"]), arr(&["a"]));
    assert_eq!(s.command(&["rpop", "l", "5"]), arr(&["c", "b"]));
    assert_eq!(s.command(&["exists", "l"]), i(0));
    assert_eq!(s.command(&["lpop", "l"]), Frame::Null);
    assert_eq!(s.command(&["lpush", "l", "a", "b", "c"]), i(3));
    assert_eq!(
        s.command(&["lrange", "l", "0", "-1"]),
        arr(&["c", "b", "a"])
    );
    assert_eq!(s.command(&["rpop", "l"]), b("a"));
    assert_eq!(s.command(&["lpushx", "nokey", "a"]), i(0));
    assert_eq!(s.command(&["exists", "nokey"]), i(0));
    assert_eq!(s.command(&["rpushx", "l", "x", "y"]), i(4));
    assert_eq!(s.command(&["lpushx", "l", "z"]), i(5));
    assert_eq!(
        s.command(&["lrange", "l", "0", "-1"]),
        arr(&["z", "c", "b", "x", "y"])
    );
    assert_eq!(s.command(&["llen", "l"]), i(5));
    assert_eq!(s.command(&["llen", "nokey"]), i(0));
    assert_eq!(s.command(&["set", "s", "v"]), Frame::ok());
    for cmd in [
        &["lpush", "s", "a"][..],
        &["rpushx", "s", "a"],
        &["lpop", "s"],
        &["lpop", "s", "0"],
        &["llen", "s"],
        &["lrange", "s", "0", "1"],
        &["lindex", "s", "0"],
        &["lset", "s", "0", "x"],
        &["linsert", "s", "before", "a", "b"],
        &["lrem", "s", "0", "a"],
        &["ltrim", "s", "0", "1"],
        &["lpos", "s", "a"],
        &["rpoplpush", "s", "l"],
        &["rpoplpush", "l", "s"],
        &["lmpop", "2", "nokey", "s", "left"],
        &["blpop", "nokey", "s", "0"],
        &["bzpopmin", "s", "0"],
        &["bzmpop", "0", "2", "nokey", "s", "min"],
    ] {
        assert_eq!(s.command(cmd), e(WRONGTYPE), "{cmd:?}");
    }
    assert_eq!(s.command(&["get", "s"]), b("v"));
    assert_eq!(s.command(&["llen", "l"]), i(5));
}

#[test]
fn ranges_indices_and_edits() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(s.command(&["lrange", "nokey", "0", "-1"]), arr(&[]));
    assert_eq!(
        s.command(&["lrange", "nokey", "x", "1"]),
        e("ERR value is not an integer or out of range")
    );
    assert_eq!(s.command(&["rpush", "l", "a", "b", "c", "d"]), i(4));
    assert_eq!(s.command(&["lrange", "l", "1", "2"]), arr(&["b", "c"]));
    assert_eq!(
        s.command(&["lrange", "l", "-100", "100"]),
        arr(&["a", "b", "c", "d"])
    );
    assert_eq!(s.command(&["lrange", "l", "-2", "-3"]), arr(&[]));
    assert_eq!(
        s.command(&["lrange", "l", "-9223372036854775808", "9223372036854775807"]),
        arr(&["a", "b", "c", "d"])
    );
    assert_eq!(s.command(&["lindex", "l", "-1"]), b("d"));
    assert_eq!(s.command(&["lindex", "l", "4"]), Frame::Null);
    assert_eq!(
        s.command(&["lindex", "l", "-9223372036854775808"]),
        Frame::Null
    );
    assert_eq!(s.command(&["lindex", "nokey", "x"]), Frame::Null);
    assert_eq!(
        s.command(&["lindex", "l", "x"]),
        e("ERR value is not an integer or out of range")
    );
    assert_eq!(
        s.command(&["lset", "nokey", "0", "x"]),
        e("ERR no such key")
    );
    assert_eq!(
        s.command(&["lset", "nokey", "x", "x"]),
        e("ERR no such key")
    );
    assert_eq!(
        s.command(&["lset", "l", "x", "x"]),
        e("ERR value is not an integer or out of range")
    );
    assert_eq!(
        s.command(&["lset", "l", "4", "x"]),
        e("ERR index out of range")
    );
    assert_eq!(
        s.command(&["lset", "l", "-5", "x"]),
        e("ERR index out of range")
    );
    assert_eq!(s.command(&["lset", "l", "-1", "D"]), Frame::ok());
    assert_eq!(
        s.command(&["linsert", "l", "middle", "a", "x"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["linsert", "nokey", "middle", "a", "x"]),
        e("ERR syntax error")
    );
    assert_eq!(s.command(&["linsert", "nokey", "before", "a", "x"]), i(0));
    assert_eq!(s.command(&["linsert", "l", "before", "zz", "x"]), i(-1));
    assert_eq!(s.command(&["linsert", "l", "AFTER", "D", "E"]), i(5));
    assert_eq!(s.command(&["linsert", "l", "Before", "a", "0"]), i(6));
    assert_eq!(
        s.command(&["lrange", "l", "0", "-1"]),
        arr(&["0", "a", "b", "c", "D", "E"])
    );
    assert_eq!(
        s.command(&["ltrim", "l", "x", "1"]),
        e("ERR value is not an integer or out of range")
    );
    assert_eq!(s.command(&["ltrim", "l", "1", "-2"]), Frame::ok());
    assert_eq!(
        s.command(&["lrange", "l", "0", "-1"]),
        arr(&["a", "b", "c", "D"])
    );
    assert_eq!(s.command(&["ltrim", "nokey", "0", "1"]), Frame::ok());
    assert_eq!(s.command(&["ltrim", "l", "5", "1"]), Frame::ok());
    assert_eq!(s.command(&["exists", "l"]), i(0));
}

#[test]
fn lrem_counts_from_either_end() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(
        s.command(&["lrem", "nokey", "x", "a"]),
        e("ERR value is not an integer or out of range")
    );
    assert_eq!(s.command(&["lrem", "nokey", "0", "a"]), i(0));
    assert_eq!(
        s.command(&["rpush", "l", "a", "b", "a", "c", "a", "d", "a"]),
        i(7)
    );
    assert_eq!(s.command(&["lrem", "l", "2", "a"]), i(2));
    assert_eq!(
        s.command(&["lrange", "l", "0", "-1"]),
        arr(&["b", "c", "a", "d", "a"])
    );
    assert_eq!(s.command(&["lrem", "l", "-1", "a"]), i(1));
    assert_eq!(
        s.command(&["lrange", "l", "0", "-1"]),
        arr(&["b", "c", "a", "d"])
    );
    assert_eq!(s.command(&["rpush", "l", "a", "a"]), i(6));
    assert_eq!(s.command(&["lrem", "l", "-2", "a"]), i(2));
    assert_eq!(
        s.command(&["lrange", "l", "0", "-1"]),
        arr(&["b", "c", "a", "d"])
    );
    assert_eq!(s.command(&["lrem", "l", "-9223372036854775808", "a"]), i(1));
    assert_eq!(s.command(&["lrem", "l", "0", "zz"]), i(0));
    assert_eq!(s.command(&["lrem", "l", "0", "b"]), i(1));
    assert_eq!(s.command(&["lrem", "l", "0", "c"]), i(1));
    assert_eq!(s.command(&["lrem", "l", "1", "d"]), i(1));
    assert_eq!(s.command(&["exists", "l"]), i(0));
}

#[test]
fn lpos_options_and_errors() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(s.command(&["lpos", "nokey", "a"]), Frame::Null);
    assert_eq!(s.command(&["lpos", "nokey", "a", "count", "0"]), arr(&[]));
    assert_eq!(
        s.command(&["lpos", "nokey", "a", "count", "x"]),
        e("ERR COUNT can't be negative")
    );
    assert_eq!(
        s.command(&["rpush", "l", "a", "b", "c", "a", "b", "c"]),
        i(6)
    );
    let rank0 = "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list";
    assert_eq!(s.command(&["lpos", "l", "a", "rank", "0"]), e(rank0));
    assert_eq!(
        s.command(&["lpos", "l", "a", "count", "-1"]),
        e("ERR COUNT can't be negative")
    );
    assert_eq!(
        s.command(&["lpos", "l", "a", "maxlen", "-1"]),
        e("ERR MAXLEN can't be negative")
    );
    assert_eq!(
        s.command(&["lpos", "l", "a", "maxlen", "x"]),
        e("ERR MAXLEN can't be negative")
    );
    assert_eq!(
        s.command(&["lpos", "l", "a", "rank", "x"]),
        e("ERR value is not an integer or out of range")
    );
    assert_eq!(s.command(&["lpos", "l", "a", "foo"]), e("ERR syntax error"));
    assert_eq!(
        s.command(&["lpos", "l", "a", "rank"]),
        e("ERR syntax error")
    );
    assert_eq!(s.command(&["lpos", "l", "c"]), i(2));
    assert_eq!(s.command(&["lpos", "l", "c", "rank", "2"]), i(5));
    assert_eq!(s.command(&["lpos", "l", "c", "rank", "-1"]), i(5));
    assert_eq!(s.command(&["lpos", "l", "c", "rank", "3"]), Frame::Null);
    assert_eq!(
        s.command(&["lpos", "l", "a", "rank", "-1", "count", "0"]),
        ints(&[3, 0])
    );
    assert_eq!(
        s.command(&["lpos", "l", "a", "rank", "2", "count", "2", "maxlen", "0"]),
        ints(&[3])
    );
    assert_eq!(s.command(&["lpos", "l", "c", "maxlen", "2"]), Frame::Null);
    assert_eq!(
        s.command(&["lpos", "l", "c", "count", "5", "maxlen", "3"]),
        ints(&[2])
    );
    assert_eq!(
        s.command(&["lpos", "l", "b", "rank", "-2", "count", "1", "maxlen", "3"]),
        arr(&[])
    );
    assert_eq!(s.command(&["lpos", "l", "zz", "count", "1"]), arr(&[]));
    // Redis 7.0 negates i64::MIN without overflow checks: every match from
    // the tail, COUNT never reached.
    assert_eq!(
        s.command(&[
            "lpos",
            "l",
            "a",
            "rank",
            "-9223372036854775808",
            "count",
            "1"
        ]),
        ints(&[3, 0])
    );
}

#[test]
fn moves_and_lmpop() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(s.command(&["rpush", "l", "a", "b", "c"]), i(3));
    assert_eq!(
        s.command(&["lmove", "l", "l2", "middle", "left"]),
        e("ERR syntax error")
    );
    assert_eq!(s.command(&["rpoplpush", "nokey", "l"]), Frame::Null);
    assert_eq!(s.command(&["rpoplpush", "l", "l2"]), b("c"));
    assert_eq!(s.command(&["lmove", "l", "l2", "LEFT", "RIGHT"]), b("a"));
    assert_eq!(s.command(&["lrange", "l2", "0", "-1"]), arr(&["c", "a"]));
    assert_eq!(s.command(&["lmove", "l", "l2", "left", "left"]), b("b"));
    assert_eq!(s.command(&["exists", "l"]), i(0));
    // Rotation of a one-element list keeps the key.
    assert_eq!(s.command(&["rpush", "r", "x"]), i(1));
    assert_eq!(s.command(&["lmove", "r", "r", "left", "right"]), b("x"));
    assert_eq!(s.command(&["rpush", "r", "y"]), i(2));
    assert_eq!(s.command(&["rpoplpush", "r", "r"]), b("y"));
    assert_eq!(s.command(&["lrange", "r", "0", "-1"]), arr(&["y", "x"]));

    assert_eq!(
        s.command(&["lmpop", "0", "l", "left"]),
        e("ERR numkeys should be greater than 0")
    );
    assert_eq!(
        s.command(&["lmpop", "x", "l", "left"]),
        e("ERR numkeys should be greater than 0")
    );
    assert_eq!(
        s.command(&["lmpop", "2", "l", "left"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["lmpop", "9223372036854775807", "l", "left"]),
        e("ERR syntax error")
    );
    assert_eq!(s.command(&["lmpop", "1", "l", "up"]), e("ERR syntax error"));
    assert_eq!(
        s.command(&["lmpop", "1", "l", "left", "count", "0"]),
        e("ERR count should be greater than 0")
    );
    assert_eq!(
        s.command(&["lmpop", "1", "l", "left", "count", "x"]),
        e("ERR count should be greater than 0")
    );
    assert_eq!(
        s.command(&["lmpop", "1", "l", "left", "count", "1", "count", "2"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["lmpop", "1", "l", "left", "count"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["lmpop", "1", "nokey", "left"]),
        Frame::NullArray
    );
    let reply = |k: &str, items: &[&str]| Frame::Array(vec![b(k), arr(items)]);
    assert_eq!(
        s.command(&["lmpop", "2", "nokey", "l2", "right", "count", "2"]),
        reply("l2", &["a", "c"])
    );
    assert_eq!(
        s.command(&["lmpop", "2", "nokey", "l2", "left"]),
        reply("l2", &["b"])
    );
    assert_eq!(s.command(&["exists", "l2"]), i(0));
}

#[test]
fn blocking_argument_errors_and_immediate_replies() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    let notf = e("ERR timeout is not a float or out of range");
    let neg = e("ERR timeout is negative");
    assert_eq!(s.command(&["blpop", "k", "abc"]), notf);
    assert_eq!(s.command(&["blpop", "k", "nan"]), notf);
    assert_eq!(s.command(&["blpop", "k", "-1"]), neg);
    assert_eq!(s.command(&["brpop", "k", "inf"]), neg);
    assert_eq!(s.command(&["bzpopmin", "k", "x"]), notf);
    assert_eq!(s.command(&["bzpopmax", "k", "-1"]), neg);
    assert_eq!(
        s.command(&["blpop", "k"]),
        e("ERR wrong number of arguments for 'blpop' command")
    );
    assert_eq!(
        s.command(&["brpoplpush", "a", "b"]),
        e("ERR wrong number of arguments for 'brpoplpush' command")
    );
    assert_eq!(
        s.command(&["blmpop", "x", "0", "l", "left"]),
        e("ERR numkeys should be greater than 0")
    );
    assert_eq!(s.command(&["blmpop", "x", "1", "l", "left"]), notf);
    assert_eq!(
        s.command(&["blmpop", "0", "1", "l", "middle"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["blmpop", "0", "1", "l", "left", "count", "0"]),
        e("ERR count should be greater than 0")
    );
    assert_eq!(
        s.command(&["bzmpop", "0", "1", "l", "left"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["bzmpop", "0", "1", "l", "min", "count", "0"]),
        e("ERR count should be greater than 0")
    );
    assert_eq!(
        s.command(&["blmove", "a", "b", "middle", "left", "x"]),
        e("ERR syntax error")
    );
    assert_eq!(s.command(&["blmove", "a", "b", "left", "left", "x"]), notf);

    assert_eq!(s.command(&["rpush", "l", "a", "b", "c"]), i(3));
    assert_eq!(s.command(&["blpop", "nokey", "l", "0"]), arr(&["l", "a"]));
    assert_eq!(s.command(&["brpop", "l", "0"]), arr(&["l", "c"]));
    assert_eq!(s.command(&["set", "str", "v"]), Frame::ok());
    // The destination's type is checked only when something moves.
    assert_eq!(
        s.command(&["blmove", "l", "str", "left", "left", "0"]),
        e(WRONGTYPE)
    );
    assert_eq!(
        s.command(&["blmove", "l", "d", "left", "left", "0"]),
        b("b")
    );
    assert_eq!(s.command(&["brpoplpush", "d", "d", "0"]), b("b"));
    assert_eq!(s.command(&["rpush", "m", "1", "2", "3"]), i(3));
    let reply = Frame::Array(vec![b("m"), arr(&["3", "2"])]);
    assert_eq!(
        s.command(&["blmpop", "0", "2", "nokey", "m", "right", "count", "2"]),
        reply
    );
}

fn block(s: &mut Session, args: &[&str]) -> Pending {
    let args = args
        .iter()
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .collect();
    match s.execute(args) {
        Outcome::Block(p) => p,
        Outcome::Reply(f) | Outcome::Close(f) => panic!("expected to block, got {f:?}"),
        Outcome::NoReply => panic!("expected to block, got no reply"),
    }
}

/// Resolves `p` if it is ready without waiting: with the tokio clock
/// paused, a zero timeout fires only after the future was polled once.
async fn ready_now(p: &mut Pending) -> Option<Frame> {
    tokio::time::timeout(Duration::ZERO, p).await.ok()
}

#[tokio::test(start_paused = true)]
async fn blocked_client_is_served_by_a_push_before_the_push_replies() {
    let ks = Keyspace::new();
    let mut waiter = ks.session();
    let mut pusher = ks.session();
    let mut p = block(&mut waiter, &["blpop", "k1", "k2", "0"]);
    assert!(ready_now(&mut p).await.is_none());
    assert_eq!(pusher.command(&["rpush", "k2", "a"]), i(1));
    // Served inside the push: the element is already gone.
    assert_eq!(pusher.command(&["exists", "k2"]), i(0));
    assert_eq!(ready_now(&mut p).await, Some(arr(&["k2", "a"])));
    assert_eq!(pusher.command(&["rpush", "k1", "b"]), i(1));
    assert_eq!(pusher.command(&["lrange", "k1", "0", "-1"]), arr(&["b"]));
}

#[tokio::test(start_paused = true)]
async fn blocked_clients_are_served_first_come_first_served() {
    let ks = Keyspace::new();
    let mut first = ks.session();
    let mut second = ks.session();
    let mut third = ks.session();
    let mut pusher = ks.session();
    let mut p1 = block(&mut first, &["brpop", "k", "0"]);
    let mut p2 = block(&mut second, &["blpop", "other", "k", "0"]);
    let mut p3 = block(&mut third, &["blmpop", "0", "1", "k", "left", "count", "5"]);
    assert_eq!(pusher.command(&["rpush", "k", "a"]), i(1));
    assert_eq!(ready_now(&mut p1).await, Some(arr(&["k", "a"])));
    assert!(ready_now(&mut p2).await.is_none());
    assert!(ready_now(&mut p3).await.is_none());
    // One push of three elements feeds the next two in order; the last
    // takes what is left.
    assert_eq!(pusher.command(&["rpush", "k", "b", "c", "d"]), i(3));
    assert_eq!(ready_now(&mut p2).await, Some(arr(&["k", "b"])));
    assert_eq!(
        ready_now(&mut p3).await,
        Some(Frame::Array(vec![b("k"), arr(&["c", "d"])]))
    );
    assert_eq!(pusher.command(&["exists", "k"]), i(0));
}

#[tokio::test(start_paused = true)]
async fn timeout_returns_the_null_array_at_the_deadline() {
    let ks = Keyspace::new();
    let mut waiter = ks.session();
    let mut pusher = ks.session();
    let mut p = block(&mut waiter, &["blpop", "k", "1.5"]);
    let start = tokio::time::Instant::now();
    assert_eq!(
        tokio::time::timeout(Duration::from_millis(1499), &mut p)
            .await
            .ok(),
        None
    );
    assert_eq!(p.await, Frame::NullArray);
    assert_eq!(start.elapsed(), Duration::from_millis(1500));
    // Unregistered: a later push stays in the list.
    assert_eq!(pusher.command(&["rpush", "k", "a"]), i(1));
    assert_eq!(pusher.command(&["llen", "k"]), i(1));

    let p = block(&mut waiter, &["bzpopmin", "z", "0.01"]);
    assert_eq!(p.await, Frame::NullArray);
    let p = block(&mut waiter, &["brpoplpush", "nokey", "d", "0.01"]);
    assert_eq!(p.await, Frame::NullArray);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_wait_unregisters_the_client() {
    let ks = Keyspace::new();
    let mut gone = ks.session();
    let mut stays = ks.session();
    let mut pusher = ks.session();
    let p_gone = block(&mut gone, &["blpop", "k", "0"]);
    let mut p_stays = block(&mut stays, &["blpop", "k", "0"]);
    drop(p_gone);
    assert_eq!(pusher.command(&["rpush", "k", "a", "b"]), i(2));
    assert_eq!(ready_now(&mut p_stays).await, Some(arr(&["k", "a"])));
    assert_eq!(pusher.command(&["lrange", "k", "0", "-1"]), arr(&["b"]));
    // Nobody waits any more: nothing is lost.
    let p = block(&mut gone, &["blpop", "k2", "0"]);
    drop(p);
    assert_eq!(pusher.command(&["rpush", "k2", "x"]), i(1));
    assert_eq!(pusher.command(&["llen", "k2"]), i(1));
}

#[tokio::test(start_paused = true)]
async fn blmove_feeds_clients_blocked_on_its_destination() {
    let ks = Keyspace::new();
    let mut mover = ks.session();
    let mut popper = ks.session();
    let mut pusher = ks.session();
    let mut p_pop = block(&mut popper, &["blpop", "dst", "0"]);
    let mut p_move = block(&mut mover, &["blmove", "src", "dst", "right", "left", "0"]);
    assert_eq!(pusher.command(&["rpush", "src", "a", "b"]), i(2));
    assert_eq!(ready_now(&mut p_move).await, Some(b("b")));
    assert_eq!(ready_now(&mut p_pop).await, Some(arr(&["dst", "b"])));
    assert_eq!(pusher.command(&["lrange", "src", "0", "-1"]), arr(&["a"]));
    assert_eq!(pusher.command(&["exists", "dst"]), i(0));

    // A destination of the wrong type unblocks with the error and leaves
    // the source alone.
    assert_eq!(pusher.command(&["set", "str", "v"]), Frame::ok());
    let mut p = block(&mut mover, &["brpoplpush", "src2", "str", "0"]);
    assert_eq!(pusher.command(&["rpush", "src2", "x"]), i(1));
    assert_eq!(ready_now(&mut p).await, Some(e(WRONGTYPE)));
    assert_eq!(pusher.command(&["llen", "src2"]), i(1));
}

#[tokio::test(start_paused = true)]
async fn serving_stops_when_the_list_runs_dry_and_resumes_on_the_next_push() {
    let ks = Keyspace::new();
    let mut a = ks.session();
    let mut c = ks.session();
    let mut pusher = ks.session();
    let mut pa = block(&mut a, &["blpop", "k", "0"]);
    let mut pc = block(&mut c, &["blpop", "k", "0"]);
    // LINSERT on a missing key does nothing; LPUSHX neither.
    assert_eq!(pusher.command(&["lpushx", "k", "x"]), i(0));
    assert!(ready_now(&mut pa).await.is_none());
    assert_eq!(pusher.command(&["lpush", "k", "1"]), i(1));
    assert_eq!(ready_now(&mut pa).await, Some(arr(&["k", "1"])));
    assert!(ready_now(&mut pc).await.is_none());
    assert_eq!(pusher.command(&["rpush", "k", "2"]), i(1));
    assert_eq!(ready_now(&mut pc).await, Some(arr(&["k", "2"])));
}

#[tokio::test(start_paused = true)]
async fn blocking_on_the_same_key_twice_counts_once() {
    let ks = Keyspace::new();
    let mut w = ks.session();
    let mut pusher = ks.session();
    let mut p = block(&mut w, &["blpop", "k", "k", "0"]);
    assert_eq!(pusher.command(&["rpush", "k", "a", "b"]), i(2));
    assert_eq!(ready_now(&mut p).await, Some(arr(&["k", "a"])));
    assert_eq!(pusher.command(&["llen", "k"]), i(1));
}

#[test]
fn blocked_clients_are_per_database() {
    let ks = Keyspace::new();
    let mut w = ks.session();
    let mut pusher = ks.session();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut p = block(&mut w, &["blpop", "k", "0"]);
        assert_eq!(pusher.command(&["select", "1"]), Frame::ok());
        assert_eq!(pusher.command(&["rpush", "k", "a"]), i(1));
        assert!(ready_now(&mut p).await.is_none());
        assert_eq!(pusher.command(&["select", "0"]), Frame::ok());
        assert_eq!(pusher.command(&["rpush", "k", "b"]), i(1));
        assert_eq!(ready_now(&mut p).await, Some(arr(&["k", "b"])));
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pushers_and_blockers_lose_nothing() {
    let ks = Keyspace::new();
    const N: usize = 200;
    let mut waits = Vec::new();
    for _ in 0..N {
        let mut s = ks.session();
        waits.push(tokio::spawn(block(&mut s, &["blpop", "q", "0"])));
    }
    let pushers: Vec<_> = (0..4)
        .map(|t| {
            let ks = ks.clone();
            tokio::task::spawn_blocking(move || {
                let mut s = ks.session();
                for n in 0..N / 4 {
                    s.command(&["rpush", "q", &format!("{t}-{n}")]);
                }
            })
        })
        .collect();
    for p in pushers {
        p.await.unwrap();
    }
    let mut got = Vec::new();
    for w in waits {
        match w.await.unwrap() {
            Frame::Array(v) => got.push(v[1].clone()),
            other => panic!("unexpected {other:?}"),
        }
    }
    got.sort_by_key(|f| format!("{f:?}"));
    got.dedup();
    assert_eq!(got.len(), N);
    assert_eq!(ks.session().command(&["exists", "q"]), i(0));
}

fn zset(members: &[(&str, f64)]) -> cairn_keyspace::Value {
    let mut z = cairn_keyspace::SortedSet::new();
    for (m, s) in members {
        z.insert(Bytes::copy_from_slice(m.as_bytes()), *s);
    }
    cairn_keyspace::Value::ZSet(std::sync::Arc::new(z))
}

fn load(ks: &Keyspace, key: &str, value: cairn_keyspace::Value) {
    let entry = cairn_keyspace::LoadEntry {
        db: 0,
        key: cairn_keyspace::Key::new(key.as_bytes()),
        expires_at_ms: None,
        value,
    };
    assert_eq!(ks.load_entries([entry]).loaded, 1);
}

#[test]
fn sorted_set_pops_without_blocking() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    load(
        &ks,
        "z",
        zset(&[("a", 1.0), ("b", 2.5), ("c", 3.0), ("d", 3.0)]),
    );
    let d = Frame::Double;
    assert_eq!(
        s.command(&["bzpopmin", "nokey", "z", "0"]),
        Frame::Array(vec![b("z"), b("a"), d(1.0)])
    );
    assert_eq!(
        s.command(&["bzpopmax", "z", "0"]),
        Frame::Array(vec![b("z"), b("d"), d(3.0)])
    );
    let pair = |m: &str, sc: f64| Frame::Array(vec![b(m), d(sc)]);
    assert_eq!(
        s.command(&["bzmpop", "0", "2", "nokey", "z", "max", "count", "5"]),
        Frame::Array(vec![
            b("z"),
            Frame::Array(vec![pair("c", 3.0), pair("b", 2.5)])
        ])
    );
    assert_eq!(s.command(&["exists", "z"]), i(0));
    assert_eq!(s.command(&["rpush", "l", "x"]), i(1));
    assert_eq!(s.command(&["bzpopmin", "l", "0"]), e(WRONGTYPE));
}

#[tokio::test(start_paused = true)]
async fn sorted_set_waiters_are_served_by_zset_writes_and_list_waiters_skipped() {
    let ks = Keyspace::new();
    let mut list_waiter = ks.session();
    let mut zset_waiter = ks.session();
    let mut multi_waiter = ks.session();
    let mut pl = block(&mut list_waiter, &["blpop", "z", "0"]);
    let mut pz = block(&mut zset_waiter, &["bzpopmax", "z", "0"]);
    let mut pm = block(
        &mut multi_waiter,
        &["bzmpop", "0", "1", "z", "min", "count", "10"],
    );
    // Loading a key counts as making it ready, like any write.
    load(&ks, "z", zset(&[("a", 1.0), ("b", 2.0), ("c", 3.0)]));
    assert_eq!(
        ready_now(&mut pz).await,
        Some(Frame::Array(vec![b("z"), b("c"), Frame::Double(3.0)]))
    );
    let pair = |m: &str, sc: f64| Frame::Array(vec![b(m), Frame::Double(sc)]);
    assert_eq!(
        ready_now(&mut pm).await,
        Some(Frame::Array(vec![
            b("z"),
            Frame::Array(vec![pair("a", 1.0), pair("b", 2.0)])
        ]))
    );
    assert!(ready_now(&mut pl).await.is_none());
    let mut s = ks.session();
    assert_eq!(s.command(&["exists", "z"]), i(0));
    assert_eq!(s.command(&["rpush", "z", "x"]), i(1));
    assert_eq!(ready_now(&mut pl).await, Some(arr(&["z", "x"])));
}
