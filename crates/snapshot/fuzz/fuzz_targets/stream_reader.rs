//! Fuzzes `StreamReader`: any bytes must end in records and a verified
//! footer, or an error, never a panic; after an error nothing more is read.
//!
//! Raw bytes rarely pass the header and CRCs, so the input is also used as
//! a list of payloads that are framed and wrapped in a valid stream (header,
//! correct CRCs, correct footer): then every frame must be read back exactly
//! as `decode_record` sees it.
#![no_main]

use cairn_snapshot::{Digest, Footer, Header, StreamReader, decode_record};
use libfuzzer_sys::fuzz_target;

fn drain(bytes: &[u8]) -> Vec<Result<cairn_snapshot::Record, String>> {
    let Ok(reader) = StreamReader::new(bytes) else { return Vec::new() };
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

fuzz_target!(|data: &[u8]| {
    drain(data);

    // Build a valid stream whose payloads are slices of the input: a length
    // byte, then that many payload bytes, repeated.
    let mut stream = Header::new(0).encode();
    let mut digest = Digest::new();
    let mut frames = Vec::new();
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let len = (len as usize).min(tail.len());
        let (payload, tail) = tail.split_at(len);
        rest = tail;
        let mut framed = (payload.len() as u32).to_le_bytes().to_vec();
        framed.extend_from_slice(payload);
        let crc = crc32fast::hash(&framed);
        framed.extend_from_slice(&crc.to_le_bytes());
        digest.update(&framed);
        stream.extend_from_slice(&framed);
        frames.push(framed);
    }
    stream.extend_from_slice(&Footer { record_count: digest.count(), digest: digest.finish() }.encode());
    let items = drain(&stream);
    for (item, framed) in items.iter().zip(&frames) {
        let direct = decode_record(framed).map_err(|e| e.to_string());
        match (item, &direct) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            _ => panic!("stream and decode_record disagree: {item:?} vs {direct:?}"),
        }
    }
    // Every frame is valid, so the reader gets through all of them unless
    // a payload is undecodable (which stops it).
    if items.iter().all(|i| i.is_ok()) {
        assert_eq!(items.len(), frames.len());
    }
});
