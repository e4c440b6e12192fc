//! Suite `scripting`: `redis-benchmark` running `EVALSHA` of a small
//! rate limiter (INCR, EXPIRE on the first hit) and `FCALL` of the same
//! limiter as a function, unpipelined and `-P 16`, cairn beside Redis in
//! the same run; and the latency a concurrent client sees while a
//! 1-second script runs.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::resp::{Conn, Reply};
use super::servers::{Kind, Server, Spec};
use super::{Outcome, Plan, Table, fmt_ratio, median};

/// The limiter: one counter per key, expiring after ARGV[1] seconds.
const LIMITER: &str = "local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end return n";

const LIBRARY: &str = "#!lua name=ratelimit\nredis.register_function('hit', function(keys, args) local n = redis.call('INCR', keys[1]) if n == 1 then redis.call('EXPIRE', keys[1], args[1]) end return n end)";

/// A script that keeps the server busy for about a second.
const ONE_SECOND: &str = "local t = redis.call('TIME') local start = t[1] * 1000000 + t[2] while true do t = redis.call('TIME') if t[1] * 1000000 + t[2] - start >= 1000000 then return 1 end end";

/// The command redis-benchmark repeats, for a loaded script's sha.
fn command(kind: &str, sha: &str) -> Vec<String> {
    let mut c: Vec<String> = match kind {
        "EVALSHA" => vec!["EVALSHA".into(), sha.into()],
        _ => vec!["FCALL".into(), "hit".into()],
    };
    c.extend(["1".into(), "rl:__rand_int__".into(), "60".into()]);
    c
}

fn bench_once(port: u16, args: &[String], requests: u64, pipeline: u32) -> Result<f64> {
    let mut cmd = Command::new("redis-benchmark");
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args([
            "-n",
            &requests.to_string(),
            "-c",
            "50",
            "-r",
            "10000",
            "-q",
            "--csv",
        ]);
    if pipeline > 1 {
        cmd.args(["-P", &pipeline.to_string()]);
    }
    cmd.args(args);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .context("running redis-benchmark")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || stdout.contains("Error") {
        bail!("redis-benchmark {}: {stdout}", args.join(" "));
    }
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("\"test\""))
        .nth(1)
        .and_then(|l| l.split("\",\"").nth(1))
        .and_then(|v| v.trim_matches('"').parse::<f64>().ok())
        .with_context(|| format!("no CSV row: {stdout}"))
}

/// Loads the limiter on a server; its sha.
fn prepare(server: &Server) -> Result<String> {
    let mut c = server.conn()?;
    c.ok(&["FLUSHALL"])?;
    c.ok(&["FUNCTION", "FLUSH"])?;
    c.ok(&["FUNCTION", "LOAD", LIBRARY])?;
    match c.ok(&["SCRIPT", "LOAD", LIMITER])? {
        Reply::Bulk(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
        r => bail!("SCRIPT LOAD answered {r:?}"),
    }
}

/// PING latencies (µs) of one client while another runs a 1-second
/// script, with `busy-reply-threshold` at `threshold_ms`.
fn busy_latencies(server: &Server, threshold_ms: u64) -> Result<Vec<f64>> {
    let mut c = server.conn()?;
    c.ok(&[
        "CONFIG",
        "SET",
        "busy-reply-threshold",
        &threshold_ms.to_string(),
    ])?;
    let addr = server.addr;
    let script = std::thread::spawn(move || -> Result<Reply> {
        let mut s = Conn::connect(addr)?;
        s.cmd(&["EVAL", ONE_SECOND, "0"])
    });
    let mut lat = Vec::new();
    let start = Instant::now();
    // Bounded by time: 1.5 s covers the script and what follows it.
    while start.elapsed() < Duration::from_millis(1500) {
        let t = Instant::now();
        let _ = c.cmd(&["PING"])?;
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let r = script
        .join()
        .map_err(|_| anyhow::anyhow!("script thread panicked"))??;
    if r != Reply::Int(1) {
        bail!("the 1-second script answered {r:?}");
    }
    c.ok(&["CONFIG", "SET", "busy-reply-threshold", "5000"])?;
    Ok(lat)
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let i = ((s.len() as f64 - 1.0) * p).round() as usize;
    s.get(i).copied().unwrap_or(0.0)
}

/// Runs the suite.
///
/// # Errors
/// A server could not be started or a run failed.
pub fn run(plan: &Plan) -> Result<Outcome> {
    let tmp = tempfile::tempdir()?;
    let start = |kind, name: &str| {
        Server::start(
            &plan.cairn_bin,
            &Spec {
                kind,
                dir: tmp.path().join(name),
                persistence: false,
            },
        )
    };
    let cairn = start(Kind::Cairn, "cairn")?;
    let redis = start(Kind::Redis, "redis")?;
    let shas = [prepare(&cairn)?, prepare(&redis)?];
    if shas[0] != shas[1] {
        bail!("the servers disagree on the script's sha1: {shas:?}");
    }
    let mut out = Outcome::default();
    let mut table = Table::new(
        format!(
            "Scripting, redis-benchmark -c 50 -r 10000 (ops/s, median of {} alternating rounds)",
            plan.bench_rounds
        ),
        &[
            "command",
            "pipeline",
            "cairn ops/s",
            "redis ops/s",
            "cairn/redis",
        ],
    );
    for kind in ["EVALSHA", "FCALL"] {
        for pipeline in [1u32, 16] {
            let requests = plan.bench_requests * if pipeline > 1 { 10 } else { 1 };
            let args = command(kind, &shas[0]);
            let mut got: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
            for round in 0..plan.bench_rounds {
                for (ki, server) in [&cairn, &redis].into_iter().enumerate() {
                    let rps = bench_once(server.addr.port(), &args, requests, pipeline)?;
                    eprintln!(
                        "bench: scripting {kind} -P {pipeline} round {} {}: {rps:.0}",
                        round + 1,
                        server.kind.name()
                    );
                    got.entry(ki).or_default().push(rps);
                }
            }
            let c = got.get(&0).and_then(|v| median(v));
            let r = got.get(&1).and_then(|v| median(v));
            let ratio = match (c, r) {
                (Some(c), Some(r)) => c / r,
                _ => 0.0,
            };
            out.summary.push(format!(
                "{kind} -P {pipeline}: cairn/redis {} (target >= 1.0)",
                fmt_ratio(ratio)
            ));
            table.row(vec![
                format!("{kind} rate limiter"),
                pipeline.to_string(),
                c.map_or("—".into(), |v| format!("{v:.0}")),
                r.map_or("—".into(), |v| format!("{v:.0}")),
                fmt_ratio(ratio),
            ]);
        }
    }
    let mut busy = Table::new(
        "PING latency of a concurrent client while a 1-second script runs (µs)".to_owned(),
        &[
            "server",
            "busy-reply-threshold",
            "requests",
            "p50",
            "p99",
            "max",
        ],
    );
    for threshold in [100u64, 5000] {
        for server in [&cairn, &redis] {
            let lat = busy_latencies(server, threshold)?;
            let p99 = pct(&lat, 0.99);
            busy.row(vec![
                server.kind.name().to_owned(),
                format!("{threshold} ms"),
                lat.len().to_string(),
                format!("{:.0}", pct(&lat, 0.5)),
                format!("{p99:.0}"),
                format!("{:.0}", pct(&lat, 1.0)),
            ]);
            if threshold == 100 {
                out.summary.push(format!(
                    "{} p99 PING during a 1 s script (threshold 100 ms): {p99:.0} µs",
                    server.kind.name()
                ));
            }
        }
    }
    busy.note(
        "Before the threshold every command waits for the script (both servers); past it the \
         answer is -BUSY. cairn runs the script on its connection's worker; after 1 ms it declares \
         itself busy, so the other workers keep answering."
            .to_owned(),
    );
    out.tables.push(table);
    out.tables.push(busy);
    cairn.stop()?;
    redis.stop()?;
    Ok(out)
}
