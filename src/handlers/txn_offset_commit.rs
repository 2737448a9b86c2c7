//! TxnOffsetCommit (key 28), v0-v5: offsets a transactional producer commits for a group
//! (consume-transform-produce). Sent to the group's coordinator shard, stored in the group's
//! `__consumer_offsets` partition as a transactional batch of the producer, and held aside
//! until the transaction's marker reaches that partition: a COMMIT makes them the group's
//! committed offsets, an ABORT drops them.
//!
//! v4 only lets the client receive TRANSACTION_ABORTABLE (never sent here). v5 is transaction
//! version 2 (KIP-890 part 2): the producer sends no AddOffsetsToTxn, so before storing the
//! offsets the group coordinator adds the group's `__consumer_offsets` partition to the
//! producer's transaction through the transaction coordinator (as a partition leader does for
//! a produce), which also checks the producer's epoch. Below v5 nothing changes.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use crate::acl::{Operation, enforce};
use crate::coordinator::group::records::{OffsetCommitKey, OffsetCommitValue, Record};
use crate::handlers::request::RequestContext;
use crate::shard::offsets_log::{self, OFFSETS_TOPIC};
use crate::shard::{Shard, groups, txns};
use crate::storage::log::{FlushWait, validate_batches};

/// Versions served; v5 is transaction version 2.
pub const VERSIONS: (i16, i16) = (0, 5);

/// The first version whose producer does not add the group's partition itself.
const IMPLICIT_ADD_SINCE: i16 = 5;

/// One error code for every partition: the offsets are stored as one transactional batch of the
/// producer, or none are.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    // Kafka's order: WRITE on the transactional id, READ on the group, READ on each topic.
    let authorized = enforce::transactional_id(
        shard,
        ctx,
        Operation::Write,
        request.transactional_id.as_str(),
    )
    .and_then(|()| enforce::group(shard, ctx, Operation::Read, request.group_id.as_str()))
    .and_then(|()| {
        request
            .topics
            .iter()
            .try_for_each(|t| enforce::topic(shard, ctx, Operation::Read, &t.name))
    });
    let outcome = match authorized {
        Ok(()) => commit(shard, ctx.version, &request).await,
        Err(e) => Err(e),
    };
    let code = match outcome {
        Ok(()) => 0,
        Err(e) => e.code(),
    };
    let mut response = TxnOffsetCommitResponse::default();
    for topic in &request.topics {
        let mut t = TxnOffsetCommitResponseTopic::default();
        t.name = topic.name.clone();
        for p in &topic.partitions {
            let mut out = TxnOffsetCommitResponsePartition::default();
            out.partition_index = p.partition_index;
            out.error_code = code;
            t.partitions.push(out);
        }
        response.topics.push(t);
    }
    response
}

async fn commit(
    shard: &Shard,
    version: i16,
    request: &TxnOffsetCommitRequest,
) -> Result<(), ResponseError> {
    let group = request.group_id.as_str();
    groups::check_coordinator(shard, group)?;
    let records = records_of(request, crate::now_ms());
    if records.is_empty() {
        return Ok(());
    }
    let (partition, _) = offsets_log::coordinator_of(shard, group)
        .map_err(|_| ResponseError::CoordinatorNotAvailable)?;
    let log = shard
        .partition(OFFSETS_TOPIC, partition)
        .await
        .map_err(|_| ResponseError::NotCoordinator)?;
    let producer = (request.producer_id.0, request.producer_epoch);
    if version >= IMPLICIT_ADD_SINCE {
        let group_partition = (OFFSETS_TOPIC.to_owned(), partition);
        txns::verify_partition(
            shard,
            request.transactional_id.as_str(),
            producer,
            group_partition,
            true,
        )
        .await
        .map_err(for_offset_commit)?;
    }
    let refs: Vec<&Record> = records.iter().collect();
    let now = crate::now_ms();
    let batch = offsets_log::build_batch_as(&refs, now, Some(producer));
    let max_bytes = log.max_message_bytes();
    let validated =
        validate_batches(&batch, max_bytes).map_err(|_| ResponseError::InvalidCommitOffsetSize)?;
    log.append(validated, now, FlushWait::Durable)
        .await
        .map_err(|e| {
            tracing::warn!(group, error = %e, "storing transactional offsets failed");
            ResponseError::CoordinatorNotAvailable
        })?;
    groups::stage_txn_offsets(shard, producer.0, records);
    Ok(())
}

/// The TxnOffsetCommit answer for a refused implicit add, which comes back in produce terms:
/// Kafka's group coordinator answers COORDINATOR_NOT_AVAILABLE where a produce would retry
/// (NOT_ENOUGH_REPLICAS), and PRODUCER_FENCED for a fenced producer.
fn for_offset_commit(e: ResponseError) -> ResponseError {
    match e {
        ResponseError::NotEnoughReplicas => ResponseError::CoordinatorNotAvailable,
        ResponseError::InvalidProducerEpoch => ResponseError::ProducerFenced,
        e => e,
    }
}

fn records_of(request: &TxnOffsetCommitRequest, now_ms: i64) -> Vec<Record> {
    let group = request.group_id.as_str();
    request
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.as_str(), p)))
        .map(|(topic, p)| Record {
            key: OffsetCommitKey {
                group: group.to_owned(),
                topic: topic.to_owned(),
                partition: p.partition_index,
            }
            .encode(),
            value: Some(
                OffsetCommitValue {
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p
                        .committed_metadata
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default(),
                    commit_timestamp: now_ms,
                    expire_timestamp: None,
                }
                .encode(),
            ),
        })
        .collect()
}
