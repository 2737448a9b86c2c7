//! ListPartitionReassignments (key 46, KIP-455): the reassignments under way, each with its
//! replicas and the brokers being added and removed, read from this node's copy of the
//! quorum's metadata. Every listed partition, or every partition when the list is null;
//! partitions without a reassignment are left out, as Kafka does. A single node never has
//! one. Runs on the shard that got the request.

use std::rc::Rc;

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::handlers::topic_name;
use crate::metadata::image::{PartitionImage, TopicImage};
use crate::shard::Shard;

/// v0 is the only version (flexible).
pub const VERSIONS: (i16, i16) = (0, 0);

/// Lists the ongoing reassignments among the asked partitions.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let mut response = ListPartitionReassignmentsResponse::default();
    if !enforce::cluster_allowed(shard, ctx, Operation::Describe) {
        response.error_code = kafka_protocol::ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
    let Some(image) = shard.cluster.image() else {
        return response;
    };
    let asked: Vec<(String, Option<Vec<i32>>)> = match request.topics {
        Some(topics) => topics
            .into_iter()
            .map(|t| (t.name.0.to_string(), Some(t.partition_indexes)))
            .collect(),
        None => image.topics().map(|t| (t.name.clone(), None)).collect(),
    };
    for (name, partitions) in asked {
        let Some(topic) = image.topic(&name) else {
            continue;
        };
        let ongoing = ongoing(topic, partitions.as_deref());
        if !ongoing.is_empty() {
            let mut t = OngoingTopicReassignment::default();
            t.name = topic_name(&name);
            t.partitions = ongoing;
            response.topics.push(t);
        }
    }
    response
}

/// The reassignments under way among `partitions` of `topic` (all of them for `None`).
fn ongoing(topic: &TopicImage, partitions: Option<&[i32]>) -> Vec<OngoingPartitionReassignment> {
    let asked = |index: i32| partitions.is_none_or(|list| list.contains(&index));
    (0i32..)
        .zip(&topic.partitions)
        .filter(|(index, p)| asked(*index) && p.is_reassigning())
        .map(|(index, p)| describe(index, p))
        .collect()
}

fn describe(index: i32, p: &PartitionImage) -> OngoingPartitionReassignment {
    let ids = |list: &[i32]| list.iter().map(|&b| BrokerId(b)).collect();
    let mut out = OngoingPartitionReassignment::default();
    out.partition_index = index;
    out.replicas = ids(&p.replicas);
    out.adding_replicas = ids(&p.adding_replicas);
    out.removing_replicas = ids(&p.removing_replicas);
    out
}
