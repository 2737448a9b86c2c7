//! Topic-level configuration (`segment.bytes`, `retention.ms`, ...): the table of keys Sluice
//! knows with their broker-level names and defaults, validation, and the three layers Kafka
//! reports in DescribeConfigs (default, broker, topic). Pure data; used by every shard.

use std::collections::BTreeMap;

/// A topic config (CreateTopics, AlterConfigs, the broker's topic defaults) that cannot be
/// applied; answered with INVALID_CONFIG.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicConfigError {
    /// The key is not a topic config Sluice knows.
    #[error("unknown topic config {0}")]
    UnknownKey(String),
    /// The value does not parse or is outside the key's range.
    #[error("invalid value {value:?} for {key}: {reason}")]
    Invalid {
        /// The key as given.
        key: String,
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

/// `message.timestamp.type`: whose clock a record's timestamp is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// The producer's timestamp, stored as sent (Kafka's default).
    CreateTime,
    /// The broker's clock at append: the batch's max timestamp is overwritten.
    LogAppendTime,
}

enum Kind {
    /// An integer with an inclusive lower bound.
    Int(i64),
    /// An integer within inclusive bounds.
    Range(i64, i64),
    Choice(&'static [&'static str]),
    /// A throttled-replicas list: empty, `*`, or `partition:broker` pairs separated by commas.
    ReplicaList,
}

/// One topic-level key: its name, the broker keys that set its default, Kafka's default.
pub struct KeySpec {
    pub name: &'static str,
    broker_keys: &'static [(&'static str, i64)],
    pub default: &'static str,
    kind: Kind,
}

const MAX: &str = "9223372036854775807";

/// Broker keys are listed with the factor that converts their unit to the topic key's unit.
pub const TOPIC_KEYS: &[KeySpec] = &[
    KeySpec {
        name: "cleanup.policy",
        broker_keys: &[("log.cleanup.policy", 1)],
        default: "delete",
        kind: Kind::Choice(&["delete", "compact", "compact,delete", "delete,compact"]),
    },
    KeySpec {
        name: "compression.type",
        broker_keys: &[("compression.type", 1)],
        default: "producer",
        kind: Kind::Choice(&["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]),
    },
    KeySpec {
        name: "delete.retention.ms",
        broker_keys: &[("log.cleaner.delete.retention.ms", 1)],
        default: "86400000",
        kind: Kind::Int(0),
    },
    KeySpec {
        name: "follower.replication.throttled.replicas",
        broker_keys: &[],
        default: "",
        kind: Kind::ReplicaList,
    },
    KeySpec {
        name: "flush.messages",
        broker_keys: &[("log.flush.interval.messages", 1)],
        default: MAX,
        kind: Kind::Int(1),
    },
    KeySpec {
        name: "flush.ms",
        broker_keys: &[("log.flush.interval.ms", 1)],
        default: MAX,
        kind: Kind::Int(0),
    },
    KeySpec {
        name: "index.interval.bytes",
        broker_keys: &[("log.index.interval.bytes", 1)],
        default: "4096",
        kind: Kind::Int(0),
    },
    KeySpec {
        name: "leader.replication.throttled.replicas",
        broker_keys: &[],
        default: "",
        kind: Kind::ReplicaList,
    },
    KeySpec {
        name: "max.message.bytes",
        broker_keys: &[("message.max.bytes", 1)],
        default: "1048588",
        kind: Kind::Int(0),
    },
    KeySpec {
        name: "message.timestamp.type",
        broker_keys: &[("log.message.timestamp.type", 1)],
        default: "CreateTime",
        kind: Kind::Choice(&["CreateTime", "LogAppendTime"]),
    },
    KeySpec {
        name: "min.cleanable.dirty.ratio",
        broker_keys: &[("log.cleaner.min.cleanable.ratio", 1)],
        default: "0.5",
        kind: Kind::Choice(&[]),
    },
    KeySpec {
        name: "max.compaction.lag.ms",
        broker_keys: &[("log.cleaner.max.compaction.lag.ms", 1)],
        default: MAX,
        kind: Kind::Int(1),
    },
    KeySpec {
        name: "min.compaction.lag.ms",
        broker_keys: &[("log.cleaner.min.compaction.lag.ms", 1)],
        default: "0",
        kind: Kind::Int(0),
    },
    KeySpec {
        name: "min.insync.replicas",
        broker_keys: &[("min.insync.replicas", 1)],
        default: "1",
        kind: Kind::Int(1),
    },
    KeySpec {
        name: "retention.bytes",
        broker_keys: &[("log.retention.bytes", 1)],
        default: "-1",
        kind: Kind::Int(-1),
    },
    KeySpec {
        name: "retention.ms",
        broker_keys: &[
            ("log.retention.ms", 1),
            ("log.retention.minutes", 60_000),
            ("log.retention.hours", 3_600_000),
        ],
        default: "604800000",
        kind: Kind::Int(-1),
    },
    KeySpec {
        name: "segment.bytes",
        broker_keys: &[("log.segment.bytes", 1)],
        default: "1073741824",
        kind: Kind::Int(14),
    },
    KeySpec {
        name: "segment.ms",
        broker_keys: &[("log.roll.ms", 1), ("log.roll.hours", 3_600_000)],
        default: "604800000",
        kind: Kind::Int(1),
    },
    KeySpec {
        name: "unclean.leader.election.enable",
        broker_keys: &[("unclean.leader.election.enable", 1)],
        default: "false",
        kind: Kind::Choice(&["true", "false"]),
    },
    // Kafka's remaining topic keys, accepted, stored and described with Kafka's defaults so
    // that tools and clients' admin tests that set them work. The gzip and zstd levels are
    // used by recompression; Sluice does not act on the others (INERT_TOPIC_KEYS says why).
    KeySpec {
        name: "compression.gzip.level",
        broker_keys: &[("compression.gzip.level", 1)],
        default: "-1",
        kind: Kind::Range(-1, 9),
    },
    KeySpec {
        name: "compression.lz4.level",
        broker_keys: &[("compression.lz4.level", 1)],
        default: "9",
        kind: Kind::Range(1, 17),
    },
    KeySpec {
        name: "compression.zstd.level",
        broker_keys: &[("compression.zstd.level", 1)],
        default: "3",
        kind: Kind::Range(-131_072, 22),
    },
    KeySpec {
        name: "file.delete.delay.ms",
        broker_keys: &[("log.segment.delete.delay.ms", 1)],
        default: "60000",
        kind: Kind::Int(0),
    },
    KeySpec {
        name: "local.retention.bytes",
        broker_keys: &[("log.local.retention.bytes", 1)],
        default: "-2",
        kind: Kind::Int(-2),
    },
    KeySpec {
        name: "local.retention.ms",
        broker_keys: &[("log.local.retention.ms", 1)],
        default: "-2",
        kind: Kind::Int(-2),
    },
    KeySpec {
        name: "message.timestamp.after.max.ms",
        broker_keys: &[("log.message.timestamp.after.max.ms", 1)],
        default: MAX,
        kind: Kind::Int(0),
    },
    KeySpec {
        name: "message.timestamp.before.max.ms",
        broker_keys: &[("log.message.timestamp.before.max.ms", 1)],
        default: MAX,
        kind: Kind::Int(0),
    },
    KeySpec {
        name: "preallocate",
        broker_keys: &[("log.preallocate", 1)],
        default: "false",
        kind: Kind::Choice(&["true", "false"]),
    },
    KeySpec {
        name: "remote.log.copy.disable",
        broker_keys: &[],
        default: "false",
        kind: Kind::Choice(&["true", "false"]),
    },
    KeySpec {
        name: "remote.log.delete.on.disable",
        broker_keys: &[],
        default: "false",
        kind: Kind::Choice(&["true", "false"]),
    },
    KeySpec {
        // Tiered storage is not implemented: only `false` is accepted, as Kafka refuses
        // `true` on a broker without remote storage.
        name: "remote.storage.enable",
        broker_keys: &[],
        default: "false",
        kind: Kind::Choice(&["false"]),
    },
    KeySpec {
        name: "segment.index.bytes",
        broker_keys: &[("log.index.size.max.bytes", 1)],
        default: "10485760",
        kind: Kind::Int(4),
    },
    KeySpec {
        name: "segment.jitter.ms",
        broker_keys: &[
            ("log.roll.jitter.ms", 1),
            ("log.roll.jitter.hours", 3_600_000),
        ],
        default: "0",
        kind: Kind::Int(0),
    },
];

/// Topic keys Sluice accepts and describes but does not act on, with the reason.
pub const INERT_TOPIC_KEYS: &[(&str, &str)] = &[
    (
        "compression.lz4.level",
        "lz4 is written in its fast mode only (lz4_flex has no high-compression mode)",
    ),
    (
        "file.delete.delay.ms",
        "segments are deleted as soon as no read holds them",
    ),
    ("local.retention.bytes", "no tiered storage"),
    ("local.retention.ms", "no tiered storage"),
    (
        "message.timestamp.after.max.ms",
        "record timestamps are not checked against the clock",
    ),
    (
        "message.timestamp.before.max.ms",
        "record timestamps are not checked against the clock",
    ),
    ("preallocate", "segments grow as they are written"),
    ("remote.log.copy.disable", "no tiered storage"),
    ("remote.log.delete.on.disable", "no tiered storage"),
    ("remote.storage.enable", "no tiered storage (only false)"),
    (
        "segment.index.bytes",
        "the offset index grows with its segment",
    ),
    ("segment.jitter.ms", "segments roll at segment.ms exactly"),
];

/// Dynamic broker configs that are not topic defaults: the replication quotas in bytes per
/// second (Kafka's names; unset means Kafka's default, unlimited), read by the replica
/// fetcher and the leader for the replicas a topic lists as throttled.
pub const REPLICATION_QUOTA_KEYS: &[&str] = &[
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
];

fn spec(name: &str) -> Option<&'static KeySpec> {
    TOPIC_KEYS.iter().find(|k| k.name == name)
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> TopicConfigError {
    TopicConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// Checks one topic-level key and value as CreateTopics and AlterConfigs receive them.
pub fn validate_topic_key(key: &str, value: &str) -> Result<(), TopicConfigError> {
    let spec = spec(key).ok_or_else(|| TopicConfigError::UnknownKey(key.to_string()))?;
    check_kind(spec, key, value)
}

fn check_kind(spec: &KeySpec, key: &str, value: &str) -> Result<(), TopicConfigError> {
    match &spec.kind {
        Kind::Int(min) => {
            let v: i64 = value
                .trim()
                .parse()
                .map_err(|e| invalid(key, value, format!("{e}")))?;
            if v < *min {
                return Err(invalid(key, value, format!("must be at least {min}")));
            }
        }
        Kind::Range(min, max) => {
            let v: i64 = value
                .trim()
                .parse()
                .map_err(|e| invalid(key, value, format!("{e}")))?;
            if !(*min..=*max).contains(&v) {
                return Err(invalid(key, value, format!("must be in [{min}, {max}]")));
            }
        }
        Kind::Choice([]) => {
            let v: f64 = value
                .trim()
                .parse()
                .map_err(|e| invalid(key, value, format!("{e}")))?;
            if !(0.0..=1.0).contains(&v) {
                return Err(invalid(key, value, "must be between 0 and 1"));
            }
        }
        Kind::Choice(options) => {
            if !options.contains(&value.trim()) {
                return Err(invalid(key, value, format!("must be one of {options:?}")));
            }
        }
        Kind::ReplicaList => check_replica_list(key, value)?,
    }
    Ok(())
}

/// Kafka's throttled-replicas syntax: empty, `*`, or `partition:broker` pairs of integers.
fn check_replica_list(key: &str, value: &str) -> Result<(), TopicConfigError> {
    let v = value.trim();
    if v.is_empty() || v == "*" {
        return Ok(());
    }
    let pair = |entry: &str| {
        entry.split_once(':').is_some_and(|(p, b)| {
            p.trim().parse::<i32>().is_ok_and(|p| p >= 0)
                && b.trim().parse::<i32>().is_ok_and(|b| b >= 0)
        })
    };
    if v.split(',').all(pair) {
        Ok(())
    } else {
        Err(invalid(
            key,
            value,
            "must be empty, * or partition:broker pairs separated by commas",
        ))
    }
}

/// Where a topic config value comes from, as DescribeConfigs reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueSource {
    /// Kafka's default; nothing set it.
    Default,
    /// The broker's config file or flags.
    Broker,
    /// A dynamic broker config (AlterConfigs on a broker resource).
    DynamicBroker,
    /// Set on the topic (CreateTopics or AlterConfigs on the topic).
    Topic,
}

/// The broker-level layer: defaults for every topic, set by `log.*` keys in the config file
/// and, on top of those, by dynamic broker configs.
#[derive(Debug, Clone, Default)]
pub struct TopicDefaults {
    broker_set: BTreeMap<&'static str, (String, ValueSource)>,
}

/// The broker key that sets topic key `spec` in the topic key's own unit (`log.retention.ms`
/// for `retention.ms`, not `log.retention.hours`), if there is one.
fn unit_broker_key(spec: &KeySpec) -> Option<&'static str> {
    spec.broker_keys
        .iter()
        .find(|(_, factor)| *factor == 1)
        .map(|(k, _)| *k)
}

/// Whether a broker key can be changed at run time (AlterConfigs on a broker): the topic
/// defaults in their topic key's unit, as Kafka's cluster-wide dynamic log configs.
pub fn is_dynamic_broker_key(key: &str) -> bool {
    is_inert_dynamic_broker_key(key)
        || REPLICATION_QUOTA_KEYS.contains(&key)
        || is_topic_default_broker_key(key)
}

/// Kafka's dynamic broker keys that have no counterpart in Sluice: AlterConfigs accepts and
/// stores them (validated as Kafka does) so admin tooling that sets them keeps working, and
/// they change nothing. `sasl.kerberos.*` only matters with GSSAPI, which Sluice does not
/// implement; `background.threads` sizes a Kafka thread pool Sluice does not have (its
/// background work runs on each shard and glommio's blocking pool).
pub const INERT_DYNAMIC_BROKER_KEYS: &[&str] = &[
    "sasl.kerberos.min.time.before.relogin",
    "sasl.kerberos.ticket.renew.window.factor",
    "sasl.kerberos.ticket.renew.jitter",
    "background.threads",
];

/// Whether `key` is one of [`INERT_DYNAMIC_BROKER_KEYS`].
pub fn is_inert_dynamic_broker_key(key: &str) -> bool {
    INERT_DYNAMIC_BROKER_KEYS.contains(&key)
}

/// Kafka's checks of an inert key's value: a positive count or duration, or a factor.
pub fn validate_inert_dynamic(key: &str, value: &str) -> Result<(), TopicConfigError> {
    let v = value.trim();
    let ok = if key.ends_with("factor") || key.ends_with("jitter") {
        v.parse::<f64>().is_ok_and(|f| f >= 0.0)
    } else {
        v.parse::<i64>().is_ok_and(|n| n >= 1)
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(key, value, "must be a positive number".to_string()))
    }
}

/// Whether `key` is a topic default under its broker name (`log.retention.ms`, ...).
fn is_topic_default_broker_key(key: &str) -> bool {
    TOPIC_KEYS
        .iter()
        .any(|spec| unit_broker_key(spec) == Some(key))
}

impl TopicDefaults {
    /// Applies a broker key if it sets a topic default; `Ok(false)` if the key is not one.
    pub fn apply_broker_key(&mut self, key: &str, value: &str) -> Result<bool, TopicConfigError> {
        for spec in TOPIC_KEYS {
            let Some((_, factor)) = spec.broker_keys.iter().find(|(k, _)| *k == key) else {
                continue;
            };
            check_kind(spec, key, value)?;
            let topic_value = if *factor == 1 {
                value.trim().to_string()
            } else {
                let v: i64 = value
                    .trim()
                    .parse()
                    .map_err(|e| invalid(key, value, format!("{e}")))?;
                v.saturating_mul(*factor).to_string()
            };
            self.broker_set
                .insert(spec.name, (topic_value, ValueSource::Broker));
            return Ok(true);
        }
        Ok(false)
    }

    /// Effective value and source of every known key for a topic's own settings.
    pub fn describe(
        &self,
        topic_set: &BTreeMap<String, String>,
    ) -> Vec<(&'static str, String, ValueSource)> {
        TOPIC_KEYS
            .iter()
            .map(|spec| {
                if let Some(v) = topic_set.get(spec.name) {
                    (spec.name, v.clone(), ValueSource::Topic)
                } else if let Some((v, source)) = self.broker_set.get(spec.name) {
                    (spec.name, v.clone(), *source)
                } else {
                    (spec.name, spec.default.to_string(), ValueSource::Default)
                }
            })
            .collect()
    }

    /// These defaults with dynamic broker configs on top. Values were validated when they
    /// were altered; one that no longer parses is skipped with a warning.
    pub fn with_dynamic(&self, dynamic: &BTreeMap<String, String>) -> TopicDefaults {
        let mut out = self.clone();
        for (key, value) in dynamic
            .iter()
            .filter(|(k, _)| !is_inert_dynamic_broker_key(k))
        {
            let spec = TOPIC_KEYS
                .iter()
                .find(|spec| unit_broker_key(spec) == Some(key.as_str()));
            match spec {
                Some(spec) if check_kind(spec, key, value).is_ok() => {
                    out.broker_set.insert(
                        spec.name,
                        (value.trim().to_string(), ValueSource::DynamicBroker),
                    );
                }
                // Quotas are read where they apply (the replication throttle).
                _ if REPLICATION_QUOTA_KEYS.contains(&key.as_str()) => {}
                _ => tracing::warn!(key = %key, value = %value, "ignoring a dynamic broker config"),
            }
        }
        out
    }

    /// Each topic default under its broker key (`log.flush.interval.messages`, ...), with its
    /// value and source, as DescribeConfigs on a broker lists them.
    pub fn describe_broker_keys(&self) -> Vec<(&'static str, String, ValueSource)> {
        self.describe(&BTreeMap::new())
            .into_iter()
            .zip(TOPIC_KEYS)
            .filter_map(|((_, value, source), spec)| {
                unit_broker_key(spec).map(|key| (key, value, source))
            })
            .collect()
    }

    /// Checks a dynamic broker config as AlterConfigs receives it.
    pub fn validate_dynamic(key: &str, value: &str) -> Result<(), TopicConfigError> {
        if is_inert_dynamic_broker_key(key) {
            return validate_inert_dynamic(key, value);
        }
        if REPLICATION_QUOTA_KEYS.contains(&key) {
            return value
                .trim()
                .parse::<u64>()
                .map(|_| ())
                .map_err(|e| invalid(key, value, format!("must be a byte rate: {e}")));
        }
        let spec = TOPIC_KEYS
            .iter()
            .find(|spec| unit_broker_key(spec) == Some(key))
            .ok_or_else(|| TopicConfigError::UnknownKey(key.to_string()))?;
        check_kind(spec, key, value)
    }

    /// The typed configuration of a topic with the given overrides.
    pub fn resolve(
        &self,
        topic_set: &BTreeMap<String, String>,
    ) -> Result<TopicConfig, TopicConfigError> {
        let values: BTreeMap<&str, String> = self
            .describe(topic_set)
            .into_iter()
            .map(|(k, v, _)| (k, v))
            .collect();
        let int = |key: &str| -> Result<i64, TopicConfigError> {
            let v = &values[key];
            v.trim()
                .parse()
                .map_err(|e| invalid(key, v, format!("{e}")))
        };
        let policy = values["cleanup.policy"].as_str();
        let compression = {
            use crate::protocol::record_batch::Compression;
            match values["compression.type"].trim() {
                "uncompressed" => Some(Compression::None),
                "gzip" => Some(Compression::Gzip),
                "snappy" => Some(Compression::Snappy),
                "lz4" => Some(Compression::Lz4),
                "zstd" => Some(Compression::Zstd),
                _ => None,
            }
        };
        Ok(TopicConfig {
            compression,
            compression_levels: crate::protocol::compression::Levels {
                gzip: int("compression.gzip.level")? as i32,
                zstd: int("compression.zstd.level")? as i32,
            },
            segment_bytes: int("segment.bytes")? as u64,
            segment_ms: int("segment.ms")?,
            index_interval_bytes: int("index.interval.bytes")? as u64,
            max_message_bytes: int("max.message.bytes")? as usize,
            timestamp_type: if values["message.timestamp.type"] == "LogAppendTime" {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            retention_ms: int("retention.ms")?,
            retention_bytes: int("retention.bytes")?,
            compact: policy.contains("compact"),
            delete: policy.contains("delete"),
            flush_messages: int("flush.messages")?,
            flush_ms: int("flush.ms")?,
            delete_retention_ms: int("delete.retention.ms")?,
            min_compaction_lag_ms: int("min.compaction.lag.ms")?,
            max_compaction_lag_ms: int("max.compaction.lag.ms")?,
            min_insync_replicas: int("min.insync.replicas")?,
            min_cleanable_dirty_ratio: values["min.cleanable.dirty.ratio"]
                .trim()
                .parse()
                .unwrap_or(0.5),
        })
    }
}

/// The typed, effective configuration of one topic.
#[derive(Debug, Clone)]
pub struct TopicConfig {
    /// `segment.bytes`: a segment rolls before it would grow past this size.
    pub segment_bytes: u64,
    /// `segment.ms`: a segment rolls once its first append is this old (ms).
    pub segment_ms: i64,
    /// `index.interval.bytes`: bytes of log between two offset-index entries.
    pub index_interval_bytes: u64,
    /// `max.message.bytes`: the largest record batch a produce may append (bytes).
    pub max_message_bytes: usize,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `retention.ms`: closed segments whose newest record is older are deleted; -1 keeps
    /// them forever.
    pub retention_ms: i64,
    /// `retention.bytes`: oldest closed segments go while the log is larger; -1 for no limit.
    pub retention_bytes: i64,
    /// `cleanup.policy` contains `compact`: the cleaner keeps the latest record per key.
    pub compact: bool,
    /// `cleanup.policy` contains `delete`: retention by time and size applies.
    pub delete: bool,
    /// `flush.messages`: fdatasync after this many records (acks=all answers wait for it).
    pub flush_messages: i64,
    /// `flush.ms`: fdatasync once unflushed records are this old (ms).
    pub flush_ms: i64,
    /// `delete.retention.ms`: how long the cleaner keeps a tombstone (ms).
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`: records younger than this are never compacted (ms).
    pub min_compaction_lag_ms: i64,
    /// A record stays uncompacted at most this long (KIP-354): a log whose dirty part holds
    /// older records is cleaned whatever its dirty ratio, and a compacted topic's active
    /// segment rolls once its first append is that old, so its records can be cleaned.
    pub max_compaction_lag_ms: i64,
    /// `min.cleanable.dirty.ratio`: the share of uncleaned bytes that makes a log due.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.insync.replicas`: the smallest ISR that acks=all writes are accepted with, and
    /// below which the high watermark does not move (cluster mode).
    pub min_insync_replicas: i64,
    /// `compression.type`: `None` for `producer` (batches are stored as produced), else the
    /// codec produced batches are rewritten in (`storage::recompress`).
    pub compression: Option<crate::protocol::record_batch::Compression>,
    /// `compression.gzip.level` and `compression.zstd.level`: the levels recompression uses.
    pub compression_levels: crate::protocol::compression::Levels,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicDefaults::default()
            .resolve(&BTreeMap::new())
            .expect("the built-in defaults are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_broker_configs_override_the_file_and_name_their_source() {
        let mut file = TopicDefaults::default();
        assert!(file.apply_broker_key("log.retention.hours", "1").unwrap());
        let dynamic = BTreeMap::from([
            ("log.retention.ms".to_string(), "5000".to_string()),
            ("log.segment.bytes".to_string(), "not a number".to_string()),
        ]);
        let now = file.with_dynamic(&dynamic);
        let described = now.describe(&BTreeMap::new());
        let find = |name: &str| {
            described
                .iter()
                .find(|(n, _, _)| *n == name)
                .unwrap()
                .clone()
        };
        assert_eq!(
            find("retention.ms"),
            ("retention.ms", "5000".into(), ValueSource::DynamicBroker)
        );
        // A value that no longer parses is skipped, not fatal.
        assert_eq!(find("segment.bytes").2, ValueSource::Default);
        assert_eq!(now.resolve(&BTreeMap::new()).unwrap().retention_ms, 5000);
        let broker_keys = now.describe_broker_keys();
        assert!(broker_keys.contains(&(
            "log.retention.ms",
            "5000".into(),
            ValueSource::DynamicBroker
        )));
        assert!(
            !broker_keys
                .iter()
                .any(|(k, _, _)| *k == "log.retention.hours")
        );
    }

    #[test]
    fn only_topic_defaults_in_their_own_unit_are_dynamic() {
        assert!(is_dynamic_broker_key("log.flush.interval.messages"));
        assert!(is_dynamic_broker_key("log.retention.ms"));
        assert!(!is_dynamic_broker_key("log.retention.hours"));
        assert!(!is_dynamic_broker_key("num.partitions"));
        assert!(TopicDefaults::validate_dynamic("log.retention.ms", "-1").is_ok());
        assert!(TopicDefaults::validate_dynamic("log.retention.ms", "soon").is_err());
        assert!(TopicDefaults::validate_dynamic("listeners", "x").is_err());
    }

    #[test]
    fn layers_report_their_source() {
        let mut d = TopicDefaults::default();
        assert!(d.apply_broker_key("log.retention.hours", "1").unwrap());
        let mut t = BTreeMap::new();
        t.insert("segment.bytes".to_string(), "1024".to_string());
        let described = d.describe(&t);
        let find = |k: &str| described.iter().find(|(n, _, _)| *n == k).unwrap().clone();
        assert_eq!(
            find("retention.ms"),
            ("retention.ms", "3600000".into(), ValueSource::Broker)
        );
        assert_eq!(find("segment.bytes").2, ValueSource::Topic);
        assert_eq!(find("flush.ms").2, ValueSource::Default);
        let cfg = d.resolve(&t).unwrap();
        assert_eq!(cfg.segment_bytes, 1024);
        assert_eq!(cfg.retention_ms, 3_600_000);
    }

    #[test]
    fn validation_names_the_key() {
        assert!(matches!(
            validate_topic_key("nope", "1"),
            Err(TopicConfigError::UnknownKey(_))
        ));
        let e = validate_topic_key("message.timestamp.type", "Later").unwrap_err();
        assert!(e.to_string().contains("message.timestamp.type"));
        assert!(validate_topic_key("cleanup.policy", "compact").is_ok());
    }
}
