//! What happens to one group after the join phase: SyncGroup (the leader's assignment and
//! the followers parked for it), Heartbeat, LeaveGroup, member removal, marking the group
//! Dead, and every timer (pending member ids, session timeouts, the end of the join phase,
//! the sync timeout), fired by [`Group::tick`].
//!
//! Runs on the shard that owns the group's `__consumer_offsets` partition, like the rest of
//! [`Group`]: plain single-threaded state that never waits; time only moves when the caller
//! passes `now_ms`.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::super::member::Member;
use super::super::types::{
    Delivery, HeartbeatRequest, LeaveResponse, LeaveResult, LeavingMember, RequestToken,
    SyncRequest, SyncResponse,
};
use super::{Group, GroupState, JoinTimer, push_sync, reply_join_error};

/// Upper bound on timer passes per tick; a zero timeout could otherwise re-arm at `now_ms`
/// forever.
const MAX_TICK_PASSES: usize = 4;

impl Group {
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

    pub(super) fn reset_and_propagate_assignment_error(
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
    pub(super) fn detach_member(
        &mut self,
        member_id: &str,
        out: &mut Vec<Delivery>,
    ) -> Option<Member> {
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
}
