//! Write, then load-and-verify, N records (16-byte keys, 100-byte values)
//! in a fresh data directory, and print seconds and bytes on disk.
//!
//! ```text
//! cargo run --release -p cairn-store --example bench_store -- [N] [DIR] [random|text]
//! ```
//!
//! `DIR` defaults to a temp directory (removed at the end; `-` for the
//! default when a value kind follows). Values are random bytes (`random`,
//! the default: incompressible, the worst case for disk space) or
//! JSON-like text of 75-85 bytes (`text`: what lz4 block compression
//! meets in a typical cache). Compare with
//! `crates/store/benches/redis_baseline.sh`, which times Redis SAVE and load
//! on the same shape of data.

use std::time::Instant;

use cairn_snapshot::{Record, Value};
use cairn_store::{LoadPolicy, LoadSink, SinkError, Store};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Keeps what a server would need (key bytes and value length) so the
/// decode cannot be optimised away, without building a keyspace.
#[derive(Default)]
struct Count {
    records: u64,
    bytes: u64,
}

impl LoadSink for Count {
    fn record(&mut self, r: Record) -> Result<(), SinkError> {
        self.records += 1;
        self.bytes += r.key.len() as u64 + r.value.len() as u64;
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let tmp = tempfile::tempdir()?;
    let dir = match args.next() {
        Some(d) if d != "-" => d.into(),
        _ => tmp.path().join("data"),
    };
    let text = match args.next().as_deref() {
        None | Some("random") => false,
        Some("text") => true,
        Some(other) => return Err(format!("unknown value kind {other:?}").into()),
    };

    let mut rng = StdRng::seed_from_u64(7);
    let records: Vec<Record> = (0..n)
        .map(|i| {
            let v = if text {
                let score: u32 = rng.random_range(0..100_000);
                let day: u32 = rng.random_range(1..29);
                format!(
                    r#"{{"id":{i},"name":"user-{i:08}","score":{score:6},"seen":"2025-03-{day:02}","ok":true}}"#
                )
                .into_bytes()
            } else {
                let mut v = vec![0u8; 100];
                rng.fill(&mut v[..]);
                v
            };
            Record::new(0, format!("key:{i:012}"), Value::String(v.into()))
        })
        .collect();

    let store = Store::open(&dir)?;
    let t = Instant::now();
    let mut w = store.begin()?;
    for r in &records {
        w.write(r)?;
    }
    let c = w.commit()?;
    let write_s = t.elapsed().as_secs_f64();
    drop(store);

    let t = Instant::now();
    let store = Store::open(&dir)?;
    let mut sink = Count::default();
    let report = store.load(&mut sink, LoadPolicy::Refuse)?;
    let load_s = t.elapsed().as_secs_f64();
    assert_eq!(report.records, n);
    assert_eq!(sink.records, n);

    println!(
        "cairn-store: {n} records ({} payload bytes, {} values): write+commit {write_s:.3} s, \
         open+load+verify {load_s:.3} s, on disk {} bytes ({:.1} MB, {:.1} bytes per record)",
        sink.bytes,
        if text { "text" } else { "random" },
        c.bytes,
        c.bytes as f64 / 1e6,
        c.bytes as f64 / n.max(1) as f64
    );
    Ok(())
}
