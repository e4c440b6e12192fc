//! cairn: the embedding API (placeholder).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
