//! DescribeShareGroupOffsets (key 90, KIP-932): each share group's start offset of each
//! partition (every record below it acknowledged or archived), read from the groups' state
//! files. Without a topic list, every topic whose partitions the group has state for.
//! Answered by the group's coordinator shard.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_share_group_offsets_response::{
    DescribeShareGroupOffsetsResponseGroup as Group,
    DescribeShareGroupOffsetsResponsePartition as PartitionOut,
    DescribeShareGroupOffsetsResponseTopic as TopicOut,
};
use kafka_protocol::messages::{
    DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse, TopicName,
};

use crate::acl::{Operation, ResourceType, enforce};
use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::shard::Shard;
use crate::shard::share_offsets;

/// Versions served: v0, as Kafka 4.1.
pub const VERSIONS: (i16, i16) = (0, 0);

/// One answer per group asked.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeShareGroupOffsetsRequest,
) -> DescribeShareGroupOffsetsResponse {
    let mut response = DescribeShareGroupOffsetsResponse::default();
    for asked in &request.groups {
        let group = asked.group_id.0.as_str();
        let mut out = Group::default();
        out.group_id = asked.group_id.clone();
        let checked = enforce::group(shard, ctx, Operation::Describe, group)
            .and_then(|()| share_offsets::check_group(shard, group, false));
        if let Err(e) = checked {
            out.error_code = e.code();
            out.error_message = Some(str_bytes(e.to_string()));
            response.groups.push(out);
            continue;
        }
        let wanted: Vec<(String, Option<Vec<i32>>)> = match &asked.topics {
            Some(topics) => topics
                .iter()
                .map(|t| (t.topic_name.0.to_string(), Some(t.partitions.clone())))
                .collect(),
            None => shard
                .topics()
                .by_name
                .values()
                .filter(|t| !t.internal)
                .map(|t| (t.name.clone(), None))
                .collect(),
        };
        let listed_all = asked.topics.is_none();
        for (topic, partitions) in wanted {
            if !enforce::allowed(shard, ctx, Operation::Describe, ResourceType::Topic, &topic) {
                continue;
            }
            if let Some(t) = describe_topic(shard, group, &topic, partitions, listed_all).await {
                out.topics.push(t);
            }
        }
        response.groups.push(out);
    }
    response
}

/// One topic's start offsets; `None` when listing every topic and the group has no state
/// for this one.
async fn describe_topic(
    shard: &Shard,
    group: &str,
    topic: &str,
    partitions: Option<Vec<i32>>,
    skip_unknown: bool,
) -> Option<TopicOut> {
    let meta = shard.topic(topic);
    let mut out = TopicOut::default();
    out.topic_name = TopicName(str_bytes(topic));
    let Some(meta) = meta else {
        let mut p = PartitionOut::default();
        p.partition_index = -1;
        p.start_offset = -1;
        p.error_code = ResponseError::UnknownTopicOrPartition.code();
        out.partitions.push(p);
        return (!skip_unknown).then_some(out);
    };
    out.topic_id = meta.id;
    let indexes = partitions.unwrap_or_else(|| (0..meta.partitions.len() as i32).collect());
    for index in indexes {
        let mut p = PartitionOut::default();
        p.partition_index = index;
        p.leader_epoch = -1;
        match share_offsets::start_offset(shard, group, &meta, index).await {
            Ok(Some(start)) => p.start_offset = start,
            Ok(None) if skip_unknown => continue,
            Ok(None) => p.start_offset = -1,
            Err(e) => {
                tracing::warn!(group, topic, error = ?e, "share state unreadable");
                p.start_offset = -1;
                p.error_code = e.code();
            }
        }
        out.partitions.push(p);
    }
    (!out.partitions.is_empty()).then_some(out)
}
