//! Metadata (key 3): every shard of the node as a broker, and for each topic its partitions
//! with the owning shard as leader (single node: replicas = ISR = leader). Unknown topics
//! are auto-created when `auto.create.topics.enable` is on and the client allows it.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};

use crate::handlers::request::RequestContext;
use crate::handlers::{str_bytes, topic_name};
use crate::metadata::{MetadataError, TopicMeta, validate_topic_name};
use crate::shard::Shard;

/// Versions served: v13, which the protocol crate has, is not offered.
pub const VERSIONS: (i16, i16) = (0, 12);

/// Every shard as a broker and the asked topics (all when `topics` is null, or empty in v0) with
/// each partition's owning shard as leader, replica and ISR; unknown topics are auto-created
/// when `auto.create.topics.enable` is on and the request allows it (always before v4).
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: MetadataRequest,
) -> MetadataResponse {
    let config = &shard.config;
    let mut response = MetadataResponse::default();
    response.cluster_id = Some(str_bytes(shard.cluster.cluster_id.clone()));
    response.controller_id = BrokerId(config.broker_id(0));
    response.cluster_authorized_operations = i32::MIN;
    response.brokers = (0..config.cores)
        .map(|core| {
            let mut b = MetadataResponseBroker::default();
            b.node_id = BrokerId(config.broker_id(core));
            b.host = str_bytes(config.advertised_host.clone());
            b.port = i32::from(config.shard_ports[core]);
            b
        })
        .collect();
    // v0 asks for all topics with an empty list; later versions with a null list.
    let all_topics = match &request.topics {
        None => true,
        Some(t) => t.is_empty() && ctx.version == 0,
    };
    if all_topics {
        response.topics = shard
            .cluster
            .topics()
            .iter()
            .map(|t| describe_topic(shard, t))
            .collect();
        return response;
    }
    let may_create = ctx.version < 4 || request.allow_auto_topic_creation;
    for requested in request.topics.unwrap_or_default() {
        let topic = match &requested.name {
            Some(name) => lookup_or_create(shard, &name.0, may_create),
            None => shard
                .cluster
                .topic_by_id(requested.topic_id)
                .ok_or(ResponseError::UnknownTopicId),
        };
        response.topics.push(match topic {
            Ok(meta) => describe_topic(shard, &meta),
            Err(code) => error_topic(
                requested.name.map(|n| n.0.to_string()),
                requested.topic_id,
                code,
            ),
        });
    }
    response
}

fn lookup_or_create(
    shard: &Shard,
    name: &str,
    may_create: bool,
) -> Result<Arc<TopicMeta>, ResponseError> {
    if let Some(meta) = shard.cluster.topic(name) {
        return Ok(meta);
    }
    if validate_topic_name(name).is_err() {
        return Err(ResponseError::InvalidTopicException);
    }
    if !(may_create && shard.config.auto_create_topics) {
        return Err(ResponseError::UnknownTopicOrPartition);
    }
    auto_create(shard, name)
}

/// Creates a topic with the broker defaults (`num.partitions`), as Kafka does on first use.
pub fn auto_create(shard: &Shard, name: &str) -> Result<Arc<TopicMeta>, ResponseError> {
    match shard
        .cluster
        .create_topic(name, shard.config.num_partitions, BTreeMap::new(), false)
    {
        Ok(meta) => Ok(meta),
        Err(MetadataError::TopicExists(_)) => shard
            .cluster
            .topic(name)
            .ok_or(ResponseError::UnknownTopicOrPartition),
        Err(MetadataError::InvalidTopicName { .. }) => Err(ResponseError::InvalidTopicException),
        // The node is at its partition limit: refused like an explicit CreateTopics (the
        // limit is logged at start-up; one line per refused request would flood the log).
        Err(e @ MetadataError::TooManyPartitions { .. }) => {
            tracing::debug!(topic = name, error = %e, "auto-create refused");
            Err(ResponseError::PolicyViolation)
        }
        Err(e) => {
            tracing::error!(topic = name, error = %e, "auto-create failed");
            Err(ResponseError::UnknownServerError)
        }
    }
}

fn describe_topic(shard: &Shard, meta: &TopicMeta) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.name = Some(topic_name(&meta.name));
    t.topic_id = meta.id;
    t.is_internal = meta.internal;
    t.topic_authorized_operations = i32::MIN;
    t.partitions = meta
        .partitions
        .iter()
        .enumerate()
        .map(|(index, owner)| {
            let leader = BrokerId(shard.config.broker_id(*owner));
            let mut p = MetadataResponsePartition::default();
            p.partition_index = index as i32;
            p.leader_id = leader;
            p.leader_epoch = 0;
            p.replica_nodes = vec![leader];
            p.isr_nodes = vec![leader];
            p
        })
        .collect();
    t
}

fn error_topic(name: Option<String>, id: uuid::Uuid, code: ResponseError) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.name = name.map(|n| topic_name(&n));
    t.topic_id = id;
    t.error_code = code.code();
    t.topic_authorized_operations = i32::MIN;
    t
}
