//! RESP2/RESP3 wire protocol for cairn (placeholder; filled by the foundation work).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod frame;
mod service;

pub use crate::{
    frame::{Frame, Protocol},
    service::{ConnInfo, Event, Outcome, Pending, Service, Session},
};
