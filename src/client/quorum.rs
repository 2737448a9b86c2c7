//! DescribeQuorum and DescribeCluster for the `sluice cluster` commands: who leads the
//! controller quorum, how far each voter has replicated, and which brokers are live.

use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{DescribeClusterRequest, DescribeQuorumRequest, TopicName};
use serde::Serialize;

use super::cluster::BrokerInfo;
use super::{Client, ClientError, Result, sb};

/// One voter of the controller quorum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VoterState {
    /// Node id.
    pub id: i32,
    /// Its log end offset as the leader knows it; -1 when unknown.
    pub log_end_offset: i64,
    /// Entries it is behind the leader's log end; `None` when unknown.
    pub lag: Option<i64>,
    /// Its CONTROLLER endpoint, `host:port`, when the broker reports it (v2).
    pub endpoint: Option<String>,
}

/// The controller quorum as its leader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuorumState {
    /// Node id of the leader; -1 while there is none.
    pub leader: i32,
    /// Leader epoch (the Raft term).
    pub epoch: i32,
    /// High watermark of the metadata log.
    pub high_watermark: i64,
    /// The voters, by id.
    pub voters: Vec<VoterState>,
}

/// What DescribeCluster answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterState {
    /// Cluster id.
    pub cluster_id: String,
    /// Broker id named as controller.
    pub controller: i32,
    /// Live brokers (shards), by id.
    pub brokers: Vec<(i32, String)>,
}

impl Client {
    /// DescribeQuorum of `__cluster_metadata-0`, asked of the bootstrap broker (which asks
    /// the quorum's leader).
    pub fn describe_quorum(&mut self) -> Result<QuorumState> {
        let mut partition = PartitionData::default();
        partition.partition_index = 0;
        let mut topic = TopicData::default();
        topic.topic_name = TopicName(sb("__cluster_metadata"));
        topic.partitions = vec![partition];
        let mut request = DescribeQuorumRequest::default();
        request.topics = vec![topic];
        let response = self.any().send(&request, None)?;
        let context = || "describing the controller quorum".to_owned();
        ClientError::check(
            response.error_code,
            context,
            response.error_message.as_ref(),
        )?;
        let p = response
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| ClientError::Protocol("DescribeQuorum answered no partition".into()))?;
        ClientError::check(p.error_code, context, p.error_message.as_ref())?;
        let leader_end = p
            .current_voters
            .iter()
            .find(|v| v.replica_id == p.leader_id)
            .map(|v| v.log_end_offset);
        let endpoint_of = |id: i32| {
            let node = response.nodes.iter().find(|n| n.node_id.0 == id)?;
            let l = node.listeners.first()?;
            Some(format!("{}:{}", l.host, l.port))
        };
        let voters = p
            .current_voters
            .iter()
            .map(|v| VoterState {
                id: v.replica_id.0,
                log_end_offset: v.log_end_offset,
                lag: leader_end
                    .filter(|_| v.log_end_offset >= 0)
                    .map(|end| (end - v.log_end_offset).max(0)),
                endpoint: endpoint_of(v.replica_id.0),
            })
            .collect();
        Ok(QuorumState {
            leader: p.leader_id.0,
            epoch: p.leader_epoch,
            high_watermark: p.high_watermark,
            voters,
        })
    }

    /// DescribeCluster, asked of the bootstrap broker.
    pub fn describe_cluster(&mut self) -> Result<ClusterState> {
        let response = self.any().send(&DescribeClusterRequest::default(), None)?;
        ClientError::check(
            response.error_code,
            || "describing the cluster".to_owned(),
            response.error_message.as_ref(),
        )?;
        let brokers = response
            .brokers
            .iter()
            .map(|b| {
                let info = BrokerInfo {
                    id: b.broker_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.as_ref().map(ToString::to_string),
                };
                (info.id, info.addr())
            })
            .collect();
        Ok(ClusterState {
            cluster_id: response.cluster_id.to_string(),
            controller: response.controller_id.0,
            brokers,
        })
    }
}
