//! The cairn snapshot record codec (placeholder).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
