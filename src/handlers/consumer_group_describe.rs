//! ConsumerGroupDescribe (key 69, KIP-848): epochs, assignor, members with their current and
//! target assignments of the consumer groups this shard coordinates; others get
//! NOT_COORDINATOR, a classic or unknown group GROUP_ID_NOT_FOUND.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup;
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};

use crate::acl::{Operation, ResourceType, enforce};
use crate::coordinator::group::consumer::{Topics, wire};
use crate::handlers::consumer_group_heartbeat::topics_view;
use crate::handlers::request::RequestContext;
use crate::shard::{Shard, groups};

/// Versions served: every version the protocol crate has.
pub const VERSIONS: (i16, i16) = (0, 1);

/// One described group per id asked, in request order.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let topics = topics_view(&shard.cluster);
    let mut response = ConsumerGroupDescribeResponse::default();
    response.groups = request
        .group_ids
        .iter()
        .map(|id| {
            let group_id = id.0.as_str();
            if let Err(e) = enforce::group(shard, ctx, Operation::Describe, group_id) {
                return wire::described_error(group_id, e, e.to_string());
            }
            let mut described = describe(shard, group_id, &topics);
            if request.include_authorized_operations && described.error_code == 0 {
                described.authorized_operations =
                    enforce::authorized_operations(shard, ctx, ResourceType::Group, group_id);
            }
            described
        })
        .collect();
    response
}

fn describe(shard: &Shard, group_id: &str, topics: &Topics) -> DescribedGroup {
    if let Err(e) = groups::check_coordinator(shard, group_id) {
        return wire::described_error(group_id, e, e.to_string());
    }
    shard
        .groups
        .read(|c| match c.group(group_id).and_then(|g| g.consumer()) {
            Some(consumer) => wire::described_group(group_id, consumer, topics),
            None => wire::described_error(
                group_id,
                ResponseError::GroupIdNotFound,
                format!("group {group_id} is not a consumer group"),
            ),
        })
}
