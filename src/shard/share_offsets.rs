//! A share group's start offsets, as the admin APIs see them: DescribeShareGroupOffsets reads
//! the stored states (the durable truth: every acknowledgement is stored before it is
//! answered), AlterShareGroupOffsets and DeleteShareGroupOffsets replace or delete them in
//! `__share_group_state` with a new state epoch, which fences writes of the state loaded
//! before, and drop the state a shard of this node holds in memory so the next ShareFetch
//! loads the new one. (A leader on another node finds out at its next write, which is
//! fenced and drops its state.)
//!
//! Runs on the coordinator's shard; the states are reached through `shard::share_state`,
//! the drop through the mailbox when another core leads the partition.

use kafka_protocol::ResponseError;

use crate::metadata::{NOT_ON_THIS_NODE, TopicMeta};
use crate::shard::Shard;
use crate::shard::share_state;
use crate::share::partition_state::Snapshot;
use crate::share::state_record::{StateKey, StoredState};

fn key_of(group: &str, meta: &TopicMeta, partition: i32) -> StateKey {
    StateKey {
        group: group.to_owned(),
        topic_id: meta.id,
        partition,
    }
}

/// The group's start offset of `meta`'s `partition`: `None` when the group never read it.
pub async fn start_offset(
    shard: &Shard,
    group: &str,
    meta: &TopicMeta,
    partition: i32,
) -> Result<Option<i64>, ResponseError> {
    let stored = share_state::read(shard, key_of(group, meta, partition), -1).await?;
    Ok(stored.map(|s| s.snapshot.start))
}

/// Sets the group's start offset of `partition` (`Some`, AlterShareGroupOffsets) or deletes
/// its state (`None`, DeleteShareGroupOffsets).
pub async fn reset(
    shard: &Shard,
    group: &str,
    meta: &TopicMeta,
    partition: i32,
    start: Option<i64>,
) -> Result<(), ResponseError> {
    let index = usize::try_from(partition).map_err(|_| ResponseError::UnknownTopicOrPartition)?;
    let core = *meta
        .partitions
        .get(index)
        .ok_or(ResponseError::UnknownTopicOrPartition)?;
    forget_in_memory(shard, group, meta, partition, core).await?;
    let key = key_of(group, meta, partition);
    let old = share_state::read(shard, key.clone(), -1).await?;
    let value = start.map(|start| StoredState {
        state_epoch: old.as_ref().map_or(0, |o| o.state_epoch.saturating_add(1)),
        leader_epoch: old.as_ref().map_or(-1, |o| o.leader_epoch),
        snapshot: Snapshot {
            start,
            ranges: Vec::new(),
        },
    });
    share_state::write(shard, key, value).await
}

/// Drops the state the partition's shard holds in memory, when that shard is on this node.
async fn forget_in_memory(
    shard: &Shard,
    group: &str,
    meta: &TopicMeta,
    partition: i32,
    core: usize,
) -> Result<(), ResponseError> {
    if core == shard.core {
        shard.shares.forget(group, (meta.id, partition));
        return Ok(());
    }
    if core == NOT_ON_THIS_NODE {
        return Ok(());
    }
    let mailbox = shard
        .mailbox
        .get()
        .ok_or(ResponseError::CoordinatorNotAvailable)?;
    let request = crate::shard::txns::ShardRequest::ShareForget {
        group: group.to_owned(),
        topic_id: meta.id,
        partition,
    };
    match mailbox.ask(core, request).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(code)) => {
            Err(ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError))
        }
        Err(_) => Err(ResponseError::CoordinatorNotAvailable),
    }
}

/// The admin APIs' checks on a group: coordinated here, a share group (or one only state
/// states know of, after a restart), and without members when `must_be_empty`.
pub fn check_group(shard: &Shard, group: &str, must_be_empty: bool) -> Result<(), ResponseError> {
    crate::shard::groups::check_coordinator(shard, group)?;
    shard.groups.read(|c| {
        if c.group(group).is_some() {
            return Err(ResponseError::GroupIdNotFound);
        }
        match c.share_group(group) {
            Some(g) if must_be_empty && !g.members.is_empty() => Err(ResponseError::NonEmptyGroup),
            _ => Ok(()),
        }
    })
}

/// Deletes every stored state of `group` (DeleteGroups of a share group, also one only its
/// stored states still know of after a restart). Returns whether there was any.
pub async fn delete_group_state(shard: &Shard, group: &str) -> Result<bool, ResponseError> {
    let mut found = false;
    let topics: Vec<_> = shard
        .topics()
        .by_name
        .values()
        .filter(|t| !t.internal)
        .cloned()
        .collect();
    for meta in topics {
        for index in 0..i32::try_from(meta.partitions.len()).unwrap_or(i32::MAX) {
            let exists = start_offset(shard, group, &meta, index).await?.is_some();
            if exists {
                found = true;
                reset(shard, group, &meta, index, None).await?;
            }
        }
    }
    Ok(found)
}
