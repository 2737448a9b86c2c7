//! AddPartitionsToTxn (key 24), v0-v3: the producer names the partitions it is about to
//! write in its transaction; the coordinator of its transactional id records them
//! (persisted before the answer) so EndTxn knows where to write markers. All partitions
//! succeed or fail together, as in Kafka: an unknown one fails with
//! UNKNOWN_TOPIC_OR_PARTITION and the others with OPERATION_NOT_ATTEMPTED.
//!
//! v4 is Kafka's broker-to-broker form (KIP-890): several transactions per request, each
//! either added as above or, with `verify_only`, checked: a partition leader on another node
//! asks, before it appends a producer's first transactional batch, whether the partition is
//! in that producer's open transaction (per-partition INVALID_TXN_STATE, INVALID_PRODUCER_EPOCH
//! or PRODUCER_FENCED otherwise). Clients keep to v0-v3, as Kafka's do.
//!
//! v5 is the same request from a partition leader serving a transaction version 2 producer
//! (KIP-890 part 2): without `verify_only` it adds the partitions the producer wrote to
//! (`TxnCoordinator::add_partitions_implicitly`), beginning its next transaction if none is
//! open. v5 also lets the caller receive TRANSACTION_ABORTABLE, which is never sent here.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::shard::Shard;
use crate::shard::txns;

/// v4 and v5 are for brokers (batched transactions, verification; v5 adds for transaction
/// version 2 producers).
pub const VERSIONS: (i16, i16) = (0, 5);

/// The first version with batched transactions (and `verify_only`).
const BATCHED_SINCE: i16 = 4;

/// PRODUCER_FENCED exists from v2.
const FENCED_SINCE: i16 = 2;

/// Answers per partition: every partition OK or failing with the same error, or, when some are
/// unknown, UNKNOWN_TOPIC_OR_PARTITION for those and OPERATION_NOT_ATTEMPTED for the rest.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    if ctx.version >= BATCHED_SINCE {
        return batched(shard, ctx, &request.transactions).await;
    }
    let wanted = partitions_of(&request.v3_and_below_topics);
    let producer = Producer {
        transactional_id: request.v3_and_below_transactional_id.as_str(),
        id: request.v3_and_below_producer_id.0,
        epoch: request.v3_and_below_producer_epoch,
    };
    let codes = add_all_or_none(shard, ctx, &producer, &wanted).await;
    let mut response = AddPartitionsToTxnResponse::default();
    response.results_by_topic_v3_and_below = respond(&wanted, codes.into_iter());
    response
}

/// The transactional producer a request is about.
struct Producer<'a> {
    transactional_id: &'a str,
    id: i64,
    epoch: i16,
}

fn partitions_of(topics: &[AddPartitionsToTxnTopic]) -> Vec<(String, i32)> {
    topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect()
}

/// v4: each transaction's partitions added (as v3) or, with `verify_only`, checked.
async fn batched(
    shard: &Shard,
    ctx: &RequestContext,
    transactions: &[AddPartitionsToTxnTransaction],
) -> AddPartitionsToTxnResponse {
    let mut response = AddPartitionsToTxnResponse::default();
    // v4 is broker to broker: CLUSTER_ACTION on the cluster, as Kafka requires.
    if !enforce::cluster_allowed(shard, ctx, Operation::ClusterAction) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return response;
    }
    for txn in transactions {
        let wanted = partitions_of(&txn.topics);
        let producer = Producer {
            transactional_id: txn.transactional_id.as_str(),
            id: txn.producer_id.0,
            epoch: txn.producer_epoch,
        };
        let codes = if txn.verify_only {
            verify(shard, &producer, &wanted)
        } else {
            add_all_or_none(shard, ctx, &producer, &wanted).await
        };
        let mut result = AddPartitionsToTxnResult::default();
        result.transactional_id = txn.transactional_id.clone();
        result.topic_results = respond(&wanted, codes.into_iter());
        response.results_by_transaction.push(result);
    }
    response
}

/// Whether each of `wanted` is in the producer's open transaction, by this shard's coordinator
/// (NOT_COORDINATOR if another shard coordinates the id).
fn verify(shard: &Shard, producer: &Producer<'_>, wanted: &[(String, i32)]) -> Vec<i16> {
    wanted
        .iter()
        .map(|partition| {
            txns::verify_as_coordinator(
                shard,
                producer.transactional_id,
                producer.id,
                producer.epoch,
                partition,
            )
            .map_or_else(|e| e.code(), |()| 0)
        })
        .collect()
}

/// Every partition OK or failing with the same error, or, when some are unknown,
/// UNKNOWN_TOPIC_OR_PARTITION for those and OPERATION_NOT_ATTEMPTED for the rest.
async fn add_all_or_none(
    shard: &Shard,
    ctx: &RequestContext,
    producer: &Producer<'_>,
    wanted: &[(String, i32)],
) -> Vec<i16> {
    let version = ctx.version;
    let unknown: Vec<bool> = wanted.iter().map(|(t, p)| !exists(shard, t, *p)).collect();
    let txn_denied =
        enforce::transactional_id(shard, ctx, Operation::Write, producer.transactional_id).err();
    if let Some(e) = txn_denied {
        return wanted.iter().map(|_| e.code()).collect();
    }
    let denied: Vec<bool> = wanted
        .iter()
        .map(|(t, _)| enforce::topic(shard, ctx, Operation::Write, t).is_err())
        .collect();
    if denied.iter().any(|d| *d) {
        // Kafka: the denied partitions TOPIC_AUTHORIZATION_FAILED, the rest not attempted.
        return denied
            .iter()
            .map(|d| match d {
                true => ResponseError::TopicAuthorizationFailed.code(),
                false => ResponseError::OperationNotAttempted.code(),
            })
            .collect();
    }
    let uniform = if unknown.iter().any(|u| *u) {
        None
    } else {
        Some(add(shard, version, producer, wanted).await)
    };
    unknown
        .iter()
        .map(|unknown| match uniform {
            Some(Ok(())) => 0,
            Some(Err(e)) => e.code(),
            None if *unknown => ResponseError::UnknownTopicOrPartition.code(),
            None => ResponseError::OperationNotAttempted.code(),
        })
        .collect()
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
    producer: &Producer<'_>,
    wanted: &[(String, i32)],
) -> Result<(), ResponseError> {
    let id = producer.transactional_id;
    txns::check_coordinator(shard, id)?;
    let implicit = version >= txns::IMPLICIT_ADD_VERSION;
    let (pid, epoch, now) = (producer.id, producer.epoch, crate::now_ms());
    let record = shard.txns.call(|c| match implicit {
        true => c.add_partitions_implicitly(id, pid, epoch, wanted, now),
        false => c.add_partitions(id, pid, epoch, wanted, now),
    });
    match record.map_err(|e| txns::error_code(e, version, FENCED_SINCE))? {
        Some(record) => txns::persist(shard, record).await,
        None => Ok(()),
    }
}

fn respond(
    wanted: &[(String, i32)],
    codes: impl Iterator<Item = i16>,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut topics: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for ((topic, partition), code) in wanted.iter().zip(codes) {
        let position = topics
            .iter()
            .position(|t| t.name.0.as_str() == topic.as_str());
        let index = match position {
            Some(i) => i,
            None => {
                let mut t = AddPartitionsToTxnTopicResult::default();
                t.name = crate::handlers::topic_name(topic);
                topics.push(t);
                topics.len() - 1
            }
        };
        let mut p = AddPartitionsToTxnPartitionResult::default();
        p.partition_index = *partition;
        p.partition_error_code = code;
        topics[index].results_by_partition.push(p);
    }
    topics
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
        let topics = respond(&wanted, [0, 0, 3].into_iter());
        assert_eq!(topics.len(), 2);
        // v0-v3 answer by topic, v4 by transaction: each field exists in its versions only.
        let mut by_topic = AddPartitionsToTxnResponse::default();
        by_topic.results_by_topic_v3_and_below = topics.clone();
        let mut by_transaction = AddPartitionsToTxnResponse::default();
        let mut result = AddPartitionsToTxnResult::default();
        result.topic_results = topics;
        by_transaction.results_by_transaction.push(result);
        for version in VERSIONS.0..=VERSIONS.1 {
            let response = if version >= BATCHED_SINCE {
                &by_transaction
            } else {
                &by_topic
            };
            let mut buf = BytesMut::new();
            assert!(response.encode(&mut buf, version).is_ok(), "v{version}");
        }
    }
}
