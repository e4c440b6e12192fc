//! `quarantine/`: where damaged generations (and damaged `CURRENT` files)
//! are moved instead of being loaded, kept up to a bound.
//!
//! Entries are ordered by age, the time they were quarantined: the move
//! stamps the entry's modification time (a renamed directory keeps its
//! own), so the order survives a copy with `cp -a` or `rsync -t`. Ties
//! (coarse file system clocks) are broken by name, which for generations
//! is their number. Beyond the bound the oldest are deleted, each renamed
//! to `<name>.deleting` first so a crash mid-delete leaves a name the next
//! open finishes deleting, never a half-deleted entry that looks like the
//! newest one.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::{IoContext, Result};
use crate::layout::{self, QUARANTINE};

const DELETING_SUFFIX: &str = ".deleting";

/// What `quarantine/` holds, as last observed by the store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuarantineInfo {
    /// Quarantined entries (generations and damaged `CURRENT` files).
    pub entries: u64,
    /// Bytes they take on disk (allocated blocks).
    pub bytes: u64,
}

struct Entry {
    name: String,
    path: PathBuf,
    modified: SystemTime,
}

/// The entries of `quarantine/` (empty when it does not exist).
fn list(dir: &Path) -> Result<Vec<Entry>> {
    let q = dir.join(QUARANTINE);
    let rd = match fs::read_dir(&q) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).at(&q),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.at(&q)?;
        let path = entry.path();
        let Ok(name) = entry.file_name().into_string() else {
            // Not ours (every name the store gives is ASCII): left alone.
            continue;
        };
        let modified = entry
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        out.push(Entry {
            name,
            path,
            modified,
        });
    }
    Ok(out)
}

/// The largest generation number among quarantined generations, so
/// numbers are not reused while their quarantined copy exists.
pub(crate) fn max_generation(dir: &Path) -> Result<Option<u64>> {
    Ok(list(dir)?
        .iter()
        .filter_map(|e| layout::quarantine_generation(&e.name))
        .max())
}

/// Moves `src` to `quarantine/<name>` (never overwriting), stamps its age
/// and returns where it went.
pub(crate) fn move_in(dir: &Path, src: &Path, name: &str) -> Result<PathBuf> {
    let q = dir.join(QUARANTINE);
    layout::create_private_dir(&q)?;
    let dst = layout::unique_path(q.join(name));
    fs::rename(src, &dst).at(&dst)?;
    layout::fsync_dir(&q)?;
    layout::fsync_dir(dir)?;
    if let Err(e) = fs::File::open(&dst).and_then(|f| f.set_modified(SystemTime::now())) {
        // Only the deletion order suffers: it falls back to the entry's
        // last modification.
        tracing::debug!(entry = %dst.display(), error = %e, "could not stamp quarantine time");
    }
    tracing::warn!(from = %src.display(), to = %dst.display(), "quarantined");
    Ok(dst)
}

/// Deletes the oldest entries beyond the newest `keep`, and finishes
/// deletions a crash interrupted. Failures are logged, not returned: a
/// quarantine that cannot be trimmed must not stop a load or a commit.
pub(crate) fn trim(dir: &Path, keep: usize) {
    let mut entries = match list(dir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!(error = %e, "could not list the quarantine to trim it");
            return;
        }
    };
    let (unfinished, mut kept): (Vec<Entry>, Vec<Entry>) = entries
        .drain(..)
        .partition(|e| e.name.ends_with(DELETING_SUFFIX));
    for e in unfinished {
        remove(&e.path);
    }
    kept.sort_by(|a, b| {
        b.modified
            .cmp(&a.modified)
            .then_with(|| b.name.cmp(&a.name))
    });
    for e in kept.into_iter().skip(keep) {
        let doomed = e
            .path
            .with_file_name(format!("{}{DELETING_SUFFIX}", e.name));
        match fs::rename(&e.path, &doomed) {
            Ok(()) => {
                remove(&doomed);
                tracing::warn!(
                    entry = %e.name,
                    keep,
                    "deleted the oldest quarantined entry (beyond quarantine_retain)"
                );
            }
            Err(err) => tracing::warn!(
                entry = %e.path.display(),
                error = %err,
                "could not delete a quarantined entry beyond quarantine_retain"
            ),
        }
    }
    let _ = layout::fsync_dir(&dir.join(QUARANTINE));
}

fn remove(path: &Path) {
    let r = match fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    if let Err(e) = r {
        tracing::warn!(entry = %path.display(), error = %e, "could not delete a quarantined entry");
    }
}

/// Counts the entries and their disk usage. Walks every entry: called by
/// the store after it changed the quarantine, never on a caller's query.
pub(crate) fn info(dir: &Path) -> Result<QuarantineInfo> {
    let mut info = QuarantineInfo::default();
    for e in list(dir)? {
        if !e.name.ends_with(DELETING_SUFFIX) {
            info.entries += 1;
        }
        info.bytes += layout::disk_usage(&e.path);
    }
    Ok(info)
}
