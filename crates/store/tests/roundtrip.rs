//! Round trips through real fjall generations in temp dirs.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use cairn_snapshot::{Record, Value, encode_record};
use cairn_store::{Error, LoadPolicy, Store};
use common::*;

#[test]
fn every_value_type_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("data")).unwrap();
    let mut recs = records(1, 500);
    // Keys fjall cannot hold as keys: empty and longer than 65,535 bytes.
    recs.push(Record::new(
        0,
        Bytes::new(),
        Value::String(Bytes::from("empty key")),
    ));
    recs.push(Record::new(
        3,
        Bytes::from(vec![b'x'; 200_000]),
        Value::String(Bytes::from("long key")),
    ));
    recs.extend(chunked(9));
    let c = {
        let mut w = store.begin().unwrap();
        for r in &recs {
            w.write(r).unwrap();
        }
        w.commit().unwrap()
    };
    assert_eq!(c.records, recs.len() as u64);
    assert!(c.bytes > 0);
    drop(store);

    // Reopen in a fresh scope, as a restarted process would.
    let store = Store::open(dir.path().join("data")).unwrap();
    let (report, sink) = load(&store);
    assert_eq!(report.generation, Some(c.generation));
    assert_eq!(report.records, recs.len() as u64);
    assert!(report.failures.is_empty());
    assert_eq!(sink.records, recs);
}

#[test]
fn large_values_pass_through_batches() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let big: Vec<u8> = (0..20_000_000u32).map(|i| (i % 251) as u8).collect();
    let recs = vec![
        Record::new(0, "before", Value::String(Bytes::from_static(b"x"))),
        Record::new(0, "big", Value::String(Bytes::from(big))),
        Record::new(0, "after", Value::String(Bytes::from_static(b"y"))),
    ];
    let g = commit(&store, &recs);
    let (report, sink) = load(&store);
    assert_eq!(report.generation, Some(g));
    assert!(sink.records == recs);
}

#[test]
fn empty_generation_and_fresh_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("data")).unwrap();
    let (report, sink) = load(&store);
    assert_eq!(report.generation, None);
    assert!(sink.records.is_empty() && sink.begins.is_empty());

    let g = store.begin().unwrap().commit().unwrap();
    assert_eq!(g.records, 0);
    let (report, sink) = load(&store);
    assert_eq!(report.generation, Some(g.generation));
    assert_eq!(sink.begins, vec![g.generation]);
    assert!(sink.records.is_empty());
}

#[test]
fn newest_commit_wins_and_encoded_records_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let first = commit(&store, &records(1, 50));
    let second_recs = records(2, 70);
    let mut w = store.begin().unwrap();
    for r in &second_recs {
        let mut framed = Vec::new();
        encode_record(r, &mut framed).unwrap();
        w.write_encoded(&framed).unwrap();
    }
    assert!(matches!(
        w.write_encoded(b"\x05\0\0\0abc"),
        Err(Error::Framing(_))
    ));
    let second = w.commit().unwrap().generation;
    assert!(second > first);
    let (report, sink) = load(&store);
    assert_eq!(report.generation, Some(second));
    assert_eq!(sink.records, second_recs);
}

#[test]
fn dropped_writer_leaves_nothing_and_previous_stays() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let recs = records(3, 40);
    let first = commit(&store, &recs);
    {
        let mut w = store.begin().unwrap();
        assert!(matches!(store.begin(), Err(Error::Busy)));
        for r in records(4, 3000) {
            w.write(&r).unwrap();
        }
    }
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("gen-"))
        .collect();
    assert_eq!(names, vec![format!("gen-{first:020}")]);
    let (report, sink) = load(&store);
    assert_eq!(report.generation, Some(first));
    assert_eq!(sink.records, recs);
    // The writer slot is free again.
    let next = commit(&store, &records(5, 5));
    assert!(next > first);
}

#[test]
fn verify_after_write_commits_and_loads() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::builder(dir.path())
        .verify_after_write(true)
        .open()
        .unwrap();
    let recs = records(6, 300);
    let g = commit(&store, &recs);
    let (report, sink) = load(&store);
    assert_eq!(report.generation, Some(g));
    assert_eq!(sink.records, recs);
}

#[test]
fn fallback_and_empty_policies_when_nothing_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let g = commit(&store, &records(7, 20));
    std::fs::remove_file(gen_dir(dir.path(), g).join("SEAL")).unwrap();
    let mut sink = Collect::default();
    let err = store.load(&mut sink, LoadPolicy::Fallback).unwrap_err();
    assert!(
        matches!(err, Error::NoValidGeneration { failures: 1, .. }),
        "{err}"
    );
    // The bad generation is now in quarantine; with Empty the load succeeds
    // with nothing and reports the missing generation CURRENT names.
    let mut sink = Collect::default();
    let report = store.load(&mut sink, LoadPolicy::Empty).unwrap();
    assert_eq!(report.generation, None);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(quarantined(dir.path()), vec![format!("{g:020}-seal")]);
    // The next write commits with a new number and loads.
    let recs = records(8, 10);
    let g2 = commit(&store, &recs);
    assert!(g2 > g);
    let (report, sink) = load(&store);
    assert_eq!(report.generation, Some(g2));
    assert_eq!(sink.records, recs);
}

#[test]
fn load_while_writing_sees_only_committed_data() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send + 'static>() {}
    assert_send_sync::<Store>();
    // A writer can move into `spawn_blocking`.
    assert_send::<cairn_store::Writer>();

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let old = records(1, 100);
    let g1 = commit(&store, &old);
    let new = records(2, 5000);
    let writer_store = store.clone();
    let handle = std::thread::spawn(move || {
        let mut w = writer_store.begin().unwrap();
        for r in &new {
            w.write(r).unwrap();
        }
        w
    });
    let w = handle.join().unwrap();
    let (report, sink) = load(&store);
    assert_eq!(report.generation, Some(g1));
    assert_eq!(sink.records, old);
    let g2 = w.commit().unwrap().generation;
    let (report, sink) = load(&store);
    assert_eq!(report.generation, Some(g2));
    assert_eq!(sink.records, records(2, 5000));
}
