//! `cargo xtask coverage [--fail-under PCT] [--install]`: line coverage of
//! the persistence code — crates/snapshot, crates/store, crates/persist and
//! the keyspace's point-in-time views (`view.rs` and the versioned entries
//! of `engine.rs`) — under their own tests and the in-process persistence
//! suites, measured with cargo-tarpaulin's LLVM engine.
//!
//! `--install` installs cargo-tarpaulin with `cargo install --locked` when
//! it is missing (what `cargo xtask ci` does); otherwise a missing tool is
//! an error that says how to install it. The HTML and JSON reports land in
//! `target/coverage/`.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};

use crate::util;

/// The code whose coverage is reported, as tarpaulin names files.
const GROUPS: [(&str, &str); 5] = [
    ("crates/snapshot", "crates/snapshot/src/"),
    ("crates/store", "crates/store/src/"),
    ("crates/persist", "crates/persist/src/"),
    ("keyspace view.rs", "crates/keyspace/src/view.rs"),
    ("keyspace engine.rs", "crates/keyspace/src/engine.rs"),
];

/// Entry point of `cargo xtask coverage`.
///
/// # Errors
/// tarpaulin is missing or failed, or the total is below `--fail-under`.
pub fn run(args: &[String]) -> Result<()> {
    run_with(args, false)
}

/// As [`run`]; `require_root` makes root-only tests fail instead of skip
/// (`cargo xtask ci` as root on Linux, where this run is the only run of
/// the suites it measures).
///
/// # Errors
/// As [`run`].
pub fn run_with(args: &[String], require_root: bool) -> Result<()> {
    let mut fail_under: Option<f64> = None;
    let mut install = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--install" => install = true,
            "--fail-under" => {
                fail_under = Some(
                    it.next()
                        .context("--fail-under needs a percentage")?
                        .parse()?,
                )
            }
            other => {
                bail!(
                    "unknown argument {other:?}; usage: cargo xtask coverage [--fail-under PCT] [--install]"
                )
            }
        }
    }
    if !have_tarpaulin() {
        if !install {
            bail!(
                "cargo-tarpaulin is not installed: run `cargo install --locked --no-default-features --debug cargo-tarpaulin` \
                 (about 2 minutes), or `cargo xtask coverage --install`"
            );
        }
        // Without its default features (uploading to coveralls, wasm
        // profiles) it builds in about 4 minutes on 2 cores instead of 10;
        // as a debug build, in 107 s, and a coverage run with it took 303 s
        // once the instrumented build was done, about the time of its tests:
        // the tool's own work is small beside them.
        eprintln!(
            "xtask: installing cargo-tarpaulin (cargo install --locked --no-default-features --debug cargo-tarpaulin)"
        );
        util::run(&mut util::cargo_command(&[
            "install",
            "--locked",
            "--no-default-features",
            "--debug",
            "cargo-tarpaulin",
        ]))
        .context("installing cargo-tarpaulin")?;
        if !have_tarpaulin() {
            bail!("cargo-tarpaulin still does not run after installing it");
        }
    }
    let out_dir = util::root().join("target").join("coverage");
    let mut cmd = util::cargo_command(&[
        "tarpaulin",
        "--engine",
        "llvm",
        "--skip-clean",
        "--target-dir",
        "target/coverage/build",
        "-p",
        "cairn-snapshot",
        "-p",
        "cairn-store",
        "-p",
        "cairn-persist",
        "-p",
        "cairn-keyspace",
        "-p",
        "cairn-server",
        "-p",
        "cairn-tests",
        "--lib",
        "--no-fail-fast",
        "--timeout",
        "900",
        "--out",
        "Stdout",
        "--out",
        "Html",
        "--out",
        "Json",
        "--output-dir",
        "target/coverage",
    ]);
    // The persistence code's own tests and the persistence suites (not the
    // differential suite, which measures something else).
    for target in test_targets()? {
        cmd.args(["--test", &target]);
    }
    for (_, prefix) in GROUPS {
        cmd.args(["--include-files", &format!("{prefix}*")]);
    }
    // The short form of the suites: coverage needs every path, not volume.
    cmd.env("CAIRN_QUICK", "1");
    if require_root || std::env::var("CAIRN_REQUIRE_ROOT_TESTS").is_ok_and(|v| v == "1") {
        cmd.env("CAIRN_REQUIRE_ROOT_TESTS", "1");
    }
    eprintln!("xtask: running {cmd:?}");
    let started = std::time::Instant::now();
    let out = cmd.output().context("running cargo tarpaulin")?;
    eprintln!("xtask: ({:.0?}, {})", started.elapsed(), out.status);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::create_dir_all(&out_dir)?;
    std::fs::write(out_dir.join("tarpaulin.log"), &text)?;
    let per_group = parse_report(&text);
    if per_group.is_empty() {
        let lines: Vec<&str> = text.lines().collect();
        for l in &lines[lines.len().saturating_sub(40)..] {
            eprintln!("{l}");
        }
        bail!("cargo tarpaulin reported nothing (log: target/coverage/tarpaulin.log)");
    }
    println!(
        "| {:<28} | {:>7} | {:>7} | {:>7} |",
        "code", "covered", "lines", "percent"
    );
    println!("|{:-<30}|{:->9}|{:->9}|{:->9}|", "", "", "", "");
    let (mut c, mut l) = (0u64, 0u64);
    for (name, _) in GROUPS {
        let (covered, lines) = per_group.get(name).copied().unwrap_or((0, 0));
        c += covered;
        l += lines;
        println!(
            "| {name:<28} | {covered:>7} | {lines:>7} | {:>6.1}% |",
            pct(covered, lines)
        );
    }
    let total = pct(c, l);
    println!("| {:<28} | {c:>7} | {l:>7} | {total:>6.1}% |", "total");
    println!(
        "reports: target/coverage/tarpaulin-report.html, tarpaulin-report.json, tarpaulin.log"
    );
    if !out.status.success() {
        bail!(
            "some tests failed under coverage (the figures above still count them); see target/coverage/tarpaulin.log"
        );
    }
    if let Some(min) = fail_under
        && total < min
    {
        bail!("line coverage {total:.1}% is below {min}%");
    }
    Ok(())
}

fn have_tarpaulin() -> bool {
    std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["tarpaulin", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Integration test targets: every `tests/*.rs` of the persistence crates,
/// the keyspace's view and framework tests, and the `persistence_*` suites
/// but `persistence_large`. `cargo xtask ci` runs these only here.
pub fn test_targets() -> Result<Vec<String>> {
    let root = util::root();
    let mut out = std::collections::BTreeSet::new();
    out.insert("views".to_owned());
    out.insert("framework".to_owned());
    for dir in [
        "crates/snapshot/tests",
        "crates/store/tests",
        "crates/persist/tests",
        "crates/server/tests",
        "tests/tests",
    ] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".rs")
                && (dir != "tests/tests" || stem.starts_with("persistence_"))
                // Volume, not paths: hundreds of MB through instrumented code.
                && stem != "persistence_large"
            {
                out.insert(stem.to_owned());
            }
        }
    }
    if out.is_empty() {
        bail!("no test targets found");
    }
    Ok(out.into_iter().collect())
}

fn pct(covered: u64, lines: u64) -> f64 {
    if lines == 0 {
        0.0
    } else {
        covered as f64 * 100.0 / lines as f64
    }
}

/// Sums tarpaulin's `|| path: covered/lines` lines per group.
fn parse_report(text: &str) -> BTreeMap<&'static str, (u64, u64)> {
    let mut out: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("|| ") else {
            continue;
        };
        let Some((path, counts)) = rest.split_once(": ") else {
            continue;
        };
        let Some((covered, lines)) = counts
            .split_whitespace()
            .next()
            .and_then(|c| c.split_once('/'))
        else {
            continue;
        };
        let (Ok(covered), Ok(lines)) = (covered.parse::<u64>(), lines.parse::<u64>()) else {
            continue;
        };
        // tarpaulin prints the "uncovered lines" and "coverage results"
        // sections; count each file once.
        if !seen.insert(path.to_owned()) {
            continue;
        }
        if let Some((name, _)) = GROUPS.iter().find(|(_, prefix)| path.contains(prefix)) {
            let e = out.entry(name).or_default();
            e.0 += covered;
            e.1 += lines;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_files_per_group() {
        let text = "|| Tested/Total Lines:\n|| crates/store/src/load.rs: 90/100 +0.00%\n|| crates/store/src/store.rs: 10/20\n|| crates/persist/src/manager.rs: 5/10\n|| crates/server/src/main.rs: 0/10\n|| crates/keyspace/src/view.rs: 7/8\n|| crates/keyspace/src/keyspace.rs: 1/9\n";
        let r = parse_report(text);
        assert_eq!(r.get("crates/store"), Some(&(100, 120)));
        assert_eq!(r.get("crates/persist"), Some(&(5, 10)));
        assert_eq!(r.get("keyspace view.rs"), Some(&(7, 8)));
        assert_eq!(r.get("crates/snapshot"), None);
    }
}
