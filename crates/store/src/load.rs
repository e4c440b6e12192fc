//! Reading one generation back with full verification.

use std::path::Path;

use bytes::Bytes;
use cairn_snapshot::{Digest, Footer, Header, Limits, Record};
use fjall::{Database, KeyspaceCreateOptions};

use crate::error::{Damage, Error, SinkError};
use crate::fault::{self, Verdict};
use crate::layout::{DB, FOOTER_KEY, HEADER_KEY, KEYSPACE, MANIFEST, SEAL};
use crate::manifest;
use crate::pointer::{GenerationMeta, Kind};
use crate::validate;

/// fjall block cache while loading a generation.
const LOAD_CACHE_BYTES: u64 = 2 * 1024 * 1024;
/// fjall values (pages of records) queued between the reader thread and
/// the verifying one: a few blocks' worth, to ride out either side's
/// hiccups.
const PAGES_IN_FLIGHT: usize = 16;

/// Splits a page (one fjall value) into its framed records: each is a
/// 4-byte little-endian payload length, the payload and a 4-byte CRC, back
/// to back. Only the lengths are read here; CRCs are checked by the codec.
/// Generations written before pages existed hold one record per value,
/// which is a page of one.
pub(crate) struct Frames {
    page: Bytes,
    at: usize,
}

impl Frames {
    /// The framed records of one page.
    #[cfg(feature = "testing")]
    pub(crate) fn of(page: Bytes) -> Self {
        Frames { page, at: 0 }
    }
}

impl Iterator for Frames {
    type Item = Result<Bytes, String>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.page.get(self.at..)?;
        if rest.is_empty() {
            return None;
        }
        let Some(len) = rest.first_chunk::<4>() else {
            self.at = self.page.len();
            return Some(Err(format!(
                "{} stray bytes at the end of a page",
                rest.len()
            )));
        };
        let framed = u64::from(u32::from_le_bytes(*len)) + cairn_snapshot::FRAME_OVERHEAD as u64;
        match usize::try_from(framed) {
            Ok(n) if n <= rest.len() => {
                let record = self.page.slice(self.at..self.at + n);
                self.at += n;
                Some(Ok(record))
            }
            _ => {
                self.at = self.page.len();
                Some(Err(format!(
                    "record of {framed} bytes overruns its page ({} bytes left)",
                    rest.len()
                )))
            }
        }
    }
}

/// Receives the records of the generation being loaded.
///
/// The store calls [`begin`](Self::begin), then [`record`](Self::record)
/// for each record in write order. If the generation turns out to be damaged
/// part-way, [`abort`](Self::abort) is called: the sink must discard what it
/// built, because the store goes on to stream an older generation from its
/// start (`begin` again).
pub trait LoadSink {
    /// A generation starts streaming.
    ///
    /// # Errors
    ///
    /// An error stops the load (no fallback: the data is not at fault).
    fn begin(&mut self, generation: u64) -> Result<(), SinkError> {
        let _ = generation;
        Ok(())
    }

    /// How many records the generation given to the last `begin` holds,
    /// as its seal says (checked against the records at the end): a hint
    /// for sizing, called once right after `begin`.
    fn expect_records(&mut self, records: u64) {
        let _ = records;
    }

    /// One verified record (its CRC has been checked).
    ///
    /// The record's keys and values are slices of a buffer shared with
    /// the records around it (a block of the generation): copy what you
    /// keep, or the whole buffer stays allocated as long as any slice of it.
    ///
    /// # Errors
    ///
    /// An error stops the load (no fallback: the data is not at fault).
    fn record(&mut self, record: Record) -> Result<(), SinkError>;

    /// The generation given to the last `begin` is damaged: drop what was
    /// received from it.
    fn abort(&mut self, generation: u64, reason: &Damage) {
        let _ = (generation, reason);
    }
}

/// Why verifying a generation stopped.
pub(crate) enum Failure {
    /// The generation is damaged: quarantine it and fall back.
    Damage(Damage),
    /// Not the generation's fault (sink refused, any I/O error that does
    /// not prove damage, see [`crate::fault`]): stop loading and report.
    Fatal(Error),
}

impl From<Damage> for Failure {
    fn from(d: Damage) -> Self {
        Failure::Damage(d)
    }
}

impl Failure {
    /// An I/O error on `path`: damage (described by `damage`) only when the
    /// error proves the content wrong, see [`crate::fault`].
    pub(crate) fn io(
        path: &Path,
        e: std::io::Error,
        damage: impl FnOnce(&std::io::Error) -> Damage,
    ) -> Self {
        match fault::io_verdict(&e) {
            Verdict::Damage => Failure::Damage(damage(&e)),
            Verdict::Transient | Verdict::Fatal => Failure::Fatal(Error::Io {
                path: path.to_path_buf(),
                source: e,
            }),
        }
    }

    /// A fjall error while opening or reading the database at `db_path`.
    fn fjall(db_path: &Path, e: fjall::Error) -> Self {
        if fault::fjall_verdict(&e) == Verdict::Damage {
            return Failure::Damage(Damage::Fjall(e.to_string()));
        }
        match e {
            fjall::Error::Io(source) | fjall::Error::Storage(fjall::LsmError::Io(source)) => {
                Failure::Fatal(Error::Io {
                    path: db_path.to_path_buf(),
                    source,
                })
            }
            source => Failure::Fatal(Error::Fjall {
                path: db_path.to_path_buf(),
                source,
            }),
        }
    }
}

/// Reads a whole small file, retrying transient errors.
pub(crate) fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    fault::retry_io(path, || std::fs::read(path))
}

pub(crate) fn read_seal(gen_dir: &Path) -> Result<GenerationMeta, Failure> {
    let path = gen_dir.join(SEAL);
    match read_file(&path) {
        Ok(bytes) => GenerationMeta::decode(Kind::Seal, &bytes)
            .map_err(|why| Failure::Damage(Damage::Seal(why))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Failure::Damage(Damage::Seal("missing".into())))
        }
        Err(e) => Err(Failure::io(&path, e, |e| Damage::Seal(e.to_string()))),
    }
}

/// Verifies generation `generation` in `gen_dir` and streams its records to
/// `sink`. `expected` is `CURRENT` when it names this generation.
///
/// Order: seal (and agreement with `CURRENT`), directory whitelist, fjall
/// open, then the stream: header, records `1..=n` with contiguous keys and
/// valid CRCs, footer; finally count, byte total and digest against footer
/// and seal.
pub(crate) fn verify_generation(
    gen_dir: &Path,
    generation: u64,
    expected: Option<&GenerationMeta>,
    sink: &mut dyn LoadSink,
) -> Result<GenerationMeta, Failure> {
    match fault::retry_io(gen_dir, || std::fs::symlink_metadata(gen_dir)) {
        Ok(md) if md.is_dir() => {}
        // Something else under a generation's name: quarantined like any
        // foreign entry (nothing else would ever move it).
        Ok(_) => return Err(Damage::ForeignEntry(gen_dir.to_path_buf()).into()),
        Err(e) => return Err(Failure::io(gen_dir, e, |_| Damage::Missing)),
    }
    let seal = read_seal(gen_dir)?;
    if seal.generation != generation {
        return Err(Damage::Seal(format!(
            "seal names generation {}, directory {generation}",
            seal.generation
        ))
        .into());
    }
    if let Some(cur) = expected
        && *cur != seal
    {
        return Err(Damage::Seal("disagrees with CURRENT".into()).into());
    }
    if seal.format_version == 0 || seal.format_version > cairn_snapshot::FORMAT_VERSION {
        return Err(Damage::Version(seal.format_version).into());
    }
    validate::generation_dir(gen_dir)?;

    let db_path = gen_dir.join(DB);
    let manifest_path = gen_dir.join(MANIFEST);
    let manifest = read_file(&manifest_path).map_err(|e| {
        Failure::io(&manifest_path, e, |e| {
            Damage::Files(format!("MANIFEST: {e}"))
        })
    })?;
    manifest::verify(&db_path, &manifest, &seal.files_digest)?;
    // Declared before `db` so the copy is removed only after fjall closed.
    let mut _copy: Option<TempCopy> = None;
    let db = match open_db(&db_path) {
        Ok(db) => db,
        Err(Failure::Fatal(Error::Io { source, .. }))
            if source.kind() == std::io::ErrorKind::ReadOnlyFilesystem =>
        {
            // fjall cannot open a database read-only (it takes a write lock
            // and trims its journal), so read a private copy instead.
            let copy = TempCopy::of(&db_path, generation).map_err(Failure::Fatal)?;
            tracing::info!(
                from = %db_path.display(),
                to = %copy.0.display(),
                "data directory is read-only; loading from a temporary copy"
            );
            let db = open_db(&copy.0)?;
            _copy = Some(copy);
            db
        }
        Err(e) => return Err(e),
    };
    // `db.keyspace(..)` would create a missing keyspace, i.e. write into a
    // damaged generation; check first.
    if !db.keyspace_exists(KEYSPACE) {
        return Err(Damage::Fjall("records keyspace is missing".into()).into());
    }
    let ks = db
        .keyspace(KEYSPACE, KeyspaceCreateOptions::default)
        .map_err(|e| Failure::fjall(&db_path, e))?;

    let mut digest = Digest::new();
    let mut bytes: u64 = 0;
    let mut footer: Option<Footer> = None;
    let mut next_key = HEADER_KEY;
    let mut begun = false;
    let limits = Limits::DEFAULT;

    // fjall iteration (block reads, decompression, checksums) runs on a
    // helper thread while this one splits pages, checks, decodes and feeds
    // the sink.
    let result = std::thread::scope(|scope| -> Result<(), Failure> {
        let (tx, rx) =
            std::sync::mpsc::sync_channel::<Result<(u64, Bytes), Failure>>(PAGES_IN_FLIGHT);
        let ks_ref = &ks;
        let db_path_ref = &db_path;
        scope.spawn(move || {
            for guard in ks_ref.iter() {
                let item = guard
                    .into_inner()
                    .map_err(|e| Failure::fjall(db_path_ref, e))
                    .and_then(|(key, value)| match <[u8; 8]>::try_from(&*key) {
                        // A view of the block fjall decoded: no copy.
                        Ok(k) => Ok((u64::from_be_bytes(k), Bytes::from_owner(value))),
                        Err(_) => {
                            Err(Damage::Sequence(format!("key of {} bytes", key.len())).into())
                        }
                    });
                let failed = item.is_err();
                if tx.send(item).is_err() || failed {
                    return;
                }
            }
        });
        for item in rx {
            let (key, value) = item?;
            if footer.is_some() {
                return Err(Damage::Sequence("entry after footer".into()).into());
            }
            if key == FOOTER_KEY {
                let f =
                    Footer::decode(&value).map_err(|e| Damage::Record(format!("footer: {e}")))?;
                footer = Some(f);
                continue;
            }
            if key != next_key {
                return Err(
                    Damage::Sequence(format!("expected key {next_key}, found {key}")).into(),
                );
            }
            next_key += 1;
            if key == HEADER_KEY {
                let h = Header::decode(&value).map_err(|e| match e {
                    cairn_snapshot::Error::UnsupportedVersion { found, .. } => {
                        Damage::Version(found)
                    }
                    e => Damage::Record(format!("header: {e}")),
                })?;
                if h.format_version != seal.format_version || h.created_at_ms != seal.created_at_ms
                {
                    return Err(Damage::Seal("header disagrees with seal".into()).into());
                }
                sink.begin(generation)
                    .map_err(|e| Failure::Fatal(Error::Sink(e)))?;
                sink.expect_records(seal.record_count);
                begun = true;
                continue;
            }
            if value.is_empty() {
                return Err(Damage::Record(format!("page {key} is empty")).into());
            }
            for framed in (Frames { page: value, at: 0 }) {
                let index = digest.count();
                let framed =
                    framed.map_err(|why| Damage::Record(format!("record {index}: {why}")))?;
                digest.update(&framed);
                bytes += framed.len() as u64;
                let record = cairn_snapshot::decode_record_shared(&framed, &limits)
                    .map_err(|e| Damage::Record(format!("record {index}: {e}")))?;
                sink.record(record)
                    .map_err(|e| Failure::Fatal(Error::Sink(e)))?;
            }
        }
        let Some(footer) = footer else {
            return Err(Damage::Sequence("footer is missing".into()).into());
        };
        if !begun {
            return Err(Damage::Sequence("header is missing".into()).into());
        }
        let count = digest.count();
        for expected in [footer.record_count, seal.record_count] {
            if expected != count {
                return Err(Damage::Count {
                    expected,
                    actual: count,
                }
                .into());
            }
        }
        let d = digest.finish();
        if d != footer.digest || d != seal.digest || bytes != seal.record_bytes {
            return Err(Damage::Digest.into());
        }
        Ok(())
    });
    drop(ks);
    drop(db);
    if let Err(Failure::Damage(d)) = &result
        && begun
    {
        sink.abort(generation, d);
    }
    result.map(|()| seal)
}

fn open_db(path: &Path) -> Result<Database, Failure> {
    let open = || {
        Database::builder(path)
            .worker_threads(1)
            // A load reads every block once, in order: a block cache only
            // holds memory (fjall's default is 32 MiB) that the allocator
            // may not give back after the load, next to the restored
            // keyspace.
            .cache_size(LOAD_CACHE_BYTES)
            .open()
    };
    fault::retry(path, open, |e| {
        fault::fjall_verdict(e) == Verdict::Transient
    })
    .map_err(|e| Failure::fjall(path, e))
}

/// A copy of a generation's database in the system temp directory, removed
/// on drop.
struct TempCopy(std::path::PathBuf);

impl TempCopy {
    fn of(src: &Path, generation: u64) -> Result<Self, Error> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dst = std::env::temp_dir().join(format!(
            "cairn-ro-load-{}-{generation}-{nanos}",
            std::process::id()
        ));
        let copy = TempCopy(dst);
        copy_tree(src, &copy.0)?;
        Ok(copy)
    }
}

impl Drop for TempCopy {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), error = %e, "could not remove temporary copy");
        }
    }
}

fn copy_tree(src: &Path, dst: &Path) -> Result<(), Error> {
    use crate::error::IoContext;
    crate::layout::create_private_dir(dst)?;
    for entry in std::fs::read_dir(src).at(src)? {
        let entry = entry.at(src)?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        if entry.file_type().at(&from)?.is_dir() {
            copy_tree(&from, &to)?;
        } else {
            copy_sparse(&from, &to).at(&from)?;
        }
    }
    Ok(())
}

/// Copies a file without writing its all-zero blocks: fjall preallocates
/// its journal as a 64 MiB sparse file.
fn copy_sparse(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut src = std::fs::File::open(from)?;
    let mut dst = std::fs::File::create(to)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let chunk = buf.get(..n).unwrap_or_default();
        if chunk.iter().all(|&b| b == 0) {
            dst.seek(SeekFrom::Current(n as i64))?;
        } else {
            dst.write_all(chunk)?;
        }
        len += n as u64;
    }
    dst.set_len(len)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn framed(tag: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let record = Record::new(
            0,
            tag.as_bytes().to_vec(),
            cairn_snapshot::Value::String(Bytes::from(tag.repeat(3))),
        );
        cairn_snapshot::encode_record(&record, &mut out).unwrap();
        out
    }

    fn frames_of(page: Vec<u8>) -> Vec<Result<Bytes, String>> {
        Frames {
            page: Bytes::from(page),
            at: 0,
        }
        .collect()
    }

    #[test]
    fn a_page_splits_into_its_records() {
        let (a, b, c) = (framed("a"), framed("bb"), framed("ccc"));
        let page = [a.clone(), b.clone(), c.clone()].concat();
        let got: Vec<Bytes> = frames_of(page).into_iter().map(Result::unwrap).collect();
        assert_eq!(
            got,
            vec![Bytes::from(a.clone()), Bytes::from(b), Bytes::from(c)]
        );
        // One record per value, as generations before pages: a page of one.
        assert_eq!(frames_of(a.clone()), vec![Ok(Bytes::from(a))]);
        assert!(frames_of(Vec::new()).is_empty());
    }

    #[test]
    fn a_damaged_page_is_an_error_not_a_panic() {
        let a = framed("a");
        // The second record's length field says more than the page holds.
        let mut page = [a.clone(), a.clone()].concat();
        let at = a.len();
        page[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let got = frames_of(page);
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok());
        assert!(got[1].as_ref().unwrap_err().contains("overruns"));
        // Fewer than four bytes after the last record.
        let got = frames_of([a.clone(), vec![1, 2]].concat());
        assert_eq!(got.len(), 2);
        assert!(got[1].as_ref().unwrap_err().contains("stray"));
        // A cut record.
        let got = frames_of(a[..a.len() - 1].to_vec());
        assert!(got[0].is_err());
    }
}
