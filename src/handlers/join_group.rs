//! JoinGroup (key 11): a member joins (or rejoins) a group on the shard that coordinates it.
//! The request usually parks until the rebalance completes; the connection reads nothing
//! else meanwhile, as Kafka's clients expect.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

use crate::acl::{Operation, enforce};
use crate::coordinator::group::types::JoinResponse;
use crate::coordinator::group::{Response, wire};
use crate::handlers::consumer_group_heartbeat::topics_view;
use crate::handlers::request::RequestContext;
use crate::shard::{Shard, groups};

/// Versions served: every version the protocol crate has.
pub const VERSIONS: (i16, i16) = (0, 9);

/// Usually parks until the rebalance completes, then answers with the generation, the member id
/// and, for the leader, every member's metadata; NOT_COORDINATOR when another shard coordinates the
/// group.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    let (group_id, join) =
        wire::join_request(&request, ctx.version, &ctx.client_id, &ctx.client_host);
    let member_id = join.member_id.clone();
    let error = |e| wire::join_response(&JoinResponse::error(e, &member_id), ctx.version);
    if let Err(e) = enforce::group(shard, ctx, Operation::Read, &group_id)
        .and_then(|()| groups::check_coordinator(shard, &group_id))
    {
        return error(e);
    }
    let now = crate::now_ms();
    let topics = topics_view(&shard.cluster);
    let joined = |c: &mut _, token| {
        crate::coordinator::group::GroupCoordinator::join_with_topics(
            c, &group_id, join, token, now, &topics,
        )
    };
    match groups::call_parked(shard, joined).await {
        Some(Response::Join(response)) => wire::join_response(&response, ctx.version),
        // The coordinator only answers a join token with a join response.
        Some(Response::Sync(_)) => error(ResponseError::UnknownServerError),
        // Shutting down: the client looks for the coordinator again.
        None => error(ResponseError::NotCoordinator),
    }
}
