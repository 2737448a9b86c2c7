//! Classic members in a consumer group: Kafka's online upgrade. When the first member of the
//! consumer protocol joins a Stable classic group, the group becomes a consumer group and keeps
//! its classic members with their partitions (member epoch = the classic generation). From then
//! on the coordinator assigns for everyone: a classic member's JoinGroup is answered at once with
//! its member epoch as the generation and no leader (every classic member is a follower), its
//! SyncGroup with its current partitions from the server-side assignment, and its Heartbeat with
//! REBALANCE_IN_PROGRESS while its partitions must change, so it rejoins: an eager member
//! rejoins owning nothing; a cooperative one says in its subscription what it still owns, and
//! keeps its epoch until that no longer includes what it must give up. No partition is ever
//! owned twice, as for consumer-protocol members. When the last consumer-protocol member is
//! gone, the group turns back into a classic group (Kafka's downgrade) and rebalances.
//!
//! Runs on the group coordinator's shard; pure logic.

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::heartbeat::ConsumerGroupConfig;
use super::records;
use super::{Assignment, ConsumerGroup, ConsumerMember, MemberState, Topics};
use crate::coordinator::group::consumer_protocol::{self, TopicPartitionList};
use crate::coordinator::group::records::{GroupMetadataValue, MemberMetadataValue, Record};
use crate::coordinator::group::state::{Group, GroupState};
use crate::coordinator::group::types::{
    HeartbeatRequest, JoinRequest, JoinResponse, LeavingMember, Protocol, SyncRequest, SyncResponse,
};

/// What the coordinator keeps of a member that speaks the classic protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicMember {
    /// Its protocols (assignor names and subscription metadata), in its order of preference.
    pub protocols: Vec<Protocol>,
    /// Its own session timeout (classic members choose theirs).
    pub session_timeout_ms: i32,
}

impl ClassicMember {
    /// The protocol the member is answered with: its first (the server assigns anyway).
    pub fn protocol_name(&self) -> String {
        self.protocols
            .first()
            .map(|p| p.name.clone())
            .unwrap_or_default()
    }
}

impl ConsumerGroup {
    /// The online upgrade of a Stable classic group of consumers: every member kept with its
    /// subscription and partitions at epoch = generation. Refused with
    /// REBALANCE_IN_PROGRESS while the classic group rebalances, and with
    /// INCONSISTENT_GROUP_PROTOCOL for a group that is not of consumers.
    pub fn from_classic(
        group: &Group,
        topics: &Topics,
        now_ms: i64,
    ) -> Result<(ConsumerGroup, Vec<Record>), ResponseError> {
        if group.protocol_type() != Some(consumer_protocol::PROTOCOL_TYPE) {
            return Err(ResponseError::InconsistentGroupProtocol);
        }
        if group.state() != GroupState::Stable {
            return Err(ResponseError::RebalanceInProgress);
        }
        let group_id = group.group_id();
        let generation = group.generation_id().max(1);
        let protocol = group.protocol_name().unwrap_or_default().to_owned();
        let mut consumer = ConsumerGroup {
            group_epoch: generation,
            assignment_epoch: generation,
            ..ConsumerGroup::default()
        };
        for m in group.members() {
            let metadata = m.metadata(&protocol);
            let names = consumer_protocol::subscription_topics(&metadata)
                .map_err(|_| ResponseError::InconsistentGroupProtocol)?;
            let assigned = consumer_protocol::decode_assignment(&m.assignment)
                .map(|a| by_id(&a, topics))
                .map_err(|_| ResponseError::InconsistentGroupProtocol)?;
            let mut member =
                ConsumerMember::new(&m.member_id, now_ms + i64::from(m.session_timeout_ms));
            member.instance_id.clone_from(&m.group_instance_id);
            member.client_id.clone_from(&m.client_id);
            member.client_host.clone_from(&m.client_host);
            member.rebalance_timeout_ms = m.rebalance_timeout_ms;
            member.subscribed_topic_names = names;
            member.member_epoch = generation;
            member.previous_member_epoch = generation;
            member.assigned = assigned.clone();
            member.classic = Some(ClassicMember {
                protocols: m.protocols.clone(),
                session_timeout_ms: m.session_timeout_ms,
            });
            if let Some(instance) = &m.group_instance_id {
                consumer
                    .static_members
                    .insert(instance.clone(), m.member_id.clone());
            }
            consumer.target.insert(m.member_id.clone(), assigned);
            consumer.members.insert(m.member_id.clone(), member);
        }
        consumer.subscribed_topics =
            super::subscription::group_topics(consumer.members.values(), topics);
        consumer.assignor = super::assignor::UNIFORM.to_owned();
        let mut out = vec![crate::coordinator::group::records::group_tombstone(
            group_id,
        )];
        for m in consumer.members.values() {
            out.push(records::member(
                group_id,
                &m.member_id,
                Some(&super::heartbeat::metadata_of(m)),
            ));
            out.push(records::target(group_id, &m.member_id, Some(&m.assigned)));
            out.push(super::heartbeat::current_record(group_id, m));
        }
        out.push(records::target_epoch(
            group_id,
            Some(consumer.assignment_epoch),
        ));
        out.push(records::group_epoch(group_id, Some(consumer.group_epoch)));
        Ok((consumer, out))
    }

    /// JoinGroup from a classic member: answered at once (see the module doc).
    pub fn classic_join(
        &mut self,
        group_id: &str,
        req: &JoinRequest,
        topics: &Topics,
        config: &ConsumerGroupConfig,
        now_ms: i64,
    ) -> (JoinResponse, Vec<Record>) {
        let mut records = Vec::new();
        // The member's subscription: a consumer's first protocol, whose metadata must parse.
        let subscription = req
            .protocols
            .first()
            .filter(|_| req.protocol_type == consumer_protocol::PROTOCOL_TYPE)
            .and_then(|first| {
                let names = consumer_protocol::subscription_topics(&first.metadata).ok()?;
                Some((first, names))
            });
        let Some((first, names)) = subscription else {
            return (
                JoinResponse::error(ResponseError::InconsistentGroupProtocol, &req.member_id),
                records,
            );
        };
        let member_id = match self.classic_member_id(req, config) {
            Ok(id) => id,
            Err(e) => return (JoinResponse::error(e, &req.member_id), records),
        };
        // An eager member gave up everything before rejoining; a cooperative one lists what
        // it kept (subscription v1+).
        let owned = consumer_protocol::owned_partitions(&first.metadata)
            .map(|o| by_id(&o, topics))
            .unwrap_or_default();
        let member = self.members.get_mut(&member_id).expect("member admitted");
        let mut sorted = names;
        sorted.sort();
        sorted.dedup();
        let changed = member.subscribed_topic_names != sorted;
        member.subscribed_topic_names = sorted;
        member.client_id.clone_from(&req.client_id);
        member.client_host.clone_from(&req.client_host);
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.session_deadline_ms = now_ms + i64::from(req.session_timeout_ms);
        member.classic = Some(ClassicMember {
            protocols: req.protocols.clone(),
            session_timeout_ms: req.session_timeout_ms,
        });
        records.push(records::member(
            group_id,
            &member_id,
            Some(&super::heartbeat::metadata_of(member)),
        ));
        self.refresh_epoch(group_id, changed, topics, &mut records);
        self.refresh_target(group_id, config, &mut records);
        self.reconcile_member(group_id, &member_id, Some(&owned), now_ms, &mut records);
        let member = &self.members[&member_id];
        let response = JoinResponse {
            error: None,
            generation_id: member.member_epoch,
            protocol_type: Some(consumer_protocol::PROTOCOL_TYPE.to_owned()),
            protocol_name: member.classic.as_ref().map(ClassicMember::protocol_name),
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.clone(),
            members: Vec::new(),
        };
        (response, records)
    }

    /// The member a classic JoinGroup is for: a known one, a static member's new incarnation,
    /// or a new member (its id made here, as a classic coordinator does).
    fn classic_member_id(
        &mut self,
        req: &JoinRequest,
        config: &ConsumerGroupConfig,
    ) -> Result<String, ResponseError> {
        if let Some(instance) = &req.group_instance_id
            && let Some(old_id) = self.static_members.get(instance).cloned()
        {
            if req.member_id.is_empty() || req.member_id == old_id {
                return Ok(old_id);
            }
            return Err(ResponseError::FencedInstanceId);
        }
        if !req.member_id.is_empty() {
            return match self.members.get(&req.member_id) {
                Some(m) if m.classic.is_some() => Ok(req.member_id.clone()),
                _ => Err(ResponseError::UnknownMemberId),
            };
        }
        if self.members.len() >= config.max_size {
            return Err(ResponseError::GroupMaxSizeReached);
        }
        let member_id = format!("{}-{}", req.client_id, Uuid::new_v4());
        let mut member = ConsumerMember::new(&member_id, 0);
        member.instance_id.clone_from(&req.group_instance_id);
        if let Some(instance) = &req.group_instance_id {
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        self.members.insert(member_id.clone(), member);
        Ok(member_id)
    }

    /// SyncGroup from a classic member: its current partitions, by topic name.
    pub fn classic_sync(&mut self, req: &SyncRequest, now_ms: i64) -> SyncResponse {
        let Some(member) = self.members.get_mut(&req.member_id) else {
            return SyncResponse::error(ResponseError::UnknownMemberId);
        };
        let Some(classic) = &member.classic else {
            return SyncResponse::error(ResponseError::UnknownMemberId);
        };
        if req.generation_id != member.member_epoch {
            return SyncResponse::error(ResponseError::IllegalGeneration);
        }
        member.session_deadline_ms = now_ms + i64::from(classic.session_timeout_ms);
        let protocol_name = classic.protocol_name();
        let names = by_name(&member.assigned, &self.subscribed_topics);
        SyncResponse {
            error: None,
            protocol_type: Some(consumer_protocol::PROTOCOL_TYPE.to_owned()),
            protocol_name: Some(protocol_name),
            assignment: consumer_protocol::encode_assignment(&names),
        }
    }

    /// Heartbeat from a classic member: REBALANCE_IN_PROGRESS while its partitions must change
    /// (it then rejoins), ILLEGAL_GENERATION for an old generation.
    pub fn classic_heartbeat(
        &mut self,
        group_id: &str,
        req: &HeartbeatRequest,
        config: &ConsumerGroupConfig,
        now_ms: i64,
        records: &mut Vec<Record>,
    ) -> Option<ResponseError> {
        // A leave or an expiry may have moved the group epoch: the target follows it here.
        self.refresh_target(group_id, config, records);
        let assignment_epoch = self.assignment_epoch;
        let Some(member) = self.members.get_mut(&req.member_id) else {
            return Some(ResponseError::UnknownMemberId);
        };
        let Some(classic) = &member.classic else {
            return Some(ResponseError::UnknownMemberId);
        };
        if req.generation_id != member.member_epoch {
            return Some(ResponseError::IllegalGeneration);
        }
        member.session_deadline_ms = now_ms + i64::from(classic.session_timeout_ms);
        let settled =
            member.member_epoch == assignment_epoch && member.state == MemberState::Stable;
        (!settled).then_some(ResponseError::RebalanceInProgress)
    }

    /// LeaveGroup of classic members: each leaves the group, which rebalances.
    pub fn classic_leave(
        &mut self,
        group_id: &str,
        leaving: &[LeavingMember],
        now_ms: i64,
        records: &mut Vec<Record>,
    ) -> Vec<Option<ResponseError>> {
        leaving
            .iter()
            .map(|l| {
                let id = match (&l.group_instance_id, l.member_id.is_empty()) {
                    (Some(instance), true) => self.static_members.get(instance).cloned(),
                    _ => Some(l.member_id.clone()),
                };
                match id.filter(|id| self.members.contains_key(id)) {
                    Some(id) => {
                        self.remove_member(group_id, &id, now_ms, records);
                        None
                    }
                    None => Some(ResponseError::UnknownMemberId),
                }
            })
            .collect()
    }
}

impl ConsumerGroup {
    /// True when every member left speaks the classic protocol (and there is one): Kafka then
    /// turns the group back into a classic group (the downgrade).
    pub fn only_classic_members(&self) -> bool {
        !self.members.is_empty() && self.members.values().all(|m| m.classic.is_some())
    }

    /// The classic group's persisted form of this group, for the downgrade: generation = the
    /// group epoch, the protocol every member supports (else the first member's first), each
    /// member with its subscription and its current partitions.
    pub fn to_classic_metadata(&self, now_ms: i64) -> GroupMetadataValue {
        let protocol = self.common_protocol();
        let members: Vec<MemberMetadataValue> = self
            .members
            .values()
            .filter_map(|m| {
                let classic = m.classic.as_ref()?;
                let subscription = classic
                    .protocols
                    .iter()
                    .find(|p| p.name == protocol)
                    .map(|p| p.metadata.clone())
                    .unwrap_or_default();
                Some(MemberMetadataValue {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout: m.rebalance_timeout_ms,
                    session_timeout: classic.session_timeout_ms,
                    subscription,
                    assignment: consumer_protocol::encode_assignment(&by_name(
                        &m.assigned,
                        &self.subscribed_topics,
                    )),
                })
            })
            .collect();
        GroupMetadataValue {
            protocol_type: consumer_protocol::PROTOCOL_TYPE.to_owned(),
            generation: self.group_epoch,
            protocol: Some(protocol),
            leader: members.first().map(|m| m.member_id.clone()),
            current_state_timestamp: now_ms,
            members,
        }
    }

    fn common_protocol(&self) -> String {
        let mut classic = self.members.values().filter_map(|m| m.classic.as_ref());
        let Some(first) = classic.next() else {
            return String::new();
        };
        let others: Vec<&ClassicMember> = classic.collect();
        first
            .protocols
            .iter()
            .map(|p| p.name.clone())
            .find(|name| {
                others
                    .iter()
                    .all(|o| o.protocols.iter().any(|p| &p.name == name))
            })
            .unwrap_or_else(|| first.protocol_name())
    }
}

/// Partitions named by topic, as ids; topics that do not exist are dropped.
fn by_id(list: &TopicPartitionList, topics: &Topics) -> Assignment {
    let mut out = Assignment::new();
    for (name, partitions) in list {
        if let Some(t) = topics.get(name) {
            out.entry(t.id)
                .or_default()
                .extend(partitions.iter().copied());
        }
    }
    out
}

/// Partitions by id, named again from the group's subscribed topics.
fn by_name(
    assignment: &Assignment,
    subscribed: &std::collections::BTreeMap<String, (Uuid, i32)>,
) -> TopicPartitionList {
    subscribed
        .iter()
        .filter_map(|(name, (id, _))| {
            assignment
                .get(id)
                .map(|ps| (name.clone(), ps.iter().copied().collect()))
        })
        .collect()
}
