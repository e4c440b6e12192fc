//! Installs what the tests need: Redis 7.0 from Debian's packages is the
//! behaviour oracle and the speed baseline.

use std::process::Command;

use anyhow::{Result, bail};

use crate::util;

/// Makes sure `redis-server` and `redis-cli` are on PATH, installing them with
/// apt-get when running as root on Debian. Returns whether they are there.
///
/// Where they cannot be installed, tests that need them skip with a printed
/// reason — except in CI, where that is an error.
pub fn ensure_redis() -> Result<bool> {
    if have("redis-server") && have("redis-cli") && have("redis-benchmark") {
        return Ok(true);
    }
    if cfg!(target_os = "linux") && is_root() && have("apt-get") {
        eprintln!(
            "xtask: redis-server is missing; installing redis-server and redis-tools with apt-get"
        );
        util::run(Command::new("apt-get").arg("update").arg("-qq"))?;
        util::run(
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "redis-server", "redis-tools"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
        if have("redis-server") {
            return Ok(true);
        }
    }
    if util::in_ci() {
        bail!(
            "redis-server is missing and cannot be installed here; CI may not skip the tests that need it"
        );
    }
    eprintln!(
        "xtask: redis-server is missing (not root on Debian): tests that compare with Redis will skip with a printed reason"
    );
    Ok(false)
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}
