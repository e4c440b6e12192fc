//! Values far larger than one record: a 100 MB list element and a 100 MB
//! string, through the default chunker, the real codec and the assembler.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use cairn_snapshot::{
    Assembler, Chunker, DEFAULT_CHUNK_BYTES, Limits, Record, Value, decode_record_shared,
    encode_record,
};

const HUNDRED_MB: usize = 100_000_000;

/// `len` bytes of a pattern with a prime period, so that a fragment put
/// back in the wrong place or twice shows.
fn pattern(len: usize, salt: u8) -> Bytes {
    let period: Vec<u8> = (0..251u8).map(|i| i ^ salt).collect();
    let mut out = period.repeat(len / period.len() + 1);
    out.truncate(len);
    Bytes::from(out)
}

/// Splits, encodes, decodes (sharing each frame's buffer, as the store
/// does) and assembles `record`; returns the assembled entry and the number
/// and largest size of the framed records.
fn through_codec(record: Record) -> (Record, usize, usize) {
    let mut assembler = Assembler::new();
    let mut whole = None;
    let (mut records, mut largest) = (0, 0);
    let mut framed = Vec::new();
    for chunk in Chunker::new().split(record) {
        framed.clear();
        encode_record(&chunk, &mut framed).unwrap();
        records += 1;
        largest = largest.max(framed.len());
        let back =
            decode_record_shared(&Bytes::copy_from_slice(&framed), &Limits::DEFAULT).unwrap();
        if let Some(entry) = assembler.push(back).unwrap() {
            assert!(whole.is_none(), "a second entry came out");
            whole = Some(entry);
        }
    }
    assembler.finish().unwrap();
    (whole.unwrap(), records, largest)
}

#[test]
fn a_100_mb_list_element_and_a_100_mb_string_round_trip() {
    let started = std::time::Instant::now();
    let element = pattern(HUNDRED_MB, 0x5a);
    let list = Record::new(
        3,
        "big-list",
        Value::List(vec![
            Bytes::from("head"),
            element.clone(),
            Bytes::new(),
            Bytes::from("tail"),
        ]),
    )
    .with_expiry(Some(1_900_000_000_000));
    let (back, records, largest) = through_codec(list.clone());
    println!("list: {records} records, largest framed {largest} bytes");
    assert!(
        largest <= DEFAULT_CHUNK_BYTES + 128,
        "record of {largest} bytes"
    );
    assert!(records >= HUNDRED_MB / DEFAULT_CHUNK_BYTES);
    assert_eq!(back, list);
    drop((back, list));

    let string = Record::new(0, "big-string", Value::String(pattern(HUNDRED_MB, 0x33)));
    let (back, records, largest) = through_codec(string.clone());
    println!("string: {records} records, largest framed {largest} bytes");
    assert!(
        largest <= DEFAULT_CHUNK_BYTES + 128,
        "record of {largest} bytes"
    );
    assert_eq!(back, string);
    println!("took {:.1?}", started.elapsed());
}
