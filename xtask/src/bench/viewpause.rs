//! Suite 4, view pause: the keyspace's own criterion bench (optimised, in
//! process) for the writer pause to take a point-in-time view of 1,000,000
//! keys, plus what it prints about SET latency while a view is walked.

use anyhow::{Context, Result, bail};

use super::{Outcome, Plan, Table};

/// `[low mid high]` of a criterion `time:` line, as printed.
fn criterion_estimate(out: &str, bench: &str) -> Option<[String; 3]> {
    let from = out.find(bench)?;
    let line = out.get(from..)?.lines().find(|l| l.contains("time:"))?;
    let inner = line.split('[').nth(1)?.split(']').next()?;
    let words: Vec<&str> = inner.split_whitespace().collect();
    match words.as_slice() {
        [a, au, b, bu, c, cu] => Some([
            format!("{a} {au}"),
            format!("{b} {bu}"),
            format!("{c} {cu}"),
        ]),
        _ => None,
    }
}

/// Runs the suite.
///
/// # Errors
/// The bench failed to build or run, or printed nothing recognisable.
pub fn run(plan: &Plan) -> Result<Outcome> {
    let mut args = vec![
        "bench",
        "-p",
        "cairn-keyspace",
        "--bench",
        "view",
        "--",
        "take_view_pause",
    ];
    if plan.quick {
        args.push("--quick");
    }
    let mut cmd = crate::util::cargo_command(&args);
    eprintln!("xtask: running {cmd:?}");
    let out = cmd.output().context("running cargo bench")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "cargo bench -p cairn-keyspace --bench view failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let Some([low, mid, high]) = criterion_estimate(&stdout, "take_view_pause") else {
        bail!("no criterion estimate for take_view_pause in:\n{stdout}");
    };
    let mut t = Table::new(
        "View pause: writer pause to take a point-in-time view of 1,000,000 keys (in process, criterion)".into(),
        &["measure", "value"],
    );
    t.row(vec!["take a view (criterion estimate)".into(), mid.clone()]);
    t.row(vec![
        "95% confidence interval".into(),
        format!("{low} … {high}"),
    ]);
    for line in stdout.lines() {
        if line.starts_with("loaded ") || line.starts_with("walk with concurrent SETs") {
            t.note(format!("the bench printed: `{}`", line.trim()));
        }
    }
    t.note(
        "`cargo bench -p cairn-keyspace --bench view -- take_view_pause`: 1,000,000 keys of 12 bytes with \
         100-byte values loaded through the keyspace API; a view locks each shard in turn for O(shards), \
         not O(keys)."
            .into(),
    );
    eprintln!("bench: view pause {mid} [{low} … {high}]");
    Ok(Outcome {
        tables: vec![t],
        summary: vec![format!(
            "View pause: taking a point-in-time view of 1,000,000 keys pauses writers for {mid} (in process)."
        )],
        ..Outcome::default()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_criterion_lines() {
        let out = "Benchmarking view_1m/take_view_pause: Analyzing\nview_1m/take_view_pause\n                        time:   [1.2030 µs 1.2497 µs 1.3089 µs]\n";
        assert_eq!(
            criterion_estimate(out, "take_view_pause").unwrap(),
            [
                "1.2030 µs".to_owned(),
                "1.2497 µs".to_owned(),
                "1.3089 µs".to_owned()
            ]
        );
        assert!(criterion_estimate("nothing", "take_view_pause").is_none());
    }
}
