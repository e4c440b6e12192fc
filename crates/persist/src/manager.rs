//! [`Persistence`]: one snapshot at a time, captured as a keyspace view at
//! the instant it is asked for and written by threads of its own while
//! clients go on; the periodic timer and Redis save points; restore at
//! start; the numbers INFO reports, kept in memory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cairn_keyspace::{Extension, Keyspace, View};
use cairn_store::{LoadPolicy, Store};
use parking_lot::Mutex;
use tokio::sync::{broadcast, watch};
use tracing::{error, info, warn};

use crate::commands::PersistenceCommands;
use crate::config::{OnCorrupt, PersistConfig, SavePoint, format_save};
use crate::mapping::{KeyspaceSink, SinkFailure};
use crate::pipeline;
use crate::{
    PersistenceStatus, SnapshotError, SnapshotEvents, SnapshotInfo, SnapshotOutcome,
    SnapshotTrigger,
};

/// After a failed snapshot, save points and the interval retry no sooner
/// than this (Redis' `CONFIG_BGSAVE_RETRY_DELAY`).
const RETRY_DELAY: Duration = Duration::from_secs(5);
/// How often the timer checks save points, the interval and a scheduled
/// BGSAVE (Redis' cron runs at `hz 10`).
const TICK: Duration = Duration::from_millis(100);

/// Settings that `CONFIG SET` may change at run time.
#[derive(Clone, Debug)]
struct Settings {
    save: Vec<SavePoint>,
    interval: Duration,
    slow_threshold: Duration,
}

/// Everything about snapshots that INFO and the timer read. Only ever held
/// for a few field updates: never across I/O or a wait.
#[derive(Debug)]
struct State {
    /// A snapshot is being written, since this instant.
    running: Option<(Instant, SnapshotTrigger)>,
    /// A BGSAVE was scheduled (`BGSAVE SCHEDULE`, or BGSAVE inside EXEC):
    /// the timer starts it as soon as no snapshot runs.
    scheduled: bool,
    /// Background snapshots are held (a shutdown is under way).
    held: bool,
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
}

/// The persistence side of a running server, shared by the commands, the
/// timer, the shutdown sequence and the embedding handle.
///
/// It holds no `Keyspace` (the keyspace holds it, as a command extension):
/// callers pass the keyspace in, so dropping the server frees both.
pub struct Persistence {
    enabled: bool,
    data_dir: PathBuf,
    on_corrupt: OnCorrupt,
    /// `None` when disabled, or once closed (dropping the store releases
    /// the directory lock, so a restart in the same process can open it).
    store: Mutex<Option<Store>>,
    settings: Mutex<Settings>,
    state: Mutex<State>,
    /// The `-MISCONF` condition in two flags, so that the check every write
    /// makes is two atomic loads and never waits for anything.
    failing: AtomicBool,
    stop_writes: AtomicBool,
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

/// Why persistence could not open its directory or restore from it.
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
    /// The snapshot holds keys in databases this server does not have.
    /// Loading anyway would drop them, and the next snapshot would make the
    /// loss permanent.
    #[error(
        "cannot restore from {dir}: the snapshot (generation {generation}) holds keys in database {highest_db}, \
         but this server has {configured} databases; start with --databases {needed} (or more)"
    )]
    Databases {
        /// The directory.
        dir: PathBuf,
        /// The generation read.
        generation: u64,
        /// The highest database index found.
        highest_db: u32,
        /// How many databases the server was started with.
        configured: usize,
        /// How many it needs: `highest_db + 1`.
        needed: u64,
    },
    /// Called outside a tokio runtime (background snapshots need one).
    #[error("persistence must be opened inside a tokio runtime")]
    NoRuntime,
}

/// Why `DEBUG RELOAD` failed (the details are logged).
#[derive(Debug)]
pub(crate) enum ReloadError {
    /// The snapshot could not be taken: nothing changed.
    Save,
    /// Loading failed.
    Load,
}

/// Runs `f` on this thread, first handing the tokio worker's queued tasks
/// to other workers (a multi-thread runtime's `block_in_place`), so that
/// waiting here starves nobody.
fn off_the_worker<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Polls `fut` to completion on this thread, parking between wakes.
fn park_on<F: Future>(fut: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// A view captured for a snapshot whose slot is claimed.
struct Captured {
    view: View,
    /// `Keyspace::changes()` read just before the view: changes after this
    /// reading are either in the view or counted as unsaved, never lost.
    changes: u64,
    started: Instant,
}

impl Persistence {
    /// Opens the data directory (when enabled) without loading anything.
    /// Must be called inside a tokio runtime: background snapshots run on
    /// it.
    ///
    /// # Errors
    /// The directory cannot be created, read or locked
    /// ([`RestoreError::Open`]), or there is no runtime.
    pub fn open(config: &PersistConfig) -> Result<Arc<Persistence>, RestoreError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| RestoreError::NoRuntime)?;
        let store = if config.enabled {
            let s = Store::builder(&config.data_dir)
                .retain(config.retain_generations)
                .quarantine_retain(config.quarantine_retain)
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
        Ok(Arc::new(Persistence {
            enabled: config.enabled,
            data_dir,
            on_corrupt: config.on_corrupt,
            store: Mutex::new(store),
            settings: Mutex::new(Settings {
                save: config.save.clone(),
                interval: config.snapshot_interval,
                slow_threshold: config.slow_snapshot_threshold,
            }),
            state: Mutex::new(State {
                running: None,
                scheduled: false,
                held: false,
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
            }),
            failing: AtomicBool::new(false),
            stop_writes: AtomicBool::new(config.stop_writes_on_snapshot_error),
            busy,
            events,
            runtime,
        }))
    }

    /// The keyspace extension serving SAVE, BGSAVE, LASTSAVE,
    /// `INFO persistence`, the persistence parameters of `CONFIG SET`, the
    /// snapshot after FLUSHALL and the `-MISCONF` write gate. Register it
    /// with `KeyspaceBuilder::extension`, together with
    /// [`config_params`](Self::config_params).
    pub fn extension(self: &Arc<Self>) -> Arc<dyn Extension> {
        Arc::new(PersistenceCommands::new(Arc::clone(self)))
    }

    /// The `CONFIG GET` parameters this pipeline owns, with their current
    /// values: `save`, `dir`, `appendonly`, `stop-writes-on-bgsave-error`.
    pub fn config_params(&self) -> Vec<(&'static str, String)> {
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
        vec![
            ("save", format_save(&self.settings.lock().save)),
            ("dir", self.data_dir.display().to_string()),
            ("appendonly", "no".to_string()),
            (
                "stop-writes-on-bgsave-error",
                yes_no(self.stop_writes.load(Ordering::Relaxed)),
            ),
        ]
    }

    /// Whether snapshots are written and restored at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The data directory, absolute.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Loads the newest good generation into `ks`, as `on_corrupt` says
    /// (blocking: call it on a blocking thread, before serving clients).
    ///
    /// # Errors
    /// Loading failed, `on_corrupt = refuse` found damage, no generation
    /// is good under `fallback`, or the snapshot needs more databases than
    /// `ks` has. The keyspace is left empty.
    pub fn restore(&self, ks: &Keyspace) -> Result<(), RestoreError> {
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
        // any damage stops the start and leaves the directory exactly as it
        // is, so every later start refuses too until an operator decides
        // (see docs/operations.md).
        let policy = match self.on_corrupt {
            OnCorrupt::Fallback => LoadPolicy::Fallback,
            OnCorrupt::Empty => LoadPolicy::Empty,
            OnCorrupt::Refuse => LoadPolicy::Refuse,
        };
        let mut sink = KeyspaceSink::new(ks.clone());
        let report = store.load(&mut sink, policy).map_err(|e| {
            ks.flush_all();
            match e {
                cairn_store::Error::Refused { .. } => load_err(format!(
                    "{e}; to accept the newest good older data instead, start once with \
                     --on-corrupt fallback (or --on-corrupt empty); see docs/operations.md"
                )),
                e => load_err(e.to_string()),
            }
        })?;
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
        let counts = match sink.finish() {
            Ok(c) => c,
            Err(SinkFailure::Databases { highest_db }) => {
                ks.flush_all();
                return Err(RestoreError::Databases {
                    dir,
                    generation: report.generation.unwrap_or(0),
                    highest_db,
                    configured: ks.databases(),
                    needed: u64::from(highest_db) + 1,
                });
            }
            Err(SinkFailure::Chunks(e)) => {
                ks.flush_all();
                return Err(load_err(format!("incomplete chunked entry: {e}")));
            }
        };
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
    pub fn reset_changes(&self, ks: &Keyspace) {
        self.state.lock().changes_base = ks.changes();
    }

    /// Subscribes to the outcome of every snapshot completed from now on.
    pub fn subscribe(&self) -> SnapshotEvents {
        SnapshotEvents {
            rx: self.events.subscribe(),
        }
    }

    /// Whether a snapshot is being written.
    pub fn in_progress(&self) -> bool {
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

    /// Takes the view for a snapshot whose slot is claimed. Called either
    /// outside commands or inside an `EXCLUSIVE` command (SAVE, BGSAVE,
    /// FLUSHALL's hook), whose cut is then exactly between that command and
    /// the next. On failure the slot is released and the failure reported.
    fn capture(
        self: &Arc<Self>,
        ks: &Keyspace,
        trigger: SnapshotTrigger,
    ) -> Result<Captured, SnapshotError> {
        let started = Instant::now();
        let changes = ks.changes();
        match ks.view() {
            Ok(view) => Ok(Captured {
                view,
                changes,
                started,
            }),
            Err(e) => {
                let e = SnapshotError::View(e.to_string());
                let _ = self.finish(ks, trigger, false, Err(e.clone()));
                Err(e)
            }
        }
    }

    /// Writes a captured view and commits it; always releases the slot.
    async fn write(
        self: Arc<Self>,
        ks: Keyspace,
        trigger: SnapshotTrigger,
        captured: Captured,
        reset_changes: bool,
    ) -> Result<SnapshotInfo, SnapshotError> {
        let Captured {
            view,
            changes,
            started,
        } = captured;
        let store = self.store.lock().clone();
        let result = match store {
            None => Err(SnapshotError::Stopped),
            Some(store) => match pipeline::write_on_thread(store, view).await {
                Ok(Ok((generation, keys, bytes))) => Ok((
                    SnapshotInfo {
                        generation,
                        keys,
                        bytes,
                        duration: started.elapsed(),
                    },
                    changes,
                )),
                Ok(Err(e)) => Err(SnapshotError::Store(Arc::new(e))),
                Err(e) => Err(SnapshotError::Task(e)),
            },
        };
        self.finish(&ks, trigger, reset_changes, result)
    }

    /// Claims the slot, captures the view now, and writes it on the runtime.
    /// Returns the task's handle. For callers inside an `EXCLUSIVE` command
    /// or outside commands.
    fn start(
        self: &Arc<Self>,
        ks: &Keyspace,
        trigger: SnapshotTrigger,
        reset_changes: bool,
    ) -> Result<tokio::task::JoinHandle<Result<SnapshotInfo, SnapshotError>>, SnapshotError> {
        self.try_claim(trigger)?;
        let captured = self.capture(ks, trigger)?;
        let me = Arc::clone(self);
        Ok(self
            .runtime
            .spawn(me.write(ks.clone(), trigger, captured, reset_changes)))
    }

    /// SAVE: captures now and returns the writing task to wait on.
    pub(crate) fn save_now(
        self: &Arc<Self>,
        ks: &Keyspace,
    ) -> Result<tokio::task::JoinHandle<Result<SnapshotInfo, SnapshotError>>, SnapshotError> {
        self.start(ks, SnapshotTrigger::Save, true)
    }

    /// BGSAVE and the timer: captures now, writes in the background.
    /// `Err(InProgress)` if one runs.
    pub(crate) fn start_background(
        self: &Arc<Self>,
        ks: &Keyspace,
        trigger: SnapshotTrigger,
    ) -> Result<(), SnapshotError> {
        self.start(ks, trigger, true).map(|_| ())
    }

    /// `BGSAVE SCHEDULE` (and BGSAVE inside EXEC, `force_schedule`): starts
    /// one now when possible, or has the timer start it as soon as no
    /// snapshot runs. Returns whether it started now.
    pub(crate) fn schedule_background(
        self: &Arc<Self>,
        ks: &Keyspace,
        force_schedule: bool,
    ) -> Result<bool, SnapshotError> {
        if !self.enabled {
            return Err(SnapshotError::Disabled);
        }
        if !force_schedule {
            match self.start_background(ks, SnapshotTrigger::Bgsave) {
                Err(SnapshotError::InProgress) => {}
                other => return other.map(|()| true),
            }
        }
        self.state.lock().scheduled = true;
        Ok(false)
    }

    /// Redis' save after FLUSHALL when save points are set. Called inside
    /// FLUSHALL (the gate held for write): when no snapshot runs the view
    /// is the flushed state exactly; otherwise the save follows the running
    /// one. Like Redis it does not reset the change counter. The returned
    /// task ends when the save did.
    pub(crate) fn save_after_flushall(
        self: &Arc<Self>,
        ks: &Keyspace,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if !self.enabled || self.settings.lock().save.is_empty() {
            return None;
        }
        let trigger = SnapshotTrigger::Flushall;
        match self.start(ks, trigger, false) {
            Ok(task) => Some(self.runtime.spawn(async move {
                let _ = task.await;
            })),
            Err(SnapshotError::InProgress) => {
                let me = Arc::clone(self);
                let ks = ks.clone();
                Some(self.runtime.spawn(async move {
                    if me.claim_when_free(trigger).await.is_ok()
                        && let Ok(captured) = me.capture(&ks, trigger)
                    {
                        let _ = me.clone().write(ks, trigger, captured, false).await;
                    }
                }))
            }
            Err(_) => None,
        }
    }

    /// Takes a snapshot after the running one (if any) finished, and waits
    /// for its commit: everything written before the call is in it. For the
    /// embedding API and the shutdown snapshot; must not be called from
    /// inside a command.
    ///
    /// # Errors
    /// [`SnapshotError::Disabled`] without persistence, or why the snapshot
    /// failed (also logged, counted in INFO and sent to subscribers).
    pub async fn snapshot_after_running(
        self: &Arc<Self>,
        ks: &Keyspace,
        trigger: SnapshotTrigger,
    ) -> Result<SnapshotInfo, SnapshotError> {
        self.claim_when_free(trigger).await?;
        let captured = self.capture(ks, trigger)?;
        Arc::clone(self)
            .write(ks.clone(), trigger, captured, true)
            .await
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
        let outcome = {
            let mut st = self.state.lock();
            let elapsed = st.running.map_or(Duration::ZERO, |(t, _)| t.elapsed());
            st.running = None;
            st.last_attempt = Instant::now();
            st.last_duration_sec = i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX);
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
                    self.failing.store(false, Ordering::Release);
                    Ok(info)
                }
                Err(e) => {
                    st.last_ok = false;
                    st.failures += 1;
                    st.last_error = Some(e.to_string());
                    self.failing.store(true, Ordering::Release);
                    Err(e)
                }
            }
        };
        self.busy.send_replace(false);
        let _ = self.events.send(SnapshotOutcome {
            trigger,
            result: outcome.clone(),
        });
        let _ = ks;
        outcome
    }

    /// Whether the timer should start a snapshot now, and for which reason.
    fn due(&self, ks: &Keyspace) -> Option<SnapshotTrigger> {
        if !self.enabled {
            return None;
        }
        let settings = self.settings.lock().clone();
        let mut st = self.state.lock();
        if st.running.is_some() || st.held {
            return None;
        }
        if std::mem::take(&mut st.scheduled) {
            return Some(SnapshotTrigger::Bgsave);
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

    /// Starts background snapshots when a save point, the interval or a
    /// scheduled BGSAVE is due, every 100 ms until `stop` resolves. Spawn it
    /// once per server.
    pub async fn run_timer(self: Arc<Self>, ks: Keyspace, stop: impl Future<Output = ()>) {
        if !self.enabled {
            return;
        }
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    // Not while a busy script holds the keyspace: taking the
                    // view would wait for it on this async worker. The
                    // snapshot starts on a tick after the script.
                    if ks.is_busy() {
                        continue;
                    }
                    if let Some(trigger) = self.due(&ks) {
                        // InProgress only means another one got there first.
                        let _ = self.start_background(&ks, trigger);
                    }
                }
                () = &mut stop => break,
            }
        }
    }

    /// Replaces the save points (`CONFIG SET save`).
    pub(crate) fn set_save_points(&self, points: Vec<SavePoint>) {
        self.settings.lock().save = points;
    }

    /// `CONFIG SET stop-writes-on-bgsave-error`.
    pub(crate) fn set_stop_writes(&self, yes: bool) {
        self.stop_writes.store(yes, Ordering::Release);
    }

    /// The `-MISCONF` condition: the last snapshot failed and
    /// `stop-writes-on-bgsave-error` is on. Two atomic loads.
    pub fn writes_refused(&self) -> bool {
        self.enabled
            && self.failing.load(Ordering::Acquire)
            && self.stop_writes.load(Ordering::Acquire)
    }

    /// `LASTSAVE`: unix seconds of the last successful snapshot.
    pub fn last_save_unix(&self) -> i64 {
        self.state.lock().last_save_unix
    }

    /// `Keyspace::changes()` as of the last successful snapshot.
    pub fn changes_base(&self) -> u64 {
        self.state.lock().changes_base
    }

    /// Holds (or releases) background snapshots: the timer, save points and
    /// scheduled BGSAVEs start none while held. The shutdown sequence holds
    /// them while it takes its own snapshot.
    pub fn hold_background(&self, yes: bool) {
        self.state.lock().held = yes;
    }

    /// Releases the data directory (after the server stopped).
    ///
    /// Waits for a snapshot still running (a save point or BGSAVE that
    /// started while the shutdown was under way): its writer holds a clone
    /// of the store, and with it the directory lock, so returning earlier
    /// would let a new server on the same directory fail with `Locked`.
    pub async fn close(&self) {
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

    /// The numbers `INFO persistence` reports, from memory.
    pub fn status(&self, ks: &Keyspace) -> PersistenceStatus {
        let writes_refused = self.writes_refused();
        // The store keeps its disk usage in memory: no directory listing.
        let usage = self.store.lock().as_ref().map(Store::disk_usage);
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
            quarantined_generations: usage.as_ref().map_or(0, |u| u.quarantine.entries),
            quarantined_bytes: usage.as_ref().map_or(0, |u| u.quarantine.bytes),
            generations_on_disk: usage.as_ref().map_or(0, |u| u.generations),
            generations_bytes: usage.as_ref().map_or(0, |u| u.generation_bytes),
            writes_refused,
        }
    }

    /// `DEBUG RELOAD`: a snapshot taken now (unless `save` is false), the
    /// keyspace emptied by `empty` (unless `None`), and the newest
    /// generation loaded back, all on the calling thread. Called inside the
    /// DEBUG command, the gate held for write: nothing else runs in
    /// between, as in Redis, and the load inserts on this thread (an
    /// inserting thread would wait for the gate).
    pub(crate) fn debug_reload(
        self: &Arc<Self>,
        ks: &Keyspace,
        save: bool,
        empty: Option<&dyn Fn()>,
    ) -> Result<(), ReloadError> {
        let trigger = SnapshotTrigger::DebugReload;
        // The snapshot's async parts need the runtime's context; the wait
        // runs off the worker so the worker's queued tasks are not stuck.
        let _rt = self.runtime.enter();
        if save {
            let saved = off_the_worker(|| {
                park_on(async {
                    // A background snapshot under way ends first (Redis'
                    // synchronous save does not wait, but has no slot).
                    self.claim_when_free(trigger).await?;
                    let captured = self.capture(ks, trigger)?;
                    Arc::clone(self)
                        .write(ks.clone(), trigger, captured, true)
                        .await
                })
            });
            if let Err(e) = saved {
                error!(error = %e, "DEBUG RELOAD: the snapshot failed; nothing was reloaded");
                return Err(ReloadError::Save);
            }
        }
        let Some(store) = self.store.lock().clone() else {
            return Err(ReloadError::Load);
        };
        if store.current().is_none() {
            error!("DEBUG RELOAD NOSAVE: there is no snapshot to load");
            return Err(ReloadError::Load);
        }
        if let Some(empty) = empty {
            empty();
        }
        let mut sink = KeyspaceSink::inline(ks.clone());
        // Refuse: a damaged generation is reported, never quarantined nor
        // replaced by an older one behind the caller's back.
        let report = match store.load(&mut sink, LoadPolicy::Refuse) {
            Ok(r) => r,
            Err(e) => {
                error!(error = %e, "DEBUG RELOAD: loading failed");
                return Err(ReloadError::Load);
            }
        };
        let counts = match sink.finish() {
            Ok(c) => c,
            Err(_) => {
                error!("DEBUG RELOAD: the snapshot does not fit this keyspace");
                return Err(ReloadError::Load);
            }
        };
        let mut st = self.state.lock();
        st.generation = report.generation;
        st.load_loaded = counts.loaded;
        st.load_expired = counts.expired;
        Ok(())
    }

    /// Seconds the running snapshot has taken so far (-1: none runs).
    pub(crate) fn current_duration_sec(&self) -> i64 {
        self.state.lock().running.map_or(-1, |(t, _)| {
            i64::try_from(t.elapsed().as_secs()).unwrap_or(i64::MAX)
        })
    }
}
