//! Header, footer and the digest over a sequence of records.

use xxhash_rust::xxh3::Xxh3;

use crate::error::{Error, Result};

/// The format version this build writes and the newest it reads.
///
/// Version 2 writes a chunked entry's key once and splits keys and single
/// elements larger than a chunk (see [`Chunk`](crate::Chunk)). It reads
/// version 1 too: a version-1 record is a valid version-2 record, and the
/// [`Assembler`](crate::Assembler) accepts version 1's key in every chunk.
pub const FORMAT_VERSION: u32 = 2;

/// The oldest format version this build reads.
pub const OLDEST_FORMAT_VERSION: u32 = 1;

/// Magic bytes opening a [`Header`].
pub const HEADER_MAGIC: [u8; 8] = *b"CAIRNSNP";
/// Magic bytes of a [`Footer`] (after its `0xFFFF_FFFF` marker).
pub const FOOTER_MAGIC: [u8; 8] = *b"CAIRNEND";
/// The value in a record's length position that announces the footer.
pub const FOOTER_MARKER: u32 = u32::MAX;

/// Encoded size of a [`Header`].
pub const HEADER_LEN: usize = 24;
/// Encoded size of a [`Footer`].
pub const FOOTER_LEN: usize = 40;

/// The start of a snapshot: magic, format version, creation time.
///
/// Encoding (24 bytes): `"CAIRNSNP"`, `format_version` u32 LE,
/// `created_at_ms` i64 LE, CRC32 u32 LE of the first 20 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Format version of what follows; [`FORMAT_VERSION`] when written by
    /// this build.
    pub format_version: u32,
    /// When the snapshot was started, unix milliseconds.
    pub created_at_ms: i64,
}

impl Header {
    /// A header for the current [`FORMAT_VERSION`].
    pub fn new(created_at_ms: i64) -> Self {
        Header {
            format_version: FORMAT_VERSION,
            created_at_ms,
        }
    }

    /// The 24 encoded bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN);
        out.extend_from_slice(&HEADER_MAGIC);
        out.extend_from_slice(&self.format_version.to_le_bytes());
        out.extend_from_slice(&self.created_at_ms.to_le_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes exactly [`HEADER_LEN`] bytes.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if shorter, [`Error::Malformed`] if longer,
    /// [`Error::BadMagic`], [`Error::ChecksumMismatch`], and
    /// [`Error::UnsupportedVersion`] for a version older than
    /// [`OLDEST_FORMAT_VERSION`] (i.e. 0) or newer than [`FORMAT_VERSION`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let b = exact::<HEADER_LEN>(bytes, "header")?;
        let (body, crc) = b.split_at(HEADER_LEN - 4);
        if body.get(..8) != Some(&HEADER_MAGIC[..]) {
            return Err(Error::BadMagic {
                what: "header",
                offset: 0,
            });
        }
        check_crc(body, crc)?;
        let format_version = u32::from_le_bytes(array(body, 8));
        if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&format_version) {
            return Err(Error::UnsupportedVersion {
                found: format_version,
                supported: FORMAT_VERSION,
            });
        }
        Ok(Header {
            format_version,
            created_at_ms: i64::from_le_bytes(array(body, 12)),
        })
    }
}

/// The end of a snapshot: how many records and their [`Digest`].
///
/// Encoding (40 bytes): `0xFFFF_FFFF` u32 LE (the footer marker, which no
/// record length can equal), `"CAIRNEND"`, `record_count` u64 LE, `digest`
/// (16 bytes), CRC32 u32 LE of the first 36 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// Number of records in the snapshot.
    pub record_count: u64,
    /// [`Digest::finish`] over all records in order.
    pub digest: [u8; 16],
}

impl Footer {
    /// The 40 encoded bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FOOTER_LEN);
        out.extend_from_slice(&FOOTER_MARKER.to_le_bytes());
        out.extend_from_slice(&FOOTER_MAGIC);
        out.extend_from_slice(&self.record_count.to_le_bytes());
        out.extend_from_slice(&self.digest);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes exactly [`FOOTER_LEN`] bytes.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if shorter, [`Error::Malformed`] if longer,
    /// [`Error::BadMagic`], [`Error::ChecksumMismatch`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let b = exact::<FOOTER_LEN>(bytes, "footer")?;
        let (body, crc) = b.split_at(FOOTER_LEN - 4);
        if body.get(..4) != Some(&FOOTER_MARKER.to_le_bytes()[..])
            || body.get(4..12) != Some(&FOOTER_MAGIC[..])
        {
            return Err(Error::BadMagic {
                what: "footer",
                offset: 0,
            });
        }
        check_crc(body, crc)?;
        Ok(Footer {
            record_count: u64::from_le_bytes(array(body, 12)),
            digest: array(body, 20),
        })
    }

    /// Checks this (stored) footer against the count and digest of the
    /// records actually read.
    ///
    /// # Errors
    ///
    /// [`Error::CountMismatch`] or [`Error::DigestMismatch`].
    pub fn verify(&self, computed: &Digest) -> Result<()> {
        if self.record_count != computed.count() {
            return Err(Error::CountMismatch {
                expected: self.record_count,
                actual: computed.count(),
            });
        }
        let actual = computed.finish();
        if self.digest != actual {
            return Err(Error::DigestMismatch {
                expected: self.digest,
                actual,
            });
        }
        Ok(())
    }
}

fn exact<'a, const N: usize>(bytes: &'a [u8], what: &'static str) -> Result<&'a [u8; N]> {
    match <&[u8; N]>::try_from(bytes) {
        Ok(b) => Ok(b),
        Err(_) if bytes.len() < N => Err(Error::Truncated {
            what,
            needed: N as u64,
            available: bytes.len() as u64,
            offset: 0,
            record: None,
        }),
        Err(_) => Err(Error::Malformed {
            reason: if what == "header" {
                "bytes after the header"
            } else {
                "bytes after the footer"
            },
            offset: N as u64,
            record: None,
        }),
    }
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> [u8; N] {
    // Callers pass fixed offsets inside fixed-size arrays; the fallback is
    // unreachable but keeps this panic-free.
    bytes
        .get(at..at + N)
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .unwrap_or([0; N])
}

fn check_crc(body: &[u8], crc: &[u8]) -> Result<()> {
    let expected = u32::from_le_bytes(array(crc, 0));
    let actual = crc32fast::hash(body);
    if expected != actual {
        return Err(Error::ChecksumMismatch {
            expected,
            actual,
            offset: 0,
            record: None,
        });
    }
    Ok(())
}

/// Running digest over framed records, in order.
///
/// Definition: the XXH3-128 hash (seed 0) of the concatenation of every
/// framed record (length, payload and CRC bytes, exactly as stored), in
/// record order; [`finish`](Self::finish) returns the 128-bit value as 16
/// bytes little-endian. Because each framed record carries its own length,
/// the concatenation determines the sequence: a missing, extra, duplicated
/// or reordered record changes the hashed bytes and, but for a 2^-128
/// accident, the digest. The record count is kept alongside.
#[derive(Clone)]
pub struct Digest {
    hasher: Box<Xxh3>,
    count: u64,
}

impl Digest {
    /// The digest of zero records.
    pub fn new() -> Self {
        Digest {
            hasher: Box::new(Xxh3::new()),
            count: 0,
        }
    }

    /// Adds the next framed record.
    pub fn update(&mut self, framed_record: &[u8]) {
        self.hasher.update(framed_record);
        self.count += 1;
    }

    /// The digest of the records added so far; may be called at any time.
    pub fn finish(&self) -> [u8; 16] {
        self.hasher.digest128().to_le_bytes()
    }

    /// Number of records added.
    pub fn count(&self) -> u64 {
        self.count
    }
}

impl Default for Digest {
    fn default() -> Self {
        Digest::new()
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Digest")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}
