//! Partition reassignment across three Sluice processes (issue 14, KIP-455), driven by
//! unmodified librdkafka clients and Kafka's AlterPartitionReassignments (45) and
//! ListPartitionReassignments (46) requests: a partition moves off its node and gains a
//! replica while keeping every acknowledged record, the node it left deletes its copy, and a
//! throttled catch-up (`follower.replication.throttled.rate` with the topic's
//! `follower.replication.throttled.replicas`) runs measurably slower than an unthrottled one.
//!
//! Ports are fixed below 20000 and differ from the other cluster tests.

#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/rdk.rs"]
mod rdk;

use std::time::{Duration, Instant};

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::list_partition_reassignments_response::OngoingPartitionReassignment;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, ListPartitionReassignmentsRequest, TopicName,
};
use rdkafka::admin::{AlterConfig, ResourceSpecifier};
use sluice::client::connection::Connection;

use cluster::{Cluster, FORM_WITHIN, brokers, create_topic};

const ALL: [i32; 3] = [1000, 2000, 3000];

fn formed(cluster: &Cluster) {
    cluster.wait_for(FORM_WITHIN, "every node listing 3 brokers", || {
        (1..=3).all(|n| brokers(&cluster.bootstrap(n)) == ALL.to_vec())
    });
}

/// (leader, replicas in order) of partition 0 of `topic` per Metadata from `bootstrap`.
fn leader_and_replicas(bootstrap: &str, topic: &str) -> Option<(i32, Vec<i32>)> {
    use rdkafka::consumer::Consumer;
    let md = rdk::consumer(bootstrap)
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()?;
    let t = md.topics().iter().find(|t| t.name() == topic)?;
    let p = t.partitions().first()?;
    Some((p.leader(), p.replicas().to_vec()))
}

/// Asks for partition 0 of `topic` to move to `target` (`None` cancels); its error code.
fn reassign(conn: &mut Connection, topic: &str, target: Option<&[i32]>) -> i16 {
    let mut p = ReassignablePartition::default();
    p.partition_index = 0;
    p.replicas = target.map(|t| t.iter().map(|&b| BrokerId(b)).collect());
    let mut t = ReassignableTopic::default();
    t.name = TopicName(topic.to_string().into());
    t.partitions = vec![p];
    let mut request = AlterPartitionReassignmentsRequest::default();
    request.timeout_ms = 10_000;
    request.topics = vec![t];
    let response = conn
        .send(&request, None)
        .expect("AlterPartitionReassignments");
    assert_eq!(response.error_code, 0);
    response.responses[0].partitions[0].error_code
}

/// The reassignments under way, as ListPartitionReassignments lists them for every topic.
fn ongoing(conn: &mut Connection) -> Vec<(String, OngoingPartitionReassignment)> {
    let mut request = ListPartitionReassignmentsRequest::default();
    request.timeout_ms = 10_000;
    request.topics = None;
    let response = conn
        .send(&request, None)
        .expect("ListPartitionReassignments");
    assert_eq!(response.error_code, 0);
    response
        .topics
        .into_iter()
        .flat_map(|t| {
            let name = t.name.0.to_string();
            t.partitions.into_iter().map(move |p| (name.clone(), p))
        })
        .collect()
}

fn numbered(n: usize, size: usize) -> Vec<rdk::Rec> {
    (0..n)
        .map(|i| rdk::Rec {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(format!("{i:08}").repeat(size / 8).into_bytes()),
            headers: Vec::new(),
        })
        .collect()
}

/// A one-partition RF=1 topic on whichever node placement picks; returns its only replica.
fn unreplicated_topic(cluster: &Cluster, topic: &str) -> i32 {
    create_topic(&cluster.bootstrap(1), topic, 1, 1).expect("create the topic");
    let mut replica = -1;
    cluster.wait_for(
        Duration::from_secs(20),
        "the topic's leader",
        || match leader_and_replicas(&cluster.bootstrap(1), topic) {
            Some((leader, replicas)) if leader >= 0 => {
                replica = replicas[0];
                true
            }
            _ => false,
        },
    );
    replica
}

/// Waits until Metadata shows `topic` on exactly `target` and nothing is being reassigned;
/// returns how long that took.
fn wait_done(cluster: &Cluster, conn: &mut Connection, topic: &str, target: &[i32]) -> Duration {
    let bootstrap = cluster.bootstrap(1);
    cluster.wait_for(
        Duration::from_secs(60),
        "the reassignment to complete",
        || {
            ongoing(conn).is_empty()
                && leader_and_replicas(&bootstrap, topic).is_some_and(|(_, r)| r == target)
        },
    )
}

/// Sets one config of `resource` with librdkafka's AlterConfigs.
fn alter_configs(bootstrap: &str, resource: ResourceSpecifier<'_>, (key, value): (&str, &str)) {
    let config = AlterConfig::new(resource).set(key, value);
    let results = futures_lite::future::block_on(
        rdk::admin(bootstrap).alter_configs([&config], &rdk::admin_options()),
    )
    .expect("alter configs");
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

/// Runs `sluice <args> --bootstrap-server <bootstrap>`.
fn sluice_cli(bootstrap: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .args(["--bootstrap-server", bootstrap])
        .output()
        .expect("run sluice")
}

#[test]
fn a_partition_moves_to_other_nodes_and_keeps_every_record() {
    let cluster = Cluster::start(19292, 19392, &[]);
    formed(&cluster);
    let topic = "moving";
    let source = unreplicated_topic(&cluster, topic);
    let source_node = (source / 1000) as u8;
    let target: Vec<i32> = ALL.iter().copied().filter(|b| *b != source).collect();

    let bootstrap = cluster.bootstrap(1);
    let sent = numbered(2000, 200);
    // acks=1: the nodes' min.insync.replicas=2 refuses acks=all on one replica.
    let producer = rdk::producer(&bootstrap, "none", "1");
    rdk::send_all(&producer, topic, 0, &sent);

    let mut conn = Connection::connect(&bootstrap, None).expect("connect");
    assert_eq!(
        reassign(&mut conn, topic, None),
        85,
        "nothing to cancel yet"
    );
    assert_eq!(reassign(&mut conn, topic, Some(&[source, source])), 39);
    // The move itself through the CLI, as an operator would start it.
    let replicas = target
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let out = sluice_cli(
        &bootstrap,
        &[
            "cluster",
            "reassign",
            "--topic",
            topic,
            "--partition",
            "0",
            "--replicas",
            &replicas,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let took = wait_done(&cluster, &mut conn, topic, &target);
    let out = sluice_cli(
        &bootstrap,
        &[
            "cluster",
            "reassign",
            "--topic",
            topic,
            "--partition",
            "0",
            "--cancel",
        ],
    );
    assert!(
        !out.status.success(),
        "cancelling a finished move must fail"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("reassign"), "{stderr}");
    println!(
        "moved {} records from {source} to {target:?} in {took:?}",
        sent.len()
    );

    // Every record is there, served by the new leader, and more can be written.
    let (leader, _) = leader_and_replicas(&bootstrap, topic).expect("metadata");
    assert!(
        target.contains(&leader),
        "leader {leader} is not a new replica"
    );
    let read = rdk::read_partition(&bootstrap, topic, 0, sent.len());
    rdk::assert_same_records(&sent, &read, "after the move");
    // Two replicas now: acks=all works.
    let more = numbered(10, 8);
    let producer = rdk::producer(&bootstrap, "none", "all");
    rdk::send_all(&producer, topic, 0, &more);

    // The node the partition left deletes its copy.
    let dir = cluster.data_dir(source_node).join(format!("{topic}-0"));
    cluster.wait_for(
        Duration::from_secs(20),
        "the old replica to be deleted",
        || !dir.exists(),
    );
}

#[test]
fn a_throttled_catch_up_is_held_to_its_rate() {
    let cluster = Cluster::start(19492, 19592, &[]);
    formed(&cluster);
    let bootstrap = cluster.bootstrap(1);
    let mut conn = Connection::connect(&bootstrap, None).expect("connect");
    // 256 KiB/s for replicas their topic lists as throttled, on every follower.
    let rate = (256 * 1024).to_string();
    alter_configs(
        &bootstrap,
        ResourceSpecifier::Broker(1000),
        ("follower.replication.throttled.rate", &rate),
    );

    let sent = numbered(1536, 1024); // 1.5 MiB of values
    let mut took = Vec::new();
    for (topic, throttled) in [("free", false), ("throttled", true)] {
        let source = unreplicated_topic(&cluster, topic);
        if throttled {
            alter_configs(
                &bootstrap,
                ResourceSpecifier::Topic(topic),
                ("follower.replication.throttled.replicas", "*"),
            );
        }
        let producer = rdk::producer(&bootstrap, "none", "1");
        rdk::send_all(&producer, topic, 0, &sent);
        let other = ALL.iter().copied().find(|b| *b != source).expect("another");
        let target = [source, other];
        let start = Instant::now();
        assert_eq!(reassign(&mut conn, topic, Some(&target)), 0);
        if throttled {
            let out = sluice_cli(&bootstrap, &["cluster", "reassignments"]);
            let table = String::from_utf8_lossy(&out.stdout);
            assert!(
                table.contains(topic) && table.contains(&other.to_string()),
                "{table}"
            );
            let listed = ongoing(&mut conn);
            assert!(
                listed.iter().any(|(t, p)| t == topic
                    && p.adding_replicas == vec![BrokerId(other)]
                    && p.replicas.len() == 2),
                "the throttled move is listed while under way: {listed:?}"
            );
        }
        wait_done(&cluster, &mut conn, topic, &target);
        took.push(start.elapsed());
        let read = rdk::read_partition(&bootstrap, topic, 0, sent.len());
        rdk::assert_same_records(&sent, &read, topic);
    }
    println!(
        "catch-up of 1.5 MiB: unthrottled {:?}, at 256 KiB/s {:?}",
        took[0], took[1]
    );
    // 1.5 MiB at 256 KiB/s with at most a second saved up: at least 5 s.
    assert!(
        took[1] >= Duration::from_secs(4),
        "throttled: {:?}",
        took[1]
    );
    assert!(
        took[0] < took[1],
        "unthrottled {:?} vs {:?}",
        took[0],
        took[1]
    );
}
