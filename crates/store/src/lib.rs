//! fjall-backed snapshot generations for cairn: crash-atomic commit,
//! verified load, fallback and quarantine.
//!
//! A [`Store`] owns a data directory. Each snapshot is written as a new
//! *generation* (one fjall database filled by sorted ingestion, records
//! keyed by sequence number) and becomes the committed one through a single
//! atomic rename of the small `CURRENT` file. Loading verifies every
//! record's CRC32, the record count and the digest against the generation's
//! footer, its `SEAL` and `CURRENT`, and every fjall file against the
//! generation's `MANIFEST` before fjall opens it. On damage the
//! [`LoadPolicy`] decides: move the generation to `quarantine/` (kept up to
//! a bound) and load the previous one, or refuse without changing anything.
//! An I/O error is never taken for damage. The layout and the
//! crash-consistency argument are in `docs/snapshot-format.md`
//! ("On-disk store layout").
//!
//! - [`Store::begin`] returns a [`Writer`]; [`Writer::commit`] returns
//!   [`Committed`].
//! - [`Store::load`] streams to a [`LoadSink`] and returns a [`LoadReport`].
//! - [`Store::disk_usage`] and [`Store::quarantined`] report, from memory,
//!   what the data directory takes.
//! - With the `testing` feature, `cairn_store::testing` makes damage that passes every
//!   file-level check (for tests only).
//!
//! # Example
//!
//! ```
//! use cairn_snapshot::{Record, Value};
//! use cairn_store::{LoadPolicy, LoadSink, SinkError, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path().join("data"))?;
//! let mut w = store.begin()?;
//! w.write(&Record::new(0, "greeting", Value::String("hello".into())))?;
//! let committed = w.commit()?;
//! assert_eq!(committed.records, 1);
//!
//! struct Collect(Vec<Record>);
//! impl LoadSink for Collect {
//!     fn record(&mut self, r: Record) -> Result<(), SinkError> {
//!         self.0.push(r);
//!         Ok(())
//!     }
//! }
//! let mut sink = Collect(Vec::new());
//! let report = store.load(&mut sink, LoadPolicy::Fallback)?;
//! assert_eq!(report.generation, Some(committed.generation));
//! assert_eq!(&sink.0[0].key[..], b"greeting");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use crate::{
    error::{Corruption, Damage, Error, Result, SinkError},
    load::LoadSink,
    pointer::GenerationMeta,
    quarantine::QuarantineInfo,
    store::{
        DEFAULT_QUARANTINE_RETAIN, DiskUsage, FailedGeneration, LoadPolicy, LoadReport, Store,
        StoreBuilder,
    },
    writer::{Committed, Writer},
};

mod error;
mod fault;
mod layout;
mod load;
mod manifest;
mod pointer;
mod quarantine;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod validate;
mod writer;
