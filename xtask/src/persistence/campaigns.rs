//! Process-level campaigns against the real binary: graceful restarts
//! (SIGTERM and SHUTDOWN) and SIGKILL at seeded random moments around
//! snapshots; the helpers the other campaigns share (`corruption.rs`,
//! `churn.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use cairn_tests::data::{self, Dataset, Mutator, Spec, TTL_TOLERANCE_MS};
use cairn_tests::fixtures::parse_info;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::binary::{Binary, Start, panicked};

/// What one campaign did.
#[derive(Debug, Default)]
pub struct Tally {
    /// Cases run.
    pub cases: u64,
    /// Cases that held the invariant.
    pub passed: u64,
    /// Failure messages (one per failed case).
    pub failures: Vec<String>,
    /// Outcome categories and how often each happened.
    pub kinds: BTreeMap<String, u64>,
    /// The campaign's own figures, printed before the categories.
    pub summary: String,
}

impl Tally {
    pub(super) fn pass(&mut self, kind: &str) {
        self.cases += 1;
        self.passed += 1;
        *self.kinds.entry(kind.to_owned()).or_default() += 1;
    }

    pub(super) fn fail(&mut self, kind: &str, why: String) {
        self.cases += 1;
        *self.kinds.entry(format!("FAILED {kind}")).or_default() += 1;
        eprintln!("xtask: case failed ({kind}): {why}");
        self.failures.push(why);
    }

    pub(super) fn merge(&mut self, other: Tally) {
        self.cases += other.cases;
        self.passed += other.passed;
        self.failures.extend(other.failures);
        for (k, v) in other.kinds {
            *self.kinds.entry(k).or_default() += v;
        }
    }

    /// The figures and the categories as one line.
    pub fn kinds_line(&self) -> String {
        let kinds = self
            .kinds
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        if self.summary.is_empty() {
            kinds
        } else {
            format!("{}; {kinds}", self.summary)
        }
    }
}

/// splitmix64's finaliser: derives independent seeds from related ones.
pub(super) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(super) fn info(conn: &mut redis::Connection) -> Result<BTreeMap<String, String>> {
    let text: String = redis::cmd("INFO")
        .arg("persistence")
        .query(conn)
        .context("INFO persistence")?;
    Ok(parse_info(&text))
}

/// The generation the server has committed or restored (`None`: none).
pub(super) fn generation(conn: &mut redis::Connection) -> Result<Option<u64>> {
    let info = info(conn)?;
    let g = info
        .get("cairn_current_generation")
        .context("INFO has no cairn_current_generation")?;
    Ok(g.parse().ok())
}

pub(super) fn save(conn: &mut redis::Connection) -> Result<u64> {
    let reply: String = redis::cmd("SAVE").query(conn).context("SAVE")?;
    ensure!(reply == "OK", "SAVE answered {reply}");
    generation(conn)?.context("no generation after SAVE")
}

pub(super) fn check(want: &Dataset, got: &Dataset, what: &str) -> Result<()> {
    want.without_expired(data::now_ms())
        .check_equal(got, TTL_TOLERANCE_MS, what)
}

/// SIGTERM and SHUTDOWN restarts: each cycle restores everything written
/// before the previous graceful stop, then adds and changes data.
pub fn graceful_restarts(bin: &Binary, seed: u64, cycles: usize) -> Result<Tally> {
    let tmp = tempfile::Builder::new()
        .prefix("cairn-sigterm-")
        .tempdir()?;
    let dir = tmp.path().join("data");
    let args = ["--snapshot-interval", "1h"];
    let mut model = Dataset::default();
    let mut mutator = Mutator::new(Spec::small(seed, 0));
    let mut t = Tally::default();
    for cycle in 0..=cycles {
        let p = bin.start_ready(&dir, &args)?;
        let mut conn = data::connect(p.addr())?;
        let got = data::dump(&mut conn, data::DATABASES)?;
        match check(&model, &got, &format!("restart {cycle}")) {
            Ok(()) => t.pass(if cycle == 0 {
                "first start (empty)"
            } else {
                "restored after graceful stop"
            }),
            Err(e) => t.fail("graceful restart", format!("{e:#}")),
        }
        model = got;
        if cycle == cycles {
            let (status, _) = p.terminate()?;
            ensure!(status.success(), "SIGTERM exit status {status}");
            break;
        }
        if cycle == 0 {
            // A second server on the same directory must be refused clearly.
            match bin.start(&dir, &args)? {
                Start::Ready(second) => {
                    let _ = second.kill();
                    t.fail(
                        "locked data dir",
                        "a second server started on a locked data directory".into(),
                    );
                }
                Start::Exited { status, log } => {
                    if !status.success() && log.to_lowercase().contains("lock") && !panicked(&log) {
                        t.pass("second server refused (data dir locked)");
                    } else {
                        t.fail(
                            "locked data dir",
                            format!("exit {status}, unclear refusal:\n{log}"),
                        );
                    }
                }
            }
        }
        let added = Spec::small(seed.wrapping_add(cycle as u64), 500)
            .prefixed(format!("c{cycle}:"))
            .generate();
        data::populate(&mut conn, &added)?;
        model.extend(&added);
        mutator.apply_n(&mut conn, &mut model, 300)?;
        // Alternate SIGTERM and the SHUTDOWN command.
        let (status, log) = if cycle % 2 == 0 {
            p.terminate()?
        } else {
            let _ = redis::cmd("SHUTDOWN").query::<redis::Value>(&mut conn);
            p.wait_exit()?
        };
        if !status.success() || !log.contains("snapshot committed") || panicked(&log) {
            t.fail(
                "graceful stop",
                format!(
                    "cycle {cycle}: exit {status}, no shutdown snapshot or a panic; log:\n{log}"
                ),
            );
        }
    }
    Ok(t)
}

/// How the campaign approaches the kill.
#[derive(Clone, Copy, Debug)]
enum Moment {
    /// Writes, no snapshot: the last committed one must come back.
    Before,
    /// BGSAVE, then the kill at a random moment while it may run.
    During,
    /// BGSAVE with a client still writing, then the kill.
    DuringWrites,
    /// SAVE returned (committed), more writes, then the kill.
    After,
}

/// SIGKILL at seeded random moments; after every restart the data must
/// equal exactly the last committed snapshot.
pub fn kill_campaign(bin: &Binary, seed: u64, points: usize, base_keys: usize) -> Result<Tally> {
    let tmp = tempfile::Builder::new()
        .prefix("cairn-sigkill-")
        .tempdir()?;
    let dir = tmp.path().join("data");
    let args = [
        "--snapshot-interval",
        "1h",
        "--snapshot-on-shutdown",
        "false",
    ];
    let mut rng = StdRng::seed_from_u64(seed);
    let mut mutator = Mutator::new(Spec::small(seed, 0));
    let mut t = Tally::default();

    let mut p = bin.start_ready(&dir, &args)?;
    let mut conn = data::connect(p.addr())?;
    let mut live = Spec::small(seed, base_keys).generate();
    data::populate(&mut conn, &live)?;
    let started = Instant::now();
    let mut committed = (save(&mut conn)?, live.clone());
    // The kill delay spans about twice a snapshot's duration.
    let mut snap_us = started.elapsed().as_micros().max(1000) as u64;

    for point in 0..points {
        let moment = match rng.random_range(0..4) {
            0 => Moment::Before,
            1 => Moment::During,
            2 => Moment::DuringWrites,
            _ => Moment::After,
        };
        let ops = rng.random_range(10..200);
        mutator.apply_n(&mut conn, &mut live, ops)?;
        let mut pending = None;
        let mut tail: Option<(std::thread::JoinHandle<u64>, String)> = None;
        let stop = Arc::new(AtomicBool::new(false));
        match moment {
            Moment::Before => {
                std::thread::sleep(Duration::from_micros(rng.random_range(0..snap_us)));
            }
            Moment::During | Moment::DuringWrites => {
                let reply: String = redis::cmd("BGSAVE").query(&mut conn).context("BGSAVE")?;
                ensure!(reply.contains("started"), "BGSAVE answered {reply}");
                pending = Some(live.clone());
                if matches!(moment, Moment::DuringWrites) {
                    let prefix = format!("tail:{point}:");
                    let (addr, stop, p2) = (p.addr(), Arc::clone(&stop), prefix.clone());
                    let h = std::thread::spawn(move || {
                        let Ok(mut c) = data::connect(addr) else {
                            return 0;
                        };
                        let mut acked = 0u64;
                        while !stop.load(Ordering::Relaxed) {
                            if redis::cmd("SET")
                                .arg(format!("{p2}{acked:08}"))
                                .arg(acked)
                                .query::<()>(&mut c)
                                .is_err()
                            {
                                break;
                            }
                            acked += 1;
                        }
                        acked
                    });
                    tail = Some((h, prefix));
                }
                // The kill lands before, during or after the commit.
                std::thread::sleep(Duration::from_micros(rng.random_range(0..2 * snap_us)));
            }
            Moment::After => {
                let t0 = Instant::now();
                let g = save(&mut conn)?;
                snap_us = (snap_us + t0.elapsed().as_micros() as u64) / 2;
                committed = (g, live.clone());
                let lost = rng.random_range(1..50);
                mutator.apply_n(&mut conn, &mut live, lost)?;
            }
        }
        let killed_log = p.kill()?;
        stop.store(true, Ordering::Relaxed);
        let tail = tail.map(|(h, prefix)| (h.join().unwrap_or(0), prefix));
        // A commit the killed server logged must be the one restored.
        let logged: Option<u64> = killed_log
            .lines()
            .filter_map(|l| l.split("snapshot committed generation=").nth(1))
            .filter_map(|r| r.split_whitespace().next()?.parse().ok())
            .max();

        p = match bin.start(&dir, &args)? {
            Start::Ready(p) => p,
            Start::Exited { status, log } => {
                t.fail("restart", format!("kill point {point} ({moment:?}): the restart exited with {status}; log:\n{log}"));
                bail!("cannot continue the kill campaign after a failed restart (seed {seed})");
            }
        };
        conn = data::connect(p.addr())?;
        let g = generation(&mut conn)?.unwrap_or(0);
        let got = data::dump(&mut conn, data::DATABASES)?;
        let verdict = verify_kill(&committed, pending.as_ref(), tail.as_ref(), logged, g, &got);
        let name = match (&verdict, moment) {
            (Ok(true), _) => "killed during a snapshot, after its commit",
            (Ok(false), Moment::Before) => "killed before a snapshot",
            (Ok(false), Moment::After) => "killed after a snapshot",
            (Ok(false), _) => "killed during a snapshot, before its commit",
            (Err(_), _) => "kill",
        };
        match verdict {
            Ok(_) => t.pass(name),
            Err(e) => t.fail(
                name,
                format!("kill point {point} ({moment:?}, seed {seed}): {e:#}"),
            ),
        }
        let restart_log = p.log();
        if restart_log.contains("removing unfinished generation") {
            *t.kinds
                .entry("of which a half-written generation was cleaned up".into())
                .or_default() += 1;
        }
        if restart_log.contains("uncommitted") {
            *t.kinds
                .entry("of which a sealed, uncommitted generation was quarantined".into())
                .or_default() += 1;
        }
        if panicked(&restart_log) {
            t.fail(
                "restart",
                format!(
                    "kill point {point}: the restarted server panicked:\n{}",
                    p.log()
                ),
            );
        }
        // Continue from exactly what is on disk now.
        committed = (g, got.clone());
        live = got;
    }
    let (status, log) = p.terminate()?;
    if !status.success() {
        t.fail("final stop", format!("exit {status}; log:\n{log}"));
    }
    Ok(t)
}

/// `Ok(true)`: the pending snapshot was restored; `Ok(false)`: the
/// previously committed one.
fn verify_kill(
    committed: &(u64, Dataset),
    pending: Option<&Dataset>,
    tail: Option<&(u64, String)>,
    logged: Option<u64>,
    g: u64,
    got: &Dataset,
) -> Result<bool> {
    if let Some(l) = logged.filter(|l| *l > committed.0) {
        ensure!(
            g == l,
            "the killed server logged the commit of generation {l}, but {g} was restored"
        );
    }
    if g == committed.0 {
        check(
            &committed.1,
            got,
            &format!("restored generation {g} (the last committed)"),
        )?;
        return Ok(false);
    }
    let Some(pending) = pending.filter(|_| g > committed.0) else {
        bail!(
            "restored generation {g}, but the last committed is {} and no snapshot was pending",
            committed.0
        );
    };
    // BGSAVE takes its view inside the command: the snapshot is the state
    // between BGSAVE and the next command, exactly. The concurrent writer
    // only started after BGSAVE's reply, so none of its writes may be in
    // it (until 2026-12 a tail of them was tolerated: the view was taken
    // later, by another task).
    if let Some((acked, prefix)) = tail {
        let leaked = got
            .items
            .keys()
            .filter(|(_, key)| key.starts_with(prefix.as_bytes()))
            .count();
        ensure!(
            leaked == 0,
            "{leaked} of the {acked} writes sent after BGSAVE's reply are in its snapshot"
        );
    }
    let rest = got;
    check(
        pending,
        rest,
        &format!("restored generation {g} (the snapshot pending at the kill)"),
    )?;
    Ok(true)
}
