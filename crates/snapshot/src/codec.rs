//! Record framing and the protobuf payload, encoded and decoded by hand.
//!
//! The payload is the protobuf encoding of [`proto::Record`](crate::proto::Record);
//! the derived prost messages are the schema, and tests check that both sides
//! agree byte for byte. Doing the wire format by hand here lets the decoder
//! enforce [`Limits`] while it reads (prost would grow vectors first and
//! check later), name unknown value types by field number, and skip the
//! intermediate message structs, which matters for the common small-string
//! record.

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::frame::FOOTER_MARKER;
use crate::model::{Chunk, Limits, Record, Value};

/// Bytes of framing around each payload: the `u32` length and the `u32` CRC.
pub const FRAME_OVERHEAD: usize = 8;

// Field numbers of `Record`. Value kinds own 8..=63: a number in that range
// that this reader does not know is a value type added by a newer writer.
pub(crate) const TAG_DB: u32 = 1;
pub(crate) const TAG_KEY: u32 = 2;
pub(crate) const TAG_EXPIRES: u32 = 3;
pub(crate) const TAG_CHUNK: u32 = 4;
pub(crate) const TAG_STRING: u32 = 8;
pub(crate) const TAG_LIST: u32 = 9;
pub(crate) const TAG_HASH: u32 = 10;
pub(crate) const TAG_SET: u32 = 11;
pub(crate) const TAG_SORTED_SET: u32 = 12;
/// An extension payload (format version 2, added without a bump: older
/// readers report it as a skippable `UnknownValueType`).
pub(crate) const TAG_PAYLOAD: u32 = 13;
/// A stream's items. Added within format version 2: a build older than
/// streams refuses such a record as an unknown value type, naming it.
pub(crate) const TAG_STREAM: u32 = 14;
pub(crate) const VALUE_TAGS: std::ops::RangeInclusive<u32> = 8..=63;

// Field numbers of `Chunk`; 3..=7 were added in format version 2.
const CHUNK_INDEX: u32 = 1;
const CHUNK_LAST: u32 = 2;
const CHUNK_CONTINUES: u32 = 3;
const CHUNK_KEY_CONTINUES: u32 = 4;
const CHUNK_KEY_LEN: u32 = 5;
const CHUNK_STRING_LEN: u32 = 6;
const CHUNK_ELEMENT_LEN: u32 = 7;

const WT_VARINT: u8 = 0;
const WT_I64: u8 = 1;
const WT_LEN: u8 = 2;
const WT_I32: u8 = 5;

/// Appends one framed record to `dst`: `u32` LE payload length, the payload,
/// `u32` LE CRC32 of length and payload. Uses [`Limits::DEFAULT`].
///
/// # Errors
///
/// [`Error::TooLarge`] when the payload or its element count exceeds the
/// limits (split the entry with a [`Chunker`](crate::Chunker)),
/// [`Error::InvalidScore`] for a NaN score. `dst` is unchanged on error.
pub fn encode_record(record: &Record, dst: &mut Vec<u8>) -> Result<()> {
    encode_record_with(record, &Limits::DEFAULT, dst)
}

/// [`encode_record`] with explicit limits.
///
/// # Errors
///
/// As [`encode_record`].
pub fn encode_record_with(record: &Record, limits: &Limits, dst: &mut Vec<u8>) -> Result<()> {
    let len = payload_len(record, limits)?;
    let start = dst.len();
    dst.reserve(len + FRAME_OVERHEAD);
    // `payload_len` checked `len <= max_record_bytes`, which fits in u32.
    dst.extend_from_slice(&(len as u32).to_le_bytes());
    write_payload(record, dst);
    debug_assert_eq!(dst.len() - start - 4, len);
    let crc = crc32fast::hash(dst.get(start..).unwrap_or_default());
    dst.extend_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// The exact size of `record` once framed, without encoding it.
///
/// # Errors
///
/// As [`encode_record`].
pub fn framed_len(record: &Record) -> Result<usize> {
    Ok(payload_len(record, &Limits::DEFAULT)? + FRAME_OVERHEAD)
}

/// Decodes exactly one framed record, checking its CRC before anything else
/// of the payload is read. Uses [`Limits::DEFAULT`].
///
/// # Errors
///
/// [`Error::Truncated`] when `framed` is shorter than its length field says,
/// [`Error::TooLarge`] when the length exceeds the limit,
/// [`Error::ChecksumMismatch`], [`Error::Malformed`] (also for bytes after
/// the CRC), [`Error::UnknownValueType`], [`Error::InvalidScore`].
pub fn decode_record(framed: &[u8]) -> Result<Record> {
    decode_record_with(framed, &Limits::DEFAULT)
}

/// [`decode_record`] with explicit limits.
///
/// # Errors
///
/// As [`decode_record`].
pub fn decode_record_with(framed: &[u8], limits: &Limits) -> Result<Record> {
    let payload = check_frame(framed, limits)?;
    decode_payload(payload, None, limits)
}

/// [`decode_record`] from a shared buffer: keys and values of the result are
/// slices of `framed` instead of copies (one allocation shared by all).
///
/// # Errors
///
/// As [`decode_record`].
pub fn decode_record_shared(framed: &Bytes, limits: &Limits) -> Result<Record> {
    let payload = check_frame(framed, limits)?;
    decode_payload(payload, Some(framed), limits)
}

/// Verifies length and CRC of one framed record and returns its payload.
pub(crate) fn check_frame<'a>(framed: &'a [u8], limits: &Limits) -> Result<&'a [u8]> {
    let Some((len_bytes, rest)) = framed.split_first_chunk::<4>() else {
        return Err(Error::Truncated {
            what: "record length",
            needed: 4,
            available: framed.len() as u64,
            offset: 0,
            record: None,
        });
    };
    let len = u32::from_le_bytes(*len_bytes);
    check_len(len, limits, 0)?;
    let len = len as usize;
    let (Some(payload), Some(crc_bytes)) = (rest.get(..len), rest.get(len..)) else {
        return Err(truncated_record(len, framed.len()));
    };
    let Ok(crc_bytes) = <[u8; 4]>::try_from(crc_bytes) else {
        if crc_bytes.len() < 4 {
            return Err(truncated_record(len, framed.len()));
        }
        return Err(Error::Malformed {
            reason: "bytes after the record's CRC",
            offset: (len + FRAME_OVERHEAD) as u64,
            record: None,
        });
    };
    let expected = u32::from_le_bytes(crc_bytes);
    let actual = frame_crc(len_bytes, payload);
    if expected != actual {
        return Err(Error::ChecksumMismatch {
            expected,
            actual,
            offset: 0,
            record: None,
        });
    }
    Ok(payload)
}

fn truncated_record(len: usize, available: usize) -> Error {
    Error::Truncated {
        what: "record",
        needed: (len + FRAME_OVERHEAD) as u64,
        available: available as u64,
        offset: 0,
        record: None,
    }
}

pub(crate) fn check_len(len: u32, limits: &Limits, offset: u64) -> Result<()> {
    if len > limits.max_record_bytes {
        return Err(Error::TooLarge {
            what: "record",
            size: u64::from(len),
            limit: u64::from(limits.max_record_bytes),
            offset,
            record: None,
        });
    }
    Ok(())
}

pub(crate) fn frame_crc(len_bytes: &[u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len_bytes);
    hasher.update(payload);
    hasher.finalize()
}

// ---------------------------------------------------------------- encoding

fn varint_len(v: u64) -> usize {
    // 1 byte per started group of 7 bits; 0 still takes one byte.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_varint(dst: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        dst.push((v as u8) | 0x80);
        v >>= 7;
    }
    dst.push(v as u8);
}

fn put_key(dst: &mut Vec<u8>, tag: u32, wire_type: u8) {
    put_varint(dst, (u64::from(tag) << 3) | u64::from(wire_type));
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Size of a length-delimited field with a one-byte key (all our tags < 16).
fn len_field(inner: usize) -> usize {
    1 + varint_len(inner as u64) + inner
}

fn bytes_list_len<'a>(items: impl Iterator<Item = &'a Bytes>) -> usize {
    items.map(|b| len_field(b.len())).sum()
}

/// Size of the value message body (without the value field's own key and
/// length) and its element count.
fn value_body_len(value: &Value) -> (usize, usize) {
    match value {
        Value::String(b) | Value::Payload(b) => (b.len(), 0),
        Value::List(items) | Value::Set(items) | Value::Stream(items) => {
            (bytes_list_len(items.iter()), items.len())
        }
        Value::Hash(pairs) => (
            bytes_list_len(pairs.iter().map(|(f, _)| f))
                + bytes_list_len(pairs.iter().map(|(_, v)| v)),
            pairs.len(),
        ),
        Value::SortedSet(pairs) => {
            let scores = if pairs.is_empty() {
                0
            } else {
                len_field(pairs.len() * 8)
            };
            (
                bytes_list_len(pairs.iter().map(|(m, _)| m)) + scores,
                pairs.len(),
            )
        }
    }
}

fn chunk_body_len(chunk: &Chunk) -> usize {
    let index = if chunk.index == 0 {
        0
    } else {
        1 + varint_len(u64::from(chunk.index))
    };
    let flags = [chunk.last, chunk.continues, chunk.key_continues]
        .iter()
        .filter(|&&set| set)
        .count()
        * 2;
    let hints: usize = [chunk.key_len, chunk.string_len, chunk.element_len]
        .iter()
        .flatten()
        .map(|&n| 1 + varint_len(n))
        .sum();
    index + flags + hints
}

fn payload_len(record: &Record, limits: &Limits) -> Result<usize> {
    if let Value::SortedSet(pairs) = &record.value
        && pairs.iter().any(|(_, s)| s.is_nan())
    {
        return Err(Error::InvalidScore {
            offset: 0,
            record: None,
        });
    }
    let (body, elements) = value_body_len(&record.value);
    if elements > limits.max_elements as usize {
        return Err(Error::TooLarge {
            what: "elements",
            size: elements as u64,
            limit: u64::from(limits.max_elements),
            offset: 0,
            record: None,
        });
    }
    let mut len = len_field(body);
    if record.db != 0 {
        len += 1 + varint_len(u64::from(record.db));
    }
    if !record.key.is_empty() {
        len += len_field(record.key.len());
    }
    if let Some(at) = record.expires_at_ms {
        len += 1 + varint_len(zigzag(at));
    }
    if let Some(chunk) = &record.chunk {
        len += len_field(chunk_body_len(chunk));
    }
    // Even if the field was set directly: 0xFFFF_FFFF is the footer marker.
    let max = limits.max_record_bytes.min(FOOTER_MARKER - 1);
    if len > max as usize {
        return Err(Error::TooLarge {
            what: "record",
            size: len as u64,
            limit: u64::from(max),
            offset: 0,
            record: None,
        });
    }
    Ok(len)
}

fn put_bytes_field(dst: &mut Vec<u8>, tag: u32, b: &[u8]) {
    put_key(dst, tag, WT_LEN);
    put_varint(dst, b.len() as u64);
    dst.extend_from_slice(b);
}

fn write_payload(record: &Record, dst: &mut Vec<u8>) {
    // Field order follows the prost struct (tags ascending) so the bytes
    // equal what prost itself would write.
    if record.db != 0 {
        put_key(dst, TAG_DB, WT_VARINT);
        put_varint(dst, u64::from(record.db));
    }
    if !record.key.is_empty() {
        put_bytes_field(dst, TAG_KEY, &record.key);
    }
    if let Some(at) = record.expires_at_ms {
        put_key(dst, TAG_EXPIRES, WT_VARINT);
        put_varint(dst, zigzag(at));
    }
    if let Some(chunk) = &record.chunk {
        put_key(dst, TAG_CHUNK, WT_LEN);
        put_varint(dst, chunk_body_len(chunk) as u64);
        if chunk.index != 0 {
            put_key(dst, CHUNK_INDEX, WT_VARINT);
            put_varint(dst, u64::from(chunk.index));
        }
        for (tag, set) in [
            (CHUNK_LAST, chunk.last),
            (CHUNK_CONTINUES, chunk.continues),
            (CHUNK_KEY_CONTINUES, chunk.key_continues),
        ] {
            if set {
                put_key(dst, tag, WT_VARINT);
                dst.push(1);
            }
        }
        for (tag, hint) in [
            (CHUNK_KEY_LEN, chunk.key_len),
            (CHUNK_STRING_LEN, chunk.string_len),
            (CHUNK_ELEMENT_LEN, chunk.element_len),
        ] {
            if let Some(n) = hint {
                put_key(dst, tag, WT_VARINT);
                put_varint(dst, n);
            }
        }
    }
    let (body, _) = value_body_len(&record.value);
    let tag = match &record.value {
        Value::String(b) => return put_bytes_field(dst, TAG_STRING, b),
        Value::Payload(b) => return put_bytes_field(dst, TAG_PAYLOAD, b),
        Value::List(_) => TAG_LIST,
        Value::Hash(_) => TAG_HASH,
        Value::Set(_) => TAG_SET,
        Value::SortedSet(_) => TAG_SORTED_SET,
        Value::Stream(_) => TAG_STREAM,
    };
    put_key(dst, tag, WT_LEN);
    put_varint(dst, body as u64);
    match &record.value {
        Value::String(_) | Value::Payload(_) => {}
        Value::List(items) | Value::Set(items) | Value::Stream(items) => {
            for item in items {
                put_bytes_field(dst, 1, item);
            }
        }
        Value::Hash(pairs) => {
            for (field, _) in pairs {
                put_bytes_field(dst, 1, field);
            }
            for (_, value) in pairs {
                put_bytes_field(dst, 2, value);
            }
        }
        Value::SortedSet(pairs) => {
            for (member, _) in pairs {
                put_bytes_field(dst, 1, member);
            }
            if !pairs.is_empty() {
                put_key(dst, 2, WT_LEN);
                put_varint(dst, (pairs.len() * 8) as u64);
                for (_, score) in pairs {
                    dst.extend_from_slice(&score.to_bits().to_le_bytes());
                }
            }
        }
    }
}

// ---------------------------------------------------------------- decoding

/// Reads protobuf fields from a payload; offsets in errors are relative to
/// the start of the framed record (payload starts at 4).
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf[0]` inside the framed record.
    base: usize,
    /// When set, `buf` lies inside this buffer and byte fields are sliced
    /// from it instead of copied.
    owner: Option<&'a Bytes>,
}

impl<'a> Cursor<'a> {
    fn malformed(&self, reason: &'static str) -> Error {
        Error::Malformed {
            reason,
            offset: (self.base + self.pos) as u64,
            record: None,
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(self.malformed("varint runs past the end of its message"));
            };
            self.pos += 1;
            // The 10th byte may only carry the top bit of a u64.
            if i == 9 && byte > 1 {
                return Err(self.malformed("varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(self.malformed("varint longer than 10 bytes"))
    }

    fn key(&mut self) -> Result<(u32, u8)> {
        let key = self.varint()?;
        let tag = key >> 3;
        if tag == 0 || tag > u64::from(u32::MAX >> 3) {
            return Err(self.malformed("invalid field number"));
        }
        Ok((tag as u32, (key & 7) as u8))
    }

    /// A length-delimited field's contents, as a sub-cursor.
    fn sub(&mut self) -> Result<Cursor<'a>> {
        let len = self.varint()?;
        let start = self.pos;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len));
        let Some(slice) = end.and_then(|end| self.buf.get(start..end)) else {
            return Err(self.malformed("length-delimited field runs past the end of its message"));
        };
        self.pos = start + slice.len();
        Ok(Cursor {
            buf: slice,
            pos: 0,
            base: self.base + start,
            owner: self.owner,
        })
    }

    fn bytes(&mut self) -> Result<Bytes> {
        let sub = self.sub()?;
        Ok(match sub.owner {
            Some(owner) => owner.slice_ref(sub.buf),
            None => Bytes::copy_from_slice(sub.buf),
        })
    }

    fn fixed64(&mut self) -> Result<u64> {
        let Some(bytes) = self.buf.get(self.pos..).and_then(|b| b.first_chunk::<8>()) else {
            return Err(self.malformed("fixed64 runs past the end of its message"));
        };
        self.pos += 8;
        Ok(u64::from_le_bytes(*bytes))
    }

    fn skip(&mut self, wire_type: u8) -> Result<()> {
        match wire_type {
            WT_VARINT => self.varint().map(drop),
            WT_I64 => self.fixed64().map(drop),
            WT_LEN => self.sub().map(drop),
            WT_I32 => {
                if self.buf.len().saturating_sub(self.pos) < 4 {
                    return Err(self.malformed("fixed32 runs past the end of its message"));
                }
                self.pos += 4;
                Ok(())
            }
            _ => Err(self.malformed("unsupported wire type")),
        }
    }

    fn expect(&self, wire_type: u8, want: u8) -> Result<()> {
        if wire_type == want {
            Ok(())
        } else {
            Err(self.malformed("wrong wire type for field"))
        }
    }
}

fn too_many(limits: &Limits, offset: usize) -> Error {
    Error::TooLarge {
        what: "elements",
        size: u64::from(limits.max_elements) + 1,
        limit: u64::from(limits.max_elements),
        offset: offset as u64,
        record: None,
    }
}

fn push_limited<T>(v: &mut Vec<T>, item: T, limits: &Limits, offset: usize) -> Result<()> {
    if v.len() >= limits.max_elements as usize {
        return Err(too_many(limits, offset));
    }
    v.push(item);
    Ok(())
}

pub(crate) fn decode_payload(
    payload: &[u8],
    owner: Option<&Bytes>,
    limits: &Limits,
) -> Result<Record> {
    let mut c = Cursor {
        buf: payload,
        pos: 0,
        base: 4,
        owner,
    };
    let mut db = 0u32;
    let mut key = Bytes::new();
    let mut expires_at_ms = None;
    let mut chunk = None;
    let mut value = None;
    while !c.at_end() {
        let field_start = c.pos;
        let (tag, wt) = c.key()?;
        match tag {
            TAG_DB => {
                c.expect(wt, WT_VARINT)?;
                db = u32::try_from(c.varint()?).map_err(|_| c.malformed("db exceeds u32"))?;
            }
            TAG_KEY => {
                c.expect(wt, WT_LEN)?;
                key = c.bytes()?;
            }
            TAG_EXPIRES => {
                c.expect(wt, WT_VARINT)?;
                expires_at_ms = Some(unzigzag(c.varint()?));
            }
            TAG_CHUNK => {
                c.expect(wt, WT_LEN)?;
                chunk = Some(decode_chunk(c.sub()?)?);
            }
            TAG_STRING..=TAG_SORTED_SET => {
                c.expect(wt, WT_LEN)?;
                if value.is_some() {
                    c.pos = field_start;
                    return Err(c.malformed("record has more than one value"));
                }
                value = Some(match tag {
                    TAG_STRING => Value::String(c.bytes()?),
                    TAG_LIST => Value::List(decode_items(c.sub()?, limits)?),
                    TAG_SET => Value::Set(decode_items(c.sub()?, limits)?),
                    TAG_HASH => decode_hash(c.sub()?, limits)?,
                    _ => decode_sorted_set(c.sub()?, limits)?,
                });
            }
            TAG_STREAM => {
                c.expect(wt, WT_LEN)?;
                if value.is_some() {
                    c.pos = field_start;
                    return Err(c.malformed("record has more than one value"));
                }
                value = Some(Value::Stream(decode_items(c.sub()?, limits)?));
            }
            TAG_PAYLOAD => {
                c.expect(wt, WT_LEN)?;
                if value.is_some() {
                    c.pos = field_start;
                    return Err(c.malformed("record has more than one value"));
                }
                value = Some(Value::Payload(c.bytes()?));
            }
            t if VALUE_TAGS.contains(&t) => {
                return Err(Error::UnknownValueType {
                    tag: t,
                    offset: (c.base + field_start) as u64,
                    record: None,
                });
            }
            _ => c.skip(wt)?,
        }
    }
    let Some(value) = value else {
        return Err(c.malformed("record has no value"));
    };
    Ok(Record {
        db,
        key,
        expires_at_ms,
        value,
        chunk,
    })
}

fn decode_chunk(mut c: Cursor<'_>) -> Result<Chunk> {
    let mut chunk = Chunk::new(0, false);
    while !c.at_end() {
        let (tag, wt) = c.key()?;
        match tag {
            CHUNK_INDEX => {
                c.expect(wt, WT_VARINT)?;
                chunk.index = u32::try_from(c.varint()?)
                    .map_err(|_| c.malformed("chunk index exceeds u32"))?;
            }
            CHUNK_LAST | CHUNK_CONTINUES | CHUNK_KEY_CONTINUES => {
                c.expect(wt, WT_VARINT)?;
                let set = match c.varint()? {
                    0 => false,
                    1 => true,
                    _ => return Err(c.malformed("bool is neither 0 nor 1")),
                };
                match tag {
                    CHUNK_LAST => chunk.last = set,
                    CHUNK_CONTINUES => chunk.continues = set,
                    _ => chunk.key_continues = set,
                }
            }
            CHUNK_KEY_LEN | CHUNK_STRING_LEN | CHUNK_ELEMENT_LEN => {
                c.expect(wt, WT_VARINT)?;
                let n = Some(c.varint()?);
                match tag {
                    CHUNK_KEY_LEN => chunk.key_len = n,
                    CHUNK_STRING_LEN => chunk.string_len = n,
                    _ => chunk.element_len = n,
                }
            }
            _ => c.skip(wt)?,
        }
    }
    Ok(chunk)
}

fn decode_items(mut c: Cursor<'_>, limits: &Limits) -> Result<Vec<Bytes>> {
    let mut items = Vec::new();
    while !c.at_end() {
        let start = c.base + c.pos;
        let (tag, wt) = c.key()?;
        if tag == 1 {
            c.expect(wt, WT_LEN)?;
            let item = c.bytes()?;
            push_limited(&mut items, item, limits, start)?;
        } else {
            c.skip(wt)?;
        }
    }
    Ok(items)
}

fn decode_hash(mut c: Cursor<'_>, limits: &Limits) -> Result<Value> {
    let mut fields = Vec::new();
    let mut values = Vec::new();
    while !c.at_end() {
        let start = c.base + c.pos;
        let (tag, wt) = c.key()?;
        match tag {
            1 | 2 => {
                c.expect(wt, WT_LEN)?;
                let b = c.bytes()?;
                let dst = if tag == 1 { &mut fields } else { &mut values };
                push_limited(dst, b, limits, start)?;
            }
            _ => c.skip(wt)?,
        }
    }
    if fields.len() != values.len() {
        return Err(c.malformed("hash has different numbers of fields and values"));
    }
    Ok(Value::Hash(fields.into_iter().zip(values).collect()))
}

fn decode_sorted_set(mut c: Cursor<'_>, limits: &Limits) -> Result<Value> {
    let mut members = Vec::new();
    let mut scores: Vec<f64> = Vec::new();
    let push_score = |c: &Cursor<'_>, bits: u64, scores: &mut Vec<f64>| {
        let score = f64::from_bits(bits);
        if score.is_nan() {
            return Err(Error::InvalidScore {
                offset: (c.base + c.pos) as u64 - 8,
                record: None,
            });
        }
        push_limited(scores, score, limits, c.base + c.pos)
    };
    while !c.at_end() {
        let start = c.base + c.pos;
        let (tag, wt) = c.key()?;
        match (tag, wt) {
            (1, _) => {
                c.expect(wt, WT_LEN)?;
                let m = c.bytes()?;
                push_limited(&mut members, m, limits, start)?;
            }
            // Packed (what we write) and unpacked (what protobuf readers
            // must also accept).
            (2, WT_LEN) => {
                let mut packed = c.sub()?;
                if packed.buf.len() % 8 != 0 {
                    return Err(packed.malformed("packed scores not a multiple of 8 bytes"));
                }
                while !packed.at_end() {
                    let bits = packed.fixed64()?;
                    push_score(&packed, bits, &mut scores)?;
                }
            }
            (2, WT_I64) => {
                let bits = c.fixed64()?;
                push_score(&c, bits, &mut scores)?;
            }
            (2, _) => return Err(c.malformed("wrong wire type for field")),
            _ => c.skip(wt)?,
        }
    }
    if members.len() != scores.len() {
        return Err(c.malformed("sorted set has different numbers of members and scores"));
    }
    Ok(Value::SortedSet(members.into_iter().zip(scores).collect()))
}
