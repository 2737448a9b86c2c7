//! DescribeQuorum (key 55): the controller quorum of `__cluster_metadata-0` as its leader sees
//! it: leader, epoch (the Raft term), high watermark, and each voter's log end offset. Any node
//! answers: a follower asks the leader over the CONTROLLER listener. A single node runs no
//! quorum and says so. Offsets are Raft log indexes (index n is Kafka offset n - 1, so a
//! voter's log end offset and the high watermark are the index of its last entry).

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse};

use crate::acl::{Operation, enforce};
use crate::handlers::request::RequestContext;
use crate::handlers::str_bytes;
use crate::metadata::quorum::QuorumMetrics;
use crate::shard::Shard;

/// Versions served: all the protocol crate has.
pub const VERSIONS: (i16, i16) = (0, 2);

/// The metadata log's topic name, as KRaft calls it.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// One answer per asked partition; only `__cluster_metadata-0` exists.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    let mut response = DescribeQuorumResponse::default();
    if !enforce::cluster_allowed(shard, ctx, Operation::Describe) {
        response.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return for_version(response, ctx.version);
    }
    let Some(controller) = shard.cluster.controller() else {
        response.error_code = ResponseError::InvalidRequest.code();
        response.error_message = Some(str_bytes(
            "this node runs without a controller quorum (single-node mode)".to_owned(),
        ));
        return for_version(response, ctx.version);
    };
    let status = match controller.leader_status().await {
        Ok(s) => s,
        Err(e) => {
            response.error_code = ResponseError::NotLeaderOrFollower.code();
            response.error_message = Some(str_bytes(format!("no quorum leader to ask: {e}")));
            return for_version(response, ctx.version);
        }
    };
    for asked in request.topics {
        let mut topic = TopicData::default();
        topic.topic_name = asked.topic_name.clone();
        for p in asked.partitions {
            topic.partitions.push(
                if asked.topic_name.0.as_str() == METADATA_TOPIC && p.partition_index == 0 {
                    describe(&status)
                } else {
                    unknown(p.partition_index)
                },
            );
        }
        response.topics.push(topic);
    }
    response.nodes = nodes(&status);
    for_version(response, ctx.version)
}

/// Drops what `version` cannot carry (error messages, directory ids and nodes are v2+).
fn for_version(mut response: DescribeQuorumResponse, version: i16) -> DescribeQuorumResponse {
    if version < 2 {
        response.error_message = None;
        response.nodes.clear();
        for p in response
            .topics
            .iter_mut()
            .flat_map(|t| t.partitions.iter_mut())
        {
            p.error_message = None;
        }
    }
    response
}

/// The quorum partition from the leader's metrics.
fn describe(status: &QuorumMetrics) -> PartitionData {
    let mut p = PartitionData::default();
    p.partition_index = 0;
    p.leader_id = BrokerId(status.leader.map_or(-1, as_i32));
    p.leader_epoch = i32::try_from(status.term).unwrap_or(i32::MAX);
    p.high_watermark = status.committed_index.map_or(0, as_i64);
    let leader_end = status.last_log_index.map_or(0, as_i64);
    let now_ms = crate::now_ms();
    p.current_voters = status
        .voters
        .keys()
        .map(|&id| {
            let end = if Some(id) == status.leader {
                leader_end
            } else {
                status
                    .matched
                    .get(&id)
                    .copied()
                    .flatten()
                    .map_or(-1, as_i64)
            };
            let mut v = ReplicaState::default();
            v.replica_id = BrokerId(as_i32(id));
            v.log_end_offset = end;
            // openraft does not time fetches; a voter level with the leader is caught up now.
            v.last_fetch_timestamp = -1;
            v.last_caught_up_timestamp = if end == leader_end { now_ms } else { -1 };
            v
        })
        .collect();
    p
}

fn unknown(partition: i32) -> PartitionData {
    let mut p = PartitionData::default();
    p.partition_index = partition;
    p.error_code = ResponseError::UnknownTopicOrPartition.code();
    p.error_message = Some(str_bytes(format!("only {METADATA_TOPIC}-0 has a quorum")));
    p.leader_id = BrokerId(-1);
    p
}

/// The voters' CONTROLLER endpoints (v2).
fn nodes(status: &QuorumMetrics) -> Vec<Node> {
    status
        .voters
        .iter()
        .map(|(&id, endpoint)| {
            let mut listener = Listener::default();
            listener.name = str_bytes("CONTROLLER".to_owned());
            listener.host = str_bytes(endpoint.host.clone());
            listener.port = endpoint.port;
            let mut node = Node::default();
            node.node_id = BrokerId(as_i32(id));
            node.listeners = vec![listener];
            node
        })
        .collect()
}

fn as_i32(v: u64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn as_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bytes::BytesMut;
    use kafka_protocol::protocol::Encodable;

    use super::*;
    use crate::handlers::topic_name;
    use crate::metadata::quorum::ControllerNode;

    fn status() -> QuorumMetrics {
        let node = |n: u8| ControllerNode {
            host: format!("127.0.0.{n}"),
            port: 9192,
        };
        QuorumMetrics {
            node_id: 1,
            state: openraft::ServerState::Leader,
            leader: Some(1),
            term: 4,
            last_log_index: Some(30),
            applied_index: Some(30),
            snapshot_index: None,
            purged_index: None,
            matched: BTreeMap::from([(1, Some(30)), (2, Some(30)), (3, Some(12))]),
            voters: BTreeMap::from([(1, node(1)), (2, node(2)), (3, node(3))]),
            committed_index: Some(30),
        }
    }

    #[test]
    fn the_leader_view_becomes_kafka_replica_states_in_every_version() {
        let p = describe(&status());
        assert_eq!(
            (p.leader_id.0, p.leader_epoch, p.high_watermark),
            (1, 4, 30)
        );
        let ends: Vec<i64> = p.current_voters.iter().map(|v| v.log_end_offset).collect();
        assert_eq!(ends, vec![30, 30, 12]);
        assert_eq!(p.current_voters[2].last_caught_up_timestamp, -1);
        let mut response = DescribeQuorumResponse::default();
        let mut topic = TopicData::default();
        topic.topic_name = topic_name(METADATA_TOPIC);
        topic.partitions = vec![p, unknown(1)];
        response.topics = vec![topic];
        response.nodes = nodes(&status());
        for version in VERSIONS.0..=VERSIONS.1 {
            let mut buf = BytesMut::new();
            let shaped = for_version(response.clone(), version);
            assert!(shaped.encode(&mut buf, version).is_ok(), "v{version}");
        }
    }
}
