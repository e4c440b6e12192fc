//! jemalloc's own counters for `INFO memory`, when the program runs on
//! jemalloc (the `cairn-server` binary does, with the default `jemalloc`
//! feature).

use cairn_keyspace::{AllocatorReading, AllocatorStats};

/// Reads jemalloc's `stats.allocated`, `stats.active` and `stats.resident`.
///
/// Only meaningful when jemalloc is the program's global allocator: the
/// figures describe jemalloc's heap, not the system allocator's.
#[derive(Clone, Copy, Debug, Default)]
pub struct JemallocStats;

impl AllocatorStats for JemallocStats {
    fn name(&self) -> String {
        // "5.3.0-0-g54eaed1d8b56b1aa528be3bdd1877e59c56fa90c" -> "jemalloc-5.3.0"
        let version = tikv_jemalloc_ctl::version::read().unwrap_or("unknown");
        let short = version.split('-').next().unwrap_or(version);
        format!("jemalloc-{short}")
    }

    /// jemalloc's `malloc_stats_print`, as Redis' MEMORY MALLOC-STATS.
    fn report(&self) -> Option<String> {
        let mut out = Vec::new();
        tikv_jemalloc_ctl::stats_print::stats_print(&mut out, Default::default()).ok()?;
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    fn read(&self) -> Option<AllocatorReading> {
        // jemalloc caches its statistics; advancing the epoch refreshes them.
        tikv_jemalloc_ctl::epoch::advance().ok()?;
        Some(AllocatorReading {
            allocated: tikv_jemalloc_ctl::stats::allocated::read().ok()? as u64,
            active: tikv_jemalloc_ctl::stats::active::read()
                .ok()
                .map(|n| n as u64),
            resident: tikv_jemalloc_ctl::stats::resident::read()
                .ok()
                .map(|n| n as u64),
        })
    }
}
