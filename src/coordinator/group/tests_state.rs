//! Scenario tests of one group's rebalance state machine, driven without sockets: requests go
//! in with a token and a time, deliveries come out. This file holds the shared fixtures and
//! the tests of `state.rs` and `state/join.rs` (JoinGroup, rebalance phases, static members,
//! protocol selection, describe); `tests_state_lifecycle.rs` tests `state/lifecycle.rs`.
//! Like the group itself, everything runs on one thread.

use bytes::Bytes;
use kafka_protocol::ResponseError;

use super::config::GroupConfig;
use super::state::{Group, GroupState};
use super::types::{
    Delivery, HeartbeatRequest, JoinRequest, JoinResponse, Protocol, RequestToken, Response,
    SyncRequest, SyncResponse,
};

pub(super) const SESSION_MS: i32 = 10_000;
pub(super) const REBALANCE_MS: i32 = 30_000;

pub(super) fn config(initial_delay_ms: i64) -> GroupConfig {
    GroupConfig {
        initial_rebalance_delay_ms: initial_delay_ms,
        ..GroupConfig::default()
    }
}

fn protocols(names: &[&str], metadata: &str) -> Vec<Protocol> {
    names
        .iter()
        .map(|n| Protocol {
            name: (*n).to_owned(),
            metadata: Bytes::from(format!("{n}:{metadata}")),
        })
        .collect()
}

pub(super) fn join_req(member_id: &str, client_id: &str) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_owned(),
        group_instance_id: None,
        client_id: client_id.to_owned(),
        client_host: "/127.0.0.1".to_owned(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        protocol_type: "consumer".to_owned(),
        protocols: protocols(&["range", "roundrobin"], client_id),
        require_known_member_id: true,
        reason: None,
    }
}

pub(super) fn static_join_req(member_id: &str, client_id: &str, instance: &str) -> JoinRequest {
    JoinRequest {
        group_instance_id: Some(instance.to_owned()),
        ..join_req(member_id, client_id)
    }
}

pub(super) fn join_of(deliveries: &[Delivery], token: RequestToken) -> JoinResponse {
    let found: Vec<&JoinResponse> = deliveries
        .iter()
        .filter(|d| d.token == token)
        .filter_map(|d| match &d.response {
            Response::Join(r) => Some(r),
            Response::Sync(_) => None,
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one join response for token {token}: {deliveries:?}"
    );
    found[0].clone()
}

fn sync_of(deliveries: &[Delivery], token: RequestToken) -> SyncResponse {
    let found: Vec<&SyncResponse> = deliveries
        .iter()
        .filter(|d| d.token == token)
        .filter_map(|d| match &d.response {
            Response::Sync(r) => Some(r),
            Response::Join(_) => None,
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one sync response for token {token}: {deliveries:?}"
    );
    found[0].clone()
}

pub(super) fn heartbeat(
    group: &mut Group,
    member_id: &str,
    generation_id: i32,
    now_ms: i64,
) -> Option<ResponseError> {
    let req = HeartbeatRequest {
        member_id: member_id.to_owned(),
        group_instance_id: None,
        generation_id,
    };
    group.heartbeat(&req, now_ms)
}

pub(super) fn sync_req(
    member_id: &str,
    generation_id: i32,
    assignments: &[(&str, &str)],
) -> SyncRequest {
    SyncRequest {
        member_id: member_id.to_owned(),
        group_instance_id: None,
        generation_id,
        protocol_type: Some("consumer".to_owned()),
        protocol_name: None,
        assignments: assignments
            .iter()
            .map(|(m, a)| ((*m).to_owned(), Bytes::from((*a).to_owned())))
            .collect(),
    }
}

/// Gets a member id through the MEMBER_ID_REQUIRED round.
pub(super) fn member_id_round(
    group: &mut Group,
    client_id: &str,
    token: RequestToken,
    now_ms: i64,
) -> String {
    let out = group.join(join_req("", client_id), token, now_ms);
    let response = join_of(&out, token);
    assert_eq!(response.error, Some(ResponseError::MemberIdRequired));
    assert!(response.member_id.starts_with(&format!("{client_id}-")));
    assert_eq!(response.generation_id, -1);
    response.member_id
}

/// Builds a Stable group (no initial delay) and returns member ids, leader first. Dynamic
/// members get their ids first, so the pending ids hold the join phase open until the last
/// member is in.
fn stable_group_of(clients: &[(&str, Option<&str>)]) -> (Group, Vec<String>) {
    let mut group = Group::new("g", config(0), 0);
    let mut ids: Vec<String> = clients
        .iter()
        .enumerate()
        .map(|(i, (client, instance))| match instance {
            Some(_) => String::new(),
            None => member_id_round(&mut group, client, 100 + i as u64, 0),
        })
        .collect();
    let mut deliveries = Vec::new();
    for (i, (client, instance)) in clients.iter().enumerate() {
        let req = match instance {
            Some(instance) => static_join_req("", client, instance),
            None => join_req(&ids[i], client),
        };
        deliveries.extend(group.join(req, i as u64, 0));
    }
    for (i, id) in ids.iter_mut().enumerate() {
        *id = join_of(&deliveries, i as u64).member_id;
    }
    let generation = group.generation_id();
    assert_eq!(group.state(), GroupState::CompletingRebalance);
    let leader = group.leader_id().unwrap_or_default().to_owned();
    let assignments: Vec<(String, String)> = ids
        .iter()
        .map(|id| (id.clone(), format!("assigned-{id}")))
        .collect();
    let refs: Vec<(&str, &str)> = assignments
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let out = group.sync(sync_req(&leader, generation, &refs), 999, 0);
    assert_eq!(sync_of(&out, 999).error, None);
    for id in ids.iter().filter(|id| **id != leader) {
        let out = group.sync(sync_req(id, generation, &[]), 998, 0);
        assert_eq!(
            sync_of(&out, 998).assignment,
            Bytes::from(format!("assigned-{id}"))
        );
    }
    assert_eq!(group.state(), GroupState::Stable);
    ids.sort_by_key(|id| *id != leader);
    (group, ids)
}

pub(super) fn stable_group(clients: &[&str]) -> (Group, Vec<String>) {
    let dynamic: Vec<(&str, Option<&str>)> = clients.iter().map(|c| (*c, None)).collect();
    stable_group_of(&dynamic)
}

#[test]
fn three_members_join_with_member_id_required_round_and_initial_delay() {
    let mut group = Group::new("g", config(3_000), 0);
    let a = member_id_round(&mut group, "client-a", 1, 0);
    let b = member_id_round(&mut group, "client-b", 2, 0);
    let c = member_id_round(&mut group, "client-c", 3, 0);
    assert_eq!(
        group.state(),
        GroupState::Empty,
        "pending members do not start a rebalance"
    );
    assert_eq!(
        group.next_deadline_ms(),
        Some(i64::from(SESSION_MS)),
        "pending ids expire"
    );

    // The first real join starts the initial delay; nothing is answered yet.
    assert!(group.join(join_req(&a, "client-a"), 11, 100).is_empty());
    assert_eq!(group.state(), GroupState::PreparingRebalance);
    assert!(group.join(join_req(&b, "client-b"), 12, 200).is_empty());
    assert!(group.join(join_req(&c, "client-c"), 13, 300).is_empty());
    assert_eq!(group.next_deadline_ms(), Some(3_100));

    // New members arrived during the delay: it is extended once.
    assert!(group.tick(3_100).is_empty());
    assert_eq!(group.state(), GroupState::PreparingRebalance);
    assert_eq!(group.next_deadline_ms(), Some(6_100));

    let out = group.tick(6_100);
    assert_eq!(out.len(), 3);
    assert_eq!(group.state(), GroupState::CompletingRebalance);
    let ra = join_of(&out, 11);
    let rb = join_of(&out, 12);
    let rc = join_of(&out, 13);
    for (r, id) in [(&ra, &a), (&rb, &b), (&rc, &c)] {
        assert_eq!(r.error, None);
        assert_eq!(r.generation_id, 1);
        assert_eq!(r.protocol_type.as_deref(), Some("consumer"));
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
        assert_eq!(r.leader, a);
        assert_eq!(&r.member_id, id);
        assert!(!r.skip_assignment);
    }
    assert_eq!(
        ra.members.len(),
        3,
        "the leader gets every member's metadata"
    );
    assert!(
        ra.members
            .iter()
            .any(|m| m.member_id == b && m.metadata == "range:client-b")
    );
    assert!(rb.members.is_empty() && rc.members.is_empty());

    // Followers sync first and wait; the leader's sync releases everyone.
    assert!(group.sync(sync_req(&b, 1, &[]), 22, 6_200).is_empty());
    assert!(group.sync(sync_req(&c, 1, &[]), 23, 6_200).is_empty());
    let out = group.sync(
        sync_req(&a, 1, &[(&a, "pa"), (&b, "pb"), (&c, "pc")]),
        21,
        6_300,
    );
    assert_eq!(out.len(), 3);
    assert_eq!(sync_of(&out, 21).assignment, "pa");
    assert_eq!(sync_of(&out, 22).assignment, "pb");
    assert_eq!(sync_of(&out, 23).assignment, "pc");
    assert_eq!(sync_of(&out, 22).protocol_name.as_deref(), Some("range"));
    assert_eq!(group.state(), GroupState::Stable);
    assert!(
        group.take_metadata_dirty(),
        "the leader's sync persists the group"
    );
    assert!(!group.take_metadata_dirty());

    for id in [&a, &b, &c] {
        assert_eq!(heartbeat(&mut group, id, 1, 7_000), None);
    }
    assert_eq!(
        heartbeat(&mut group, &a, 0, 7_000),
        Some(ResponseError::IllegalGeneration)
    );
}

#[test]
fn join_storm_completes_once_with_every_member() {
    let mut group = Group::new("g", config(3_000), 0);
    for i in 0..20u64 {
        let mut req = join_req("", &format!("c{i}"));
        // v3-style clients: no MEMBER_ID_REQUIRED round.
        req.require_known_member_id = false;
        assert!(group.join(req, i, i as i64 * 100).is_empty());
    }
    assert_eq!(group.member_count(), 20);
    assert!(
        group.tick(3_000).is_empty(),
        "delay extended while members keep arriving"
    );
    let out = group.tick(6_000);
    assert_eq!(out.len(), 20);
    let leader = group.leader_id().unwrap_or_default().to_owned();
    let mut leaders = 0;
    for token in 0..20u64 {
        let r = join_of(&out, token);
        assert_eq!(r.generation_id, 1);
        assert_eq!(r.leader, leader);
        if r.member_id == leader {
            leaders += 1;
            assert_eq!(r.members.len(), 20);
        }
    }
    assert_eq!(leaders, 1);

    // A storm of rejoins in the next generation: no initial delay any more, and the join
    // completes the moment the last member is back.
    let members: Vec<String> = group.members().map(|m| m.member_id.clone()).collect();
    let mut out = Vec::new();
    for (i, id) in members.iter().enumerate() {
        let mut req = join_req(id, "c");
        req.protocols = protocols(&["roundrobin", "range"], "x");
        out.extend(group.join(req, 100 + i as u64, 7_000));
    }
    assert_eq!(out.len(), 20);
    assert_eq!(group.generation_id(), 2);
    assert_eq!(
        group.protocol_name(),
        Some("roundrobin"),
        "every member now prefers roundrobin"
    );
}

#[test]
fn member_joining_mid_sync_sends_the_group_back_to_preparing() {
    let mut group = Group::new("g", config(0), 0);
    let a = member_id_round(&mut group, "a", 1, 0);
    let b = member_id_round(&mut group, "b", 2, 0);
    group.join(join_req(&a, "a"), 11, 10);
    let out = group.join(join_req(&b, "b"), 12, 10);
    assert_eq!(out.len(), 2);
    assert_eq!(group.state(), GroupState::CompletingRebalance);
    assert!(
        group.sync(sync_req(&b, 1, &[]), 22, 20).is_empty(),
        "follower waits for leader"
    );

    // c arrives while the leader is computing the assignment.
    let c = member_id_round(&mut group, "c", 3, 30);
    assert_eq!(
        group.state(),
        GroupState::CompletingRebalance,
        "a pending id changes nothing"
    );
    let out = group.join(join_req(&c, "c"), 13, 40);
    assert_eq!(group.state(), GroupState::PreparingRebalance);
    assert_eq!(
        sync_of(&out, 22).error,
        Some(ResponseError::RebalanceInProgress)
    );

    // The leader's late sync is refused; heartbeats tell everyone to rejoin.
    let out = group.sync(sync_req(&a, 1, &[(&a, "x")]), 21, 50);
    assert_eq!(
        sync_of(&out, 21).error,
        Some(ResponseError::RebalanceInProgress)
    );
    assert_eq!(
        heartbeat(&mut group, &a, 1, 50),
        Some(ResponseError::RebalanceInProgress)
    );

    assert!(group.join(join_req(&a, "a"), 31, 60).is_empty());
    let out = group.join(join_req(&b, "b"), 32, 60);
    assert_eq!(out.len(), 3);
    assert_eq!(join_of(&out, 31).generation_id, 2);
    assert_eq!(join_of(&out, 31).members.len(), 3);
    assert_eq!(join_of(&out, 13).member_id, c);
    assert_eq!(
        heartbeat(&mut group, &a, 1, 70),
        Some(ResponseError::IllegalGeneration)
    );
}

#[test]
fn static_member_replacement_without_rebalance_fences_the_old_id() {
    let (mut group, ids) = stable_group_of(&[("a", Some("instance-a")), ("b", None)]);
    let (old_a, leader) = (ids[0].clone(), ids[0].clone());
    assert!(group.take_metadata_dirty());

    // instance-a restarts: same instance id, no member id, same metadata.
    let out = group.join(static_join_req("", "a", "instance-a"), 5, 1_000);
    let r = join_of(&out, 5);
    assert_eq!(r.error, None);
    assert_ne!(r.member_id, old_a);
    assert_eq!(r.generation_id, 1, "no rebalance");
    assert_eq!(
        r.leader, leader,
        "the previous leader id, so the new member runs no assignment"
    );
    assert!(r.members.is_empty());
    assert_eq!(group.state(), GroupState::Stable);
    assert!(
        group.take_metadata_dirty(),
        "the new member id is persisted"
    );
    let new_a = r.member_id;

    // The old incarnation is fenced everywhere.
    let fenced = HeartbeatRequest {
        member_id: old_a.clone(),
        group_instance_id: Some("instance-a".to_owned()),
        generation_id: 1,
    };
    assert_eq!(
        group.heartbeat(&fenced, 1_100),
        Some(ResponseError::FencedInstanceId)
    );
    let mut sync = sync_req(&old_a, 1, &[]);
    sync.group_instance_id = Some("instance-a".to_owned());
    assert_eq!(
        sync_of(&group.sync(sync, 6, 1_100), 6).error,
        Some(ResponseError::FencedInstanceId)
    );
    let out = group.join(static_join_req(&old_a, "a", "instance-a"), 7, 1_100);
    assert_eq!(
        join_of(&out, 7).error,
        Some(ResponseError::FencedInstanceId)
    );

    // The new incarnation keeps the old assignment.
    let out = group.sync(sync_req(&new_a, 1, &[]), 8, 1_200);
    assert_eq!(
        sync_of(&out, 8).assignment,
        Bytes::from(format!("assigned-{old_a}"))
    );

    // A restart with a different subscription does rebalance.
    let mut changed = static_join_req("", "a", "instance-a");
    changed.protocols = protocols(&["range", "roundrobin"], "new-topics");
    group.join(changed, 9, 2_000);
    assert_eq!(group.state(), GroupState::PreparingRebalance);
}

#[test]
fn static_member_fences_a_parked_join_of_its_old_id() {
    let (mut group, ids) = stable_group_of(&[("a", Some("ia")), ("b", None)]);
    let (a, b) = (&ids[0], &ids[1]);
    // The old a rejoins (it is the leader, so this starts a rebalance) and parks.
    assert!(group.join(static_join_req(a, "a", "ia"), 4, 10).is_empty());
    assert_eq!(group.state(), GroupState::PreparingRebalance);
    // Its replacement arrives: the parked join of the old id is fenced at once.
    let out = group.join(static_join_req("", "a", "ia"), 5, 20);
    assert_eq!(
        join_of(&out, 4).error,
        Some(ResponseError::FencedInstanceId)
    );
    let out = group.join(join_req(b, "b"), 6, 30);
    let r = join_of(&out, 5);
    assert_eq!(r.error, None);
    assert_eq!(r.generation_id, 2);
    assert_ne!(&r.member_id, a);
    assert_eq!(
        r.leader, r.member_id,
        "leadership moved to the new member id"
    );
}

#[test]
fn pending_member_blocks_the_join_until_it_joins_or_expires() {
    let (mut group, ids) = stable_group(&["a"]);
    let late = member_id_round(&mut group, "late", 1, 100);
    // a rejoins; the group waits for the pending id too.
    assert!(group.join(join_req(&ids[0], "a"), 2, 200).is_empty());
    let out = group.join(join_req(&late, "late"), 3, 300);
    assert_eq!(out.len(), 2);
    assert_eq!(join_of(&out, 2).members.len(), 2);
}

#[test]
fn protocol_selection_and_inconsistent_protocols() {
    let mut group = Group::new("g", config(3_000), 0);
    let mut a = join_req("", "a");
    a.require_known_member_id = false;
    a.protocols = protocols(&["range", "roundrobin", "sticky"], "a");
    let mut b = a.clone();
    b.client_id = "b".to_owned();
    b.protocols = protocols(&["sticky", "roundrobin"], "b");
    let mut c = a.clone();
    c.client_id = "c".to_owned();
    c.protocols = protocols(&["roundrobin", "sticky"], "c");
    group.join(a, 1, 0);
    group.join(b, 2, 0);
    group.join(c, 3, 0);
    assert!(group.tick(3_000).is_empty());
    let out = group.tick(6_000);
    // Candidates: roundrobin and sticky (range is not supported by b and c). Votes: a picks
    // roundrobin (its first candidate), b sticky, c roundrobin.
    assert_eq!(
        join_of(&out, 1).protocol_name.as_deref(),
        Some("roundrobin")
    );

    let mut d = join_req("", "d");
    d.protocols = protocols(&["range"], "d");
    let out = group.join(d, 4, 10);
    assert_eq!(
        join_of(&out, 4).error,
        Some(ResponseError::InconsistentGroupProtocol)
    );
    let mut e = join_req("", "e");
    e.protocol_type = "connect".to_owned();
    let out = group.join(e, 5, 10);
    assert_eq!(
        join_of(&out, 5).error,
        Some(ResponseError::InconsistentGroupProtocol)
    );
    let mut f = join_req("", "f");
    f.session_timeout_ms = 1;
    let out = group.join(f, 6, 10);
    assert_eq!(
        join_of(&out, 6).error,
        Some(ResponseError::InvalidSessionTimeout)
    );
}

#[test]
fn follower_rejoin_in_stable_returns_current_generation_without_rebalance() {
    let (mut group, ids) = stable_group(&["a", "b"]);
    let out = group.join(join_req(&ids[1], "b"), 7, 500);
    let r = join_of(&out, 7);
    assert_eq!((r.error, r.generation_id), (None, 1));
    assert!(r.members.is_empty());
    assert_eq!(group.state(), GroupState::Stable);
    let out = group.join(join_req("unknown-member", "z"), 8, 500);
    assert_eq!(join_of(&out, 8).error, Some(ResponseError::UnknownMemberId));
}

#[test]
fn describe_shows_metadata_only_when_stable() {
    let (group, ids) = stable_group(&["a", "b"]);
    let d = group.describe();
    assert_eq!(d.state, "Stable");
    assert_eq!(d.protocol_type, "consumer");
    assert_eq!(d.protocol_data, "range");
    assert_eq!(d.members.len(), 2);
    let a = d
        .members
        .iter()
        .find(|m| m.member_id == ids[0])
        .map(|m| m.assignment.clone());
    assert_eq!(a, Some(Bytes::from(format!("assigned-{}", ids[0]))));

    let mut preparing = group.clone();
    preparing.join(join_req(&ids[0], "a"), 1, 10);
    let d = preparing.describe();
    assert_eq!(d.state, "PreparingRebalance");
    assert_eq!(d.protocol_data, "");
    assert!(
        d.members
            .iter()
            .all(|m| m.metadata.is_empty() && m.assignment.is_empty())
    );
}

#[test]
fn group_state_names_parse_case_insensitively() {
    for state in [
        GroupState::Empty,
        GroupState::PreparingRebalance,
        GroupState::CompletingRebalance,
        GroupState::Stable,
        GroupState::Dead,
    ] {
        assert_eq!(
            GroupState::parse(&state.as_str().to_lowercase()),
            Some(state)
        );
    }
    assert_eq!(GroupState::parse("Rebalancing"), None);
}

#[test]
fn group_max_size_turns_away_extra_members() {
    let mut group = Group::new(
        "g",
        GroupConfig {
            max_size: 1,
            ..config(0)
        },
        0,
    );
    let a = member_id_round(&mut group, "a", 1, 0);
    group.join(join_req(&a, "a"), 2, 0);
    let mut b = join_req("", "b");
    b.require_known_member_id = false;
    let out = group.join(b, 3, 0);
    assert_eq!(
        join_of(&out, 3).error,
        Some(ResponseError::GroupMaxSizeReached)
    );
    assert_eq!(group.member_count(), 1);
}
