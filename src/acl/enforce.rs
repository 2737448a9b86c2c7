//! Where requests meet the authorizer: the checks handlers call, on the shard serving the
//! request, against that shard's own copy of the bindings (`Shard::acls`, retaken only when
//! the metadata changes). Without `authorizer.class.name` every check is one branch and allows.

use kafka_protocol::ResponseError;

use super::authorizer::Requester;
use super::{CLUSTER_NAME, Operation, ResourceType};
use crate::handlers::request::RequestContext;
use crate::shard::Shard;

/// The requester of `ctx`: its principal and its host without Kafka's leading `/`.
#[must_use]
pub fn requester(ctx: &RequestContext) -> Requester<'_> {
    Requester {
        principal: &ctx.principal,
        host: ctx.client_host.trim_start_matches('/'),
    }
}

/// Whether the request's principal may do `op` on `resource_type` `name`.
#[must_use]
pub fn allowed(
    shard: &Shard,
    ctx: &RequestContext,
    op: Operation,
    resource_type: ResourceType,
    name: &str,
) -> bool {
    let authorizer = &shard.config.authorizer;
    if !authorizer.enabled {
        return true;
    }
    authorizer.authorize(&shard.acls(), requester(ctx), op, resource_type, name)
}

/// Whether the request's principal may do `op` on the cluster.
#[must_use]
pub fn cluster_allowed(shard: &Shard, ctx: &RequestContext, op: Operation) -> bool {
    allowed(shard, ctx, op, ResourceType::Cluster, CLUSTER_NAME)
}

/// Kafka's authorized-operations bit field of a resource for the request's principal.
#[must_use]
pub fn authorized_operations(
    shard: &Shard,
    ctx: &RequestContext,
    resource_type: ResourceType,
    name: &str,
) -> i32 {
    shard.config.authorizer.authorized_operations(
        &shard.acls(),
        requester(ctx),
        resource_type,
        name,
    )
}

/// `Ok` if the principal may do `op` on group `id`, else GROUP_AUTHORIZATION_FAILED.
///
/// # Errors
/// GROUP_AUTHORIZATION_FAILED.
pub fn group(
    shard: &Shard,
    ctx: &RequestContext,
    op: Operation,
    id: &str,
) -> Result<(), ResponseError> {
    allowed(shard, ctx, op, ResourceType::Group, id)
        .then_some(())
        .ok_or(ResponseError::GroupAuthorizationFailed)
}

/// `Ok` if the principal may do `op` on transactional id `id`, else
/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
///
/// # Errors
/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
pub fn transactional_id(
    shard: &Shard,
    ctx: &RequestContext,
    op: Operation,
    id: &str,
) -> Result<(), ResponseError> {
    allowed(shard, ctx, op, ResourceType::TransactionalId, id)
        .then_some(())
        .ok_or(ResponseError::TransactionalIdAuthorizationFailed)
}

/// `Ok` if the principal may do `op` on topic `name`, else TOPIC_AUTHORIZATION_FAILED.
///
/// # Errors
/// TOPIC_AUTHORIZATION_FAILED.
pub fn topic(
    shard: &Shard,
    ctx: &RequestContext,
    op: Operation,
    name: &str,
) -> Result<(), ResponseError> {
    allowed(shard, ctx, op, ResourceType::Topic, name)
        .then_some(())
        .ok_or(ResponseError::TopicAuthorizationFailed)
}

/// Kafka's check for an idempotent producer id: IDEMPOTENT_WRITE on the cluster, or the
/// chance to WRITE some topic (`authorizeByResourceType`), else CLUSTER_AUTHORIZATION_FAILED.
///
/// # Errors
/// CLUSTER_AUTHORIZATION_FAILED.
pub fn idempotent_write(shard: &Shard, ctx: &RequestContext) -> Result<(), ResponseError> {
    let authorizer = &shard.config.authorizer;
    if !authorizer.enabled
        || cluster_allowed(shard, ctx, Operation::IdempotentWrite)
        || authorizer.authorize_by_resource_type(
            &shard.acls(),
            requester(ctx),
            Operation::Write,
            ResourceType::Topic,
        )
    {
        Ok(())
    } else {
        Err(ResponseError::ClusterAuthorizationFailed)
    }
}
