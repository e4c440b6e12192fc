//! The three load policies on damage. `Refuse` stops with a typed error
//! naming what is damaged and leaves the data directory byte for byte as it
//! was, so it refuses again on every later load, until a load under
//! `Fallback` (or `Empty`) accepts the older data.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;

use cairn_snapshot::{Record, encode_record};
use cairn_store::{Corruption, Damage, Error, LoadPolicy, Store};
use common::*;

struct Two {
    dir: tempfile::TempDir,
    old: u64,
    old_recs: Vec<Record>,
    new: u64,
    new_recs: Vec<Record>,
}

fn two() -> Two {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let old_recs = records(1, 2000);
    let old = commit(&store, &old_recs);
    let new_recs = records(2, 2000);
    let new = commit(&store, &new_recs);
    Two {
        dir,
        old,
        old_recs,
        new,
        new_recs,
    }
}

/// What a refused load must name.
enum Want {
    Generation(u64, &'static str),
    Current,
}

/// Two loads under `Refuse`, each by a fresh `Store` as a restarted server
/// would: both refuse, naming `want`, and the directory does not change.
fn refuses_twice(t: &Two, want: &Want, case: &str) {
    let before = fingerprint(t.dir.path());
    for attempt in 1..=2 {
        let store = Store::open(t.dir.path()).unwrap();
        let (result, sink) = try_load(&store, LoadPolicy::Refuse);
        let err = result.unwrap_err();
        println!("{case}, attempt {attempt}: {err}");
        let Error::Refused { dir, corruption } = &err else {
            panic!("{case}: expected Refused, got {err}");
        };
        assert_eq!(dir, t.dir.path());
        match (want, corruption) {
            (Want::Generation(g, slug), Corruption::Generation { generation, damage }) => {
                assert_eq!(generation, g, "{case}");
                assert_eq!(damage.slug(), *slug, "{case}: {damage}");
                assert!(
                    err.to_string().contains(&format!("generation {g}")),
                    "{err}"
                );
            }
            (Want::Current, Corruption::Current(why)) => {
                assert!(err.to_string().contains("CURRENT"), "{case}: {why}");
            }
            _ => panic!("{case}: wrong corruption {corruption:?}"),
        }
        // Whatever the sink received was taken back.
        assert_eq!(sink.begins.len(), sink.aborts.len(), "{case}");
        assert!(sink.records.is_empty(), "{case}");
        drop(store);
        assert_eq!(
            fingerprint(t.dir.path()),
            before,
            "{case}, attempt {attempt}: the data directory changed under Refuse"
        );
    }
}

#[test]
fn refuse_keeps_refusing_until_a_fallback_load() {
    type Damager = fn(&Two);
    let cases: &[(&str, Damager, Want)] = &[
        (
            "flipped SEAL",
            |t| {
                let p = gen_dir(t.dir.path(), t.new).join("SEAL");
                let mut b = fs::read(&p).unwrap();
                b[20] ^= 1;
                fs::write(&p, b).unwrap();
            },
            Want::Generation(0, "seal"),
        ),
        (
            "truncated table",
            |t| {
                let table = table_files(&gen_dir(t.dir.path(), t.new)).remove(0);
                let len = fs::metadata(&table).unwrap().len();
                fs::OpenOptions::new()
                    .write(true)
                    .open(&table)
                    .unwrap()
                    .set_len(len / 2)
                    .unwrap();
            },
            Want::Generation(0, "files"),
        ),
        (
            "generation directory gone",
            |t| fs::remove_dir_all(gen_dir(t.dir.path(), t.new)).unwrap(),
            Want::Generation(0, "missing"),
        ),
        (
            "garbage CURRENT",
            |t| fs::write(t.dir.path().join("CURRENT"), b"not a pointer").unwrap(),
            Want::Current,
        ),
        (
            "missing CURRENT",
            |t| fs::remove_file(t.dir.path().join("CURRENT")).unwrap(),
            Want::Current,
        ),
    ];
    for (case, damage, want) in cases {
        let t = two();
        damage(&t);
        let want = match want {
            Want::Generation(_, slug) => Want::Generation(t.new, slug),
            Want::Current => Want::Current,
        };
        refuses_twice(&t, &want, case);

        // The operator accepts the older data: one load under Fallback.
        let store = Store::open(t.dir.path()).unwrap();
        let (report, sink) = load(&store);
        let q = quarantined(t.dir.path());
        match want {
            Want::Generation(_, slug) => {
                assert_eq!(report.generation, Some(t.old), "{case}: {report:?}");
                assert_eq!(sink.records, t.old_recs, "{case}");
                assert_eq!(report.failures.len(), 1, "{case}");
                if slug == "missing" {
                    assert!(q.is_empty(), "{case}: {q:?}");
                } else {
                    assert_eq!(q, vec![format!("{:020}-{slug}", t.new)], "{case}");
                }
            }
            Want::Current => {
                // The newest sealed generation is intact: its data is right.
                assert_eq!(report.generation, Some(t.new), "{case}: {report:?}");
                assert_eq!(sink.records, t.new_recs, "{case}");
                assert!(report.current_damaged.is_some(), "{case}");
            }
        }
        drop(store);
        // From then on the directory is clean: Refuse loads the same data.
        let store = Store::open(t.dir.path()).unwrap();
        let (result, sink) = try_load(&store, LoadPolicy::Refuse);
        let report = result.unwrap();
        assert!(report.failures.is_empty() && report.current_damaged.is_none());
        let want_gen = match want {
            Want::Generation(..) => t.old,
            Want::Current => t.new,
        };
        assert_eq!(report.generation, Some(want_gen), "{case}");
        assert_eq!(sink.records.len(), 2000, "{case}");
    }
}

#[test]
fn refuse_on_a_bad_record_takes_back_what_the_sink_received() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let old_recs = records(1, 10);
    let old = commit(&store, &old_recs);
    let mut w = store.begin().unwrap();
    for (i, r) in records(2, 10).iter().enumerate() {
        let mut framed = Vec::new();
        encode_record(r, &mut framed).unwrap();
        if i == 7 {
            let last = framed.len() - 1;
            framed[last] ^= 0x10;
        }
        w.write_encoded(&framed).unwrap();
    }
    let bad = w.commit().unwrap().generation;
    let before = fingerprint(dir.path());
    for _ in 0..2 {
        let (result, sink) = try_load(&store, LoadPolicy::Refuse);
        assert!(
            matches!(
                result,
                Err(Error::Refused {
                    corruption: Corruption::Generation {
                        generation,
                        damage: Damage::Record(_),
                    },
                    ..
                }) if generation == bad
            ),
            "{result:?}"
        );
        assert_eq!(sink.begins, vec![bad]);
        assert_eq!(sink.aborts.len(), 1);
        assert!(sink.records.is_empty());
        assert_eq!(fingerprint(dir.path()), before);
    }
    let (report, sink) = load(&store);
    assert_eq!(report.generation, Some(old));
    assert_eq!(sink.records, old_recs);
    assert_eq!(quarantined(dir.path()), vec![format!("{bad:020}-record")]);
}

#[test]
fn empty_quarantines_and_starts_empty_when_nothing_is_good_and_fallback_refuses() {
    let t = two();
    for g in [t.old, t.new] {
        let p = gen_dir(t.dir.path(), g).join("SEAL");
        let mut b = fs::read(&p).unwrap();
        b[30] ^= 4;
        fs::write(&p, b).unwrap();
    }
    let store = Store::open(t.dir.path()).unwrap();
    // Refuse: names the newest, changes nothing.
    let before = fingerprint(t.dir.path());
    let (result, _) = try_load(&store, LoadPolicy::Refuse);
    assert!(matches!(result, Err(Error::Refused { .. })), "{result:?}");
    assert_eq!(fingerprint(t.dir.path()), before);
    // Empty: both quarantined, nothing loaded, no error.
    let (result, sink) = try_load(&store, LoadPolicy::Empty);
    let report = result.unwrap();
    assert_eq!(report.generation, None);
    assert_eq!(report.failures.len(), 2);
    assert!(sink.records.is_empty());
    assert_eq!(
        quarantined(t.dir.path()),
        vec![format!("{:020}-seal", t.old), format!("{:020}-seal", t.new)]
    );
    // Fallback on a directory with nothing good left (CURRENT names a
    // generation that is gone): refuses, with the failure counted.
    let (result, _) = try_load(&store, LoadPolicy::Fallback);
    assert!(
        matches!(result, Err(Error::NoValidGeneration { failures: 1, .. })),
        "{result:?}"
    );
}

#[test]
fn a_sealed_uncommitted_generation_is_a_crash_leftover_even_under_refuse() {
    // A crash between the rename of gen-N and the switch of CURRENT leaves
    // a sealed generation newer than CURRENT. That is not damage: open()
    // quarantines it as `uncommitted` whatever policy the load will use,
    // and Refuse then loads CURRENT's generation.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let store = Store::open(data).unwrap();
    let old_recs = records(1, 50);
    let old = commit(&store, &old_recs);
    let old_current = fs::read(data.join("CURRENT")).unwrap();
    let new = commit(&store, &records(2, 50));
    drop(store);
    fs::write(data.join("CURRENT"), old_current).unwrap();
    let store = Store::open(data).unwrap();
    assert_eq!(quarantined(data), vec![format!("{new:020}-uncommitted")]);
    let (result, sink) = try_load(&store, LoadPolicy::Refuse);
    assert_eq!(result.unwrap().generation, Some(old));
    assert_eq!(sink.records, old_recs);
}
