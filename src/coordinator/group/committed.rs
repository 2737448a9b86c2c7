//! The committed offsets of one group as plain data: one offset with its metadata, and the
//! group's offsets by topic and partition, with their `__consumer_offsets` value form. Held
//! by each [`Group`](super::state::Group) on the shard that owns the group's
//! `__consumer_offsets` partition; the rules for changing them are in `offsets`.

use std::collections::BTreeMap;

use super::records::OffsetCommitValue;

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    pub offset: i64,
    /// -1 when the client did not send one.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
    /// Only for commits that carried a retention time (OffsetCommit v2-v4); newer commits
    /// expire by the group rule instead.
    pub expire_timestamp_ms: Option<i64>,
}

impl OffsetAndMetadata {
    pub fn to_value(&self) -> OffsetCommitValue {
        OffsetCommitValue {
            offset: self.offset,
            leader_epoch: self.leader_epoch,
            metadata: self.metadata.clone(),
            commit_timestamp: self.commit_timestamp_ms,
            expire_timestamp: self.expire_timestamp_ms,
        }
    }

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
    pub fn get(&self, topic: &str, partition: i32) -> Option<&OffsetAndMetadata> {
        self.topics.get(topic)?.get(&partition)
    }

    pub fn insert(&mut self, topic: &str, partition: i32, offset: OffsetAndMetadata) {
        self.topics
            .entry(topic.to_owned())
            .or_default()
            .insert(partition, offset);
    }

    pub fn remove(&mut self, topic: &str, partition: i32) -> Option<OffsetAndMetadata> {
        let partitions = self.topics.get_mut(topic)?;
        let removed = partitions.remove(&partition);
        if partitions.is_empty() {
            self.topics.remove(topic);
        }
        removed
    }

    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

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
