//! Three Sluice processes on 127.0.0.1-3 (one shard each), configured exactly as the README's
//! cluster section says, under a Raft controller quorum: the cluster forms, topics created
//! through any node appear on every node and carry data between nodes for unmodified
//! librdkafka clients, a SIGKILLed controller leader is replaced (the election time is
//! printed), a silent node is fenced out of Metadata, a restarted node rejoins from its own
//! log, and a node whose log is stale catches up from a snapshot.
//!
//! Ports are fixed below 20000, outside the range the single-broker tests pick from at random,
//! so the tests running beside these never take one of them.

#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/rdk.rs"]
mod rdk;

use std::time::{Duration, Instant};

use sluice::client::Client;

use cluster::{Cluster, FORM_WITHIN, brokers, create_topic, quorum_leader, records, topics};

#[test]
fn three_nodes_form_share_topics_and_replace_a_killed_controller_leader() {
    let mut cluster = Cluster::start(
        18092,
        18192,
        &[
            "broker.heartbeat.interval.ms=500",
            "broker.session.timeout.ms=3000",
        ],
    );
    let formed = cluster.wait_for(FORM_WITHIN, "every node listing 3 brokers", || {
        (1..=3).all(|n| brokers(&cluster.bootstrap(n)) == vec![1000, 2000, 3000])
    });
    println!("cluster formed: every node lists every shard after {formed:?}");
    // Each shard reports its node's broker.rack.
    let client = Client::connect(&cluster.bootstrap(1), None).expect("connect");
    for (id, broker) in &client.metadata().brokers {
        assert_eq!(
            broker.rack,
            Some(format!("rack-{}", id / 1000)),
            "rack of {id}"
        );
    }

    // A topic created through node 2 appears on every node, with replicas on all three.
    create_topic(&cluster.bootstrap(2), "orders", 6, 3).expect("create through node 2");
    cluster.wait_for(Duration::from_secs(10), "orders on every node", || {
        (1..=3).all(|n| topics(&cluster.bootstrap(n)).contains(&"orders".to_string()))
    });
    let leaders = rdk::leaders(&cluster.bootstrap(3), "orders");
    let leader_nodes: std::collections::BTreeSet<i32> =
        leaders.values().map(|b| b / 1000).collect();
    assert_eq!(
        leader_nodes.len(),
        3,
        "leaders spread over the nodes: {leaders:?}"
    );

    // Data written through node 1 to every partition reads back through node 3.
    let producer = rdk::producer(&cluster.bootstrap(1), "none", "all");
    for p in 0..6 {
        let sent = records(50, &format!("p{p}"));
        rdk::send_all(&producer, "orders", p, &sent);
        let read = rdk::read_partition(&cluster.bootstrap(3), "orders", p, sent.len());
        rdk::assert_same_records(&sent, &read, &format!("orders/{p}"));
    }

    // SIGKILL the controller leader: another is elected and topics can still be created.
    let old = quorum_leader(&cluster.bootstrap(1)).expect("a quorum leader");
    let survivor = if old == 1 { 2 } else { 1 };
    cluster.node(old as u8).kill9();
    let killed_at = Instant::now();
    let elected = cluster.wait_for(Duration::from_secs(20), "a new quorum leader", || {
        quorum_leader(&cluster.bootstrap(survivor)).is_some_and(|l| l != old)
    });
    println!("controller leader {old} SIGKILLed: new leader elected after {elected:?}");
    cluster.wait_for(
        Duration::from_secs(20),
        "a topic created after the kill",
        || create_topic(&cluster.bootstrap(survivor), "after-kill", 2, 2).is_ok(),
    );
    println!(
        "topic creation works again {:?} after the kill",
        killed_at.elapsed()
    );

    // The silent node is fenced: Metadata stops listing its shard.
    let gone = old * 1000;
    cluster.wait_for(Duration::from_secs(15), "the killed node fenced", || {
        !brokers(&cluster.bootstrap(survivor)).contains(&gone)
    });

    // Restarted, it rejoins from its own log and data and serves its partitions again.
    cluster.node(old as u8).start();
    cluster.wait_for(FORM_WITHIN, "the restarted node listed again", || {
        (1..=3).all(|n| brokers(&cluster.bootstrap(n)) == vec![1000, 2000, 3000])
    });
    assert!(topics(&cluster.bootstrap(old as u8)).contains(&"after-kill".to_string()));
    for (p, leader) in rdk::leaders(&cluster.bootstrap(old as u8), "orders") {
        if leader / 1000 == old {
            let read = rdk::read_partition(&cluster.bootstrap(old as u8), "orders", p, 50);
            assert_eq!(read.len(), 50, "orders/{p} after the restart");
        }
    }
}

#[test]
fn a_node_with_a_stale_log_catches_up_from_a_snapshot() {
    // Snapshot every ~10 records and keep only 10 below it, so a node that misses 30 topic
    // creations can only catch up through a snapshot.
    let mut cluster = Cluster::start(
        18292,
        18392,
        &["metadata.log.max.record.bytes.between.snapshots=2560"],
    );
    cluster.wait_for(FORM_WITHIN, "every node listing 3 brokers", || {
        (1..=3).all(|n| brokers(&cluster.bootstrap(n)) == vec![1000, 2000, 3000])
    });
    let leader = quorum_leader(&cluster.bootstrap(1)).expect("a quorum leader");
    let stale = if leader == 3 { 2 } else { 3 };
    cluster.node(stale).kill9();
    for i in 0..30 {
        create_topic(&cluster.bootstrap(leader as u8), &format!("t{i}"), 1, 2)
            .expect("create while a node is down");
    }
    cluster.node(stale).start();
    let caught_up = cluster.wait_for(FORM_WITHIN, "the stale node seeing all topics", || {
        let seen = topics(&cluster.bootstrap(stale));
        (0..30).all(|i| seen.contains(&format!("t{i}")))
    });
    println!("stale node {stale} caught up after {caught_up:?}");
    let log = cluster.node(stale).log_text();
    assert!(
        log.contains("metadata snapshot installed from the leader"),
        "the stale node caught up through a snapshot\n{log}"
    );
}
