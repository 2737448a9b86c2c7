//! Conversions between `kafka-protocol`'s ConsumerGroupHeartbeat and ConsumerGroupDescribe
//! structs (v0-v1) and the consumer group's own types, so the state machine never sees wire
//! versions.
//!
//! Runs on the shard serving the request.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as DescribedAssignment, DescribedGroup, Member, TopicPartitions as DescribedTopic,
};
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as WireAssignment, TopicPartitions as WireTopic,
};
use kafka_protocol::messages::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, GroupId, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::heartbeat::{HeartbeatRequest, HeartbeatResponse};
use super::{Assignment, ConsumerGroup, Topics};

fn text(s: &StrBytes) -> String {
    s.as_str().to_owned()
}

fn wire(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// The request as the state machine takes it.
pub fn heartbeat_request(
    request: &ConsumerGroupHeartbeatRequest,
    client_id: &str,
    client_host: &str,
) -> (String, HeartbeatRequest) {
    let owned = request.topic_partitions.as_ref().map(|topics| {
        let mut out = Assignment::new();
        for t in topics {
            out.entry(t.topic_id)
                .or_default()
                .extend(t.partitions.iter().copied());
        }
        out
    });
    let req = HeartbeatRequest {
        member_id: text(&request.member_id),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.as_ref().map(text),
        rack_id: request.rack_id.as_ref().map(text),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        subscribed_topic_names: request
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|n| text(&n.0)).collect()),
        subscribed_topic_regex: request.subscribed_topic_regex.as_ref().map(text),
        server_assignor: request.server_assignor.as_ref().map(text),
        owned,
        client_id: client_id.to_owned(),
        client_host: client_host.to_owned(),
    };
    (text(&request.group_id.0), req)
}

/// The wire response.
pub fn heartbeat_response(response: &HeartbeatResponse) -> ConsumerGroupHeartbeatResponse {
    let mut out = ConsumerGroupHeartbeatResponse::default();
    out.error_code = response.error.map_or(0, |e| e.code());
    out.error_message = response.error_message.as_deref().map(wire);
    out.member_id = Some(wire(&response.member_id)).filter(|_| !response.member_id.is_empty());
    out.member_epoch = response.member_epoch;
    out.heartbeat_interval_ms = response.heartbeat_interval_ms;
    out.assignment = response.assignment.as_ref().map(|a| {
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

/// An error answer.
pub fn heartbeat_error(error: ResponseError) -> ConsumerGroupHeartbeatResponse {
    heartbeat_response(&HeartbeatResponse::error(error, error.to_string()))
}

fn described_assignment(a: &Assignment, topics: &Topics) -> DescribedAssignment {
    let mut out = DescribedAssignment::default();
    out.topic_partitions = a
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

/// One group of a ConsumerGroupDescribe answer.
pub fn described_group(group_id: &str, group: &ConsumerGroup, topics: &Topics) -> DescribedGroup {
    let mut out = DescribedGroup::default();
    out.group_id = GroupId(wire(group_id));
    out.group_state = wire(group.state().as_str());
    out.group_epoch = group.group_epoch();
    out.assignment_epoch = group.assignment_epoch();
    out.assignor_name = wire(group.assignor());
    out.authorized_operations = i32::MIN;
    out.members = group
        .members()
        .map(|m| {
            let mut member = Member::default();
            member.member_id = wire(&m.member_id);
            member.instance_id = m.instance_id.as_deref().map(wire);
            member.rack_id = m.rack_id.as_deref().map(wire);
            member.member_epoch = m.member_epoch;
            member.client_id = wire(&m.client_id);
            member.client_host = wire(&m.client_host);
            member.subscribed_topic_names = m
                .subscribed_topic_names
                .iter()
                .map(|n| TopicName(wire(n)))
                .collect();
            member.subscribed_topic_regex = m.subscribed_topic_regex.as_deref().map(wire);
            member.assignment = described_assignment(&m.assigned, topics);
            member.target_assignment = described_assignment(&group.target_of(&m.member_id), topics);
            // v1: 1 = consumer protocol member (0 would be a classic member of a migrated group).
            member.member_type = 1;
            member
        })
        .collect();
    out
}

/// A ConsumerGroupDescribe entry for a group that is not a consumer group.
pub fn described_error(group_id: &str, error: ResponseError, message: String) -> DescribedGroup {
    let mut out = DescribedGroup::default();
    out.group_id = GroupId(wire(group_id));
    out.error_code = error.code();
    out.error_message = Some(wire(&message));
    out.authorized_operations = i32::MIN;
    out
}
