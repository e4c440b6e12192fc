//! maxmemory and eviction with a model allocator whose "used memory" is
//! 1,000 bytes per key of database 0 plus what the test adds: every
//! figure, and so every decision, is exact. The real allocator, over TCP,
//! is in crates/server/tests/eviction.rs.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use cairn_keyspace::{AllocatorReading, AllocatorStats, Keyspace, ManualClock};
use cairn_resp::Frame;

const T0: i64 = 1_765_000_000_000;
const PER_KEY: u64 = 1000;
const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// Used memory = keys in db 0 × 1,000 + `extra`.
#[derive(Default)]
struct Model {
    ks: OnceLock<Keyspace>,
    extra: AtomicU64,
}

impl AllocatorStats for Model {
    fn name(&self) -> String {
        "model".into()
    }
    fn read(&self) -> Option<AllocatorReading> {
        let keys = self.ks.get().map_or(0, |ks| ks.dbsize(0) as u64);
        Some(AllocatorReading {
            allocated: keys * PER_KEY + self.extra.load(Ordering::Relaxed),
            active: None,
            resident: None,
        })
    }
}

fn setup(policy: &str, maxmemory: u64) -> (Arc<ManualClock>, Arc<Model>, Keyspace) {
    let clock = Arc::new(ManualClock::new(T0));
    let model = Arc::new(Model::default());
    let ks = Keyspace::builder()
        .clock(clock.clone())
        .allocator_stats(model.clone())
        .build();
    let _ = model.ks.set(ks.clone());
    let mut s = ks.session();
    for (k, v) in [
        ("maxmemory-policy", policy.to_owned()),
        ("maxmemory", maxmemory.to_string()),
    ] {
        assert_eq!(s.command(&["CONFIG", "SET", k, &v]), Frame::ok());
    }
    (clock, model, ks)
}

fn error(f: &Frame) -> Option<String> {
    match f {
        Frame::Error(e) => Some(String::from_utf8_lossy(e).into_owned()),
        _ => None,
    }
}

fn info_field(ks: &Keyspace, section: &str, name: &str) -> String {
    let text = ks.info(&[section]);
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("{name} not in {text}"))
        .to_owned()
}

#[test]
fn noeviction_refuses_denyoom_commands_and_serves_the_rest() {
    let (_, _, ks) = setup("noeviction", 2500);
    let mut s = ks.session();
    for k in ["a", "b", "c"] {
        assert_eq!(s.command(&["SET", k, "v"]), Frame::ok());
    }
    // 3,000 > 2,500: writes that may grow memory are refused ...
    assert_eq!(error(&s.command(&["SET", "d", "v"])).as_deref(), Some(OOM));
    assert_eq!(
        error(&s.command(&["LPUSH", "l", "v"])).as_deref(),
        Some(OOM)
    );
    assert_eq!(
        error(&s.command(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"])).as_deref(),
        Some(OOM),
        "a subcommand's own denyoom flag"
    );
    // ... reads, deletes and other commands are served.
    assert_eq!(s.command(&["GET", "a"]), Frame::bulk("v"));
    assert_eq!(s.command(&["EXPIRE", "a", "100"]), Frame::Integer(1));
    assert_eq!(s.command(&["DEL", "a"]), Frame::Integer(1));
    // 2,000: under the limit again.
    assert_eq!(s.command(&["SET", "d", "v"]), Frame::ok());
    assert_eq!(info_field(&ks, "stats", "evicted_keys"), "0");
    assert_eq!(info_field(&ks, "memory", "maxmemory_human"), "2.44K");
}

#[test]
fn inside_multi_every_command_is_refused_and_exec_aborts() {
    let (_, model, ks) = setup("noeviction", 2500);
    let mut s = ks.session();
    s.command(&["SET", "a", "v"]);
    assert_eq!(s.command(&["MULTI"]), Frame::ok());
    assert_eq!(s.command(&["GET", "a"]), Frame::simple("QUEUED"));
    model.extra.store(10_000, Ordering::Relaxed);
    // Queueing takes memory: even a read is refused, and dooms EXEC.
    assert_eq!(error(&s.command(&["GET", "a"])).as_deref(), Some(OOM));
    assert_eq!(
        error(&s.command(&["EXEC"])).as_deref(),
        Some("EXECABORT Transaction discarded because of previous errors.")
    );
    // A queue filled before the limit was crossed: EXEC holds a denyoom
    // command and is refused itself.
    model.extra.store(0, Ordering::Relaxed);
    s.command(&["MULTI"]);
    s.command(&["SET", "b", "v"]);
    model.extra.store(10_000, Ordering::Relaxed);
    assert_eq!(
        error(&s.command(&["EXEC"])).as_deref(),
        Some(&*format!(
            "EXECABORT Transaction discarded because of: {OOM}"
        ))
    );
    // DISCARD is never refused; a queue of reads executes.
    model.extra.store(0, Ordering::Relaxed);
    s.command(&["MULTI"]);
    s.command(&["GET", "a"]);
    model.extra.store(10_000, Ordering::Relaxed);
    assert_eq!(s.command(&["EXEC"]), Frame::Array(vec![Frame::bulk("v")]));
    s.command(&["MULTI"]);
    assert_eq!(s.command(&["DISCARD"]), Frame::ok());
}

#[test]
fn allkeys_lru_evicts_the_least_recently_used_through_the_del_path() {
    let (clock, _, ks) = setup("allkeys-lru", 3500);
    let mut s = ks.session();
    let mut watcher = ks.session();
    s.command(&["SET", "k1", "v"]);
    clock.advance(10_000);
    s.command(&["SET", "k2", "v"]);
    assert_eq!(watcher.command(&["WATCH", "k2"]), Frame::ok());
    clock.advance(10_000);
    s.command(&["SET", "k3", "v"]);
    clock.advance(10_000);
    // k1 is read again: k2 is now the least recently used.
    s.command(&["GET", "k1"]);
    clock.advance(10_000);
    s.command(&["SET", "k4", "v"]);
    clock.advance(10_000);
    assert_eq!(ks.evicted_keys(), 0);
    // 4,000 > 3,500: as in Redis, any command evicts first (here exactly
    // the least recently used: the sample sees every key).
    assert_eq!(s.command(&["DBSIZE"]), Frame::Integer(3));
    assert_eq!(s.command(&["EXISTS", "k2"]), Frame::Integer(0));
    assert_eq!(s.command(&["EXISTS", "k1", "k3", "k4"]), Frame::Integer(3));
    assert_eq!(ks.evicted_keys(), 1);
    assert_eq!(info_field(&ks, "stats", "evicted_keys"), "1");
    // The eviction touched the WATCHed key, as DEL would.
    watcher.command(&["MULTI"]);
    watcher.command(&["SET", "x", "y"]);
    assert_eq!(watcher.command(&["EXEC"]), Frame::NullArray);
    // Then k3, the oldest left (k1 was read at +30 s, k3 written at +20 s).
    s.command(&["DEL", "x"]);
    s.command(&["SET", "k5", "v"]);
    assert_eq!(s.command(&["EXISTS", "k3"]), Frame::Integer(0));
    assert_eq!(s.command(&["EXISTS", "k1", "k4", "k5"]), Frame::Integer(3));
    assert_eq!(ks.evicted_keys(), 2);
    assert_eq!(s.command(&["CONFIG", "RESETSTAT"]), Frame::ok());
    assert_eq!(ks.evicted_keys(), 0);
}

#[test]
fn allkeys_lfu_keeps_the_frequently_read() {
    let (_, _, ks) = setup("allkeys-lfu", 3500);
    let mut s = ks.session();
    for k in ["hot", "cold1", "cold2"] {
        s.command(&["SET", k, "v"]);
    }
    // The first accesses always raise the counter (it starts at 5).
    for _ in 0..3 {
        s.command(&["GET", "hot"]);
    }
    for k in ["cold3", "cold4", "cold5"] {
        s.command(&["SET", k, "v"]);
    }
    // Each SET from the second on, and this EXISTS, evicted a cold key.
    assert_eq!(s.command(&["EXISTS", "hot"]), Frame::Integer(1));
    assert_eq!(ks.evicted_keys(), 3);
    assert_eq!(ks.dbsize(0), 3);
}

#[test]
fn volatile_policies_touch_only_keys_with_a_ttl() {
    let (_, _, ks) = setup("volatile-ttl", 3500);
    let mut s = ks.session();
    s.command(&["SET", "p1", "v"]);
    s.command(&["SET", "long", "v", "EX", "10000"]);
    s.command(&["SET", "short", "v", "EX", "100"]);
    s.command(&["SET", "p2", "v"]);
    // Over: the key closest to expiring goes.
    s.command(&["SET", "p3", "v"]);
    assert_eq!(s.command(&["EXISTS", "short"]), Frame::Integer(0));
    s.command(&["SET", "p4", "v"]);
    assert_eq!(s.command(&["EXISTS", "long"]), Frame::Integer(0));
    // No volatile key left: nothing can be freed, writes get -OOM.
    assert_eq!(error(&s.command(&["SET", "p5", "v"])).as_deref(), Some(OOM));
    assert_eq!(
        s.command(&["EXISTS", "p1", "p2", "p3", "p4"]),
        Frame::Integer(4)
    );
    for policy in ["volatile-lru", "volatile-lfu", "volatile-random"] {
        s.command(&["CONFIG", "SET", "maxmemory-policy", policy]);
        assert_eq!(
            error(&s.command(&["SET", "p5", "v"])).as_deref(),
            Some(OOM),
            "{policy}"
        );
    }
    assert_eq!(ks.evicted_keys(), 2);
}

#[test]
fn an_eviction_under_a_view_leaves_the_view_intact() {
    let (_, model, ks) = setup("allkeys-random", 1_000_000);
    let mut s = ks.session();
    for i in 0..50 {
        s.command(&["SET", &format!("k{i}"), &format!("v{i}")]);
    }
    // No time limit: the eviction goes on until nothing is left.
    s.command(&["CONFIG", "SET", "maxmemory-eviction-tenacity", "100"]);
    let mut view = ks.view().unwrap();
    // Far over the limit: everything evictable goes (the model's memory
    // does not drop), then the write is refused.
    model.extra.store(10_000_000, Ordering::Relaxed);
    assert_eq!(
        error(&s.command(&["SET", "new", "v"])).as_deref(),
        Some(OOM)
    );
    assert_eq!(ks.dbsize(0), 0);
    assert_eq!(ks.evicted_keys(), 50);
    let mut seen = std::collections::BTreeMap::new();
    while let Some(batch) = view.next_batch(7) {
        for e in batch {
            let v = match e.value {
                cairn_keyspace::Value::Str(b) => String::from_utf8(b.to_vec()).unwrap(),
                other => panic!("{other:?}"),
            };
            seen.insert(String::from_utf8(e.key.to_vec()).unwrap(), v);
        }
    }
    assert_eq!(seen.len(), 50, "{seen:?}");
    for i in 0..50 {
        assert_eq!(seen[&format!("k{i}")], format!("v{i}"));
    }
}

#[test]
fn config_set_maxmemory_needs_allocator_statistics() {
    let ks = Keyspace::builder().build();
    let mut s = ks.session();
    let e = error(&s.command(&["CONFIG", "SET", "maxmemory", "10mb"])).unwrap();
    assert!(
        e.starts_with(
            "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - maxmemory needs the allocator's count of used memory"
        ),
        "{e}"
    );
    assert_eq!(s.command(&["CONFIG", "SET", "maxmemory", "0"]), Frame::ok());
    // Set through the builder: not applied either (logged).
    let ks = Keyspace::builder().config_param("maxmemory", "1mb").build();
    assert_eq!(ks.config_param("maxmemory").as_deref(), Some("0"));
}
