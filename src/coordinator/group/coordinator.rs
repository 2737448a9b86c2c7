//! The group coordinator of one shard: every group whose id hashes to a `__consumer_offsets`
//! partition this shard owns, their committed offsets, and the records that persist them.
//!
//! Runs on the shard that owns those `__consumer_offsets` partitions; one instance per shard
//! (or per partition, if the wiring prefers to unload partitions one by one). Each call returns
//! [`Effects`]: records to append to `__consumer_offsets` first, then deliveries to send to the
//! waiting connections. The caller checks that the group belongs to this shard
//! (`records::partition_for_group`) and answers NOT_COORDINATOR otherwise.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

use super::committed::OffsetAndMetadata;
use super::config::GroupConfig;
use super::consumer::heartbeat::{
    HeartbeatRequest, HeartbeatResponse as ConsumerHeartbeatResponse,
};
use super::consumer::records::ConsumerRecord;
use super::consumer::{self, ConsumerGroup, Topics};
use super::consumer_protocol;
use super::offsets::{self, FetchedTopic, OffsetCommit, TopicErrors, TopicPartitions};
use super::records::{self, GroupMetadataValue, OffsetCommitKey, Record};
use super::share::config::ShareGroupConfig;
use super::share::{self, ShareGroup, ShareHeartbeat, ShareHeartbeatAnswer};
use super::state::{Group, GroupState};
use super::types::{
    Delivery, GroupDescription, GroupListing, HeartbeatRequest as ClassicHeartbeat, JoinRequest,
    JoinResponse, LeaveResponse, LeaveResult, LeavingMember, RequestToken, Response, SyncRequest,
    SyncResponse,
};

/// Group type reported by ListGroups v5+ for groups of the classic protocol.
pub const CLASSIC_GROUP_TYPE: &str = "classic";

/// What a coordinator call asks the wiring layer to do, in this order: append `records` to
/// the group's `__consumer_offsets` partition, then send each delivery to the connection
/// waiting on its token. (Kafka answers only after the append; if it fails, the wiring layer
/// should answer the affected requests with the append error instead.)
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Effects {
    /// Records to append to the group's `__consumer_offsets` partition, in order, before any
    /// delivery is sent.
    pub records: Vec<Record>,
    /// Responses to send once the records are appended, each to the connection waiting on its
    /// token; they may answer parked requests of other members, not only the current call.
    pub deliveries: Vec<Delivery>,
}

impl Effects {
    fn deliveries(deliveries: Vec<Delivery>) -> Self {
        Self {
            records: Vec::new(),
            deliveries,
        }
    }

    fn extend(&mut self, other: Effects) {
        self.records.extend(other.records);
        self.deliveries.extend(other.deliveries);
    }
}

/// All groups coordinated by one shard.
#[derive(Debug, Clone)]
pub struct GroupCoordinator {
    config: GroupConfig,
    groups: BTreeMap<String, Group>,
    /// Share groups (KIP-932), in the same id space: an id names a classic or consumer group
    /// or a share group, never both.
    share_groups: BTreeMap<String, ShareGroup>,
}

impl GroupCoordinator {
    /// A coordinator without groups; they come from requests and, at start-up, from
    /// [`GroupCoordinator::replay`].
    pub fn new(config: GroupConfig) -> Self {
        Self {
            config,
            groups: BTreeMap::new(),
            share_groups: BTreeMap::new(),
        }
    }

    /// The settings every group of this coordinator uses.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// The group `group_id`; `None` when this coordinator does not hold it.
    pub fn group(&self, group_id: &str) -> Option<&Group> {
        self.groups.get(group_id)
    }

    /// The share group `group_id`, if this coordinator holds it.
    pub fn share_group(&self, group_id: &str) -> Option<&ShareGroup> {
        self.share_groups.get(group_id)
    }

    /// ShareGroupHeartbeat (KIP-932), under the group's settings `config` (the broker's with
    /// the group's own configs over them). The first join creates the group; an id a classic
    /// or consumer group holds is refused with GROUP_ID_NOT_FOUND (it is not a share group).
    pub fn share_heartbeat(
        &mut self,
        group_id: &str,
        hb: &ShareHeartbeat,
        topics: &Topics,
        now_ms: i64,
        config: &ShareGroupConfig,
    ) -> Result<ShareHeartbeatAnswer, ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        if self.groups.contains_key(group_id) {
            return Err(ResponseError::GroupIdNotFound);
        }
        let full = self.share_groups.len() >= config.max_groups;
        let group = match self.share_groups.get_mut(group_id) {
            Some(group) => group,
            None if full => return Err(ResponseError::GroupMaxSizeReached),
            None if hb.member_epoch == consumer::JOIN_EPOCH => self
                .share_groups
                .entry(group_id.to_owned())
                .or_insert_with(|| ShareGroup::new(group_id)),
            None => return Err(ResponseError::UnknownMemberId),
        };
        group.heartbeat(hb, topics, now_ms, config)
    }

    /// Whether `group_id` is a share group (classic and consumer requests for it are refused).
    pub fn is_share_group(&self, group_id: &str) -> bool {
        self.share_groups.contains_key(group_id)
    }

    /// Forgets the groups `lost` picks, writing nothing: their `__consumer_offsets` partition
    /// moved to another coordinator, which loads them from the log. Returns how many.
    pub fn unload(&mut self, mut lost: impl FnMut(&str) -> bool) -> usize {
        let before = self.groups.len() + self.share_groups.len();
        self.groups.retain(|id, _| !lost(id));
        self.share_groups.retain(|id, _| !lost(id));
        before - self.groups.len() - self.share_groups.len()
    }

    /// Every group this coordinator holds, ordered by group id.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// JoinGroup. A group is created by the first join without a member id; a join naming a
    /// member of a group we do not know gets UNKNOWN_MEMBER_ID.
    pub fn join(
        &mut self,
        group_id: &str,
        req: JoinRequest,
        token: RequestToken,
        now_ms: i64,
    ) -> Effects {
        self.join_with_topics(group_id, req, token, now_ms, &Topics::default())
    }

    /// JoinGroup, with the topics that exist: a classic member of a consumer group
    /// (`consumer::classic_members`) is assigned from them by the server.
    pub fn join_with_topics(
        &mut self,
        group_id: &str,
        req: JoinRequest,
        token: RequestToken,
        now_ms: i64,
        topics: &Topics,
    ) -> Effects {
        if group_id.is_empty() {
            return join_error(token, ResponseError::InvalidGroupId, &req.member_id);
        }
        if self.share_groups.contains_key(group_id) {
            // A share group's id: classic members may not join it (Kafka: not a classic group).
            return join_error(
                token,
                ResponseError::InconsistentGroupProtocol,
                &req.member_id,
            );
        }
        let mut leftover = Vec::new();
        let config = self.config.consumer.clone();
        if let Some(group) = self.groups.get_mut(group_id)
            && let Some(consumer) = &mut group.consumer
        {
            // A consumer group with members answers classic members itself; an empty one
            // returns to the classic protocol, its consumer records deleted.
            if consumer.member_count() > 0 {
                let (response, records) =
                    consumer.classic_join(group_id, &req, topics, &config, now_ms);
                return Effects {
                    records,
                    deliveries: vec![Delivery {
                        token,
                        response: Response::Join(response),
                    }],
                };
            }
            leftover = consumer.tombstones(group_id);
            group.consumer = None;
        }
        if !self.groups.contains_key(group_id) {
            if !req.member_id.is_empty() {
                return join_error(token, ResponseError::UnknownMemberId, &req.member_id);
            }
            let group = Group::new(group_id, self.config.clone(), now_ms);
            self.groups.insert(group_id.to_owned(), group);
        }
        let mut effects = self.with_group(group_id, |g| g.join(req, token, now_ms));
        leftover.append(&mut effects.records);
        effects.records = leftover;
        effects
    }

    /// ConsumerGroupHeartbeat (KIP-848). The first join of an unknown group creates it; an
    /// empty classic group (offsets only, or no members left) becomes a consumer group; a
    /// classic group with members is refused with GROUP_ID_NOT_FOUND, as Kafka does when its
    /// migration policy forbids the upgrade.
    pub fn consumer_heartbeat(
        &mut self,
        group_id: &str,
        req: &HeartbeatRequest,
        topics: &Topics,
        now_ms: i64,
    ) -> (ConsumerHeartbeatResponse, Effects) {
        if group_id.is_empty() {
            let response = ConsumerHeartbeatResponse::error(
                ResponseError::InvalidGroupId,
                "the group id is empty",
            );
            return (response, Effects::default());
        }
        if self.share_groups.contains_key(group_id) {
            let response = ConsumerHeartbeatResponse::error(
                ResponseError::GroupIdNotFound,
                format!("group {group_id} is a share group"),
            );
            return (response, Effects::default());
        }
        let joining = req.member_epoch == consumer::JOIN_EPOCH;
        let mut records = Vec::new();
        match self.groups.get_mut(group_id) {
            None if !joining => {
                let message = format!("group {group_id} does not exist");
                return (
                    ConsumerHeartbeatResponse::error(ResponseError::UnknownMemberId, message),
                    Effects::default(),
                );
            }
            None => {
                let mut group = Group::new(group_id, self.config.clone(), now_ms);
                group.consumer = Some(ConsumerGroup::default());
                self.groups.insert(group_id.to_owned(), group);
            }
            Some(group) if group.consumer.is_none() => {
                let busy = group.has_members() || group.state() != GroupState::Empty;
                if !joining {
                    let (error, message) = if busy {
                        (
                            ResponseError::GroupIdNotFound,
                            format!("group {group_id} is a classic group with members"),
                        )
                    } else {
                        (
                            ResponseError::UnknownMemberId,
                            format!("group {group_id} has no member {}", req.member_id),
                        )
                    };
                    return (
                        ConsumerHeartbeatResponse::error(error, message),
                        Effects::default(),
                    );
                }
                let consumer = if busy {
                    // Kafka's online upgrade: the classic members stay, assigned by the server.
                    match ConsumerGroup::from_classic(group, topics, now_ms) {
                        Ok((consumer, mut converted)) => {
                            records.append(&mut converted);
                            consumer
                        }
                        Err(error) => {
                            let message =
                                format!("classic group {group_id} cannot be upgraded now: {error}");
                            return (
                                ConsumerHeartbeatResponse::error(error, message),
                                Effects::default(),
                            );
                        }
                    }
                } else {
                    if group.protocol_type().is_some() {
                        // The classic metadata goes: replay must not rebuild a classic group.
                        records.push(records::group_tombstone(group_id));
                    }
                    ConsumerGroup::default()
                };
                let offsets = group.offsets().clone();
                *group = Group::new(group_id, self.config.clone(), now_ms);
                *group.offsets_mut() = offsets;
                group.consumer = Some(consumer);
            }
            Some(_) => {}
        }
        let config = self.config.consumer.clone();
        let group = self
            .groups
            .get_mut(group_id)
            .expect("group exists or was made");
        let consumer = group.consumer.as_mut().expect("consumer group");
        let (response, mut more) = consumer.heartbeat(group_id, req, topics, &config, now_ms);
        records.append(&mut more);
        if consumer.only_classic_members() {
            let deliveries = downgrade(group, now_ms, &mut records);
            return (
                response,
                Effects {
                    records,
                    deliveries,
                },
            );
        }
        if response.error.is_some() && consumer.member_count() == 0 && consumer.group_epoch() == 0 {
            // A refused first join leaves nothing behind.
            if group.offsets().is_empty() {
                self.groups.remove(group_id);
            }
        }
        (
            response,
            Effects {
                records,
                deliveries: Vec::new(),
            },
        )
    }

    /// SyncGroup.
    pub fn sync(
        &mut self,
        group_id: &str,
        req: SyncRequest,
        token: RequestToken,
        now_ms: i64,
    ) -> Effects {
        if !self.groups.contains_key(group_id) {
            let error = if group_id.is_empty() {
                ResponseError::InvalidGroupId
            } else {
                ResponseError::UnknownMemberId
            };
            return Effects::deliveries(vec![Delivery {
                token,
                response: Response::Sync(SyncResponse::error(error)),
            }]);
        }
        if let Some(consumer) = self
            .groups
            .get_mut(group_id)
            .and_then(|g| g.consumer.as_mut())
        {
            let response = consumer.classic_sync(&req, now_ms);
            return Effects::deliveries(vec![Delivery {
                token,
                response: Response::Sync(response),
            }]);
        }
        self.with_group(group_id, |g| g.sync(req, token, now_ms))
    }

    /// Heartbeat; `None` is success. The records (a consumer group's new target after a
    /// member left) are appended before the answer.
    pub fn heartbeat(
        &mut self,
        group_id: &str,
        req: &ClassicHeartbeat,
        now_ms: i64,
    ) -> (Option<ResponseError>, Effects) {
        let config = self.config.consumer.clone();
        let mut records = Vec::new();
        let error = match self.groups.get_mut(group_id) {
            Some(group) => match group.consumer.as_mut() {
                Some(consumer) => {
                    consumer.classic_heartbeat(group_id, req, &config, now_ms, &mut records)
                }
                None => group.heartbeat(req, now_ms),
            },
            None if group_id.is_empty() => Some(ResponseError::InvalidGroupId),
            None => Some(ResponseError::UnknownMemberId),
        };
        (
            error,
            Effects {
                records,
                deliveries: Vec::new(),
            },
        )
    }

    /// LeaveGroup for a batch of members.
    pub fn leave(
        &mut self,
        group_id: &str,
        leaving: &[LeavingMember],
        now_ms: i64,
    ) -> (LeaveResponse, Effects) {
        if !self.groups.contains_key(group_id) {
            let members = leaving
                .iter()
                .map(|m| LeaveResult {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    error: Some(ResponseError::UnknownMemberId),
                })
                .collect();
            return (
                LeaveResponse {
                    error: None,
                    members,
                },
                Effects::default(),
            );
        }
        if let Some(consumer) = self
            .groups
            .get_mut(group_id)
            .and_then(|g| g.consumer.as_mut())
        {
            let mut records = Vec::new();
            let errors = consumer.classic_leave(group_id, leaving, now_ms, &mut records);
            let members = leaving
                .iter()
                .zip(errors)
                .map(|(m, error)| LeaveResult {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.group_instance_id.clone(),
                    error,
                })
                .collect();
            let response = LeaveResponse {
                error: None,
                members,
            };
            let effects = Effects {
                records,
                deliveries: Vec::new(),
            };
            return (response, effects);
        }
        let mut response = None;
        let effects = self.with_group(group_id, |g| {
            let (r, deliveries) = g.leave(leaving, now_ms);
            response = Some(r);
            deliveries
        });
        // `with_group` ran the closure because the group exists (checked above).
        let response = response.unwrap_or(LeaveResponse {
            error: Some(ResponseError::CoordinatorNotAvailable),
            members: Vec::new(),
        });
        (response, effects)
    }

    /// OffsetCommit. A commit outside group management (generation < 0) creates an Empty
    /// group to hold the offsets; a commit naming a generation of an unknown group is refused
    /// with ILLEGAL_GENERATION, as in Kafka.
    pub fn commit_offsets(
        &mut self,
        group_id: &str,
        req: &OffsetCommit,
        now_ms: i64,
    ) -> (Vec<TopicErrors>, Effects) {
        if !self.groups.contains_key(group_id) {
            if req.generation_id >= 0 {
                let errors = offsets::uniform_errors(&req.topics, ResponseError::IllegalGeneration);
                return (errors, Effects::default());
            }
            let group = Group::new(group_id, self.config.clone(), now_ms);
            self.groups.insert(group_id.to_owned(), group);
        }
        let max = self.config.offset_metadata_max_bytes;
        let mut results = Vec::new();
        let mut records = Vec::new();
        let effects = self.with_group(group_id, |g| {
            let (r, recs) = offsets::commit(g, req, now_ms, max);
            results = r;
            records = recs;
            Vec::new()
        });
        let mut all = Effects {
            records,
            deliveries: Vec::new(),
        };
        all.extend(effects);
        self.drop_if_unused(group_id);
        (results, all)
    }

    /// OffsetFetch for one group (multi-group requests call this per group).
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<&[TopicPartitions]>,
    ) -> Vec<FetchedTopic> {
        offsets::fetch(self.groups.get(group_id), topics)
    }

    /// OffsetDelete: a group-level error, or per-partition results.
    pub fn delete_offsets(
        &mut self,
        group_id: &str,
        topics: &[TopicPartitions],
    ) -> (Result<Vec<TopicErrors>, ResponseError>, Effects) {
        let Some(group) = self.groups.get_mut(group_id) else {
            return (Err(ResponseError::GroupIdNotFound), Effects::default());
        };
        match offsets::delete(group, topics) {
            Ok((results, records)) => (
                Ok(results),
                Effects {
                    records,
                    deliveries: Vec::new(),
                },
            ),
            Err(error) => (Err(error), Effects::default()),
        }
    }

    /// DeleteGroups: only groups without members can go; their offsets and metadata are
    /// tombstoned.
    pub fn delete_groups(
        &mut self,
        group_ids: &[String],
        now_ms: i64,
    ) -> (Vec<(String, Option<ResponseError>)>, Effects) {
        let mut effects = Effects::default();
        let results = group_ids
            .iter()
            .map(|id| {
                if let Some(share_group) = self.share_groups.get(id) {
                    let error = match share_group.members.is_empty() {
                        true => None,
                        false => Some(ResponseError::NonEmptyGroup),
                    };
                    if error.is_none() {
                        self.share_groups.remove(id);
                    }
                    return (id.clone(), error);
                }
                let group = self.groups.get(id);
                let error = match group.map(Group::state) {
                    None | Some(GroupState::Dead) => Some(ResponseError::GroupIdNotFound),
                    _ if group.is_some_and(Group::has_members) => {
                        Some(ResponseError::NonEmptyGroup)
                    }
                    Some(GroupState::Empty) => {
                        effects.extend(self.remove_group(id, now_ms));
                        None
                    }
                    Some(_) => Some(ResponseError::NonEmptyGroup),
                };
                (id.clone(), error)
            })
            .collect();
        (results, effects)
    }

    /// DescribeGroups data; an unknown group is reported Dead with no members, as Kafka does
    /// up to DescribeGroups v5 (v6+ adds GROUP_ID_NOT_FOUND in the wiring layer).
    pub fn describe_group(&self, group_id: &str) -> GroupDescription {
        match self.groups.get(group_id) {
            Some(group) => match group.consumer() {
                Some(consumer) => consumer.describe_classic(group_id),
                None => group.describe(),
            },
            None => GroupDescription {
                group_id: group_id.to_owned(),
                state: GroupState::Dead.as_str(),
                protocol_type: String::new(),
                protocol_data: String::new(),
                members: Vec::new(),
            },
        }
    }

    /// ListGroups. Filters are Kafka's: empty means all; states compare case-insensitively
    /// (v4+); types (v5+) match "classic", the only type this coordinator runs.
    pub fn list_groups(
        &self,
        states_filter: &[String],
        types_filter: &[String],
    ) -> Vec<GroupListing> {
        let type_ok = |t: &str| {
            types_filter.is_empty() || types_filter.iter().any(|f| f.eq_ignore_ascii_case(t))
        };
        let state_ok = |s: &str| {
            states_filter.is_empty() || states_filter.iter().any(|f| f.eq_ignore_ascii_case(s))
        };
        self.groups
            .values()
            .filter(|g| g.state() != GroupState::Dead)
            .map(|g| match g.consumer() {
                Some(c) => GroupListing {
                    group_id: g.group_id().to_owned(),
                    protocol_type: consumer_protocol::PROTOCOL_TYPE.to_owned(),
                    state: c.state().as_str(),
                    group_type: consumer::CONSUMER_GROUP_TYPE,
                },
                None => GroupListing {
                    group_id: g.group_id().to_owned(),
                    protocol_type: g.protocol_type().unwrap_or_default().to_owned(),
                    state: g.state().as_str(),
                    group_type: CLASSIC_GROUP_TYPE,
                },
            })
            .chain(self.share_groups.values().map(|g| GroupListing {
                group_id: g.group_id.clone(),
                protocol_type: share::SHARE_GROUP_TYPE.to_owned(),
                state: g.state(),
                group_type: share::SHARE_GROUP_TYPE,
            }))
            .filter(|l| type_ok(l.group_type) && state_ok(l.state))
            .collect()
    }

    /// Earliest time a group timer is due; call [`GroupCoordinator::tick`] then.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        let shares = self
            .share_groups
            .values()
            .filter_map(ShareGroup::next_deadline_ms);
        self.groups
            .values()
            .filter_map(deadline_of)
            .chain(shares)
            .min()
    }

    /// Fires all group timers due at `now_ms`.
    pub fn tick(&mut self, now_ms: i64) -> Effects {
        let due: Vec<String> = self
            .groups
            .values()
            .filter(|g| deadline_of(g).is_some_and(|d| d <= now_ms))
            .map(|g| g.group_id().to_owned())
            .collect();
        for share_group in self.share_groups.values_mut() {
            share_group.expire(now_ms);
        }
        let mut effects = Effects::default();
        for group_id in due {
            effects.extend(self.with_group(&group_id, |g| g.tick(now_ms)));
            if let Some(group) = self.groups.get_mut(&group_id)
                && let Some(consumer) = group.consumer.as_mut()
            {
                effects.records.extend(consumer.tick(&group_id, now_ms));
                if consumer.only_classic_members() {
                    let deliveries = downgrade(group, now_ms, &mut effects.records);
                    effects.deliveries.extend(deliveries);
                }
            }
        }
        effects
    }

    /// Offset retention: expires offsets per `offsets.retention.minutes`, then removes groups
    /// left Empty with no offsets (tombstoning their metadata). Kafka runs this every
    /// `offsets.retention.check.interval.ms` (default 10 minutes); so should the caller.
    pub fn expire_offsets(&mut self, now_ms: i64) -> Effects {
        let retention_ms = self.config.offsets_retention_ms;
        let mut effects = Effects::default();
        let ids: Vec<String> = self.groups.keys().cloned().collect();
        for id in ids {
            let Some(group) = self.groups.get_mut(&id) else {
                continue;
            };
            effects
                .records
                .extend(offsets::expire(group, now_ms, retention_ms));
            if group.state() == GroupState::Empty
                && !group.has_members()
                && group.offsets().is_empty()
            {
                effects.extend(self.remove_group(&id, now_ms));
            }
        }
        effects
    }

    /// Runs `f` on an existing group and collects the metadata record it may have dirtied.
    fn with_group(
        &mut self,
        group_id: &str,
        f: impl FnOnce(&mut Group) -> Vec<Delivery>,
    ) -> Effects {
        let Some(group) = self.groups.get_mut(group_id) else {
            return Effects::default();
        };
        let deliveries = f(group);
        let mut records = Vec::new();
        if group.take_metadata_dirty() {
            records.push(records::group_metadata_record(
                group_id,
                &group.to_metadata_value(),
            ));
        }
        Effects {
            records,
            deliveries,
        }
    }

    /// Kills a group and tombstones its offsets and metadata.
    fn remove_group(&mut self, group_id: &str, now_ms: i64) -> Effects {
        let Some(mut group) = self.groups.remove(group_id) else {
            return Effects::default();
        };
        let deliveries = group.mark_dead(now_ms);
        let mut records: Vec<Record> = group
            .consumer()
            .map(|c| c.tombstones(group_id))
            .unwrap_or_default();
        records.extend(
            group
                .offsets()
                .iter()
                .map(|(t, p, _)| records::offset_tombstone(group_id, t, p)),
        );
        records.push(records::group_tombstone(group_id));
        Effects {
            records,
            deliveries,
        }
    }

    /// A group created for a refused anonymous commit should not linger.
    fn drop_if_unused(&mut self, group_id: &str) {
        let unused = self.groups.get(group_id).is_some_and(|g| {
            g.state() == GroupState::Empty
                && g.consumer().is_none()
                && g.generation_id() == 0
                && g.protocol_type().is_none()
                && g.offsets().is_empty()
        });
        if unused {
            self.groups.remove(group_id);
        }
    }

    // ----- load from __consumer_offsets -----

    /// Applies one `__consumer_offsets` record (in log order) to the coordinator being loaded.
    /// Later records win, as after compaction; tombstones delete.
    pub fn replay(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
        now_ms: i64,
    ) -> Result<(), records::RecordError> {
        match records::decode_record(key, value)? {
            records::DecodedRecord::Offset { key, value } => {
                self.apply_offset_record(key, value, now_ms)
            }
            records::DecodedRecord::Group { key, value } => {
                self.apply_group_record(&key.group, value, now_ms)
            }
            records::DecodedRecord::Consumer(record) => self.apply_consumer_record(record, now_ms),
        }
        Ok(())
    }

    pub(crate) fn apply_offset_record(
        &mut self,
        key: OffsetCommitKey,
        value: Option<records::OffsetCommitValue>,
        now_ms: i64,
    ) {
        match value {
            Some(value) => {
                let config = self.config.clone();
                let group = self
                    .groups
                    .entry(key.group.clone())
                    .or_insert_with(|| Group::new(&key.group, config, now_ms));
                group.offsets_mut().insert(
                    &key.topic,
                    key.partition,
                    OffsetAndMetadata::from_value(&value),
                );
            }
            None => {
                if let Some(group) = self.groups.get_mut(&key.group) {
                    group.offsets_mut().remove(&key.topic, key.partition);
                }
                self.drop_if_unused(&key.group);
            }
        }
    }

    pub(crate) fn apply_consumer_record(&mut self, record: ConsumerRecord, now_ms: i64) {
        let group_id = record.group().to_owned();
        let config = self.config.clone();
        let group = self
            .groups
            .entry(group_id.clone())
            .or_insert_with(|| Group::new(&group_id, config, now_ms));
        let session_timeout_ms = self.config.consumer.session_timeout_ms;
        let consumer = group.consumer.get_or_insert_with(ConsumerGroup::default);
        if !consumer.apply(record, session_timeout_ms, now_ms) {
            group.consumer = None;
            self.drop_if_unused(&group_id);
        } else if consumer.assignor.is_empty() {
            // The assignor is not in the records: it is the default until the next target.
            consumer.assignor = self
                .config
                .consumer
                .assignors
                .first()
                .cloned()
                .unwrap_or_default();
        }
    }

    pub(crate) fn apply_group_record(
        &mut self,
        group_id: &str,
        value: Option<GroupMetadataValue>,
        now_ms: i64,
    ) {
        let offsets = self
            .groups
            .remove(group_id)
            .map(|g| g.offsets().clone())
            .unwrap_or_default();
        let group = match value {
            Some(value) => {
                Group::from_metadata_value(group_id, &value, offsets, self.config.clone(), now_ms)
            }
            // The group was deleted; offsets written after the tombstone still form a group.
            None if !offsets.is_empty() => {
                let mut group = Group::new(group_id, self.config.clone(), now_ms);
                *group.offsets_mut() = offsets;
                group
            }
            None => return,
        };
        self.groups.insert(group_id.to_owned(), group);
    }
}

/// Kafka's downgrade: a consumer group whose members all speak the classic protocol becomes
/// a classic group again (same members, generation = group epoch, current partitions as their
/// assignments), its consumer records tombstoned, and rebalances so the leader assigns.
fn downgrade(group: &mut Group, now_ms: i64, records: &mut Vec<Record>) -> Vec<Delivery> {
    let Some(consumer) = group.consumer.take() else {
        return Vec::new();
    };
    let group_id = group.group_id().to_owned();
    let value = consumer.to_classic_metadata(now_ms);
    records.extend(consumer.tombstones(&group_id));
    let offsets = group.offsets().clone();
    let config = group.config().clone();
    *group = Group::from_metadata_value(&group_id, &value, offsets, config, now_ms);
    tracing::info!(group = %group_id, members = value.members.len(), "consumer group downgraded to classic");
    let deliveries = group.rebalance_now(now_ms);
    records.push(records::group_metadata_record(
        &group_id,
        &group.to_metadata_value(),
    ));
    deliveries
}

/// Earliest timer of a group, of either protocol.
fn deadline_of(group: &Group) -> Option<i64> {
    let consumer = group.consumer().and_then(ConsumerGroup::next_deadline_ms);
    group.next_deadline_ms().into_iter().chain(consumer).min()
}

fn join_error(token: RequestToken, error: ResponseError, member_id: &str) -> Effects {
    Effects::deliveries(vec![Delivery {
        token,
        response: Response::Join(JoinResponse::error(error, member_id)),
    }])
}
