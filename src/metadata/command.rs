//! The records of the controller quorum's metadata log (issue 13): [`MetaCommand`] is what a
//! node proposes and every node applies, in log order, to its
//! [`ClusterImage`](crate::metadata::image::ClusterImage); [`MetaReply`] is what applying one
//! answers. Pure data, no I/O: built on whichever thread proposes (a shard or the controller
//! thread) and applied on the controller thread.
//!
//! # Compatibility promise for the log format
//! Commands are JSON objects tagged by `"type"` (the variant name). A log written by an older
//! Sluice always decodes in a newer one: a field added later is `#[serde(default)]`, so an old
//! record without it gets its default, and no field is ever renamed or retyped. A newer record
//! decodes in an older Sluice as long as it only adds fields (unknown fields are ignored). A new
//! command *type* does not decode in an older Sluice; it may only be proposed once every node
//! runs a version that knows it (the job of a future `metadata.version`, as in KRaft), because a
//! node that skipped a record would diverge from the others.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Kafka broker ids are `node_id * SHARDS_PER_NODE_ID + core`: at most this many shards per node.
pub const SHARDS_PER_NODE_ID: i32 = 1000;

/// The Kafka broker id of shard `core` of node `node_id` (`node_id * 1000 + core`).
#[must_use]
pub fn broker_id(node_id: i32, core: u16) -> i32 {
    node_id * SHARDS_PER_NODE_ID + i32::from(core)
}

/// The node and core of a shard's Kafka broker id; `None` for a negative id, which no shard has.
#[must_use]
pub fn split_broker_id(broker_id: i32) -> Option<(i32, u16)> {
    if broker_id < 0 {
        return None;
    }
    let core = u16::try_from(broker_id % SHARDS_PER_NODE_ID).ok()?;
    Some((broker_id / SHARDS_PER_NODE_ID, core))
}

/// The replicas of one partition, as Kafka broker ids (`node_id * 1000 + core`); the first is
/// the preferred leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionAssignment {
    /// Replica broker ids, preferred leader first; never two on one node.
    pub replicas: Vec<i32>,
}

/// One record of the metadata log. Everything apply needs is inside it (ids, placement,
/// epochs), so applying is deterministic: no clock, no randomness, no local state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetaCommand {
    /// A node announces its shards (KRaft's RegisterBrokerRecord). Replaces any earlier
    /// registration of the node; the node starts fenced and its broker epoch is the log index
    /// of this record.
    RegisterBroker {
        /// Kafka `node.id` of the node (not a shard's broker id).
        node_id: i32,
        /// Random id of this run of the node, to tell a restart from a retry.
        incarnation: Uuid,
        /// Listener name (`PLAINTEXT`, ...) -> advertised `host:port` of the node's bootstrap
        /// port; shard `c` listens on port + 1 + c of the same host.
        endpoints: BTreeMap<String, String>,
        /// Number of shards (cores) of the node, 1..=1000.
        shards: u16,
        /// Kafka `broker.rack`, if set.
        #[serde(default)]
        rack: Option<String>,
    },
    /// The node stops being served to clients (session expired or controlled shutdown).
    FenceBroker {
        /// Kafka `node.id` of the node.
        node_id: i32,
        /// The broker epoch the proposer saw; a different one means a newer registration.
        broker_epoch: i64,
    },
    /// The node has caught up with the metadata log and may be served to clients again.
    UnfenceBroker {
        /// Kafka `node.id` of the node.
        node_id: i32,
        /// The broker epoch the proposer saw; a different one means a newer registration.
        broker_epoch: i64,
    },
    /// A new topic with its id and placement, both chosen by the proposer.
    CreateTopic {
        /// Topic name, valid by Kafka's rules.
        name: String,
        /// Topic id (KIP-516), made by the proposer; never nil.
        topic_id: Uuid,
        /// One assignment per partition, partition 0 first; all with the same replica count.
        partitions: Vec<PartitionAssignment>,
        /// Topic-level config overrides, Kafka key names.
        #[serde(default)]
        configs: BTreeMap<String, String>,
    },
    /// Removes a topic and all its partitions.
    DeleteTopic {
        /// Id of the topic to delete.
        topic_id: Uuid,
    },
    /// Appends partitions to a topic (Kafka's CreatePartitions).
    CreatePartitions {
        /// Id of the topic to grow.
        topic_id: Uuid,
        /// Assignments of the added partitions, numbered after the existing ones; the same
        /// replica count as the existing partitions.
        new: Vec<PartitionAssignment>,
    },
    /// Sets and removes topic-level config overrides (incremental AlterConfigs).
    AlterTopicConfigs {
        /// Id of the topic.
        topic_id: Uuid,
        /// Keys to set, Kafka key names.
        #[serde(default)]
        set: BTreeMap<String, String>,
        /// Keys to remove (back to the broker or default value); applied after `set`.
        #[serde(default)]
        delete: BTreeSet<String>,
    },
    /// Sets and removes cluster-wide dynamic broker configs.
    AlterBrokerConfigs {
        /// Keys to set, Kafka key names.
        #[serde(default)]
        set: BTreeMap<String, String>,
        /// Keys to remove; applied after `set`.
        #[serde(default)]
        delete: BTreeSet<String>,
    },
    /// Sets and removes one group's dynamic configs (IncrementalAlterConfigs on a GROUP
    /// resource: `share.auto.offset.reset`, ...).
    AlterGroupConfigs {
        /// The group id.
        group: String,
        /// Keys to set, Kafka key names.
        #[serde(default)]
        set: BTreeMap<String, String>,
        /// Keys to remove; applied after `set`.
        #[serde(default)]
        delete: BTreeSet<String>,
    },
    /// Reserves a block of producer ids for one node (Kafka's AllocateProducerIds); the reply
    /// carries the first id of the block.
    AllocateProducerIds {
        /// Kafka `node.id` of the node asking; must be registered.
        node_id: i32,
        /// Size of the block, at least 1 (Kafka uses 1000).
        count: i32,
    },
    /// New leader and ISR of one partition (KIP-497 AlterPartition / KRaft's
    /// PartitionChangeRecord); applied only if `partition_epoch` is the stored one.
    PartitionChange {
        /// Id of the topic.
        topic_id: Uuid,
        /// Partition index.
        partition: i32,
        /// New leader broker id, or -1 for no leader; if set, in the replicas and in `isr`.
        leader: i32,
        /// Leader epoch after the change: not below the stored one, above it if the leader
        /// changes.
        leader_epoch: i32,
        /// New in-sync replicas, a subset of the replicas.
        isr: Vec<i32>,
        /// The partition epoch the proposer saw (Kafka's AlterPartition `PartitionEpoch`);
        /// applying bumps it by one.
        partition_epoch: i32,
    },
    /// Adds ACL bindings (CreateAcls); each already validated, existing ones are kept once.
    CreateAcls {
        /// The bindings to add.
        bindings: Vec<crate::acl::AclBinding>,
    },
    /// Removes every ACL binding one of the filters matches (DeleteAcls); the reply lists the
    /// removed bindings per filter.
    DeleteAcls {
        /// The filters, in request order.
        filters: Vec<crate::acl::AclFilter>,
    },
    /// Sets and removes SCRAM credentials (AlterUserScramCredentials), in order.
    AlterScramCredentials {
        /// The validated changes.
        changes: Vec<crate::metadata::security::ScramChange>,
    },
    /// Sets and removes client quotas (AlterClientQuotas), entity by entity in order.
    AlterClientQuotas {
        /// The validated changes.
        changes: Vec<crate::quota::entity::QuotaChange>,
    },
    /// Starts, replaces or (with no target) cancels the reassignment of one partition
    /// (KIP-455 AlterPartitionReassignments); see `image/reassignment.rs` for the rules.
    ReassignPartition {
        /// Id of the topic.
        topic_id: Uuid,
        /// Partition index.
        partition: i32,
        /// The replicas the partition should end with, preferred leader first; `None`
        /// cancels the ongoing reassignment.
        target: Option<Vec<i32>>,
    },
}

impl MetaCommand {
    /// The variant name, as written in the log's `"type"` field; for logs and metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RegisterBroker { .. } => "RegisterBroker",
            Self::FenceBroker { .. } => "FenceBroker",
            Self::UnfenceBroker { .. } => "UnfenceBroker",
            Self::CreateTopic { .. } => "CreateTopic",
            Self::DeleteTopic { .. } => "DeleteTopic",
            Self::CreatePartitions { .. } => "CreatePartitions",
            Self::AlterTopicConfigs { .. } => "AlterTopicConfigs",
            Self::AlterBrokerConfigs { .. } => "AlterBrokerConfigs",
            Self::AlterGroupConfigs { .. } => "AlterGroupConfigs",
            Self::AllocateProducerIds { .. } => "AllocateProducerIds",
            Self::PartitionChange { .. } => "PartitionChange",
            Self::CreateAcls { .. } => "CreateAcls",
            Self::DeleteAcls { .. } => "DeleteAcls",
            Self::AlterScramCredentials { .. } => "AlterScramCredentials",
            Self::ReassignPartition { .. } => "ReassignPartition",
            Self::AlterClientQuotas { .. } => "AlterClientQuotas",
        }
    }
}

/// What applying a command answered. A refused command leaves the image unchanged (only its
/// applied log position moves), on every node alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaReply {
    /// The command took effect.
    Ok(Applied),
    /// The command was refused, with the Kafka error code a client would get.
    Err {
        /// Kafka error code (`ResponseError::code()`).
        code: i16,
        /// Why, for the client's error message.
        message: String,
    },
}

impl MetaReply {
    /// A refusal with `error`'s Kafka code.
    #[must_use]
    pub fn err(error: ResponseError, message: impl Into<String>) -> Self {
        Self::Err {
            code: error.code(),
            message: message.into(),
        }
    }

    /// The Kafka error code: 0 (NONE) for [`MetaReply::Ok`].
    #[must_use]
    pub fn code(&self) -> i16 {
        match self {
            Self::Ok(_) => 0,
            Self::Err { code, .. } => *code,
        }
    }
}

/// The per-command payload of a successful apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    /// Nothing to report beyond success.
    Done,
    /// RegisterBroker: the node's new broker epoch (the record's log index).
    BrokerRegistered {
        /// Broker epoch to send in heartbeats and fence/unfence commands.
        broker_epoch: i64,
    },
    /// AllocateProducerIds: the block `first_id .. first_id + count`.
    ProducerIds {
        /// First producer id of the block.
        first_id: i64,
        /// Number of ids in the block.
        count: i32,
    },
    /// PartitionChange: the partition's epoch after the change.
    PartitionChanged {
        /// New partition epoch (the proposer's plus one).
        partition_epoch: i32,
    },
    /// DeleteAcls: the bindings each filter removed, in filter order.
    AclsDeleted {
        /// Per filter, the bindings it matched.
        deleted: Vec<Vec<crate::acl::AclBinding>>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_ids_split_back_into_node_and_core() {
        assert_eq!(broker_id(3, 7), 3007);
        assert_eq!(split_broker_id(3007), Some((3, 7)));
        assert_eq!(split_broker_id(0), Some((0, 0)));
        assert_eq!(split_broker_id(-1), None);
    }

    #[test]
    fn commands_round_trip_tagged_by_type() {
        let cmd = MetaCommand::AllocateProducerIds {
            node_id: 1,
            count: 1000,
        };
        let json = serde_json::to_string(&cmd).expect("encodes");
        assert!(json.contains(r#""type":"AllocateProducerIds""#), "{json}");
        let back: MetaCommand = serde_json::from_str(&json).expect("decodes");
        assert_eq!(back, cmd);
    }

    #[test]
    fn older_records_without_defaulted_fields_decode() {
        let old = r#"{"type":"RegisterBroker","node_id":2,
            "incarnation":"00000000-0000-0000-0000-000000000001",
            "endpoints":{"PLAINTEXT":"127.0.0.2:9092"},"shards":1}"#;
        let cmd: MetaCommand = serde_json::from_str(old).expect("decodes");
        let MetaCommand::RegisterBroker { rack, shards, .. } = cmd else {
            panic!("wrong variant: {cmd:?}");
        };
        assert_eq!((rack, shards), (None, 1));
    }

    #[test]
    fn newer_records_with_extra_fields_decode() {
        let newer = r#"{"type":"DeleteTopic","topic_id":"00000000-0000-0000-0000-000000000002",
            "field_from_the_future":42}"#;
        let cmd: MetaCommand = serde_json::from_str(newer).expect("decodes");
        assert_eq!(cmd.kind(), "DeleteTopic");
    }

    #[test]
    fn unknown_command_types_are_refused() {
        let unknown = r#"{"type":"FromTheFuture","x":1}"#;
        assert!(serde_json::from_str::<MetaCommand>(unknown).is_err());
    }

    #[test]
    fn reply_codes_are_kafkas() {
        let reply = MetaReply::err(ResponseError::TopicAlreadyExists, "exists");
        assert_eq!(reply.code(), 36);
        assert_eq!(MetaReply::Ok(Applied::Done).code(), 0);
        let json = serde_json::to_string(&reply).expect("encodes");
        assert_eq!(serde_json::from_str::<MetaReply>(&json).ok(), Some(reply));
    }
}
