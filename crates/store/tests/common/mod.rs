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
            r.chunk = Some(Chunk::new(i, i == 2));
            r
        })
        .collect()
}

/// Loads under `policy`, returning the error if any.
pub fn try_load(
    store: &Store,
    policy: LoadPolicy,
) -> (Result<LoadReport, cairn_store::Error>, Collect) {
    let mut sink = Collect::default();
    let result = store.load(&mut sink, policy);
    (result, sink)
}

/// Every entry below `dir` with its length and a hash of its bytes
/// (directories as `(0, 0)`), except `LOCK`: two equal fingerprints mean
/// nothing in the directory was created, removed, renamed or changed.
/// Mirrors `cairn_tests::fixtures::fingerprint`.
pub fn fingerprint(dir: &Path) -> std::collections::BTreeMap<PathBuf, (u64, u64)> {
    use std::hash::{Hash, Hasher};
    fn walk(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<PathBuf, (u64, u64)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            if e.file_type().unwrap().is_dir() {
                out.insert(rel.join(""), (0, 0));
                walk(root, &p, out);
            } else if rel != Path::new("LOCK") {
                let bytes = std::fs::read(&p).unwrap();
                // SipHash with fixed keys: stable within the process.
                let mut h = std::hash::DefaultHasher::new();
                bytes.hash(&mut h);
                out.insert(rel, (bytes.len() as u64, h.finish()));
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Whether this process runs as root (`id -u`: the workspace forbids
/// unsafe code, tests included, so no `geteuid`).
pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A test that cannot run here: prints `skipped: <reason>`, and fails
/// instead when `CAIRN_REQUIRE_ROOT_TESTS=1` says it must run.
pub fn skip(reason: &str) {
    if std::env::var("CAIRN_REQUIRE_ROOT_TESTS").is_ok_and(|v| v == "1") {
        panic!("CAIRN_REQUIRE_ROOT_TESTS=1 but this test cannot run: {reason}");
    }
    println!("skipped: {reason}");
}

/// Bytes allocated on disk below `path` (itself included), as `du` counts.
#[cfg(unix)]
pub fn allocated(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::symlink_metadata(path).unwrap();
    let own = md.blocks() * 512;
    if !md.is_dir() {
        return own;
    }
    own + std::fs::read_dir(path)
        .unwrap()
        .map(|e| allocated(&e.unwrap().path()))
        .sum::<u64>()
}

/// Flips a bit of generation `generation`'s seal.
pub fn damage_seal(data: &Path, generation: u64) {
    let p = gen_dir(data, generation).join("SEAL");
    let mut b = std::fs::read(&p).unwrap();
    b[20] ^= 1;
    std::fs::write(&p, b).unwrap();
}
