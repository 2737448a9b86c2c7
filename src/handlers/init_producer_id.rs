//! InitProducerId (key 22) for idempotent producers: a producer id that never repeats on
//! this node (reserved in persisted blocks), epoch 0; a producer that asks again with its id
//! and epoch (KIP-360, after UNKNOWN_PRODUCER_ID or a timeout) gets the epoch bumped.
//! Transactional ids need the transaction coordinator, which Sluice does not have yet: those
//! requests get COORDINATOR_NOT_AVAILABLE.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::server::dispatch::RequestContext;
use crate::shard::Shard;

pub const VERSIONS: (i16, i16) = (0, 5);

pub async fn handle(
    shard: &Rc<Shard>,
    _ctx: &RequestContext,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    response.producer_id = ProducerId(-1);
    response.producer_epoch = -1;
    if request.transactional_id.is_some() {
        response.error_code = ResponseError::CoordinatorNotAvailable.code();
        return response;
    }
    let (id, epoch) = (request.producer_id.0, request.producer_epoch);
    if id >= 0 && (0..i16::MAX - 1).contains(&epoch) {
        response.producer_id = ProducerId(id);
        response.producer_epoch = epoch + 1;
        return response;
    }
    match shard.cluster.allocate_producer_id() {
        Ok(id) => {
            response.producer_id = ProducerId(id);
            response.producer_epoch = 0;
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot allocate a producer id");
            response.error_code = ResponseError::UnknownServerError.code();
        }
    }
    response
}
