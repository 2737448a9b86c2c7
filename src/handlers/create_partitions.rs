//! CreatePartitions (key 37): grows a topic to a larger partition count; new partitions go to
//! the least-loaded shards.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use crate::handlers::str_bytes;
use crate::metadata::MetadataError;
use crate::server::dispatch::RequestContext;
use crate::shard::Shard;

pub const VERSIONS: (i16, i16) = (0, 3);

pub async fn handle(
    shard: &Rc<Shard>,
    _ctx: &RequestContext,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut response = CreatePartitionsResponse::default();
    for topic in request.topics {
        let mut result = CreatePartitionsTopicResult::default();
        result.name = topic.name.clone();
        let outcome = if topic.assignments.as_ref().is_some_and(|a| !a.is_empty()) {
            Err((
                ResponseError::InvalidReplicaAssignment,
                "manual replica assignment is not supported".to_string(),
            ))
        } else {
            shard
                .cluster
                .add_partitions(&topic.name.0, topic.count, request.validate_only)
                .map(|_| ())
                .map_err(|e| {
                    let code = match e {
                        MetadataError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
                        MetadataError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
                        _ => ResponseError::UnknownServerError,
                    };
                    (code, e.to_string())
                })
        };
        if let Err((code, message)) = outcome {
            result.error_code = code.code();
            result.error_message = Some(str_bytes(message));
        }
        response.results.push(result);
    }
    response
}
