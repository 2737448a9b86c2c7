//! One module per Kafka API. Each declares the versions it implements next to its handler;
//! [`SUPPORTED`] collects them, and both dispatch and the ApiVersions answer read it, so what
//! Sluice advertises is exactly what it serves. Handlers run on the shard that received the
//! request.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod produce;
pub mod produce_legacy;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod sync_group;
pub mod txn_offset_commit;

use kafka_protocol::messages::{ApiKey, TopicName};
use kafka_protocol::protocol::StrBytes;

/// Every API Sluice serves, with the inclusive version range its handler implements.
pub const SUPPORTED: &[(ApiKey, (i16, i16))] = &[
    (ApiKey::Produce, produce::VERSIONS),
    (ApiKey::Fetch, fetch::VERSIONS),
    (ApiKey::ListOffsets, list_offsets::VERSIONS),
    (ApiKey::Metadata, metadata::VERSIONS),
    (ApiKey::ApiVersions, api_versions::VERSIONS),
    (ApiKey::CreateTopics, create_topics::VERSIONS),
    (ApiKey::DeleteTopics, delete_topics::VERSIONS),
    (ApiKey::CreatePartitions, create_partitions::VERSIONS),
    (ApiKey::DescribeConfigs, describe_configs::VERSIONS),
    (ApiKey::DescribeCluster, describe_cluster::VERSIONS),
    (ApiKey::DescribeLogDirs, describe_log_dirs::VERSIONS),
    (
        ApiKey::DescribeTopicPartitions,
        describe_topic_partitions::VERSIONS,
    ),
    (ApiKey::DeleteRecords, delete_records::VERSIONS),
    (ApiKey::InitProducerId, init_producer_id::VERSIONS),
    (ApiKey::AlterConfigs, alter_configs::VERSIONS),
    (
        ApiKey::IncrementalAlterConfigs,
        alter_configs::INCREMENTAL_VERSIONS,
    ),
    (ApiKey::FindCoordinator, find_coordinator::VERSIONS),
    (ApiKey::JoinGroup, join_group::VERSIONS),
    (ApiKey::SyncGroup, sync_group::VERSIONS),
    (ApiKey::Heartbeat, heartbeat::VERSIONS),
    (ApiKey::LeaveGroup, leave_group::VERSIONS),
    (ApiKey::OffsetCommit, offset_commit::VERSIONS),
    (ApiKey::OffsetFetch, offset_fetch::VERSIONS),
    (ApiKey::ListGroups, list_groups::VERSIONS),
    (ApiKey::DescribeGroups, describe_groups::VERSIONS),
    (ApiKey::DeleteGroups, delete_groups::VERSIONS),
    (ApiKey::OffsetDelete, offset_delete::VERSIONS),
    (ApiKey::AddPartitionsToTxn, add_partitions_to_txn::VERSIONS),
    (ApiKey::AddOffsetsToTxn, add_offsets_to_txn::VERSIONS),
    (ApiKey::EndTxn, end_txn::VERSIONS),
    (ApiKey::TxnOffsetCommit, txn_offset_commit::VERSIONS),
    (
        ApiKey::DescribeTransactions,
        describe_transactions::VERSIONS,
    ),
    (ApiKey::ListTransactions, list_transactions::VERSIONS),
    (ApiKey::DescribeProducers, describe_producers::VERSIONS),
    (ApiKey::SaslHandshake, sasl_handshake::VERSIONS),
    (ApiKey::SaslAuthenticate, sasl_authenticate::VERSIONS),
];

pub fn versions_of(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// The topics the coordinators own (Kafka's internal topics): clients may not append to them
/// or delete them.
pub fn is_internal_topic(name: &str) -> bool {
    name == crate::shard::offsets_log::OFFSETS_TOPIC || name == crate::shard::txns::TXN_TOPIC
}

pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

pub(crate) fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}
