//! What a run reports: the human summary, the JSON record and the .hgrm files.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::stats::ms;

/// Latency percentiles in milliseconds.
#[derive(Serialize, Debug, Clone, Default)]
pub struct Latency {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub p9999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let q = |p: f64| ms(h.value_at_quantile(p));
        Self {
            count: h.len(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: q(0.50),
            p90_ms: q(0.90),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            p9999_ms: q(0.9999),
            max_ms: ms(h.max()),
        }
    }
}

/// One direction (produce acks, or consumed records) of one run.
#[derive(Serialize, Debug, Clone)]
pub struct Direction {
    /// Counted over the measured window (or until the consumers reached the end).
    pub msgs: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub msgs_per_sec: f64,
    /// 10^6 bytes of record values per second.
    pub mb_per_sec: f64,
    pub errors: u64,
    /// What the latency is measured from and to.
    pub latency_kind: &'static str,
    pub latency: Latency,
    #[serde(skip)]
    pub histogram: Histogram<u64>,
}

impl Direction {
    pub fn new(
        msgs: u64,
        bytes: u64,
        seconds: f64,
        errors: u64,
        latency_kind: &'static str,
        histogram: Histogram<u64>,
    ) -> Self {
        let per = |x: u64| {
            if seconds > 0.0 {
                x as f64 / seconds
            } else {
                0.0
            }
        };
        Self {
            msgs,
            bytes,
            seconds,
            msgs_per_sec: per(msgs),
            mb_per_sec: per(bytes) / 1e6,
            errors,
            latency_kind,
            latency: Latency::of(&histogram),
            histogram,
        }
    }
}

/// One rate of a run.
#[derive(Serialize, Debug, Clone)]
pub struct RunReport {
    pub scenario: String,
    /// Target messages/s, or "max".
    pub target_rate: String,
    /// Messages the schedule asked for (warm-up included); absent when unpaced.
    pub offered: Option<u64>,
    pub sent: u64,
    /// Due but never sent: the generator ran out of drain time.
    pub unsent: u64,
    /// Sent but neither acknowledged nor failed by the end of the drain.
    pub unacked: u64,
    pub produce: Option<Direction>,
    pub consume: Option<Direction>,
    /// Records without this tool's timestamp header (consume only).
    pub foreign_records: u64,
    /// Each second of the run (warm-up and drain included), for throughput-over-time plots.
    pub timeline: Vec<Second>,
}

/// What one second of a run moved (record values, as the throughput figures count them).
#[derive(Serialize, Debug, Clone)]
pub struct Second {
    /// Seconds since the run started, at the end of this second.
    pub t_s: f64,
    /// "warmup", "measure" or "drain".
    pub phase: &'static str,
    pub produced_msgs: u64,
    pub produced_bytes: u64,
    pub consumed_msgs: u64,
    pub consumed_bytes: u64,
}

impl RunReport {
    /// The human summary of this run.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        match (&self.produce, self.target_rate.as_str()) {
            (None, _) => writeln!(s, "== {} (unpaced) ==", self.scenario),
            (Some(_), "max") => writeln!(s, "== {} unpaced (closed loop) ==", self.scenario),
            (Some(_), r) => writeln!(s, "== {} at {r} msg/s ==", self.scenario),
        }
        .expect("writing to a String cannot fail");
        if self.produce.is_some() {
            let offered = self
                .offered
                .map(|o| o.to_string())
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(
                s,
                "   offered {offered}  sent {}  unsent {}  unacked {}",
                self.sent, self.unsent, self.unacked
            );
        }
        for (name, d) in [("produce", &self.produce), ("consume", &self.consume)] {
            if let Some(d) = d {
                let _ = writeln!(s, "{}", direction_line(name, d));
            }
        }
        if self.foreign_records > 0 {
            let _ = writeln!(
                s,
                "   {} records without a sluice-perf timestamp (no latency)",
                self.foreign_records
            );
        }
        s
    }
}

fn direction_line(name: &str, d: &Direction) -> String {
    let l = &d.latency;
    format!(
        "   {name:<8}{:>10.0} msg/s {:>9.2} MB/s over {:.1}s ({} msgs, {} errors)\n   {:<8}latency ({}) ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  p99.99 {:.3}  max {:.3}  (n={})",
        d.msgs_per_sec,
        d.mb_per_sec,
        d.seconds,
        d.msgs,
        d.errors,
        "",
        d.latency_kind,
        l.p50_ms,
        l.p90_ms,
        l.p99_ms,
        l.p999_ms,
        l.p9999_ms,
        l.max_ms,
        l.count
    )
}

/// HdrHistogram's percentile distribution text (as `outputPercentileDistribution` writes it,
/// values in milliseconds), readable by the usual HdrHistogram plotters.
pub fn hgrm(h: &Histogram<u64>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    for v in h.iter_quantiles(5) {
        let value = ms(v.value_iterated_to());
        let q = v.quantile_iterated_to();
        let total = cumulative(h, v.value_iterated_to());
        if q < 1.0 {
            let _ = writeln!(
                s,
                "{value:>12.3} {q:>2.12} {total:>10} {:>14.2}",
                1.0 / (1.0 - q)
            );
        } else {
            // The last row has no finite 1/(1-Percentile), as in HdrHistogram's own output.
            let _ = writeln!(s, "{value:>12.3} {q:>2.12} {total:>10}");
        }
    }
    let _ = writeln!(
        s,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        h.mean() / 1000.0,
        h.stdev() / 1000.0
    );
    let _ = writeln!(
        s,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        ms(h.max()),
        h.len()
    );
    s
}

/// Count of recorded values at or below `value`.
fn cumulative(h: &Histogram<u64>, value: u64) -> u64 {
    h.count_between(0, value)
}

/// Writes one .hgrm file.
pub fn write_hgrm(dir: &Path, name: &str, h: &Histogram<u64>) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{name}.hgrm"));
    std::fs::write(&path, hgrm(h)).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::new_histogram;

    #[test]
    fn percentiles_and_hgrm() {
        let mut h = new_histogram();
        for us in 1..=1000u64 {
            h.record(us * 10).unwrap();
        }
        let l = Latency::of(&h);
        assert!((l.p50_ms - 5.0).abs() < 0.01, "{l:?}");
        assert!((l.max_ms - 10.0).abs() < 0.01);
        let text = hgrm(&h);
        assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
        assert!(text.contains("Total count    =         1000]"));
        let last_row = text.lines().rfind(|l| !l.starts_with('#')).unwrap();
        assert!(last_row.contains("1.000000000000"), "{last_row}");
    }
}
