//! DeleteShareGroupState (key 86, v0, KIP-932): the group coordinator on another node
//! deletes share partitions' states (DeleteShareGroupOffsets, DeleteGroups) on this shard,
//! the share-state coordinator of their `__share_group_state` partitions: a tombstone each,
//! answered once the in-sync replicas have it. Per-partition errors: NOT_COORDINATOR,
//! COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE.
//!
//! Broker to broker: CLUSTER_ACTION on the cluster, as Kafka requires. Runs on the shard that
//! received the request.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_share_group_state_response::{
    DeleteStateResult, PartitionResult,
};
use kafka_protocol::messages::{DeleteShareGroupStateRequest, DeleteShareGroupStateResponse};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::shard::Shard;
use crate::shard::share_state_log::write_local;
use crate::share::state_record::StateKey;

/// v0, the only version.
pub const VERSIONS: (i16, i16) = (0, 0);

/// One result per topic and partition, in the request's order.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DeleteShareGroupStateRequest,
) -> DeleteShareGroupStateResponse {
    let allowed = enforce::cluster_allowed(shard, ctx, Operation::ClusterAction);
    let group = request.group_id.to_string();
    let mut response = DeleteShareGroupStateResponse::default();
    for topic in &request.topics {
        let mut out = DeleteStateResult::default();
        out.topic_id = topic.topic_id;
        for p in &topic.partitions {
            let key = StateKey {
                group: group.clone(),
                topic_id: topic.topic_id,
                partition: p.partition,
            };
            let deleted = match allowed {
                true => write_local(shard, key, None).await,
                false => Err(ResponseError::ClusterAuthorizationFailed),
            };
            let mut r = PartitionResult::default();
            r.partition = p.partition;
            r.error_code = deleted.err().map_or(0, |e| e.code());
            out.partitions.push(r);
        }
        response.results.push(out);
    }
    response
}
