//! Names inside the data directory and the small filesystem helpers the
//! commit protocol is built from.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

pub(crate) const LOCK: &str = "LOCK";
pub(crate) const CURRENT: &str = "CURRENT";
pub(crate) const CURRENT_TMP: &str = "CURRENT.tmp";
pub(crate) const QUARANTINE: &str = "quarantine";
pub(crate) const SEAL: &str = "SEAL";
pub(crate) const SEAL_TMP: &str = "SEAL.tmp";
pub(crate) const MANIFEST: &str = "MANIFEST";
pub(crate) const MANIFEST_TMP: &str = "MANIFEST.tmp";
/// The fjall database lives one level down, so fjall never sees `SEAL`.
pub(crate) const DB: &str = "db";
/// The one fjall keyspace of a generation.
pub(crate) const KEYSPACE: &str = "records";
/// fjall key of the header; pages of records use `1..=n`, so ingestion
/// order is the stream order and no user key ever becomes a fjall key.
pub(crate) const HEADER_KEY: u64 = 0;
/// fjall key of the footer: sorts after every record.
pub(crate) const FOOTER_KEY: u64 = u64::MAX;
const GEN_PREFIX: &str = "gen-";
const PARTIAL_SUFFIX: &str = ".partial";
const DELETING_SUFFIX: &str = ".deleting";

/// What a data-directory entry name says about itself.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum EntryName {
    /// `gen-<20 digits>`: renamed into place after its seal was written.
    Sealed(u64),
    /// `gen-<20 digits>.partial`: being written, or left by a crash.
    Partial(u64),
    /// `gen-<20 digits>.deleting`: renamed by retention before deletion, so
    /// a crash mid-delete never leaves a half-deleted `gen-N`.
    Deleting(u64),
    Other,
}

pub(crate) fn gen_dir_name(generation: u64) -> String {
    format!("{GEN_PREFIX}{generation:020}")
}

pub(crate) fn partial_dir_name(generation: u64) -> String {
    format!("{GEN_PREFIX}{generation:020}{PARTIAL_SUFFIX}")
}

pub(crate) fn deleting_dir_name(generation: u64) -> String {
    format!("{GEN_PREFIX}{generation:020}{DELETING_SUFFIX}")
}

fn parse_gen_digits(s: &str) -> Option<u64> {
    if s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

pub(crate) fn classify(name: &str) -> EntryName {
    let Some(rest) = name.strip_prefix(GEN_PREFIX) else {
        return EntryName::Other;
    };
    if let Some(digits) = rest.strip_suffix(PARTIAL_SUFFIX) {
        return parse_gen_digits(digits).map_or(EntryName::Other, EntryName::Partial);
    }
    if let Some(digits) = rest.strip_suffix(DELETING_SUFFIX) {
        return parse_gen_digits(digits).map_or(EntryName::Other, EntryName::Deleting);
    }
    parse_gen_digits(rest).map_or(EntryName::Other, EntryName::Sealed)
}

/// Leading generation number of a quarantine entry (`<20 digits>-reason`),
/// so numbers of quarantined generations are never reused.
pub(crate) fn quarantine_generation(name: &str) -> Option<u64> {
    name.get(..20).and_then(parse_gen_digits)
}

/// Creates a directory (owner-only on Unix) if it does not exist.
pub(crate) fn create_private_dir(path: &Path) -> Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path).at(path)
}

/// Opens a file for writing, created owner-only on Unix, truncating it.
pub(crate) fn create_private_file(path: &Path) -> Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path).at(path)
}

/// Makes a directory's entries (creations, renames) durable.
pub(crate) fn fsync_dir(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(path).and_then(|f| f.sync_all()).at(path)
    }
    #[cfg(not(unix))]
    {
        // Windows cannot open a directory as a file; NTFS journals renames.
        let _ = path;
        Ok(())
    }
}

/// fsyncs every file and directory below `root` (and `root` itself).
///
/// fjall syncs what it considers necessary for its own recovery, but a
/// generation must be complete on disk before its seal exists, including
/// files fjall would rebuild or discard (which would break our count).
pub(crate) fn fsync_tree(root: &Path) -> Result<()> {
    for entry in fs::read_dir(root).at(root)? {
        let entry = entry.at(root)?;
        let path = entry.path();
        let kind = entry.file_type().at(&path)?;
        if kind.is_dir() {
            fsync_tree(&path)?;
        } else if kind.is_file() {
            // Opened read-only: fsync on a read-only descriptor is allowed on
            // Linux and macOS and does not need write permission.
            File::open(&path).and_then(|f| f.sync_all()).at(&path)?;
        }
    }
    fsync_dir(root)
}

/// Writes `bytes` to `dir/tmp_name`, fsyncs it, renames it over
/// `dir/final_name` and fsyncs `dir`: readers see the old or the new
/// content, never a mix.
pub(crate) fn replace_file(
    dir: &Path,
    tmp_name: &str,
    final_name: &str,
    bytes: &[u8],
) -> Result<()> {
    let tmp = dir.join(tmp_name);
    let dst = dir.join(final_name);
    {
        let mut f = create_private_file(&tmp)?;
        f.write_all(bytes).at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    fs::rename(&tmp, &dst).at(&dst)?;
    fsync_dir(dir)
}

/// Bytes allocated on disk for everything under `path` (sparse files, such
/// as fjall's preallocated journal, count only what they use).
pub(crate) fn disk_usage(path: &Path) -> u64 {
    let Ok(md) = fs::symlink_metadata(path) else {
        return 0;
    };
    let own = allocated(&md);
    if !md.is_dir() {
        return own;
    }
    let Ok(rd) = fs::read_dir(path) else {
        return own;
    };
    own + rd.flatten().map(|e| disk_usage(&e.path())).sum::<u64>()
}

#[cfg(unix)]
fn allocated(md: &fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    md.blocks().saturating_mul(512)
}

#[cfg(not(unix))]
fn allocated(md: &fs::Metadata) -> u64 {
    md.len()
}

/// A free path `base`, `base.1`, `base.2`, ... so nothing is overwritten.
pub(crate) fn unique_path(base: PathBuf) -> PathBuf {
    if !base.exists() {
        return base;
    }
    let mut i = 1u32;
    loop {
        let mut name = base.as_os_str().to_owned();
        name.push(format!(".{i}"));
        let p = PathBuf::from(name);
        if !p.exists() {
            return p;
        }
        i = i.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_reject_lookalikes() {
        assert_eq!(classify(&gen_dir_name(7)), EntryName::Sealed(7));
        assert_eq!(classify(&partial_dir_name(7)), EntryName::Partial(7));
        assert_eq!(classify(&deleting_dir_name(7)), EntryName::Deleting(7));
        assert_eq!(classify("gen-7"), EntryName::Other);
        assert_eq!(classify("gen-0000000000000000000x"), EntryName::Other);
        assert_eq!(classify("gen-00000000000000000007.tmp"), EntryName::Other);
        assert_eq!(classify("CURRENT"), EntryName::Other);
        assert_eq!(
            classify(&gen_dir_name(u64::MAX)),
            EntryName::Sealed(u64::MAX)
        );
        assert_eq!(
            quarantine_generation("00000000000000000009-digest"),
            Some(9)
        );
        assert_eq!(quarantine_generation("CURRENT-1"), None);
    }
}
