//! `decode_record` and `stream_reader`: the snapshot codec on any bytes.
//!
//! Random bytes almost never pass a CRC, so each input is also framed
//! with a correct length and CRC (one record), or read as a list of
//! payloads wrapped in a valid stream (header, CRCs, footer), to reach the
//! decoders behind the checksums.

use cairn_snapshot::{Digest, Footer, Header, Limits, Record, StreamReader, encode_record};

fn check_round_trip(record: &Record) {
    let mut again = Vec::new();
    encode_record(record, &mut again).expect("a decoded record re-encodes");
    let back = cairn_snapshot::decode_record(&again).expect("a re-encoded record decodes");
    assert_eq!(&back, record);
}

/// A payload framed as the store writes it: length, bytes, CRC32.
fn frame(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("fuzz inputs are small");
    let mut framed = Vec::with_capacity(payload.len() + 8);
    framed.extend_from_slice(&len.to_le_bytes());
    framed.extend_from_slice(payload);
    let crc = crc32fast::hash(&framed);
    framed.extend_from_slice(&crc.to_le_bytes());
    framed
}

/// Panics when decoding a record panics, when a decoded record does not
/// re-encode to itself, or when the copying and sharing decoders disagree.
pub fn decode_record(data: &[u8]) {
    if let Ok(record) = cairn_snapshot::decode_record(data) {
        check_round_trip(&record);
    }
    let framed = frame(data);
    let copied = cairn_snapshot::decode_record(&framed);
    let shared =
        cairn_snapshot::decode_record_shared(&bytes::Bytes::from(framed), &Limits::DEFAULT);
    match (&copied, &shared) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b);
            check_round_trip(a);
        }
        (Err(_), Err(_)) => {}
        _ => panic!("copying and sharing decoders disagree: {copied:?} vs {shared:?}"),
    }
}

fn drain(bytes: &[u8]) -> Vec<Result<Record, String>> {
    let Ok(reader) = StreamReader::new(bytes) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in reader {
        let stop = matches!(&item, Err(e) if !e.is_skippable());
        out.push(item.map_err(|e| e.to_string()));
        if stop {
            break;
        }
        assert!(out.len() <= bytes.len(), "more items than bytes");
    }
    out
}

/// Panics when reading a snapshot stream panics, reads past an error, or
/// reads a valid stream's frames otherwise than `decode_record` does.
pub fn stream_reader(data: &[u8]) {
    drain(data);

    // A valid stream whose payloads are slices of the input: a length
    // byte, then that many payload bytes, repeated.
    let mut stream = Header::new(0).encode();
    let mut digest = Digest::new();
    let mut frames = Vec::new();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (payload, tail) = tail.split_at(len);
        rest = tail;
        let framed = frame(payload);
        digest.update(&framed);
        stream.extend_from_slice(&framed);
        frames.push(framed);
    }
    stream.extend_from_slice(
        &Footer {
            record_count: digest.count(),
            digest: digest.finish(),
        }
        .encode(),
    );
    let items = drain(&stream);
    for (item, framed) in items.iter().zip(&frames) {
        let direct = cairn_snapshot::decode_record(framed).map_err(|e| e.to_string());
        match (item, &direct) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            _ => panic!("stream and decode_record disagree: {item:?} vs {direct:?}"),
        }
    }
    // Every frame is valid, so the reader gets through all of them unless
    // a payload is undecodable (which stops it).
    if items.iter().all(Result::is_ok) {
        assert_eq!(items.len(), frames.len());
    }
}
