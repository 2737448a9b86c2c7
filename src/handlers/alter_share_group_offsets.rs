//! AlterShareGroupOffsets (key 91, KIP-932): sets an empty share group's start offset of
//! partitions; the records in flight there are forgotten and the group reads from the new
//! offset. Answered by the group's coordinator shard; each partition is reset by the shard
//! that leads it.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_share_group_offsets_response::{
    AlterShareGroupOffsetsResponsePartition as PartitionOut,
    AlterShareGroupOffsetsResponseTopic as TopicOut,
};
use kafka_protocol::messages::{AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse};

use crate::acl::{Operation, ResourceType, enforce};
use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::shard::Shard;
use crate::shard::share_offsets;

/// Versions served: v0, as Kafka 4.1.
pub const VERSIONS: (i16, i16) = (0, 0);

/// NON_EMPTY_GROUP while the group has members; otherwise one result per partition.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: AlterShareGroupOffsetsRequest,
) -> AlterShareGroupOffsetsResponse {
    let group = request.group_id.0.as_str();
    let mut response = AlterShareGroupOffsetsResponse::default();
    let checked = enforce::group(shard, ctx, Operation::Read, group)
        .and_then(|()| share_offsets::check_group(shard, group, true));
    if let Err(e) = checked {
        response.error_code = e.code();
        response.error_message = Some(str_bytes(e.to_string()));
        return response;
    }
    for topic in &request.topics {
        let name = topic.topic_name.0.as_str();
        let meta = shard.topic(name);
        let mut out = TopicOut::default();
        out.topic_name = topic.topic_name.clone();
        out.topic_id = meta.as_ref().map(|m| m.id).unwrap_or_default();
        for p in &topic.partitions {
            let result = match &meta {
                None => Err(ResponseError::UnknownTopicOrPartition),
                Some(_)
                    if !enforce::allowed(
                        shard,
                        ctx,
                        Operation::Read,
                        ResourceType::Topic,
                        name,
                    ) =>
                {
                    Err(ResponseError::TopicAuthorizationFailed)
                }
                Some(_) if p.start_offset < 0 => Err(ResponseError::InvalidRequest),
                Some(meta) => {
                    share_offsets::reset(
                        shard,
                        group,
                        meta,
                        p.partition_index,
                        Some(p.start_offset),
                    )
                    .await
                }
            };
            let mut answered = PartitionOut::default();
            answered.partition_index = p.partition_index;
            if let Err(e) = result {
                answered.error_code = e.code();
                answered.error_message = Some(str_bytes(e.to_string()));
            }
            out.partitions.push(answered);
        }
        response.responses.push(out);
    }
    response
}
