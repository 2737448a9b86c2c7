//! DescribeCluster (key 60): the shards of this node as brokers, the cluster id and the
//! controller (shard 0).

use std::rc::Rc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::shard::Shard;

/// Versions served: v2, which the protocol crate has, is not offered.
pub const VERSIONS: (i16, i16) = (0, 1);

/// Every shard of this node as a broker (advertised host, the shard's port), the cluster id and
/// shard 0 as controller; authorized operations are not computed (i32::MIN).
pub async fn handle(
    shard: &Rc<Shard>,
    _ctx: &RequestContext,
    _request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let config = &shard.config;
    let mut response = DescribeClusterResponse::default();
    response.cluster_id = str_bytes(shard.cluster.cluster_id.clone());
    response.controller_id = BrokerId(config.broker_id(0));
    response.endpoint_type = 1;
    response.cluster_authorized_operations = i32::MIN;
    response.brokers = (0..config.cores)
        .map(|core| {
            let mut b = DescribeClusterBroker::default();
            b.broker_id = BrokerId(config.broker_id(core));
            b.host = str_bytes(config.advertised_host.clone());
            b.port = i32::from(config.shard_ports[core]);
            b
        })
        .collect();
    response
}
