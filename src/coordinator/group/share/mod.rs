//! Share groups' membership (KIP-932): members join, heartbeat and leave with
//! ShareGroupHeartbeat, and the coordinator assigns them partitions itself. Unlike a consumer
//! group, a partition may go to several members at once (the records, not the partitions,
//! are what members hold), so an assignment changes at once, with no revocation step: each
//! change bumps the group epoch and every member takes it at its next heartbeat.
//!
//! Runs on the shard that owns the group's `__consumer_offsets` partition, as plain state,
//! time passed in. Membership is kept in memory: after a restart members get
//! UNKNOWN_MEMBER_ID and join again, and the records they held come back when their locks
//! run out (the record states themselves are durable, on the partitions' shards).

pub mod assignor;
pub mod config;
pub mod wire;

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;

use super::consumer::{Assignment, JOIN_EPOCH, LEAVE_EPOCH, Topics};
use config::ShareGroupConfig;

/// ListGroups' type and protocol type of a share group.
pub const SHARE_GROUP_TYPE: &str = "share";

/// One member of a share group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareMember {
    /// The member id the client chose (or the coordinator gave it).
    pub member_id: String,
    /// The group epoch of the assignment it was last sent.
    pub epoch: i32,
    /// `client.id` of its connection.
    pub client_id: String,
    /// Host of its connection.
    pub client_host: String,
    /// `client.rack`, if set.
    pub rack: Option<String>,
    /// The topics it subscribed to.
    pub subscribed: BTreeSet<String>,
    /// The partitions it reads.
    pub assignment: Assignment,
    /// It leaves when no heartbeat comes by then.
    pub session_deadline_ms: i64,
}

/// One share group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareGroup {
    /// The group id.
    pub group_id: String,
    /// Bumped by every membership, subscription or topic change.
    pub group_epoch: i32,
    /// The members, by id.
    pub members: BTreeMap<String, ShareMember>,
    /// The subscribed topics (id and partition count) the assignment was computed from, so a
    /// topic created, deleted or grown later changes it.
    seen_topics: BTreeMap<String, (uuid::Uuid, i32)>,
}

/// A ShareGroupHeartbeat, free of wire versions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareHeartbeat {
    /// Member id (v1: chosen by the client).
    pub member_id: String,
    /// 0 to join, -1 to leave, else the epoch it was last given.
    pub member_epoch: i32,
    /// `client.rack`.
    pub rack: Option<String>,
    /// The subscription, when it is sent (on join and when it changes).
    pub subscribed: Option<Vec<String>>,
    /// `client.id` of the connection.
    pub client_id: String,
    /// Host of the connection.
    pub client_host: String,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareHeartbeatAnswer {
    /// The member id.
    pub member_id: String,
    /// Its epoch now (-1 after leaving).
    pub member_epoch: i32,
    /// How often to heartbeat.
    pub heartbeat_interval_ms: i32,
    /// The member's partitions, sent when the member has not seen them yet.
    pub assignment: Option<Assignment>,
}

impl ShareGroup {
    /// A group with no member yet.
    pub fn new(group_id: &str) -> Self {
        Self {
            group_id: group_id.to_owned(),
            group_epoch: 0,
            members: BTreeMap::new(),
            seen_topics: BTreeMap::new(),
        }
    }

    /// Kafka's ShareGroupState: Empty or Stable.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else {
            "Stable"
        }
    }

    /// Every topic some member subscribed to.
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| m.subscribed.iter().cloned())
            .collect()
    }

    /// One heartbeat: join, stay, or leave.
    pub fn heartbeat(
        &mut self,
        hb: &ShareHeartbeat,
        topics: &Topics,
        now_ms: i64,
        config: &ShareGroupConfig,
    ) -> Result<ShareHeartbeatAnswer, ResponseError> {
        if hb.member_epoch == LEAVE_EPOCH {
            if self.members.remove(&hb.member_id).is_some() {
                self.reassign(topics);
            }
            return Ok(ShareHeartbeatAnswer {
                member_id: hb.member_id.clone(),
                member_epoch: LEAVE_EPOCH,
                heartbeat_interval_ms: config.heartbeat_interval_ms,
                assignment: None,
            });
        }
        let mut changed = false;
        if hb.member_epoch == JOIN_EPOCH {
            changed |= self.join(hb, config)?;
        } else {
            let member = self
                .members
                .get(&hb.member_id)
                .ok_or(ResponseError::UnknownMemberId)?;
            if hb.member_epoch > self.group_epoch || hb.member_epoch < member.epoch.min(1) {
                return Err(ResponseError::FencedMemberEpoch);
            }
        }
        let member = self
            .members
            .get_mut(&hb.member_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        member.session_deadline_ms = now_ms.saturating_add(i64::from(config.session_timeout_ms));
        if let Some(topics) = &hb.subscribed {
            let wanted: BTreeSet<String> = topics.iter().cloned().collect();
            if wanted != member.subscribed {
                member.subscribed = wanted;
                changed = true;
            }
        }
        if changed || self.topics_moved(topics) {
            self.reassign(topics);
        }
        let member = self
            .members
            .get_mut(&hb.member_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        let assignment = (hb.member_epoch != member.epoch || hb.member_epoch == JOIN_EPOCH)
            .then(|| member.assignment.clone());
        Ok(ShareHeartbeatAnswer {
            member_id: member.member_id.clone(),
            member_epoch: member.epoch,
            heartbeat_interval_ms: config.heartbeat_interval_ms,
            assignment,
        })
    }

    fn join(
        &mut self,
        hb: &ShareHeartbeat,
        config: &ShareGroupConfig,
    ) -> Result<bool, ResponseError> {
        if hb.member_id.is_empty() || hb.subscribed.as_ref().is_none_or(Vec::is_empty) {
            return Err(ResponseError::InvalidRequest);
        }
        if self.members.contains_key(&hb.member_id) {
            // A rejoin (after a fence, or a lost response): it gets its place back.
            return Ok(false);
        }
        if self.members.len() >= config.max_size {
            return Err(ResponseError::GroupMaxSizeReached);
        }
        self.members.insert(
            hb.member_id.clone(),
            ShareMember {
                member_id: hb.member_id.clone(),
                epoch: 0,
                client_id: hb.client_id.clone(),
                client_host: hb.client_host.clone(),
                rack: hb.rack.clone(),
                subscribed: BTreeSet::new(),
                assignment: Assignment::new(),
                session_deadline_ms: 0,
            },
        );
        Ok(true)
    }

    /// The subscribed topics as they exist now differ from those of the last assignment.
    fn topics_moved(&self, topics: &Topics) -> bool {
        self.current_topics(topics) != self.seen_topics
    }

    fn current_topics(&self, topics: &Topics) -> BTreeMap<String, (uuid::Uuid, i32)> {
        self.subscribed_topics()
            .into_iter()
            .filter_map(|name| topics.get(&name).map(|t| (name, (t.id, t.partitions))))
            .collect()
    }

    /// A new group epoch and every member's partitions for it.
    fn reassign(&mut self, topics: &Topics) {
        self.group_epoch += 1;
        self.seen_topics = self.current_topics(topics);
        let subscriptions: BTreeMap<&str, &BTreeSet<String>> = self
            .members
            .values()
            .map(|m| (m.member_id.as_str(), &m.subscribed))
            .collect();
        let mut assigned = assignor::assign(&subscriptions, topics);
        for member in self.members.values_mut() {
            member.assignment = assigned.remove(&member.member_id).unwrap_or_default();
            member.epoch = self.group_epoch;
        }
    }

    /// Earliest session deadline.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.members.values().map(|m| m.session_deadline_ms).min()
    }

    /// Removes members whose session ran out. Returns how many.
    pub fn expire(&mut self, now_ms: i64) -> usize {
        let before = self.members.len();
        self.members.retain(|_, m| m.session_deadline_ms > now_ms);
        let gone = before - self.members.len();
        if gone > 0 {
            // The next heartbeat sees the topics moved and reassigns with the topics as
            // they are then (the timer has no topic view).
            self.seen_topics.clear();
            self.seen_topics
                .insert(String::new(), (uuid::Uuid::nil(), -1));
        }
        gone
    }
}

#[cfg(test)]
mod tests;
