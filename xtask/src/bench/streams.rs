//! Suite `streams`: stream throughput, memory per entry and snapshot of a
//! large stream, cairn beside Redis in one run.
//!
//! - XADD through `redis-benchmark -c 50` (`XADD s * f __rand_int__`),
//!   unpipelined and with `-P 16`.
//! - XREADGROUP + XACK: 8 client threads, each a consumer of one group,
//!   read one entry (`COUNT 1`) and acknowledge it, one pair at a time or
//!   16 pairs per round trip; pairs per second. (redis-benchmark cannot
//!   acknowledge the ID it was just given.)
//! - Memory per entry: 10^6 entries (2*10^5 with `--quick`) of 3 small
//!   fields added with pipelined XADD; RSS growth / entries.
//! - SAVE of that stream and the restart that loads it.

use std::io::Write as _;
use std::time::Instant;

use anyhow::{Result, bail};

use super::resp::{Reply, encode, read_reply};
use super::servers::{self, Kind, Server, Spec};
use super::throughput::{Run, redis_benchmark};
use super::{Outcome, Plan, Table, fmt_ratio, fmt_secs, median};

/// Consumer threads of the XREADGROUP + XACK rate.
const CONSUMERS: usize = 8;

fn ratio(c: Option<f64>, r: Option<f64>) -> Option<f64> {
    match (c, r) {
        (Some(c), Some(r)) if r > 0.0 => Some(c / r),
        _ => None,
    }
}

/// "met"/"MISSED" against a lower bound on a ratio.
fn at_least(ratio: Option<f64>, bound: f64) -> String {
    match ratio {
        Some(r) if r >= bound => format!("≥ {bound}x: met"),
        Some(_) => format!("≥ {bound}x: MISSED"),
        None => format!("≥ {bound}x: —"),
    }
}

fn num(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.0}"))
}

/// Adds `n` entries of 3 small fields to `key` with pipelined XADD.
fn fill(s: &Server, key: &str, n: u64) -> Result<()> {
    let (mut reader, mut writer) = s.conn()?.split();
    let mut left = n;
    let mut i = 0u64;
    while left > 0 {
        let batch = left.min(1000);
        let mut out = Vec::new();
        for _ in 0..batch {
            i += 1;
            let v = i.to_string();
            encode(
                &mut out,
                &[
                    b"XADD",
                    key.as_bytes(),
                    b"*",
                    b"user",
                    v.as_bytes(),
                    b"action",
                    b"click",
                    b"page",
                    b"/home",
                ],
            );
        }
        writer.write_all(&out)?;
        for _ in 0..batch {
            if let Reply::Error(e) = read_reply(&mut reader)? {
                bail!("{} XADD: -{e}", s.kind.name());
            }
        }
        left -= batch;
    }
    Ok(())
}

/// XREADGROUP COUNT 1 + XACK pairs per second over [`CONSUMERS`]
/// threads, `depth` pairs per round trip, `per_thread` pairs each.
fn read_ack_rate(s: &Server, depth: usize, per_thread: usize) -> Result<f64> {
    let started = Instant::now();
    let handles: Vec<_> = (0..CONSUMERS)
        .map(|t| {
            let conn = s.conn();
            std::thread::spawn(move || -> Result<()> {
                let (mut reader, mut writer) = conn?.split();
                let consumer = format!("c{t}");
                let mut done = 0;
                while done < per_thread {
                    let k = depth.min(per_thread - done);
                    let mut out = Vec::new();
                    for _ in 0..k {
                        encode(
                            &mut out,
                            &[
                                b"XREADGROUP",
                                b"GROUP",
                                b"g",
                                consumer.as_bytes(),
                                b"COUNT",
                                b"1",
                                b"STREAMS",
                                b"q",
                                b">",
                            ],
                        );
                    }
                    writer.write_all(&out)?;
                    let mut ids = Vec::with_capacity(k);
                    for _ in 0..k {
                        match read_reply(&mut reader)? {
                            Reply::Error(e) => bail!("XREADGROUP: -{e}"),
                            r => ids.push(first_id(&r).unwrap_or_default()),
                        }
                    }
                    let mut out = Vec::new();
                    for id in &ids {
                        encode(&mut out, &[b"XACK", b"q", b"g", id.as_bytes()]);
                    }
                    writer.write_all(&out)?;
                    for _ in 0..k {
                        if let Reply::Error(e) = read_reply(&mut reader)? {
                            bail!("XACK: -{e}");
                        }
                    }
                    done += k;
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        match h.join() {
            Ok(r) => r?,
            Err(_) => bail!("a consumer thread panicked"),
        }
    }
    Ok((CONSUMERS * per_thread) as f64 / started.elapsed().as_secs_f64())
}

/// The first entry ID in an XREADGROUP reply (`[[key, [[id, fields]]]]`).
fn first_id(r: &Reply) -> Option<String> {
    let Reply::Array(Some(streams)) = r else {
        return None;
    };
    let Reply::Array(Some(kv)) = streams.first()? else {
        return None;
    };
    let Reply::Array(Some(entries)) = kv.get(1)? else {
        return None;
    };
    let Reply::Array(Some(entry)) = entries.first()? else {
        return None;
    };
    entry.first()?.text()
}

fn start(plan: &Plan, kind: Kind, dir: &std::path::Path) -> Result<Server> {
    Server::start(
        &plan.cairn_bin,
        &Spec {
            kind,
            dir: dir.join(kind.name()),
            persistence: true,
        },
    )
}

/// Runs the suite.
///
/// # Errors
/// A server could not be started or driven.
pub fn run(plan: &Plan) -> Result<Outcome> {
    let tmp = tempfile::tempdir()?;
    let servers = [
        start(plan, Kind::Cairn, tmp.path())?,
        start(plan, Kind::Redis, tmp.path())?,
    ];
    let mut out = Outcome::default();
    let n = plan.bench_requests;

    let mut rates = Table::new(
        format!(
            "Stream rates (ops/s, median of {} alternating rounds): XADD by redis-benchmark -c 50 -n N; XREADGROUP COUNT 1 + XACK pairs by {CONSUMERS} consumer threads",
            plan.bench_rounds
        ),
        &[
            "command",
            "cairn ops/s",
            "redis ops/s",
            "cairn/redis",
            "target",
        ],
    );
    let mut ratios = Vec::new();
    for pipeline in [1u32, 16] {
        let mut got: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let requests = if pipeline > 1 { n * 10 } else { n };
        for _ in 0..plan.bench_rounds {
            for (i, s) in servers.iter().enumerate() {
                s.conn()?.ok(&["DEL", "s"])?;
                let mut args: Vec<String> = vec![
                    "-n".into(),
                    requests.to_string(),
                    "-r".into(),
                    "1000000".into(),
                ];
                if pipeline > 1 {
                    args.extend(["-P".into(), pipeline.to_string()]);
                }
                args.extend(
                    ["XADD", "s", "*", "f", "__rand_int__"]
                        .iter()
                        .map(|a| (*a).to_owned()),
                );
                match redis_benchmark(s.addr.port(), &args)? {
                    Run::Rows(rows) => got[i].extend(rows.into_iter().map(|(_, r)| r)),
                    Run::Failed(msg) => out.failures.push(format!("{} XADD: {msg}", s.kind.name())),
                }
            }
        }
        let (c, r) = (median(&got[0]), median(&got[1]));
        let x = ratio(c, r);
        ratios.extend(x);
        rates.row(vec![
            format!("XADD (-P {pipeline})"),
            num(c),
            num(r),
            x.map_or("—".into(), fmt_ratio),
            at_least(x, 1.0),
        ]);
    }
    for depth in [1usize, 16] {
        let per_thread = usize::try_from(n).unwrap_or(usize::MAX) / CONSUMERS * depth.min(4);
        let mut got: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..plan.bench_rounds {
            for (i, s) in servers.iter().enumerate() {
                let mut c = s.conn()?;
                c.ok(&["DEL", "q"])?;
                fill(s, "q", (CONSUMERS * per_thread) as u64)?;
                c.ok(&["XGROUP", "CREATE", "q", "g", "0"])?;
                got[i].push(read_ack_rate(s, depth, per_thread)?);
                let pending = c.cmd(&["XPENDING", "q", "g"])?;
                if let Reply::Array(Some(p)) = &pending
                    && !matches!(p.first(), Some(Reply::Int(0)))
                {
                    out.failures.push(format!(
                        "{}: entries left pending after XACK: {pending:?}",
                        s.kind.name()
                    ));
                }
            }
        }
        let (c, r) = (median(&got[0]), median(&got[1]));
        let x = ratio(c, r);
        ratios.extend(x);
        rates.row(vec![
            format!("XREADGROUP + XACK (depth {depth})"),
            num(c),
            num(r),
            x.map_or("—".into(), fmt_ratio),
            at_least(x, 1.0),
        ]);
    }
    out.tables.push(rates);

    // Memory per entry, then SAVE and restart of the same stream.
    let entries: u64 = if plan.quick { 200_000 } else { 1_000_000 };
    let mut mem = Table::new(
        format!(
            "A stream of {entries} entries with 3 small fields (user=<n>, action=click, page=/home)"
        ),
        &["measure", "cairn", "redis", "cairn/redis", "target"],
    );
    let mut per_entry = [None, None];
    let mut save = [None, None];
    let mut restart = [None, None];
    let [cairn, redis] = servers;
    for (i, s) in [cairn, redis].into_iter().enumerate() {
        let kind = s.kind;
        // A fresh process: memory the rate rounds freed stays in the
        // allocator and would absorb the growth (cairn measured 5 B an
        // entry that way).
        s.conn()?.ok(&["FLUSHALL"])?;
        s.stop()?;
        let s = start(plan, kind, tmp.path())?;
        let mut c = s.conn()?;
        let before = servers::rss_bytes(s.pid()).unwrap_or(0);
        fill(&s, "events", entries)?;
        let after = servers::rss_bytes(s.pid()).unwrap_or(0);
        per_entry[i] = Some(after.saturating_sub(before) as f64 / entries as f64);
        let t = Instant::now();
        c.ok(&["SAVE"])?;
        save[i] = Some(t.elapsed().as_secs_f64());
        drop(c);
        s.stop()?;
        let restarted = start(plan, kind, tmp.path())?;
        restart[i] = Some(restarted.pong_after.as_secs_f64());
        let len = restarted.conn()?.cmd(&["XLEN", "events"])?;
        if len != Reply::Int(i64::try_from(entries).unwrap_or(i64::MAX)) {
            out.failures.push(format!(
                "{}: XLEN events after the restart is {len:?}, not {entries}",
                kind.name()
            ));
        }
        restarted.stop()?;
    }
    let mut row = |name: &str, v: [Option<f64>; 2], fmt: fn(f64) -> String, goal: Option<f64>| {
        let x = ratio(v[0], v[1]);
        mem.row(vec![
            name.to_owned(),
            v[0].map_or("—".into(), fmt),
            v[1].map_or("—".into(), fmt),
            x.map_or("—".into(), fmt_ratio),
            goal.map_or(String::new(), |g| super::target(x, g)),
        ]);
    };
    row(
        "RSS per entry",
        per_entry,
        |b| format!("{b:.1} B"),
        Some(1.2),
    );
    row("SAVE (blocking, until committed)", save, fmt_secs, None);
    row(
        "restart: spawn → first PONG, stream loaded",
        restart,
        fmt_secs,
        None,
    );
    out.tables.push(mem);
    let geo = (!ratios.is_empty())
        .then(|| (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp());
    if let Some(g) = geo {
        out.summary.push(format!(
            "Stream rates: cairn/redis geometric mean {}.",
            fmt_ratio(g)
        ));
    }
    if let (Some(c), Some(r)) = (per_entry[0], per_entry[1]) {
        out.summary.push(format!(
            "Stream memory: {c:.1} B per entry on cairn, {r:.1} B on Redis."
        ));
    }
    Ok(out)
}
