//! Heartbeat (key 12): keeps a member's session alive and tells it when a rebalance began
//! (REBALANCE_IN_PROGRESS). Answered at once; a classic member of a consumer group may make
//! the coordinator write the group's new target first.

use std::rc::Rc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::acl::{Operation, enforce};
use crate::coordinator::group::wire;
use crate::handlers::request::RequestContext;
use crate::shard::{Shard, groups};

/// Versions served: every version the protocol crate has.
pub const VERSIONS: (i16, i16) = (0, 4);

/// NOT_COORDINATOR when another shard coordinates the group; otherwise the coordinator's answer,
/// REBALANCE_IN_PROGRESS when the member must rejoin.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: HeartbeatRequest,
) -> HeartbeatResponse {
    let (group_id, heartbeat) = wire::heartbeat_request(&request, ctx.version);
    if let Err(e) = enforce::group(shard, ctx, Operation::Read, &group_id)
        .and_then(|()| groups::check_coordinator(shard, &group_id))
    {
        return wire::heartbeat_response(Some(e));
    }
    let now = crate::now_ms();
    let (error, effects) = shard
        .groups
        .call(|c| c.heartbeat(&group_id, &heartbeat, now));
    match groups::apply(shard, effects).await {
        Ok(()) => wire::heartbeat_response(error),
        Err(e) => wire::heartbeat_response(Some(e)),
    }
}
