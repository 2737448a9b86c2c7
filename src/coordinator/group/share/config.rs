//! Broker settings of share groups (KIP-932), with Kafka's names and defaults. Read by the
//! group coordinator (membership, on the group's coordinator shard) and by every shard that
//! leads a partition a share group reads (`crate::share`: locks, delivery counts, in-flight
//! limits). Plain data, shared read-only through the broker configuration.

/// Where a share group starts reading a partition it has no state for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoOffsetReset {
    /// The log start offset.
    Earliest,
    /// The high watermark: only records produced after the group first reads the partition.
    Latest,
}

impl AutoOffsetReset {
    /// Kafka's spelling, as `share.auto.offset.reset` takes it.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "earliest" => Some(Self::Earliest),
            "latest" => Some(Self::Latest),
            _ => None,
        }
    }
}

/// The group configs of share groups Sluice applies (IncrementalAlterConfigs and
/// DescribeConfigs on a GROUP resource), Kafka's names.
pub const GROUP_KEYS: [&str; 5] = [
    "share.auto.offset.reset",
    "share.record.lock.duration.ms",
    "share.session.timeout.ms",
    "share.heartbeat.interval.ms",
    "share.isolation.level",
];

/// Kafka's bounds on the group configs (the defaults of its `group.share.min.*` and
/// `group.share.max.*` broker keys, which Sluice does not take).
const LOCK_BOUNDS_MS: (i64, i64) = (15_000, 60_000);
const SESSION_BOUNDS_MS: (i64, i64) = (45_000, 60_000);
const HEARTBEAT_BOUNDS_MS: (i64, i64) = (5_000, 15_000);

/// The largest `group.share.partition.max.record.locks` Kafka accepts: no window, and so no
/// state snapshot, holds more records.
pub const MAX_PARTITION_RECORD_LOCKS: usize = 10_000;

/// The `group.share.*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareGroupConfig {
    /// `group.share.session.timeout.ms` (Kafka default 45000): a member silent this long leaves.
    pub session_timeout_ms: i32,
    /// `group.share.heartbeat.interval.ms` (Kafka default 5000).
    pub heartbeat_interval_ms: i32,
    /// `group.share.record.lock.duration.ms` (Kafka default 30000): how long a delivered record
    /// stays acquired by its consumer before it becomes available again.
    pub record_lock_duration_ms: i64,
    /// `group.share.delivery.count.limit` (Kafka default 5): deliveries after which a record
    /// that is released or whose lock expires is archived instead of redelivered.
    pub delivery_count_limit: u16,
    /// `group.share.partition.max.record.locks` (Kafka default 2000): the most records of one
    /// partition a group may have in flight (between its start offset and the next record never
    /// delivered). It bounds the memory a group's state of one partition holds.
    pub partition_max_record_locks: usize,
    /// `group.share.max.size` (Kafka default 200): members per share group.
    pub max_size: usize,
    /// `group.share.max.share.sessions` (Kafka default 2000): share sessions per broker (per
    /// shard here: each shard is a broker to the clients).
    pub max_share_sessions: usize,
    /// `group.share.max.groups` (Kafka default 10): share groups per coordinator; a shard also
    /// keeps record states of at most this many groups, so ShareFetches naming made-up groups
    /// cannot make it hold (or write files for) more.
    pub max_groups: usize,
    /// `group.share.auto.offset.reset` (Sluice's broker-wide default of Kafka's group config
    /// `share.auto.offset.reset`, whose default is latest).
    pub auto_offset_reset: AutoOffsetReset,
}

impl Default for ShareGroupConfig {
    fn default() -> Self {
        Self {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            record_lock_duration_ms: 30_000,
            delivery_count_limit: 5,
            partition_max_record_locks: 2_000,
            max_size: 200,
            max_share_sessions: 2_000,
            max_groups: 10,
            auto_offset_reset: AutoOffsetReset::Latest,
        }
    }
}

impl ShareGroupConfig {
    /// Kafka's start-up checks on the values (the bounds Kafka puts on each key).
    pub fn check(&self) -> Result<(), String> {
        if !(2..=10).contains(&self.delivery_count_limit) {
            return Err(format!(
                "group.share.delivery.count.limit={} must be between 2 and 10",
                self.delivery_count_limit
            ));
        }
        if !(100..=MAX_PARTITION_RECORD_LOCKS).contains(&self.partition_max_record_locks) {
            return Err(format!(
                "group.share.partition.max.record.locks={} must be between 100 and {MAX_PARTITION_RECORD_LOCKS}",
                self.partition_max_record_locks
            ));
        }
        if self.heartbeat_interval_ms >= self.session_timeout_ms {
            return Err(format!(
                "group.share.heartbeat.interval.ms={} must be below group.share.session.timeout.ms={}",
                self.heartbeat_interval_ms, self.session_timeout_ms
            ));
        }
        Ok(())
    }
}

impl ShareGroupConfig {
    /// These broker settings with one group's own configs over them (keys checked when they
    /// were set; one that does not parse is left at the broker's value).
    #[must_use]
    pub fn for_group(&self, group: Option<&std::collections::BTreeMap<String, String>>) -> Self {
        let mut out = self.clone();
        let Some(group) = group else {
            return out;
        };
        let number = |key: &str| group.get(key).and_then(|v| v.trim().parse::<i64>().ok());
        if let Some(reset) = group
            .get("share.auto.offset.reset")
            .and_then(|v| AutoOffsetReset::parse(v))
        {
            out.auto_offset_reset = reset;
        }
        if let Some(ms) = number("share.record.lock.duration.ms") {
            out.record_lock_duration_ms = ms;
        }
        if let Some(ms) = number("share.session.timeout.ms").and_then(|v| i32::try_from(v).ok()) {
            out.session_timeout_ms = ms;
        }
        if let Some(ms) = number("share.heartbeat.interval.ms").and_then(|v| i32::try_from(v).ok())
        {
            out.heartbeat_interval_ms = ms;
        }
        out
    }

    /// Each group key with its value for a group with `group` configs, and whether the group
    /// sets it (else it is the broker's default), for DescribeConfigs.
    #[must_use]
    pub fn describe_group(
        &self,
        group: Option<&std::collections::BTreeMap<String, String>>,
    ) -> Vec<(&'static str, String, bool)> {
        let effective = self.for_group(group);
        let reset = match effective.auto_offset_reset {
            AutoOffsetReset::Earliest => "earliest",
            AutoOffsetReset::Latest => "latest",
        };
        let values = [
            reset.to_owned(),
            effective.record_lock_duration_ms.to_string(),
            effective.session_timeout_ms.to_string(),
            effective.heartbeat_interval_ms.to_string(),
            "read_uncommitted".to_owned(),
        ];
        GROUP_KEYS
            .iter()
            .zip(values)
            .map(|(key, value)| (*key, value, group.is_some_and(|g| g.contains_key(*key))))
            .collect()
    }
}

/// Why a group's configs were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupConfigError {
    /// A class of group configs Sluice does not serve (the consumer group and streams
    /// configs): INVALID_REQUEST, as from a broker without group configs.
    #[error("{0}")]
    Unsupported(String),
    /// A share group config with a value out of bounds, or an unknown key: INVALID_CONFIG.
    #[error("{0}")]
    Invalid(String),
}

/// Checks a group's configs after a change: known keys, values within Kafka's bounds, and the
/// heartbeat below the session timeout. The message says what is wrong.
pub fn check_group_configs(
    broker: &ShareGroupConfig,
    configs: &std::collections::BTreeMap<String, String>,
) -> Result<(), GroupConfigError> {
    for (key, value) in configs {
        if key.starts_with("consumer.") || key.starts_with("streams.") {
            return Err(GroupConfigError::Unsupported(format!(
                "{key}: consumer and streams group configs are not supported; the group configs Sluice applies are {}",
                GROUP_KEYS.join(", ")
            )));
        }
        check_group_key(key, value).map_err(GroupConfigError::Invalid)?;
    }
    let effective = broker.for_group(Some(configs));
    if effective.heartbeat_interval_ms >= effective.session_timeout_ms {
        return Err(GroupConfigError::Invalid(format!(
            "share.heartbeat.interval.ms={} must be below share.session.timeout.ms={}",
            effective.heartbeat_interval_ms, effective.session_timeout_ms
        )));
    }
    Ok(())
}

fn check_group_key(key: &str, value: &str) -> Result<(), String> {
    let bounded = |(low, high): (i64, i64)| match value.trim().parse::<i64>() {
        Ok(v) if (low..=high).contains(&v) => Ok(()),
        _ => Err(format!(
            "{key}={value} must be a number of milliseconds between {low} and {high}"
        )),
    };
    match key {
        "share.auto.offset.reset" => AutoOffsetReset::parse(value).map(|_| ()).ok_or_else(|| {
            format!("{key}={value} must be earliest or latest (by_duration is not supported)")
        }),
        "share.record.lock.duration.ms" => bounded(LOCK_BOUNDS_MS),
        "share.session.timeout.ms" => bounded(SESSION_BOUNDS_MS),
        "share.heartbeat.interval.ms" => bounded(HEARTBEAT_BOUNDS_MS),
        "share.isolation.level" if value.trim() == "read_uncommitted" => Ok(()),
        "share.isolation.level" => Err(format!(
            "{key}={value}: only read_uncommitted is supported (transaction markers are never delivered)"
        )),
        _ => Err(format!(
            "{key} is not a group config Sluice applies; the group configs are {}",
            GROUP_KEYS.join(", ")
        )),
    }
}

#[cfg(test)]
mod group_config_tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn group_configs_override_the_broker_settings_within_kafkas_bounds() {
        let broker = ShareGroupConfig::default();
        let configs = BTreeMap::from([
            ("share.auto.offset.reset".to_owned(), "earliest".to_owned()),
            (
                "share.record.lock.duration.ms".to_owned(),
                "15000".to_owned(),
            ),
        ]);
        assert_eq!(check_group_configs(&broker, &configs), Ok(()));
        let group = broker.for_group(Some(&configs));
        assert_eq!(group.auto_offset_reset, AutoOffsetReset::Earliest);
        assert_eq!(group.record_lock_duration_ms, 15_000);
        assert_eq!(group.session_timeout_ms, broker.session_timeout_ms);
        let described = broker.describe_group(Some(&configs));
        assert_eq!(
            described[0],
            ("share.auto.offset.reset", "earliest".to_owned(), true)
        );
        assert_eq!(
            described[2],
            ("share.session.timeout.ms", "45000".to_owned(), false)
        );
        for (key, value) in [
            ("share.record.lock.duration.ms", "1000"),
            ("share.auto.offset.reset", "by_duration:PT1H"),
            ("share.isolation.level", "read_committed"),
            ("share.no.such.key", "1"),
        ] {
            let bad = BTreeMap::from([(key.to_owned(), value.to_owned())]);
            let refused = check_group_configs(&broker, &bad);
            assert!(
                matches!(refused, Err(GroupConfigError::Invalid(_))),
                "{key}={value}"
            );
        }
        // Consumer group configs are a class Sluice does not serve (as a broker without
        // group configs answers, which librdkafka's 0081_admin expects of a 3.9 broker).
        let consumer =
            BTreeMap::from([("consumer.session.timeout.ms".to_owned(), "50000".to_owned())]);
        let refused = check_group_configs(&broker, &consumer);
        assert!(matches!(refused, Err(GroupConfigError::Unsupported(_))));
    }
}
