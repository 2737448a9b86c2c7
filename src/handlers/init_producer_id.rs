//! InitProducerId (key 22). Without a transactional id: a producer id that never repeats on
//! this node (reserved in persisted blocks), epoch 0; a producer that asks again with its
//! id and epoch (KIP-360) gets the epoch bumped. With one: the transaction coordinator of
//! this shard (NOT_COORDINATOR elsewhere) keeps the id's producer id and bumps its epoch,
//! fencing older producers; an open transaction of the old producer is aborted first.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::acl::{Operation, enforce};
use crate::coordinator::txn::InitOutcome;
use crate::handlers::request::RequestContext;
use crate::shard::Shard;
use crate::shard::txns;

/// Versions served: every version the protocol crate has.
pub const VERSIONS: (i16, i16) = (0, 5);

/// PRODUCER_FENCED exists from v4 (KIP-588); older clients get INVALID_PRODUCER_EPOCH.
const FENCED_SINCE: i16 = 4;

/// The producer id and epoch to use; producer id -1 and epoch -1 with the error code when refused.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    response.producer_id = ProducerId(-1);
    response.producer_epoch = -1;
    let result = match &request.transactional_id {
        Some(id) => match enforce::transactional_id(shard, ctx, Operation::Write, id.as_str()) {
            Ok(()) => transactional(shard, ctx.version, id.as_str(), &request).await,
            Err(e) => Err(e),
        },
        None => match enforce::idempotent_write(shard, ctx) {
            Ok(()) => idempotent(shard, &request).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok((id, epoch)) => {
            response.producer_id = ProducerId(id);
            response.producer_epoch = epoch;
        }
        Err(e) => response.error_code = e.code(),
    }
    response
}

async fn idempotent(
    shard: &Shard,
    request: &InitProducerIdRequest,
) -> Result<(i64, i16), ResponseError> {
    let (id, epoch) = (request.producer_id.0, request.producer_epoch);
    if id >= 0 && (0..i16::MAX - 1).contains(&epoch) {
        return Ok((id, epoch + 1));
    }
    let allocated = if shard.cluster.is_clustered() {
        shard.cluster.propose_producer_id().await
    } else {
        shard.cluster.allocate_producer_id()
    };
    allocated.map(|id| (id, 0)).map_err(|e| {
        tracing::error!(error = %e, "cannot allocate a producer id");
        e.kafka_error()
    })
}

async fn transactional(
    shard: &Shard,
    version: i16,
    transactional_id: &str,
    request: &InitProducerIdRequest,
) -> Result<(i64, i16), ResponseError> {
    txns::check_coordinator(shard, transactional_id)?;
    let expected =
        (request.producer_id.0 >= 0).then_some((request.producer_id.0, request.producer_epoch));
    // Unused when the coordinator bumps an existing producer.
    let from_quorum = txns::producer_id_from_quorum(shard).await?;
    // At most two rounds: abort the fenced producer's transaction, then initialise.
    for _ in 0..2 {
        let outcome = shard.txns.call(|c| {
            c.init_producer_id(
                transactional_id,
                request.transaction_timeout_ms,
                expected,
                crate::now_ms(),
                || from_quorum.or_else(|| shard.cluster.allocate_producer_id().ok()),
            )
        });
        match outcome.map_err(|e| txns::error_code(e, version, FENCED_SINCE))? {
            InitOutcome::Ready {
                producer_id,
                producer_epoch,
                record,
            } => {
                txns::persist(shard, record).await?;
                return Ok((producer_id, producer_epoch));
            }
            InitOutcome::AbortFirst { record, job } => {
                txns::persist(shard, record).await?;
                txns::finish_or_await(shard, &job).await?;
            }
        }
    }
    // The abort could not complete (markers pending): the client retries.
    Err(ResponseError::ConcurrentTransactions)
}
