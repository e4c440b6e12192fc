//! fjall-backed snapshot generations for cairn (placeholder).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
