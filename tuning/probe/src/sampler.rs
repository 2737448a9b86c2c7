//! Samples the kernel's dirty and writeback counters (/proc/vmstat, /proc/meminfo) and the CPU
//! time of the broker and load generator while a sweep step runs. Runs on a thread of its own
//! (`sluice-lab-sampler`), started and stopped by the sweep on the main thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::host::{self, MemoryCounters};

/// One sample, as a row of `vmstat.csv`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    /// The sweep step it belongs to.
    pub step: String,
    /// Seconds since the step started.
    pub t_s: f64,
    /// /proc/meminfo Dirty, KiB.
    pub dirty_kib: u64,
    /// /proc/meminfo Writeback, KiB.
    pub writeback_kib: u64,
    /// /proc/vmstat nr_dirty, pages.
    pub nr_dirty: u64,
    /// /proc/vmstat nr_writeback, pages.
    pub nr_writeback: u64,
    /// /proc/meminfo MemFree, KiB.
    pub mem_free_kib: u64,
}

/// What a step's samples add up to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    /// Highest Dirty seen, KiB.
    pub dirty_max_kib: u64,
    /// Mean Dirty, KiB.
    pub dirty_mean_kib: u64,
    /// Highest Writeback seen, KiB.
    pub writeback_max_kib: u64,
    /// CPU seconds per process watched, in the order given.
    pub cpu_seconds: Vec<f64>,
    /// Busy cores per process: the 75th percentile over the sampling intervals, so the idle
    /// start-up, topic creation and drain around the measured window do not dilute it.
    pub cpu_busy: Vec<f64>,
}

/// A running sampler; `stop` joins it.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<(Vec<Sample>, Vec<CpuTrace>)>,
}

impl Sampler {
    /// Starts sampling every `every`, tagging samples with `step` and tracking the CPU time
    /// of `pids` (the last value read before each exits).
    pub fn start(step: &str, every: Duration, pids: Vec<u32>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let step = step.to_string();
        let handle = std::thread::Builder::new()
            .name("sluice-lab-sampler".into())
            .spawn(move || sample_loop(&step, every, &pids, &flag))
            .expect("spawning the sampler thread");
        Self { stop, handle }
    }

    /// Stops and returns the samples and their summary.
    pub fn stop(self) -> (Vec<Sample>, Summary) {
        self.stop.store(true, Ordering::Relaxed);
        let (samples, traces) = self.handle.join().unwrap_or_default();
        let summary = summarize(&samples, &traces);
        (samples, summary)
    }
}

/// (seconds since start, cumulative CPU seconds) of one process, while it was alive.
pub type CpuTrace = Vec<(f64, f64)>;

fn sample_loop(
    step: &str,
    every: Duration,
    pids: &[u32],
    stop: &AtomicBool,
) -> (Vec<Sample>, Vec<CpuTrace>) {
    let t0 = Instant::now();
    let mut traces: Vec<CpuTrace> = vec![Vec::new(); pids.len()];
    let mut samples = Vec::new();
    loop {
        let t = t0.elapsed().as_secs_f64();
        samples.push(sample(step, t, &host::memory_counters()));
        for (trace, &p) in traces.iter_mut().zip(pids) {
            if let Some(s) = host::process_cpu_seconds(p) {
                trace.push((t, s));
            }
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        std::thread::sleep(every);
    }
    (samples, traces)
}

/// Total CPU seconds of a trace.
fn used(trace: &CpuTrace) -> f64 {
    match (trace.first(), trace.last()) {
        (Some(a), Some(b)) => b.1 - a.1,
        _ => 0.0,
    }
}

/// The 75th percentile of busy cores over the trace's intervals.
fn busy(trace: &CpuTrace) -> f64 {
    let mut u: Vec<f64> = trace
        .windows(2)
        .map(|w| (w[1].1 - w[0].1) / (w[1].0 - w[0].0).max(1e-6))
        .collect();
    if u.is_empty() {
        return 0.0;
    }
    u.sort_by(f64::total_cmp);
    u[(u.len() * 3 / 4).min(u.len() - 1)]
}

fn sample(step: &str, t_s: f64, c: &MemoryCounters) -> Sample {
    Sample {
        step: step.to_string(),
        t_s,
        dirty_kib: c.dirty_kib,
        writeback_kib: c.writeback_kib,
        nr_dirty: c.nr_dirty,
        nr_writeback: c.nr_writeback,
        mem_free_kib: c.mem_free_kib,
    }
}

/// Max and mean of the samples, CPU used and busy per process.
pub fn summarize(samples: &[Sample], traces: &[CpuTrace]) -> Summary {
    let n = samples.len().max(1) as u64;
    Summary {
        dirty_max_kib: samples.iter().map(|s| s.dirty_kib).max().unwrap_or(0),
        dirty_mean_kib: samples.iter().map(|s| s.dirty_kib).sum::<u64>() / n,
        writeback_max_kib: samples.iter().map(|s| s.writeback_kib).max().unwrap_or(0),
        cpu_seconds: traces.iter().map(used).collect(),
        cpu_busy: traces.iter().map(busy).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_and_own_cpu() {
        let s = Sampler::start("t", Duration::from_millis(5), vec![std::process::id()]);
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(60) {
            std::hint::black_box((0..1000).sum::<u64>());
        }
        let (samples, summary) = s.stop();
        assert!(samples.len() >= 3, "{}", samples.len());
        assert!(samples.iter().all(|x| x.step == "t" && x.mem_free_kib > 0));
        assert_eq!(summary.cpu_seconds.len(), 1);
        assert!(summary.dirty_max_kib >= summary.dirty_mean_kib);
        assert!(summary.cpu_busy[0] > 0.2, "{summary:?}");
    }

    #[test]
    fn busy_ignores_idle_edges() {
        // Idle 1 s, one core busy for 3 s, idle 1 s.
        let trace: CpuTrace = vec![
            (0.0, 0.0),
            (1.0, 0.0),
            (2.0, 1.0),
            (3.0, 2.0),
            (4.0, 3.0),
            (5.0, 3.0),
        ];
        assert!((busy(&trace) - 1.0).abs() < 1e-9);
        assert!((used(&trace) - 3.0).abs() < 1e-9);
    }
}
