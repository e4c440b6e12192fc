//! What the pipeline reports: what started a snapshot, how it ended, the
//! subscription to outcomes, and the numbers `INFO persistence` shows.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

/// What started a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotTrigger {
    /// The `SAVE` command.
    Save,
    /// The `BGSAVE` command (or a scheduled one).
    Bgsave,
    /// The periodic timer (`snapshot_interval`).
    Interval,
    /// A Redis save point (`save <seconds> <changes>`).
    SavePoint,
    /// `FLUSHALL` while save points are configured, as Redis does.
    Flushall,
    /// The shutdown snapshot.
    Shutdown,
    /// `snapshot_now` of the embedding API (`Persistence::snapshot_now`).
    Api,
    /// `DEBUG RELOAD` (saved, then loaded back).
    DebugReload,
}

impl SnapshotTrigger {
    /// A short name for logs.
    pub fn name(self) -> &'static str {
        match self {
            SnapshotTrigger::Save => "save",
            SnapshotTrigger::Bgsave => "bgsave",
            SnapshotTrigger::Interval => "interval",
            SnapshotTrigger::SavePoint => "save-point",
            SnapshotTrigger::Flushall => "flushall",
            SnapshotTrigger::Shutdown => "shutdown",
            SnapshotTrigger::Api => "api",
            SnapshotTrigger::DebugReload => "debug-reload",
        }
    }
}

/// A committed snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnapshotInfo {
    /// The generation number it was committed as.
    pub generation: u64,
    /// Keys written.
    pub keys: u64,
    /// Bytes the generation takes on disk.
    pub bytes: u64,
    /// Wall time from taking the view to the commit.
    pub duration: Duration,
}

/// Why a snapshot was not taken or did not commit.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The server runs with `persistence = false`.
    #[error("persistence is disabled (--persistence false)")]
    Disabled,
    /// Another snapshot is being written.
    #[error("a snapshot is already in progress")]
    InProgress,
    /// The keyspace refused a point-in-time view (another view is alive,
    /// e.g. one held by the embedding program).
    #[error("cannot take a keyspace view: {0}")]
    View(String),
    /// The store failed to write or commit the generation.
    #[error(transparent)]
    Store(Arc<cairn_store::Error>),
    /// The server has stopped; its data directory is closed.
    #[error("the server has stopped")]
    Stopped,
    /// The snapshot task panicked or was cancelled.
    #[error("snapshot task failed: {0}")]
    Task(String),
}

/// One completed snapshot, successful or not, whatever triggered it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SnapshotOutcome {
    /// What started it.
    pub trigger: SnapshotTrigger,
    /// The committed snapshot, or why it failed.
    pub result: Result<SnapshotInfo, SnapshotError>,
}

/// A subscription to snapshot outcomes; see
/// [`Persistence::subscribe`](crate::Persistence::subscribe).
pub struct SnapshotEvents {
    pub(crate) rx: broadcast::Receiver<SnapshotOutcome>,
}

impl SnapshotEvents {
    /// The next snapshot to complete after the subscription was made.
    ///
    /// If the subscriber fell far behind, the oldest missed outcomes are
    /// skipped. Once the server is gone, returns an outcome whose result is
    /// [`SnapshotError::Stopped`].
    pub async fn next(&mut self) -> SnapshotOutcome {
        loop {
            match self.rx.recv().await {
                Ok(o) => return o,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => {
                    return SnapshotOutcome {
                        trigger: SnapshotTrigger::Api,
                        result: Err(SnapshotError::Stopped),
                    };
                }
            }
        }
    }
}

/// The persistence numbers `INFO persistence` reports, as a struct.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PersistenceStatus {
    /// Whether persistence is enabled.
    pub enabled: bool,
    /// The data directory (even when disabled: it is simply not used).
    pub data_dir: std::path::PathBuf,
    /// `rdb_changes_since_last_save`.
    pub changes_since_last_save: u64,
    /// `rdb_bgsave_in_progress`: a snapshot is being written.
    pub in_progress: bool,
    /// `rdb_last_save_time`: unix seconds of the last successful snapshot
    /// (the start time before the first one).
    pub last_save_time: i64,
    /// `rdb_last_bgsave_status`: whether the last snapshot succeeded.
    pub last_status_ok: bool,
    /// `rdb_last_bgsave_time_sec`: seconds the last snapshot took (-1: none yet).
    pub last_duration_sec: i64,
    /// `rdb_saves`: successful snapshots since start.
    pub saves: u64,
    /// `cairn_snapshot_failures`: failed snapshots since start.
    pub failures: u64,
    /// `cairn_last_snapshot_error`: the last failure's message.
    pub last_error: Option<String>,
    /// `cairn_current_generation`: the committed generation (loaded or written).
    pub current_generation: Option<u64>,
    /// `cairn_last_snapshot_bytes`.
    pub last_snapshot_bytes: u64,
    /// `cairn_last_snapshot_keys`.
    pub last_snapshot_keys: u64,
    /// `rdb_last_load_keys_loaded`.
    pub last_load_keys_loaded: u64,
    /// `rdb_last_load_keys_expired`.
    pub last_load_keys_expired: u64,
    /// `cairn_quarantined_generations`: entries in `quarantine/`.
    pub quarantined_generations: u64,
    /// `cairn_quarantined_bytes`: disk space they take.
    pub quarantined_bytes: u64,
    /// `cairn_generations_on_disk`: sealed generations kept.
    pub generations_on_disk: u64,
    /// `cairn_generations_bytes`: disk space they take.
    pub generations_bytes: u64,
    /// Whether writes are refused with `-MISCONF` now.
    pub writes_refused: bool,
}
