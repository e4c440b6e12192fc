//! `CURRENT` and `SEAL`: the two small self-checksummed files that make a
//! generation committed.
//!
//! Both hold the same fields; only the magic differs, so a `SEAL` copied over
//! `CURRENT` (or the reverse) is rejected.

/// Bytes in an encoded pointer.
pub(crate) const POINTER_LEN: usize = 8 + 4 + 4 + 8 + 8 + 8 + 16 + 8 + 16 + 4;
/// Version of this little file format (not of the record format).
const LAYOUT_VERSION: u32 = 1;

/// Which of the two files an encoding belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `data_dir/CURRENT`, the commit point.
    Current,
    /// `gen-N/SEAL`, written before the generation is renamed into place.
    Seal,
}

impl Kind {
    fn magic(self) -> &'static [u8; 8] {
        match self {
            Kind::Current => b"CAIRNCUR",
            Kind::Seal => b"CAIRNSEL",
        }
    }
}

/// What `CURRENT` and a generation's `SEAL` record about a generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerationMeta {
    /// The generation number (the `N` of `gen-N`).
    pub generation: u64,
    /// Record format version (`cairn_snapshot::FORMAT_VERSION` at write time).
    pub format_version: u32,
    /// Number of records.
    pub record_count: u64,
    /// Sum of the framed record lengths.
    pub record_bytes: u64,
    /// Digest over the framed records, in order.
    pub digest: [u8; 16],
    /// When writing began, unix milliseconds.
    pub created_at_ms: i64,
    /// xxh3-128 of the generation's `MANIFEST` (sizes and hashes of every
    /// fjall file).
    pub files_digest: [u8; 16],
}

impl GenerationMeta {
    pub(crate) fn encode(&self, kind: Kind) -> Vec<u8> {
        let mut out = Vec::with_capacity(POINTER_LEN);
        out.extend_from_slice(kind.magic());
        out.extend_from_slice(&LAYOUT_VERSION.to_le_bytes());
        out.extend_from_slice(&self.format_version.to_le_bytes());
        out.extend_from_slice(&self.generation.to_le_bytes());
        out.extend_from_slice(&self.record_count.to_le_bytes());
        out.extend_from_slice(&self.record_bytes.to_le_bytes());
        out.extend_from_slice(&self.digest);
        out.extend_from_slice(&self.created_at_ms.to_le_bytes());
        out.extend_from_slice(&self.files_digest);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes and checks magic, length, layout version and checksum.
    pub(crate) fn decode(kind: Kind, bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() != POINTER_LEN {
            return Err(format!("length {} instead of {POINTER_LEN}", bytes.len()));
        }
        let (body, crc) = bytes.split_at(POINTER_LEN - 4);
        let stored = u32::from_le_bytes(arr(crc)?);
        let actual = crc32fast::hash(body);
        if stored != actual {
            return Err(format!(
                "checksum mismatch: stored {stored:#010x}, computed \
                 {actual:#010x}"
            ));
        }
        let mut r = Reader(body);
        if r.take::<8>()? != *kind.magic() {
            return Err("wrong magic".to_owned());
        }
        let layout = u32::from_le_bytes(r.take()?);
        if layout != LAYOUT_VERSION {
            return Err(format!("unknown layout version {layout}"));
        }
        Ok(GenerationMeta {
            format_version: u32::from_le_bytes(r.take()?),
            generation: u64::from_le_bytes(r.take()?),
            record_count: u64::from_le_bytes(r.take()?),
            record_bytes: u64::from_le_bytes(r.take()?),
            digest: r.take()?,
            created_at_ms: i64::from_le_bytes(r.take()?),
            files_digest: r.take()?,
        })
    }
}

fn arr<const N: usize>(s: &[u8]) -> Result<[u8; N], String> {
    s.try_into().map_err(|_| "short field".to_owned())
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let Some((head, rest)) = self.0.split_at_checked(N) else {
            return Err("truncated".to_owned());
        };
        self.0 = rest;
        arr(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> GenerationMeta {
        GenerationMeta {
            generation: 42,
            format_version: 1,
            record_count: 7,
            record_bytes: 700,
            digest: [9; 16],
            created_at_ms: 1_700_000_000_000,
            files_digest: [3; 16],
        }
    }

    #[test]
    fn round_trip_and_kind_separation() {
        let enc = meta().encode(Kind::Current);
        assert_eq!(enc.len(), POINTER_LEN);
        assert_eq!(GenerationMeta::decode(Kind::Current, &enc), Ok(meta()));
        assert!(GenerationMeta::decode(Kind::Seal, &enc).is_err());
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_rejected() {
        let enc = meta().encode(Kind::Seal);
        for i in 0..enc.len() {
            let mut bad = enc.clone();
            if let Some(b) = bad.get_mut(i) {
                *b ^= 0x40;
            }
            assert!(GenerationMeta::decode(Kind::Seal, &bad).is_err(), "{i}");
            assert!(GenerationMeta::decode(Kind::Seal, &enc[..i]).is_err());
        }
    }
}
