//! `cargo xtask fuzz codec [SECONDS]`: runs the snapshot codec's libFuzzer
//! targets with `cargo +nightly fuzz`, each for SECONDS (default 300).
//!
//! The fuzz crate lives outside the workspace (`crates/snapshot/fuzz`) because
//! libFuzzer needs nightly; the pinned stable toolchain builds everything else.

use std::process::Command;

use anyhow::{Result, bail};

use crate::util;

const TARGETS: &[&str] = &["decode_record", "stream_reader"];

/// Runs every codec target for `seconds` each; fails on the first crash.
pub fn run(args: &[String]) -> Result<()> {
    let (what, rest) = match args.split_first() {
        Some((w, r)) => (w.as_str(), r),
        None => ("codec", &[][..]),
    };
    if what != "codec" {
        bail!("unknown fuzz suite {what:?}: only `codec` exists");
    }
    let seconds: u64 = match rest.first() {
        Some(s) => s
            .parse()
            .map_err(|_| anyhow::anyhow!("SECONDS must be a whole number, got {s:?}"))?,
        None => 300,
    };
    if !Command::new("cargo")
        .args(["+nightly", "fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("xtask: cargo-fuzz is missing; installing it from crates.io");
        util::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    let dir = util::root().join("crates/snapshot/fuzz");
    for target in TARGETS {
        util::run(
            Command::new("cargo")
                .args(["+nightly", "fuzz", "run", "-O", target, "--"])
                .arg(format!("-max_total_time={seconds}"))
                .arg("-print_final_stats=1")
                .current_dir(&dir),
        )?;
    }
    println!(
        "xtask fuzz: {} targets ran {seconds} s each without a crash",
        TARGETS.len()
    );
    Ok(())
}
