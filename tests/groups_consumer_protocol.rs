//! KIP-848 consumer groups (`group.protocol=consumer`) against a real Sluice broker with
//! librdkafka 2.12 (the `rdkafka` crate): members split a topic with the broker's own assignor,
//! a leaver's partitions go to the others while theirs stay put, and committed offsets (and the
//! group) survive a graceful and a `kill -9` restart. Every test starts its own broker.

mod broker_common;
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::Broker;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

const PARTITIONS: i32 = 6;

/// Consumer-group settings: a short heartbeat interval, so a rebalance settles within about a
/// second, and a short session timeout (below Kafka's minimums, which are lowered with them).
const GROUP_KEYS: &[(&str, &str)] = &[
    ("group.consumer.heartbeat.interval.ms", "500"),
    ("group.consumer.min.heartbeat.interval.ms", "500"),
    ("group.consumer.session.timeout.ms", "6000"),
    ("group.consumer.min.session.timeout.ms", "6000"),
];

fn start() -> Broker {
    broker_common::start_with(GROUP_KEYS)
}

fn produce(bootstrap: &str, topic: &str, per_partition: i32) {
    broker_common::produce_numbered(bootstrap, topic, PARTITIONS, per_partition, &[]);
}

/// A member speaking the consumer protocol: no session timeout, heartbeat interval or
/// assignment strategy on the client (the broker owns those).
fn member(bootstrap: &str, group: &str, name: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("group.protocol", "consumer")
        .set("client.id", name)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer")
}

fn assigned(consumer: &BaseConsumer) -> BTreeSet<i32> {
    consumer
        .assignment()
        .expect("assignment")
        .elements()
        .iter()
        .map(|e| e.partition())
        .collect()
}

/// Polls every member (its rebalances run inside poll) until `done` holds of their
/// assignments; returns how long that took.
fn poll_until(
    members: &[&BaseConsumer],
    limit: Duration,
    what: &str,
    done: impl Fn(&[BTreeSet<i32>]) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        for c in members {
            if let Some(Err(e)) = c.poll(Duration::from_millis(20)) {
                eprintln!("poll error (retried): {e}");
            }
        }
        let now: Vec<_> = members.iter().map(|c| assigned(c)).collect();
        if done(&now) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{what}: not within {limit:?}: {now:?}"
        );
    }
}

/// Polls every member for `how_long`, checking `each` of their assignments after every round.
fn poll_for(members: &[&BaseConsumer], how_long: Duration, each: impl Fn(&[BTreeSet<i32>])) {
    let started = Instant::now();
    while started.elapsed() < how_long {
        for c in members {
            if let Some(Err(e)) = c.poll(Duration::from_millis(20)) {
                eprintln!("poll error (retried): {e}");
            }
        }
        each(&members.iter().map(|c| assigned(c)).collect::<Vec<_>>());
    }
}

/// Every partition owned by exactly one member, counts within one of each other.
fn even_split(assignments: &[BTreeSet<i32>]) -> bool {
    let total: usize = assignments.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<i32> = assignments.iter().flatten().copied().collect();
    let (min, max) = (
        assignments.iter().map(BTreeSet::len).min().unwrap_or(0),
        assignments.iter().map(BTreeSet::len).max().unwrap_or(0),
    );
    total == PARTITIONS as usize && union == (0..PARTITIONS).collect() && max - min <= 1
}

#[test]
fn consumer_protocol_members_split_and_take_over_after_a_leave() {
    let broker = start();
    let bootstrap = broker.bootstrap();
    broker_common::create_topic(&bootstrap, "k848-split", PARTITIONS);
    let group = "g-k848-split";
    let members: Vec<BaseConsumer> = (0..3)
        .map(|i| member(&bootstrap, group, &format!("m{i}")))
        .collect();
    for m in &members {
        m.subscribe(&["k848-split"]).expect("subscribe");
    }
    let all: Vec<&BaseConsumer> = members.iter().collect();
    let took = poll_until(&all, Duration::from_secs(30), "three-way split", |a| {
        even_split(a) && a.iter().all(|s| s.len() == 2)
    });
    eprintln!("three members settled in {} ms", took.as_millis());
    // Stable: a few heartbeats later nothing has moved.
    let settled: Vec<_> = all.iter().map(|c| assigned(c)).collect();
    poll_for(&all, Duration::from_secs(2), |now| {
        assert_eq!(now, &settled[..], "partitions moved in a stable group");
    });

    let groups = members[0]
        .fetch_group_list(Some(group), Duration::from_secs(10))
        .expect("describe group");
    let g = &groups.groups()[0];
    assert_eq!(
        (g.protocol(), g.state()),
        ("uniform", "Stable"),
        "a consumer-protocol group"
    );
    assert_eq!(g.members().len(), 3);

    let mut members = members;
    let leaver = members.remove(0);
    let leavers = assigned(&leaver);
    drop(leaver); // close(): a ConsumerGroupHeartbeat with member epoch -1
    let rest: Vec<&BaseConsumer> = members.iter().collect();
    let took = poll_until(
        &rest,
        Duration::from_secs(5),
        "take-over after a leave",
        even_split,
    );
    eprintln!("take-over after a leave: {} ms", took.as_millis());
    let after: Vec<_> = rest.iter().map(|c| assigned(c)).collect();
    for (before, now) in settled[1..].iter().zip(&after) {
        assert!(
            before.is_subset(now),
            "uniform is sticky: {before:?} -> {now:?}"
        );
        assert_eq!(now.len(), 3);
    }
    let gained: BTreeSet<i32> = after
        .iter()
        .zip(&settled[1..])
        .flat_map(|(now, before)| now.difference(before).copied().collect::<Vec<_>>())
        .collect();
    assert_eq!(gained, leavers, "exactly the leaver's partitions moved");
}

/// Commits offset p + 2 (with metadata) on every partition p from a member of a consumer
/// group, restarts the broker with `restart` while the member is still in the group, and checks
/// that the member keeps its partitions, the group is still described (classic DescribeGroups
/// shows consumer groups too), and a new member resumes at the committed offsets.
fn committed_offsets_survive(restart: impl FnOnce(&mut Broker), group: &str) {
    let mut broker = start();
    let bootstrap = broker.bootstrap();
    broker_common::create_topic(&bootstrap, "k848-resume", PARTITIONS);
    produce(&bootstrap, "k848-resume", 10);
    let c = member(&bootstrap, group, "committer");
    c.subscribe(&["k848-resume"]).expect("subscribe");
    poll_until(&[&c], Duration::from_secs(30), "assignment", |a| {
        a[0].len() == 6
    });
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset("k848-resume", p, Offset::Offset(i64::from(p) + 2))
            .expect("add partition");
        tpl.find_partition("k848-resume", p)
            .expect("just added")
            .set_metadata(format!("meta-{p}"));
    }
    c.commit(&tpl, CommitMode::Sync).expect("commit");
    let member_id = member_id_of(&c);
    let groups = c
        .fetch_group_list(Some(group), Duration::from_secs(10))
        .expect("describe group");
    // A KIP-848 group: the broker's assignor is its protocol (a classic group would show the
    // client's, range or roundrobin by default).
    assert_eq!(groups.groups()[0].protocol(), "uniform");

    restart(&mut broker);
    // The member is back from __consumer_offsets; its heartbeats carry on with its epoch.
    poll_for(&[&c], Duration::from_secs(3), |now| {
        assert_eq!(now[0].len(), 6, "the member lost its partitions");
    });
    assert_eq!(member_id_of(&c), member_id);
    let listed = broker_common::committed_with_retry(&c, "k848-resume", PARTITIONS);
    for p in 0..PARTITIONS {
        let e = listed.find_partition("k848-resume", p).expect("listed");
        assert_eq!(
            e.offset(),
            Offset::Offset(i64::from(p) + 2),
            "partition {p}"
        );
        assert_eq!(e.metadata(), format!("meta-{p}"), "metadata round-trips");
    }
    let groups = c
        .fetch_group_list(Some(group), Duration::from_secs(10))
        .expect("describe group");
    let g = &groups.groups()[0];
    assert_eq!(g.protocol_type(), "consumer");
    // Rebuilt from __consumer_offsets, the group still names its assignor (Kafka derives it
    // from the members' choice, else the broker's default).
    assert_eq!(g.protocol(), "uniform");
    assert_eq!(g.state(), "Stable");
    assert_eq!(g.members().len(), 1);
    drop(c);

    let c = member(&bootstrap, group, "resumer");
    c.subscribe(&["k848-resume"]).expect("subscribe");
    let mut first: BTreeMap<i32, i64> = BTreeMap::new();
    let started = Instant::now();
    while first.len() < PARTITIONS as usize {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "only {first:?}"
        );
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            first.entry(m.partition()).or_insert(m.offset());
        }
    }
    let want: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, i64::from(p) + 2)).collect();
    assert_eq!(first, want, "resumed at the committed offsets");
}

/// The member id librdkafka holds (`rd_kafka_memberid`; the crate has no wrapper).
fn member_id_of(c: &BaseConsumer) -> String {
    let client = c.client().native_ptr();
    // SAFETY: the handle is alive for the call; the string is copied, then freed with
    // rd_kafka_mem_free as librdkafka's API asks.
    unsafe {
        let raw = rdkafka::bindings::rd_kafka_memberid(client);
        assert!(!raw.is_null(), "no member id");
        let id = std::ffi::CStr::from_ptr(raw).to_string_lossy().into_owned();
        rdkafka::bindings::rd_kafka_mem_free(client, raw.cast());
        id
    }
}

#[test]
fn consumer_protocol_offsets_survive_a_graceful_restart() {
    committed_offsets_survive(Broker::restart_graceful, "g-k848-sigterm");
}

#[test]
fn consumer_protocol_offsets_survive_kill_9() {
    committed_offsets_survive(Broker::restart_killed, "g-k848-kill9");
}
