//! EndTxn (key 26), v0-v3: commit or abort. The decision (PrepareCommit/PrepareAbort) is
//! stored first; then a marker goes to every partition of the transaction, through the
//! cross-core mailbox for partitions of other shards and with WriteTxnMarkers for partitions
//! other nodes lead; then CompleteCommit/CompleteAbort is stored and the producer is
//! answered (if the timer task is writing the same markers already, after it). A marker
//! failure still answers OK once the decision is stored (Kafka does the same): the timer
//! task finishes the markers.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::shard::{Shard, txns};

/// v4 (KIP-890 part 2, epoch bump per transaction, v5 response fields) is not implemented.
pub const VERSIONS: (i16, i16) = (0, 3);

const FENCED_SINCE: i16 = 2;

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
    if let Err(e) = match authorized {
        Ok(()) => end(shard, ctx.version, &request).await,
        Err(e) => Err(e),
    } {
        response.error_code = e.code();
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
