//! Consumer groups against a real Sluice broker with librdkafka (the `rdkafka` crate):
//! membership and assignment, take-over after a leave and after a crash, committed offsets
//! across a graceful and a `kill -9` restart, cooperative-sticky rebalancing, and the admin
//! group APIs. Every test starts its own broker process.

mod broker_common;
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Broker;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

const PARTITIONS: i32 = 6;
const SESSION_TIMEOUT_MS: u64 = 6_000;
/// Env vars that turn the ignored `member_process` test into a group member for the
/// crash test (the parent kills that process with SIGKILL).
const MEMBER_BOOTSTRAP: &str = "SLUICE_TEST_MEMBER_BOOTSTRAP";
const MEMBER_GROUP: &str = "SLUICE_TEST_MEMBER_GROUP";
const MEMBER_TOPIC: &str = "SLUICE_TEST_MEMBER_TOPIC";

/// Creates a test topic with [`PARTITIONS`] partitions through librdkafka's admin API.
fn create_topic(bootstrap: &str, name: &str) {
    broker_common::create_topic(bootstrap, name, PARTITIONS);
}

/// Produces `per_partition` records to every partition; values are "p<partition>-<i>".
fn produce(bootstrap: &str, topic: &str, per_partition: i32) {
    broker_common::produce_numbered(
        bootstrap,
        topic,
        PARTITIONS,
        per_partition,
        &[("enable.idempotence", "false")],
    );
}

fn consumer(bootstrap: &str, group: &str, strategy: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("session.timeout.ms", SESSION_TIMEOUT_MS.to_string())
        .set("heartbeat.interval.ms", "500")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", strategy)
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

/// Serves every consumer's callbacks once (rebalances happen inside poll).
fn poll_all(consumers: &[&BaseConsumer]) {
    for c in consumers {
        if let Some(Err(e)) = c.poll(Duration::from_millis(20)) {
            eprintln!("poll error (retried): {e}");
        }
    }
}

/// True when the members' assignments are disjoint, non-empty and cover every partition.
fn is_full_split(assignments: &[BTreeSet<i32>]) -> bool {
    let total: usize = assignments.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<i32> = assignments.iter().flatten().copied().collect();
    assignments.iter().all(|a| !a.is_empty())
        && total == PARTITIONS as usize
        && union == (0..PARTITIONS).collect()
}

/// Polls until the members split the topic; returns how long that took.
fn wait_for_split(consumers: &[&BaseConsumer], limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        poll_all(consumers);
        let assignments: Vec<_> = consumers.iter().map(|c| assigned(c)).collect();
        if is_full_split(&assignments) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "no full split after {limit:?}: {assignments:?}"
        );
    }
}

#[test]
fn three_members_split_the_topic_and_take_over_after_a_leave() {
    let broker = broker_common::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "split");
    let c1 = consumer(&bootstrap, "g-split", "range");
    let c2 = consumer(&bootstrap, "g-split", "range");
    let c3 = consumer(&bootstrap, "g-split", "range");
    for c in [&c1, &c2, &c3] {
        c.subscribe(&["split"]).expect("subscribe");
    }
    let took = wait_for_split(&[&c1, &c2, &c3], Duration::from_secs(30));
    eprintln!(
        "three-member rebalance (subscribe to stable split): {} ms",
        took.as_millis()
    );
    for c in [&c1, &c2, &c3] {
        assert_eq!(assigned(c).len(), 2, "range gives 2 of 6 to each of 3");
    }

    drop(c3); // closes the consumer: LeaveGroup
    let took = wait_for_split(&[&c1, &c2], Duration::from_millis(SESSION_TIMEOUT_MS));
    eprintln!("take-over after a leave: {} ms", took.as_millis());
}

/// Not a test on its own: the crash test runs it in a child process as a group member.
#[test]
#[ignore = "a group member run by the crash test in a child process, not a test"]
fn member_process() {
    let (Ok(bootstrap), Ok(group), Ok(topic)) = (
        std::env::var(MEMBER_BOOTSTRAP),
        std::env::var(MEMBER_GROUP),
        std::env::var(MEMBER_TOPIC),
    ) else {
        return;
    };
    let c = consumer(&bootstrap, &group, "range");
    c.subscribe(&[&topic]).expect("subscribe");
    loop {
        c.poll(Duration::from_millis(100));
    }
}

fn spawn_member(bootstrap: &str, group: &str, topic: &str) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["member_process", "--exact", "--ignored", "--nocapture"])
        .env(MEMBER_BOOTSTRAP, bootstrap)
        .env(MEMBER_GROUP, group)
        .env(MEMBER_TOPIC, topic)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn member process")
}

#[test]
fn a_member_that_dies_without_leaving_is_removed_after_the_session_timeout() {
    let broker = broker_common::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "crash");
    let mut member = spawn_member(&bootstrap, "g-crash", "crash");
    let c1 = consumer(&bootstrap, "g-crash", "range");
    c1.subscribe(&["crash"]).expect("subscribe");
    // Wait until the local member holds exactly half: the other half is the child's.
    let started = Instant::now();
    while assigned(&c1).len() != 3 {
        poll_all(&[&c1]);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "child never joined"
        );
    }
    member.kill().expect("kill -9 the member");
    let _ = member.wait();
    let killed = Instant::now();
    while assigned(&c1).len() != PARTITIONS as usize {
        poll_all(&[&c1]);
        assert!(
            killed.elapsed() < Duration::from_millis(2 * SESSION_TIMEOUT_MS + 5_000),
            "dead member was not removed: {:?}",
            assigned(&c1)
        );
    }
    let took = killed.elapsed();
    eprintln!("take-over after a crash: {} ms", took.as_millis());
    assert!(
        took >= Duration::from_millis(SESSION_TIMEOUT_MS - 1_000),
        "the dead member must be kept until its session times out ({took:?})"
    );
}

/// Commits offset 4 (with metadata) on every partition, restarts the broker with `restart`,
/// and checks that a new member of the group starts from offset 4 everywhere.
fn committed_offsets_survive(restart: impl FnOnce(&mut Broker), group: &str) {
    let mut broker = broker_common::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "resume");
    produce(&bootstrap, "resume", 10);
    {
        let c = consumer(&bootstrap, group, "range");
        c.subscribe(&["resume"]).expect("subscribe");
        wait_for_split(&[&c], Duration::from_secs(30));
        let mut tpl = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition_offset("resume", p, Offset::Offset(4))
                .expect("add partition");
            tpl.find_partition("resume", p)
                .expect("just added")
                .set_metadata(format!("meta-{p}"));
        }
        c.commit(&tpl, CommitMode::Sync).expect("commit");
    }
    restart(&mut broker);
    let c = consumer(&bootstrap, group, "range");
    let committed = broker_common::committed_with_retry(&c, "resume", PARTITIONS);
    for p in 0..PARTITIONS {
        let e = committed
            .find_partition("resume", p)
            .expect("partition listed");
        assert_eq!(e.offset(), Offset::Offset(4), "partition {p}");
        assert_eq!(e.metadata(), format!("meta-{p}"), "metadata round-trips");
    }
    c.subscribe(&["resume"]).expect("subscribe");
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
    assert!(first.values().all(|o| *o == 4), "resumed at {first:?}");
}

#[test]
fn committed_offsets_survive_a_graceful_restart() {
    committed_offsets_survive(Broker::restart_graceful, "g-sigterm");
}

#[test]
fn committed_offsets_survive_kill_9() {
    committed_offsets_survive(Broker::restart_killed, "g-kill9");
}

#[test]
fn cooperative_sticky_keeps_owned_partitions_when_a_member_leaves() {
    let broker = broker_common::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "coop");
    let strategy = "cooperative-sticky";
    let c1 = consumer(&bootstrap, "g-coop", strategy);
    let c2 = consumer(&bootstrap, "g-coop", strategy);
    let c3 = consumer(&bootstrap, "g-coop", strategy);
    for c in [&c1, &c2, &c3] {
        c.subscribe(&["coop"]).expect("subscribe");
    }
    wait_for_split(&[&c1, &c2, &c3], Duration::from_secs(30));
    let before = [assigned(&c1), assigned(&c2)];
    drop(c3);
    // Incremental: the survivors never give up what they own while taking c3's share.
    let started = Instant::now();
    loop {
        poll_all(&[&c1, &c2]);
        let now = [assigned(&c1), assigned(&c2)];
        for (b, n) in before.iter().zip(&now) {
            assert!(b.is_subset(n), "revoked owned partitions: {b:?} -> {n:?}");
        }
        if is_full_split(&now) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_millis(SESSION_TIMEOUT_MS),
            "no take-over: {now:?}"
        );
    }
}

#[test]
fn admin_lists_describes_and_deletes_groups() {
    let broker = broker_common::start();
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "adm");
    let c = consumer(&bootstrap, "g-admin", "range");
    c.subscribe(&["adm"]).expect("subscribe");
    wait_for_split(&[&c], Duration::from_secs(30));

    let list = c
        .fetch_group_list(Some("g-admin"), Duration::from_secs(10))
        .expect("describe group");
    let group = &list.groups()[0];
    assert_eq!(group.name(), "g-admin");
    assert_eq!(group.state(), "Stable");
    assert_eq!(group.protocol_type(), "consumer");
    assert_eq!(group.members().len(), 1);
    assert_eq!(group.members()[0].client_host(), "/127.0.0.1");

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .expect("admin client");
    let delete = |name: &str| {
        futures_lite::future::block_on(admin.delete_groups(&[name], &AdminOptions::new()))
            .expect("delete_groups request")
            .remove(0)
    };
    let refused = delete("g-admin").expect_err("a group with members cannot be deleted");
    assert_eq!(refused.1, rdkafka::types::RDKafkaErrorCode::NonEmptyGroup);

    drop(c);
    let all = wait_for_state(&bootstrap, "g-admin", "Empty");
    assert!(all.contains(&"g-admin".to_owned()), "listed: {all:?}");
    assert_eq!(delete("g-admin"), Ok("g-admin".to_owned()));
    let after = wait_for_state(&bootstrap, "g-admin", "Dead");
    assert!(
        !after.contains(&"g-admin".to_owned()),
        "still listed: {after:?}"
    );
}

/// Waits until `group` is in `state` (a group that is no longer described counts as
/// "Dead"); returns every listed group (ListGroups on all shards).
fn wait_for_state(bootstrap: &str, group: &str, state: &str) -> Vec<String> {
    let probe = consumer(bootstrap, "g-probe", "range");
    let started = Instant::now();
    loop {
        let one = probe
            .fetch_group_list(Some(group), Duration::from_secs(10))
            .expect("describe group");
        let current = one
            .groups()
            .first()
            .map_or("Dead", |g| g.state())
            .to_owned();
        if current == state {
            let all = probe
                .fetch_group_list(None, Duration::from_secs(10))
                .expect("list groups");
            return all.groups().iter().map(|g| g.name().to_owned()).collect();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{group} is {current} not {state}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
