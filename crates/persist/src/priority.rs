//! The scheduling priorities of a background snapshot's threads.
//!
//! A background snapshot should use the CPU that commands leave idle and
//! give it back the moment a command-serving thread wakes up. Most of its
//! CPU goes to the writer (encoding, the store's ingestion, fjall), which
//! holds no lock commands wait for: on Linux it runs at `SCHED_IDLE`, so it
//! only runs when nothing else wants the CPU and any normal thread that wakes
//! preempts it at once.
//!
//! The walker, which copies entries out of the keyspace holding one shard's
//! lock per chunk, is not lowered: a low-priority lock holder preempted by
//! a woken command thread would keep that shard's commands waiting for as
//! long as other threads keep the CPU busy (at `SCHED_IDLE`, 28 ms stalls in
//! `cargo xtask bench latency`; at `nice 10`, p99 3.5x the p99 without a
//! snapshot). It stays at normal priority and yields after every chunk
//! instead (`manager::walk_view`).
//!
//! Where `SCHED_IDLE` does not exist or is refused, the writer gets `nice 10`.

use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};

/// `nice 10` on thread-priority's 0..=99 scale.
const NICE_10: u8 = 24;

/// Lowers the calling thread to `SCHED_IDLE` where the platform has it,
/// `nice 10` otherwise. For good: an unprivileged thread cannot raise its
/// priority back, so call it only on a thread of its own. Threads it spawns
/// afterwards inherit it. Failure only costs latency: logged, not returned.
pub(crate) fn lower_to_idle() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
            thread_native_id,
        };
        match set_thread_priority_and_policy(
            thread_native_id(),
            ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        ) {
            Ok(()) => return,
            Err(e) => tracing::debug!(error = ?e, "SCHED_IDLE refused; lowering the nice value"),
        }
    }
    lower_to_nice_10();
}

/// Lowers the calling thread to `nice 10` (same caveats as
/// [`lower_to_idle`]).
fn lower_to_nice_10() {
    let result = ThreadPriorityValue::try_from(NICE_10)
        .map_err(|e| e.to_string())
        .and_then(|p| {
            set_current_thread_priority(ThreadPriority::Crossplatform(p)).map_err(|e| e.to_string())
        });
    if let Err(e) = result {
        tracing::debug!(error = %e, "could not lower a snapshot thread's priority");
    }
}
