//! Coordinators follow partition leadership (issue 14). In a cluster the group coordinator of
//! a shard serves the groups of the `__consumer_offsets` partitions the shard leads, and the
//! transaction coordinator the ids of the `__transaction_state` partitions it leads; when a
//! leader election moves such a partition here, its state is loaded from the log (which the
//! shard has, having followed the partition), and when it moves away the state is dropped
//! without writing anything. Until a led partition is loaded its ids are answered
//! COORDINATOR_LOAD_IN_PROGRESS, as Kafka does. On a single node ownership never moves, so
//! none of this runs there. Runs on the shard (housekeeping loop).

use std::cell::RefCell;
use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

use crate::shard::Shard;

/// The internal partitions whose state a coordinator holds, with the leader epoch each was
/// loaded in: leadership that left and came back between two looks (a newer epoch) means
/// commits were written under another leader meanwhile, so the state is loaded again.
#[derive(Debug)]
pub struct LoadedPartitions {
    topic: &'static str,
    loaded: RefCell<BTreeMap<i32, i32>>,
}

impl LoadedPartitions {
    /// Nothing loaded yet of `topic`.
    pub fn new(topic: &'static str) -> Self {
        Self {
            topic,
            loaded: RefCell::new(BTreeMap::new()),
        }
    }

    /// Notes that partition `p`'s state is loaded, in its current leader epoch.
    pub fn mark(&self, shard: &Shard, p: i32) {
        let epoch = leader_epoch(shard, self.topic, p);
        self.loaded.borrow_mut().insert(p, epoch);
    }

    /// Notes that partition `p`'s state was dropped.
    pub fn forget(&self, p: i32) {
        self.loaded.borrow_mut().remove(&p);
    }

    /// Whether partition `p`'s state is loaded in its current leader epoch.
    fn is_current(&self, shard: &Shard, p: i32) -> bool {
        self.loaded.borrow().get(&p) == Some(&leader_epoch(shard, self.topic, p))
    }

    /// The partitions this shard leads now and has not loaded in their current epoch, and
    /// those loaded that it no longer leads in that epoch (a partition can be in both: drop,
    /// then load again).
    pub fn changes(&self, shard: &Shard) -> (Vec<i32>, Vec<i32>) {
        let led = led_partitions(shard, self.topic);
        let loaded = self.loaded.borrow();
        let gained = led
            .iter()
            .filter(|(p, epoch)| loaded.get(p) != Some(epoch))
            .map(|(p, _)| *p)
            .collect();
        let lost = loaded
            .iter()
            .filter(|(p, epoch)| led.get(p) != Some(epoch))
            .map(|(p, _)| *p)
            .collect();
        (gained, lost)
    }
}

/// The partitions of `topic` this shard leads, with their leader epochs, by its own copy of
/// the metadata.
fn led_partitions(shard: &Shard, topic: &str) -> BTreeMap<i32, i32> {
    shard.topic(topic).map_or_else(BTreeMap::new, |meta| {
        meta.partitions
            .iter()
            .enumerate()
            .filter(|(_, owner)| **owner == shard.core)
            .map(|(p, _)| {
                let epoch = meta.leadership.get(p).map_or(0, |l| l.leader_epoch);
                (p as i32, epoch)
            })
            .collect()
    })
}

/// The leader epoch of partition `p` of `topic` by this shard's metadata; 0 on a single node.
pub fn leader_epoch(shard: &Shard, topic: &str, p: i32) -> i32 {
    shard
        .topic(topic)
        .and_then(|meta| meta.leadership.get(p as usize).map(|l| l.leader_epoch))
        .unwrap_or(0)
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
    if shard.config.cluster.is_some() && !loaded.is_current(shard, p) {
        return Err(ResponseError::CoordinatorLoadInProgress);
    }
    Ok(())
}

/// One look at leadership for one coordinator (cluster mode; the housekeeping loop calls it):
/// drops the state of partitions this shard no longer leads (`unload` says how many ids went)
/// and loads the ones it leads now (`load` says how many records it replayed). A failed load
/// is retried at the next look; its ids stay COORDINATOR_LOAD_IN_PROGRESS meanwhile.
pub async fn follow<E: std::fmt::Display>(
    shard: &Shard,
    loaded: &LoadedPartitions,
    what: &str,
    unload: impl Fn(i32) -> usize,
    load: impl AsyncFn(i32) -> Result<usize, E>,
) {
    if shard.config.cluster.is_none() {
        return;
    }
    let (gained, lost) = loaded.changes(shard);
    for p in lost {
        let dropped = unload(p);
        loaded.forget(p);
        tracing::info!(
            core = shard.core,
            partition = p,
            dropped,
            "{what} moved to another coordinator"
        );
    }
    for p in gained {
        match load(p).await {
            Ok(records) => {
                loaded.mark(shard, p);
                if records > 0 {
                    tracing::info!(
                        core = shard.core,
                        partition = p,
                        records,
                        "{what} loaded after a leader change"
                    );
                }
            }
            Err(e) => {
                tracing::warn!(core = shard.core, partition = p, error = %e, "loading {what} failed; retrying");
            }
        }
    }
}
