//! The broker keys Sluice reads (`node.id`, `listeners`, `group.max.size`, ...), as one table:
//! each entry has the key's Kafka name, its default, how a value is parsed and checked into a
//! [`BrokerConfig`], how the effective value is shown, and whether it is a secret.
//! `BrokerConfig::from_properties`, `serve --print-config` and DescribeConfigs on a broker all
//! read this table, so adding a key is one entry here plus one field of `BrokerConfig`.
//! The KRaft keys (issue 13) store into `BrokerConfig::kraft`; `cluster.rs` checks them
//! against one another once all are read, and only when `process.roles` is set.
//!
//! Not here: the topic defaults under their broker names (`log.retention.ms`, ...), which the
//! topic table owns (`topic.rs`, `TopicDefaults::apply_broker_key`). They are also the only
//! dynamic broker configs (`is_dynamic_broker_key`); every key of this table is fixed at
//! start-up, which is why DescribeConfigs shows them read-only and AlterConfigs refuses them.
//! A key that should become dynamic needs a run-time path like `TopicDefaults::with_dynamic`
//! (shards hold a read-only copy of `BrokerConfig`), not just a flag here.

use std::path::PathBuf;

use super::cluster::{self, ProcessRoles};
use super::key_values::{at_least, parse_users, positive, set, show_listener};
use super::listeners::{self, DEFAULT_PROTOCOL_MAP};
use super::network::{count, parse_overrides, show_overrides};
use super::security::{PLAIN_JAAS_KEY, parse_mechanisms};
use super::{BrokerConfig, ConfigError, invalid, parse_key};
use crate::acl::authorizer::{ACL_AUTHORIZER, AuthorizerConfig, STANDARD_AUTHORIZER};
use crate::coordinator::group::consumer::assignor;
use crate::coordinator::group::share::config::AutoOffsetReset;

pub use super::broker_key::{BrokerKey, KeyDefault};
pub(super) use super::key_values::metrics_addr;

/// The entry for `key` (its name or an alias), if Sluice knows it as a broker key.
pub fn find(key: &str) -> Option<&'static BrokerKey> {
    BROKER_KEYS.iter().find(|k| k.answers_to(key))
}

/// Whether the value of `key` must not be shown: the table's secrets and, by Kafka's naming,
/// keys Sluice does not know that an operator set (`....jaas.config`, `...password`).
pub fn is_sensitive(key: &str) -> bool {
    find(key).is_some_and(|k| k.sensitive)
        || key.contains("jaas")
        || key.contains("password")
        || key.ends_with("ssl.keystore.key")
}

/// Applies every [`KeyDefault::Value`] to `cfg`.
pub fn apply_defaults(cfg: &mut BrokerConfig) -> Result<(), ConfigError> {
    for key in BROKER_KEYS {
        if let KeyDefault::Value(value) = key.default {
            key.apply(cfg, key.name, value)?;
        }
    }
    Ok(())
}

/// Fields every entry spells the same way; entries override what differs.
const KEY: BrokerKey = BrokerKey {
    name: "",
    aliases: &[],
    default: KeyDefault::Unset,
    doc: "",
    sensitive: false,
    parse: |_, _, _| Ok(()),
    show: None,
};

/// Every broker key, in the order `--print-config` and DescribeConfigs list them.
pub const BROKER_KEYS: &[BrokerKey] = &[
    BrokerKey {
        name: "node.id",
        aliases: &["broker.id"],
        default: KeyDefault::Value("0"),
        doc: "this node's id; shard c is Kafka broker node.id * 1000 + c",
        parse: |c, k, v| set(&mut c.node_id, parse_key(k, v)),
        show: Some(|c| c.node_id.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "log.dirs",
        aliases: &["log.dir"],
        default: KeyDefault::Value("./data"),
        doc: "data directory; of a list, the first is used",
        parse: |c, k, v| {
            let first = v.split(',').next().unwrap_or("").trim();
            if first.is_empty() {
                return Err(invalid(k, v, "must name a directory"));
            }
            c.data_dir = PathBuf::from(first);
            Ok(())
        },
        show: Some(|c| c.data_dir.display().to_string()),
        ..KEY
    },
    BrokerKey {
        name: "listeners",
        default: KeyDefault::Value("PLAINTEXT://127.0.0.1:9092"),
        doc: "bootstrap address and security protocol (first entry; KRaft: the first \
              entry not in controller.listener.names, and the CONTROLLER entry)",
        // The protocol is looked up once every key is read (`cluster::apply_listeners`): in
        // KRaft mode it depends on controller.listener.names and the protocol map.
        parse: |c, k, v| {
            (c.host, c.bootstrap_port) = listeners::parse_first(k, v)?;
            c.kraft.listeners = v.to_string();
            Ok(())
        },
        show: Some(|c| show_listener(c, false)),
        ..KEY
    },
    BrokerKey {
        name: "advertised.listeners",
        default: KeyDefault::Computed("the listeners' host; a wildcard host advertises 127.0.0.1"),
        doc: "host given to clients (its protocol and port are the listeners'); KRaft: \
              the entry named as the client listener",
        parse: |c, k, v| {
            c.kraft.advertised_listeners = v.to_string();
            set(
                &mut c.advertised_host,
                listeners::parse_first(k, v).map(|(host, _)| host),
            )
        },
        show: Some(|c| show_listener(c, true)),
        ..KEY
    },
    BrokerKey {
        name: "sasl.enabled.mechanisms",
        default: KeyDefault::Value("PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"),
        doc: "SASL mechanisms offered, in this order",
        parse: |c, k, v| {
            set(
                &mut c.sasl.mechanisms,
                parse_mechanisms(v).map_err(|e| invalid(k, v, &e)),
            )
        },
        ..KEY
    },
    BrokerKey {
        name: PLAIN_JAAS_KEY,
        doc: "PLAIN users: user_NAME=\"PASSWORD\" entries of a JAAS line",
        sensitive: true,
        parse: parse_users,
        ..KEY
    },
    BrokerKey {
        name: "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config",
        doc: "more users, as in the PLAIN line",
        sensitive: true,
        parse: parse_users,
        ..KEY
    },
    BrokerKey {
        name: "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config",
        doc: "more users, as in the PLAIN line",
        sensitive: true,
        parse: parse_users,
        ..KEY
    },
    BrokerKey {
        name: "authorizer.class.name",
        doc: "Kafka's StandardAuthorizer (or AclAuthorizer) name turns ACL authorization on; empty: off",
        parse: |c, k, v| {
            c.authorizer.enabled = match v.trim() {
                "" => false,
                STANDARD_AUTHORIZER | ACL_AUTHORIZER => true,
                _ => {
                    return Err(invalid(
                        k,
                        v,
                        &format!("the only authorizer is Kafka's {STANDARD_AUTHORIZER}"),
                    ));
                }
            };
            Ok(())
        },
        show: Some(|c| {
            if c.authorizer.enabled {
                STANDARD_AUTHORIZER
            } else {
                ""
            }
            .to_string()
        }),
        ..KEY
    },
    BrokerKey {
        name: "super.users",
        doc: "principals allowed everything, ';'-separated (User:admin;User:broker)",
        parse: |c, _, v| {
            c.authorizer.super_users = AuthorizerConfig::parse_super_users(v);
            Ok(())
        },
        show: Some(|c| c.authorizer.super_users.join(";")),
        ..KEY
    },
    BrokerKey {
        name: "allow.everyone.if.no.acl.found",
        default: KeyDefault::Value("false"),
        doc: "allow a request on a resource no ACL applies to",
        parse: |c, k, v| set(&mut c.authorizer.allow_if_no_acl, parse_key(k, v)),
        show: Some(|c| c.authorizer.allow_if_no_acl.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "sluice.cores",
        default: KeyDefault::Computed("every core of the machine"),
        doc: "shards to run, one per core",
        parse: |c, k, v| set(&mut c.cores, parse_key(k, v)),
        show: Some(|c| c.cores.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "sluice.shard.ports",
        default: KeyDefault::Computed("the bootstrap port + 1 + core"),
        doc: "port of each shard, one per core",
        parse: |c, k, v| {
            c.shard_ports = v
                .split(',')
                .map(|p| parse_key::<u16>(k, p))
                .collect::<Result<_, _>>()?;
            Ok(())
        },
        show: Some(|c| {
            let ports: Vec<String> = c.shard_ports.iter().map(u16::to_string).collect();
            ports.join(",")
        }),
        ..KEY
    },
    BrokerKey {
        name: "sluice.metrics.addr",
        default: KeyDefault::Value("127.0.0.1:9644"),
        doc: "address of the Prometheus endpoint; off turns it off",
        parse: |c, _, v| set(&mut c.metrics_addr, Ok(metrics_addr(v))),
        show: Some(|c| c.metrics_addr.clone().unwrap_or_else(|| "off".into())),
        ..KEY
    },
    BrokerKey {
        name: "auto.create.topics.enable",
        default: KeyDefault::Value("true"),
        doc: "Metadata requests create missing topics",
        parse: |c, k, v| set(&mut c.auto_create_topics, parse_key(k, v)),
        show: Some(|c| c.auto_create_topics.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "num.partitions",
        default: KeyDefault::Value("1"),
        doc: "partitions of a topic created without a count",
        parse: |c, k, v| set(&mut c.num_partitions, at_least(k, v, 1)),
        show: Some(|c| c.num_partitions.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "default.replication.factor",
        default: KeyDefault::Value("1"),
        doc: "replication factor of a topic created without one",
        parse: |c, k, v| set(&mut c.default_replication_factor, parse_key(k, v)),
        show: Some(|c| c.default_replication_factor.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "socket.request.max.bytes",
        default: KeyDefault::Value("104857600"),
        doc: "largest request frame accepted",
        parse: |c, k, v| set(&mut c.socket_request_max_bytes, at_least(k, v, 1024)),
        show: Some(|c| c.socket_request_max_bytes.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "log.retention.check.interval.ms",
        default: KeyDefault::Value("300000"),
        doc: "how often retention runs",
        parse: |c, k, v| set(&mut c.retention_check_interval_ms, at_least(k, v, 1)),
        show: Some(|c| c.retention_check_interval_ms.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "queued.max.request.bytes",
        // Kafka's default is -1 (no limit); 1 GiB keeps a storm of large frames from
        // exhausting memory.
        default: KeyDefault::Value("1073741824"),
        doc: "request bytes held in memory at once over all shards; -1: no limit",
        parse: |c, k, v| {
            c.queued_max_request_bytes = parse_key(k, v)?;
            if c.queued_max_request_bytes < 1 && c.queued_max_request_bytes != -1 {
                return Err(invalid(k, v, "must be -1 (no limit) or positive"));
            }
            Ok(())
        },
        show: Some(|c| c.queued_max_request_bytes.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "quota.window.num",
        default: KeyDefault::Value("11"),
        doc: "samples a client quota's rate is measured over (fixed at start-up, as in Kafka)",
        parse: |c, k, v| set(&mut c.quota_window.samples, at_least(k, v, 1)),
        show: Some(|c| c.quota_window.samples.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "quota.window.size.seconds",
        default: KeyDefault::Value("1"),
        doc: "length of one client quota sample (fixed at start-up, as in Kafka)",
        parse: |c, k, v| {
            let seconds: u64 = at_least(k, v, 1)?;
            c.quota_window.window_ms = seconds.saturating_mul(1000);
            Ok(())
        },
        show: Some(|c| (c.quota_window.window_ms / 1000).to_string()),
        ..KEY
    },
    BrokerKey {
        name: "sluice.log.writeback.bytes",
        // DEFAULT_WRITEBACK_BYTES (1 MiB); its comment has the measurement behind it.
        default: KeyDefault::Value("1048576"),
        doc: "appended bytes after which a partition starts their writeback; 0: the kernel's",
        parse: |c, k, v| set(&mut c.writeback_bytes, parse_key(k, v)),
        show: Some(|c| c.writeback_bytes.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "sluice.log.io",
        default: KeyDefault::Value("page-cache"),
        doc: "how appends reach the disk: page-cache (default; fetches use sendfile) or direct \
              (experiment: O_DIRECT appends, fetches of the newest data from memory)",
        parse: |c, k, v| set(&mut c.log_io, parse_key(k, v)),
        show: Some(|c| c.log_io.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "sluice.log.direct.cache.bytes",
        default: KeyDefault::Value("8388608"),
        doc: "with sluice.log.io=direct: newest appended bytes each partition keeps in memory for \
              fetches",
        parse: |c, k, v| set(&mut c.direct_cache_bytes, at_least(k, v, 4096)),
        show: Some(|c| c.direct_cache_bytes.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "log.cleaner.backoff.ms",
        default: KeyDefault::Value("15000"),
        doc: "how often the cleaner looks for logs to compact",
        parse: |c, k, v| set(&mut c.cleaner_backoff_ms, at_least(k, v, 1)),
        show: Some(|c| c.cleaner_backoff_ms.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "offsets.topic.num.partitions",
        default: KeyDefault::Value("50"),
        doc: "partitions of __consumer_offsets when created; fixed afterwards",
        parse: |c, k, v| set(&mut c.offsets_topic_num_partitions, positive(k, v)),
        show: Some(|c| c.offsets_topic_num_partitions.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "offsets.retention.check.interval.ms",
        default: KeyDefault::Value("600000"),
        doc: "how often expired offsets are removed",
        parse: |c, k, v| set(&mut c.offsets_retention_check_interval_ms, positive(k, v)),
        show: Some(|c| c.offsets_retention_check_interval_ms.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "transactional.id.expiration.ms",
        default: KeyDefault::Value("604800000"),
        doc: "an idle transactional id is forgotten after this long",
        parse: |c, k, v| set(&mut c.transactional_id_expiration_ms, positive(k, v)),
        show: Some(|c| c.transactional_id_expiration_ms.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "transaction.remove.expired.transaction.cleanup.interval.ms",
        default: KeyDefault::Value("3600000"),
        doc: "how often expired transactional ids are looked for",
        parse: |c, k, v| set(&mut c.transactional_id_cleanup_interval_ms, positive(k, v)),
        show: Some(|c| c.transactional_id_cleanup_interval_ms.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "producer.id.expiration.ms",
        default: KeyDefault::Value("86400000"),
        doc: "a partition forgets an idempotent producer idle this long",
        parse: |c, k, v| set(&mut c.producer_id_expiration_ms, positive(k, v)),
        show: Some(|c| c.producer_id_expiration_ms.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "producer.id.expiration.check.interval.ms",
        default: KeyDefault::Value("600000"),
        doc: "how often idle producers are looked for",
        parse: |c, k, v| {
            set(
                &mut c.producer_id_expiration_check_interval_ms,
                positive(k, v),
            )
        },
        show: Some(|c| c.producer_id_expiration_check_interval_ms.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "transaction.state.log.num.partitions",
        default: KeyDefault::Value("50"),
        doc: "partitions of __transaction_state when created; fixed afterwards",
        parse: |c, k, v| set(&mut c.transaction_state_num_partitions, positive(k, v)),
        ..KEY
    },
    BrokerKey {
        name: "share.coordinator.state.topic.num.partitions",
        default: KeyDefault::Value("50"),
        doc: "partitions of __share_group_state when created; fixed afterwards",
        parse: |c, k, v| set(&mut c.share_state_num_partitions, positive(k, v)),
        show: Some(|c| c.share_state_num_partitions.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "transaction.max.timeout.ms",
        default: KeyDefault::Value("900000"),
        doc: "largest transaction.timeout.ms a producer may ask for",
        parse: |c, k, v| set(&mut c.transaction_max_timeout_ms, positive(k, v)),
        ..KEY
    },
    BrokerKey {
        name: "offsets.retention.minutes",
        default: KeyDefault::Value("10080"),
        doc: "committed offsets of an empty group expire after this long",
        parse: |c, k, v| {
            let minutes: i64 = positive(k, v)?;
            c.group.offsets_retention_ms = minutes.saturating_mul(60_000);
            Ok(())
        },
        ..KEY
    },
    BrokerKey {
        name: "offset.metadata.max.bytes",
        default: KeyDefault::Value("4096"),
        doc: "largest metadata string of a committed offset",
        parse: |c, k, v| set(&mut c.group.offset_metadata_max_bytes, parse_key(k, v)),
        ..KEY
    },
    BrokerKey {
        name: "group.initial.rebalance.delay.ms",
        default: KeyDefault::Value("3000"),
        doc: "how long the first rebalance of an empty group waits for more members",
        parse: |c, k, v| {
            c.group.initial_rebalance_delay_ms = parse_key(k, v)?;
            if c.group.initial_rebalance_delay_ms < 0 {
                return Err(invalid(k, v, "must not be negative"));
            }
            Ok(())
        },
        ..KEY
    },
    BrokerKey {
        name: "group.min.session.timeout.ms",
        default: KeyDefault::Value("6000"),
        doc: "smallest session timeout a member may ask for",
        parse: |c, k, v| set(&mut c.group.min_session_timeout_ms, positive(k, v)),
        ..KEY
    },
    BrokerKey {
        name: "group.max.session.timeout.ms",
        default: KeyDefault::Value("1800000"),
        doc: "largest session timeout a member may ask for",
        parse: |c, k, v| set(&mut c.group.max_session_timeout_ms, positive(k, v)),
        ..KEY
    },
    BrokerKey {
        name: "group.max.size",
        // Kafka's is Integer.MAX_VALUE; GroupConfig's usize::MAX means the same: no limit.
        default: KeyDefault::Computed("no limit"),
        doc: "most members of one group",
        parse: |c, k, v| set(&mut c.group.max_size, positive(k, v)),
        ..KEY
    },
    BrokerKey {
        name: "group.coordinator.rebalance.protocols",
        default: KeyDefault::Value("classic,consumer"),
        doc: "group protocols served; without consumer, ConsumerGroupHeartbeat answers UNSUPPORTED_VERSION",
        parse: |c, k, v| {
            let protocols: Vec<&str> = v
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect();
            if let Some(bad) = protocols
                .iter()
                .find(|p| !["classic", "consumer"].contains(p))
            {
                return Err(invalid(
                    k,
                    v,
                    &format!("unknown protocol {bad}: classic and consumer are known"),
                ));
            }
            if !protocols.contains(&"classic") {
                return Err(invalid(k, v, "classic must be listed"));
            }
            c.group.consumer_protocol_enabled = protocols.contains(&"consumer");
            Ok(())
        },
        ..KEY
    },
    BrokerKey {
        name: "group.consumer.session.timeout.ms",
        default: KeyDefault::Value("45000"),
        doc: "a consumer-protocol member that sends no heartbeat for this long is removed",
        parse: |c, k, v| set(&mut c.group.consumer.session_timeout_ms, positive(k, v)),
        ..KEY
    },
    BrokerKey {
        name: "group.consumer.heartbeat.interval.ms",
        default: KeyDefault::Value("5000"),
        doc: "how often consumer-protocol members heartbeat",
        parse: |c, k, v| set(&mut c.group.consumer.heartbeat_interval_ms, positive(k, v)),
        ..KEY
    },
    BrokerKey {
        name: "group.consumer.min.session.timeout.ms",
        default: KeyDefault::Value("45000"),
        doc: "smallest group.consumer.session.timeout.ms allowed",
        parse: |c, k, v| {
            set(
                &mut c.group.consumer.session_timeout_bounds_ms.0,
                positive(k, v),
            )
        },
        ..KEY
    },
    BrokerKey {
        name: "group.consumer.max.session.timeout.ms",
        default: KeyDefault::Value("60000"),
        doc: "largest group.consumer.session.timeout.ms allowed",
        parse: |c, k, v| {
            set(
                &mut c.group.consumer.session_timeout_bounds_ms.1,
                positive(k, v),
            )
        },
        ..KEY
    },
    BrokerKey {
        name: "group.consumer.min.heartbeat.interval.ms",
        default: KeyDefault::Value("5000"),
        doc: "smallest group.consumer.heartbeat.interval.ms allowed",
        parse: |c, k, v| {
            set(
                &mut c.group.consumer.heartbeat_interval_bounds_ms.0,
                positive(k, v),
            )
        },
        ..KEY
    },
    BrokerKey {
        name: "group.consumer.max.heartbeat.interval.ms",
        default: KeyDefault::Value("15000"),
        doc: "largest group.consumer.heartbeat.interval.ms allowed",
        parse: |c, k, v| {
            set(
                &mut c.group.consumer.heartbeat_interval_bounds_ms.1,
                positive(k, v),
            )
        },
        ..KEY
    },
    BrokerKey {
        name: "group.consumer.assignors",
        default: KeyDefault::Value("uniform,range"),
        doc: "server assignors of consumer groups; the first is the default",
        parse: |c, k, v| {
            let names: Vec<String> = v
                .split(',')
                .map(|n| short_assignor_name(n.trim()).to_owned())
                .filter(|n| !n.is_empty())
                .collect();
            if names.is_empty() {
                return Err(invalid(k, v, "at least one assignor is needed"));
            }
            if let Some(bad) = names
                .iter()
                .find(|n| !assignor::KNOWN.contains(&n.as_str()))
            {
                return Err(invalid(
                    k,
                    v,
                    &format!("unknown assignor {bad}: uniform and range are known"),
                ));
            }
            c.group.consumer.assignors = names;
            Ok(())
        },
        ..KEY
    },
    BrokerKey {
        name: "group.consumer.max.size",
        default: KeyDefault::Computed("no limit"),
        doc: "most members of one consumer-protocol group",
        parse: |c, k, v| set(&mut c.group.consumer.max_size, positive(k, v)),
        ..KEY
    },
    BrokerKey {
        name: "group.share.session.timeout.ms",
        default: KeyDefault::Value("45000"),
        doc: "a share group member that sends no heartbeat for this long is removed",
        parse: |c, k, v| set(&mut c.group.share.session_timeout_ms, positive(k, v)),
        ..KEY
    },
    BrokerKey {
        name: "group.share.heartbeat.interval.ms",
        default: KeyDefault::Value("5000"),
        doc: "how often share group members heartbeat",
        parse: |c, k, v| set(&mut c.group.share.heartbeat_interval_ms, positive(k, v)),
        ..KEY
    },
    BrokerKey {
        name: "group.share.record.lock.duration.ms",
        default: KeyDefault::Value("30000"),
        doc: "how long a record delivered to a share consumer stays locked to it",
        parse: |c, k, v| set(&mut c.group.share.record_lock_duration_ms, positive(k, v)),
        ..KEY
    },
    BrokerKey {
        name: "group.share.delivery.count.limit",
        default: KeyDefault::Value("5"),
        doc: "deliveries after which a share group archives a record instead of redelivering it",
        parse: |c, k, v| set(&mut c.group.share.delivery_count_limit, positive(k, v)),
        ..KEY
    },
    BrokerKey {
        name: "group.share.partition.max.record.locks",
        default: KeyDefault::Value("2000"),
        doc: "most records of one partition a share group may have in flight",
        parse: |c, k, v| {
            set(
                &mut c.group.share.partition_max_record_locks,
                positive(k, v),
            )
        },
        ..KEY
    },
    BrokerKey {
        name: "group.share.max.size",
        default: KeyDefault::Value("200"),
        doc: "most members of one share group",
        parse: |c, k, v| set(&mut c.group.share.max_size, positive(k, v)),
        ..KEY
    },
    BrokerKey {
        name: "group.share.max.share.sessions",
        default: KeyDefault::Value("2000"),
        doc: "most share sessions open on one shard",
        parse: |c, k, v| set(&mut c.group.share.max_share_sessions, positive(k, v)),
        ..KEY
    },
    BrokerKey {
        name: "group.share.max.groups",
        default: KeyDefault::Value("10"),
        doc: "most share groups (per coordinator shard, and with record states per shard)",
        parse: |c, k, v| set(&mut c.group.share.max_groups, positive(k, v)),
        ..KEY
    },
    BrokerKey {
        name: "group.share.auto.offset.reset",
        default: KeyDefault::Value("latest"),
        doc: "where a share group starts on a partition it has no state for: earliest or latest (Kafka's group config share.auto.offset.reset, broker-wide)",
        parse: |c, k, v| {
            c.group.share.auto_offset_reset =
                AutoOffsetReset::parse(v).ok_or_else(|| invalid(k, v, "earliest or latest"))?;
            Ok(())
        },
        ..KEY
    },
    BrokerKey {
        name: "max.connections",
        default: KeyDefault::Value("2147483647"),
        doc: "open client connections on the whole node",
        parse: |c, k, v| set(&mut c.network.max_connections, count(k, v, 1)),
        show: Some(|c| c.network.max_connections.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "max.connections.per.ip",
        default: KeyDefault::Value("2147483647"),
        doc: "open connections from one address on the node",
        parse: |c, k, v| set(&mut c.network.max_connections_per_ip, count(k, v, 0)),
        show: Some(|c| c.network.max_connections_per_ip.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "max.connections.per.ip.overrides",
        default: KeyDefault::Value(""),
        doc: "ip:count pairs that replace max.connections.per.ip",
        parse: |c, k, v| {
            set(
                &mut c.network.max_connections_per_ip_overrides,
                parse_overrides(k, v),
            )
        },
        show: Some(|c| show_overrides(&c.network.max_connections_per_ip_overrides)),
        ..KEY
    },
    BrokerKey {
        name: "connections.max.idle.ms",
        default: KeyDefault::Value("600000"),
        doc: "a connection idle this long is closed; negative: never",
        parse: |c, k, v| {
            c.network.connections_max_idle_ms = parse_key(k, v)?;
            if c.network.connections_max_idle_ms == 0 {
                return Err(invalid(k, v, "must be positive, or negative for never"));
            }
            Ok(())
        },
        show: Some(|c| c.network.connections_max_idle_ms.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "sluice.request.read.timeout.ms",
        default: KeyDefault::Value("30000"),
        doc: "a request frame, once begun, must arrive within this long",
        parse: |c, k, v| set(&mut c.network.request_read_timeout_ms, at_least(k, v, 1)),
        show: Some(|c| c.network.request_read_timeout_ms.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "sasl.server.max.receive.size",
        default: KeyDefault::Value("524288"),
        doc: "largest frame accepted before a SASL connection has authenticated",
        parse: |c, k, v| set(&mut c.network.sasl_server_max_receive_size, count(k, v, 1)),
        show: Some(|c| c.network.sasl_server_max_receive_size.to_string()),
        ..KEY
    },
    // KRaft mode (issue 13): read only when process.roles is set; `cluster.rs` checks them
    // against one another. Defaults are Kafka's.
    BrokerKey {
        name: "process.roles",
        default: KeyDefault::Unset,
        doc: "broker, controller or broker,controller: KRaft mode; unset: the single node",
        parse: |c, k, v| set(&mut c.kraft.process_roles, ProcessRoles::parse(k, v)),
        show: Some(|c| {
            c.kraft
                .process_roles
                .map_or("", ProcessRoles::name)
                .to_string()
        }),
        ..KEY
    },
    BrokerKey {
        name: "controller.quorum.voters",
        default: KeyDefault::Unset,
        doc: "the controller quorum, id@host:port of each voter's CONTROLLER listener",
        parse: |c, k, v| set(&mut c.kraft.voters, cluster::parse_voters(k, v)),
        show: Some(|c| cluster::show_voters(&c.kraft.voters)),
        ..KEY
    },
    BrokerKey {
        name: "controller.quorum.bootstrap.servers",
        default: KeyDefault::Unset,
        doc: "host:port of controllers to find a dynamic quorum through (no voters given)",
        parse: |c, k, v| {
            set(
                &mut c.kraft.bootstrap_servers,
                cluster::parse_endpoints(k, v),
            )
        },
        show: Some(|c| cluster::show_endpoints(&c.kraft.bootstrap_servers)),
        ..KEY
    },
    BrokerKey {
        name: "controller.listener.names",
        default: KeyDefault::Unset,
        doc: "listener names the quorum uses (CONTROLLER); the first one is used",
        parse: |c, _, v| {
            let names = v.split(',').map(str::trim).filter(|n| !n.is_empty());
            c.kraft.controller_listener_names = names.map(str::to_ascii_uppercase).collect();
            Ok(())
        },
        show: Some(|c| c.kraft.controller_listener_names.join(",")),
        ..KEY
    },
    BrokerKey {
        name: "listener.security.protocol.map",
        default: KeyDefault::Value(DEFAULT_PROTOCOL_MAP),
        doc: "NAME:PROTOCOL of each KRaft listener; left at the default, controllers are PLAINTEXT",
        parse: |c, k, v| {
            set(
                &mut c.kraft.protocol_map,
                listeners::parse_protocol_map(k, v),
            )
        },
        show: Some(|c| listeners::show_protocol_map(&c.kraft.protocol_map)),
        ..KEY
    },
    BrokerKey {
        name: "controller.quorum.election.timeout.ms",
        default: KeyDefault::Value("1000"),
        doc: "longest wait without a leader before a controller starts an election",
        parse: |c, k, v| set(&mut c.kraft.election_timeout_ms, positive(k, v)),
        show: Some(|c| c.kraft.election_timeout_ms.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "controller.quorum.fetch.timeout.ms",
        default: KeyDefault::Value("2000"),
        doc: "a follower that hears nothing from the leader this long becomes a candidate",
        parse: |c, k, v| set(&mut c.kraft.fetch_timeout_ms, positive(k, v)),
        show: Some(|c| c.kraft.fetch_timeout_ms.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "controller.quorum.request.timeout.ms",
        default: KeyDefault::Value("2000"),
        doc: "how long a quorum request waits for its answer",
        parse: |c, k, v| set(&mut c.kraft.request_timeout_ms, positive(k, v)),
        show: Some(|c| c.kraft.request_timeout_ms.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "broker.heartbeat.interval.ms",
        default: KeyDefault::Value("2000"),
        doc: "how often a broker heartbeats to the active controller",
        parse: |c, k, v| set(&mut c.kraft.heartbeat_interval_ms, positive(k, v)),
        show: Some(|c| c.kraft.heartbeat_interval_ms.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "broker.session.timeout.ms",
        default: KeyDefault::Value("9000"),
        doc: "a broker without a heartbeat this long is fenced",
        parse: |c, k, v| set(&mut c.kraft.session_timeout_ms, positive(k, v)),
        show: Some(|c| c.kraft.session_timeout_ms.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "initial.broker.registration.timeout.ms",
        default: KeyDefault::Value("60000"),
        doc: "a broker that cannot register with the quorum this long stops",
        parse: |c, k, v| set(&mut c.kraft.registration_timeout_ms, positive(k, v)),
        show: Some(|c| c.kraft.registration_timeout_ms.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "metadata.log.dir",
        default: KeyDefault::Computed("the data directory (log.dirs)"),
        doc: "directory holding the cluster metadata log (__cluster_metadata-0)",
        parse: |c, k, v| {
            if v.trim().is_empty() {
                return Err(invalid(k, v, "must name a directory"));
            }
            c.kraft.metadata_log_dir = Some(PathBuf::from(v.trim()));
            Ok(())
        },
        show: Some(|c| {
            let dir = c.kraft.metadata_log_dir.as_ref().unwrap_or(&c.data_dir);
            dir.display().to_string()
        }),
        ..KEY
    },
    BrokerKey {
        name: "metadata.log.max.record.bytes.between.snapshots",
        default: KeyDefault::Value("20971520"),
        doc: "metadata log bytes after which a new snapshot is taken",
        parse: |c, k, v| set(&mut c.kraft.snapshot_bytes, positive(k, v)),
        show: Some(|c| c.kraft.snapshot_bytes.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "metadata.max.retention.bytes",
        default: KeyDefault::Value("104857600"),
        doc: "metadata log and snapshot bytes kept (soft); -1: no limit",
        parse: |c, k, v| {
            c.kraft.metadata_retention_bytes = parse_key(k, v)?;
            if c.kraft.metadata_retention_bytes < 1 && c.kraft.metadata_retention_bytes != -1 {
                return Err(invalid(k, v, "must be -1 (no limit) or positive"));
            }
            Ok(())
        },
        show: Some(|c| c.kraft.metadata_retention_bytes.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "offsets.topic.replication.factor",
        default: KeyDefault::Value("3"),
        doc: "replicas of __consumer_offsets in KRaft mode; a single node keeps one",
        parse: |c, k, v| set(&mut c.kraft.offsets_replication_factor, positive(k, v)),
        show: Some(|c| c.kraft.offsets_replication_factor.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "transaction.state.log.replication.factor",
        default: KeyDefault::Value("3"),
        doc: "replicas of __transaction_state in KRaft mode; a single node keeps one",
        parse: |c, k, v| set(&mut c.kraft.transaction_replication_factor, positive(k, v)),
        show: Some(|c| c.kraft.transaction_replication_factor.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "transaction.state.log.min.isr",
        default: KeyDefault::Value("2"),
        doc: "min.insync.replicas of __transaction_state in KRaft mode",
        parse: |c, k, v| set(&mut c.kraft.transaction_min_isr, positive(k, v)),
        show: Some(|c| c.kraft.transaction_min_isr.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "share.coordinator.state.topic.replication.factor",
        default: KeyDefault::Value("3"),
        doc: "replicas of __share_group_state in KRaft mode; a single node keeps one",
        parse: |c, k, v| set(&mut c.kraft.share_state_replication_factor, positive(k, v)),
        show: Some(|c| c.kraft.share_state_replication_factor.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "share.coordinator.state.topic.min.isr",
        default: KeyDefault::Value("2"),
        doc: "min.insync.replicas of __share_group_state in KRaft mode",
        parse: |c, k, v| set(&mut c.kraft.share_state_min_isr, positive(k, v)),
        show: Some(|c| c.kraft.share_state_min_isr.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "replica.lag.time.max.ms",
        default: KeyDefault::Value("30000"),
        doc: "a follower not caught up with its leader this long leaves the ISR",
        parse: |c, k, v| set(&mut c.kraft.replica_lag_time_max_ms, positive(k, v)),
        show: Some(|c| c.kraft.replica_lag_time_max_ms.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "replica.fetch.max.bytes",
        default: KeyDefault::Value("1048576"),
        doc: "bytes a follower asks per partition in one fetch",
        parse: |c, k, v| set(&mut c.kraft.replica_fetch_max_bytes, positive(k, v)),
        show: Some(|c| c.kraft.replica_fetch_max_bytes.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "replica.fetch.response.max.bytes",
        default: KeyDefault::Value("10485760"),
        doc: "bytes a follower asks in one fetch over all partitions",
        parse: |c, k, v| {
            set(
                &mut c.kraft.replica_fetch_response_max_bytes,
                positive(k, v),
            )
        },
        show: Some(|c| c.kraft.replica_fetch_response_max_bytes.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "replica.fetch.wait.max.ms",
        default: KeyDefault::Value("500"),
        doc: "longest a follower's fetch waits at the leader for new records",
        parse: |c, k, v| set(&mut c.kraft.replica_fetch_wait_max_ms, positive(k, v)),
        show: Some(|c| c.kraft.replica_fetch_wait_max_ms.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "replica.fetch.backoff.ms",
        default: KeyDefault::Value("1000"),
        doc: "pause after a failed follower fetch",
        parse: |c, k, v| set(&mut c.kraft.replica_fetch_backoff_ms, positive(k, v)),
        show: Some(|c| c.kraft.replica_fetch_backoff_ms.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "auto.leader.rebalance.enable",
        default: KeyDefault::Value("true"),
        doc: "the active controller moves leadership back to preferred replicas",
        parse: |c, k, v| set(&mut c.kraft.auto_leader_rebalance, parse_key(k, v)),
        show: Some(|c| c.kraft.auto_leader_rebalance.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "leader.imbalance.check.interval.seconds",
        default: KeyDefault::Value("300"),
        doc: "how often the active controller looks for leaders off their preferred replica",
        parse: |c, k, v| {
            set(
                &mut c.kraft.leader_imbalance_check_interval_seconds,
                positive(k, v),
            )
        },
        show: Some(|c| c.kraft.leader_imbalance_check_interval_seconds.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "leader.imbalance.per.broker.percentage",
        default: KeyDefault::Value("10"),
        doc: "share of a broker's preferred partitions led elsewhere that triggers a rebalance",
        parse: |c, k, v| {
            set(
                &mut c.kraft.leader_imbalance_per_broker_percentage,
                parse_key(k, v),
            )
        },
        show: Some(|c| c.kraft.leader_imbalance_per_broker_percentage.to_string()),
        ..KEY
    },
    BrokerKey {
        name: "broker.rack",
        default: KeyDefault::Unset,
        doc: "the rack of this node, reported in Metadata and DescribeCluster",
        parse: |c, k, v| {
            let rack = v.trim();
            if rack.is_empty() {
                return Err(invalid(k, v, "must name a rack"));
            }
            c.kraft.broker_rack = Some(rack.to_string());
            Ok(())
        },
        show: Some(|c| c.kraft.broker_rack.clone().unwrap_or_default()),
        ..KEY
    },
    BrokerKey {
        name: "replica.selector.class",
        default: KeyDefault::Unset,
        doc: "KIP-392: org.apache.kafka.common.replica.RackAwareReplicaSelector sends consumers to a replica in their client.rack; unset or LeaderSelector: the leader serves them",
        parse: |c, k, v| {
            c.kraft.replica_selector = cluster::ReplicaSelector::from_class(v).ok_or_else(|| {
                invalid(
                    k,
                    v,
                    "only org.apache.kafka.common.replica.RackAwareReplicaSelector and org.apache.kafka.common.replica.LeaderSelector are supported",
                )
            })?;
            Ok(())
        },
        show: Some(|c| match c.kraft.replica_selector {
            cluster::ReplicaSelector::Leader => String::new(),
            cluster::ReplicaSelector::RackAware => {
                cluster::ReplicaSelector::RACK_AWARE_CLASS.to_string()
            }
        }),
        ..KEY
    },
];

/// Key-at-a-time updates of the network limits; here beside the table rather than in
/// `network.rs`, which the table's entries use, so the two files do not import each other.
impl super::network::NetworkLimits {
    /// Applies one of the network keys (entries of [`BROKER_KEYS`] that set these
    /// limits), for callers that hold only the limits. Other broker keys are still checked
    /// but leave the limits as they are; unknown keys are ignored.
    pub fn apply(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let Some(spec) = find(key) else {
            return Ok(());
        };
        let mut cfg = BrokerConfig {
            network: self.clone(),
            ..BrokerConfig::default()
        };
        spec.apply(&mut cfg, key, value)?;
        *self = cfg.network;
        Ok(())
    }
}

/// Kafka also takes the assignors' class names
/// (`org.apache.kafka.coordinator.group.assignor.UniformAssignor`); both mean the same.
fn short_assignor_name(name: &str) -> &str {
    match name.rsplit('.').next().unwrap_or(name) {
        "UniformAssignor" => assignor::UNIFORM,
        "RangeAssignor" => assignor::RANGE,
        _ => name,
    }
}
