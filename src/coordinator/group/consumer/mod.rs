//! KIP-848 consumer groups ("consumer" protocol): members heartbeat with ConsumerGroupHeartbeat,
//! the coordinator computes the target assignment itself (server-side assignors) and hands it
//! out member by member, revoking before it reassigns.
//!
//! Runs on the shard that owns the group's `__consumer_offsets` partition, as plain
//! single-threaded state like the classic group: callers pass `now_ms` and the topic metadata,
//! get back the response and the records to append first. The consumer state is held by the
//! same [`Group`](super::Group) that holds the group's committed offsets, so OffsetCommit,
//! OffsetFetch, DeleteGroups and offset expiry find one group per id whichever protocol it
//! speaks.
//!
//! - `assignor`: `uniform` (sticky, balanced) and `range`, Kafka's server assignors.
//! - `reconcile`: one member's way from its current assignment to its target (member epochs,
//!   revoke before reassign).
//! - `heartbeat`: join, heartbeat, leave, static membership, session and rebalance timeouts.
//! - `classic_members`: the online upgrade of a classic group, and its classic members' JoinGroup,
//!   SyncGroup, Heartbeat and LeaveGroup answered from the server-side assignment.
//! - `records`: the `__consumer_offsets` records of a consumer group, as Kafka writes them.
//! - `subscription`: topic names and regular expressions resolved against the topics that exist.
//! - `replay`: rebuilding a group from its records at load time.
//! - `wire`: ConsumerGroupHeartbeat and ConsumerGroupDescribe to and from `kafka-protocol`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use uuid::Uuid;

use super::types::{GroupDescription, MemberDescription};

pub mod assignor;
pub mod classic_members;
pub mod heartbeat;
pub mod reconcile;
pub mod records;
pub mod replay;
pub mod subscription;
pub mod wire;

#[cfg(test)]
mod tests;

/// ListGroups' and DescribeGroups' type of a KIP-848 group.
pub const CONSUMER_GROUP_TYPE: &str = "consumer";

/// Partitions by topic id: an assignment, a target, or what a member says it owns.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// Member epoch a member sends to join (or rejoin after being fenced).
pub const JOIN_EPOCH: i32 = 0;
/// Member epoch a member sends to leave the group.
pub const LEAVE_EPOCH: i32 = -1;
/// Member epoch a static member sends to leave for a while, keeping its place and assignment
/// until its session times out.
pub const STATIC_LEAVE_EPOCH: i32 = -2;

/// One topic as the assignors see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Topic id (KIP-516): assignments name topics by id.
    pub id: Uuid,
    /// Number of partitions.
    pub partitions: i32,
}

/// The topics that exist, by name, internal topics left out (no subscription can name them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Topics {
    by_name: BTreeMap<String, TopicInfo>,
}

impl Topics {
    /// The view of `topics`; internal ones should not be passed.
    pub fn new(topics: impl IntoIterator<Item = TopicInfo>) -> Self {
        Self {
            by_name: topics.into_iter().map(|t| (t.name.clone(), t)).collect(),
        }
    }

    /// The topic called `name`.
    pub fn get(&self, name: &str) -> Option<&TopicInfo> {
        self.by_name.get(name)
    }

    /// Every topic, ordered by name.
    pub fn iter(&self) -> impl Iterator<Item = &TopicInfo> {
        self.by_name.values()
    }

    /// The name of topic `id`, if it exists.
    pub fn name_of(&self, id: Uuid) -> Option<&str> {
        self.by_name
            .values()
            .find(|t| t.id == id)
            .map(|t| t.name.as_str())
    }
}

/// Where a member is on its way to its target assignment (Kafka's `MemberState` values, as
/// persisted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// The member owns exactly its target at the group's assignment epoch.
    Stable,
    /// The member must give up partitions first: its epoch stays until it reports them gone.
    UnrevokedPartitions,
    /// The member has the new epoch but some target partitions are still held by others.
    UnreleasedPartitions,
}

impl MemberState {
    /// Kafka's byte for the state in `ConsumerGroupCurrentMemberAssignmentValue`.
    pub fn to_byte(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
        }
    }

    /// The state a persisted byte names; unknown bytes read as Stable, which the next
    /// heartbeat reconciles anyway.
    pub fn from_byte(byte: i8) -> Self {
        match byte {
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Stable,
        }
    }

    /// Kafka's name, as `sluice groups` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Stable => "STABLE",
            MemberState::UnrevokedPartitions => "UNREVOKED_PARTITIONS",
            MemberState::UnreleasedPartitions => "UNRELEASED_PARTITIONS",
        }
    }
}

/// One member of a consumer group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerMember {
    /// Id the member chose (v1) or the coordinator gave it (v0).
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    /// `client.rack`.
    pub rack_id: Option<String>,
    /// `client.id` of its requests.
    pub client_id: String,
    /// Its address as the broker saw it (`/1.2.3.4`).
    pub client_host: String,
    /// Topics subscribed by name.
    pub subscribed_topic_names: Vec<String>,
    /// Topics subscribed by regular expression (RE2/J syntax, whole-name match).
    pub subscribed_topic_regex: Option<String>,
    /// How long the member may take to revoke partitions before it is fenced.
    pub rebalance_timeout_ms: i32,
    /// The server assignor the member asked for, if any.
    pub server_assignor: Option<String>,
    /// The epoch the member is at; it must heartbeat with it.
    pub member_epoch: i32,
    /// The epoch before the last bump: a member whose response was lost may still send it.
    pub previous_member_epoch: i32,
    /// Where the member is on its way to the target.
    pub state: MemberState,
    /// Partitions the member owns now.
    pub assigned: Assignment,
    /// Partitions the member must revoke before it moves to the next epoch.
    pub pending_revocation: Assignment,
    /// The member is removed unless it heartbeats before this.
    pub(crate) session_deadline_ms: i64,
    /// While revoking: the member is fenced unless it has revoked by then.
    pub(crate) revocation_deadline_ms: Option<i64>,
    /// A static member that left with epoch -2: its place waits for its return until the
    /// session deadline.
    pub(crate) left_temporarily: bool,
    /// Set for a member that speaks the classic protocol (JoinGroup/SyncGroup/Heartbeat).
    pub classic: Option<classic_members::ClassicMember>,
}

impl ConsumerMember {
    /// A member with nothing yet: no subscription, epoch 0, no partitions.
    pub fn new(member_id: &str, session_deadline_ms: i64) -> Self {
        Self {
            member_id: member_id.to_owned(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            rebalance_timeout_ms: 0,
            server_assignor: None,
            member_epoch: 0,
            previous_member_epoch: 0,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            session_deadline_ms,
            revocation_deadline_ms: None,
            left_temporarily: false,
            classic: None,
        }
    }

    /// Every partition the member holds: assigned and still to be revoked.
    pub fn holds(&self, topic: Uuid, partition: i32) -> bool {
        contains(&self.assigned, topic, partition)
            || contains(&self.pending_revocation, topic, partition)
    }
}

/// Kafka's consumer group states, as ListGroups and ConsumerGroupDescribe name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    /// No members.
    Empty,
    /// A new target assignment is being computed (never seen from outside here: it is
    /// computed within the heartbeat that made it necessary).
    Assigning,
    /// Some member has not reached the target assignment yet.
    Reconciling,
    /// Every member owns its target.
    Stable,
}

impl ConsumerGroupState {
    /// Kafka's name of the state.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

/// The consumer-protocol state of one group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerGroup {
    /// Bumped whenever membership, subscriptions or the subscribed topics change.
    pub(crate) group_epoch: i32,
    /// The group epoch the target assignment was computed at.
    pub(crate) assignment_epoch: i32,
    /// Members by member id.
    pub(crate) members: BTreeMap<String, ConsumerMember>,
    /// `group.instance.id` -> member id.
    pub(crate) static_members: BTreeMap<String, String>,
    /// Target assignment by member id.
    pub(crate) target: BTreeMap<String, Assignment>,
    /// The subscribed topics (name -> id, partitions) the target was computed from: a change
    /// (a topic created that a regex matches, partitions added) bumps the group epoch.
    pub(crate) subscribed_topics: BTreeMap<String, (Uuid, i32)>,
    /// The assignor that computed the target.
    pub(crate) assignor: String,
    /// When the group last became Empty (offsets of an empty group expire from there).
    pub(crate) empty_since_ms: i64,
    /// Loaded from the log, whose records do not hold the resolved topics: the first
    /// heartbeat adopts the resolution instead of treating it as a change.
    pub(crate) topics_unresolved: bool,
}

impl ConsumerGroup {
    /// The group epoch.
    pub fn group_epoch(&self) -> i32 {
        self.group_epoch
    }

    /// The epoch of the current target assignment.
    pub fn assignment_epoch(&self) -> i32 {
        self.assignment_epoch
    }

    /// Members ordered by member id.
    pub fn members(&self) -> impl Iterator<Item = &ConsumerMember> {
        self.members.values()
    }

    /// Member `member_id`.
    pub fn member(&self, member_id: &str) -> Option<&ConsumerMember> {
        self.members.get(member_id)
    }

    /// Number of members (static members away for a while included).
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// The target assignment of `member_id` (empty if it has none).
    pub fn target_of(&self, member_id: &str) -> Assignment {
        self.target.get(member_id).cloned().unwrap_or_default()
    }

    /// The assignor of the current target (empty before the first one).
    pub fn assignor(&self) -> &str {
        &self.assignor
    }

    /// Names of the topics some member subscribes to, as last resolved.
    pub fn subscribed_topic_names(&self) -> BTreeSet<String> {
        self.subscribed_topics.keys().cloned().collect()
    }

    /// When the group last became Empty.
    pub fn empty_since_ms(&self) -> i64 {
        self.empty_since_ms
    }

    /// The group's state, derived from its members.
    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| m.member_epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    /// Earliest session or revocation deadline of a member.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.members
            .values()
            .flat_map(|m| [Some(m.session_deadline_ms), m.revocation_deadline_ms])
            .flatten()
            .min()
    }
}

impl ConsumerGroup {
    /// The group as classic DescribeGroups reports a consumer group (as Kafka does, so old
    /// admin tools still see it): its consumer state, protocol type "consumer", the assignor as
    /// protocol, members without classic metadata or assignment bytes.
    pub fn describe_classic(&self, group_id: &str) -> GroupDescription {
        GroupDescription {
            group_id: group_id.to_owned(),
            state: self.state().as_str(),
            protocol_type: super::consumer_protocol::PROTOCOL_TYPE.to_owned(),
            protocol_data: self.assignor.clone(),
            members: self
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: Bytes::new(),
                    assignment: Bytes::new(),
                })
                .collect(),
        }
    }
}

/// True when `assignment` has `topic`-`partition`.
pub fn contains(assignment: &Assignment, topic: Uuid, partition: i32) -> bool {
    assignment
        .get(&topic)
        .is_some_and(|p| p.contains(&partition))
}

/// Number of partitions in `assignment`.
pub fn size(assignment: &Assignment) -> usize {
    assignment.values().map(BTreeSet::len).sum()
}

/// `a` without the partitions of `b`, empty topics dropped.
pub fn minus(a: &Assignment, b: &Assignment) -> Assignment {
    filter(a, |t, p| !contains(b, t, p))
}

/// The partitions of `a` that `keep` accepts, empty topics dropped.
pub fn filter(a: &Assignment, mut keep: impl FnMut(Uuid, i32) -> bool) -> Assignment {
    let mut out = Assignment::new();
    for (topic, partitions) in a {
        let kept: BTreeSet<i32> = partitions
            .iter()
            .copied()
            .filter(|p| keep(*topic, *p))
            .collect();
        if !kept.is_empty() {
            out.insert(*topic, kept);
        }
    }
    out
}
