//! Times a full snapshot and a restore of N string keys (12-byte keys,
//! 100-byte random values, the shape of the Redis comparison in
//! docs/benchmarks.md) and reports the resident memory per key.
//!
//! ```text
//! cargo run --release -p cairn-server --example snapbench -- fill 1000000 DIR    # fill, snapshot 3x
//! cargo run --release -p cairn-server --example snapbench -- restore DIR         # restart and restore
//! ```
//!
//! `fill` prints the RSS growth per key at rest and each snapshot's time;
//! `restore` (a fresh process, so the RSS is the restored keyspace's own)
//! prints the restore time and the RSS per key after it.

use std::time::{Duration, Instant};

use cairn_keyspace::{Key, LoadEntry, Value};
use cairn_server::{Server, ShutdownOptions};

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// CPU seconds used by the process so far (all threads), from
/// /proc/self/stat: on a loaded machine wall time alone says little.
fn cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line, in clock ticks (100 Hz).
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// xorshift64*: reproducible random bytes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let r = self.next().to_le_bytes();
            let n = chunk.len();
            chunk.copy_from_slice(r.get(..n).unwrap_or_default());
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("fill") => {
            let n: usize = args.get(1).map_or(Ok(1_000_000), |s| s.parse())?;
            let dir = args.get(2).ok_or("fill N DIR")?;
            fill(n, dir).await
        }
        Some("restore") => restore(args.get(1).ok_or("restore DIR")?).await,
        _ => Err("usage: snapbench fill N DIR | restore DIR".into()),
    }
}

async fn fill(n: usize, dir: &str) -> Result<(), Box<dyn std::error::Error>> {
    let _ = std::fs::remove_dir_all(dir);
    let handle = Server::builder()
        .port(0)
        .data_dir(dir)
        .snapshot_interval(Duration::ZERO)
        .build()
        .start()
        .await?;
    let before = rss_bytes();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let t = Instant::now();
    let stats = handle.keyspace().load_entries((0..n).map(|i| {
        let mut v = [0u8; 100];
        rng.fill(&mut v);
        LoadEntry {
            db: 0,
            key: Key::new(format!("key:{i:08}").as_bytes()),
            expires_at_ms: None,
            value: Value::Str(Box::from(&v[..])),
        }
    }));
    let after = rss_bytes();
    println!(
        "filled {} keys in {:?}; RSS {} MiB, growth {:.0} B/key",
        stats.loaded,
        t.elapsed(),
        after >> 20,
        after.saturating_sub(before) as f64 / n.max(1) as f64
    );
    for i in 0..3 {
        let cpu = cpu_secs();
        let info = handle.snapshot_now().await?;
        println!(
            "snapshot {i}: {} keys, {} MiB on disk, {:.3} s (cpu {:.2} s); RSS after {} MiB",
            info.keys,
            info.bytes >> 20,
            info.duration.as_secs_f64(),
            cpu_secs() - cpu,
            rss_bytes() >> 20
        );
    }
    handle.shutdown_with(ShutdownOptions::nosave()).await?;
    Ok(())
}

async fn restore(dir: &str) -> Result<(), Box<dyn std::error::Error>> {
    let before = rss_bytes();
    let cpu = cpu_secs();
    let t = Instant::now();
    let handle = Server::builder()
        .port(0)
        .data_dir(dir)
        .snapshot_interval(Duration::ZERO)
        .build()
        .start()
        .await?;
    let took = t.elapsed();
    let cpu = cpu_secs() - cpu;
    let keys = handle.persistence_status().last_load_keys_loaded;
    let after = rss_bytes();
    println!(
        "restored {keys} keys in {:.3} s (cpu {cpu:.2} s); RSS {} MiB, {:.0} B/key",
        took.as_secs_f64(),
        after >> 20,
        after.saturating_sub(before) as f64 / keys.max(1) as f64
    );
    handle.shutdown_with(ShutdownOptions::nosave()).await?;
    Ok(())
}
