//! ShareGroupDescribe (key 77, KIP-932): state, epoch, assignor and members with their
//! subscriptions and partitions of the share groups this shard coordinates; others get
//! NOT_COORDINATOR, a group that is not a share group GROUP_ID_NOT_FOUND.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ShareGroupDescribeRequest, ShareGroupDescribeResponse};

use crate::acl::{Operation, ResourceType, enforce};
use crate::coordinator::group::share::wire;
use crate::handlers::consumer_group_heartbeat::topics_view;
use crate::handlers::request::RequestContext;
use crate::shard::{Shard, groups};

/// Versions served: v1, as Kafka 4.1+.
pub const VERSIONS: (i16, i16) = (1, 1);

/// One described group per id asked, in request order.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: ShareGroupDescribeRequest,
) -> ShareGroupDescribeResponse {
    let topics = topics_view(&shard.cluster);
    let mut response = ShareGroupDescribeResponse::default();
    response.groups = request
        .group_ids
        .iter()
        .map(|id| {
            let group_id = id.0.as_str();
            let checked = enforce::group(shard, ctx, Operation::Describe, group_id)
                .and_then(|()| groups::check_coordinator(shard, group_id));
            if let Err(e) = checked {
                return wire::described_error(group_id, e);
            }
            let mut described = shard.groups.read(|c| match c.share_group(group_id) {
                Some(group) => wire::described_group(group, &topics),
                None => wire::described_error(group_id, ResponseError::GroupIdNotFound),
            });
            if request.include_authorized_operations && described.error_code == 0 {
                described.authorized_operations =
                    enforce::authorized_operations(shard, ctx, ResourceType::Group, group_id);
            }
            described
        })
        .collect();
    response
}
