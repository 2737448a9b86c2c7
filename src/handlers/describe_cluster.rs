//! DescribeCluster (key 60): every live shard as a broker (all nodes' in a cluster), the cluster
//! id and the controller: the first shard of the node whose controller leads the quorum
//! (shard 0 on a single node).

use std::rc::Rc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use crate::acl::{CLUSTER_NAME, ResourceType, enforce};
use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::metadata::brokers::{advertised_brokers, controller_broker};
use crate::shard::Shard;

/// Versions served: every version the protocol crate has. v2 asks whether to list fenced
/// brokers; a fenced node is not among the live brokers listed, so none is reported fenced.
pub const VERSIONS: (i16, i16) = (0, 2);

/// Every live shard as a broker (advertised host, the shard's port), the cluster id and the
/// controller; the principal's authorized operations on the cluster when asked (all of them
/// without an authorizer, as Kafka answers), else i32::MIN.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let config = &shard.config;
    let mut response = DescribeClusterResponse::default();
    response.cluster_id = str_bytes(shard.cluster.cluster_id.clone());
    response.controller_id = BrokerId(controller_broker(&shard.cluster, config));
    response.endpoint_type = 1;
    response.cluster_authorized_operations = if request.include_cluster_authorized_operations {
        enforce::authorized_operations(shard, ctx, ResourceType::Cluster, CLUSTER_NAME)
    } else {
        i32::MIN
    };
    response.brokers = advertised_brokers(&shard.cluster, config, ctx.listener)
        .into_iter()
        .map(|a| {
            let mut b = DescribeClusterBroker::default();
            b.broker_id = BrokerId(a.id);
            b.host = str_bytes(a.host);
            b.port = a.port;
            b.rack = a.rack.map(str_bytes);
            b
        })
        .collect();
    response
}
