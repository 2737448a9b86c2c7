//! One member of a classic group: identity, timeouts, supported protocols, assignment, and the
//! requests it has parked at the coordinator.
//!
//! Owned by the group state machine on the shard that owns the group's `__consumer_offsets`
//! partition.

use bytes::Bytes;

use super::types::{Protocol, RequestToken};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub protocol_type: String,
    /// In the member's order of preference.
    pub protocols: Vec<Protocol>,
    /// The assignment the leader gave this member in the current generation.
    pub assignment: Bytes,
    /// A JoinGroup of this member waiting for the join phase to complete.
    pub(crate) join_token: Option<RequestToken>,
    /// A SyncGroup of this member waiting for the leader's assignment.
    pub(crate) sync_token: Option<RequestToken>,
    /// True until the member completes its first join; new members expire on the
    /// new-member join timeout instead of the session timeout.
    pub(crate) is_new: bool,
    /// When the member is dropped unless it heartbeats (or joins, syncs, commits) before.
    /// `None` while the member is parked in a join or sync: parked members cannot heartbeat,
    /// so Kafka treats their heartbeat as satisfied until the parked request completes.
    pub(crate) heartbeat_deadline_ms: Option<i64>,
}

impl Member {
    pub fn is_static(&self) -> bool {
        self.group_instance_id.is_some()
    }

    pub fn is_awaiting_join(&self) -> bool {
        self.join_token.is_some()
    }

    pub fn is_awaiting_sync(&self) -> bool {
        self.sync_token.is_some()
    }

    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p.name == protocol)
    }

    /// This member's metadata for `protocol`, empty if it does not support it.
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    /// True when a rejoin carries exactly the protocols (names, order and metadata) the member
    /// joined with, i.e. nothing that could change the assignment.
    pub fn matches(&self, protocols: &[Protocol]) -> bool {
        self.protocols == protocols
    }

    /// The member's first preference among `candidates` (protocols every member supports).
    pub fn vote<'a>(&'a self, candidates: &[&str]) -> Option<&'a str> {
        self.protocols
            .iter()
            .map(|p| p.name.as_str())
            .find(|name| candidates.contains(name))
    }

    pub(crate) fn arm_heartbeat(&mut self, now_ms: i64) {
        self.heartbeat_deadline_ms = Some(now_ms + i64::from(self.session_timeout_ms));
    }
}
