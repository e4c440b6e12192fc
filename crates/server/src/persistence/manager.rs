//! The snapshot manager: one snapshot at a time, captured as a keyspace view
//! (a pause of O(shards)) and written on a blocking thread while clients go
//! on; the periodic timer and Redis save points; restore at start.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cairn_keyspace::{Keyspace, View, ViewEntry};
use cairn_snapshot::Chunker;
use cairn_store::{LoadPolicy, Store};
use parking_lot::Mutex;
use tokio::sync::{broadcast, watch};
use tracing::{error, info, warn};

use super::mapping::{self, KeyspaceSink};
use super::priority;
use super::{
    PersistenceStatus, SnapshotError, SnapshotEvents, SnapshotInfo, SnapshotOutcome,
    SnapshotTrigger,
};
use crate::config::{Config, OnCorrupt, SavePoint};

/// Entries the walker sends the writer per batch: enough that the channel
/// costs little per key, few enough that the batches queued between the two
/// (each entry ~300 bytes with its copied key and value) add little to the
/// memory a snapshot takes (4096 entries × 8 batches in flight were most of
/// a 1.10x RSS peak during a BGSAVE of 1M keys under writes; 1024 × 4 make
/// it 1.05x, SAVE as fast).
const VIEW_BATCH: usize = 1024;
/// After a failed snapshot, save points and the interval retry no sooner
/// than this (Redis' `CONFIG_BGSAVE_RETRY_DELAY`).
const RETRY_DELAY: Duration = Duration::from_secs(5);
/// How often the timer checks save points and the interval (Redis' cron
/// runs at `hz 10`).
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// Settings that `CONFIG SET` may change at run time.
#[derive(Clone, Debug)]
struct Settings {
    save: Vec<SavePoint>,
    interval: Duration,
    stop_writes: bool,
    slow_threshold: Duration,
}

#[derive(Debug)]
struct State {
    /// A snapshot is being written, since this instant.
    running: Option<(Instant, SnapshotTrigger)>,
    /// `BGSAVE SCHEDULE` asked for one after the running one.
    scheduled: bool,
    /// `Keyspace::changes()` at the view of the last successful snapshot
    /// (or after the restore): the base of `rdb_changes_since_last_save`.
    changes_base: u64,
    last_save_unix: i64,
    /// When the last attempt ended, for the retry delay and the interval.
    last_attempt: Instant,
    last_ok: bool,
    last_duration_sec: i64,
    saves: u64,
    failures: u64,
    last_error: Option<String>,
    generation: Option<u64>,
    last_bytes: u64,
    last_keys: u64,
    load_loaded: u64,
    load_expired: u64,
    /// A shutdown is in progress (for `SHUTDOWN ABORT`), and whether it was
    /// asked to abort.
    shutting_down: bool,
    abort_shutdown: bool,
}

/// The persistence side of a running server, shared by the commands, the
/// timer, the shutdown sequence and the handle.
///
/// It holds no `Keyspace` (the keyspace holds it, as a command extension):
/// callers pass the keyspace in, so dropping the server frees both.
pub(crate) struct Persistence {
    enabled: bool,
    data_dir: PathBuf,
    /// `None` when disabled, or once the server has stopped (dropping the
    /// store releases the directory lock, so a restart in the same process
    /// can open it).
    store: Mutex<Option<Store>>,
    settings: Mutex<Settings>,
    state: Mutex<State>,
    /// `true` while a snapshot runs, for those who wait their turn.
    busy: watch::Sender<bool>,
    events: broadcast::Sender<SnapshotOutcome>,
    /// The runtime that runs background snapshots, so commands executed
    /// outside of it (embedding sessions) can still start one.
    runtime: tokio::runtime::Handle,
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Why the server could not restore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The data directory could not be opened (locked, unreadable, ...).
    #[error("cannot open data directory {dir}: {source}")]
    Open {
        /// The directory.
        dir: PathBuf,
        /// The store's error.
        source: cairn_store::Error,
    },
    /// Loading failed, or found damage under `on_corrupt = refuse`.
    #[error("cannot restore from {dir}: {message}")]
    Load {
        /// The directory.
        dir: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl Persistence {
    /// Opens the store (when enabled) without loading anything.
    pub(crate) fn open(config: &Config) -> Result<Persistence, RestoreError> {
        let store = if config.persistence {
            let s = Store::builder(&config.data_dir)
                .retain(config.retain_generations)
                .open()
                .map_err(|source| RestoreError::Open {
                    dir: config.data_dir.clone(),
                    source,
                })?;
            Some(s)
        } else {
            None
        };
        let data_dir =
            std::path::absolute(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone());
        let (busy, _) = watch::channel(false);
        let (events, _) = broadcast::channel(64);
        let generation = store
            .as_ref()
            .and_then(|s| s.current())
            .map(|m| m.generation);
        Ok(Persistence {
            enabled: config.persistence,
            data_dir,
            store: Mutex::new(store),
            settings: Mutex::new(Settings {
                save: config.save.clone(),
                interval: config.snapshot_interval,
                stop_writes: config.stop_writes_on_snapshot_error,
                slow_threshold: config.slow_snapshot_threshold,
            }),
            state: Mutex::new(State {
                running: None,
                scheduled: false,
                changes_base: 0,
                last_save_unix: unix_now(),
                last_attempt: Instant::now(),
                last_ok: true,
                last_duration_sec: -1,
                saves: 0,
                failures: 0,
                last_error: None,
                generation,
                last_bytes: 0,
                last_keys: 0,
                load_loaded: 0,
                load_expired: 0,
                shutting_down: false,
                abort_shutdown: false,
            }),
            busy,
            events,
            runtime: tokio::runtime::Handle::current(),
        })
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    pub(crate) fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// Loads the newest good generation into `ks` (blocking: call it on a
    /// blocking thread, before the server accepts clients).
    pub(crate) fn restore(&self, ks: &Keyspace, on_corrupt: OnCorrupt) -> Result<(), RestoreError> {
        let Some(store) = self.store.lock().clone() else {
            return Ok(());
        };
        let dir = self.data_dir.clone();
        let load_err = |message: String| RestoreError::Load {
            dir: dir.clone(),
            message,
        };
        // fallback: go back generation by generation, refuse when none is
        // good; empty: the same, but start empty when none is good; refuse:
        // any damaged generation stops the start (see docs/operations.md).
        let policy = match on_corrupt {
            OnCorrupt::Empty => LoadPolicy::Empty,
            OnCorrupt::Fallback | OnCorrupt::Refuse => LoadPolicy::Refuse,
        };
        let mut sink = KeyspaceSink::new(ks.clone());
        let report = store
            .load(&mut sink, policy)
            .map_err(|e| load_err(e.to_string()))?;
        for f in &report.failures {
            error!(
                generation = f.generation,
                damage = %f.damage,
                quarantined_to = ?f.quarantined_to,
                "snapshot generation failed verification; quarantined"
            );
        }
        if let Some(why) = &report.current_damaged {
            error!(reason = %why, "CURRENT pointer damaged; searched every sealed generation");
        }
        if on_corrupt == OnCorrupt::Refuse
            && (!report.failures.is_empty() || report.current_damaged.is_some())
        {
            ks.flush_all();
            return Err(load_err(format!(
                "{} damaged generation(s) quarantined and on_corrupt = refuse; see the log, \
                 then start with --on-corrupt fallback (or empty) to accept the older data",
                report.failures.len()
            )));
        }
        let counts = sink
            .finish()
            .map_err(|e| load_err(format!("incomplete chunked entry: {e}")))?;
        {
            let mut st = self.state.lock();
            st.generation = report.generation;
            st.load_loaded = counts.loaded;
            st.load_expired = counts.expired;
            st.changes_base = ks.changes();
        }
        match report.generation {
            Some(g) => info!(
                generation = g,
                keys = counts.loaded,
                expired = counts.expired,
                skipped_bad_db = counts.bad_db,
                ms = report.duration.as_millis() as u64,
                "restored generation={g} keys={} expired={}",
                counts.loaded,
                counts.expired
            ),
            None if report.failures.is_empty() => {
                info!(dir = %self.data_dir.display(), "no snapshot found, starting empty")
            }
            None => warn!(
                failures = report.failures.len(),
                "no snapshot generation passed verification; starting empty (on_corrupt = empty)"
            ),
        }
        Ok(())
    }

    /// Marks the changes made so far as saved (when starting without a
    /// restore, nothing is unsaved yet).
    pub(crate) fn reset_changes(&self, ks: &Keyspace) {
        self.state.lock().changes_base = ks.changes();
    }

    pub(crate) fn subscribe(&self) -> SnapshotEvents {
        SnapshotEvents {
            rx: self.events.subscribe(),
        }
    }

    pub(crate) fn in_progress(&self) -> bool {
        self.state.lock().running.is_some()
    }

    /// Claims the single snapshot slot.
    fn try_claim(&self, trigger: SnapshotTrigger) -> Result<(), SnapshotError> {
        if !self.enabled {
            return Err(SnapshotError::Disabled);
        }
        let mut st = self.state.lock();
        if st.running.is_some() {
            return Err(SnapshotError::InProgress);
        }
        st.running = Some((Instant::now(), trigger));
        drop(st);
        self.busy.send_replace(true);
        Ok(())
    }

    /// Waits until no snapshot runs, then claims the slot.
    async fn claim_when_free(&self, trigger: SnapshotTrigger) -> Result<(), SnapshotError> {
        let mut rx = self.busy.subscribe();
        loop {
            match self.try_claim(trigger) {
                Err(SnapshotError::InProgress) => {}
                other => return other,
            }
            // Another claimer may win the race after the wake-up; loop.
            let _ = rx.wait_for(|b| !*b).await;
        }
    }

    /// Takes a snapshot now and waits for it; fails with `InProgress` when
    /// one is already running.
    pub(crate) async fn snapshot(
        self: &Arc<Self>,
        ks: &Keyspace,
        trigger: SnapshotTrigger,
    ) -> Result<SnapshotInfo, SnapshotError> {
        self.try_claim(trigger)?;
        self.run_claimed(ks, trigger, true).await
    }

    /// Takes a snapshot, waiting for a running one to finish first.
    pub(crate) async fn snapshot_after_running(
        self: &Arc<Self>,
        ks: &Keyspace,
        trigger: SnapshotTrigger,
    ) -> Result<SnapshotInfo, SnapshotError> {
        self.claim_when_free(trigger).await?;
        self.run_claimed(ks, trigger, true).await
    }

    /// Starts a background snapshot; `Err(InProgress)` if one runs.
    pub(crate) fn start_background(
        self: &Arc<Self>,
        ks: &Keyspace,
        trigger: SnapshotTrigger,
    ) -> Result<(), SnapshotError> {
        self.try_claim(trigger)?;
        self.spawn_claimed(ks.clone(), trigger, true);
        Ok(())
    }

    /// `BGSAVE SCHEDULE`: starts one now, or after the running one.
    /// Returns whether it started now.
    pub(crate) fn schedule_background(
        self: &Arc<Self>,
        ks: &Keyspace,
    ) -> Result<bool, SnapshotError> {
        match self.start_background(ks, SnapshotTrigger::Bgsave) {
            Ok(()) => Ok(true),
            Err(SnapshotError::InProgress) => {
                let mut st = self.state.lock();
                if st.running.is_some() {
                    st.scheduled = true;
                    return Ok(false);
                }
                drop(st);
                // It finished in between: start it now.
                self.start_background(ks, SnapshotTrigger::Bgsave)
                    .map(|()| true)
            }
            Err(e) => Err(e),
        }
    }

    fn spawn_claimed(
        self: &Arc<Self>,
        ks: Keyspace,
        trigger: SnapshotTrigger,
        reset_changes: bool,
    ) {
        let me = Arc::clone(self);
        self.runtime.spawn(async move {
            let _ = me.run_claimed(&ks, trigger, reset_changes).await;
        });
    }

    /// A snapshot for FLUSHALL with save points: like Redis it does not
    /// reset the change counter (the flush itself still counts as unsaved).
    pub(crate) async fn snapshot_for_flushall(
        self: &Arc<Self>,
        ks: &Keyspace,
    ) -> Result<SnapshotInfo, SnapshotError> {
        self.claim_when_free(SnapshotTrigger::Flushall).await?;
        self.run_claimed(ks, SnapshotTrigger::Flushall, false).await
    }

    /// Writes a snapshot with the slot already claimed; always releases it.
    async fn run_claimed(
        self: &Arc<Self>,
        ks: &Keyspace,
        trigger: SnapshotTrigger,
        reset_changes: bool,
    ) -> Result<SnapshotInfo, SnapshotError> {
        let started = Instant::now();
        let store = self.store.lock().clone();
        let result = match store {
            None => Err(SnapshotError::Stopped),
            Some(store) => {
                // Read before the view: changes after this reading are
                // either in the view or counted as unsaved — never lost.
                let changes = ks.changes();
                match ks.view() {
                    Err(e) => Err(SnapshotError::View(e.to_string())),
                    Ok(view) => {
                        match write_on_thread(store, view, runs_in_background(trigger)).await {
                            Ok(Ok(info)) => Ok((info, changes)),
                            Ok(Err(e)) => Err(SnapshotError::Store(Arc::new(e))),
                            Err(e) => Err(SnapshotError::Task(e)),
                        }
                    }
                }
            }
        };
        let result = result.map(|((generation, keys, bytes), changes)| {
            (
                SnapshotInfo {
                    generation,
                    keys,
                    bytes,
                    duration: started.elapsed(),
                },
                changes,
            )
        });
        self.finish(ks, trigger, reset_changes, result)
    }

    fn finish(
        self: &Arc<Self>,
        ks: &Keyspace,
        trigger: SnapshotTrigger,
        reset_changes: bool,
        result: Result<(SnapshotInfo, u64), SnapshotError>,
    ) -> Result<SnapshotInfo, SnapshotError> {
        let slow = self.settings.lock().slow_threshold;
        // Logged before the state says "done", so whoever sees the snapshot
        // finished in INFO also finds its log line.
        match &result {
            Ok((info, _)) => {
                let ms = info.duration.as_millis() as u64;
                info!(
                    trigger = trigger.name(),
                    "snapshot committed generation={} keys={} bytes={} duration_ms={ms}",
                    info.generation,
                    info.keys,
                    info.bytes
                );
                if info.duration > slow {
                    warn!(
                        generation = info.generation,
                        duration_ms = ms,
                        threshold_ms = slow.as_millis() as u64,
                        "slow snapshot: took longer than slow_snapshot_threshold"
                    );
                }
            }
            Err(e) => error!(trigger = trigger.name(), error = %e, "snapshot failed: {e}"),
        }
        let run_scheduled;
        let outcome = {
            let mut st = self.state.lock();
            let elapsed = st.running.map_or(Duration::ZERO, |(t, _)| t.elapsed());
            st.running = None;
            st.last_attempt = Instant::now();
            st.last_duration_sec = i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX);
            run_scheduled = std::mem::take(&mut st.scheduled);
            match result {
                Ok((info, changes)) => {
                    st.last_ok = true;
                    st.last_error = None;
                    st.saves += 1;
                    st.last_save_unix = unix_now();
                    st.generation = Some(info.generation);
                    st.last_bytes = info.bytes;
                    st.last_keys = info.keys;
                    if reset_changes {
                        st.changes_base = st.changes_base.max(changes);
                    }
                    Ok(info)
                }
                Err(e) => {
                    st.last_ok = false;
                    st.failures += 1;
                    st.last_error = Some(e.to_string());
                    Err(e)
                }
            }
        };
        self.busy.send_replace(false);
        let _ = self.events.send(SnapshotOutcome {
            trigger,
            result: outcome.clone(),
        });
        if run_scheduled {
            let _ = self.start_background(ks, SnapshotTrigger::Bgsave);
        }
        outcome
    }

    /// Whether the timer should start a snapshot now, and for which reason.
    pub(crate) fn due(&self, ks: &Keyspace) -> Option<SnapshotTrigger> {
        if !self.enabled {
            return None;
        }
        let settings = self.settings.lock().clone();
        let st = self.state.lock();
        if st.running.is_some() || st.shutting_down {
            return None;
        }
        let changes = ks.changes().saturating_sub(st.changes_base);
        if changes == 0 {
            return None;
        }
        let since_attempt = st.last_attempt.elapsed();
        let may_retry = st.last_ok || since_attempt >= RETRY_DELAY;
        if !may_retry {
            return None;
        }
        let since_save = u64::try_from(unix_now().saturating_sub(st.last_save_unix)).unwrap_or(0);
        if settings
            .save
            .iter()
            .any(|p| changes >= p.changes && since_save > p.seconds)
        {
            return Some(SnapshotTrigger::SavePoint);
        }
        let interval_wait = if st.last_ok {
            settings.interval
        } else {
            settings.interval.min(RETRY_DELAY)
        };
        if !settings.interval.is_zero() && since_attempt >= interval_wait {
            return Some(SnapshotTrigger::Interval);
        }
        None
    }

    pub(crate) fn save_points(&self) -> Vec<SavePoint> {
        self.settings.lock().save.clone()
    }

    pub(crate) fn set_save_points(&self, points: Vec<SavePoint>) {
        self.settings.lock().save = points;
    }

    /// The `-MISCONF` condition: the last snapshot failed and
    /// `stop_writes_on_snapshot_error` is on.
    pub(crate) fn writes_refused(&self) -> bool {
        self.enabled && self.settings.lock().stop_writes && !self.state.lock().last_ok
    }

    /// Whether the last snapshot failed (persistence enabled).
    pub(crate) fn snapshot_failing(&self) -> bool {
        self.enabled && !self.state.lock().last_ok
    }

    /// `CONFIG SET stop-writes-on-bgsave-error`, as the timer picks it up.
    pub(crate) fn set_stop_writes(&self, yes: bool) {
        self.settings.lock().stop_writes = yes;
    }

    pub(crate) fn last_save_unix(&self) -> i64 {
        self.state.lock().last_save_unix
    }

    pub(crate) fn changes_base(&self) -> u64 {
        self.state.lock().changes_base
    }

    /// Marks a shutdown as started; `false` if one already is.
    pub(crate) fn begin_shutdown(&self) -> bool {
        let mut st = self.state.lock();
        if st.shutting_down {
            return false;
        }
        st.shutting_down = true;
        st.abort_shutdown = false;
        true
    }

    /// Ends a shutdown that did not stop the server; returns whether it had
    /// been asked to abort.
    pub(crate) fn end_shutdown(&self) -> bool {
        let mut st = self.state.lock();
        st.shutting_down = false;
        std::mem::take(&mut st.abort_shutdown)
    }

    pub(crate) fn shutdown_aborted(&self) -> bool {
        self.state.lock().abort_shutdown
    }

    /// `SHUTDOWN ABORT`: `false` when no shutdown is in progress.
    pub(crate) fn abort_shutdown(&self) -> bool {
        let mut st = self.state.lock();
        if !st.shutting_down {
            return false;
        }
        st.abort_shutdown = true;
        true
    }

    /// Releases the data directory (after the server stopped).
    ///
    /// Waits for a snapshot still running (a save point or BGSAVE that
    /// started while the shutdown was under way): its writer holds a clone
    /// of the store, and with it the directory lock, so returning earlier
    /// would let a new server on the same directory fail with `Locked`.
    pub(crate) async fn close(&self) {
        let claimed = self
            .claim_when_free(SnapshotTrigger::Shutdown)
            .await
            .is_ok();
        self.store.lock().take();
        if claimed {
            self.state.lock().running = None;
            self.busy.send_replace(false);
        }
    }

    pub(crate) fn status(&self, ks: &Keyspace) -> PersistenceStatus {
        let writes_refused = self.writes_refused();
        let st = self.state.lock();
        PersistenceStatus {
            enabled: self.enabled,
            data_dir: self.data_dir.clone(),
            changes_since_last_save: ks.changes().saturating_sub(st.changes_base),
            in_progress: st.running.is_some(),
            last_save_time: st.last_save_unix,
            last_status_ok: st.last_ok,
            last_duration_sec: st.last_duration_sec,
            saves: st.saves,
            failures: st.failures,
            last_error: st.last_error.clone(),
            current_generation: st.generation,
            last_snapshot_bytes: st.last_bytes,
            last_snapshot_keys: st.last_keys,
            last_load_keys_loaded: st.load_loaded,
            last_load_keys_expired: st.load_expired,
            quarantined_generations: if self.enabled {
                count_quarantined(&self.data_dir)
            } else {
                0
            },
            writes_refused,
        }
    }

    /// Seconds the running snapshot has taken so far (-1: none runs).
    pub(crate) fn current_duration_sec(&self) -> i64 {
        self.state.lock().running.map_or(-1, |(t, _)| {
            i64::try_from(t.elapsed().as_secs()).unwrap_or(i64::MAX)
        })
    }
}

fn count_quarantined(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir.join("quarantine"))
        .map_or(0, |rd| rd.filter_map(Result::ok).count() as u64)
}

/// Whether nobody waits for this snapshot (`BGSAVE`, the timer, save
/// points): it then yields the CPU to the commands being served.
fn runs_in_background(trigger: SnapshotTrigger) -> bool {
    match trigger {
        SnapshotTrigger::Bgsave | SnapshotTrigger::Interval | SnapshotTrigger::SavePoint => true,
        SnapshotTrigger::Save
        | SnapshotTrigger::Flushall
        | SnapshotTrigger::Shutdown
        | SnapshotTrigger::Api => false,
    }
}

/// Runs a snapshot on two threads of its own. A walker copies the view out
/// of the keyspace; the writer encodes the entries and hands them to the
/// store (whose ingestion thread it spawns, and which inherits its
/// priority). For a background snapshot the writer runs at `SCHED_IDLE`; the
/// walker, which holds shard locks, stays at normal priority and yields the
/// CPU after every chunk: see [`priority`] and [`walk_view`].
/// Batches pass through a small bounded channel, so the walk never runs far
/// ahead of the writer and memory stays flat.
///
/// Not on tokio's blocking pool: a thread cannot raise its priority back
/// without privileges, and pool threads are reused. `Err`: a thread could
/// not be started or panicked.
async fn write_on_thread(
    store: Store,
    view: View,
    background: bool,
) -> Result<Result<(u64, u64, u64), cairn_store::Error>, String> {
    let (batches_tx, batches_rx) = std::sync::mpsc::sync_channel(WALK_BATCHES_IN_FLIGHT);
    let walker = std::thread::Builder::new()
        .name("cairn-snapshot-walk".into())
        .spawn(move || walk_view(view, &batches_tx))
        .map_err(|e| format!("cannot start the snapshot walker thread: {e}"))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let writer = std::thread::Builder::new()
        .name("cairn-snapshot".into())
        .spawn(move || {
            if background {
                priority::lower_to_idle();
            }
            let result = write_walked(&store, &batches_rx);
            // Stop the walker early when writing failed.
            drop(batches_rx);
            // Release the store (and its directory lock) before reporting:
            // whoever awaits the result may close the store and expect the
            // directory free.
            drop(store);
            let _ = tx.send(result);
        });
    let writer = match writer {
        Ok(handle) => handle,
        Err(e) => {
            // The walker stops once the receiver (moved into the failed
            // closure) is gone.
            let _ = walker.join();
            return Err(format!("cannot start the snapshot thread: {e}"));
        }
    };
    let result = rx.await;
    // Both threads are finished or about to be: joining cannot block the
    // runtime for long, and a panic in either must not go unnoticed.
    let walked = tokio::task::spawn_blocking(move || (walker.join(), writer.join()))
        .await
        .map_err(|e| format!("cannot join the snapshot threads: {e}"))?;
    match (result, walked) {
        (Ok(Ok(Some(done))), (Ok(()), Ok(()))) => Ok(Ok(done)),
        // A write error is the snapshot's error whatever the walker did.
        (Ok(Err(e)), (_, Ok(()))) => Ok(Err(e)),
        (Ok(Ok(None)), _) | (_, (Err(_), _)) => {
            Err("the snapshot walker thread stopped before the end of the view".to_string())
        }
        _ => Err("the snapshot thread panicked".to_string()),
    }
}

/// What the walker sends the writer.
enum Walked {
    Batch(Vec<ViewEntry>),
    /// The view is exhausted: only now may the generation be committed.
    End,
}

/// Batches of view entries queued between the walker and the writer.
const WALK_BATCHES_IN_FLIGHT: usize = 4;

/// Copies the view out in batches of about [`VIEW_BATCH`] entries until it is
/// exhausted or the writer hangs up; dropping the view at the end lets
/// writers stop preserving old versions before the (fsync-heavy) commit.
///
/// Each `next_batch` copies about one chunk under one shard lock (tens of
/// microseconds). At normal priority the scheduler does not preempt a thread
/// that just started running for a woken one, so the lock is not left held
/// by a parked thread; yielding after every chunk, outside the lock, lets
/// every runnable command thread go first, so the walk takes only CPU time
/// that commands leave over. Measured (`cargo xtask bench latency`, 3 rounds,
/// 2 cores): p99 during a BGSAVE 2.06x the p99 without one, against 3.5x with
/// the walk at `nice 10` and 6.1x at normal priority without yielding; 1.4x
/// (5 rounds) once chunks were copied with their allocations made outside
/// the shard lock.
fn walk_view(mut view: View, out: &std::sync::mpsc::SyncSender<Walked>) {
    let mut batch = Vec::with_capacity(VIEW_BATCH);
    while let Some(mut chunk) = view.next_batch(VIEW_BATCH - batch.len()) {
        std::thread::yield_now();
        batch.append(&mut chunk);
        if batch.len() >= VIEW_BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(VIEW_BATCH));
            if out.send(Walked::Batch(full)).is_err() {
                return;
            }
        }
    }
    drop(view);
    if !batch.is_empty() && out.send(Walked::Batch(batch)).is_err() {
        return;
    }
    let _ = out.send(Walked::End);
}

/// Maps and writes every entry the walker sends into a new generation and
/// commits it once the walker reports the end of the view. Returns
/// (generation, keys, bytes), or `None` when the walker vanished before the
/// end (the unfinished generation is discarded, never committed).
fn write_walked(
    store: &Store,
    walked: &std::sync::mpsc::Receiver<Walked>,
) -> Result<Option<(u64, u64, u64)>, cairn_store::Error> {
    let mut writer = store.begin()?;
    let chunker = Chunker::new();
    let mut keys = 0u64;
    loop {
        match walked.recv() {
            Ok(Walked::Batch(batch)) => {
                for entry in batch {
                    keys += 1;
                    for record in mapping::entry_records(entry, &chunker) {
                        writer.write(&record)?;
                    }
                }
            }
            Ok(Walked::End) => break,
            Err(_) => return Ok(None),
        }
    }
    let committed = writer.commit()?;
    Ok(Some((committed.generation, keys, committed.bytes)))
}
