//! Folding one committed [`MetaCommand`] into the [`ClusterImage`]: validate against the
//! current image, then change it. Runs on the controller thread for every committed entry, in
//! log order, on every node; pure, so all nodes reach the same image. Validation is repeated
//! here even though the proposer validated too, because two proposals can race: the later one
//! gets an error reply and changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{BrokerRegistration, ClusterImage, LogPosition, PartitionImage, TopicImage};
use crate::metadata::cluster::validate_topic_name;
use crate::metadata::command::{
    Applied, MetaCommand, MetaReply, PartitionAssignment, SHARDS_PER_NODE_ID, split_broker_id,
};

/// Why a command was refused; each maps to the Kafka error code the client gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// A topic of that name exists (TOPIC_ALREADY_EXISTS).
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    /// The topic name breaks Kafka's rules (INVALID_TOPIC_EXCEPTION).
    #[error("{0}")]
    InvalidTopicName(String),
    /// No topic has this id (UNKNOWN_TOPIC_ID).
    #[error("no topic has id {0}")]
    UnknownTopicId(Uuid),
    /// The topic has no such partition (UNKNOWN_TOPIC_OR_PARTITION).
    #[error("topic {topic} has no partition {partition}")]
    UnknownPartition {
        /// Topic name.
        topic: String,
        /// The partition asked for.
        partition: i32,
    },
    /// No partitions given (INVALID_PARTITIONS).
    #[error("{0}")]
    InvalidPartitions(String),
    /// Replica counts differ between partitions of a topic (INVALID_REPLICATION_FACTOR).
    #[error("{0}")]
    InvalidReplicationFactor(String),
    /// A replica list is empty, repeats a node, or names an unregistered node or a core the
    /// node does not have (INVALID_REPLICA_ASSIGNMENT).
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    /// The node is not registered (BROKER_ID_NOT_REGISTERED).
    #[error("node {0} is not registered")]
    BrokerNotRegistered(i32),
    /// The broker epoch is not the node's current one (STALE_BROKER_EPOCH).
    #[error("node {node_id}: broker epoch {given} is not the current {current}")]
    StaleBrokerEpoch {
        /// The node.
        node_id: i32,
        /// The epoch in the command.
        given: i64,
        /// The epoch of the node's registration.
        current: i64,
    },
    /// The leader epoch is below the stored one (FENCED_LEADER_EPOCH).
    #[error("leader epoch {given} is older than the current {current}")]
    FencedLeaderEpoch {
        /// The epoch in the command.
        given: i32,
        /// The stored epoch.
        current: i32,
    },
    /// The partition epoch is not the stored one (INVALID_UPDATE_VERSION).
    #[error("partition epoch {given} is not the current {current}")]
    StalePartitionEpoch {
        /// The epoch in the command.
        given: i32,
        /// The stored epoch.
        current: i32,
    },
    /// A replica in the new ISR or the new leader is not a replica of the partition
    /// (INELIGIBLE_REPLICA).
    #[error("{0}")]
    IneligibleReplica(String),
    /// Cancelling a reassignment of a partition that has none (NO_REASSIGNMENT_IN_PROGRESS).
    #[error("no reassignment of this partition is in progress")]
    NoReassignmentInProgress,
    /// A malformed command: nil id, out-of-range count or shard number, id overflow
    /// (INVALID_REQUEST).
    #[error("{0}")]
    InvalidRequest(String),
}

impl ApplyError {
    /// The Kafka error this refusal is answered with.
    #[must_use]
    pub fn kafka_error(&self) -> ResponseError {
        match self {
            Self::TopicExists(_) => ResponseError::TopicAlreadyExists,
            Self::InvalidTopicName(_) => ResponseError::InvalidTopicException,
            Self::UnknownTopicId(_) => ResponseError::UnknownTopicId,
            Self::UnknownPartition { .. } => ResponseError::UnknownTopicOrPartition,
            Self::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            Self::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
            Self::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
            Self::BrokerNotRegistered(_) => ResponseError::BrokerIdNotRegistered,
            Self::StaleBrokerEpoch { .. } => ResponseError::StaleBrokerEpoch,
            Self::FencedLeaderEpoch { .. } => ResponseError::FencedLeaderEpoch,
            Self::StalePartitionEpoch { .. } => ResponseError::InvalidUpdateVersion,
            Self::IneligibleReplica(_) => ResponseError::IneligibleReplica,
            Self::NoReassignmentInProgress => ResponseError::NoReassignmentInProgress,
            Self::InvalidRequest(_) => ResponseError::InvalidRequest,
        }
    }
}

impl From<ApplyError> for MetaReply {
    fn from(e: ApplyError) -> Self {
        MetaReply::err(e.kafka_error(), e.to_string())
    }
}

impl ClusterImage {
    /// Folds the committed command at log position `at` into the image and answers it. A
    /// refused command changes nothing but the applied position. Entries must come in log
    /// order.
    pub fn apply(&mut self, cmd: &MetaCommand, at: LogPosition) -> MetaReply {
        self.advance_to(at);
        match self.apply_checked(cmd, at) {
            Ok(applied) => MetaReply::Ok(applied),
            Err(e) => e.into(),
        }
    }

    /// Every arm validates completely before its first change, so an error leaves the image
    /// as it was.
    fn apply_checked(&mut self, cmd: &MetaCommand, at: LogPosition) -> Result<Applied, ApplyError> {
        match cmd {
            MetaCommand::RegisterBroker {
                node_id,
                incarnation,
                endpoints,
                shards,
                rack,
            } => self.register_broker(
                BrokerRegistration {
                    node_id: *node_id,
                    incarnation: *incarnation,
                    endpoints: endpoints.clone(),
                    shards: *shards,
                    rack: rack.clone(),
                    epoch: 0,
                    fenced: true,
                },
                at,
            ),
            MetaCommand::FenceBroker {
                node_id,
                broker_epoch,
            } => self.set_fenced(*node_id, *broker_epoch, true),
            MetaCommand::UnfenceBroker {
                node_id,
                broker_epoch,
            } => self.set_fenced(*node_id, *broker_epoch, false),
            MetaCommand::CreateTopic {
                name,
                topic_id,
                partitions,
                configs,
            } => self.create_topic(name, *topic_id, partitions, configs),
            MetaCommand::DeleteTopic { topic_id } => self.delete_topic(*topic_id),
            MetaCommand::CreatePartitions { topic_id, new } => {
                self.create_partitions(*topic_id, new)
            }
            MetaCommand::AlterTopicConfigs {
                topic_id,
                set,
                delete,
            } => {
                let topic = self.topic_mut(*topic_id)?;
                alter(&mut topic.configs, set, delete);
                Ok(Applied::Done)
            }
            MetaCommand::AlterBrokerConfigs { set, delete } => {
                alter(&mut self.broker_configs, set, delete);
                Ok(Applied::Done)
            }
            MetaCommand::AlterGroupConfigs { group, set, delete } => {
                let configs = self.group_configs.entry(group.clone()).or_default();
                alter(configs, set, delete);
                if configs.is_empty() {
                    self.group_configs.remove(group);
                }
                Ok(Applied::Done)
            }
            MetaCommand::AllocateProducerIds { node_id, count } => {
                self.allocate_producer_ids(*node_id, *count)
            }
            MetaCommand::PartitionChange {
                topic_id,
                partition,
                leader,
                leader_epoch,
                isr,
                partition_epoch,
            } => self.partition_change(
                *topic_id,
                *partition,
                &Change {
                    leader: *leader,
                    leader_epoch: *leader_epoch,
                    isr,
                    partition_epoch: *partition_epoch,
                },
            ),
            MetaCommand::CreateAcls { bindings } => {
                // The proposer validated; a binding that fails here (a hand-made log) is
                // refused whole, so every node stores the same set.
                if let Some(e) = bindings.iter().find_map(|b| b.validate().err()) {
                    return Err(ApplyError::InvalidRequest(e.0));
                }
                self.security.create_acls(bindings);
                Ok(Applied::Done)
            }
            MetaCommand::DeleteAcls { filters } => {
                if let Some(e) = filters.iter().find_map(|f| f.validate().err()) {
                    return Err(ApplyError::InvalidRequest(e.0));
                }
                let deleted = self.security.delete_acls(filters);
                Ok(Applied::AclsDeleted { deleted })
            }
            MetaCommand::AlterScramCredentials { changes } => {
                self.security.alter_scram(changes);
                Ok(Applied::Done)
            }
            MetaCommand::AlterClientQuotas { changes } => {
                // The proposer validated; a value that fails here (a hand-made log) is
                // refused whole, so every node stores the same quotas.
                let invalid = changes
                    .iter()
                    .flat_map(|c| &c.set)
                    .find_map(|(key, value)| key.validate(value.0).err());
                if let Some(e) = invalid {
                    return Err(ApplyError::InvalidRequest(e.to_string()));
                }
                self.security.alter_quotas(changes);
                Ok(Applied::Done)
            }
            MetaCommand::ReassignPartition {
                topic_id,
                partition,
                target,
            } => self.reassign_partition(*topic_id, *partition, target.as_deref()),
        }
    }

    fn register_broker(
        &mut self,
        mut reg: BrokerRegistration,
        at: LogPosition,
    ) -> Result<Applied, ApplyError> {
        let max_node = i32::MAX / SHARDS_PER_NODE_ID - 1;
        if !(0..=max_node).contains(&reg.node_id) {
            return Err(ApplyError::InvalidRequest(format!(
                "node id {} is outside 0..={max_node}",
                reg.node_id
            )));
        }
        if reg.shards == 0 || i32::from(reg.shards) > SHARDS_PER_NODE_ID {
            return Err(ApplyError::InvalidRequest(format!(
                "node {} registers {} shards; 1..={SHARDS_PER_NODE_ID} are allowed",
                reg.node_id, reg.shards
            )));
        }
        if reg.endpoints.is_empty() {
            return Err(ApplyError::InvalidRequest(format!(
                "node {} registers no endpoint",
                reg.node_id
            )));
        }
        let epoch = i64::try_from(at.index)
            .map_err(|_| ApplyError::InvalidRequest(format!("log index {} overflows", at.index)))?;
        reg.epoch = epoch;
        let node_id = reg.node_id;
        self.brokers.insert(node_id, reg);
        // A node registers fenced: a restart is a departure even if no session expired, since
        // its log may be behind what its replicas had acknowledged.
        self.node_left(node_id);
        Ok(Applied::BrokerRegistered {
            broker_epoch: epoch,
        })
    }

    fn set_fenced(
        &mut self,
        node_id: i32,
        broker_epoch: i64,
        fenced: bool,
    ) -> Result<Applied, ApplyError> {
        let broker = self
            .brokers
            .get_mut(&node_id)
            .ok_or(ApplyError::BrokerNotRegistered(node_id))?;
        if broker.epoch != broker_epoch {
            return Err(ApplyError::StaleBrokerEpoch {
                node_id,
                given: broker_epoch,
                current: broker.epoch,
            });
        }
        broker.fenced = fenced;
        match fenced {
            true => self.node_left(node_id),
            false => self.node_joined(node_id),
        }
        Ok(Applied::Done)
    }

    fn create_topic(
        &mut self,
        name: &str,
        topic_id: Uuid,
        partitions: &[PartitionAssignment],
        configs: &BTreeMap<String, String>,
    ) -> Result<Applied, ApplyError> {
        validate_topic_name(name).map_err(|e| ApplyError::InvalidTopicName(e.to_string()))?;
        if self.topics.contains_key(name) {
            return Err(ApplyError::TopicExists(name.to_string()));
        }
        if topic_id.is_nil() || self.topic_ids.contains_key(&topic_id) {
            return Err(ApplyError::InvalidRequest(format!(
                "topic id {topic_id} is nil or already used"
            )));
        }
        if partitions.is_empty() {
            return Err(ApplyError::InvalidPartitions(format!(
                "topic '{name}' needs at least one partition"
            )));
        }
        let rf = partitions[0].replicas.len();
        let new = self.new_partitions(partitions, rf)?;
        // Config keys and values are validated by the proposer, not here: the rules may change
        // between Sluice versions, and a log must apply the same way under every version.
        self.topic_ids.insert(topic_id, name.to_string());
        self.topics.insert(
            name.to_string(),
            Arc::new(TopicImage {
                name: name.to_string(),
                id: topic_id,
                partitions: new,
                configs: configs.clone(),
            }),
        );
        Ok(Applied::Done)
    }

    fn delete_topic(&mut self, topic_id: Uuid) -> Result<Applied, ApplyError> {
        let name = self
            .topic_ids
            .remove(&topic_id)
            .ok_or(ApplyError::UnknownTopicId(topic_id))?;
        self.topics.remove(&name);
        Ok(Applied::Done)
    }

    fn create_partitions(
        &mut self,
        topic_id: Uuid,
        added: &[PartitionAssignment],
    ) -> Result<Applied, ApplyError> {
        let rf = self
            .topic_by_id(topic_id)
            .ok_or(ApplyError::UnknownTopicId(topic_id))?
            .replication_factor();
        if added.is_empty() {
            return Err(ApplyError::InvalidPartitions(
                "no partitions to add".to_string(),
            ));
        }
        let new = self.new_partitions(added, rf)?;
        self.topic_mut(topic_id)?.partitions.extend(new);
        Ok(Applied::Done)
    }

    /// Validated initial state of new partitions, each with `rf` replicas (as KRaft does): the
    /// replicas on unfenced nodes form the ISR and the first of them leads, epochs 0; a
    /// partition whose replicas are all on fenced nodes is refused.
    fn new_partitions(
        &self,
        assignments: &[PartitionAssignment],
        rf: usize,
    ) -> Result<Vec<PartitionImage>, ApplyError> {
        let mut out = Vec::with_capacity(assignments.len());
        for (index, a) in assignments.iter().enumerate() {
            if a.replicas.len() != rf {
                return Err(ApplyError::InvalidReplicationFactor(format!(
                    "partition {index} has {} replicas where the topic has {rf}",
                    a.replicas.len()
                )));
            }
            self.validate_replicas(&a.replicas)?;
            let isr: Vec<i32> = a
                .replicas
                .iter()
                .copied()
                .filter(|&r| self.is_live_broker_id(r))
                .collect();
            let Some(&leader) = isr.first() else {
                return Err(ApplyError::InvalidReplicaAssignment(format!(
                    "every replica of partition {index} is on a fenced node"
                )));
            };
            out.push(PartitionImage {
                replicas: a.replicas.clone(),
                leader,
                leader_epoch: 0,
                isr,
                partition_epoch: 0,
                adding_replicas: Vec::new(),
                removing_replicas: Vec::new(),
            });
        }
        Ok(out)
    }

    /// Non-empty, one replica per node, every node registered and every core one of its shards.
    pub(super) fn validate_replicas(&self, replicas: &[i32]) -> Result<(), ApplyError> {
        let invalid = |m: String| Err(ApplyError::InvalidReplicaAssignment(m));
        if replicas.is_empty() {
            return invalid("a partition needs at least one replica".to_string());
        }
        let mut nodes = BTreeSet::new();
        for &r in replicas {
            let Some((node, core)) = split_broker_id(r) else {
                return invalid(format!("replica {r} is not a broker id"));
            };
            if !nodes.insert(node) {
                return invalid(format!("two replicas of one partition on node {node}"));
            }
            let Some(broker) = self.brokers.get(&node) else {
                return invalid(format!("replica {r}: node {node} is not registered"));
            };
            if core >= broker.shards {
                return invalid(format!(
                    "replica {r}: node {node} has {} shards",
                    broker.shards
                ));
            }
        }
        Ok(())
    }

    pub(super) fn topic_mut(&mut self, topic_id: Uuid) -> Result<&mut TopicImage, ApplyError> {
        let name = self
            .topic_ids
            .get(&topic_id)
            .ok_or(ApplyError::UnknownTopicId(topic_id))?;
        let topic = self
            .topics
            .get_mut(name)
            .ok_or(ApplyError::UnknownTopicId(topic_id))?;
        Ok(Arc::make_mut(topic))
    }

    fn allocate_producer_ids(&mut self, node_id: i32, count: i32) -> Result<Applied, ApplyError> {
        if !self.brokers.contains_key(&node_id) {
            return Err(ApplyError::BrokerNotRegistered(node_id));
        }
        if count < 1 {
            return Err(ApplyError::InvalidRequest(format!(
                "producer id block of {count} ids"
            )));
        }
        let first_id = self.next_producer_id;
        self.next_producer_id = first_id
            .checked_add(i64::from(count))
            .ok_or_else(|| ApplyError::InvalidRequest("producer ids exhausted".to_string()))?;
        Ok(Applied::ProducerIds { first_id, count })
    }

    fn partition_change(
        &mut self,
        topic_id: Uuid,
        partition: i32,
        change: &Change<'_>,
    ) -> Result<Applied, ApplyError> {
        let (index, current) = self.partition_at(topic_id, partition)?;
        let new_epoch = change.check(&current)?;
        let p = &mut self.topic_mut(topic_id)?.partitions[index];
        p.leader = change.leader;
        p.leader_epoch = change.leader_epoch;
        p.isr = change.isr.to_vec();
        p.partition_epoch = new_epoch;
        self.complete_reassignment_if_ready(topic_id, index);
        Ok(Applied::PartitionChanged {
            partition_epoch: new_epoch,
        })
    }
}

/// The proposed new state of one partition, from a PartitionChange command.
struct Change<'a> {
    leader: i32,
    leader_epoch: i32,
    isr: &'a [i32],
    partition_epoch: i32,
}

impl Change<'_> {
    /// AlterPartition's checks, in Kafka's order: leader epoch, then partition epoch, then
    /// the new leader and ISR against the replicas. Returns the partition epoch to store.
    fn check(&self, current: &PartitionImage) -> Result<i32, ApplyError> {
        if self.leader_epoch < current.leader_epoch {
            return Err(ApplyError::FencedLeaderEpoch {
                given: self.leader_epoch,
                current: current.leader_epoch,
            });
        }
        if self.partition_epoch != current.partition_epoch {
            return Err(ApplyError::StalePartitionEpoch {
                given: self.partition_epoch,
                current: current.partition_epoch,
            });
        }
        if self.leader != current.leader && self.leader_epoch == current.leader_epoch {
            return Err(ApplyError::InvalidRequest(format!(
                "leader moves from {} to {} without a new leader epoch",
                current.leader, self.leader
            )));
        }
        let mut seen = BTreeSet::new();
        if let Some(&r) = self
            .isr
            .iter()
            .find(|&&r| !current.replicas.contains(&r) || !seen.insert(r))
        {
            return Err(ApplyError::IneligibleReplica(format!(
                "ISR member {r} is not a replica or is repeated"
            )));
        }
        if self.leader != -1 && !self.isr.contains(&self.leader) {
            return Err(ApplyError::IneligibleReplica(format!(
                "leader {} is not in the ISR",
                self.leader
            )));
        }
        self.partition_epoch
            .checked_add(1)
            .ok_or_else(|| ApplyError::InvalidRequest("partition epoch overflows".to_string()))
    }
}

/// Incremental config change: set, then delete (so a key in both ends up deleted).
fn alter(
    configs: &mut BTreeMap<String, String>,
    set: &BTreeMap<String, String>,
    delete: &BTreeSet<String>,
) {
    configs.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
    for key in delete {
        configs.remove(key);
    }
}
