//! Suite 3, latency under a background snapshot: 50 connections issue
//! SET/GET (half each, random keys of the loaded set, 100-byte values),
//! one request at a time each, while a sampler reads the server's RSS every
//! 10 ms. Per round and server: a warm-up, a baseline window, a BGSAVE under
//! the same continuous load, and a settle. Per-request latencies are split
//! into "no snapshot" and "during the snapshot" windows and pooled over the
//! rounds, because one window of each is mostly noise on a small shared
//! machine (the same server's baseline p99 varies 2x between runs). Each
//! window also gives its longest stall: the longest time no connection got
//! a reply.

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
use super::{Outcome, Plan, Table, fmt_bytes, fmt_ratio, median, target};

const CLIENTS: u64 = 50;
/// Excluded from the baseline: connections and caches settle.
const WARMUP: Duration = Duration::from_secs(1);
/// Load kept up after a BGSAVE finished, before the visit ends: whatever
/// the save leaves behind (freed pages, fjall's background work) lands in
/// the same server's visit rather than in the other server's baseline.
const SETTLE: Duration = Duration::from_secs(1);
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

/// Percentiles of `lat` (sorted in place) over `window`.
fn stats(lat: &mut [u64], window: Duration) -> Stats {
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

/// One visit to a server: the latencies of its baseline window and of its
/// snapshot window, and the memory around that snapshot.
struct Round {
    /// Position in the suite's sequence of visits (both servers), from 1.
    seq: usize,
    base: Vec<u64>,
    during: Vec<u64>,
    base_stats: Stats,
    during_stats: Stats,
    /// The longest time in each window during which no reply arrived.
    base_gap: u64,
    during_gap: u64,
    base_len: Duration,
    window: Duration,
    errors: u64,
    rss_before: u64,
    rss_peak: u64,
    pss_before: u64,
    pss_peak: u64,
    children_seen: bool,
    cow_size: Option<u64>,
}

impl Round {
    fn p99_ratio(&self) -> f64 {
        self.during_stats.p99 as f64 / self.base_stats.p99.max(1) as f64
    }

    fn rss_ratio(&self) -> f64 {
        self.rss_peak as f64 / self.rss_before.max(1) as f64
    }

    fn pss_ratio(&self) -> f64 {
        self.pss_peak as f64 / self.pss_before.max(1) as f64
    }
}

/// Every round of one server, pooled.
struct Measured {
    kind: Kind,
    rounds: Vec<Round>,
    base: Stats,
    during: Stats,
    /// Summed window lengths.
    base_len: Duration,
    window: Duration,
    errors: u64,
}

impl Measured {
    fn new(kind: Kind, mut rounds: Vec<Round>) -> Measured {
        let base_len = rounds.iter().map(|r| r.base_len).sum();
        let window = rounds.iter().map(|r| r.window).sum();
        let mut base: Vec<u64> = rounds
            .iter_mut()
            .flat_map(|r| std::mem::take(&mut r.base))
            .collect();
        let mut during: Vec<u64> = rounds
            .iter_mut()
            .flat_map(|r| std::mem::take(&mut r.during))
            .collect();
        Measured {
            kind,
            base: stats(&mut base, base_len),
            during: stats(&mut during, window),
            base_len,
            window,
            errors: rounds.iter().map(|r| r.errors).sum(),
            rounds,
        }
    }

    fn p99_ratio(&self) -> f64 {
        self.during.p99 as f64 / self.base.p99.max(1) as f64
    }

    /// The longest stall of any baseline and of any snapshot window.
    fn gaps(&self) -> (u64, u64) {
        let base = self.rounds.iter().map(|r| r.base_gap).max().unwrap_or(0);
        let during = self.rounds.iter().map(|r| r.during_gap).max().unwrap_or(0);
        (base, during)
    }

    fn round_ratios(&self) -> Vec<f64> {
        self.rounds.iter().map(Round::p99_ratio).collect()
    }

    /// The round whose snapshot grew memory the most, by `ratio`.
    fn worst(&self, ratio: fn(&Round) -> f64) -> Option<&Round> {
        self.rounds
            .iter()
            .max_by(|a, b| ratio(a).total_cmp(&ratio(b)))
    }

    fn children_seen(&self) -> bool {
        self.rounds.iter().any(|r| r.children_seen)
    }
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

/// One visit: load from 50 connections through a warm-up, a baseline of
/// `base_len`, a BGSAVE until INFO says it finished, and a settle.
/// `round` picks the clients' key sequence (the same for both servers in a
/// round); `seq` numbers the visit in the suite.
fn visit(
    server: &Server,
    plan: &Plan,
    base_len: Duration,
    round: u64,
    seq: usize,
) -> Result<Round> {
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
        let (addr, n) = (server.addr, plan.keys);
        let seed = plan.seed ^ round.rotate_left(32);
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
    let base_until = origin + WARMUP + base_len;
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
    std::thread::sleep(SETTLE);
    stop.store(true, Ordering::Relaxed);
    let (samples, errors) = match clients.join() {
        Ok(r) => r?,
        Err(_) => bail!("client thread panicked"),
    };
    let Ok((rss, pss)) = sampler.join() else {
        bail!("sampler thread panicked")
    };

    let (b0, b1, w1) = (ns(origin + WARMUP), ns(t_bgsave), ns(t_end));
    let mut base: Vec<u64> = samples
        .iter()
        .filter(|(s, l)| *s >= b0 && s + l <= b1)
        .map(|s| s.1)
        .collect();
    // A request counts as "during" when any part of it overlaps the window,
    // which starts at the BGSAVE command itself: Redis forks (and cairn
    // takes its view) while answering it, before INFO can say so.
    let mut during: Vec<u64> = samples
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
    let (base_len, window) = (t_bgsave - (origin + WARMUP), t_end - t_bgsave);
    let mut replies: Vec<u64> = samples.iter().map(|(s, l)| s + l).collect();
    replies.sort_unstable();
    Ok(Round {
        base_gap: longest_gap(&replies, b0, b1),
        during_gap: longest_gap(&replies, b1, w1),
        seq,
        base_stats: stats(&mut base, base_len),
        during_stats: stats(&mut during, window),
        base,
        during,
        base_len,
        window,
        errors,
        rss_before,
        rss_peak,
        pss_before,
        pss_peak,
        children_seen,
        cow_size,
    })
}

/// The longest interval within `from..=to` in which no reply arrived
/// (`replies`: arrival times, sorted), counting from `from` and up to `to`.
/// With 50 connections waiting at all times, this is how long the server
/// (or the machine) stopped answering everyone at once.
fn longest_gap(replies: &[u64], from: u64, to: u64) -> u64 {
    let mut last = from;
    let mut gap = 0;
    for &t in replies.iter().skip_while(|&&t| t < from) {
        let t = t.min(to);
        gap = gap.max(t - last);
        last = t;
        if t >= to {
            break;
        }
    }
    gap.max(to.saturating_sub(last))
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
    const KINDS: [Kind; 2] = [Kind::Cairn, Kind::Redis];
    // Both servers stay up for the whole suite so the rounds can alternate
    // between them; the one not being measured is idle.
    let mut servers = Vec::new();
    for kind in KINDS {
        let spec = Spec {
            kind,
            dir: tmp.path().join(kind.name()),
            persistence: true,
        };
        let server = Server::start(&plan.cairn_bin, &spec)?;
        data::load(server.conn()?, plan.keys, plan.seed)?;
        servers.push(server);
    }
    let mut rounds: [Vec<Round>; 2] = [Vec::new(), Vec::new()];
    let mut seq = 0;
    for round in 0..plan.latency_rounds {
        // cairn, Redis, Redis, cairn, ...: a drift of the machine over the
        // suite weighs on both servers alike.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let (Some(server), Some(done)) = (servers.get(i), rounds.get_mut(i)) else {
                bail!("no server {i}");
            };
            // A baseline as long as the snapshot window it is compared with
            // (known from the previous round) holds as many chances of a
            // machine hiccup, so the max and the tail compare like for like.
            let base_len = done
                .last()
                .map_or(plan.latency_base, |r| r.window.max(plan.latency_base));
            seq += 1;
            let r = visit(server, plan, base_len, round as u64, seq)?;
            eprintln!(
                "bench: latency {} round {}/{}: base ({:.2?}) p99 {} max {} gap {}; during ({:.2?}) p99 {} max {} gap {}; \
                 p99 ratio {}; RSS {} -> {}",
                server.kind.name(),
                round + 1,
                plan.latency_rounds,
                r.base_len,
                ms(r.base_stats.p99),
                ms(r.base_stats.max),
                ms(r.base_gap),
                r.window,
                ms(r.during_stats.p99),
                ms(r.during_stats.max),
                ms(r.during_gap),
                fmt_ratio(r.p99_ratio()),
                fmt_bytes(r.rss_before as f64),
                fmt_bytes(r.rss_peak as f64)
            );
            done.push(r);
        }
    }
    for server in servers {
        server.stop()?;
    }
    let results: Vec<Measured> = KINDS
        .into_iter()
        .zip(rounds)
        .map(|(kind, r)| Measured::new(kind, r))
        .collect();
    Ok(report(plan, &results))
}

/// Every per-round p99 ratio and their median, e.g. `1.20x 1.45x 1.31x, median 1.31x`.
fn ratio_spread(m: &Measured) -> String {
    let ratios = m.round_ratios();
    let all = ratios
        .iter()
        .map(|r| fmt_ratio(*r))
        .collect::<Vec<_>>()
        .join(" ");
    match median(&ratios) {
        Some(med) if ratios.len() > 1 => format!("{all}, median {}", fmt_ratio(med)),
        _ => all,
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn report(plan: &Plan, results: &[Measured]) -> Outcome {
    let mut out = Outcome::default();
    let mut lat = Table::new(
        format!(
            "Latency, {CLIENTS} connections, 50% SET / 50% GET on {} keys, 100-byte values \
             ({} alternating rounds per server of baseline ≥ {}s then BGSAVE; pooled)",
            plan.keys,
            plan.latency_rounds,
            plan.latency_base.as_secs()
        ),
        &[
            "server",
            "window",
            "requests",
            "ops/s",
            "p50",
            "p99",
            "p99.9",
            "max",
            "longest stall",
            "errors",
        ],
    );
    for m in results {
        let n = m.rounds.len();
        let (base_gap, during_gap) = m.gaps();
        for (name, s, len, gap) in [
            ("no snapshot", m.base, m.base_len, base_gap),
            ("during BGSAVE", m.during, m.window, during_gap),
        ] {
            lat.row(vec![
                m.kind.name().into(),
                format!(
                    "{name} ({n} × {:.2}s avg)",
                    len.as_secs_f64() / n.max(1) as f64
                ),
                s.count.to_string(),
                format!("{:.0}", s.ops),
                ms(s.p50),
                ms(s.p99),
                ms(s.p999),
                ms(s.max),
                ms(gap),
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
        "Each snapshot window runs from sending BGSAVE to the first INFO poll (every 5 ms) showing \
         rdb_bgsave_in_progress:0 with rdb_saves incremented; a request belongs to it if any part of it \
         overlaps. Each baseline is every request that completed between the visit's 1 s warm-up and its \
         BGSAVE. The rows pool the requests of all rounds; ops/s is over the summed windows. The longest \
         stall is the longest time in any window of the row in which no reply reached any of the 50 connections, \
         which always have a request outstanding: the server (or the machine) answered nobody."
            .into(),
    );
    let mut per_round = Table::new(
        "Latency per round (visits in the order run)".into(),
        &[
            "visit",
            "server",
            "baseline",
            "p99 without",
            "max without",
            "stall without",
            "BGSAVE",
            "p99 during",
            "max during",
            "stall during",
            "p99 during / without",
            "RSS peak / before",
        ],
    );
    let mut visits: Vec<(&Measured, &Round)> = results
        .iter()
        .flat_map(|m| m.rounds.iter().map(move |r| (m, r)))
        .collect();
    visits.sort_by_key(|(_, r)| r.seq);
    for (m, r) in visits {
        per_round.row(vec![
            r.seq.to_string(),
            m.kind.name().into(),
            format!("{:.2}s", r.base_len.as_secs_f64()),
            ms(r.base_stats.p99),
            ms(r.base_stats.max),
            ms(r.base_gap),
            format!("{:.2}s", r.window.as_secs_f64()),
            ms(r.during_stats.p99),
            ms(r.during_stats.max),
            ms(r.during_gap),
            fmt_ratio(r.p99_ratio()),
            fmt_ratio(r.rss_ratio()),
        ]);
    }
    per_round.note(
        "The spread of the per-round ratios is the run's noise: a ratio is judged on the pooled figures \
         above, and the median of the per-round ratios is given beside it."
            .into(),
    );
    let mut mem = Table::new(
        "Memory during the snapshot under the same write load (RSS sampled every 10 ms, PSS every 100 ms; \
         worst round)"
            .into(),
        &["server", "RSS before", "RSS peak during", "peak/before", "PSS before", "PSS peak during", "peak/before", "target"],
    );
    let mut goals = Table::new(
        "Snapshot targets for cairn (Redis for reference)".into(),
        &[
            "server",
            "p99 during / p99 without (pooled)",
            "per-round p99 ratios",
            "longest stall during",
            "longest stall without (reference)",
            "slowest request during / without (reference)",
            "RSS peak / before (worst round)",
        ],
    );
    for m in results {
        let rss = m.worst(Round::rss_ratio);
        let pss = m.worst(Round::pss_ratio);
        let rss_ratio = rss.map_or(0.0, Round::rss_ratio);
        let pss_ratio = pss.map_or(0.0, Round::pss_ratio);
        let p99_ratio = m.p99_ratio();
        let is_cairn = m.kind == Kind::Cairn;
        let (base_gap, during_gap) = m.gaps();
        let (p99_ok, stall_ok, rss_ok) =
            (p99_ratio <= 2.0, during_gap <= 10_000_000, rss_ratio <= 1.1);
        out.summary.push(format!(
            "{} under 50-client SET/GET load, during BGSAVE vs without, pooled over {} round(s): p99 {} vs {} \
             ({}; per round {}), longest stall {} vs {}, slowest request {} vs {}, memory peak/before {} (RSS{}, \
             worst round){}.",
            m.kind.name(),
            m.rounds.len(),
            ms(m.during.p99),
            ms(m.base.p99),
            fmt_ratio(p99_ratio),
            ratio_spread(m),
            ms(during_gap),
            ms(base_gap),
            ms(m.during.max),
            ms(m.base.max),
            fmt_ratio(rss_ratio),
            if m.children_seen() { " of parent + fork child" } else { "" },
            if is_cairn {
                format!(
                    "; targets p99 ≤ 2x {}, no stall above 10 ms {}, memory ≤ 1.1x {}",
                    met(p99_ok),
                    met(stall_ok),
                    met(rss_ok)
                )
            } else {
                String::new()
            }
        ));
        mem.row(vec![
            if m.children_seen() {
                format!("{} (parent + fork child)", m.kind.name())
            } else {
                m.kind.name().into()
            },
            fmt_bytes(rss.map_or(0, |r| r.rss_before) as f64),
            fmt_bytes(rss.map_or(0, |r| r.rss_peak) as f64),
            fmt_ratio(rss_ratio),
            fmt_bytes(pss.map_or(0, |r| r.pss_before) as f64),
            fmt_bytes(pss.map_or(0, |r| r.pss_peak) as f64),
            fmt_ratio(pss_ratio),
            if is_cairn {
                target(Some(rss_ratio), 1.1)
            } else {
                String::new()
            },
        ]);
        let judged = |v: String, ok: bool, goal: &str| {
            if is_cairn {
                format!("{v} ({goal}: {})", met(ok))
            } else {
                v
            }
        };
        goals.row(vec![
            m.kind.name().into(),
            judged(fmt_ratio(p99_ratio), p99_ok, "≤ 2x"),
            ratio_spread(m),
            judged(ms(during_gap), stall_ok, "≤ 10 ms"),
            ms(base_gap),
            format!("{} / {}", ms(m.during.max), ms(m.base.max)),
            judged(fmt_ratio(rss_ratio), rss_ok, "≤ 1.1x"),
        ]);
        let cow = m.rounds.iter().filter_map(|r| r.cow_size).max();
        if let Some(cow) = cow.filter(|_| m.kind == Kind::Redis) {
            mem.note(format!(
                "Redis reports rdb_last_cow_size up to {} for these BGSAVEs: memory its fork child copied because \
                 the parent wrote.",
                fmt_bytes(cow as f64)
            ));
        }
    }
    goals.note(
        "A stall is a time in which the server answered none of the 50 connections although every one had a \
         request outstanding: what a fork or any pause of the whole server shows as, and what the 10 ms target \
         is judged on (longest over every snapshot window; the same measure over the baselines is the floor of \
         the machine and the load generator). The slowest single request is given beside it with its baseline: \
         with more runnable threads than cores (cairn's two workers and the load generator on two cores) one \
         worker can be switched out while the other keeps answering, which delays the requests waiting on it \
         without stalling the server; when the slowest requests with and without a snapshot are alike, their \
         cause is that scheduling, not the snapshot."
            .into(),
    );
    mem.note(
        "Per round, the peak is taken over the snapshot window and \"before\" over the baseline just before it; \
         the row is the round with the largest peak/before."
            .into(),
    );
    mem.note(
        "RSS of a forked Redis counts the pages parent and child share twice; PSS splits shared pages between \
         them, so the PSS sum is the physical memory really used. cairn does not fork: RSS ≈ PSS."
            .into(),
    );
    out.tables = vec![lat, per_round, goals, mem];
    out
}

#[cfg(test)]
mod tests {
    use super::longest_gap;

    #[test]
    fn longest_gap_counts_from_the_window_start_to_its_end() {
        // Replies at 5, 7 and 20 in a window 0..=30: the gaps are 5, 2, 13
        // and 10 (to the window's end).
        assert_eq!(longest_gap(&[5, 7, 20], 0, 30), 13);
        // Replies outside the window do not shorten a gap inside it.
        assert_eq!(longest_gap(&[1, 2, 12, 14, 40], 10, 20), 6);
        // No reply at all: the whole window is a stall.
        assert_eq!(longest_gap(&[], 10, 20), 10);
        assert_eq!(longest_gap(&[1, 2, 30], 10, 20), 10);
    }
}
