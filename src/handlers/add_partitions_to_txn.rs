//! AddPartitionsToTxn (key 24), v0-v3: the producer names the partitions it is about to
//! write in its transaction; the coordinator of its transactional id records them
//! (persisted before the answer) so EndTxn knows where to write markers. All partitions
//! succeed or fail together, as in Kafka: an unknown one fails with
//! UNKNOWN_TOPIC_OR_PARTITION and the others with OPERATION_NOT_ATTEMPTED.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::shard::Shard;
use crate::shard::txns;

/// v4+ (broker-to-broker verification, batched transactions) is not implemented.
pub const VERSIONS: (i16, i16) = (0, 3);

/// PRODUCER_FENCED exists from v2.
const FENCED_SINCE: i16 = 2;

/// Answers per partition: every partition OK or failing with the same error, or, when some are
/// unknown, UNKNOWN_TOPIC_OR_PARTITION for those and OPERATION_NOT_ATTEMPTED for the rest.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let wanted: Vec<(String, i32)> = request
        .v3_and_below_topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect();
    let unknown: Vec<bool> = wanted.iter().map(|(t, p)| !exists(shard, t, *p)).collect();
    let txn_denied = enforce::transactional_id(
        shard,
        ctx,
        Operation::Write,
        request.v3_and_below_transactional_id.as_str(),
    )
    .err();
    let denied: Vec<bool> = wanted
        .iter()
        .map(|(t, _)| enforce::topic(shard, ctx, Operation::Write, t).is_err())
        .collect();
    if let Some(e) = txn_denied {
        return respond(&wanted, wanted.iter().map(|_| e.code()));
    }
    if denied.iter().any(|d| *d) {
        // Kafka: the denied partitions TOPIC_AUTHORIZATION_FAILED, the rest not attempted.
        let codes = denied.iter().map(|d| match d {
            true => ResponseError::TopicAuthorizationFailed.code(),
            false => ResponseError::OperationNotAttempted.code(),
        });
        return respond(&wanted, codes);
    }
    let uniform = if unknown.iter().any(|u| *u) {
        None
    } else {
        Some(add(shard, ctx.version, &request, &wanted).await)
    };
    let codes = wanted
        .iter()
        .zip(&unknown)
        .map(|(_, unknown)| match uniform {
            Some(Ok(())) => 0,
            Some(Err(e)) => e.code(),
            None if *unknown => ResponseError::UnknownTopicOrPartition.code(),
            None => ResponseError::OperationNotAttempted.code(),
        });
    respond(&wanted, codes)
}

fn exists(shard: &Shard, topic: &str, partition: i32) -> bool {
    shard
        .cluster
        .topic(topic)
        .is_some_and(|m| partition >= 0 && (partition as usize) < m.partitions.len())
}

async fn add(
    shard: &Shard,
    version: i16,
    request: &AddPartitionsToTxnRequest,
    wanted: &[(String, i32)],
) -> Result<(), ResponseError> {
    let id = request.v3_and_below_transactional_id.as_str();
    txns::check_coordinator(shard, id)?;
    let record = shard.txns.call(|c| {
        c.add_partitions(
            id,
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
            wanted,
            crate::now_ms(),
        )
    });
    match record.map_err(|e| txns::error_code(e, version, FENCED_SINCE))? {
        Some(record) => txns::persist(shard, record).await,
        None => Ok(()),
    }
}

fn respond(
    wanted: &[(String, i32)],
    codes: impl Iterator<Item = i16>,
) -> AddPartitionsToTxnResponse {
    let mut response = AddPartitionsToTxnResponse::default();
    for ((topic, partition), code) in wanted.iter().zip(codes) {
        let position = response
            .results_by_topic_v3_and_below
            .iter()
            .position(|t| t.name.0.as_str() == topic.as_str());
        let index = match position {
            Some(i) => i,
            None => {
                let mut t = AddPartitionsToTxnTopicResult::default();
                t.name = crate::handlers::topic_name(topic);
                response.results_by_topic_v3_and_below.push(t);
                response.results_by_topic_v3_and_below.len() - 1
            }
        };
        let mut p = AddPartitionsToTxnPartitionResult::default();
        p.partition_index = *partition;
        p.partition_error_code = code;
        response.results_by_topic_v3_and_below[index]
            .results_by_partition
            .push(p);
    }
    response
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::protocol::Encodable;

    use super::*;

    #[test]
    fn every_advertised_version_encodes() {
        let wanted = vec![
            ("a".to_string(), 0),
            ("a".to_string(), 1),
            ("b".to_string(), 0),
        ];
        let response = respond(&wanted, [0, 0, 3].into_iter());
        assert_eq!(response.results_by_topic_v3_and_below.len(), 2);
        for version in VERSIONS.0..=VERSIONS.1 {
            let mut buf = BytesMut::new();
            assert!(response.encode(&mut buf, version).is_ok(), "v{version}");
        }
    }
}
