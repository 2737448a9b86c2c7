//! OffsetForLeaderEpoch (key 23): where a leader epoch ends in this leader's log (KIP-101,
//! KIP-320). A consumer that saw a leader change asks for the epoch of its last fetched
//! record and learns whether its position is still on the log (a new leader may have
//! truncated what it fetched); the answer is the largest epoch at or below the asked one and
//! the offset where it ends, `(-1, -1)` for an epoch newer than any here. FENCED_LEADER_EPOCH
//! and UNKNOWN_LEADER_EPOCH compare `current_leader_epoch` with this leader's, as Fetch does.
//! The end offset is the leader's log end for its current epoch, for consumers as for
//! replicas, as Kafka answers: capping it at the high watermark would make a consumer that
//! read up to the old leader's watermark think the log was truncated right after a failover,
//! while the new leader's watermark is still catching up. Runs on the shard that leads the
//! partition.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderPartition;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::acl::{Operation, enforce};
use crate::handlers::fetch::check_leader_epoch;
use crate::handlers::request::RequestContext;
use crate::shard::Shard;

/// v2 adds `current_leader_epoch`, v3 `replica_id`, v4 is flexible; the generated codec has
/// nothing older.
pub const VERSIONS: (i16, i16) = (2, 4);

/// Answers every partition of the request.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut response = OffsetForLeaderEpochResponse::default();
    for topic in request.topics {
        let mut out = OffsetForLeaderTopicResult::default();
        out.topic = topic.topic.clone();
        // A replica needs CLUSTER_ACTION, a client DESCRIBE on the topic (Kafka's rule).
        let denied = if request.replica_id.0 >= 0 {
            (!enforce::cluster_allowed(shard, ctx, Operation::ClusterAction))
                .then_some(ResponseError::ClusterAuthorizationFailed)
        } else {
            enforce::topic(shard, ctx, Operation::Describe, &topic.topic.0).err()
        };
        for p in &topic.partitions {
            let answer = match denied {
                Some(e) => Err(e),
                None => end_offset(shard, &topic.topic.0, p).await,
            };
            out.partitions.push(answer.unwrap_or_else(|e| {
                let mut failed = EpochEndOffset::default();
                failed.partition = p.partition;
                failed.error_code = e.code();
                failed.leader_epoch = -1;
                failed.end_offset = -1;
                failed
            }));
        }
        response.topics.push(out);
    }
    response
}

async fn end_offset(
    shard: &Rc<Shard>,
    topic: &str,
    p: &OffsetForLeaderPartition,
) -> Result<EpochEndOffset, ResponseError> {
    let partition = shard
        .partition(topic, p.partition)
        .await
        .map_err(|e| ResponseError::from(&e))?;
    check_leader_epoch(&partition, p.current_leader_epoch)?;
    let (epoch, end) = partition.with_log(|log| log.epoch_end_offset(p.leader_epoch));
    let mut answer = EpochEndOffset::default();
    answer.partition = p.partition;
    answer.leader_epoch = epoch;
    answer.end_offset = end;
    Ok(answer)
}
