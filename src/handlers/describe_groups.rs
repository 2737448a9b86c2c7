//! DescribeGroups (key 15): state, protocol and members of groups this shard coordinates;
//! others get NOT_COORDINATOR. An unknown group is Dead (v0-v5) or GROUP_ID_NOT_FOUND (v6).

use std::rc::Rc;

use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use crate::coordinator::group::wire;
use crate::server::dispatch::RequestContext;
use crate::shard::{Shard, groups};

pub const VERSIONS: (i16, i16) = (0, 6);

pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let mut response = DescribeGroupsResponse::default();
    response.groups = request
        .groups
        .iter()
        .map(|id| describe(shard, id.0.as_str(), ctx.version))
        .collect();
    response
}

fn describe(shard: &Shard, group_id: &str, version: i16) -> DescribedGroup {
    if let Err(e) = groups::check_coordinator(shard, group_id) {
        let mut out = DescribedGroup::default();
        out.group_id = id(group_id);
        out.error_code = e.code();
        return out;
    }
    let description = shard.groups.read(|c| c.describe_group(group_id));
    let mut out = wire::described_group(&description, version);
    if version < 4 {
        // Static membership (group instance ids) is reported from v4.
        for member in &mut out.members {
            member.group_instance_id = None;
        }
    }
    out
}

fn id(group_id: &str) -> kafka_protocol::messages::GroupId {
    kafka_protocol::messages::GroupId(crate::handlers::str_bytes(group_id))
}
