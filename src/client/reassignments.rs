//! AlterPartitionReassignments and ListPartitionReassignments for `sluice cluster reassign`
//! and `sluice cluster reassignments`, like kafka-reassign-partitions.sh: move a partition's
//! replicas, cancel a move, list the moves under way.

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, ListPartitionReassignmentsRequest, TopicName,
};
use serde::Serialize;

use super::{Client, ClientError, Result, sb};

/// How long the broker may take to accept a reassignment (not to complete it).
const TIMEOUT_MS: i32 = 30_000;

/// One reassignment under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reassignment {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// All replicas during the move: the target ones first, then those being removed.
    pub replicas: Vec<i32>,
    /// Replicas catching up to join.
    pub adding: Vec<i32>,
    /// Replicas that go once the added ones are in sync.
    pub removing: Vec<i32>,
}

impl Client {
    /// Starts moving partition `partition` of `topic` to `replicas` (preferred leader
    /// first), or cancels its move with `None`.
    pub fn reassign(
        &mut self,
        topic: &str,
        partition: i32,
        replicas: Option<&[i32]>,
    ) -> Result<()> {
        let mut p = ReassignablePartition::default();
        p.partition_index = partition;
        p.replicas = replicas.map(|r| r.iter().map(|&b| BrokerId(b)).collect());
        let mut t = ReassignableTopic::default();
        t.name = TopicName(sb(topic));
        t.partitions = vec![p];
        let mut request = AlterPartitionReassignmentsRequest::default();
        request.timeout_ms = TIMEOUT_MS;
        request.topics = vec![t];
        let response = self.any().send(&request, None)?;
        let context = || format!("reassigning {topic}-{partition}");
        ClientError::check(
            response.error_code,
            context,
            response.error_message.as_ref(),
        )?;
        for t in &response.responses {
            for p in &t.partitions {
                ClientError::check(p.error_code, context, p.error_message.as_ref())?;
            }
        }
        Ok(())
    }

    /// The reassignments under way in the whole cluster.
    pub fn reassignments(&mut self) -> Result<Vec<Reassignment>> {
        let mut request = ListPartitionReassignmentsRequest::default();
        request.timeout_ms = TIMEOUT_MS;
        request.topics = None;
        let response = self.any().send(&request, None)?;
        ClientError::check(
            response.error_code,
            || "listing partition reassignments".to_owned(),
            response.error_message.as_ref(),
        )?;
        let ids = |list: &[BrokerId]| list.iter().map(|b| b.0).collect();
        Ok(response
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| Reassignment {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    replicas: ids(&p.replicas),
                    adding: ids(&p.adding_replicas),
                    removing: ids(&p.removing_replicas),
                })
            })
            .collect())
    }
}
