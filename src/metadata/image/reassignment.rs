//! Partition reassignment (KIP-455, Kafka's AlterPartitionReassignments): moving a partition's
//! replicas to a new set of brokers without losing an acknowledged record. Part of applying
//! `ReassignPartition` and `PartitionChange` commands; runs on the controller thread, inside
//! `ClusterImage::apply`; pure.
//!
//! The rules follow Kafka's controller:
//! - starting: the replicas become the target followed by the original replicas the target
//!   drops; `adding_replicas` are the target's new brokers, `removing_replicas` the dropped
//!   ones. The leader and ISR stay; the new replicas start following and catch up. The leader
//!   epoch goes up only when the change fences someone (a dropped earlier target) or when
//!   the partition gets its first followers (the leader then keeps its high watermark from
//!   the ISR, and switches on a new epoch).
//! - completing: as soon as every target replica is in the ISR (checked when a reassignment
//!   starts and after every ISR change), the replicas become the target, the ISR keeps its
//!   target members, and a leader outside the target hands over to the first live in-sync
//!   target replica. Removing a replica bumps the leader epoch (as Kafka does since 3.6), so
//!   a removed follower is fenced from the leader at once.
//! - cancelling: the replicas go back to the original ones; refused when no original replica
//!   is in sync, since the partition's only up-to-date copies would be dropped.
//! - a new target while one is under way replaces it, computed from the original replicas.

use uuid::Uuid;

use super::apply::ApplyError;
use super::{ClusterImage, PartitionImage};
use crate::metadata::command::Applied;

impl ClusterImage {
    /// Starts (or replaces) the reassignment of one partition to `target`, or cancels the
    /// ongoing one with `None`.
    pub(super) fn reassign_partition(
        &mut self,
        topic_id: Uuid,
        partition: i32,
        target: Option<&[i32]>,
    ) -> Result<Applied, ApplyError> {
        let (index, current) = self.partition_at(topic_id, partition)?;
        let next = match target {
            Some(target) => {
                self.validate_replicas(target)?;
                started(&current, target)?
            }
            None => self.cancelled(&current)?,
        };
        let Some(next) = next else {
            return Ok(Applied::Done);
        };
        let next = self.completed(next);
        self.topic_mut(topic_id)?.partitions[index] = next;
        Ok(Applied::Done)
    }

    /// After an ISR change: completes the partition's reassignment if every target replica is
    /// now in sync.
    pub(super) fn complete_reassignment_if_ready(&mut self, topic_id: Uuid, index: usize) {
        let Ok(topic) = self.topic_mut(topic_id) else {
            return;
        };
        let Some(p) = topic.partitions.get(index) else {
            return;
        };
        if !p.is_reassigning() {
            return;
        }
        let current = p.clone();
        let next = self.completed(current);
        if let Ok(topic) = self.topic_mut(topic_id) {
            topic.partitions[index] = next;
        }
    }

    /// Index and current state of partition `partition` of topic `topic_id`.
    pub(super) fn partition_at(
        &self,
        topic_id: Uuid,
        partition: i32,
    ) -> Result<(usize, PartitionImage), ApplyError> {
        let topic = self
            .topic_by_id(topic_id)
            .ok_or(ApplyError::UnknownTopicId(topic_id))?;
        let unknown = || ApplyError::UnknownPartition {
            topic: topic.name.clone(),
            partition,
        };
        let index = usize::try_from(partition).map_err(|_| unknown())?;
        let p = topic.partitions.get(index).ok_or_else(unknown)?;
        Ok((index, p.clone()))
    }

    /// The partition with its reassignment cancelled: back to the original replicas.
    fn cancelled(&self, p: &PartitionImage) -> Result<Option<PartitionImage>, ApplyError> {
        if !p.is_reassigning() {
            return Err(ApplyError::NoReassignmentInProgress);
        }
        let original = original_replicas(p);
        let isr: Vec<i32> = p
            .isr
            .iter()
            .copied()
            .filter(|r| original.contains(r))
            .collect();
        if isr.is_empty() {
            return Err(ApplyError::InvalidReplicaAssignment(
                "no original replica is in sync: cancelling would drop every up-to-date copy"
                    .to_string(),
            ));
        }
        Ok(Some(self.settle(p, original, isr)))
    }

    /// `p` with its reassignment completed if every target replica is in the ISR; unchanged
    /// otherwise.
    fn completed(&self, p: PartitionImage) -> PartitionImage {
        let target = p.target_replicas();
        if !p.is_reassigning() || !target.iter().all(|r| p.isr.contains(r)) {
            return p;
        }
        let isr: Vec<i32> = p
            .isr
            .iter()
            .copied()
            .filter(|r| target.contains(r))
            .collect();
        self.settle(&p, target, isr)
    }

    /// The partition settled on `replicas` with in-sync `isr` (non-empty, within `replicas`):
    /// no reassignment left, the leader kept if it is still a replica, else the first live
    /// in-sync replica (or none); the leader epoch bumped when the leader changes or a replica
    /// goes, the partition epoch always.
    fn settle(&self, p: &PartitionImage, replicas: Vec<i32>, isr: Vec<i32>) -> PartitionImage {
        let leader = if replicas.contains(&p.leader) {
            p.leader
        } else {
            replicas
                .iter()
                .copied()
                .find(|r| isr.contains(r) && self.is_live_broker_id(*r))
                .unwrap_or(-1)
        };
        let replica_removed = p.replicas.iter().any(|r| !replicas.contains(r));
        let leader_epoch = if leader != p.leader || replica_removed {
            p.leader_epoch.saturating_add(1)
        } else {
            p.leader_epoch
        };
        PartitionImage {
            replicas,
            leader,
            leader_epoch,
            isr,
            partition_epoch: p.partition_epoch.saturating_add(1),
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }
    }
}

/// The replicas a partition had before its ongoing reassignment started (its replicas when
/// none is under way), in order.
fn original_replicas(p: &PartitionImage) -> Vec<i32> {
    p.replicas
        .iter()
        .copied()
        .filter(|r| !p.adding_replicas.contains(r))
        .collect()
}

/// The partition with a reassignment to `target` under way; `None` when nothing changes (the
/// target is the current replica list and nothing is under way).
fn started(p: &PartitionImage, target: &[i32]) -> Result<Option<PartitionImage>, ApplyError> {
    let original = original_replicas(p);
    if !p.is_reassigning() && original == target {
        return Ok(None);
    }
    let mut replicas = target.to_vec();
    replicas.extend(original.iter().filter(|r| !target.contains(r)));
    let adding = target
        .iter()
        .copied()
        .filter(|r| !original.contains(r))
        .collect();
    let removing = original
        .iter()
        .copied()
        .filter(|r| !target.contains(r))
        .collect();
    // A new target may drop brokers the replaced one was adding: they stop being replicas,
    // so they leave the ISR, and their leader epoch is bumped to fence their fetches. One of
    // them leading is refused: the leader must not vanish under a reassignment.
    if !replicas.contains(&p.leader) && p.leader != -1 {
        return Err(ApplyError::InvalidReplicaAssignment(format!(
            "broker {} leads the partition and the new target drops it; cancel the ongoing \
             reassignment first",
            p.leader
        )));
    }
    let isr: Vec<i32> = p
        .isr
        .iter()
        .copied()
        .filter(|r| replicas.contains(r))
        .collect();
    if isr.is_empty() {
        return Err(ApplyError::InvalidReplicaAssignment(
            "the new target drops every in-sync replica".to_string(),
        ));
    }
    let dropped = p.replicas.iter().any(|r| !replicas.contains(r));
    // A partition that gains its first followers changes how its leader keeps the high
    // watermark (from the ISR instead of its own log end); the leader switches when it sees
    // a new leader epoch, so give it one.
    let becomes_replicated = p.replicas.len() == 1 && replicas.len() > 1;
    Ok(Some(PartitionImage {
        replicas,
        leader: p.leader,
        leader_epoch: if dropped || becomes_replicated {
            p.leader_epoch.saturating_add(1)
        } else {
            p.leader_epoch
        },
        isr,
        partition_epoch: p.partition_epoch.saturating_add(1),
        adding_replicas: adding,
        removing_replicas: removing,
    }))
}
