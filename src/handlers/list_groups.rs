//! ListGroups (key 16): the groups this shard coordinates. Clients ask every broker, and
//! each shard is a broker, so the union over shards is the node's list. States filter from
//! v4, types filter from v5.

use std::rc::Rc;

use kafka_protocol::messages::{ListGroupsRequest, ListGroupsResponse};

use crate::acl::{Operation, enforce};
use crate::coordinator::group::wire;
use crate::handlers::request::RequestContext;
use crate::shard::Shard;

/// Versions served: every version the protocol crate has.
pub const VERSIONS: (i16, i16) = (0, 5);

/// The groups this shard coordinates that pass the state (v4+) and type (v5+) filters.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: ListGroupsRequest,
) -> ListGroupsResponse {
    let (states, types) = wire::list_groups_request(&request);
    let mut listed = shard.groups.read(|c| c.list_groups(&states, &types));
    // Without DESCRIBE on the cluster, only the groups the principal may DESCRIBE (Kafka's rule).
    if !enforce::cluster_allowed(shard, ctx, Operation::Describe) {
        listed.retain(|g| enforce::group(shard, ctx, Operation::Describe, &g.group_id).is_ok());
    }
    let mut response = wire::list_groups_response(&listed);
    if ctx.version < 5 {
        // The group type column exists only from v5.
        for group in &mut response.groups {
            group.group_type = Default::default();
        }
    }
    if ctx.version < 4 {
        // The group state column exists only from v4.
        for group in &mut response.groups {
            group.group_state = Default::default();
        }
    }
    response
}
