use super::*;
use crate::coordinator::group::consumer::TopicInfo;

fn topics(partitions: i32) -> Topics {
    Topics::new([TopicInfo {
        name: "t".into(),
        id: uuid::Uuid::from_u128(7),
        partitions,
    }])
}

fn join(member: &str) -> ShareHeartbeat {
    ShareHeartbeat {
        member_id: member.into(),
        member_epoch: JOIN_EPOCH,
        subscribed: Some(vec!["t".into()]),
        ..ShareHeartbeat::default()
    }
}

fn partitions_of(answer: &ShareHeartbeatAnswer) -> Vec<i32> {
    answer
        .assignment
        .as_ref()
        .map(|a| a.values().flatten().copied().collect())
        .unwrap_or_default()
}

#[test]
fn more_members_than_partitions_share_them_and_fewer_split_them() {
    let config = ShareGroupConfig::default();
    let mut g = ShareGroup::new("g");
    let a = g.heartbeat(&join("a"), &topics(1), 0, &config).unwrap();
    assert_eq!(partitions_of(&a), vec![0]);
    let b = g.heartbeat(&join("b"), &topics(1), 0, &config).unwrap();
    assert_eq!(
        partitions_of(&b),
        vec![0],
        "two members read the one partition"
    );
    let mut g = ShareGroup::new("g");
    g.heartbeat(&join("a"), &topics(4), 0, &config).unwrap();
    let b = g.heartbeat(&join("b"), &topics(4), 0, &config).unwrap();
    assert_eq!(partitions_of(&b), vec![1, 3]);
    let again = ShareHeartbeat {
        member_id: "a".into(),
        member_epoch: 1,
        ..ShareHeartbeat::default()
    };
    let a = g.heartbeat(&again, &topics(4), 0, &config).unwrap();
    assert_eq!(
        (a.member_epoch, partitions_of(&a)),
        (2, vec![0, 2]),
        "a learns the new epoch"
    );
}

#[test]
fn unknown_members_are_refused_leaving_reassigns_and_silence_expires() {
    let config = ShareGroupConfig::default();
    let mut g = ShareGroup::new("g");
    let stranger = ShareHeartbeat {
        member_id: "x".into(),
        member_epoch: 3,
        ..ShareHeartbeat::default()
    };
    assert_eq!(
        g.heartbeat(&stranger, &topics(2), 0, &config),
        Err(ResponseError::UnknownMemberId)
    );
    g.heartbeat(&join("a"), &topics(2), 0, &config).unwrap();
    g.heartbeat(&join("b"), &topics(2), 10, &config).unwrap();
    let leave = ShareHeartbeat {
        member_id: "b".into(),
        member_epoch: LEAVE_EPOCH,
        ..ShareHeartbeat::default()
    };
    assert_eq!(
        g.heartbeat(&leave, &topics(2), 0, &config)
            .unwrap()
            .member_epoch,
        LEAVE_EPOCH
    );
    assert_eq!(g.members["a"].assignment.values().flatten().count(), 2);
    assert_eq!(g.expire(i64::from(config.session_timeout_ms)), 1);
    assert_eq!(g.state(), "Empty");
}

#[test]
fn the_coordinator_keeps_share_and_consumer_ids_apart_and_lists_and_deletes_share_groups() {
    use crate::coordinator::group::{GroupConfig, GroupCoordinator};
    let mut c = GroupCoordinator::new(GroupConfig::default());
    c.share_heartbeat("s", &join("a"), &topics(1), 0, &ShareGroupConfig::default())
        .unwrap();
    let consumer_join = crate::coordinator::group::consumer::heartbeat::HeartbeatRequest {
        member_id: "m".into(),
        member_epoch: JOIN_EPOCH,
        subscribed_topic_names: Some(vec!["t".into()]),
        ..Default::default()
    };
    let (answer, _) = c.consumer_heartbeat("s", &consumer_join, &topics(1), 0);
    assert_eq!(answer.error, Some(ResponseError::GroupIdNotFound));
    let listed = c.list_groups(&[], &["share".to_owned()]);
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].group_type, listed[0].state), ("share", "Stable"));
    let (results, _) = c.delete_groups(&["s".to_owned()], 0);
    assert_eq!(results[0].1, Some(ResponseError::NonEmptyGroup));
    let leave = ShareHeartbeat {
        member_id: "a".into(),
        member_epoch: LEAVE_EPOCH,
        ..ShareHeartbeat::default()
    };
    c.share_heartbeat("s", &leave, &topics(1), 0, &ShareGroupConfig::default())
        .unwrap();
    let (results, _) = c.delete_groups(&["s".to_owned()], 0);
    assert_eq!(results[0].1, None);
    assert!(!c.is_share_group("s"));
}
