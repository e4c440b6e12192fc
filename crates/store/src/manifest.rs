//! `MANIFEST`: the size and xxh3-128 hash of every file of a generation's
//! fjall database, taken at commit and checked at load before fjall opens
//! anything.
//!
//! fjall checks block checksums, but some of its metadata (the `v<N>`
//! version files, table trailers) is decoded without one, and a damaged
//! length there makes it allocate without bound and abort the process (seen
//! here: a flipped bit in `keyspaces/1/v2` → a 141 GB allocation). So fjall
//! is only ever handed bytes that are exactly the ones written.
//!
//! Encoding: `"CAIRNMAN"`, `u32` LE entry count, then per file `u16` LE
//! path length, the relative path (`/`-separated UTF-8), `u64` LE size,
//! 16-byte xxh3-128 (LE); finally a CRC32 (LE) of everything before it.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use xxhash_rust::xxh3::{Xxh3, xxh3_128};

use crate::error::{Damage, Error, IoContext, Result};
use crate::fault;
use crate::load::Failure;

const MAGIC: &[u8; 8] = b"CAIRNMAN";
/// Far above what fjall creates for one generation (a few dozen files).
const MAX_ENTRIES: u32 = 1 << 20;

#[derive(Debug, PartialEq, Eq)]
struct Entry {
    path: String,
    size: u64,
    hash: [u8; 16],
}

/// Hash of an encoded manifest, stored in `SEAL` and `CURRENT`.
pub(crate) fn digest(encoded: &[u8]) -> [u8; 16] {
    xxh3_128(encoded).to_le_bytes()
}

/// Walks `db_dir` and returns the encoded manifest.
pub(crate) fn build(db_dir: &Path) -> Result<Vec<u8>> {
    let mut entries = Vec::new();
    walk(db_dir, "", &mut entries)?;
    let mut out = Vec::with_capacity(12 + entries.len() * 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in &entries {
        out.extend_from_slice(&(e.path.len() as u16).to_le_bytes());
        out.extend_from_slice(e.path.as_bytes());
        out.extend_from_slice(&e.size.to_le_bytes());
        out.extend_from_slice(&e.hash);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<Entry>) -> Result<()> {
    let mut names: Vec<_> = fault::retry_io(dir, || {
        std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
    })
    .at(dir)?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let name = name.into_string().map_err(|_| Error::Io {
            path: path.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "non-UTF-8 file name"),
        })?;
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let md = fault::retry_io(&path, || std::fs::symlink_metadata(&path)).at(&path)?;
        if md.is_dir() {
            walk(&path, &rel, out)?;
        } else {
            let (size, hash) = fault::retry_io(&path, || hash_file(&path)).at(&path)?;
            out.push(Entry {
                path: rel,
                size,
                hash,
            });
        }
    }
    Ok(())
}

fn hash_file(path: &Path) -> std::io::Result<(u64, [u8; 16])> {
    let mut f = File::open(path)?;
    let mut h = Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
        size += n as u64;
    }
    Ok((size, h.digest128().to_le_bytes()))
}

fn decode(bytes: &[u8]) -> std::result::Result<Vec<Entry>, String> {
    let Some((body, crc)) = bytes.split_last_chunk::<4>() else {
        return Err("truncated".into());
    };
    if crc32fast::hash(body) != u32::from_le_bytes(*crc) {
        return Err("checksum mismatch".into());
    }
    let mut r = body;
    let mut take = |n: usize| -> std::result::Result<&[u8], String> {
        let (head, rest) = r.split_at_checked(n).ok_or("truncated")?;
        r = rest;
        Ok(head)
    };
    if take(8)? != MAGIC {
        return Err("bad magic".into());
    }
    let count = u32::from_le_bytes(take(4)?.try_into().map_err(|_| "count")?);
    if count > MAX_ENTRIES {
        return Err(format!("{count} entries"));
    }
    let mut entries = Vec::new();
    for _ in 0..count {
        let len = u16::from_le_bytes(take(2)?.try_into().map_err(|_| "len")?);
        let path = std::str::from_utf8(take(usize::from(len))?)
            .map_err(|_| "non-UTF-8 path")?
            .to_owned();
        let size = u64::from_le_bytes(take(8)?.try_into().map_err(|_| "size")?);
        let hash: [u8; 16] = take(16)?.try_into().map_err(|_| "hash")?;
        entries.push(Entry { path, size, hash });
    }
    if !r.is_empty() {
        return Err("trailing bytes".into());
    }
    Ok(entries)
}

/// Checks that `db_dir` holds exactly the files of `encoded` with their
/// sizes and hashes, and that `encoded` is the manifest the seal names.
///
/// An I/O error while reading the files is damage only when it proves it
/// (a file vanished); otherwise it stops the load (see [`crate::fault`]).
pub(crate) fn verify(
    db_dir: &Path,
    encoded: &[u8],
    expected_digest: &[u8; 16],
) -> std::result::Result<(), Failure> {
    if digest(encoded) != *expected_digest {
        return Err(Damage::Files("manifest does not match the seal".into()).into());
    }
    let want = decode(encoded).map_err(|why| Damage::Files(format!("manifest: {why}")))?;
    let mut have = Vec::new();
    walk(db_dir, "", &mut have).map_err(|e| match e {
        Error::Io { path, source } => Failure::io(&path, source, |e| {
            Damage::Files(format!("{}: {e}", path.display()))
        }),
        e => Failure::Fatal(e),
    })?;
    if have.len() != want.len() {
        return Err(
            Damage::Files(format!("{} files instead of {}", have.len(), want.len())).into(),
        );
    }
    for (h, w) in have.iter().zip(&want) {
        if h.path != w.path {
            return Err(Damage::Files(format!("found {}, expected {}", h.path, w.path)).into());
        }
        if h.size != w.size {
            return Err(Damage::Files(format!(
                "{}: {} bytes instead of {}",
                h.path, h.size, w.size
            ))
            .into());
        }
        if h.hash != w.hash {
            return Err(Damage::Files(format!("{}: content hash mismatch", h.path)).into());
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn detects_every_kind_of_change() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path();
        std::fs::create_dir_all(db.join("a/b")).unwrap();
        std::fs::write(db.join("a/b/1"), vec![5u8; 3000]).unwrap();
        std::fs::write(db.join("top"), b"xyz").unwrap();
        let m = build(db).unwrap();
        let d = digest(&m);
        assert!(verify(db, &m, &d).is_ok());

        std::fs::write(db.join("top"), b"xyZ").unwrap();
        assert!(matches!(
            verify(db, &m, &d),
            Err(Failure::Damage(Damage::Files(_)))
        ));
        std::fs::write(db.join("top"), b"xy").unwrap();
        assert!(matches!(
            verify(db, &m, &d),
            Err(Failure::Damage(Damage::Files(_)))
        ));
        std::fs::write(db.join("top"), b"xyz").unwrap();
        std::fs::write(db.join("extra"), b"").unwrap();
        assert!(matches!(
            verify(db, &m, &d),
            Err(Failure::Damage(Damage::Files(_)))
        ));
        std::fs::remove_file(db.join("extra")).unwrap();
        assert!(verify(db, &m, &d).is_ok());

        for i in 0..m.len() {
            let mut bad = m.clone();
            bad[i] ^= 0x20;
            assert!(decode(&bad).is_err() || digest(&bad) != d);
            assert!(verify(db, &bad, &d).is_err(), "{i}");
            assert!(decode(&m[..i]).is_err());
        }
    }
}
