//! `cargo xtask test-persistence [--quick] [--seed N]`: the persistence
//! suites, in-process and process-level, with one summary table.
//!
//! 1. The in-process suites (`tests/tests/persistence_*.rs`), each run as
//!    its own test binary with `CAIRN_TEST_SEED` (and `CAIRN_QUICK`).
//! 2. The process-level campaigns against the release `cairn-server`:
//!    graceful restarts, SIGKILL at seeded moments, BGSAVE's cut under
//!    churn with SIGKILL (`churn.rs`), seeded corruption (`corruption.rs`).
//!
//! Every seed comes from one master seed, printed first; `--seed` replays
//! a run. Exits non-zero when any case failed, or when a test skipped
//! (`skipped:` lines, counted in their own column) although
//! `CAIRN_REQUIRE_ROOT_TESTS` / `CAIRN_REQUIRE_REDIS` say it must run.

mod binary;
mod campaigns;
mod churn;
mod corruption;
pub mod soak;

use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::util;

/// The in-process suites, in the order they run.
const SUITES: [&str; 8] = [
    "persistence_cycle",
    "persistence_restarts",
    "persistence_shutdown",
    "persistence_startup",
    "persistence_corruption",
    "persistence_faults",
    "persistence_load",
    "persistence_large",
];

/// How much a run does.
struct Plan {
    quick: bool,
    seed: u64,
    require_root: bool,
    kill_points: usize,
    kill_base_keys: usize,
    corruption_cases: usize,
    restart_cycles: usize,
    only: Option<String>,
    /// Only the process-level campaigns (`cargo xtask ci` runs the
    /// in-process suites in its test and coverage steps).
    campaigns_only: bool,
}

/// One line of the summary table.
struct Row {
    scenario: String,
    cases: u64,
    passed: u64,
    failed: u64,
    /// Tests that printed `skipped:` (libtest counts them as passed; this
    /// table does not).
    skipped: u64,
    seconds: f64,
    note: String,
}

fn parse(args: &[String], require_root: bool) -> Result<Plan> {
    let mut quick = false;
    let mut seed = None;
    let mut only = None;
    let mut campaigns_only = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--seed" => {
                seed = Some(
                    it.next()
                        .context("--seed needs a number")?
                        .parse()
                        .context("--seed needs a number")?,
                )
            }
            "--only" => only = Some(it.next().context("--only needs a scenario name")?.clone()),
            "--campaigns" => campaigns_only = true,
            other => bail!(
                "unknown argument {other:?}; usage: cargo xtask test-persistence [--quick] [--seed N] [--only NAME] [--campaigns]"
            ),
        }
    }
    let seed = seed.unwrap_or_else(rand::random);
    Ok(Plan {
        quick,
        seed,
        // `cargo xtask ci` as root on Linux, or the caller's environment.
        require_root: require_root
            || std::env::var("CAIRN_REQUIRE_ROOT_TESTS").is_ok_and(|v| v == "1"),
        // At least 100 kill points and 500 corruption cases in every run.
        kill_points: if quick { 100 } else { 250 },
        kill_base_keys: if quick { 3_000 } else { 10_000 },
        corruption_cases: if quick { 500 } else { 1_000 },
        restart_cycles: if quick { 3 } else { 6 },
        only,
        campaigns_only,
    })
}

/// Entry point of `cargo xtask test-persistence`.
///
/// # Errors
/// A failed case, or a build that failed.
pub fn run(args: &[String]) -> Result<()> {
    run_with(args, false)
}

/// As [`run`]; `require_root` makes root-only suites fail instead of skip
/// (`cargo xtask ci` as root on Linux).
///
/// # Errors
/// A failed case, or a build that failed.
pub fn run_with(args: &[String], require_root: bool) -> Result<()> {
    let plan = parse(args, require_root)?;
    let started = Instant::now();
    println!(
        "test-persistence: seed {} ({}); replay with: cargo xtask test-persistence --seed {}{}",
        plan.seed,
        if plan.quick { "quick" } else { "full" },
        plan.seed,
        if plan.quick { " --quick" } else { "" }
    );
    let wanted = |name: &str| plan.only.as_deref().is_none_or(|o| name.contains(o));
    let mut rows = Vec::new();

    if plan.campaigns_only {
        println!(
            "test-persistence: in-process suites not run here (--campaigns): `cargo xtask ci` runs them in its test and coverage steps"
        );
    } else if SUITES.iter().any(|s| wanted(s)) {
        // Compile once, so each suite's time is its own.
        let mut build = in_process_command(&plan, &["test", "-p", "cairn-tests", "--no-run"]);
        for s in SUITES {
            build.args(["--test", s]);
        }
        util::run(&mut build)?;
        for suite in SUITES.iter().filter(|s| wanted(s)) {
            rows.push(in_process(&plan, suite)?);
        }
    }

    let campaigns = [
        "sigterm-restarts",
        "sigkill-campaign",
        "churn-campaign",
        "corruption-campaign",
    ];
    if campaigns.iter().any(|c| wanted(c)) {
        let bin = binary::Binary::build()?;
        if wanted("sigterm-restarts") {
            rows.push(campaign("sigterm-restarts", || {
                campaigns::graceful_restarts(&bin, plan.seed ^ 0x01, plan.restart_cycles)
            }));
        }
        if wanted("sigkill-campaign") {
            rows.push(campaign("sigkill-campaign", || {
                campaigns::kill_campaign(
                    &bin,
                    plan.seed ^ 0x02,
                    plan.kill_points,
                    plan.kill_base_keys,
                )
            }));
        }
        if wanted("churn-campaign") {
            let churn = if plan.quick {
                churn::ChurnPlan::quick()
            } else {
                churn::ChurnPlan::full()
            };
            rows.push(campaign("churn-campaign", || {
                churn::churn_campaign(&bin, plan.seed ^ 0x04, &churn)
            }));
        }
        if wanted("corruption-campaign") {
            rows.push(campaign("corruption-campaign", || {
                corruption::corruption_campaign(&bin, plan.seed ^ 0x03, plan.corruption_cases)
            }));
        }
    }

    print_table(&rows);
    let failed: u64 = rows.iter().map(|r| r.failed).sum();
    println!(
        "test-persistence: {} in {:.0?} (seed {})",
        if failed == 0 { "all green" } else { "FAILED" },
        started.elapsed(),
        plan.seed
    );
    if failed > 0 {
        bail!(
            "{failed} persistence case(s) failed; replay with --seed {}",
            plan.seed
        );
    }
    Ok(())
}

fn in_process_command(plan: &Plan, args: &[&str]) -> std::process::Command {
    let mut cmd = util::cargo_command(args);
    cmd.env("CAIRN_TEST_SEED", plan.seed.to_string());
    cmd.env("CAIRN_QUICK", if plan.quick { "1" } else { "0" });
    if plan.require_root {
        cmd.env("CAIRN_REQUIRE_ROOT_TESTS", "1");
    }
    cmd
}

/// Runs one suite binary, keeps its whole output in
/// `target/test-persistence/<suite>.log`, and counts its tests.
fn in_process(plan: &Plan, suite: &str) -> Result<Row> {
    let started = Instant::now();
    println!("test-persistence: running {suite}");
    let out = in_process_command(
        plan,
        &[
            "test",
            "-q",
            "-p",
            "cairn-tests",
            "--test",
            suite,
            "--",
            "--nocapture",
        ],
    )
    .output()
    .with_context(|| format!("running {suite}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let logs = util::root().join("target").join("test-persistence");
    std::fs::create_dir_all(&logs)?;
    let log = logs.join(format!("{suite}.log"));
    std::fs::write(&log, &text)?;
    let (mut passed, mut failed) = (0, 0);
    for line in text.lines().filter(|l| l.starts_with("test result:")) {
        passed += count(line, "passed");
        failed += count(line, "failed");
    }
    if !out.status.success() && failed == 0 {
        // It did not even run (compile error, crash): one failure.
        failed = 1;
    }
    let skips = Skips::of(&text);
    // A test that skipped returned Ok, so libtest counted it as passed.
    passed = passed.saturating_sub(skips.total());
    let forbidden = skips.forbidden(plan.require_root, redis_required());
    failed += forbidden;
    let mut note = format!(
        "log: {}",
        log.strip_prefix(util::root()).unwrap_or(&log).display()
    );
    if skips.total() > 0 {
        note = format!("{} skipped (see log); {note}", skips.total());
    }
    if forbidden > 0 {
        note = format!(
            "{forbidden} skipped although CAIRN_REQUIRE_ROOT_TESTS/CAIRN_REQUIRE_REDIS say they must run; {note}"
        );
        for l in &skips.lines {
            eprintln!("---- {suite}: {l}");
        }
    }
    if failed > 0 {
        eprintln!("---- {suite} failed; last lines of {}:", log.display());
        let lines: Vec<&str> = text.lines().collect();
        for l in &lines[lines.len().saturating_sub(60)..] {
            eprintln!("{l}");
        }
    }
    Ok(Row {
        scenario: suite.to_owned(),
        cases: passed + failed + skips.total(),
        passed,
        failed,
        skipped: skips.total(),
        seconds: started.elapsed().as_secs_f64(),
        note,
    })
}

/// The `skipped: <why>` lines a suite printed (the convention every cairn
/// test that cannot run follows), split by what would have let it run.
#[derive(Debug, Default)]
struct Skips {
    lines: Vec<String>,
    /// Skips for want of `redis-server`.
    redis: u64,
    /// Every other skip (root, Linux, tmpfs mounts).
    root: u64,
}

impl Skips {
    fn of(text: &str) -> Skips {
        let mut s = Skips::default();
        for l in text
            .lines()
            .filter(|l| l.trim_start().starts_with("skipped:"))
        {
            if l.to_ascii_lowercase().contains("redis") {
                s.redis += 1;
            } else {
                s.root += 1;
            }
            s.lines.push(l.trim().to_owned());
        }
        s
    }

    fn total(&self) -> u64 {
        self.redis + self.root
    }

    /// Skips the environment forbids: they count as failures.
    fn forbidden(&self, root_required: bool, redis_required: bool) -> u64 {
        u64::from(root_required) * self.root + u64::from(redis_required) * self.redis
    }
}

/// Whether `CAIRN_REQUIRE_REDIS=1` is in force, set by the caller's
/// environment or by `cargo xtask ci` for the commands it starts.
fn redis_required() -> bool {
    let set = |v: Option<&std::ffi::OsStr>| v.is_some_and(|v| v == "1");
    set(std::env::var_os("CAIRN_REQUIRE_REDIS").as_deref())
        || util::cargo_command(&[])
            .get_envs()
            .any(|(k, v)| k == "CAIRN_REQUIRE_REDIS" && set(v))
}

/// `N passed` / `N failed` in a libtest summary line.
fn count(line: &str, what: &str) -> u64 {
    let words: Vec<&str> = line
        .split(|c: char| c.is_whitespace() || c == ';' || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .filter(|w| w[1] == what)
        .filter_map(|w| w[0].parse::<u64>().ok())
        .sum()
}

fn campaign(name: &str, f: impl FnOnce() -> Result<campaigns::Tally>) -> Row {
    println!("test-persistence: running {name}");
    let started = Instant::now();
    let (cases, passed, failed, note) = match f() {
        Ok(t) => {
            for why in t.failures.iter().take(5) {
                eprintln!("---- {name}: {why}");
            }
            let failed = t.cases - t.passed;
            (t.cases, t.passed, failed, t.kinds_line())
        }
        Err(e) => {
            eprintln!("---- {name} aborted: {e:#}");
            (
                0,
                0,
                1,
                format!("aborted: {e}")
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            )
        }
    };
    let row = Row {
        scenario: name.to_owned(),
        cases,
        passed,
        failed,
        skipped: 0,
        seconds: started.elapsed().as_secs_f64(),
        note,
    };
    println!(
        "test-persistence: {name}: {} of {} passed; {}",
        row.passed, row.cases, row.note
    );
    row
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| {:<24} | {:>6} | {:>6} | {:>6} | {:>7} | {:>8} |",
        "scenario", "cases", "passed", "failed", "skipped", "seconds"
    );
    println!(
        "|{:-<26}|{:->8}|{:->8}|{:->8}|{:->9}|{:->10}|",
        "", "", "", "", "", ""
    );
    for r in rows {
        println!(
            "| {:<24} | {:>6} | {:>6} | {:>6} | {:>7} | {:>8.1} |",
            r.scenario, r.cases, r.passed, r.failed, r.skipped, r.seconds
        );
    }
    let (c, p, f, k, s) = rows.iter().fold((0, 0, 0, 0, 0.0), |a, r| {
        (
            a.0 + r.cases,
            a.1 + r.passed,
            a.2 + r.failed,
            a.3 + r.skipped,
            a.4 + r.seconds,
        )
    });
    println!(
        "| {:<24} | {:>6} | {:>6} | {:>6} | {:>7} | {:>8.1} |",
        "total", c, p, f, k, s
    );
    println!();
    for r in rows {
        println!("  {}: {}", r.scenario, r.note);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_libtest_summaries() {
        let ok = "test result: ok. 5 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.2s";
        assert_eq!((count(ok, "passed"), count(ok, "failed")), (5, 0));
        let bad = "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!((count(bad, "passed"), count(bad, "failed")), (3, 2));
    }

    #[test]
    fn skips_are_counted_and_forbidden_only_when_required() {
        let log = "running 3 tests\nskipped: should_x: needs root to mount a tmpfs\n\
                   skipped: redis-server not installed (diff: ...)\ntest a ... ok\n\
                   not skipped: a line that only mentions it\n";
        let s = Skips::of(log);
        assert_eq!((s.root, s.redis, s.total()), (1, 1, 2));
        assert_eq!(s.forbidden(false, false), 0);
        assert_eq!(s.forbidden(true, false), 1);
        assert_eq!(s.forbidden(false, true), 1);
        assert_eq!(s.forbidden(true, true), 2);
    }
}
