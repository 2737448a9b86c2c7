//! Metadata (key 3): every live shard as a broker (all nodes' in a cluster), and for each topic
//! its partitions with leader, epoch, replicas and ISR (single node: replicas = ISR = the
//! owning shard). Unknown topics are auto-created when `auto.create.topics.enable` is on and
//! the client allows it (through the controller quorum in a cluster). With an authorizer, a
//! listing leaves out topics the principal may not DESCRIBE, a named one gets
//! TOPIC_AUTHORIZATION_FAILED, and auto-creation needs CREATE on the cluster or the topic.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};

use crate::acl::{CLUSTER_NAME, Operation, ResourceType, enforce};
use crate::handlers::request::RequestContext;
use crate::handlers::{str_bytes, topic_name};
use crate::metadata::brokers::{advertised_brokers, controller_broker};
use crate::metadata::{MetadataError, TopicMeta, validate_topic_name};
use crate::shard::Shard;

/// Versions served. v13 adds only a top-level error code (REBOOTSTRAP_REQUIRED, KIP-1102),
/// which this broker never needs to send: it is always 0.
pub const VERSIONS: (i16, i16) = (0, 13);

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
    // In a cluster any broker takes controller requests (CreateTopics, ...) and commits them
    // through the quorum, so clients are told the broker they are talking to: it is alive by
    // definition, while the active controller's node may just have died (clients cache this
    // id and would wait for it until their next metadata refresh, minutes later).
    response.controller_id = BrokerId(if shard.cluster.is_clustered() {
        config.broker_id(shard.core)
    } else {
        controller_broker(&shard.cluster, config)
    });
    response.cluster_authorized_operations = if request.include_cluster_authorized_operations {
        enforce::authorized_operations(shard, ctx, ResourceType::Cluster, CLUSTER_NAME)
    } else {
        i32::MIN
    };
    let with_ops = request.include_topic_authorized_operations;
    let describe = |meta: &TopicMeta, live: &BTreeSet<i32>| {
        let mut t = describe_topic(shard, meta, live);
        if with_ops {
            t.topic_authorized_operations =
                enforce::authorized_operations(shard, ctx, ResourceType::Topic, &meta.name);
        }
        t
    };
    let brokers = advertised_brokers(&shard.cluster, config, ctx.listener);
    let live: BTreeSet<i32> = brokers.iter().map(|b| b.id).collect();
    response.brokers = brokers
        .into_iter()
        .map(|a| {
            let mut b = MetadataResponseBroker::default();
            b.node_id = BrokerId(a.id);
            b.host = str_bytes(a.host);
            b.port = a.port;
            b.rack = a.rack.map(str_bytes);
            b
        })
        .collect();
    // v0 asks for all topics with an empty list; later versions with a null list.
    let all_topics = match &request.topics {
        None => true,
        Some(t) => t.is_empty() && ctx.version == 0,
    };
    // With an authorizer, a listing leaves out the topics the principal may not describe.
    let may_describe =
        |name: &str| enforce::allowed(shard, ctx, Operation::Describe, ResourceType::Topic, name);
    if all_topics {
        response.topics = shard
            .cluster
            .topics()
            .iter()
            .filter(|t| may_describe(&t.name))
            .map(|t| describe(t, &live))
            .collect();
        return response;
    }
    let may_create = ctx.version < 4 || request.allow_auto_topic_creation;
    for requested in request.topics.unwrap_or_default() {
        let topic = match &requested.name {
            Some(name) if !may_describe(&name.0) => Err(ResponseError::TopicAuthorizationFailed),
            Some(name) => lookup_or_create(shard, ctx, &name.0, may_create).await,
            None => shard
                .cluster
                .topic_by_id(requested.topic_id)
                .filter(|t| may_describe(&t.name))
                .ok_or(ResponseError::UnknownTopicId),
        };
        response.topics.push(match topic {
            Ok(meta) => describe(&meta, &live),
            Err(code) => error_topic(
                requested.name.map(|n| n.0.to_string()),
                requested.topic_id,
                code,
            ),
        });
    }
    response
}

async fn lookup_or_create(
    shard: &Shard,
    ctx: &RequestContext,
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
    // Auto-creation needs CREATE on the cluster or on the topic, as in Kafka.
    if !(enforce::cluster_allowed(shard, ctx, Operation::Create)
        || enforce::allowed(shard, ctx, Operation::Create, ResourceType::Topic, name))
    {
        return Err(ResponseError::TopicAuthorizationFailed);
    }
    auto_create(shard, name).await
}

/// Creates a topic with the broker defaults (`num.partitions`, `default.replication.factor`),
/// as Kafka does on first use.
pub async fn auto_create(shard: &Shard, name: &str) -> Result<Arc<TopicMeta>, ResponseError> {
    let created = if shard.cluster.is_clustered() {
        shard
            .cluster
            .propose_create_topic(
                name,
                shard.config.num_partitions,
                shard.config.default_replication_factor,
                None,
                BTreeMap::new(),
                false,
            )
            .await
    } else {
        shard
            .cluster
            .create_topic(name, shard.config.num_partitions, BTreeMap::new(), false)
    };
    match created {
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
        Err(e @ (MetadataError::Refused { .. } | MetadataError::Quorum(_))) => {
            tracing::debug!(topic = name, error = %e, "auto-create refused");
            Err(e.kafka_error())
        }
        Err(e) => {
            tracing::error!(topic = name, error = %e, "auto-create failed");
            Err(ResponseError::UnknownServerError)
        }
    }
}

/// One topic's partitions; a partition whose leader is not a live broker (its node is fenced)
/// has leader -1 and LEADER_NOT_AVAILABLE, as Kafka reports an offline partition.
fn describe_topic(shard: &Shard, meta: &TopicMeta, live: &BTreeSet<i32>) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default();
    t.name = Some(topic_name(&meta.name));
    t.topic_id = meta.id;
    t.is_internal = meta.internal;
    t.topic_authorized_operations = i32::MIN;
    t.partitions = (0..meta.partitions.len())
        .filter_map(|index| {
            let l = meta.leadership_at(index, |core| shard.config.broker_id(core))?;
            let mut p = MetadataResponsePartition::default();
            p.partition_index = index as i32;
            if live.contains(&l.leader) {
                p.leader_id = BrokerId(l.leader);
            } else {
                p.leader_id = BrokerId(-1);
                p.error_code = ResponseError::LeaderNotAvailable.code();
            }
            p.leader_epoch = l.leader_epoch;
            p.replica_nodes = l.replicas.into_iter().map(BrokerId).collect();
            p.isr_nodes = l.isr.into_iter().map(BrokerId).collect();
            p.offline_replicas = p
                .replica_nodes
                .iter()
                .filter(|r| !live.contains(&r.0))
                .copied()
                .collect();
            Some(p)
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
