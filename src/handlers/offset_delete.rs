//! OffsetDelete (key 47): deletes committed offsets of partitions the group no longer
//! consumes, tombstoning them in `__consumer_offsets` before answering.

use std::rc::Rc;

use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use crate::acl::{Operation, enforce};
use crate::coordinator::group::wire;
use crate::handlers::request::RequestContext;
use crate::shard::{Shard, groups};

/// The only version the protocol crate has.
pub const VERSIONS: (i16, i16) = (0, 0);

/// Per partition, deleted (tombstoned before the answer) or the error code; a group-level error
/// when this shard does not coordinate the group or the deletion fails.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let (group_id, topics) = wire::offset_delete_request(&request);
    if let Err(e) = enforce::group(shard, ctx, Operation::Delete, &group_id)
        .and_then(|()| groups::check_coordinator(shard, &group_id))
    {
        return wire::offset_delete_response(&Err(e));
    }
    let (result, effects) = shard.groups.call(|c| c.delete_offsets(&group_id, &topics));
    let result = match groups::apply(shard, effects).await {
        Ok(()) => result,
        Err(e) => Err(e),
    };
    wire::offset_delete_response(&result)
}
