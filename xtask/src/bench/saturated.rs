//! Suite `saturated`: how long a background snapshot takes, and how much
//! memory it adds, when clients keep every core busy.
//!
//! The same keys in both servers. A `BGSAVE` is timed (from the command to
//! `rdb_bgsave_in_progress:0`, polled every 10 ms) three ways: with the
//! machine otherwise idle; with a load generator overwriting random
//! existing keys from 16 connections (one thread each, so both cores are
//! saturated by the generator and the server's own threads); and with that
//! load plus one spinning thread per core. Resident memory is sampled every
//! 10 ms during each snapshot (cairn: the process; Redis: the parent plus
//! its fork child, by PSS so shared pages count once). Every figure is
//! cairn's against Redis' in the same run: the factor "saturated time /
//! idle time" is the one issue #13 asks to be bounded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::data;
use super::resp::{Conn, Reply, info_field};
use super::servers::{self, Kind, Server, Spec};
use super::{Outcome, Plan, Table, fmt_bytes, fmt_ratio, fmt_secs, median};

/// Connections (threads) of the load generator.
const LOAD_CONNECTIONS: usize = 16;

/// What one BGSAVE under one condition measured.
#[derive(Clone, Copy, Default)]
struct Sample {
    secs: f64,
    /// Peak resident memory during the snapshot minus before it.
    rss_added: f64,
    rss_before: f64,
}

/// Resident memory of the server: the process, plus Redis' fork child.
fn resident(server: &Server) -> u64 {
    let pid = server.pid();
    match server.kind {
        Kind::Cairn => servers::rss_bytes(pid).unwrap_or(0),
        Kind::Redis => {
            servers::pss_bytes(pid).unwrap_or(0)
                + servers::children(pid)
                    .into_iter()
                    .filter_map(servers::pss_bytes)
                    .sum::<u64>()
        }
    }
}

fn in_progress(c: &mut Conn) -> Result<bool> {
    match c.ok(&["INFO", "persistence"])? {
        Reply::Bulk(Some(b)) => {
            let text = String::from_utf8_lossy(&b).into_owned();
            if info_field(&text, "rdb_last_bgsave_status").as_deref() == Some("err") {
                bail!("the background snapshot failed");
            }
            Ok(info_field(&text, "rdb_bgsave_in_progress").as_deref() == Some("1"))
        }
        r => bail!("INFO answered {r:?}"),
    }
}

/// Runs one BGSAVE to its end, sampling memory; gives up after `limit`.
fn timed_bgsave(server: &Server, limit: Duration) -> Result<Sample> {
    let mut c = server.conn()?;
    while in_progress(&mut c)? {
        std::thread::sleep(Duration::from_millis(10));
    }
    let before = resident(server);
    let started = Instant::now();
    match c.ok(&["BGSAVE"])? {
        Reply::Simple(s) if s.starts_with("Background saving started") => {}
        r => bail!("BGSAVE answered {r:?}"),
    }
    let mut peak = before;
    loop {
        std::thread::sleep(Duration::from_millis(10));
        peak = peak.max(resident(server));
        if !in_progress(&mut c)? {
            break;
        }
        if started.elapsed() > limit {
            bail!(
                "{}: the background snapshot had not finished after {limit:?}",
                server.kind.name()
            );
        }
    }
    Ok(Sample {
        secs: started.elapsed().as_secs_f64(),
        rss_added: peak.saturating_sub(before) as f64,
        rss_before: before as f64,
    })
}

/// The load: threads overwriting random existing keys with SET, one
/// request at a time each, until dropped. Counts the replies.
struct Load {
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<Result<()>>>,
}

impl Load {
    fn start(server: &Server, keys: u64, seed: u64, hogs: usize) -> Result<Load> {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for t in 0..LOAD_CONNECTIONS {
            let mut c = server.conn()?;
            let (stop, done) = (Arc::clone(&stop), Arc::clone(&done));
            threads.push(
                std::thread::Builder::new()
                    .name(format!("load-{t}"))
                    .spawn(move || -> Result<()> {
                        let mut rng = StdRng::seed_from_u64(seed ^ (t as u64 + 1));
                        while !stop.load(Ordering::Relaxed) {
                            let k = data::key(rng.random_range(0..keys));
                            let v = data::value(&mut rng);
                            let v = String::from_utf8_lossy(&v).into_owned();
                            c.ok(&["SET", &k, &v])?;
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(())
                    })?,
            );
        }
        for h in 0..hogs {
            let stop = Arc::clone(&stop);
            threads.push(std::thread::Builder::new().name(format!("hog-{h}")).spawn(
                move || -> Result<()> {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_mul(6364136223846793005) + 1);
                    }
                    Ok(())
                },
            )?);
        }
        Ok(Load {
            stop,
            done,
            threads,
        })
    }

    fn finish(self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            match t.join() {
                Ok(r) => r.context("load generator")?,
                Err(_) => bail!("a load generator thread panicked"),
            }
        }
        Ok(())
    }
}

#[derive(Default)]
struct Results {
    idle: Vec<Sample>,
    loaded: Vec<Sample>,
    hogged: Vec<Sample>,
    loaded_ops: f64,
}

fn measure(server: &Server, plan: &Plan, reps: usize) -> Result<Results> {
    let n = plan.keys;
    let mut r = Results::default();
    // Generous: a starving snapshot is what this suite looks for, and it
    // must still report a figure rather than hang.
    let limit = Duration::from_secs(600);
    for _ in 0..reps {
        r.idle.push(timed_bgsave(server, limit)?);
    }
    for (hogs, out) in [(0, &mut r.loaded), (cores(), &mut r.hogged)] {
        let load = Load::start(server, n, plan.seed, hogs)?;
        // Let the load reach its steady state first.
        std::thread::sleep(Duration::from_secs(1));
        let before = load.done.load(Ordering::Relaxed);
        let t = Instant::now();
        for _ in 0..reps {
            out.push(timed_bgsave(server, limit)?);
        }
        if hogs == 0 {
            let ops = load.done.load(Ordering::Relaxed) - before;
            r.loaded_ops = ops as f64 / t.elapsed().as_secs_f64();
        }
        load.finish()?;
    }
    Ok(r)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Runs the suite.
///
/// # Errors
/// A server failed, or a snapshot did not finish in 10 minutes.
pub fn run(plan: &Plan) -> Result<Outcome> {
    let tmp = tempfile::tempdir()?;
    let reps = if plan.quick { 1 } else { 3 };
    let mut all = Vec::new();
    for kind in [Kind::Cairn, Kind::Redis] {
        let spec = Spec {
            kind,
            dir: tmp.path().join(kind.name()),
            persistence: true,
        };
        let server = Server::start(&plan.cairn_bin, &spec)?;
        data::load(server.conn()?, plan.keys, plan.seed)?;
        eprintln!(
            "bench: saturated: {} loaded {} keys",
            kind.name(),
            plan.keys
        );
        let r = measure(&server, plan, reps)?;
        server.stop()?;
        all.push(r);
    }
    let (c, r) = (&all[0], &all[1]);
    let secs = |v: &[Sample]| median(&v.iter().map(|s| s.secs).collect::<Vec<_>>());
    let added = |v: &[Sample]| {
        v.iter()
            .map(|s| s.rss_added)
            .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
    };
    let before = |v: &[Sample]| v.first().map(|s| s.rss_before);
    let mut t = Table::new(
        format!(
            "BGSAVE of {} keys with the CPU saturated ({} load connections overwriting random keys; then also {} spinning threads), median of {reps}",
            plan.keys,
            LOAD_CONNECTIONS,
            cores()
        ),
        &["measure", "cairn", "redis", "cairn/redis"],
    );
    let mut row = |name: &str, a: Option<f64>, b: Option<f64>, fmt: fn(f64) -> String| {
        let ratio = match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => fmt_ratio(a / b),
            _ => "—".into(),
        };
        t.row(vec![
            name.to_owned(),
            a.map_or("—".into(), fmt),
            b.map_or("—".into(), fmt),
            ratio,
        ]);
    };
    row(
        "BGSAVE, idle machine",
        secs(&c.idle),
        secs(&r.idle),
        fmt_secs,
    );
    row(
        "BGSAVE, saturated by the load",
        secs(&c.loaded),
        secs(&r.loaded),
        fmt_secs,
    );
    row(
        "BGSAVE, load + a spinning thread per core",
        secs(&c.hogged),
        secs(&r.hogged),
        fmt_secs,
    );
    let factor = |x: &Results, v: &[Sample]| Some(secs(v)? / secs(&x.idle)?);
    let fmt_factor = |f: f64| format!("{f:.1}x");
    row(
        "factor: saturated / idle",
        factor(c, &c.loaded),
        factor(r, &r.loaded),
        fmt_factor,
    );
    row(
        "factor: load + spinning / idle",
        factor(c, &c.hogged),
        factor(r, &r.hogged),
        fmt_factor,
    );
    row(
        "memory before the snapshots",
        before(&c.idle),
        before(&r.idle),
        fmt_bytes,
    );
    row(
        "memory added, idle (peak during minus before)",
        added(&c.idle),
        added(&r.idle),
        fmt_bytes,
    );
    row(
        "memory added, saturated",
        added(&c.loaded),
        added(&r.loaded),
        fmt_bytes,
    );
    row(
        "memory added, load + spinning",
        added(&c.hogged),
        added(&r.hogged),
        fmt_bytes,
    );
    row(
        "SETs/s served during the saturated snapshots",
        Some(c.loaded_ops),
        Some(r.loaded_ops),
        |x| format!("{x:.0}"),
    );
    t.note(
        "Redis forks a child that runs at normal priority and copies pages on write; \
         cairn's walker and writer threads run at normal priority and yield after every batch \
         (docs/architecture.md, \"Persistence\")."
            .to_owned(),
    );
    let summary = vec![format!(
        "BGSAVE under a saturated CPU: cairn {} ({} its idle time), Redis {} ({}); memory added cairn {}, Redis {}.",
        secs(&c.loaded).map_or("—".into(), fmt_secs),
        factor(c, &c.loaded).map_or("—".into(), fmt_factor),
        secs(&r.loaded).map_or("—".into(), fmt_secs),
        factor(r, &r.loaded).map_or("—".into(), fmt_factor),
        added(&c.loaded).map_or("—".into(), fmt_bytes),
        added(&r.loaded).map_or("—".into(), fmt_bytes),
    )];
    Ok(Outcome {
        tables: vec![t],
        summary,
        ..Outcome::default()
    })
}
