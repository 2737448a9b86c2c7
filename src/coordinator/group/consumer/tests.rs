//! Unit tests of KIP-848 consumer groups: assignors, reconciliation (no partition ever held by
//! two members), heartbeat errors, leaving, static members, timers, records and replay.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::assignor::{self, MemberSpec};
use super::heartbeat::{ConsumerGroupConfig, HeartbeatRequest, HeartbeatResponse};
use super::records::{self, ConsumerRecord};
use super::{
    Assignment, ConsumerGroup, ConsumerGroupState, LEAVE_EPOCH, MemberState, STATIC_LEAVE_EPOCH,
    TopicInfo, Topics, size,
};
use crate::coordinator::group::records::Record;

const GROUP: &str = "g";

fn topic_id(n: u8) -> Uuid {
    Uuid::from_bytes([n; 16])
}

fn topics(list: &[(&str, u8, i32)]) -> Topics {
    Topics::new(list.iter().map(|(name, id, partitions)| TopicInfo {
        name: (*name).to_owned(),
        id: topic_id(*id),
        partitions: *partitions,
    }))
}

fn config() -> ConsumerGroupConfig {
    ConsumerGroupConfig {
        session_timeout_ms: 45_000,
        heartbeat_interval_ms: 5_000,
        ..ConsumerGroupConfig::default()
    }
}

fn join(member: &str, topics: &[&str]) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: member.to_owned(),
        member_epoch: 0,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(topics.iter().map(|t| (*t).to_owned()).collect()),
        owned: Some(Assignment::new()),
        client_id: "c".to_owned(),
        client_host: "/127.0.0.1".to_owned(),
        ..HeartbeatRequest::default()
    }
}

fn beat(member: &str, epoch: i32, owned: &Assignment) -> HeartbeatRequest {
    HeartbeatRequest {
        member_id: member.to_owned(),
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        owned: Some(owned.clone()),
        ..HeartbeatRequest::default()
    }
}

/// A client in a test: sends heartbeats, and owns exactly what the coordinator last gave it
/// (it revokes at once).
struct Client {
    id: String,
    epoch: i32,
    owned: Assignment,
}

impl Client {
    fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            epoch: 0,
            owned: Assignment::new(),
        }
    }

    fn apply(&mut self, response: &HeartbeatResponse) {
        assert_eq!(response.error, None, "{response:?}");
        self.epoch = response.member_epoch;
        if let Some(a) = &response.assignment {
            self.owned = a.clone();
        }
    }
}

struct World {
    group: ConsumerGroup,
    topics: Topics,
    records: Vec<Record>,
    now: i64,
}

impl World {
    fn new(topics: Topics) -> Self {
        Self {
            group: ConsumerGroup::default(),
            topics,
            records: Vec::new(),
            now: 1_000,
        }
    }

    fn send(&mut self, req: &HeartbeatRequest) -> HeartbeatResponse {
        let (response, records) =
            self.group
                .heartbeat(GROUP, req, &self.topics, &config(), self.now);
        self.records.extend(records);
        self.assert_no_double_ownership();
        response
    }

    fn join(&mut self, client: &mut Client, topics: &[&str]) {
        let response = self.send(&join(&client.id, topics));
        client.apply(&response);
    }

    fn beat(&mut self, client: &mut Client) {
        let response = self.send(&beat(&client.id, client.epoch, &client.owned));
        client.apply(&response);
    }

    /// Heartbeats every client until a round changes nothing.
    fn settle(&mut self, clients: &mut [&mut Client]) {
        for _ in 0..10 {
            let before: Vec<(i32, Assignment)> =
                clients.iter().map(|c| (c.epoch, c.owned.clone())).collect();
            for c in clients.iter_mut() {
                self.beat(c);
            }
            let after: Vec<(i32, Assignment)> =
                clients.iter().map(|c| (c.epoch, c.owned.clone())).collect();
            if before == after && self.group.state() == ConsumerGroupState::Stable {
                return;
            }
        }
        panic!("group did not settle: {:?}", self.group.state());
    }

    fn assert_no_double_ownership(&self) {
        let mut seen = BTreeSet::new();
        for m in self.group.members() {
            for (t, ps) in m.assigned.iter().chain(&m.pending_revocation) {
                for p in ps {
                    assert!(seen.insert((*t, *p)), "{t}-{p} held twice");
                }
            }
        }
    }
}

fn count(a: &Assignment) -> usize {
    size(a)
}

#[test]
fn uniform_balances_and_sticks() {
    let t = topic_id(1);
    let topics = BTreeMap::from([(t, 6)]);
    let spec = |current: Assignment| MemberSpec {
        topics: BTreeSet::from([t]),
        current,
    };
    let two = BTreeMap::from([
        ("a".to_owned(), spec(Assignment::new())),
        ("b".to_owned(), spec(Assignment::new())),
    ]);
    let first = assignor::assign(assignor::UNIFORM, &two, &topics);
    assert_eq!(first.values().map(count).collect::<Vec<_>>(), vec![3, 3]);
    // A third member takes one from each; nobody else moves.
    let three = BTreeMap::from([
        ("a".to_owned(), spec(first["a"].clone())),
        ("b".to_owned(), spec(first["b"].clone())),
        ("c".to_owned(), spec(Assignment::new())),
    ]);
    let second = assignor::assign(assignor::UNIFORM, &three, &topics);
    assert_eq!(
        second.values().map(count).collect::<Vec<_>>(),
        vec![2, 2, 2]
    );
    for m in ["a", "b"] {
        let kept = super::filter(&second[m], |t, p| super::contains(&first[m], t, p));
        assert_eq!(count(&kept), 2, "{m} keeps two of its partitions");
    }
}

#[test]
fn uniform_respects_subscriptions() {
    let (t1, t2) = (topic_id(1), topic_id(2));
    let topics = BTreeMap::from([(t1, 4), (t2, 2)]);
    let members = BTreeMap::from([
        (
            "a".to_owned(),
            MemberSpec {
                topics: BTreeSet::from([t1]),
                current: Assignment::new(),
            },
        ),
        (
            "b".to_owned(),
            MemberSpec {
                topics: BTreeSet::from([t1, t2]),
                current: Assignment::new(),
            },
        ),
    ]);
    let out = assignor::assign(assignor::UNIFORM, &members, &topics);
    assert!(!out["a"].contains_key(&t2), "a does not subscribe to t2");
    assert_eq!(count(&out["a"]) + count(&out["b"]), 6);
    assert_eq!(out["b"][&t2].len(), 2);
}

#[test]
fn range_lines_up_co_partitioned_topics() {
    let (t1, t2) = (topic_id(1), topic_id(2));
    let topics = BTreeMap::from([(t1, 3), (t2, 3)]);
    let spec = || MemberSpec {
        topics: BTreeSet::from([t1, t2]),
        current: Assignment::new(),
    };
    let members = BTreeMap::from([("a".to_owned(), spec()), ("b".to_owned(), spec())]);
    let out = assignor::assign(assignor::RANGE, &members, &topics);
    assert_eq!(out["a"][&t1], BTreeSet::from([0, 1]));
    assert_eq!(out["a"][&t2], BTreeSet::from([0, 1]));
    assert_eq!(out["b"][&t1], BTreeSet::from([2]));
    assert_eq!(out["b"][&t2], BTreeSet::from([2]));
}

#[test]
fn first_member_gets_everything_at_epoch_one() {
    let mut w = World::new(topics(&[("t", 1, 4)]));
    let mut a = Client::new("a");
    w.join(&mut a, &["t"]);
    assert_eq!(a.epoch, 1);
    assert_eq!(count(&a.owned), 4);
    assert_eq!(w.group.state(), ConsumerGroupState::Stable);
}

#[test]
fn a_new_member_waits_until_the_owner_revokes() {
    let mut w = World::new(topics(&[("t", 1, 4)]));
    let (mut a, mut b) = (Client::new("a"), Client::new("b"));
    w.join(&mut a, &["t"]);
    w.join(&mut b, &["t"]);
    // b has epoch 2 but nothing yet: a still owns every partition.
    assert_eq!(b.epoch, 2);
    assert!(b.owned.is_empty());
    assert_eq!(
        w.group.member("b").unwrap().state,
        MemberState::UnreleasedPartitions
    );
    // a's heartbeat asks it to give up two, at its old epoch.
    let response = w.send(&beat("a", a.epoch, &a.owned));
    assert_eq!(response.member_epoch, 1);
    assert_eq!(count(response.assignment.as_ref().unwrap()), 2);
    a.apply(&response);
    // Reporting them gone moves a to epoch 2; then b gets them.
    w.beat(&mut a);
    assert_eq!(a.epoch, 2);
    w.beat(&mut b);
    assert_eq!(count(&b.owned), 2);
    assert_eq!(w.group.state(), ConsumerGroupState::Stable);
}

#[test]
fn a_member_still_owning_revoked_partitions_keeps_its_epoch() {
    let mut w = World::new(topics(&[("t", 1, 2)]));
    let (mut a, mut b) = (Client::new("a"), Client::new("b"));
    w.join(&mut a, &["t"]);
    let all = a.owned.clone();
    w.join(&mut b, &["t"]);
    w.send(&beat("a", 1, &all));
    // Still claiming both: no progress, b gets nothing.
    let response = w.send(&beat("a", 1, &all));
    assert_eq!(response.member_epoch, 1);
    w.beat(&mut b);
    assert!(b.owned.is_empty());
}

#[test]
fn three_members_settle_evenly_and_a_leaver_is_replaced() {
    let mut w = World::new(topics(&[("t", 1, 6)]));
    let (mut a, mut b, mut c) = (Client::new("a"), Client::new("b"), Client::new("c"));
    w.join(&mut a, &["t"]);
    w.join(&mut b, &["t"]);
    w.join(&mut c, &["t"]);
    w.settle(&mut [&mut a, &mut b, &mut c]);
    assert_eq!(
        [count(&a.owned), count(&b.owned), count(&c.owned)],
        [2, 2, 2]
    );
    let epoch_before = w.group.group_epoch();
    let response = w.send(&beat("c", LEAVE_EPOCH, &Assignment::new()));
    assert_eq!(response.member_epoch, LEAVE_EPOCH);
    assert_eq!(w.group.group_epoch(), epoch_before + 1);
    w.settle(&mut [&mut a, &mut b]);
    assert_eq!([count(&a.owned), count(&b.owned)], [3, 3]);
}

#[test]
fn stale_and_unknown_members_are_refused() {
    let mut w = World::new(topics(&[("t", 1, 2)]));
    let mut a = Client::new("a");
    w.join(&mut a, &["t"]);
    let response = w.send(&beat("a", 7, &a.owned));
    assert_eq!(response.error, Some(ResponseError::FencedMemberEpoch));
    let response = w.send(&beat("nobody", 1, &Assignment::new()));
    assert_eq!(response.error, Some(ResponseError::UnknownMemberId));
    let mut bad = join("b", &["t"]);
    bad.server_assignor = Some("sticky".to_owned());
    assert_eq!(w.send(&bad).error, Some(ResponseError::UnsupportedAssignor));
    let mut bad = join("b", &[]);
    bad.subscribed_topic_names = None;
    bad.subscribed_topic_regex = Some("(".to_owned());
    assert_eq!(
        w.send(&bad).error,
        Some(ResponseError::InvalidRegularExpression)
    );
}

#[test]
fn a_lost_response_may_be_retried_with_the_previous_epoch() {
    let mut w = World::new(topics(&[("t", 1, 2)]));
    let (mut a, mut b) = (Client::new("a"), Client::new("b"));
    w.join(&mut a, &["t"]);
    w.join(&mut b, &["t"]);
    w.settle(&mut [&mut a, &mut b]);
    // A third member bumps the epoch; a's answer (epoch bump after revoking) is "lost".
    let mut c = Client::new("c");
    w.join(&mut c, &["t"]);
    let previous = a.epoch;
    w.send(&beat("a", a.epoch, &a.owned));
    let response = w.send(&beat("a", previous, &Assignment::new()));
    assert_eq!(response.error, None, "{response:?}");
}

#[test]
fn regex_subscription_follows_new_topics() {
    let mut w = World::new(topics(&[("orders-eu", 1, 2), ("other", 2, 2)]));
    let mut a = Client::new("a");
    let mut req = join("a", &[]);
    req.subscribed_topic_names = None;
    req.subscribed_topic_regex = Some("orders-.*".to_owned());
    let response = w.send(&req);
    a.apply(&response);
    assert_eq!(
        a.owned.keys().copied().collect::<Vec<_>>(),
        vec![topic_id(1)]
    );
    w.topics = topics(&[("orders-eu", 1, 2), ("orders-us", 3, 3), ("other", 2, 2)]);
    w.beat(&mut a);
    assert_eq!(count(&a.owned), 5);
}

#[test]
fn a_static_member_returns_to_its_place() {
    let mut w = World::new(topics(&[("t", 1, 4)]));
    let (mut a, mut b) = (Client::new("a1"), Client::new("b"));
    let mut req = join("a1", &["t"]);
    req.instance_id = Some("inst-a".to_owned());
    a.apply(&w.send(&req));
    w.join(&mut b, &["t"]);
    w.settle(&mut [&mut a, &mut b]);
    let (owned, epoch) = (a.owned.clone(), w.group.group_epoch());
    let mut leave = beat("a1", STATIC_LEAVE_EPOCH, &owned);
    leave.instance_id = Some("inst-a".to_owned());
    assert_eq!(w.send(&leave).member_epoch, STATIC_LEAVE_EPOCH);
    // Another live member may not take the instance while a1 holds it...
    let mut rival = join("x", &["t"]);
    rival.instance_id = Some("inst-a".to_owned());
    w.group.members.get_mut("a1").unwrap().left_temporarily = false;
    assert_eq!(
        w.send(&rival).error,
        Some(ResponseError::UnreleasedInstanceId)
    );
    w.group.members.get_mut("a1").unwrap().left_temporarily = true;
    // ...but its own restart (a new member id) gets the same partitions, no rebalance.
    let mut back = join("a2", &["t"]);
    back.instance_id = Some("inst-a".to_owned());
    let response = w.send(&back);
    assert_eq!(response.assignment.as_ref(), Some(&owned));
    assert_eq!(w.group.group_epoch(), epoch);
    assert!(w.group.member("a1").is_none());
}

#[test]
fn expired_sessions_and_stuck_revocations_remove_members() {
    let mut w = World::new(topics(&[("t", 1, 2)]));
    let (mut a, mut b) = (Client::new("a"), Client::new("b"));
    w.join(&mut a, &["t"]);
    w.join(&mut b, &["t"]);
    // a never revokes: at its rebalance timeout it is fenced.
    w.send(&beat("a", 1, &a.owned));
    let deadline = w.group.next_deadline_ms().unwrap();
    assert!(deadline <= w.now + 30_000);
    let records = w.group.tick(GROUP, w.now + 30_000);
    assert!(!records.is_empty());
    assert!(w.group.member("a").is_none());
    w.now += 30_000;
    w.beat(&mut b);
    assert_eq!(count(&b.owned), 2);
    // b stops heartbeating: its session ends.
    w.group.tick(GROUP, w.now + 45_000);
    assert_eq!(w.group.state(), ConsumerGroupState::Empty);
}

#[test]
fn records_round_trip_and_replay_rebuilds_the_group() {
    let mut w = World::new(topics(&[("t", 1, 6)]));
    let (mut a, mut b) = (Client::new("a"), Client::new("b"));
    let mut req = join("a", &["t"]);
    req.instance_id = Some("i".to_owned());
    req.rack_id = Some("r1".to_owned());
    a.apply(&w.send(&req));
    w.join(&mut b, &["t"]);
    w.beat(&mut a); // a is revoking now
    let mut rebuilt = ConsumerGroup::default();
    for record in &w.records {
        let decoded = records::decode(&record.key, record.value.as_deref()).expect("decodes");
        assert_eq!(decoded.group(), GROUP);
        assert!(rebuilt.apply(decoded, 45_000, w.now));
    }
    assert_eq!(rebuilt.group_epoch(), w.group.group_epoch());
    assert_eq!(rebuilt.assignment_epoch(), w.group.assignment_epoch());
    for (m, r) in w.group.members().zip(rebuilt.members()) {
        assert_eq!(
            (
                &m.member_id,
                m.member_epoch,
                m.state,
                &m.assigned,
                &m.pending_revocation
            ),
            (
                &r.member_id,
                r.member_epoch,
                r.state,
                &r.assigned,
                &r.pending_revocation
            )
        );
        assert_eq!(m.instance_id, r.instance_id);
        assert_eq!(m.rack_id, r.rack_id);
        assert_eq!(
            w.group.target_of(&m.member_id),
            rebuilt.target_of(&m.member_id)
        );
    }
    // The group's tombstones delete it on replay.
    for record in w.group.tombstones(GROUP) {
        let decoded = records::decode(&record.key, None).expect("decodes");
        if !rebuilt.apply(decoded, 45_000, w.now) {
            return;
        }
    }
    panic!("the epoch tombstone did not delete the group");
}

#[test]
fn truncated_records_are_errors_not_panics() {
    let mut assignment = Assignment::new();
    assignment.insert(topic_id(9), BTreeSet::from([0, 1, 2]));
    let record = records::target(GROUP, "m", Some(&assignment));
    let value = record.value.clone().unwrap();
    for cut in 0..value.len() {
        assert!(records::decode(&record.key, Some(&value[..cut])).is_err());
    }
    for cut in 0..record.key.len() {
        assert!(records::decode(&record.key[..cut], None).is_err());
    }
    match records::decode(&record.key, Some(&value)).unwrap() {
        ConsumerRecord::Target { value, .. } => assert_eq!(value, Some(assignment)),
        other => panic!("{other:?}"),
    }
}
