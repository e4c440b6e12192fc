//! Server and introspection commands, and the key commands added with
//! them: replies checked against Redis 7.0.15.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use cairn_keyspace::{Keyspace, ManualClock};
use cairn_resp::Frame;

fn e(s: &str) -> Frame {
    Frame::error(s.to_string())
}

fn text(f: Frame) -> String {
    match f {
        Frame::Verbatim { text, .. } | Frame::Bulk(text) | Frame::Simple(text) => {
            String::from_utf8(text.to_vec()).unwrap()
        }
        other => panic!("not text: {other:?}"),
    }
}

#[test]
fn incrbyfloat_matches_redis_long_double_results() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(s.command(&["INCRBYFLOAT", "f", "0.1"]), Frame::bulk("0.1"));
    assert_eq!(s.command(&["INCRBYFLOAT", "f", "0.2"]), Frame::bulk("0.3"));
    assert_eq!(s.command(&["INCRBYFLOAT", "g", "0x10"]), Frame::bulk("16"));
    assert_eq!(
        s.command(&["INCRBYFLOAT", "g", "1.5e3"]),
        Frame::bulk("1516")
    );
    let overflow = e("ERR increment would produce NaN or Infinity");
    assert_eq!(s.command(&["INCRBYFLOAT", "g", "inf"]), overflow);
    assert_eq!(
        s.command(&["INCRBYFLOAT", "g", "nan"]),
        e("ERR value is not a valid float")
    );
    assert_eq!(
        s.command(&["INCRBYFLOAT", "g", "1e4933"]),
        e("ERR value is not a valid float")
    );
    // 1.7e308 twice is past f64 but within long double, as in Redis.
    s.command(&["INCRBYFLOAT", "h", "1.7e308"]);
    let r = text(s.command(&["INCRBYFLOAT", "h", "1.7e308"]));
    assert!(
        r.starts_with("34000000000000000000627355605039519359"),
        "{r}"
    );
    s.command(&["SET", "s", " 1"]);
    assert_eq!(
        s.command(&["INCRBYFLOAT", "s", "1"]),
        e("ERR value is not a valid float")
    );
    s.command(&["LPUSH", "l", "a"]);
    assert!(
        matches!(s.command(&["INCRBYFLOAT", "l", "1"]), Frame::Error(m) if m.starts_with(b"WRONGTYPE"))
    );
}

#[test]
fn copy_rename_move_and_scan_cursor() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    s.command(&["SET", "a", "1"]);
    assert_eq!(
        s.command(&["COPY", "a", "a"]),
        e("ERR source and destination objects are the same")
    );
    assert_eq!(
        s.command(&["COPY", "a", "b", "DB", "99"]),
        e("ERR DB index is out of range")
    );
    assert_eq!(
        s.command(&["COPY", "a", "b", "DB", "x"]),
        e("ERR value is not an integer or out of range")
    );
    assert_eq!(s.command(&["COPY", "a", "b", "foo"]), e("ERR syntax error"));
    assert_eq!(s.command(&["COPY", "a", "b"]), Frame::Integer(1));
    assert_eq!(s.command(&["COPY", "a", "b"]), Frame::Integer(0));
    assert_eq!(s.command(&["COPY", "a", "b", "REPLACE"]), Frame::Integer(1));
    assert_eq!(s.command(&["COPY", "nx", "c"]), Frame::Integer(0));
    assert_eq!(s.command(&["COPY", "a", "a", "DB", "1"]), Frame::Integer(1));
    // Copies are independent.
    s.command(&["RPUSH", "l", "x"]);
    s.command(&["COPY", "l", "l2"]);
    s.command(&["RPUSH", "l2", "y"]);
    assert_eq!(s.command(&["LLEN", "l"]), Frame::Integer(1));
    assert_eq!(s.command(&["SELECT", "1"]), Frame::ok());
    assert_eq!(s.command(&["GET", "a"]), Frame::bulk("1"));
    s.command(&["SELECT", "0"]);
    let r = s.command(&["SCAN", ""]);
    assert!(matches!(r, Frame::Array(ref v) if v.len() == 2), "{r:?}");
    assert!(matches!(s.command(&["SCAN", "+0"]), Frame::Array(_)));
    assert_eq!(s.command(&["SCAN", " 0"]), e("ERR invalid cursor"));
    // A BLPOP waiting on the RENAME destination is served.
    assert_eq!(s.command(&["RENAME", "l", "dest"]), Frame::ok());
    assert_eq!(s.command(&["LLEN", "dest"]), Frame::Integer(1));
}

#[test]
fn object_and_debug_report_redis_encodings() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    s.command(&["RPUSH", "l", "a"]);
    s.command(&["SADD", "s", "1", "2"]);
    s.command(&["SADD", "s2", "a"]);
    s.command(&["HSET", "h", "f", "v"]);
    s.command(&["ZADD", "z", "1", "a"]);
    s.command(&["SET", "e", "hello"]);
    s.command(&["SET", "i", "12"]);
    s.command(&["SET", "r", &"x".repeat(45)]);
    for (k, enc) in [
        ("l", "quicklist"),
        ("s", "intset"),
        ("s2", "hashtable"),
        ("h", "listpack"),
        ("z", "listpack"),
        ("e", "embstr"),
        ("i", "int"),
        ("r", "raw"),
    ] {
        assert_eq!(
            s.command(&["OBJECT", "ENCODING", k]),
            Frame::bulk(enc),
            "{k}"
        );
    }
    assert_eq!(s.command(&["OBJECT", "ENCODING", "nokey"]), Frame::Null);
    assert_eq!(
        s.command(&["OBJECT", "REFCOUNT", "i"]),
        Frame::Integer(2147483647)
    );
    assert_eq!(s.command(&["OBJECT", "REFCOUNT", "e"]), Frame::Integer(1));
    assert!(
        matches!(s.command(&["OBJECT", "FREQ", "e"]), Frame::Error(m) if m.starts_with(b"ERR An LFU maxmemory policy is not selected"))
    );
    assert_eq!(
        s.command(&["OBJECT", "FOO"]),
        e("ERR unknown subcommand 'FOO'. Try OBJECT HELP.")
    );
    let dbg = text(s.command(&["DEBUG", "OBJECT", "e"]));
    assert!(
        dbg.contains(" refcount:1 encoding:embstr serializedlength:6 "),
        "{dbg}"
    );
    assert_eq!(
        s.command(&["DEBUG", "OBJECT", "nokey"]),
        e("ERR no such key")
    );
    assert_eq!(
        s.command(&["DEBUG", "FOO"]),
        e("ERR unknown subcommand or wrong number of arguments for 'FOO'. Try DEBUG HELP.")
    );
    assert_eq!(s.command(&["DEBUG", "SLEEP", "0"]), Frame::ok());
}

#[test]
fn debug_set_active_expire_stops_the_cycle() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let ks = Keyspace::builder().clock(clock.clone()).build();
    let mut s = ks.session();
    s.command(&["SET", "k", "v", "PX", "10"]);
    clock.advance(100);
    assert_eq!(s.command(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]), Frame::ok());
    ks.active_expire_cycle(std::time::Duration::from_secs(1));
    assert_eq!(ks.dbsize(0), 1);
    s.command(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    ks.active_expire_cycle(std::time::Duration::from_secs(1));
    assert_eq!(ks.dbsize(0), 0);
}

#[test]
fn config_get_knows_every_redis_parameter_and_set_validates() {
    /// maxmemory is refused without allocator statistics: a small fixed
    /// reading, under the limit set below.
    struct Small;
    impl cairn_keyspace::AllocatorStats for Small {
        fn name(&self) -> String {
            "small".into()
        }
        fn read(&self) -> Option<cairn_keyspace::AllocatorReading> {
            Some(cairn_keyspace::AllocatorReading {
                allocated: 1000,
                active: None,
                resident: None,
            })
        }
    }
    let ks = Keyspace::builder()
        .allocator_stats(std::sync::Arc::new(Small))
        .build();
    let mut s = ks.session();
    let Frame::Map(all) = s.command(&["CONFIG", "GET", "*"]) else {
        panic!()
    };
    assert!(all.len() >= 190, "{}", all.len());
    assert_eq!(
        s.command(&["CONFIG", "GET", "maxmemory-p*"]),
        Frame::Map(vec![(
            Frame::bulk("maxmemory-policy"),
            Frame::bulk("noeviction")
        )])
    );
    assert_eq!(
        s.command(&["CONFIG", "SET", "hz", "11", "maxmemory", "10mb"]),
        Frame::ok()
    );
    assert_eq!(
        s.command(&["CONFIG", "GET", "maxmemory"]),
        Frame::Map(vec![(Frame::bulk("maxmemory"), Frame::bulk("10485760"))])
    );
    let failed = |p: &str, why: &str| {
        e(&format!(
            "ERR CONFIG SET failed (possibly related to argument '{p}') - {why}"
        ))
    };
    assert_eq!(
        s.command(&["CONFIG", "SET", "maxmemory", "abc"]),
        failed("maxmemory", "argument must be a memory value")
    );
    assert_eq!(
        s.command(&["CONFIG", "SET", "hz", "abc"]),
        failed("hz", "argument couldn't be parsed into an integer")
    );
    assert_eq!(
        s.command(&["CONFIG", "SET", "appendonly", "maybe"]),
        failed("appendonly", "argument must be 'yes' or 'no'")
    );
    assert_eq!(
        s.command(&["CONFIG", "SET", "databases", "3"]),
        failed("databases", "can't set immutable config")
    );
    assert_eq!(
        s.command(&["CONFIG", "SET", "maxmemory", "1", "maxmemory", "2"]),
        failed("maxmemory", "duplicate parameter")
    );
    assert_eq!(
        s.command(&["CONFIG", "SET", "foo", "1"]),
        e("ERR Unknown option or number of arguments for CONFIG SET - 'foo'")
    );
    // All or nothing.
    assert_eq!(
        s.command(&["CONFIG", "SET", "hz", "12", "appendonly", "maybe"]),
        failed("appendonly", "argument must be 'yes' or 'no'")
    );
    assert_eq!(ks.config_param("hz").as_deref(), Some("11"));
    assert_eq!(
        s.command(&["CONFIG", "REWRITE"]),
        e("ERR The server is running without a config file")
    );
    assert_eq!(s.command(&["CONFIG", "RESETSTAT"]), Frame::ok());
}

#[test]
fn info_sections_and_stats() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    s.command(&["SET", "a", "1"]);
    let all = text(s.command(&["INFO"]));
    for h in ["# Server", "# Clients", "# Memory", "# Stats", "# Keyspace"] {
        assert!(all.contains(h), "{h}");
    }
    assert!(all.contains("db0:keys=1,expires=0,avg_ttl=0"));
    assert!(all.contains("blocked_clients:0"));
    let stats = text(s.command(&["INFO", "stats"]));
    assert!(!stats.contains("# Server"));
    let n: u64 = stats
        .lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .unwrap()
        .parse()
        .unwrap();
    // SET and the first INFO: as in Redis, a command is counted once it
    // has run, so this INFO is not among them.
    assert_eq!(n, 2);
    let two = text(s.command(&["INFO", "server", "clients"]));
    assert!(two.contains("# Server") && two.contains("# Clients") && !two.contains("# Stats"));
}

#[test]
fn client_list_info_names_and_kill() {
    let ks = Keyspace::new();
    let mut a = ks.session();
    let mut b = ks.session();
    assert_eq!(a.command(&["CLIENT", "SETNAME", "alpha"]), Frame::ok());
    assert_eq!(a.command(&["CLIENT", "GETNAME"]), Frame::bulk("alpha"));
    assert_eq!(
        a.command(&["CLIENT", "SETNAME", "a b"]),
        e("ERR Client names cannot contain spaces, newlines or special characters.")
    );
    b.command(&["SELECT", "3"]);
    b.command(&["MULTI"]);
    b.command(&["PING"]);
    let list = text(a.command(&["CLIENT", "LIST"]));
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines[0].contains(" name=alpha ") && lines[0].contains(" flags=N db=0 "),
        "{list}"
    );
    assert!(
        lines[1].contains(" flags=x db=3 ") && lines[1].contains(" multi=1 "),
        "{list}"
    );
    assert!(lines[1].contains(" cmd=ping "), "{list}");
    let me = text(a.command(&["CLIENT", "INFO"]));
    let Frame::Integer(id) = a.command(&["CLIENT", "ID"]) else {
        panic!()
    };
    assert!(me.starts_with(&format!("id={id} ")), "{me}");
    let only_b = text(a.command(&["CLIENT", "LIST", "ID", &(id + 1).to_string()]));
    assert_eq!(only_b.lines().count(), 1);
    assert_eq!(
        a.command(&["CLIENT", "KILL", "1.2.3.4:5"]),
        e("ERR No such client")
    );
    assert_eq!(
        a.command(&["CLIENT", "KILL", "ID", "0"]),
        e("ERR client-id should be greater than 0")
    );
    assert_eq!(
        a.command(&["CLIENT", "KILL", "TYPE", "bogus"]),
        e("ERR Unknown client type 'bogus'")
    );
    assert_eq!(
        a.command(&["CLIENT", "KILL", "ID", &(id + 1).to_string()]),
        Frame::Integer(1)
    );
    assert_eq!(
        a.command(&["CLIENT", "KILL", "ID", &id.to_string()]),
        Frame::Integer(0)
    );
    assert_eq!(a.command(&["CLIENT", "NO-EVICT", "on"]), Frame::ok());
    assert_eq!(
        a.command(&["CLIENT", "NO-EVICT", "maybe"]),
        e("ERR syntax error")
    );
    drop(b);
    assert_eq!(text(a.command(&["CLIENT", "LIST"])).lines().count(), 1);
}

/// `COMMAND DOCS` without names documents every command, from Redis' own
/// docs (complexity, arguments, ...); a subcommand's docs are found by
/// `container|sub`, and a container lists only the subcommands cairn has.
#[test]
fn command_docs_cover_every_command() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    let Frame::Integer(count) = s.command(&["COMMAND", "COUNT"]) else {
        panic!("COMMAND COUNT");
    };
    let Frame::Map(all) = s.command(&["COMMAND", "DOCS"]) else {
        panic!("COMMAND DOCS is not a map");
    };
    assert_eq!(all.len() as i64, count);
    let field = |docs: &Frame, name: &str| -> Option<Frame> {
        let Frame::Map(fields) = docs else {
            panic!("docs not a map: {docs:?}")
        };
        fields
            .iter()
            .find(|(k, _)| *k == Frame::bulk(name))
            .map(|(_, v)| v.clone())
    };
    for (name, docs) in &all {
        // Redis 7.0's own docs give these no complexity.
        if [Frame::bulk("monitor"), Frame::bulk("lolwut")].contains(name) {
            continue;
        }
        assert!(
            field(docs, "complexity").is_some(),
            "{name:?} has no complexity: {docs:?}"
        );
    }
    let Frame::Map(sub) = s.command(&["COMMAND", "DOCS", "CONFIG|get"]) else {
        panic!("COMMAND DOCS CONFIG|get");
    };
    assert_eq!(sub.len(), 1);
    assert_eq!(sub[0].0, Frame::bulk("config|get"));
    assert_eq!(field(&sub[0].1, "group"), Some(Frame::bulk("server")));
    let Frame::Map(command) = s.command(&["COMMAND", "DOCS", "command"]) else {
        panic!("COMMAND DOCS command");
    };
    let Some(Frame::Map(subs)) = field(&command[0].1, "subcommands") else {
        panic!("no subcommands: {command:?}");
    };
    let mut names: Vec<String> = subs.iter().map(|(n, _)| text(n.clone())).collect();
    names.sort();
    // All of Redis' COMMAND subcommands.
    assert_eq!(
        names,
        [
            "command|count",
            "command|docs",
            "command|getkeys",
            "command|getkeysandflags",
            "command|help",
            "command|info",
            "command|list"
        ]
    );
    assert_eq!(
        s.command(&["COMMAND", "DOCS", "nosuch", "get|x", "config|nosuch"]),
        Frame::Map(vec![])
    );
}
