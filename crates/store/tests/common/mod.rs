//! Helpers shared by the store's integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use bytes::Bytes;
use cairn_snapshot::{Chunk, Record, Value};
use cairn_store::{Damage, LoadPolicy, LoadReport, LoadSink, SinkError, Store};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Collects records; `abort` clears them as a real loader would.
#[derive(Default)]
pub struct Collect {
    pub records: Vec<Record>,
    pub begins: Vec<u64>,
    pub aborts: Vec<(u64, Damage)>,
}

impl LoadSink for Collect {
    fn begin(&mut self, generation: u64) -> Result<(), SinkError> {
        self.begins.push(generation);
        self.records.clear();
        Ok(())
    }
    fn record(&mut self, record: Record) -> Result<(), SinkError> {
        self.records.push(record);
        Ok(())
    }
    fn abort(&mut self, generation: u64, reason: &Damage) {
        self.aborts.push((generation, reason.clone()));
        self.records.clear();
    }
}

/// Loads under [`LoadPolicy::Fallback`] (the server's default), which must
/// succeed.
pub fn load(store: &Store) -> (LoadReport, Collect) {
    let mut sink = Collect::default();
    let report = store.load(&mut sink, LoadPolicy::Fallback).unwrap();
    (report, sink)
}

/// A deterministic set of records of a given flavour `tag`, covering every
/// value type, expiry, several databases, empty and long keys.
pub fn records(tag: u8, n: usize) -> Vec<Record> {
    let mut rng = StdRng::seed_from_u64(u64::from(tag) * 1_000_003 + n as u64);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let key = Bytes::from(format!("k{tag}:{i}"));
        let value = match i % 5 {
            0 => Value::String(Bytes::from(vec![tag; rng.random_range(0..200)])),
            1 => Value::List(
                (0..rng.random_range(0..8))
                    .map(|j| Bytes::from(format!("l{j}")))
                    .collect(),
            ),
            2 => Value::Hash(
                (0..3)
                    .map(|j| (Bytes::from(format!("f{j}")), Bytes::from(vec![j; 5])))
                    .collect(),
            ),
            3 => Value::Set((0..4).map(|j| Bytes::from(format!("m{j}-{tag}"))).collect()),
            _ => Value::SortedSet(vec![
                (Bytes::from("a"), f64::NEG_INFINITY),
                (Bytes::from("b"), -0.0),
                (Bytes::from("c"), rng.random::<f64>()),
                (Bytes::from("d"), f64::INFINITY),
            ]),
        };
        let expiry = if i % 3 == 0 {
            Some(1_900_000_000_000 + i as i64)
        } else {
            None
        };
        out.push(Record::new((i % 16) as u32, key, value).with_expiry(expiry));
    }
    out
}

pub fn commit(store: &Store, recs: &[Record]) -> u64 {
    let mut w = store.begin().unwrap();
    for r in recs {
        w.write(r).unwrap();
    }
    w.commit().unwrap().generation
}

pub fn gen_dir(data: &Path, generation: u64) -> PathBuf {
    data.join(format!("gen-{generation:020}"))
}

/// Every table file of a generation's records keyspace (the biggest keyspace).
pub fn table_files(generation: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let ks = generation.join("db").join("keyspaces");
    for e in std::fs::read_dir(ks).unwrap() {
        let t = e.unwrap().path().join("tables");
        if let Ok(rd) = std::fs::read_dir(&t) {
            for f in rd {
                out.push(f.unwrap().path());
            }
        }
    }
    out.sort_by_key(|p| std::cmp::Reverse(std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)));
    out
}

pub fn quarantined(data: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(data.join("quarantine"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// One big string record, chunk-marked, to show chunks pass through.
pub fn chunked(tag: u8) -> Vec<Record> {
    (0..3u32)
        .map(|i| {
            let mut r = Record::new(
                1,
                Bytes::from("big"),
                Value::String(Bytes::from(vec![tag; 1000])),
            );
            r.chunk = Some(Chunk {
                index: i,
                last: i == 2,
            });
            r
        })
        .collect()
}
