//! DescribeTransactions (key 65), v0: the state of transactional ids this shard
//! coordinates; ids coordinated elsewhere get NOT_COORDINATOR (the admin client asks the
//! coordinator it found with FindCoordinator).

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TransactionalId,
};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::handlers::{str_bytes, topic_name};
use crate::shard::{Shard, txns};

/// The only version the protocol crate has.
pub const VERSIONS: (i16, i16) = (0, 0);

/// One state per transactional id asked; NOT_COORDINATOR for ids another shard coordinates.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let mut response = DescribeTransactionsResponse::default();
    for id in request.transactional_ids {
        let state = match enforce::transactional_id(shard, ctx, Operation::Describe, &id) {
            Ok(()) => describe(shard, id),
            Err(e) => {
                let mut refused = TransactionState::default();
                refused.transactional_id = id;
                refused.error_code = e.code();
                refused
            }
        };
        response.transaction_states.push(state);
    }
    response
}

fn describe(shard: &Shard, id: TransactionalId) -> TransactionState {
    let mut out = TransactionState::default();
    out.producer_id = ProducerId(-1);
    out.producer_epoch = -1;
    out.transaction_start_time_ms = -1;
    if let Err(e) = txns::check_coordinator(shard, id.as_str()) {
        out.error_code = e.code();
        out.transactional_id = id;
        return out;
    }
    let found = shard.txns.read(|c| c.get(id.as_str()).cloned());
    out.transactional_id = id;
    let Some(meta) = found else {
        out.error_code = ResponseError::TransactionalIdNotFound.code();
        return out;
    };
    out.transaction_state = str_bytes(meta.status.name());
    out.transaction_timeout_ms = meta.timeout_ms;
    out.transaction_start_time_ms = meta.start_ms;
    out.producer_id = ProducerId(meta.producer_id);
    out.producer_epoch = meta.producer_epoch;
    for (topic, partitions) in meta.partitions_by_topic() {
        let mut t = TopicData::default();
        t.topic = topic_name(topic);
        t.partitions = partitions;
        out.topics.push(t);
    }
    out
}
