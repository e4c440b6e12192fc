//! cairn: the embedding API (being built).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
