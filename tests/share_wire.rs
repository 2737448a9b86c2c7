//! Share groups (KIP-932) at the wire level, against a two-shard broker, with requests built
//! by the `kafka-protocol` crate: the share session rules (epochs, acknowledgements need a
//! session, only the holder may acknowledge), and the admin APIs no client in the reachable
//! registries calls yet (confluent-kafka 2.16 has no share admin methods):
//! DescribeShareGroupOffsets, AlterShareGroupOffsets (refused while the group has members,
//! applied on both partitions' shards, one through the mailbox), DeleteShareGroupOffsets and
//! DeleteGroups of a share group after a restart.

mod broker_common;
mod common;

use common::call;
use kafka_protocol::messages::alter_share_group_offsets_request::{
    AlterShareGroupOffsetsRequestPartition, AlterShareGroupOffsetsRequestTopic,
};
use kafka_protocol::messages::delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic;
use kafka_protocol::messages::describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup;
use kafka_protocol::messages::share_acknowledge_request::{
    AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch,
};
use kafka_protocol::messages::share_fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const INVALID_RECORD_STATE: i16 = 121;
const INVALID_SHARE_SESSION_EPOCH: i16 = 123;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_MAX_SIZE_REACHED: i16 = 81;
const ACCEPT: i8 = 1;

fn str(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// A ShareFetch of `partition` by `member` at `epoch`; returns (top-level error, the acquired
/// ranges (first, last, delivery count)).
fn share_fetch(
    port: u16,
    group: &str,
    member: &str,
    epoch: i32,
    topic_id: uuid::Uuid,
    partition: i32,
) -> (i16, Vec<(i64, i64, i16)>) {
    let mut p = FetchPartition::default();
    p.partition_index = partition;
    let mut t = FetchTopic::default();
    t.topic_id = topic_id;
    t.partitions = vec![p];
    let mut request = ShareFetchRequest::default();
    request.group_id = Some(GroupId(str(group)));
    request.member_id = Some(str(member));
    request.share_session_epoch = epoch;
    request.max_wait_ms = 2_000;
    request.min_bytes = 1;
    request.max_bytes = 1 << 20;
    request.max_records = 100;
    request.batch_size = 100;
    request.topics = vec![t];
    let response = call(port, request, 1);
    let ranges = response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .flat_map(|p| &p.acquired_records)
        .map(|a| (a.first_offset, a.last_offset, a.delivery_count))
        .collect();
    (response.error_code, ranges)
}

/// The partition errors of a first ShareFetch of `partition` by group `group`, waiting for
/// nothing.
fn share_fetch_errors(port: u16, group: &str, topic_id: uuid::Uuid, partition: i32) -> Vec<i16> {
    let mut p = FetchPartition::default();
    p.partition_index = partition;
    let mut t = FetchTopic::default();
    t.topic_id = topic_id;
    t.partitions = vec![p];
    let mut request = ShareFetchRequest::default();
    request.group_id = Some(GroupId(str(group)));
    request.member_id = Some(str("m"));
    request.max_records = 1;
    request.max_bytes = 1 << 20;
    request.topics = vec![t];
    let response = call(port, request, 1);
    assert_eq!(response.error_code, 0);
    response
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.error_code)
        .collect()
}

/// A ShareAcknowledge accepting [first, last]; returns (top-level error, partition error).
#[allow(clippy::too_many_arguments)]
fn share_ack(
    port: u16,
    group: &str,
    member: &str,
    epoch: i32,
    topic_id: uuid::Uuid,
    partition: i32,
    (first, last): (i64, i64),
) -> (i16, i16) {
    let mut batch = AcknowledgementBatch::default();
    batch.first_offset = first;
    batch.last_offset = last;
    batch.acknowledge_types = vec![ACCEPT];
    let mut p = AcknowledgePartition::default();
    p.partition_index = partition;
    p.acknowledgement_batches = vec![batch];
    let mut t = AcknowledgeTopic::default();
    t.topic_id = topic_id;
    t.partitions = vec![p];
    let mut request = ShareAcknowledgeRequest::default();
    request.group_id = Some(GroupId(str(group)));
    request.member_id = Some(str(member));
    request.share_session_epoch = epoch;
    request.topics = vec![t];
    let response = call(port, request, 1);
    let partition_error = response
        .responses
        .first()
        .and_then(|t| t.partitions.first())
        .map_or(0, |p| p.error_code);
    (response.error_code, partition_error)
}

/// The group's start offsets by partition of `topic` (-1 when it has none).
fn start_offsets(port: u16, group: &str, topic: &str) -> Vec<(i32, i64)> {
    let mut g = DescribeShareGroupOffsetsRequestGroup::default();
    g.group_id = GroupId(str(group));
    g.topics = None;
    let mut request = DescribeShareGroupOffsetsRequest::default();
    request.groups = vec![g];
    let response = call(port, request, 0);
    let g = &response.groups[0];
    assert_eq!(g.error_code, 0, "{:?}", g.error_message);
    g.topics
        .iter()
        .filter(|t| t.topic_name.0.as_str() == topic)
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (p.partition_index, p.start_offset))
        })
        .collect()
}

fn heartbeat(port: u16, group: &str, member: &str, epoch: i32, topic: &str) -> i16 {
    let mut request = ShareGroupHeartbeatRequest::default();
    request.group_id = GroupId(str(group));
    request.member_id = str(member);
    request.member_epoch = epoch;
    request.subscribed_topic_names = Some(vec![TopicName(str(topic))]);
    call(port, request, 1).error_code
}

fn alter(port: u16, group: &str, topic: &str, starts: &[(i32, i64)]) -> (i16, Vec<i16>) {
    let mut t = AlterShareGroupOffsetsRequestTopic::default();
    t.topic_name = TopicName(str(topic));
    t.partitions = starts
        .iter()
        .map(|&(p, o)| {
            let mut a = AlterShareGroupOffsetsRequestPartition::default();
            a.partition_index = p;
            a.start_offset = o;
            a
        })
        .collect();
    let mut request = AlterShareGroupOffsetsRequest::default();
    request.group_id = GroupId(str(group));
    request.topics = vec![t];
    let response = call(port, request, 0);
    let errors = response
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect();
    (response.error_code, errors)
}

#[test]
fn share_sessions_and_offsets_follow_kafkas_rules() {
    let mut broker = broker_common::start_with(&[("group.share.auto.offset.reset", "earliest")]);
    let (group, topic) = ("wire-share", "wire-share-data");
    broker_common::create_topic(&broker.bootstrap(), topic, 2);
    broker_common::produce_numbered(&broker.bootstrap(), topic, 2, 10, &[]);
    let (port0, id) = broker_common::partition_leader(&broker, topic, 0);
    let (port1, _) = broker_common::partition_leader(&broker, topic, 1);
    assert_ne!(port0, port1, "the partitions live on different shards");
    let coordinator = broker_common::coordinator_port(&broker, group, 0);

    // A session opens at epoch 0 and carries on at 1, 2, ...
    let (error, ranges) = share_fetch(port0, group, "a", 0, id, 0);
    assert_eq!((error, ranges), (0, vec![(0, 9, 1)]));
    assert_eq!(
        share_ack(port0, group, "a", 0, id, 0, (0, 4)).0,
        INVALID_SHARE_SESSION_EPOCH,
        "acks need a session"
    );
    assert_eq!(
        share_ack(port0, group, "a", 5, id, 0, (0, 4)).0,
        INVALID_SHARE_SESSION_EPOCH
    );
    let (error, _) = share_fetch(port0, group, "b", 0, id, 0);
    assert_eq!(error, 0);
    assert_eq!(
        share_ack(port0, group, "b", 1, id, 0, (0, 4)),
        (0, INVALID_RECORD_STATE),
        "only the holder"
    );
    assert_eq!(share_ack(port0, group, "a", 1, id, 0, (0, 4)), (0, 0));
    assert_eq!(start_offsets(coordinator, group, topic), vec![(0, 5)]);

    // Alter is refused while the group has a member, then applies on both shards.
    assert_eq!(heartbeat(coordinator, group, "m", 0, topic), 0);
    assert_eq!(
        alter(coordinator, group, topic, &[(0, 8)]).0,
        NON_EMPTY_GROUP
    );
    assert_eq!(heartbeat(coordinator, group, "m", -1, topic), 0);
    assert_eq!(
        alter(coordinator, group, topic, &[(0, 8), (1, 3)]),
        (0, vec![0, 0])
    );
    assert_eq!(
        start_offsets(coordinator, group, topic),
        vec![(0, 8), (1, 3)]
    );
    let (error, ranges) = share_fetch(port1, group, "c", 0, id, 1);
    assert_eq!(
        (error, ranges),
        (0, vec![(3, 9, 1)]),
        "reads from the altered offset"
    );

    // A shard keeps record states of group.share.max.groups (10) groups at most.
    for i in 1..10 {
        assert_eq!(
            share_fetch_errors(port1, &format!("other-{i}"), id, 1),
            vec![0]
        );
    }
    assert_eq!(
        share_fetch_errors(port1, "one-too-many", id, 1),
        vec![GROUP_MAX_SIZE_REACHED]
    );
    let (_, ranges) = share_fetch(port0, group, "c", 0, id, 0);
    assert_eq!(
        ranges,
        vec![(8, 9, 1)],
        "the records in flight before the alter are forgotten"
    );

    // Delete forgets the topic's state; the next read starts per share.auto.offset.reset.
    let mut forgotten = DeleteShareGroupOffsetsRequestTopic::default();
    forgotten.topic_name = TopicName(str(topic));
    let mut request = DeleteShareGroupOffsetsRequest::default();
    request.group_id = GroupId(str(group));
    request.topics = vec![forgotten];
    let response = call(coordinator, request, 0);
    assert_eq!(
        (response.error_code, response.responses[0].error_code),
        (0, 0)
    );
    assert!(start_offsets(coordinator, group, topic).is_empty());

    // After a restart only the state files know the group: DeleteGroups removes them.
    let (_, ranges) = share_fetch(port0, group, "d", 0, id, 0);
    assert_eq!(ranges, vec![(0, 9, 1)]);
    assert_eq!(share_ack(port0, group, "d", 1, id, 0, (0, 9)), (0, 0));
    // A clean restart: after kill -9 the dead process's listening socket lingers for a moment
    // and accepts (then resets) connections, which a raw-socket test would meet.
    broker.restart_graceful();
    let coordinator = broker_common::coordinator_port(&broker, group, 0);
    assert_eq!(start_offsets(coordinator, group, topic), vec![(0, 10)]);
    // Acknowledgements after a restart are written as newer than what the file held.
    broker_common::produce_numbered(&broker.bootstrap(), topic, 1, 5, &[]);
    let (port0, _) = broker_common::partition_leader(&broker, topic, 0);
    let (_, ranges) = share_fetch(port0, group, "e", 0, id, 0);
    assert_eq!(ranges, vec![(10, 14, 1)]);
    assert_eq!(share_ack(port0, group, "e", 1, id, 0, (10, 11)), (0, 0));
    broker.restart_graceful();
    let coordinator = broker_common::coordinator_port(&broker, group, 0);
    assert_eq!(start_offsets(coordinator, group, topic), vec![(0, 12)]);
    let mut request = DeleteGroupsRequest::default();
    request.groups_names = vec![GroupId(str(group))];
    assert_eq!(call(coordinator, request, 2).results[0].error_code, 0);
    assert!(start_offsets(coordinator, group, topic).is_empty());
}
