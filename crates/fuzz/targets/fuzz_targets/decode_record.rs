//! libFuzzer entry of `cairn_fuzz::decode_record` (see that crate for its rules).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::decode_record(data));
