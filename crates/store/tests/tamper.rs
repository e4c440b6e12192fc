//! `cairn_store::testing::rewrite_generation`: damage that passes every
//! file-level check (MANIFEST, SEAL, CURRENT, fjall's block checksums) is
//! still caught, by the record CRC, the digest and the count; `Refuse`
//! names it and `Fallback` falls back.
#![allow(clippy::unwrap_used)]

mod common;

use cairn_snapshot::{Record, Value, encode_record};
use cairn_store::testing::{Tamper, rewrite_generation};
use cairn_store::{Corruption, Damage, Error, LoadPolicy, Store};
use common::*;

struct Two {
    dir: tempfile::TempDir,
    old: u64,
    old_recs: Vec<Record>,
    new: u64,
    new_recs: Vec<Record>,
}

/// Enough records for several pages, so tampering lands mid-stream.
fn two() -> Two {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let old_recs = records(1, 1500);
    let old = commit(&store, &old_recs);
    let new_recs = records(2, 1500);
    let new = commit(&store, &new_recs);
    Two {
        dir,
        old,
        old_recs,
        new,
        new_recs,
    }
}

/// Refuse names `want`'s damage (and changes nothing); Fallback then
/// loads the older generation and quarantines the tampered one.
fn caught(t: &Two, check: impl Fn(&Damage) -> bool, slug: &str) {
    let store = Store::open(t.dir.path()).unwrap();
    let before = fingerprint(t.dir.path());
    let (result, sink) = try_load(&store, LoadPolicy::Refuse);
    match &result {
        Err(Error::Refused {
            corruption: Corruption::Generation { generation, damage },
            ..
        }) => {
            println!("{slug}: {}", result.as_ref().unwrap_err());
            assert_eq!(*generation, t.new);
            assert!(check(damage), "{slug}: {damage:?}");
        }
        other => panic!("{slug}: expected a refusal, got {other:?}"),
    }
    assert_eq!(sink.begins, vec![t.new], "the header and seal agree");
    assert_eq!(sink.aborts.len(), 1);
    assert_eq!(fingerprint(t.dir.path()), before);

    let (report, sink) = load(&store);
    assert_eq!(report.generation, Some(t.old), "{report:?}");
    assert_eq!(sink.records, t.old_recs);
    assert_eq!(
        quarantined(t.dir.path()),
        vec![format!("{:020}-{slug}", t.new)]
    );
}

#[test]
fn a_flipped_payload_bit_is_caught_by_the_record_crc() {
    let t = two();
    let n = rewrite_generation(
        t.dir.path(),
        t.new,
        Tamper::FlipPayloadBit {
            record: 777,
            offset: 5,
            bit: 3,
        },
    )
    .unwrap();
    assert_eq!(n, t.new_recs.len() as u64);
    caught(
        &t,
        |d| matches!(d, Damage::Record(why) if why.starts_with("record 777:")),
        "record",
    );
}

#[test]
fn a_replaced_record_is_caught_by_the_digest() {
    let t = two();
    let mut framed = Vec::new();
    encode_record(
        &Record::new(0, "intruder", Value::String("not what was saved".into())),
        &mut framed,
    )
    .unwrap();
    rewrite_generation(
        t.dir.path(),
        t.new,
        Tamper::ReplaceRecord { record: 3, framed },
    )
    .unwrap();
    caught(&t, |d| *d == Damage::Digest, "digest");
}

#[test]
fn a_dropped_record_is_caught_by_the_count() {
    let t = two();
    rewrite_generation(t.dir.path(), t.new, Tamper::DropRecord { record: 1499 }).unwrap();
    let n = t.new_recs.len() as u64;
    caught(
        &t,
        |d| {
            *d == Damage::Count {
                expected: n,
                actual: n - 1,
            }
        },
        "count",
    );
}

#[test]
fn a_rewrite_without_tampering_still_loads() {
    // Replacing a record with itself keeps everything consistent: the
    // rewrite alone (fresh database, new MANIFEST, SEAL, CURRENT) is not
    // damage, so what the tests above catch is the tampering.
    let t = two();
    let mut framed = Vec::new();
    encode_record(&t.new_recs[10], &mut framed).unwrap();
    rewrite_generation(
        t.dir.path(),
        t.new,
        Tamper::ReplaceRecord { record: 10, framed },
    )
    .unwrap();
    let store = Store::open(t.dir.path()).unwrap();
    let (result, sink) = try_load(&store, LoadPolicy::Refuse);
    assert_eq!(result.unwrap().generation, Some(t.new));
    assert_eq!(sink.records, t.new_recs);
}

#[test]
fn misuse_is_a_typed_error() {
    let t = two();
    let store = Store::open(t.dir.path()).unwrap();
    assert!(matches!(
        rewrite_generation(t.dir.path(), t.new, Tamper::DropRecord { record: 0 }),
        Err(Error::Locked { .. })
    ));
    drop(store);
    let err =
        rewrite_generation(t.dir.path(), t.new, Tamper::DropRecord { record: 1500 }).unwrap_err();
    assert!(
        matches!(&err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::InvalidInput),
        "{err}"
    );
    let err = rewrite_generation(
        t.dir.path(),
        t.new,
        Tamper::FlipPayloadBit {
            record: 0,
            offset: 0,
            bit: 8,
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    let err = rewrite_generation(
        t.dir.path(),
        t.new,
        Tamper::ReplaceRecord {
            record: 0,
            framed: vec![1, 2, 3],
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::Framing(_)), "{err}");
    // A generation that is already damaged is refused.
    damage_seal(t.dir.path(), t.new);
    let err =
        rewrite_generation(t.dir.path(), t.new, Tamper::DropRecord { record: 0 }).unwrap_err();
    assert!(matches!(err, Error::Damaged { .. }), "{err}");
    // Nothing above changed the older generation.
    let store = Store::open(t.dir.path()).unwrap();
    let (report, sink) = load(&store);
    assert_eq!(report.generation, Some(t.old));
    assert_eq!(sink.records, t.old_recs);
}
