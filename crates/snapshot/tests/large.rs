//! Values far larger than one record: a 100 MB list element and a 100 MB
//! string, through the default chunker, the real codec and the assembler,
//! which must build each in one buffer, allocated once.
//!
//! One test only: the peak resident memory it measures is the process's.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use cairn_snapshot::{
    Assembler, Chunker, DEFAULT_CHUNK_BYTES, Limits, Record, Value, decode_record_shared,
    encode_record,
};

const HUNDRED_MB: usize = 100_000_000;

/// A field of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs `f` and returns its result and how far the resident memory rose
/// above its level at the start, at its highest (Linux: resets the peak
/// through `/proc/self/clear_refs`); `None` where that cannot be measured.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, Option<usize>) {
    let reset = std::fs::write("/proc/self/clear_refs", "5");
    let base = status_bytes("VmRSS:");
    let out = f();
    let peak = match (reset, base, status_bytes("VmHWM:")) {
        (Ok(()), Some(base), Some(peak)) => Some(peak.saturating_sub(base)),
        (reset, ..) => {
            println!("skipped: peak memory check: cannot reset or read the peak RSS ({reset:?})");
            None
        }
    };
    (out, peak)
}

/// The assembled value, once, and a few chunks in flight: a second full
/// copy (assembling, then concatenating) would double it.
fn assert_one_copy(what: &str, peak: Option<usize>) {
    if let Some(peak) = peak {
        println!("{what}: resident memory rose by at most {} MB", peak >> 20);
        assert!(
            peak < HUNDRED_MB + 16 * DEFAULT_CHUNK_BYTES,
            "{what}: resident memory rose by {peak} bytes"
        );
    }
}

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
    let ((back, records, largest), peak) = peak_of(|| through_codec(list.clone()));
    println!("list: {records} records, largest framed {largest} bytes");
    assert_one_copy("list", peak);
    assert!(
        largest <= DEFAULT_CHUNK_BYTES + 128,
        "record of {largest} bytes"
    );
    assert!(records >= HUNDRED_MB / DEFAULT_CHUNK_BYTES);
    assert_eq!(back, list);
    drop((back, list));

    let string = Record::new(0, "big-string", Value::String(pattern(HUNDRED_MB, 0x33)));
    let ((back, records, largest), peak) = peak_of(|| through_codec(string.clone()));
    println!("string: {records} records, largest framed {largest} bytes");
    assert_one_copy("string", peak);
    assert!(
        largest <= DEFAULT_CHUNK_BYTES + 128,
        "record of {largest} bytes"
    );
    assert_eq!(back, string);
    println!("took {:.1?}", started.elapsed());
}
