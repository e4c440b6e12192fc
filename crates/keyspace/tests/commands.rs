//! Strings, keys, connection and server commands through a `Session`,
//! asserting exact Redis 7.0 replies (checked against redis-server 7.0.15).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use cairn_keyspace::{Keyspace, ManualClock};
use cairn_resp::{Frame, Protocol};

fn e(s: &str) -> Frame {
    Frame::error(s)
}
fn b(s: &str) -> Frame {
    Frame::bulk(s)
}
fn i(n: i64) -> Frame {
    Frame::Integer(n)
}

fn clocked() -> (Keyspace, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    (Keyspace::builder().clock(clock.clone()).build(), clock)
}

#[test]
fn dispatch_errors() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(
        s.command(&["GeT"]),
        e("ERR wrong number of arguments for 'get' command")
    );
    assert_eq!(
        s.command(&["foo", "a", "b"]),
        e("ERR unknown command 'foo', with args beginning with: 'a' 'b' ")
    );
    assert_eq!(
        s.command(&["foo"]),
        e("ERR unknown command 'foo', with args beginning with: ")
    );
    assert_eq!(s.command(&["ping"]), Frame::simple("PONG"));
    assert_eq!(s.command(&["PING", "x"]), b("x"));
    assert_eq!(s.command(&["echo", "hi"]), b("hi"));
}

#[test]
fn set_options_and_errors() {
    let (ks, clock) = clocked();
    let mut s = ks.session();
    assert_eq!(
        s.command(&["set", "a", "b", "ex", "0"]),
        e("ERR invalid expire time in 'set' command")
    );
    assert_eq!(
        s.command(&["set", "a", "b", "ex", "abc"]),
        e("ERR value is not an integer or out of range")
    );
    assert_eq!(
        s.command(&["set", "a", "b", "nx", "xx"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["set", "a", "b", "ex", "10", "px", "10"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["set", "a", "b", "keepttl", "ex", "10"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["set", "a", "b", "bogus"]),
        e("ERR syntax error")
    );
    assert_eq!(s.command(&["set", "a", "1", "nx"]), Frame::ok());
    assert_eq!(s.command(&["set", "a", "2", "nx"]), Frame::Null);
    assert_eq!(s.command(&["set", "a", "3", "nx", "get"]), b("1"));
    assert_eq!(s.command(&["set", "zz", "3", "xx"]), Frame::Null);
    assert_eq!(s.command(&["set", "a", "4", "xx", "get"]), b("1"));
    assert_eq!(s.command(&["set", "a", "5", "ex", "100"]), Frame::ok());
    assert_eq!(s.command(&["ttl", "a"]), i(100));
    assert_eq!(s.command(&["set", "a", "6", "keepttl"]), Frame::ok());
    assert_eq!(s.command(&["pttl", "a"]), i(100_000));
    assert_eq!(s.command(&["set", "a", "7"]), Frame::ok());
    assert_eq!(s.command(&["ttl", "a"]), i(-1));
    let at = (clock_now(&clock) + 5_000).to_string();
    assert_eq!(s.command(&["set", "a", "8", "pxat", &at]), Frame::ok());
    assert_eq!(
        s.command(&["pexpiretime", "a"]),
        Frame::Integer(at.parse().unwrap())
    );
    clock.advance(5_000);
    assert_eq!(s.command(&["get", "a"]), Frame::Null);
    assert_eq!(s.command(&["get", "missing"]), Frame::Null);
}

fn clock_now(c: &ManualClock) -> i64 {
    use cairn_keyspace::Clock;
    c.now_ms()
}

#[test]
fn integers() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(s.command(&["incr", "n"]), i(1));
    assert_eq!(s.command(&["incrby", "n", "41"]), i(42));
    assert_eq!(s.command(&["decrby", "n", "2"]), i(40));
    assert_eq!(s.command(&["decr", "n"]), i(39));
    assert_eq!(s.command(&["get", "n"]), b("39"));
    assert_eq!(s.command(&["append", "n", "0"]), i(3));
    assert_eq!(s.command(&["incr", "n"]), i(391));
    s.command(&["set", "big", "9223372036854775807"]);
    assert_eq!(
        s.command(&["incr", "big"]),
        e("ERR increment or decrement would overflow")
    );
    s.command(&["set", "s", "abc"]);
    assert_eq!(
        s.command(&["incr", "s"]),
        e("ERR value is not an integer or out of range")
    );
    s.command(&["set", "z", "007"]);
    assert_eq!(
        s.command(&["incr", "z"]),
        e("ERR value is not an integer or out of range")
    );
    assert_eq!(s.command(&["get", "z"]), b("007"));
    assert_eq!(
        s.command(&["incrby", "n", "x"]),
        e("ERR value is not an integer or out of range")
    );
    assert_eq!(s.command(&["incrbyfloat", "f", "10.5"]), b("10.5"));
    assert_eq!(s.command(&["incrbyfloat", "f", "0.1"]), b("10.6"));
    assert_eq!(s.command(&["incrbyfloat", "f", "-5.6"]), b("5"));
    assert_eq!(
        s.command(&["incrbyfloat", "s", "1"]),
        e("ERR value is not a valid float")
    );
}

#[test]
fn string_commands() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(s.command(&["append", "k", "Hello"]), i(5));
    assert_eq!(s.command(&["append", "k", " World"]), i(11));
    assert_eq!(s.command(&["strlen", "k"]), i(11));
    assert_eq!(s.command(&["getrange", "k", "0", "4"]), b("Hello"));
    assert_eq!(s.command(&["getrange", "k", "-5", "-1"]), b("World"));
    assert_eq!(s.command(&["getrange", "k", "5", "2"]), b(""));
    assert_eq!(s.command(&["setrange", "k", "6", "Redis"]), i(11));
    assert_eq!(s.command(&["get", "k"]), b("Hello Redis"));
    assert_eq!(s.command(&["setrange", "pad", "3", "x"]), i(4));
    assert_eq!(s.command(&["get", "pad"]), Frame::bulk(b"\0\0\0x"));
    assert_eq!(s.command(&["mset", "a", "1", "b", "2"]), Frame::ok());
    assert_eq!(
        s.command(&["mset", "a", "1", "b"]),
        e("ERR wrong number of arguments for 'mset' command")
    );
    assert_eq!(
        s.command(&["mget", "a", "nope", "b"]),
        Frame::Array(vec![b("1"), Frame::Null, b("2")])
    );
    assert_eq!(s.command(&["msetnx", "a", "9", "c", "3"]), i(0));
    assert_eq!(s.command(&["msetnx", "c", "3", "d", "4"]), i(1));
    assert_eq!(s.command(&["getset", "a", "x"]), b("1"));
    assert_eq!(s.command(&["getdel", "a"]), b("x"));
    assert_eq!(s.command(&["exists", "a"]), i(0));
    assert_eq!(s.command(&["setnx", "a", "1"]), i(1));
    assert_eq!(s.command(&["setnx", "a", "2"]), i(0));
    assert_eq!(
        s.command(&["setex", "a", "0", "v"]),
        e("ERR invalid expire time in 'setex' command")
    );
    assert_eq!(s.command(&["setex", "a", "10", "v"]), Frame::ok());
    assert_eq!(s.command(&["getex", "a", "persist"]), b("v"));
    assert_eq!(s.command(&["ttl", "a"]), i(-1));
    assert_eq!(s.command(&["getex", "a", "px", "5000"]), b("v"));
    assert_eq!(s.command(&["ttl", "a"]), i(5));
    assert_eq!(
        s.command(&["getex", "a", "ex", "1", "persist"]),
        e("ERR syntax error")
    );
}

#[test]
fn keys_and_expire() {
    let (ks, clock) = clocked();
    let mut s = ks.session();
    s.command(&["mset", "a", "1", "b", "2", "c", "3"]);
    assert_eq!(s.command(&["exists", "a", "a", "x"]), i(2));
    assert_eq!(s.command(&["del", "a", "b", "x"]), i(2));
    assert_eq!(
        s.command(&["expire", "c", "10", "nx", "xx"]),
        e("ERR NX and XX, GT or LT options at the same time are not compatible")
    );
    assert_eq!(
        s.command(&["expire", "c", "10", "gt", "lt"]),
        e("ERR GT and LT options at the same time are not compatible")
    );
    assert_eq!(
        s.command(&["expire", "c", "10", "foo"]),
        e("ERR Unsupported option foo")
    );
    assert_eq!(
        s.command(&["expire", "c", "abc"]),
        e("ERR value is not an integer or out of range")
    );
    assert_eq!(s.command(&["expire", "c", "10", "xx"]), i(0));
    assert_eq!(s.command(&["expire", "c", "10", "gt"]), i(0));
    assert_eq!(s.command(&["expire", "c", "10", "lt"]), i(1));
    assert_eq!(s.command(&["expire", "c", "20", "nx"]), i(0));
    assert_eq!(s.command(&["expire", "c", "20", "gt"]), i(1));
    assert_eq!(s.command(&["expire", "c", "5", "gt"]), i(0));
    assert_eq!(s.command(&["ttl", "c"]), i(20));
    assert_eq!(
        s.command(&["expire", "c", "9223372036854775807"]),
        e("ERR invalid expire time in 'expire' command")
    );
    assert_eq!(s.command(&["persist", "c"]), i(1));
    assert_eq!(s.command(&["persist", "c"]), i(0));
    assert_eq!(s.command(&["ttl", "nope"]), i(-2));
    assert_eq!(s.command(&["pexpire", "c", "1500"]), i(1));
    assert_eq!(s.command(&["ttl", "c"]), i(2));
    clock.advance(1499);
    assert_eq!(s.command(&["pttl", "c"]), i(1));
    clock.advance(1);
    assert_eq!(s.command(&["exists", "c"]), i(0));
    assert_eq!(ks.expired_keys(), 1);
    s.command(&["set", "c", "1"]);
    assert_eq!(s.command(&["expireat", "c", "1"]), i(1));
    assert_eq!(s.command(&["exists", "c"]), i(0));
    assert_eq!(s.command(&["type", "c"]), Frame::simple("none"));
    s.command(&["set", "c", "1"]);
    assert_eq!(s.command(&["type", "c"]), Frame::simple("string"));
    assert_eq!(s.command(&["rename", "nope", "x"]), e("ERR no such key"));
    s.command(&["expire", "c", "100"]);
    assert_eq!(s.command(&["rename", "c", "d"]), Frame::ok());
    assert_eq!(s.command(&["ttl", "d"]), i(100));
    s.command(&["set", "e", "1"]);
    assert_eq!(s.command(&["renamenx", "d", "e"]), i(0));
    assert_eq!(s.command(&["renamenx", "d", "f"]), i(1));
    assert_eq!(s.command(&["move", "f", "1"]), i(1));
    assert_eq!(
        s.command(&["move", "f", "99"]),
        e("ERR DB index is out of range")
    );
    assert_eq!(s.command(&["select", "1"]), Frame::ok());
    assert_eq!(s.command(&["get", "f"]), b("1"));
    assert_eq!(
        s.command(&["select", "99"]),
        e("ERR DB index is out of range")
    );
}

#[test]
fn keys_scan_randomkey() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    for n in 0..500 {
        s.command(&["set", &format!("user:{n}"), "x"]);
    }
    s.command(&["set", "other", "y"]);
    let Frame::Array(all) = s.command(&["keys", "user:*"]) else {
        panic!()
    };
    assert_eq!(all.len(), 500);
    let Frame::Array(one) = s.command(&["keys", "user:1?"]) else {
        panic!()
    };
    assert_eq!(one.len(), 10);
    // SCAN: every key exactly once, even while keys are added.
    let mut seen = std::collections::HashSet::new();
    let mut cursor = "0".to_string();
    let mut extra = 0;
    loop {
        let Frame::Array(parts) = s.command(&["scan", &cursor, "count", "7"]) else {
            panic!()
        };
        let [Frame::Bulk(c), Frame::Array(keys)] = &parts[..] else {
            panic!()
        };
        for k in keys {
            let Frame::Bulk(k) = k else { panic!() };
            assert!(seen.insert(k.clone()), "duplicate {k:?}");
        }
        s.command(&["set", &format!("added:{extra}"), "z"]);
        extra += 1;
        cursor = String::from_utf8(c.to_vec()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    for n in 0..500 {
        assert!(seen.contains(format!("user:{n}").as_bytes()));
    }
    assert!(seen.contains(&b"other"[..]));
    let Frame::Array(parts) = s.command(&["scan", "0", "match", "oth*", "count", "100000"]) else {
        panic!()
    };
    assert_eq!(parts[1], Frame::Array(vec![b("other")]));
    let Frame::Array(parts) = s.command(&["scan", "0", "type", "hash", "count", "100000"]) else {
        panic!()
    };
    assert_eq!(parts[1], Frame::Array(vec![]));
    assert_eq!(s.command(&["scan", "x"]), e("ERR invalid cursor"));
    assert_eq!(
        s.command(&["scan", "0", "count", "0"]),
        e("ERR syntax error")
    );
    assert!(matches!(s.command(&["randomkey"]), Frame::Bulk(_)));
    s.command(&["flushdb"]);
    assert_eq!(s.command(&["randomkey"]), Frame::Null);
    assert_eq!(s.command(&["dbsize"]), i(0));
}

#[test]
fn connection_and_server() {
    let ks = Keyspace::builder().requirepass(Some("secret")).build();
    let mut s = ks.session();
    assert_eq!(
        s.command(&["get", "a"]),
        e("NOAUTH Authentication required.")
    );
    assert_eq!(
        s.command(&["auth", "bad"]),
        e("WRONGPASS invalid username-password pair or user is disabled.")
    );
    assert_eq!(s.command(&["auth", "secret"]), Frame::ok());
    assert_eq!(s.command(&["get", "a"]), Frame::Null);
    assert_eq!(
        s.command(&["hello", "4"]),
        e("NOPROTO unsupported protocol version")
    );
    let Frame::Map(m) = s.command(&["hello", "3", "setname", "me"]) else {
        panic!()
    };
    assert_eq!(m[0], (b("server"), b("redis")));
    assert_eq!(m[2], (b("proto"), i(3)));
    assert_eq!(s.state().protocol, Protocol::Resp3);
    assert_eq!(s.command(&["client", "getname"]), b("me"));
    assert_eq!(s.command(&["client", "id"]), i(s.state().id as i64));
    let Frame::Map(cfg) = s.command(&["config", "get", "max*"]) else {
        panic!()
    };
    assert!(cfg.contains(&(b("maxmemory"), b("0"))));
    let Frame::Map(cfg) = s.command(&["config", "get", "save", "appendonly", "databases"]) else {
        panic!()
    };
    assert_eq!(cfg.len(), 3);
    s.command(&["set", "k", "v"]);
    s.command(&["set", "t", "v", "ex", "100"]);
    let Frame::Verbatim { text, .. } = s.command(&["info"]) else {
        panic!()
    };
    let text = String::from_utf8(text.to_vec()).unwrap();
    assert!(text.contains("redis_version:7.0.15\r\n"), "{text}");
    assert!(text.contains("connected_clients:1\r\n"));
    assert!(text.contains("db0:keys=2,expires=1,avg_ttl="), "{text}");
    let Frame::Integer(n) = s.command(&["command", "count"]) else {
        panic!()
    };
    let Frame::Array(all) = s.command(&["command"]) else {
        panic!()
    };
    assert_eq!(all.len() as i64, n);
    let Frame::Array(info) = s.command(&["command", "info", "get", "nosuch"]) else {
        panic!()
    };
    assert_eq!(info[1], Frame::NullArray);
    let Frame::Array(get) = &info[0] else {
        panic!()
    };
    assert_eq!(&get[..2], &[b("get"), i(2)]);
    assert_eq!(s.command(&["select", "3"]), Frame::ok());
    s.command(&["set", "k3", "v"]);
    assert_eq!(s.command(&["swapdb", "0", "3"]), Frame::ok());
    assert_eq!(s.command(&["get", "k3"]), Frame::Null);
    assert_eq!(s.command(&["get", "k"]), b("v"));
    assert_eq!(s.command(&["flushall"]), Frame::ok());
    assert_eq!(ks.dbsize(0) + ks.dbsize(3), 0);
    assert!(matches!(s.command(&["time"]), Frame::Array(v) if v.len() == 2));
    assert_eq!(s.command(&["quit"]), Frame::ok());
}

#[test]
fn wrongtype_and_lazy_expire_with_active_cycle() {
    let (ks, clock) = clocked();
    let mut s = ks.session();
    for n in 0..1000 {
        s.command(&["set", &format!("k{n}"), "v", "px", "100"]);
    }
    for n in 0..100 {
        s.command(&["set", &format!("p{n}"), "v"]);
    }
    clock.advance(100);
    let mut total = 0;
    for _ in 0..1000 {
        let st = ks.active_expire_cycle(Duration::from_millis(25));
        total += st.expired;
        if ks.dbsize(0) == 100 {
            break;
        }
    }
    assert_eq!(total, 1000);
    assert_eq!(ks.dbsize(0), 100);
    let Frame::Verbatim { text, .. } = s.command(&["info", "keyspace"]) else {
        panic!()
    };
    assert!(String::from_utf8_lossy(&text).contains("db0:keys=100,expires=0,avg_ttl=0"));
}

/// The TTL sample index survives persist / re-expire / delete / overwrite
/// churn: INFO's `expires` stays exact and the active cycle still finds
/// every expired key.
#[test]
fn ttl_index_churn() {
    let (ks, clock) = clocked();
    let mut s = ks.session();
    for round in 0..5 {
        for n in 0..300 {
            let k = format!("k{n}");
            s.command(&["set", &k, "v", "px", "1000"]);
            match (n + round) % 4 {
                0 => assert_eq!(s.command(&["persist", &k]), i(1)),
                1 => assert_eq!(s.command(&["del", &k]), i(1)),
                2 => assert_eq!(s.command(&["set", &k, "w"]), Frame::ok()),
                _ => assert_eq!(s.command(&["pexpire", &k, "50"]), i(1)),
            }
        }
    }
    // Round 4: n%4==0 persisted, 1 deleted, 2 overwritten (no TTL), 3 expiring.
    let Frame::Verbatim { text, .. } = s.command(&["info", "keyspace"]) else {
        panic!()
    };
    let text = String::from_utf8_lossy(&text).into_owned();
    assert!(text.contains("db0:keys=225,expires=75,"), "{text}");
    clock.advance(50);
    let mut expired = 0;
    for _ in 0..10_000 {
        expired += ks.active_expire_cycle(Duration::from_millis(25)).expired;
        if expired == 75 {
            break;
        }
    }
    assert_eq!(expired, 75);
    assert_eq!(ks.dbsize(0), 150);
}

/// Redis 7.0's `parseExtendedStringArgumentsOrReply` order: the syntax of
/// every option first (an option may repeat, the last amount winning),
/// then SET's expire amount before GET's type check, while GETEX looks
/// at the key before the amount.
#[test]
fn set_and_getex_check_syntax_before_numbers() {
    let (ks, clock) = clocked();
    let mut s = ks.session();
    let now = clock_now(&clock);
    let syntax = e("ERR syntax error");
    let not_int = e("ERR value is not an integer or out of range");
    let wrongtype = e("WRONGTYPE Operation against a key holding the wrong kind of value");
    assert_eq!(
        s.command(&["set", "k", "v", "ex", "10", "ex", "20"]),
        Frame::ok()
    );
    assert_eq!(s.command(&["pttl", "k"]), i(20_000));
    assert_eq!(
        s.command(&["set", "k", "v", "keepttl", "keepttl"]),
        Frame::ok()
    );
    assert_eq!(s.command(&["pttl", "k"]), i(20_000));
    assert_eq!(
        s.command(&["set", "k", "v", "ex", "keepttl", "ex", "100"]),
        Frame::ok()
    );
    assert_eq!(s.command(&["pttl", "k"]), i(100_000));
    assert_eq!(
        s.command(&["set", "k", "v", "ex", "get", "ex", "100"]),
        Frame::ok()
    );
    assert_eq!(
        s.command(&["set", "k", "v", "px", "-5", "px", "1000"]),
        Frame::ok()
    );
    assert_eq!(s.command(&["pttl", "k"]), i(1000));
    assert_eq!(s.command(&["set", "k", "v", "ex", "abc", "bogus"]), syntax);
    assert_eq!(
        s.command(&["set", "k", "v", "ex", "9223372036854775807", "bogus"]),
        syntax
    );
    assert_eq!(
        s.command(&["set", "k", "v", "ex", "10", "px", "10"]),
        syntax
    );
    assert_eq!(s.command(&["set", "k", "v", "keepttl", "ex", "10"]), syntax);
    assert_eq!(s.command(&["set", "k", "v", "ex", "10", "keepttl"]), syntax);
    assert_eq!(s.command(&["set", "k", "v", "nx", "xx"]), syntax);
    assert_eq!(s.command(&["set", "k", "v", "persist"]), syntax);
    assert_eq!(s.command(&["set", "k", "v", "nx", "nx"]), Frame::Null);
    assert_eq!(s.command(&["set", "k", "w", "get", "get"]), b("v"));
    assert_eq!(s.command(&["rpush", "l", "x"]), i(1));
    assert_eq!(
        s.command(&["set", "l", "v", "get", "ex", "10", "ex", "20"]),
        wrongtype
    );
    // SET reads the amount before GET's type check.
    assert_eq!(s.command(&["set", "l", "v", "get", "ex", "abc"]), not_int);
    assert_eq!(
        s.command(&["set", "l", "v", "get", "ex", "0"]),
        e("ERR invalid expire time in 'set' command")
    );
    // GETEX: a missing key or another type is found before the amount.
    assert_eq!(s.command(&["getex", "nokey", "ex", "abc"]), Frame::Null);
    assert_eq!(s.command(&["getex", "nokey", "ex", "0"]), Frame::Null);
    assert_eq!(s.command(&["getex", "l", "ex", "abc"]), wrongtype);
    assert_eq!(s.command(&["getex", "k", "pxat", "x", "bogus"]), syntax);
    assert_eq!(s.command(&["getex", "k", "pxat", "-3", "nx"]), syntax);
    assert_eq!(s.command(&["getex", "k", "ex", "10", "persist"]), syntax);
    assert_eq!(s.command(&["getex", "k", "keepttl"]), syntax);
    assert_eq!(s.command(&["getex", "k", "ex", "abc"]), not_int);
    assert_eq!(
        s.command(&["getex", "k", "ex", "0"]),
        e("ERR invalid expire time in 'getex' command")
    );
    assert_eq!(s.command(&["getex", "k", "ex", "10", "ex", "20"]), b("w"));
    assert_eq!(s.command(&["pttl", "k"]), i(20_000));
    assert_eq!(s.command(&["getex", "k", "persist", "persist"]), b("w"));
    assert_eq!(s.command(&["pttl", "k"]), i(-1));
    let at = (now + 5000).to_string();
    assert_eq!(s.command(&["getex", "k", "pxat", "1", "pxat", &at]), b("w"));
    assert_eq!(s.command(&["pttl", "k"]), i(5000));
}

/// Redis 7.0's SET stores a key whose EXAT/PXAT is already past: DBSIZE
/// counts it until it is next touched.
#[test]
fn set_with_a_past_time_keeps_the_key_until_touched() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(s.command(&["set", "a", "v", "pxat", "1"]), Frame::ok());
    assert_eq!(s.command(&["dbsize"]), i(1));
    assert_eq!(s.command(&["exists", "a"]), i(0));
    assert_eq!(s.command(&["dbsize"]), i(0));
}

/// INCRBYFLOAT checks the key's type, then its value, then the increment,
/// and an infinity fails only once added (as Redis' `incrbyfloatCommand`).
#[test]
fn incrbyfloat_order_of_checks_and_wide_values() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    let wrongtype = e("WRONGTYPE Operation against a key holding the wrong kind of value");
    let not_float = e("ERR value is not a valid float");
    let nan_inf = e("ERR increment would produce NaN or Infinity");
    assert_eq!(s.command(&["rpush", "l", "x"]), i(1));
    assert_eq!(s.command(&["incrbyfloat", "l", "abc"]), wrongtype);
    assert_eq!(s.command(&["incrbyfloat", "l", "inf"]), wrongtype);
    assert_eq!(s.command(&["set", "notnum", "abc"]), Frame::simple("OK"));
    assert_eq!(s.command(&["incrbyfloat", "notnum", "+inf"]), not_float);
    assert_eq!(s.command(&["set", "i", "inf"]), Frame::simple("OK"));
    assert_eq!(s.command(&["incrbyfloat", "i", "abc"]), not_float);
    assert_eq!(s.command(&["incrbyfloat", "i", "1"]), nan_inf);
    assert_eq!(s.command(&["set", "n", "5"]), Frame::simple("OK"));
    assert_eq!(s.command(&["incrbyfloat", "n", "inf"]), nan_inf);
    assert_eq!(s.command(&["incrbyfloat", "missing", "abc"]), not_float);
    assert_eq!(s.command(&["exists", "missing"]), i(0));
    // 40+ integer digits before a fraction.
    assert_eq!(
        s.command(&["set", "d", "1000000000000000000000000000000000000000.5"]),
        Frame::simple("OK")
    );
    assert_eq!(
        s.command(&["incrbyfloat", "d", "0"]),
        b("999999999999999999993126004485993267200")
    );
    assert_eq!(
        s.command(&[
            "incrbyfloat",
            "big",
            "123456789012345678901234567890123456789012345678901234567890.123456789"
        ]),
        b("123456789012345678904212663537885431876092564888614510526464")
    );
    assert_eq!(
        s.command(&[
            "incrbyfloat",
            "neg",
            "-99999999999999999999999999999999999999999999.9999"
        ]),
        b("-100000000000000000001038625398088182045605888")
    );
}

fn resp(f: &Frame, proto: Protocol) -> Vec<u8> {
    let mut out = bytes::BytesMut::new();
    cairn_resp::encode(f, proto, &mut out);
    out.to_vec()
}

fn range(a: (i64, i64), b: (i64, i64), len: Option<i64>) -> Frame {
    let pos = |(s, e)| Frame::Array(vec![i(s), i(e)]);
    let mut m = vec![pos(a), pos(b)];
    m.extend(len.map(i));
    Frame::Array(m)
}

fn idx_reply(matches: Vec<Frame>, len: i64) -> Frame {
    Frame::Map(vec![
        (b("matches"), Frame::Array(matches)),
        (b("len"), i(len)),
    ])
}

#[test]
fn lcs_docs_example() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    s.command(&["mset", "key1", "ohmytext", "key2", "mynewtext"]);
    assert_eq!(s.command(&["lcs", "key1", "key2"]), b("mytext"));
    assert_eq!(s.command(&["LCS", "key1", "key2", "LEN"]), i(6));
    assert_eq!(
        s.command(&["LCS", "key1", "key2", "IDX"]),
        idx_reply(
            vec![range((4, 7), (5, 8), None), range((2, 3), (0, 1), None)],
            6
        )
    );
    assert_eq!(
        s.command(&["LCS", "key1", "key2", "IDX", "MINMATCHLEN", "4"]),
        idx_reply(vec![range((4, 7), (5, 8), None)], 6)
    );
    let with = s.command(&["LCS", "key1", "key2", "IDX", "WITHMATCHLEN"]);
    assert_eq!(
        with,
        idx_reply(
            vec![
                range((4, 7), (5, 8), Some(4)),
                range((2, 3), (0, 1), Some(2))
            ],
            6
        )
    );
    // Wire bytes as redis-server 7.0.15 sends them, in both protocols.
    let body = b"$7\r\nmatches\r\n*2\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n\
*3\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n:2\r\n$3\r\nlen\r\n:6\r\n";
    assert_eq!(
        resp(&with, Protocol::Resp2),
        [&b"*4\r\n"[..], &body[..]].concat()
    );
    assert_eq!(
        resp(&with, Protocol::Resp3),
        [&b"%2\r\n"[..], &body[..]].concat()
    );
    assert_eq!(
        s.command(&[
            "lcs",
            "key1",
            "key2",
            "idx",
            "minmatchlen",
            "4",
            "withmatchlen"
        ]),
        idx_reply(vec![range((4, 7), (5, 8), Some(4))], 6)
    );
}

#[test]
fn lcs_options_and_errors() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    s.command(&["mset", "key1", "ohmytext", "key2", "mynewtext", "n", "1234"]);
    s.command(&["rpush", "l", "a"]);
    // Missing keys read as empty strings.
    assert_eq!(s.command(&["lcs", "a", "b"]), b(""));
    assert_eq!(s.command(&["lcs", "a", "key1", "len"]), i(0));
    assert_eq!(s.command(&["lcs", "a", "b", "idx"]), idx_reply(vec![], 0));
    // Integer-encoded strings compare by their digits.
    assert_eq!(s.command(&["set", "m", "9234"]), Frame::ok());
    assert_eq!(s.command(&["lcs", "n", "m"]), b("234"));
    // Redis 7.0's own type error, checked before the options are parsed.
    let not_str = e("ERR The specified keys must contain string values");
    assert_eq!(s.command(&["lcs", "key1", "l"]), not_str);
    assert_eq!(s.command(&["lcs", "l", "nokey", "bogus"]), not_str);
    assert_eq!(
        s.command(&["lcs", "key1", "key2", "len", "idx"]),
        e("ERR If you want both the length and indexes, please just use IDX.")
    );
    // Syntax and integer errors come before the LEN+IDX clash.
    assert_eq!(
        s.command(&["lcs", "key1", "key2", "len", "idx", "foo"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&["lcs", "key1", "key2", "minmatchlen", "x", "len", "idx"]),
        e("ERR value is not an integer or out of range")
    );
    assert_eq!(
        s.command(&["lcs", "key1", "key2", "minmatchlen"]),
        e("ERR syntax error")
    );
    assert_eq!(
        s.command(&[
            "lcs",
            "key1",
            "key2",
            "idx",
            "minmatchlen",
            "99999999999999999999"
        ]),
        e("ERR value is not an integer or out of range")
    );
    assert_eq!(
        s.command(&["lcs", "key1"]),
        e("ERR wrong number of arguments for 'lcs' command")
    );
    // Negative MINMATCHLEN is 0; a huge one filters every range; the last
    // MINMATCHLEN wins; repeated flags are fine.
    let all = idx_reply(
        vec![range((4, 7), (5, 8), None), range((2, 3), (0, 1), None)],
        6,
    );
    assert_eq!(
        s.command(&["lcs", "key1", "key2", "idx", "minmatchlen", "-5"]),
        all
    );
    assert_eq!(
        s.command(&[
            "lcs",
            "key1",
            "key2",
            "idx",
            "minmatchlen",
            "9223372036854775807"
        ]),
        idx_reply(vec![], 6)
    );
    assert_eq!(
        s.command(&[
            "lcs",
            "key1",
            "key2",
            "IDX",
            "WITHMATCHLEN",
            "WITHMATCHLEN",
            "MINMATCHLEN",
            "1",
            "MINMATCHLEN",
            "3"
        ]),
        idx_reply(vec![range((4, 7), (5, 8), Some(4))], 6)
    );
    assert_eq!(s.command(&["lcs", "key1", "key2", "len", "len"]), i(6));
    // MINMATCHLEN without IDX only changes nothing.
    assert_eq!(
        s.command(&["lcs", "key1", "key2", "minmatchlen", "3"]),
        b("mytext")
    );
    assert_eq!(s.command(&["lcs", "key1", "key1"]), b("ohmytext"));
}

#[test]
fn lcs_memory_guard_follows_proto_max_bulk_len() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(
        s.command(&["config", "set", "proto-max-bulk-len", "1mb"]),
        Frame::ok()
    );
    let a = "a".repeat(511);
    let bb = "b".repeat(511);
    s.command(&["mset", "a", &a, "b", &bb]);
    // (511+1)^2 u32 cells is exactly 1mb: allowed.
    assert_eq!(s.command(&["lcs", "a", "b", "len"]), i(0));
    s.command(&["append", "b", "b"]);
    let refused = e("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
    assert_eq!(s.command(&["lcs", "a", "b", "len"]), refused);
    assert_eq!(s.command(&["lcs", "a", "b", "idx"]), refused);
    assert_eq!(s.command(&["lcs", "a", "nokey"]), b(""));
}

mod lcs_props {
    use super::*;
    use proptest::prelude::*;

    /// The textbook LCS length, two rows at a time.
    fn reference_len(a: &[u8], b: &[u8]) -> i64 {
        let mut prev = vec![0i64; b.len() + 1];
        for &x in a {
            let mut cur = vec![0i64; b.len() + 1];
            for (j, &y) in b.iter().enumerate() {
                cur[j + 1] = if x == y {
                    prev[j] + 1
                } else {
                    prev[j + 1].max(cur[j])
                };
            }
            prev = cur;
        }
        prev[b.len()]
    }

    fn is_subsequence(sub: &[u8], of: &[u8]) -> bool {
        let mut it = of.iter();
        sub.iter().all(|c| it.any(|d| d == c))
    }

    fn int_of(f: &Frame) -> i64 {
        match f {
            Frame::Integer(n) => *n,
            other => panic!("not an integer: {other:?}"),
        }
    }

    proptest! {
        #[test]
        fn lcs_replies_agree(
            a in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c')], 0..40),
            bb in proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c')], 0..40),
        ) {
            let ks = Keyspace::new();
            let mut s = ks.session();
            let (sa, sb) = (String::from_utf8(a.clone()).unwrap(), String::from_utf8(bb.clone()).unwrap());
            s.command(&["set", "x", &sa]);
            s.command(&["set", "y", &sb]);
            let want = reference_len(&a, &bb);
            prop_assert_eq!(s.command(&["lcs", "x", "y", "len"]), i(want));
            let Frame::Bulk(common) = s.command(&["lcs", "x", "y"]) else { panic!() };
            prop_assert_eq!(common.len() as i64, want);
            prop_assert!(is_subsequence(&common, &a) && is_subsequence(&common, &bb));
            let Frame::Map(m) = s.command(&["lcs", "x", "y", "idx", "withmatchlen"]) else { panic!() };
            prop_assert_eq!(&m[1], &(b("len"), i(want)));
            let Frame::Array(ranges) = &m[0].1 else { panic!() };
            // Ranges come from the end backwards, each an equal substring,
            // and together they spell the common subsequence.
            let mut spelled = Vec::new();
            let mut last: Option<(i64, i64)> = None;
            for r in ranges {
                let Frame::Array(parts) = r else { panic!() };
                let (Frame::Array(ra), Frame::Array(rb)) = (&parts[0], &parts[1]) else { panic!() };
                let (a0, a1, b0, b1) = (int_of(&ra[0]), int_of(&ra[1]), int_of(&rb[0]), int_of(&rb[1]));
                prop_assert_eq!(int_of(&parts[2]), a1 - a0 + 1);
                prop_assert_eq!(a1 - a0, b1 - b0);
                let seg = &a[a0 as usize..=a1 as usize];
                prop_assert_eq!(seg, &bb[b0 as usize..=b1 as usize]);
                if let Some((pa, pb)) = last {
                    prop_assert!(a1 < pa && b1 < pb);
                }
                last = Some((a0, b0));
                spelled.splice(0..0, seg.iter().copied());
            }
            prop_assert_eq!(&spelled[..], &common[..]);
        }
    }
}
