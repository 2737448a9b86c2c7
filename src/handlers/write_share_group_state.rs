//! WriteShareGroupState (key 85, v0, KIP-932): a partition leader on another node stores
//! share partitions' states on this shard, the share-state coordinator of their
//! `__share_group_state` partitions (`shard::share_state_log`), answered once the in-sync
//! replicas have them. Each write carries a partition's whole state, not a delta.
//! Per-partition errors: NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS,
//! COORDINATOR_NOT_AVAILABLE, FENCED_LEADER_EPOCH (a newer leader read or wrote the state),
//! FENCED_STATE_EPOCH (the admin APIs reset it since it was loaded).
//!
//! Broker to broker: CLUSTER_ACTION on the cluster, as Kafka requires. Runs on the shard that
//! received the request.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::write_share_group_state_response::{
    PartitionResult, WriteStateResult,
};
use kafka_protocol::messages::{WriteShareGroupStateRequest, WriteShareGroupStateResponse};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::shard::Shard;
use crate::shard::share_state::stored_of_write;
use crate::shard::share_state_log::write_local;
use crate::share::state_record::StateKey;

/// v0, the only version.
pub const VERSIONS: (i16, i16) = (0, 0);

/// One result per topic and partition, in the request's order; partitions are written one
/// after another.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: WriteShareGroupStateRequest,
) -> WriteShareGroupStateResponse {
    let allowed = enforce::cluster_allowed(shard, ctx, Operation::ClusterAction);
    let group = request.group_id.to_string();
    let mut response = WriteShareGroupStateResponse::default();
    for topic in &request.topics {
        let mut out = WriteStateResult::default();
        out.topic_id = topic.topic_id;
        for p in &topic.partitions {
            let key = StateKey {
                group: group.clone(),
                topic_id: topic.topic_id,
                partition: p.partition,
            };
            let written = match allowed {
                true => write_local(shard, key, Some(stored_of_write(p))).await,
                false => Err(ResponseError::ClusterAuthorizationFailed),
            };
            let mut r = PartitionResult::default();
            r.partition = p.partition;
            r.error_code = written.err().map_or(0, |e| e.code());
            out.partitions.push(r);
        }
        response.results.push(out);
    }
    response
}
