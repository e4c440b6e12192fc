//! Periodic snapshots under load: several clients write continuously while
//! the timer takes snapshots. Every snapshot is read back from disk and
//! checked against each writer's log of acknowledged writes: no write
//! acknowledged before the snapshot's capture point is missing, nothing
//! sent after its commit is present, and each writer's writes form a
//! prefix (a point-in-time cut). Client latency inside and outside
//! snapshots is printed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use cairn_tests::data::{self, Spec, TypeMix};
use cairn_tests::fixtures;

/// The longest the writers run, however few snapshots committed.
const MAX_RUN: Duration = Duration::from_secs(60);

/// One acknowledged write of one writer.
struct Write {
    seq: u64,
    sent: Instant,
    acked: Instant,
}

/// A reading of the persistence status.
struct Sample {
    at: Instant,
    saves: u64,
    in_progress: bool,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(name: &str, mut v: Vec<Duration>) -> String {
    v.sort();
    format!(
        "{name}: {} writes, p50 {:?}, p99 {:?}, max {:?}",
        v.len(),
        percentile(&v, 0.5),
        percentile(&v, 0.99),
        v.last().copied().unwrap_or_default()
    )
}

#[test]
fn should_keep_every_acknowledged_write_in_the_periodic_snapshots() -> anyhow::Result<()> {
    let seed = fixtures::seed("periodic-under-load");
    let (writers, run_for, base_keys) = if fixtures::quick() {
        (4, Duration::from_secs(3), 5_000)
    } else {
        (4, Duration::from_secs(6), 20_000)
    };
    fixtures::run("periodic-under-load", |ctx| async move {
        let dir = ctx.tempdir()?.join("data");
        let builder = ctx
            .builder(&dir)
            .snapshot_interval(Duration::from_millis(200))
            .retain_generations(100_000);
        let node = ctx.start(builder).await?;
        // The base only makes snapshots take time; its types are covered
        // by the cycle suite.
        let base = Spec {
            types: TypeMix::STRINGS,
            ttl_fraction: 0.0,
            ..Spec::small(seed, base_keys)
        }
        .prefixed("base:")
        .generate();
        node.populate(&base).await?;
        // A first snapshot of the base, so the ones under load all hold it.
        let mut events = node.handle().subscribe_snapshots();
        fixtures::next_snapshot(&mut events, Duration::from_secs(60)).await?;
        let saves0 = node.handle().persistence_status().saves;

        // Writers stop once `run_for` has passed and at least three
        // snapshots committed under load (a slow machine just runs longer).
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for w in 0..writers {
            let (addr, stop) = (node.addr(), Arc::clone(&stop));
            tasks.push(tokio::task::spawn_blocking(
                move || -> anyhow::Result<Vec<Write>> {
                    let mut conn = data::connect(addr)?;
                    let mut log = Vec::new();
                    let mut seq = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let sent = Instant::now();
                        redis::cmd("SET")
                            .arg(format!("w{w}:{seq:09}"))
                            .arg(seq)
                            .query::<()>(&mut conn)?;
                        log.push(Write {
                            seq,
                            sent,
                            acked: Instant::now(),
                        });
                        seq += 1;
                    }
                    Ok(log)
                },
            ));
        }
        let mut samples = Vec::new();
        let mut outcomes = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        while !tasks.iter().all(|t| t.is_finished()) {
            if started.elapsed() > MAX_RUN || (started.elapsed() >= run_for && outcomes.len() >= 3)
            {
                stop.store(true, Ordering::Relaxed);
            }
            tokio::select! {
                o = events.next() => outcomes.push(o),
                _ = tick.tick() => {
                    let s = node.handle().persistence_status();
                    samples.push(Sample { at: Instant::now(), saves: s.saves, in_progress: s.in_progress });
                }
            }
        }
        let mut logs = Vec::new();
        for t in tasks {
            logs.push(t.await??);
        }
        node.shutdown_nosave().await?;

        let committed: Vec<_> = outcomes
            .iter()
            .map(|o| {
                o.result
                    .clone()
                    .map_err(|e| anyhow::anyhow!("a snapshot failed under load: {e}"))
            })
            .collect::<anyhow::Result<_>>()?;
        ensure!(
            committed.len() >= 3,
            "only {} snapshots under load",
            committed.len()
        );
        let scratch = ctx.tempdir()?;
        let mut windows = Vec::new();
        let mut prev_counts = vec![0u64; writers];
        for (i, info) in committed.iter().enumerate() {
            let k = saves0 + i as u64 + 1;
            // Capture lies after the last reading showing no snapshot
            // running and k-1 saves, and before the first showing k saves.
            let lower = samples
                .iter()
                .filter(|s| s.saves == k - 1 && !s.in_progress)
                .map(|s| s.at)
                .max();
            let upper = samples.iter().filter(|s| s.saves >= k).map(|s| s.at).min();
            let records = fixtures::read_generation(
                &dir.join(format!("gen-{:020}", info.generation)),
                &scratch.join(info.generation.to_string()),
            )?;
            let mut seqs: Vec<Vec<u64>> = vec![Vec::new(); writers];
            let mut base_seen = 0usize;
            for r in &records {
                let key = String::from_utf8_lossy(&r.key);
                if key.starts_with("base:") {
                    base_seen += 1;
                } else if let Some((w, seq)) = key.strip_prefix('w').and_then(|k| k.split_once(':'))
                {
                    seqs[w.parse::<usize>()?].push(seq.parse()?);
                }
            }
            ensure!(
                base_seen >= base.len(),
                "generation {}: {base_seen} of {} base keys",
                info.generation,
                base.len()
            );
            let mut counts = Vec::new();
            let mut checked = 0usize;
            for (w, mut s) in seqs.into_iter().enumerate() {
                s.sort_unstable();
                let n = s.len() as u64;
                ensure!(
                    s.iter().copied().eq(0..n),
                    "generation {}: writer {w}'s writes are not a prefix (a hole or a duplicate)",
                    info.generation
                );
                ensure!(
                    n >= prev_counts[w],
                    "generation {} lost writes of writer {w}",
                    info.generation
                );
                prev_counts[w] = n;
                for wr in &logs[w] {
                    if lower.is_some_and(|l| wr.acked < l) {
                        checked += 1;
                        ensure!(
                            wr.seq < n,
                            "generation {}: write {w}:{} acknowledged before the capture point is missing",
                            info.generation,
                            wr.seq
                        );
                    }
                    if upper.is_some_and(|u| wr.sent > u) {
                        ensure!(
                            wr.seq >= n,
                            "generation {}: write {w}:{} sent after the commit is in it",
                            info.generation,
                            wr.seq
                        );
                    }
                }
                counts.push(n);
            }
            println!(
                "generation {}: {} keys in {:?}, per writer {counts:?}; {checked} writes acknowledged before capture all present",
                info.generation, info.keys, info.duration
            );
            if let (Some(l), Some(u)) = (lower, upper) {
                windows.push((l, u));
            }
        }
        let (mut during, mut outside) = (Vec::new(), Vec::new());
        for wr in logs.iter().flatten() {
            let lat = wr.acked - wr.sent;
            if windows.iter().any(|(l, u)| wr.sent < *u && wr.acked > *l) {
                during.push(lat);
            } else {
                outside.push(lat);
            }
        }
        println!(
            "{} snapshots under load by {writers} writers for {:?}",
            committed.len(),
            started.elapsed()
        );
        println!("latency {}", summary("during snapshots", during));
        println!("latency {}", summary("outside snapshots", outside));
        let total: usize = logs.iter().map(Vec::len).sum();
        ensure!(total > 0, "no writes");
        let last = committed.last().context("no snapshot")?;
        println!(
            "{total} acknowledged writes; last generation {} holds {} keys",
            last.generation, last.keys
        );
        Ok(())
    })
}
