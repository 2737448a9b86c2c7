//! Tests of the shard-level coordinator: offset commit validation, fetch, delete, retention,
//! group listing and deletion, and rebuilding everything by replaying the emitted records.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::ResponseError;

use super::config::GroupConfig;
use super::coordinator::{Effects, GroupCoordinator};
use super::offsets::{CommitPartition, CommitTopic, OffsetCommit, TopicPartitions};
use super::records::{self, Record};
use super::state::GroupState;
use super::types::{
    HeartbeatRequest, JoinRequest, LeavingMember, Protocol, RequestToken, Response, SyncRequest,
};

const RETENTION_MS: i64 = 100_000;

fn config() -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: 0,
        offsets_retention_ms: RETENTION_MS,
        offset_metadata_max_bytes: 8,
        ..GroupConfig::default()
    }
}

/// A `ConsumerProtocolSubscription` v0 for `topics`.
fn subscription(topics: &[&str]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    buf.put_i32(topics.len() as i32);
    for t in topics {
        buf.put_i16(t.len() as i16);
        buf.put_slice(t.as_bytes());
    }
    buf.put_i32(-1);
    buf.freeze()
}

fn join_req(member_id: &str, client_id: &str, topics: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_owned(),
        group_instance_id: None,
        client_id: client_id.to_owned(),
        client_host: "/127.0.0.1".to_owned(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".to_owned(),
        protocols: vec![Protocol {
            name: "range".to_owned(),
            metadata: subscription(topics),
        }],
        require_known_member_id: true,
        reason: None,
    }
}

fn join_member_id(effects: &Effects, token: RequestToken) -> String {
    effects
        .deliveries
        .iter()
        .find_map(|d| match (&d.response, d.token == token) {
            (Response::Join(r), true) => Some(r.member_id.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// Forms a Stable group "g" with `clients` all subscribed to `topics`; returns member ids and
/// every record emitted.
fn stable(
    coord: &mut GroupCoordinator,
    group: &str,
    clients: &[&str],
    topics: &[&str],
    now_ms: i64,
) -> (Vec<String>, Vec<Record>) {
    let mut records = Vec::new();
    let ids: Vec<String> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let e = coord.join(group, join_req("", c, topics), i as u64, now_ms);
            join_member_id(&e, i as u64)
        })
        .collect();
    for (i, (id, c)) in ids.iter().zip(clients).enumerate() {
        records.extend(
            coord
                .join(group, join_req(id, c, topics), 10 + i as u64, now_ms)
                .records,
        );
    }
    let g = coord.group(group).map(|g| {
        (
            g.generation_id(),
            g.leader_id().unwrap_or_default().to_owned(),
        )
    });
    let (generation, leader) = g.unwrap_or_default();
    let sync = SyncRequest {
        member_id: leader,
        generation_id: generation,
        assignments: ids
            .iter()
            .map(|id| (id.clone(), Bytes::from(format!("a:{id}"))))
            .collect(),
        ..SyncRequest::default()
    };
    records.extend(coord.sync(group, sync, 99, now_ms).records);
    assert_eq!(
        coord.group(group).map(|g| g.state()),
        Some(GroupState::Stable)
    );
    (ids, records)
}

fn commit(
    generation_id: i32,
    member_id: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> OffsetCommit {
    OffsetCommit {
        generation_id,
        member_id: member_id.to_owned(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics: vec![CommitTopic {
            name: topic.to_owned(),
            partitions: vec![CommitPartition {
                partition,
                offset,
                leader_epoch: 3,
                metadata: Some("meta".to_owned()),
            }],
        }],
    }
}

fn only_error(result: &[super::offsets::TopicErrors]) -> Option<ResponseError> {
    assert_eq!(result.len(), 1);
    assert_eq!(result[0].partitions.len(), 1);
    result[0].partitions[0].1
}

fn fetched_offset(
    coord: &GroupCoordinator,
    group: &str,
    topic: &str,
    partition: i32,
) -> (i64, String) {
    let topics = [TopicPartitions {
        name: topic.to_owned(),
        partitions: vec![partition],
    }];
    let fetched = coord.fetch_offsets(group, Some(&topics));
    let p = &fetched[0].partitions[0];
    (p.offset, p.metadata.clone())
}

#[test]
fn commits_outside_group_management_create_a_simple_group() {
    let mut coord = GroupCoordinator::new(config());
    let (result, effects) = coord.commit_offsets("simple", &commit(-1, "", "t", 0, 10), 1_000);
    assert_eq!(only_error(&result), None);
    assert_eq!(effects.records.len(), 1);
    assert_eq!(
        fetched_offset(&coord, "simple", "t", 0),
        (10, "meta".to_owned())
    );
    assert_eq!(
        fetched_offset(&coord, "simple", "t", 1),
        (-1, String::new())
    );
    let group = coord
        .group("simple")
        .map(|g| (g.state(), g.protocol_type().map(str::to_owned)));
    assert_eq!(group, Some((GroupState::Empty, None)));

    // A generation for a group that does not exist is stale.
    let (result, effects) = coord.commit_offsets("nope", &commit(3, "m", "t", 0, 10), 1_000);
    assert_eq!(only_error(&result), Some(ResponseError::IllegalGeneration));
    assert!(effects.records.is_empty());
    assert!(coord.group("nope").is_none());
}

#[test]
fn offset_commit_validation_follows_generation_and_membership() {
    let mut coord = GroupCoordinator::new(config());
    let (ids, _) = stable(&mut coord, "g", &["a"], &["orders"], 0);
    let a = &ids[0];
    let cases = [
        (commit(1, a, "orders", 0, 5), None),
        (
            commit(-1, "", "orders", 0, 5),
            Some(ResponseError::UnknownMemberId),
        ),
        (
            commit(2, a, "orders", 0, 5),
            Some(ResponseError::IllegalGeneration),
        ),
        (
            commit(1, "ghost", "orders", 0, 5),
            Some(ResponseError::UnknownMemberId),
        ),
    ];
    for (req, expected) in cases {
        let (result, _) = coord.commit_offsets("g", &req, 100);
        assert_eq!(only_error(&result), expected, "{req:?}");
    }
    // A static member's instance id used with another member id is a fenced zombie.
    let mut static_join = join_req("", "s", &["orders"]);
    static_join.group_instance_id = Some("instance-s".to_owned());
    coord.join("f", static_join, 50, 100);
    let mut zombie = commit(1, "s-old-incarnation", "orders", 0, 5);
    zombie.group_instance_id = Some("instance-s".to_owned());
    let (result, _) = coord.commit_offsets("f", &zombie, 100);
    assert_eq!(only_error(&result), Some(ResponseError::FencedInstanceId));

    // Metadata larger than `offset.metadata.max.bytes` is refused per partition.
    let mut big = commit(1, a, "orders", 1, 5);
    big.topics[0].partitions[0].metadata = Some("x".repeat(9));
    let (result, effects) = coord.commit_offsets("g", &big, 100);
    assert_eq!(
        only_error(&result),
        Some(ResponseError::OffsetMetadataTooLarge)
    );
    assert!(effects.records.is_empty());

    // PreparingRebalance still accepts commits (the heartbeat will tell the member to rejoin).
    coord.join("g", join_req(a, "a", &["orders"]), 7, 200);
    let state = coord.group("g").map(|g| g.state());
    assert_eq!(
        state,
        Some(GroupState::CompletingRebalance),
        "single member rejoined at once"
    );
    let (result, _) = coord.commit_offsets("g", &commit(2, a, "orders", 0, 6), 200);
    assert_eq!(
        only_error(&result),
        Some(ResponseError::RebalanceInProgress)
    );

    let (ids2, _) = stable(&mut coord, "h", &["x", "y"], &["orders"], 300);
    coord.leave(
        "h",
        &[LeavingMember {
            member_id: ids2[1].clone(),
            ..LeavingMember::default()
        }],
        300,
    );
    assert_eq!(
        coord.group("h").map(|g| g.state()),
        Some(GroupState::PreparingRebalance)
    );
    let (result, _) = coord.commit_offsets("h", &commit(1, &ids2[0], "orders", 0, 6), 300);
    assert_eq!(only_error(&result), None);
}

#[test]
fn offset_delete_protects_subscribed_topics() {
    let mut coord = GroupCoordinator::new(config());
    let (ids, _) = stable(&mut coord, "g", &["a"], &["orders"], 0);
    for topic in ["orders", "old"] {
        coord.commit_offsets("g", &commit(1, &ids[0], topic, 0, 5), 10);
    }
    let topics = [
        TopicPartitions {
            name: "orders".to_owned(),
            partitions: vec![0],
        },
        TopicPartitions {
            name: "old".to_owned(),
            partitions: vec![0],
        },
    ];
    let (result, effects) = coord.delete_offsets("g", &topics);
    let result = result.unwrap_or_default();
    assert_eq!(
        result[0].partitions[0].1,
        Some(ResponseError::GroupSubscribedToTopic)
    );
    assert_eq!(result[1].partitions[0].1, None);
    assert_eq!(
        effects.records,
        vec![records::offset_tombstone("g", "old", 0)]
    );
    assert_eq!(fetched_offset(&coord, "g", "old", 0).0, -1);

    let (result, _) = coord.delete_offsets("unknown", &topics);
    assert_eq!(result, Err(ResponseError::GroupIdNotFound));

    // Once the group is Empty, anything can go.
    coord.leave(
        "g",
        &[LeavingMember {
            member_id: ids[0].clone(),
            ..LeavingMember::default()
        }],
        20,
    );
    let (result, effects) = coord.delete_offsets("g", &topics[..1]);
    assert_eq!(result.map(|r| r[0].partitions[0].1), Ok(None));
    assert_eq!(effects.records.len(), 1);
}

#[test]
fn offsets_of_an_empty_group_expire_after_retention_and_the_group_goes() {
    let mut coord = GroupCoordinator::new(config());
    let (ids, _) = stable(&mut coord, "g", &["a"], &["orders"], 0);
    coord.commit_offsets("g", &commit(1, &ids[0], "orders", 0, 5), 500);
    coord.leave(
        "g",
        &[LeavingMember {
            member_id: ids[0].clone(),
            ..LeavingMember::default()
        }],
        1_000,
    );
    assert_eq!(coord.group("g").map(|g| g.state()), Some(GroupState::Empty));
    assert!(
        coord
            .expire_offsets(1_000 + RETENTION_MS - 1)
            .records
            .is_empty()
    );
    let effects = coord.expire_offsets(1_000 + RETENTION_MS);
    assert_eq!(
        effects.records,
        vec![
            records::offset_tombstone("g", "orders", 0),
            records::group_tombstone("g")
        ]
    );
    assert!(coord.group("g").is_none());

    // A simple group: each offset expires by its own commit time.
    coord.commit_offsets("s", &commit(-1, "", "t", 0, 1), 0);
    coord.commit_offsets("s", &commit(-1, "", "t", 1, 1), 50_000);
    let effects = coord.expire_offsets(RETENTION_MS);
    assert_eq!(
        effects.records,
        vec![records::offset_tombstone("s", "t", 0)]
    );
    assert_eq!(fetched_offset(&coord, "s", "t", 1).0, 1);

    // A Stable consumer group loses only offsets of topics it no longer subscribes to.
    let (ids, _) = stable(&mut coord, "c", &["a"], &["orders"], 0);
    coord.commit_offsets("c", &commit(1, &ids[0], "orders", 0, 5), 0);
    coord.commit_offsets("c", &commit(1, &ids[0], "old", 0, 5), 0);
    let hb = HeartbeatRequest {
        member_id: ids[0].clone(),
        group_instance_id: None,
        generation_id: 1,
    };
    assert_eq!(coord.heartbeat("c", &hb, 0).0, None);
    let effects = coord.expire_offsets(RETENTION_MS);
    assert!(
        effects
            .records
            .contains(&records::offset_tombstone("c", "old", 0))
    );
    assert!(
        !effects
            .records
            .contains(&records::offset_tombstone("c", "orders", 0))
    );
}

#[test]
fn list_describe_and_delete_groups() {
    let mut coord = GroupCoordinator::new(config());
    stable(&mut coord, "stable", &["a"], &["t"], 0);
    coord.commit_offsets("simple", &commit(-1, "", "t", 0, 1), 0);
    let all = coord.list_groups(&[], &[]);
    assert_eq!(all.len(), 2);
    let stable_only = coord.list_groups(&["STABLE".to_owned()], &[]);
    assert_eq!(stable_only.len(), 1);
    assert_eq!(
        (
            stable_only[0].group_id.as_str(),
            stable_only[0].protocol_type.as_str()
        ),
        ("stable", "consumer")
    );
    assert_eq!(
        coord.list_groups(&["Empty".to_owned()], &[])[0].group_id,
        "simple"
    );
    assert!(
        coord.list_groups(&[], &["consumer".to_owned()]).is_empty(),
        "KIP-848 type"
    );
    assert_eq!(coord.list_groups(&[], &["Classic".to_owned()]).len(), 2);

    assert_eq!(coord.describe_group("stable").state, "Stable");
    assert_eq!(coord.describe_group("missing").state, "Dead");

    let ids = ["stable", "simple", "missing"].map(str::to_owned);
    let (results, effects) = coord.delete_groups(&ids, 10);
    let errors: Vec<Option<ResponseError>> = results.iter().map(|(_, e)| *e).collect();
    assert_eq!(
        errors,
        vec![
            Some(ResponseError::NonEmptyGroup),
            None,
            Some(ResponseError::GroupIdNotFound)
        ]
    );
    assert_eq!(
        effects.records,
        vec![
            records::offset_tombstone("simple", "t", 0),
            records::group_tombstone("simple")
        ]
    );
    assert!(coord.group("simple").is_none());
}

#[test]
fn coordinator_calls_for_unknown_groups() {
    let mut coord = GroupCoordinator::new(config());
    let hb = HeartbeatRequest {
        member_id: "m".to_owned(),
        group_instance_id: None,
        generation_id: 1,
    };
    assert_eq!(
        coord.heartbeat("g", &hb, 0).0,
        Some(ResponseError::UnknownMemberId)
    );
    let e = coord.join("g", join_req("m", "c", &[]), 1, 0);
    assert!(
        matches!(&e.deliveries[0].response, Response::Join(r) if r.error == Some(ResponseError::UnknownMemberId))
    );
    let e = coord.sync("g", SyncRequest::default(), 2, 0);
    assert!(
        matches!(&e.deliveries[0].response, Response::Sync(r) if r.error == Some(ResponseError::UnknownMemberId))
    );
    let (leave, _) = coord.leave(
        "g",
        &[LeavingMember {
            member_id: "m".to_owned(),
            ..LeavingMember::default()
        }],
        0,
    );
    assert_eq!(leave.members[0].error, Some(ResponseError::UnknownMemberId));
    let e = coord.join("", join_req("", "c", &[]), 3, 0);
    assert!(
        matches!(&e.deliveries[0].response, Response::Join(r) if r.error == Some(ResponseError::InvalidGroupId))
    );
    assert!(coord.group("g").is_none());
}

#[test]
fn replay_rebuilds_groups_and_offsets() {
    let mut coord = GroupCoordinator::new(config());
    let mut log: Vec<Record> = Vec::new();
    let (ids, recs) = stable(&mut coord, "g", &["a", "b"], &["orders"], 0);
    log.extend(recs);
    for (p, offset) in [(0, 10), (1, 20), (2, 30)] {
        log.extend(
            coord
                .commit_offsets("g", &commit(1, &ids[0], "orders", p, offset), 100)
                .1
                .records,
        );
    }
    log.extend(
        coord
            .commit_offsets("g", &commit(1, &ids[1], "orders", 0, 11), 200)
            .1
            .records,
    );
    log.extend(
        coord
            .commit_offsets("simple", &commit(-1, "", "t", 0, 7), 200)
            .1
            .records,
    );
    log.extend(
        coord
            .commit_offsets("gone", &commit(-1, "", "t", 0, 7), 200)
            .1
            .records,
    );
    log.extend(coord.delete_groups(&["gone".to_owned()], 300).1.records);
    log.extend(
        coord
            .commit_offsets("simple", &commit(-1, "", "u", 0, 1), 300)
            .1
            .records,
    );
    log.extend(
        coord
            .delete_offsets(
                "simple",
                &[TopicPartitions {
                    name: "u".to_owned(),
                    partitions: vec![0],
                }],
            )
            .1
            .records,
    );

    let mut loaded = GroupCoordinator::new(config());
    for record in &log {
        let replayed = loaded.replay(&record.key, record.value.as_deref(), 50_000);
        assert_eq!(replayed, Ok(()));
    }
    let original = coord.group("g").map(|g| g.to_metadata_value());
    let rebuilt = loaded.group("g").map(|g| g.to_metadata_value());
    assert!(original.is_some());
    assert_eq!(
        rebuilt, original,
        "members, assignments, generation, leader, protocol"
    );
    assert_eq!(
        loaded.group("g").map(|g| g.state()),
        Some(GroupState::Stable)
    );
    assert_eq!(
        loaded.fetch_offsets("g", None),
        coord.fetch_offsets("g", None)
    );
    assert_eq!(
        fetched_offset(&loaded, "g", "orders", 0),
        (11, "meta".to_owned())
    );
    assert_eq!(
        loaded.fetch_offsets("simple", None),
        coord.fetch_offsets("simple", None)
    );
    assert!(loaded.group("gone").is_none());
    let listed: Vec<String> = loaded
        .list_groups(&[], &[])
        .into_iter()
        .map(|g| g.group_id)
        .collect();
    assert_eq!(listed, vec!["g", "simple"]);

    // Loaded members get a fresh session; if they never come back, the group rebalances and
    // empties, and that is persisted.
    assert_eq!(loaded.next_deadline_ms(), Some(60_000));
    let effects = loaded.tick(60_000);
    assert_eq!(
        loaded.group("g").map(|g| g.state()),
        Some(GroupState::Empty)
    );
    assert_eq!(effects.records.len(), 1);
    assert!(
        loaded
            .replay(
                &effects.records[0].key,
                effects.records[0].value.as_deref(),
                60_000
            )
            .is_ok()
    );
    assert_eq!(
        loaded.group("g").map(|g| (g.state(), g.generation_id())),
        Some((GroupState::Empty, 2))
    );

    assert!(loaded.replay(&[0, 1, 0], None, 0).is_err());
}

// ----- KIP-848 consumer groups at the coordinator level -----

fn consumer_topics() -> super::consumer::Topics {
    super::consumer::Topics::new([super::consumer::TopicInfo {
        name: "t".to_owned(),
        id: uuid::Uuid::from_bytes([1; 16]),
        partitions: 2,
    }])
}

fn consumer_join(member_id: &str) -> super::consumer::heartbeat::HeartbeatRequest {
    super::consumer::heartbeat::HeartbeatRequest {
        member_id: member_id.to_owned(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(vec!["t".to_owned()]),
        ..Default::default()
    }
}

#[test]
fn an_offsets_only_group_becomes_a_consumer_group_and_back() {
    let mut c = GroupCoordinator::new(config());
    let (errors, _) = c.commit_offsets("g", &commit(-1, "", "t", 0, 5), 0);
    assert_eq!(errors[0].partitions[0].1, None);
    let (response, effects) = c.consumer_heartbeat("g", &consumer_join("m"), &consumer_topics(), 0);
    assert_eq!(response.error, None);
    assert!(!effects.records.is_empty());
    let listing = c.list_groups(&[], &["consumer".to_owned()]);
    assert_eq!(listing.len(), 1);
    assert_eq!(listing[0].group_type, "consumer");
    assert!(c.list_groups(&[], &["classic".to_owned()]).is_empty());
    // The offsets came along; the member commits with its epoch, a stale epoch is refused.
    assert_eq!(c.fetch_offsets("g", None).len(), 1);
    let (errors, _) = c.commit_offsets("g", &commit(1, "m", "t", 0, 6), 0);
    assert_eq!(errors[0].partitions[0].1, None);
    let (errors, _) = c.commit_offsets("g", &commit(0, "m", "t", 0, 7), 0);
    assert_eq!(
        errors[0].partitions[0].1,
        Some(ResponseError::StaleMemberEpoch)
    );
    let (errors, _) = c.commit_offsets("g", &commit(-1, "", "t", 0, 7), 0);
    assert_eq!(
        errors[0].partitions[0].1,
        Some(ResponseError::UnknownMemberId)
    );
    // Not deletable while the member is in.
    let (results, _) = c.delete_groups(&["g".to_owned()], 0);
    assert_eq!(results[0].1, Some(ResponseError::NonEmptyGroup));
    // Once the member left, a classic join turns it back into a classic group.
    let mut leave = consumer_join("m");
    leave.member_epoch = super::consumer::LEAVE_EPOCH;
    c.consumer_heartbeat("g", &leave, &consumer_topics(), 0);
    let effects = c.join("g", join_req("", "c", &["t"]), 2, 0);
    assert!(matches!(
        &effects.deliveries[0].response,
        Response::Join(j) if j.error == Some(ResponseError::MemberIdRequired)
    ));
    assert!(c.group("g").unwrap().consumer().is_none());
    assert_eq!(c.fetch_offsets("g", None).len(), 1);
}

#[test]
fn a_stable_classic_group_is_upgraded_online() {
    use super::consumer_protocol::{decode_assignment, encode_assignment};
    let mut c = GroupCoordinator::new(config());
    let topics = consumer_topics();
    let e = c.join("g", join_req("", "c", &["t"]), 1, 0);
    let classic = join_member_id(&e, 1);
    c.join("g", join_req(&classic, "c", &["t"]), 2, 0);
    // Mid-rebalance the upgrade waits.
    let (response, _) = c.consumer_heartbeat("g", &consumer_join("m"), &topics, 0);
    assert_eq!(response.error, Some(ResponseError::RebalanceInProgress));
    let generation = c.group("g").unwrap().generation_id();
    let both = encode_assignment(&vec![("t".to_owned(), vec![0, 1])]);
    let sync = SyncRequest {
        member_id: classic.clone(),
        generation_id: generation,
        assignments: vec![(classic.clone(), both)],
        ..SyncRequest::default()
    };
    c.sync("g", sync, 3, 0);
    // Stable: the consumer member joins; the classic member keeps both partitions for now.
    let (response, effects) = c.consumer_heartbeat("g", &consumer_join("m"), &topics, 0);
    assert_eq!(response.error, None);
    assert!(response.assignment.as_ref().is_some_and(|a| a.is_empty()));
    assert!(!effects.records.is_empty());
    // The classic member is told to rejoin, rejoins (eager: owning nothing), and syncs one.
    let hb = HeartbeatRequest {
        member_id: classic.clone(),
        group_instance_id: None,
        generation_id: generation,
    };
    let (error, _) = c.heartbeat("g", &hb, 0);
    assert_eq!(error, Some(ResponseError::RebalanceInProgress));
    let e = c.join_with_topics("g", join_req(&classic, "c", &["t"]), 4, 0, &topics);
    let Response::Join(joined) = &e.deliveries[0].response else {
        panic!("join answered")
    };
    assert_eq!(joined.error, None);
    assert!(
        joined.leader.is_empty(),
        "every classic member is a follower"
    );
    let sync = SyncRequest {
        member_id: classic.clone(),
        generation_id: joined.generation_id,
        ..SyncRequest::default()
    };
    let e = c.sync("g", sync, 5, 0);
    let Response::Sync(synced) = &e.deliveries[0].response else {
        panic!("sync answered")
    };
    let mine = decode_assignment(&synced.assignment).unwrap();
    assert_eq!(mine.iter().map(|(_, p)| p.len()).sum::<usize>(), 1);
    // The consumer member now gets the other partition.
    let mut beat = consumer_join("m");
    beat.member_epoch = response.member_epoch;
    beat.subscribed_topic_names = None;
    beat.rebalance_timeout_ms = -1;
    let mut last = None;
    for _ in 0..3 {
        let (r, _) = c.consumer_heartbeat("g", &beat, &topics, 0);
        assert_eq!(r.error, None, "{r:?}");
        beat.member_epoch = r.member_epoch;
        if r.assignment.is_some() {
            last = r.assignment;
        }
    }
    let theirs: Vec<i32> = last.unwrap().values().flatten().copied().collect();
    assert_eq!(theirs.len(), 1);
    assert!(!mine[0].1.contains(&theirs[0]), "no partition owned twice");
    // A classic leave rebalances the group back to the consumer member.
    let (leave, _) = c.leave(
        "g",
        &[LeavingMember {
            member_id: classic,
            ..LeavingMember::default()
        }],
        0,
    );
    assert_eq!(leave.members[0].error, None);
}

#[test]
fn consumer_groups_are_rebuilt_from_their_records() {
    let mut c = GroupCoordinator::new(config());
    let (_, mut effects) = c.consumer_heartbeat("g", &consumer_join("m"), &consumer_topics(), 0);
    let (_, more) = c.commit_offsets("g", &commit(1, "m", "t", 1, 9), 0);
    effects.records.extend(more.records);
    let mut rebuilt = GroupCoordinator::new(config());
    for r in &effects.records {
        rebuilt
            .replay(&r.key, r.value.as_deref(), 0)
            .expect("replays");
    }
    let group = rebuilt.group("g").expect("group");
    let consumer = group.consumer().expect("consumer group");
    assert_eq!(consumer.member("m").map(|m| m.member_epoch), Some(1));
    assert_eq!(rebuilt.fetch_offsets("g", None).len(), 1);
    // Deleting the empty group tombstones everything; replayed, nothing is left.
    let mut leave = consumer_join("m");
    leave.member_epoch = super::consumer::LEAVE_EPOCH;
    let (_, left) = c.consumer_heartbeat("g", &leave, &consumer_topics(), 0);
    let (results, deleted) = c.delete_groups(&["g".to_owned()], 0);
    assert_eq!(results[0].1, None);
    for r in left.records.iter().chain(&deleted.records) {
        rebuilt
            .replay(&r.key, r.value.as_deref(), 0)
            .expect("replays");
    }
    assert!(rebuilt.group("g").is_none());
}
