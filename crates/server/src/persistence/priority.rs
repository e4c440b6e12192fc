//! The scheduling priority of a background snapshot's writer thread.
//!
//! A background snapshot should use the CPU that commands leave idle and
//! yield it the moment a command-serving thread wakes up. On Linux that is
//! `SCHED_IDLE`: such a thread only runs when nothing else wants the CPU and
//! is preempted at once by any normal thread that wakes (a low nice value
//! only weighs it down: a woken command thread can still wait behind it for
//! part of a time slice, which is what p99 latency sees). Elsewhere, and if
//! `SCHED_IDLE` is refused, the thread gets `nice 10`.
//!
//! Measured with `cargo xtask bench latency` (see docs/benchmarks.md).

use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};

/// `nice 10` on thread-priority's 0..=99 scale, the fallback.
const FALLBACK_PRIORITY: u8 = 24;

/// Lowers the calling thread's priority for good: an unprivileged thread
/// cannot raise it back, so call it only on a thread of its own. Threads it
/// spawns afterwards inherit the priority. Failure only costs latency, so it
/// is logged, not returned.
pub(crate) fn lower_current_thread() {
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
    let result = ThreadPriorityValue::try_from(FALLBACK_PRIORITY)
        .map_err(|e| e.to_string())
        .and_then(|p| {
            set_current_thread_priority(ThreadPriority::Crossplatform(p)).map_err(|e| e.to_string())
        });
    if let Err(e) = result {
        tracing::debug!(error = %e, "could not lower the snapshot thread's priority");
    }
}
