//! Point-in-time views under concurrent writers, and bulk loading.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use cairn_keyspace::{Key, Keyspace, LoadEntry, ManualClock, Value, ViewEntry, ViewError};
use cairn_resp::Frame;
use rand::{Rng, SeedableRng};

fn int_of(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        other => panic!("not an int: {other:?}"),
    }
}

/// 8 writer threads move amounts between 1,000 accounts (spread over two
/// databases) atomically; every view must sum to the invariant and hold each
/// account exactly once.
#[test]
fn view_is_a_consistent_cut_under_transfers() {
    let ks = Keyspace::builder().shards_per_db(16).build();
    const ACCOUNTS: usize = 1000;
    const START: i64 = 100;
    let name = |i: usize| format!("acct:{i}");
    let db_of = |i: usize| i % 2;
    for i in 0..ACCOUNTS {
        ks.atomic([(db_of(i), name(i).as_bytes())], |l| {
            l.shard(db_of(i), name(i).as_bytes())
                .set(name(i).as_bytes(), Value::Int(START), None);
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let seed: u64 = rand::rng().random();
    println!("seed {seed}");
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let ks = ks.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed + t);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (a, b) = (rng.random_range(0..ACCOUNTS), rng.random_range(0..ACCOUNTS));
                    if a == b {
                        continue;
                    }
                    let amt = rng.random_range(1..10);
                    let (ka, kb) = (name(a), name(b));
                    ks.atomic(
                        [(db_of(a), ka.as_bytes()), (db_of(b), kb.as_bytes())],
                        |l| {
                            let va = int_of(
                                l.shard(db_of(a), ka.as_bytes())
                                    .value(ka.as_bytes())
                                    .unwrap(),
                            );
                            let vb = int_of(
                                l.shard(db_of(b), kb.as_bytes())
                                    .value(kb.as_bytes())
                                    .unwrap(),
                            );
                            l.shard(db_of(a), ka.as_bytes()).set(
                                ka.as_bytes(),
                                Value::Int(va - amt),
                                None,
                            );
                            l.shard(db_of(b), kb.as_bytes()).set(
                                kb.as_bytes(),
                                Value::Int(vb + amt),
                                None,
                            );
                        },
                    );
                    n += 1;
                }
                n
            })
        })
        .collect();
    for round in 0..20 {
        let mut view = ks.view().unwrap();
        let mut seen = HashSet::new();
        let mut sum = 0;
        while let Some(batch) = view.next_batch(37) {
            for e in batch {
                assert!(seen.insert((e.db, e.key.clone())), "key twice: {e:?}");
                sum += int_of(&e.value);
            }
        }
        assert_eq!(seen.len(), ACCOUNTS, "round {round}");
        assert_eq!(sum, START * ACCOUNTS as i64, "round {round}");
    }
    stop.store(true, Ordering::Relaxed);
    let moves: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    println!(
        "transfers during views: {moves}, preserved entries: {}",
        ks.preserved_entries()
    );
    assert!(moves > 0);
}

/// A view iterated while its keys are overwritten and deleted yields the old
/// values, each key once; keys created after it are absent; only written
/// entries are copied aside.
#[test]
fn view_yields_old_values_and_copies_only_written_entries() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    for n in 0..10_000 {
        s.command(&["set", &format!("k{n}"), &format!("old{n}")]);
    }
    s.command(&["select", "5"]);
    s.command(&["set", "in5", "x"]);
    s.command(&["select", "0"]);
    let before = ks.preserved_entries();
    let mut view = ks.view().unwrap();
    assert_eq!(ks.view().err(), Some(ViewError::Busy));
    let mut got: HashMap<(u32, Bytes), Value> = HashMap::new();
    let mut batches = 0;
    while let Some(batch) = view.next_batch(100) {
        batches += 1;
        if batches == 3 {
            // Mutate everything mid-iteration: overwrite evens, delete odds,
            // add new keys, flush another db, swap two others.
            for n in 0..10_000 {
                if n % 2 == 0 {
                    s.command(&["set", &format!("k{n}"), "new"]);
                } else {
                    s.command(&["del", &format!("k{n}")]);
                }
                s.command(&["set", &format!("fresh{n}"), "v"]);
            }
            s.command(&["swapdb", "5", "6"]);
        }
        for ViewEntry { db, key, value, .. } in batch {
            assert!(
                got.insert((db, key.clone()), value).is_none(),
                "{key:?} twice"
            );
        }
    }
    assert_eq!(got.len(), 10_001);
    for n in 0..10_000 {
        let v = &got[&(0, Bytes::from(format!("k{n}")))];
        assert_eq!(v, &Value::string(format!("old{n}").as_bytes()));
    }
    assert!(got.contains_key(&(5, Bytes::from_static(b"in5"))));
    let copied = ks.preserved_entries() - before;
    println!(
        "preserved {copied} entries of 10001 (walked before the writes: {})",
        10_001 - copied
    );
    // Entries the walk had already copied out are not copied again.
    assert!(copied > 9_000 && copied < 10_001, "{copied}");
    drop(view);
    // Next view sees the new state.
    let got: Vec<_> = ks.view().unwrap().collect();
    assert_eq!(got.len(), 5_000 + 10_000 + 1);
    assert!(got.iter().any(|e| e.db == 6 && &e.key[..] == b"in5"));
    assert_eq!(s.command(&["get", "k0"]), Frame::bulk("new"));
}

/// Writes that never touch a view's entries copy nothing; reads copy nothing.
#[test]
fn untouched_view_copies_nothing() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    for n in 0..1000 {
        s.command(&["set", &format!("k{n}"), "v"]);
    }
    let before = ks.preserved_entries();
    let view = ks.view().unwrap();
    for n in 0..1000 {
        s.command(&["get", &format!("k{n}")]);
        s.command(&["set", &format!("other{n}"), "v"]);
    }
    assert_eq!(view.count(), 1000);
    assert_eq!(ks.preserved_entries(), before);
}

#[test]
fn view_skips_entries_expired_at_its_instant_and_load_skips_expired() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let ks = Keyspace::builder().clock(clock.clone()).build();
    let stats = ks.load_entries((0..100).map(|n| LoadEntry {
        db: (n % 3) as u32,
        key: Key::new(format!("k{n}").as_bytes()),
        expires_at_ms: Some(if n < 10 { 999_999 } else { 2_000_000 }),
        value: Value::Int(n),
    }));
    assert_eq!(stats.loaded, 90);
    assert_eq!(stats.expired_skipped, 10);
    let bad = ks.load_entries([LoadEntry {
        db: 99,
        key: Key::new(b"x"),
        expires_at_ms: None,
        value: Value::Int(1),
    }]);
    assert_eq!(bad.bad_db_skipped, 1);
    assert_eq!(ks.changes(), 0, "loading is not a change");
    clock.set(2_000_000);
    let mut view = ks.view().unwrap();
    assert_eq!(view.by_ref().count(), 0);
    assert_eq!(view.stats().expired_skipped, 90);
}

#[test]
fn changes_count_modified_keys() {
    let ks = Keyspace::new();
    let mut s = ks.session();
    let c0 = ks.changes();
    s.command(&["mset", "a", "1", "b", "2"]);
    assert_eq!(ks.changes() - c0, 2);
    s.command(&["get", "a"]);
    s.command(&["incr", "a"]);
    assert_eq!(ks.changes() - c0, 3);
    s.command(&["del", "a", "b", "zz"]);
    assert_eq!(ks.changes() - c0, 5);
}

/// One large shard walked in many chunks while, between chunks, keys are
/// added (the table grows and every bucket moves), deleted and overwritten:
/// the view still yields each original key exactly once, with its value at
/// the view's instant. Guards the walk's resume-by-bucket-index.
#[test]
fn chunked_walk_survives_resizes_and_removals_between_chunks() {
    let ks = Keyspace::builder().databases(1).shards_per_db(1).build();
    let mut s = ks.session();
    const N: usize = 5_000;
    for n in 0..N {
        s.command(&["set", &format!("k{n}"), &format!("old{n}")]);
    }
    let seed: u64 = rand::rng().random();
    println!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut view = ks.view().unwrap();
    let mut got: HashMap<Bytes, Value> = HashMap::new();
    let mut fresh = 0;
    while let Some(batch) = view.next_batch(7) {
        for e in batch {
            let key = e.key.clone();
            assert!(got.insert(e.key, e.value).is_none(), "{key:?} twice");
        }
        for _ in 0..20 {
            let k = format!("k{}", rng.random_range(0..N));
            match rng.random_range(0..3) {
                0 => {
                    s.command(&["del", &k]);
                }
                1 => {
                    s.command(&["set", &k, "new"]);
                }
                _ => {
                    s.command(&["set", &format!("fresh{fresh}"), "v"]);
                    fresh += 1;
                }
            }
        }
    }
    println!("keys added during the walk: {fresh}");
    assert!(fresh > N / 2, "the table must have grown during the walk");
    assert_eq!(got.len(), N);
    for n in 0..N {
        let v = &got[&Bytes::from(format!("k{n}"))];
        assert_eq!(v, &Value::string(format!("old{n}").as_bytes()), "k{n}");
    }
}

/// Keys and strings of every size class a view's walk treats differently
/// (empty, small, at and past the size staged in a chunk's buffer, large),
/// next to numbers and collections, come out byte for byte, also when they
/// are overwritten while the walk is under way.
#[test]
fn view_copies_keys_and_values_of_every_size_exactly() {
    let ks = Keyspace::builder().databases(1).shards_per_db(1).build();
    let mut s = ks.session();
    let sizes = [0usize, 1, 100, 4095, 4096, 4097, 70_000, 1 << 20];
    let mut expected: HashMap<Bytes, Value> = HashMap::new();
    for (i, &ksize) in sizes.iter().enumerate() {
        for (j, &vsize) in sizes.iter().enumerate() {
            // Distinct keys of length at least `ksize`: a tag, padded.
            let mut key = format!("{i}.{j}.").into_bytes();
            key.resize(key.len().max(ksize), b'k');
            let value: Vec<u8> = (0..vsize).map(|n| (n % 251) as u8).collect();
            s.command(&[b"set".as_slice(), &key, &value]);
            expected.insert(Bytes::from(key), Value::string(&value));
        }
    }
    s.command(&["set", "number", "12345"]);
    expected.insert(Bytes::from_static(b"number"), Value::Int(12345));
    // Enough keys for several chunks, so most are still unwalked (and so
    // preserved when written) after the first batch.
    for n in 0..1_000 {
        let (key, value) = (format!("filler{n}"), format!("v{n}"));
        s.command(&["set", &key, &value]);
        expected.insert(Bytes::from(key), Value::string(value.as_bytes()));
    }
    s.command(&["rpush", "list", "a", "b"]);
    let mut view = ks.view().unwrap();
    let mut got: HashMap<Bytes, Value> = HashMap::new();
    let mut first = true;
    while let Some(batch) = view.next_batch(5) {
        if first {
            // Overwrite everything after the first batch: the rest must come
            // out as it was when the view was taken.
            first = false;
            for key in expected.keys() {
                s.command(&[b"set".as_slice(), key, b"new"]);
            }
            s.command(&["rpush", "list", "c"]);
        }
        for e in batch {
            let key = e.key.clone();
            assert!(got.insert(e.key, e.value).is_none(), "{key:?} twice");
        }
    }
    assert!(ks.preserved_entries() > 500, "{}", ks.preserved_entries());
    let list = got.remove(&Bytes::from_static(b"list")).unwrap();
    match list {
        Value::List(l) => assert_eq!(l.len(), 2),
        other => panic!("not a list: {other:?}"),
    }
    assert_eq!(got.len(), expected.len());
    for (key, value) in &expected {
        assert_eq!(got.get(key), Some(value), "key of {} bytes", key.len());
    }
}
