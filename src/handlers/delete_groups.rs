//! DeleteGroups (key 42): removes empty groups this shard coordinates, tombstoning their
//! metadata and offsets in `__consumer_offsets` before answering. A share group's record
//! states (its records in `__share_group_state`) are deleted with it.

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
    let shares: Vec<bool> = shard
        .groups
        .read(|c| owned.iter().map(|id| c.is_share_group(id)).collect());
    let (deleted, effects) = shard.groups.call(|c| c.delete_groups(&owned, now));
    let stored = groups::apply(shard, effects).await;
    for ((id, error), share) in deleted.into_iter().zip(shares) {
        let error = match (error, stored) {
            (None, Err(e)) => Some(e),
            (error, _) => error,
        };
        results.push((
            id.clone(),
            delete_share_state(shard, &id, share, error).await,
        ));
    }
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

/// A deleted share group's record states go too; a group the coordinator does not hold but
/// stored states do (a share group after a restart) is deleted by deleting them.
async fn delete_share_state(
    shard: &Shard,
    id: &str,
    share: bool,
    error: Option<ResponseError>,
) -> Option<ResponseError> {
    let deleted_share = share && error.is_none();
    let unknown = error == Some(ResponseError::GroupIdNotFound);
    if !deleted_share && !unknown {
        return error;
    }
    match crate::shard::share_offsets::delete_group_state(shard, id).await {
        Ok(true) => None,
        Ok(false) => error,
        Err(e) => Some(e),
    }
}
