//! Conversions between `kafka-protocol`'s ShareGroupHeartbeat and ShareGroupDescribe structs
//! (v1) and the share group's own types, so the membership logic never sees wire versions.
//!
//! Runs on the shard serving the request.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::share_group_describe_response::{
    Assignment as DescribedAssignment, DescribedGroup, Member, TopicPartitions as DescribedTopic,
};
use kafka_protocol::messages::share_group_heartbeat_response::{
    Assignment as WireAssignment, TopicPartitions as WireTopic,
};
use kafka_protocol::messages::{
    GroupId, ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{ShareGroup, ShareHeartbeat, ShareHeartbeatAnswer};
use crate::coordinator::group::consumer::{Assignment, Topics};

/// The assignor a share group reports.
pub const ASSIGNOR_NAME: &str = "simple";

fn wire(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// The request as the membership logic takes it, with the group id.
pub fn heartbeat_request(
    request: &ShareGroupHeartbeatRequest,
    client_id: &str,
    client_host: &str,
) -> (String, ShareHeartbeat) {
    let hb = ShareHeartbeat {
        member_id: request.member_id.as_str().to_owned(),
        member_epoch: request.member_epoch,
        rack: request.rack_id.as_ref().map(|r| r.as_str().to_owned()),
        subscribed: request
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|n| n.0.as_str().to_owned()).collect()),
        client_id: client_id.to_owned(),
        client_host: client_host.to_owned(),
    };
    (request.group_id.0.as_str().to_owned(), hb)
}

/// The wire answer.
pub fn heartbeat_response(answer: &ShareHeartbeatAnswer) -> ShareGroupHeartbeatResponse {
    let mut out = ShareGroupHeartbeatResponse::default();
    out.member_id = Some(wire(&answer.member_id));
    out.member_epoch = answer.member_epoch;
    out.heartbeat_interval_ms = answer.heartbeat_interval_ms;
    out.assignment = answer.assignment.as_ref().map(|a| {
        let mut assignment = WireAssignment::default();
        assignment.topic_partitions = a
            .iter()
            .map(|(id, partitions)| {
                let mut t = WireTopic::default();
                t.topic_id = *id;
                t.partitions = partitions.iter().copied().collect();
                t
            })
            .collect();
        assignment
    });
    out
}

/// A refused heartbeat.
pub fn heartbeat_error(error: ResponseError) -> ShareGroupHeartbeatResponse {
    let mut out = ShareGroupHeartbeatResponse::default();
    out.error_code = error.code();
    out.error_message = Some(wire(&error.to_string()));
    out.member_epoch = -1;
    out
}

/// A described share group.
pub fn described_group(group: &ShareGroup, topics: &Topics) -> DescribedGroup {
    let mut out = DescribedGroup::default();
    out.group_id = GroupId(wire(&group.group_id));
    out.group_state = wire(group.state());
    out.group_epoch = group.group_epoch;
    out.assignment_epoch = group.group_epoch;
    out.assignor_name = wire(ASSIGNOR_NAME);
    out.authorized_operations = i32::MIN;
    out.members = group
        .members
        .values()
        .map(|m| {
            let mut member = Member::default();
            member.member_id = wire(&m.member_id);
            member.rack_id = m.rack.as_deref().map(wire);
            member.member_epoch = m.epoch;
            member.client_id = wire(&m.client_id);
            member.client_host = wire(&m.client_host);
            member.subscribed_topic_names =
                m.subscribed.iter().map(|t| TopicName(wire(t))).collect();
            member.assignment = described_assignment(&m.assignment, topics);
            member
        })
        .collect();
    out
}

fn described_assignment(assignment: &Assignment, topics: &Topics) -> DescribedAssignment {
    let mut out = DescribedAssignment::default();
    out.topic_partitions = assignment
        .iter()
        .map(|(id, partitions)| {
            let mut t = DescribedTopic::default();
            t.topic_id = *id;
            t.topic_name = TopicName(wire(topics.name_of(*id).unwrap_or_default()));
            t.partitions = partitions.iter().copied().collect();
            t
        })
        .collect();
    out
}

/// A group that cannot be described.
pub fn described_error(group_id: &str, error: ResponseError) -> DescribedGroup {
    let mut out = DescribedGroup::default();
    out.group_id = GroupId(wire(group_id));
    out.error_code = error.code();
    out.error_message = Some(wire(&error.to_string()));
    out.authorized_operations = i32::MIN;
    out
}
