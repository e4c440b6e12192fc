//! libFuzzer entry of `cairn_fuzz::stream_reader` (see that crate for its rules).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cairn_fuzz::stream_reader(data));
