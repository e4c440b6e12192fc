//! The per-entry access field under a manual clock: OBJECT IDLETIME and
//! OBJECT FREQ move exactly as Redis 7.0's LRU clock and LFU counter do,
//! which lookups touch the field, and that reads do not make a view copy
//! entries.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use cairn_keyspace::{Keyspace, ManualClock};
use cairn_resp::Frame;

const T0: i64 = 1_765_000_000_000;

fn int(f: Frame) -> i64 {
    match f {
        Frame::Integer(n) => n,
        other => panic!("not an integer: {other:?}"),
    }
}

fn setup() -> (Arc<ManualClock>, Keyspace) {
    let clock = Arc::new(ManualClock::new(T0));
    let ks = Keyspace::builder().clock(clock.clone()).build();
    (clock, ks)
}

/// Commands that do not count as an access in Redis 7.0 (they look keys
/// up with `LOOKUP_NOTOUCH`, read the dictionary directly or only walk it).
const NOT_ACCESSES: &[&[&str]] = &[
    &["OBJECT", "IDLETIME", "k"],
    &["OBJECT", "ENCODING", "k"],
    &["OBJECT", "REFCOUNT", "k"],
    &["TYPE", "k"],
    &["EXISTS", "k"],
    &["TTL", "k"],
    &["PTTL", "k"],
    &["EXPIRETIME", "k"],
    &["PEXPIRETIME", "k"],
    &["DEBUG", "OBJECT", "k"],
    &["MEMORY", "USAGE", "k"],
    &["SCAN", "0"],
    &["KEYS", "*"],
    &["DBSIZE"],
    &["RANDOMKEY"],
];

#[test]
fn idle_time_counts_seconds_since_the_last_access() {
    let (clock, ks) = setup();
    let mut s = ks.session();
    s.command(&["SET", "k", "some value"]);
    assert_eq!(int(s.command(&["OBJECT", "IDLETIME", "k"])), 0);
    clock.advance(100_400);
    assert_eq!(int(s.command(&["OBJECT", "IDLETIME", "k"])), 100);
    for c in NOT_ACCESSES {
        s.command(c);
    }
    assert_eq!(int(s.command(&["OBJECT", "IDLETIME", "k"])), 100);
    // DEBUG OBJECT shows the raw LRU clock reading and the same idle time.
    let Frame::Simple(dbg) = s.command(&["DEBUG", "OBJECT", "k"]) else {
        panic!("DEBUG OBJECT")
    };
    let dbg = String::from_utf8(dbg.to_vec()).unwrap();
    let lru = ((T0 / 1000) as u64) & 0xff_ffff;
    assert!(
        dbg.ends_with(&format!("lru:{lru} lru_seconds_idle:100")),
        "{dbg}"
    );
    // A read is an access.
    s.command(&["STRLEN", "k"]);
    assert_eq!(int(s.command(&["OBJECT", "IDLETIME", "k"])), 0);
    // So is a write, a TOUCH, and a write that only looks (SET NX).
    for c in [
        &["APPEND", "k", "x"][..],
        &["TOUCH", "k"],
        &["SET", "k", "v", "NX"],
        &["EXPIRE", "k", "100000"],
        &["SET", "k", "other"],
    ] {
        clock.advance(7_000);
        assert_eq!(int(s.command(&["OBJECT", "IDLETIME", "k"])), 7, "{c:?}");
        s.command(c);
        assert_eq!(int(s.command(&["OBJECT", "IDLETIME", "k"])), 0, "{c:?}");
    }
    // RENAME and MOVE carry the field with the value; COPY makes a new one.
    clock.advance(9_000);
    s.command(&["RENAME", "k", "r"]);
    clock.advance(9_000);
    assert_eq!(int(s.command(&["OBJECT", "IDLETIME", "r"])), 9);
    s.command(&["MOVE", "r", "1"]);
    s.command(&["SELECT", "1"]);
    assert_eq!(int(s.command(&["OBJECT", "IDLETIME", "r"])), 0);
    assert_eq!(s.command(&["OBJECT", "IDLETIME", "missing"]), Frame::Null);
}

#[test]
fn lfu_counter_and_decay_as_redis() {
    let (clock, ks) = setup();
    let mut s = ks.session();
    assert_eq!(
        s.command(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]),
        Frame::ok()
    );
    s.command(&["SET", "k", "some value"]);
    // LFU_INIT_VAL, then one access that always counts.
    assert_eq!(int(s.command(&["OBJECT", "FREQ", "k"])), 5);
    for c in NOT_ACCESSES
        .iter()
        .filter(|c| c.get(1) != Some(&"IDLETIME"))
    {
        s.command(c);
    }
    assert_eq!(int(s.command(&["OBJECT", "FREQ", "k"])), 5);
    s.command(&["GET", "k"]);
    assert_eq!(int(s.command(&["OBJECT", "FREQ", "k"])), 6);
    // One decrement per lfu-decay-time minutes, applied when read.
    clock.advance(3 * 60_000);
    assert_eq!(int(s.command(&["OBJECT", "FREQ", "k"])), 3);
    s.command(&["CONFIG", "SET", "lfu-decay-time", "2"]);
    assert_eq!(int(s.command(&["OBJECT", "FREQ", "k"])), 5);
    s.command(&["CONFIG", "SET", "lfu-decay-time", "0"]);
    assert_eq!(int(s.command(&["OBJECT", "FREQ", "k"])), 6);
    // Many accesses: logarithmic growth, saturating at 255 with factor 0.
    for _ in 0..1000 {
        s.command(&["GET", "k"]);
    }
    let n = int(s.command(&["OBJECT", "FREQ", "k"]));
    assert!((10..=30).contains(&n), "freq after 1000 hits: {n}");
    s.command(&["CONFIG", "SET", "lfu-log-factor", "0"]);
    for _ in 0..300 {
        s.command(&["GET", "k"]);
    }
    assert_eq!(int(s.command(&["OBJECT", "FREQ", "k"])), 255);
    // An overwrite keeps the counter (Redis' dbSetValue under LFU).
    s.command(&["SET", "k", "new value"]);
    assert_eq!(int(s.command(&["OBJECT", "FREQ", "k"])), 255);
    // COPY's destination is a new object.
    s.command(&["COPY", "k", "c"]);
    assert_eq!(int(s.command(&["OBJECT", "FREQ", "c"])), 5);
    let idle = s.command(&["OBJECT", "IDLETIME", "k"]);
    assert!(
        matches!(&idle, Frame::Error(m) if m.starts_with(b"ERR An LFU maxmemory policy is selected, idle time not tracked.")),
        "{idle:?}"
    );
    // Back to LRU: the fields are reinterpreted as clock readings (Redis
    // does the same; they adjust as keys are accessed).
    s.command(&["CONFIG", "SET", "maxmemory-policy", "volatile-lru"]);
    assert!(matches!(
        s.command(&["OBJECT", "IDLETIME", "k"]),
        Frame::Integer(_)
    ));
    s.command(&["GET", "k"]);
    assert_eq!(int(s.command(&["OBJECT", "IDLETIME", "k"])), 0);
    assert!(
        matches!(s.command(&["OBJECT", "FREQ", "k"]), Frame::Error(m) if m.starts_with(b"ERR An LFU maxmemory policy is not selected"))
    );
}

#[test]
fn lfu_parameters_are_checked_as_redis() {
    let (_, ks) = setup();
    let mut s = ks.session();
    for (name, value, reason) in [
        (
            "lfu-log-factor",
            "-1",
            "argument must be between 0 and 2147483647 inclusive",
        ),
        (
            "lfu-decay-time",
            "3000000000",
            "argument must be between 0 and 2147483647 inclusive",
        ),
        (
            "lfu-log-factor",
            "abc",
            "argument couldn't be parsed into an integer",
        ),
    ] {
        assert_eq!(
            s.command(&["CONFIG", "SET", name, value]),
            Frame::error(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
            ))
        );
    }
}

/// Reads change the access field in place, never the entry's version: a
/// view taken before them copies nothing.
#[test]
fn reads_do_not_make_a_view_copy_entries() {
    let (_, ks) = setup();
    let mut s = ks.session();
    for i in 0..1000 {
        s.command(&["SET", &format!("k{i}"), "value"]);
    }
    let view = ks.view().unwrap();
    let before = ks.preserved_entries();
    for i in 0..1000 {
        s.command(&["GET", &format!("k{i}")]);
        s.command(&["TOUCH", &format!("k{i}")]);
    }
    assert_eq!(ks.preserved_entries(), before);
    drop(view);
}

/// Loaded (restored) keys start as new keys: the clock at the load, or
/// `LFU_INIT_VAL` under an LFU policy.
#[test]
fn loaded_keys_start_as_new_ones() {
    use cairn_keyspace::{Key, LoadEntry, Value};
    let (clock, ks) = setup();
    let mut s = ks.session();
    clock.advance(50_000);
    let entry = |k: &str| LoadEntry {
        db: 0,
        key: Key::new(k.as_bytes()),
        expires_at_ms: None,
        value: Value::string(b"loaded value"),
    };
    ks.load_entries([entry("a")]);
    clock.advance(4_000);
    assert_eq!(int(s.command(&["OBJECT", "IDLETIME", "a"])), 4);
    s.command(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]);
    ks.load_entries([entry("b")]);
    assert_eq!(int(s.command(&["OBJECT", "FREQ", "b"])), 5);
}
