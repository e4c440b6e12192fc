//! Damage to a stream of a few thousand mixed records: every single-byte
//! flip, every truncation, swapped, duplicated and dropped records. Each must
//! be reported as an error, and no record handed out before the error may
//! differ from what was written.
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use bytes::Bytes;
use cairn_snapshot::{
    Chunker, Error, FOOTER_LEN, HEADER_LEN, Header, Record, StreamReader, StreamWriter, Value,
    decode_record,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const RECORDS: usize = 3000;

fn seed() -> u64 {
    let seed = std::env::var("CAIRN_DAMAGE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    println!("damage seed: {seed} (rerun with CAIRN_DAMAGE_SEED={seed})");
    seed
}

fn small_bytes(rng: &mut StdRng, max: usize) -> Bytes {
    let len = rng.random_range(0..=max);
    Bytes::from((0..len).map(|_| rng.random::<u8>()).collect::<Vec<_>>())
}

/// A mix of every type, some expiries, and a few entries split into chunks.
fn records(rng: &mut StdRng) -> Vec<Record> {
    let mut out = Vec::new();
    let chunker = Chunker::new().target_bytes(24);
    while out.len() < RECORDS {
        let n = rng.random_range(0..4);
        let value = match rng.random_range(0..5) {
            0 => Value::String(small_bytes(rng, 12)),
            1 => Value::List((0..n).map(|_| small_bytes(rng, 6)).collect()),
            2 => Value::Set((0..n).map(|_| small_bytes(rng, 6)).collect()),
            3 => Value::Hash(
                (0..n)
                    .map(|_| (small_bytes(rng, 4), small_bytes(rng, 4)))
                    .collect(),
            ),
            _ => Value::SortedSet(
                (0..n)
                    .map(|_| (small_bytes(rng, 4), rng.random_range(-1e6..1e6)))
                    .collect(),
            ),
        };
        let expiry = rng
            .random_bool(0.3)
            .then(|| rng.random_range(-10..2_000_000_000_000));
        let record =
            Record::new(rng.random_range(0..3), small_bytes(rng, 8), value).with_expiry(expiry);
        if rng.random_bool(0.02) {
            out.extend(chunker.split(record));
        } else {
            out.push(record);
        }
    }
    out
}

struct Fixture {
    records: Vec<Record>,
    stream: Vec<u8>,
    /// Byte range of each framed record in `stream`.
    frames: Vec<std::ops::Range<usize>>,
}

fn fixture(seed: u64) -> Fixture {
    let mut rng = StdRng::seed_from_u64(seed);
    let records = records(&mut rng);
    let mut writer = StreamWriter::new(Vec::new(), Header::new(1_700_000_000_000)).unwrap();
    let mut frames = Vec::new();
    let mut at = HEADER_LEN;
    for r in &records {
        writer.write_record(r).unwrap();
        let len = cairn_snapshot::framed_len(r).unwrap();
        frames.push(at..at + len);
        at += len;
    }
    let (_, stream) = writer.finish_into_inner().unwrap();
    assert_eq!(stream.len(), at + FOOTER_LEN);
    println!("{} records, {} stream bytes", records.len(), stream.len());
    Fixture {
        records,
        stream,
        frames,
    }
}

/// Reads `bytes` to the end; returns the records handed out and the error
/// that ended the stream, if any.
fn read(bytes: &[u8]) -> (Vec<Record>, Option<Error>) {
    let mut out = Vec::new();
    let reader = match StreamReader::new(bytes) {
        Ok(r) => r,
        Err(e) => return (out, Some(e)),
    };
    for item in reader {
        match item {
            Ok(r) => out.push(r),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

impl Fixture {
    /// Index of the record whose frame holds byte `offset`, or the record
    /// count for the footer and 0 for the header.
    fn record_at(&self, offset: usize) -> usize {
        self.frames.partition_point(|f| f.end <= offset)
    }

    fn assert_prefix(&self, got: &[Record], what: &str) {
        assert!(
            got.len() <= self.records.len(),
            "{what}: more records than written"
        );
        for (i, (a, b)) in got.iter().zip(&self.records).enumerate() {
            assert_eq!(a, b, "{what}: record {i} decoded into different data");
        }
    }
}

/// Reader states before each record and (last) before the footer, taken on
/// one pass over the intact stream. A reader's state at a record boundary
/// depends only on the bytes before it, so reading damaged bytes from a
/// checkpoint is the same as reading the whole damaged stream from the
/// start, without re-reading the intact prefix each time (which made this
/// test quadratic). `checkpoints_agree_with_full_reads` checks that claim.
fn checkpoints(f: &Fixture) -> Vec<StreamReader<&[u8]>> {
    let mut reader = StreamReader::new(&f.stream[..]).unwrap();
    let mut out = Vec::with_capacity(f.records.len() + 1);
    for (k, expected) in f.records.iter().enumerate() {
        out.push(reader.clone());
        assert_eq!(&reader.next().unwrap().unwrap(), expected, "record {k}");
    }
    out.push(reader);
    out
}

/// Reads `damaged`, which is the stream from the start of record `k` (or
/// the footer when `k` is the record count) on, from checkpoint `k`.
fn read_from(
    points: &[StreamReader<&[u8]>],
    k: usize,
    damaged: &[u8],
) -> (Vec<Record>, Option<Error>) {
    let mut reader = points[k].clone();
    *reader.get_mut() = damaged;
    let mut out = Vec::new();
    for item in reader {
        match item {
            Ok(r) => out.push(r),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

fn flip(f: &Fixture, offset: usize, mask: u8) -> Vec<u8> {
    let mut damaged = f.stream.clone();
    damaged[offset] ^= mask;
    damaged
}

/// Where the part of the stream that `offset` lies in starts: record `k`'s
/// first byte, or the footer's.
fn part_start(f: &Fixture, k: usize) -> usize {
    f.frames
        .get(k)
        .map_or(f.stream.len() - FOOTER_LEN, |r| r.start)
}

#[test]
fn every_byte_flip_is_an_error() {
    let seed = seed();
    let f = fixture(seed);
    let points = checkpoints(&f);
    let mut rng = StdRng::seed_from_u64(seed ^ 0xF11F);
    let started = Instant::now();
    let mut by_kind = std::collections::BTreeMap::<&str, usize>::new();
    for offset in 0..f.stream.len() {
        let mask: u8 = rng.random_range(1..=255);
        let what = format!("flip {mask:#04x} at offset {offset}");
        let damaged = flip(&f, offset, mask);
        let k = f.record_at(offset);
        let (got, err) = if offset < HEADER_LEN {
            read(&damaged)
        } else {
            read_from(&points, k, &damaged[part_start(&f, k)..])
        };
        let Some(err) = err else {
            panic!("{what}: read without error")
        };
        assert!(
            got.is_empty(),
            "{what}: records at or after the damage were handed out"
        );
        let kind = match &err {
            Error::ChecksumMismatch {
                offset: at, record, ..
            } => {
                if offset >= HEADER_LEN {
                    let expected_record = (k < f.records.len()).then_some(k as u64);
                    assert_eq!(*at, part_start(&f, k) as u64, "{what}: {err}");
                    assert_eq!(*record, expected_record, "{what}: {err}");
                }
                "checksum"
            }
            // A damaged length may point past the end or beyond the limit.
            Error::Truncated { .. } | Error::TooLarge { .. } => {
                assert!(offset < part_start(&f, k) + 4, "{what}: {err}");
                "length"
            }
            Error::BadMagic { .. } => "magic",
            Error::UnsupportedVersion { .. } => "version",
            other => panic!("{what}: unexpected {other}"),
        };
        *by_kind.entry(kind).or_default() += 1;
    }
    println!(
        "{} flips, all reported ({by_kind:?}), in {:.1?}",
        f.stream.len(),
        started.elapsed()
    );
}

#[test]
fn every_truncation_is_an_error() {
    let f = fixture(seed());
    let points = checkpoints(&f);
    let started = Instant::now();
    for len in 0..f.stream.len() {
        let what = format!("truncated to {len} bytes");
        let k = f.record_at(len);
        let (got, err) = if len < HEADER_LEN {
            read(&f.stream[..len])
        } else {
            read_from(&points, k, &f.stream[part_start(&f, k)..len])
        };
        let Some(err) = err else {
            panic!("{what}: read without error")
        };
        assert!(matches!(err, Error::Truncated { .. }), "{what}: {err}");
        assert!(got.is_empty(), "{what}: a partial record was handed out");
    }
    println!(
        "{} truncations, all reported, in {:.1?}",
        f.stream.len(),
        started.elapsed()
    );
}

/// Reading from a checkpoint gives the same records and the same error as
/// reading the whole damaged stream from its first byte.
#[test]
fn checkpoints_agree_with_full_reads() {
    let seed = seed();
    let f = fixture(seed);
    let points = checkpoints(&f);
    let mut rng = StdRng::seed_from_u64(seed ^ 0xC4EC);
    for _ in 0..300 {
        let offset = rng.random_range(HEADER_LEN..f.stream.len());
        let k = f.record_at(offset);
        let start = part_start(&f, k);
        let damaged = flip(&f, offset, rng.random_range(1..=255));
        let (full, full_err) = read(&damaged);
        let (tail, tail_err) = read_from(&points, k, &damaged[start..]);
        f.assert_prefix(&full, "full read");
        assert_eq!(full.len(), k + tail.len(), "flip at {offset}");
        assert_eq!(
            format!("{full_err:?}"),
            format!("{tail_err:?}"),
            "flip at {offset}"
        );

        let len = rng.random_range(HEADER_LEN..f.stream.len());
        let k = f.record_at(len);
        let (full, full_err) = read(&f.stream[..len]);
        let (tail, tail_err) = read_from(&points, k, &f.stream[part_start(&f, k)..len]);
        assert_eq!(full.len(), k + tail.len(), "cut at {len}");
        assert_eq!(
            format!("{full_err:?}"),
            format!("{tail_err:?}"),
            "cut at {len}"
        );
    }
}

#[test]
fn trailing_bytes_are_an_error() {
    let f = fixture(seed());
    for extra in [&[0u8][..], b"x", &f.stream[..HEADER_LEN]] {
        let mut longer = f.stream.clone();
        longer.extend_from_slice(extra);
        let (got, err) = read(&longer);
        assert!(matches!(err, Some(Error::TrailingData { .. })), "{err:?}");
        assert_eq!(got, f.records);
    }
}

fn splice(f: &Fixture, order: &[usize]) -> Vec<u8> {
    let mut out = f.stream[..HEADER_LEN].to_vec();
    for &i in order {
        out.extend_from_slice(&f.stream[f.frames[i].clone()]);
    }
    out.extend_from_slice(&f.stream[f.stream.len() - FOOTER_LEN..]);
    out
}

#[test]
fn swapped_duplicated_and_dropped_records_are_errors() {
    let seed = seed();
    let f = fixture(seed);
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5A5A);
    let n = f.records.len();
    let mut checked = [0usize; 3];
    for _ in 0..300 {
        let i = rng.random_range(0..n);
        let j = rng.random_range(0..n);
        let mut order: Vec<usize> = (0..n).collect();

        order.swap(i, j);
        if f.stream[f.frames[i].clone()] != f.stream[f.frames[j].clone()] {
            let (got, err) = read(&splice(&f, &order));
            assert!(
                matches!(err, Some(Error::DigestMismatch { .. })),
                "swap {i} {j}: {err:?}"
            );
            f.assert_prefix(&got[..i.min(j)], "swap");
            checked[0] += 1;
        }
        order.swap(i, j);

        order.insert(j, i);
        let (_, err) = read(&splice(&f, &order));
        assert!(
            matches!(err, Some(Error::CountMismatch { expected, actual }) if actual == expected + 1),
            "duplicate {i} at {j}: {err:?}"
        );
        order.remove(j);
        checked[1] += 1;

        order.remove(i);
        let (_, err) = read(&splice(&f, &order));
        assert!(
            matches!(err, Some(Error::CountMismatch { .. })),
            "drop {i}: {err:?}"
        );
        checked[2] += 1;
    }
    // A swap that keeps the count and the multiset of records: only the
    // digest can tell.
    println!(
        "swaps {}, duplicates {}, drops {} all reported",
        checked[0], checked[1], checked[2]
    );
    assert!(checked[0] > 250);
}

/// Record-at-a-time: every flip of every framed record fails `decode_record`.
#[test]
fn every_flip_of_every_framed_record_fails_to_decode() {
    let f = fixture(seed());
    let mut flips = 0;
    for frame in &f.frames {
        let mut framed = f.stream[frame.clone()].to_vec();
        for offset in 0..framed.len() {
            for mask in [0x01, 0x80, 0xFF] {
                framed[offset] ^= mask;
                let result = decode_record(&framed);
                framed[offset] ^= mask;
                match result {
                    Err(Error::ChecksumMismatch { .. }) => {}
                    Err(
                        Error::Truncated { .. } | Error::TooLarge { .. } | Error::Malformed { .. },
                    ) if offset < 4 => {}
                    other => panic!("flip {mask:#04x} at {offset} of {framed:?}: {other:?}"),
                }
                flips += 1;
            }
        }
    }
    println!("{flips} record-level flips, all reported");
}
