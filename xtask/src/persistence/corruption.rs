//! The corruption campaign: seeded damage to the files of a real data
//! directory (generations A and B = A + 200 keys), then a start of the
//! binary with a seeded `on_corrupt` policy.
//!
//! The verdict is a function of what was damaged and of the policy
//! ([`expected`]), not a list of acceptable outcomes: with a good
//! generation on disk, `fallback` and `empty` must serve exactly the newest
//! good one; `refuse` must refuse exactly when the generation `CURRENT`
//! names (or `CURRENT` itself) is damaged, leave the directory as it was,
//! and refuse again on the next start.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use cairn_tests::data::{self, CHUNK_BYTES, Dataset, Spec, Val};
use cairn_tests::fixtures::{copy_tree, entries, files_below, fingerprint};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::binary::{Binary, Proc, Start, killed_by_signal, panicked};
use super::campaigns::{Tally, check, generation, save};

/// The reference data directory of the campaign.
struct Template {
    dir: PathBuf,
    a: Dataset,
    b: Dataset,
    gen_a: u64,
    gen_b: u64,
    /// Files of generation B, A, and the rest (relative to `dir`).
    files_b: Vec<PathBuf>,
    files_a: Vec<PathBuf>,
    files_top: Vec<PathBuf>,
    /// Generation B's records, in stored order (what re-sealing tampers with).
    #[cfg(feature = "resealed")]
    records_b: Vec<cairn_snapshot::Record>,
}

fn make_template(bin: &Binary, root: &Path, seed: u64) -> Result<Template> {
    let dir = root.join("template");
    let p = bin.start_ready(&dir, &["--snapshot-interval", "1h"])?;
    let mut conn = data::connect(p.addr())?;
    let mut a = Spec::small(seed, 400).generate();
    // One collection above the chunk size, so chunked records are hit too.
    let per = 100;
    let big: Vec<Vec<u8>> = (0..CHUNK_BYTES / per + 500)
        .map(|i| format!("{i:0100}").into_bytes())
        .collect();
    a.insert(1, "big-list", Val::List(big), None);
    data::populate(&mut conn, &a)?;
    let gen_a = save(&mut conn)?;
    let extra = Spec::small(seed ^ 1, 200).prefixed("b:").generate();
    data::populate(&mut conn, &extra)?;
    let mut b = a.clone();
    b.extend(&extra);
    let gen_b = save(&mut conn)?;
    let _ = redis::cmd("SHUTDOWN")
        .arg("NOSAVE")
        .query::<redis::Value>(&mut conn);
    let (status, log) = p.wait_exit()?;
    ensure!(
        status.success(),
        "template server exit {status}; log:\n{log}"
    );
    // One restart, so the directory also holds what a load leaves behind
    // (`VERIFIED`, naming B), as any directory that has been restored does.
    let p = bin.start_ready(
        &dir,
        &[
            "--snapshot-interval",
            "1h",
            "--snapshot-on-shutdown",
            "false",
        ],
    )?;
    let mut conn = data::connect(p.addr())?;
    ensure!(
        generation(&mut conn)? == Some(gen_b),
        "the template restart did not restore generation {gen_b}"
    );
    let _ = redis::cmd("SHUTDOWN")
        .arg("NOSAVE")
        .query::<redis::Value>(&mut conn);
    let (status, log) = p.wait_exit()?;
    ensure!(
        status.success(),
        "template restart exit {status}; log:\n{log}"
    );
    let in_gen = |g: u64| format!("gen-{g:020}");
    let (mut files_b, mut files_a, mut files_top) = (Vec::new(), Vec::new(), Vec::new());
    for rel in files_below(&dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "LOCK"))
        .filter_map(|p| p.strip_prefix(&dir).ok().map(Path::to_path_buf))
    {
        let name = rel.to_string_lossy().into_owned();
        if name.starts_with(&in_gen(gen_b)) {
            files_b.push(rel);
        } else if name.starts_with(&in_gen(gen_a)) {
            files_a.push(rel);
        } else {
            files_top.push(rel);
        }
    }
    ensure!(
        files_b.len() > 3
            && files_a.len() > 3
            && files_top.iter().any(|f| f == Path::new("CURRENT"))
            && files_top.iter().any(|f| f == Path::new("VERIFIED")),
        "unexpected template layout: B {files_b:?}, A {files_a:?}, top {files_top:?}"
    );
    #[cfg(feature = "resealed")]
    let records_b = {
        let scratch = tempfile::Builder::new()
            .prefix("cairn-template-read-")
            .tempdir()?;
        cairn_tests::fixtures::read_generation(&dir.join(in_gen(gen_b)), scratch.path())?
    };
    Ok(Template {
        dir,
        a,
        b,
        gen_a,
        gen_b,
        files_b,
        files_a,
        files_top,
        #[cfg(feature = "resealed")]
        records_b,
    })
}

/// `on_corrupt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    Fallback,
    Empty,
    Refuse,
}

impl Policy {
    fn name(self) -> &'static str {
        match self {
            Policy::Fallback => "fallback",
            Policy::Empty => "empty",
            Policy::Refuse => "refuse",
        }
    }
}

/// What the damage actually changed, as far as loading is concerned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Damaged {
    /// A file of B (the generation `CURRENT` names) differs from what was
    /// committed, or B's content was re-sealed with a bad record.
    newest: bool,
    /// A file of A differs.
    older: bool,
    /// `CURRENT` differs (or is gone).
    current: bool,
}

/// The one right outcome of a start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Serve exactly B.
    Newest,
    /// Serve exactly A, with B quarantined.
    Older,
    /// Start with no data, both generations quarantined.
    Empty,
    /// Exit with a clear refusal.
    Refuse,
}

/// The verdict rule: a function of what was damaged and of the policy.
///
/// - `fallback`: the newest good generation must be served; refusing is
///   right only when no generation is good.
/// - `empty`: the same, but an empty start when no generation is good.
/// - `refuse`: refuse whenever `CURRENT` or the generation it names is
///   damaged; damage elsewhere (the older generation, `VERIFIED`) does not
///   stop B from loading.
fn expected(d: Damaged, policy: Policy) -> Expect {
    match policy {
        Policy::Refuse if d.current || d.newest => Expect::Refuse,
        Policy::Refuse => Expect::Newest,
        // A damaged CURRENT leaves B itself good: it is found by listing.
        _ if !d.newest => Expect::Newest,
        _ if !d.older => Expect::Older,
        Policy::Empty => Expect::Empty,
        Policy::Fallback => Expect::Refuse,
    }
}

/// Seeded byte flips, truncations, deletions and overwrites of the files of
/// a real data directory, and re-sealed generations with one bad record.
pub fn corruption_campaign(bin: &Binary, seed: u64, cases: usize) -> Result<Tally> {
    let tmp = tempfile::Builder::new()
        .prefix("cairn-corrupt-")
        .tempdir()?;
    let tpl = make_template(bin, tmp.path(), seed)?;
    // Each case draws from its own seed, so cases can run on both cores
    // and any one of them replays alone.
    let workers = 2;
    let tallies: Vec<Result<Tally>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (tpl, root) = (&tpl, tmp.path());
                scope.spawn(move || -> Result<Tally> {
                    let mut t = Tally::default();
                    let case_dir = root.join(format!("case-{w}"));
                    for case in (w..cases).step_by(workers) {
                        corruption_one(bin, tpl, &case_dir, seed, case, &mut t)?;
                    }
                    Ok(t)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a campaign worker panicked")))
            })
            .collect()
    });
    let mut t = Tally::default();
    for part in tallies {
        t.merge(part?);
    }
    t.summary = format!(
        "{} cases, {} passed, {} failed (verdict = f(damaged file, policy))",
        t.cases,
        t.passed,
        t.cases - t.passed
    );
    Ok(t)
}

/// The seed of one corruption case: a full mix of both, so campaigns of
/// nearby seeds do not run the same cases in another order.
fn case_seed(seed: u64, case: usize) -> u64 {
    super::campaigns::mix(super::campaigns::mix(seed) ^ case as u64)
}

/// Which part of the directory a case damages. Weighted toward the newest
/// generation and `CURRENT`, the files a start depends on.
#[derive(Clone, Copy, Debug)]
enum Target {
    Newest,
    Current,
    Older,
    /// Top-level files other than `CURRENT` (`VERIFIED`, which names the
    /// last generation a load verified and does not decide what loads).
    OtherTop,
    /// One file of each generation.
    Both,
    /// B rewritten with one bad record and every file-level check
    /// consistent (needs the `resealed` feature).
    Resealed,
}

fn pick_target(rng: &mut StdRng) -> Target {
    match rng.random_range(0..100) {
        0..40 => Target::Newest,
        40..55 => Target::Current,
        55..70 => Target::Older,
        70..77 => Target::OtherTop,
        77..87 => Target::Both,
        _ if cfg!(feature = "resealed") => Target::Resealed,
        _ => Target::Newest,
    }
}

fn corruption_one(
    bin: &Binary,
    tpl: &Template,
    case_dir: &Path,
    seed: u64,
    case: usize,
    t: &mut Tally,
) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(case_seed(seed, case));
    if case_dir.exists() {
        std::fs::remove_dir_all(case_dir)?;
    }
    copy_tree(&tpl.dir, case_dir)?;
    let target = pick_target(&mut rng);
    let mut damaged = Damaged::default();
    // Whether any byte changed at all (damage to `VERIFIED` changes bytes
    // that do not decide what loads).
    let mut changed_any = false;
    let mut done = Vec::new();
    let mut hit = |rng: &mut StdRng, files: &[PathBuf], damaged: &mut Damaged| -> Result<()> {
        let rel = &files[rng.random_range(0..files.len())];
        let (what, changed) = damage(rng, &case_dir.join(rel))?;
        done.push(format!(
            "{what} {}{}",
            rel.display(),
            if changed { "" } else { " (bytes unchanged)" }
        ));
        changed_any |= changed;
        if changed {
            let name = rel.to_string_lossy();
            if name.starts_with(&format!("gen-{:020}", tpl.gen_b)) {
                damaged.newest = true;
            } else if name.starts_with(&format!("gen-{:020}", tpl.gen_a)) {
                damaged.older = true;
            } else if name == "CURRENT" {
                damaged.current = true;
            }
        }
        Ok(())
    };
    match target {
        Target::Newest => hit(&mut rng, &tpl.files_b, &mut damaged)?,
        Target::Older => hit(&mut rng, &tpl.files_a, &mut damaged)?,
        Target::Current => hit(&mut rng, &[PathBuf::from("CURRENT")], &mut damaged)?,
        Target::OtherTop => {
            let others: Vec<PathBuf> = tpl
                .files_top
                .iter()
                .filter(|f| *f != Path::new("CURRENT"))
                .cloned()
                .collect();
            hit(&mut rng, &others, &mut damaged)?;
        }
        Target::Both => {
            hit(&mut rng, &tpl.files_b, &mut damaged)?;
            hit(&mut rng, &tpl.files_a, &mut damaged)?;
        }
        Target::Resealed => {
            done.push(reseal(&mut rng, tpl, case_dir)?);
            damaged.newest = true;
            changed_any = true;
        }
    }
    let policy = match rng.random_range(0..4) {
        0 => Policy::Refuse,
        1 => Policy::Empty,
        _ => Policy::Fallback,
    };
    let want = expected(damaged, policy);
    let what = format!(
        "case {case} (seed {seed}): {} with on_corrupt={}; expected {want:?}",
        done.join(" and "),
        policy.name()
    );
    let place = match target {
        Target::Newest => "newest generation damaged",
        Target::Older => "older generation damaged",
        Target::Current => "CURRENT damaged",
        Target::OtherTop => "top-level file other than CURRENT damaged",
        Target::Both => "both generations damaged",
        Target::Resealed => "newest generation re-sealed",
    };
    let unchanged = if !changed_any {
        " (no byte changed)"
    } else {
        ""
    };
    let kind = format!(
        "{place}{unchanged}, {} -> {}",
        policy.name(),
        expect_name(want)
    );
    match corruption_case(bin, tpl, case_dir, policy, want) {
        Ok(()) => t.pass(&kind),
        Err(e) => t.fail(&kind, format!("{what}: {e:#}")),
    }
    Ok(())
}

fn expect_name(e: Expect) -> &'static str {
    match e {
        Expect::Newest => "newest loaded",
        Expect::Older => "fell back to the older",
        Expect::Empty => "started empty",
        Expect::Refuse => "refused",
    }
}

/// Damages one file; returns what was done and whether the file's bytes
/// (or its existence) actually changed: a random overwrite can write the
/// bytes that were there, and flips can cancel out.
fn damage(rng: &mut StdRng, path: &Path) -> Result<(String, bool)> {
    let original = std::fs::read(path)?;
    let mut bytes = original.clone();
    let len = bytes.len();
    let what = match rng.random_range(0..10) {
        _ if len == 0 => {
            bytes = b"\x01".to_vec();
            "wrote a byte into empty".to_owned()
        }
        0..=4 => {
            let n = rng.random_range(1..=8);
            for _ in 0..n {
                let at = rng.random_range(0..len);
                bytes[at] ^= 1 << rng.random_range(0..8);
            }
            format!("flipped {n} bit(s) in")
        }
        5..=7 => {
            let keep = rng.random_range(0..len);
            bytes.truncate(keep);
            format!("truncated to {keep} of {len} bytes")
        }
        8 => {
            std::fs::remove_file(path)?;
            return Ok(("deleted".into(), true));
        }
        _ => {
            let at = rng.random_range(0..len);
            let n = rng.random_range(1..=512).min(len - at);
            for b in &mut bytes[at..at + n] {
                *b = rng.random();
            }
            format!("overwrote {n} bytes at {at} of")
        }
    };
    std::fs::write(path, &bytes)?;
    Ok((what, bytes != original))
}

/// Rewrites B with one bad record and every file-level check consistent,
/// so only the per-record CRC, the digest or the count can catch it.
#[cfg(feature = "resealed")]
fn reseal(rng: &mut StdRng, tpl: &Template, case_dir: &Path) -> Result<String> {
    use cairn_snapshot::{Record, Value};
    use cairn_store::testing::{Tamper, rewrite_generation};

    let n = tpl.records_b.len();
    ensure!(n > 0, "generation B has no records");
    let record = rng.random_range(0..n);
    let original = &tpl.records_b[record];
    let mut framed = Vec::new();
    cairn_snapshot::encode_record(original, &mut framed)?;
    let payload = framed.len() - cairn_snapshot::FRAME_OVERHEAD;
    // A record that still decodes and keeps its place in a chunked entry
    // (same db, key, expiry and chunk): only the digest tells it apart.
    let replaced = |r: &Record| -> Option<Record> {
        let mark = |b: &[u8]| [b, b"\0re-sealed"].concat();
        let value = match &r.value {
            Value::String(s) => Value::String(mark(&s[..]).into()),
            Value::List(v) => Value::List(
                v.iter()
                    .enumerate()
                    .map(|(i, e)| {
                        if i == 0 {
                            mark(&e[..]).into()
                        } else {
                            e.clone()
                        }
                    })
                    .collect(),
            ),
            Value::Hash(v) => Value::Hash(
                v.iter()
                    .enumerate()
                    .map(|(i, (f, x))| {
                        if i == 0 {
                            (f.clone(), mark(&x[..]).into())
                        } else {
                            (f.clone(), x.clone())
                        }
                    })
                    .collect(),
            ),
            Value::Set(v) => Value::Set(
                v.iter()
                    .enumerate()
                    .map(|(i, e)| {
                        if i == 0 {
                            mark(&e[..]).into()
                        } else {
                            e.clone()
                        }
                    })
                    .collect(),
            ),
            Value::SortedSet(v) => Value::SortedSet(
                v.iter()
                    .enumerate()
                    .map(|(i, (m, s))| {
                        if i == 0 {
                            (mark(&m[..]).into(), *s)
                        } else {
                            (m.clone(), *s)
                        }
                    })
                    .collect(),
            ),
            _ => return None,
        };
        Some(Record { value, ..r.clone() })
    };
    let (tamper, what) = match rng.random_range(0..3) {
        0 => {
            let offset = rng.random_range(0..payload.max(1));
            let bit = rng.random_range(0..8u8);
            (
                Tamper::FlipPayloadBit {
                    record: record as u64,
                    offset,
                    bit,
                },
                format!(
                    "re-sealed B with bit {bit} of payload byte {offset} of record {record} flipped"
                ),
            )
        }
        1 => match replaced(original) {
            Some(r) => {
                let mut framed = Vec::new();
                cairn_snapshot::encode_record(&r, &mut framed)?;
                (
                    Tamper::ReplaceRecord {
                        record: record as u64,
                        framed,
                    },
                    format!("re-sealed B with record {record} replaced by a valid, different one"),
                )
            }
            None => (
                Tamper::DropRecord {
                    record: record as u64,
                },
                format!("re-sealed B without record {record}"),
            ),
        },
        _ => (
            Tamper::DropRecord {
                record: record as u64,
            },
            format!("re-sealed B without record {record}"),
        ),
    };
    let count = rewrite_generation(case_dir, tpl.gen_b, tamper)
        .with_context(|| format!("rewrite_generation: {what}"))?;
    Ok(format!("{what} (of {n}; the rewrite reports {count})"))
}

#[cfg(not(feature = "resealed"))]
fn reseal(_rng: &mut StdRng, _tpl: &Template, _case_dir: &Path) -> Result<String> {
    bail!("re-sealed cases need xtask's `resealed` feature (cairn-store's tamper API)")
}

fn corruption_case(
    bin: &Binary,
    tpl: &Template,
    dir: &Path,
    policy: Policy,
    want: Expect,
) -> Result<()> {
    let args = [
        "--on-corrupt",
        policy.name(),
        "--snapshot-interval",
        "1h",
        "--snapshot-on-shutdown",
        "false",
    ];
    let before = fingerprint(dir)?;
    match bin.start(dir, &args)? {
        Start::Exited { status, log } => {
            clear_refusal(&status, &log)?;
            ensure!(
                want == Expect::Refuse,
                "refused to start, but {} was expected:\n{}",
                expect_name(want),
                tail(&log)
            );
            if policy == Policy::Refuse {
                untouched(&before, dir, "after the refused start")?;
                // Every start refuses until an operator decides.
                match bin.start(dir, &args)? {
                    Start::Exited { status, log } => {
                        clear_refusal(&status, &log).context("the second start")?;
                    }
                    Start::Ready(p) => {
                        let g = served(&p);
                        drop(p);
                        bail!(
                            "the second start with on_corrupt=refuse served ({g}) instead of refusing again"
                        );
                    }
                }
                untouched(&before, dir, "after the second refused start")?;
            }
            Ok(())
        }
        Start::Ready(p) => {
            let r = check_started(&p, tpl, dir, want);
            // Stop it whatever the verdict, and require a clean exit.
            let mut conn = data::connect(p.addr())?;
            let _ = redis::cmd("SHUTDOWN")
                .arg("NOSAVE")
                .query::<redis::Value>(&mut conn);
            let (status, log) = p.wait_exit()?;
            r?;
            ensure!(
                status.success() && !panicked(&log),
                "exit {status} after the case; log:\n{log}"
            );
            Ok(())
        }
    }
}

/// A non-zero exit with a message that says why, and no crash.
fn clear_refusal(status: &std::process::ExitStatus, log: &str) -> Result<()> {
    ensure!(!panicked(log), "the server panicked:\n{log}");
    ensure!(
        killed_by_signal(status).is_none(),
        "the server died by a signal ({status}):\n{log}"
    );
    ensure!(
        !status.success(),
        "the server exited 0 without serving:\n{log}"
    );
    ensure!(
        log.contains("cannot start cairn") || log.contains("cannot restore"),
        "unclear refusal:\n{log}"
    );
    Ok(())
}

fn untouched(before: &BTreeMap<PathBuf, (u64, u64)>, dir: &Path, when: &str) -> Result<()> {
    let after = fingerprint(dir)?;
    if *before == after {
        return Ok(());
    }
    let mut diffs = Vec::new();
    for (p, v) in before {
        match after.get(p) {
            None => diffs.push(format!("{} gone", p.display())),
            Some(w) if w != v => diffs.push(format!("{} changed", p.display())),
            _ => {}
        }
    }
    for p in after.keys().filter(|p| !before.contains_key(*p)) {
        diffs.push(format!("{} appeared", p.display()));
    }
    bail!(
        "on_corrupt=refuse changed the data directory {when}: {}",
        diffs.join(", ")
    )
}

/// What a server that started serves, for messages.
fn served(p: &Proc) -> String {
    match data::connect(p.addr()).and_then(|mut c| generation(&mut c)) {
        Ok(Some(g)) => format!("generation {g}"),
        Ok(None) => "no generation".into(),
        Err(e) => format!("unknown: {e}"),
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

fn check_started(p: &Proc, tpl: &Template, dir: &Path, want: Expect) -> Result<()> {
    let mut conn = data::connect(p.addr())?;
    let g = generation(&mut conn)?;
    let got = data::dump(&mut conn, data::DATABASES)?;
    let q = entries(&dir.join("quarantine"));
    let quarantined = |g: u64| q.iter().any(|n| n.starts_with(&format!("{g:020}-")));
    let outcome = match g {
        Some(g) if g == tpl.gen_b => Expect::Newest,
        Some(g) if g == tpl.gen_a => Expect::Older,
        None => Expect::Empty,
        Some(other) => bail!(
            "loaded generation {other}; only {} and {} exist",
            tpl.gen_a,
            tpl.gen_b
        ),
    };
    ensure!(
        outcome == want,
        "{} (generation {g:?}), but {} was expected",
        expect_name(outcome),
        expect_name(want)
    );
    match want {
        Expect::Newest => check(&tpl.b, &got, "newest generation")?,
        Expect::Older => {
            check(&tpl.a, &got, "previous generation")?;
            ensure!(
                quarantined(tpl.gen_b),
                "fell back without quarantining generation {}: {q:?}",
                tpl.gen_b
            );
        }
        Expect::Empty => {
            ensure!(
                got.is_empty(),
                "no generation loaded but {} keys present",
                got.len()
            );
            ensure!(
                quarantined(tpl.gen_a) && quarantined(tpl.gen_b),
                "started empty without quarantining both generations: {q:?}"
            );
        }
        Expect::Refuse => unreachable!("a refusal does not start"),
    }
    let g2 = save(&mut conn).context("a fresh snapshot after the damage")?;
    ensure!(g2 > tpl.gen_b, "the fresh snapshot reused generation {g2}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_follows_the_damage_and_the_policy() {
        let d = |newest, older, current| Damaged {
            newest,
            older,
            current,
        };
        let (fallback, empty, refuse) = (Policy::Fallback, Policy::Empty, Policy::Refuse);
        // Nothing that matters damaged: B under every policy.
        for p in [fallback, empty, refuse] {
            assert_eq!(expected(d(false, false, false), p), Expect::Newest);
            assert_eq!(expected(d(false, true, false), p), Expect::Newest, "{p:?}");
        }
        assert_eq!(expected(d(true, false, false), fallback), Expect::Older);
        assert_eq!(expected(d(true, false, false), empty), Expect::Older);
        assert_eq!(expected(d(true, false, false), refuse), Expect::Refuse);
        assert_eq!(expected(d(false, false, true), fallback), Expect::Newest);
        assert_eq!(expected(d(false, false, true), empty), Expect::Newest);
        assert_eq!(expected(d(false, false, true), refuse), Expect::Refuse);
        assert_eq!(expected(d(true, true, false), fallback), Expect::Refuse);
        assert_eq!(expected(d(true, true, false), empty), Expect::Empty);
        assert_eq!(expected(d(true, true, false), refuse), Expect::Refuse);
    }
}
