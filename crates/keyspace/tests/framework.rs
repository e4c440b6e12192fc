//! The command framework: extensions and their hooks, subcommand errors,
//! CONFIG SET, the Service/Session contract.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_keyspace::{CommandSpec, Completion, Ctx, Extension, Flags, Keyspace, Value};
use cairn_resp::{ConnInfo, Frame, Outcome, Service, Session as _};

struct Saver {
    saves: AtomicU64,
}

impl Extension for Saver {
    fn commands(&self) -> Vec<CommandSpec> {
        vec![
            // EXCLUSIVE: a command that takes a view must hold the gate for write.
            CommandSpec::new("save", 1, Flags::ADMIN | Flags::EXCLUSIVE, "server"),
            CommandSpec::new("lastsave", 1, Flags::FAST, "server"),
            CommandSpec::new("badsave", 1, Flags::ADMIN, "server"),
        ]
    }

    fn call(&self, ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
        match ctx.command() {
            "save" => {
                // A real SAVE would iterate this view.
                let n = ctx.keyspace().view().map(|v| v.count()).unwrap_or(0);
                self.saves.fetch_add(1, Ordering::Relaxed);
                Frame::Integer(n as i64)
            }
            "badsave" => match ctx.keyspace().view() {
                Err(e) => Frame::error(format!("ERR {e}")),
                Ok(_) => Frame::ok(),
            },
            _ => Frame::Integer(self.saves.load(Ordering::Relaxed) as i64),
        }
    }

    fn info_sections(&self) -> Vec<&'static str> {
        vec!["persistence"]
    }

    fn info(&self, _ks: &Keyspace, section: &str) -> Option<String> {
        (section == "persistence")
            .then(|| format!("rdb_saves:{}\r\n", self.saves.load(Ordering::Relaxed)))
    }

    fn config_set(&self, _ks: &Keyspace, name: &str, value: &[u8]) -> Option<Result<(), String>> {
        (name == "save").then(|| {
            if value == b"bad" {
                Err("Invalid save parameters".into())
            } else {
                Ok(())
            }
        })
    }
}

#[test]
fn extension_commands_info_and_config() {
    let ext = Arc::new(Saver {
        saves: AtomicU64::new(0),
    });
    let ks = Keyspace::builder().extension(ext).build();
    let mut s = ks.session();
    s.command(&["set", "a", "1"]);
    assert_eq!(s.command(&["SAVE"]), Frame::Integer(1));
    assert_eq!(s.command(&["lastsave"]), Frame::Integer(1));
    // A view from a non-EXCLUSIVE command is refused instead of deadlocking.
    assert_eq!(
        s.command(&["badsave"]),
        Frame::error(
            "ERR keyspace view error: a view can only be taken outside commands or by an EXCLUSIVE command"
        )
    );
    assert!(ks.view().is_ok(), "the refused attempt left no view behind");
    assert_eq!(
        s.command(&["save", "x"]),
        Frame::error("ERR wrong number of arguments for 'save' command")
    );
    let Frame::Verbatim { text, .. } = s.command(&["info", "persistence"]) else {
        panic!()
    };
    assert_eq!(
        String::from_utf8_lossy(&text),
        "# Persistence\r\nrdb_saves:1\r\n"
    );
    assert_eq!(s.command(&["config", "set", "save", "900 1"]), Frame::ok());
    assert_eq!(
        s.command(&["config", "get", "save"]),
        Frame::Map(vec![(Frame::bulk("save"), Frame::bulk("900 1"))])
    );
    assert_eq!(
        s.command(&["config", "set", "save", "bad"]),
        Frame::error(
            "ERR CONFIG SET failed (possibly related to argument 'save') - Invalid save parameters"
        )
    );
    assert_eq!(
        s.command(&["config", "set", "foo", "bar"]),
        Frame::error("ERR Unknown option or number of arguments for CONFIG SET - 'foo'")
    );
    let Frame::Array(info) = s.command(&["command", "info", "save"]) else {
        panic!()
    };
    assert!(matches!(&info[0], Frame::Array(v) if v[0] == Frame::bulk("save")));
}

#[test]
fn subcommand_errors_match_redis() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    assert_eq!(
        s.command(&["client"]),
        Frame::error("ERR wrong number of arguments for 'client' command")
    );
    assert_eq!(
        s.command(&["client", "foo"]),
        Frame::error("ERR unknown subcommand 'foo'. Try CLIENT HELP.")
    );
    assert_eq!(
        s.command(&["client", "setname"]),
        Frame::error("ERR wrong number of arguments for 'client|setname' command")
    );
    assert_eq!(
        s.command(&["config", "get"]),
        Frame::error("ERR wrong number of arguments for 'config|get' command")
    );
    assert_eq!(
        s.command(&["config", "foo"]),
        Frame::error("ERR unknown subcommand 'foo'. Try CONFIG HELP.")
    );
    assert_eq!(
        s.command(&["command", "count", "x"]),
        Frame::error("ERR wrong number of arguments for 'command|count' command")
    );
    assert_eq!(
        s.command(&["client", "setname", "a b"]),
        Frame::error("ERR Client names cannot contain spaces, newlines or special characters.")
    );
    assert_eq!(
        s.command(&["flushall", "x"]),
        Frame::error("ERR syntax error")
    );
    assert_eq!(
        s.command(&["swapdb", "0", "x"]),
        Frame::error("ERR invalid second DB index")
    );
    assert_eq!(
        s.command(&["auth", "a"]),
        Frame::error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
        )
    );
    let r = s.command(&["scan", "-1"]);
    let Frame::Array(r) = r else { panic!("{r:?}") };
    assert_eq!(r[0], Frame::bulk("0"));
}

#[test]
fn service_sessions_count_clients_and_quit_closes() {
    let ks = Keyspace::new();
    let info = |id| ConnInfo {
        id,
        peer: "127.0.0.1:1".parse().unwrap(),
        local: "127.0.0.1:6379".parse().unwrap(),
    };
    let (mut a, _rx_a) = ks.open(info(7));
    let (b, _rx_b) = ks.open(info(8));
    assert_eq!(ks.connected_clients(), 2);
    let Outcome::Reply(Frame::Integer(7)) = a.call(vec![Bytes::from("client"), Bytes::from("id")])
    else {
        panic!()
    };
    let Outcome::Close(reply) = a.call(vec![Bytes::from("QUIT")]) else {
        panic!()
    };
    assert_eq!(reply, Frame::ok());
    a.closed();
    a.closed();
    assert_eq!(ks.connected_clients(), 1);
    drop(b);
    drop(a);
    assert_eq!(ks.connected_clients(), 0);
}

/// Arguments for `Session::execute`.
fn args(words: &[&str]) -> Vec<Bytes> {
    words
        .iter()
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect()
}

/// Counts a waited-for future dropped before its work was done.
struct DropWatch {
    done: bool,
    dropped_early: Arc<AtomicU64>,
}

impl Drop for DropWatch {
    fn drop(&mut self) {
        if !self.done {
            self.dropped_early.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Records what the keyspace tells its extensions: FLUSHALLs and applied
/// CONFIG SETs.
#[derive(Default)]
struct Hooks {
    /// Whether `after_flushall` hands FLUSHALL work to wait for.
    wait: AtomicBool,
    /// Keys in a view taken inside each `after_flushall` (`usize::MAX`:
    /// the view was refused).
    keys_at_flush: Mutex<Vec<usize>>,
    /// Finishes the work of each FLUSHALL that waits, oldest first.
    work: Mutex<Vec<tokio::sync::oneshot::Sender<()>>>,
    dropped_early: Arc<AtomicU64>,
    /// (name, value, what CONFIG GET gave for the name during the call).
    applied: Mutex<Vec<(String, String, Option<String>)>>,
}

impl Extension for Hooks {
    fn commands(&self) -> Vec<CommandSpec> {
        Vec::new()
    }

    fn call(&self, _ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
        Frame::error("ERR no commands")
    }

    fn config_set(&self, _ks: &Keyspace, name: &str, value: &[u8]) -> Option<Result<(), String>> {
        (name == "hooks-param").then(|| {
            if value == b"bad" {
                Err("bad value".to_string())
            } else {
                Ok(())
            }
        })
    }

    fn config_applied(&self, ks: &Keyspace, name: &str, value: &str) {
        self.applied.lock().unwrap().push((
            name.to_string(),
            value.to_string(),
            ks.config_param(name),
        ));
    }

    fn after_flushall(&self, ks: &Keyspace) -> Option<Completion> {
        let keys = ks.view().map(|v| v.count()).unwrap_or(usize::MAX);
        self.keys_at_flush.lock().unwrap().push(keys);
        if !self.wait.load(Ordering::Relaxed) {
            return None;
        }
        // The "work" the extension started: done when the test says so.
        let (done, wait) = tokio::sync::oneshot::channel();
        self.work.lock().unwrap().push(done);
        let watch = DropWatch {
            done: false,
            dropped_early: self.dropped_early.clone(),
        };
        Some(Box::pin(async move {
            // The whole guard moves into the future, not just its flag.
            let mut watch = watch;
            let _ = wait.await;
            watch.done = true;
        }))
    }
}

/// SETs fresh keys `w{n}` from another thread until stopped; returns how
/// many once it has written its first.
struct Writer {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl Writer {
    fn start(ks: &Keyspace, prefix: &'static str) -> (Writer, Arc<AtomicU64>) {
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let (ks, stop2, written2) = (ks.clone(), stop.clone(), written.clone());
        let thread = std::thread::spawn(move || {
            let mut s = ks.session();
            let mut n = 0;
            while !stop2.load(Ordering::Relaxed) {
                assert_eq!(
                    s.command(&["set", &format!("{prefix}{n}"), "x"]),
                    Frame::ok()
                );
                n += 1;
                written2.store(n, Ordering::Release);
            }
            n
        });
        (Writer { stop, thread }, written)
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// Waits (10 s at most) until `counter` reaches `at_least`.
fn wait_for(counter: &AtomicU64, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while counter.load(Ordering::Acquire) < at_least {
        assert!(
            Instant::now() < deadline,
            "no progress to {at_least} within 10 s"
        );
        std::thread::yield_now();
    }
}

fn poll_once(f: &mut cairn_resp::Pending) -> std::task::Poll<Frame> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    f.as_mut().poll(&mut cx)
}

/// FLUSHALL calls `after_flushall` while still holding the gate for write
/// (a view taken there is empty although another client writes all the
/// time) and answers `+OK` only when the returned work is done, without
/// holding the gate meanwhile; inside EXEC the work's future is dropped
/// and EXEC answers at once; FLUSHDB calls nothing.
#[tokio::test]
async fn flushall_waits_for_the_work_an_extension_started_after_the_flush() {
    let hooks = Arc::new(Hooks::default());
    hooks.wait.store(true, Ordering::Relaxed);
    let ks = Keyspace::builder().extension(hooks.clone()).build();
    let mut a = ks.session();
    for i in 0..100 {
        a.command(&["set", &format!("k{i}"), "v"]);
    }
    let (writer, written) = Writer::start(&ks, "w");
    for (round, flush) in [
        &["FLUSHALL"][..],
        &["flushall", "async"],
        &["FLUSHALL", "SYNC"],
    ]
    .into_iter()
    .enumerate()
    {
        wait_for(&written, 1 + 100 * round as u64);
        let Outcome::Block(mut reply) = a.execute(args(flush)) else {
            panic!("{flush:?} did not wait for the extension's work");
        };
        assert_eq!(
            hooks.keys_at_flush.lock().unwrap().last(),
            Some(&0),
            "{flush:?}: the view taken right after the flush holds keys"
        );
        assert!(
            poll_once(&mut reply).is_pending(),
            "{flush:?} answered before the work was done"
        );
        // The gate is free while the reply waits: other clients' commands
        // complete, and so can another FLUSHALL.
        let progress = written.load(Ordering::Acquire);
        wait_for(&written, progress + 100);
        assert_eq!(ks.session().command(&["set", "during", "1"]), Frame::ok());
        assert!(poll_once(&mut reply).is_pending());
        let work = hooks.work.lock().unwrap().pop().unwrap();
        work.send(()).unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(10), reply)
            .await
            .expect("FLUSHALL did not answer within 10 s of its work being done");
        assert_eq!(reply, Frame::ok(), "{flush:?}");
    }
    assert_eq!(hooks.dropped_early.load(Ordering::Relaxed), 0);

    // FLUSHDB is no FLUSHALL.
    let Outcome::Reply(Frame::Simple(_)) = a.execute(args(&["flushdb"])) else {
        panic!("FLUSHDB did not answer at once");
    };
    assert_eq!(hooks.keys_at_flush.lock().unwrap().len(), 3);

    // Inside EXEC the transaction answers at once; the work's future is
    // dropped unpolled, the work itself goes on (the extension owns it).
    assert_eq!(a.command(&["multi"]), Frame::ok());
    assert_eq!(a.command(&["flushall"]), Frame::simple("QUEUED"));
    assert_eq!(a.command(&["set", "after", "1"]), Frame::simple("QUEUED"));
    let Outcome::Reply(reply) = a.execute(args(&["exec"])) else {
        panic!("EXEC waited for the work of the FLUSHALL it ran");
    };
    assert_eq!(reply, Frame::Array(vec![Frame::ok(), Frame::ok()]));
    assert_eq!(hooks.keys_at_flush.lock().unwrap().len(), 4);
    assert_eq!(hooks.dropped_early.load(Ordering::Relaxed), 1);
    assert_eq!(
        hooks.work.lock().unwrap().len(),
        1,
        "the work was handed over"
    );

    // An extension with nothing to wait for leaves FLUSHALL's reply alone.
    hooks.wait.store(false, Ordering::Relaxed);
    let Outcome::Reply(reply) = a.execute(args(&["flushall"])) else {
        panic!("FLUSHALL waited with no work to wait for");
    };
    assert_eq!(reply, Frame::ok());
    assert!(writer.stop() > 0);
}

/// After a CONFIG SET stored its values, every extension hears of each
/// parameter set, lowercase and as stored (normalised), its own ones
/// included; a refused CONFIG SET stores and reports nothing.
#[test]
fn config_applied_reports_each_parameter_a_config_set_stored() {
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
    let hooks = Arc::new(Hooks::default());
    let ks = Keyspace::builder()
        .extension(hooks.clone())
        .allocator_stats(Arc::new(Small))
        .build();
    let mut s = ks.session();
    let applied = || std::mem::take(&mut *hooks.applied.lock().unwrap());
    assert_eq!(
        s.command(&[
            "CONFIG",
            "SET",
            "MaxMemory",
            "1mb",
            "stop-writes-on-bgsave-error",
            "NO"
        ]),
        Frame::ok()
    );
    assert_eq!(
        applied(),
        vec![
            ("maxmemory".into(), "1048576".into(), Some("1048576".into())),
            (
                "stop-writes-on-bgsave-error".into(),
                "no".into(),
                Some("no".into())
            ),
        ]
    );
    // All or nothing: the second pair is refused, so the first is not
    // stored and nothing is reported.
    assert!(matches!(
        s.command(&["config", "set", "hz", "20", "hooks-param", "bad"]),
        Frame::Error(_)
    ));
    assert!(matches!(
        s.command(&["config", "set", "hz", "20", "maxmemory", "lots"]),
        Frame::Error(_)
    ));
    assert_eq!(applied(), vec![]);
    assert_eq!(ks.config_param("hz").as_deref(), Some("10"));
    // A parameter only the extension knows, validated by its `config_set`.
    assert_eq!(
        s.command(&["config", "set", "HOOKS-PARAM", "on", "save", "900 1"]),
        Frame::ok()
    );
    assert_eq!(
        applied(),
        vec![
            ("hooks-param".into(), "on".into(), Some("on".into())),
            ("save".into(), "900 1".into(), Some("900 1".into())),
        ]
    );
}

/// Snapshots from an EXCLUSIVE extension command named like a Redis command
/// (so `COMMAND INFO` reports Redis' metadata for it).
#[derive(Default)]
struct Snapshotter {
    /// The view the command took, and the number of keys at that moment.
    taken: Mutex<Option<(cairn_keyspace::View, usize)>>,
}

impl Extension for Snapshotter {
    fn commands(&self) -> Vec<CommandSpec> {
        vec![CommandSpec::new(
            "bgsave",
            -1,
            Flags::ADMIN | Flags::NOSCRIPT | Flags::EXCLUSIVE,
            "server",
        )]
    }

    fn call(&self, ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
        let ks = ctx.keyspace();
        match ks.view() {
            Ok(view) => {
                // No command runs while this one holds the gate for write:
                // the count is the view's.
                *self.taken.lock().unwrap() = Some((view, ks.dbsize(0)));
                Frame::simple("Background saving started")
            }
            Err(e) => Frame::error(format!("ERR {e}")),
        }
    }
}

/// A view taken inside an EXCLUSIVE extension command is the cut between
/// that command and the next: a `DEL k` pipelined right after it by the
/// same client is not in it, and neither is anything other clients wrote
/// afterwards, while all they wrote before is.
#[test]
fn a_view_taken_by_an_exclusive_extension_command_is_the_cut_after_it() {
    let snap = Arc::new(Snapshotter::default());
    let ks = Keyspace::builder().extension(snap.clone()).build();
    let mut a = ks.session();
    assert_eq!(a.command(&["set", "k", "before"]), Frame::ok());
    let (w1, written1) = Writer::start(&ks, "one:");
    let (w2, written2) = Writer::start(&ks, "two:");
    wait_for(&written1, 100);
    wait_for(&written2, 100);
    let Outcome::Reply(reply) = a.execute(args(&["BGSAVE"])) else {
        panic!("BGSAVE blocked")
    };
    assert_eq!(reply, Frame::simple("Background saving started"));
    let Outcome::Reply(deleted) = a.execute(args(&["DEL", "k"])) else {
        panic!("DEL blocked")
    };
    assert_eq!(deleted, Frame::Integer(1));
    let (after1, after2) = (
        written1.load(Ordering::Acquire),
        written2.load(Ordering::Acquire),
    );
    wait_for(&written1, after1 + 100);
    wait_for(&written2, after2 + 100);
    let (n1, n2) = (w1.stop(), w2.stop());

    let (view, keys_at_cut) = snap.taken.lock().unwrap().take().unwrap();
    let mut seen: HashMap<Vec<u8>, Value> = HashMap::new();
    for e in view {
        assert_eq!(e.db, 0);
        assert!(
            seen.insert(e.key.to_vec(), e.value).is_none(),
            "a key came twice"
        );
    }
    assert_eq!(
        seen.get(&b"k"[..]),
        Some(&Value::Str(Box::from(&b"before"[..])))
    );
    assert_eq!(seen.len(), keys_at_cut);
    // Each writer's keys in the view are a prefix of what it wrote: the
    // view is a cut between two of its commands.
    for (prefix, total) in [("one:", n1), ("two:", n2)] {
        let in_view = (0..total)
            .take_while(|n| seen.contains_key(format!("{prefix}{n}").as_bytes()))
            .count() as u64;
        assert!(
            in_view >= 100,
            "{prefix}: {in_view} keys written before the cut"
        );
        assert!(in_view < total, "{prefix}: nothing written after the cut");
        let stray = (in_view..total)
            .filter(|n| seen.contains_key(format!("{prefix}{n}").as_bytes()))
            .count();
        assert_eq!(
            stray, 0,
            "{prefix}: keys written after the cut are in the view"
        );
    }
    assert_eq!(ks.dbsize(0) as u64, n1 + n2);
}
