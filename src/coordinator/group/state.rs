//! One group of the classic rebalance protocol: its state ([`GroupState`], the join timer),
//! the [`Group`] itself with its read access, and its views: DescribeGroups data and the
//! `__consumer_offsets` GroupMetadata value it is persisted as and rebuilt from. The state
//! machine's transitions live in the child modules:
//! - `join`: JoinGroup and the rebalance phases (membership, static members, protocol
//!   selection, leader election, generations).
//! - `lifecycle`: SyncGroup, Heartbeat, LeaveGroup, member removal, Dead, and every timer
//!   (initial delay, rebalance timeout, session timeouts, pending members, pending syncs).
//!
//! Runs on the shard that owns the group's `__consumer_offsets` partition, so it is plain
//! single-threaded state. It never blocks and never waits: a JoinGroup or SyncGroup that Kafka
//! would park in purgatory is remembered by its [`RequestToken`], and its response comes back
//! later as a [`Delivery`] from whichever call completes it (another member's join, the leader's
//! sync, a leave, or [`Group::tick`]). Time only moves when the caller passes `now_ms`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::committed::GroupOffsets;
use super::config::GroupConfig;
use super::consumer::ConsumerGroup;
use super::consumer_protocol;
use super::member::Member;
use super::records::{GroupMetadataValue, MemberMetadataValue};
use super::types::{
    Delivery, GroupDescription, JoinResponse, MemberDescription, Protocol, RequestToken, Response,
    SyncResponse,
};

mod join;
mod lifecycle;

/// Kafka's classic group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members; the group may still hold committed offsets.
    Empty,
    /// Waiting for members to (re)join before the next generation starts.
    PreparingRebalance,
    /// The generation is chosen; waiting for the leader's SyncGroup with assignments.
    CompletingRebalance,
    /// Assignments are distributed.
    Stable,
    /// Removed (deleted or expired); kept only until callers drop it.
    Dead,
}

impl GroupState {
    /// Kafka's name of the state, as DescribeGroups and ListGroups report it.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// Parses a ListGroups state filter; Kafka compares case-insensitively.
    pub fn parse(name: &str) -> Option<Self> {
        [
            GroupState::Empty,
            GroupState::PreparingRebalance,
            GroupState::CompletingRebalance,
            GroupState::Stable,
            GroupState::Dead,
        ]
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

/// The timer of the join phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JoinTimer {
    /// First rebalance of an empty group: wait `group.initial.rebalance.delay.ms` for more
    /// members, again while new members keep arriving, but never past the rebalance timeout
    /// (`remaining_ms` is what is left of it). Only expiry completes this phase.
    Initial { deadline_ms: i64, remaining_ms: i64 },
    /// Completes as soon as every member has rejoined, or at the deadline.
    Rebalance { deadline_ms: i64 },
}

impl JoinTimer {
    fn deadline_ms(self) -> i64 {
        match self {
            JoinTimer::Initial { deadline_ms, .. } | JoinTimer::Rebalance { deadline_ms } => {
                deadline_ms
            }
        }
    }
}

/// One classic consumer group.
#[derive(Debug, Clone)]
pub struct Group {
    group_id: String,
    config: GroupConfig,
    state: GroupState,
    /// When the group entered its current state (Kafka's `currentStateTimestamp`); offsets of
    /// an Empty group expire relative to it.
    state_timestamp_ms: i64,
    generation_id: i32,
    /// Set by the first member and kept while the group lives, even when Empty.
    protocol_type: Option<String>,
    /// The protocol selected for the current generation.
    protocol_name: Option<String>,
    leader_id: Option<String>,
    members: BTreeMap<String, Member>,
    /// `group.instance.id` -> current member id.
    static_members: BTreeMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the deadline to come back by.
    pending_members: BTreeMap<String, i64>,
    /// Members of this generation that have not sent SyncGroup yet.
    pending_sync: BTreeSet<String>,
    join_timer: Option<JoinTimer>,
    /// A member arrived during the initial delay, so the delay is extended once more.
    new_member_added: bool,
    /// Members still in `pending_sync` at this time are removed (Kafka's sync timeout).
    sync_deadline_ms: Option<i64>,
    /// The persisted group metadata is out of date; see [`Group::take_metadata_dirty`].
    metadata_dirty: bool,
    offsets: GroupOffsets,
    /// The KIP-848 state while the group speaks the consumer protocol; then the classic
    /// fields stay as an Empty group's.
    pub(crate) consumer: Option<ConsumerGroup>,
}

impl Group {
    /// A new, Empty group with generation 0 and no protocol type (what a first JoinGroup or an
    /// offset commit outside group management creates).
    pub fn new(group_id: &str, config: GroupConfig, now_ms: i64) -> Self {
        Self {
            group_id: group_id.to_owned(),
            config,
            state: GroupState::Empty,
            state_timestamp_ms: now_ms,
            generation_id: 0,
            protocol_type: None,
            protocol_name: None,
            leader_id: None,
            members: BTreeMap::new(),
            static_members: BTreeMap::new(),
            pending_members: BTreeMap::new(),
            pending_sync: BTreeSet::new(),
            join_timer: None,
            new_member_added: false,
            sync_deadline_ms: None,
            metadata_dirty: false,
            offsets: GroupOffsets::default(),
            consumer: None,
        }
    }

    // ----- read access -----

    /// The coordinator settings the group runs with.
    pub(crate) fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// The group's `group.id`.
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// Current state in Kafka's classic group state machine.
    pub fn state(&self) -> GroupState {
        self.state
    }

    /// When the group entered its current state, ms since the Unix epoch (Kafka's
    /// `currentStateTimestamp`); the offsets of an Empty group expire relative to it.
    pub fn state_timestamp_ms(&self) -> i64 {
        self.state_timestamp_ms
    }

    /// Current generation: 0 for a new group, incremented each time a join phase completes.
    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    /// Protocol type set by the first member (e.g. "consumer"); `None` for a group that only
    /// commits offsets.
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    /// Protocol (assignor) selected for the current generation; `None` before the first one
    /// and when a generation starts with no members.
    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    /// Member id of the current leader; `None` before the first member joins.
    pub fn leader_id(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }

    /// The current member `member_id`; `None` also for a pending member (not joined yet).
    pub fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.get(member_id)
    }

    /// Current members, ordered by member id.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// Number of current members, pending members not counted.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// True when `member_id` is a current member (not a pending one).
    pub fn has_member(&self, member_id: &str) -> bool {
        self.members.contains_key(member_id)
    }

    /// True when `member_id` was handed out with MEMBER_ID_REQUIRED (JoinGroup v4+, KIP-394)
    /// and has not joined with it yet.
    pub fn is_pending_member(&self, member_id: &str) -> bool {
        self.pending_members.contains_key(member_id)
    }

    /// The KIP-848 state, when the group speaks the consumer protocol.
    pub fn consumer(&self) -> Option<&ConsumerGroup> {
        self.consumer.as_ref()
    }

    /// True when the group has members of either protocol (static members away included).
    pub fn has_members(&self) -> bool {
        !self.members.is_empty() || self.consumer.as_ref().is_some_and(|c| c.member_count() > 0)
    }

    /// The group's committed offsets.
    pub fn offsets(&self) -> &GroupOffsets {
        &self.offsets
    }

    pub(crate) fn offsets_mut(&mut self) -> &mut GroupOffsets {
        &mut self.offsets
    }

    /// True when `group_instance_id` belongs to a different member id than `member_id`: the
    /// caller is a stale duplicate of a static member that has been replaced.
    pub fn is_static_member_fenced(
        &self,
        group_instance_id: Option<&str>,
        member_id: &str,
    ) -> bool {
        group_instance_id
            .and_then(|id| self.static_members.get(id))
            .is_some_and(|current| current != member_id)
    }

    /// Returns true once after the group metadata changed in a way Kafka persists (leader's
    /// sync, a generation that ends Empty, static member replacement). The caller then writes
    /// a `GroupMetadata` record built by [`Group::to_metadata_value`].
    pub fn take_metadata_dirty(&mut self) -> bool {
        std::mem::take(&mut self.metadata_dirty)
    }

    /// Largest rebalance timeout of the members: the join phase waits this long.
    pub fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .values()
            .map(|m| i64::from(m.rebalance_timeout_ms))
            .max()
            .unwrap_or(0)
    }

    /// Topics all members subscribe to, when the group speaks the "consumer" protocol and every
    /// subscription parses; `None` when unknown.
    pub fn subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if let Some(consumer) = &self.consumer {
            return Some(consumer.subscribed_topic_names());
        }
        if self.protocol_type.as_deref() != Some(consumer_protocol::PROTOCOL_TYPE) {
            return None;
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = BTreeSet::new();
        for member in self.members.values() {
            let parsed = consumer_protocol::subscription_topics(&member.metadata(protocol)).ok()?;
            topics.extend(parsed);
        }
        Some(topics)
    }

    /// Whether deleting offsets of `topic` would pull them from under an active consumer.
    /// Unknown subscriptions count as subscribed, the safe answer.
    pub fn is_subscribed_to(&self, topic: &str) -> bool {
        self.subscribed_topics()
            .is_none_or(|topics| topics.contains(topic))
    }

    /// Enters `state` as of `now_ms` (Kafka's `currentStateTimestamp`).
    fn transition(&mut self, state: GroupState, now_ms: i64) {
        self.state = state;
        self.state_timestamp_ms = now_ms;
    }

    // ----- DescribeGroups / persistence -----

    /// DescribeGroups data. As in Kafka, member metadata and assignments are only shown for a
    /// Stable group.
    pub fn describe(&self) -> GroupDescription {
        let stable = self.state == GroupState::Stable;
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = self
            .members
            .values()
            .map(|m| MemberDescription {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: if stable {
                    m.metadata(&protocol)
                } else {
                    Bytes::new()
                },
                assignment: if stable {
                    m.assignment.clone()
                } else {
                    Bytes::new()
                },
            })
            .collect();
        GroupDescription {
            group_id: self.group_id.clone(),
            state: self.state.as_str(),
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol_data: if stable { protocol } else { String::new() },
            members,
        }
    }

    /// The `__consumer_offsets` GroupMetadata value describing this group now.
    pub fn to_metadata_value(&self) -> GroupMetadataValue {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation_id,
            protocol: self.protocol_name.clone(),
            leader: self.leader_id.clone(),
            current_state_timestamp: self.state_timestamp_ms,
            members: self
                .members
                .values()
                .map(|m| MemberMetadataValue {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout: m.rebalance_timeout_ms,
                    session_timeout: m.session_timeout_ms,
                    subscription: m.metadata(protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        }
    }

    /// Rebuilds a group from its persisted metadata at load time, keeping `offsets`. As in
    /// Kafka, a group with members comes back Stable and every member gets a fresh session,
    /// so members that died with the old broker expire and trigger a rebalance.
    pub fn from_metadata_value(
        group_id: &str,
        value: &GroupMetadataValue,
        offsets: GroupOffsets,
        config: GroupConfig,
        now_ms: i64,
    ) -> Self {
        let mut group = Group::new(group_id, config, now_ms);
        group.offsets = offsets;
        group.generation_id = value.generation;
        group.protocol_type = Some(value.protocol_type.clone()).filter(|t| !t.is_empty());
        group.protocol_name = value.protocol.clone();
        group.leader_id = value.leader.clone();
        group.state_timestamp_ms = if value.current_state_timestamp >= 0 {
            value.current_state_timestamp
        } else {
            now_ms
        };
        let protocol_name = value.protocol.clone().unwrap_or_default();
        for m in &value.members {
            let mut member = Member {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: m.rebalance_timeout,
                session_timeout_ms: m.session_timeout,
                protocol_type: value.protocol_type.clone(),
                protocols: vec![Protocol {
                    name: protocol_name.clone(),
                    metadata: m.subscription.clone(),
                }],
                assignment: m.assignment.clone(),
                join_token: None,
                sync_token: None,
                is_new: false,
                heartbeat_deadline_ms: None,
            };
            member.arm_heartbeat(now_ms);
            if let Some(instance) = &m.group_instance_id {
                group
                    .static_members
                    .insert(instance.clone(), m.member_id.clone());
            }
            group.members.insert(m.member_id.clone(), member);
        }
        if !group.members.is_empty() {
            group.state = GroupState::Stable;
            if group
                .leader_id
                .as_ref()
                .is_none_or(|l| !group.members.contains_key(l))
            {
                group.leader_id = group.members.keys().next().cloned();
            }
        }
        group
    }
}

fn push_join(out: &mut Vec<Delivery>, token: RequestToken, response: JoinResponse) {
    out.push(Delivery {
        token,
        response: Response::Join(response),
    });
}

fn push_sync(out: &mut Vec<Delivery>, token: RequestToken, response: SyncResponse) {
    out.push(Delivery {
        token,
        response: Response::Sync(response),
    });
}

fn reply_join_error(
    out: &mut Vec<Delivery>,
    token: RequestToken,
    error: ResponseError,
    member_id: &str,
) {
    push_join(out, token, JoinResponse::error(error, member_id));
}
