//! `cargo xtask soak [--minutes N] [--clients C] [--seed S]`: the release
//! server under a long mixed load, with snapshots every second and
//! graceful restarts at random moments, then its data checked against a
//! model of every acknowledged write (issue 17, item 7).
//!
//! - **Clients** (50 by default), each a thread owning the keys under its
//!   own prefix, in 4 databases: every type created, replaced, pushed,
//!   trimmed, deleted, given and cleared TTLs of hours (the churn of
//!   [`Mutator`]), plus write-once keys of every type with TTLs of 0.2-5 s
//!   that expire during the run. Each change is one `MULTI`/`EXEC`, so
//!   it is applied whole or not at all, and enters the model when `EXEC`
//!   is acknowledged. Each client keeps at most [`KEYS_PER_CLIENT`] keys.
//! - **Snapshots**: `--snapshot-interval 1s`.
//! - **Restarts**: SIGTERM at random moments (every 20-60 s, scaled down
//!   for short runs) while the clients write; the server must exit 0
//!   after its shutdown snapshot, without a panic, and start again on the
//!   same data. A change in flight when the connection drops is in doubt:
//!   after reconnecting, the client reads the key and it must be either
//!   the state before or the state after the change (anything else is a
//!   lost or torn write).
//! - **At the end**: a dump of every database is compared with the union
//!   of the models, judged at the time of the dump (keys whose TTL passed
//!   must be gone); then one more graceful restart must restore that dump.
//!
//! Reported: operations acknowledged, error replies (must be 0), changes
//! in doubt and how they resolved, snapshots committed, restarts, and the
//! server's RSS at start, after warm-up and at the end (the end must be
//! within 10% of the value after warm-up).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cairn_tests::data::{self, Dataset, Item, Mutator, Op, Spec};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::Value as Rv;

use super::binary::{Binary, Proc, panicked};
use super::campaigns::mix;

/// Keys a client keeps at most: beyond, it deletes before it creates.
const KEYS_PER_CLIENT: usize = 1_500;
/// TTLs are compared within a second, as the other campaigns do.
const TTL_TOLERANCE_MS: i64 = 1_000;
/// How long a client tries to reconnect while the server restarts.
const RECONNECT_WITHIN: Duration = Duration::from_secs(120);
/// RSS at the end may exceed its value after warm-up by this fraction.
const RSS_GROWTH_ALLOWED: f64 = 0.10;

/// What the controller and the clients share.
struct Shared {
    addr: RwLock<SocketAddr>,
    stop: AtomicBool,
    acknowledged: AtomicU64,
}

/// What a client hands back.
#[derive(Default)]
struct ClientEnd {
    model: Dataset,
    ops: u64,
    errors: Vec<String>,
    doubts: u64,
    doubts_applied: u64,
    reconnects: u64,
}

/// Parses the options and runs the soak.
pub fn run(args: &[String]) -> Result<()> {
    let mut minutes: f64 = 10.0;
    let mut clients: usize = 50;
    let mut seed: u64 = rand::rng().random();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--minutes" => minutes = value()?.parse().context("--minutes")?,
            "--clients" => clients = value()?.parse().context("--clients")?,
            "--seed" => seed = value()?.parse().context("--seed")?,
            other => bail!("unknown soak option {other:?}"),
        }
    }
    if minutes.is_nan() || minutes <= 0.0 || clients == 0 {
        bail!("--minutes and --clients must be positive");
    }
    println!("soak: seed {seed} (replay with --seed {seed}), {minutes} min, {clients} clients");
    let bin = Binary::build()?;
    let tmp = tempfile::Builder::new().prefix("cairn-soak-").tempdir()?;
    let dir = tmp.path().join("data");
    let server_args = ["--snapshot-interval", "1s"];
    let mut proc = bin.start_ready(&dir, &server_args)?;
    let rss_start = rss_kib(&proc);
    let shared = Arc::new(Shared {
        addr: RwLock::new(proc.addr()),
        stop: AtomicBool::new(false),
        acknowledged: AtomicU64::new(0),
    });
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("soak-client-{i}"))
                .spawn(move || client(i, seed, &shared))
        })
        .collect::<std::io::Result<_>>()?;

    let duration = Duration::from_secs_f64(minutes * 60.0);
    let warm_up = (duration / 5).clamp(Duration::from_secs(10), Duration::from_secs(120));
    let gap = |rng: &mut StdRng| {
        let longest = (duration / 3).clamp(Duration::from_secs(5), Duration::from_secs(60));
        rng.random_range(longest / 3..=longest)
    };
    let mut rng = StdRng::seed_from_u64(mix(seed));
    let started = Instant::now();
    let mut next_restart = started + gap(&mut rng);
    let mut rss_warm = None;
    let mut restarts = 0u32;
    let mut snapshots = 0usize;
    let mut failures: Vec<String> = Vec::new();
    let mut last_report = started;
    while started.elapsed() < duration {
        // The controller's schedule (restarts, RSS readings, progress), not
        // a wait for the server: the clients keep it busy meanwhile.
        std::thread::sleep(Duration::from_millis(200));
        if rss_warm.is_none() && started.elapsed() >= warm_up {
            rss_warm = rss_kib(&proc);
        }
        if last_report.elapsed() >= Duration::from_secs(30) {
            last_report = Instant::now();
            println!(
                "soak: {:>4} s, {} operations acknowledged, {restarts} restarts, RSS {} KiB",
                started.elapsed().as_secs(),
                shared.acknowledged.load(Ordering::Relaxed),
                rss_kib(&proc).unwrap_or(0)
            );
        }
        let left = duration.saturating_sub(started.elapsed());
        if Instant::now() >= next_restart && left > Duration::from_secs(10) {
            let (status, log) = proc.terminate()?;
            snapshots += log.matches("snapshot committed").count();
            if !status.success() || panicked(&log) || !log.contains("snapshot committed") {
                shared.stop.store(true, Ordering::Relaxed);
                bail!(
                    "soak failed at restart {restarts}: exit {status}, a panic or no shutdown snapshot; seed {seed}; log:\n{log}"
                );
            }
            proc = bin.start_ready(&dir, &server_args)?;
            *shared.addr.write().unwrap_or_else(|e| e.into_inner()) = proc.addr();
            restarts += 1;
            next_restart = Instant::now() + gap(&mut rng);
            // RSS after warm-up is read from the server that runs at the
            // end: the first reading after each restart's own warm-up.
            let restarted = Instant::now();
            while restarted.elapsed() < warm_up.min(left / 2) {
                std::thread::sleep(Duration::from_millis(200));
            }
            rss_warm = rss_kib(&proc);
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    let rss_end = rss_kib(&proc);
    let mut expected = Dataset::default();
    let mut totals = ClientEnd::default();
    for (i, h) in handles.into_iter().enumerate() {
        let end = h
            .join()
            .map_err(|_| anyhow::anyhow!("client {i} panicked"))??;
        expected.extend(&end.model);
        totals.ops += end.ops;
        totals.doubts += end.doubts;
        totals.doubts_applied += end.doubts_applied;
        totals.reconnects += end.reconnects;
        totals.errors.extend(end.errors);
    }

    // Everything acknowledged is there, judged at the time of the dump.
    let mut conn = data::connect(proc.addr())?;
    let (actual, window) = data::dump_timed(&mut conn, data::DATABASES)?;
    let diff = expected.diff_at(&actual, window, TTL_TOLERANCE_MS);
    let lost = diff.missing.len() + diff.changed.len();
    if !diff.is_empty() {
        failures.push(format!(
            "the data differs from the acknowledged writes:\n{diff}"
        ));
    }
    // One more graceful restart restores exactly that.
    drop(conn);
    let (status, log) = proc.terminate()?;
    snapshots += log.matches("snapshot committed").count();
    if !status.success() || panicked(&log) {
        failures.push(format!("final stop: exit {status} or a panic; log:\n{log}"));
    }
    let proc = bin.start_ready(&dir, &server_args)?;
    let restored = data::dump(&mut data::connect(proc.addr())?, data::DATABASES)?;
    if let Err(e) = actual.without_expired(data::now_ms()).check_equal(
        &restored,
        TTL_TOLERANCE_MS,
        "after the final restart",
    ) {
        failures.push(format!("{e:#}"));
    }
    let (_, log) = proc.terminate()?;
    snapshots += log.matches("snapshot committed").count();

    let growth = match (rss_warm, rss_end) {
        (Some(w), Some(e)) if w > 0 => Some(e as f64 / w as f64 - 1.0),
        _ => None,
    };
    println!(
        "soak: {:.1} min, {clients} clients: {} operations acknowledged, {} error replies, {} changes in doubt at restarts ({} had been applied), {} reconnects, {snapshots} snapshots committed, {restarts} restarts, {} keys at the end, {lost} lost or changed",
        started.elapsed().as_secs_f64() / 60.0,
        totals.ops,
        totals.errors.len(),
        totals.doubts,
        totals.doubts_applied,
        totals.reconnects,
        actual.len(),
    );
    println!(
        "soak: RSS {} KiB at start, {} KiB after warm-up, {} KiB at the end ({})",
        rss_start.map_or("n/a".into(), |v| v.to_string()),
        rss_warm.map_or("n/a".into(), |v| v.to_string()),
        rss_end.map_or("n/a".into(), |v| v.to_string()),
        growth.map_or("growth not measured on this platform".into(), |g| format!(
            "{:+.1}% since warm-up, at most {:+.0}% allowed",
            g * 100.0,
            RSS_GROWTH_ALLOWED * 100.0
        )),
    );
    for e in totals.errors.iter().take(10) {
        println!("soak: error: {e}");
    }
    if !totals.errors.is_empty() {
        failures.push(format!("{} error replies", totals.errors.len()));
    }
    if growth.is_some_and(|g| g > RSS_GROWTH_ALLOWED) {
        failures.push("RSS grew more than allowed after warm-up".into());
    }
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("soak: FAILED: {f}");
        }
        bail!("soak failed ({} problems); seed {seed}", failures.len());
    }
    println!("soak: passed");
    Ok(())
}

/// The server's resident set in KiB (Linux; `None` elsewhere).
fn rss_kib(proc: &Proc) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", proc.pid())).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// One client: changes its own keys until told to stop.
fn client(i: usize, seed: u64, shared: &Shared) -> Result<ClientEnd> {
    let prefix = format!("c{i}:");
    let mut mutator = Mutator::new(Spec::small(mix(seed ^ i as u64), 0).prefixed(prefix.clone()));
    let mut rng = StdRng::seed_from_u64(mix(seed.wrapping_add(i as u64)));
    let mut durable = Dataset::default();
    let mut fleeting = Dataset::default();
    let mut end = ClientEnd::default();
    let mut conn = reconnect(shared)?;
    let mut next_fleeting = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        // Write-once keys with short TTLs (about one change in ten), kept
        // apart from the churned ones, which never expire during a run.
        let short_lived = rng.random_bool(0.1);
        let op = if short_lived {
            next_fleeting += 1;
            let kind = ["string", "list", "hash", "set", "zset", "stream"][rng.random_range(0..6)];
            Op::Put {
                db: rng.random_range(0..4),
                key: format!("{prefix}t:{next_fleeting}").into_bytes(),
                item: Item {
                    value: data::random_value(&mut rng, kind, 6, false),
                    expire_at_ms: Some(data::now_ms() + rng.random_range(200..5_000)),
                },
            }
        } else if durable.len() >= KEYS_PER_CLIENT {
            let n = rng.random_range(0..durable.len());
            let Some((db, key)) = durable.items.keys().nth(n).cloned() else {
                continue;
            };
            Op::Del { db, key }
        } else {
            mutator.next_op(&durable)
        };
        let model = if short_lived {
            &mut fleeting
        } else {
            &mut durable
        };
        match send(&mut conn, &op) {
            Ok(Sent::Applied) => {
                op.apply(model);
                end.ops += 1;
                shared.acknowledged.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Sent::Refused(e)) => {
                end.errors.push(format!("client {i}: {e}"));
                if end.errors.len() > 100 {
                    bail!("client {i}: more than 100 error replies; the last: {e}");
                }
            }
            Err(_) => {
                // The connection dropped (a restart): the change is in doubt
                // until the key is read back.
                end.doubts += 1;
                end.reconnects += 1;
                conn = reconnect(shared)?;
                let (db, key) = op_key(&op);
                let before = model.items.get(&(db, key.to_vec())).cloned();
                let mut after_model = Dataset::default();
                if let Some(b) = &before {
                    after_model.items.insert((db, key.to_vec()), b.clone());
                }
                op.apply(&mut after_model);
                let after = after_model.items.get(&(db, key.to_vec())).cloned();
                let started_ms = data::now_ms();
                let got = data::read_key(&mut conn, db, key)?;
                let window = data::DumpWindow {
                    started_ms,
                    finished_ms: data::now_ms(),
                };
                let is = |want: &Option<Item>| {
                    data::item_difference_at(want.as_ref(), got.as_ref(), window, TTL_TOLERANCE_MS)
                        .is_none()
                };
                if is(&after) {
                    op.apply(model);
                    end.doubts_applied += 1;
                } else if !is(&before) {
                    bail!(
                        "client {i}: after a restart {:?} in db {db} is neither the state before nor after the change in flight:\n  before {before:?}\n  after {after:?}\n  got {got:?}",
                        String::from_utf8_lossy(key)
                    );
                }
            }
        }
        // Short-lived keys long expired need no more checking: the dump at
        // the end would find them absent or flag them as unexpected.
        if short_lived && fleeting.len() > 200 {
            let cutoff = data::now_ms() - 10_000;
            fleeting
                .items
                .retain(|_, it| it.expire_at_ms.is_none_or(|e| e > cutoff));
        }
    }
    durable.extend(&fleeting);
    end.model = durable;
    Ok(end)
}

/// How a change went.
enum Sent {
    Applied,
    Refused(String),
}

/// Sends a change as one transaction: `SELECT`, `MULTI`, its commands,
/// `EXEC`. An error reply anywhere is a refusal; a dropped connection an
/// error.
fn send(conn: &mut redis::Connection, op: &Op) -> redis::RedisResult<Sent> {
    let cmds = op.commands();
    let mut pipe = redis::pipe();
    // Error replies as values (a refusal), so an `Err` is only a dropped
    // connection.
    pipe.ignore_errors();
    for (n, c) in cmds.iter().enumerate() {
        if n == 1 {
            pipe.add_command(redis::cmd("MULTI"));
        }
        let mut rc = redis::Cmd::new();
        for a in c {
            rc.arg(a.as_slice());
        }
        pipe.add_command(rc);
    }
    pipe.add_command(redis::cmd("EXEC"));
    let replies: Vec<Rv> = pipe.query(conn)?;
    let mut all = replies.iter().collect::<Vec<_>>();
    if let Some(Rv::Array(results)) = replies.last() {
        all.extend(results);
    }
    match all.iter().find(|r| matches!(r, Rv::ServerError(_))) {
        Some(Rv::ServerError(e)) => {
            let first = cmds
                .get(1)
                .and_then(|c| c.first())
                .map(|n| String::from_utf8_lossy(n).into_owned());
            Ok(Sent::Refused(format!("{first:?}: {e:?}")))
        }
        _ => match replies.last() {
            Some(Rv::Array(_)) => Ok(Sent::Applied),
            other => Ok(Sent::Refused(format!("EXEC answered {other:?}"))),
        },
    }
}

/// The one key a change touches.
fn op_key(op: &Op) -> (u16, &[u8]) {
    match op {
        Op::Put { db, key, .. }
        | Op::Del { db, key }
        | Op::Push { db, key, .. }
        | Op::Expire { db, key, .. }
        | Op::Stream { db, key, .. }
        | Op::SRem { db, key, .. } => (*db, key),
    }
}

/// A connection to wherever the server listens now, retried while it
/// restarts.
fn reconnect(shared: &Shared) -> Result<redis::Connection> {
    let deadline = Instant::now() + RECONNECT_WITHIN;
    loop {
        let addr = *shared.addr.read().unwrap_or_else(|e| e.into_inner());
        match data::connect(addr) {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() >= deadline => {
                return Err(e.context(format!("no server within {RECONNECT_WITHIN:?}")));
            }
            // Polling for the restarted server to listen: there is no event
            // to wait on from another process.
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}
