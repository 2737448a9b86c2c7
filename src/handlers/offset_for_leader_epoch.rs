//! OffsetForLeaderEpoch (key 23): where a leader epoch ends in this leader's log (KIP-101,
//! KIP-320). A consumer that saw a leader change asks for the epoch of its last fetched
//! record and learns whether its position is still on the log (a new leader may have
//! truncated what it fetched); the answer is the largest epoch at or below the asked one and
//! the offset where it ends, `(-1, -1)` for an epoch newer than any here. FENCED_LEADER_EPOCH
//! and UNKNOWN_LEADER_EPOCH compare `current_leader_epoch` with this leader's, as Fetch does.
//! Consumers (`replica_id` -1) get end offsets no higher than the high watermark; replicas
//! and the schema's "debug" default (-2, what v2 requests mean) the log end. Runs on the
//! shard that leads the partition.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderPartition;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::handlers::fetch::check_leader_epoch;
use crate::handlers::request::RequestContext;
use crate::shard::Shard;

/// v2 adds `current_leader_epoch`, v3 `replica_id`, v4 is flexible; the generated codec has
/// nothing older.
pub const VERSIONS: (i16, i16) = (2, 4);

/// `replica_id` of an ordinary consumer.
const CONSUMER: i32 = -1;

/// Answers every partition of the request.
pub async fn handle(
    shard: &Rc<Shard>,
    _ctx: &RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let consumer = request.replica_id.0 == CONSUMER;
    let mut response = OffsetForLeaderEpochResponse::default();
    for topic in request.topics {
        let mut out = OffsetForLeaderTopicResult::default();
        out.topic = topic.topic.clone();
        for p in &topic.partitions {
            let answer = end_offset(shard, &topic.topic.0, p, consumer).await;
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
    consumer: bool,
) -> Result<EpochEndOffset, ResponseError> {
    let partition = shard
        .partition(topic, p.partition)
        .await
        .map_err(|e| ResponseError::from(&e))?;
    check_leader_epoch(&partition, p.current_leader_epoch)?;
    let (epoch, end) = partition.with_log(|log| {
        let (epoch, end) = log.epoch_end_offset(p.leader_epoch);
        match consumer && end >= 0 {
            true => (epoch, end.min(log.high_watermark())),
            false => (epoch, end),
        }
    });
    let mut answer = EpochEndOffset::default();
    answer.partition = p.partition;
    answer.leader_epoch = epoch;
    answer.end_offset = end;
    Ok(answer)
}
