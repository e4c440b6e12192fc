//! Writing one generation: [`Writer`] and [`Committed`].

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cairn_snapshot::{Digest, Footer, Header, Record};
use fjall::config::{BlockSizePolicy, FilterPolicy};
use fjall::{Database, KeyspaceCreateOptions, PersistMode};

use crate::error::{Error, Result};
use crate::layout::{
    self, DB, FOOTER_KEY, HEADER_KEY, KEYSPACE, MANIFEST, MANIFEST_TMP, SEAL, SEAL_TMP,
};
use crate::manifest;
use crate::pointer::{GenerationMeta, Kind};
use crate::store::Shared;

/// Framed records are handed to the ingestion thread in batches of about
/// this many bytes, so the channel costs little per record.
const BATCH_BYTES: usize = 1 << 20;
/// fjall data block size for generations (fjall's default is 4 KiB).
const DATA_BLOCK_BYTES: u32 = 64 * 1024;
/// Framed records are stored back to back in fjall values ("pages") of
/// at most about this many bytes (a larger record is a page of its own).
/// One fjall entry per record made fjall's per-entry work (merge, MVCC
/// filtering, a key and value handle per entry) cost ~0.3 µs of CPU per
/// record on a load (docs/snapshot-format.md); per page it is noise.
const PAGE_BYTES: usize = 32 * 1024;
/// Batches in flight: the caller encodes the next while fjall writes.
const BATCHES_IN_FLIGHT: usize = 4;

/// The result of a successful [`Writer::commit`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Committed {
    /// The new generation's number.
    pub generation: u64,
    /// Records written.
    pub records: u64,
    /// Bytes allocated on disk by the generation directory.
    pub bytes: u64,
    /// Wall time from [`Store::begin`](crate::Store::begin) to the switch
    /// of `CURRENT`.
    pub duration: Duration,
}

struct Batch {
    buf: Vec<u8>,
    /// End offset in `buf` of each framed record.
    ends: Vec<usize>,
}

enum Msg {
    Records(Batch),
    Finish(Vec<u8>),
}

/// Streams the records of one new generation to disk.
///
/// Obtained from [`Store::begin`](crate::Store::begin). Records are encoded
/// on the calling thread and ingested into fjall by a helper thread, so the
/// two overlap. Methods block; call them from a blocking thread, not from an
/// async task. Dropping a writer without [`commit`](Self::commit) removes
/// everything it wrote (and blocks until its helper thread has closed
/// fjall, so drop it on a blocking thread too).
pub struct Writer {
    shared: Arc<Shared>,
    generation: u64,
    partial: PathBuf,
    created_at_ms: i64,
    started: Instant,
    tx: Option<SyncSender<Msg>>,
    thread: Option<JoinHandle<Result<()>>>,
    batch: Batch,
    digest: Digest,
    records: u64,
    record_bytes: u64,
    /// Set once the directory has been renamed to its final name.
    renamed: Option<PathBuf>,
    committed: bool,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("generation", &self.generation)
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Writer {
    /// Creates `gen-N.partial/` and starts the ingestion thread. The caller
    /// (`Store::begin`) has reserved `generation` and the writer slot.
    pub(crate) fn start(
        shared: Arc<Shared>,
        generation: u64,
        mut between_pages: Box<dyn FnMut() + Send>,
    ) -> Result<Self> {
        let started = Instant::now();
        let created_at_ms = now_ms();
        let partial = shared.dir.join(layout::partial_dir_name(generation));
        let mut w = Writer {
            shared,
            generation,
            partial: partial.clone(),
            created_at_ms,
            started,
            tx: None,
            thread: None,
            batch: Batch {
                buf: Vec::new(),
                ends: Vec::new(),
            },
            digest: Digest::new(),
            records: 0,
            record_bytes: 0,
            renamed: None,
            committed: false,
        };
        // From here on `Drop` cleans up whatever exists.
        layout::create_private_dir(&partial)?;
        layout::fsync_dir(&w.shared.dir)?;
        let header = Header::new(created_at_ms).encode();
        let (tx, rx) = sync_channel(BATCHES_IN_FLIGHT);
        let db_path = partial.join(DB);
        let thread = std::thread::Builder::new()
            .name(format!("cairn-store-gen-{generation}"))
            .spawn(move || {
                if ingest(&db_path, &header, &rx, &mut *between_pages)? {
                    settle(&db_path)?;
                }
                Ok(())
            })
            .map_err(|source| Error::Io {
                path: partial.clone(),
                source,
            })?;
        w.tx = Some(tx);
        w.thread = Some(thread);
        tracing::debug!(generation, "snapshot generation started");
        Ok(w)
    }

    /// The number of the generation being written.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Records written so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Encodes and appends one record.
    ///
    /// # Errors
    ///
    /// [`Error::Snapshot`] if the codec refuses the record (the writer stays
    /// usable), or the error that stopped the ingestion thread.
    pub fn write(&mut self, record: &Record) -> Result<()> {
        let start = self.batch.buf.len();
        if let Err(e) = cairn_snapshot::encode_record(record, &mut self.batch.buf) {
            self.batch.buf.truncate(start);
            return Err(e.into());
        }
        self.push_framed(start)
    }

    /// Appends one record that is already framed by
    /// [`cairn_snapshot::encode_record`] (length, payload, CRC32). The
    /// length prefix is checked; the CRC is checked when loading.
    ///
    /// # Errors
    ///
    /// [`Error::Framing`] if `framed` is not exactly one framed record, or
    /// the error that stopped the ingestion thread.
    pub fn write_encoded(&mut self, framed: &[u8]) -> Result<()> {
        check_framing(framed)?;
        let start = self.batch.buf.len();
        self.batch.buf.extend_from_slice(framed);
        self.push_framed(start)
    }

    fn push_framed(&mut self, start: usize) -> Result<()> {
        let end = self.batch.buf.len();
        let framed = self.batch.buf.get(start..end).unwrap_or_default();
        self.digest.update(framed);
        self.records += 1;
        self.record_bytes += (end - start) as u64;
        self.batch.ends.push(end);
        if self.batch.buf.len() >= BATCH_BYTES {
            self.flush_batch()?;
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<()> {
        if self.batch.ends.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(
            &mut self.batch,
            Batch {
                buf: Vec::with_capacity(BATCH_BYTES + BATCH_BYTES / 4),
                ends: Vec::new(),
            },
        );
        self.send(Msg::Records(batch))
    }

    fn send(&mut self, msg: Msg) -> Result<()> {
        let sent = match &self.tx {
            Some(tx) => tx.send(msg).is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The thread has stopped: its result says why.
        self.tx = None;
        match self.join() {
            Err(e) => Err(e),
            Ok(()) => Err(thread_gone(&self.partial)),
        }
    }

    fn join(&mut self) -> Result<()> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        thread.join().map_err(|_| Error::Io {
            path: self.partial.clone(),
            source: std::io::Error::other("snapshot ingestion thread panicked"),
        })?
    }

    /// Finishes the generation and makes it the committed one.
    ///
    /// Steps (each durable before the next): footer written and fjall
    /// persisted and closed; every file and directory of the generation
    /// fsynced; `SEAL` written; `gen-N.partial` renamed to `gen-N`;
    /// optional verification; `CURRENT` replaced atomically. Then
    /// generations beyond the retention count are deleted.
    ///
    /// # Errors
    ///
    /// Any I/O, fjall or verification error. The previous generation and
    /// `CURRENT` are untouched unless the error happened after `CURRENT`
    /// was renamed (only its directory fsync failed), in which case the new
    /// generation is kept and will be loaded.
    pub fn commit(mut self) -> Result<Committed> {
        self.flush_batch()?;
        let footer = Footer {
            record_count: self.records,
            digest: self.digest.finish(),
        }
        .encode();
        self.send(Msg::Finish(footer))?;
        self.tx = None;
        self.join()?;

        layout::fsync_tree(&self.partial)?;
        let manifest = manifest::build(&self.partial.join(DB))?;
        layout::replace_file(&self.partial, MANIFEST_TMP, MANIFEST, &manifest)?;
        let meta = GenerationMeta {
            generation: self.generation,
            format_version: cairn_snapshot::FORMAT_VERSION,
            record_count: self.records,
            record_bytes: self.record_bytes,
            digest: self.digest.finish(),
            created_at_ms: self.created_at_ms,
            files_digest: manifest::digest(&manifest),
        };
        layout::replace_file(&self.partial, SEAL_TMP, SEAL, &meta.encode(Kind::Seal))?;
        let final_dir = self.shared.dir.join(layout::gen_dir_name(self.generation));
        std::fs::rename(&self.partial, &final_dir).map_err(|source| Error::Io {
            path: final_dir.clone(),
            source,
        })?;
        self.renamed = Some(final_dir.clone());
        layout::fsync_dir(&self.shared.dir)?;

        // After this returns Ok, or an error from the directory fsync that
        // follows the rename of CURRENT, the generation is committed and
        // must not be removed by Drop.
        let outcome = self.shared.publish(&meta, &final_dir);
        if outcome.renamed {
            self.committed = true;
        }
        outcome.result?;
        let c = Committed {
            generation: self.generation,
            records: self.records,
            bytes: outcome.bytes,
            duration: self.started.elapsed(),
        };
        tracing::info!(
            generation = c.generation,
            records = c.records,
            bytes = c.bytes,
            ms = c.duration.as_millis() as u64,
            "snapshot generation committed"
        );
        Ok(c)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Dropping the sender makes the thread abandon the ingestion; it
        // must have closed its fjall handles before the directory goes.
        self.tx = None;
        if let Err(e) = self.join() {
            tracing::debug!(error = %e, "abandoned ingestion ended with error");
        }
        if !self.committed {
            let dir = self.renamed.as_ref().unwrap_or(&self.partial);
            match std::fs::remove_dir_all(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(
                    dir = %dir.display(),
                    error = %e,
                    "could not remove uncommitted generation; it will be \
                     removed or quarantined at the next open"
                ),
            }
            tracing::debug!(generation = self.generation, "writer discarded");
        }
        self.shared.end_write();
    }
}

fn thread_gone(path: &std::path::Path) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other("snapshot ingestion thread stopped"),
    }
}

fn fj(path: &std::path::Path) -> impl Fn(fjall::Error) -> Error + '_ {
    move |source| Error::Fjall {
        path: path.to_path_buf(),
        source,
    }
}

/// Options of the records keyspace, stored by fjall with the generation.
///
/// A generation is only ever scanned front to back, never probed by key:
/// bloom filters would cost CPU and disk for nothing, and large blocks mean
/// fewer index entries and block checksums per record.
fn keyspace_options() -> KeyspaceCreateOptions {
    // Block compression stays at fjall's default (lz4): it costs ~15% of
    // the write time on incompressible values, where lz4 gives up quickly,
    // and shrinks typical text values a lot.
    KeyspaceCreateOptions::default()
        .filter_policy(FilterPolicy::disabled())
        .data_block_size_policy(BlockSizePolicy::all(DATA_BLOCK_BYTES))
}

/// The ingestion thread: owns every fjall handle of the new generation so
/// they are all dropped when it returns (fjall has no `close()`, and a
/// poisoned database must not outlive this write).
///
/// Returns whether the generation was finished (false: abandoned).
fn ingest(
    db_path: &std::path::Path,
    header: &[u8],
    rx: &Receiver<Msg>,
    between_pages: &mut dyn FnMut(),
) -> Result<bool> {
    let db = Database::builder(db_path)
        .worker_threads(1)
        .open()
        .map_err(fj(db_path))?;
    let ks = db
        .keyspace(KEYSPACE, keyspace_options)
        .map_err(fj(db_path))?;
    let mut ing = ks.start_ingestion().map_err(fj(db_path))?;
    ing.write(HEADER_KEY.to_be_bytes(), header)
        .map_err(fj(db_path))?;
    let mut seq = HEADER_KEY;
    loop {
        let Ok(msg) = rx.recv() else {
            // The writer was dropped: abandon (the directory is removed).
            return Ok(false);
        };
        match msg {
            Msg::Records(batch) => {
                for page in pages(&batch.ends, PAGE_BYTES) {
                    seq += 1;
                    let value = batch.buf.get(page).unwrap_or_default();
                    ing.write(seq.to_be_bytes(), value).map_err(fj(db_path))?;
                    between_pages();
                }
            }
            Msg::Finish(footer) => {
                ing.write(FOOTER_KEY.to_be_bytes(), footer)
                    .map_err(fj(db_path))?;
                ing.finish().map_err(fj(db_path))?;
                db.persist(PersistMode::SyncAll).map_err(fj(db_path))?;
                return Ok(true);
            }
        }
    }
}

/// Groups consecutive framed records, given by their end offsets, into
/// byte ranges of at most `max` bytes each, or of one record when that
/// alone is larger. Pages never split a record.
fn pages(ends: &[usize], max: usize) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
    let mut start = 0;
    let mut i = 0;
    std::iter::from_fn(move || {
        let first = *ends.get(i)?;
        let mut end = first;
        i += 1;
        while let Some(&next) = ends.get(i) {
            if next - start > max {
                break;
            }
            end = next;
            i += 1;
        }
        let page = start..end;
        start = end;
        Some(page)
    })
}

/// Opens and closes the finished database once, as a load will.
///
/// fjall tidies up on its first open (trims the preallocated journal,
/// deletes superseded version files) and is stable from then on (measured:
/// later opens change no byte). Doing it before the `MANIFEST` is taken
/// means loads see exactly the files the manifest lists.
fn settle(db_path: &std::path::Path) -> Result<()> {
    let db = Database::builder(db_path)
        .worker_threads(1)
        .open()
        .map_err(fj(db_path))?;
    let ks = db
        .keyspace(KEYSPACE, keyspace_options)
        .map_err(fj(db_path))?;
    drop(ks);
    db.persist(PersistMode::SyncAll).map_err(fj(db_path))?;
    Ok(())
}

/// Writes a complete database at `db_path` holding `header`, the framed
/// records of `buf` (ending at `ends`) in pages, and `footer`, exactly as a
/// [`Writer`] would, and settles it. The footer is taken as given, so a
/// test can make it disagree with the records.
#[cfg(feature = "testing")]
pub(crate) fn write_database(
    db_path: &std::path::Path,
    header: &[u8],
    buf: Vec<u8>,
    ends: Vec<usize>,
    footer: Vec<u8>,
) -> Result<()> {
    // Both messages fit in the channel, so `ingest` can run on this thread.
    let (tx, rx) = sync_channel(2);
    let sent =
        tx.send(Msg::Records(Batch { buf, ends })).is_ok() && tx.send(Msg::Finish(footer)).is_ok();
    drop(tx);
    if !sent || !ingest(db_path, header, &rx, &mut || {})? {
        return Err(thread_gone(db_path));
    }
    settle(db_path)
}

/// Checks that `framed` is one whole framed record: a 4-byte length, that
/// many payload bytes, a 4-byte CRC.
pub(crate) fn check_framing(framed: &[u8]) -> Result<()> {
    let Some(len) = framed.first_chunk::<4>() else {
        return Err(Error::Framing("shorter than the length prefix".into()));
    };
    let len = u64::from(u32::from_le_bytes(*len));
    let expected = len + cairn_snapshot::FRAME_OVERHEAD as u64;
    if framed.len() as u64 != expected {
        return Err(Error::Framing(format!(
            "length prefix says {expected} bytes in all, got {}",
            framed.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::pages;

    fn split(ends: &[usize], max: usize) -> Vec<std::ops::Range<usize>> {
        pages(ends, max).collect()
    }

    #[test]
    fn pages_group_whole_records_up_to_the_limit() {
        assert_eq!(split(&[], 10), Vec::<std::ops::Range<usize>>::new());
        assert_eq!(split(&[4, 8, 12], 10), vec![0..8, 8..12]);
        assert_eq!(split(&[4, 8, 10], 10), vec![0..10]);
        // A record larger than a page is a page of its own, never split.
        assert_eq!(split(&[3, 30, 33, 36], 10), vec![0..3, 3..30, 30..36]);
        assert_eq!(split(&[25], 10), vec![0..25]);
    }
}
