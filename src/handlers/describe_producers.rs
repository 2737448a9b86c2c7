//! DescribeProducers (key 61), v0: the producers a partition knows (id, epoch, last
//! sequence) and, for those inside a transaction, the offset it began at. Served by the
//! shard owning the partition, NOT_LEADER_OR_FOLLOWER elsewhere, like produce and fetch.
//! Last timestamps are not tracked per producer and are reported as -1.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::shard::Shard;

/// The only version the protocol crate has.
pub const VERSIONS: (i16, i16) = (0, 0);

/// Per partition, the producers its log knows, or NOT_LEADER_OR_FOLLOWER where another shard owns
/// it.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let mut response = DescribeProducersResponse::default();
    for topic in request.topics {
        let mut out = TopicResponse::default();
        out.name = topic.name.clone();
        let denied = enforce::topic(shard, ctx, Operation::Read, &topic.name.0).err();
        for index in topic.partition_indexes {
            if let Some(e) = denied {
                let mut refused = PartitionResponse::default();
                refused.partition_index = index;
                refused.error_code = e.code();
                out.partitions.push(refused);
                continue;
            }
            out.partitions
                .push(describe(shard, &topic.name.0, index).await);
        }
        response.topics.push(out);
    }
    response
}

async fn describe(shard: &Shard, topic: &str, index: i32) -> PartitionResponse {
    let mut out = PartitionResponse::default();
    out.partition_index = index;
    let partition = match shard.partition(topic, index).await {
        Ok(p) => p,
        Err(e) => {
            out.error_code = ResponseError::from(&e).code();
            return out;
        }
    };
    partition.with_log(|log| {
        let open = log.ongoing_transactions();
        for (producer_id, epoch, last_sequence, last_timestamp) in log.producers() {
            let mut p = ProducerState::default();
            p.producer_id = ProducerId(producer_id);
            p.producer_epoch = i32::from(epoch);
            p.last_sequence = last_sequence;
            p.last_timestamp = last_timestamp;
            p.coordinator_epoch = 0;
            p.current_txn_start_offset = open
                .iter()
                .find(|(id, _)| *id == producer_id)
                .map_or(-1, |(_, first)| *first);
            out.active_producers.push(p);
        }
        out
    })
}
