//! Rebuilding a consumer group from its `__consumer_offsets` records at load time (start-up,
//! or a coordinator move in a cluster). Later records win; tombstones delete. Every member
//! gets a fresh session, as classic members do, so members that died with the old coordinator
//! expire and the group rebalances.
//!
//! Runs on the shard that loads the `__consumer_offsets` partition.

use super::classic_members::ClassicMember;
use super::records::{ConsumerRecord, CurrentAssignment, MemberMetadata};
use super::{ConsumerGroup, ConsumerMember, MemberState};
use crate::coordinator::group::types::Protocol;

impl ConsumerGroup {
    /// Applies one record about this group. Returns false when the record deleted the group
    /// (its epoch tombstone), so the caller drops the consumer state.
    pub fn apply(&mut self, record: ConsumerRecord, session_timeout_ms: i32, now_ms: i64) -> bool {
        self.topics_unresolved = true;
        let deadline = now_ms + i64::from(session_timeout_ms);
        match record {
            ConsumerRecord::GroupEpoch { epoch: None, .. } => return false,
            ConsumerRecord::GroupEpoch { epoch: Some(e), .. } => self.group_epoch = e,
            ConsumerRecord::TargetEpoch { epoch, .. } => self.assignment_epoch = epoch.unwrap_or(0),
            ConsumerRecord::Member {
                member_id, value, ..
            } => match value {
                Some(meta) => self.apply_member(&member_id, meta, deadline, session_timeout_ms),
                None => self.forget_member(&member_id, now_ms),
            },
            ConsumerRecord::Target {
                member_id, value, ..
            } => match value {
                Some(target) => {
                    self.target.insert(member_id, target);
                }
                None => {
                    self.target.remove(&member_id);
                }
            },
            ConsumerRecord::Current {
                member_id, value, ..
            } => {
                if let Some(current) = value {
                    self.apply_current(&member_id, current, deadline, now_ms);
                }
            }
            ConsumerRecord::Ignored { .. } => {}
        }
        true
    }

    fn member_entry(&mut self, member_id: &str, deadline: i64) -> &mut ConsumerMember {
        self.members
            .entry(member_id.to_owned())
            .or_insert_with(|| ConsumerMember::new(member_id, deadline))
    }

    fn apply_member(
        &mut self,
        member_id: &str,
        meta: MemberMetadata,
        deadline: i64,
        session_timeout_ms: i32,
    ) {
        if let Some(instance) = &meta.instance_id {
            self.static_members
                .insert(instance.clone(), member_id.to_owned());
        }
        let m = self.member_entry(member_id, deadline);
        m.instance_id = meta.instance_id;
        m.rack_id = meta.rack_id;
        m.client_id = meta.client_id;
        m.client_host = meta.client_host;
        m.subscribed_topic_names = meta.subscribed_topic_names;
        m.subscribed_topic_regex = meta.subscribed_topic_regex;
        m.rebalance_timeout_ms = meta.rebalance_timeout_ms;
        m.server_assignor = meta.server_assignor;
        // A classic member's own session timeout is not in the record: it gets the consumer
        // protocol's until its next JoinGroup states its own.
        m.classic = meta.classic_protocols.map(|protocols| ClassicMember {
            protocols: protocols
                .into_iter()
                .map(|(name, metadata)| Protocol { name, metadata })
                .collect(),
            session_timeout_ms,
        });
    }

    fn apply_current(
        &mut self,
        member_id: &str,
        current: CurrentAssignment,
        deadline: i64,
        now_ms: i64,
    ) {
        let m = self.member_entry(member_id, deadline);
        m.member_epoch = current.member_epoch;
        m.previous_member_epoch = current.previous_member_epoch;
        m.state = MemberState::from_byte(current.state);
        m.assigned = current.assigned;
        m.pending_revocation = current.pending_revocation;
        // A revocation in progress gets a fresh deadline, like the session.
        m.revocation_deadline_ms = (m.state == MemberState::UnrevokedPartitions)
            .then_some(now_ms + i64::from(m.rebalance_timeout_ms.max(0)));
    }

    fn forget_member(&mut self, member_id: &str, now_ms: i64) {
        if let Some(m) = self.members.remove(member_id)
            && let Some(instance) = m.instance_id
            && self.static_members.get(&instance).map(String::as_str) == Some(member_id)
        {
            self.static_members.remove(&instance);
        }
        if self.members.is_empty() {
            self.empty_since_ms = now_ms;
        }
    }
}
