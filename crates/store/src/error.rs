//! The store's error type.

use std::path::PathBuf;

/// Why a generation was rejected while loading; also the suffix of its
/// directory name under `quarantine/`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Damage {
    /// The generation directory named by `CURRENT` does not exist.
    Missing,
    /// The seal file is absent, unreadable or fails its own checksum, or it
    /// disagrees with `CURRENT`.
    Seal(String),
    /// The directory holds an entry fjall never creates (checked before fjall
    /// sees the directory, because fjall aborts the process on some of them).
    ForeignEntry(PathBuf),
    /// The database files differ from the generation's `MANIFEST` (a file
    /// added, missing, resized or changed), or the manifest is damaged.
    /// Checked before fjall opens anything.
    Files(String),
    /// fjall refused to open or read the database (missing or truncated
    /// table, block checksum, journal damage).
    Fjall(String),
    /// A record, the header or the footer failed to decode (CRC mismatch,
    /// truncation, unknown tag).
    Record(String),
    /// Sequence keys are not the contiguous run `1..=n`: records were lost
    /// or a foreign key was added.
    Sequence(String),
    /// The number of records differs from the footer or the seal.
    Count {
        /// Count promised by the seal (and `CURRENT`).
        expected: u64,
        /// Count actually read.
        actual: u64,
    },
    /// The digest over the framed records differs from the footer or seal.
    Digest,
    /// The header names a format version this build cannot read.
    Version(u32),
}

impl Damage {
    /// Short machine-friendly slug used in quarantine directory names.
    pub fn slug(&self) -> &'static str {
        match self {
            Damage::Missing => "missing",
            Damage::Seal(_) => "seal",
            Damage::ForeignEntry(_) => "foreign-entry",
            Damage::Files(_) => "files",
            Damage::Fjall(_) => "fjall",
            Damage::Record(_) => "record",
            Damage::Sequence(_) => "sequence",
            Damage::Count { .. } => "count",
            Damage::Digest => "digest",
            Damage::Version(_) => "version",
        }
    }
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Missing => write!(f, "generation directory is missing"),
            Damage::Seal(why) => write!(f, "bad seal: {why}"),
            Damage::ForeignEntry(p) => {
                write!(f, "unexpected entry {}", p.display())
            }
            Damage::Files(why) => write!(f, "database files: {why}"),
            Damage::Fjall(why) => write!(f, "fjall: {why}"),
            Damage::Record(why) => write!(f, "bad record: {why}"),
            Damage::Sequence(why) => write!(f, "record sequence: {why}"),
            Damage::Count { expected, actual } => write!(
                f,
                "record count mismatch: expected {expected}, read {actual}"
            ),
            Damage::Digest => write!(f, "record digest mismatch"),
            Damage::Version(v) => write!(f, "unsupported format version {v}"),
        }
    }
}

/// What [`LoadPolicy::Refuse`](crate::LoadPolicy::Refuse) found damaged
/// (see [`Error::Refused`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Corruption {
    /// `CURRENT` is unreadable (bad length, magic or checksum), or it is
    /// missing while sealed generations exist.
    Current(String),
    /// The generation `CURRENT` names failed verification.
    Generation {
        /// Its number.
        generation: u64,
        /// What was wrong.
        damage: Damage,
    },
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Corruption::Current(why) => write!(f, "CURRENT is damaged ({why})"),
            Corruption::Generation { generation, damage } => {
                write!(f, "generation {generation} is damaged ({damage})")
            }
        }
    }
}

/// Errors returned by the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error, with the path it concerns.
    #[error("cairn store: I/O error on {path}: {source}")]
    Io {
        /// File or directory the operation was about.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// fjall failed while writing a generation, or failed while reading
    /// one for a reason that is not proof of damage (for example its
    /// database lock is held elsewhere).
    #[error("cairn store: fjall error in {path}: {source}")]
    Fjall {
        /// The generation's database directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: fjall::Error,
    },
    /// The record codec refused a record while writing.
    #[error("cairn store: snapshot codec: {0}")]
    Snapshot(#[from] cairn_snapshot::Error),
    /// Another `Store` (in this or another process) holds the data directory.
    #[error(
        "cairn store: data directory {dir} is locked by another process or \
         Store instance"
    )]
    Locked {
        /// The data directory.
        dir: PathBuf,
    },
    /// A writer is already active on this store.
    #[error("cairn store: a snapshot write is already in progress")]
    Busy,
    /// No committed generation passed verification and the policy was
    /// [`LoadPolicy::Fallback`](crate::LoadPolicy::Fallback).
    #[error(
        "cairn store: no valid generation in {dir} ({failures} failed \
         verification)"
    )]
    NoValidGeneration {
        /// The data directory.
        dir: PathBuf,
        /// How many candidate generations were rejected.
        failures: usize,
    },
    /// Damage was found and the policy was
    /// [`LoadPolicy::Refuse`](crate::LoadPolicy::Refuse): the load stopped
    /// before changing anything in the data directory (nothing quarantined,
    /// `CURRENT` and `VERIFIED` as they were), so every later load with
    /// that policy refuses again until one with another policy runs.
    #[error(
        "cairn store: {corruption} in {dir}; nothing was changed (load \
         policy refuse)"
    )]
    Refused {
        /// The data directory.
        dir: PathBuf,
        /// What is damaged.
        corruption: Corruption,
    },
    /// A generation that had to be good failed verification: a freshly
    /// written one under verify-after-write (it was quarantined and
    /// `CURRENT` was not switched), or the one given to
    /// `testing::rewrite_generation`.
    #[error("cairn store: generation {generation} failed verification: {damage}")]
    Damaged {
        /// The generation.
        generation: u64,
        /// What was wrong.
        damage: Damage,
    },
    /// The load sink refused a record; loading stopped without fallback
    /// because the data on disk is not at fault.
    #[error("cairn store: load sink failed: {0}")]
    Sink(#[source] SinkError),
    /// A framed record passed to `write_encoded` is malformed.
    #[error("cairn store: malformed framed record: {0}")]
    Framing(String),
}

/// The error type a [`LoadSink`](crate::LoadSink) may return.
pub type SinkError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The store's result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches a path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
