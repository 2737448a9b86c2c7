//! Consumers: partitions assigned directly (no consumer group), so only Metadata, ListOffsets and
//! Fetch are needed from the broker and group coordination cannot distort the numbers.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::cli::StartAt;
use crate::client::Reporting;
use crate::payload::read_stamp;
use crate::stats::{Recorder, Window, unix_now_ns};

/// Which records contribute a latency sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatencyOf {
    /// End-to-end: records whose due send time lies in the measured window.
    DueInWindow,
    /// Record age: records that arrive during the measured window, whenever they were made.
    ArrivedInWindow,
}

pub fn consumer_config(base: &ClientConfig, stop_at_eof: bool) -> ClientConfig {
    let mut cfg = base.clone();
    cfg.set(
        "enable.partition.eof",
        if stop_at_eof { "true" } else { "false" },
    )
    // librdkafka refuses assign() without a group.id, but with assign() and no commits the
    // group is never joined: the broker sees at most a FindCoordinator.
    .set("group.id", format!("sluice-perf-{}", std::process::id()))
    .set("enable.auto.commit", "false")
    .set("enable.auto.offset.store", "false")
    .set("auto.offset.reset", "earliest");
    cfg
}

/// The partitions of consumer `index` of `count`: round-robin.
pub fn share(parts: &[i32], index: usize, count: usize) -> Vec<i32> {
    parts.iter().copied().skip(index).step_by(count).collect()
}

pub fn create(
    cfg: &ClientConfig,
    name: &str,
    topic: &str,
    parts: &[i32],
    from: StartAt,
) -> anyhow::Result<BaseConsumer<Reporting>> {
    let consumer: BaseConsumer<Reporting> = cfg
        .create_with_context(Reporting::new(name))
        .context("creating consumer")?;
    let offset = match from {
        StartAt::Start => Offset::Beginning,
        StartAt::Tail => Offset::End,
    };
    let mut tpl = TopicPartitionList::new();
    for &p in parts {
        tpl.add_partition_offset(topic, p, offset)
            .context("building assignment")?;
    }
    consumer.assign(&tpl).context("assign")?;
    Ok(consumer)
}

/// Polls until `stop` is set or, when `stop_at_eof`, every assigned partition reached its end.
/// Returns when this consumer finished.
pub fn run_consumer(
    consumer: &BaseConsumer<Reporting>,
    partitions: usize,
    rec: &Recorder,
    window: &Window,
    latency_of: LatencyOf,
    stop_at_eof: bool,
    stop: &AtomicBool,
) -> Instant {
    let mut at_eof = HashSet::new();
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(msg)) => {
                at_eof.remove(&msg.partition());
                record_arrival(rec, window, latency_of, msg.payload().unwrap_or_default());
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_eof.insert(p);
                if stop_at_eof && at_eof.len() >= partitions {
                    break;
                }
            }
            Some(Err(e)) => {
                rec.error();
                eprintln!("consumer: {e}");
            }
        }
    }
    Instant::now()
}

pub(crate) fn record_arrival(
    rec: &Recorder,
    window: &Window,
    latency_of: LatencyOf,
    payload: &[u8],
) {
    let now = Instant::now();
    let in_window = window.contains(now);
    let latency = match read_stamp(payload) {
        None => {
            rec.foreign.fetch_add(1, Ordering::Relaxed);
            None
        }
        Some(stamp) => {
            let counts = match latency_of {
                LatencyOf::DueInWindow => window.contains_unix_ns(stamp),
                LatencyOf::ArrivedInWindow => in_window,
            };
            counts.then(|| Duration::from_nanos(unix_now_ns().saturating_sub(stamp)))
        }
    };
    rec.record(payload.len(), in_window, latency);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_share() {
        let parts = [0, 1, 2, 3, 4];
        assert_eq!(share(&parts, 0, 2), vec![0, 2, 4]);
        assert_eq!(share(&parts, 1, 2), vec![1, 3]);
        assert_eq!(share(&parts, 3, 4), vec![3]);
        assert!(share(&parts, 5, 6).is_empty());
    }
}
