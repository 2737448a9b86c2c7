//! The shard's stall probe: a task that asks to be woken every millisecond and records how
//! late it actually ran. Runs on its shard for the shard's whole life.
//!
//! Why: a shard is one thread serving every connection and partition it owns, so anything
//! that holds it (a blocking system call, a long computation, the kernel preempting it for
//! an io-wq worker or another process) delays every request behind it. Request latencies
//! show such a stall only smeared over whichever requests were waiting; the probe names it
//! directly: `sluice_shard_stall_seconds` (how late the shard ran a due timer) with counts
//! over 1 ms and over 20 ms. This is the proof the performance work asks for ("no shard
//! stall over 1 ms"), available in every run, not only under a profiler.
//!
//! A stall shorter than the period can fall between two ticks; one longer than a period
//! always delays a tick by at least its length minus a period.

use std::time::{Duration, Instant};

/// How often the probe asks to be woken. One wake-up a millisecond costs a few
/// microseconds of the shard's time.
pub const PERIOD: Duration = Duration::from_millis(1);

/// Lateness the probe reports as a stall.
pub const STALL: Duration = Duration::from_millis(1);

/// Lateness the performance targets forbid outright.
pub const LONG_STALL: Duration = Duration::from_millis(20);

/// Wakes every [`PERIOD`] until `running` says stop, recording each wake-up's lateness
/// through [`crate::metrics`].
pub async fn run(running: impl Fn() -> bool) {
    while running() {
        let due = Instant::now() + PERIOD;
        glommio::timer::sleep(PERIOD).await;
        let late = Instant::now().saturating_duration_since(due);
        crate::metrics::with_current(|m| m.record_stall_probe(late));
    }
}
