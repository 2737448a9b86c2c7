//! Counters and latency histograms shared between client threads and the reporter.
//!
//! Client threads record into a `Recorder`; the progress ticker drains the interval part once a
//! second, and the final report reads the whole-run part. Counters are atomics so the hot path
//! takes a lock only for the histogram, and that lock is contended only once a second.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Highest latency we can record: one hour, in microseconds.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds with 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds are valid")
}

/// Both histograms behind one lock so a record is one lock acquisition.
struct Histograms {
    run: Histogram<u64>,
    interval: Histogram<u64>,
}

/// Counts and latencies of one direction (produce acks or consumed records).
pub struct Recorder {
    /// Messages and value bytes counted in the measured window (for throughput).
    pub measured_msgs: AtomicU64,
    pub measured_bytes: AtomicU64,
    /// Everything seen, for the progress line.
    pub total_msgs: AtomicU64,
    pub total_bytes: AtomicU64,
    pub errors: AtomicU64,
    /// Records whose payload had no valid timestamp header (consume only).
    pub foreign: AtomicU64,
    hist: Mutex<Histograms>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            measured_msgs: AtomicU64::new(0),
            measured_bytes: AtomicU64::new(0),
            total_msgs: AtomicU64::new(0),
            total_bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            foreign: AtomicU64::new(0),
            hist: Mutex::new(Histograms {
                run: new_histogram(),
                interval: new_histogram(),
            }),
        }
    }
}

impl Recorder {
    /// Counts one message; `in_window` says whether it falls in the measured window, and
    /// `latency` is recorded when present (the caller decides which messages qualify).
    pub fn record(&self, bytes: usize, in_window: bool, latency: Option<Duration>) {
        self.total_msgs.fetch_add(1, Ordering::Relaxed);
        self.total_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        if in_window {
            self.measured_msgs.fetch_add(1, Ordering::Relaxed);
            self.measured_bytes
                .fetch_add(bytes as u64, Ordering::Relaxed);
        }
        if let Some(lat) = latency {
            let us = (lat.as_micros() as u64).clamp(1, MAX_LATENCY_US);
            let mut h = self.hist.lock().expect("histogram lock poisoned");
            h.run.saturating_record(us);
            h.interval.saturating_record(us);
        }
    }

    pub fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes the histogram of the last interval and starts a new one.
    pub fn take_interval(&self) -> Histogram<u64> {
        let mut h = self.hist.lock().expect("histogram lock poisoned");
        std::mem::replace(&mut h.interval, new_histogram())
    }

    /// A copy of the whole-run histogram.
    pub fn run_histogram(&self) -> Histogram<u64> {
        self.hist
            .lock()
            .expect("histogram lock poisoned")
            .run
            .clone()
    }
}

/// The phase boundaries of one run, shared by every thread.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub start: Instant,
    pub measure_from: Instant,
    pub measure_until: Instant,
    /// Unix time of `start` in nanoseconds, to turn instants into wall-clock stamps.
    pub start_unix_ns: u64,
}

impl Window {
    pub fn new(warmup: Duration, duration: Duration) -> Self {
        let start = Instant::now();
        let start_unix_ns = unix_now_ns();
        Self {
            start,
            measure_from: start + warmup,
            measure_until: start + warmup + duration,
            start_unix_ns,
        }
    }

    pub fn contains(&self, t: Instant) -> bool {
        t >= self.measure_from && t < self.measure_until
    }

    /// Wall-clock nanoseconds of an instant of this run.
    pub fn unix_ns(&self, t: Instant) -> u64 {
        self.start_unix_ns + t.saturating_duration_since(self.start).as_nanos() as u64
    }

    /// Whether a wall-clock stamp lies in the measured window.
    pub fn contains_unix_ns(&self, ns: u64) -> bool {
        let from = self.unix_ns(self.measure_from);
        let until = self.unix_ns(self.measure_until);
        ns >= from && ns < until
    }

    pub fn measured(&self) -> Duration {
        self.measure_until - self.measure_from
    }
}

/// Wall-clock now in nanoseconds since the Unix epoch.
pub fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
}

/// Microseconds to milliseconds for display.
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_resets_but_run_accumulates() {
        let r = Recorder::default();
        r.record(100, true, Some(Duration::from_millis(2)));
        assert_eq!(r.take_interval().len(), 1);
        r.record(100, false, Some(Duration::from_millis(4)));
        assert_eq!(r.take_interval().len(), 1);
        assert_eq!(r.run_histogram().len(), 2);
        assert_eq!(r.measured_msgs.load(Ordering::Relaxed), 1);
        assert_eq!(r.total_bytes.load(Ordering::Relaxed), 200);
    }
}
