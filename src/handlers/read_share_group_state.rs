//! ReadShareGroupState (key 84, v0, KIP-932): a partition leader on another node reads share
//! partitions' states from this shard, the share-state coordinator of their
//! `__share_group_state` partitions (`shard::share_state_log`); the reader's leader epoch
//! fences writes of older leaders from then on. Per-partition errors: NOT_COORDINATOR,
//! COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, and GROUP_ID_NOT_FOUND when
//! nothing is stored (the reader starts the group per `share.auto.offset.reset`).
//!
//! Broker to broker: CLUSTER_ACTION on the cluster, as Kafka requires. Runs on the shard that
//! received the request.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::read_share_group_state_response::{
    PartitionResult, ReadStateResult, StateBatch,
};
use kafka_protocol::messages::{ReadShareGroupStateRequest, ReadShareGroupStateResponse};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::shard::Shard;
use crate::shard::share_state_log::read_local;
use crate::share::state_record::StateKey;

/// v0, the only version.
pub const VERSIONS: (i16, i16) = (0, 0);

/// One result per topic and partition, in the request's order.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: ReadShareGroupStateRequest,
) -> ReadShareGroupStateResponse {
    let allowed = enforce::cluster_allowed(shard, ctx, Operation::ClusterAction);
    let group = request.group_id.to_string();
    let mut response = ReadShareGroupStateResponse::default();
    for topic in &request.topics {
        let mut out = ReadStateResult::default();
        out.topic_id = topic.topic_id;
        for p in &topic.partitions {
            let key = StateKey {
                group: group.clone(),
                topic_id: topic.topic_id,
                partition: p.partition,
            };
            let read = match allowed {
                true => read_local(shard, &key, p.leader_epoch),
                false => Err(ResponseError::ClusterAuthorizationFailed),
            };
            out.partitions.push(result(p.partition, read));
        }
        response.results.push(out);
    }
    response
}

fn result(
    partition: i32,
    read: Result<Option<crate::share::state_record::StoredState>, ResponseError>,
) -> PartitionResult {
    let mut r = PartitionResult::default();
    r.partition = partition;
    r.state_epoch = -1;
    r.start_offset = -1;
    match read {
        Ok(Some(state)) => {
            r.state_epoch = state.state_epoch;
            r.start_offset = state.snapshot.start;
            r.state_batches = state
                .snapshot
                .ranges
                .iter()
                .map(|range| {
                    let mut b = StateBatch::default();
                    b.first_offset = range.first;
                    b.last_offset = range.last;
                    b.delivery_state = range.state as i8;
                    b.delivery_count = i16::try_from(range.deliveries).unwrap_or(i16::MAX);
                    b
                })
                .collect();
        }
        Ok(None) => r.error_code = ResponseError::GroupIdNotFound.code(),
        Err(e) => r.error_code = e.code(),
    }
    r
}
