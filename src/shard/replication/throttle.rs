//! Replication quotas, as Kafka has them for reassignments: a replica listed in its topic's
//! `follower.replication.throttled.replicas` (`partition:broker,...` or `*`) catches up at no
//! more than the dynamic broker config `follower.replication.throttled.rate` bytes per second
//! on the follower, and one listed in `leader.replication.throttled.replicas` is served at no
//! more than `leader.replication.throttled.rate` by the leader. As in Kafka, only replicas
//! outside the ISR are throttled (an in-sync follower is never slowed down, so acks=all never
//! waits on a quota), the default rate is unlimited, and the quota is a budget that partitions
//! over it skip a round rather than a cap on each response.
//!
//! Per shard (`Cell`s, no lock), so the configured rate applies to each shard's replication
//! traffic; a node with several shards moves up to that many times the rate.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::Instant;

use crate::metadata::{Leadership, TopicMeta};
use crate::shard::Shard;

/// Topic key: the replicas the follower-side quota applies to.
pub const FOLLOWER_REPLICAS_KEY: &str = "follower.replication.throttled.replicas";
/// Topic key: the replicas the leader-side quota applies to.
pub const LEADER_REPLICAS_KEY: &str = "leader.replication.throttled.replicas";
/// Dynamic broker key: bytes per second a follower fetches for its throttled replicas.
pub const FOLLOWER_RATE_KEY: &str = "follower.replication.throttled.rate";
/// Dynamic broker key: bytes per second a leader serves to throttled replicas.
pub const LEADER_RATE_KEY: &str = "leader.replication.throttled.rate";

/// Whether `list` (a throttled-replicas value) names replica `broker` of `partition`.
#[must_use]
pub fn lists(list: &str, partition: i32, broker: i32) -> bool {
    let list = list.trim();
    list == "*"
        || list.split(',').any(|entry| {
            entry.split_once(':').is_some_and(|(p, b)| {
                p.trim().parse() == Ok(partition) && b.trim().parse() == Ok(broker)
            })
        })
}

/// Whether replica `broker` of partition `index` is throttled by the topic's `key` list: it
/// is listed and not in sync.
#[must_use]
pub fn is_throttled(meta: &TopicMeta, l: &Leadership, index: i32, broker: i32, key: &str) -> bool {
    !l.isr.contains(&broker)
        && meta
            .configs
            .get(key)
            .is_some_and(|list| lists(list, index, broker))
}

/// The rate under `key` in the dynamic broker configs; `None` when unlimited (unset, Kafka's
/// default `Long.MAX_VALUE`, or unparsable).
#[must_use]
pub fn rate(broker_configs: &BTreeMap<String, String>, key: &str) -> Option<u64> {
    broker_configs
        .get(key)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|r| *r < i64::MAX as u64)
}

/// Whether the leader's replica serving `follower` for partition `index` is throttled: the
/// topic lists the follower in `leader.replication.throttled.replicas` and it is not in sync.
#[must_use]
pub fn leader_throttles(meta: &TopicMeta, index: i32, follower: i32) -> bool {
    meta.leadership
        .get(index as usize)
        .is_some_and(|l| is_throttled(meta, l, index, follower, LEADER_REPLICAS_KEY))
}

/// Whether this shard's leader-side quota is spent for now (never with an unlimited rate).
#[must_use]
pub fn leader_quota_spent(shard: &Shard) -> bool {
    rate(&shard.cluster.broker_configs(), LEADER_RATE_KEY).is_some_and(|rate| {
        shard
            .replication
            .leader_quota
            .available(rate, Instant::now())
            <= 0.0
    })
}

/// A byte budget refilled at a rate, with at most one second of it saved up: a token bucket
/// that may go into debt (a batch is never split), so the long-run rate holds.
#[derive(Debug)]
pub struct Quota {
    /// Bytes that may be moved now; negative after a batch larger than what was left.
    available: Cell<f64>,
    refilled_at: Cell<Instant>,
}

impl Default for Quota {
    fn default() -> Self {
        Self {
            available: Cell::new(0.0),
            refilled_at: Cell::new(Instant::now()),
        }
    }
}

impl Quota {
    /// Bytes that may be moved now at `rate` bytes per second (0 or less: wait a round).
    pub fn available(&self, rate: u64, now: Instant) -> f64 {
        let elapsed = now
            .saturating_duration_since(self.refilled_at.get())
            .as_secs_f64();
        let rate = rate as f64;
        let refilled = (self.available.get() + elapsed * rate).min(rate);
        self.available.set(refilled);
        self.refilled_at.set(now);
        refilled
    }

    /// `bytes` were moved under this quota.
    pub fn spend(&self, bytes: usize) {
        self.available.set(self.available.get() - bytes as f64);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn throttled_replica_lists_follow_kafkas_syntax() {
        assert!(lists("*", 3, 2000));
        assert!(lists("0:1000, 1:2000", 1, 2000));
        assert!(!lists("0:1000,1:2000", 1, 1000));
        assert!(!lists("", 0, 1000));
        assert!(!lists("garbage", 0, 1000));
    }

    #[test]
    fn rates_default_to_unlimited() {
        let mut configs = BTreeMap::new();
        assert_eq!(rate(&configs, FOLLOWER_RATE_KEY), None);
        configs.insert(FOLLOWER_RATE_KEY.to_string(), "1048576".to_string());
        assert_eq!(rate(&configs, FOLLOWER_RATE_KEY), Some(1_048_576));
        configs.insert(FOLLOWER_RATE_KEY.to_string(), i64::MAX.to_string());
        assert_eq!(rate(&configs, FOLLOWER_RATE_KEY), None);
    }

    #[test]
    fn the_quota_refills_at_its_rate_and_saves_at_most_a_second() {
        let quota = Quota::default();
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        assert!(quota.available(1000, at(0)) <= 1.0);
        assert!((quota.available(1000, at(500)) - 500.0).abs() < 2.0);
        quota.spend(2000); // a batch larger than the budget: debt
        assert!(quota.available(1000, at(500)) < 0.0);
        assert!((quota.available(1000, at(2000)) - 0.0).abs() < 2.0);
        assert!((quota.available(1000, at(60_000)) - 1000.0).abs() < 1e-6);
    }
}
