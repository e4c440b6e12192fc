//! The `cairn-server` binary (placeholder).
fn main() {}
