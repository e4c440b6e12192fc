//! cairn: a Redis-compatible in-memory server whose data survives restarts.
//!
//! This crate composes the others: [`Server`] builds a keyspace
//! (`cairn-keyspace`), serves it over RESP (`cairn-resp`), persists it as
//! snapshot generations (`cairn-persist`, over `cairn-snapshot` and
//! `cairn-store`), and owns the shutdown sequence: the SHUTDOWN command and
//! what SIGTERM and SIGINT do. The `cairn-server` binary is a thin wrapper
//! over the same API.
//!
//! A [`ServerHandle`] reports its address, takes snapshots on demand
//! ([`ServerHandle::snapshot_now`]), reports every snapshot's outcome
//! ([`ServerHandle::subscribe_snapshots`]) and the `INFO persistence`
//! numbers ([`ServerHandle::persistence_status`]), and stops the server
//! with a final snapshot ([`ServerHandle::shutdown`]).
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use cairn_server::Server;
//!
//! let dir = tempfile::tempdir()?;
//! let handle = Server::builder().port(0).data_dir(dir.path().join("data")).build().start().await?;
//! assert_ne!(handle.addr().port(), 0); // the real port
//! handle.keyspace().session().command(&["SET", "k", "v"]);
//! let snap = handle.snapshot_now().await?; // waits for the commit
//! assert_eq!(snap.keys, 1);
//! handle.shutdown().await?; // takes the shutdown snapshot
//!
//! // The data is back after a restart.
//! let handle = Server::builder().port(0).data_dir(dir.path().join("data")).build().start().await?;
//! assert_eq!(handle.persistence_status().last_load_keys_loaded, 1);
//! handle.shutdown().await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
mod counted;
mod fdlimit;
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
mod jemalloc;
mod loglevel;
mod server;
mod shutdown;

pub use cairn_persist::{
    OnCorrupt, PersistenceStatus, RestoreError, SavePoint, SnapshotError, SnapshotEvents,
    SnapshotInfo, SnapshotOutcome, SnapshotTrigger,
};

/// What a program hands the server about its allocator (see
/// [`ServerBuilder::allocator_stats`]).
pub use cairn_keyspace::{AllocatorReading, AllocatorStats};

pub use crate::counted::{CountedStats, CountedSystem, counted_system};

#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
pub use crate::jemalloc::JemallocStats;

pub use crate::{
    config::{Config, ConfigError, ProtectedAction},
    loglevel::{LogLevel, LogLevelHook},
    server::{Server, ServerBuilder, ServerHandle, StartError},
    shutdown::{ShutdownError, ShutdownOptions, Signal, SignalAction},
};
