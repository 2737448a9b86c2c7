//! Committed offsets of a group: OffsetCommit validation against the group's generation and
//! members, OffsetFetch, OffsetDelete, and expiry per `offsets.retention.minutes`.
//!
//! Runs on the shard that owns the group's `__consumer_offsets` partition. Every change comes
//! back with the records (commits or tombstones) that the caller must append to that partition
//! before it answers, so committed offsets survive a restart.

use kafka_protocol::ResponseError;

use super::committed::{GroupOffsets, OffsetAndMetadata};
use super::consumer::ConsumerGroup;
use super::consumer_protocol;
use super::records::{self, Record};
use super::state::{Group, GroupState};

/// One partition of an OffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitPartition {
    /// Partition index in the topic.
    pub partition: i32,
    /// Offset to commit; by Kafka's convention the next one the consumer will read.
    pub offset: i64,
    /// -1 when absent.
    pub leader_epoch: i32,
    /// Client string to store with the offset; `None` (null on the wire) stores an empty one.
    pub metadata: Option<String>,
}

/// One topic of an OffsetCommit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitTopic {
    /// Topic name as the client sent it.
    pub name: String,
    /// Partitions of the topic to commit; each succeeds or fails on its own.
    pub partitions: Vec<CommitPartition>,
}

/// An OffsetCommit request, normalised across versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommit {
    /// -1 for commits made outside group management (`assign()` users, admin tools).
    pub generation_id: i32,
    /// Empty outside group management.
    pub member_id: String,
    /// `group.instance.id` of a static member (v7+); a stale instance gets FENCED_INSTANCE_ID.
    pub group_instance_id: Option<String>,
    /// v2-v4 only; -1 means "use the broker's retention".
    pub retention_time_ms: i64,
    /// What to commit, by topic; the response answers every partition.
    pub topics: Vec<CommitTopic>,
}

/// Topics and partitions named by OffsetFetch and OffsetDelete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitions {
    /// Topic name as the client sent it.
    pub name: String,
    /// Partition indexes of the topic.
    pub partitions: Vec<i32>,
}

/// Per-partition errors of OffsetCommit and OffsetDelete (`None` = success).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicErrors {
    /// Topic name, as in the request.
    pub name: String,
    /// (partition, error) pairs in request order.
    pub partitions: Vec<(i32, Option<ResponseError>)>,
}

/// One partition of an OffsetFetch answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedPartition {
    /// Partition index in the topic.
    pub partition: i32,
    /// -1 when nothing is committed.
    pub offset: i64,
    /// Leader epoch stored with the commit; -1 when unknown or nothing is committed.
    pub leader_epoch: i32,
    /// Metadata stored with the commit; empty when nothing is committed.
    pub metadata: String,
    /// Per-partition error (`None` = success); the coordinator currently never sets one.
    pub error: Option<ResponseError>,
}

/// One topic of an OffsetFetch answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedTopic {
    /// Topic name, as requested (or as committed when every offset was asked for).
    pub name: String,
    /// The requested partitions, or every committed partition of the topic.
    pub partitions: Vec<FetchedPartition>,
}

/// Kafka's rule for who may commit: a commit outside group management (generation < 0) is
/// accepted while the group is empty, whatever member id it carries (librdkafka's
/// consumer-protocol client sends the member id it made up at start even when it only
/// `assign()`s, as Kafka's `ClassicGroup.validateOffsetCommit` allows); otherwise a request
/// that names a member or generation must match the current ones, and an anonymous one is
/// refused while the group has members.
pub fn validate_commit(
    group: &Group,
    generation_id: i32,
    member_id: &str,
    group_instance_id: Option<&str>,
) -> Result<(), ResponseError> {
    if group.state() == GroupState::Dead {
        return Err(ResponseError::CoordinatorNotAvailable);
    }
    if let Some(consumer) = group.consumer() {
        return validate_consumer_commit(consumer, generation_id, member_id);
    }
    if generation_id < 0 && group.state() == GroupState::Empty {
        return Ok(());
    }
    let names_member = generation_id >= 0 || !member_id.is_empty() || group_instance_id.is_some();
    if names_member {
        if group.is_static_member_fenced(group_instance_id, member_id) {
            return Err(ResponseError::FencedInstanceId);
        }
        if !group.has_member(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation_id != group.generation_id() {
            return Err(ResponseError::IllegalGeneration);
        }
        return Ok(());
    }
    if group.state() != GroupState::Empty {
        return Err(ResponseError::UnknownMemberId);
    }
    Ok(())
}

/// KIP-848's rule (Kafka's `ConsumerGroup.validateOffsetCommit`): a commit with a negative
/// epoch (admin client, or a consumer that only `assign()`s, whatever member id it sends) is
/// accepted while the group has no members; otherwise the member must exist
/// (UNKNOWN_MEMBER_ID) and commit with its current member epoch (STALE_MEMBER_EPOCH).
fn validate_consumer_commit(
    consumer: &ConsumerGroup,
    member_epoch: i32,
    member_id: &str,
) -> Result<(), ResponseError> {
    if member_epoch < 0 && consumer.member_count() == 0 {
        return Ok(());
    }
    let member = consumer
        .member(member_id)
        .ok_or(ResponseError::UnknownMemberId)?;
    if member_epoch != member.member_epoch {
        return Err(ResponseError::StaleMemberEpoch);
    }
    Ok(())
}

/// Handles an OffsetCommit for an existing group. Returns per-partition errors and the records
/// to append before answering.
pub fn commit(
    group: &mut Group,
    req: &OffsetCommit,
    now_ms: i64,
    metadata_max_bytes: usize,
) -> (Vec<TopicErrors>, Vec<Record>) {
    let verdict = validate_commit(
        group,
        req.generation_id,
        &req.member_id,
        req.group_instance_id.as_deref(),
    )
    .and_then(|()| match group.state() {
        GroupState::Empty => Ok(()),
        // Commits are still allowed while preparing: the member learns about the rebalance
        // from its next heartbeat, and its progress should not be lost meanwhile.
        GroupState::Stable | GroupState::PreparingRebalance => {
            group.touch_member(&req.member_id, now_ms);
            Ok(())
        }
        // The member has its new generation but no assignment yet; it must not commit for
        // partitions it may be about to lose.
        GroupState::CompletingRebalance => Err(ResponseError::RebalanceInProgress),
        GroupState::Dead => Err(ResponseError::CoordinatorNotAvailable),
    });
    if let Err(error) = verdict {
        return (uniform_errors(&req.topics, error), Vec::new());
    }
    let expire_timestamp_ms = (req.retention_time_ms >= 0).then(|| now_ms + req.retention_time_ms);
    let mut results = Vec::with_capacity(req.topics.len());
    let mut out = Vec::new();
    for topic in &req.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let metadata = p.metadata.clone().unwrap_or_default();
            if metadata.len() > metadata_max_bytes {
                partitions.push((p.partition, Some(ResponseError::OffsetMetadataTooLarge)));
                continue;
            }
            let offset = OffsetAndMetadata {
                offset: p.offset,
                leader_epoch: p.leader_epoch,
                metadata,
                commit_timestamp_ms: now_ms,
                expire_timestamp_ms,
            };
            out.push(records::offset_commit_record(
                group.group_id(),
                &topic.name,
                p.partition,
                &offset.to_value(),
            ));
            group.offsets_mut().insert(&topic.name, p.partition, offset);
            partitions.push((p.partition, None));
        }
        results.push(TopicErrors {
            name: topic.name.clone(),
            partitions,
        });
    }
    (results, out)
}

/// The same error for every partition of a commit.
pub fn uniform_errors(topics: &[CommitTopic], error: ResponseError) -> Vec<TopicErrors> {
    topics
        .iter()
        .map(|t| TopicErrors {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| (p.partition, Some(error)))
                .collect(),
        })
        .collect()
}

/// Handles an OffsetFetch. `topics == None` asks for every committed offset; partitions with
/// nothing committed answer offset -1 and empty metadata, as Kafka does. A missing group is
/// simply a group with no offsets.
pub fn fetch(group: Option<&Group>, topics: Option<&[TopicPartitions]>) -> Vec<FetchedTopic> {
    let offsets = group.map(Group::offsets);
    match topics {
        Some(topics) => topics
            .iter()
            .map(|t| FetchedTopic {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|&p| fetched(p, offsets.and_then(|o| o.get(&t.name, p))))
                    .collect(),
            })
            .collect(),
        None => all_offsets(offsets),
    }
}

fn all_offsets(offsets: Option<&GroupOffsets>) -> Vec<FetchedTopic> {
    let mut topics: Vec<FetchedTopic> = Vec::new();
    for (topic, partition, offset) in offsets.into_iter().flat_map(GroupOffsets::iter) {
        if topics.last().is_none_or(|t| t.name != topic) {
            topics.push(FetchedTopic {
                name: topic.to_owned(),
                partitions: Vec::new(),
            });
        }
        if let Some(last) = topics.last_mut() {
            last.partitions.push(fetched(partition, Some(offset)));
        }
    }
    topics
}

fn fetched(partition: i32, offset: Option<&OffsetAndMetadata>) -> FetchedPartition {
    match offset {
        Some(o) => FetchedPartition {
            partition,
            offset: o.offset,
            leader_epoch: o.leader_epoch,
            metadata: o.metadata.clone(),
            error: None,
        },
        None => FetchedPartition {
            partition,
            offset: -1,
            leader_epoch: -1,
            metadata: String::new(),
            error: None,
        },
    }
}

/// Handles an OffsetDelete. An Empty group loses any offsets; a consumer group with members
/// keeps the offsets of topics it subscribes to (GROUP_SUBSCRIBED_TO_TOPIC); other groups with
/// members refuse (NON_EMPTY_GROUP).
pub fn delete(
    group: &mut Group,
    topics: &[TopicPartitions],
) -> Result<(Vec<TopicErrors>, Vec<Record>), ResponseError> {
    let check_subscriptions = match group.state() {
        GroupState::Dead => return Err(ResponseError::GroupIdNotFound),
        _ if group.consumer().is_some() => group.has_members(),
        GroupState::Empty => false,
        _ if group.protocol_type() == Some(consumer_protocol::PROTOCOL_TYPE) => true,
        _ => return Err(ResponseError::NonEmptyGroup),
    };
    let mut results = Vec::with_capacity(topics.len());
    let mut out = Vec::new();
    for topic in topics {
        let protected = check_subscriptions && group.is_subscribed_to(&topic.name);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for &p in &topic.partitions {
            if protected {
                partitions.push((p, Some(ResponseError::GroupSubscribedToTopic)));
                continue;
            }
            if group.offsets_mut().remove(&topic.name, p).is_some() {
                out.push(records::offset_tombstone(group.group_id(), &topic.name, p));
            }
            partitions.push((p, None));
        }
        results.push(TopicErrors {
            name: topic.name.clone(),
            partitions,
        });
    }
    Ok((results, out))
}

/// Removes offsets past `offsets.retention.minutes` (KIP-211) and returns their tombstones:
/// - a group with a protocol type that is Empty: all offsets, once the group has been Empty
///   for the retention period;
/// - a Stable consumer group whose subscriptions are known: offsets of topics it no longer
///   subscribes to, once their last commit is that old;
/// - a group without protocol type (commits only): each offset once its last commit is that
///   old.
///
/// Offsets committed with an explicit retention time expire at their own expire timestamp.
pub fn expire(group: &mut Group, now_ms: i64, retention_ms: i64) -> Vec<Record> {
    let mut state_base = group.state_timestamp_ms();
    let consumer = group
        .consumer()
        .map(|c| (c.member_count() == 0, c.empty_since_ms()));
    let (use_state_time, subscribed) = match (group.protocol_type(), group.state()) {
        _ if consumer.is_some_and(|(empty, _)| empty) => {
            state_base = consumer.map_or(state_base, |(_, since)| since);
            (true, None)
        }
        _ if consumer.is_some() => match group.subscribed_topics() {
            Some(topics) => (false, Some(topics)),
            None => return Vec::new(),
        },
        (Some(_), GroupState::Empty) => (true, None),
        (Some(consumer_protocol::PROTOCOL_TYPE), GroupState::Stable) => {
            match group.subscribed_topics() {
                Some(topics) => (false, Some(topics)),
                None => return Vec::new(),
            }
        }
        (None, _) => (false, None),
        _ => return Vec::new(),
    };
    let expired: Vec<(String, i32)> = group
        .offsets()
        .iter()
        .filter(|(topic, _, _)| subscribed.as_ref().is_none_or(|s| !s.contains(*topic)))
        .filter(|(_, _, o)| match o.expire_timestamp_ms {
            Some(expire) => now_ms >= expire,
            None => {
                let base = if use_state_time {
                    state_base
                } else {
                    o.commit_timestamp_ms
                };
                now_ms - base >= retention_ms
            }
        })
        .map(|(t, p, _)| (t.to_owned(), p))
        .collect();
    let mut out = Vec::with_capacity(expired.len());
    for (topic, partition) in expired {
        group.offsets_mut().remove(&topic, partition);
        out.push(records::offset_tombstone(
            group.group_id(),
            &topic,
            partition,
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coordinator::group::config::GroupConfig;

    /// librdkafka with `group.protocol=consumer` makes up its member id at start and sends it
    /// with epoch -1 when it commits without having joined (assign(), or the legacy consumer
    /// with broker-stored offsets): accepted by an empty group of either protocol, as Kafka.
    #[test]
    fn commits_outside_group_management_may_carry_a_member_id_while_the_group_is_empty() {
        let classic = Group::new("g", GroupConfig::default(), 0);
        assert_eq!(
            validate_commit(&classic, -1, "zYx1-made-up-by-client", None),
            Ok(())
        );
        assert_eq!(validate_commit(&classic, -1, "", None), Ok(()));
        // A generation still has to match a member.
        assert_eq!(
            validate_commit(&classic, 0, "zYx1-made-up-by-client", None),
            Err(ResponseError::UnknownMemberId)
        );

        let empty = ConsumerGroup::default();
        assert_eq!(
            validate_consumer_commit(&empty, -1, "zYx1-made-up-by-client"),
            Ok(())
        );
        assert_eq!(validate_consumer_commit(&empty, -1, ""), Ok(()));
        assert_eq!(
            validate_consumer_commit(&empty, 0, "zYx1-made-up-by-client"),
            Err(ResponseError::UnknownMemberId)
        );
    }
}
