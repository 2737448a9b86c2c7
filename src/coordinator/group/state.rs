//! The classic rebalance protocol of ONE group: membership, join and sync phases, generations,
//! leader election, protocol selection, and every timer (initial delay, rebalance timeout,
//! session timeouts, pending members, pending syncs).
//!
//! Runs on the shard that owns the group's `__consumer_offsets` partition, so it is plain
//! single-threaded state. It never blocks and never waits: a JoinGroup or SyncGroup that Kafka
//! would park in purgatory is remembered by its [`RequestToken`], and its response comes back
//! later as a [`Delivery`] from whichever call completes it (another member's join, the leader's
//! sync, a leave, or [`Group::tick`]). Time only moves when the caller passes `now_ms`.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::config::GroupConfig;
use super::consumer_protocol;
use super::member::Member;
use super::offsets::GroupOffsets;
use super::records::{GroupMetadataValue, MemberMetadataValue};
use super::types::{
    Delivery, GroupDescription, HeartbeatRequest, JoinRequest, JoinResponse, JoinedMember,
    LeaveResponse, LeaveResult, LeavingMember, MemberDescription, Protocol, RequestToken, Response,
    SyncRequest, SyncResponse,
};

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

/// Upper bound on timer passes per tick; a zero timeout could otherwise re-arm at `now_ms`
/// forever.
const MAX_TICK_PASSES: usize = 4;

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
        }
    }

    // ----- read access -----

    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    pub fn state(&self) -> GroupState {
        self.state
    }

    pub fn state_timestamp_ms(&self) -> i64 {
        self.state_timestamp_ms
    }

    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    pub fn leader_id(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }

    pub fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.get(member_id)
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    pub fn has_member(&self, member_id: &str) -> bool {
        self.members.contains_key(member_id)
    }

    pub fn is_pending_member(&self, member_id: &str) -> bool {
        self.pending_members.contains_key(member_id)
    }

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

    // ----- JoinGroup -----

    /// Handles a JoinGroup. The response for `token` is in the returned deliveries when it is
    /// known now; otherwise it is delivered later by the call that completes the join phase.
    /// Responses to other members' parked requests may be delivered too.
    pub fn join(&mut self, req: JoinRequest, token: RequestToken, now_ms: i64) -> Vec<Delivery> {
        let mut out = Vec::new();
        self.join_inner(req, token, now_ms, &mut out);
        if self.state == GroupState::PreparingRebalance {
            self.try_complete_join(now_ms, &mut out);
        }
        out
    }

    fn join_inner(
        &mut self,
        req: JoinRequest,
        token: RequestToken,
        now_ms: i64,
        out: &mut Vec<Delivery>,
    ) {
        let timeout = req.session_timeout_ms;
        if timeout < self.config.min_session_timeout_ms
            || timeout > self.config.max_session_timeout_ms
        {
            return reply_join_error(
                out,
                token,
                ResponseError::InvalidSessionTimeout,
                &req.member_id,
            );
        }
        if self.state == GroupState::Dead {
            // The group was removed under the client; it should look up the coordinator again.
            return reply_join_error(
                out,
                token,
                ResponseError::CoordinatorNotAvailable,
                &req.member_id,
            );
        }
        if !self.accepts_joining_member(&req.member_id) {
            self.detach_member(&req.member_id, out);
            return reply_join_error(out, token, ResponseError::GroupMaxSizeReached, "");
        }
        if req.member_id.is_empty() {
            self.new_member_join(req, token, now_ms, out);
        } else {
            self.current_member_join(req, token, now_ms, out);
        }
    }

    /// `group.max.size`: while preparing, count members that already rejoined, so the last
    /// ones to rejoin are the ones turned away when the limit was lowered.
    fn accepts_joining_member(&self, member_id: &str) -> bool {
        let max = self.config.max_size;
        match self.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                self.members
                    .get(member_id)
                    .is_some_and(Member::is_awaiting_join)
                    || self
                        .members
                        .values()
                        .filter(|m| m.is_awaiting_join())
                        .count()
                        < max
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.members.contains_key(member_id) || self.members.len() < max
            }
        }
    }

    /// Kafka's rule: the first member sets the protocol type; later members must share it and
    /// support at least one protocol every current member supports.
    fn supports_protocols(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if self.state == GroupState::Empty || self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|p| self.members.values().all(|m| m.supports(&p.name)))
    }

    fn new_member_join(
        &mut self,
        req: JoinRequest,
        token: RequestToken,
        now_ms: i64,
        out: &mut Vec<Delivery>,
    ) {
        if !self.supports_protocols(&req.protocol_type, &req.protocols) {
            return reply_join_error(out, token, ResponseError::InconsistentGroupProtocol, "");
        }
        let member_id = format!("{}-{}", req.client_id, Uuid::new_v4());
        let known_static = req
            .group_instance_id
            .as_ref()
            .and_then(|id| self.static_members.get(id))
            .cloned();
        if let Some(old_member_id) = known_static {
            self.update_static_member(&old_member_id, member_id, req, token, now_ms, out);
        } else if req.group_instance_id.is_none() && req.require_known_member_id {
            // KIP-394: the id is handed out first, so a client that times out and retries does
            // not leave a defunct member behind for a whole rebalance.
            let deadline_ms = now_ms + i64::from(req.session_timeout_ms);
            self.pending_members.insert(member_id.clone(), deadline_ms);
            reply_join_error(out, token, ResponseError::MemberIdRequired, &member_id);
        } else {
            self.add_member_and_rebalance(member_id, req, token, now_ms, out);
        }
    }

    fn current_member_join(
        &mut self,
        req: JoinRequest,
        token: RequestToken,
        now_ms: i64,
        out: &mut Vec<Delivery>,
    ) {
        let member_id = req.member_id.clone();
        if !self.supports_protocols(&req.protocol_type, &req.protocols) {
            return reply_join_error(
                out,
                token,
                ResponseError::InconsistentGroupProtocol,
                &member_id,
            );
        }
        if self.pending_members.contains_key(&member_id) {
            return self.add_member_and_rebalance(member_id, req, token, now_ms, out);
        }
        let instance = req.group_instance_id.as_deref();
        if self.is_static_member_fenced(instance, &member_id) {
            return reply_join_error(out, token, ResponseError::FencedInstanceId, &member_id);
        }
        let unknown_instance = instance.is_some_and(|id| !self.static_members.contains_key(id));
        let Some(member) = self.members.get(&member_id) else {
            return reply_join_error(out, token, ResponseError::UnknownMemberId, &member_id);
        };
        if unknown_instance {
            return reply_join_error(out, token, ResponseError::UnknownMemberId, &member_id);
        }
        let unchanged = member.matches(&req.protocols);
        let is_leader = self.leader_id.as_deref() == Some(member_id.as_str());
        match self.state {
            GroupState::PreparingRebalance => {
                self.update_member_and_rebalance(req, token, now_ms, out)
            }
            // Same metadata: the member most likely lost the JoinGroup response; resend it.
            GroupState::CompletingRebalance if unchanged => {
                let response = self.generation_response(&member_id, is_leader);
                push_join(out, token, response);
            }
            GroupState::CompletingRebalance => {
                self.update_member_and_rebalance(req, token, now_ms, out)
            }
            // A leader's rejoin forces a rebalance: it is how the leader reacts to changes that
            // are invisible in member metadata (e.g. new partitions of a subscribed topic).
            GroupState::Stable if is_leader || !unchanged => {
                self.update_member_and_rebalance(req, token, now_ms, out)
            }
            GroupState::Stable => {
                let response = self.generation_response(&member_id, false);
                push_join(out, token, response);
            }
            GroupState::Empty | GroupState::Dead => {
                reply_join_error(out, token, ResponseError::UnknownMemberId, &member_id)
            }
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        member_id: String,
        req: JoinRequest,
        token: RequestToken,
        now_ms: i64,
        out: &mut Vec<Delivery>,
    ) {
        let member = Member {
            member_id: member_id.clone(),
            group_instance_id: req.group_instance_id,
            client_id: req.client_id,
            client_host: req.client_host,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            session_timeout_ms: req.session_timeout_ms,
            protocol_type: req.protocol_type,
            protocols: req.protocols,
            assignment: Bytes::new(),
            join_token: Some(token),
            sync_token: None,
            is_new: true,
            // New members cannot heartbeat while parked; they get the longer join timeout.
            heartbeat_deadline_ms: Some(now_ms + self.config.new_member_join_timeout_ms),
        };
        if self.state == GroupState::PreparingRebalance && self.generation_id == 0 {
            self.new_member_added = true;
        }
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member_id.clone());
        }
        if let Some(instance) = &member.group_instance_id {
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        self.pending_members.remove(&member_id);
        self.members.insert(member_id, member);
        self.maybe_prepare_rebalance(now_ms, out);
    }

    /// Records the member's new protocols and timeouts and parks its JoinGroup.
    fn update_member(
        &mut self,
        req: JoinRequest,
        member_id: &str,
        token: RequestToken,
        out: &mut Vec<Delivery>,
    ) {
        let Some(member) = self.members.get_mut(member_id) else {
            return;
        };
        member.protocols = req.protocols;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.session_timeout_ms = req.session_timeout_ms;
        // A second JoinGroup replaces the first (the client gave up on it); answer the old one
        // so its connection is not left waiting forever.
        if let Some(old) = member.join_token.replace(token) {
            reply_join_error(out, old, ResponseError::RebalanceInProgress, member_id);
        }
    }

    fn update_member_and_rebalance(
        &mut self,
        req: JoinRequest,
        token: RequestToken,
        now_ms: i64,
        out: &mut Vec<Delivery>,
    ) {
        let member_id = req.member_id.clone();
        self.update_member(req, &member_id, token, out);
        self.maybe_prepare_rebalance(now_ms, out);
    }

    /// A known `group.instance.id` joins with no member id (a restarted static member): it
    /// takes over the old member id's place, and the old id is fenced.
    fn update_static_member(
        &mut self,
        old_member_id: &str,
        new_member_id: String,
        req: JoinRequest,
        token: RequestToken,
        now_ms: i64,
        out: &mut Vec<Delivery>,
    ) {
        let previous_leader = self.leader_id.clone().unwrap_or_default();
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let old_metadata = self
            .members
            .get(old_member_id)
            .map(|m| m.metadata(&protocol));
        self.replace_static_member(old_member_id, &new_member_id, out);
        if let Some(member) = self.members.get_mut(&new_member_id) {
            member.arm_heartbeat(now_ms);
        }
        self.update_member(req, &new_member_id, token, out);
        let new_metadata = self
            .members
            .get(&new_member_id)
            .map(|m| m.metadata(&protocol));
        match self.state {
            GroupState::Stable => {
                // Kafka only checks that the selected protocol stays the same; we also
                // rebalance when the member's subscription changed, so the leader assigns
                // from what the restarted member really subscribes to.
                let unchanged = old_metadata == new_metadata;
                if unchanged && self.select_protocol() == self.protocol_name {
                    // Nothing the assignment depends on changed: no rebalance. The old leader
                    // id is returned so that a replaced leader does not run a trivial
                    // assignment that a Stable group would never distribute.
                    self.metadata_dirty = true;
                    let mut response = self.generation_response(&new_member_id, false);
                    response.leader = previous_leader;
                    if let Some(member) = self.members.get_mut(&new_member_id) {
                        member.join_token = None;
                    }
                    push_join(out, token, response);
                } else {
                    self.maybe_prepare_rebalance(now_ms, out);
                }
            }
            // The leader may already be computing an assignment for the old member id, which
            // the new id would never receive: rebalance.
            GroupState::CompletingRebalance => self.prepare_rebalance(now_ms, out),
            // The parked join completes with everyone else's.
            GroupState::PreparingRebalance => {}
            // A static member exists, so the group cannot be Empty or Dead; answer defensively.
            GroupState::Empty | GroupState::Dead => {
                if let Some(member) = self.members.get_mut(&new_member_id) {
                    member.join_token = None;
                }
                reply_join_error(out, token, ResponseError::UnknownMemberId, &new_member_id);
            }
        }
    }

    fn replace_static_member(
        &mut self,
        old_member_id: &str,
        new_member_id: &str,
        out: &mut Vec<Delivery>,
    ) {
        let Some(mut member) = self.members.remove(old_member_id) else {
            return;
        };
        // Fence the duplicate at once if it is waiting on us.
        if let Some(old) = member.join_token.take() {
            reply_join_error(out, old, ResponseError::FencedInstanceId, old_member_id);
        }
        if let Some(old) = member.sync_token.take() {
            push_sync(
                out,
                old,
                SyncResponse::error(ResponseError::FencedInstanceId),
            );
        }
        member.member_id = new_member_id.to_owned();
        if let Some(instance) = &member.group_instance_id {
            self.static_members
                .insert(instance.clone(), new_member_id.to_owned());
        }
        if self.leader_id.as_deref() == Some(old_member_id) {
            self.leader_id = Some(new_member_id.to_owned());
        }
        if self.pending_sync.remove(old_member_id) {
            self.pending_sync.insert(new_member_id.to_owned());
        }
        self.members.insert(new_member_id.to_owned(), member);
    }

    /// The JoinGroup response of the current generation for `member_id`.
    fn generation_response(&self, member_id: &str, with_members: bool) -> JoinResponse {
        JoinResponse {
            error: None,
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader_id.clone().unwrap_or_default(),
            skip_assignment: false,
            member_id: member_id.to_owned(),
            members: if with_members {
                self.current_member_metadata()
            } else {
                Vec::new()
            },
        }
    }

    fn current_member_metadata(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .values()
            .map(|m| JoinedMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata(protocol),
            })
            .collect()
    }

    /// Picks the protocol for the next generation: each member votes for its first preference
    /// among the protocols all members support; the most votes win, and a tie goes to the
    /// leader's preference (Kafka leaves ties to hash order; we make them deterministic).
    pub fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| self.members.values().all(|m| m.supports(name)))
            .collect();
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for member in self.members.values() {
            if let Some(choice) = member.vote(&candidates) {
                *votes.entry(choice).or_default() += 1;
            }
        }
        let preference = self
            .leader_id
            .as_deref()
            .and_then(|id| self.members.get(id))
            .unwrap_or(first);
        let rank = |name: &str| {
            preference
                .protocols
                .iter()
                .position(|p| p.name == name)
                .unwrap_or(usize::MAX)
        };
        votes
            .into_iter()
            .max_by(|(a, va), (b, vb)| va.cmp(vb).then_with(|| rank(b).cmp(&rank(a))))
            .map(|(name, _)| name.to_owned())
    }

    // ----- rebalance phases -----

    fn maybe_prepare_rebalance(&mut self, now_ms: i64, out: &mut Vec<Delivery>) {
        if matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        ) {
            self.prepare_rebalance(now_ms, out);
        }
    }

    fn prepare_rebalance(&mut self, now_ms: i64, out: &mut Vec<Delivery>) {
        if self.state == GroupState::CompletingRebalance {
            // Members parked in SyncGroup must rejoin: their generation is over.
            self.reset_and_propagate_assignment_error(
                ResponseError::RebalanceInProgress,
                now_ms,
                out,
            );
        }
        self.sync_deadline_ms = None;
        let rebalance_ms = self.rebalance_timeout_ms();
        let delay_ms = self.config.initial_rebalance_delay_ms;
        self.join_timer = Some(if self.state == GroupState::Empty && delay_ms > 0 {
            JoinTimer::Initial {
                deadline_ms: now_ms + delay_ms,
                remaining_ms: (rebalance_ms - delay_ms).max(0),
            }
        } else {
            JoinTimer::Rebalance {
                deadline_ms: now_ms + rebalance_ms,
            }
        });
        self.transition(GroupState::PreparingRebalance, now_ms);
        self.try_complete_join(now_ms, out);
    }

    /// Completes the join phase early once everyone is in; the initial delay only ends by time.
    fn try_complete_join(&mut self, now_ms: i64, out: &mut Vec<Delivery>) {
        let early = matches!(self.join_timer, Some(JoinTimer::Rebalance { .. }));
        if self.state == GroupState::PreparingRebalance && early && self.all_members_joined() {
            self.complete_join(now_ms, out);
        }
    }

    fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(Member::is_awaiting_join)
    }

    fn complete_join(&mut self, now_ms: i64, out: &mut Vec<Delivery>) {
        self.join_timer = None;
        // Dynamic members that did not rejoin in time are gone. Static members stay: they are
        // expected back (a restart) and only their session timeout removes them.
        let missing: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.is_awaiting_join() && !m.is_static())
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in missing {
            self.detach_member(&member_id, out);
        }
        if !self.members.is_empty() && !self.elect_joined_leader() {
            // Nobody rejoined (only absent static members are left): wait another round for
            // them to come back or for their sessions to expire.
            let deadline_ms = now_ms + self.rebalance_timeout_ms();
            self.join_timer = Some(JoinTimer::Rebalance { deadline_ms });
            return;
        }
        self.init_next_generation(now_ms);
        if self.state == GroupState::Empty {
            self.metadata_dirty = true;
            return;
        }
        let leader = self.leader_id.clone().unwrap_or_default();
        let member_ids: Vec<String> = self.members.keys().cloned().collect();
        for member_id in member_ids {
            let response = self.generation_response(&member_id, member_id == leader);
            let Some(member) = self.members.get_mut(&member_id) else {
                continue;
            };
            if let Some(token) = member.join_token.take() {
                push_join(out, token, response);
            }
            member.arm_heartbeat(now_ms);
            member.is_new = false;
            self.pending_sync.insert(member_id);
        }
        self.sync_deadline_ms = Some(now_ms + self.rebalance_timeout_ms());
    }

    /// Keeps the leader if it rejoined, else promotes any member that did. False when no
    /// member rejoined at all.
    fn elect_joined_leader(&mut self) -> bool {
        let leader_joined = self
            .leader_id
            .as_deref()
            .and_then(|id| self.members.get(id))
            .is_some_and(Member::is_awaiting_join);
        if leader_joined {
            return true;
        }
        match self.members.values().find(|m| m.is_awaiting_join()) {
            Some(member) => {
                self.leader_id = Some(member.member_id.clone());
                true
            }
            None => false,
        }
    }

    fn init_next_generation(&mut self, now_ms: i64) {
        self.generation_id += 1;
        self.pending_sync.clear();
        if self.members.is_empty() {
            self.protocol_name = None;
            self.transition(GroupState::Empty, now_ms);
        } else {
            self.protocol_name = self.select_protocol();
            self.transition(GroupState::CompletingRebalance, now_ms);
        }
    }

    fn transition(&mut self, state: GroupState, now_ms: i64) {
        self.state = state;
        self.state_timestamp_ms = now_ms;
    }

    // ----- SyncGroup -----

    /// Handles a SyncGroup. Followers that sync before the leader are parked and answered when
    /// the leader's assignment arrives (or when a new rebalance cancels this generation).
    pub fn sync(&mut self, req: SyncRequest, token: RequestToken, now_ms: i64) -> Vec<Delivery> {
        let mut out = Vec::new();
        if let Err(error) = self.validate_sync(&req) {
            push_sync(&mut out, token, SyncResponse::error(error));
            return out;
        }
        match self.state {
            GroupState::Empty => {
                push_sync(
                    &mut out,
                    token,
                    SyncResponse::error(ResponseError::UnknownMemberId),
                );
            }
            GroupState::PreparingRebalance => {
                push_sync(
                    &mut out,
                    token,
                    SyncResponse::error(ResponseError::RebalanceInProgress),
                );
            }
            GroupState::CompletingRebalance => {
                self.pending_sync.remove(&req.member_id);
                // A repeated SyncGroup replaces the parked one, which is answered now.
                if let Some(member) = self.members.get_mut(&req.member_id)
                    && let Some(old) = member.sync_token.replace(token)
                {
                    push_sync(
                        &mut out,
                        old,
                        SyncResponse::error(ResponseError::RebalanceInProgress),
                    );
                }
                if self.leader_id.as_deref() == Some(req.member_id.as_str()) {
                    self.complete_sync(req.assignments, now_ms, &mut out);
                }
            }
            GroupState::Stable => {
                self.pending_sync.remove(&req.member_id);
                let assignment = match self.members.get_mut(&req.member_id) {
                    Some(member) => {
                        member.arm_heartbeat(now_ms);
                        member.assignment.clone()
                    }
                    None => Bytes::new(),
                };
                let response = self.sync_success(assignment);
                push_sync(&mut out, token, response);
            }
            GroupState::Dead => {
                push_sync(
                    &mut out,
                    token,
                    SyncResponse::error(ResponseError::CoordinatorNotAvailable),
                );
            }
        }
        out
    }

    fn validate_sync(&self, req: &SyncRequest) -> Result<(), ResponseError> {
        if self.state == GroupState::Dead {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if self.is_static_member_fenced(req.group_instance_id.as_deref(), &req.member_id) {
            return Err(ResponseError::FencedInstanceId);
        }
        if !self.members.contains_key(&req.member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if req.generation_id != self.generation_id {
            return Err(ResponseError::IllegalGeneration);
        }
        let type_mismatch = req
            .protocol_type
            .as_ref()
            .is_some_and(|t| self.protocol_type.as_ref() != Some(t));
        let name_mismatch = req
            .protocol_name
            .as_ref()
            .is_some_and(|n| self.protocol_name.as_ref() != Some(n));
        if type_mismatch || name_mismatch {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        Ok(())
    }

    fn sync_success(&self, assignment: Bytes) -> SyncResponse {
        SyncResponse {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }

    /// The leader's assignments arrived: members it left out get an empty assignment, every
    /// parked SyncGroup is answered, and the group is Stable.
    fn complete_sync(
        &mut self,
        assignments: Vec<(String, Bytes)>,
        now_ms: i64,
        out: &mut Vec<Delivery>,
    ) {
        let mut given: BTreeMap<String, Bytes> = assignments.into_iter().collect();
        for member in self.members.values_mut() {
            member.assignment = given.remove(&member.member_id).unwrap_or_default();
        }
        self.transition(GroupState::Stable, now_ms);
        self.metadata_dirty = true;
        self.propagate_assignment(None, now_ms, out);
    }

    fn reset_and_propagate_assignment_error(
        &mut self,
        error: ResponseError,
        now_ms: i64,
        out: &mut Vec<Delivery>,
    ) {
        for member in self.members.values_mut() {
            member.assignment = Bytes::new();
        }
        self.propagate_assignment(Some(error), now_ms, out);
    }

    fn propagate_assignment(
        &mut self,
        error: Option<ResponseError>,
        now_ms: i64,
        out: &mut Vec<Delivery>,
    ) {
        let success = self.sync_success(Bytes::new());
        for member in self.members.values_mut() {
            let Some(token) = member.sync_token.take() else {
                continue;
            };
            let response = match error {
                Some(error) => SyncResponse::error(error),
                None => SyncResponse {
                    assignment: member.assignment.clone(),
                    ..success.clone()
                },
            };
            push_sync(out, token, response);
            // The member could not heartbeat while parked; its session restarts now.
            member.arm_heartbeat(now_ms);
        }
    }

    // ----- Heartbeat -----

    /// Handles a Heartbeat; `None` is success. A valid heartbeat extends the member's session.
    pub fn heartbeat(&mut self, req: &HeartbeatRequest, now_ms: i64) -> Option<ResponseError> {
        if self.state == GroupState::Dead {
            return Some(ResponseError::CoordinatorNotAvailable);
        }
        if self.is_static_member_fenced(req.group_instance_id.as_deref(), &req.member_id) {
            return Some(ResponseError::FencedInstanceId);
        }
        if !self.members.contains_key(&req.member_id) {
            return Some(ResponseError::UnknownMemberId);
        }
        if req.generation_id != self.generation_id {
            return Some(ResponseError::IllegalGeneration);
        }
        if self.state == GroupState::Empty {
            return Some(ResponseError::UnknownMemberId);
        }
        self.touch_member(&req.member_id, now_ms);
        // Heartbeats are how members learn that they must rejoin.
        (self.state == GroupState::PreparingRebalance).then_some(ResponseError::RebalanceInProgress)
    }

    /// Extends the session of a member that proved it is alive (heartbeat, offset commit).
    pub(crate) fn touch_member(&mut self, member_id: &str, now_ms: i64) {
        if let Some(member) = self.members.get_mut(member_id) {
            member.arm_heartbeat(now_ms);
        }
    }

    // ----- LeaveGroup -----

    /// Handles a LeaveGroup for one or more members (v3+ batches; the wiring layer turns older
    /// requests into a batch of one).
    pub fn leave(
        &mut self,
        leaving: &[LeavingMember],
        now_ms: i64,
    ) -> (LeaveResponse, Vec<Delivery>) {
        let mut out = Vec::new();
        if self.state == GroupState::Dead {
            let response = LeaveResponse {
                error: Some(ResponseError::CoordinatorNotAvailable),
                members: Vec::new(),
            };
            return (response, out);
        }
        let members = leaving
            .iter()
            .map(|m| LeaveResult {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                error: self.leave_one(m, now_ms, &mut out),
            })
            .collect();
        (
            LeaveResponse {
                error: None,
                members,
            },
            out,
        )
    }

    fn leave_one(
        &mut self,
        leaving: &LeavingMember,
        now_ms: i64,
        out: &mut Vec<Delivery>,
    ) -> Option<ResponseError> {
        let instance = leaving.group_instance_id.as_deref();
        if leaving.member_id.is_empty() {
            // Administrative removal of a static member by instance id alone.
            let current = instance.and_then(|id| self.static_members.get(id)).cloned();
            return match current {
                Some(member_id) => {
                    self.remove_member_and_update(&member_id, now_ms, out);
                    None
                }
                None => Some(ResponseError::UnknownMemberId),
            };
        }
        if self.pending_members.remove(&leaving.member_id).is_some() {
            self.try_complete_join(now_ms, out);
            return None;
        }
        if self.is_static_member_fenced(instance, &leaving.member_id) {
            return Some(ResponseError::FencedInstanceId);
        }
        if !self.members.contains_key(&leaving.member_id) {
            return Some(ResponseError::UnknownMemberId);
        }
        self.remove_member_and_update(&leaving.member_id, now_ms, out);
        None
    }

    // ----- removal -----

    /// Removes a member and lets the group react: a rebalance if it was settled, or an earlier
    /// end of the join phase if the others were only waiting for this one.
    fn remove_member_and_update(&mut self, member_id: &str, now_ms: i64, out: &mut Vec<Delivery>) {
        self.detach_member(member_id, out);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance(now_ms, out)
            }
            GroupState::PreparingRebalance => self.try_complete_join(now_ms, out),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Drops a member from every index. Its parked requests get UNKNOWN_MEMBER_ID, so a
    /// client that is still alive rejoins from scratch.
    fn detach_member(&mut self, member_id: &str, out: &mut Vec<Delivery>) -> Option<Member> {
        let mut member = self.members.remove(member_id)?;
        if let Some(token) = member.join_token.take() {
            reply_join_error(out, token, ResponseError::UnknownMemberId, "");
        }
        if let Some(token) = member.sync_token.take() {
            push_sync(
                out,
                token,
                SyncResponse::error(ResponseError::UnknownMemberId),
            );
        }
        if let Some(instance) = &member.group_instance_id
            && self.static_members.get(instance).map(String::as_str) == Some(member_id)
        {
            self.static_members.remove(instance);
        }
        self.pending_sync.remove(member_id);
        if self.leader_id.as_deref() == Some(member_id) {
            self.leader_id = self.members.keys().next().cloned();
        }
        Some(member)
    }

    /// Marks the group Dead (deleted, or expired with nothing left). Parked requests are
    /// answered with COORDINATOR_NOT_AVAILABLE so clients look the coordinator up again.
    pub(crate) fn mark_dead(&mut self, now_ms: i64) -> Vec<Delivery> {
        let mut out = Vec::new();
        for member in self.members.values_mut() {
            if let Some(token) = member.join_token.take() {
                reply_join_error(
                    &mut out,
                    token,
                    ResponseError::CoordinatorNotAvailable,
                    &member.member_id,
                );
            }
            if let Some(token) = member.sync_token.take() {
                push_sync(
                    &mut out,
                    token,
                    SyncResponse::error(ResponseError::CoordinatorNotAvailable),
                );
            }
        }
        self.join_timer = None;
        self.sync_deadline_ms = None;
        self.transition(GroupState::Dead, now_ms);
        out
    }

    // ----- timers -----

    /// The earliest time at which [`Group::tick`] has work to do, if any.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        let members = self
            .members
            .values()
            .filter_map(|m| m.heartbeat_deadline_ms);
        let pending = self.pending_members.values().copied();
        members
            .chain(pending)
            .chain(self.join_timer.map(JoinTimer::deadline_ms))
            .chain(self.sync_deadline_ms)
            .min()
    }

    /// Fires every timer due at `now_ms`: expired pending member ids, session timeouts, the end
    /// of the join phase (initial delay or rebalance timeout), and the sync timeout.
    pub fn tick(&mut self, now_ms: i64) -> Vec<Delivery> {
        let mut out = Vec::new();
        for _ in 0..MAX_TICK_PASSES {
            if self.next_deadline_ms().is_none_or(|d| d > now_ms) {
                break;
            }
            self.expire_pending_members(now_ms, &mut out);
            self.expire_sessions(now_ms, &mut out);
            if self.join_timer.is_some_and(|t| t.deadline_ms() <= now_ms) {
                self.on_join_timer(now_ms, &mut out);
            }
            if self.sync_deadline_ms.is_some_and(|d| d <= now_ms) {
                self.on_sync_timeout(now_ms, &mut out);
            }
        }
        out
    }

    fn expire_pending_members(&mut self, now_ms: i64, out: &mut Vec<Delivery>) {
        let before = self.pending_members.len();
        self.pending_members
            .retain(|_, deadline| *deadline > now_ms);
        if self.pending_members.len() != before {
            self.try_complete_join(now_ms, out);
        }
    }

    fn expire_sessions(&mut self, now_ms: i64, out: &mut Vec<Delivery>) {
        let due: Vec<String> = self
            .members
            .values()
            .filter(|m| m.heartbeat_deadline_ms.is_some_and(|d| d <= now_ms))
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in due {
            let Some(member) = self.members.get_mut(&member_id) else {
                continue;
            };
            let parked = member.is_awaiting_join() || member.is_awaiting_sync();
            if parked && !member.is_new {
                // A parked member cannot heartbeat; its session restarts when the parked
                // request completes.
                member.heartbeat_deadline_ms = None;
            } else {
                self.remove_member_and_update(&member_id, now_ms, out);
            }
        }
    }

    fn on_join_timer(&mut self, now_ms: i64, out: &mut Vec<Delivery>) {
        if self.state != GroupState::PreparingRebalance {
            self.join_timer = None;
            return;
        }
        match self.join_timer {
            Some(JoinTimer::Initial { remaining_ms, .. })
                if self.new_member_added && remaining_ms > 0 =>
            {
                // Members are still arriving: wait one more delay, within the rebalance timeout.
                self.new_member_added = false;
                let delay_ms = self.config.initial_rebalance_delay_ms.min(remaining_ms);
                self.join_timer = Some(JoinTimer::Initial {
                    deadline_ms: now_ms + delay_ms,
                    remaining_ms: (remaining_ms - self.config.initial_rebalance_delay_ms).max(0),
                });
            }
            _ => self.complete_join(now_ms, out),
        }
    }

    /// Members that never sent SyncGroup within the rebalance timeout are removed and the
    /// group rebalances without them (otherwise they would hold partitions nobody consumes).
    fn on_sync_timeout(&mut self, now_ms: i64, out: &mut Vec<Delivery>) {
        self.sync_deadline_ms = None;
        let settled = matches!(
            self.state,
            GroupState::CompletingRebalance | GroupState::Stable
        );
        if !settled || self.pending_sync.is_empty() {
            return;
        }
        let missing: Vec<String> = self.pending_sync.iter().cloned().collect();
        for member_id in missing {
            self.detach_member(&member_id, out);
        }
        self.prepare_rebalance(now_ms, out);
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
