//! cairn: a Redis-compatible in-memory server whose data survives restarts.
//!
//! This crate composes the others: [`Server`] builds a keyspace
//! (`cairn-keyspace`), serves it over RESP (`cairn-resp`), and persists it as
//! snapshot generations (`cairn-snapshot`, `cairn-store`). The `cairn-server`
//! binary is a thin wrapper over the same API.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use cairn_server::Server;
//!
//! let handle = Server::builder().port(0).persistence(false).build().start().await?;
//! let addr = handle.addr(); // the real port
//! assert_ne!(addr.port(), 0);
//! handle.shutdown().await?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
mod server;

pub use crate::{
    config::{Config, ConfigError, OnCorrupt, SavePoint},
    server::{Server, ServerBuilder, ServerHandle, StartError},
};
