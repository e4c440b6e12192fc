//! MULTI/EXEC/DISCARD/WATCH: replies, queue-time errors, WATCH
//! invalidation from every source, and EXEC's atomicity against views.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use cairn_keyspace::{CommandSpec, Ctx, Extension, Flags, Keyspace, ManualClock};
use cairn_resp::Frame;

fn ok() -> Frame {
    Frame::ok()
}
fn queued() -> Frame {
    Frame::simple("QUEUED")
}
fn e(s: &str) -> Frame {
    Frame::error(s.to_string())
}

#[test]
fn exec_returns_each_reply_and_runtime_errors_inline() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(s.command(&["SET", "x", "foo"]), ok());
    assert_eq!(s.command(&["MULTI"]), ok());
    assert!(s.state().in_multi());
    assert_eq!(s.command(&["INCR", "x"]), queued());
    assert_eq!(s.command(&["SET", "y", "1"]), queued());
    assert_eq!(s.command(&["INCR", "y"]), queued());
    assert_eq!(
        s.command(&["EXEC"]),
        Frame::Array(vec![
            e("ERR value is not an integer or out of range"),
            ok(),
            Frame::Integer(2),
        ])
    );
    assert!(!s.state().in_multi());
    assert_eq!(s.command(&["GET", "y"]), Frame::bulk("2"));
}

#[test]
fn protocol_errors_and_nesting() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(s.command(&["EXEC"]), e("ERR EXEC without MULTI"));
    assert_eq!(s.command(&["DISCARD"]), e("ERR DISCARD without MULTI"));
    assert_eq!(s.command(&["MULTI"]), ok());
    assert_eq!(
        s.command(&["MULTI"]),
        e("ERR MULTI calls can not be nested")
    );
    assert_eq!(
        s.command(&["WATCH", "x"]),
        e("ERR WATCH inside MULTI is not allowed")
    );
    // Neither of those dooms the transaction.
    assert_eq!(s.command(&["SET", "a", "1"]), queued());
    assert_eq!(s.command(&["EXEC"]), Frame::Array(vec![ok()]));
}

#[test]
fn exec_and_discard_with_extra_arguments() {
    // Redis 7.0.15: a refused EXEC aborts the transaction (execCommandAbort);
    // a refused DISCARD only dooms it.
    let ks = Keyspace::new();
    let mut s = ks.session();
    let abort = e(
        "EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command",
    );
    assert_eq!(s.command(&["MULTI"]), ok());
    assert_eq!(s.command(&["SET", "t", "2"]), queued());
    assert_eq!(s.command(&["EXEC", "extra"]), abort);
    assert_eq!(s.command(&["DISCARD"]), e("ERR DISCARD without MULTI"));
    assert_eq!(s.command(&["EXEC", "x"]), abort);
    assert_eq!(s.command(&["GET", "t"]), Frame::Null);
    assert_eq!(s.command(&["MULTI"]), ok());
    assert_eq!(
        s.command(&["DISCARD", "x"]),
        e("ERR wrong number of arguments for 'discard' command")
    );
    assert_eq!(
        s.command(&["EXEC"]),
        e("EXECABORT Transaction discarded because of previous errors.")
    );
    assert_eq!(s.command(&["DISCARD"]), e("ERR DISCARD without MULTI"));
}

#[test]
fn queue_time_errors_abort_exec() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(s.command(&["MULTI"]), ok());
    assert_eq!(s.command(&["SET", "a", "1"]), queued());
    assert_eq!(
        s.command(&["FOO"]),
        e("ERR unknown command 'FOO', with args beginning with: ")
    );
    assert_eq!(
        s.command(&["EXEC"]),
        e("EXECABORT Transaction discarded because of previous errors.")
    );
    assert_eq!(s.command(&["GET", "a"]), Frame::Null);

    assert_eq!(s.command(&["MULTI"]), ok());
    assert_eq!(
        s.command(&["SET", "a"]),
        e("ERR wrong number of arguments for 'set' command")
    );
    assert_eq!(
        s.command(&["EXEC"]),
        e("EXECABORT Transaction discarded because of previous errors.")
    );
    // The flag does not leak into the next transaction.
    assert_eq!(s.command(&["MULTI"]), ok());
    assert_eq!(s.command(&["EXEC"]), Frame::Array(vec![]));
}

#[test]
fn discard_drops_the_queue_and_the_watches() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    let mut other = ks.session();
    assert_eq!(s.command(&["WATCH", "k"]), ok());
    assert_eq!(other.command(&["SET", "k", "1"]), ok());
    assert_eq!(s.command(&["MULTI"]), ok());
    assert_eq!(s.command(&["SET", "k", "2"]), queued());
    assert_eq!(s.command(&["DISCARD"]), ok());
    assert_eq!(s.command(&["GET", "k"]), Frame::bulk("1"));
    // DISCARD cleared the dirty flag along with the watches.
    assert_eq!(s.command(&["MULTI"]), ok());
    assert_eq!(s.command(&["PING"]), queued());
    assert_eq!(
        s.command(&["EXEC"]),
        Frame::Array(vec![Frame::simple("PONG")])
    );
}

#[test]
fn watch_is_invalidated_by_another_clients_write() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    let mut other = ks.session();
    s.command(&["SET", "k", "1"]);
    assert_eq!(s.command(&["WATCH", "k", "unrelated"]), ok());
    other.command(&["SET", "k2", "x"]);
    assert_eq!(s.command(&["MULTI"]), ok());
    assert_eq!(s.command(&["INCR", "k"]), queued());
    assert_eq!(s.command(&["EXEC"]), Frame::Array(vec![Frame::Integer(2)]));

    assert_eq!(s.command(&["WATCH", "k"]), ok());
    assert_eq!(other.command(&["INCR", "k"]), Frame::Integer(3));
    assert_eq!(s.command(&["MULTI"]), ok());
    assert_eq!(s.command(&["INCR", "k"]), queued());
    assert_eq!(s.command(&["EXEC"]), Frame::NullArray);
    assert_eq!(s.command(&["GET", "k"]), Frame::bulk("3"));
    // EXEC unwatched everything: a later write does not matter.
    other.command(&["INCR", "k"]);
    assert_eq!(s.command(&["MULTI"]), ok());
    assert_eq!(s.command(&["INCR", "k"]), queued());
    assert_eq!(s.command(&["EXEC"]), Frame::Array(vec![Frame::Integer(5)]));
}

#[test]
fn watch_sees_creation_deletion_and_unwatch_resets() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    let mut other = ks.session();
    // Creating a watched key that did not exist.
    s.command(&["WATCH", "new"]);
    other.command(&["LPUSH", "new", "a"]);
    s.command(&["MULTI"]);
    s.command(&["PING"]);
    assert_eq!(s.command(&["EXEC"]), Frame::NullArray);
    // Deleting it.
    s.command(&["WATCH", "new"]);
    other.command(&["DEL", "new"]);
    s.command(&["MULTI"]);
    assert_eq!(s.command(&["EXEC"]), Frame::NullArray);
    // A failed DEL of a missing key changes nothing.
    s.command(&["WATCH", "new"]);
    other.command(&["DEL", "new"]);
    s.command(&["MULTI"]);
    assert_eq!(s.command(&["EXEC"]), Frame::Array(vec![]));
    // UNWATCH forgets a touch that already happened.
    s.command(&["WATCH", "w"]);
    other.command(&["SET", "w", "1"]);
    assert_eq!(s.command(&["UNWATCH"]), ok());
    s.command(&["MULTI"]);
    assert_eq!(s.command(&["EXEC"]), Frame::Array(vec![]));
    // The db a key was watched in is remembered.
    s.command(&["WATCH", "x"]);
    other.command(&["SELECT", "1"]);
    other.command(&["SET", "x", "in db1"]);
    s.command(&["MULTI"]);
    assert_eq!(s.command(&["EXEC"]), Frame::Array(vec![]));
    // EXPIRE, RENAME and MOVE touch.
    for (setup, touch) in [
        (vec!["SET", "t", "v"], vec!["EXPIRE", "t", "100"]),
        (vec!["SET", "src", "v"], vec!["RENAME", "src", "t"]),
    ] {
        other.command(&["SELECT", "0"]);
        other.command(&setup);
        s.command(&["WATCH", "t"]);
        other.command(&touch);
        s.command(&["MULTI"]);
        assert_eq!(s.command(&["EXEC"]), Frame::NullArray, "{touch:?}");
    }
    s.command(&["WATCH", "t"]);
    other.command(&["MOVE", "t", "2"]);
    s.command(&["MULTI"]);
    assert_eq!(s.command(&["EXEC"]), Frame::NullArray);
}

#[test]
fn watch_is_invalidated_by_expiry() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let ks = Keyspace::builder().clock(clock.clone()).build();
    let mut s = ks.session();
    s.command(&["SET", "x", "foo", "PX", "1000"]);
    s.command(&["WATCH", "x"]);
    clock.advance(1500);
    s.command(&["MULTI"]);
    s.command(&["PING"]);
    assert_eq!(s.command(&["EXEC"]), Frame::NullArray);

    // Expired by active expiry before EXEC.
    s.command(&["SET", "y", "foo", "PX", "1000"]);
    s.command(&["WATCH", "y"]);
    clock.advance(1500);
    let mut n = 0;
    while ks.dbsize(0) > 0 && n < 100 {
        ks.active_expire_cycle(std::time::Duration::from_secs(1));
        n += 1;
    }
    assert_eq!(ks.dbsize(0), 0);
    s.command(&["MULTI"]);
    assert_eq!(s.command(&["EXEC"]), Frame::NullArray);

    // A key already expired when WATCHed is just absent: deleting it later
    // is no change.
    s.command(&["SET", "z", "foo", "PX", "1000"]);
    clock.advance(1500);
    s.command(&["WATCH", "z"]);
    s.command(&["EXISTS", "z"]);
    s.command(&["MULTI"]);
    assert_eq!(s.command(&["EXEC"]), Frame::Array(vec![]));
}

#[test]
fn flush_and_swapdb_touch_existing_watched_keys() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    let mut other = ks.session();
    s.command(&["SET", "x", "1"]);
    s.command(&["WATCH", "x"]);
    other.command(&["FLUSHALL"]);
    s.command(&["MULTI"]);
    assert_eq!(s.command(&["EXEC"]), Frame::NullArray);
    // A flush that finds the watched key absent changes nothing for it.
    s.command(&["WATCH", "x"]);
    other.command(&["FLUSHDB"]);
    s.command(&["MULTI"]);
    assert_eq!(s.command(&["EXEC"]), Frame::Array(vec![]));
    // SWAPDB touches keys that exist in either database.
    other.command(&["SELECT", "1"]);
    other.command(&["SET", "x", "db1"]);
    s.command(&["WATCH", "x"]);
    other.command(&["SWAPDB", "0", "1"]);
    s.command(&["MULTI"]);
    s.command(&["GET", "x"]);
    assert_eq!(s.command(&["EXEC"]), Frame::NullArray);
    assert_eq!(s.command(&["GET", "x"]), Frame::bulk("db1"));
    s.command(&["WATCH", "nothere"]);
    other.command(&["SWAPDB", "0", "1"]);
    s.command(&["MULTI"]);
    assert_eq!(s.command(&["EXEC"]), Frame::Array(vec![]));
}

#[test]
fn flush_counts_as_a_change_even_when_empty() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    let before = ks.changes();
    s.command(&["FLUSHALL"]);
    assert_eq!(ks.changes(), before + 1);
    s.command(&["SET", "a", "1"]);
    s.command(&["SET", "b", "1"]);
    let before = ks.changes();
    s.command(&["FLUSHDB"]);
    assert_eq!(ks.changes(), before + 3);
}

#[test]
fn blocking_commands_inside_exec_do_not_block() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    s.command(&["MULTI"]);
    assert_eq!(s.command(&["BLPOP", "nolist", "0"]), queued());
    assert_eq!(s.command(&["EXEC"]), Frame::Array(vec![Frame::NullArray]));
}

struct Misconf;

impl Extension for Misconf {
    fn commands(&self) -> Vec<CommandSpec> {
        vec![CommandSpec::new("nomulti", 1, Flags::NO_MULTI, "server")]
    }
    fn call(&self, _ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
        Frame::ok()
    }
    fn deny_write(&self, ks: &Keyspace) -> Option<Frame> {
        (ks.config_param("test-deny").as_deref() == Some("yes"))
            .then(|| Frame::error("MISCONF refused".to_string()))
    }
}

#[test]
fn write_refusals_doom_the_transaction() {
    let ks = Keyspace::builder()
        .extension(Arc::new(Misconf))
        .config_param("test-deny", "yes")
        .build();
    let mut s = ks.session();
    assert_eq!(s.command(&["SET", "a", "1"]), e("MISCONF refused"));
    assert_eq!(s.command(&["GET", "a"]), Frame::Null);
    assert_eq!(s.command(&["MULTI"]), ok());
    assert_eq!(s.command(&["GET", "a"]), queued());
    assert_eq!(s.command(&["SET", "a", "1"]), e("MISCONF refused"));
    assert_eq!(
        s.command(&["EXEC"]),
        e("EXECABORT Transaction discarded because of previous errors.")
    );
    // Refusal starting after the writes were queued: EXEC itself refused.
    ks.set_config_param("test-deny", "no");
    assert_eq!(s.command(&["MULTI"]), ok());
    assert_eq!(s.command(&["SET", "a", "1"]), queued());
    ks.set_config_param("test-deny", "yes");
    assert_eq!(
        s.command(&["EXEC"]),
        e("EXECABORT Transaction discarded because of: MISCONF refused")
    );
    assert!(!s.state().in_multi());
    // NO_MULTI commands are refused inside MULTI.
    assert_eq!(s.command(&["MULTI"]), ok());
    assert_eq!(
        s.command(&["NOMULTI"]),
        e("ERR Command not allowed inside a transaction")
    );
    assert_eq!(
        s.command(&["EXEC"]),
        e("EXECABORT Transaction discarded because of previous errors.")
    );
}

/// A view taken while transactions run contains each one wholly or not at
/// all: every transaction moves one unit from `a` to `b`, so a + b is
/// constant in every view.
#[test]
fn views_never_see_half_a_transaction() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    s.command(&["SET", "a", "1000000"]);
    s.command(&["SET", "b", "0"]);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let ks = ks.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut s = ks.session();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 20_000 {
                    s.command(&["MULTI"]);
                    s.command(&["DECR", "a"]);
                    s.command(&["INCR", "b"]);
                    let r = s.command(&["EXEC"]);
                    assert!(matches!(r, Frame::Array(ref v) if v.len() == 2), "{r:?}");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut views = 0;
    for _ in 0..200 {
        let Ok(view) = ks.view() else { continue };
        let mut sum = 0i64;
        for entry in view {
            sum += match entry.value {
                cairn_keyspace::Value::Int(n) => n,
                cairn_keyspace::Value::Str(b) => std::str::from_utf8(&b).unwrap().parse().unwrap(),
                other => panic!("unexpected {other:?}"),
            };
        }
        assert_eq!(sum, 1_000_000, "a view saw half a transaction");
        views += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let done: usize = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(views > 0 && done > 0);
}
