//! View cost on 1,000,000 keys (12-byte keys, 100-byte values): the writer
//! pause to take a view, and the full iteration; plus the memory per key at
//! rest and the cost of GET/SET through a session.
#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use cairn_keyspace::{Key, Keyspace, LoadEntry, Value};
use criterion::{Criterion, criterion_group, criterion_main};

const KEYS: usize = 1_000_000;

fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn filled() -> Keyspace {
    let ks = Keyspace::new();
    let before = rss_bytes();
    let value = vec![b'x'; 100];
    let t = Instant::now();
    let stats = ks.load_entries((0..KEYS).map(|n| LoadEntry {
        db: 0,
        key: Key::new(format!("key:{n:08}").as_bytes()),
        expires_at_ms: None,
        value: Value::string(&value),
    }));
    let load = t.elapsed();
    if let (Some(a), Some(b)) = (before, rss_bytes()) {
        println!(
            "loaded {} keys in {:?}; RSS growth {:.0} B/key",
            stats.loaded,
            load,
            (b.saturating_sub(a)) as f64 / KEYS as f64
        );
    }
    ks
}

/// SET latency percentiles from a writer thread while a view is walked
/// (printed, not a criterion measurement: criterion reports means).
fn writer_latency_during_walk(ks: &Keyspace) {
    let mut v = ks.view().unwrap();
    let ks2 = ks.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let h = std::thread::spawn(move || {
        let mut s = ks2.session();
        let mut lat = Vec::with_capacity(4_000_000);
        let mut n = 0u64;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            let key = format!("key:{:08}", (n * 7919) % KEYS as u64);
            let t = Instant::now();
            s.command(&["set", &key, "y"]);
            lat.push(t.elapsed());
            n += 1;
        }
        lat
    });
    let t = Instant::now();
    let mut walk_max = Duration::ZERO;
    loop {
        let c = Instant::now();
        if v.next_batch(128).is_none() {
            break;
        }
        walk_max = walk_max.max(c.elapsed());
    }
    let walk = t.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut lat = h.join().unwrap();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
    };
    println!(
        "walk with concurrent SETs: {walk:?}, {} SETs, {} preserved; SET p50 {:?} p99 {:?} p99.9 {:?} max {:?}; longest next_batch {walk_max:?}",
        lat.len(),
        v.stats().preserved,
        pct(0.5),
        pct(0.99),
        pct(0.999),
        lat.last()
    );
}

fn bench(c: &mut Criterion) {
    let ks = filled();
    writer_latency_during_walk(&ks);
    let mut g = c.benchmark_group("view_1m");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("take_view_pause", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                let v = ks.view().unwrap();
                total += t.elapsed();
                drop(v);
            }
            total
        })
    });
    g.bench_function("full_iteration", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut v = ks.view().unwrap();
                let t = Instant::now();
                let mut n = 0;
                while let Some(batch) = v.next_batch(1024) {
                    n += batch.len();
                }
                total += t.elapsed();
                assert_eq!(n, KEYS);
            }
            total
        })
    });
    g.finish();
    let mut s = ks.session();
    c.bench_function("session_get", |b| {
        b.iter(|| s.command(&["GET", "key:00001234"]))
    });
    c.bench_function("session_set", |b| {
        b.iter(|| s.command(&["SET", "key:00001234", "value-value"]))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
