//! KRaft-mode configuration (issue 13): `process.roles`, the controller quorum's voters or
//! bootstrap servers, the CONTROLLER listener, the quorum and broker-liveness timeouts and the
//! metadata log's place and size, checked against one another into a typed [`ClusterConfig`].
//! The keys themselves are entries of the broker key table (`broker_keys.rs`), which stores
//! their values in [`KraftKeys`]; this module resolves them once all keys and flags are read.
//! Without `process.roles` the node is the single-node broker of before: the keys are parsed
//! (a malformed value still stops start-up) but nothing reads them. Runs on the main thread at
//! start-up, inside `BrokerConfig::from_properties`.

use std::path::PathBuf;
use std::time::Duration;

use super::listeners::{self, Listener};
use super::{BrokerConfig, ConfigError, SecurityProtocol, invalid, parse_key};

/// The keys that only mean something in KRaft mode; setting one without `process.roles` is
/// warned about, since the single-node broker ignores it.
pub const CLUSTER_KEYS: &[&str] = &[
    "process.roles",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.listener.names",
    "listener.security.protocol.map",
    "controller.quorum.election.timeout.ms",
    "controller.quorum.fetch.timeout.ms",
    "controller.quorum.request.timeout.ms",
    "broker.heartbeat.interval.ms",
    "broker.session.timeout.ms",
    "initial.broker.registration.timeout.ms",
    "metadata.log.dir",
    "metadata.log.max.record.bytes.between.snapshots",
    "metadata.max.retention.bytes",
    "offsets.topic.replication.factor",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "share.coordinator.state.topic.replication.factor",
    "share.coordinator.state.topic.min.isr",
    "replica.lag.time.max.ms",
    "replica.fetch.max.bytes",
    "replica.fetch.response.max.bytes",
    "replica.fetch.wait.max.ms",
    "replica.fetch.backoff.ms",
    "auto.leader.rebalance.enable",
    "leader.imbalance.check.interval.seconds",
    "leader.imbalance.per.broker.percentage",
    "broker.rack",
    "replica.selector.class",
];

/// `process.roles`: what this node does in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessRoles {
    /// `broker`: serves clients; follows the quorum as a non-voting learner.
    Broker,
    /// `controller`: a voter of the controller quorum; serves no clients.
    Controller,
    /// `broker,controller`: both (Kafka's combined mode; the three-node cluster).
    Combined,
}

impl ProcessRoles {
    /// The roles of a `process.roles` value; `Ok(None)` for an empty value (Kafka's default:
    /// not KRaft mode).
    pub fn parse(key: &str, value: &str) -> Result<Option<Self>, ConfigError> {
        let (mut broker, mut controller) = (false, false);
        for role in value.split(',').map(str::trim).filter(|r| !r.is_empty()) {
            let seen = match role.to_ascii_lowercase().as_str() {
                "broker" => std::mem::replace(&mut broker, true),
                "controller" => std::mem::replace(&mut controller, true),
                _ => {
                    return Err(invalid(
                        key,
                        value,
                        &format!("unknown role {role:?} (broker, controller)"),
                    ));
                }
            };
            if seen {
                return Err(invalid(key, value, &format!("role {role} is listed twice")));
            }
        }
        Ok(match (broker, controller) {
            (false, false) => None,
            (true, false) => Some(Self::Broker),
            (false, true) => Some(Self::Controller),
            (true, true) => Some(Self::Combined),
        })
    }

    /// The value as Kafka writes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Broker => "broker",
            Self::Controller => "controller",
            Self::Combined => "broker,controller",
        }
    }

    /// Whether the node serves clients.
    pub fn is_broker(self) -> bool {
        matches!(self, Self::Broker | Self::Combined)
    }

    /// Whether the node votes in the controller quorum.
    pub fn is_controller(self) -> bool {
        matches!(self, Self::Controller | Self::Combined)
    }
}

/// One entry of `controller.quorum.voters`: `id@host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    /// The voter's `node.id` (not a shard's broker id).
    pub id: i32,
    /// Host of its CONTROLLER listener (IPv6 without brackets).
    pub host: String,
    /// Port of its CONTROLLER listener.
    pub port: u16,
}

/// A `host:port` of `controller.quorum.bootstrap.servers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// The KRaft keys as the table's entries parse them, before they are checked against one
/// another. Fields are the keys' values in the keys' own units.
#[derive(Debug, Clone, Default)]
pub struct KraftKeys {
    /// `process.roles`; `None` (unset or empty): single-node mode.
    pub process_roles: Option<ProcessRoles>,
    /// `controller.quorum.voters`, in the order written.
    pub voters: Vec<Voter>,
    /// `controller.quorum.bootstrap.servers`, in the order written.
    pub bootstrap_servers: Vec<Endpoint>,
    /// `controller.listener.names`, upper-cased; the first is the one used.
    pub controller_listener_names: Vec<String>,
    /// `listeners` exactly as written; single-node mode reads only its first entry.
    pub listeners: String,
    /// `advertised.listeners` as written; empty when unset.
    pub advertised_listeners: String,
    /// `listener.security.protocol.map` as (name, protocol) pairs.
    pub protocol_map: Vec<(String, String)>,
    /// `controller.quorum.election.timeout.ms`.
    pub election_timeout_ms: u64,
    /// `controller.quorum.fetch.timeout.ms`.
    pub fetch_timeout_ms: u64,
    /// `controller.quorum.request.timeout.ms`.
    pub request_timeout_ms: u64,
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u64,
    /// `broker.session.timeout.ms`.
    pub session_timeout_ms: u64,
    /// `initial.broker.registration.timeout.ms`.
    pub registration_timeout_ms: u64,
    /// `metadata.log.dir`; `None`: the data directory.
    pub metadata_log_dir: Option<PathBuf>,
    /// `metadata.log.max.record.bytes.between.snapshots`.
    pub snapshot_bytes: u64,
    /// `metadata.max.retention.bytes`; -1: no limit.
    pub metadata_retention_bytes: i64,
    /// `offsets.topic.replication.factor`.
    pub offsets_replication_factor: i16,
    /// `transaction.state.log.replication.factor`.
    pub transaction_replication_factor: i16,
    /// `transaction.state.log.min.isr`.
    pub transaction_min_isr: i32,
    /// `share.coordinator.state.topic.replication.factor`.
    pub share_state_replication_factor: i16,
    /// `share.coordinator.state.topic.min.isr`.
    pub share_state_min_isr: i32,
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: u64,
    /// `replica.fetch.max.bytes`.
    pub replica_fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes`.
    pub replica_fetch_response_max_bytes: i32,
    /// `replica.fetch.wait.max.ms`.
    pub replica_fetch_wait_max_ms: u64,
    /// `replica.fetch.backoff.ms`.
    pub replica_fetch_backoff_ms: u64,
    /// `auto.leader.rebalance.enable`.
    pub auto_leader_rebalance: bool,
    /// `leader.imbalance.check.interval.seconds`.
    pub leader_imbalance_check_interval_seconds: u64,
    /// `leader.imbalance.per.broker.percentage`.
    pub leader_imbalance_per_broker_percentage: u32,
    /// `broker.rack`; `None` when unset.
    pub broker_rack: Option<String>,
    /// `replica.selector.class`.
    pub replica_selector: ReplicaSelector,
}

/// `replica.selector.class` (KIP-392): how a partition leader answers a consumer that names
/// its rack (`client.rack`). Only Kafka's two built-in selectors exist here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReplicaSelector {
    /// Unset, or Kafka's `LeaderSelector`: consumers always read from the leader.
    #[default]
    Leader,
    /// Kafka's `RackAwareReplicaSelector`: a consumer is sent to an in-sync replica in its
    /// own rack when the leader is not in it.
    RackAware,
}

impl ReplicaSelector {
    /// Kafka's class name of the leader selector.
    pub const LEADER_CLASS: &'static str = "org.apache.kafka.common.replica.LeaderSelector";
    /// Kafka's class name of the rack-aware selector.
    pub const RACK_AWARE_CLASS: &'static str =
        "org.apache.kafka.common.replica.RackAwareReplicaSelector";

    /// The selector a `replica.selector.class` value names; `None` for any other class
    /// (Sluice cannot load Java classes, so a custom selector is refused at start).
    #[must_use]
    pub fn from_class(class: &str) -> Option<Self> {
        match class.trim() {
            "" | Self::LEADER_CLASS => Some(Self::Leader),
            Self::RACK_AWARE_CLASS => Some(Self::RackAware),
            _ => None,
        }
    }
}

/// A node's place in a multi-node cluster, checked: present on [`BrokerConfig::cluster`]
/// only when `process.roles` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `node.id`, set explicitly (file or `--node-id`) and not negative; shard `c` of this
    /// node is Kafka broker `node_id * 1000 + c`.
    pub node_id: i32,
    /// `process.roles`.
    pub roles: ProcessRoles,
    /// `controller.quorum.voters`: the static quorum; empty when only bootstrap servers are
    /// given (a dynamic quorum, KIP-853). Ids are unique; a controller is among them.
    pub voters: Vec<Voter>,
    /// `controller.quorum.bootstrap.servers`: where to find the quorum when `voters` is empty.
    pub bootstrap_servers: Vec<Endpoint>,
    /// The first of `controller.listener.names`: the listener the quorum talks on (always
    /// PLAINTEXT here).
    pub controller_listener_name: String,
    /// This node's controller listener from `listeners`; `Some` exactly for controllers.
    pub controller_listener: Option<Listener>,
    /// The other entries of `listeners`, for clients; empty exactly for controller-only
    /// nodes. The node serves the first (the bootstrap port and the shards' ports beside it).
    pub broker_listeners: Vec<Listener>,
    /// What Metadata gives clients for the first broker listener: its `advertised.listeners`
    /// entry, or that listener itself (a wildcard host advertised as 127.0.0.1).
    pub advertised_listener: Option<Listener>,
    /// `controller.quorum.election.timeout.ms` (Kafka default 1000 ms).
    pub election_timeout: Duration,
    /// `controller.quorum.fetch.timeout.ms` (2000 ms): a follower that hears nothing from the
    /// leader this long starts an election.
    pub fetch_timeout: Duration,
    /// `controller.quorum.request.timeout.ms` (2000 ms): one quorum RPC.
    pub request_timeout: Duration,
    /// `broker.heartbeat.interval.ms` (2000 ms): broker to active controller.
    pub heartbeat_interval: Duration,
    /// `broker.session.timeout.ms` (9000 ms): a broker silent this long is fenced.
    pub session_timeout: Duration,
    /// `initial.broker.registration.timeout.ms` (60000 ms): a broker that cannot register
    /// in this long stops.
    pub registration_timeout: Duration,
    /// `metadata.log.dir`, or the data directory: `__cluster_metadata-0/` goes under it.
    pub metadata_log_dir: PathBuf,
    /// `metadata.log.max.record.bytes.between.snapshots` (20 MiB): snapshot after this many
    /// new log bytes.
    pub snapshot_bytes: u64,
    /// `metadata.max.retention.bytes` (100 MiB, soft; -1: no limit): log and snapshots kept.
    pub metadata_retention_bytes: i64,
    /// `offsets.topic.replication.factor` (Kafka default 3): replicas of `__consumer_offsets`.
    pub offsets_replication_factor: i16,
    /// `transaction.state.log.replication.factor` (3): replicas of `__transaction_state`.
    pub transaction_replication_factor: i16,
    /// `transaction.state.log.min.isr` (2): `min.insync.replicas` of `__transaction_state`.
    pub transaction_min_isr: i32,
    /// `share.coordinator.state.topic.replication.factor` (3): replicas of
    /// `__share_group_state`.
    pub share_state_replication_factor: i16,
    /// `share.coordinator.state.topic.min.isr` (2): `min.insync.replicas` of
    /// `__share_group_state`.
    pub share_state_min_isr: i32,
    /// How followers replicate partitions from their leaders.
    pub replication: ReplicationConfig,
    /// `broker.rack`: registered with the node, reported to clients in Metadata and
    /// DescribeCluster; `None` when unset.
    pub rack: Option<String>,
}

/// The `replica.*` keys: follower fetching and ISR membership, with Kafka's names and
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// `replica.lag.time.max.ms` (30000 ms): an ISR follower not caught up with the leader's
    /// log end for this long leaves the ISR.
    pub lag_time_max: Duration,
    /// `replica.fetch.max.bytes` (1 MiB): bytes asked per partition in one follower fetch
    /// (a larger first batch still comes whole).
    pub fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes` (10 MiB): bytes asked per follower fetch.
    pub fetch_response_max_bytes: i32,
    /// `replica.fetch.wait.max.ms` (500 ms): the follower's long-poll; below the lag time so
    /// an idle follower is never dropped from the ISR.
    pub fetch_wait_max: Duration,
    /// `replica.fetch.backoff.ms` (1000 ms): pause after a failed follower fetch.
    pub fetch_backoff: Duration,
    /// `auto.leader.rebalance.enable` (true), `leader.imbalance.check.interval.seconds`
    /// (300 s) and `leader.imbalance.per.broker.percentage` (10): the active controller's
    /// periodic preferred leader elections; `None` when disabled.
    pub leader_rebalance: Option<LeaderRebalance>,
    /// `replica.selector.class` (unset: the leader serves every consumer, as in Kafka).
    pub selector: ReplicaSelector,
}

/// When the active controller moves leaders back to their preferred replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderRebalance {
    /// How often it looks.
    pub check_interval: Duration,
    /// A broker's share (percent) of the partitions it is preferred for but does not lead
    /// above which those partitions are elected back to it.
    pub imbalance_percent: u32,
}

/// Parses `controller.quorum.voters`: `id@host:port,...`, ids unique and not negative.
pub(super) fn parse_voters(key: &str, value: &str) -> Result<Vec<Voter>, ConfigError> {
    let mut out: Vec<Voter> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, addr) = entry
            .split_once('@')
            .ok_or_else(|| invalid(key, value, &format!("{entry:?} is not id@host:port")))?;
        let id: i32 = parse_key(key, id)?;
        if id < 0 {
            return Err(invalid(key, value, &format!("voter id {id} is negative")));
        }
        if out.iter().any(|v| v.id == id) {
            return Err(invalid(
                key,
                value,
                &format!("voter id {id} is listed twice"),
            ));
        }
        let (host, port) = listeners::host_port(key, value, addr)?;
        out.push(Voter { id, host, port });
    }
    Ok(out)
}

/// Parses `controller.quorum.bootstrap.servers`: `host:port,...`.
pub(super) fn parse_endpoints(key: &str, value: &str) -> Result<Vec<Endpoint>, ConfigError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| listeners::host_port(key, value, e).map(|(host, port)| Endpoint { host, port }))
        .collect()
}

/// The voters as the key is written.
pub(super) fn show_voters(voters: &[Voter]) -> String {
    let entries: Vec<String> = voters
        .iter()
        .map(|v| format!("{}@{}", v.id, bracket(&v.host, v.port)))
        .collect();
    entries.join(",")
}

/// The bootstrap servers as the key is written.
pub(super) fn show_endpoints(endpoints: &[Endpoint]) -> String {
    let entries: Vec<String> = endpoints.iter().map(|e| bracket(&e.host, e.port)).collect();
    entries.join(",")
}

fn bracket(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Sets the client listener's security protocol and, in KRaft mode, its host, port and
/// advertised host from the named entries of `listeners` and `advertised.listeners`. Runs after
/// the file's keys and before the flags, so `--host`/`--port` still override.
pub(super) fn apply_listeners(cfg: &mut BrokerConfig) -> Result<(), ConfigError> {
    let raw = cfg.kraft.listeners.clone();
    if cfg.kraft.process_roles.is_none() {
        // Single-node mode, as before: the first entry's prefix is its security protocol.
        cfg.security_protocol = SecurityProtocol::of_listener(raw.trim())
            .map_err(|e| invalid("listeners", &raw, &e))?;
        return Ok(());
    }
    let all = listeners::parse_list("listeners", &raw)?;
    let names = &cfg.kraft.controller_listener_names;
    let Some(broker) = all.iter().find(|l| !names.contains(&l.name)) else {
        return Ok(()); // a controller-only node serves no clients
    };
    let protocol = protocol_of(cfg, &broker.name)?;
    cfg.security_protocol = SecurityProtocol::of_listener(&format!("{protocol}://"))
        .map_err(|e| invalid("listener.security.protocol.map", &protocol, &e))?;
    (cfg.host, cfg.bootstrap_port) = (broker.host.clone(), broker.port);
    if let Some(advertised) = advertised(cfg, broker)? {
        cfg.advertised_host = advertised.host;
    }
    Ok(())
}

/// The protocol the map gives listener `name`, or an error naming the map.
fn protocol_of(cfg: &BrokerConfig, name: &str) -> Result<String, ConfigError> {
    let key = "listener.security.protocol.map";
    let map = &cfg.kraft.protocol_map;
    let is_default = !cfg.explicit.contains_key(key);
    listeners::protocol_of(map, is_default, &cfg.kraft.controller_listener_names, name)
        .map(str::to_string)
        .ok_or_else(|| {
            invalid(
                key,
                &listeners::show_protocol_map(map),
                &format!("has no security protocol for listener {name}"),
            )
        })
}

/// The `advertised.listeners` entry of the client listener, if the key is set. Its names must
/// be listeners of this node, and it must advertise the client listener with a real host.
fn advertised(cfg: &BrokerConfig, broker: &Listener) -> Result<Option<Listener>, ConfigError> {
    let key = "advertised.listeners";
    let raw = &cfg.kraft.advertised_listeners;
    if raw.trim().is_empty() {
        return Ok(None);
    }
    let all = listeners::parse_list("listeners", &cfg.kraft.listeners)?;
    let list = listeners::parse_list(key, raw)?;
    if let Some(stray) = list.iter().find(|a| !all.iter().any(|l| l.name == a.name)) {
        return Err(invalid(
            key,
            raw,
            &format!("listener {} is not in listeners", stray.name),
        ));
    }
    let Some(entry) = list.into_iter().find(|a| a.name == broker.name) else {
        return Err(invalid(
            key,
            raw,
            &format!("has no entry for listener {}", broker.name),
        ));
    };
    if matches!(entry.host.as_str(), "" | "0.0.0.0" | "::") {
        return Err(invalid(key, raw, "cannot advertise a wildcard address"));
    }
    Ok(Some(entry))
}

impl ClusterConfig {
    /// The checked KRaft configuration of `cfg` (every key and flag applied), `None` in
    /// single-node mode. `node_id_given`: `node.id` (or `broker.id`, or `--node-id`) was set
    /// rather than defaulted.
    pub(super) fn resolve(
        cfg: &BrokerConfig,
        node_id_given: bool,
    ) -> Result<Option<Self>, ConfigError> {
        let k = &cfg.kraft;
        let Some(roles) = k.process_roles else {
            warn_ignored(cfg);
            return Ok(None);
        };
        let node_id = check_node_id(cfg.node_id, node_id_given)?;
        let controller_listener_name = check_quorum(cfg, roles, node_id)?;
        let all = listeners::parse_list("listeners", &k.listeners)?;
        let (controllers, mut brokers): (Vec<Listener>, Vec<Listener>) = all
            .into_iter()
            .partition(|l| k.controller_listener_names.contains(&l.name));
        let controller_listener = check_controller_listener(cfg, roles, &controllers)?;
        check_broker_listeners(roles, &brokers, &controllers, &k.listeners)?;
        if let Some(first) = brokers.first_mut() {
            // `--host`/`--port` override the client listener, as in single-node mode.
            first.host.clone_from(&cfg.host);
            first.port = cfg.bootstrap_port;
        }
        let advertised_listener = brokers.first().map(|b| Listener {
            host: cfg.advertised_host.clone(),
            ..b.clone()
        });
        if let Some(c) = &controller_listener {
            check_ports_apart(cfg, roles, c)?;
        }
        Ok(Some(ClusterConfig {
            node_id,
            roles,
            voters: k.voters.clone(),
            bootstrap_servers: k.bootstrap_servers.clone(),
            controller_listener_name,
            controller_listener,
            broker_listeners: brokers,
            advertised_listener,
            election_timeout: Duration::from_millis(k.election_timeout_ms),
            fetch_timeout: Duration::from_millis(k.fetch_timeout_ms),
            request_timeout: Duration::from_millis(k.request_timeout_ms),
            heartbeat_interval: Duration::from_millis(k.heartbeat_interval_ms),
            session_timeout: Duration::from_millis(k.session_timeout_ms),
            registration_timeout: Duration::from_millis(k.registration_timeout_ms),
            metadata_log_dir: k
                .metadata_log_dir
                .clone()
                .unwrap_or_else(|| cfg.data_dir.clone()),
            snapshot_bytes: k.snapshot_bytes,
            metadata_retention_bytes: k.metadata_retention_bytes,
            offsets_replication_factor: k.offsets_replication_factor,
            transaction_replication_factor: k.transaction_replication_factor,
            transaction_min_isr: k.transaction_min_isr,
            share_state_replication_factor: k.share_state_replication_factor,
            share_state_min_isr: k.share_state_min_isr,
            replication: ReplicationConfig {
                lag_time_max: Duration::from_millis(k.replica_lag_time_max_ms),
                fetch_max_bytes: k.replica_fetch_max_bytes,
                fetch_response_max_bytes: k.replica_fetch_response_max_bytes,
                fetch_wait_max: Duration::from_millis(k.replica_fetch_wait_max_ms),
                fetch_backoff: Duration::from_millis(k.replica_fetch_backoff_ms),
                leader_rebalance: k.auto_leader_rebalance.then(|| LeaderRebalance {
                    check_interval: Duration::from_secs(k.leader_imbalance_check_interval_seconds),
                    imbalance_percent: k.leader_imbalance_per_broker_percentage,
                }),
                selector: k.replica_selector,
            },
            rack: k.broker_rack.clone(),
        }))
    }
}

/// Single-node mode reads none of the KRaft keys; say so when the file sets some, since an
/// operator who set them expects a cluster.
fn warn_ignored(cfg: &BrokerConfig) {
    let set: Vec<&str> = CLUSTER_KEYS
        .iter()
        .copied()
        .filter(|k| cfg.explicit.contains_key(*k))
        .collect();
    if !set.is_empty() {
        tracing::warn!(
            keys = %set.join(","),
            "process.roles is not set: running as a single node, these keys are ignored"
        );
    }
}

/// KRaft has no default node id: two nodes defaulting to 0 would be one voter twice.
fn check_node_id(node_id: i32, given: bool) -> Result<i32, ConfigError> {
    if !given {
        return Err(invalid(
            "node.id",
            "(unset)",
            "must be set when process.roles is set (KRaft mode)",
        ));
    }
    // Shard c is broker node_id * 1000 + c, an int32 as Kafka's broker ids are.
    if !(0..=i32::MAX / 1000 - 1).contains(&node_id) {
        return Err(invalid(
            "node.id",
            &node_id.to_string(),
            &format!(
                "must be between 0 and {} in KRaft mode",
                i32::MAX / 1000 - 1
            ),
        ));
    }
    Ok(node_id)
}

/// The quorum must be findable, a controller must be one of its voters, and the controller
/// listener must be named; returns that name.
fn check_quorum(
    cfg: &BrokerConfig,
    roles: ProcessRoles,
    node_id: i32,
) -> Result<String, ConfigError> {
    let k = &cfg.kraft;
    if k.voters.is_empty() && k.bootstrap_servers.is_empty() {
        return Err(invalid(
            "controller.quorum.voters",
            "",
            "KRaft mode needs controller.quorum.voters (id@host:port,...) or \
             controller.quorum.bootstrap.servers (host:port,...)",
        ));
    }
    if roles.is_controller() && !k.voters.is_empty() && !k.voters.iter().any(|v| v.id == node_id) {
        return Err(invalid(
            "controller.quorum.voters",
            &show_voters(&k.voters),
            &format!("this node is a controller but its node.id {node_id} is not a voter"),
        ));
    }
    k.controller_listener_names.first().cloned().ok_or_else(|| {
        invalid(
            "controller.listener.names",
            "",
            "must be set when process.roles is set (e.g. CONTROLLER)",
        )
    })
}

/// A controller listens on every name of `controller.listener.names`; the first one is the
/// quorum's, and must be PLAINTEXT (the only protocol the quorum speaks here).
fn check_controller_listener(
    cfg: &BrokerConfig,
    roles: ProcessRoles,
    controllers: &[Listener],
) -> Result<Option<Listener>, ConfigError> {
    let k = &cfg.kraft;
    if !roles.is_controller() {
        return Ok(None);
    }
    let names = k.controller_listener_names.join(",");
    if controllers.is_empty() {
        return Err(invalid(
            "listeners",
            &k.listeners,
            &format!(
                "process.roles includes controller, so listeners needs a {}://host:port entry \
                 (controller.listener.names={names})",
                k.controller_listener_names[0]
            ),
        ));
    }
    if let Some(missing) = k
        .controller_listener_names
        .iter()
        .find(|n| !controllers.iter().any(|l| l.name == **n))
    {
        return Err(invalid(
            "controller.listener.names",
            &names,
            &format!("names listener {missing}, which listeners does not have"),
        ));
    }
    let first = &k.controller_listener_names[0];
    let protocol = protocol_of(cfg, first)?;
    if protocol != "PLAINTEXT" {
        return Err(invalid(
            "listener.security.protocol.map",
            &listeners::show_protocol_map(&k.protocol_map),
            &format!("controller listener {first} is {protocol}; the quorum speaks PLAINTEXT only"),
        ));
    }
    Ok(controllers.iter().find(|l| l.name == *first).cloned())
}

/// A broker needs a client listener; a broker-only node must not listen as a controller
/// (Kafka's rule: it reaches the controllers on that listener name, it does not serve it).
fn check_broker_listeners(
    roles: ProcessRoles,
    brokers: &[Listener],
    controllers: &[Listener],
    raw: &str,
) -> Result<(), ConfigError> {
    if roles == ProcessRoles::Broker
        && let Some(c) = controllers.first()
    {
        return Err(invalid(
            "listeners",
            raw,
            &format!(
                "process.roles=broker, so listeners must not include the controller \
                 listener {}",
                c.name
            ),
        ));
    }
    if roles.is_broker() && brokers.is_empty() {
        return Err(invalid(
            "listeners",
            raw,
            "process.roles includes broker, so listeners needs a client entry \
             (PLAINTEXT://host:port)",
        ));
    }
    Ok(())
}

/// The controller port must not be one the node's client side binds on the same host.
fn check_ports_apart(
    cfg: &BrokerConfig,
    roles: ProcessRoles,
    controller: &Listener,
) -> Result<(), ConfigError> {
    if !roles.is_broker() || controller.host != cfg.host {
        return Ok(());
    }
    let taken = std::iter::once(cfg.bootstrap_port).chain(cfg.shard_ports.iter().copied());
    if taken.into_iter().any(|p| p == controller.port) {
        return Err(invalid(
            "listeners",
            &cfg.kraft.listeners,
            &format!(
                "controller port {} is also the bootstrap port or a shard's port ({}, {:?})",
                controller.port, cfg.bootstrap_port, cfg.shard_ports
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "cluster_tests.rs"]
mod tests;
