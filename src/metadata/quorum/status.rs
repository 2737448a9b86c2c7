//! [`QuorumMetrics`]: the quorum's state as one node sees it, from openraft's metrics, for
//! DescribeQuorum and `sluice cluster quorum`; built on the controller thread (status RPC) or
//! the caller's (the handle), sent between nodes as serde.

use std::collections::BTreeMap;

use openraft::{RaftMetrics, ServerState};

use super::ControllerNode;

/// What DescribeQuorum needs of the quorum, from openraft's metrics.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QuorumMetrics {
    /// This node's id.
    pub node_id: u64,
    /// Leader, follower, candidate, ... as openraft sees itself.
    pub state: ServerState,
    /// The leader this node knows, if any.
    pub leader: Option<u64>,
    /// Current Raft term (Kafka's leader epoch of `__cluster_metadata`).
    pub term: u64,
    /// Index of the last log entry; `None` for an empty log.
    pub last_log_index: Option<u64>,
    /// Index of the last applied entry; `None` before the first.
    pub applied_index: Option<u64>,
    /// Last log index covered by this node's newest snapshot; `None` before the first.
    pub snapshot_index: Option<u64>,
    /// Last log index purged from this node's log (only a snapshot holds it now).
    pub purged_index: Option<u64>,
    /// On the leader: each voter's highest replicated index (`None`: nothing matched yet);
    /// empty elsewhere.
    pub matched: BTreeMap<u64, Option<u64>>,
    /// The voters by id, with their CONTROLLER endpoints.
    pub voters: BTreeMap<u64, ControllerNode>,
    /// Index of the last committed entry (Kafka's high watermark of `__cluster_metadata`, minus
    /// one); `None` before the first.
    pub committed_index: Option<u64>,
}

/// [`QuorumMetrics`] of node `node_id` from its openraft metrics.
#[must_use]
pub fn metrics_of(node_id: u64, m: &RaftMetrics<u64, ControllerNode>) -> QuorumMetrics {
    QuorumMetrics {
        node_id,
        state: m.state,
        leader: m.current_leader,
        term: m.current_term,
        last_log_index: m.last_log_index,
        applied_index: m.last_applied.map(|l| l.index),
        snapshot_index: m.snapshot.map(|l| l.index),
        purged_index: m.purged.map(|l| l.index),
        matched: m
            .replication
            .as_ref()
            .map(|r| {
                r.iter()
                    .map(|(id, log)| (*id, log.map(|l| l.index)))
                    .collect()
            })
            .unwrap_or_default(),
        voters: m
            .membership_config
            .membership()
            .nodes()
            .map(|(id, n)| (*id, n.clone()))
            .collect(),
        // Everything applied was committed; openraft 0.9 reports no separate commit index.
        committed_index: m.last_applied.map(|l| l.index),
    }
}
