//! Scenario tests of `state/lifecycle.rs`: what happens after the join phase (SyncGroup
//! timeouts, heartbeats and session expiry, pending member ids, LeaveGroup) and the join
//! phase's timers. Fixtures come from `tests_state.rs`; like the group itself, everything
//! runs on one thread.

use kafka_protocol::ResponseError;

use super::state::{Group, GroupState};
use super::tests_state::{
    REBALANCE_MS, SESSION_MS, config, heartbeat, join_of, join_req, member_id_round, stable_group,
    static_join_req, sync_req,
};
use super::types::LeavingMember;

#[test]
fn initial_delay_never_exceeds_the_rebalance_timeout() {
    let mut group = Group::new("g", config(3_000), 0);
    let mut now = 0;
    let mut completed_at = None;
    for i in 0..30u64 {
        let mut req = join_req("", &format!("c{i}"));
        req.require_known_member_id = false;
        req.rebalance_timeout_ms = 10_000;
        group.join(req, i, now);
        now += 1_000;
        if !group.tick(now).is_empty() {
            completed_at = Some(now);
            break;
        }
    }
    assert_eq!(completed_at, Some(10_000));
    assert_eq!(group.state(), GroupState::CompletingRebalance);
}

#[test]
fn heartbeat_after_session_expiry_gets_unknown_member_id() {
    let (mut group, ids) = stable_group(&["a", "b"]);
    let (a, b) = (&ids[0], &ids[1]);
    assert_eq!(heartbeat(&mut group, b, 1, 6_000), None);
    assert_eq!(group.next_deadline_ms(), Some(i64::from(SESSION_MS)));
    // a never heartbeats: its session ends at 10 s.
    assert!(group.tick(9_999).is_empty());
    assert!(group.has_member(a));
    group.tick(10_000);
    assert!(!group.has_member(a));
    assert_eq!(group.state(), GroupState::PreparingRebalance);
    assert_eq!(
        heartbeat(&mut group, a, 1, 10_001),
        Some(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        heartbeat(&mut group, b, 1, 10_001),
        Some(ResponseError::RebalanceInProgress)
    );
    let out = group.join(join_req(b, "b"), 5, 10_002);
    let r = join_of(&out, 5);
    assert_eq!(
        (r.generation_id, r.leader.as_str()),
        (2, b.as_str()),
        "b took over as leader"
    );
}

#[test]
fn parked_members_do_not_expire_while_waiting() {
    let (mut group, ids) = stable_group(&["a", "b"]);
    // a (the leader) rejoins and parks. b keeps heartbeating but never rejoins.
    assert!(group.join(join_req(&ids[0], "a"), 1, 1_000).is_empty());
    assert_eq!(
        heartbeat(&mut group, &ids[1], 1, 5_000),
        Some(ResponseError::RebalanceInProgress)
    );
    assert!(
        group.tick(12_000).is_empty(),
        "a's session passed while parked: no effect"
    );
    for t in [14_000, 23_000] {
        heartbeat(&mut group, &ids[1], 1, t);
    }
    assert!(group.tick(30_999).is_empty());
    assert!(group.has_member(&ids[0]));
    let out = group.tick(31_000);
    let r = join_of(&out, 1);
    assert_eq!(r.generation_id, 2);
    assert_eq!(r.members.len(), 1);
    assert!(
        !group.has_member(&ids[1]),
        "b did not rejoin within the rebalance timeout"
    );
}

#[test]
fn new_member_stuck_in_join_is_dropped_after_the_new_member_timeout() {
    let mut group = Group::new("g", config(0), 0);
    let mut a = join_req("", "a");
    a.require_known_member_id = false;
    a.rebalance_timeout_ms = 600_000;
    let out = group.join(a, 1, 0);
    let a = join_of(&out, 1).member_id;
    group.sync(sync_req(&a, 1, &[]), 2, 0);
    assert_eq!(group.state(), GroupState::Stable);

    let mut n = join_req("", "n");
    n.require_known_member_id = false;
    assert!(group.join(n, 3, 1_000).is_empty());
    assert_eq!(group.state(), GroupState::PreparingRebalance);
    // a heartbeats but never rejoins; the rebalance timeout (10 min) is longer than the
    // new-member join timeout (5 min).
    for t in (9_000..300_000).step_by(9_000) {
        heartbeat(&mut group, &a, 1, t);
        assert!(group.tick(t).is_empty());
    }
    let out = group.tick(301_000);
    let r = join_of(&out, 3);
    assert_eq!(r.error, Some(ResponseError::UnknownMemberId));
    assert_eq!(group.member_count(), 1);
}

#[test]
fn rebalance_timeout_drops_a_member_that_did_not_rejoin() {
    let (mut group, ids) = stable_group(&["a", "b", "c"]);
    let (a, b, c) = (&ids[0], &ids[1], &ids[2]);
    // The leader rejoins: a forced rebalance. b rejoins, c keeps heartbeating but never does.
    assert!(group.join(join_req(a, "a"), 1, 1_000).is_empty());
    assert_eq!(group.state(), GroupState::PreparingRebalance);
    assert!(group.join(join_req(b, "b"), 2, 2_000).is_empty());
    for t in [5_000, 10_000, 15_000, 20_000, 25_000, 30_000] {
        assert_eq!(
            heartbeat(&mut group, c, 1, t),
            Some(ResponseError::RebalanceInProgress)
        );
        assert!(group.tick(t).is_empty());
    }
    assert_eq!(group.next_deadline_ms(), Some(31_000));
    let out = group.tick(31_000);
    assert_eq!(out.len(), 2);
    assert!(!group.has_member(c));
    let leader = join_of(&out, 1);
    assert_eq!(leader.generation_id, 2);
    let listed: Vec<&str> = leader
        .members
        .iter()
        .map(|m| m.member_id.as_str())
        .collect();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&a.as_str()) && listed.contains(&b.as_str()));
    assert_eq!(
        heartbeat(&mut group, c, 1, 31_001),
        Some(ResponseError::UnknownMemberId)
    );
}

#[test]
fn member_that_never_syncs_is_removed_at_the_sync_timeout() {
    let mut group = Group::new("g", config(0), 0);
    let a = member_id_round(&mut group, "a", 1, 0);
    let b = member_id_round(&mut group, "b", 2, 0);
    group.join(join_req(&a, "a"), 11, 0);
    group.join(join_req(&b, "b"), 12, 0);
    group.sync(sync_req(&a, 1, &[(&a, "pa"), (&b, "pb")]), 21, 100);
    assert_eq!(group.state(), GroupState::Stable);
    // b got its join response but never syncs; heartbeats alone do not save it.
    for t in [9_000, 18_000, 27_000] {
        assert_eq!(heartbeat(&mut group, &b, 1, t), None);
        assert_eq!(heartbeat(&mut group, &a, 1, t), None);
    }
    group.tick(i64::from(REBALANCE_MS));
    assert!(!group.has_member(&b));
    assert_eq!(group.state(), GroupState::PreparingRebalance);
}

#[test]
fn leave_with_batched_members() {
    let (mut group, ids) = stable_group(&["a", "b", "c"]);
    let leaving = vec![
        LeavingMember {
            member_id: ids[0].clone(),
            ..LeavingMember::default()
        },
        LeavingMember {
            member_id: ids[2].clone(),
            ..LeavingMember::default()
        },
        LeavingMember {
            member_id: "ghost".to_owned(),
            ..LeavingMember::default()
        },
    ];
    let (response, deliveries) = group.leave(&leaving, 1_000);
    assert!(deliveries.is_empty());
    assert_eq!(response.error, None);
    let errors: Vec<Option<ResponseError>> = response.members.iter().map(|m| m.error).collect();
    assert_eq!(
        errors,
        vec![None, None, Some(ResponseError::UnknownMemberId)]
    );
    assert_eq!(group.member_count(), 1);
    assert_eq!(group.state(), GroupState::PreparingRebalance);
    assert_eq!(
        group.leader_id(),
        Some(ids[1].as_str()),
        "leadership moves to a remaining member"
    );

    let out = group.join(join_req(&ids[1], "b"), 5, 1_100);
    assert_eq!(join_of(&out, 5).generation_id, 2);

    // The last member leaving empties the group, with a new generation to persist.
    group.take_metadata_dirty();
    let leaving = [LeavingMember {
        member_id: ids[1].clone(),
        ..LeavingMember::default()
    }];
    let (response, _) = group.leave(&leaving, 1_200);
    assert_eq!(response.members[0].error, None);
    assert_eq!(group.state(), GroupState::Empty);
    assert_eq!(group.generation_id(), 3);
    assert!(group.take_metadata_dirty());
}

#[test]
fn leave_by_instance_id_and_fenced_leave() {
    let mut group = Group::new("g", config(0), 0);
    let out = group.join(static_join_req("", "a", "ia"), 1, 0);
    let a = join_of(&out, 1).member_id;
    let leaving = [
        LeavingMember {
            member_id: "stale-id".to_owned(),
            group_instance_id: Some("ia".to_owned()),
            reason: None,
        },
        LeavingMember {
            member_id: String::new(),
            group_instance_id: Some("ia".to_owned()),
            reason: Some("admin".to_owned()),
        },
        LeavingMember {
            member_id: String::new(),
            group_instance_id: Some("unknown".to_owned()),
            reason: None,
        },
    ];
    let (response, _) = group.leave(&leaving, 10);
    let errors: Vec<Option<ResponseError>> = response.members.iter().map(|m| m.error).collect();
    assert_eq!(
        errors,
        vec![
            Some(ResponseError::FencedInstanceId),
            None,
            Some(ResponseError::UnknownMemberId)
        ]
    );
    assert!(!group.has_member(&a));
}

#[test]
fn pending_member_that_never_joins_expires_after_its_session_timeout() {
    let mut group = Group::new("g", config(0), 0);
    let x = member_id_round(&mut group, "x", 1, 0);
    let y = member_id_round(&mut group, "y", 2, 0);
    assert!(
        group.join(join_req(&x, "x"), 3, 0).is_empty(),
        "waits for the pending id"
    );
    assert_eq!(group.next_deadline_ms(), Some(i64::from(SESSION_MS)));
    let out = group.tick(i64::from(SESSION_MS));
    assert_eq!(join_of(&out, 3).generation_id, 1);
    assert!(!group.is_pending_member(&y));
    let out = group.join(join_req(&y, "y"), 4, 10_001);
    assert_eq!(join_of(&out, 4).error, Some(ResponseError::UnknownMemberId));
}
