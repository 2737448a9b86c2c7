//! ConsumerGroupHeartbeat (key 68, KIP-848): a member of a consumer-protocol group joins,
//! heartbeats, leaves, and gets its assignment from the coordinator's own assignor. Answered at
//! once, after the records the heartbeat wrote to `__consumer_offsets` are appended.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};

use crate::acl::{Operation, enforce};
use crate::coordinator::group::consumer::{TopicInfo, Topics, wire};
use crate::handlers::request::RequestContext;
use crate::metadata::Cluster;
use crate::shard::{Shard, groups};

/// Versions served: v0 (member id from the coordinator) and v1 (from the client, KIP-1082).
pub const VERSIONS: (i16, i16) = (0, 1);

/// UNSUPPORTED_VERSION when `group.coordinator.rebalance.protocols` leaves out `consumer`;
/// NOT_COORDINATOR when another shard coordinates the group; otherwise the coordinator's
/// answer.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    if !shard.groups.read(|c| c.config().consumer_protocol_enabled) {
        return wire::heartbeat_error(ResponseError::UnsupportedVersion);
    }
    let (group_id, heartbeat) = wire::heartbeat_request(&request, &ctx.client_id, &ctx.client_host);
    if let Err(e) = enforce::group(shard, ctx, Operation::Read, &group_id)
        .and_then(|()| groups::check_coordinator(shard, &group_id))
    {
        return wire::heartbeat_error(e);
    }
    let topics = topics_view(&shard.cluster);
    let now = crate::now_ms();
    let (response, effects) = shard
        .groups
        .call(|c| c.consumer_heartbeat(&group_id, &heartbeat, &topics, now));
    match groups::apply(shard, effects).await {
        Ok(()) => wire::heartbeat_response(&response),
        Err(e) => wire::heartbeat_error(e),
    }
}

/// The topics a subscription may name: every topic but the internal ones.
pub fn topics_view(cluster: &Cluster) -> Topics {
    Topics::new(
        cluster
            .topics()
            .iter()
            .filter(|t| !t.internal)
            .map(|t| TopicInfo {
                name: t.name.clone(),
                id: t.id,
                partitions: i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
            }),
    )
}
