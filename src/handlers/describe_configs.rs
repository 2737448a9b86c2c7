//! DescribeConfigs (key 32): effective topic configs with their source (default, broker
//! file, topic override) and the broker's own settings.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use crate::acl::{Operation, enforce};
use crate::config::{INERT_TOPIC_KEYS, ValueSource, is_sensitive_key};
use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::shard::Shard;

/// Versions served: v1 is the oldest version the protocol crate has, v4 its newest.
pub const VERSIONS: (i16, i16) = (1, 4);

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
/// Kafka's `ConfigResource.Type.GROUP`.
const RESOURCE_GROUP: i8 = 32;

/// Kafka's ConfigSource codes.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const SOURCE_GROUP: i8 = 8;

/// Kafka's ConfigSource code for where a value comes from, as DescribeConfigs and CreateTopics
/// report it: 1 topic override, 2 dynamic broker config, 4 the config file, 5 default.
pub fn source_code(source: ValueSource) -> i8 {
    match source {
        ValueSource::Topic => SOURCE_TOPIC,
        ValueSource::Broker => SOURCE_STATIC_BROKER,
        ValueSource::DynamicBroker => SOURCE_DYNAMIC_BROKER,
        ValueSource::Default => SOURCE_DEFAULT,
    }
}

/// Kafka's ConfigType codes for the value's type, as newer admin clients display them.
fn config_type(name: &str) -> i8 {
    const BOOLEAN: i8 = 1;
    const STRING: i8 = 2;
    const INT: i8 = 3;
    const LONG: i8 = 5;
    const DOUBLE: i8 = 6;
    const LIST: i8 = 7;
    const SHORT: i8 = 4;
    match name {
        "cleanup.policy"
        | "listeners"
        | "advertised.listeners"
        | "process.roles"
        | "controller.quorum.voters"
        | "controller.quorum.bootstrap.servers"
        | "controller.listener.names"
        | "sasl.enabled.mechanisms" => LIST,
        "compression.type"
        | "message.timestamp.type"
        | "max.connections.per.ip.overrides"
        | "listener.security.protocol.map"
        | "log.dirs"
        | "metadata.log.dir"
        | "sluice.metrics.addr"
        | "sluice.shard.ports"
        | "broker.rack"
        | "replica.selector.class" => STRING,
        "offsets.topic.replication.factor" | "transaction.state.log.replication.factor" => SHORT,
        "node.id"
        | "default.replication.factor"
        | "transaction.state.log.min.isr"
        | "controller.quorum.election.timeout.ms"
        | "controller.quorum.fetch.timeout.ms"
        | "controller.quorum.request.timeout.ms"
        | "broker.heartbeat.interval.ms"
        | "broker.session.timeout.ms"
        | "initial.broker.registration.timeout.ms" => INT,
        "min.cleanable.dirty.ratio" => DOUBLE,
        "index.interval.bytes"
        | "max.message.bytes"
        | "segment.bytes"
        | "min.insync.replicas"
        | "num.partitions"
        | "max.connections"
        | "max.connections.per.ip"
        | "sasl.server.max.receive.size" => INT,
        "auto.create.topics.enable" => BOOLEAN,
        _ => LONG,
    }
}

/// One result per resource asked: a topic's effective configs or the broker's settings, each with
/// its source, narrowed to `configuration_keys` when given; an unknown topic gets
/// UNKNOWN_TOPIC_OR_PARTITION, another resource type INVALID_REQUEST.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let mut response = DescribeConfigsResponse::default();
    response.results = request
        .resources
        .iter()
        .map(|r| {
            match config_access(
                shard,
                ctx,
                Operation::DescribeConfigs,
                r.resource_type,
                &r.resource_name,
            ) {
                Ok(()) => {
                    let mut result = describe_resource(shard, r);
                    if request.include_documentation {
                        document_inert_keys(&mut result);
                    }
                    result
                }
                Err(code) => {
                    let mut result = DescribeConfigsResult::default();
                    result.resource_type = r.resource_type;
                    result.resource_name = r.resource_name.clone();
                    result.error_code = code.code();
                    result
                }
            }
        })
        .collect();
    response
}

/// Kafka's check for the config APIs: `op` (DESCRIBE_CONFIGS or ALTER_CONFIGS) on the topic,
/// or on the cluster for a broker resource; other resource types are left to the handler.
pub(crate) fn config_access(
    shard: &Shard,
    ctx: &RequestContext,
    op: Operation,
    resource_type: i8,
    name: &str,
) -> Result<(), ResponseError> {
    match resource_type {
        RESOURCE_TOPIC => enforce::topic(shard, ctx, op, name),
        RESOURCE_BROKER => enforce::cluster_allowed(shard, ctx, op)
            .then_some(())
            .ok_or(ResponseError::ClusterAuthorizationFailed),
        RESOURCE_GROUP => enforce::group(shard, ctx, op, name),
        _ => Ok(()),
    }
}

/// Says of each topic key Sluice accepts without acting on it that it does not, and why: the
/// one place a client (e.g. `kafka-configs --describe --all` with documentation) can see it.
fn document_inert_keys(result: &mut DescribeConfigsResult) {
    for config in &mut result.configs {
        if let Some((_, why)) = INERT_TOPIC_KEYS.iter().find(|(k, _)| *k == &*config.name) {
            config.documentation = Some(str_bytes(format!(
                "Accepted and stored for compatibility; Sluice does not act on it: {why}."
            )));
        }
    }
}

fn entry(name: &str, value: String, source: i8) -> DescribeConfigsResourceResult {
    let mut c = DescribeConfigsResourceResult::default();
    c.name = str_bytes(name);
    c.value = Some(str_bytes(value));
    c.config_source = source;
    c.config_type = config_type(name);
    c
}

fn describe_resource(shard: &Shard, resource: &DescribeConfigsResource) -> DescribeConfigsResult {
    let mut result = DescribeConfigsResult::default();
    result.resource_type = resource.resource_type;
    result.resource_name = resource.resource_name.clone();
    let entries = match resource.resource_type {
        RESOURCE_TOPIC => match shard.cluster.topic(&resource.resource_name) {
            Some(meta) => Ok(shard
                .topic_defaults()
                .describe(&meta.configs)
                .into_iter()
                .map(|(name, value, source)| entry(name, value, source_code(source)))
                .collect::<Vec<_>>()),
            None => Err((
                ResponseError::UnknownTopicOrPartition,
                format!("topic '{}' does not exist", &*resource.resource_name),
            )),
        },
        RESOURCE_BROKER => Ok(broker_entries(shard)),
        RESOURCE_GROUP => group_entries(shard, &resource.resource_name),
        other => Err((
            ResponseError::InvalidRequest,
            format!("resource type {other} is not supported"),
        )),
    };
    match entries {
        Ok(mut configs) => {
            if let Some(keys) = &resource.configuration_keys {
                configs.retain(|c| keys.contains(&c.name));
            }
            result.configs = configs;
        }
        Err((code, message)) => {
            result.error_code = code.code();
            result.error_message = Some(str_bytes(message));
        }
    }
    result
}

/// The `share.*` group configs of `group`: its own where set (GROUP_CONFIG), else the
/// broker's (DEFAULT_CONFIG), as Kafka describes a group resource. A group with no config
/// set gets INVALID_REQUEST (what a broker without group configs answers, and what
/// librdkafka's admin test expects of the Kafka version its suite is told): Sluice serves
/// group configs only where one was set.
fn group_entries(
    shard: &Shard,
    group: &str,
) -> Result<Vec<DescribeConfigsResourceResult>, (ResponseError, String)> {
    let configs = shard.cluster.group_configs(group);
    if configs.is_empty() {
        return Err((
            ResponseError::InvalidRequest,
            format!(
                "group '{group}' has no group configs; set a share.* group config with IncrementalAlterConfigs first"
            ),
        ));
    }
    Ok(shard
        .config
        .group
        .share
        .describe_group(Some(&configs))
        .into_iter()
        .map(|(name, value, set)| {
            let source = if set { SOURCE_GROUP } else { SOURCE_DEFAULT };
            entry(name, value, source)
        })
        .collect())
}

fn broker_entries(shard: &Shard) -> Vec<DescribeConfigsResourceResult> {
    let c = &shard.config;
    // The same effective settings `serve --print-config` shows; the listener keys are
    // replaced below by this shard's own, and topic defaults are described per topic.
    // Those are fixed at start-up, hence read-only; the topic defaults under their broker keys
    // (`log.retention.ms`, ...) follow and are the dynamic ones.
    let mut out: Vec<_> = c
        .effective()
        .into_iter()
        .filter(|(name, _, _)| !name.starts_with('(') && !name.contains("listeners"))
        .map(|(name, value, source)| {
            let source = if source == "default" {
                SOURCE_DEFAULT
            } else {
                SOURCE_STATIC_BROKER
            };
            let mut e = entry(&name, value, source);
            e.read_only = true;
            e
        })
        .collect();
    for (name, value, source) in shard.topic_defaults().describe_broker_keys() {
        if !out.iter().any(|e| *e.name == *name) {
            out.push(entry(name, value, source_code(source)));
        }
    }
    // This shard's own listener, as Kafka shows a broker's: fixed at start-up (flags or config
    // file), hence static and read-only. Admin tools read advertised.listeners to reach a broker.
    let port = c.shard_ports[shard.core];
    for (name, host) in [
        ("listeners", &c.host),
        ("advertised.listeners", &c.advertised_host),
    ] {
        let mut e = entry(
            name,
            format!("{}://{host}:{port}", c.security_protocol.name()),
            SOURCE_STATIC_BROKER,
        );
        e.read_only = true;
        out.push(e);
    }
    for (name, value) in &c.explicit {
        if !out.iter().any(|e| *e.name == **name) {
            let mut e = entry(name, value.clone(), SOURCE_STATIC_BROKER);
            // JAAS lines carry passwords: shown as sensitive, without a value, as Kafka does.
            if is_sensitive_key(name) {
                e.value = None;
                e.is_sensitive = true;
            }
            out.push(e);
        }
    }
    out
}
