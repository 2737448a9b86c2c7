//! LeaveGroup (key 13): members leave (a batch from v3, one before). Leaving starts a
//! rebalance, which may answer other members' parked joins.

use std::rc::Rc;

use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use crate::acl::{Operation, enforce};
use crate::coordinator::group::types::LeaveResponse;
use crate::coordinator::group::wire;
use crate::handlers::request::RequestContext;
use crate::shard::{Shard, groups};

/// Versions served: every version the protocol crate has.
pub const VERSIONS: (i16, i16) = (0, 5);

/// Removes the leaving members (one before v3, a batch from v3); NOT_COORDINATOR when another shard
/// coordinates the group.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let (group_id, leaving) = wire::leave_request(&request, ctx.version);
    if let Err(e) = enforce::group(shard, ctx, Operation::Read, &group_id)
        .and_then(|()| groups::check_coordinator(shard, &group_id))
    {
        let refused = LeaveResponse {
            error: Some(e),
            members: Vec::new(),
        };
        return wire::leave_response(&refused, ctx.version);
    }
    let now = crate::now_ms();
    let (mut response, effects) = shard.groups.call(|c| c.leave(&group_id, &leaving, now));
    if let Err(e) = groups::apply(shard, effects).await {
        response.error = Some(e);
    }
    wire::leave_response(&response, ctx.version)
}
