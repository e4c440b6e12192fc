//! Checks a generation directory against the shapes fjall 3.1 creates,
//! before fjall opens it.
//!
//! fjall `expect`s/`assert`s on some unexpected entries (a non-numeric
//! directory under `keyspaces/`, a directory under `tables/` or named
//! `*.jnl`), and such a panic during open aborts the process. So anything
//! not in this whitelist makes the generation damaged instead. The list was
//! taken from fjall 3.1.13 / lsm-tree 3.1.10 (`file.rs`, `recovery.rs`,
//! `journal/recovery.rs`, `tree/mod.rs`, `vlog/mod.rs`).

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::Damage;
use crate::fault;
use crate::layout::{DB, MANIFEST, SEAL};
use crate::load::Failure;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Lists `dir`, rejecting symlinks, non-UTF-8 names and anything else.
/// A listing that fails with an I/O error is not damage unless the error
/// proves it (see [`crate::fault`]).
fn entries(dir: &Path) -> Result<Vec<(String, Kind, PathBuf)>, Failure> {
    let listed = fault::retry_io(dir, || {
        fs::read_dir(dir)?
            .map(|entry| {
                let entry = entry?;
                let ft = entry.file_type()?;
                Ok((entry.file_name(), ft, entry.path()))
            })
            .collect::<std::io::Result<Vec<_>>>()
    })
    .map_err(|e| Failure::io(dir, e, |e| Damage::Fjall(format!("{}: {e}", dir.display()))))?;
    let mut out = Vec::with_capacity(listed.len());
    for (name, ft, path) in listed {
        let name = name
            .into_string()
            .map_err(|_| Damage::ForeignEntry(path.clone()))?;
        let kind = if ft.is_file() {
            Kind::File
        } else if ft.is_dir() {
            Kind::Dir
        } else {
            return Err(Damage::ForeignEntry(path).into());
        };
        out.push((name, kind, path));
    }
    Ok(out)
}

/// Validates `gen_dir` (a sealed or partial generation directory).
pub(crate) fn generation_dir(gen_dir: &Path) -> Result<(), Failure> {
    let mut has_db = false;
    for (name, kind, path) in entries(gen_dir)? {
        match (name.as_str(), kind) {
            (SEAL | MANIFEST, Kind::File) => {}
            (DB, Kind::Dir) => has_db = true,
            _ => return Err(Damage::ForeignEntry(path).into()),
        }
    }
    if !has_db {
        return Err(Damage::Fjall("database directory is missing".into()).into());
    }
    database_dir(&gen_dir.join(DB))
}

fn database_dir(db: &Path) -> Result<(), Failure> {
    let mut has_keyspaces = false;
    let mut has_version = false;
    for (name, kind, path) in entries(db)? {
        let ok = match kind {
            Kind::File => {
                has_version |= name == "version";
                name == "lock"
                    || name == "version"
                    || name.strip_suffix(".jnl").is_some_and(is_digits)
            }
            Kind::Dir => {
                has_keyspaces |= name == "keyspaces";
                name == "keyspaces"
            }
        };
        if !ok {
            return Err(Damage::ForeignEntry(path).into());
        }
    }
    // Without these fjall would quietly create a fresh, empty database
    // inside the damaged generation instead of failing.
    if !has_version || !has_keyspaces {
        return Err(
            Damage::Fjall("version marker or keyspaces directory is missing".into()).into(),
        );
    }
    let mut trees = 0;
    for (name, kind, path) in entries(&db.join("keyspaces"))? {
        if kind != Kind::Dir || !is_digits(&name) {
            return Err(Damage::ForeignEntry(path).into());
        }
        tree_dir(&path)?;
        trees += 1;
    }
    // The meta keyspace `0` and the records keyspace.
    if trees != 2 {
        return Err(Damage::Fjall(format!("{trees} keyspaces instead of 2")).into());
    }
    Ok(())
}

fn tree_dir(tree: &Path) -> Result<(), Failure> {
    let mut has_current = false;
    for (name, kind, path) in entries(tree)? {
        match kind {
            Kind::File => {
                has_current |= name == "current";
                let version = name.strip_prefix('v').is_some_and(is_digits);
                if name != "current" && !version {
                    return Err(Damage::ForeignEntry(path).into());
                }
            }
            Kind::Dir if name == "tables" || name == "blobs" => {
                for (name, kind, path) in entries(&path)? {
                    if kind != Kind::File || !is_digits(&name) {
                        return Err(Damage::ForeignEntry(path).into());
                    }
                }
            }
            Kind::Dir => return Err(Damage::ForeignEntry(path).into()),
        }
    }
    if !has_current {
        return Err(Damage::Fjall(format!("{} has no version pointer", tree.display())).into());
    }
    Ok(())
}
