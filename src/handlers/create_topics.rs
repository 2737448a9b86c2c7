//! CreateTopics (key 19): validates names, partition counts, replication factor and configs,
//! then places partitions: on a single node (one replica only) on the least-loaded shards; in
//! a cluster over the unfenced nodes, committed through the controller quorum.
//! `validate_only` checks everything and creates nothing.

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use crate::acl::{Operation, ResourceType, enforce};
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
    // CREATE on the cluster allows every topic; otherwise CREATE on each topic (Kafka's rule).
    let cluster_create = enforce::cluster_allowed(shard, ctx, Operation::Create);
    for topic in request.topics {
        if !(cluster_create
            || enforce::allowed(
                shard,
                ctx,
                Operation::Create,
                ResourceType::Topic,
                &topic.name.0,
            ))
        {
            let mut result = CreatableTopicResult::default();
            result.name = topic.name.clone();
            response.topics.push(failed(
                result,
                ResponseError::TopicAuthorizationFailed,
                "Authorization failed.".into(),
            ));
            continue;
        }
        response
            .topics
            .push(create_one(shard, ctx.version, topic, request.validate_only).await);
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

async fn create_one(
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
    if shard.cluster.is_clustered() {
        let sizes = (partitions, replication);
        return create_in_cluster(shard, version, topic, result, sizes, validate_only).await;
    }
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
    let configs = match requested_configs(&topic) {
        Ok(c) => c,
        Err(message) => return failed(result, ResponseError::InvalidConfig, message),
    };
    let created = shard.cluster.create_topic_placed(
        &topic.name.0,
        partitions,
        placement,
        configs,
        validate_only,
    );
    answer(shard, version, result, created)
}

/// The configs given with `topic`, validated.
fn requested_configs(topic: &CreatableTopic) -> Result<BTreeMap<String, String>, String> {
    let mut configs = BTreeMap::new();
    for c in &topic.configs {
        let value = c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
        validate_topic_key(&c.name, &value).map_err(|e| e.to_string())?;
        configs.insert(c.name.to_string(), value);
    }
    Ok(configs)
}

/// Cluster mode: replicas over the nodes (or the manual assignment's broker ids), committed
/// through the controller quorum.
/// `sizes` is (partitions, replication factor) with the broker defaults filled in.
async fn create_in_cluster(
    shard: &Shard,
    version: i16,
    topic: CreatableTopic,
    result: CreatableTopicResult,
    (partitions, replication): (i32, i16),
    validate_only: bool,
) -> CreatableTopicResult {
    let assignment = (!topic.assignments.is_empty()).then(|| {
        let mut sorted: Vec<_> = topic.assignments.iter().collect();
        sorted.sort_by_key(|a| a.partition_index);
        sorted
            .iter()
            .map(|a| a.broker_ids.iter().map(|b| b.0).collect::<Vec<i32>>())
            .collect::<Vec<_>>()
    });
    let configs = match requested_configs(&topic) {
        Ok(c) => c,
        Err(message) => return failed(result, ResponseError::InvalidConfig, message),
    };
    let created = shard
        .cluster
        .propose_create_topic(
            &topic.name.0,
            partitions,
            replication,
            assignment,
            configs,
            validate_only,
        )
        .await;
    answer(shard, version, result, created)
}

/// The result for a created (or validated) topic, or the error it failed with.
fn answer(
    shard: &Shard,
    version: i16,
    mut result: CreatableTopicResult,
    created: Result<std::sync::Arc<crate::metadata::TopicMeta>, MetadataError>,
) -> CreatableTopicResult {
    match created {
        Ok(meta) => {
            result.topic_id = meta.id;
            result.num_partitions = meta.partitions.len() as i32;
            result.replication_factor = meta
                .leadership
                .first()
                .map_or(1, |l| l.replicas.len() as i16);
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
        Err(e) => failed(result, e.kafka_error(), e.to_string()),
    }
}
