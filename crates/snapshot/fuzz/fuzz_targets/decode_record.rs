//! Fuzzes `decode_record`: any bytes must give a record or an error, never a
//! panic or an unbounded allocation; a record decoded must re-encode and
//! decode to itself.
//!
//! Random bytes almost never pass the CRC, so each input is also framed with
//! a correct length and CRC to reach the protobuf decoder behind it.
#![no_main]

use cairn_snapshot::{Limits, Record, decode_record, decode_record_shared, encode_record};
use libfuzzer_sys::fuzz_target;

fn check_round_trip(record: &Record) {
    let mut again = Vec::new();
    encode_record(record, &mut again).expect("a decoded record re-encodes");
    let back = decode_record(&again).expect("a re-encoded record decodes");
    assert_eq!(&back, record);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = decode_record(data) {
        check_round_trip(&record);
    }
    // The payload path, behind a valid frame.
    let mut framed = Vec::with_capacity(data.len() + 8);
    framed.extend_from_slice(&(data.len() as u32).to_le_bytes());
    framed.extend_from_slice(data);
    let crc = crc32fast::hash(&framed);
    framed.extend_from_slice(&crc.to_le_bytes());
    let copied = decode_record(&framed);
    let shared = decode_record_shared(&bytes::Bytes::from(framed), &Limits::DEFAULT);
    match (&copied, &shared) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b);
            check_round_trip(a);
        }
        (Err(_), Err(_)) => {}
        _ => panic!("copying and sharing decoders disagree: {copied:?} vs {shared:?}"),
    }
});
