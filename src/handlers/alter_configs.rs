//! AlterConfigs (key 33) and IncrementalAlterConfigs (key 44) for topics and brokers: validate
//! the new values, persist them in the cluster metadata, and let every shard pick them up on its
//! next reconcile. On a broker only the topic defaults (`log.retention.ms`, ...) are dynamic, as
//! Kafka's cluster-wide log configs; the rest come from the config file and are refused with a
//! message saying so. Runs on the shard that received the request.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use crate::config::{TopicDefaults, is_dynamic_broker_key, validate_topic_key};
use crate::coordinator::group::share::config::{GroupConfigError, check_group_configs};
use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::shard::Shard;

/// AlterConfigs versions served: every version the protocol crate has.
pub const VERSIONS: (i16, i16) = (0, 2);
/// IncrementalAlterConfigs versions served: every version the protocol crate has.
pub const INCREMENTAL_VERSIONS: (i16, i16) = (0, 1);

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_GROUP: i8 = 32;

/// IncrementalAlterConfigs operations.
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

type Outcome = Result<(), (ResponseError, String)>;

/// Applies `change` to the current configs of a topic or a broker.
/// `change` gets the resource's current overrides and its effective defaults (what APPEND
/// and SUBTRACT start from when the key has no override, as in Kafka).
async fn alter_resource(
    shard: &Shard,
    resource_type: i8,
    name: &StrBytes,
    validate_only: bool,
    change: impl FnOnce(&mut BTreeMap<String, String>, &BTreeMap<String, String>) -> Outcome,
) -> Outcome {
    let defaults = shard.topic_defaults();
    match resource_type {
        RESOURCE_TOPIC => {
            let defaults = defaults
                .describe(&BTreeMap::new())
                .into_iter()
                .map(|(k, v, _)| (k.to_string(), v))
                .collect();
            alter_topic(shard, name, validate_only, |c| change(c, &defaults)).await
        }
        RESOURCE_BROKER => {
            let defaults = defaults
                .describe_broker_keys()
                .into_iter()
                .map(|(k, v, _)| (k.to_string(), v))
                .collect();
            alter_broker(shard, name, validate_only, |c| change(c, &defaults)).await
        }
        RESOURCE_GROUP => {
            let defaults = shard
                .config
                .group
                .share
                .describe_group(None)
                .into_iter()
                .map(|(k, v, _)| (k.to_string(), v))
                .collect();
            alter_group(shard, name, validate_only, |c| change(c, &defaults)).await
        }
        other => Err((
            ResponseError::InvalidRequest,
            format!(
                "resource type {other} has no configs to alter; topics (2), brokers (4) and groups (32) do"
            ),
        )),
    }
}

/// Applies `change` to a topic's current overrides, validates the result and stores it.
async fn alter_topic(
    shard: &Shard,
    name: &StrBytes,
    validate_only: bool,
    change: impl FnOnce(&mut BTreeMap<String, String>) -> Outcome,
) -> Outcome {
    let topic = shard.cluster.topic(name).ok_or_else(|| {
        (
            ResponseError::UnknownTopicOrPartition,
            format!("topic '{}' does not exist", &**name),
        )
    })?;
    let mut configs = topic.configs.clone();
    change(&mut configs)?;
    for (k, v) in &configs {
        validate_topic_key(k, v).map_err(|e| (ResponseError::InvalidConfig, e.to_string()))?;
    }
    if validate_only {
        return Ok(());
    }
    let stored = if shard.cluster.is_clustered() {
        shard.cluster.propose_topic_configs(name, configs).await
    } else {
        shard.cluster.set_topic_configs(name, configs)
    };
    stored.map_err(|e| (e.kafka_error(), e.to_string()))?;
    tracing::info!(topic = %&**name, "topic configs changed");
    Ok(())
}

/// Applies `change` to the dynamic broker configs. `name` is one of this node's broker ids or
/// empty (Kafka's cluster-wide default): both change the node's one configuration, because
/// its shards are one process.
async fn alter_broker(
    shard: &Shard,
    name: &StrBytes,
    validate_only: bool,
    change: impl FnOnce(&mut BTreeMap<String, String>) -> Outcome,
) -> Outcome {
    if !name.is_empty() {
        // In a cluster the dynamic configs are cluster-wide, so any live broker id names them.
        let known = name.parse::<i32>().ok().is_some_and(|id| {
            crate::metadata::brokers::advertised_broker(&shard.cluster, &shard.config, id, 0)
                .is_some()
        });
        if !known {
            return Err((
                ResponseError::InvalidRequest,
                format!("'{}' is not a live broker id", &**name),
            ));
        }
    }
    let mut configs = shard.cluster.broker_configs();
    change(&mut configs)?;
    for (key, value) in &configs {
        if !is_dynamic_broker_key(key) {
            return Err((
                ResponseError::InvalidConfig,
                format!(
                    "{key} cannot be changed at run time: set it in the config file (--config) and restart; \
                     the dynamic broker configs are the topic defaults (log.retention.ms, log.segment.bytes, ...)"
                ),
            ));
        }
        TopicDefaults::validate_dynamic(key, value)
            .map_err(|e| (ResponseError::InvalidConfig, e.to_string()))?;
    }
    if validate_only {
        return Ok(());
    }
    let stored = if shard.cluster.is_clustered() {
        shard.cluster.propose_broker_configs(configs).await
    } else {
        shard.cluster.set_broker_configs(configs)
    };
    stored.map_err(|e| (e.kafka_error(), e.to_string()))?;
    tracing::info!(broker = %&**name, "dynamic broker configs changed");
    Ok(())
}

/// Applies `change` to a group's dynamic configs (the `share.*` group configs), checks the
/// result and stores it. The group need not exist yet, as in Kafka: configs set first apply
/// from its first member on.
async fn alter_group(
    shard: &Shard,
    name: &StrBytes,
    validate_only: bool,
    change: impl FnOnce(&mut BTreeMap<String, String>) -> Outcome,
) -> Outcome {
    if name.is_empty() {
        return Err((
            ResponseError::InvalidGroupId,
            "the group id is empty".to_string(),
        ));
    }
    let mut configs = shard.cluster.group_configs(name);
    change(&mut configs)?;
    check_group_configs(&shard.config.group.share, &configs).map_err(|e| match e {
        GroupConfigError::Unsupported(m) => (ResponseError::InvalidRequest, m),
        GroupConfigError::Invalid(m) => (ResponseError::InvalidConfig, m),
    })?;
    if validate_only {
        return Ok(());
    }
    let stored = if shard.cluster.is_clustered() {
        shard.cluster.propose_group_configs(name, configs).await
    } else {
        shard.cluster.set_group_configs(name, configs)
    };
    stored.map_err(|e| (e.kafka_error(), e.to_string()))?;
    tracing::info!(group = %&**name, "group configs changed");
    Ok(())
}

/// ALTER_CONFIGS on the topic, on the group, or on the cluster for a broker (Kafka's rule).
fn authorize(shard: &Shard, ctx: &RequestContext, resource_type: i8, name: &str) -> Outcome {
    crate::handlers::describe_configs::config_access(
        shard,
        ctx,
        crate::acl::Operation::AlterConfigs,
        resource_type,
        name,
    )
    .map_err(|code| (code, "Authorization failed.".to_string()))
}

fn fill(outcome: Outcome, error_code: &mut i16, error_message: &mut Option<StrBytes>) {
    if let Err((code, message)) = outcome {
        *error_code = code.code();
        *error_message = Some(str_bytes(message));
    }
}

/// Legacy AlterConfigs: the request's set replaces all of the resource's configs.
pub async fn handle_alter(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut response = AlterConfigsResponse::default();
    for resource in &request.resources {
        let outcome = authorize(shard, ctx, resource.resource_type, &resource.resource_name);
        let outcome = if outcome.is_err() {
            outcome
        } else {
            alter_resource(
                shard,
                resource.resource_type,
                &resource.resource_name,
                request.validate_only,
                |configs, _| {
                    configs.clear();
                    for c in &resource.configs {
                        configs.insert(
                            c.name.to_string(),
                            c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                        );
                    }
                    Ok(())
                },
            )
            .await
        };
        let mut out =
            kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse::default(
            );
        out.resource_type = resource.resource_type;
        out.resource_name = resource.resource_name.clone();
        fill(outcome, &mut out.error_code, &mut out.error_message);
        response.responses.push(out);
    }
    response
}

/// IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT on individual keys.
pub async fn handle_incremental(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut response = IncrementalAlterConfigsResponse::default();
    for resource in &request.resources {
        let outcome = authorize(shard, ctx, resource.resource_type, &resource.resource_name);
        let outcome = if outcome.is_err() {
            outcome
        } else {
            alter_resource(
                shard,
                resource.resource_type,
                &resource.resource_name,
                request.validate_only,
                |configs, defaults| {
                    for c in &resource.configs {
                        let op = (c.config_operation, c.value.as_deref());
                        apply_operation(configs, defaults, &c.name, op)?;
                    }
                    Ok(())
                },
            )
            .await
        };
        let mut out = kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse::default();
        out.resource_type = resource.resource_type;
        out.resource_name = resource.resource_name.clone();
        fill(outcome, &mut out.error_code, &mut out.error_message);
        response.responses.push(out);
    }
    response
}

fn apply_operation(
    configs: &mut BTreeMap<String, String>,
    defaults: &BTreeMap<String, String>,
    name: &str,
    (op, value): (i8, Option<&str>),
) -> Outcome {
    let list = |configs: &BTreeMap<String, String>| -> Vec<String> {
        configs
            .get(name)
            .or_else(|| defaults.get(name))
            .map(|v| {
                v.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    match op {
        OP_SET => {
            configs.insert(name.to_string(), value.unwrap_or_default().to_string());
        }
        OP_DELETE => {
            configs.remove(name);
        }
        OP_APPEND => {
            let mut items = list(configs);
            for v in value
                .unwrap_or_default()
                .split(',')
                .filter(|s| !s.is_empty())
            {
                if !items.iter().any(|i| i == v) {
                    items.push(v.to_string());
                }
            }
            configs.insert(name.to_string(), items.join(","));
        }
        OP_SUBTRACT => {
            let remove: Vec<&str> = value.unwrap_or_default().split(',').collect();
            let items: Vec<String> = list(configs)
                .into_iter()
                .filter(|i| !remove.contains(&i.as_str()))
                .collect();
            configs.insert(name.to_string(), items.join(","));
        }
        other => {
            return Err((
                ResponseError::InvalidRequest,
                format!("unknown config operation {other}"),
            ));
        }
    }
    Ok(())
}
