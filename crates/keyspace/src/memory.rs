//! What `INFO memory` reports, and where the figures come from.
//!
//! The keyspace does not choose the allocator: the program that embeds it
//! does (the `cairn-server` binary uses jemalloc, see docs/architecture.md,
//! "Allocator"). A program whose allocator keeps statistics hands them to the
//! keyspace as an [`AllocatorStats`]; without one, `used_memory` is the
//! process' resident set size, the only honest figure left.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Statistics of the allocator the process runs on.
pub trait AllocatorStats: Send + Sync {
    /// The name `INFO memory` reports as `mem_allocator` (Redis:
    /// `jemalloc-5.3.0`, `libc`).
    fn name(&self) -> String;

    /// A fresh reading, or `None` when the allocator cannot answer now.
    fn read(&self) -> Option<AllocatorReading>;

    /// Hands unused memory back to the operating system (`MEMORY PURGE`).
    /// Returns whether the allocator did anything.
    fn purge(&self) -> bool {
        false
    }

    /// The allocator's own statistics report (`MEMORY MALLOC-STATS`:
    /// jemalloc's `malloc_stats_print`), if it writes one.
    fn report(&self) -> Option<String> {
        None
    }
}

/// One reading of the allocator's counters, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocatorReading {
    /// Bytes handed out to the program and not freed (Redis'
    /// `used_memory`; jemalloc's `stats.allocated`).
    pub allocated: u64,
    /// Bytes in pages the allocator uses for those allocations, their
    /// unused tails included (jemalloc's `stats.active`), if it knows.
    pub active: Option<u64>,
    /// Bytes the allocator holds mapped and resident (jemalloc's
    /// `stats.resident`), if it knows.
    pub resident: Option<u64>,
}

/// `startup.allocated` and `peak.allocated` of MEMORY STATS: the first
/// reading, taken when the keyspace is built, and the largest reading
/// seen. Readings are taken by every INFO memory, MEMORY STATS and MEMORY
/// DOCTOR and by each active expiry cycle (10 times a second), as Redis
/// samples its peak in `serverCron` and when it reports.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    startup: AtomicU64,
    peak: AtomicU64,
}

impl Tracker {
    pub(crate) fn new(stats: Option<&Arc<dyn AllocatorStats>>) -> Tracker {
        let used = used_now(stats);
        Tracker {
            startup: AtomicU64::new(used),
            peak: AtomicU64::new(used),
        }
    }

    /// Takes a reading for the peak (cheap: one counter read with the
    /// counted allocator).
    pub(crate) fn observe(&self, stats: Option<&Arc<dyn AllocatorStats>>) {
        self.saw(used_now(stats));
    }

    pub(crate) fn saw(&self, used: u64) {
        self.peak.fetch_max(used, Ordering::Relaxed);
    }

    pub(crate) fn startup(&self) -> u64 {
        self.startup.load(Ordering::Relaxed)
    }

    pub(crate) fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

fn used_now(stats: Option<&Arc<dyn AllocatorStats>>) -> u64 {
    stats
        .and_then(|s| s.read())
        .map_or_else(rss_bytes, |r| r.allocated)
}

/// The figures `INFO memory` prints, from one reading.
#[derive(Clone, Debug)]
pub(crate) struct MemoryReport {
    pub(crate) used: u64,
    pub(crate) rss: u64,
    pub(crate) allocator: String,
    /// `allocator_allocated`, `allocator_active`, `allocator_resident`,
    /// when the allocator counts them.
    pub(crate) reading: Option<AllocatorReading>,
}

impl MemoryReport {
    pub(crate) fn take(stats: Option<&Arc<dyn AllocatorStats>>) -> MemoryReport {
        let rss = rss_bytes();
        let reading = stats.and_then(|s| s.read());
        MemoryReport {
            used: reading.map_or(rss, |r| r.allocated),
            rss,
            allocator: stats.map_or_else(|| "libc".to_string(), |s| s.name()),
            reading,
        }
    }

    /// The `# Memory` section's lines that depend on the allocator (Redis'
    /// names; the ratios as Redis computes them, two decimals).
    #[cfg(test)]
    pub(crate) fn lines(&self) -> String {
        self.lines_with("")
    }

    /// [`lines`](Self::lines) with `limits` (the `maxmemory` lines) where
    /// Redis prints them: after `allocator_resident`, before the
    /// fragmentation ratios; and `mem_not_counted_for_evict` (0: cairn has
    /// no replication or AOF buffers) before `mem_allocator`.
    pub(crate) fn lines_with(&self, limits: &str) -> String {
        use std::fmt::Write;
        let mut out = format!(
            "used_memory:{}\r\nused_memory_human:{}\r\nused_memory_rss:{}\r\nused_memory_rss_human:{}\r\n",
            self.used,
            human(self.used),
            self.rss,
            human(self.rss),
        );
        if let Some(AllocatorReading {
            allocated,
            active: Some(active),
            resident: Some(resident),
        }) = self.reading
        {
            let _ = write!(
                out,
                "allocator_allocated:{}\r\nallocator_active:{}\r\nallocator_resident:{}\r\n{limits}allocator_frag_ratio:{:.2}\r\nallocator_frag_bytes:{}\r\n",
                allocated,
                active,
                resident,
                ratio(active, allocated),
                active.saturating_sub(allocated),
            );
        } else {
            out.push_str(limits);
        }
        let _ = write!(
            out,
            "mem_fragmentation_ratio:{:.2}\r\nmem_fragmentation_bytes:{}\r\n{}mem_allocator:{}\r\n",
            ratio(self.rss, self.used),
            self.rss as i64 - self.used as i64,
            if limits.is_empty() {
                ""
            } else {
                "mem_not_counted_for_evict:0\r\n"
            },
            self.allocator,
        );
        out
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Redis' `bytesToHuman`: B, K, M, G, T with two decimals.
pub(crate) fn human(n: u64) -> String {
    let n = n as f64;
    const K: f64 = 1024.0;
    if n < K {
        format!("{n:.0}B")
    } else if n < K * K {
        format!("{:.2}K", n / K)
    } else if n < K * K * K {
        format!("{:.2}M", n / (K * K))
    } else if n < K * K * K * K {
        format!("{:.2}G", n / (K * K * K))
    } else {
        format!("{:.2}T", n / (K * K * K * K))
    }
}

/// Resident memory from `/proc/self/statm` (Linux), else 0.
pub(crate) fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(AllocatorReading);
    impl AllocatorStats for Fixed {
        fn name(&self) -> String {
            "jemalloc-5.3.0".into()
        }
        fn read(&self) -> Option<AllocatorReading> {
            Some(self.0)
        }
    }

    #[test]
    fn used_memory_is_the_allocators_count_when_it_keeps_one() {
        let stats: Arc<dyn AllocatorStats> = Arc::new(Fixed(AllocatorReading {
            allocated: 1_000_000,
            active: Some(1_200_000),
            resident: Some(1_500_000),
        }));
        let report = MemoryReport::take(Some(&stats));
        let lines = report.lines();
        assert!(lines.starts_with("used_memory:1000000\r\nused_memory_human:976.56K\r\n"));
        assert!(lines.contains("allocator_frag_ratio:1.20\r\n"));
        assert!(lines.contains("allocator_frag_bytes:200000\r\n"));
        assert!(lines.ends_with("mem_allocator:jemalloc-5.3.0\r\n"));
    }

    #[test]
    fn without_statistics_used_memory_is_the_resident_set() {
        let report = MemoryReport::take(None);
        assert_eq!(report.used, report.rss);
        assert!(report.reading.is_none());
        assert!(report.lines().ends_with("mem_allocator:libc\r\n"));
    }

    #[test]
    fn human_sizes_read_as_redis_prints_them() {
        assert_eq!(human(512), "512B");
        assert_eq!(human(1536), "1.50K");
        assert_eq!(human(3 * 1024 * 1024), "3.00M");
        assert_eq!(human(5 * 1024 * 1024 * 1024), "5.00G");
    }
}
