//! The cairn keyspace: databases, typed values, expiry and command execution (placeholder).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
