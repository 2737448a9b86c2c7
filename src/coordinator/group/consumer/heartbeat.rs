//! ConsumerGroupHeartbeat as a state transition of one consumer group: joining (epoch 0),
//! heartbeating (the member's epoch, or the one before with a subset of its partitions when a
//! response was lost), leaving (-1), a static member stepping away (-2) and returning under a
//! new member id, subscription changes, and the timers (session and revocation deadlines).
//! Every change that must survive a restart comes back as `__consumer_offsets` records, to be
//! appended before the response is sent.
//!
//! Runs on the group coordinator's shard; pure logic, time passed in.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::assignor::{self, MemberSpec};
use super::reconcile::{self, Held};
use super::records::{self, CurrentAssignment, MemberMetadata};
use super::subscription;
use super::{
    Assignment, ConsumerGroup, ConsumerMember, JOIN_EPOCH, LEAVE_EPOCH, MemberState,
    STATIC_LEAVE_EPOCH, Topics, contains, filter,
};
use crate::coordinator::group::records::Record;

/// Broker settings of consumer groups, with Kafka's names and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupConfig {
    /// `group.consumer.session.timeout.ms` (Kafka default 45000).
    pub session_timeout_ms: i32,
    /// `group.consumer.heartbeat.interval.ms` (Kafka default 5000).
    pub heartbeat_interval_ms: i32,
    /// `group.consumer.assignors`: names, the first is the default (Kafka: uniform, range).
    pub assignors: Vec<String>,
    /// `group.consumer.max.size` (Kafka default `Integer.MAX_VALUE`).
    pub max_size: usize,
    /// `group.consumer.min.session.timeout.ms` and `...max...` (Kafka: 45000, 60000): the
    /// bounds `session_timeout_ms` is checked against at start-up.
    pub session_timeout_bounds_ms: (i32, i32),
    /// `group.consumer.min.heartbeat.interval.ms` and `...max...` (Kafka: 5000, 15000).
    pub heartbeat_interval_bounds_ms: (i32, i32),
}

impl ConsumerGroupConfig {
    /// Kafka's start-up checks: each setting within its bounds, and a heartbeat interval
    /// shorter than the session timeout. The error names the key and the bound.
    pub fn check(&self) -> Result<(), String> {
        let within = |key: &str, value: i32, (min, max): (i32, i32), what: &str| {
            if value < min || value > max {
                Err(format!(
                    "{key}={value} is outside group.consumer.min.{what}.ms={min} .. group.consumer.max.{what}.ms={max}"
                ))
            } else {
                Ok(())
            }
        };
        within(
            "group.consumer.session.timeout.ms",
            self.session_timeout_ms,
            self.session_timeout_bounds_ms,
            "session.timeout",
        )?;
        within(
            "group.consumer.heartbeat.interval.ms",
            self.heartbeat_interval_ms,
            self.heartbeat_interval_bounds_ms,
            "heartbeat.interval",
        )?;
        if self.heartbeat_interval_ms >= self.session_timeout_ms {
            return Err(format!(
                "group.consumer.heartbeat.interval.ms={} must be below group.consumer.session.timeout.ms={}",
                self.heartbeat_interval_ms, self.session_timeout_ms
            ));
        }
        Ok(())
    }
}

impl Default for ConsumerGroupConfig {
    fn default() -> Self {
        Self {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5_000,
            assignors: vec![assignor::UNIFORM.to_owned(), assignor::RANGE.to_owned()],
            max_size: usize::MAX,
            session_timeout_bounds_ms: (45_000, 60_000),
            heartbeat_interval_bounds_ms: (5_000, 15_000),
        }
    }
}

/// A ConsumerGroupHeartbeat, free of wire versions. `None` fields mean "unchanged".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeartbeatRequest {
    /// Member id: chosen by the client (v1), or empty on a v0 join.
    pub member_id: String,
    /// 0 to join, -1 to leave, -2 for a static member to step away, else the current epoch.
    pub member_epoch: i32,
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// `client.rack`.
    pub rack_id: Option<String>,
    /// -1 when unchanged.
    pub rebalance_timeout_ms: i32,
    /// Topic names, when changed.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// Regex, when changed (empty clears it).
    pub subscribed_topic_regex: Option<String>,
    /// Server assignor asked for.
    pub server_assignor: Option<String>,
    /// Partitions the member owns, when it says.
    pub owned: Option<Assignment>,
    /// `client.id` of the request.
    pub client_id: String,
    /// Client address (`/1.2.3.4`).
    pub client_host: String,
}

/// A ConsumerGroupHeartbeat answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeartbeatResponse {
    /// `None` on success.
    pub error: Option<ResponseError>,
    /// Why, with the error.
    pub error_message: Option<String>,
    /// The member's id.
    pub member_id: String,
    /// The member's epoch after this heartbeat.
    pub member_epoch: i32,
    /// How often to heartbeat.
    pub heartbeat_interval_ms: i32,
    /// The member's partitions, when they changed or the request was a full one.
    pub assignment: Option<Assignment>,
}

impl HeartbeatResponse {
    /// An answer carrying only an error.
    pub fn error(error: ResponseError, message: impl Into<String>) -> Self {
        Self {
            error: Some(error),
            error_message: Some(message.into()),
            member_epoch: -1,
            ..Self::default()
        }
    }
}

type Refusal = (ResponseError, String);

fn refuse(error: ResponseError, message: impl Into<String>) -> Refusal {
    (error, message.into())
}

impl ConsumerGroup {
    /// Handles one heartbeat; returns the answer and the records to append before sending it.
    pub fn heartbeat(
        &mut self,
        group_id: &str,
        req: &HeartbeatRequest,
        topics: &Topics,
        config: &ConsumerGroupConfig,
        now_ms: i64,
    ) -> (HeartbeatResponse, Vec<Record>) {
        let mut records = Vec::new();
        if req.member_epoch == LEAVE_EPOCH || req.member_epoch == STATIC_LEAVE_EPOCH {
            return self.leave(group_id, req, now_ms, &mut records);
        }
        let member_id = match self.admit(group_id, req, config, now_ms, &mut records) {
            Ok(id) => id,
            Err((error, message)) => return (HeartbeatResponse::error(error, message), records),
        };
        self.renew_session(&member_id, now_ms, config.session_timeout_ms);
        let full_request = req.member_epoch == JOIN_EPOCH
            || (req.rebalance_timeout_ms != -1
                && req.subscribed_topic_names.is_some()
                && req.owned.is_some());
        let subscription_changed = self.update_member(group_id, &member_id, req, &mut records);
        self.refresh_epoch(group_id, subscription_changed, topics, &mut records);
        self.refresh_target(group_id, config, &mut records);
        let changed = self.reconcile_member(
            group_id,
            &member_id,
            req.owned.as_ref(),
            now_ms,
            &mut records,
        );
        let member = &self.members[&member_id];
        let response = HeartbeatResponse {
            error: None,
            error_message: None,
            member_id: member_id.clone(),
            member_epoch: member.member_epoch,
            heartbeat_interval_ms: config.heartbeat_interval_ms,
            assignment: (changed || full_request).then(|| member.assigned.clone()),
        };
        (response, records)
    }

    /// Checks the member's right to heartbeat with this epoch, creating or taking over the
    /// member on a join. Returns the member id to serve.
    fn admit(
        &mut self,
        group_id: &str,
        req: &HeartbeatRequest,
        config: &ConsumerGroupConfig,
        now_ms: i64,
        records: &mut Vec<Record>,
    ) -> Result<String, Refusal> {
        validate(req, config)?;
        if req.member_epoch == JOIN_EPOCH {
            return self.join(group_id, req, config, now_ms, records);
        }
        let member = self.members.get(&req.member_id).ok_or_else(|| {
            refuse(
                ResponseError::UnknownMemberId,
                format!("member {} is not in group {group_id}", req.member_id),
            )
        })?;
        if let Some(instance) = &req.instance_id
            && self.static_members.get(instance) != Some(&req.member_id)
        {
            return Err(refuse(
                ResponseError::FencedInstanceId,
                format!("instance {instance} belongs to another member"),
            ));
        }
        let lost_response = req.member_epoch == member.previous_member_epoch
            && req.owned.as_ref().is_some_and(|owned| {
                filter(owned, |t, p| !contains(&member.assigned, t, p)).is_empty()
            });
        if req.member_epoch != member.member_epoch && !lost_response {
            return Err(refuse(
                ResponseError::FencedMemberEpoch,
                format!(
                    "member epoch {} is not the current {}",
                    req.member_epoch, member.member_epoch
                ),
            ));
        }
        Ok(req.member_id.clone())
    }

    /// Epoch 0: a new member, a member rejoining after it was fenced, or a static member
    /// coming back under a new member id to its old place.
    fn join(
        &mut self,
        group_id: &str,
        req: &HeartbeatRequest,
        config: &ConsumerGroupConfig,
        now_ms: i64,
        records: &mut Vec<Record>,
    ) -> Result<String, Refusal> {
        let member_id = if req.member_id.is_empty() {
            Uuid::new_v4().to_string()
        } else {
            req.member_id.clone()
        };
        if let Some(instance) = &req.instance_id
            && let Some(old_id) = self.static_members.get(instance).cloned()
        {
            let old = &self.members[&old_id];
            if !old.left_temporarily && old_id != member_id {
                return Err(refuse(
                    ResponseError::UnreleasedInstanceId,
                    format!("instance {instance} is still held by member {old_id}"),
                ));
            }
            // The returning static member takes its old place: same partitions and epoch, so
            // nothing moves (KIP-345 carried over to KIP-848).
            let mut member = self.members.remove(&old_id).expect("static member");
            if old_id != member_id {
                tombstone_member(group_id, &old_id, records);
                if let Some(target) = self.target.remove(&old_id) {
                    records.push(records::target(group_id, &member_id, Some(&target)));
                    self.target.insert(member_id.clone(), target);
                }
            }
            member.member_id = member_id.clone();
            member.left_temporarily = false;
            records.push(records::member(
                group_id,
                &member_id,
                Some(&metadata_of(&member)),
            ));
            self.members.insert(member_id.clone(), member);
            self.static_members
                .insert(instance.clone(), member_id.clone());
            records.push(current_record(group_id, &self.members[&member_id]));
            return Ok(member_id);
        }
        if let Some(existing) = self.members.get_mut(&member_id) {
            // A member that lost its place (fenced) rejoins with nothing.
            existing.member_epoch = 0;
            existing.previous_member_epoch = 0;
            existing.assigned.clear();
            existing.pending_revocation.clear();
            existing.state = MemberState::Stable;
            existing.revocation_deadline_ms = None;
            return Ok(member_id);
        }
        if self.members.len() >= config.max_size {
            return Err(refuse(
                ResponseError::GroupMaxSizeReached,
                format!("group {group_id} has {} members", self.members.len()),
            ));
        }
        let mut member =
            ConsumerMember::new(&member_id, now_ms + i64::from(config.session_timeout_ms));
        member.instance_id.clone_from(&req.instance_id);
        member.client_id.clone_from(&req.client_id);
        member.client_host.clone_from(&req.client_host);
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        if let Some(instance) = &req.instance_id {
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        self.members.insert(member_id.clone(), member);
        Ok(member_id)
    }

    /// Applies the request's changed fields and renews the session. Returns true when the
    /// subscription changed (which bumps the group epoch).
    pub(super) fn update_member(
        &mut self,
        group_id: &str,
        member_id: &str,
        req: &HeartbeatRequest,
        records: &mut Vec<Record>,
    ) -> bool {
        let member = self.members.get_mut(member_id).expect("admitted member");
        let before = metadata_of(member);
        let is_new = member.member_epoch == 0
            && before.subscribed_topic_names.is_empty()
            && before.subscribed_topic_regex.is_none();
        if let Some(names) = &req.subscribed_topic_names {
            let mut names = names.clone();
            names.sort();
            names.dedup();
            member.subscribed_topic_names = names;
        }
        if let Some(regex) = &req.subscribed_topic_regex {
            member.subscribed_topic_regex = Some(regex.clone()).filter(|r| !r.is_empty());
        }
        if req.rebalance_timeout_ms != -1 {
            member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        }
        if req.rack_id.is_some() {
            member.rack_id.clone_from(&req.rack_id);
        }
        if req.server_assignor.is_some() {
            member.server_assignor.clone_from(&req.server_assignor);
        }
        member.client_id.clone_from(&req.client_id);
        member.client_host.clone_from(&req.client_host);
        let after = metadata_of(member);
        if after != before || is_new {
            records.push(records::member(group_id, member_id, Some(&after)));
        }
        is_new
            || after.subscribed_topic_names != before.subscribed_topic_names
            || after.subscribed_topic_regex != before.subscribed_topic_regex
            || after.server_assignor != before.server_assignor
    }

    /// Bumps the group epoch when a subscription changed or the subscribed topics did (a
    /// topic a regex matches was created, partitions were added, a topic was deleted).
    pub(super) fn refresh_epoch(
        &mut self,
        group_id: &str,
        subscription_changed: bool,
        topics: &Topics,
        records: &mut Vec<Record>,
    ) {
        let resolved = subscription::group_topics(self.members.values(), topics);
        let topics_changed = resolved != self.subscribed_topics;
        // After a restart the resolution is not persisted: adopt it without a rebalance.
        let adopt_only = self.topics_unresolved;
        self.subscribed_topics = resolved;
        self.topics_unresolved = false;
        if subscription_changed || (topics_changed && !adopt_only) {
            self.bump_epoch(group_id, records);
        }
    }

    pub(crate) fn bump_epoch(&mut self, group_id: &str, records: &mut Vec<Record>) {
        self.group_epoch += 1;
        records.push(records::group_epoch(group_id, Some(self.group_epoch)));
    }

    /// Computes a new target assignment when the group epoch moved past it.
    pub(super) fn refresh_target(
        &mut self,
        group_id: &str,
        config: &ConsumerGroupConfig,
        records: &mut Vec<Record>,
    ) {
        if self.group_epoch <= self.assignment_epoch {
            return;
        }
        let ids: BTreeMap<&str, Uuid> = self
            .subscribed_topics
            .iter()
            .map(|(n, (id, _))| (n.as_str(), *id))
            .collect();
        let counts: BTreeMap<Uuid, i32> = self.subscribed_topics.values().copied().collect();
        let specs: BTreeMap<String, MemberSpec> = self
            .members
            .values()
            .map(|m| {
                let names = subscription_names(m, &self.subscribed_topics);
                let spec = MemberSpec {
                    topics: names
                        .iter()
                        .filter_map(|n| ids.get(n.as_str()).copied())
                        .collect(),
                    current: self.target.get(&m.member_id).cloned().unwrap_or_default(),
                };
                (m.member_id.clone(), spec)
            })
            .collect();
        self.assignor = self.pick_assignor(config);
        let target = assignor::assign(&self.assignor, &specs, &counts);
        for (member_id, assignment) in &target {
            if self.target.get(member_id) != Some(assignment) {
                records.push(records::target(group_id, member_id, Some(assignment)));
            }
        }
        self.target = target;
        self.assignment_epoch = self.group_epoch;
        records.push(records::target_epoch(group_id, Some(self.assignment_epoch)));
    }

    /// The assignor most members asked for (ties by name), else the broker's default.
    pub(crate) fn pick_assignor(&self, config: &ConsumerGroupConfig) -> String {
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(name) = m.server_assignor.as_deref() {
                *votes.entry(name).or_default() += 1;
            }
        }
        votes
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
            .map(|(name, _)| name.to_owned())
            .or_else(|| config.assignors.first().cloned())
            .unwrap_or_else(|| assignor::UNIFORM.to_owned())
    }

    /// Moves the member towards its target; persists its current assignment when it changed.
    pub(super) fn reconcile_member(
        &mut self,
        group_id: &str,
        member_id: &str,
        owned: Option<&Assignment>,
        now_ms: i64,
        records: &mut Vec<Record>,
    ) -> bool {
        let held: Held = self
            .members
            .values()
            .filter(|m| m.member_id != member_id)
            .flat_map(|m| pairs(&m.assigned).chain(pairs(&m.pending_revocation)))
            .collect();
        let target = self.target_of(member_id);
        let epoch = self.assignment_epoch;
        let member = self.members.get_mut(member_id).expect("admitted member");
        let changed = reconcile::reconcile(member, epoch, &target, owned, &held, now_ms);
        if changed {
            records.push(current_record(group_id, member));
        }
        changed
    }

    /// Epoch -1 (or -2 from a dynamic member): the member leaves and the group rebalances;
    /// -2 from a static member keeps its place until its session times out.
    fn leave(
        &mut self,
        group_id: &str,
        req: &HeartbeatRequest,
        now_ms: i64,
        records: &mut Vec<Record>,
    ) -> (HeartbeatResponse, Vec<Record>) {
        let member_id = match (&req.instance_id, self.members.contains_key(&req.member_id)) {
            (_, true) => req.member_id.clone(),
            (Some(instance), false) => match self.static_members.get(instance) {
                Some(id) => id.clone(),
                None => return unknown_member(group_id, &req.member_id, std::mem::take(records)),
            },
            (None, false) => {
                return unknown_member(group_id, &req.member_id, std::mem::take(records));
            }
        };
        let is_static = self.members[&member_id].instance_id.is_some();
        if req.member_epoch == STATIC_LEAVE_EPOCH && is_static {
            let member = self.members.get_mut(&member_id).expect("member");
            member.left_temporarily = true;
        } else {
            self.remove_member(group_id, &member_id, now_ms, records);
        }
        let response = HeartbeatResponse {
            member_id,
            member_epoch: req.member_epoch,
            ..HeartbeatResponse::default()
        };
        (response, std::mem::take(records))
    }

    /// Removes a member (left, expired or fenced): its partitions are free, its records
    /// tombstoned, and the group rebalances.
    pub(crate) fn remove_member(
        &mut self,
        group_id: &str,
        member_id: &str,
        now_ms: i64,
        records: &mut Vec<Record>,
    ) {
        let Some(member) = self.members.remove(member_id) else {
            return;
        };
        if let Some(instance) = &member.instance_id
            && self.static_members.get(instance).map(String::as_str) == Some(member_id)
        {
            self.static_members.remove(instance);
        }
        self.target.remove(member_id);
        tombstone_member(group_id, member_id, records);
        records.push(records::target(group_id, member_id, None));
        self.bump_epoch(group_id, records);
        if self.members.is_empty() {
            self.empty_since_ms = now_ms;
        }
    }

    /// Removes members whose session or revocation deadline passed.
    pub fn tick(&mut self, group_id: &str, now_ms: i64) -> Vec<Record> {
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.session_deadline_ms <= now_ms
                    || m.revocation_deadline_ms.is_some_and(|d| d <= now_ms)
            })
            .map(|m| m.member_id.clone())
            .collect();
        let mut records = Vec::new();
        for member_id in expired {
            tracing::info!(group = group_id, member = %member_id, "consumer group member expired");
            self.remove_member(group_id, &member_id, now_ms, &mut records);
        }
        records
    }

    /// Renews a member's session for `session_timeout_ms` from `now_ms`.
    pub(crate) fn renew_session(&mut self, member_id: &str, now_ms: i64, session_timeout_ms: i32) {
        if let Some(m) = self.members.get_mut(member_id) {
            m.session_deadline_ms = now_ms + i64::from(session_timeout_ms);
        }
    }

    /// Tombstones for every record of the group (DeleteGroups, or a return to the classic
    /// protocol).
    pub fn tombstones(&self, group_id: &str) -> Vec<Record> {
        let mut records = Vec::new();
        for member_id in self
            .members
            .keys()
            .chain(self.target.keys())
            .collect::<BTreeSet<_>>()
        {
            tombstone_member(group_id, member_id, &mut records);
            records.push(records::target(group_id, member_id, None));
        }
        records.push(records::target_epoch(group_id, None));
        records.push(records::group_epoch(group_id, None));
        records
    }
}

fn validate(req: &HeartbeatRequest, config: &ConsumerGroupConfig) -> Result<(), Refusal> {
    if req.member_epoch == JOIN_EPOCH {
        if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
            return Err(refuse(
                ResponseError::InvalidRequest,
                "SubscribedTopicNames or SubscribedTopicRegex must be set when joining",
            ));
        }
        if req.rebalance_timeout_ms == -1 {
            return Err(refuse(
                ResponseError::InvalidRequest,
                "RebalanceTimeoutMs must be set when joining",
            ));
        }
        if req.owned.as_ref().is_some_and(|o| !o.is_empty()) {
            return Err(refuse(
                ResponseError::InvalidRequest,
                "TopicPartitions must be empty when joining",
            ));
        }
    } else if req.member_id.is_empty() {
        return Err(refuse(
            ResponseError::InvalidRequest,
            "MemberId must be set",
        ));
    }
    if let Some(name) = &req.server_assignor
        && !config.assignors.iter().any(|a| a == name)
    {
        return Err(refuse(
            ResponseError::UnsupportedAssignor,
            format!(
                "assignor {name} is not one of {}",
                config.assignors.join(", ")
            ),
        ));
    }
    if let Some(regex) = req
        .subscribed_topic_regex
        .as_deref()
        .filter(|r| !r.is_empty())
        && subscription::compile(regex).is_none()
    {
        return Err(refuse(
            ResponseError::InvalidRegularExpression,
            format!("cannot compile {regex:?}"),
        ));
    }
    Ok(())
}

fn unknown_member(
    group_id: &str,
    member_id: &str,
    records: Vec<Record>,
) -> (HeartbeatResponse, Vec<Record>) {
    (
        HeartbeatResponse::error(
            ResponseError::UnknownMemberId,
            format!("member {member_id} is not in group {group_id}"),
        ),
        records,
    )
}

/// The topic names of `member`'s subscription that resolved.
fn subscription_names(
    member: &ConsumerMember,
    resolved: &BTreeMap<String, (Uuid, i32)>,
) -> Vec<String> {
    let regex = member
        .subscribed_topic_regex
        .as_deref()
        .and_then(subscription::compile);
    resolved
        .keys()
        .filter(|name| {
            member.subscribed_topic_names.contains(name)
                || regex.as_ref().is_some_and(|r| r.is_match(name))
        })
        .cloned()
        .collect()
}

fn pairs(a: &Assignment) -> impl Iterator<Item = (Uuid, i32)> + '_ {
    a.iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
}

pub(super) fn metadata_of(m: &ConsumerMember) -> MemberMetadata {
    MemberMetadata {
        instance_id: m.instance_id.clone(),
        rack_id: m.rack_id.clone(),
        client_id: m.client_id.clone(),
        client_host: m.client_host.clone(),
        subscribed_topic_names: m.subscribed_topic_names.clone(),
        subscribed_topic_regex: m.subscribed_topic_regex.clone(),
        rebalance_timeout_ms: m.rebalance_timeout_ms,
        server_assignor: m.server_assignor.clone(),
        classic_protocols: m.classic.as_ref().map(|c| {
            c.protocols
                .iter()
                .map(|p| (p.name.clone(), p.metadata.clone()))
                .collect()
        }),
    }
}

pub(crate) fn current_record(group_id: &str, m: &ConsumerMember) -> Record {
    records::current(
        group_id,
        &m.member_id,
        Some(&CurrentAssignment {
            member_epoch: m.member_epoch,
            previous_member_epoch: m.previous_member_epoch,
            state: m.state.to_byte(),
            assigned: m.assigned.clone(),
            pending_revocation: m.pending_revocation.clone(),
        }),
    )
}

fn tombstone_member(group_id: &str, member_id: &str, records: &mut Vec<Record>) {
    records.push(records::current(group_id, member_id, None));
    records.push(records::member(group_id, member_id, None));
}
