//! The cluster metadata image (issue 13): the state every node folds the committed metadata
//! log into, one [`MetaCommand`](crate::metadata::command::MetaCommand) at a time, and that
//! shards read. Pure data and pure functions (no I/O, no clock, no lock), so the same log gives
//! the same image on every node. Applied on the controller thread (see `apply.rs`), then
//! published to the shards as an immutable `Arc<ClusterImage>`; the shards only query it.
//!
//! Cheap to clone: topics sit behind `Arc`, so a clone copies the maps' nodes and bumps
//! reference counts, and a change copies only the topic it touches (`Arc::make_mut`). Plain
//! `BTreeMap`s rather than persistent maps keep the dependency list short and iterate in a
//! fixed order, which apply and placement rely on for determinism; at thousands of topics a
//! clone is still microseconds, and it happens once per applied batch, not per request.

mod apply;
mod election;
mod placement;
mod reassignment;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::metadata::command::{broker_id, split_broker_id};
use crate::metadata::security::SecurityState;

pub use apply::ApplyError;
pub use election::UNCLEAN_ELECTION_KEY;
pub use placement::{PlacementError, place_replicas};

/// Version of the snapshot encoding written by [`ClusterImage::to_snapshot_bytes`]; a reader
/// refuses any other.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// A position in the metadata log (openraft's `LogId` without the leader's node id).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LogPosition {
    /// Raft log index, 1 for the first entry; 0 before anything was applied.
    pub index: u64,
    /// Raft term of the entry at `index`; 0 before anything was applied.
    pub term: u64,
}

/// One node's registration as the quorum accepted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerRegistration {
    /// Kafka `node.id`; its shards are brokers `node_id * 1000 + core`.
    pub node_id: i32,
    /// The run of the node that registered (changes on every restart).
    pub incarnation: Uuid,
    /// Listener name -> advertised bootstrap `host:port`.
    pub endpoints: BTreeMap<String, String>,
    /// Number of shards (cores); valid cores are `0..shards`.
    pub shards: u16,
    /// Kafka `broker.rack`, if set.
    pub rack: Option<String>,
    /// Broker epoch: the log index of the registration record (as KRaft uses the offset).
    pub epoch: i64,
    /// Fenced nodes are not served to clients and lead nothing; a node registers fenced.
    pub fenced: bool,
}

/// One partition's replicas and leadership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionImage {
    /// Replica broker ids, preferred leader first.
    pub replicas: Vec<i32>,
    /// Leader broker id, or -1 when no replica can lead.
    pub leader: i32,
    /// Kafka leader epoch: bumped when the leader changes.
    pub leader_epoch: i32,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
    /// Bumped on every change of leader or ISR (KIP-497's partition epoch).
    pub partition_epoch: i32,
    /// Replicas an ongoing reassignment adds (KIP-455): in `replicas`, catching up, not yet
    /// counted as the partition's target until they are all in the ISR.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding_replicas: Vec<i32>,
    /// Replicas an ongoing reassignment removes once the adding ones are in the ISR.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing_replicas: Vec<i32>,
}

impl PartitionImage {
    /// True while a reassignment of this partition is under way.
    #[must_use]
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The replicas the partition will have once its reassignment completes (its replicas
    /// when none is under way), in order.
    #[must_use]
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.removing_replicas.contains(r))
            .collect()
    }
}

/// One topic as the quorum knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    /// Topic name.
    pub name: String,
    /// Topic id (KIP-516).
    pub id: Uuid,
    /// Partitions indexed by partition number.
    pub partitions: Vec<PartitionImage>,
    /// Topic-level config overrides, Kafka key names.
    pub configs: BTreeMap<String, String>,
}

impl TopicImage {
    /// True for internal topics (`__consumer_offsets`, `__transaction_state`).
    #[must_use]
    pub fn internal(&self) -> bool {
        self.name.starts_with("__")
    }

    /// Replicas per partition, counted on partition 0's target replicas (a reassignment may
    /// change one partition's count); 0 for no partitions.
    #[must_use]
    pub fn replication_factor(&self) -> usize {
        self.partitions
            .first()
            .map_or(0, |p| p.target_replicas().len())
    }
}

/// The whole cluster metadata at one log position. See the module doc.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ImageRepr")]
pub struct ClusterImage {
    applied: LogPosition,
    brokers: BTreeMap<i32, BrokerRegistration>,
    topics: BTreeMap<String, Arc<TopicImage>>,
    /// Index of `topics` by id; derived, so not serialised (rebuilt on load).
    #[serde(skip)]
    topic_ids: BTreeMap<Uuid, String>,
    broker_configs: BTreeMap<String, String>,
    /// Dynamic configs by group id.
    group_configs: BTreeMap<String, BTreeMap<String, String>>,
    next_producer_id: i64,
    /// ACL bindings and SCRAM credentials.
    security: SecurityState,
}

/// The serialised form of [`ClusterImage`]: everything but derived indexes.
#[derive(Deserialize)]
struct ImageRepr {
    applied: LogPosition,
    brokers: BTreeMap<i32, BrokerRegistration>,
    topics: BTreeMap<String, Arc<TopicImage>>,
    broker_configs: BTreeMap<String, String>,
    /// Absent in snapshots written before group configs existed.
    #[serde(default)]
    group_configs: BTreeMap<String, BTreeMap<String, String>>,
    next_producer_id: i64,
    /// Absent in snapshots written before ACLs and SCRAM users existed.
    #[serde(default)]
    security: SecurityState,
}

impl From<ImageRepr> for ClusterImage {
    fn from(r: ImageRepr) -> Self {
        let topic_ids = r.topics.values().map(|t| (t.id, t.name.clone())).collect();
        Self {
            applied: r.applied,
            brokers: r.brokers,
            topics: r.topics,
            topic_ids,
            broker_configs: r.broker_configs,
            group_configs: r.group_configs,
            next_producer_id: r.next_producer_id,
            security: r.security,
        }
    }
}

/// A snapshot as written: the format version next to the image.
#[derive(Serialize)]
struct SnapshotOut<'a> {
    format: u32,
    image: &'a ClusterImage,
}

/// A snapshot as read; the image is decoded only once the format is known.
#[derive(Deserialize)]
struct SnapshotIn {
    format: u32,
    image: serde_json::Value,
}

/// Why snapshot bytes could not be read back into an image.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The bytes are not a snapshot (bad JSON or missing fields), or the image could not be
    /// encoded.
    #[error("metadata snapshot does not decode: {0}")]
    Json(#[from] serde_json::Error),
    /// Written by a Sluice with another snapshot format.
    #[error("metadata snapshot format {0} is not supported (this Sluice reads {SNAPSHOT_FORMAT})")]
    UnsupportedFormat(u32),
}

impl ClusterImage {
    /// The empty image, before the first log entry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Log position of the last entry folded into this image.
    #[must_use]
    pub fn applied(&self) -> LogPosition {
        self.applied
    }

    /// Moves the applied position past a log entry that carries no command (openraft's blank
    /// and membership entries), so the image's position follows the log.
    pub fn advance_to(&mut self, at: LogPosition) {
        debug_assert!(at >= self.applied, "log applied out of order");
        self.applied = at;
    }

    /// The topic named `name`.
    #[must_use]
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicImage>> {
        self.topics.get(name)
    }

    /// The topic with id `id`.
    #[must_use]
    pub fn topic_by_id(&self, id: Uuid) -> Option<&Arc<TopicImage>> {
        self.topic_ids
            .get(&id)
            .and_then(|name| self.topics.get(name))
    }

    /// Every topic, by name order.
    pub fn topics(&self) -> impl Iterator<Item = &Arc<TopicImage>> {
        self.topics.values()
    }

    /// The registration of node `node_id`, fenced or not.
    #[must_use]
    pub fn broker(&self, node_id: i32) -> Option<&BrokerRegistration> {
        self.brokers.get(&node_id)
    }

    /// Every registered node, fenced or not, by node id.
    pub fn brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values()
    }

    /// The unfenced nodes, by node id: those Metadata lists and that may lead partitions.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerRegistration> {
        self.brokers.values().filter(|b| !b.fenced)
    }

    /// Every shard of every unfenced node as `(broker id, the node's registration)`, by broker
    /// id: the brokers Metadata lists (shard `c` on the node's port + 1 + c).
    pub fn live_shards(&self) -> impl Iterator<Item = (i32, &BrokerRegistration)> {
        self.live_brokers()
            .flat_map(|b| (0..b.shards).map(move |core| (broker_id(b.node_id, core), b)))
    }

    /// True if `broker_id`'s node is registered and unfenced and the core is one of its shards.
    #[must_use]
    pub fn is_live_broker_id(&self, broker_id: i32) -> bool {
        split_broker_id(broker_id).is_some_and(|(node, core)| {
            self.brokers
                .get(&node)
                .is_some_and(|b| !b.fenced && core < b.shards)
        })
    }

    /// `(topic, partition index)` of every partition whose leader is `broker_id`.
    #[must_use]
    pub fn partitions_led_by(&self, broker_id: i32) -> Vec<(&Arc<TopicImage>, i32)> {
        self.partitions_where(|p| p.leader == broker_id)
    }

    /// `(topic, partition index)` of every partition with a replica on node `node_id`.
    #[must_use]
    pub fn partitions_on_node(&self, node_id: i32) -> Vec<(&Arc<TopicImage>, i32)> {
        self.partitions_where(|p| {
            p.replicas
                .iter()
                .any(|&r| split_broker_id(r).is_some_and(|(n, _)| n == node_id))
        })
    }

    fn partitions_where(
        &self,
        keep: impl Fn(&PartitionImage) -> bool,
    ) -> Vec<(&Arc<TopicImage>, i32)> {
        let mut out = Vec::new();
        for topic in self.topics.values() {
            for (index, p) in (0i32..).zip(&topic.partitions) {
                if keep(p) {
                    out.push((topic, index));
                }
            }
        }
        out
    }

    /// Cluster-wide dynamic broker configs, Kafka key names.
    #[must_use]
    pub fn broker_configs(&self) -> &BTreeMap<String, String> {
        &self.broker_configs
    }

    /// Dynamic configs by group id.
    #[must_use]
    pub fn group_configs(&self) -> &BTreeMap<String, BTreeMap<String, String>> {
        &self.group_configs
    }

    /// ACL bindings and SCRAM credentials.
    #[must_use]
    pub fn security(&self) -> &SecurityState {
        &self.security
    }

    /// The first producer id not yet handed out in any block.
    #[must_use]
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    /// The image as snapshot bytes (JSON with a `format` field, [`SNAPSHOT_FORMAT`]).
    ///
    /// # Errors
    /// Only if serde_json fails to encode, which these types do not cause.
    pub fn to_snapshot_bytes(&self) -> Result<Vec<u8>, SnapshotError> {
        let out = SnapshotOut {
            format: SNAPSHOT_FORMAT,
            image: self,
        };
        Ok(serde_json::to_vec(&out)?)
    }

    /// Reads back bytes from [`ClusterImage::to_snapshot_bytes`].
    ///
    /// # Errors
    /// [`SnapshotError::UnsupportedFormat`] for another format version,
    /// [`SnapshotError::Json`] for bytes that do not decode.
    pub fn from_snapshot_bytes(bytes: &[u8]) -> Result<Self, SnapshotError> {
        let snapshot: SnapshotIn = serde_json::from_slice(bytes)?;
        if snapshot.format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::UnsupportedFormat(snapshot.format));
        }
        Ok(serde_json::from_value(snapshot.image)?)
    }
}
