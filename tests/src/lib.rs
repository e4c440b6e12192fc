//! Shared fixtures for cairn's black-box suites (placeholder).
pub mod cairn;
pub mod oracle;
pub mod wire;
