//! Tools that damage a generation in ways that pass every file-level
//! check. **For tests only** (cargo feature `testing`); never enable it in a
//! server build.
//!
//! Damage made with a hex editor is caught early: by the `MANIFEST` (sizes
//! and hashes of every fjall file, checked before fjall opens anything) or
//! by fjall's block checksums. The checks behind them — each record's CRC,
//! the digest over the records and the record count — only fire for damage
//! that happened *before* the bytes reached fjall (a bad bit in memory, a
//! bug in the writer). [`rewrite_generation`] produces exactly that: the
//! records are tampered with and re-ingested into a fresh, internally
//! consistent fjall database, and the generation's `MANIFEST`, `SEAL` and
//! `CURRENT` are rewritten to match the new files, while the record count
//! and digest they promise stay those of the original records.
//!
//! ```
//! use cairn_snapshot::{Record, Value};
//! use cairn_store::testing::{Tamper, rewrite_generation};
//! use cairn_store::{Damage, Error, LoadPolicy, LoadSink, SinkError, Store};
//!
//! struct Ignore;
//! impl LoadSink for Ignore {
//!     fn record(&mut self, _: Record) -> Result<(), SinkError> {
//!         Ok(())
//!     }
//! }
//!
//! let dir = tempfile::tempdir()?;
//! let generation = {
//!     let store = Store::open(dir.path())?;
//!     let mut w = store.begin()?;
//!     w.write(&Record::new(0, "k", Value::String("v".into())))?;
//!     w.commit()?.generation
//! };
//! let records = rewrite_generation(dir.path(), generation, Tamper::DropRecord { record: 0 })?;
//! assert_eq!(records, 1);
//! let store = Store::open(dir.path())?;
//! let err = store.load(&mut Ignore, LoadPolicy::Refuse).unwrap_err();
//! assert!(matches!(
//!     err,
//!     Error::Refused { corruption: cairn_store::Corruption::Generation {
//!         damage: Damage::Count { expected: 1, actual: 0 }, .. }, .. }
//! ));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs;
use std::path::Path;

use bytes::Bytes;
use fjall::{Database, KeyspaceCreateOptions};

use crate::error::{Error, IoContext, Result};
use crate::layout::{
    self, CURRENT, CURRENT_TMP, DB, FOOTER_KEY, HEADER_KEY, KEYSPACE, MANIFEST, MANIFEST_TMP, SEAL,
    SEAL_TMP,
};
use crate::load::{self, Failure, Frames, LoadSink};
use crate::manifest;
use crate::pointer::{GenerationMeta, Kind};
use crate::writer;

/// How [`rewrite_generation`] damages a generation's records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// Flip bit `bit` (0..8) of payload byte `offset % payload_len` of record `record` (0-based,
    /// in stream order); its CRC is left as it was, so only the record CRC check can catch it.
    FlipPayloadBit {
        /// Index of the record in stream order.
        record: u64,
        /// Byte of the payload, modulo its length.
        offset: usize,
        /// Bit of that byte, 0 (least significant) to 7.
        bit: u8,
    },
    /// Replace record `record` with `framed` (a validly framed record, e.g. from
    /// cairn_snapshot::encode_record); footer, seal and CURRENT keep the original digest, so
    /// only the digest check catches it.
    ReplaceRecord {
        /// Index of the record in stream order.
        record: u64,
        /// The framed record put in its place.
        framed: Vec<u8>,
    },
    /// Drop record `record`; footer, seal and CURRENT keep the original count and digest.
    DropRecord {
        /// Index of the record in stream order.
        record: u64,
    },
}

/// Rewrites sealed generation `generation` of the data directory `dir` (no Store open on it):
/// its records are read, tampered as asked and re-ingested into a fresh fjall database, then its
/// MANIFEST, SEAL (files digest) and, when CURRENT names it, CURRENT are rewritten so that every
/// file-level check passes. Returns the number of records in the original.
///
/// # Errors
///
/// [`Error::Locked`] if a `Store` has `dir` open; [`Error::Damaged`] if the
/// generation does not verify to begin with; [`Error::Io`] with
/// `InvalidInput` if `record` is out of range, `bit` is not below 8 or the
/// record has an empty payload; [`Error::Framing`] if `framed` is not one
/// framed record; any I/O or fjall error while rewriting (the generation
/// may then be half-rewritten: it is a test fixture).
pub fn rewrite_generation(dir: &Path, generation: u64, tamper: Tamper) -> Result<u64> {
    let _lock = crate::store::take_lock(dir)?;
    let gen_dir = dir.join(layout::gen_dir_name(generation));
    let seal = match load::verify_generation(&gen_dir, generation, None, &mut Discard) {
        Ok(seal) => seal,
        Err(Failure::Damage(damage)) => return Err(Error::Damaged { generation, damage }),
        Err(Failure::Fatal(e)) => return Err(e),
    };
    let db_path = gen_dir.join(DB);
    let Raw {
        header,
        footer,
        mut frames,
    } = read_raw(&db_path)?;
    let original = frames.len() as u64;
    apply(&gen_dir, tamper, &mut frames)?;

    // Built beside the generation under a name the store ignores, then
    // swapped in for the original database.
    let scratch = dir.join(format!("{}.tamper", layout::gen_dir_name(generation)));
    if scratch.exists() {
        fs::remove_dir_all(&scratch).at(&scratch)?;
    }
    layout::create_private_dir(&scratch)?;
    let fresh = scratch.join(DB);
    let mut buf = Vec::new();
    let mut ends = Vec::with_capacity(frames.len());
    for f in &frames {
        buf.extend_from_slice(f);
        ends.push(buf.len());
    }
    writer::write_database(&fresh, &header, buf, ends, footer)?;
    layout::fsync_tree(&scratch)?;
    fs::remove_dir_all(&db_path).at(&db_path)?;
    fs::rename(&fresh, &db_path).at(&db_path)?;
    fs::remove_dir_all(&scratch).at(&scratch)?;
    layout::fsync_dir(&gen_dir)?;

    let manifest = manifest::build(&db_path)?;
    layout::replace_file(&gen_dir, MANIFEST_TMP, MANIFEST, &manifest)?;
    let meta = GenerationMeta {
        files_digest: manifest::digest(&manifest),
        ..seal
    };
    layout::replace_file(&gen_dir, SEAL_TMP, SEAL, &meta.encode(Kind::Seal))?;
    let current = dir.join(CURRENT);
    let names_it = match fs::read(&current) {
        Ok(bytes) => {
            GenerationMeta::decode(Kind::Current, &bytes).is_ok_and(|c| c.generation == generation)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e).at(&current),
    };
    if names_it {
        layout::replace_file(dir, CURRENT_TMP, CURRENT, &meta.encode(Kind::Current))?;
    }
    tracing::warn!(
        generation,
        "generation rewritten with tampered records (testing)"
    );
    Ok(original)
}

struct Discard;

impl LoadSink for Discard {
    fn record(&mut self, _: cairn_snapshot::Record) -> std::result::Result<(), crate::SinkError> {
        Ok(())
    }
}

/// What a generation's database holds, as raw bytes.
struct Raw {
    header: Vec<u8>,
    footer: Vec<u8>,
    /// Every framed record, in stream order.
    frames: Vec<Vec<u8>>,
}

/// Reads a database that has just verified.
fn read_raw(db_path: &Path) -> Result<Raw> {
    let fj = |source| Error::Fjall {
        path: db_path.to_path_buf(),
        source,
    };
    let db = Database::builder(db_path)
        .worker_threads(1)
        .open()
        .map_err(fj)?;
    let ks = db
        .keyspace(KEYSPACE, KeyspaceCreateOptions::default)
        .map_err(fj)?;
    let (mut header, mut footer, mut frames) = (Vec::new(), Vec::new(), Vec::new());
    for guard in ks.iter() {
        let (key, value) = guard.into_inner().map_err(fj)?;
        let key = <[u8; 8]>::try_from(&*key).map(u64::from_be_bytes);
        match key {
            Ok(HEADER_KEY) => header = value.to_vec(),
            Ok(FOOTER_KEY) => footer = value.to_vec(),
            _ => {
                for framed in Frames::of(Bytes::from(value.to_vec())) {
                    let framed = framed.map_err(Error::Framing)?;
                    frames.push(framed.to_vec());
                }
            }
        }
    }
    Ok(Raw {
        header,
        footer,
        frames,
    })
}

fn invalid(gen_dir: &Path, why: String) -> Error {
    Error::Io {
        path: gen_dir.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, why),
    }
}

fn apply(gen_dir: &Path, tamper: Tamper, frames: &mut Vec<Vec<u8>>) -> Result<()> {
    let count = frames.len();
    let index = |record: u64| {
        usize::try_from(record)
            .ok()
            .filter(|&i| i < count)
            .ok_or_else(|| {
                invalid(
                    gen_dir,
                    format!("record {record} out of range (the generation holds {count})"),
                )
            })
    };
    match tamper {
        Tamper::FlipPayloadBit {
            record,
            offset,
            bit,
        } => {
            if bit >= 8 {
                return Err(invalid(gen_dir, format!("bit {bit} is not in 0..8")));
            }
            let i = index(record)?;
            let frame = frames
                .get_mut(i)
                .ok_or_else(|| invalid(gen_dir, "gone".into()))?;
            let payload_len = frame
                .first_chunk::<4>()
                .map_or(0, |l| u32::from_le_bytes(*l) as usize);
            if payload_len == 0 {
                return Err(invalid(gen_dir, format!("record {record} has no payload")));
            }
            let at = 4 + offset % payload_len;
            let byte = frame.get_mut(at).ok_or_else(|| {
                invalid(
                    gen_dir,
                    format!("record {record} is shorter than its length"),
                )
            })?;
            *byte ^= 1 << bit;
        }
        Tamper::ReplaceRecord { record, framed } => {
            writer::check_framing(&framed)?;
            let i = index(record)?;
            if let Some(slot) = frames.get_mut(i) {
                *slot = framed;
            }
        }
        Tamper::DropRecord { record } => {
            let i = index(record)?;
            frames.remove(i);
        }
    }
    Ok(())
}
