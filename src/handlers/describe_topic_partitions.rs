//! DescribeTopicPartitions (key 75): Metadata's topic and partition description, paginated by
//! a cursor and a partition limit (KIP-966), which newer admin clients use to describe topics.
//! Single node: replicas = ISR = the owning shard; no eligible leader replicas.

use std::rc::Rc;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse,
};

use crate::acl::{Operation, ResourceType, enforce};
use crate::handlers::request::RequestContext;
use crate::handlers::topic_name;
use crate::metadata::TopicMeta;
use crate::shard::Shard;

/// The only version the protocol crate has.
pub const VERSIONS: (i16, i16) = (0, 0);

/// Kafka's default page size when the client asks for more.
const MAX_PARTITIONS_PER_RESPONSE: i32 = 2000;

/// The asked topics (all when none are named) in name order from the cursor on, at most
/// `response_partition_limit` partitions (clamped to 1..=2000), and the cursor to continue from.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    // An empty list asks for every topic, in name order, as the cursor needs.
    let mut names: Vec<String> = if request.topics.is_empty() {
        shard
            .cluster
            .topics()
            .iter()
            .map(|t| t.name.clone())
            .collect()
    } else {
        request
            .topics
            .iter()
            .map(|t| t.name.0.to_string())
            .collect()
    };
    names.sort();
    names.dedup();
    // As in Kafka: a listing leaves out topics the principal may not DESCRIBE; a named one
    // gets TOPIC_AUTHORIZATION_FAILED.
    let listing = request.topics.is_empty();
    let may_describe =
        |name: &str| enforce::allowed(shard, ctx, Operation::Describe, ResourceType::Topic, name);
    if listing {
        names.retain(|n| may_describe(n));
    }
    let (start_topic, start_partition) = match &request.cursor {
        Some(c) => (c.topic_name.0.to_string(), c.partition_index),
        None => (String::new(), 0),
    };
    let mut budget = request
        .response_partition_limit
        .clamp(1, MAX_PARTITIONS_PER_RESPONSE);
    let mut response = DescribeTopicPartitionsResponse::default();
    for name in names.into_iter().filter(|n| *n >= start_topic) {
        let first = if name == start_topic {
            start_partition
        } else {
            0
        };
        if !may_describe(&name) {
            let mut denied = unknown_topic(&name);
            denied.error_code = ResponseError::TopicAuthorizationFailed.code();
            response.topics.push(denied);
            continue;
        }
        let Some(meta) = shard.cluster.topic(&name) else {
            response.topics.push(unknown_topic(&name));
            continue;
        };
        let (mut topic, next) = describe(shard, &meta, first, &mut budget);
        topic.topic_authorized_operations =
            enforce::authorized_operations(shard, ctx, ResourceType::Topic, &name);
        response.topics.push(topic);
        if let Some(partition_index) = next {
            let mut cursor = Cursor::default();
            cursor.topic_name = topic_name(&name);
            cursor.partition_index = partition_index;
            response.next_cursor = Some(cursor);
            break;
        }
    }
    response
}

fn unknown_topic(name: &str) -> DescribeTopicPartitionsResponseTopic {
    let mut t = DescribeTopicPartitionsResponseTopic::default();
    t.error_code = ResponseError::UnknownTopicOrPartition.code();
    t.name = Some(topic_name(name));
    t.topic_authorized_operations = i32::MIN;
    t
}

/// Describes partitions from `first` while the budget lasts; returns where to continue.
fn describe(
    shard: &Shard,
    meta: &Arc<TopicMeta>,
    first: i32,
    budget: &mut i32,
) -> (DescribeTopicPartitionsResponseTopic, Option<i32>) {
    let mut t = DescribeTopicPartitionsResponseTopic::default();
    t.name = Some(topic_name(&meta.name));
    t.topic_id = meta.id;
    t.is_internal = meta.internal;
    t.topic_authorized_operations = i32::MIN;
    for index in (0..meta.partitions.len()).skip(first.max(0) as usize) {
        if *budget == 0 {
            return (t, Some(index as i32));
        }
        *budget -= 1;
        let Some(l) = meta.leadership_at(index, |core| shard.config.broker_id(core)) else {
            continue;
        };
        let mut p = DescribeTopicPartitionsResponsePartition::default();
        p.partition_index = index as i32;
        p.leader_id = BrokerId(l.leader);
        p.leader_epoch = l.leader_epoch;
        p.replica_nodes = l.replicas.into_iter().map(BrokerId).collect();
        p.isr_nodes = l.isr.into_iter().map(BrokerId).collect();
        p.eligible_leader_replicas = Some(Vec::new());
        p.last_known_elr = Some(Vec::new());
        t.partitions.push(p);
    }
    (t, None)
}
