//! EndTxn (key 26), v0-v5: commit or abort. The decision (PrepareCommit/PrepareAbort) is
//! stored first; then a marker goes to every partition of the transaction, through the
//! cross-core mailbox for partitions of other shards and with WriteTxnMarkers for partitions
//! other nodes lead; then CompleteCommit/CompleteAbort is stored and the producer is
//! answered (if the timer task is writing the same markers already, after it). A marker
//! failure still answers OK once the decision is stored (Kafka does the same): the timer
//! task finishes the markers.
//!
//! v4 only lets the client receive TRANSACTION_ABORTABLE (never sent here). v5 is transaction
//! version 2 (KIP-890 part 2): the coordinator bumps the producer epoch as it prepares the end
//! (`TxnCoordinator::end_txn_v2`), writes the markers under the bumped epoch, and answers with
//! the producer id and epoch the producer continues with (a new producer id with epoch 0 once
//! the epoch is exhausted).

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::shard::{Shard, txns};

/// Versions served; v5 is transaction version 2.
pub const VERSIONS: (i16, i16) = (0, 5);

const FENCED_SINCE: i16 = 2;

/// The first version of transaction version 2: the epoch is bumped at every end.
const EPOCH_BUMP_SINCE: i16 = 5;

/// Commits or aborts the producer's open transaction; answers once it is complete, or once the
/// decision is stored when a marker write failed. PRODUCER_FENCED from v2.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: EndTxnRequest,
) -> EndTxnResponse {
    let mut response = EndTxnResponse::default();
    if ctx.version >= 5 {
        response.producer_id = ProducerId(-1);
        response.producer_epoch = -1;
    }
    let started = std::time::Instant::now();
    let authorized = enforce::transactional_id(
        shard,
        ctx,
        Operation::Write,
        request.transactional_id.as_str(),
    );
    let ended = match authorized {
        Ok(()) if ctx.version >= EPOCH_BUMP_SINCE => end_v2(shard, &request).await.map(Some),
        Ok(()) => end(shard, ctx.version, &request).await.map(|()| None),
        Err(e) => Err(e),
    };
    match ended {
        Ok(Some((producer_id, producer_epoch))) => {
            response.producer_id = ProducerId(producer_id);
            response.producer_epoch = producer_epoch;
        }
        Ok(None) => {}
        Err(e) => response.error_code = e.code(),
    }
    tracing::debug!(
        transactional_id = request.transactional_id.as_str(),
        commit = request.committed,
        error_code = response.error_code,
        elapsed_us = started.elapsed().as_micros() as u64,
        "EndTxn"
    );
    response
}

async fn end(shard: &Shard, version: i16, request: &EndTxnRequest) -> Result<(), ResponseError> {
    let id = request.transactional_id.as_str();
    txns::check_coordinator(shard, id)?;
    let ended = shard.txns.call(|c| {
        c.end_txn(
            id,
            request.producer_id.0,
            request.producer_epoch,
            request.committed,
            crate::now_ms(),
        )
    });
    let Some((record, job)) = ended.map_err(|e| txns::error_code(e, version, FENCED_SINCE))? else {
        return Ok(());
    };
    txns::persist(shard, record).await?;
    if let Err(e) = txns::finish_or_await(shard, &job).await {
        tracing::warn!(transactional_id = id, error = ?e, "markers not all written; the timer task retries");
    }
    Ok(())
}

/// Transaction version 2: ends the transaction under a bumped epoch; returns the producer id
/// and epoch to answer with.
async fn end_v2(shard: &Shard, request: &EndTxnRequest) -> Result<(i64, i16), ResponseError> {
    let id = request.transactional_id.as_str();
    txns::check_coordinator(shard, id)?;
    // Only an exhausted epoch needs a new producer id.
    let from_quorum = if shard.txns.read(|c| c.epoch_exhausted(id)) {
        txns::producer_id_from_quorum(shard).await?
    } else {
        None
    };
    let ended = shard.txns.call(|c| {
        c.end_txn_v2(
            id,
            request.producer_id.0,
            request.producer_epoch,
            request.committed,
            crate::now_ms(),
            || from_quorum.or_else(|| shard.cluster.allocate_producer_id().ok()),
        )
    });
    let ended = ended.map_err(|e| txns::error_code(e, EPOCH_BUMP_SINCE, FENCED_SINCE))?;
    if let Some((record, job)) = ended.work {
        txns::persist(shard, record).await?;
        if let Err(e) = txns::finish_or_await(shard, &job).await {
            tracing::warn!(transactional_id = id, error = ?e, "markers not all written; the timer task retries");
        }
    }
    Ok((ended.producer_id, ended.producer_epoch))
}
