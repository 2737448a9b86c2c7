//! DescribeGroups (key 15): state, protocol and members of groups this shard coordinates;
//! others get NOT_COORDINATOR. An unknown group is Dead (v0-v5) or GROUP_ID_NOT_FOUND (v6).

use std::rc::Rc;

use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use crate::acl::{Operation, enforce};
use crate::coordinator::group::wire;
use crate::handlers::request::RequestContext;
use crate::shard::{Shard, groups};

/// Versions served: every version the protocol crate has.
pub const VERSIONS: (i16, i16) = (0, 6);

/// One described group per id asked, in request order.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let mut response = DescribeGroupsResponse::default();
    response.groups = request
        .groups
        .iter()
        .map(|id| {
            let mut described = describe(shard, id.0.as_str(), ctx.version);
            if let Err(e) = enforce::group(shard, ctx, Operation::Describe, id.0.as_str()) {
                described = DescribedGroup::default();
                described.group_id = id.clone();
                described.error_code = e.code();
            } else if request.include_authorized_operations {
                described.authorized_operations = enforce::authorized_operations(
                    shard,
                    ctx,
                    crate::acl::ResourceType::Group,
                    id.0.as_str(),
                );
            }
            described
        })
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

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::protocol::Encodable;

    use crate::coordinator::group::types::{GroupDescription, MemberDescription};

    use super::*;

    #[test]
    fn every_advertised_version_encodes_a_static_member() {
        let description = GroupDescription {
            group_id: "g".to_owned(),
            state: "Stable",
            protocol_type: "consumer".to_owned(),
            protocol_data: "range".to_owned(),
            members: vec![MemberDescription {
                member_id: "m".to_owned(),
                group_instance_id: Some("i".to_owned()),
                client_id: "c".to_owned(),
                client_host: "/127.0.0.1".to_owned(),
                metadata: Bytes::from_static(b"s"),
                assignment: Bytes::from_static(b"a"),
            }],
        };
        for version in VERSIONS.0..=VERSIONS.1 {
            let mut group = wire::described_group(&description, version);
            if version < 4 {
                group.members[0].group_instance_id = None;
            }
            let mut response = DescribeGroupsResponse::default();
            response.groups = vec![group];
            let mut buf = BytesMut::new();
            let encoded = response.encode(&mut buf, version);
            assert!(encoded.is_ok(), "v{version}: {encoded:?}");
        }
    }
}
