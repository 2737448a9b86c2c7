//! OffsetFetch (key 9): committed offsets of one group (v1-v7) or of several (v8+). A group
//! this shard does not coordinate gets NOT_COORDINATOR (per group from v8). `require_stable`
//! needs no waiting: there are no transactional offset commits yet.

use std::rc::Rc;

use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};

use crate::acl::{Operation, enforce};
use crate::coordinator::group::wire::{self, FetchedGroup};
use crate::handlers::request::RequestContext;
use crate::shard::{Shard, groups};

/// Versions served: v1 is the oldest version the protocol crate has, v9 its newest.
pub const VERSIONS: (i16, i16) = (1, 9);

/// The committed offsets of the asked group (v1-v7) or groups (v8+), per group NOT_COORDINATOR when
/// another shard coordinates it.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let answers: Vec<FetchedGroup> = wire::offset_fetch_request(&request, ctx.version)
        .into_iter()
        .map(|(group_id, topics)| {
            let result = enforce::group(shard, ctx, Operation::Describe, &group_id)
                .and_then(|()| groups::check_coordinator(shard, &group_id))
                .map(|()| {
                    shard
                        .groups
                        .read(|c| c.fetch_offsets(&group_id, topics.as_deref()))
                });
            (group_id, result)
        })
        .collect();
    wire::offset_fetch_response(&answers, ctx.version)
}
