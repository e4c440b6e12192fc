//! Suite 1, throughput: `redis-benchmark` against both servers, each test
//! run alternately on cairn and Redis, the median of the rounds reported.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};

use super::servers::{Kind, Server, Spec};
use super::{Outcome, Plan, Table, fmt_ratio, median};

/// The tests, in redis-benchmark's `-t` names.
const TESTS: [&str; 14] = [
    "set", "get", "incr", "lpush", "rpush", "lpop", "rpop", "sadd", "hset", "spop", "zadd",
    "zpopmin", "lrange", "mset",
];

/// Pipelined runs are this many times longer: 100,000 pipelined requests
/// finish in about 0.1 s, where one hiccup of the machine decides the
/// figure. LRANGE is not faster pipelined (it is bound by the reply size),
/// so it keeps `-n`.
const PIPELINED_SCALE: u64 = 10;

/// `-n` for a test.
fn requests(plan: &Plan, test: &str, pipeline: u32) -> u64 {
    if pipeline > 1 && test != "lrange" {
        plan.bench_requests * PIPELINED_SCALE
    } else {
        plan.bench_requests
    }
}

/// A redis-benchmark run may not take longer than this.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// One redis-benchmark invocation's result.
pub(super) enum Run {
    /// `(row name, requests per second)` per CSV row.
    Rows(Vec<(String, f64)>),
    /// The server answered an error (redis-benchmark stops at the first).
    Failed(String),
}

fn bench_once(port: u16, test: &str, plan: &Plan, pipeline: u32) -> Result<Run> {
    let mut args: Vec<String> = ["-t", test, "-n"].iter().map(|a| (*a).to_owned()).collect();
    args.push(requests(plan, test, pipeline).to_string());
    if pipeline > 1 {
        args.extend(["-P".to_owned(), pipeline.to_string()]);
    }
    redis_benchmark(port, &args)
}

/// Runs `redis-benchmark -h 127.0.0.1 -p port -c 50 -q --csv args...`
/// (a `-t` test or a command of its own after the options).
pub(super) fn redis_benchmark(port: u16, args: &[String]) -> Result<Run> {
    let mut cmd = Command::new("redis-benchmark");
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-c",
        "50",
        "-q",
        "--csv",
    ])
    .args(args);
    let what = args.join(" ");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning redis-benchmark")?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(RUN_TIMEOUT) {
        Ok(out) => out?,
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            return Ok(Run::Failed(format!(
                "redis-benchmark {what} hung for {RUN_TIMEOUT:?}"
            )));
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 7.0 exits at the first error reply ("Error from server: ...").
    if !out.status.success() || stderr.contains("Error") || stdout.contains("Error from server") {
        let msg = stderr
            .lines()
            .chain(stdout.lines())
            .find(|l| l.contains("Error"))
            .unwrap_or("redis-benchmark failed")
            .trim()
            .to_owned();
        return Ok(Run::Failed(format!("{msg} ({})", out.status)));
    }
    let rows = parse_csv(&stdout);
    if rows.is_empty() {
        return Ok(Run::Failed(format!(
            "no CSV rows from redis-benchmark {what}: {stdout}"
        )));
    }
    Ok(Run::Rows(rows))
}

/// `(row, requests per second)` from redis-benchmark's `--csv` output.
fn parse_csv(stdout: &str) -> Vec<(String, f64)> {
    let mut rows = Vec::new();
    for line in stdout
        .lines()
        .skip_while(|l| !l.starts_with("\"test\""))
        .skip(1)
    {
        let cols: Vec<&str> = line.split("\",\"").map(|c| c.trim_matches('"')).collect();
        let (Some(name), Some(rps)) = (cols.first(), cols.get(1)) else {
            continue;
        };
        // The LRANGE test's fill phase, not a measurement of its own.
        if name.starts_with("LPUSH (needed") {
            continue;
        }
        let short = if name.starts_with("LRANGE") {
            name.split(' ').next().unwrap_or(name)
        } else {
            name
        };
        if let Ok(rps) = rps.parse::<f64>() {
            rows.push((short.to_owned(), rps));
        }
    }
    rows
}

/// Runs the suite.
///
/// # Errors
/// A server could not be started.
pub fn run(plan: &Plan) -> Result<Outcome> {
    let tmp = tempfile::tempdir()?;
    let cairn = Server::start(
        &plan.cairn_bin,
        &Spec {
            kind: Kind::Cairn,
            dir: tmp.path().join("cairn"),
            persistence: false,
        },
    )?;
    let redis = Server::start(
        &plan.cairn_bin,
        &Spec {
            kind: Kind::Redis,
            dir: tmp.path().join("redis"),
            persistence: false,
        },
    )?;
    let mut out = Outcome::default();
    let mut tables = Vec::new();
    for pipeline in [1u32, 16] {
        // (row, kind) -> rps of each round
        let mut got: BTreeMap<(usize, String), [Vec<f64>; 2]> = BTreeMap::new();
        let mut failed: BTreeMap<String, String> = BTreeMap::new();
        for (ti, test) in TESTS.iter().enumerate() {
            for round in 0..plan.bench_rounds {
                for (ki, server) in [&cairn, &redis].into_iter().enumerate() {
                    // Lists and sets would otherwise grow over the rounds.
                    server.conn()?.ok(&["FLUSHALL"])?;
                    match bench_once(server.addr.port(), test, plan, pipeline)? {
                        Run::Rows(rows) => {
                            for (name, rps) in rows {
                                got.entry((ti, name)).or_default()[ki].push(rps);
                            }
                        }
                        Run::Failed(msg) => {
                            let msg =
                                format!("{} -t {test} -P {pipeline}: {msg}", server.kind.name());
                            eprintln!("bench: throughput: {msg}");
                            failed
                                .entry(format!("{}:{test}", server.kind.name()))
                                .or_insert(msg);
                        }
                    }
                }
                let last = got.iter().filter(|((i, _), _)| *i == ti);
                for ((_, name), [c, r]) in last {
                    if c.len() == round + 1 && r.len() == round + 1 {
                        eprintln!(
                            "bench: throughput -P {pipeline} round {} {name}: cairn {:.0} redis {:.0}",
                            round + 1,
                            c[round],
                            r[round]
                        );
                    }
                }
            }
        }
        let mut table = Table::new(
            format!(
                "Throughput, redis-benchmark -c 50 -n {}{} (ops/s, median of {} alternating rounds)",
                requests(plan, "set", pipeline),
                if pipeline > 1 {
                    format!(
                        " -P {pipeline} (LRANGE: -n {})",
                        requests(plan, "lrange", pipeline)
                    )
                } else {
                    String::new()
                },
                plan.bench_rounds
            ),
            &["command", "cairn ops/s", "redis ops/s", "cairn/redis"],
        );
        let label = |kind: &str, ti: usize| match failed.get(&format!("{kind}:{}", TESTS[ti])) {
            Some(msg) if msg.contains("unknown command") => "missing".to_owned(),
            Some(_) => "ERROR".to_owned(),
            None => "—".to_owned(),
        };
        for ((ti, name), [c, r]) in &got {
            let (c, r) = (median(c), median(r));
            table.row(vec![
                name.clone(),
                c.map_or_else(|| label("cairn", *ti), |v| format!("{v:.0}")),
                r.map_or_else(|| label("redis", *ti), |v| format!("{v:.0}")),
                match (c, r) {
                    (Some(c), Some(r)) => fmt_ratio(c / r),
                    _ => "—".into(),
                },
            ]);
        }
        for (ti, test) in TESTS.iter().enumerate() {
            if !got.keys().any(|(i, _)| *i == ti) {
                table.row(vec![
                    test.to_uppercase(),
                    label("cairn", ti),
                    label("redis", ti),
                    "—".into(),
                ]);
            }
        }
        for msg in failed.values() {
            table.note(msg.clone());
            out.failures.push(format!("throughput: {msg}"));
        }
        tables.push(table);
    }
    let geo = |t: &Table| {
        let ratios: Vec<f64> = t
            .rows
            .iter()
            .filter_map(|r| r.get(3)?.trim_end_matches('x').parse().ok())
            .collect();
        (!ratios.is_empty())
            .then(|| (ratios.iter().map(|r: &f64| r.ln()).sum::<f64>() / ratios.len() as f64).exp())
    };
    for (t, pipeline) in tables.iter_mut().zip(["unpipelined", "with -P 16"]) {
        if let Some(g) = geo(t) {
            t.note(format!(
                "geometric mean of cairn/redis over the commands: {}",
                fmt_ratio(g)
            ));
            out.summary.push(format!(
                "Throughput {pipeline}: cairn/redis geometric mean {} over {} redis-benchmark rows.",
                fmt_ratio(g),
                t.rows.len()
            ));
        }
    }
    out.tables = tables;
    cairn.stop()?;
    redis.stop()?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_redis_benchmark_csv() {
        let out = "\"test\",\"rps\",\"avg_latency_ms\"\n\
                   \"LPUSH (needed to benchmark LRANGE)\",\"100000.00\",\"0.2\"\n\
                   \"LRANGE_100 (first 100 elements)\",\"64516.13\",\"0.4\"\n\
                   \"MSET (10 keys)\",\"117647.05\",\"0.3\"\n";
        assert_eq!(
            parse_csv(out),
            [
                ("LRANGE_100".to_owned(), 64516.13),
                ("MSET (10 keys)".to_owned(), 117647.05)
            ]
        );
        assert!(parse_csv("Error from server: ERR unknown command").is_empty());
    }
}
