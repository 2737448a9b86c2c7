//! AddOffsetsToTxn (key 25), v0-v4: the producer will commit a group's offsets in its
//! transaction. The coordinator adds the group's `__consumer_offsets` partition to the
//! transaction, so EndTxn writes a marker there too and the offsets become visible (or are
//! dropped) with the transaction.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::shard::offsets_log::{self, OFFSETS_TOPIC};
use crate::shard::{Shard, txns};

/// Versions served. v4 only lets the client receive TRANSACTION_ABORTABLE (never sent here);
/// transaction version 2 producers do not send this request (TxnOffsetCommit v5 adds the
/// group's partition itself).
pub const VERSIONS: (i16, i16) = (0, 4);

const FENCED_SINCE: i16 = 2;

/// Adds the group's `__consumer_offsets` partition to the producer's open transaction, persisted
/// before the answer; the only result is the error code (PRODUCER_FENCED from v2).
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let mut response = AddOffsetsToTxnResponse::default();
    let authorized = enforce::transactional_id(
        shard,
        ctx,
        Operation::Write,
        request.transactional_id.as_str(),
    )
    .and_then(|()| enforce::group(shard, ctx, Operation::Read, request.group_id.as_str()));
    if let Err(e) = match authorized {
        Ok(()) => add(shard, ctx.version, &request).await,
        Err(e) => Err(e),
    } {
        response.error_code = e.code();
    }
    response
}

async fn add(
    shard: &Shard,
    version: i16,
    request: &AddOffsetsToTxnRequest,
) -> Result<(), ResponseError> {
    let id = request.transactional_id.as_str();
    txns::check_coordinator(shard, id)?;
    let (partition, _) = offsets_log::coordinator_of(shard, request.group_id.as_str())
        .map_err(|_| ResponseError::CoordinatorNotAvailable)?;
    let wanted = [(OFFSETS_TOPIC.to_owned(), partition)];
    let record = shard.txns.call(|c| {
        c.add_partitions(
            id,
            request.producer_id.0,
            request.producer_epoch,
            &wanted,
            crate::now_ms(),
        )
    });
    match record.map_err(|e| txns::error_code(e, version, FENCED_SINCE))? {
        Some(record) => txns::persist(shard, record).await,
        None => Ok(()),
    }
}
