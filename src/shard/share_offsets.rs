//! A share group's start offsets, as the admin APIs see them: DescribeShareGroupOffsets reads
//! the state files (the durable truth: every acknowledgement is in them before it is
//! answered), AlterShareGroupOffsets and DeleteShareGroupOffsets rewrite or remove them on
//! the shard that leads the partition, dropping the state it holds in memory so the next
//! ShareFetch starts from the file.
//!
//! Reads run on the coordinator's shard (file reads on the blocking pool); a reset runs on
//! the partition's shard, asked through the mailbox when that is another one.

use std::io;
use std::path::PathBuf;

use kafka_protocol::ResponseError;

use crate::shard::Shard;
use crate::share::partition_state::Snapshot;
use crate::share::state_file;
use crate::storage::log::partition_dir_name;

/// The state file of `group` for a partition of this node.
fn state_path(shard: &Shard, group: &str, topic: &str, partition: i32) -> PathBuf {
    let dir = shard
        .config
        .data_dir
        .join(partition_dir_name(topic, partition));
    state_file::path_in(&dir, group)
}

/// The group's start offset of `topic`'s `partition`: `None` when the group never read it.
pub async fn start_offset(
    shard: &Shard,
    group: &str,
    topic: &str,
    partition: i32,
) -> io::Result<Option<i64>> {
    let path = state_path(shard, group, topic, partition);
    Ok(state_file::load(path).await?.map(|(_, s)| s.start))
}

/// Runs on the partition's shard: sets the group's start offset of the partition (`Some`,
/// AlterShareGroupOffsets) or forgets its state (`None`, DeleteShareGroupOffsets).
pub async fn reset_local(
    shard: &Shard,
    group: &str,
    (topic, topic_id): (&str, uuid::Uuid),
    partition: i32,
    start: Option<i64>,
) -> Result<(), ResponseError> {
    let path = state_path(shard, group, topic, partition);
    let dropped = shard.shares.forget(group, (topic_id, partition));
    let storage = |e: io::Error| {
        tracing::warn!(group, topic, error = %e, "share state not reset");
        ResponseError::KafkaStorageError
    };
    let newest = state_file::load(path.clone()).await.map_err(storage)?;
    let version = newest.map_or(0, |(v, _)| v).max(dropped) + 1;
    match start {
        Some(start) => {
            let record = state_file::encode(
                version,
                &Snapshot {
                    start,
                    ranges: Vec::new(),
                },
            );
            state_file::replace(path, record).await.map_err(storage)
        }
        None => state_file::remove(path).await.map_err(storage),
    }
}

/// Sets or forgets the group's start offset of `partition` on the shard that leads it.
pub async fn reset(
    shard: &Shard,
    group: &str,
    meta: &crate::metadata::TopicMeta,
    partition: i32,
    start: Option<i64>,
) -> Result<(), ResponseError> {
    let index = usize::try_from(partition).map_err(|_| ResponseError::UnknownTopicOrPartition)?;
    let core = *meta
        .partitions
        .get(index)
        .ok_or(ResponseError::UnknownTopicOrPartition)?;
    if core == shard.core {
        return reset_local(shard, group, (&meta.name, meta.id), partition, start).await;
    }
    if core == crate::metadata::NOT_ON_THIS_NODE {
        return Err(ResponseError::NotLeaderOrFollower);
    }
    let mailbox = shard
        .mailbox
        .get()
        .ok_or(ResponseError::CoordinatorNotAvailable)?;
    let request = crate::shard::txns::ShardRequest::ShareReset {
        group: group.to_owned(),
        topic: (meta.name.clone(), meta.id),
        partition,
        start,
    };
    match mailbox.ask(core, request).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(code)) => {
            Err(ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError))
        }
        Err(_) => Err(ResponseError::CoordinatorNotAvailable),
    }
}

/// The admin APIs' checks on a group: coordinated here, a share group (or one only state
/// files know of, after a restart), and without members when `must_be_empty`.
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

/// Removes every state file of `group` on this node (DeleteGroups of a share group, also one
/// only its state files still know of after a restart). Returns whether there was any.
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
            let exists = start_offset(shard, group, &meta.name, index)
                .await
                .map_err(|_| ResponseError::KafkaStorageError)?
                .is_some();
            if exists {
                found = true;
                reset(shard, group, &meta, index, None).await?;
            }
        }
    }
    Ok(found)
}
