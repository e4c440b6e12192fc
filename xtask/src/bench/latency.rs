//! Suite 3, latency under a background snapshot: 50 connections issue
//! SET/GET (half each, random keys of the loaded set, 100-byte values),
//! one request at a time each, while a sampler reads the server's RSS every
//! 10 ms. After a baseline, BGSAVE starts mid-run; per-request latencies are
//! split into "no snapshot" and "during the snapshot" windows.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::data;
use super::resp::{self, Conn};
use super::servers::{self, Kind, Server, Spec};
use super::{Outcome, Plan, Table, fmt_bytes, fmt_ratio, target};

const CLIENTS: u64 = 50;
/// Excluded from the baseline: connections and caches settle.
const WARMUP: Duration = Duration::from_secs(1);
/// INFO polling and RSS sampling periods.
const POLL: Duration = Duration::from_millis(5);
const RSS_EVERY: Duration = Duration::from_millis(10);
const PSS_EVERY: Duration = Duration::from_millis(100);
/// How long a BGSAVE may take before the run gives up.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(300);

/// One request: start offset from the run's origin and its latency, in ns.
type Sample = (u64, u64);

/// Memory samples: time offset (ns), parent RSS, children RSS.
type RssSample = (u64, u64, u64);

#[derive(Clone, Copy, Debug, Default)]
struct Stats {
    count: usize,
    ops: f64,
    p50: u64,
    p99: u64,
    p999: u64,
    max: u64,
}

fn stats(mut lat: Vec<u64>, window: Duration) -> Stats {
    if lat.is_empty() {
        return Stats::default();
    }
    lat.sort_unstable();
    let at = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len() - 1))
            .copied()
            .unwrap_or(0)
    };
    Stats {
        count: lat.len(),
        ops: lat.len() as f64 / window.as_secs_f64().max(1e-9),
        p50: at(0.50),
        p99: at(0.99),
        p999: at(0.999),
        max: lat.last().copied().unwrap_or(0),
    }
}

struct Measured {
    kind: Kind,
    base: Stats,
    during: Stats,
    window: Duration,
    errors: u64,
    rss_before: u64,
    rss_peak: u64,
    pss_before: u64,
    pss_peak: u64,
    children_seen: bool,
    cow_size: Option<u64>,
}

async fn client(
    addr: std::net::SocketAddr,
    n: u64,
    seed: u64,
    origin: Instant,
    stop: Arc<AtomicBool>,
) -> Result<(Vec<Sample>, u64)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut samples = Vec::with_capacity(1 << 16);
    let mut errors = 0u64;
    let (mut out, mut line, mut scratch) = (Vec::new(), Vec::new(), Vec::new());
    while !stop.load(Ordering::Relaxed) {
        let k = data::key(rng.random_range(0..n));
        out.clear();
        if rng.random_bool(0.5) {
            let v = data::value(&mut rng);
            resp::encode(&mut out, &[b"SET", k.as_bytes(), &v]);
        } else {
            resp::encode(&mut out, &[b"GET", k.as_bytes()]);
        }
        let t0 = Instant::now();
        wr.write_all(&out).await?;
        line.clear();
        rd.read_until(b'\n', &mut line).await?;
        match line.first() {
            Some(b'$') => {
                let len: i64 = std::str::from_utf8(
                    line.get(1..line.len().saturating_sub(2))
                        .unwrap_or_default(),
                )?
                .parse()?;
                if len >= 0 {
                    scratch.resize(usize::try_from(len)? + 2, 0);
                    rd.read_exact(&mut scratch).await?;
                }
            }
            Some(b'+') => {}
            None => bail!("connection closed"),
            Some(_) => errors += 1,
        }
        let lat = t0.elapsed();
        samples.push((
            u64::try_from((t0 - origin).as_nanos()).unwrap_or(u64::MAX),
            u64::try_from(lat.as_nanos()).unwrap_or(u64::MAX),
        ));
    }
    Ok((samples, errors))
}

fn measure(server: &Server, plan: &Plan) -> Result<Measured> {
    let origin = Instant::now();
    let ns = move |t: Instant| u64::try_from((t - origin).as_nanos()).unwrap_or(u64::MAX);
    let stop = Arc::new(AtomicBool::new(false));
    // Whatever way this function returns, the sampler and clients stop.
    let _stop_guard = StopOnDrop(Arc::clone(&stop));
    let pid = server.pid();

    let sampler = {
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("rss".into())
            .spawn(move || {
                let mut rss: Vec<RssSample> = Vec::new();
                let mut pss: Vec<(u64, u64)> = Vec::new();
                let mut last_pss: Option<Instant> = None;
                while !stop.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    let kids = servers::children(pid);
                    let parent = servers::rss_bytes(pid).unwrap_or(0);
                    let child: u64 = kids.iter().filter_map(|&k| servers::rss_bytes(k)).sum();
                    rss.push((ns(now), parent, child));
                    if last_pss.is_none_or(|t| now - t >= PSS_EVERY) {
                        last_pss = Some(now);
                        let p = servers::pss_bytes(pid).unwrap_or(0)
                            + kids
                                .iter()
                                .filter_map(|&k| servers::pss_bytes(k))
                                .sum::<u64>();
                        pss.push((ns(now), p));
                    }
                    std::thread::sleep(RSS_EVERY.saturating_sub(now.elapsed()));
                }
                (rss, pss)
            })?
    };

    let clients = {
        let stop = Arc::clone(&stop);
        let (addr, n, seed) = (server.addr, plan.keys, plan.seed);
        std::thread::Builder::new().name("clients".into()).spawn(
            move || -> Result<(Vec<Sample>, u64)> {
                // One thread drives every connection, so the load generator takes
                // one core at most on both runs.
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async move {
                    let tasks: Vec<_> = (0..CLIENTS)
                        .map(|c| {
                            tokio::spawn(client(addr, n, seed ^ (c + 1), origin, Arc::clone(&stop)))
                        })
                        .collect();
                    let mut all = Vec::new();
                    let mut errors = 0;
                    for t in tasks {
                        let (s, e) = t.await??;
                        all.extend(s);
                        errors += e;
                    }
                    Ok((all, errors))
                })
            },
        )?
    };

    // The same INFO polling runs through the baseline, so both windows see
    // the same extra load.
    let mut ctl = server.conn()?;
    let info = |c: &mut Conn| -> Result<(bool, u64)> {
        let text = c
            .ok(&["INFO", "persistence"])?
            .text()
            .context("INFO is not text")?;
        let busy = resp::info_field(&text, "rdb_bgsave_in_progress")
            .context("no rdb_bgsave_in_progress")?;
        let saves = resp::info_field(&text, "rdb_saves").context("no rdb_saves")?;
        Ok((busy == "1", saves.parse()?))
    };
    let base_until = origin + WARMUP + plan.latency_base;
    let mut saves_before = 0;
    while Instant::now() < base_until {
        saves_before = info(&mut ctl)?.1;
        std::thread::sleep(POLL);
    }
    let t_bgsave = Instant::now();
    let reply = ctl.ok(&["BGSAVE"])?;
    let t_end = loop {
        let (busy, saves) = info(&mut ctl)?;
        if !busy && saves > saves_before {
            break Instant::now();
        }
        if t_bgsave.elapsed() > SNAPSHOT_TIMEOUT {
            bail!(
                "{} BGSAVE ({reply:?}) did not finish within {SNAPSHOT_TIMEOUT:?}",
                server.kind.name()
            );
        }
        std::thread::sleep(POLL);
    };
    let status = resp::info_field(
        &ctl.ok(&["INFO", "persistence"])?.text().unwrap_or_default(),
        "rdb_last_bgsave_status",
    );
    if status.as_deref() != Some("ok") {
        bail!(
            "{} BGSAVE finished with rdb_last_bgsave_status {status:?}",
            server.kind.name()
        );
    }
    let cow_size = resp::info_field(
        &ctl.ok(&["INFO", "persistence"])?.text().unwrap_or_default(),
        "rdb_last_cow_size",
    )
    .and_then(|v| v.parse().ok());
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let (samples, errors) = match clients.join() {
        Ok(r) => r?,
        Err(_) => bail!("client thread panicked"),
    };
    let Ok((rss, pss)) = sampler.join() else {
        bail!("sampler thread panicked")
    };

    let (b0, b1, w1) = (ns(origin + WARMUP), ns(t_bgsave), ns(t_end));
    let base: Vec<u64> = samples
        .iter()
        .filter(|(s, l)| *s >= b0 && s + l <= b1)
        .map(|s| s.1)
        .collect();
    // A request counts as "during" when any part of it overlaps the window,
    // which starts at the BGSAVE command itself: Redis forks (and cairn
    // takes its view) while answering it, before INFO can say so.
    let during: Vec<u64> = samples
        .iter()
        .filter(|(s, l)| *s < w1 && s + l > b1)
        .map(|s| s.1)
        .collect();
    let in_base = |t: u64| t >= b0 && t < b1;
    let in_window = |t: u64| t >= b1 && t <= w1;
    let rss_before = rss
        .iter()
        .filter(|s| in_base(s.0))
        .map(|s| s.1 + s.2)
        .max()
        .unwrap_or(0);
    let rss_peak = rss
        .iter()
        .filter(|s| in_window(s.0))
        .map(|s| s.1 + s.2)
        .max()
        .unwrap_or(0);
    let children_seen = rss.iter().any(|s| in_window(s.0) && s.2 > 0);
    let pss_before = pss
        .iter()
        .filter(|s| in_base(s.0))
        .map(|s| s.1)
        .max()
        .unwrap_or(0);
    let pss_peak = pss
        .iter()
        .filter(|s| in_window(s.0))
        .map(|s| s.1)
        .max()
        .unwrap_or(0);
    Ok(Measured {
        kind: server.kind,
        base: stats(base, t_bgsave - (origin + WARMUP)),
        during: stats(during, t_end - t_bgsave),
        window: t_end - t_bgsave,
        errors,
        rss_before,
        rss_peak,
        pss_before,
        pss_peak,
        children_seen,
        cow_size,
    })
}

/// Raises the stop flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn ms(ns: u64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

/// Runs the suite.
///
/// # Errors
/// A server failed or answered errors.
pub fn run(plan: &Plan) -> Result<Outcome> {
    let tmp = tempfile::tempdir()?;
    let mut results = Vec::new();
    for kind in [Kind::Cairn, Kind::Redis] {
        let spec = Spec {
            kind,
            dir: tmp.path().join(kind.name()),
            persistence: true,
        };
        let server = Server::start(&plan.cairn_bin, &spec)?;
        data::load(server.conn()?, plan.keys, plan.seed)?;
        let m = measure(&server, plan)?;
        eprintln!(
            "bench: latency {}: base p99 {} max {}; during ({:.2?}) p99 {} max {}; RSS {} -> {}",
            kind.name(),
            ms(m.base.p99),
            ms(m.base.max),
            m.window,
            ms(m.during.p99),
            ms(m.during.max),
            fmt_bytes(m.rss_before as f64),
            fmt_bytes(m.rss_peak as f64)
        );
        server.stop()?;
        results.push(m);
    }
    let mut out = Outcome::default();
    let mut lat = Table::new(
        format!(
            "Latency, {CLIENTS} connections, 50% SET / 50% GET on {} keys, 100-byte values ({}s baseline, then BGSAVE)",
            plan.keys,
            plan.latency_base.as_secs()
        ),
        &[
            "server", "window", "requests", "ops/s", "p50", "p99", "p99.9", "max", "errors",
        ],
    );
    for m in &results {
        for (name, s) in [("no snapshot", m.base), ("during BGSAVE", m.during)] {
            lat.row(vec![
                m.kind.name().into(),
                if name == "during BGSAVE" {
                    format!("{name} ({:.2}s)", m.window.as_secs_f64())
                } else {
                    name.into()
                },
                s.count.to_string(),
                format!("{:.0}", s.ops),
                ms(s.p50),
                ms(s.p99),
                ms(s.p999),
                ms(s.max),
                m.errors.to_string(),
            ]);
        }
        if m.errors > 0 {
            out.failures.push(format!(
                "latency: {} answered {} error replies",
                m.kind.name(),
                m.errors
            ));
        }
    }
    lat.note(
        "The snapshot window runs from sending BGSAVE to the first INFO poll (every 5 ms) showing \
         rdb_bgsave_in_progress:0 with rdb_saves incremented; a request belongs to it if any part of it \
         overlaps. The baseline is every request that completed before BGSAVE, after a 1 s warm-up."
            .into(),
    );
    let mut mem = Table::new(
        "Memory during the snapshot under the same write load (RSS sampled every 10 ms, PSS every 100 ms)".into(),
        &["server", "RSS before", "RSS peak during", "peak/before", "PSS before", "PSS peak during", "peak/before", "target"],
    );
    let mut goals = Table::new(
        "Snapshot targets for cairn (Redis for reference)".into(),
        &[
            "server",
            "p99 during / p99 without",
            "max during",
            "RSS peak / before",
        ],
    );
    for m in &results {
        let rss_ratio = m.rss_peak as f64 / (m.rss_before.max(1)) as f64;
        let pss_ratio = m.pss_peak as f64 / (m.pss_before.max(1)) as f64;
        let p99_ratio = m.during.p99 as f64 / (m.base.p99.max(1)) as f64;
        let is_cairn = m.kind == Kind::Cairn;
        out.summary.push(format!(
            "{} under 50-client SET/GET load, during BGSAVE vs without: p99 {} vs {} ({}), max {} vs {}, \
             memory peak/before {} (RSS{}){}.",
            m.kind.name(),
            ms(m.during.p99),
            ms(m.base.p99),
            fmt_ratio(p99_ratio),
            ms(m.during.max),
            ms(m.base.max),
            fmt_ratio(rss_ratio),
            if m.children_seen { " of parent + fork child" } else { "" },
            if is_cairn {
                format!(
                    "; targets p99 ≤ 2x {}, max ≤ 10 ms {}, memory ≤ 1.1x {}",
                    if p99_ratio <= 2.0 { "met" } else { "MISSED" },
                    if m.during.max <= 10_000_000 { "met" } else { "MISSED" },
                    if rss_ratio <= 1.1 { "met" } else { "MISSED" }
                )
            } else {
                String::new()
            }
        ));
        mem.row(vec![
            if m.children_seen {
                format!("{} (parent + fork child)", m.kind.name())
            } else {
                m.kind.name().into()
            },
            fmt_bytes(m.rss_before as f64),
            fmt_bytes(m.rss_peak as f64),
            fmt_ratio(rss_ratio),
            fmt_bytes(m.pss_before as f64),
            fmt_bytes(m.pss_peak as f64),
            fmt_ratio(pss_ratio),
            if is_cairn {
                target(Some(rss_ratio), 1.1)
            } else {
                String::new()
            },
        ]);
        let judged = |v: String, ok: bool, goal: &str| {
            if is_cairn {
                format!("{v} ({goal}: {})", if ok { "met" } else { "MISSED" })
            } else {
                v
            }
        };
        goals.row(vec![
            m.kind.name().into(),
            judged(fmt_ratio(p99_ratio), p99_ratio <= 2.0, "≤ 2x"),
            judged(ms(m.during.max), m.during.max <= 10_000_000, "≤ 10 ms"),
            judged(fmt_ratio(rss_ratio), rss_ratio <= 1.1, "≤ 1.1x"),
        ]);
        if let Some(cow) = m.cow_size.filter(|_| m.kind == Kind::Redis) {
            mem.note(format!(
                "Redis reports rdb_last_cow_size {} for this BGSAVE: memory its fork child copied because the parent wrote.",
                fmt_bytes(cow as f64)
            ));
        }
    }
    mem.note(
        "RSS of a forked Redis counts the pages parent and child share twice; PSS splits shared pages between \
         them, so the PSS sum is the physical memory really used. cairn does not fork: RSS ≈ PSS."
            .into(),
    );
    out.tables = vec![lat, goals, mem];
    Ok(out)
}
