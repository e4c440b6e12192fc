//! `cargo xtask`: cairn's developer tasks (placeholder).
fn main() {}
