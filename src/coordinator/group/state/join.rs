//! JoinGroup and the rebalance phases of one group: admitting members (`group.max.size`,
//! KIP-394's member id round, static members and their replacement), protocol selection,
//! leader election, and the end of the join phase that starts a new generation.
//!
//! Runs on the shard that owns the group's `__consumer_offsets` partition, like the rest of
//! [`Group`]: plain single-threaded state that never waits; parked JoinGroups are answered
//! through [`Delivery`]s.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::super::member::Member;
use super::super::types::{
    Delivery, JoinRequest, JoinResponse, JoinedMember, Protocol, RequestToken, SyncResponse,
};
use super::{Group, GroupState, JoinTimer, push_join, push_sync, reply_join_error};

impl Group {
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

    /// Starts a rebalance now (a group just turned back from the consumer protocol: its classic
    /// members must rejoin so the leader assigns what the consumer-protocol members held).
    pub(crate) fn rebalance_now(&mut self, now_ms: i64) -> Vec<Delivery> {
        let mut out = Vec::new();
        self.prepare_rebalance(now_ms, &mut out);
        out
    }

    pub(super) fn maybe_prepare_rebalance(&mut self, now_ms: i64, out: &mut Vec<Delivery>) {
        if matches!(
            self.state,
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty
        ) {
            self.prepare_rebalance(now_ms, out);
        }
    }

    pub(super) fn prepare_rebalance(&mut self, now_ms: i64, out: &mut Vec<Delivery>) {
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
    pub(super) fn try_complete_join(&mut self, now_ms: i64, out: &mut Vec<Delivery>) {
        let early = matches!(self.join_timer, Some(JoinTimer::Rebalance { .. }));
        if self.state == GroupState::PreparingRebalance && early && self.all_members_joined() {
            self.complete_join(now_ms, out);
        }
    }

    fn all_members_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.values().all(Member::is_awaiting_join)
    }

    pub(super) fn complete_join(&mut self, now_ms: i64, out: &mut Vec<Delivery>) {
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
}
