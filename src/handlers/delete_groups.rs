//! DeleteGroups (key 42): removes empty groups this shard coordinates, tombstoning their
//! metadata and offsets in `__consumer_offsets` before answering.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, GroupId};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::shard::{Shard, groups};

/// Versions served: every version the protocol crate has.
pub const VERSIONS: (i16, i16) = (0, 2);

/// One result per named group: deleted (its tombstones stored before the answer), or the error
/// saying why not (NOT_COORDINATOR for a group another shard coordinates).
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results: Vec<(String, Option<ResponseError>)> = Vec::new();
    let mut owned = Vec::new();
    for id in &request.groups_names {
        let id = id.0.as_str().to_owned();
        match enforce::group(shard, ctx, Operation::Delete, &id)
            .and_then(|()| groups::check_coordinator(shard, &id))
        {
            Ok(()) => owned.push(id),
            Err(e) => results.push((id, Some(e))),
        }
    }
    let now = crate::now_ms();
    let (deleted, effects) = shard.groups.call(|c| c.delete_groups(&owned, now));
    let stored = groups::apply(shard, effects).await;
    results.extend(
        deleted
            .into_iter()
            .map(|(id, error)| match (error, stored) {
                (None, Err(e)) => (id, Some(e)),
                (error, _) => (id, error),
            }),
    );
    let mut response = DeleteGroupsResponse::default();
    response.results = results
        .into_iter()
        .map(|(id, error)| {
            let mut result = DeletableGroupResult::default();
            result.group_id = GroupId(str_bytes(id));
            result.error_code = error.map_or(0, |e| e.code());
            result
        })
        .collect();
    response
}
