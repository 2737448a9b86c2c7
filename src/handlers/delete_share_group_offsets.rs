//! DeleteShareGroupOffsets (key 92, KIP-932): forgets an empty share group's state of whole
//! topics; the group starts on them again per `share.auto.offset.reset`. Answered by the
//! group's coordinator shard; each partition's state is removed by the shard that leads it.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_share_group_offsets_response::DeleteShareGroupOffsetsResponseTopic as TopicOut;
use kafka_protocol::messages::{DeleteShareGroupOffsetsRequest, DeleteShareGroupOffsetsResponse};

use crate::acl::{Operation, ResourceType, enforce};
use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::shard::Shard;
use crate::shard::share_offsets;

/// Versions served: v0, as Kafka 4.1.
pub const VERSIONS: (i16, i16) = (0, 0);

/// NON_EMPTY_GROUP while the group has members; otherwise one result per topic.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DeleteShareGroupOffsetsRequest,
) -> DeleteShareGroupOffsetsResponse {
    let group = request.group_id.0.as_str();
    let mut response = DeleteShareGroupOffsetsResponse::default();
    let checked = enforce::group(shard, ctx, Operation::Delete, group)
        .and_then(|()| share_offsets::check_group(shard, group, true));
    if let Err(e) = checked {
        response.error_code = e.code();
        response.error_message = Some(str_bytes(e.to_string()));
        return response;
    }
    for topic in &request.topics {
        let name = topic.topic_name.0.as_str();
        let mut out = TopicOut::default();
        out.topic_name = topic.topic_name.clone();
        let result = match shard.topic(name) {
            None => Err(ResponseError::UnknownTopicOrPartition),
            Some(_)
                if !enforce::allowed(shard, ctx, Operation::Read, ResourceType::Topic, name) =>
            {
                Err(ResponseError::TopicAuthorizationFailed)
            }
            Some(meta) => {
                out.topic_id = meta.id;
                let mut first_error = Ok(());
                for index in 0..meta.partitions.len() as i32 {
                    if let Err(e) = share_offsets::reset(shard, group, &meta, index, None).await {
                        first_error = first_error.and(Err(e));
                    }
                }
                first_error
            }
        };
        if let Err(e) = result {
            out.error_code = e.code();
            out.error_message = Some(str_bytes(e.to_string()));
        }
        response.responses.push(out);
    }
    response
}
