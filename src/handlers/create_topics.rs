//! CreateTopics (key 19): validates names, partition counts, replication factor (a single
//! node can only hold one replica) and configs, then places partitions on the least-loaded
//! shards. `validate_only` checks everything and creates nothing.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use crate::config::validate_topic_key;
use crate::handlers::describe_configs::source_code;
use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::metadata::MetadataError;
use crate::shard::Shard;

/// Versions served: v2 is the oldest version the protocol crate has, v7 its newest.
pub const VERSIONS: (i16, i16) = (2, 7);

/// One result per requested topic, in request order; with `validate_only` every check runs and
/// nothing is created.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut response = CreateTopicsResponse::default();
    for topic in request.topics {
        response
            .topics
            .push(create_one(shard, ctx.version, topic, request.validate_only));
    }
    response
}

/// Shards named by a manual replica assignment: one replica per partition (a single node
/// holds one), and every broker id must be a shard of this node. `None` if not possible.
pub(crate) fn manual_placement<'a>(
    shard: &Shard,
    lists: impl Iterator<Item = &'a [kafka_protocol::messages::BrokerId]>,
) -> Option<Vec<usize>> {
    lists
        .map(|ids| match ids {
            [only] => shard.config.core_of_broker(only.0),
            _ => None,
        })
        .collect()
}

fn failed(
    mut result: CreatableTopicResult,
    code: ResponseError,
    message: String,
) -> CreatableTopicResult {
    result.error_code = code.code();
    result.error_message = Some(str_bytes(message));
    result.num_partitions = -1;
    result.replication_factor = -1;
    result
}

fn create_one(
    shard: &Shard,
    version: i16,
    topic: CreatableTopic,
    validate_only: bool,
) -> CreatableTopicResult {
    let mut result = CreatableTopicResult::default();
    result.name = topic.name.clone();
    let partitions = if topic.num_partitions == -1 {
        shard.config.num_partitions
    } else {
        topic.num_partitions
    };
    let replication = if topic.replication_factor == -1 {
        shard.config.default_replication_factor
    } else {
        topic.replication_factor
    };
    if replication != 1 {
        let message = format!(
            "replication factor {replication} is not possible: this Sluice node is the only one, so every partition has exactly 1 replica"
        );
        return failed(result, ResponseError::InvalidReplicationFactor, message);
    }
    let placement = if topic.assignments.is_empty() {
        None
    } else {
        let mut sorted: Vec<_> = topic.assignments.iter().collect();
        sorted.sort_by_key(|a| a.partition_index);
        let indexes_ok = sorted
            .iter()
            .enumerate()
            .all(|(i, a)| a.partition_index == i as i32);
        let lists = sorted.iter().map(|a| a.broker_ids.as_slice());
        match manual_placement(shard, lists).filter(|_| indexes_ok) {
            Some(p) => Some(p),
            None => {
                let message = "manual replica assignment must give partitions 0..n-1 exactly one replica each, on a broker (shard) of this node".to_string();
                return failed(result, ResponseError::InvalidReplicaAssignment, message);
            }
        }
    };
    let partitions = placement.as_ref().map_or(partitions, |p| p.len() as i32);
    let mut configs = BTreeMap::new();
    for c in &topic.configs {
        let value = c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
        if let Err(e) = validate_topic_key(&c.name, &value) {
            return failed(result, ResponseError::InvalidConfig, e.to_string());
        }
        configs.insert(c.name.to_string(), value);
    }
    match shard.cluster.create_topic_placed(
        &topic.name.0,
        partitions,
        placement,
        configs,
        validate_only,
    ) {
        Ok(meta) => {
            result.topic_id = meta.id;
            result.num_partitions = meta.partitions.len() as i32;
            result.replication_factor = 1;
            result.configs = (version >= 5).then(|| {
                shard
                    .topic_defaults()
                    .describe(&meta.configs)
                    .into_iter()
                    .map(|(name, value, source)| {
                        let mut c = CreatableTopicConfigs::default();
                        c.name = str_bytes(name);
                        c.value = Some(str_bytes(value));
                        c.config_source = source_code(source);
                        c
                    })
                    .collect()
            });
            result
        }
        Err(e) => {
            let code = match &e {
                MetadataError::TopicExists(_) => ResponseError::TopicAlreadyExists,
                MetadataError::InvalidTopicName { .. } => ResponseError::InvalidTopicException,
                MetadataError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
                MetadataError::TooManyPartitions { .. } => ResponseError::PolicyViolation,
                _ => ResponseError::UnknownServerError,
            };
            failed(result, code, e.to_string())
        }
    }
}
