//! cairn's snapshot pipeline: point-in-time views of the keyspace written
//! as store generations, restored at start.
//!
//! [`Persistence`] owns a data directory ([`cairn_store::Store`]) and runs
//! one snapshot at a time: it captures a keyspace view (a pause of
//! O(shards)) at the instant a snapshot is asked for — inside the SAVE or
//! BGSAVE command itself, so its cut is between that command and the next
//! — then a walker thread copies the view out and a writer thread maps,
//! encodes and commits it while clients go on. It also keeps Redis' save
//! points and a periodic timer, restores the newest good generation at
//! start, and registers into the keyspace as an [`Extension`] that serves
//! SAVE, BGSAVE, LASTSAVE, `INFO persistence`, `CONFIG SET save` and the
//! `-MISCONF` refusal of writes while snapshots fail. Everything a command
//! reads is kept in memory, so no command ever waits on the disk.
//!
//! - [`PersistConfig`], [`SavePoint`] (and [`parse_save`], the one parser
//!   of Redis' `save` syntax), [`OnCorrupt`]: configuration.
//! - [`Persistence`]: open, restore, snapshot, subscribe, status, close.
//! - [`SnapshotTrigger`], [`SnapshotInfo`], [`SnapshotError`],
//!   [`SnapshotOutcome`], [`SnapshotEvents`], [`PersistenceStatus`]: what
//!   it reports.
//!
//! The mapping between keyspace values and snapshot records lives here and
//! nowhere else: the keyspace knows nothing of files, the store nothing of
//! Redis.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use cairn_keyspace::Keyspace;
//! use cairn_persist::{PersistConfig, Persistence, SnapshotTrigger};
//!
//! let dir = tempfile::tempdir()?;
//! let config = PersistConfig::new(dir.path().join("data"));
//! let p = Persistence::open(&config)?;
//! let ks = Keyspace::builder().extension(p.extension()).build();
//! ks.session().command(&["SET", "k", "v"]);
//! let info = p.snapshot_after_running(&ks, SnapshotTrigger::Api).await?;
//! assert_eq!(info.keys, 1);
//! p.close().await;
//!
//! // A new keyspace restored from the same directory holds the key.
//! let p = Persistence::open(&config)?;
//! let ks = Keyspace::builder().extension(p.extension()).build();
//! p.restore(&ks)?;
//! assert_eq!(ks.dbsize(0), 1);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod commands;
mod config;
mod events;
mod manager;
mod mapping;
mod pace;
mod pipeline;
mod stream_items;

pub use crate::{
    config::{
        OnCorrupt, ParseOnCorruptError, ParseSaveError, PersistConfig, SavePoint, format_save,
        parse_save,
    },
    events::{
        PersistenceStatus, SnapshotError, SnapshotEvents, SnapshotInfo, SnapshotOutcome,
        SnapshotTrigger,
    },
    manager::{Persistence, RestoreError},
};

#[doc(no_inline)]
pub use cairn_keyspace::Extension;
