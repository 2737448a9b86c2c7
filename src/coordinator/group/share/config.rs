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
