//! ShareGroupHeartbeat (key 76, KIP-932): a member of a share group joins, heartbeats and
//! leaves, and gets the partitions it reads from the coordinator's assignor. Answered at once;
//! share group membership is not written to `__consumer_offsets` (see
//! `coordinator::group::share`).

use std::rc::Rc;

use kafka_protocol::messages::{ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse};

use crate::acl::{Operation, enforce};
use crate::coordinator::group::share::wire;
use crate::handlers::consumer_group_heartbeat::topics_view;
use crate::handlers::request::RequestContext;
use crate::shard::{Shard, groups};

/// Versions served: v1, the first version Kafka made generally available (4.1+).
pub const VERSIONS: (i16, i16) = (1, 1);

/// NOT_COORDINATOR when another shard coordinates the group; otherwise the coordinator's
/// answer.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: ShareGroupHeartbeatRequest,
) -> ShareGroupHeartbeatResponse {
    let (group_id, heartbeat) = wire::heartbeat_request(&request, &ctx.client_id, &ctx.client_host);
    if let Err(e) = enforce::group(shard, ctx, Operation::Read, &group_id)
        .and_then(|()| groups::check_coordinator(shard, &group_id))
    {
        return wire::heartbeat_error(e);
    }
    let topics = topics_view(&shard.cluster);
    let now = crate::now_ms();
    let config = shard.share_config(&group_id);
    match shard
        .groups
        .call(|c| c.share_heartbeat(&group_id, &heartbeat, &topics, now, &config))
    {
        Ok(answer) => wire::heartbeat_response(&answer),
        Err(e) => wire::heartbeat_error(e),
    }
}
