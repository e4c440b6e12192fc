//! [`Store`]: the data directory, its lock, and the generation lifecycle.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Damage, Error, IoContext, Result};
use crate::layout::{self, CURRENT, CURRENT_TMP, EntryName, LOCK, QUARANTINE};
use crate::load::{self, Failure, LoadSink};
use crate::pointer::{GenerationMeta, Kind};
use crate::writer::{Writer, now_ms};

/// Name of the file remembering the newest generation that passed a full
/// verification (a load, or verify-after-write); retention never deletes it.
const VERIFIED: &str = "VERIFIED";
const VERIFIED_TMP: &str = "VERIFIED.tmp";

/// What to do when no committed generation passes verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadPolicy {
    /// Return a report with nothing loaded; the caller starts empty.
    Empty,
    /// Return [`Error::NoValidGeneration`].
    Refuse,
}

/// A generation rejected during [`Store::load`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailedGeneration {
    /// Its number.
    pub generation: u64,
    /// What was wrong.
    pub damage: Damage,
    /// Where it was moved, or `None` if moving it failed (see the log).
    pub quarantined_to: Option<PathBuf>,
}

/// What [`Store::load`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadReport {
    /// The generation streamed to the sink in full, if any.
    pub generation: Option<u64>,
    /// Records streamed from that generation.
    pub records: u64,
    /// When that generation was started, unix milliseconds.
    pub created_at_ms: Option<i64>,
    /// Generations rejected before it, newest first.
    pub failures: Vec<FailedGeneration>,
    /// Set when `CURRENT` was unreadable or missing while generations
    /// existed; loading then tried every sealed generation, newest first.
    pub current_damaged: Option<String>,
    /// Wall time of the load.
    pub duration: Duration,
}

/// Options for [`Store::builder`]. Passed by value, fjall style.
#[derive(Clone, Debug)]
#[must_use]
pub struct StoreBuilder {
    dir: PathBuf,
    retain: usize,
    verify_after_write: bool,
}

impl StoreBuilder {
    /// How many committed generations to keep (at least 1). Default 2.
    /// The newest generation that passed verification is kept in addition
    /// when it is older.
    pub fn retain(mut self, generations: usize) -> Self {
        self.retain = generations.max(1);
        self
    }

    /// Read every new generation back (as a load would) before switching
    /// `CURRENT` to it. Default `false`: it doubles the cost of a save,
    /// while records are CRC-checked at load and the previous generation
    /// stays as fallback. A generation failing this check is quarantined
    /// and the commit fails.
    pub fn verify_after_write(mut self, yes: bool) -> Self {
        self.verify_after_write = yes;
        self
    }

    /// Opens (creating if needed) the data directory, takes its lock and
    /// cleans up after an earlier crash: a `gen-N.partial` newer than every
    /// sealed generation is removed, a sealed generation newer than
    /// `CURRENT` is quarantined as uncommitted.
    ///
    /// # Errors
    ///
    /// [`Error::Locked`] if another `Store` holds the directory,
    /// [`Error::Io`] if it cannot be created or read.
    pub fn open(self) -> Result<Store> {
        let dir = self.dir;
        if !dir.exists() {
            layout::create_private_dir(&dir)?;
        }
        let lock = take_lock(&dir)?;
        let mut state = State {
            next_generation: 1,
            current: None,
            last_verified: None,
            writing: false,
            bad: BTreeSet::new(),
        };
        recover(&dir, &mut state)?;
        tracing::debug!(
            dir = %dir.display(),
            current = ?state.current.as_ref().map(|m| m.generation),
            "store opened"
        );
        Ok(Store {
            shared: Arc::new(Shared {
                dir,
                retain: self.retain,
                verify_after_write: self.verify_after_write,
                _lock: lock,
                state: Mutex::new(state),
            }),
        })
    }
}

/// A data directory of snapshot generations.
///
/// Cheap to clone (shared handle); `Send + Sync`. Holds an exclusive lock on
/// the directory until the last clone and writer are dropped.
#[derive(Clone, Debug)]
pub struct Store {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    retain: usize,
    verify_after_write: bool,
    /// Held for the advisory lock; released when the file is closed.
    _lock: File,
    /// Guards directory-level changes (generation numbers, `CURRENT`,
    /// retention, quarantine). Held for a whole load so retention never
    /// deletes a generation being read.
    state: Mutex<State>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

struct State {
    next_generation: u64,
    current: Option<GenerationMeta>,
    last_verified: Option<u64>,
    writing: bool,
    /// Generations found damaged whose quarantine move failed; retention
    /// leaves them alone (damaged data is never deleted).
    bad: BTreeSet<u64>,
}

/// What `publish` did, so the writer knows whether `CURRENT` moved even
/// when an error is returned.
pub(crate) struct Published {
    pub(crate) renamed: bool,
    pub(crate) result: Result<()>,
}

fn take_lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK);
    let mut o = OpenOptions::new();
    o.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    // Created through a write handle, held through a read-only one: an
    // advisory lock needs no write access, and a descriptor open for writing
    // would keep the file system from being remounted read-only. A read-only
    // data directory can still be locked and loaded.
    match o.open(&path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ReadOnlyFilesystem => {}
        Err(e) => return Err(Error::Io { path, source: e }),
    }
    let file = File::open(&path).at(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(Error::Locked {
            dir: dir.to_path_buf(),
        }),
        Err(fs::TryLockError::Error(e)) => Err(Error::Io { path, source: e }),
    }
}

fn read_pointer(
    path: &Path,
    kind: Kind,
) -> Result<Option<std::result::Result<GenerationMeta, String>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(GenerationMeta::decode(kind, &bytes))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

struct Listing {
    sealed: Vec<u64>,
    partial: Vec<u64>,
    deleting: Vec<u64>,
    quarantined_max: Option<u64>,
}

fn list(dir: &Path) -> Result<Listing> {
    let mut l = Listing {
        sealed: vec![],
        partial: vec![],
        deleting: vec![],
        quarantined_max: None,
    };
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        match layout::classify(&name) {
            EntryName::Sealed(n) if is_dir => l.sealed.push(n),
            EntryName::Partial(n) if is_dir => l.partial.push(n),
            EntryName::Deleting(n) if is_dir => l.deleting.push(n),
            _ => {}
        }
    }
    let q = dir.join(QUARANTINE);
    if let Ok(rd) = fs::read_dir(&q) {
        for entry in rd.flatten() {
            if let Some(n) = entry
                .file_name()
                .to_str()
                .and_then(layout::quarantine_generation)
            {
                l.quarantined_max = l.quarantined_max.max(Some(n));
            }
        }
    }
    l.sealed.sort_unstable_by(|a, b| b.cmp(a));
    Ok(l)
}

/// Moves `src` to `quarantine/<name>` (never overwriting) and returns where.
fn quarantine(dir: &Path, src: &Path, name: &str) -> Result<PathBuf> {
    let q = dir.join(QUARANTINE);
    layout::create_private_dir(&q)?;
    let dst = layout::unique_path(q.join(name));
    fs::rename(src, &dst).at(&dst)?;
    layout::fsync_dir(&q)?;
    layout::fsync_dir(dir)?;
    tracing::warn!(from = %src.display(), to = %dst.display(), "quarantined");
    Ok(dst)
}

fn quarantine_generation(dir: &Path, generation: u64, why: &str) -> Result<PathBuf> {
    quarantine(
        dir,
        &dir.join(layout::gen_dir_name(generation)),
        &format!("{generation:020}-{why}"),
    )
}

/// Crash recovery at open. Only removes what is provably uncommitted.
fn recover(dir: &Path, state: &mut State) -> Result<()> {
    let current = match read_pointer(&dir.join(CURRENT), Kind::Current)? {
        Some(Ok(meta)) => Some(meta),
        // Left for `load`, which reports and quarantines it.
        Some(Err(_)) | None => None,
    };
    if let Some(Some(Ok(v))) = read_pointer(&dir.join(VERIFIED), Kind::Seal)
        .ok()
        .map(|o| o.map(|r| r.map(|m| m.generation)))
    {
        state.last_verified = Some(v);
    }
    let listing = list(dir)?;
    let newest_sealed = listing.sealed.first().copied();
    let mut highest = [
        current.as_ref().map(|m| m.generation),
        newest_sealed,
        listing.partial.iter().copied().max(),
        listing.quarantined_max,
        state.last_verified,
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(0);

    for &n in &listing.partial {
        let path = dir.join(layout::partial_dir_name(n));
        let newer_than_committed = current.as_ref().is_none_or(|c| n > c.generation)
            && newest_sealed.is_none_or(|s| n > s);
        // A `.partial` directory is renamed only after its seal is durable
        // and `CURRENT` moves only after that rename, so one newer than
        // every sealed generation was never committed.
        let r = if newer_than_committed {
            tracing::info!(generation = n, "removing unfinished generation");
            fs::remove_dir_all(&path).at(&path)
        } else {
            quarantine(dir, &path, &format!("{n:020}-stray-partial")).map(|_| ())
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, "could not clean up partial generation");
        }
    }
    for &n in &listing.deleting {
        // Retention renamed it before deleting: it was already unwanted.
        let path = dir.join(layout::deleting_dir_name(n));
        if let Err(e) = fs::remove_dir_all(&path) {
            tracing::warn!(error = %e, "could not finish a retention delete");
        }
    }
    if let Some(cur) = &current {
        for &n in listing.sealed.iter().filter(|&&n| n > cur.generation) {
            // Sealed but `CURRENT` never switched to it: the commit did not
            // happen (the writer crashed between rename and `CURRENT`).
            if let Err(e) = quarantine_generation(dir, n, "uncommitted") {
                tracing::warn!(error = %e, "could not quarantine");
            }
        }
    }
    for tmp in [CURRENT_TMP, VERIFIED_TMP] {
        let p = dir.join(tmp);
        if p.exists() {
            let _ = fs::remove_file(&p);
        }
    }
    if highest == u64::MAX {
        highest -= 1;
    }
    state.next_generation = highest + 1;
    state.current = current;
    Ok(())
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves only plain data behind.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn end_write(&self) {
        self.lock().writing = false;
    }

    /// Verification (optional), the `CURRENT` switch, then retention.
    pub(crate) fn publish(&self, meta: &GenerationMeta, gen_dir: &Path) -> Published {
        let mut state = self.lock();
        if self.verify_after_write {
            let mut sink = NullSink;
            match load::verify_generation(gen_dir, meta.generation, Some(meta), &mut sink) {
                Ok(_) => {}
                Err(Failure::Fatal(e)) => {
                    return Published {
                        renamed: false,
                        result: Err(e),
                    };
                }
                Err(Failure::Damage(d)) => {
                    let q = quarantine_generation(&self.dir, meta.generation, d.slug());
                    tracing::error!(generation = meta.generation, damage = %d, quarantined = ?q.ok(), "new generation failed verification");
                    return Published {
                        renamed: false,
                        result: Err(Error::Damaged {
                            generation: meta.generation,
                            damage: d,
                        }),
                    };
                }
            }
        }
        match write_current(&self.dir, meta) {
            Ok(()) => {}
            Err((renamed, e)) => {
                if renamed {
                    state.current = Some(meta.clone());
                }
                return Published {
                    renamed,
                    result: Err(e),
                };
            }
        }
        state.current = Some(meta.clone());
        if self.verify_after_write {
            self.set_verified(&mut state, meta);
        }
        self.retain(&state);
        Published {
            renamed: true,
            result: Ok(()),
        }
    }

    fn set_verified(&self, state: &mut State, meta: &GenerationMeta) {
        state.last_verified = Some(meta.generation);
        if let Err(e) =
            layout::replace_file(&self.dir, VERIFIED_TMP, VERIFIED, &meta.encode(Kind::Seal))
        {
            tracing::warn!(error = %e, "could not record the verified generation");
        }
    }

    /// Deletes committed generations beyond the newest `retain`, except the
    /// last verified one and any known-damaged one.
    fn retain(&self, state: &State) {
        let Some(cur) = &state.current else { return };
        let Ok(listing) = list(&self.dir) else { return };
        let committed = listing
            .sealed
            .iter()
            .copied()
            .filter(|&n| n <= cur.generation && !state.bad.contains(&n));
        for n in committed.skip(self.retain) {
            if Some(n) == state.last_verified {
                continue;
            }
            let path = self.dir.join(layout::gen_dir_name(n));
            let doomed = self.dir.join(layout::deleting_dir_name(n));
            // Rename first: a crash mid-delete leaves `.deleting`, which
            // the next open finishes, never a half-deleted `gen-N`.
            match fs::rename(&path, &doomed).and_then(|()| fs::remove_dir_all(&doomed)) {
                Ok(()) => tracing::debug!(generation = n, "retention removed generation"),
                Err(e) => {
                    tracing::warn!(generation = n, error = %e, "retention could not remove generation")
                }
            }
        }
        let _ = layout::fsync_dir(&self.dir);
    }
}

/// Writes `CURRENT` via `CURRENT.tmp`. On error, says whether the rename
/// (the commit point) had already happened.
fn write_current(dir: &Path, meta: &GenerationMeta) -> std::result::Result<(), (bool, Error)> {
    let tmp = dir.join(CURRENT_TMP);
    let dst = dir.join(CURRENT);
    let before = (|| {
        use std::io::Write;
        let mut f = layout::create_private_file(&tmp)?;
        f.write_all(&meta.encode(Kind::Current)).at(&tmp)?;
        f.sync_all().at(&tmp)?;
        drop(f);
        fs::rename(&tmp, &dst).at(&dst)
    })();
    if let Err(e) = before {
        let _ = fs::remove_file(&tmp);
        return Err((false, e));
    }
    layout::fsync_dir(dir).map_err(|e| (true, e))
}

struct NullSink;

impl LoadSink for NullSink {
    fn record(&mut self, _: cairn_snapshot::Record) -> std::result::Result<(), crate::SinkError> {
        Ok(())
    }
}

impl Store {
    /// A builder for the data directory `dir`.
    pub fn builder(dir: impl Into<PathBuf>) -> StoreBuilder {
        StoreBuilder {
            dir: dir.into(),
            retain: 2,
            verify_after_write: false,
        }
    }

    /// Opens `dir` with default options (see [`StoreBuilder::open`]).
    ///
    /// # Errors
    ///
    /// As [`StoreBuilder::open`].
    pub fn open(dir: impl Into<PathBuf>) -> Result<Store> {
        Store::builder(dir).open()
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The committed generation `CURRENT` names, as of the last commit or
    /// load (`None` before the first commit).
    pub fn current(&self) -> Option<GenerationMeta> {
        self.shared.lock().current.clone()
    }

    /// Numbers of the sealed generations on disk, newest first.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the directory cannot be listed.
    pub fn generations(&self) -> Result<Vec<u64>> {
        Ok(list(&self.shared.dir)?.sealed)
    }

    /// Starts writing a new generation.
    ///
    /// # Errors
    ///
    /// [`Error::Busy`] if another writer of this store is alive;
    /// [`Error::Io`] if the generation directory cannot be created.
    pub fn begin(&self) -> Result<Writer> {
        let generation = {
            let mut state = self.shared.lock();
            if state.writing {
                return Err(Error::Busy);
            }
            state.writing = true;
            let g = state.next_generation;
            state.next_generation = g.saturating_add(1);
            g
        };
        Writer::start(Arc::clone(&self.shared), generation)
    }

    /// Streams the newest committed generation that passes verification to
    /// `sink`, falling back generation by generation and quarantining each
    /// damaged one.
    ///
    /// Candidates: the generation `CURRENT` names, then older sealed
    /// generations, newest first. If `CURRENT` is damaged (or missing while
    /// generations exist) it is quarantined and every sealed generation is a
    /// candidate. After a fallback, `CURRENT` is pointed at the generation
    /// that loaded, so the next start does not repeat the search.
    ///
    /// # Errors
    ///
    /// [`Error::NoValidGeneration`] under [`LoadPolicy::Refuse`] when
    /// nothing loads; [`Error::Sink`] if the sink refuses; [`Error::Io`] for
    /// errors of the environment (permission, read-only file system, out of
    /// file descriptors), which stop the load without quarantining anything.
    /// After an error the sink may hold a partial generation: discard it.
    pub fn load(&self, sink: &mut impl LoadSink, policy: LoadPolicy) -> Result<LoadReport> {
        let started = Instant::now();
        let dir = &self.shared.dir;
        let mut state = self.shared.lock();
        let mut report = LoadReport {
            generation: None,
            records: 0,
            created_at_ms: None,
            failures: vec![],
            current_damaged: None,
            duration: Duration::ZERO,
        };
        let listing = list(dir)?;
        let current = match read_pointer(&dir.join(CURRENT), Kind::Current)? {
            Some(Ok(meta)) => Some(meta),
            Some(Err(why)) => {
                let to = quarantine(
                    dir,
                    &dir.join(CURRENT),
                    &format!("CURRENT-{}-damaged", now_ms()),
                );
                tracing::error!(reason = %why, quarantined = ?to.ok(), "CURRENT is damaged");
                report.current_damaged = Some(why);
                None
            }
            None if !listing.sealed.is_empty() => {
                report.current_damaged = Some("CURRENT is missing".into());
                None
            }
            None => None,
        };
        let mut candidates: Vec<u64> = Vec::new();
        if let Some(c) = &current {
            candidates.push(c.generation);
        }
        candidates.extend(
            listing
                .sealed
                .iter()
                .copied()
                .filter(|&n| current.as_ref().is_none_or(|c| n < c.generation)),
        );

        for n in candidates {
            let gen_dir = dir.join(layout::gen_dir_name(n));
            let expected = current.as_ref().filter(|c| c.generation == n);
            match load::verify_generation(&gen_dir, n, expected, sink) {
                Ok(meta) => {
                    report.generation = Some(n);
                    report.records = meta.record_count;
                    report.created_at_ms = Some(meta.created_at_ms);
                    if expected.is_none() {
                        // Fallback: make CURRENT name what actually loaded.
                        if let Err((_, e)) = write_current(dir, &meta) {
                            tracing::warn!(error = %e, "could not repoint CURRENT");
                        }
                    }
                    state.current = Some(meta.clone());
                    self.shared.set_verified(&mut state, &meta);
                    break;
                }
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Damage(damage)) => {
                    tracing::error!(generation = n, %damage, "generation failed verification");
                    let quarantined_to = if damage == Damage::Missing {
                        None
                    } else {
                        match quarantine_generation(dir, n, damage.slug()) {
                            Ok(p) => Some(p),
                            Err(e) => {
                                tracing::error!(error = %e, "could not quarantine damaged generation");
                                state.bad.insert(n);
                                None
                            }
                        }
                    };
                    report.failures.push(FailedGeneration {
                        generation: n,
                        damage,
                        quarantined_to,
                    });
                }
            }
        }
        report.duration = started.elapsed();
        if report.generation.is_none() {
            if report.failures.is_empty() && report.current_damaged.is_none() {
                return Ok(report);
            }
            if policy == LoadPolicy::Refuse {
                return Err(Error::NoValidGeneration {
                    dir: dir.clone(),
                    failures: report.failures.len(),
                });
            }
            state.current = None;
        }
        tracing::info!(
            generation = ?report.generation,
            records = report.records,
            failures = report.failures.len(),
            ms = report.duration.as_millis() as u64,
            "snapshot loaded"
        );
        Ok(report)
    }
}
