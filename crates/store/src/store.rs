//! [`Store`]: the data directory, its lock, and the generation lifecycle.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Corruption, Damage, Error, IoContext, Result};
use crate::layout::{self, CURRENT, CURRENT_TMP, EntryName, LOCK};
use crate::load::{self, Failure, LoadSink};
use crate::pointer::{GenerationMeta, Kind};
use crate::quarantine::{self, QuarantineInfo};
use crate::writer::{Writer, now_ms};

/// Name of the file remembering the newest generation that passed a full
/// verification (a load, or verify-after-write); retention never deletes it.
const VERIFIED: &str = "VERIFIED";
const VERIFIED_TMP: &str = "VERIFIED.tmp";

/// What [`Store::load`] does when it finds damage. The three policies
/// mirror the server's `on_corrupt` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadPolicy {
    /// Quarantine each damaged generation (and a damaged `CURRENT`), load
    /// the newest older one that verifies and point `CURRENT` at it. When
    /// none verifies, return [`Error::NoValidGeneration`].
    Fallback,
    /// As [`Fallback`](Self::Fallback), but when none verifies return a
    /// report with nothing loaded: the caller starts empty.
    Empty,
    /// On any damage (the generation `CURRENT` names fails verification,
    /// `CURRENT` is unreadable, or it is missing while generations exist)
    /// return [`Error::Refused`] and leave the data directory exactly as it
    /// was: nothing quarantined, `CURRENT` and `VERIFIED` not written,
    /// nothing created. So every load with this policy refuses again,
    /// until one with another policy accepts the older data.
    Refuse,
}

/// Disk space taken by the data directory, as last observed by the store
/// (see [`Store::disk_usage`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DiskUsage {
    /// Sealed generations in the data directory (the retained committed
    /// ones, plus the last verified one when retention keeps it).
    pub generations: u64,
    /// Bytes they take on disk (allocated blocks).
    pub generation_bytes: u64,
    /// What `quarantine/` holds.
    pub quarantine: QuarantineInfo,
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
    quarantine_retain: usize,
    verify_after_write: bool,
}

/// Default of [`StoreBuilder::quarantine_retain`].
pub const DEFAULT_QUARANTINE_RETAIN: usize = 4;

impl StoreBuilder {
    /// How many committed generations to keep (at least 1). Default 2.
    /// The newest generation that passed verification is kept in addition
    /// when it is older.
    pub fn retain(mut self, generations: usize) -> Self {
        self.retain = generations.max(1);
        self
    }

    /// How many entries of `quarantine/` to keep (at least 1). Default
    /// [`DEFAULT_QUARANTINE_RETAIN`] (4).
    ///
    /// After each move into the quarantine, and at open, the oldest
    /// entries beyond this many are deleted (with a WARN log line naming
    /// each), so damaged data cannot fill the disk: the quarantine takes at
    /// most this many generations' worth of space. Age is the time an entry
    /// was quarantined. Nothing is deleted below the bound.
    pub fn quarantine_retain(mut self, entries: usize) -> Self {
        self.quarantine_retain = entries.max(1);
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
    /// `CURRENT` is quarantined as uncommitted. This happens whatever
    /// policy the load will use: these are crash leftovers that never were
    /// committed, not damage. Then the quarantine is trimmed to
    /// [`quarantine_retain`](Self::quarantine_retain) and the disk usage
    /// reported by [`Store::disk_usage`] is measured.
    ///
    /// # Errors
    ///
    /// [`Error::Locked`] if another `Store` holds the directory,
    /// [`Error::Io`] if it cannot be created or read (including an I/O
    /// error reading `CURRENT` or `VERIFIED`).
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
        quarantine::trim(&dir, self.quarantine_retain);
        let mut usage = Usage::default();
        for n in list(&dir)?.sealed {
            usage
                .generations
                .insert(n, layout::disk_usage(&dir.join(layout::gen_dir_name(n))));
        }
        usage.quarantine = quarantine::info(&dir)?;
        tracing::debug!(
            dir = %dir.display(),
            current = ?state.current.as_ref().map(|m| m.generation),
            "store opened"
        );
        Ok(Store {
            shared: Arc::new(Shared {
                dir,
                retain: self.retain,
                quarantine_retain: self.quarantine_retain,
                verify_after_write: self.verify_after_write,
                _lock: lock,
                state: Mutex::new(state),
                usage: Mutex::new(usage),
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
    quarantine_retain: usize,
    verify_after_write: bool,
    /// Held for the advisory lock; released when the file is closed.
    _lock: File,
    /// Guards directory-level changes (generation numbers, `CURRENT`,
    /// retention, quarantine). Held for a whole load so retention never
    /// deletes a generation being read.
    state: Mutex<State>,
    /// What [`Store::disk_usage`] reports. A lock of its own, held only to
    /// copy in or out, so a query never waits for a load or a commit (or
    /// the disk): whoever changes the directory measures, then stores.
    usage: Mutex<Usage>,
}

#[derive(Default)]
struct Usage {
    /// Bytes on disk of each sealed generation.
    generations: BTreeMap<u64, u64>,
    quarantine: QuarantineInfo,
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
    /// leaves them alone (damaged data is deleted only by the quarantine's
    /// own bound).
    bad: BTreeSet<u64>,
}

/// What `publish` did, so the writer knows whether `CURRENT` moved even
/// when an error is returned.
pub(crate) struct Published {
    pub(crate) renamed: bool,
    pub(crate) result: Result<()>,
    /// Bytes on disk of the new generation (0 unless committed).
    pub(crate) bytes: u64,
}

pub(crate) fn take_lock(dir: &Path) -> Result<File> {
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

/// Reads `CURRENT` or `VERIFIED`: `None` when absent, the decode error
/// when its content is damaged, [`Error::Io`] for any other read error
/// (never treated as damage, see `fault.rs`).
fn read_pointer(
    path: &Path,
    kind: Kind,
) -> Result<Option<std::result::Result<GenerationMeta, String>>> {
    match load::read_file(path) {
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
    l.quarantined_max = quarantine::max_generation(dir)?;
    l.sealed.sort_unstable_by(|a, b| b.cmp(a));
    Ok(l)
}

fn quarantine_generation(dir: &Path, generation: u64, why: &str) -> Result<PathBuf> {
    quarantine::move_in(
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
    // A damaged VERIFIED is only a lost hint; an I/O error reading it is
    // the disk's, and stops the open like one on CURRENT.
    if let Some(Ok(v)) = read_pointer(&dir.join(VERIFIED), Kind::Seal)? {
        state.last_verified = Some(v.generation);
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
            quarantine::move_in(dir, &path, &format!("{n:020}-stray-partial")).map(|_| ())
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

    fn usage(&self) -> MutexGuard<'_, Usage> {
        self.usage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn end_write(&self) {
        self.lock().writing = false;
    }

    /// Moves a damaged generation into the quarantine, trims it and
    /// records the new usage. Called with the state lock held.
    fn quarantine_generation(&self, generation: u64, why: &str) -> Result<PathBuf> {
        let moved = quarantine_generation(&self.dir, generation, why);
        if moved.is_ok() {
            self.usage().generations.remove(&generation);
        }
        self.after_quarantine();
        moved
    }

    /// Trims the quarantine to its bound and measures it again.
    fn after_quarantine(&self) {
        quarantine::trim(&self.dir, self.quarantine_retain);
        match quarantine::info(&self.dir) {
            Ok(info) => self.usage().quarantine = info,
            Err(e) => tracing::warn!(error = %e, "could not measure the quarantine"),
        }
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
                        bytes: 0,
                    };
                }
                Err(Failure::Damage(d)) => {
                    let q = self.quarantine_generation(meta.generation, d.slug());
                    tracing::error!(generation = meta.generation, damage = %d, quarantined = ?q.ok(), "new generation failed verification");
                    return Published {
                        renamed: false,
                        result: Err(Error::Damaged {
                            generation: meta.generation,
                            damage: d,
                        }),
                        bytes: 0,
                    };
                }
            }
        }
        let bytes = layout::disk_usage(gen_dir);
        match write_current(&self.dir, meta) {
            Ok(()) => {}
            Err((renamed, e)) => {
                if renamed {
                    state.current = Some(meta.clone());
                    self.usage().generations.insert(meta.generation, bytes);
                }
                return Published {
                    renamed,
                    result: Err(e),
                    bytes,
                };
            }
        }
        state.current = Some(meta.clone());
        self.usage().generations.insert(meta.generation, bytes);
        if self.verify_after_write {
            self.set_verified(&mut state, meta);
        }
        self.retain(&state);
        Published {
            renamed: true,
            result: Ok(()),
            bytes,
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
    /// last verified one and any known-damaged one, then brings the
    /// recorded usage in line with what is on disk.
    fn retain(&self, state: &State) {
        let Some(cur) = &state.current else { return };
        let Ok(listing) = list(&self.dir) else { return };
        let committed = listing
            .sealed
            .iter()
            .copied()
            .filter(|&n| n <= cur.generation && !state.bad.contains(&n));
        let mut removed = BTreeSet::new();
        for n in committed.skip(self.retain) {
            if Some(n) == state.last_verified {
                continue;
            }
            let path = self.dir.join(layout::gen_dir_name(n));
            let doomed = self.dir.join(layout::deleting_dir_name(n));
            // Rename first: a crash mid-delete leaves `.deleting`, which
            // the next open finishes, never a half-deleted `gen-N`.
            match fs::rename(&path, &doomed).and_then(|()| fs::remove_dir_all(&doomed)) {
                Ok(()) => {
                    removed.insert(n);
                    tracing::debug!(generation = n, "retention removed generation");
                }
                Err(e) => {
                    tracing::warn!(generation = n, error = %e, "retention could not remove generation")
                }
            }
        }
        let _ = layout::fsync_dir(&self.dir);
        // Measured outside the usage lock: a walk of a generation's files.
        let known: BTreeMap<u64, u64> = self.usage().generations.clone();
        let present: BTreeMap<u64, u64> = listing
            .sealed
            .iter()
            .filter(|n| !removed.contains(n))
            .map(|&n| {
                let bytes = known
                    .get(&n)
                    .copied()
                    .unwrap_or_else(|| layout::disk_usage(&self.dir.join(layout::gen_dir_name(n))));
                (n, bytes)
            })
            .collect();
        self.usage().generations = present;
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
            quarantine_retain: DEFAULT_QUARANTINE_RETAIN,
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

    /// What `quarantine/` holds, from memory: measured at open and by the
    /// store after each change it makes there. Never touches the disk, and
    /// never waits for a load or a commit in progress.
    pub fn quarantined(&self) -> QuarantineInfo {
        self.shared.usage().quarantine
    }

    /// Disk space the data directory takes, from memory (like
    /// [`quarantined`](Self::quarantined)): the sealed generations and the
    /// quarantine. A generation being written is not counted until it is
    /// committed. Changes made behind the store's back are seen at the next
    /// open or commit.
    pub fn disk_usage(&self) -> DiskUsage {
        let usage = self.shared.usage();
        DiskUsage {
            generations: usage.generations.len() as u64,
            generation_bytes: usage.generations.values().sum(),
            quarantine: usage.quarantine,
        }
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
        let generation = self.claim_generation()?;
        Writer::start(Arc::clone(&self.shared), generation, Box::new(|| {}))
    }

    /// Takes the writer slot and the next generation number.
    fn claim_generation(&self) -> Result<u64> {
        let mut state = self.shared.lock();
        if state.writing {
            return Err(Error::Busy);
        }
        state.writing = true;
        let g = state.next_generation;
        state.next_generation = g.saturating_add(1);
        Ok(g)
    }

    /// [`begin`](Self::begin), with `between_pages` called on the ingestion
    /// thread after each page it hands to fjall: the caller's way to pace
    /// that thread against others (cairn-persist yields the CPU there while
    /// a snapshot is within its politeness budget).
    ///
    /// # Errors
    /// As [`begin`](Self::begin).
    pub fn begin_paced(&self, between_pages: Box<dyn FnMut() + Send>) -> Result<Writer> {
        let generation = self.claim_generation()?;
        Writer::start(Arc::clone(&self.shared), generation, between_pages)
    }

    /// Streams the newest committed generation that passes verification to
    /// `sink`; what happens on damage depends on `policy`.
    ///
    /// Candidates: the generation `CURRENT` names, then older sealed
    /// generations, newest first. If `CURRENT` is damaged (or missing while
    /// generations exist) every sealed generation is a candidate.
    ///
    /// Under [`LoadPolicy::Fallback`] and [`LoadPolicy::Empty`] each
    /// damaged generation, and a damaged `CURRENT`, is moved to
    /// `quarantine/` and the next candidate is tried; after a fallback
    /// `CURRENT` is pointed at the generation that loaded, so the next
    /// start does not repeat the search. Under [`LoadPolicy::Refuse`] the
    /// first damage stops the load and nothing in the directory changes.
    /// A load that succeeds records the generation in `VERIFIED`.
    ///
    /// # Errors
    ///
    /// [`Error::Refused`] under [`LoadPolicy::Refuse`] on any damage;
    /// [`Error::NoValidGeneration`] under [`LoadPolicy::Fallback`] when
    /// nothing loads; [`Error::Sink`] if the sink refuses; [`Error::Io`] (or
    /// [`Error::Fjall`]) for a read error that does not prove damage (EIO,
    /// a timeout, permission, a full or read-only file system, out of file
    /// descriptors or memory, ...), which stops the load without
    /// quarantining anything, whatever the policy. After an error the sink
    /// may hold a partial generation: discard it.
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
        let refuse = |corruption: Corruption| {
            tracing::error!(
                dir = %dir.display(),
                %corruption,
                "refusing to load (policy refuse); the data directory was not changed"
            );
            Err(Error::Refused {
                dir: dir.clone(),
                corruption,
            })
        };
        let listing = list(dir)?;
        let current = match read_pointer(&dir.join(CURRENT), Kind::Current)? {
            Some(Ok(meta)) => Some(meta),
            Some(Err(why)) => {
                if policy == LoadPolicy::Refuse {
                    return refuse(Corruption::Current(why));
                }
                let to = quarantine::move_in(
                    dir,
                    &dir.join(CURRENT),
                    &format!("CURRENT-{}-damaged", now_ms()),
                );
                tracing::error!(reason = %why, quarantined = ?to.ok(), "CURRENT is damaged");
                self.shared.after_quarantine();
                report.current_damaged = Some(why);
                None
            }
            None if !listing.sealed.is_empty() => {
                let why = "CURRENT is missing".to_owned();
                if policy == LoadPolicy::Refuse {
                    return refuse(Corruption::Current(format!(
                        "{why} while {} sealed generation(s) exist",
                        listing.sealed.len()
                    )));
                }
                report.current_damaged = Some(why);
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
                Err(Failure::Fatal(e)) => {
                    tracing::error!(generation = n, error = %e, "loading stopped by an error that is not damage; nothing quarantined");
                    return Err(e);
                }
                Err(Failure::Damage(damage)) => {
                    if policy == LoadPolicy::Refuse {
                        return refuse(Corruption::Generation {
                            generation: n,
                            damage,
                        });
                    }
                    tracing::error!(generation = n, %damage, "generation failed verification");
                    let quarantined_to = if damage == Damage::Missing {
                        None
                    } else {
                        match self.shared.quarantine_generation(n, damage.slug()) {
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
            if policy != LoadPolicy::Empty {
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
