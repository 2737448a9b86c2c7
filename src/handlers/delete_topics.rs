//! DeleteTopics (key 20): removes topics from the cluster metadata by name or id; the shards
//! that own their partitions close and delete the files on their next reconcile.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};

use crate::acl::{Operation, ResourceType, enforce};
use crate::handlers::request::RequestContext;
use crate::handlers::{str_bytes, topic_name};
use crate::shard::Shard;

/// Versions served: v1 is the oldest version the protocol crate has, v6 its newest.
pub const VERSIONS: (i16, i16) = (1, 6);

/// One result per topic named (by name, or from v6 by topic id); the internal topics are refused
/// with INVALID_TOPIC_EXCEPTION.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let mut targets: Vec<(Option<String>, uuid::Uuid)> = request
        .topic_names
        .iter()
        .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
        .collect();
    targets.extend(
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)),
    );
    let mut response = DeleteTopicsResponse::default();
    for (name, id) in targets {
        response
            .responses
            .push(delete_one(shard, ctx, name, id).await);
    }
    response
}

async fn delete_one(
    shard: &Shard,
    ctx: &RequestContext,
    name: Option<String>,
    id: uuid::Uuid,
) -> DeletableTopicResult {
    let mut result = DeletableTopicResult::default();
    result.topic_id = id;
    let resolved = match &name {
        Some(n) => Some(n.clone()),
        None => shard.cluster.topic_by_id(id).map(|t| t.name.clone()),
    };
    result.name = resolved.as_deref().map(topic_name);
    let Some(resolved) = resolved else {
        result.error_code = ResponseError::UnknownTopicId.code();
        return result;
    };
    if !enforce::allowed(
        shard,
        ctx,
        Operation::Delete,
        ResourceType::Topic,
        &resolved,
    ) {
        result.error_code = ResponseError::TopicAuthorizationFailed.code();
        return result;
    }
    if crate::handlers::is_internal_topic(&resolved) {
        // Deleting __consumer_offsets would wipe every group's committed offsets.
        result.error_code = ResponseError::InvalidTopicException.code();
        result.error_message = Some(str_bytes(format!(
            "{resolved} is an internal topic and cannot be deleted"
        )));
        return result;
    }
    let deleted = if shard.cluster.is_clustered() {
        shard.cluster.propose_delete_topic(&resolved).await
    } else {
        shard.cluster.delete_topic(&resolved)
    };
    match deleted {
        Ok(meta) => result.topic_id = meta.id,
        Err(e) => {
            result.error_code = e.kafka_error().code();
            result.error_message = Some(str_bytes(e.to_string()));
        }
    }
    result
}
