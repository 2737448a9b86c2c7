//! Starting a node of a multi-node cluster, on the main thread before any shard runs: the
//! controller (its own thread), the membership thread, and the wait until this node's mirror
//! of the quorum's metadata has caught up and shows it registered and unfenced, so shards never
//! serve (or clean up) from metadata that is behind.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{BrokerConfig, ClusterConfig};
use crate::membership::{self, MembershipSettings};
use crate::metadata::quorum::{Controller, ControllerNode, ControllerSettings};
use crate::metadata::{Cluster, cluster_id_for};

/// Why a node could not join its cluster.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// `process.roles=broker` without `controller`: such a node would follow the quorum as a
    /// learner, which this build does not have yet.
    #[error(
        "process.roles=broker (a node without a controller) is not supported yet: give every \
         node process.roles=broker,controller and list it in controller.quorum.voters"
    )]
    BrokerOnly,
    /// The controller could not start, or the node was not registered in time; says why.
    #[error("controller quorum: {0}")]
    Quorum(String),
    /// Creating the metadata log directory or a thread failed.
    #[error("i/o error while joining the cluster: {0}")]
    Io(#[from] std::io::Error),
}

/// Average size of a metadata log record, to turn Kafka's snapshot interval in bytes
/// (`metadata.log.max.record.bytes.between.snapshots`) into openraft's count of entries.
const AVERAGE_RECORD_BYTES: u64 = 256;
/// How often start-up looks whether the node is registered yet.
const JOIN_POLL: Duration = Duration::from_millis(50);

/// Starts the controller and membership of node `cfg.node_id` and returns its metadata once
/// it has caught up (broker roles) or once the controller runs (controller-only).
///
/// # Errors
/// [`JoinError::Quorum`] when the controller cannot start or the node is not registered and
/// unfenced within `initial.broker.registration.timeout.ms`; [`JoinError::BrokerOnly`] for
/// `process.roles=broker`, which needs controller learners this build does not have.
pub fn join(config: &BrokerConfig, cfg: &ClusterConfig) -> Result<Arc<Cluster>, JoinError> {
    let Some(listener) = &cfg.controller_listener else {
        return Err(JoinError::BrokerOnly);
    };
    let voters: BTreeMap<u64, ControllerNode> = cfg
        .voters
        .iter()
        .filter_map(|v| {
            let id = u64::try_from(v.id).ok()?;
            let node = ControllerNode {
                host: v.host.clone(),
                port: v.port,
            };
            Some((id, node))
        })
        .collect();
    let node_id = u64::try_from(cfg.node_id)
        .map_err(|_| JoinError::Quorum(format!("node.id {} is negative", cfg.node_id)))?;
    let own = ControllerNode {
        host: listener.host.clone(),
        port: listener.port,
    };
    let dir = cfg.metadata_log_dir.join("__cluster_metadata-0");
    std::fs::create_dir_all(&dir)?;
    let controller = Controller::start(node_id, own, voters, &dir, settings(cfg))
        .map_err(|e| JoinError::Quorum(e.to_string()))?;
    let cluster = Arc::new(Cluster::for_quorum(
        &config.data_dir,
        config.cores,
        cfg.node_id,
        cluster_id_for(&voters_text(cfg)),
        controller,
    ));
    // Every client listener by name, so each client is given the ports of the listener it
    // came in on.
    let endpoints = cfg.roles.is_broker().then(|| {
        config
            .listeners
            .iter()
            .map(|l| {
                let endpoint = format!("{}:{}", host_for_uri(&l.advertised_host), l.bootstrap_port);
                (l.name.clone(), endpoint)
            })
            .collect::<BTreeMap<_, _>>()
    });
    let registers = endpoints.is_some();
    let incarnation = uuid::Uuid::new_v4();
    membership::start(
        Arc::clone(&cluster),
        MembershipSettings {
            node_id: cfg.node_id,
            endpoints,
            shards: u16::try_from(config.cores).unwrap_or(u16::MAX),
            rack: cfg.rack.clone(),
            heartbeat_interval: cfg.heartbeat_interval,
            session_timeout: cfg.session_timeout,
            leader_rebalance: cfg.replication.leader_rebalance,
            incarnation,
        },
    )?;
    if registers {
        wait_until_unfenced(&cluster, cfg, incarnation)?;
    }
    Ok(cluster)
}

/// The quorum's timing from the node's KRaft keys.
fn settings(cfg: &ClusterConfig) -> ControllerSettings {
    let snapshot_logs = (cfg.snapshot_bytes / AVERAGE_RECORD_BYTES).max(1);
    ControllerSettings {
        snapshot_logs,
        // A follower further behind than one snapshot interval catches up from a snapshot.
        logs_kept_after_snapshot: snapshot_logs.min(1000),
        ..ControllerSettings::from_cluster(cfg)
    }
}

/// `controller.quorum.voters` in a canonical form (sorted by id), for the cluster id.
fn voters_text(cfg: &ClusterConfig) -> String {
    let mut voters: Vec<_> = cfg.voters.iter().collect();
    voters.sort_by_key(|v| v.id);
    voters
        .iter()
        .map(|v| format!("{}@{}:{}", v.id, v.host, v.port))
        .collect::<Vec<_>>()
        .join(",")
}

/// An IPv6 address in brackets, as `host:port` strings need it.
fn host_for_uri(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// Blocks until the node's mirror shows this run (`incarnation`) registered and unfenced, or
/// the registration timeout passes. The previous run's registration does not count: a mirror
/// replayed from the node's own log shows it unfenced as it was before the node went down
/// (leading partitions that have moved on since), until the node catches up.
fn wait_until_unfenced(
    cluster: &Cluster,
    cfg: &ClusterConfig,
    incarnation: uuid::Uuid,
) -> Result<(), JoinError> {
    let deadline = Instant::now() + cfg.registration_timeout;
    tracing::info!(
        node = cfg.node_id,
        "waiting for the controller quorum to register this node"
    );
    loop {
        let joined = cluster
            .image()
            .and_then(|image| {
                image
                    .broker(cfg.node_id)
                    .map(|b| b.incarnation == incarnation && !b.fenced)
            })
            .unwrap_or(false);
        if joined {
            tracing::info!(node = cfg.node_id, "registered with the controller quorum");
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(JoinError::Quorum(format!(
                "node {} was not registered by the controller quorum within {:?} \
                 (initial.broker.registration.timeout.ms): is a majority of \
                 controller.quorum.voters running and reachable?",
                cfg.node_id, cfg.registration_timeout
            )));
        }
        std::thread::sleep(JOIN_POLL);
    }
}
