//! Broker settings that shape group coordination, with Kafka's names and defaults.
//!
//! Owned by the group coordinator, which runs on the shard that owns the group's
//! `__consumer_offsets` partition.

pub use super::consumer::heartbeat::ConsumerGroupConfig;

/// Settings of the group coordinator. Field names follow Kafka's broker keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group waits
    /// for more members before it completes (extended while members keep arriving, bounded by
    /// the rebalance timeout). Kafka's default is 3000.
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms` (Kafka default 6000).
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms` (Kafka default 1800000).
    pub max_session_timeout_ms: i32,
    /// `group.max.size` (Kafka default `Integer.MAX_VALUE`).
    pub max_size: usize,
    /// How long a new member may wait in a JoinGroup before it is dropped. Kafka hard-codes
    /// 5 minutes: new members cannot heartbeat, and a client whose request timed out retries
    /// with a fresh join, so without this limit defunct members would pile up.
    pub new_member_join_timeout_ms: i64,
    /// `offsets.retention.minutes` expressed in ms (Kafka default 7 days).
    pub offsets_retention_ms: i64,
    /// `offset.metadata.max.bytes` (Kafka default 4096).
    pub offset_metadata_max_bytes: usize,
    /// `group.coordinator.rebalance.protocols` lists `consumer` (Kafka 4.x default: classic,
    /// consumer): ConsumerGroupHeartbeat is served.
    pub consumer_protocol_enabled: bool,
    /// The `group.consumer.*` settings of KIP-848 groups.
    pub consumer: ConsumerGroupConfig,
    /// The `group.share.*` settings of share groups (KIP-932).
    pub share: crate::coordinator::group::share::config::ShareGroupConfig,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            initial_rebalance_delay_ms: 3_000,
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            max_size: usize::MAX,
            new_member_join_timeout_ms: 5 * 60 * 1_000,
            offsets_retention_ms: 7 * 24 * 60 * 60 * 1_000,
            offset_metadata_max_bytes: 4_096,
            consumer_protocol_enabled: true,
            consumer: ConsumerGroupConfig::default(),
            share: crate::coordinator::group::share::config::ShareGroupConfig::default(),
        }
    }
}
