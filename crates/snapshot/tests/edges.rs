//! Hand-built payloads and chunk sequences: what the decoder accepts,
//! what it refuses, and what the assembler reports.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use cairn_snapshot::{
    Assembler, Chunk, ChunkError, Chunker, Digest, Error, Footer, Header, Record, StreamReader,
    StreamWriter, Value, decode_record, encode_record,
};

/// Frames an arbitrary payload with a correct length and CRC.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn malformed(payload: &[u8]) -> &'static str {
    match decode_record(&frame(payload)) {
        Err(Error::Malformed { reason, .. }) => reason,
        other => panic!("expected Malformed for {payload:?}, got {other:?}"),
    }
}

#[test]
fn accepts_what_protobuf_allows() {
    // key "k", string "v", then an unknown varint field 5 and an unknown
    // length-delimited field 70: both skipped (fields added later).
    let payload = [
        0x12, 1, b'k', 0x42, 1, b'v', 0x28, 0x7f, 0xb2, 0x04, 2, 0xaa, 0xbb,
    ];
    let r = decode_record(&frame(&payload)).unwrap();
    assert_eq!(r, Record::new(0, "k", Value::String(Bytes::from("v"))));
    // Non-canonical (padded) varint for db = 1.
    let r = decode_record(&frame(&[0x08, 0x81, 0x80, 0x00, 0x42, 0])).unwrap();
    assert_eq!(r.db, 1);
    // Unpacked scores (wire type 1), as older protobuf writers emit them.
    let mut zset = vec![0x62, 0];
    let body = [
        &[0x0a, 1, b'm'][..],
        &[0x11],
        &(-0.0f64).to_bits().to_le_bytes(),
    ]
    .concat();
    zset[1] = body.len() as u8;
    zset.extend_from_slice(&body);
    let r = decode_record(&frame(&zset)).unwrap();
    let Value::SortedSet(pairs) = &r.value else {
        panic!("{r:?}")
    };
    assert_eq!(pairs[0].1.to_bits(), (-0.0f64).to_bits());
}

#[test]
fn refuses_malformed_payloads() {
    assert_eq!(malformed(&[]), "record has no value");
    assert_eq!(malformed(&[0x12, 1, b'k']), "record has no value");
    assert_eq!(
        malformed(&[0x42, 0, 0x42, 0]),
        "record has more than one value"
    );
    assert_eq!(
        malformed(&[0x42, 5, b'a']),
        "length-delimited field runs past the end of its message"
    );
    assert_eq!(
        malformed(&[0x08, 0xff, 0xff, 0xff, 0xff, 0x10, 0x42, 0]),
        "db exceeds u32"
    );
    assert_eq!(
        malformed(
            &[0x08; 1]
                .iter()
                .chain(&[0xff; 10])
                .copied()
                .collect::<Vec<_>>()
        ),
        "varint overflows 64 bits"
    );
    assert_eq!(malformed(&[0x2b, 0]), "unsupported wire type");
    assert_eq!(malformed(&[0x43, 0]), "wrong wire type for field");
    assert_eq!(malformed(&[0x40, 0]), "wrong wire type for field");
    assert_eq!(malformed(&[0x00, 0]), "invalid field number");
    // Hash with a field but no value.
    assert_eq!(
        malformed(&[0x52, 3, 0x0a, 1, b'f']),
        "hash has different numbers of fields and values"
    );
    // Sorted set with a member but no score; packed scores of 7 bytes.
    assert_eq!(
        malformed(&[0x62, 3, 0x0a, 1, b'm']),
        "sorted set has different numbers of members and scores"
    );
    assert_eq!(
        malformed(&[0x62, 9, 0x12, 7, 0, 0, 0, 0, 0, 0, 0]),
        "packed scores not a multiple of 8 bytes"
    );
    // A chunk's `last` must be a real bool.
    assert_eq!(
        malformed(&[0x22, 2, 0x10, 2, 0x42, 0]),
        "bool is neither 0 nor 1"
    );
    // A NaN score is refused on the way in too.
    let nan = [
        &[0x62, 13, 0x0a, 1, b'm', 0x12, 8][..],
        &f64::NAN.to_bits().to_le_bytes(),
    ]
    .concat();
    assert!(matches!(
        decode_record(&frame(&nan)),
        Err(Error::InvalidScore { .. })
    ));
}

#[test]
fn frame_errors_say_where() {
    let mut framed = Vec::new();
    encode_record(
        &Record::new(3, "key", Value::String(Bytes::from("value"))),
        &mut framed,
    )
    .unwrap();
    assert!(matches!(
        decode_record(&framed[..3]),
        Err(Error::Truncated {
            needed: 4,
            available: 3,
            ..
        })
    ));
    assert!(matches!(
        decode_record(&framed[..framed.len() - 1]),
        Err(Error::Truncated { what: "record", .. })
    ));
    let mut longer = framed.clone();
    longer.push(0);
    assert!(matches!(
        decode_record(&longer),
        Err(Error::Malformed {
            reason: "bytes after the record's CRC",
            ..
        })
    ));
    let last = framed.len() - 1;
    framed[last] ^= 1;
    let err = decode_record(&framed).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ChecksumMismatch {
                offset: 0,
                record: None,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("checksum mismatch at offset 0"),
        "{err}"
    );
}

/// A record of a value type from the future: tag 15 is in the value range
/// (13 is the extension payload, 14 the stream).
#[test]
fn unknown_value_types_are_typed_errors_and_skippable_in_streams() {
    let future = frame(&[0x12, 1, b'k', 0x7a, 2, 0x08, 0x01]);
    let err = decode_record(&future).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnknownValueType {
                tag: 15,
                offset: 7,
                record: None
            }
        ),
        "{err:?}"
    );
    assert!(err.is_skippable());

    let mut stream = Header::new(5).encode();
    let mut digest = Digest::new();
    let mut known = Vec::new();
    encode_record(&Record::new(0, "a", Value::Set(vec![])), &mut known).unwrap();
    for f in [&known, &future, &known] {
        stream.extend_from_slice(f);
        digest.update(f);
    }
    stream.extend_from_slice(
        &Footer {
            record_count: 3,
            digest: digest.finish(),
        }
        .encode(),
    );
    let items: Vec<_> = StreamReader::new(&stream[..]).unwrap().collect();
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok() && items[2].is_ok());
    assert!(matches!(
        items[1],
        Err(Error::UnknownValueType {
            tag: 15,
            record: Some(1),
            ..
        })
    ));
}

#[test]
fn headers_and_footers_check_themselves() {
    let h = Header::new(-5);
    assert_eq!(Header::decode(&h.encode()).unwrap(), h);
    assert_eq!(h.format_version, 2);
    let with_version = |v: u32| {
        let mut b = h.encode();
        b[8..12].copy_from_slice(&v.to_le_bytes());
        let crc = crc32fast::hash(&b[..20]);
        b[20..].copy_from_slice(&crc.to_le_bytes());
        b
    };
    // Version 1 (keys repeated in every chunk, no split elements) is read.
    assert_eq!(
        Header::decode(&with_version(1)).unwrap(),
        Header {
            format_version: 1,
            created_at_ms: -5
        }
    );
    for v in [0, 3, u32::MAX] {
        let err = Header::decode(&with_version(v)).unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedVersion { found, supported: 2 } if found == v),
            "{err:?}"
        );
        assert!(err.to_string().contains("unsupported format version"));
    }
    assert!(matches!(
        Header::decode(b"REDIS0011..............."),
        Err(Error::BadMagic { what: "header", .. })
    ));
    assert!(matches!(
        Header::decode(&h.encode()[..10]),
        Err(Error::Truncated { .. })
    ));

    let f = Footer {
        record_count: 7,
        digest: [9; 16],
    };
    assert_eq!(Footer::decode(&f.encode()).unwrap(), f);
    let mut bad = f.encode();
    bad[13] ^= 4;
    assert!(matches!(
        Footer::decode(&bad),
        Err(Error::ChecksumMismatch { .. })
    ));
    assert!(matches!(
        Footer::decode(&h.encode()),
        Err(Error::Truncated { .. })
    ));
}

#[test]
fn digest_depends_on_order_and_count() {
    let frames: Vec<Vec<u8>> = (0..3)
        .map(|i| {
            let mut f = Vec::new();
            encode_record(
                &Record::new(0, format!("k{i}"), Value::List(vec![])),
                &mut f,
            )
            .unwrap();
            f
        })
        .collect();
    let digest = |order: &[usize]| {
        let mut d = Digest::new();
        for &i in order {
            d.update(&frames[i]);
        }
        (d.count(), d.finish())
    };
    let base = digest(&[0, 1, 2]);
    for other in [&[0, 2, 1][..], &[0, 1], &[0, 1, 2, 2], &[0, 0, 1, 2], &[]] {
        assert_ne!(digest(other), base, "{other:?}");
    }
    // The definition: XXH3-128 of the concatenated frames, little-endian.
    let all = frames.concat();
    assert_eq!(base.1, xxhash_rust::xxh3::xxh3_128(&all).to_le_bytes());
}

fn chunks(kind: u8) -> Vec<Record> {
    let value = match kind {
        0 => Value::String(Bytes::from(vec![7u8; 20])),
        _ => Value::List((0..10u8).map(|i| Bytes::from(vec![i])).collect()),
    };
    let chunks: Vec<Record> = Chunker::new()
        .target_bytes(6)
        .split(Record::new(1, "big", value))
        .collect();
    assert!(chunks.len() >= 4);
    assert!(
        chunks[1..].iter().all(|c| c.key.is_empty()),
        "key written once"
    );
    chunks
}

fn assemble(records: Vec<Record>) -> Result<Vec<Record>, Error> {
    let mut a = Assembler::new();
    let mut out = Vec::new();
    for r in records {
        out.extend(a.push(r)?);
    }
    a.finish()?;
    Ok(out)
}

fn chunk_error(records: Vec<Record>) -> (ChunkError, Option<u64>) {
    match assemble(records) {
        Err(Error::Chunk { kind, record }) => (kind, record),
        other => panic!("expected a chunk error, got {other:?}"),
    }
}

#[test]
fn assembler_reports_bad_sequences() {
    let whole = Record::new(0, "small", Value::String(Bytes::from("x")));
    for kind in [0, 1] {
        let c = chunks(kind);
        let n = c.len();
        let good =
            assemble([vec![whole.clone()], c.clone(), vec![whole.clone()]].concat()).unwrap();
        assert_eq!(good.len(), 3);
        assert_eq!(good[1].value.len(), if kind == 0 { 20 } else { 10 });
        assert_eq!(good[1].chunk, None);

        let mut swapped = c.clone();
        swapped.swap(1, 2);
        assert_eq!(
            chunk_error(swapped),
            (
                ChunkError::OutOfOrder {
                    expected: 1,
                    found: 2
                },
                Some(1)
            )
        );

        let mut dup = c.clone();
        dup.insert(2, c[1].clone());
        assert_eq!(
            chunk_error(dup),
            (ChunkError::Duplicate { index: 1 }, Some(2))
        );

        let mut missing_middle = c.clone();
        missing_middle.remove(1);
        assert_eq!(
            chunk_error(missing_middle),
            (
                ChunkError::OutOfOrder {
                    expected: 1,
                    found: 2
                },
                Some(1)
            )
        );

        let mut missing_end = c.clone();
        missing_end.pop();
        assert_eq!(
            chunk_error(missing_end.clone()),
            (
                ChunkError::Missing {
                    last_index: (n - 2) as u32
                },
                Some((n - 2) as u64)
            )
        );
        missing_end.push(whole.clone());
        assert_eq!(
            chunk_error(missing_end),
            (
                ChunkError::Missing {
                    last_index: (n - 2) as u32
                },
                Some((n - 1) as u64)
            )
        );

        let mut no_start = c.clone();
        no_start.remove(0);
        assert_eq!(
            chunk_error(no_start),
            (
                ChunkError::OutOfOrder {
                    expected: 0,
                    found: 1
                },
                Some(0)
            )
        );

        for (field, change) in [
            (
                "key",
                Box::new(|r: &mut Record| r.key = Bytes::from("other")) as Box<dyn Fn(&mut Record)>,
            ),
            ("db", Box::new(|r: &mut Record| r.db = 9)),
            (
                "expires_at_ms",
                Box::new(|r: &mut Record| r.expires_at_ms = Some(1)),
            ),
            (
                "value type",
                Box::new(|r: &mut Record| r.value = Value::Set(vec![])),
            ),
        ] {
            let mut changed = c.clone();
            change(&mut changed[1]);
            assert_eq!(
                chunk_error(changed),
                (ChunkError::Mismatch { index: 1, field }, Some(1))
            );
        }

        // The assembler is idle again after each complete entry.
        let mut a = Assembler::new();
        for (i, r) in c.iter().enumerate() {
            let out = a.push(r.clone()).unwrap();
            assert_eq!(out.is_some(), i + 1 == n);
            assert_eq!(a.is_idle(), i + 1 == n);
        }
    }
}

#[test]
fn a_single_chunk_entry_assembles_to_itself() {
    let mut r = Record::new(
        0,
        "k",
        Value::Hash(vec![(Bytes::from("f"), Bytes::from("v"))]),
    );
    r.chunk = Some(Chunk::new(0, true));
    let out = assemble(vec![r.clone()]).unwrap();
    r.chunk = None;
    assert_eq!(out, vec![r]);
}

#[test]
fn writer_accepts_framed_records_and_checks_them() {
    let mut framed = Vec::new();
    encode_record(
        &Record::new(0, "k", Value::String(Bytes::from("v"))),
        &mut framed,
    )
    .unwrap();
    let mut w = StreamWriter::new(Vec::new(), Header::new(0)).unwrap();
    w.write_framed(&framed).unwrap();
    framed[5] ^= 1;
    assert!(matches!(
        w.write_framed(&framed),
        Err(Error::ChecksumMismatch { .. })
    ));
    assert_eq!(w.record_count(), 1);
    let (footer, bytes) = w.finish_into_inner().unwrap();
    assert_eq!(footer.record_count, 1);
    assert_eq!(
        StreamReader::new(&bytes[..])
            .unwrap()
            .verify_to_end()
            .unwrap(),
        footer
    );
}

/// An extension payload (value field 13) round-trips, key byte `0x6a`, and
/// is never chunked.
#[test]
fn payload_records_round_trip_unchunked() {
    let data = Bytes::from(vec![7u8; 100_000]);
    let r = Record::new(0, "functions", Value::Payload(data.clone()));
    let mut buf = Vec::new();
    encode_record(&r, &mut buf).unwrap();
    assert!(buf.windows(1).any(|w| w[0] == 0x6a));
    assert_eq!(decode_record(&buf).unwrap(), r);
    let chunks: Vec<Record> = Chunker::new().target_bytes(1024).split(r.clone()).collect();
    assert_eq!(chunks, vec![r]);
}
