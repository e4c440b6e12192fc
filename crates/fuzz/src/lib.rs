//! The checks cairn's fuzz targets run, as plain functions.
//!
//! Each check takes the fuzzer's bytes and panics when cairn breaks a rule
//! for them: a panic inside cairn, or an invariant that does not hold. The
//! libFuzzer targets in `crates/fuzz/targets` (nightly, `cargo xtask fuzz`)
//! call them, and so do the regression tests on the stable toolchain, which
//! replay every input saved under `crates/fuzz/regressions/<target>/`
//! (crashes found once, kept forever) and `crates/fuzz/seeds/<target>/`
//! (the small starting corpus).
//!
//! | target | what it feeds | rules |
//! |---|---|---|
//! | `resp_decode` | bytes to the request decoder, whole and split | no panic; the same requests and the same error however the bytes arrive |
//! | `commands` | argument vectors to a keyspace | no panic; every key has one type, answered consistently by TYPE, EXISTS, DBSIZE and the type's length command |
//! | `decode_record` | bytes to the snapshot record decoder, raw and framed | no panic; decoded records re-encode to themselves; copying and sharing decoders agree |
//! | `stream_reader` | bytes to the snapshot stream reader, raw and wrapped in a valid stream | no panic; a valid stream's frames read back as `decode_record` sees them |
//!
//! ```
//! // Any bytes: the check returns, or panics on a bug.
//! cairn_fuzz::resp_decode(b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n");
//! cairn_fuzz::commands(b"\x01\x02set k0 v");
//! ```

mod commands;
mod resp;
mod snapshot;

pub use commands::commands;
pub use resp::resp_decode;
pub use snapshot::{decode_record, stream_reader};

/// A check: returns, or panics on a bug.
pub type Check = fn(&[u8]);

/// The fuzz targets, by the names `cargo xtask fuzz` and the regression
/// directories use.
pub const TARGETS: &[(&str, Check)] = &[
    ("resp_decode", resp_decode),
    ("commands", commands),
    ("decode_record", decode_record),
    ("stream_reader", stream_reader),
];
