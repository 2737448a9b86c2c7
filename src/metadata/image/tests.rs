//! Unit tests of the metadata image: every command's happy path and refusals, races,
//! determinism and snapshots. Helpers are shared with `placement.rs`'s tests.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::*;
use crate::metadata::command::{Applied, MetaCommand, MetaReply, PartitionAssignment};

/// The position after the image's current one, term 1.
fn next(image: &ClusterImage) -> LogPosition {
    LogPosition {
        index: image.applied().index + 1,
        term: 1,
    }
}

fn apply(image: &mut ClusterImage, cmd: &MetaCommand) -> MetaReply {
    let at = next(image);
    image.apply(cmd, at)
}

/// Applies `cmd`, asserts it is refused with `code` and that only the position moved.
fn refused(image: &mut ClusterImage, cmd: &MetaCommand, code: i16) {
    let mut expected = image.clone();
    expected.advance_to(next(image));
    let reply = apply(image, cmd);
    assert_eq!(reply.code(), code, "{reply:?}");
    assert_eq!(*image, expected, "a refused command changed the image");
}

fn register_cmd(node_id: i32, shards: u16) -> MetaCommand {
    MetaCommand::RegisterBroker {
        node_id,
        incarnation: Uuid::from_u128(u128::from(node_id.unsigned_abs()) + 1),
        endpoints: BTreeMap::from([("PLAINTEXT".to_string(), format!("127.0.0.{node_id}:9092"))]),
        shards,
        rack: None,
    }
}

fn register(image: &mut ClusterImage, node_id: i32, shards: u16) -> i64 {
    match apply(image, &register_cmd(node_id, shards)) {
        MetaReply::Ok(Applied::BrokerRegistered { broker_epoch }) => broker_epoch,
        other => panic!("registration refused: {other:?}"),
    }
}

/// An image with nodes `(node_id, shards)` registered and unfenced.
pub(super) fn cluster_of(nodes: &[(i32, u16)]) -> ClusterImage {
    let mut image = ClusterImage::new();
    for &(node_id, shards) in nodes {
        let broker_epoch = register(&mut image, node_id, shards);
        let unfence = MetaCommand::UnfenceBroker {
            node_id,
            broker_epoch,
        };
        assert_eq!(apply(&mut image, &unfence), MetaReply::Ok(Applied::Done));
    }
    image
}

fn create_cmd(name: &str, id: Uuid, replicas: &[Vec<i32>]) -> MetaCommand {
    MetaCommand::CreateTopic {
        name: name.to_string(),
        topic_id: id,
        partitions: assignments(replicas),
        configs: BTreeMap::new(),
    }
}

fn assignments(replicas: &[Vec<i32>]) -> Vec<PartitionAssignment> {
    replicas
        .iter()
        .map(|r| PartitionAssignment {
            replicas: r.clone(),
        })
        .collect()
}

/// Creates topic `name` (id derived from the log index) and returns its id.
pub(super) fn create(image: &mut ClusterImage, name: &str, replicas: &[Vec<i32>]) -> Uuid {
    let id = Uuid::from_u128(u128::from(next(image).index) << 64 | 1);
    let reply = apply(image, &create_cmd(name, id, replicas));
    assert_eq!(reply, MetaReply::Ok(Applied::Done));
    id
}

#[test]
fn registration_starts_fenced_with_the_log_index_as_epoch() {
    let mut image = ClusterImage::new();
    image.advance_to(LogPosition { index: 6, term: 2 });
    assert_eq!(register(&mut image, 1, 4), 7);
    let b = image.broker(1).expect("registered");
    assert!(b.fenced);
    assert_eq!((b.epoch, b.shards), (7, 4));
    assert_eq!(image.live_brokers().count(), 0);
    // A restart registers again: new epoch, fenced again.
    assert_eq!(register(&mut image, 1, 4), 8);
}

#[test]
fn malformed_registrations_are_refused() {
    let mut image = ClusterImage::new();
    refused(&mut image, &register_cmd(1, 0), 42);
    refused(&mut image, &register_cmd(1, 1001), 42);
    refused(&mut image, &register_cmd(-1, 1), 42);
    let MetaCommand::RegisterBroker {
        node_id,
        incarnation,
        shards,
        rack,
        ..
    } = register_cmd(1, 1)
    else {
        unreachable!()
    };
    let no_endpoint = MetaCommand::RegisterBroker {
        node_id,
        incarnation,
        endpoints: BTreeMap::new(),
        shards,
        rack,
    };
    refused(&mut image, &no_endpoint, 42);
}

#[test]
fn fencing_checks_the_broker_epoch() {
    let mut image = cluster_of(&[(1, 1)]);
    let epoch = image.broker(1).expect("registered").epoch;
    let fence = |broker_epoch| MetaCommand::FenceBroker {
        node_id: 1,
        broker_epoch,
    };
    refused(&mut image, &fence(epoch - 1), 77);
    assert_eq!(
        apply(&mut image, &fence(epoch)),
        MetaReply::Ok(Applied::Done)
    );
    assert!(image.broker(1).expect("registered").fenced);
    assert!(!image.is_live_broker_id(1000));
    // The node restarts: the old epoch can no longer unfence it.
    let new_epoch = register(&mut image, 1, 1);
    let unfence = |broker_epoch| MetaCommand::UnfenceBroker {
        node_id: 1,
        broker_epoch,
    };
    refused(&mut image, &unfence(epoch), 77);
    assert_eq!(
        apply(&mut image, &unfence(new_epoch)),
        MetaReply::Ok(Applied::Done)
    );
    assert!(image.is_live_broker_id(1000));
    let unknown = MetaCommand::UnfenceBroker {
        node_id: 9,
        broker_epoch: new_epoch,
    };
    refused(&mut image, &unknown, 102);
}

#[test]
fn create_topic_places_leaders_on_live_replicas() {
    let mut image = cluster_of(&[(1, 2), (2, 2), (3, 1)]);
    let id = create(&mut image, "orders", &[vec![1000, 2001], vec![2000, 3000]]);
    let topic = image.topic("orders").expect("created");
    assert_eq!(image.topic_by_id(id).map(|t| &t.name), Some(&topic.name));
    let p0 = &topic.partitions[0];
    assert_eq!(
        (p0.leader, p0.leader_epoch, p0.partition_epoch),
        (1000, 0, 0)
    );
    assert_eq!(p0.isr, vec![1000, 2001]);
    assert_eq!(topic.replication_factor(), 2);
}

#[test]
fn racing_create_topic_gets_topic_already_exists() {
    let mut image = cluster_of(&[(1, 1)]);
    let first = create_cmd("t", Uuid::from_u128(1), &[vec![1000]]);
    let second = create_cmd("t", Uuid::from_u128(2), &[vec![1000], vec![1000]]);
    assert_eq!(apply(&mut image, &first), MetaReply::Ok(Applied::Done));
    refused(&mut image, &second, 36);
    assert_eq!(image.topic("t").map(|t| t.id), Some(Uuid::from_u128(1)));
    assert!(image.topic_by_id(Uuid::from_u128(2)).is_none());
    // The same topic id under another name is a proposer bug, refused too.
    refused(
        &mut image,
        &create_cmd("u", Uuid::from_u128(1), &[vec![1000]]),
        42,
    );
}

#[test]
fn create_topic_refusals() {
    let mut image = cluster_of(&[(1, 2), (2, 2)]);
    let id = Uuid::from_u128(7);
    refused(&mut image, &create_cmd("bad name", id, &[vec![1000]]), 17);
    refused(&mut image, &create_cmd("t", Uuid::nil(), &[vec![1000]]), 42);
    refused(&mut image, &create_cmd("t", id, &[]), 37);
    refused(&mut image, &create_cmd("t", id, &[vec![]]), 39);
    refused(
        &mut image,
        &create_cmd("t", id, &[vec![1000, 2000], vec![1000]]),
        38,
    );
    // Two cores of one node are never two replicas of one partition.
    refused(&mut image, &create_cmd("t", id, &[vec![1000, 1001]]), 39);
    refused(&mut image, &create_cmd("t", id, &[vec![1000, 3000]]), 39);
    refused(&mut image, &create_cmd("t", id, &[vec![1002]]), 39);
    refused(&mut image, &create_cmd("t", id, &[vec![-5]]), 39);
    let epoch = image.broker(2).expect("registered").epoch;
    let fence = MetaCommand::FenceBroker {
        node_id: 2,
        broker_epoch: epoch,
    };
    apply(&mut image, &fence);
    refused(&mut image, &create_cmd("t", id, &[vec![2000]]), 39);
    // A fenced replica is placed but stays out of the ISR.
    create(&mut image, "t", &[vec![2000, 1000]]);
    let p = &image.topic("t").expect("created").partitions[0];
    assert_eq!((p.leader, p.isr.clone()), (1000, vec![1000]));
}

#[test]
fn delete_topic_removes_both_indexes() {
    let mut image = cluster_of(&[(1, 1)]);
    let id = create(&mut image, "t", &[vec![1000]]);
    let delete = MetaCommand::DeleteTopic { topic_id: id };
    assert_eq!(apply(&mut image, &delete), MetaReply::Ok(Applied::Done));
    assert!(image.topic("t").is_none() && image.topic_by_id(id).is_none());
    refused(&mut image, &delete, 100);
    // The name is free again.
    create(&mut image, "t", &[vec![1000]]);
}

#[test]
fn create_partitions_appends_with_the_same_factor() {
    let mut image = cluster_of(&[(1, 2), (2, 2)]);
    let id = create(&mut image, "t", &[vec![1000, 2000]]);
    let add = |new: &[Vec<i32>]| MetaCommand::CreatePartitions {
        topic_id: id,
        new: assignments(new),
    };
    assert_eq!(
        apply(&mut image, &add(&[vec![2001, 1001]])),
        MetaReply::Ok(Applied::Done)
    );
    let topic = image.topic("t").expect("exists");
    assert_eq!(topic.partitions.len(), 2);
    assert_eq!(topic.partitions[1].leader, 2001);
    refused(&mut image, &add(&[]), 37);
    refused(&mut image, &add(&[vec![1000]]), 38);
    refused(&mut image, &add(&[vec![1000, 1001]]), 39);
    let unknown = MetaCommand::CreatePartitions {
        topic_id: Uuid::from_u128(99),
        new: assignments(&[vec![1000, 2000]]),
    };
    refused(&mut image, &unknown, 100);
}

#[test]
fn configs_are_set_then_deleted() {
    let mut image = cluster_of(&[(1, 1)]);
    let id = create(&mut image, "t", &[vec![1000]]);
    let set = BTreeMap::from([
        ("retention.ms".to_string(), "1000".to_string()),
        ("cleanup.policy".to_string(), "compact".to_string()),
    ]);
    let alter = MetaCommand::AlterTopicConfigs {
        topic_id: id,
        set: set.clone(),
        delete: BTreeSet::from(["cleanup.policy".to_string()]),
    };
    assert_eq!(apply(&mut image, &alter), MetaReply::Ok(Applied::Done));
    let configs = &image.topic("t").expect("exists").configs;
    assert_eq!(configs.len(), 1);
    assert_eq!(
        configs.get("retention.ms").map(String::as_str),
        Some("1000")
    );
    let unknown = MetaCommand::AlterTopicConfigs {
        topic_id: Uuid::from_u128(99),
        set: set.clone(),
        delete: BTreeSet::new(),
    };
    refused(&mut image, &unknown, 100);
    let broker = MetaCommand::AlterBrokerConfigs {
        set,
        delete: BTreeSet::from(["retention.ms".to_string()]),
    };
    assert_eq!(apply(&mut image, &broker), MetaReply::Ok(Applied::Done));
    assert_eq!(
        image.broker_configs().keys().collect::<Vec<_>>(),
        ["cleanup.policy"]
    );
}

#[test]
fn producer_id_blocks_are_contiguous_and_never_overlap() {
    let mut image = cluster_of(&[(1, 1), (2, 1)]);
    let mut expected_first = 0;
    for (node_id, count) in [(1, 1000), (2, 1000), (1, 1), (2, 500)] {
        let cmd = MetaCommand::AllocateProducerIds { node_id, count };
        let reply = apply(&mut image, &cmd);
        assert_eq!(
            reply,
            MetaReply::Ok(Applied::ProducerIds {
                first_id: expected_first,
                count
            })
        );
        expected_first += i64::from(count);
    }
    assert_eq!(image.next_producer_id(), 2501);
    refused(
        &mut image,
        &MetaCommand::AllocateProducerIds {
            node_id: 9,
            count: 10,
        },
        102,
    );
    refused(
        &mut image,
        &MetaCommand::AllocateProducerIds {
            node_id: 1,
            count: 0,
        },
        42,
    );
}

fn change(id: Uuid, leader: i32, leader_epoch: i32, isr: &[i32], epoch: i32) -> MetaCommand {
    MetaCommand::PartitionChange {
        topic_id: id,
        partition: 0,
        leader,
        leader_epoch,
        isr: isr.to_vec(),
        partition_epoch: epoch,
    }
}

#[test]
fn partition_change_needs_the_current_partition_epoch() {
    let mut image = cluster_of(&[(1, 1), (2, 1), (3, 1)]);
    let id = create(&mut image, "t", &[vec![1000, 2000, 3000]]);
    // Shrink the ISR: same leader and leader epoch, partition epoch 0 -> 1.
    let shrink = change(id, 1000, 0, &[1000, 2000], 0);
    assert_eq!(
        apply(&mut image, &shrink),
        MetaReply::Ok(Applied::PartitionChanged { partition_epoch: 1 })
    );
    // The same change again carries a stale partition epoch.
    refused(&mut image, &shrink, 95);
    // Move leadership with a new leader epoch.
    let elect = change(id, 2000, 1, &[2000], 1);
    assert_eq!(
        apply(&mut image, &elect),
        MetaReply::Ok(Applied::PartitionChanged { partition_epoch: 2 })
    );
    let p = &image.topic("t").expect("exists").partitions[0];
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (2000, 1, 2));
    assert_eq!(image.partitions_led_by(2000).len(), 1);
    assert!(image.partitions_led_by(1000).is_empty());
    // The old leader's view: stale leader epoch.
    refused(&mut image, &change(id, 1000, 0, &[1000], 2), 74);
    // A new leader without a new leader epoch, an ISR outside the replicas, a leader
    // outside the ISR, an unknown partition.
    refused(&mut image, &change(id, 3000, 1, &[3000], 2), 42);
    refused(&mut image, &change(id, 2000, 1, &[2000, 4000], 2), 107);
    refused(&mut image, &change(id, 2000, 1, &[3000], 2), 107);
    let MetaCommand::PartitionChange {
        topic_id,
        leader,
        leader_epoch,
        isr,
        partition_epoch,
        ..
    } = change(id, 2000, 1, &[2000], 2)
    else {
        unreachable!()
    };
    let wrong_partition = MetaCommand::PartitionChange {
        topic_id,
        partition: 5,
        leader,
        leader_epoch,
        isr,
        partition_epoch,
    };
    refused(&mut image, &wrong_partition, 3);
    refused(
        &mut image,
        &change(Uuid::from_u128(99), 2000, 1, &[2000], 2),
        100,
    );
}

#[test]
fn queries_see_nodes_and_partitions() {
    let mut image = cluster_of(&[(1, 2), (2, 2)]);
    create(&mut image, "a", &[vec![1000, 2001], vec![2000, 1001]]);
    create(&mut image, "b", &[vec![1001]]);
    assert_eq!(image.live_brokers().count(), 2);
    let shards: Vec<i32> = image.live_shards().map(|(id, _)| id).collect();
    assert_eq!(shards, vec![1000, 1001, 2000, 2001]);
    assert_eq!(image.partitions_on_node(2).len(), 2);
    assert_eq!(image.partitions_on_node(1).len(), 3);
    let led: Vec<(String, i32)> = image
        .partitions_led_by(1001)
        .into_iter()
        .map(|(t, p)| (t.name.clone(), p))
        .collect();
    assert_eq!(led, vec![("b".to_string(), 0)]);
    assert!(!image.is_live_broker_id(1002) && !image.is_live_broker_id(-1));
}

/// A log touching every command, refusals included.
fn sample_log() -> Vec<MetaCommand> {
    let id = Uuid::from_u128(42);
    vec![
        register_cmd(1, 2),
        MetaCommand::UnfenceBroker {
            node_id: 1,
            broker_epoch: 1,
        },
        register_cmd(2, 1),
        MetaCommand::UnfenceBroker {
            node_id: 2,
            broker_epoch: 3,
        },
        create_cmd("t", id, &[vec![1000, 2000], vec![2000, 1001]]),
        create_cmd("t", Uuid::from_u128(43), &[vec![1000]]),
        MetaCommand::CreatePartitions {
            topic_id: id,
            new: assignments(&[vec![1001, 2000]]),
        },
        MetaCommand::AlterTopicConfigs {
            topic_id: id,
            set: BTreeMap::from([("retention.ms".to_string(), "5".to_string())]),
            delete: BTreeSet::new(),
        },
        MetaCommand::AlterBrokerConfigs {
            set: BTreeMap::from([("log.retention.ms".to_string(), "9".to_string())]),
            delete: BTreeSet::new(),
        },
        MetaCommand::AllocateProducerIds {
            node_id: 2,
            count: 1000,
        },
        change(id, 2000, 1, &[2000], 0),
        MetaCommand::FenceBroker {
            node_id: 1,
            broker_epoch: 1,
        },
        create_cmd("gone", Uuid::from_u128(44), &[vec![2000]]),
        MetaCommand::DeleteTopic {
            topic_id: Uuid::from_u128(44),
        },
    ]
}

fn replay(log: &[MetaCommand]) -> (ClusterImage, Vec<MetaReply>) {
    let mut image = ClusterImage::new();
    let replies = log.iter().map(|cmd| apply(&mut image, cmd)).collect();
    (image, replies)
}

#[test]
fn the_same_log_gives_the_same_image() {
    let log = sample_log();
    let (a, replies_a) = replay(&log);
    let (b, replies_b) = replay(&log);
    assert_eq!(a, b);
    assert_eq!(replies_a, replies_b);
    assert_eq!(a.to_snapshot_bytes().ok(), b.to_snapshot_bytes().ok());
    assert_eq!(
        replies_a.iter().filter(|r| r.code() != 0).count(),
        1,
        "{replies_a:?}"
    );
    assert_eq!(a.applied().index, u64::try_from(log.len()).expect("small"));
}

#[test]
fn snapshots_round_trip() {
    let (image, _) = replay(&sample_log());
    let bytes = image.to_snapshot_bytes().expect("encodes");
    let back = ClusterImage::from_snapshot_bytes(&bytes).expect("decodes");
    assert_eq!(back, image);
    let id = Uuid::from_u128(42);
    assert_eq!(back.topic_by_id(id).map(|t| t.name.as_str()), Some("t"));
}

#[test]
fn snapshots_of_another_format_or_garbage_are_refused() {
    let bytes = ClusterImage::new().to_snapshot_bytes().expect("encodes");
    let text = String::from_utf8(bytes).expect("json");
    let other = text.replace(r#""format":1"#, r#""format":2"#);
    assert!(matches!(
        ClusterImage::from_snapshot_bytes(other.as_bytes()),
        Err(SnapshotError::UnsupportedFormat(2))
    ));
    assert!(matches!(
        ClusterImage::from_snapshot_bytes(b"not json"),
        Err(SnapshotError::Json(_))
    ));
}

#[test]
fn every_command_round_trips_through_the_log_encoding() {
    for cmd in sample_log() {
        let bytes = serde_json::to_vec(&cmd).expect("encodes");
        let back: MetaCommand = serde_json::from_slice(&bytes).expect("decodes");
        assert_eq!(back, cmd);
    }
}

fn fence(image: &mut ClusterImage, node_id: i32) {
    let broker_epoch = image.broker(node_id).expect("registered").epoch;
    let cmd = MetaCommand::FenceBroker {
        node_id,
        broker_epoch,
    };
    assert_eq!(apply(image, &cmd), MetaReply::Ok(Applied::Done));
}

fn unfence(image: &mut ClusterImage, node_id: i32) {
    let broker_epoch = image.broker(node_id).expect("registered").epoch;
    let cmd = MetaCommand::UnfenceBroker {
        node_id,
        broker_epoch,
    };
    assert_eq!(apply(image, &cmd), MetaReply::Ok(Applied::Done));
}

fn partition_of(image: &ClusterImage, id: Uuid, p: usize) -> PartitionImage {
    image.topic_by_id(id).expect("topic").partitions[p].clone()
}

#[test]
fn fencing_the_leader_elects_the_next_isr_member_and_bumps_the_epoch() {
    let mut image = cluster_of(&[(1, 1), (2, 1), (3, 1)]);
    let id = create(&mut image, "t", &[vec![1000, 2000, 3000]]);
    fence(&mut image, 1);
    let p = partition_of(&image, id, 0);
    assert_eq!((p.leader, p.leader_epoch), (2000, 1));
    assert_eq!(p.isr, vec![2000, 3000]);
    assert_eq!(p.partition_epoch, 1);
    // A fenced follower only leaves the ISR: same leader, same leader epoch.
    fence(&mut image, 3);
    let p = partition_of(&image, id, 0);
    assert_eq!(
        (p.leader, p.leader_epoch, p.isr.clone()),
        (2000, 1, vec![2000])
    );
    // The last ISR member stays in the ISR when it goes down; the partition has no leader.
    fence(&mut image, 2);
    let p = partition_of(&image, id, 0);
    assert_eq!(
        (p.leader, p.leader_epoch, p.isr.clone()),
        (-1, 2, vec![2000])
    );
    // Node 1 comes back: it is not in the ISR, so no unclean election by default.
    unfence(&mut image, 1);
    assert_eq!(partition_of(&image, id, 0).leader, -1);
    // Node 2, the last ISR member, comes back and leads again.
    unfence(&mut image, 2);
    let p = partition_of(&image, id, 0);
    assert_eq!(
        (p.leader, p.leader_epoch, p.isr.clone()),
        (2000, 3, vec![2000])
    );
}

#[test]
fn unclean_election_picks_a_live_out_of_sync_replica_when_enabled() {
    let mut image = cluster_of(&[(1, 1), (2, 1)]);
    let id = create(&mut image, "t", &[vec![1000, 2000]]);
    fence(&mut image, 2);
    fence(&mut image, 1);
    assert_eq!(partition_of(&image, id, 0).isr, vec![1000]);
    let enable = MetaCommand::AlterTopicConfigs {
        topic_id: id,
        set: BTreeMap::from([(UNCLEAN_ELECTION_KEY.to_string(), "true".to_string())]),
        delete: BTreeSet::new(),
    };
    assert_eq!(apply(&mut image, &enable), MetaReply::Ok(Applied::Done));
    unfence(&mut image, 2);
    let p = partition_of(&image, id, 0);
    assert_eq!((p.leader, p.isr.clone()), (2000, vec![2000]));
}

#[test]
fn a_restart_registration_removes_the_node_from_leadership_and_isr() {
    let mut image = cluster_of(&[(1, 1), (2, 1)]);
    let id = create(&mut image, "t", &[vec![1000, 2000]]);
    register(&mut image, 1, 1);
    let p = partition_of(&image, id, 0);
    assert_eq!(
        (p.leader, p.leader_epoch, p.isr.clone()),
        (2000, 1, vec![2000])
    );
}

#[test]
fn the_leader_rebalance_gives_partitions_back_to_preferred_replicas_in_the_isr() {
    let mut image = cluster_of(&[(1, 1), (2, 1)]);
    let id = create(
        &mut image,
        "t",
        &[vec![1000, 2000], vec![1000, 2000], vec![2000, 1000]],
    );
    assert!(image.preferred_leader_changes(10).is_empty(), "balanced");
    // Node 1 goes down and comes back: its partitions are led by node 2 and it is out of
    // the ISR, so nothing can move yet.
    fence(&mut image, 1);
    unfence(&mut image, 1);
    assert_eq!(partition_of(&image, id, 0).leader, 2000);
    assert!(
        image.preferred_leader_changes(10).is_empty(),
        "not in the ISR"
    );
    // Back in the ISR of partition 0 only: one election, for partition 0.
    let p = partition_of(&image, id, 0);
    let rejoin = MetaCommand::PartitionChange {
        topic_id: id,
        partition: 0,
        leader: 2000,
        leader_epoch: p.leader_epoch,
        isr: vec![2000, 1000],
        partition_epoch: p.partition_epoch,
    };
    assert!(matches!(apply(&mut image, &rejoin), MetaReply::Ok(_)));
    let changes = image.preferred_leader_changes(10);
    assert_eq!(changes.len(), 1);
    for change in &changes {
        assert!(matches!(apply(&mut image, change), MetaReply::Ok(_)));
    }
    let p = partition_of(&image, id, 0);
    assert_eq!((p.leader, p.leader_epoch), (1000, 2));
    // Below the threshold nothing moves: 1 of 2 partitions off (50 %) with 60 % allowed.
    assert!(image.preferred_leader_changes(60).is_empty());
}

fn acl(name: &str, pattern: crate::acl::PatternType) -> crate::acl::AclBinding {
    crate::acl::AclBinding {
        resource_type: crate::acl::ResourceType::Topic,
        name: name.into(),
        pattern,
        principal: "User:alice".into(),
        host: "*".into(),
        operation: crate::acl::Operation::Read,
        permission: crate::acl::Permission::Allow,
    }
}

#[test]
fn acls_and_scram_credentials_apply_survive_snapshots_and_refuse_invalid_bindings() {
    use crate::acl::{AclFilter, Operation, PatternType, Permission, ResourceType};
    use crate::metadata::security::ScramChange;
    use crate::protocol::scram::{ScramCredential, ScramHash};
    let mut image = ClusterImage::new();
    let literal = acl("orders", PatternType::Literal);
    let prefixed = acl("ord", PatternType::Prefixed);
    let created = MetaCommand::CreateAcls {
        bindings: vec![literal.clone(), prefixed.clone()],
    };
    assert_eq!(apply(&mut image, &created), MetaReply::Ok(Applied::Done));
    let mut bad = literal.clone();
    bad.principal = "alice".into();
    let invalid = MetaCommand::CreateAcls {
        bindings: vec![acl("x", PatternType::Literal), bad],
    };
    refused(&mut image, &invalid, 42); // INVALID_REQUEST, nothing stored
    let credential =
        ScramCredential::from_salted(ScramHash::Sha512, &[1; 64], b"salt".to_vec(), 4096);
    let scram = MetaCommand::AlterScramCredentials {
        changes: vec![ScramChange::Upsert {
            user: "alice".into(),
            mechanism: ScramHash::Sha512,
            credential: credential.clone(),
        }],
    };
    assert_eq!(apply(&mut image, &scram), MetaReply::Ok(Applied::Done));

    let bytes = image.to_snapshot_bytes().expect("encodes");
    let mut back = ClusterImage::from_snapshot_bytes(&bytes).expect("decodes");
    assert_eq!(back, image);
    assert_eq!(
        back.security().scram_credential("alice", ScramHash::Sha512),
        Some(credential)
    );

    let delete = MetaCommand::DeleteAcls {
        filters: vec![AclFilter {
            resource_type: ResourceType::Topic,
            name: Some("orders".into()),
            pattern: PatternType::Literal,
            principal: None,
            host: None,
            operation: Operation::Any,
            permission: Permission::Any,
        }],
    };
    assert_eq!(
        apply(&mut back, &delete),
        MetaReply::Ok(Applied::AclsDeleted {
            deleted: vec![vec![literal]]
        })
    );
    assert_eq!(*back.security().acls, vec![prefixed]);
}

#[test]
fn snapshots_from_before_acls_decode_with_none() {
    let bytes = ClusterImage::new().to_snapshot_bytes().expect("encodes");
    let text = String::from_utf8(bytes).expect("json");
    let start = text.find(r#","security""#).expect("security field");
    let old = format!("{}}}}}", &text[..start]);
    let image = ClusterImage::from_snapshot_bytes(old.as_bytes()).expect("decodes");
    assert!(image.security().acls.is_empty());
}

fn reassign(id: Uuid, target: Option<&[i32]>) -> MetaCommand {
    MetaCommand::ReassignPartition {
        topic_id: id,
        partition: 0,
        target: target.map(<[i32]>::to_vec),
    }
}

/// The leader of partition 0 adds `follower` to its ISR, as its AlterPartition would.
fn join_isr(image: &mut ClusterImage, id: Uuid, follower: i32) {
    let p = partition_of(image, id, 0);
    let mut isr = p.isr.clone();
    isr.push(follower);
    let cmd = change(id, p.leader, p.leader_epoch, &isr, p.partition_epoch);
    assert_eq!(apply(image, &cmd).code(), 0);
}

#[test]
fn a_reassignment_adds_then_completes_once_the_new_replicas_are_in_sync() {
    let mut image = cluster_of(&[(1, 1), (2, 1), (3, 1), (4, 1)]);
    let id = create(&mut image, "t", &[vec![1000, 2000, 3000]]);
    assert_eq!(
        apply(&mut image, &reassign(id, Some(&[4000, 2000, 3000]))),
        MetaReply::Ok(Applied::Done)
    );
    let p = partition_of(&image, id, 0);
    assert_eq!(p.replicas, vec![4000, 2000, 3000, 1000]);
    assert_eq!(
        (p.adding_replicas.clone(), p.removing_replicas.clone()),
        (vec![4000], vec![1000])
    );
    // Nothing moves until the new replica is in sync: same leader, same epochs but one.
    assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (1000, 0, 1));
    assert_eq!(p.target_replicas(), vec![4000, 2000, 3000]);
    join_isr(&mut image, id, 4000);
    let p = partition_of(&image, id, 0);
    assert_eq!(p.replicas, vec![4000, 2000, 3000]);
    assert!(!p.is_reassigning());
    // The removed leader hands over to the first in-sync target replica, with a new epoch.
    assert_eq!((p.leader, p.leader_epoch), (4000, 1));
    assert_eq!(p.isr, vec![2000, 3000, 4000]);
}

#[test]
fn reordering_or_shrinking_replicas_already_in_sync_completes_at_once() {
    let mut image = cluster_of(&[(1, 1), (2, 1), (3, 1)]);
    let id = create(&mut image, "t", &[vec![1000, 2000, 3000]]);
    apply(&mut image, &reassign(id, Some(&[2000, 1000])));
    let p = partition_of(&image, id, 0);
    assert_eq!(p.replicas, vec![2000, 1000]);
    assert_eq!(p.isr, vec![1000, 2000]);
    // The leader stays (it is still a replica); a removed replica fences with a new epoch.
    assert_eq!((p.leader, p.leader_epoch), (1000, 1));
    assert!(!p.is_reassigning());
    // The same list again changes nothing.
    let before = image.clone();
    apply(&mut image, &reassign(id, Some(&[2000, 1000])));
    assert_eq!(partition_of(&image, id, 0), partition_of(&before, id, 0));
}

#[test]
fn growing_an_unreplicated_partition_gives_its_leader_a_new_epoch() {
    let mut image = cluster_of(&[(1, 1), (2, 1)]);
    let id = create(&mut image, "t", &[vec![1000]]);
    apply(&mut image, &reassign(id, Some(&[1000, 2000])));
    let p = partition_of(&image, id, 0);
    assert_eq!(
        p.leader_epoch, 1,
        "the leader must switch to an ISR-based watermark"
    );
    assert_eq!(p.adding_replicas, vec![2000]);
    join_isr(&mut image, id, 2000);
    let p = partition_of(&image, id, 0);
    assert_eq!(
        (p.replicas.clone(), p.isr.clone()),
        (vec![1000, 2000], vec![1000, 2000])
    );
    assert_eq!(
        image.topic_by_id(id).expect("topic").replication_factor(),
        2
    );
}

#[test]
fn cancelling_goes_back_to_the_original_replicas() {
    let mut image = cluster_of(&[(1, 1), (2, 1), (3, 1), (4, 1)]);
    let id = create(&mut image, "t", &[vec![1000, 2000, 3000]]);
    refused(&mut image, &reassign(id, None), 85); // NO_REASSIGNMENT_IN_PROGRESS
    apply(&mut image, &reassign(id, Some(&[4000, 2000, 3000])));
    assert_eq!(apply(&mut image, &reassign(id, None)).code(), 0);
    let p = partition_of(&image, id, 0);
    // The original brokers, in the order the reassignment left them (as Kafka reverts).
    assert_eq!(p.replicas, vec![2000, 3000, 1000]);
    assert!(!p.is_reassigning());
    assert_eq!(p.leader, 1000);
}

#[test]
fn a_new_target_replaces_the_ongoing_one_from_the_original_replicas() {
    let mut image = cluster_of(&[(1, 1), (2, 1), (3, 1), (4, 1)]);
    let id = create(&mut image, "t", &[vec![1000, 2000]]);
    apply(&mut image, &reassign(id, Some(&[1000, 3000])));
    apply(&mut image, &reassign(id, Some(&[1000, 4000])));
    let p = partition_of(&image, id, 0);
    assert_eq!(p.replicas, vec![1000, 4000, 2000]);
    assert_eq!(p.adding_replicas, vec![4000]);
    assert_eq!(p.removing_replicas, vec![2000]);
    // 3000 was dropped while catching up: fenced by a new epoch.
    assert_eq!(p.leader_epoch, 1);
}

#[test]
fn reassignments_to_unknown_nodes_or_two_replicas_on_a_node_are_refused() {
    let mut image = cluster_of(&[(1, 2), (2, 1)]);
    let id = create(&mut image, "t", &[vec![1000]]);
    refused(&mut image, &reassign(id, Some(&[1000, 9000])), 39);
    refused(&mut image, &reassign(id, Some(&[1000, 1001])), 39);
    refused(&mut image, &reassign(id, Some(&[])), 39);
}

#[test]
fn client_quotas_apply_survive_snapshots_and_refuse_invalid_values() {
    use crate::quota::entity::{EntityName, QuotaChange, QuotaEntity, QuotaKey, QuotaValue};
    let mut image = ClusterImage::new();
    let entity = QuotaEntity {
        user: Some(EntityName::Default),
        client_id: Some(EntityName::Named("app".into())),
    };
    let set = |value: f64| MetaCommand::AlterClientQuotas {
        changes: vec![QuotaChange {
            entity: entity.clone(),
            set: [(QuotaKey::ProducerByteRate, QuotaValue(value))].into(),
            remove: vec![],
        }],
    };
    assert_eq!(
        apply(&mut image, &set(1024.0)),
        MetaReply::Ok(Applied::Done)
    );
    refused(&mut image, &set(-1.0), 42); // INVALID_REQUEST, nothing changed
    let bytes = image.to_snapshot_bytes().expect("encodes");
    let back = ClusterImage::from_snapshot_bytes(&bytes).expect("decodes");
    assert_eq!(back, image);
    let stored = back.security().quotas.0.get(&entity).cloned();
    assert_eq!(
        stored,
        Some([(QuotaKey::ProducerByteRate, QuotaValue(1024.0))].into())
    );

    // A snapshot written before quotas existed has no "quotas" in its security part.
    let text =
        String::from_utf8(ClusterImage::new().to_snapshot_bytes().expect("encodes")).expect("json");
    let old = text.replace(r#","quotas":[]"#, "");
    assert_ne!(old, text, "the field was there to remove");
    let image = ClusterImage::from_snapshot_bytes(old.as_bytes()).expect("decodes");
    assert!(image.security().quotas.0.is_empty());
}
