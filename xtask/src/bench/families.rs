//! Suite `families`: the command families on strings, cairn beside Redis.
//!
//! - BITCOUNT and BITOP (AND, OR, XOR, NOT) over a 64 MiB string (16 MiB
//!   with `--quick`): the time of one call, as GB/s of input scanned, the
//!   median of alternating rounds; both servers must give the same answer.
//! - SETBIT and GETBIT at random offsets, pipelined on one connection (5N
//!   each); PFADD, PFCOUNT (one key: the cached count after each PFADD
//!   invalidated it; two keys: the union computed every time) through
//!   `redis-benchmark` with random elements.
//! - Geo and SORT through `redis-benchmark`, unpipelined and with `-P 16`:
//!   GEOADD (random members), GEOSEARCH BYRADIUS 20 km among 10^5 points
//!   (about 130 in range), GEODIST, SORT of a 1,000-element list
//!   (numeric and ALPHA); every reply is checked equal on both servers
//!   first.

use std::io::Write as _;
use std::time::Instant;

use anyhow::{Result, bail};
use rand::{Rng, SeedableRng};

use super::resp::{Reply, encode, read_reply};
use super::servers::{Kind, Server, Spec};
use super::throughput::{Run, redis_benchmark};
use super::{Outcome, Plan, Table, fmt_ratio, median};

/// One timed command over the big strings.
struct Op {
    name: &'static str,
    args: &'static [&'static str],
}

const OPS: [Op; 5] = [
    Op {
        name: "BITCOUNT",
        args: &["BITCOUNT", "big1"],
    },
    Op {
        name: "BITOP AND",
        args: &["BITOP", "AND", "dest", "big1", "big2"],
    },
    Op {
        name: "BITOP OR",
        args: &["BITOP", "OR", "dest", "big1", "big2"],
    },
    Op {
        name: "BITOP XOR",
        args: &["BITOP", "XOR", "dest", "big1", "big2"],
    },
    Op {
        name: "BITOP NOT",
        args: &["BITOP", "NOT", "dest", "big1"],
    },
];

/// redis-benchmark commands (after `-r`): (row, range, command).
/// (SETBIT and GETBIT are driven by [`bit_rate`]: redis-benchmark pads
/// `__rand_int__` with zeros, which is not an offset.)
const RATES: [(&str, u64, &[&str]); 3] = [
    ("PFADD", 1_000_000_000, &["PFADD", "hll", "e:__rand_int__"]),
    ("PFCOUNT one key", 1, &["PFCOUNT", "hll"]),
    ("PFCOUNT two keys", 1, &["PFCOUNT", "hll", "hll2"]),
];

/// Geo and SORT rates: (row, range for `-r`, fraction of `-n`, command).
const GEO_SORT: [(&str, u64, u64, &[&str]); 5] = [
    (
        "GEOADD",
        1_000_000_000,
        1,
        &[
            "GEOADD",
            "geoadd",
            "13.361389",
            "38.115556",
            "m:__rand_int__",
        ],
    ),
    (
        "GEOSEARCH BYRADIUS 20 km (10^5 points)",
        1,
        10,
        &[
            "GEOSEARCH",
            "geo",
            "FROMLONLAT",
            "15",
            "40",
            "BYRADIUS",
            "20",
            "km",
            "ASC",
        ],
    ),
    ("GEODIST", 1, 1, &["GEODIST", "geo", "p1", "p2", "km"]),
    ("SORT 1,000 numbers", 1, 20, &["SORT", "sortn"]),
    ("SORT 1,000 words ALPHA", 1, 20, &["SORT", "sorta", "ALPHA"]),
];

/// Points in the GEOSEARCH set.
const GEO_POINTS: usize = 100_000;

/// Loads the same geo set and lists on a server; checks the replies of
/// the benchmarked read commands on both servers agree.
fn load_geo_sort(c: &mut super::resp::Conn, seed: u64) -> Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut i = 0;
    while i < GEO_POINTS {
        let mut args: Vec<String> = vec!["GEOADD".into(), "geo".into()];
        for _ in 0..1000 {
            args.push(format!("{:.6}", rng.random_range(10.0..20.0)));
            args.push(format!("{:.6}", rng.random_range(35.0..45.0)));
            args.push(format!("p{i}"));
            i += 1;
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        c.ok(&refs)?;
    }
    let mut nums: Vec<String> = vec!["RPUSH".into(), "sortn".into()];
    let mut words: Vec<String> = vec!["RPUSH".into(), "sorta".into()];
    for _ in 0..1000 {
        nums.push(format!("{:.3}", rng.random_range(-1e6..1e6)));
        let len = rng.random_range(4..12);
        words.push(
            (0..len)
                .map(|_| char::from(rng.random_range(b'a'..=b'z')))
                .collect(),
        );
    }
    for args in [nums, words] {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        c.ok(&refs)?;
    }
    Ok(())
}

/// Offsets of the SETBIT/GETBIT rates: below 10^8 bits (a 12.5 MB string).
const BIT_RANGE: u64 = 100_000_000;

/// SETBIT (`set`) or GETBIT at `n` random offsets on one connection, in
/// pipelined batches of 1000: operations per second.
fn bit_rate(s: &Server, set: bool, n: u64, seed: u64) -> Result<f64> {
    let (mut reader, mut writer) = s.conn()?.split();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut left = n;
    while left > 0 {
        let batch = left.min(1000);
        let mut out = Vec::new();
        for _ in 0..batch {
            let off = rng.random_range(0..BIT_RANGE).to_string();
            if set {
                encode(&mut out, &[b"SETBIT", b"bits", off.as_bytes(), b"1"]);
            } else {
                encode(&mut out, &[b"GETBIT", b"bits", off.as_bytes()]);
            }
        }
        writer.write_all(&out)?;
        for _ in 0..batch {
            if let Reply::Error(e) = read_reply(&mut reader)? {
                bail!(
                    "{} {}: -{e}",
                    s.kind.name(),
                    if set { "SETBIT" } else { "GETBIT" }
                );
            }
        }
        left -= batch;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

fn start(plan: &Plan, kind: Kind, dir: &std::path::Path) -> Result<Server> {
    Server::start(
        &plan.cairn_bin,
        &Spec {
            kind,
            dir: dir.join(kind.name()),
            persistence: false,
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
    let size: usize = if plan.quick { 16 << 20 } else { 64 << 20 };
    let rounds = if plan.quick { 3 } else { 7 };

    // The same pseudo-random strings on both servers.
    let mut rng = rand::rngs::StdRng::seed_from_u64(plan.seed);
    let mut big1 = vec![0u8; size];
    let mut big2 = vec![0u8; size];
    rng.fill(&mut big1[..]);
    rng.fill(&mut big2[..]);
    for s in &servers {
        let mut c = s.conn()?;
        c.cmd_bytes(&[b"SET", b"big1", &big1])?;
        c.cmd_bytes(&[b"SET", b"big2", &big2])?;
    }
    drop((big1, big2));

    let mut table = Table::new(
        format!(
            "Bit operations on {} MiB strings (one call, median of {rounds} alternating rounds)",
            size >> 20
        ),
        &[
            "command",
            "cairn",
            "redis",
            "cairn GB/s",
            "redis GB/s",
            "cairn/redis speed",
        ],
    );
    let mut speed_ratios = Vec::new();
    let mut conns = [servers[0].conn()?, servers[1].conn()?];
    for op in &OPS {
        let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let mut replies: [Option<Reply>; 2] = [None, None];
        for _ in 0..rounds {
            for (i, c) in conns.iter_mut().enumerate() {
                let t = Instant::now();
                let r = c.cmd(op.args)?;
                times[i].push(t.elapsed().as_secs_f64());
                if let Reply::Error(e) = &r {
                    bail!("{} {}: -{e}", servers[i].kind.name(), op.name);
                }
                replies[i] = Some(r);
            }
        }
        if replies[0] != replies[1] {
            out.failures.push(format!(
                "{}: cairn answered {:?}, redis {:?}",
                op.name, replies[0], replies[1]
            ));
        }
        // BITOP also writes its result: check it is the same string.
        if op.name.starts_with("BITOP") {
            let digest = |c: &mut super::resp::Conn| -> Result<Option<u64>> {
                Ok(match c.cmd(&["BITCOUNT", "dest"])? {
                    Reply::Int(n) => Some(n as u64),
                    _ => None,
                })
            };
            let (a, b) = (digest(&mut conns[0])?, digest(&mut conns[1])?);
            if a != b {
                out.failures.push(format!(
                    "{}: results differ (BITCOUNT {a:?} vs {b:?})",
                    op.name
                ));
            }
        }
        let inputs = if op.name == "BITCOUNT" || op.name == "BITOP NOT" {
            1.0
        } else {
            2.0
        };
        let (c, r) = (median(&times[0]), median(&times[1]));
        let gbs = |t: Option<f64>| t.map(|t| inputs * size as f64 / t / 1e9);
        let ratio = match (c, r) {
            (Some(c), Some(r)) if c > 0.0 => Some(r / c),
            _ => None,
        };
        if let Some(x) = ratio {
            speed_ratios.push(x);
        }
        let ms = |t: Option<f64>| t.map_or("—".into(), |t| format!("{:.1} ms", t * 1000.0));
        let g = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.2}"));
        table.row(vec![
            op.name.into(),
            ms(c),
            ms(r),
            g(gbs(c)),
            g(gbs(r)),
            ratio.map_or("—".into(), fmt_ratio),
        ]);
    }
    table.note(
        "GB/s counts the input bytes read (two strings for AND/OR/XOR); each call includes one \
         round trip on the loopback, negligible at these sizes."
            .into(),
    );
    for c in &mut conns {
        c.ok(&["DEL", "big1", "big2", "dest"])?;
    }
    out.tables.push(table);

    let n = plan.bench_requests;
    let mut rates = Table::new(
        format!(
            "Bitmap and HyperLogLog rates (ops/s, median of {} alternating rounds): SETBIT/GETBIT {} each, pipelined by 1000 on one connection; PFADD/PFCOUNT redis-benchmark -c 50 -n {n}",
            plan.bench_rounds,
            n * 5
        ),
        &["command", "cairn ops/s", "redis ops/s", "cairn/redis"],
    );
    let mut rate_ratios = Vec::new();
    for (row, set) in [("SETBIT (pipelined)", true), ("GETBIT (pipelined)", false)] {
        let mut got: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        for round in 0..plan.bench_rounds {
            for (i, s) in servers.iter().enumerate() {
                let seed = plan.seed ^ (round as u64) << 1 ^ u64::from(set);
                got[i].push(bit_rate(s, set, n * 5, seed)?);
            }
        }
        let (c, r) = (median(&got[0]), median(&got[1]));
        let ratio = match (c, r) {
            (Some(c), Some(r)) if r > 0.0 => Some(c / r),
            _ => None,
        };
        if let Some(x) = ratio {
            rate_ratios.push(x);
        }
        rates.row(vec![
            row.into(),
            c.map_or("—".into(), |v| format!("{v:.0}")),
            r.map_or("—".into(), |v| format!("{v:.0}")),
            ratio.map_or("—".into(), fmt_ratio),
        ]);
    }
    for (row, range, cmd) in RATES {
        let mut got: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..plan.bench_rounds {
            for (i, s) in servers.iter().enumerate() {
                if row == "PFCOUNT two keys" {
                    s.conn()?.ok(&["PFMERGE", "hll2", "hll"])?;
                }
                let mut args: Vec<String> = vec!["-n".into(), n.to_string()];
                if range > 1 {
                    args.extend(["-r".into(), range.to_string()]);
                }
                args.extend(cmd.iter().map(|a| (*a).to_owned()));
                match redis_benchmark(s.addr.port(), &args)? {
                    Run::Rows(rows) => got[i].extend(rows.into_iter().map(|(_, r)| r)),
                    Run::Failed(msg) => {
                        out.failures.push(format!("{} {row}: {msg}", s.kind.name()));
                    }
                }
            }
        }
        let (c, r) = (median(&got[0]), median(&got[1]));
        let ratio = match (c, r) {
            (Some(c), Some(r)) if r > 0.0 => Some(c / r),
            _ => None,
        };
        if let Some(x) = ratio {
            rate_ratios.push(x);
        }
        rates.row(vec![
            row.into(),
            c.map_or("—".into(), |v| format!("{v:.0}")),
            r.map_or("—".into(), |v| format!("{v:.0}")),
            ratio.map_or("—".into(), fmt_ratio),
        ]);
    }
    out.tables.push(rates);

    let mut geo_table = Table::new(
        format!(
            "Geo and SORT rates (ops/s, median of {} alternating rounds, redis-benchmark -c 50; -n {n}, GEOSEARCH n/10, SORT n/20)",
            plan.bench_rounds
        ),
        &[
            "command",
            "cairn ops/s",
            "redis ops/s",
            "cairn/redis",
            "cairn -P 16",
            "redis -P 16",
            "cairn/redis -P 16",
        ],
    );
    let mut geo_ratios = Vec::new();
    let mut loaded = Vec::new();
    for s in &servers {
        let mut c = s.conn()?;
        load_geo_sort(&mut c, plan.seed)?;
        let mut replies = Vec::new();
        for (_, _, _, cmd) in GEO_SORT.iter().skip(1) {
            replies.push(c.cmd(cmd)?);
        }
        loaded.push(replies);
    }
    if loaded.first() != loaded.get(1) {
        out.failures
            .push("geo/SORT: cairn and redis answer the benchmarked reads differently".into());
    }
    for (row, range, div, cmd) in GEO_SORT {
        let mut cells = vec![row.to_owned()];
        for pipeline in [1u32, 16] {
            let mut got: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
            for _ in 0..plan.bench_rounds {
                for (i, s) in servers.iter().enumerate() {
                    let mut args: Vec<String> = vec![
                        "-n".into(),
                        (n / div).max(1000).to_string(),
                        "-P".into(),
                        pipeline.to_string(),
                    ];
                    if range > 1 {
                        args.extend(["-r".into(), range.to_string()]);
                    }
                    args.extend(cmd.iter().map(|a| (*a).to_owned()));
                    match redis_benchmark(s.addr.port(), &args)? {
                        Run::Rows(rows) => got[i].extend(rows.into_iter().map(|(_, r)| r)),
                        Run::Failed(msg) => {
                            out.failures.push(format!("{} {row}: {msg}", s.kind.name()));
                        }
                    }
                }
            }
            let (c, r) = (median(&got[0]), median(&got[1]));
            let ratio = match (c, r) {
                (Some(c), Some(r)) if r > 0.0 => Some(c / r),
                _ => None,
            };
            if let Some(x) = ratio {
                geo_ratios.push(x);
            }
            cells.extend([
                c.map_or("—".into(), |v| format!("{v:.0}")),
                r.map_or("—".into(), |v| format!("{v:.0}")),
                ratio.map_or("—".into(), fmt_ratio),
            ]);
        }
        geo_table.row(cells);
    }
    out.tables.push(geo_table);
    let geo = |v: &[f64]| {
        (!v.is_empty()).then(|| (v.iter().map(|r| r.ln()).sum::<f64>() / v.len() as f64).exp())
    };
    if let Some(g) = geo(&speed_ratios) {
        out.summary.push(format!(
            "Bit operations on {} MiB: cairn/redis speed geometric mean {}.",
            size >> 20,
            fmt_ratio(g)
        ));
    }
    if let Some(g) = geo(&rate_ratios) {
        out.summary.push(format!(
            "SETBIT/GETBIT/PFADD/PFCOUNT rates: cairn/redis geometric mean {}.",
            fmt_ratio(g)
        ));
    }
    if let Some(g) = geo(&geo_ratios) {
        out.summary.push(format!(
            "Geo and SORT rates: cairn/redis geometric mean {}.",
            fmt_ratio(g)
        ));
    }
    let [cairn, redis] = servers;
    cairn.stop()?;
    redis.stop()?;
    Ok(out)
}
