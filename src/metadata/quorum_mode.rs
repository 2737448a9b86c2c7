//! Cluster mode of [`Cluster`]: the node's metadata is a mirror of the controller quorum's
//! [`ClusterImage`], and every change is a command committed through the quorum.
//!
//! Threads: `install_image` runs on the `sluice-membership` thread, each time the controller
//! publishes a newly applied image; the `propose_*` methods run on shard threads (they only
//! await tokio channels, so any executor works) and return once this node's mirror shows the
//! change, so a client that created a topic through this node finds it here at once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::cluster::{Cluster, Leadership, MetadataError, NOT_ON_THIS_NODE, TopicMeta};
use super::command::{Applied, MetaCommand, MetaReply, PartitionAssignment, split_broker_id};
use super::image::{ClusterImage, place_replicas};
use super::quorum::{ControllerError, ControllerHandle};

/// Producer ids a node reserves from the quorum at once (Kafka's block size).
const PRODUCER_ID_BLOCK: i32 = 1000;
/// An internal topic's creation is proposed at most this often while it is missing.
const INTERNAL_CREATE_PAUSE: Duration = Duration::from_secs(1);

/// The topics of `image` as node `node_id` serves them: a partition's entry in
/// [`TopicMeta::partitions`] is the core of this node that leads it, or [`NOT_ON_THIS_NODE`].
#[must_use]
pub fn topics_from_image(image: &ClusterImage, node_id: i32) -> BTreeMap<String, Arc<TopicMeta>> {
    image
        .topics()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| match split_broker_id(p.leader) {
                    Some((node, core)) if node == node_id => usize::from(core),
                    _ => NOT_ON_THIS_NODE,
                })
                .collect();
            let leadership = t
                .partitions
                .iter()
                .map(|p| Leadership {
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    partition_epoch: p.partition_epoch,
                    local_core: p.replicas.iter().find_map(|&r| match split_broker_id(r) {
                        Some((node, core)) if node == node_id => Some(usize::from(core)),
                        _ => None,
                    }),
                })
                .collect();
            let meta = TopicMeta {
                name: t.name.clone(),
                id: t.id,
                partitions,
                configs: t.configs.clone(),
                internal: t.internal(),
                leadership,
            };
            (t.name.clone(), Arc::new(meta))
        })
        .collect()
}

/// A Kafka cluster id (22 characters of URL-safe base64) derived from the voters, so every
/// node of one quorum reports the same id without a record for it.
#[must_use]
pub fn cluster_id_for(voters: &str) -> String {
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_mut(4).enumerate() {
        let seeded = crc32c::crc32c_append(i as u32, voters.as_bytes());
        chunk.copy_from_slice(&seeded.to_be_bytes());
    }
    super::cluster::kafka_base64_uuid(&Uuid::from_bytes(bytes))
}

impl Cluster {
    /// True when this node is part of a multi-node cluster (its metadata comes from the
    /// controller quorum).
    #[must_use]
    pub fn is_clustered(&self) -> bool {
        self.quorum.is_some()
    }

    /// Extends this node's broker lease to `until` (after a heartbeat the controller
    /// confirmed); nothing on a single node.
    pub fn extend_lease(&self, until: std::time::Instant) {
        if let Some(q) = &self.quorum {
            q.lease.extend(until);
        }
    }

    /// Whether this node may answer as a partition leader now: always on a single node; in
    /// a cluster while its lease runs (see [`super::lease`]).
    #[must_use]
    pub fn holds_lease(&self) -> bool {
        self.quorum
            .as_ref()
            .is_none_or(|q| q.lease.held_at(std::time::Instant::now()))
    }

    /// The controller this node talks to, in cluster mode.
    #[must_use]
    pub fn controller(&self) -> Option<&ControllerHandle<ClusterImage>> {
        self.quorum.as_ref().map(|q| &q.controller)
    }

    /// The quorum's image as this node mirrors it, in cluster mode.
    #[must_use]
    pub fn image(&self) -> Option<Arc<ClusterImage>> {
        let q = self.quorum.as_ref()?;
        Some(Arc::clone(
            &q.image.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }

    /// Makes `image` this node's metadata (cluster mode; does nothing on a single node).
    pub fn install_image(&self, image: Arc<ClusterImage>) {
        let Some(q) = &self.quorum else { return };
        let topics = topics_from_image(&image, q.node_id);
        {
            let mut state = self.write();
            state.topics = topics;
            state.broker_configs = image.broker_configs().clone();
            state.group_configs = image.group_configs().clone();
            state.security = image.security().clone();
        }
        let index = image.applied().index;
        *q.image.write().unwrap_or_else(PoisonError::into_inner) = image;
        self.version.fetch_add(1, Ordering::AcqRel);
        q.mirrored.send_replace(index);
    }

    /// Commits `cmd` through the quorum and waits until this node's mirror has applied it.
    pub(super) async fn propose(&self, cmd: MetaCommand) -> Result<Applied, MetadataError> {
        let q = self.quorum.as_ref().ok_or(MetadataError::NotClustered)?;
        let committed = q.controller.write(cmd).await.map_err(quorum_error)?;
        let mut mirrored = q.mirrored.subscribe();
        // The mirror follows the controller's applied image; the wait ends when it got there
        // (or the mirror stopped, which only happens at shutdown).
        let _ = mirrored.wait_for(|i| *i >= committed.index).await;
        match committed.reply {
            MetaReply::Ok(applied) => Ok(applied),
            MetaReply::Err { code, message } => Err(MetadataError::Refused { code, message }),
        }
    }

    /// A partition leader's ISR change (KIP-497 AlterPartition): `isr` with the leader and
    /// epochs it saw, so the quorum refuses it if the partition moved on meanwhile.
    pub async fn propose_partition_change(
        &self,
        topic_id: Uuid,
        partition: i32,
        leader: i32,
        leader_epoch: i32,
        isr: Vec<i32>,
        partition_epoch: i32,
    ) -> Result<(), MetadataError> {
        let cmd = MetaCommand::PartitionChange {
            topic_id,
            partition,
            leader,
            leader_epoch,
            isr,
            partition_epoch,
        };
        self.propose(cmd).await.map(|_| ())
    }

    /// Starts, replaces or (with `None`) cancels the reassignment of partition `partition` of
    /// `topic` (KIP-455); answers once this node's mirror shows the change.
    pub async fn propose_reassignment(
        &self,
        topic: &str,
        partition: i32,
        target: Option<Vec<i32>>,
    ) -> Result<(), MetadataError> {
        let meta = self
            .topic(topic)
            .ok_or_else(|| MetadataError::UnknownTopic(topic.to_owned()))?;
        let cmd = MetaCommand::ReassignPartition {
            topic_id: meta.id,
            partition,
            target,
        };
        self.propose(cmd).await.map(|_| ())
    }

    /// The current image, or an error outside cluster mode.
    fn current_image(&self) -> Result<Arc<ClusterImage>, MetadataError> {
        self.image().ok_or(MetadataError::NotClustered)
    }

    /// Creates a topic through the quorum: `replicas` per partition placed over the unfenced
    /// nodes, or the manual `assignment` (broker ids per partition). With `dry_run` only the
    /// checks run.
    pub async fn propose_create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        assignment: Option<Vec<Vec<i32>>>,
        configs: BTreeMap<String, String>,
        dry_run: bool,
    ) -> Result<Arc<TopicMeta>, MetadataError> {
        super::validate_topic_name(name)?;
        let image = self.current_image()?;
        if image.topic(name).is_some() {
            return Err(MetadataError::TopicExists(name.to_owned()));
        }
        let assignments = match assignment {
            Some(lists) => manual(lists)?,
            None => {
                let count = usize::try_from(partitions)
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        MetadataError::InvalidPartitions(
                            "number of partitions must be larger than 0".into(),
                        )
                    })?;
                let rf = usize::try_from(replication_factor).unwrap_or(0);
                place_replicas(&image, 0, count, rf, start_for(name)).map_err(|e| {
                    MetadataError::Refused {
                        code: e.kafka_error().code(),
                        message: e.to_string(),
                    }
                })?
            }
        };
        let topic_id = Uuid::new_v4();
        if dry_run {
            return Ok(Arc::new(preview(name, topic_id, &assignments, &configs)));
        }
        self.propose(MetaCommand::CreateTopic {
            name: name.to_owned(),
            topic_id,
            partitions: assignments,
            configs,
        })
        .await?;
        self.topic(name)
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_owned()))
    }

    /// Deletes topic `name` through the quorum.
    pub async fn propose_delete_topic(&self, name: &str) -> Result<Arc<TopicMeta>, MetadataError> {
        let meta = self
            .topic(name)
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_owned()))?;
        self.propose(MetaCommand::DeleteTopic { topic_id: meta.id })
            .await?;
        Ok(meta)
    }

    /// Grows topic `name` to `total` partitions through the quorum, placed like the topic's
    /// existing ones or by the manual `assignment` of the new partitions.
    pub async fn propose_add_partitions(
        &self,
        name: &str,
        total: i32,
        assignment: Option<Vec<Vec<i32>>>,
        dry_run: bool,
    ) -> Result<(), MetadataError> {
        let image = self.current_image()?;
        let topic = image
            .topic(name)
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_owned()))?;
        let have = topic.partitions.len();
        let total = usize::try_from(total).unwrap_or(0);
        if total <= have {
            return Err(MetadataError::InvalidPartitions(format!(
                "topic currently has {have} partitions, which is higher than or equal to the requested {total}"
            )));
        }
        let new = match assignment {
            Some(lists) => manual(lists)?,
            None => place_replicas(
                &image,
                have,
                total - have,
                topic.replication_factor(),
                start_for(name),
            )
            .map_err(|e| MetadataError::Refused {
                code: e.kafka_error().code(),
                message: e.to_string(),
            })?,
        };
        if dry_run {
            return Ok(());
        }
        self.propose(MetaCommand::CreatePartitions {
            topic_id: topic.id,
            new,
        })
        .await
        .map(|_| ())
    }

    /// Replaces topic `name`'s config overrides through the quorum.
    pub async fn propose_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), MetadataError> {
        let meta = self
            .topic(name)
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_owned()))?;
        let delete = removed_keys(&meta.configs, &configs);
        self.propose(MetaCommand::AlterTopicConfigs {
            topic_id: meta.id,
            set: configs,
            delete,
        })
        .await
        .map(|_| ())
    }

    /// Replaces the cluster-wide dynamic broker configs through the quorum.
    pub async fn propose_broker_configs(
        &self,
        configs: BTreeMap<String, String>,
    ) -> Result<(), MetadataError> {
        let delete = removed_keys(&self.broker_configs(), &configs);
        self.propose(MetaCommand::AlterBrokerConfigs {
            set: configs,
            delete,
        })
        .await
        .map(|_| ())
    }

    /// Replaces one group's dynamic configs through the quorum.
    pub async fn propose_group_configs(
        &self,
        group: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), MetadataError> {
        let delete = removed_keys(&self.group_configs(group), &configs);
        self.propose(MetaCommand::AlterGroupConfigs {
            group: group.to_owned(),
            set: configs,
            delete,
        })
        .await
        .map(|_| ())
    }

    /// A producer id never handed out before in the cluster: from this node's block, which is
    /// refilled from the quorum when it runs out.
    pub async fn propose_producer_id(&self) -> Result<i64, MetadataError> {
        let q = self.quorum.as_ref().ok_or(MetadataError::NotClustered)?;
        if let Some(id) = take_id(&q.producer_ids) {
            return Ok(id);
        }
        let applied = self
            .propose(MetaCommand::AllocateProducerIds {
                node_id: q.node_id,
                count: PRODUCER_ID_BLOCK,
            })
            .await?;
        let Applied::ProducerIds { first_id, count } = applied else {
            return Err(MetadataError::Corrupt(
                "the quorum answered a producer id block with something else".into(),
            ));
        };
        let mut block = q
            .producer_ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if block.0 >= block.1 {
            *block = (first_id + 1, first_id + i64::from(count));
            return Ok(first_id);
        }
        // Another request refilled the block meanwhile; this one's ids stay unused.
        let id = block.0;
        block.0 += 1;
        Ok(id)
    }

    /// Starts creating internal topic `name` through the quorum without waiting, and returns
    /// the error to answer meanwhile ([`MetadataError::Pending`], retriable: Kafka answers
    /// COORDINATOR_NOT_AVAILABLE while `__consumer_offsets` is being created). Callers are on
    /// synchronous paths. Proposed at most once a second.
    pub(crate) fn propose_internal_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    ) -> MetadataError {
        let pending = MetadataError::Pending(name.to_owned());
        let (Some(q), Some(image)) = (self.quorum.as_ref(), self.image()) else {
            return MetadataError::NotClustered;
        };
        if !recently_proposed(&q.internal_proposed, name) {
            let count = usize::try_from(partitions).unwrap_or(1).max(1);
            let rf = usize::try_from(replication_factor).unwrap_or(1);
            match place_replicas(&image, 0, count, rf, start_for(name)) {
                Ok(assignments) => q.controller.submit(MetaCommand::CreateTopic {
                    name: name.to_owned(),
                    topic_id: Uuid::new_v4(),
                    partitions: assignments,
                    configs,
                }),
                Err(e) => tracing::warn!(topic = name, "cannot place the internal topic yet: {e}"),
            }
        }
        pending
    }
}

/// True if `name` was proposed less than [`INTERNAL_CREATE_PAUSE`] ago; records now otherwise.
fn recently_proposed(last: &Mutex<BTreeMap<String, Instant>>, name: &str) -> bool {
    let mut last = last.lock().unwrap_or_else(PoisonError::into_inner);
    let now = Instant::now();
    if last
        .get(name)
        .is_some_and(|t| now.duration_since(*t) < INTERNAL_CREATE_PAUSE)
    {
        return true;
    }
    last.insert(name.to_owned(), now);
    false
}

/// The next id of `block`, if it has one left.
fn take_id(block: &Mutex<(i64, i64)>) -> Option<i64> {
    let mut block = block.lock().unwrap_or_else(PoisonError::into_inner);
    (block.0 < block.1).then(|| {
        block.0 += 1;
        block.0 - 1
    })
}

/// Keys set before and absent from `next`: an AlterConfigs that replaces the whole set
/// removes them.
fn removed_keys(
    before: &BTreeMap<String, String>,
    next: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    before
        .keys()
        .filter(|k| !next.contains_key(*k))
        .cloned()
        .collect()
}

/// A manual assignment (broker ids per partition) as commands carry it; the quorum checks the
/// ids when it applies the command.
fn manual(lists: Vec<Vec<i32>>) -> Result<Vec<PartitionAssignment>, MetadataError> {
    if lists.iter().any(Vec::is_empty) {
        return Err(MetadataError::Refused {
            code: ResponseError::InvalidReplicaAssignment.code(),
            message: "every partition of a manual assignment needs at least one replica".into(),
        });
    }
    Ok(lists
        .into_iter()
        .map(|replicas| PartitionAssignment { replicas })
        .collect())
}

/// Where placement starts for topic `name`: spread by name so topics do not all lead on the
/// same node (Kafka starts at a random broker; a hash keeps dry runs and retries stable).
fn start_for(name: &str) -> usize {
    crc32c::crc32c(name.as_bytes()) as usize
}

/// What a dry-run create would make, without committing it.
fn preview(
    name: &str,
    id: Uuid,
    assignments: &[PartitionAssignment],
    configs: &BTreeMap<String, String>,
) -> TopicMeta {
    TopicMeta {
        name: name.to_owned(),
        id,
        partitions: vec![NOT_ON_THIS_NODE; assignments.len()],
        configs: configs.clone(),
        internal: name.starts_with("__"),
        leadership: assignments
            .iter()
            .map(|a| Leadership {
                leader: a.replicas[0],
                leader_epoch: 0,
                replicas: a.replicas.clone(),
                isr: a.replicas.clone(),
                partition_epoch: 0,
                local_core: None,
            })
            .collect(),
    }
}

/// A write that did not commit, as the error a client gets.
fn quorum_error(e: ControllerError) -> MetadataError {
    MetadataError::Quorum(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::command::broker_id;

    fn register(image: &mut ClusterImage, node: i32, index: u64) {
        let at = crate::metadata::image::LogPosition { index, term: 1 };
        image.apply(
            &MetaCommand::RegisterBroker {
                node_id: node,
                incarnation: Uuid::new_v4(),
                endpoints: BTreeMap::from([("PLAINTEXT".into(), format!("127.0.0.{node}:9092"))]),
                shards: 2,
                rack: None,
            },
            at,
        );
        let epoch = image.broker(node).unwrap().epoch;
        image.apply(
            &MetaCommand::UnfenceBroker {
                node_id: node,
                broker_epoch: epoch,
            },
            crate::metadata::image::LogPosition {
                index: index + 1,
                term: 1,
            },
        );
    }

    /// Each node sees the partitions its shards lead as local and the others as remote, with
    /// the quorum's replicas and leaders.
    #[test]
    fn the_mirror_marks_which_partitions_this_node_leads() {
        let mut image = ClusterImage::new();
        for (i, node) in [1, 2, 3].into_iter().enumerate() {
            register(&mut image, node, 10 * (i as u64 + 1));
        }
        let partitions = place_replicas(&image, 0, 6, 2, 0).unwrap();
        let reply = image.apply(
            &MetaCommand::CreateTopic {
                name: "t".into(),
                topic_id: Uuid::new_v4(),
                partitions: partitions.clone(),
                configs: BTreeMap::new(),
            },
            crate::metadata::image::LogPosition { index: 50, term: 1 },
        );
        assert_eq!(reply, MetaReply::Ok(Applied::Done));
        let mut local_total = 0;
        for node in [1, 2, 3] {
            let topics = topics_from_image(&image, node);
            let t = &topics["t"];
            for (p, owner) in t.partitions.iter().enumerate() {
                let leader = partitions[p].replicas[0];
                assert_eq!(t.leadership[p].leader, leader);
                assert_eq!(t.leadership[p].replicas, partitions[p].replicas);
                if split_broker_id(leader).unwrap().0 == node {
                    assert_eq!(broker_id(node, *owner as u16), leader);
                    local_total += 1;
                } else {
                    assert_eq!(*owner, NOT_ON_THIS_NODE);
                }
            }
        }
        assert_eq!(
            local_total, 6,
            "each partition is local on exactly one node"
        );
    }

    #[test]
    fn the_cluster_id_depends_on_the_voters_only() {
        let a = cluster_id_for("1@127.0.0.1:9192,2@127.0.0.2:9192");
        assert_eq!(a.len(), 22);
        assert_eq!(a, cluster_id_for("1@127.0.0.1:9192,2@127.0.0.2:9192"));
        assert_ne!(a, cluster_id_for("1@127.0.0.1:9192"));
    }

    #[test]
    fn producer_id_blocks_hand_out_each_id_once() {
        let block = Mutex::new((5, 7));
        assert_eq!(take_id(&block), Some(5));
        assert_eq!(take_id(&block), Some(6));
        assert_eq!(take_id(&block), None);
    }
}
