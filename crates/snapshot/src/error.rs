//! The one error type of the codec.

/// Everything that can go wrong while encoding or decoding snapshot data.
///
/// Offsets are byte offsets: inside the framed record for
/// [`decode_record`](crate::decode_record), inside the whole stream for
/// [`StreamReader`](crate::StreamReader). `record` is the 0-based index of the
/// record in its stream when the reader knows it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The CRC32 stored after a record (or in a header or footer) does not match
    /// the bytes it covers.
    #[error(
        "snapshot: checksum mismatch at offset {offset}{}: stored {expected:#010x}, computed {actual:#010x}",
        at(*record)
    )]
    ChecksumMismatch {
        /// The checksum stored in the data.
        expected: u32,
        /// The checksum computed over the bytes read.
        actual: u32,
        /// Where the checked item starts.
        offset: u64,
        /// Index of the record, when known.
        record: Option<u64>,
    },
    /// The input ends before the item being read is complete.
    #[error(
        "snapshot: truncated {what} at offset {offset}{}: needed {needed} bytes, {available} available",
        at(*record)
    )]
    Truncated {
        /// What was being read (`"record length"`, `"footer"`, ...).
        what: &'static str,
        /// Bytes the item needs.
        needed: u64,
        /// Bytes that were there.
        available: u64,
        /// Where the item starts.
        offset: u64,
        /// Index of the record, when known.
        record: Option<u64>,
    },
    /// The header names a format version this reader does not know.
    #[error("snapshot: unsupported format version {found} (this reader supports 1..={supported})")]
    UnsupportedVersion {
        /// The version in the data.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A header or footer does not start with its magic bytes: not a cairn
    /// snapshot, or not the item expected at this place.
    #[error("snapshot: bad magic for {what} at offset {offset}")]
    BadMagic {
        /// `"header"` or `"footer"`.
        what: &'static str,
        /// Where the item starts.
        offset: u64,
    },
    /// The bytes pass their checksum but do not form a valid record.
    #[error("snapshot: malformed record at offset {offset}{}: {reason}", at(*record))]
    Malformed {
        /// What is wrong.
        reason: &'static str,
        /// Where the offending field starts.
        offset: u64,
        /// Index of the record, when known.
        record: Option<u64>,
    },
    /// A record holds a value kind this reader does not know (written by a
    /// newer version). The framing is intact, so a reader may skip it.
    #[error(
        "snapshot: unknown value type (protobuf field {tag}) at offset {offset}{}",
        at(*record)
    )]
    UnknownValueType {
        /// The protobuf field number of the unknown value.
        tag: u32,
        /// Where the field starts.
        offset: u64,
        /// Index of the record, when known.
        record: Option<u64>,
    },
    /// A length or element count exceeds the configured [`Limits`](crate::Limits).
    #[error(
        "snapshot: {what} of {size} exceeds the limit of {limit} at offset {offset}{}",
        at(*record)
    )]
    TooLarge {
        /// What is too large (`"record"`, `"elements"`).
        what: &'static str,
        /// The size found or requested.
        size: u64,
        /// The configured limit.
        limit: u64,
        /// Where the item starts.
        offset: u64,
        /// Index of the record, when known.
        record: Option<u64>,
    },
    /// A sorted-set score is NaN, which Redis never stores.
    #[error("snapshot: NaN score in sorted set at offset {offset}{}", at(*record))]
    InvalidScore {
        /// Where the score is (0 when encoding).
        offset: u64,
        /// Index of the record, when known.
        record: Option<u64>,
    },
    /// The footer's record count differs from the records read.
    #[error("snapshot: footer says {expected} records, {actual} were read")]
    CountMismatch {
        /// The count stored in the footer.
        expected: u64,
        /// The count of records read.
        actual: u64,
    },
    /// The footer's digest differs from the digest of the records read.
    #[error(
        "snapshot: digest mismatch: footer has {}, records give {}",
        hex(expected),
        hex(actual)
    )]
    DigestMismatch {
        /// The digest stored in the footer.
        expected: [u8; 16],
        /// The digest computed over the records read.
        actual: [u8; 16],
    },
    /// Bytes follow the footer of a stream.
    #[error("snapshot: {len} trailing bytes after the footer at offset {offset}")]
    TrailingData {
        /// Where the footer ended.
        offset: u64,
        /// How many extra bytes were seen (at least this many).
        len: u64,
    },
    /// A chunk record does not continue the entry being assembled as it must.
    #[error("snapshot: chunk error{}: {kind}", at(*record))]
    Chunk {
        /// What is wrong with the sequence.
        kind: ChunkError,
        /// Index of the offending record in its stream, when known.
        record: Option<u64>,
    },
    /// Reading or writing the underlying stream failed.
    #[error("snapshot: I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// What is wrong with a sequence of chunk records; see [`Assembler`](crate::Assembler).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// A chunk arrived whose index is not the next one expected.
    #[error("chunk {found} arrived where chunk {expected} was expected")]
    OutOfOrder {
        /// The index expected next.
        expected: u32,
        /// The index found.
        found: u32,
    },
    /// A chunk index arrived a second time.
    #[error("chunk {index} arrived twice")]
    Duplicate {
        /// The repeated index.
        index: u32,
    },
    /// The entry being assembled ended (another entry began, or the input
    /// ended) before its last chunk.
    #[error("entry ended after chunk {last_index} without its last chunk")]
    Missing {
        /// The last index received for the unfinished entry.
        last_index: u32,
    },
    /// A chunk belongs to a different key, database, expiry or value type
    /// than the chunks before it, or a sorted-set member's fragments carry
    /// different scores (`field` is `"score"`).
    #[error("chunk {index} does not match the entry being assembled ({field} differs)")]
    Mismatch {
        /// The chunk's index.
        index: u32,
        /// Which field differs.
        field: &'static str,
    },
    /// An element continuation is misused: set on the last chunk, on a
    /// string, on a chunk without elements, not followed by the continued
    /// element, or a hash field fragment after the pair's value began.
    #[error("chunk {index}: bad element continuation: {reason}")]
    Continuation {
        /// The chunk's index.
        index: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// A key fragment is misused: on the last chunk, with value data, or
    /// after the key was complete.
    #[error("chunk {index}: bad key fragment: {reason}")]
    KeyFragment {
        /// The chunk's index.
        index: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// A length hint where the format has none (`key_len` without a split
    /// key or after chunk 0, `string_len` on a non-string or after chunk 0,
    /// `element_len` where no element begins to continue).
    #[error("chunk {index}: {field} is not allowed here")]
    Misplaced {
        /// The chunk's index.
        index: u32,
        /// The hint's field name.
        field: &'static str,
    },
    /// A key, string or element differs in length from its length hint.
    #[error("chunk {index}: {what} of {found} bytes where its length hint says {expected}")]
    LengthMismatch {
        /// The chunk where the difference showed.
        index: u32,
        /// `"key"`, `"string"` or `"element"`.
        what: &'static str,
        /// The hint.
        expected: u64,
        /// The bytes found (so far, when they already exceed the hint).
        found: u64,
    },
}

fn at(record: Option<u64>) -> String {
    match record {
        Some(index) => format!(" (record {index})"),
        None => String::new(),
    }
}

fn hex(bytes: &[u8; 16]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Error {
    /// Returns the error with its offset moved by `base` and its record index
    /// set, for errors found inside one record of a larger stream.
    pub(crate) fn in_stream(mut self, base: u64, index: u64) -> Self {
        match &mut self {
            Error::ChecksumMismatch { offset, record, .. }
            | Error::Truncated { offset, record, .. }
            | Error::Malformed { offset, record, .. }
            | Error::UnknownValueType { offset, record, .. }
            | Error::TooLarge { offset, record, .. }
            | Error::InvalidScore { offset, record } => {
                *offset = offset.saturating_add(base);
                *record = Some(index);
            }
            Error::Chunk { record, .. } => *record = Some(index),
            _ => {}
        }
        self
    }

    /// True when the error concerns only the content of one record whose
    /// framing and checksum were intact, so a stream reader can go on to the
    /// next record (today: [`Error::UnknownValueType`]).
    pub fn is_skippable(&self) -> bool {
        matches!(self, Error::UnknownValueType { .. })
    }
}

/// The codec's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
