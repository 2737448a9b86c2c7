//! Sluice sweeps: one factor at a time away from a baseline (segment size, flush policy,
//! early writeback, shards, record size, partitions per shard, producers, linger, and the
//! page-cache against the O_DIRECT log), each step a
//! fresh broker loaded by sluice-perf twice: unpaced for throughput, then open-loop at a fixed
//! byte rate for latency. This module owns the plan and the CSV row; `run` executes it on
//! the lab's main thread.

pub mod broker;
pub mod run;
pub mod warm;

use serde::{Deserialize, Serialize};

/// Sluice's and the client's knobs for one step.
#[derive(Debug, Clone, PartialEq)]
pub struct Knobs {
    /// `log.segment.bytes`.
    pub segment_bytes: u64,
    /// `log.flush.interval.messages`, if set.
    pub flush_messages: Option<u64>,
    /// `log.flush.interval.ms`, if set.
    pub flush_ms: Option<u64>,
    /// `sluice.log.writeback.bytes` (0 = off).
    pub writeback_bytes: u64,
    /// Shards (`--cores`).
    pub shards: usize,
    /// Record value size in bytes.
    pub record_size: usize,
    /// Partitions per shard.
    pub partitions_per_shard: usize,
    /// sluice-perf producers.
    pub producers: usize,
    /// Producer `linger.ms`.
    pub linger_ms: u64,
    /// `sluice.log.io`: page-cache or direct.
    pub log_io: &'static str,
}

impl Knobs {
    /// Kafka's and Sluice's defaults, 1 KiB records, one partition on one shard.
    pub fn baseline() -> Self {
        Self {
            segment_bytes: 1 << 30,
            flush_messages: None,
            flush_ms: None,
            writeback_bytes: 1 << 20,
            shards: 1,
            record_size: 1024,
            partitions_per_shard: 1,
            producers: 1,
            linger_ms: 5,
            log_io: "page-cache",
        }
    }

    /// The broker's server.properties lines.
    pub fn properties(&self) -> Vec<(String, String)> {
        let mut p = vec![
            (
                "log.segment.bytes".to_string(),
                self.segment_bytes.to_string(),
            ),
            (
                "sluice.log.writeback.bytes".to_string(),
                self.writeback_bytes.to_string(),
            ),
            ("sluice.log.io".to_string(), self.log_io.to_string()),
        ];
        if let Some(m) = self.flush_messages {
            p.push(("log.flush.interval.messages".into(), m.to_string()));
        }
        if let Some(ms) = self.flush_ms {
            p.push(("log.flush.interval.ms".into(), ms.to_string()));
        }
        p
    }

    /// The flush policy as a label.
    pub fn flush_label(&self) -> String {
        match (self.flush_messages, self.flush_ms) {
            (None, None) => "none".into(),
            (Some(m), None) => format!("flush.messages={m}"),
            (None, Some(ms)) => format!("flush.ms={ms}"),
            (Some(m), Some(ms)) => format!("flush.messages={m},flush.ms={ms}"),
        }
    }
}

/// One step: the factor it varies, the value's label and the knobs.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// segment_bytes, flush, writeback_bytes, shards, record_size, partitions_per_shard,
    /// producers, linger_ms, log_io, or baseline.
    pub factor: &'static str,
    /// The value, as shown on plots.
    pub label: String,
    /// The knobs.
    pub knobs: Knobs,
}

/// Which values each factor takes.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    /// Segment sizes.
    pub segment_bytes: Vec<u64>,
    /// (flush.messages, flush.ms) pairs.
    pub flush: Vec<(Option<u64>, Option<u64>)>,
    /// Early writeback sizes.
    pub writeback_bytes: Vec<u64>,
    /// Shard counts.
    pub shards: Vec<usize>,
    /// Record sizes.
    pub record_sizes: Vec<usize>,
    /// Partitions per shard.
    pub partitions_per_shard: Vec<usize>,
    /// Producer counts.
    pub producers: Vec<usize>,
    /// Linger values.
    pub linger_ms: Vec<u64>,
    /// (`sluice.log.io`, flush.messages) pairs: the O_DIRECT experiment against the page
    /// cache, without and with an fdatasync per message.
    pub log_io: Vec<(&'static str, Option<u64>)>,
}

impl SweepPlan {
    /// Every factor over a useful range; `max_shards` is the host's CPU count.
    pub fn full(max_shards: usize) -> Self {
        let mut shards: Vec<usize> = [1, 2, 4, 8]
            .into_iter()
            .filter(|&s| s <= max_shards)
            .collect();
        if !shards.contains(&max_shards) {
            shards.push(max_shards);
        }
        Self {
            segment_bytes: vec![16 << 20, 128 << 20, 1 << 30],
            flush: vec![
                (None, None),
                (Some(1), None),
                (None, Some(10)),
                (None, Some(1000)),
            ],
            writeback_bytes: vec![0, 256 << 10, 1 << 20, 16 << 20],
            shards,
            record_sizes: vec![128, 1024, 16 << 10],
            partitions_per_shard: vec![1, 4, 16],
            producers: vec![1, 2, 4],
            linger_ms: vec![0, 1, 5, 20],
            log_io: vec![
                ("direct", None),
                ("page-cache", Some(1)),
                ("direct", Some(1)),
            ],
        }
    }

    /// Two values of the knobs that matter most for the device, for CI and smoke runs.
    pub fn quick() -> Self {
        Self {
            segment_bytes: vec![16 << 20, 1 << 30],
            flush: vec![(None, None), (Some(1), None)],
            writeback_bytes: vec![1 << 20],
            shards: vec![1],
            record_sizes: vec![1024],
            partitions_per_shard: vec![1],
            producers: vec![1],
            linger_ms: vec![5],
            log_io: vec![("direct", None)],
        }
    }

    /// The baseline first (its throughput sets the latency steps' rate), then each factor's
    /// values other than the baseline's.
    pub fn steps(&self) -> Vec<Step> {
        let base = Knobs::baseline();
        let mut steps = vec![Step {
            factor: "baseline",
            label: "baseline".into(),
            knobs: base.clone(),
        }];
        let mut add = |factor, label: String, knobs: Knobs| {
            if knobs != base {
                steps.push(Step {
                    factor,
                    label,
                    knobs,
                });
            }
        };
        for &v in &self.segment_bytes {
            add(
                "segment_bytes",
                bytes_label(v),
                Knobs {
                    segment_bytes: v,
                    ..base.clone()
                },
            );
        }
        for &(m, ms) in &self.flush {
            let k = Knobs {
                flush_messages: m,
                flush_ms: ms,
                ..base.clone()
            };
            add("flush", k.flush_label(), k);
        }
        for &v in &self.writeback_bytes {
            add(
                "writeback_bytes",
                bytes_label(v),
                Knobs {
                    writeback_bytes: v,
                    ..base.clone()
                },
            );
        }
        for &v in &self.shards {
            add(
                "shards",
                v.to_string(),
                Knobs {
                    shards: v,
                    ..base.clone()
                },
            );
        }
        for &v in &self.record_sizes {
            add(
                "record_size",
                bytes_label(v as u64),
                Knobs {
                    record_size: v,
                    ..base.clone()
                },
            );
        }
        for &v in &self.partitions_per_shard {
            add(
                "partitions_per_shard",
                v.to_string(),
                Knobs {
                    partitions_per_shard: v,
                    ..base.clone()
                },
            );
        }
        for &v in &self.producers {
            add(
                "producers",
                v.to_string(),
                Knobs {
                    producers: v,
                    ..base.clone()
                },
            );
        }
        for &v in &self.linger_ms {
            add(
                "linger_ms",
                v.to_string(),
                Knobs {
                    linger_ms: v,
                    ..base.clone()
                },
            );
        }
        for &(mode, flush_messages) in &self.log_io {
            let k = Knobs {
                log_io: mode,
                flush_messages,
                ..base.clone()
            };
            add("log_io", log_io_label(mode, &k.flush_label()), k);
        }
        steps
    }
}

/// `direct`, or `direct, flush.messages=1` when a flush policy is set.
pub fn log_io_label(mode: &str, flush: &str) -> String {
    match flush {
        "none" => mode.to_string(),
        f => format!("{mode}, {f}"),
    }
}

/// 16 MiB, 256 KiB, 0 B.
pub fn bytes_label(v: u64) -> String {
    match v {
        0 => "0".into(),
        v if v % (1 << 30) == 0 => format!("{}GiB", v >> 30),
        v if v % (1 << 20) == 0 => format!("{}MiB", v >> 20),
        v if v % (1 << 10) == 0 => format!("{}KiB", v >> 10),
        v => format!("{v}B"),
    }
}

/// One CSV row of `sweeps.csv`: one phase of one step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SweepRow {
    /// The factor varied (baseline for the baseline step).
    pub factor: String,
    /// The value's label.
    pub label: String,
    /// throughput (unpaced) or latency (open-loop at a fixed byte rate).
    pub phase: String,
    /// `log.segment.bytes`.
    pub segment_bytes: u64,
    /// Flush policy label.
    pub flush: String,
    /// `sluice.log.writeback.bytes`.
    pub writeback_bytes: u64,
    /// `sluice.log.io` (runs recorded before the column existed read as page-cache).
    #[serde(default = "page_cache")]
    pub log_io: String,
    /// Shards.
    pub shards: u64,
    /// Record value bytes.
    pub record_size: u64,
    /// Partitions in the topic.
    pub partitions: u64,
    /// Producers.
    pub producers: u64,
    /// Producer linger.ms.
    pub linger_ms: u64,
    /// `max` or msgs/s.
    pub target_rate: String,
    /// Acknowledged messages per second.
    pub msgs_per_sec: f64,
    /// 10^6 bytes of values per second.
    pub mb_per_sec: f64,
    /// Produce latency (due send time to ack), ms.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Maximum.
    pub max_ms: f64,
    /// Produce errors.
    pub errors: u64,
    /// Messages due but never sent (the generator gave up: broker overloaded).
    pub unsent: u64,
    /// Broker busy cores / shards (1.0 = every shard's core busy): the 75th percentile over
    /// the sampling intervals, so start-up and drain do not dilute it.
    pub broker_cpu_util: f64,
    /// sluice-perf busy cores / the cores it may use (same percentile).
    pub client_cpu_util: f64,
    /// Highest /proc/meminfo Dirty during the phase, KiB.
    pub dirty_max_kib: u64,
    /// Mean Dirty, KiB.
    pub dirty_mean_kib: u64,
    /// Highest Writeback, KiB.
    pub writeback_max_kib: u64,
    /// How memory was prepared (warm N MiB written and deleted, or cold).
    pub mem_state: String,
    /// MemFree at the phase's start, MiB.
    pub mem_free_mib: u64,
    /// broker/client CPU lists, or `none`.
    pub pinning: String,
    /// ok, error or skipped.
    pub status: String,
    /// Why not ok.
    pub note: String,
}

fn page_cache() -> String {
    "page-cache".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_start_at_baseline_and_vary_one_factor() {
        let steps = SweepPlan::full(2).steps();
        assert_eq!(steps[0].factor, "baseline");
        let base = Knobs::baseline();
        for s in &steps[1..] {
            assert_ne!(s.knobs, base, "{s:?}");
        }
        assert!(
            steps
                .iter()
                .any(|s| s.factor == "shards" && s.knobs.shards == 2)
        );
        assert_eq!(bytes_label(16 << 20), "16MiB");
        assert_eq!(bytes_label(1 << 30), "1GiB");
    }

    #[test]
    fn properties_name_broker_keys() {
        let k = Knobs {
            flush_messages: Some(1),
            ..Knobs::baseline()
        };
        let p = k.properties();
        assert!(p.contains(&("log.flush.interval.messages".into(), "1".into())));
        assert_eq!(k.flush_label(), "flush.messages=1");
        let direct = Knobs {
            log_io: "direct",
            ..Knobs::baseline()
        };
        assert!(
            direct
                .properties()
                .contains(&("sluice.log.io".into(), "direct".into()))
        );
        let steps = SweepPlan::full(2).steps();
        let labels: Vec<&str> = steps
            .iter()
            .filter(|s| s.factor == "log_io")
            .map(|s| s.label.as_str())
            .collect();
        assert_eq!(
            labels,
            [
                "direct",
                "page-cache, flush.messages=1",
                "direct, flush.messages=1"
            ]
        );
    }
}
