//! WriteTxnMarkers (key 27), v1: a transaction coordinator on another node asks this
//! partition leader to end a transaction here. Per marker (producer id and epoch, COMMIT or
//! ABORT, the coordinator's epoch) and per partition, the COMMIT/ABORT control batch is
//! appended on the shard of this node that leads the partition (this one, or another core
//! through the mailbox, exactly as the coordinator's own markers are written) and answered
//! once the ISR has it, as Kafka's broker does; a `__consumer_offsets` partition also
//! settles the transaction's pending offsets there. Per-partition errors:
//! UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER when no shard of this node leads it
//! (the coordinator retries with newer metadata), TRANSACTION_COORDINATOR_FENCED for a marker
//! of an older coordinator generation than the producer's last marker there,
//! INVALID_PRODUCER_EPOCH for a fenced producer epoch, and what the append or the ISR wait
//! answer (KAFKA_STORAGE_ERROR, NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT, ...).
//!
//! Only brokers should send it: Kafka requires CLUSTER_ACTION on the cluster. Sluice has no
//! ACLs yet, and brokers do not authenticate to each other (no inter-broker principal), so
//! any client that can send requests (after SASL, on a SASL listener) may; an ACL check
//! belongs here once ACLs exist. For the same reason a coordinator's own WriteTxnMarkers is
//! refused by a SASL listener (as replica fetches are). Runs on the shard that received the
//! request.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::write_txn_markers_request::WritableTxnMarker;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::metadata::NOT_ON_THIS_NODE;
use crate::shard::{Shard, join, txns};

/// v1 only: Kafka 4 removed v0, and the protocol crate has only v1.
pub const VERSIONS: (i16, i16) = (1, 1);

/// One result per marker, topic and partition, in the request's order; the partitions are
/// written concurrently (each waits for its own ISR).
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    // Broker to broker: CLUSTER_ACTION on the cluster, as Kafka requires.
    let denied = (!enforce::cluster_allowed(shard, ctx, Operation::ClusterAction))
        .then_some(kafka_protocol::ResponseError::ClusterAuthorizationFailed.code());
    let writes = request.markers.iter().flat_map(|marker| {
        marker.topics.iter().flat_map(move |topic| {
            topic
                .partition_indexes
                .iter()
                .map(move |&index| async move {
                    match denied {
                        Some(code) => Err(code),
                        None => write(shard, marker, topic.name.as_str(), index).await,
                    }
                })
        })
    });
    let mut codes = join::join_all(writes.collect()).await.into_iter();
    let mut response = WriteTxnMarkersResponse::default();
    for marker in &request.markers {
        let mut result = WritableTxnMarkerResult::default();
        result.producer_id = marker.producer_id;
        for topic in &marker.topics {
            let mut t = WritableTxnMarkerTopicResult::default();
            t.name = topic.name.clone();
            for &index in &topic.partition_indexes {
                let mut p = WritableTxnMarkerPartitionResult::default();
                p.partition_index = index;
                p.error_code = codes.next().map_or(0, |r| r.err().unwrap_or(0));
                tracing::debug!(
                    producer_id = marker.producer_id.0,
                    commit = marker.transaction_result,
                    topic = topic.name.as_str(),
                    partition = index,
                    error_code = p.error_code,
                    "WriteTxnMarkers"
                );
                t.partitions.push(p);
            }
            result.topics.push(t);
        }
        response.markers.push(result);
    }
    response
}

/// Writes `marker` to one partition on the shard of this node leading it.
async fn write(
    shard: &Shard,
    marker: &WritableTxnMarker,
    topic: &str,
    index: i32,
) -> Result<(), i16> {
    if marker.producer_id.0 < 0 {
        // A marker ends some producer's transaction; without one there is nothing to end.
        return Err(ResponseError::InvalidProducerIdMapping.code());
    }
    if marker.producer_epoch < 0 {
        return Err(ResponseError::InvalidProducerEpoch.code());
    }
    let owner = shard
        .cluster
        .topic(topic)
        .and_then(|meta| {
            usize::try_from(index)
                .ok()
                .and_then(|i| meta.partitions.get(i).copied())
        })
        .ok_or(ResponseError::UnknownTopicOrPartition.code())?;
    if owner == NOT_ON_THIS_NODE {
        return Err(ResponseError::NotLeaderOrFollower.code());
    }
    let (producer_id, epoch, commit) = (
        marker.producer_id.0,
        marker.producer_epoch,
        marker.transaction_result,
    );
    let coordinator_epoch = marker.coordinator_epoch;
    let partitions = vec![(topic.to_owned(), index)];
    if owner == shard.core {
        txns::write_local_markers(
            shard,
            producer_id,
            epoch,
            commit,
            coordinator_epoch,
            &partitions,
        )
        .await
    } else {
        txns::ask_shard_to_write(
            shard,
            owner,
            producer_id,
            epoch,
            commit,
            coordinator_epoch,
            partitions,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::protocol::Encodable;

    use super::*;

    #[test]
    fn every_advertised_version_encodes() {
        let mut response = WriteTxnMarkersResponse::default();
        let mut result = WritableTxnMarkerResult::default();
        let mut topic = WritableTxnMarkerTopicResult::default();
        topic
            .partitions
            .push(WritableTxnMarkerPartitionResult::default());
        result.topics.push(topic);
        response.markers.push(result);
        for version in VERSIONS.0..=VERSIONS.1 {
            let mut buf = BytesMut::new();
            assert!(response.encode(&mut buf, version).is_ok(), "v{version}");
        }
    }
}
