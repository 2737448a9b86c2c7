//! DeleteRecords (key 21): moves a partition's log start offset forward (the admin
//! `delete_records` call); whole segments below it are deleted right away, off the shard.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::shard::{Shard, retire_expired_segments};
use crate::storage::log::DeleteRecordsError;

/// Versions served: every version the protocol crate has.
pub const VERSIONS: (i16, i16) = (0, 2);

/// Per partition, the new low watermark (log start offset) after the deletion, or -1 with the error
/// code.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut response = DeleteRecordsResponse::default();
    for topic in request.topics {
        let mut out = DeleteRecordsTopicResult::default();
        out.name = topic.name.clone();
        let denied = enforce::topic(shard, ctx, Operation::Delete, &topic.name.0).err();
        for p in topic.partitions {
            if let Some(e) = denied {
                let mut refused = DeleteRecordsPartitionResult::default();
                refused.partition_index = p.partition_index;
                refused.low_watermark = -1;
                refused.error_code = e.code();
                out.partitions.push(refused);
                continue;
            }
            out.partitions
                .push(delete_in_partition(shard, &topic.name.0, p.partition_index, p.offset).await);
        }
        response.topics.push(out);
    }
    response
}

async fn delete_in_partition(
    shard: &Rc<Shard>,
    topic: &str,
    index: i32,
    offset: i64,
) -> DeleteRecordsPartitionResult {
    let mut out = DeleteRecordsPartitionResult::default();
    out.partition_index = index;
    out.low_watermark = -1;
    let partition = match shard.partition(topic, index).await {
        Ok(p) => p,
        Err(e) => {
            out.error_code = ResponseError::from(&e).code();
            return out;
        }
    };
    let moved = partition.with_log_mut(|log| log.delete_records(offset));
    match moved {
        Ok(low) => {
            out.low_watermark = low;
            retire_expired_segments(&partition, crate::now_ms()).await;
        }
        Err(DeleteRecordsError::OffsetOutOfRange { .. }) => {
            out.error_code = ResponseError::OffsetOutOfRange.code()
        }
        Err(DeleteRecordsError::Storage(e)) => {
            tracing::error!(topic, partition = index, error = %e, "delete records failed");
            out.error_code = ResponseError::KafkaStorageError.code();
        }
    }
    out
}
