//! Shared fixtures for cairn's black-box suites (placeholder).
pub mod cairn;
pub mod data;
pub mod fixtures;
pub mod oracle;
pub mod wire;
