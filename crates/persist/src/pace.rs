//! How a snapshot's threads share the CPU with the commands being served.
//!
//! A snapshot should use the CPU that clients leave idle and give way to a
//! command thread that wakes up, but it must never starve: a snapshot that
//! crawls keeps preserved old values in memory for as long as it runs, and
//! SHUTDOWN waits behind it. The walker, the writer and the store's
//! ingestion thread therefore all run at normal priority and, between two
//! units of work (a chunk of the view, a batch of records, a page), call
//! [`Pacer::pause`], which yields the CPU to any runnable thread **only
//! while the snapshot is within its politeness budget**: while the time
//! this thread has spent runnable but waiting for a CPU is at most
//! [`BUDGET`] − 1 times the time it ran. Past the budget it stops yielding
//! and the scheduler's fairness gives it its share, so under a saturated
//! CPU a snapshot takes a bounded multiple of its idle time, and memory it
//! adds stays bounded with it.
//!
//! Measured (1M keys, 2 cores, 2026-12-07; `cargo xtask bench saturated`,
//! docs/benchmarks.md): with the writer at `SCHED_IDLE`, as before, a
//! BGSAVE took about 8x its idle time (1.0 s) with both cores saturated by
//! clients, and 280 s (+780 MiB of preserved values) once a spinning thread
//! per core was added; yielding after every unit without a budget, 3.6x
//! and 23.5x; with this budget, 2.1x and 4.6x (+13 and +23 MiB), where
//! Redis' fork took 2.5x and 3.9x (+157 MiB). The p99 of 50 clients during
//! a BGSAVE stayed within the 2x target (`cargo xtask bench latency`).
//!
//! The signal is Linux's per-thread scheduler statistics
//! (`/proc/thread-self/schedstat`: time on a CPU, time waiting on a run
//! queue), which count neither the time a thread sleeps on a channel nor
//! I/O, only contention for the CPU. Where they cannot be read the pacer
//! never yields, which is bounded by fairness alone.

use std::time::{Duration, Instant};

/// The most a snapshot thread lets waiting for a CPU stretch its running
/// time while it still yields to others: ran + waited <= BUDGET × ran.
pub(crate) const BUDGET: f64 = 3.0;

/// How often the statistics are read (a read costs a few microseconds).
const CHECK_EVERY: Duration = Duration::from_millis(5);

/// One thread's pacing state; create it on the thread it paces.
pub(crate) struct Pacer {
    /// Run and wait times when the pacer was made.
    base: Option<(u64, u64)>,
    checked: Instant,
    polite: bool,
}

impl Pacer {
    /// A pacer for the calling thread, starting polite.
    pub(crate) fn new() -> Pacer {
        Pacer {
            base: schedstat(),
            checked: Instant::now(),
            polite: true,
        }
    }

    /// Between two units of work: yields the CPU while this thread is
    /// within its budget, so runnable command threads go first.
    pub(crate) fn pause(&mut self) {
        if self.checked.elapsed() >= CHECK_EVERY {
            self.checked = Instant::now();
            self.polite = match (self.base, schedstat()) {
                (Some((run0, wait0)), Some((run, wait))) => {
                    within_budget(run.saturating_sub(run0), wait.saturating_sub(wait0))
                }
                _ => false,
            };
        }
        if self.polite {
            std::thread::yield_now();
        }
    }
}

/// Whether a thread that ran `run` ns and waited `wait` ns for a CPU may
/// still give way to others.
fn within_budget(run: u64, wait: u64) -> bool {
    (run as f64 + wait as f64) <= BUDGET * run as f64
}

/// The calling thread's (time on a CPU, time runnable but waiting), in ns.
#[cfg(target_os = "linux")]
fn schedstat() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let mut fields = text.split_ascii_whitespace();
    let run = fields.next()?.parse().ok()?;
    let wait = fields.next()?.parse().ok()?;
    Some((run, wait))
}

#[cfg(not(target_os = "linux"))]
fn schedstat() -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_a_ratio_of_waiting_to_running() {
        assert!(within_budget(1_000, 0));
        assert!(within_budget(1_000, 2_000));
        assert!(!within_budget(1_000, 2_001));
        // A thread that has not run yet is not yet contended.
        assert!(within_budget(0, 0));
        assert!(!within_budget(0, 1));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_thread_reads_its_own_statistics() {
        let (run0, _) = schedstat().expect("schedstat on Linux");
        let mut x = 0u64;
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(20) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let (run1, _) = schedstat().expect("schedstat on Linux");
        assert!(run1 > run0, "running time grew: {run0} -> {run1}");
    }
}
