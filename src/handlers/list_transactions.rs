//! ListTransactions (key 66), v0-v1: the transactional ids this shard coordinates, filtered
//! by state, producer id and (v1) minimum running time. The admin client asks every broker
//! (every shard) and merges the answers.

use std::rc::Rc;

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};

use crate::acl::{Operation, enforce};
use crate::coordinator::txn::{TxnMetadata, TxnStatus};
use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::shard::Shard;

/// Versions served: every version the protocol crate has (v2: `transactional_id_pattern`, a
/// regular expression the whole id must match; one that does not compile is
/// INVALID_REGULAR_EXPRESSION).
pub const VERSIONS: (i16, i16) = (0, 2);

const STATES: [TxnStatus; 8] = [
    TxnStatus::Empty,
    TxnStatus::Ongoing,
    TxnStatus::PrepareCommit,
    TxnStatus::PrepareAbort,
    TxnStatus::CompleteCommit,
    TxnStatus::CompleteAbort,
    TxnStatus::Dead,
    TxnStatus::PrepareEpochFence,
];

/// The transactional ids this shard coordinates that pass the filters; state names it does not know
/// are returned in `unknown_state_filters`.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let mut response = ListTransactionsResponse::default();
    let pattern = match request
        .transactional_id_pattern
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        None => None,
        Some(p) => match crate::coordinator::group::consumer::subscription::compile(p) {
            Some(regex) => Some(regex),
            None => {
                response.error_code =
                    kafka_protocol::ResponseError::InvalidRegularExpression.code();
                return response;
            }
        },
    };
    response.unknown_state_filters = request
        .state_filters
        .iter()
        .filter(|f| !STATES.iter().any(|s| s.name() == f.as_str()))
        .cloned()
        .collect();
    let now = crate::now_ms();
    let states: Vec<TransactionState> = shard.txns.read(|c| {
        c.all()
            .filter(|m| matches(m, &request, now))
            .filter(|m| {
                pattern
                    .as_ref()
                    .is_none_or(|r| r.is_match(&m.transactional_id))
            })
            .map(|m| {
                let mut s = TransactionState::default();
                s.transactional_id = TransactionalId(str_bytes(m.transactional_id.clone()));
                s.producer_id = ProducerId(m.producer_id);
                s.transaction_state = str_bytes(m.status.name());
                s
            })
            .collect()
    });
    // Only the transactional ids the principal may DESCRIBE, as Kafka lists them.
    response.transaction_states = states
        .into_iter()
        .filter(|s| {
            enforce::transactional_id(shard, ctx, Operation::Describe, &s.transactional_id).is_ok()
        })
        .collect();
    response
}

fn matches(m: &TxnMetadata, request: &ListTransactionsRequest, now_ms: i64) -> bool {
    let state_ok = request.state_filters.is_empty()
        || request
            .state_filters
            .iter()
            .any(|f| f.as_str() == m.status.name());
    let pid_ok = request.producer_id_filters.is_empty()
        || request
            .producer_id_filters
            .iter()
            .any(|p| p.0 == m.producer_id);
    let duration_ok = request.duration_filter < 0
        || (m.status == TxnStatus::Ongoing && now_ms - m.start_ms >= request.duration_filter);
    state_ok && pid_ok && duration_ok
}
