//! Broker and topic configuration: Kafka's key names where they exist, parsed from a
//! server.properties-style file and overridden by command-line flags. Built once on the main
//! thread before shards start; each shard then holds a read-only copy.

mod broker_key;
mod broker_keys;
mod client_listeners;
mod cluster;
mod key_values;
mod listeners;
mod network;
mod properties;
mod security;
mod tls;
mod topic;

pub use broker_keys::{BROKER_KEYS, BrokerKey, KeyDefault, is_sensitive as is_sensitive_key};
pub use client_listeners::ClientListener;
pub use cluster::{
    CLUSTER_KEYS, ClusterConfig, Endpoint, KraftKeys, LeaderRebalance, ProcessRoles,
    ReplicaSelector, ReplicationConfig, Voter,
};
pub use listeners::{DEFAULT_PROTOCOL_MAP, Listener};
pub use network::{NetworkLimits, UNLIMITED_CONNECTIONS};
pub use properties::{PropertiesError, parse_properties};
pub use security::{PLAIN_JAAS_KEY, SaslConfig, SecurityProtocol};
pub use tls::{ClientAuth, Keystore, TlsSettings, TlsVersion, Truststore};
pub use topic::{
    INERT_TOPIC_KEYS, TOPIC_KEYS, TimestampType, TopicConfig, TopicConfigError, TopicDefaults,
    ValueSource, is_dynamic_broker_key, validate_topic_key,
};

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::coordinator::group::GroupConfig;

/// A configuration value that failed validation, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key's value does not parse or is out of range.
    #[error("invalid value {value:?} for {key}: {reason}")]
    Invalid {
        /// The key as written in the file or flag.
        key: String,
        /// The value as given, or `(hidden)` for a sensitive key.
        value: String,
        /// Why it was refused, e.g. the allowed range.
        reason: String,
    },
    /// The `--config` file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file named by `--config`.
        path: PathBuf,
        /// The I/O error reading it.
        source: std::io::Error,
    },
    /// The file is not a valid properties file.
    #[error(transparent)]
    Properties(#[from] PropertiesError),
}

impl ConfigError {
    /// The same error without the value, for keys whose values hold passwords.
    fn hidden(self) -> Self {
        match self {
            ConfigError::Invalid { key, reason, .. } => ConfigError::Invalid {
                key,
                value: "(hidden)".into(),
                reason,
            },
            other => other,
        }
    }
}

/// Default `sluice.log.writeback.bytes`: 1 MiB, small against the kernel's dirty thresholds
/// (gigabytes here); one request per MiB. Measured with
/// `perf/writeback.sh 160000 30 2`: dirty pages after 30 s 0.1 MB instead of 977 MB, e2e p99
/// 8.2-8.3 ms on vs 8.4-8.5 ms off (within noise); its effect on peak throughput was not
/// measured separately. The table's default for the key says the same (a test checks it).
pub const DEFAULT_WRITEBACK_BYTES: u64 = 1 << 20;

/// The broker-wide settings every shard needs. Its keys, their defaults and their parsing are
/// in [`BROKER_KEYS`]; `Default` is only the blank that `from_properties` fills from there.
#[derive(Debug, Clone, Default)]
pub struct BrokerConfig {
    /// `node.id` (alias `broker.id`): shard `c` is Kafka broker `node_id * 1000 + c`.
    pub node_id: i32,
    /// `log.dirs` (alias `log.dir`): the data directory holding every partition and the
    /// node's metadata.
    pub data_dir: PathBuf,
    /// The host the listeners bind, from `listeners`.
    pub host: String,
    /// The host Metadata gives clients, from `advertised.listeners`; by default the bind
    /// host, or 127.0.0.1 when that is a wildcard address.
    pub advertised_host: String,
    /// The port of `listeners`: the bootstrap port, which any shard's connection may use.
    pub bootstrap_port: u16,
    /// Port of shard `c` is `shard_ports[c]`.
    pub shard_ports: Vec<u16>,
    /// `sluice.cores`: how many shards (one pinned executor per core).
    pub cores: usize,
    /// `auto.create.topics.enable`: Metadata for an unknown topic creates it.
    pub auto_create_topics: bool,
    /// `num.partitions`: partitions of a topic auto-created by Metadata, and of CreateTopics
    /// with -1.
    pub num_partitions: i32,
    /// `default.replication.factor`: the replication factor of CreateTopics with -1; only 1
    /// is possible on a single node.
    pub default_replication_factor: i16,
    /// The first listener's security protocol (`listeners=SASL_PLAINTEXT://...`).
    pub security_protocol: SecurityProtocol,
    /// The first listener's SASL users and mechanisms (SASL listeners only).
    pub sasl: SaslConfig,
    /// Every client listener: the first is the one `host`, `bootstrap_port`, `shard_ports`,
    /// `security_protocol` and `sasl` describe; each has its own ports, protocol, users and
    /// TLS settings. Metadata answers with the endpoints of the listener a request came in on.
    pub listeners: Vec<ClientListener>,
    /// `authorizer.class.name`, `super.users`, `allow.everyone.if.no.acl.found`.
    pub authorizer: crate::acl::authorizer::AuthorizerConfig,
    /// Largest request frame accepted (`socket.request.max.bytes`).
    pub socket_request_max_bytes: usize,
    /// `queued.max.request.bytes`: request frames held in memory at once, over all shards
    /// (each gets an equal share); -1 for no limit. Kafka's default is -1; Sluice bounds it
    /// at 1 GiB so a storm of large frames cannot exhaust memory.
    pub queued_max_request_bytes: i64,
    /// `quota.window.num` and `quota.window.size.seconds`: the window client quota rates are
    /// measured over (Kafka's defaults: 11 samples of 1 s).
    pub quota_window: crate::quota::rate::WindowConfig,
    /// Connection counts, idle and read timeouts, the pre-authentication frame limit.
    pub network: NetworkLimits,
    /// Where the Prometheus endpoint listens; `None` turns it off (`--metrics-addr off`).
    pub metrics_addr: Option<String>,
    /// How often retention runs (`log.retention.check.interval.ms`).
    pub retention_check_interval_ms: u64,
    /// How often the cleaner looks for logs to compact (`log.cleaner.backoff.ms`).
    pub cleaner_backoff_ms: u64,
    /// `sluice.log.writeback.bytes`: every this many appended bytes a partition asks the
    /// kernel to start writing them back (`sync_file_range`), so dirty pages never pile up
    /// to the point where the kernel throttles the shard's writes; 0 leaves writeback to the
    /// kernel's own thresholds.
    pub writeback_bytes: u64,
    /// `sluice.log.io`: appends through the page cache (the default) or O_DIRECT.
    pub log_io: crate::storage::LogIoMode,
    /// `sluice.log.direct.cache.bytes`: in direct mode, the newest appended bytes each
    /// partition keeps in memory to serve fetches.
    pub direct_cache_bytes: u64,
    /// Topic defaults from `log.*` / `message.*` broker keys.
    pub topic_defaults: TopicDefaults,
    /// Every key the operator set, for DescribeConfigs on the broker resource.
    pub explicit: BTreeMap<String, String>,
    /// Keys set by command-line flags (they override the file).
    pub from_flags: Vec<&'static str>,
    /// Group coordinator settings (`group.*`, `offsets.retention.minutes`, ...).
    pub group: GroupConfig,
    /// `offsets.topic.num.partitions`: partitions of `__consumer_offsets` when it is created
    /// (Kafka default 50). Fixed afterwards: group placement hashes over it.
    pub offsets_topic_num_partitions: i32,
    /// `offsets.retention.check.interval.ms`: how often expired offsets are removed
    /// (Kafka default 600000).
    pub offsets_retention_check_interval_ms: i64,
    /// `transaction.state.log.num.partitions`: partitions of `__transaction_state` when it
    /// is created (Kafka default 50). Fixed afterwards: coordinator placement hashes over it.
    pub transaction_state_num_partitions: i32,
    /// `share.coordinator.state.topic.num.partitions`: partitions of `__share_group_state`
    /// when it is created (Kafka default 50). Fixed afterwards: state placement hashes over it.
    pub share_state_num_partitions: i32,
    /// `transaction.max.timeout.ms`: the largest `transaction.timeout.ms` a producer may
    /// ask for (Kafka default 900000).
    pub transaction_max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`: a transactional id with no transaction running is
    /// forgotten after this long without a request (Kafka default 7 days).
    pub transactional_id_expiration_ms: i64,
    /// `transaction.remove.expired.transaction.cleanup.interval.ms`: how often expired
    /// transactional ids are looked for (Kafka default 1 hour).
    pub transactional_id_cleanup_interval_ms: i64,
    /// `producer.id.expiration.ms`: a partition forgets an idempotent producer that wrote
    /// nothing for this long (Kafka default 1 day).
    /// `producer.id.expiration.ms`: a partition forgets an idempotent producer idle this long
    /// (ms) unless it has a transaction open there.
    pub producer_id_expiration_ms: i64,
    /// `producer.id.expiration.check.interval.ms`: how often (Kafka default 10 minutes).
    pub producer_id_expiration_check_interval_ms: i64,
    /// The KRaft keys as read, whatever the mode; only [`Self::cluster`] is meant for use.
    pub kraft: KraftKeys,
    /// The node's place in a multi-node cluster; `None` without `process.roles`: the
    /// single-node broker, which reads none of the KRaft keys.
    pub cluster: Option<ClusterConfig>,
}

/// Command-line overrides; `None` means "not given".
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--host`: the bind host.
    pub host: Option<String>,
    /// `--port`: the bootstrap port.
    pub port: Option<u16>,
    /// `--cores`: the number of shards.
    pub cores: Option<usize>,
    /// `--node-id`.
    pub node_id: Option<i32>,
    /// `--metrics-addr`: the Prometheus endpoint's address, or `off`.
    pub metrics_addr: Option<String>,
}

fn parse_key<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    value.trim().parse::<T>().map_err(|e| ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason: e.to_string(),
    })
}

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

impl BrokerConfig {
    /// Builds the effective configuration: defaults, then the file's keys, then flags.
    pub fn load(
        file: Option<&std::path::Path>,
        flags: &Overrides,
        available_cores: usize,
    ) -> Result<Self, ConfigError> {
        let props = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                parse_properties(&text)?
            }
            None => BTreeMap::new(),
        };
        Self::from_properties(&props, flags, available_cores)
    }

    /// The configuration from parsed properties and flags: the table's defaults, then the
    /// file's keys, then the flags; `available_cores` bounds `sluice.cores`.
    pub fn from_properties(
        props: &BTreeMap<String, String>,
        flags: &Overrides,
        available_cores: usize,
    ) -> Result<Self, ConfigError> {
        let mut cfg = BrokerConfig {
            cores: available_cores.max(1),
            explicit: props.clone(),
            ..BrokerConfig::default()
        };
        broker_keys::apply_defaults(&mut cfg)?;
        for (key, value) in props {
            if let Some(spec) = broker_keys::find(key) {
                spec.apply(&mut cfg, key, value)?;
                continue;
            }
            if key == "unclean.leader.election.enable" {
                // Every node applies the metadata log alike, and elections are part of it:
                // a per-node file value could make nodes elect differently.
                return Err(invalid(
                    key,
                    value,
                    "set it per topic or cluster-wide as a dynamic broker config (AlterConfigs), \
                     not in a node's file: every node must elect leaders alike",
                ));
            }
            let known = cfg
                .topic_defaults
                .apply_broker_key(key, value)
                .map_err(|e| invalid(key, value, &e.to_string()))?;
            if !known && !tls::is_tls_key(key) && !client_listeners::is_jaas_key(key) {
                tracing::warn!(key = key.as_str(), "unknown configuration key ignored");
            }
        }
        cluster::apply_listeners(&mut cfg)?;
        cfg.group
            .consumer
            .check()
            .map_err(|reason| ConfigError::Invalid {
                key: "group.consumer.session.timeout.ms".into(),
                value: cfg.group.consumer.session_timeout_ms.to_string(),
                reason,
            })?;
        cfg.group
            .share
            .check()
            .map_err(|reason| ConfigError::Invalid {
                key: "group.share.*".into(),
                value: String::new(),
                reason,
            })?;
        if let Some(dir) = &flags.data_dir {
            cfg.data_dir = dir.clone();
            cfg.from_flags.push("log.dirs");
        }
        if let Some(host) = &flags.host {
            cfg.host = host.clone();
            cfg.from_flags.push("listeners");
        }
        if let Some(port) = flags.port {
            cfg.bootstrap_port = port;
            cfg.from_flags.push("listeners");
        }
        if let Some(cores) = flags.cores {
            cfg.cores = cores;
            cfg.from_flags.push("sluice.cores");
        }
        if let Some(id) = flags.node_id {
            cfg.node_id = id;
            cfg.from_flags.push("node.id");
        }
        if let Some(addr) = &flags.metrics_addr {
            cfg.metrics_addr = broker_keys::metrics_addr(addr);
            cfg.from_flags.push("sluice.metrics.addr");
        }
        if cfg.cores == 0 || cfg.cores > available_cores.max(1) {
            return Err(invalid(
                "--cores",
                &cfg.cores.to_string(),
                &format!("this machine has {available_cores} cores"),
            ));
        }
        cfg.network.validate()?;
        // The keys whose defaults are computed from others, now that all are read.
        if !props.contains_key("advertised.listeners") {
            cfg.advertised_host = advertise_for(&cfg.host);
        }
        if !props.contains_key("sluice.shard.ports") {
            cfg.shard_ports = (0..cfg.cores)
                .map(|c| shard_port(cfg.bootstrap_port, c))
                .collect::<Result<_, _>>()?;
        } else if cfg.shard_ports.len() != cfg.cores {
            return Err(invalid(
                "sluice.shard.ports",
                &format!("{:?}", cfg.shard_ports),
                "needs exactly one port per core",
            ));
        }
        let node_id_given = flags.node_id.is_some()
            || props.contains_key("node.id")
            || props.contains_key("broker.id");
        cfg.cluster = ClusterConfig::resolve(&cfg, node_id_given)?;
        cfg.listeners = client_listeners::resolve(&cfg)?;
        cfg.sasl = cfg.listeners[0].sasl.clone();
        cfg.advertised_host = cfg.listeners[0].advertised_host.clone();
        Ok(cfg)
    }

    /// The effective broker settings as (key, value, source), for `serve --print-config` and
    /// DescribeConfigs: every key of [`BROKER_KEYS`] that has a `show`, in the table's order,
    /// then the topic defaults.
    pub fn effective(&self) -> Vec<(String, String, &'static str)> {
        let source = |key: &str| {
            if self.from_flags.contains(&key) {
                "flag"
            } else if self.explicit.contains_key(key) {
                "file"
            } else {
                "default"
            }
        };
        let mut out: Vec<_> = BROKER_KEYS
            .iter()
            .filter_map(|key| {
                let show = key.show?;
                Some((key.name.to_string(), show(self), source(key.name)))
            })
            .collect();
        for (name, value, from) in self.topic_defaults.describe(&BTreeMap::new()) {
            let source = if from == ValueSource::Broker {
                "file"
            } else {
                "default"
            };
            out.push((format!("(topic default) {name}"), value, source));
        }
        out
    }

    /// Kafka broker id of a shard: `node_id * 1000 + core`.
    pub fn broker_id(&self, core: usize) -> i32 {
        self.node_id * 1000 + core as i32
    }

    /// The shard a broker id names on this node, if any.
    pub fn core_of_broker(&self, broker_id: i32) -> Option<usize> {
        let core = broker_id - self.node_id * 1000;
        (0..self.cores as i32)
            .contains(&core)
            .then_some(core as usize)
    }
}

fn shard_port(bootstrap: u16, core: usize) -> Result<u16, ConfigError> {
    u16::try_from(bootstrap as usize + 1 + core).map_err(|_| {
        invalid(
            "--port",
            &bootstrap.to_string(),
            "shard ports would exceed 65535",
        )
    })
}

/// A wildcard listen address cannot be given to clients; advertise loopback instead.
fn advertise_for(host: &str) -> String {
    if host == "0.0.0.0" || host == "::" || host.is_empty() {
        "127.0.0.1".into()
    } else {
        host.to_string()
    }
}

#[cfg(test)]
mod tests;
