//! The committed offsets of one group as plain data: one offset with its metadata, and the
//! group's offsets by topic and partition, with their `__consumer_offsets` value form. Held
//! by each [`Group`](super::state::Group) on the shard that owns the group's
//! `__consumer_offsets` partition; the rules for changing them are in `offsets`.

use std::collections::BTreeMap;

use super::records::OffsetCommitValue;

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    /// The committed offset as the client sent it; by Kafka's convention the next offset the
    /// group will consume, not the last one it processed.
    pub offset: i64,
    /// -1 when the client did not send one.
    pub leader_epoch: i32,
    /// Client string stored with the offset; empty when none was sent. At most
    /// `offset.metadata.max.bytes`, checked at commit.
    pub metadata: String,
    /// When the coordinator accepted the commit (the call's `now_ms`, ms since the Unix epoch);
    /// per-offset retention counts from it.
    pub commit_timestamp_ms: i64,
    /// Only for commits that carried a retention time (OffsetCommit v2-v4); newer commits
    /// expire by the group rule instead.
    pub expire_timestamp_ms: Option<i64>,
}

impl OffsetAndMetadata {
    /// The `__consumer_offsets` value this offset is persisted as (value v1 when
    /// `expire_timestamp_ms` is set, else v3).
    pub fn to_value(&self) -> OffsetCommitValue {
        OffsetCommitValue {
            offset: self.offset,
            leader_epoch: self.leader_epoch,
            metadata: self.metadata.clone(),
            commit_timestamp: self.commit_timestamp_ms,
            expire_timestamp: self.expire_timestamp_ms,
        }
    }

    /// Rebuilds the offset from a `__consumer_offsets` value read back at replay.
    pub fn from_value(value: &OffsetCommitValue) -> Self {
        Self {
            offset: value.offset,
            leader_epoch: value.leader_epoch,
            metadata: value.metadata.clone(),
            commit_timestamp_ms: value.commit_timestamp,
            expire_timestamp_ms: value.expire_timestamp,
        }
    }
}

/// The committed offsets of one group, by topic then partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupOffsets {
    topics: BTreeMap<String, BTreeMap<i32, OffsetAndMetadata>>,
}

impl GroupOffsets {
    /// The offset committed for `topic`/`partition`; `None` when nothing is committed.
    pub fn get(&self, topic: &str, partition: i32) -> Option<&OffsetAndMetadata> {
        self.topics.get(topic)?.get(&partition)
    }

    /// Stores a commit for `topic`/`partition`, replacing any earlier one.
    pub fn insert(&mut self, topic: &str, partition: i32, offset: OffsetAndMetadata) {
        self.topics
            .entry(topic.to_owned())
            .or_default()
            .insert(partition, offset);
    }

    /// Drops the offset of `topic`/`partition` and returns it; a topic left without partitions
    /// is dropped too.
    pub fn remove(&mut self, topic: &str, partition: i32) -> Option<OffsetAndMetadata> {
        let partitions = self.topics.get_mut(topic)?;
        let removed = partitions.remove(&partition);
        if partitions.is_empty() {
            self.topics.remove(topic);
        }
        removed
    }

    /// True when the group has no committed offset at all.
    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

    /// Number of committed (topic, partition) offsets over all topics.
    pub fn len(&self) -> usize {
        self.topics.values().map(BTreeMap::len).sum()
    }

    /// Every committed offset as (topic, partition, offset), ordered.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i32, &OffsetAndMetadata)> {
        self.topics
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |(p, o)| (t.as_str(), *p, o)))
    }
}
