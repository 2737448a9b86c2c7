//! One member of a classic group: identity, timeouts, supported protocols, assignment, and the
//! requests it has parked at the coordinator.
//!
//! Owned by the group state machine on the shard that owns the group's `__consumer_offsets`
//! partition.

use bytes::Bytes;

use super::types::{Protocol, RequestToken};

/// A member of a classic group as the group state machine tracks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Id the coordinator gave the member: its `client.id`, '-', then a random UUID.
    pub member_id: String,
    /// `group.instance.id` (KIP-345): `Some` makes the member static, so a restart that joins
    /// with the same instance id takes over its place (under a new member id).
    pub group_instance_id: Option<String>,
    /// `client.id` from the request header of the member's JoinGroup.
    pub client_id: String,
    /// The client's address as the broker sees it (Kafka's form, `/1.2.3.4`), for DescribeGroups.
    pub client_host: String,
    /// How long (ms) a rebalance waits for this member to rejoin; JoinGroup v0 has none and
    /// passes the session timeout.
    pub rebalance_timeout_ms: i32,
    /// The member is removed when it sends no heartbeat for this many ms; checked against
    /// `group.min.session.timeout.ms` and `group.max.session.timeout.ms` at join.
    pub session_timeout_ms: i32,
    /// Protocol type of its JoinGroup, e.g. "consumer"; equal to the group's.
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
    /// True for a static member (joined with a `group.instance.id`, KIP-345).
    pub fn is_static(&self) -> bool {
        self.group_instance_id.is_some()
    }

    /// True while a JoinGroup of this member is parked until the join phase completes.
    pub fn is_awaiting_join(&self) -> bool {
        self.join_token.is_some()
    }

    /// True while a SyncGroup of this member waits for the leader's assignment.
    pub fn is_awaiting_sync(&self) -> bool {
        self.sync_token.is_some()
    }

    /// True when the member listed `protocol` (an assignor name) in its JoinGroup.
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
