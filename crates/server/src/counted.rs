//! The system allocator with a count of the bytes it holds for cairn, for
//! `INFO memory` (the `cairn-server` binary's default allocator).

use std::alloc::System;

use cairn_keyspace::{AllocatorReading, AllocatorStats};

/// The system allocator wrapped by [`cap::Cap`], which counts the bytes
/// requested and not yet freed with one atomic add per allocation (as
/// Redis' `zmalloc` keeps `used_memory`). Declare it as the program's
/// global allocator and hand [`CountedStats`] to the server:
///
/// ```no_run
/// #[global_allocator]
/// static GLOBAL: cairn_server::CountedSystem = cairn_server::counted_system();
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let handle = cairn_server::Server::builder()
///     .allocator_stats(std::sync::Arc::new(cairn_server::CountedStats::new(&GLOBAL)))
///     .build()
///     .start()
///     .await?;
/// # Ok(()) }
/// ```
pub type CountedSystem = cap::Cap<System>;

/// A counted system allocator without a limit.
pub const fn counted_system() -> CountedSystem {
    cap::Cap::new(System, usize::MAX)
}

/// [`AllocatorStats`] of a [`CountedSystem`].
#[derive(Clone, Copy)]
pub struct CountedStats {
    allocator: &'static CountedSystem,
}

impl CountedStats {
    /// Statistics of the program's global allocator `allocator`.
    pub fn new(allocator: &'static CountedSystem) -> CountedStats {
        CountedStats { allocator }
    }
}

impl AllocatorStats for CountedStats {
    fn name(&self) -> String {
        "libc".to_string()
    }

    fn read(&self) -> Option<AllocatorReading> {
        // The system allocator reports neither its active pages nor its
        // resident mappings: only the count is known.
        Some(AllocatorReading {
            allocated: self.allocator.allocated() as u64,
            active: None,
            resident: None,
        })
    }
}
