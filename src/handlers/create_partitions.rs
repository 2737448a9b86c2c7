//! CreatePartitions (key 37): grows a topic to a larger partition count; new partitions go to
//! the least-loaded shards.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use crate::acl::{Operation, ResourceType, enforce};
use crate::handlers::create_topics::manual_placement;
use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::shard::Shard;

/// Versions served: every version the protocol crate has.
pub const VERSIONS: (i16, i16) = (0, 3);

type Refusal = (ResponseError, String);

/// The shards named by a manual assignment of the new partitions, if one was given.
fn new_partition_placement(
    shard: &Shard,
    topic: &CreatePartitionsTopic,
) -> Result<Option<Vec<usize>>, Refusal> {
    let Some(assignments) = topic.assignments.as_ref().filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let refused = |message: String| (ResponseError::InvalidReplicaAssignment, message);
    let placement = manual_placement(shard, assignments.iter().map(|a| a.broker_ids.as_slice()))
        .ok_or_else(|| {
            refused(
                "each new partition needs exactly one replica, on a broker (shard) of this node"
                    .into(),
            )
        })?;
    let existing = shard
        .cluster
        .topic(&topic.name.0)
        .map_or(0, |t| t.partitions.len() as i32);
    if placement.len() as i32 != topic.count - existing {
        return Err(refused(format!(
            "{} assignments given for {} new partitions",
            placement.len(),
            topic.count - existing
        )));
    }
    Ok(Some(placement))
}

/// One result per topic, in request order: grown to `count` partitions (or only checked, with
/// `validate_only`), or the error code and message saying why not.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut response = CreatePartitionsResponse::default();
    for topic in request.topics {
        let mut result = CreatePartitionsTopicResult::default();
        result.name = topic.name.clone();
        let outcome = if !enforce::allowed(
            shard,
            ctx,
            Operation::Alter,
            ResourceType::Topic,
            &topic.name.0,
        ) {
            Err((
                ResponseError::TopicAuthorizationFailed,
                "Authorization failed.".to_string(),
            ))
        } else if shard.cluster.is_clustered() {
            grow_in_cluster(shard, &topic, request.validate_only).await
        } else {
            grow_locally(shard, &topic, request.validate_only)
        };
        if let Err((code, message)) = outcome {
            result.error_code = code.code();
            result.error_message = Some(str_bytes(message));
        }
        response.results.push(result);
    }
    response
}

/// Cluster mode: the new partitions placed like the topic's others (or by the manual
/// assignment's broker ids), committed through the controller quorum.
async fn grow_in_cluster(
    shard: &Shard,
    topic: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), Refusal> {
    let assignment = topic
        .assignments
        .as_ref()
        .filter(|a| !a.is_empty())
        .map(|a| {
            a.iter()
                .map(|one| one.broker_ids.iter().map(|b| b.0).collect())
                .collect()
        });
    shard
        .cluster
        .propose_add_partitions(&topic.name.0, topic.count, assignment, validate_only)
        .await
        .map_err(|e| (e.kafka_error(), e.to_string()))
}

fn grow_locally(
    shard: &Shard,
    topic: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), Refusal> {
    new_partition_placement(shard, topic).and_then(|placement| {
        shard
            .cluster
            .add_partitions_placed(&topic.name.0, topic.count, placement, validate_only)
            .map(|_| ())
            .map_err(|e| (e.kafka_error(), e.to_string()))
    })
}
