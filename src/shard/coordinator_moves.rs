//! Coordinators follow partition leadership (issue 14). In a cluster the group coordinator of
//! a shard serves the groups of the `__consumer_offsets` partitions the shard leads, and the
//! transaction coordinator the ids of the `__transaction_state` partitions it leads; when a
//! leader election moves such a partition here, its state is loaded from the log (which the
//! shard has, having followed the partition), and when it moves away the state is dropped
//! without writing anything. Until a led partition is loaded its ids are answered
//! COORDINATOR_LOAD_IN_PROGRESS, as Kafka does. On a single node ownership never moves, so
//! none of this runs there. Runs on the shard (housekeeping loop).

use std::cell::RefCell;
use std::collections::BTreeSet;

use kafka_protocol::ResponseError;

use crate::shard::Shard;

/// The internal partitions whose state a coordinator holds.
#[derive(Debug, Default)]
pub struct LoadedPartitions(RefCell<BTreeSet<i32>>);

impl LoadedPartitions {
    /// Notes that partition `p`'s state is loaded.
    pub fn mark(&self, p: i32) {
        self.0.borrow_mut().insert(p);
    }

    /// Notes that partition `p`'s state was dropped.
    pub fn forget(&self, p: i32) {
        self.0.borrow_mut().remove(&p);
    }

    /// Whether partition `p`'s state is loaded.
    pub fn contains(&self, p: i32) -> bool {
        self.0.borrow().contains(&p)
    }

    /// Given the partitions the shard leads now: those to load, and those to drop.
    pub fn changes(&self, led: &BTreeSet<i32>) -> (Vec<i32>, Vec<i32>) {
        let loaded = self.0.borrow();
        (
            led.difference(&loaded).copied().collect(),
            loaded.difference(led).copied().collect(),
        )
    }
}

/// The partitions of `topic` this shard leads, by its own copy of the metadata.
pub fn led_partitions(shard: &Shard, topic: &str) -> BTreeSet<i32> {
    shard.topic(topic).map_or_else(BTreeSet::new, |meta| {
        meta.partitions
            .iter()
            .enumerate()
            .filter(|(_, owner)| **owner == shard.core)
            .map(|(p, _)| p as i32)
            .collect()
    })
}

/// Whether `id` (a group or transactional id) belongs to partition `p` of `topic`, by
/// Kafka's `abs(hashCode) % partitions`.
pub fn id_in_partition(shard: &Shard, topic: &str, id: &str, p: i32) -> bool {
    let count = shard
        .topic(topic)
        .map_or(0, |m| i32::try_from(m.partitions.len()).unwrap_or(i32::MAX));
    count > 0 && crate::coordinator::group::records::partition_for_group(id, count) == p
}

/// The coordinator check shared by groups and transactions, once the id's partition `p` and
/// the core leading it (`owner`) are known: NOT_COORDINATOR when another shard leads it,
/// COORDINATOR_LOAD_IN_PROGRESS in a cluster while this shard has not loaded it yet.
pub fn check(
    shard: &Shard,
    p: i32,
    owner: usize,
    loaded: &LoadedPartitions,
) -> Result<(), ResponseError> {
    if owner != shard.core {
        return Err(ResponseError::NotCoordinator);
    }
    if shard.config.cluster.is_some() && !loaded.contains(p) {
        return Err(ResponseError::CoordinatorLoadInProgress);
    }
    Ok(())
}
