//! The brokers clients are told about (Metadata, DescribeCluster, FindCoordinator): on a single
//! node its shards from the configuration; in a cluster every shard of every unfenced node from
//! the quorum's image, at the host its node advertised and port `bootstrap + 1 + core`. Always
//! on the listener the request came in on (a client on the SSL listener is given SSL ports),
//! by index into `BrokerConfig::listeners` here and by name in the registrations. Read on
//! shard threads, per control-plane request.

use super::Cluster;
use super::command::split_broker_id;
use super::image::{BrokerRegistration, ClusterImage};
use crate::config::BrokerConfig;

/// One broker (shard) as clients see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertisedBroker {
    /// Kafka broker id, `node_id * 1000 + core`.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// The shard's port.
    pub port: i32,
    /// `broker.rack`, if set.
    pub rack: Option<String>,
}

/// Every broker clients of listener `listener` may use, by id.
#[must_use]
pub fn advertised_brokers(
    cluster: &Cluster,
    config: &BrokerConfig,
    listener: usize,
) -> Vec<AdvertisedBroker> {
    let name = listener_name(config, listener);
    match cluster.image() {
        Some(image) => image
            .live_shards()
            .filter_map(|(id, reg)| shard_of(reg, id, name))
            .collect(),
        None => (0..config.cores)
            .filter_map(|core| local(config, core, listener))
            .collect(),
    }
}

/// Broker `id` on listener `listener` if clients may use it now (a live shard).
#[must_use]
pub fn advertised_broker(
    cluster: &Cluster,
    config: &BrokerConfig,
    id: i32,
    listener: usize,
) -> Option<AdvertisedBroker> {
    let name = listener_name(config, listener);
    match cluster.image() {
        Some(image) => {
            let (node, _) = split_broker_id(id)?;
            let reg = image.broker(node).filter(|r| !r.fenced)?;
            image
                .is_live_broker_id(id)
                .then(|| shard_of(reg, id, name))
                .flatten()
        }
        None => config
            .core_of_broker(id)
            .and_then(|core| local(config, core, listener)),
    }
}

fn listener_name(config: &BrokerConfig, listener: usize) -> &str {
    config
        .listeners
        .get(listener)
        .map_or("PLAINTEXT", |l| l.name.as_str())
}

/// The broker named as controller: the first shard of the node whose controller leads the
/// quorum (if that node serves clients), else the lowest live broker, so clients always get
/// an id they can reach; shard 0 on a single node.
#[must_use]
pub fn controller_broker(cluster: &Cluster, config: &BrokerConfig) -> i32 {
    let (Some(image), Some(controller)) = (cluster.image(), cluster.controller()) else {
        return config.broker_id(0);
    };
    let leader_node = controller
        .metrics()
        .leader
        .and_then(|n| i32::try_from(n).ok());
    leader_node
        .and_then(|node| first_shard(&image, node))
        .or_else(|| image.live_shards().map(|(id, _)| id).next())
        .unwrap_or(-1)
}

fn first_shard(image: &ClusterImage, node: i32) -> Option<i32> {
    image
        .live_shards()
        .find(|(_, reg)| reg.node_id == node)
        .map(|(id, _)| id)
}

/// Shard `id` of a registered node on listener `name`: that bootstrap endpoint's host, and its
/// port plus one plus the core. A node registered with a single endpoint (before listeners
/// were registered by name, or with one listener) serves it whatever its name.
fn shard_of(reg: &BrokerRegistration, id: i32, name: &str) -> Option<AdvertisedBroker> {
    let (_, core) = split_broker_id(id)?;
    let endpoint = reg.endpoints.get(name).or_else(|| {
        (reg.endpoints.len() == 1)
            .then(|| reg.endpoints.values().next())
            .flatten()
    })?;
    let (host, port) = endpoint.rsplit_once(':')?;
    let port: i32 = port.parse().ok()?;
    Some(AdvertisedBroker {
        id,
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port: port + 1 + i32::from(core),
        rack: reg.rack.clone(),
    })
}

fn local(config: &BrokerConfig, core: usize, listener: usize) -> Option<AdvertisedBroker> {
    let listener = config.listeners.get(listener)?;
    Some(AdvertisedBroker {
        id: config.broker_id(core),
        host: listener.advertised_host.clone(),
        port: i32::from(*listener.shard_ports.get(core)?),
        rack: None,
    })
}
