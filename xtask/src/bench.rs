//! `cargo xtask bench [--quick] [--seed N] [--rounds N] [suite...]`:
//! cairn against real Redis on this machine, side by side in the same run.
//!
//! Suites: `throughput` (redis-benchmark), `families` (bitmaps on a 64 MiB
//! string, SETBIT/GETBIT/PFADD/PFCOUNT rates), `memory` (RSS per key for
//! every type and size, copy-on-write during BGSAVE), `snapshot` (SAVE, bytes on
//! disk, restart), `latency` (latency and memory during a background
//! snapshot), `saturated` (a background snapshot's time and memory with
//! the CPU saturated), `view-pause` (the keyspace's in-process view bench). Every
//! figure is a ratio against Redis 7.0 measured in the same run, never a
//! timed assertion. Prints a table per suite and writes
//! `target/bench-report.md`; a full run (all suites, not `--quick`) also
//! copies it to `docs/benchmarks.md`.
//!
//! Exits non-zero when a suite failed: a server answered an error, lost
//! data across a restart, or could not be driven. Targets that are missed
//! are reported as such, not as failures: they are measurements.

mod data;
mod families;
mod latency;
mod memory;
mod resp;
mod saturated;
mod scripting;
mod servers;
mod snapshot;
mod streams;
mod throughput;
mod viewpause;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::util;

const SUITES: [&str; 9] = [
    "throughput",
    "families",
    "memory",
    "snapshot",
    "latency",
    "saturated",
    "view-pause",
    "scripting",
    "streams",
];

const USAGE: &str = "usage: cargo xtask bench [--quick] [--seed N] [--rounds N] [throughput|families|memory|snapshot|latency|saturated|view-pause|scripting|streams]...";

/// What a run does, from the arguments.
pub struct Plan {
    quick: bool,
    seed: u64,
    suites: Vec<&'static str>,
    cairn_bin: PathBuf,
    /// Keys loaded for the snapshot and latency suites.
    keys: u64,
    /// Snapshot repetitions.
    snapshot_reps: usize,
    /// `redis-benchmark -n`.
    bench_requests: u64,
    /// Alternating redis-benchmark rounds per test.
    bench_rounds: usize,
    /// Latency suite: baseline + BGSAVE rounds per server.
    latency_rounds: usize,
    /// Latency suite: the shortest baseline window before a BGSAVE (later
    /// rounds stretch it to the server's previous snapshot window).
    latency_base: Duration,
}

/// What a suite produced.
#[derive(Default)]
pub struct Outcome {
    tables: Vec<Table>,
    /// Reasons the suite failed (error replies, ...).
    failures: Vec<String>,
    /// The suite's headline figures, for the summary at the top.
    summary: Vec<String>,
}

/// A result table, printed aligned and written as markdown.
pub struct Table {
    title: String,
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
}

impl Table {
    fn new(title: String, headers: &[&str]) -> Table {
        Table {
            title,
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn row(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    fn print(&self) {
        let cols = self.headers.len();
        let mut width: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(cols) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        println!("\n== {}", self.title);
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, w) in width.iter().enumerate() {
                let c = cells.get(i).map_or("", String::as_str);
                let pad = w.saturating_sub(c.chars().count());
                if i == 0 {
                    let _ = write!(s, "{c}{} ", " ".repeat(pad));
                } else {
                    let _ = write!(s, " {}{c} ", " ".repeat(pad));
                }
            }
            println!("{}", s.trim_end());
        };
        line(&self.headers);
        println!(
            "{}",
            width.iter().map(|w| "-".repeat(*w + 2)).collect::<String>()
        );
        for r in &self.rows {
            line(r);
        }
        for n in &self.notes {
            println!("  * {n}");
        }
    }

    fn markdown(&self) -> String {
        let mut s = format!("### {}\n\n", self.title);
        let cell = |c: &str| c.replace('|', "\\|");
        let _ = writeln!(
            s,
            "| {} |",
            self.headers
                .iter()
                .map(|h| cell(h))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(
            s,
            "|{}",
            (0..self.headers.len())
                .map(|i| if i == 0 { "---|" } else { "---:|" })
                .collect::<String>()
        );
        for r in &self.rows {
            let _ = writeln!(
                s,
                "| {} |",
                r.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
            );
        }
        if !self.notes.is_empty() {
            s.push('\n');
            for n in &self.notes {
                let _ = writeln!(s, "- {n}");
            }
        }
        s.push('\n');
        s
    }
}

/// The median of `v` (the mean of the middle two for an even count).
fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

fn fmt_ratio(r: f64) -> String {
    format!("{r:.2}x")
}

fn fmt_secs(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0} ms", s * 1000.0)
    } else {
        format!("{s:.2} s")
    }
}

fn fmt_bytes(b: f64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if b >= MIB {
        format!("{:.1} MiB", b / MIB)
    } else {
        format!("{:.1} KiB", b / 1024.0)
    }
}

/// "met"/"MISSED" against an upper bound on a ratio.
fn target(ratio: Option<f64>, at_most: f64) -> String {
    match ratio {
        Some(r) if r <= at_most => format!("≤ {at_most}x: met"),
        Some(_) => format!("≤ {at_most}x: MISSED"),
        None => format!("≤ {at_most}x: —"),
    }
}

/// The parsed command line.
struct Args {
    quick: bool,
    seed: Option<u64>,
    rounds: Option<usize>,
    suites: Vec<&'static str>,
}

fn parse(args: &[String]) -> Result<Args> {
    let mut quick = false;
    let mut seed = None;
    let mut rounds = None;
    let mut suites = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--seed" => {
                seed = Some(
                    it.next()
                        .context(USAGE)?
                        .parse()
                        .context("--seed needs a number")?,
                )
            }
            "--rounds" => {
                let n: usize = it
                    .next()
                    .context(USAGE)?
                    .parse()
                    .context("--rounds needs a number")?;
                if n == 0 {
                    bail!("--rounds must be at least 1");
                }
                rounds = Some(n);
            }
            s => match SUITES.iter().find(|name| **name == s) {
                Some(name) => suites.push(*name),
                None => bail!("unknown argument {s:?}\n{USAGE}"),
            },
        }
    }
    Ok(Args {
        quick,
        seed,
        rounds,
        suites,
    })
}

/// One line from a command, or a placeholder.
fn sh(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_owned()
        })
        .unwrap_or_else(|| "unknown".into())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn machine() -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")?
                    .split_whitespace()
                    .next()?
                    .parse::<f64>()
                    .ok()
            })
        })
        .map_or("unknown".into(), |kb| {
            format!("{:.1} GiB", kb / 1024.0 / 1024.0)
        });
    let commit = sh(
        "git",
        &[
            "-C",
            &util::root().to_string_lossy(),
            "rev-parse",
            "--short",
            "HEAD",
        ],
    );
    let dirty = Command::new("git")
        .args([
            "-C",
            &util::root().to_string_lossy(),
            "status",
            "--porcelain",
            "--untracked-files=no",
        ])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    vec![
        ("CPUs (nproc)".into(), sh("nproc", &[])),
        ("CPU model".into(), model),
        ("memory".into(), mem),
        ("kernel".into(), sh("uname", &["-sr"])),
        ("Redis".into(), sh("redis-server", &["--version"])),
        (
            "cairn commit".into(),
            format!(
                "{commit}{}",
                if dirty {
                    " (with uncommitted changes)"
                } else {
                    ""
                }
            ),
        ),
    ]
}

/// Runs the benchmarks.
///
/// # Errors
/// Bad arguments, Redis missing, or a suite failed.
pub fn run(args: &[String]) -> Result<()> {
    // `cargo xtask` builds in debug, where the loader and the latency
    // clients would be slower than the servers they measure: run this task
    // from an optimised build of xtask instead.
    if cfg!(debug_assertions) {
        let mut cmd =
            util::cargo_command(&["run", "--release", "-q", "-p", "xtask", "--", "bench"]);
        cmd.args(args);
        return util::run(&mut cmd);
    }
    let Args {
        quick,
        seed,
        rounds,
        mut suites,
    } = parse(args)?;
    let all = suites.is_empty() || SUITES.iter().all(|s| suites.contains(s));
    if suites.is_empty() {
        suites = SUITES.to_vec();
    }
    if !crate::deps::ensure_redis()? {
        bail!(
            "the benchmarks compare with Redis: install redis-server and redis-tools (cargo xtask deps)"
        );
    }
    let seed = seed.unwrap_or_else(rand::random);
    let started = Instant::now();
    let load_start = loadavg();
    // Read before building and running: the tree under test is the one at the start.
    let mut facts = machine();
    facts.push(("started".into(), sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"])));
    facts.push((
        "load average (1/5/15 min) at start".into(),
        load_start.clone(),
    ));
    eprintln!("bench: seed {seed} (replay with --seed {seed}); load average at start {load_start}");
    let cairn_bin = if suites.iter().any(|s| *s != "view-pause") {
        servers::build_cairn()?
    } else {
        PathBuf::new()
    };
    let plan = Plan {
        quick,
        seed,
        suites,
        cairn_bin,
        keys: if quick { 200_000 } else { 1_000_000 },
        snapshot_reps: if quick { 1 } else { 3 },
        bench_requests: if quick { 20_000 } else { 100_000 },
        bench_rounds: rounds.unwrap_or(if quick { 1 } else { 3 }),
        latency_rounds: rounds.unwrap_or(if quick { 1 } else { 3 }),
        latency_base: Duration::from_secs(3),
    };
    let mut sections = Vec::new();
    let mut failures = Vec::new();
    for suite in &plan.suites {
        let t = Instant::now();
        eprintln!("bench: suite {suite}");
        let result = match *suite {
            "throughput" => throughput::run(&plan),
            "families" => families::run(&plan),
            "memory" => memory::run(&plan),
            "snapshot" => snapshot::run(&plan),
            "latency" => latency::run(&plan),
            "saturated" => saturated::run(&plan),
            "view-pause" => viewpause::run(&plan),
            "scripting" => scripting::run(&plan),
            "streams" => streams::run(&plan),
            other => bail!("unknown suite {other}"),
        };
        match result {
            Ok(outcome) => {
                for table in &outcome.tables {
                    table.print();
                }
                for h in &outcome.summary {
                    println!("  => {h}");
                }
                failures.extend(outcome.failures.iter().map(|f| format!("{suite}: {f}")));
                sections.push((*suite, outcome, t.elapsed()));
            }
            Err(e) => {
                eprintln!("bench: suite {suite} FAILED: {e:#}");
                failures.push(format!("{suite}: {e:#}"));
                sections.push((*suite, Outcome::default(), t.elapsed()));
            }
        }
    }
    let load_end = loadavg();
    let report = render(
        &plan,
        &sections,
        &failures,
        &facts,
        &load_end,
        started.elapsed(),
    );
    let target_dir = util::root().join("target");
    std::fs::create_dir_all(&target_dir)?;
    let path = target_dir.join("bench-report.md");
    std::fs::write(&path, &report)?;
    eprintln!("bench: wrote {}", path.display());
    if all && !quick {
        let docs = util::root().join("docs").join("benchmarks.md");
        std::fs::write(&docs, &report)?;
        eprintln!("bench: copied to {}", docs.display());
    } else {
        eprintln!("bench: a partial or --quick run does not replace docs/benchmarks.md");
    }
    eprintln!(
        "bench: done in {:.0?}; load average at end {load_end}",
        started.elapsed()
    );
    if !failures.is_empty() {
        bail!(
            "{} benchmark failure(s):\n  {}",
            failures.len(),
            failures.join("\n  ")
        );
    }
    Ok(())
}

fn render(
    plan: &Plan,
    sections: &[(&str, Outcome, Duration)],
    failures: &[String],
    facts: &[(String, String)],
    load_end: &str,
    took: Duration,
) -> String {
    let mut s = String::from("# Benchmarks: cairn against Redis 7.0\n\n");
    s.push_str(
        "Generated by `cargo xtask bench` (xtask/src/bench.rs). Every figure below was measured in one run on \
         the machine described here, cairn (release build) and the installed Redis side by side, so the \
         ratios are what to read: absolute numbers depend on the machine and on what else ran on it. \
         Rerun to reproduce; `--seed` replays the same data and key choices.\n\n\
         Run: `cargo xtask bench` (all suites, about 10 minutes; rewrites this file), \
         `cargo xtask bench --quick` (smaller sizes, a couple of minutes), or name suites: \
         `cargo xtask bench throughput families snapshot latency view-pause`, with `--rounds N` for the \
         throughput and latency rounds. Partial and quick runs write only `target/bench-report.md`. Redis 7.0 \
         (`redis-server`, `redis-benchmark`) must be installed: `cargo xtask deps`.\n\n",
    );
    s.push_str("## Machine and run\n\n| | |\n|---|---|\n");
    for (k, v) in facts {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    let _ = writeln!(s, "| load average at end | {load_end} |");
    let _ = writeln!(
        s,
        "| run | `cargo xtask bench{}{}`, seed {}, {:.0} s |",
        if plan.quick { " --quick" } else { "" },
        if plan.suites.len() == SUITES.len() {
            String::new()
        } else {
            format!(" {}", plan.suites.join(" "))
        },
        plan.seed,
        took.as_secs_f64()
    );
    s.push_str(
        "\nServers: `cairn-server --port 0 --snapshot-interval 24h --snapshot-on-shutdown false` (with \
         `--persistence false` for the throughput suite) and `redis-server --save '' --appendonly no`, \
         each in its own temporary directory, both on 127.0.0.1. The load generators run on the same \
         machine and share its cores with the server under test.\n\n",
    );
    if failures.is_empty() {
        s.push_str("**Status: every suite ran without errors.**\n\n");
    } else {
        s.push_str("**Status: FAILURES**\n\n");
        for f in failures {
            let _ = writeln!(s, "- {}", f.replace('\n', " "));
        }
        s.push('\n');
    }
    let headlines: Vec<&String> = sections.iter().flat_map(|(_, o, _)| &o.summary).collect();
    if !headlines.is_empty() {
        s.push_str("## Summary\n\n");
        for h in headlines {
            let _ = writeln!(s, "- {h}");
        }
        s.push('\n');
    }
    for (suite, outcome, took) in sections {
        let _ = writeln!(
            s,
            "## {} ({:.0} s)\n",
            suite_title(suite),
            took.as_secs_f64()
        );
        let _ = writeln!(s, "{}\n", suite_method(suite));
        if outcome.tables.is_empty() {
            s.push_str("_No results: the suite failed (see Status)._\n\n");
        }
        for t in &outcome.tables {
            s.push_str(&t.markdown());
        }
    }
    s
}

fn suite_title(suite: &str) -> &'static str {
    match suite {
        "throughput" => "Throughput",
        "families" => "Bitmaps, HyperLogLog, geo and SORT",
        "memory" => "Memory per key",
        "snapshot" => "Snapshot: SAVE, size on disk, restart",
        "latency" => "Latency and memory during a background snapshot",
        "saturated" => "A background snapshot with the CPU saturated",
        "scripting" => "Scripting: EVALSHA and FCALL",
        "streams" => "Streams: XADD, XREADGROUP + XACK, memory per entry, SAVE and restart",
        _ => "View pause",
    }
}

fn suite_method(suite: &str) -> &'static str {
    match suite {
        "families" => {
            "Both servers get the same two pseudo-random strings of 64 MiB (16 MiB with `--quick`, one \
             seeded generator). BITCOUNT and BITOP AND/OR/XOR/NOT over them are timed one call at a time, \
             alternating cairn and Redis, and the median call is reported with the input bytes it read per \
             second; both servers must answer the same count and produce the same result (a failure \
             otherwise). Then SETBIT and GETBIT at 5N random offsets below 10^8 are sent on one connection in \
             pipelined batches of 1000 (redis-benchmark's `__rand_int__` is zero-padded, not an offset), \
             and `redis-benchmark -c 50 -n N -r R` runs PFADD of random elements, PFCOUNT of that key (cached after the first count that \
             follows a PFADD) and PFCOUNT of two keys (a union, computed every call), alternating the \
             servers per round, the median reported. Geo and SORT: both servers get the same 10^5 \
             random points (longitude 10..20, latitude 35..45) and two 1,000-element lists (numbers, \
             words); the replies of GEOSEARCH, GEODIST and both SORTs must agree; then \
             `redis-benchmark -c 50` runs GEOADD of random members, GEOSEARCH BYRADIUS 20 km ASC \
             (about 130 points in range), GEODIST and SORT (numeric, ALPHA), unpipelined and with \
             `-P 16`, alternating the servers per round, the median reported."
        }
        "throughput" => {
            "`redis-benchmark -t TEST -n N -c 50 -q --csv` (and with `-P 16`, where N is 10 times larger \
             except for LRANGE, so a pipelined run lasts about a second rather than 0.1 s), one test per \
             invocation so an error in one does not hide the others; for each test the rounds alternate cairn, Redis, \
             cairn, Redis, ... with FLUSHALL before each run, and the median is reported. Redis' \
             redis-benchmark stops at the first error reply: any error is a failure of the suite."
        }
        "snapshot" => {
            "Both servers get the same keys `key:0000000000`… with 100-byte values from one seeded \
             generator, streamed with pipelined SETs. Then, per repetition and alternating who goes first: \
             `SAVE` is timed (it returns when the snapshot is committed: cairn's generation fsynced and \
             switched to, Redis' dump.rdb renamed), the bytes on disk are measured (`du -sb` of the newest \
             generation directory, or of dump.rdb), the server is stopped with SIGTERM and started again, \
             timed from spawn to its `Ready to accept connections` line and to the first PONG. Targets: \
             cairn SAVE ≤ 0.5x Redis, cairn restart ≤ 0.7x Redis."
        }
        "latency" => {
            "Both servers hold the same keys. The suite runs several rounds (`--rounds`, 3 by default, 1 \
             with `--quick`); each round visits cairn and Redis in turn, alternating which goes first \
             (cairn, Redis, Redis, cairn, ...) so slow drift of the shared machine hits both alike. In a \
             visit one client thread drives 50 connections, each sending one request at a time (SET or GET \
             with equal probability, random key of the loaded set, 100-byte values) and recording every \
             request's latency; the load runs through a 1 s warm-up, a baseline window (at least 3 s, and at \
             least as long as that server's previous snapshot window), a BGSAVE, and 1 s of settling after \
             INFO reports the save finished. Redis forks for it; cairn takes a point-in-time view and writes \
             it on another thread. One window is mostly noise on a small machine, so the percentiles pool \
             every baseline request and every request during a snapshot over all rounds, and the per-round \
             p99 ratios and their median show the spread. Targets for cairn: pooled p99 during the \
             snapshot ≤ 2x pooled p99 without; no request above 10 ms during a snapshot (the max without a \
             snapshot is shown beside it, to tell the snapshot's spikes from the machine's); RSS peak during \
             a snapshot ≤ 1.1x RSS just before it, worst round."
        }
        "saturated" => {
            "Both servers hold the same keys. A BGSAVE is timed from the command until INFO reports it \
             finished (polled every 10 ms), first on an otherwise idle machine, then while 16 connections \
             (one thread each) overwrite random existing keys as fast as the server answers, which keeps \
             both cores busy, then with that load plus one spinning thread per core. Resident memory is \
             sampled every 10 ms during each snapshot (Redis: parent plus fork child, by PSS). The factor \
             saturated/idle is the bound issue #13 asks for: a background snapshot must finish within a \
             bounded factor of its idle time, and the memory it adds must stay bounded."
        }
        "streams" => {
            "`redis-benchmark -c 50 -n N -r 1000000 [-P 16] XADD s * f __rand_int__` (10N requests with \
             -P 16), rounds alternating cairn and Redis, medians reported; then 8 client threads, each a \
             consumer of one group on a stream filled beforehand, send `XREADGROUP GROUP g cT COUNT 1 \
             STREAMS q >` and `XACK q g <the ID it got>`, one pair per round trip or 16 (redis-benchmark \
             cannot acknowledge the ID it was given); no entry may be left pending. Then 10^6 entries \
             (2*10^5 with `--quick`) of 3 small fields are added with pipelined XADD: RSS growth per entry; \
             SAVE is timed and the server restarted on that data (spawn to first PONG), XLEN checked. \
             Targets: rates cairn/redis >= 1.0, memory per entry <= 1.2x Redis."
        }
        "scripting" => {
            "`redis-benchmark -c 50 -r 10000 -n N [-P 16] EVALSHA <sha> 1 rl:__rand_int__ 60` of a rate \
             limiter (INCR, EXPIRE on the first hit) loaded with SCRIPT LOAD on both servers, and the same \
             limiter as a function (`FCALL hit 1 rl:__rand_int__ 60`); rounds alternate cairn and Redis, \
             medians reported; target cairn/redis >= 1.0. Then one client sends PING back to back for 1.5 s \
             while another runs a script that spins for 1 s (busy-reply-threshold 100 ms, then 5000 ms)."
        }
        _ => {
            "`cargo bench -p cairn-keyspace --bench view -- take_view_pause`: how long writers are paused \
             while a point-in-time view of 1,000,000 keys is taken, in process (no network)."
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn arguments() {
        let a = |v: &[&str]| parse(&v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
        let Args {
            quick,
            seed,
            rounds,
            suites,
        } = a(&["--quick", "--seed", "7", "latency", "snapshot"]).unwrap();
        assert!(quick);
        assert_eq!(seed, Some(7));
        assert_eq!(rounds, None);
        assert_eq!(suites, ["latency", "snapshot"]);
        assert!(a(&["nonsense"]).is_err());
        assert!(a(&["--rounds", "0"]).is_err());
    }

    #[test]
    fn tables_render_as_markdown() {
        let mut t = Table::new("T".into(), &["a", "b"]);
        t.row(vec!["x|y".into(), "1".into()]);
        t.note("n".into());
        assert_eq!(
            t.markdown(),
            "### T\n\n| a | b |\n|---|---:|\n| x\\|y | 1 |\n\n- n\n\n"
        );
        assert_eq!(target(Some(0.4), 0.5), "≤ 0.5x: met");
        assert_eq!(target(Some(0.6), 0.5), "≤ 0.5x: MISSED");
    }
}
