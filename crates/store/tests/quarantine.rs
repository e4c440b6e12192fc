//! The quarantine is bounded (`quarantine_retain`, oldest deleted first),
//! and what the store reports about its disk usage is kept in memory.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::mpsc;
use std::time::Duration;

use cairn_snapshot::Record;
use cairn_store::{LoadPolicy, LoadSink, SinkError, Store};
use common::*;

/// Commits a generation, damages it and loads: the load quarantines it.
fn quarantine_one(store: &Store, tag: u8) -> u64 {
    let data = store.dir().to_path_buf();
    let g = commit(store, &records(tag, 300));
    damage_seal(&data, g);
    let (report, _) = load(store);
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert_eq!(report.failures[0].generation, g);
    g
}

fn measured(store: &Store) -> (u64, u64) {
    let q = store.dir().join("quarantine");
    let names = quarantined(store.dir());
    let bytes = names.iter().map(|n| allocated(&q.join(n))).sum();
    (names.len() as u64, bytes)
}

#[test]
fn the_quarantine_keeps_the_newest_entries_up_to_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::builder(dir.path())
        .quarantine_retain(2)
        .open()
        .unwrap();
    commit(&store, &records(1, 100));
    let mut bad = Vec::new();
    for i in 0..5u8 {
        bad.push(quarantine_one(&store, 10 + i));
        let kept: Vec<String> = bad
            .iter()
            .rev()
            .take(2)
            .rev()
            .map(|g| format!("{g:020}-seal"))
            .collect();
        assert_eq!(quarantined(dir.path()), kept, "after {} quarantined", i + 1);
        let info = store.quarantined();
        assert_eq!((info.entries, info.bytes), measured(&store));
        assert!(info.bytes > 0);
    }
    // A damaged CURRENT counts too, and is the newest entry.
    std::fs::write(dir.path().join("CURRENT"), b"garbage").unwrap();
    let (report, _) = load(&store);
    assert!(report.current_damaged.is_some());
    let q = quarantined(dir.path());
    assert_eq!(q.len(), 2, "{q:?}");
    assert!(q.contains(&format!("{:020}-seal", bad[4])), "{q:?}");
    assert!(q.iter().any(|n| n.starts_with("CURRENT-")), "{q:?}");
    assert_eq!(store.quarantined().entries, 2);
}

#[test]
fn open_applies_a_lower_bound_and_finishes_interrupted_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    commit(&store, &records(1, 100));
    let bad: Vec<u64> = (0..4u8).map(|i| quarantine_one(&store, 20 + i)).collect();
    assert_eq!(quarantined(dir.path()).len(), 4, "the default bound is 4");
    assert_eq!(store.quarantined().entries, 4);
    drop(store);

    // A delete interrupted by a crash.
    let q = dir.path().join("quarantine");
    std::fs::create_dir_all(q.join("00000000000000000001-seal.deleting/db")).unwrap();
    let store = Store::builder(dir.path())
        .quarantine_retain(1)
        .open()
        .unwrap();
    assert_eq!(
        quarantined(dir.path()),
        vec![format!("{:020}-seal", bad[3])]
    );
    let info = store.quarantined();
    assert_eq!((info.entries, info.bytes), measured(&store));
    assert_eq!(info.entries, 1);
    // Generation numbers still never go back, also past a deleted entry.
    let g = commit(&store, &records(2, 10));
    assert!(g > bad[3]);
}

#[test]
fn disk_usage_is_kept_in_memory_by_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.disk_usage().generations, 0);
    let mut committed = Vec::new();
    for i in 0..4u8 {
        let mut w = store.begin().unwrap();
        for r in records(i, 500) {
            w.write(&r).unwrap();
        }
        let c = w.commit().unwrap();
        assert_eq!(c.bytes, allocated(&gen_dir(dir.path(), c.generation)));
        committed.push(c);
        let usage = store.disk_usage();
        let on_disk: Vec<u64> = store.generations().unwrap();
        assert_eq!(usage.generations, on_disk.len() as u64);
        let bytes: u64 = on_disk
            .iter()
            .map(|&g| allocated(&gen_dir(dir.path(), g)))
            .sum();
        assert_eq!(usage.generation_bytes, bytes);
    }
    // Retention (2) is reflected.
    assert_eq!(store.disk_usage().generations, 2);
    quarantine_one(&store, 9);
    let usage = store.disk_usage();
    assert_eq!(usage.quarantine, store.quarantined());
    assert_eq!(usage.quarantine.entries, 1);
    // The damaged one left the generations for the quarantine.
    let bytes: u64 = store
        .generations()
        .unwrap()
        .iter()
        .map(|&g| allocated(&gen_dir(dir.path(), g)))
        .sum();
    assert_eq!(usage.generation_bytes, bytes);

    // Reported from memory, not by listing: the quarantine moved away
    // behind the store's back is not noticed until the store changes it.
    let reported = store.quarantined();
    std::fs::rename(dir.path().join("quarantine"), dir.path().join("moved-away")).unwrap();
    assert_eq!(store.quarantined(), reported);
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.quarantined().entries, 0);
    assert_eq!(
        store.disk_usage().generations,
        store.generations().unwrap().len() as u64
    );
}

/// Blocks in `record` until told to go on.
struct Blocking {
    entered: mpsc::Sender<()>,
    go: mpsc::Receiver<()>,
    blocked: bool,
}

impl LoadSink for Blocking {
    fn record(&mut self, _: Record) -> Result<(), SinkError> {
        if !self.blocked {
            self.blocked = true;
            self.entered.send(()).unwrap();
            self.go.recv().unwrap();
        }
        Ok(())
    }
}

#[test]
fn usage_queries_do_not_wait_for_a_load() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    commit(&store, &records(1, 100));
    quarantine_one(&store, 2);
    let expected = store.disk_usage();

    let (entered_tx, entered) = mpsc::channel();
    let (go, go_rx) = mpsc::channel();
    let loader = {
        let store = store.clone();
        std::thread::spawn(move || {
            let mut sink = Blocking {
                entered: entered_tx,
                go: go_rx,
                blocked: false,
            };
            store
                .load(&mut sink, LoadPolicy::Fallback)
                .map(|r| r.generation)
        })
    };
    entered
        .recv_timeout(Duration::from_secs(60))
        .expect("the load never reached the sink");
    // The load holds the store's directory lock now.
    let (answer_tx, answer) = mpsc::channel();
    let querier = {
        let store = store.clone();
        std::thread::spawn(move || {
            answer_tx
                .send((store.quarantined(), store.disk_usage()))
                .unwrap();
        })
    };
    let (q, usage) = answer
        .recv_timeout(Duration::from_secs(10))
        .expect("quarantined()/disk_usage() waited for the load");
    assert_eq!(q, expected.quarantine);
    assert_eq!(usage, expected);
    go.send(()).unwrap();
    querier.join().unwrap();
    assert!(loader.join().unwrap().unwrap().is_some());
}
