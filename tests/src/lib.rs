//! Shared fixtures for cairn's black-box suites (`tests/tests/*.rs`) and the
//! `cargo xtask test-persistence` campaigns: real servers over TCP, the
//! Redis oracle, a raw RESP client, and the persistence suites' data model.
//!
//! - [`data`]: seeded datasets of every type, populate, a full dump over
//!   TCP and a readable diff ("compare everything" in one call).
//! - [`fixtures`]: an isolated runtime per test with leak checks,
//!   in-process servers on real data directories, tmpfs mounts.
//! - [`cairn`], [`oracle`], [`wire`]: the differential suite's servers and
//!   raw client.
//!
//! # Example
//!
//! ```
//! use cairn_tests::data::{Spec, Val};
//!
//! let want = Spec::full(42, 100).generate(); // same seed, same data
//! let mut got = want.clone();
//! got.insert(0, "stray", Val::Str(b"x".to_vec()), None);
//! let diff = want.diff(&got, 1_000);
//! assert_eq!(diff.unexpected.len(), 1);
//! assert!(want.diff(&want, 0).is_empty());
//! ```
pub mod cairn;
pub mod data;
pub mod fixtures;
pub mod oracle;
pub mod wire;
