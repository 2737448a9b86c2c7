//! OffsetDelete (key 47): deletes committed offsets of partitions the group no longer
//! consumes, tombstoning them in `__consumer_offsets` before answering. As in Kafka, the group
//! needs DELETE and each topic READ; a topic without READ is answered
//! TOPIC_AUTHORIZATION_FAILED and its offsets stay.

use std::rc::Rc;

use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use crate::acl::{Operation, enforce};
use crate::coordinator::group::offsets::{TopicErrors, TopicPartitions};
use crate::coordinator::group::wire;
use crate::handlers::request::RequestContext;
use crate::shard::{Shard, groups};
use kafka_protocol::ResponseError;

/// The only version the protocol crate has.
pub const VERSIONS: (i16, i16) = (0, 0);

/// Per partition, deleted (tombstoned before the answer) or the error code; a group-level error
/// when this shard does not coordinate the group or the deletion fails.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let (group_id, topics) = wire::offset_delete_request(&request);
    if let Err(e) = enforce::group(shard, ctx, Operation::Delete, &group_id)
        .and_then(|()| groups::check_coordinator(shard, &group_id))
    {
        return wire::offset_delete_response(&Err(e));
    }
    let (readable, refused): (Vec<TopicPartitions>, Vec<TopicPartitions>) = topics
        .into_iter()
        .partition(|t| enforce::topic(shard, ctx, Operation::Read, &t.name).is_ok());
    let (result, effects) = shard
        .groups
        .call(|c| c.delete_offsets(&group_id, &readable));
    let result = match groups::apply(shard, effects).await {
        Ok(()) => result,
        Err(e) => Err(e),
    };
    let result = result.map(|mut answered| {
        answered.extend(refused.into_iter().map(|t| {
            TopicErrors {
                partitions: t
                    .partitions
                    .iter()
                    .map(|&p| (p, Some(ResponseError::TopicAuthorizationFailed)))
                    .collect(),
                name: t.name,
            }
        }));
        answered
    });
    wire::offset_delete_response(&result)
}
