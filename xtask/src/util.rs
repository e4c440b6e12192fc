//! Small process helpers shared by the tasks.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};

/// The workspace root (xtask lives one level below it).
pub fn root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

static REQUIRE_REDIS: AtomicBool = AtomicBool::new(false);

/// From now on, children get `CAIRN_REQUIRE_REDIS=1`: suites that compare
/// with Redis fail rather than skip.
pub fn require_redis(yes: bool) {
    REQUIRE_REDIS.store(yes, Ordering::Relaxed);
}

/// A `cargo` command in the workspace root, with the tasks' environment.
pub fn cargo_command(args: &[&str]) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(args).current_dir(root());
    if REQUIRE_REDIS.load(Ordering::Relaxed) {
        cmd.env("CAIRN_REQUIRE_REDIS", "1");
    }
    cmd
}

/// Runs `cargo ARGS` in the workspace root, failing on a non-zero exit.
pub fn cargo(args: &[&str]) -> Result<()> {
    run(&mut cargo_command(args))
}

/// Runs a command, echoing it, failing on a non-zero exit; says how long
/// it took (CI's budget is spent step by step).
pub fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let started = std::time::Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    eprintln!("xtask: ({:.0?}, {status})", started.elapsed());
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Whether we run in CI, where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The target directory cargo builds into. Asked of cargo itself, with
/// the same working directory and environment as the build, so
/// `CARGO_TARGET_DIR`, `CARGO_BUILD_TARGET_DIR` and `build.target-dir` in a
/// config file are all honoured: assuming `<root>/target` would bench a
/// stale binary whenever one of them points elsewhere.
pub fn target_dir() -> Result<PathBuf> {
    let out = crate::util::cargo_command(&["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!("cargo metadata failed with {}", out.status);
    }
    let json = String::from_utf8(out.stdout).context("cargo metadata printed non-UTF-8")?;
    json_string_field(&json, "target_directory")
        .map(PathBuf::from)
        .context("cargo metadata printed no target_directory")
}

/// The value of the first `"key":"..."` in `json`, unescaped. Enough for
/// cargo metadata's top-level path fields, without a JSON dependency: the
/// pattern cannot match inside another string, where quotes are escaped.
fn json_string_field(json: &str, key: &str) -> Option<String> {
    let start = json.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let mut out = String::new();
    let mut chars = json.get(start..)?.chars();
    loop {
        match chars.next()? {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                c @ ('"' | '\\' | '/') => out.push(c),
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                _ => return None,
            },
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cargo_metadata_paths() {
        let j = r#"{"packages":[{"name":"x","d":"say \"target_directory\":\"no\""}],"target_directory":"/w/t\\a\"b\u00e9","version":1}"#;
        assert_eq!(
            json_string_field(j, "target_directory").as_deref(),
            Some("/w/t\\a\"b\u{e9}")
        );
        assert_eq!(json_string_field(j, "workspace_root"), None);
        assert_eq!(
            json_string_field(r#"{"target_directory":"/unterminated"#, "target_directory"),
            None
        );
    }
}
