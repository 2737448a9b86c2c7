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
//! always delays a tick by at least its length minus a period. An idle shard (no request
//! for a second) is probed ten times a second instead, since each wake-up of an
//! otherwise sleeping shard costs tens of microseconds (a `membarrier`, timer re-arming):
//! at 1,000 a second that was 4% of an idle core; so the first stall after an idle spell
//! may go unseen for up to 100 ms.

use std::time::{Duration, Instant};

/// How often the probe asks to be woken while the shard serves requests.
pub const PERIOD: Duration = Duration::from_millis(1);

/// How often it asks while the shard is idle.
pub const IDLE_PERIOD: Duration = Duration::from_millis(100);

/// How long without a request makes the shard idle.
const IDLE_AFTER: Duration = Duration::from_secs(1);

/// Wakes every [`PERIOD`] (every [`IDLE_PERIOD`] once no request arrived for a second)
/// until `running` says stop, recording each wake-up's lateness through [`crate::metrics`]
/// (which counts those over [`crate::metrics::STALL`] and [`crate::metrics::LONG_STALL`]).
pub async fn run(running: impl Fn() -> bool) {
    let mut seen = crate::metrics::requests_recorded_here();
    let mut last_busy = Instant::now();
    while running() {
        let requests = crate::metrics::requests_recorded_here();
        if requests != seen {
            (seen, last_busy) = (requests, Instant::now());
        }
        let period = if last_busy.elapsed() < IDLE_AFTER {
            PERIOD
        } else {
            IDLE_PERIOD
        };
        let due = Instant::now() + period;
        glommio::timer::sleep(period).await;
        let late = Instant::now().saturating_duration_since(due);
        crate::metrics::with_current(|m| m.record_stall_probe(late));
    }
}
