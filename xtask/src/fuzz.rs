//! `cargo xtask fuzz <target>|all [--seconds N]`: runs cairn's libFuzzer
//! targets with `cargo +nightly fuzz` (installing cargo-fuzz when it is
//! missing), each for N seconds (default 300).
//!
//! Targets (their rules are in `crates/fuzz/src/lib.rs`): `resp_decode`,
//! `commands`, `decode_record`, `stream_reader`; `codec` runs the last two.
//! The targets live in `crates/fuzz/targets`, outside the workspace
//! (libFuzzer needs nightly), and call the checks of the `cairn-fuzz`
//! crate, which the stable test suite also runs on every saved input.
//!
//! Each run starts from the committed seeds (`crates/fuzz/seeds/<target>`)
//! and a working corpus under `target/fuzz-corpus/<target>` that persists
//! between runs but stays out of the repository. A crash stops the run:
//! its input is copied to `crates/fuzz/regressions/<target>/`, where the
//! regression test replays it until it is fixed and forever after.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::util;

const TARGETS: &[&str] = &["resp_decode", "commands", "decode_record", "stream_reader"];

/// Parses `<target>|all|codec [--seconds N]` and runs the targets.
pub fn run(args: &[String]) -> Result<()> {
    let mut which = None;
    let mut seconds: u64 = 300;
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        match a.as_str() {
            "--seconds" => {
                let v = rest.next().context("--seconds needs a value")?;
                seconds = v
                    .parse()
                    .map_err(|_| anyhow::anyhow!("--seconds must be a whole number, got {v:?}"))?;
            }
            // The older form: `cargo xtask fuzz codec 60`.
            n if which.is_some() && n.parse::<u64>().is_ok() => seconds = n.parse()?,
            name if which.is_none() => which = Some(name.to_owned()),
            other => bail!("unexpected argument {other:?}"),
        }
    }
    let which = which.unwrap_or_else(|| "all".to_owned());
    let targets: Vec<&str> = match which.as_str() {
        "all" => TARGETS.to_vec(),
        "codec" => vec!["decode_record", "stream_reader"],
        t if TARGETS.contains(&t) => vec![t],
        other => bail!(
            "unknown fuzz target {other:?}: one of {}, codec or all",
            TARGETS.join(", ")
        ),
    };
    ensure_cargo_fuzz()?;
    let root = util::root();
    let dir = root.join("crates/fuzz/targets");
    let mut report = Vec::new();
    for target in targets {
        let corpus = root.join("target/fuzz-corpus").join(target);
        std::fs::create_dir_all(&corpus)?;
        let seeds = root.join("crates/fuzz/seeds").join(target);
        let artifacts = root.join("target/fuzz-artifacts").join(target);
        std::fs::create_dir_all(&artifacts)?;
        // Built first, so the time reported is the fuzzing alone.
        util::run(
            Command::new("cargo")
                .args(["+nightly", "fuzz", "build", "-O", "--fuzz-dir"])
                .arg(&dir)
                .arg(target)
                .current_dir(&root),
        )?;
        let started = Instant::now();
        let output = Command::new("cargo")
            .args(["+nightly", "fuzz", "run", "-O", "--fuzz-dir"])
            .arg(&dir)
            .arg(target)
            .arg(&corpus)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={seconds}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg("-print_final_stats=1")
            .current_dir(&root)
            .status()
            .with_context(|| format!("cannot run cargo fuzz for {target}"))?;
        let took = started.elapsed().as_secs();
        if !output.success() {
            let saved = keep_crashes(
                &artifacts,
                &root.join("crates/fuzz/regressions").join(target),
            )?;
            bail!(
                "fuzz target {target} failed after {took} s; {} input(s) saved under crates/fuzz/regressions/{target}/ (fix the bug, keep the file)",
                saved
            );
        }
        report.push(format!("{target}: {took} s without a crash"));
    }
    for line in &report {
        println!("xtask fuzz: {line}");
    }
    Ok(())
}

fn ensure_cargo_fuzz() -> Result<()> {
    let present = Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !present {
        eprintln!("xtask: cargo-fuzz is missing; installing it from crates.io");
        util::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

/// Copies libFuzzer's crash, leak and timeout inputs into the regression
/// directory; returns how many.
fn keep_crashes(artifacts: &Path, regressions: &Path) -> Result<usize> {
    std::fs::create_dir_all(regressions)?;
    let mut n = 0;
    for entry in std::fs::read_dir(artifacts)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if ["crash-", "leak-", "timeout-", "oom-"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            std::fs::copy(&path, regressions.join(name))?;
            std::fs::remove_file(&path)?;
            n += 1;
        }
    }
    Ok(n)
}
