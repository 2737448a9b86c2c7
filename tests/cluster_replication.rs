//! Partition replication across three Sluice processes (issue 14), driven by unmodified
//! librdkafka clients: an idempotent acks=all producer writes numbered records while the
//! partition leader's node is SIGKILLed, and every acknowledged record reads back exactly
//! once from the new leader (the failover time is printed); the killed node restarts,
//! truncates the tail its log grew while the others had moved on, catches up and rejoins the
//! ISR, after which all three copies of the log are byte for byte the same; with two nodes
//! down acks=all is refused and acks=1 to the surviving leader works.
//!
//! Ports are fixed below 20000 and differ from `cluster_nodes`, so both binaries can run
//! side by side.

#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/rdk.rs"]
mod rdk;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use rdkafka::producer::FutureProducer;
use sluice::client::Client;
use sluice::client::produce::ProducerRecord;
use sluice::protocol::record_batch::Compression;

use cluster::{Cluster, FORM_WITHIN, brokers, create_topic, every_isr_is, leader_and_isr};

const ALL: [i32; 3] = [1000, 2000, 3000];

/// Node settings that make the tests quick: fencing after 3 s of silence, and a follower
/// leaves the ISR after 4 s without catching up.
const FAST: &[&str] = &[
    "broker.heartbeat.interval.ms=500",
    "broker.session.timeout.ms=3000",
    "replica.lag.time.max.ms=4000",
];

fn formed(cluster: &Cluster) {
    cluster.wait_for(FORM_WITHIN, "every node listing 3 brokers", || {
        (1..=3).all(|n| brokers(&cluster.bootstrap(n)) == ALL.to_vec())
    });
}

/// Creates a one-partition RF=3 topic and waits until its ISR is full; returns the leader's
/// node id.
fn replicated_topic(cluster: &Cluster, topic: &str) -> u8 {
    create_topic(&cluster.bootstrap(1), topic, 1, 3).expect("create the topic");
    let mut leader = 0;
    cluster.wait_for(
        Duration::from_secs(30),
        "a full ISR",
        || match leader_and_isr(&cluster.bootstrap(1), topic, 0) {
            Some((l, isr)) if isr == ALL && l > 0 => {
                leader = (l / 1000) as u8;
                true
            }
            _ => false,
        },
    );
    leader
}

fn all_bootstraps(cluster: &Cluster) -> String {
    (1..=3)
        .map(|n| cluster.bootstrap(n))
        .collect::<Vec<_>>()
        .join(",")
}

fn idempotent_producer(bootstrap: &str) -> FutureProducer {
    rdk::producer_config(bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "90000")
        .set("retry.backoff.ms", "100")
        .create()
        .expect("idempotent producer")
}

fn numbered(i: usize) -> rdk::Rec {
    rdk::Rec {
        key: Some(format!("k{i}").into_bytes()),
        value: Some(format!("record-{i:06}").into_bytes()),
        headers: Vec::new(),
    }
}

/// The partition's segment files in a node's data directory, concatenated.
fn log_bytes(data: &std::path::Path, topic: &str) -> Vec<u8> {
    let dir = data.join(format!("{topic}-0"));
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.iter()
        .flat_map(|p| std::fs::read(p).expect("read segment"))
        .collect()
}

fn signal(cluster: &mut Cluster, node: u8, sig: &str) {
    let pid = cluster.node(node).pid().expect("running node");
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {sig} {pid}");
}

#[test]
fn acknowledged_records_survive_a_leader_kill_and_the_old_leader_rejoins() {
    let mut cluster = Cluster::start(18492, 18592, FAST);
    formed(&cluster);
    let topic = "ledger";
    let first_leader = replicated_topic(&cluster, topic);

    // Phase 1: numbered records from an idempotent acks=all producer; the leader's node is
    // SIGKILLed a third of the way through.
    const N: usize = 3000;
    let producer = idempotent_producer(&all_bootstraps(&cluster));
    let mut pending = Vec::with_capacity(N);
    let mut killed_at = None;
    // The first record is acknowledged before the rest go, so the first leader's epoch holds
    // records however long the producer takes to start (on a loaded machine it may take
    // longer than the records before the kill).
    let first = rdk::enqueue(&producer, topic, Some(0), &numbered(0)).expect("enqueue");
    match futures_lite::future::block_on(first) {
        Ok(Ok(_)) => {}
        other => panic!("record 0 not acknowledged: {other:?}\n{}", cluster.logs()),
    }
    for i in 1..N {
        if i == N / 3 {
            cluster.node(first_leader).kill9();
            killed_at = Some(Instant::now());
        }
        pending.push(rdk::enqueue(&producer, topic, Some(0), &numbered(i)).expect("enqueue"));
        std::thread::sleep(Duration::from_millis(1));
    }
    let killed_at = killed_at.expect("killed");
    let mut first_after_kill = None;
    for (i, delivery) in (1..).zip(pending) {
        match futures_lite::future::block_on(delivery) {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => panic!("record {i} not acknowledged: {e}\n{}", cluster.logs()),
            Err(_) => panic!("record {i}: delivery cancelled"),
        }
        if i >= N / 3 && first_after_kill.is_none() {
            first_after_kill = Some(killed_at.elapsed());
        }
    }
    let failover = first_after_kill.expect("records after the kill");
    println!(
        "leader node {first_leader} SIGKILLed: first acks=all produce acknowledged after {failover:?}"
    );
    assert!(
        failover < Duration::from_secs(30),
        "failover took {failover:?}"
    );

    let survivor = if first_leader == 1 { 2 } else { 1 };
    let (new_leader, _) = leader_and_isr(&cluster.bootstrap(survivor), topic, 0).expect("metadata");
    assert_ne!(new_leader / 1000, i32::from(first_leader), "a new leader");
    // What clients see meanwhile: the dead node's replica is still a replica, named offline,
    // and every other id is a listed broker.
    let dead = [i32::from(first_leader) * 1000];
    cluster.wait_for(Duration::from_secs(20), "exact Metadata", || {
        metadata_is_exact(&cluster.bootstrap(survivor), topic, &dead)
    });
    let read = rdk::read_partition(&cluster.bootstrap(survivor), topic, 0, N);
    for (i, r) in read.iter().enumerate() {
        assert_eq!(
            r.rec,
            numbered(i),
            "record {i} read back exactly once, in order"
        );
    }

    // OffsetForLeaderEpoch (KIP-320) on the new leader: the first leader's epoch ends where
    // the new one starts, the new one at the high watermark, a future epoch is unknown.
    let mut client = Client::connect(&cluster.bootstrap(survivor), None).expect("connect");
    client
        .refresh(Some(&[topic.to_string()]))
        .expect("metadata");
    let (old_end, new_epoch, new_end) = {
        let conn = client.broker(new_leader).expect("leader connection");
        let (old_epoch, old_end) = epoch_end(conn, topic, 0, -1).expect("epoch 0");
        assert_eq!(old_epoch, 0);
        let (new_epoch, new_end) = epoch_end(conn, topic, 1, -1).expect("epoch 1");
        assert_eq!(epoch_end(conn, topic, 9, -1), Ok((-1, -1)));
        assert_eq!(
            epoch_end(conn, topic, 1, 99),
            Err(ResponseError::UnknownLeaderEpoch)
        );
        // ListOffsets checks the client's leader epoch the same way (KIP-320).
        assert_eq!(latest(conn, topic, 1), Ok(N as i64));
        assert_eq!(
            latest(conn, topic, 0),
            Err(ResponseError::FencedLeaderEpoch)
        );
        assert_eq!(
            latest(conn, topic, 2),
            Err(ResponseError::UnknownLeaderEpoch)
        );
        (old_end, new_epoch, new_end)
    };
    assert!(
        old_end > 0 && old_end <= N as i64,
        "epoch 0 ended at {old_end}"
    );
    assert_eq!((new_epoch, new_end), (1, N as i64));

    // Phase 2: the followers freeze while the leader takes acks=1 records they never get;
    // the leader dies, a follower takes over and takes new records. The old leader's tail
    // diverged: when it comes back it must cut it, catch up and rejoin the ISR.
    cluster.node(first_leader).start();
    cluster.wait_for(
        Duration::from_secs(60),
        "the restarted node back in the ISR",
        || {
            leader_and_isr(&cluster.bootstrap(survivor), topic, 0)
                .is_some_and(|(_, isr)| isr == ALL)
        },
    );
    // The first leader was the preferred replica: a preferred election (ElectLeaders, 43)
    // gives it the partition back, and a second one is not needed.
    let preferred = first_replica(&cluster.bootstrap(survivor), topic);
    assert_eq!(preferred / 1000, i32::from(first_leader));
    let mut admin = Client::connect(&cluster.bootstrap(survivor), None).expect("connect");
    assert_eq!(elect_preferred(admin.any(), topic), 0, "preferred election");
    cluster.wait_for(
        Duration::from_secs(10),
        "the preferred replica leading",
        || {
            leader_and_isr(&cluster.bootstrap(survivor), topic, 0)
                .is_some_and(|(l, _)| l == preferred)
        },
    );
    assert_eq!(
        elect_preferred(admin.any(), topic),
        ResponseError::ElectionNotNeeded.code()
    );
    let leader = first_leader;
    let followers: Vec<u8> = (1..=3).filter(|n| *n != leader).collect();
    for f in &followers {
        signal(&mut cluster, *f, "-STOP");
    }
    // A fetch the followers had in flight is answered (into their socket buffers) once its
    // long poll (replica.fetch.wait.max.ms, 500) ends; after that nothing reaches them.
    std::thread::sleep(Duration::from_millis(800));
    let acks1 = rdk::producer(&cluster.bootstrap(leader), "none", "1");
    rdk::send_all(
        &acks1,
        topic,
        0,
        &(0..20).map(|i| numbered(N + i)).collect::<Vec<_>>(),
    );
    cluster.node(leader).kill9();
    for f in &followers {
        signal(&mut cluster, *f, "-CONT");
    }
    let other = followers[0];
    cluster.wait_for(
        Duration::from_secs(30),
        "a leader among the survivors",
        || {
            leader_and_isr(&cluster.bootstrap(other), topic, 0)
                .is_some_and(|(l, _)| l > 0 && l / 1000 != i32::from(leader))
        },
    );
    let after = idempotent_producer(&format!(
        "{},{}",
        cluster.bootstrap(followers[0]),
        cluster.bootstrap(followers[1])
    ));
    rdk::send_all(
        &after,
        topic,
        0,
        &(0..50).map(|i| numbered(N + 100 + i)).collect::<Vec<_>>(),
    );
    let restarted = Instant::now();
    cluster.node(leader).start();
    let rejoined = cluster.wait_for(
        Duration::from_secs(60),
        "the diverged node back in the ISR",
        || leader_and_isr(&cluster.bootstrap(other), topic, 0).is_some_and(|(_, isr)| isr == ALL),
    );
    println!(
        "diverged node {leader} restarted: back in the ISR after {rejoined:?} ({:?} since its start)",
        restarted.elapsed()
    );
    let truncated = cluster.wait_for(Duration::from_secs(10), "the diverged tail cut", || {
        cluster.node_log(leader).contains("truncating")
    });
    assert!(truncated < Duration::from_secs(10));

    // Every copy of the log is the same, byte for byte, once the followers have the last
    // fetch in.
    let dirs: Vec<PathBuf> = (1..=3).map(|n| cluster.data_dir(n)).collect();
    cluster.wait_for(
        Duration::from_secs(10),
        "identical logs on the three nodes",
        || {
            let copies: Vec<Vec<u8>> = dirs.iter().map(|d| log_bytes(d, topic)).collect();
            copies.windows(2).all(|w| w[0] == w[1])
        },
    );

    // The new leader takes acks=all records after all that.
    let more: Vec<rdk::Rec> = (0..10).map(|i| numbered(N + 1000 + i)).collect();
    rdk::send_all(&after, topic, 0, &more);
}

/// The first replica of partition 0 of `topic`.
fn first_replica(bootstrap: &str, topic: &str) -> i32 {
    use rdkafka::consumer::Consumer;
    let md = rdk::consumer(bootstrap)
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .expect("topic");
    t.partitions()[0].replicas()[0]
}

/// ElectLeaders (preferred) for partition 0 of `topic`; the partition's error code.
fn elect_preferred(conn: &mut sluice::client::connection::Connection, topic: &str) -> i16 {
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_protocol::messages::{ElectLeadersRequest, TopicName};
    let mut t = TopicPartitions::default();
    t.topic = TopicName(topic.to_string().into());
    t.partitions = vec![0];
    let mut request = ElectLeadersRequest::default();
    request.election_type = 0;
    request.topic_partitions = Some(vec![t]);
    request.timeout_ms = 10_000;
    let response = conn.send(&request, None).expect("ElectLeaders");
    assert_eq!(response.error_code, 0);
    response.replica_election_results[0].partition_result[0].error_code
}

#[test]
fn with_two_nodes_down_acks_all_is_refused_and_acks_1_works() {
    let mut cluster = Cluster::start(18692, 18792, FAST);
    formed(&cluster);
    let topic = "lonely";
    let leader = replicated_topic(&cluster, topic);
    for n in (1..=3).filter(|n| *n != leader) {
        cluster.node(n).kill9();
    }
    let bootstrap = cluster.bootstrap(leader);
    let record = [ProducerRecord {
        key: None,
        value: Some(b"v".to_vec()),
        headers: Vec::new(),
        timestamp_ms: 0,
    }];
    // Once the leader sees both followers silent past replica.lag.time.max.ms, acks=all is
    // refused with NOT_ENOUGH_REPLICAS (and never accepted on one copy).
    let mut client = Client::connect(&bootstrap, None).expect("connect");
    client
        .refresh(Some(&[topic.to_string()]))
        .expect("metadata of the topic");
    let died = Instant::now();
    std::thread::sleep(Duration::from_millis(4500));
    let refused = cluster.wait_for(Duration::from_secs(30), "acks=all refused", || {
        let answer = client.produce(topic, 0, &record, -1, Compression::None);
        match answer {
            Err(e) => e.kafka_error() == Some(ResponseError::NotEnoughReplicas),
            Ok(offset) => panic!("acks=all accepted with two of three replicas down: {offset:?}"),
        }
    });
    println!(
        "acks=all refused {:?} after the two followers died ({refused:?} of retrying)",
        died.elapsed()
    );
    let offset = client
        .produce(topic, 0, &record, 1, Compression::None)
        .expect("acks=1 to the surviving leader");
    assert!(offset.is_some_and(|o| o >= 0));
}

/// Metadata v12 of `topic` as Kafka reports a partition with dead replicas: the brokers are
/// the live ones only; every live replica and in-sync replica is one of them; the replicas of
/// dead nodes (`dead`) are still replicas and are named in `offline_replicas`.
fn metadata_is_exact(bootstrap: &str, topic: &str, dead: &[i32]) -> bool {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::{MetadataRequest, TopicName};
    let Ok(mut conn) = sluice::client::connection::Connection::connect(bootstrap, None) else {
        return false;
    };
    let mut t = MetadataRequestTopic::default();
    t.name = Some(TopicName(topic.to_string().into()));
    let mut request = MetadataRequest::default();
    request.topics = Some(vec![t]);
    let Ok(response) = conn.send_at(&request, 12) else {
        return false;
    };
    let listed: Vec<i32> = response.brokers.iter().map(|b| b.node_id.0).collect();
    let p = &response.topics[0].partitions[0];
    let ids = |l: &[kafka_protocol::messages::BrokerId]| l.iter().map(|b| b.0).collect::<Vec<_>>();
    let (replicas, isr, offline) = (
        ids(&p.replica_nodes),
        ids(&p.isr_nodes),
        ids(&p.offline_replicas),
    );
    let mut expected_offline = dead.to_vec();
    let mut offline_sorted = offline.clone();
    expected_offline.sort_unstable();
    offline_sorted.sort_unstable();
    dead.iter().all(|d| !listed.contains(d))
        && replicas.len() == 3
        && replicas
            .iter()
            .all(|r| listed.contains(r) || offline.contains(r))
        && isr.iter().all(|r| listed.contains(r))
        && offline_sorted == expected_offline
}

/// The broker lease (found by the chaos harness): a leader paused past the session timeout
/// is replaced, and when it resumes it must not answer ListOffsets with its old high
/// watermark, below offsets the new leader has acknowledged since. The request is queued on
/// the old leader's socket while it is stopped, so it is the first thing it serves, before
/// any news from the quorum can reach it.
#[test]
fn a_resumed_old_leader_does_not_answer_list_offsets_with_its_stale_watermark() {
    let mut cluster = Cluster::start(18292, 18392, FAST);
    formed(&cluster);
    let topic = "lease";
    let old = replicated_topic(&cluster, topic);
    let survivor = if old == 1 { 2 } else { 1 };
    let producer = idempotent_producer(&all_bootstraps(&cluster));
    let write = |from: usize, n: usize| {
        for i in from..from + n {
            let delivery = rdk::enqueue(&producer, topic, Some(0), &numbered(i)).expect("enqueue");
            match futures_lite::future::block_on(delivery) {
                Ok(Ok(_)) => {}
                other => panic!("record {i} not acknowledged: {other:?}"),
            }
        }
    };
    write(0, 10);
    // A connection to the old leader's shard, made while it still runs.
    let mut client = Client::connect(&cluster.bootstrap(old), None).expect("connect");
    client
        .refresh(Some(&[topic.to_string()]))
        .expect("metadata");
    let version = client
        .broker(i32::from(old) * 1000)
        .expect("leader connection")
        .version_for::<kafka_protocol::messages::ListOffsetsRequest>(None)
        .expect("ListOffsets version");

    signal(&mut cluster, old, "-STOP");
    cluster.wait_for(Duration::from_secs(30), "a new leader", || {
        leader_and_isr(&cluster.bootstrap(survivor), topic, 0)
            .is_some_and(|(l, _)| l > 0 && l / 1000 != i32::from(old))
    });
    write(10, 10); // acknowledged by the new leader: the latest offset is now 20
    let conn = client
        .broker(i32::from(old) * 1000)
        .expect("leader connection");
    let asked = conn
        .start_request(&latest_request(topic, -1), version)
        .expect("queue ListOffsets on the stopped node");
    signal(&mut cluster, old, "-CONT");
    let answer = conn
        .finish_request::<kafka_protocol::messages::ListOffsetsRequest>(asked, version)
        .expect("ListOffsets answer");
    let p = &answer.topics[0].partitions[0];
    assert!(
        p.error_code == ResponseError::NotLeaderOrFollower.code()
            || (p.error_code == 0 && p.offset >= 20),
        "the resumed old leader answered error {} offset {} after offset 19 was acknowledged",
        p.error_code,
        p.offset
    );
}

fn latest_request(
    topic: &str,
    current_leader_epoch: i32,
) -> kafka_protocol::messages::ListOffsetsRequest {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
    let mut partition = ListOffsetsPartition::default();
    partition.partition_index = 0;
    partition.timestamp = -1;
    partition.current_leader_epoch = current_leader_epoch;
    let mut t = ListOffsetsTopic::default();
    t.name = TopicName(topic.to_string().into());
    t.partitions = vec![partition];
    let mut request = ListOffsetsRequest::default();
    request.replica_id = BrokerId(-1);
    request.topics = vec![t];
    request
}

/// ListOffsets latest of partition 0 of `topic` as a consumer that believes the leader is in
/// `current_leader_epoch`.
fn latest(
    conn: &mut sluice::client::connection::Connection,
    topic: &str,
    current_leader_epoch: i32,
) -> Result<i64, ResponseError> {
    let response = conn
        .send(&latest_request(topic, current_leader_epoch), None)
        .expect("ListOffsets");
    let p = &response.topics[0].partitions[0];
    match p.error_code {
        0 => Ok(p.offset),
        code => Err(ResponseError::try_from_code(code).expect("a Kafka error code")),
    }
}

/// OffsetForLeaderEpoch for partition 0 of `topic` as a consumer: (epoch, end offset).
fn epoch_end(
    conn: &mut sluice::client::connection::Connection,
    topic: &str,
    epoch: i32,
    current_leader_epoch: i32,
) -> Result<(i32, i64), ResponseError> {
    use kafka_protocol::messages::offset_for_leader_epoch_request::{
        OffsetForLeaderPartition, OffsetForLeaderTopic,
    };
    use kafka_protocol::messages::{BrokerId, OffsetForLeaderEpochRequest, TopicName};
    let mut partition = OffsetForLeaderPartition::default();
    partition.partition = 0;
    partition.leader_epoch = epoch;
    partition.current_leader_epoch = current_leader_epoch;
    let mut t = OffsetForLeaderTopic::default();
    t.topic = TopicName(topic.to_string().into());
    t.partitions = vec![partition];
    let mut request = OffsetForLeaderEpochRequest::default();
    request.replica_id = BrokerId(-1);
    request.topics = vec![t];
    let response = conn.send(&request, None).expect("OffsetForLeaderEpoch");
    let p = &response.topics[0].partitions[0];
    match p.error_code {
        0 => Ok((p.leader_epoch, p.end_offset)),
        code => Err(ResponseError::try_from_code(code).expect("a Kafka error code")),
    }
}

/// A full ConsumerGroupHeartbeat (v1) of member "m" of `group` at `epoch`, subscribed to `topic`,
/// sent to broker `to`.
fn consumer_heartbeat(
    client: &mut Client,
    to: i32,
    group: &str,
    epoch: i32,
    topic: &str,
) -> ConsumerGroupHeartbeatResponse {
    use kafka_protocol::messages::{GroupId, TopicName};
    use kafka_protocol::protocol::StrBytes;
    let mut request = ConsumerGroupHeartbeatRequest::default();
    request.group_id = GroupId(StrBytes::from_string(group.to_owned()));
    request.member_id = StrBytes::from_static_str("m");
    request.member_epoch = epoch;
    request.rebalance_timeout_ms = 30_000;
    request.subscribed_topic_names = Some(vec![TopicName(StrBytes::from_string(topic.to_owned()))]);
    request.topic_partitions = Some(Vec::new()).filter(|_| epoch == 0);
    client
        .broker(to)
        .expect("coordinator connection")
        .send(&request, Some(1))
        .expect("ConsumerGroupHeartbeat")
}

#[test]
fn committed_offsets_survive_the_loss_of_the_coordinators_node() {
    // The automatic leader rebalance looks every 2 s instead of Kafka's 300.
    let settings = [FAST, &["leader.imbalance.check.interval.seconds=2"]].concat();
    let mut cluster = Cluster::start(18892, 18992, &settings);
    formed(&cluster);
    let topic = "audited";
    replicated_topic(&cluster, topic);
    let group = "auditors";
    let offsets: sluice::client::admin::Offsets = [((topic.to_string(), 0), 42)].into();
    let mut client = Client::connect(&cluster.bootstrap(1), None).expect("connect");
    // `__consumer_offsets` is created in the background on first use.
    cluster.wait_for(Duration::from_secs(30), "a first commit", || {
        client.commit_offsets(group, &offsets).is_ok()
    });
    let coordinator = client.coordinator(group).expect("coordinator");
    // The group then gets a KIP-848 member (the offsets-only group becomes a consumer group):
    // its member, epoch and partitions must survive the coordinator's node too.
    let joined = consumer_heartbeat(&mut client, coordinator, group, 0, topic);
    assert_eq!(joined.error_code, 0, "{joined:?}");
    assert_eq!(joined.member_epoch, 1);
    let node = (coordinator / 1000) as u8;
    let survivor = if node == 1 { 2 } else { 1 };
    // Every in-sync replica of the group's partition has the commit before the kill.
    cluster.wait_for(Duration::from_secs(30), "a full ISR everywhere", || {
        every_isr_is(&cluster.bootstrap(survivor), "__consumer_offsets", &ALL)
    });
    cluster.node(node).kill9();
    let killed = Instant::now();
    let mut client = Client::connect(&cluster.bootstrap(survivor), None).expect("connect");
    cluster.wait_for(
        Duration::from_secs(30),
        "the commit read back from a new coordinator",
        || {
            client
                .committed_offsets(group, None)
                .is_ok_and(|read| read == offsets)
        },
    );
    let moved = client.coordinator(group).expect("new coordinator");
    assert_ne!(moved / 1000, i32::from(node), "the coordinator moved");
    let again = consumer_heartbeat(&mut client, moved, group, joined.member_epoch, topic);
    assert_eq!(
        again.error_code, 0,
        "the member is known to the new coordinator: {again:?}"
    );
    assert_eq!(again.member_epoch, joined.member_epoch);
    let owned = |r: &ConsumerGroupHeartbeatResponse| {
        r.assignment.as_ref().map(|a| {
            a.topic_partitions
                .iter()
                .map(|t| t.partitions.len())
                .sum::<usize>()
        })
    };
    assert_eq!(
        owned(&joined),
        Some(1),
        "one partition assigned at the join"
    );
    assert_eq!(
        owned(&again).unwrap_or(1),
        1,
        "the same partition after the move"
    );
    println!(
        "coordinator node {node} SIGKILLed: committed offsets served by broker {moved} after {:?}",
        killed.elapsed()
    );

    // Restarted, the node catches up; the automatic leader rebalance gives it back the
    // partitions it is the preferred replica of, so it coordinates the group again, from the
    // log it replicated meanwhile.
    cluster.node(node).start();
    let restarted = Instant::now();
    cluster.wait_for(
        Duration::from_secs(60),
        "the coordinator back on its node",
        || {
            client
                .coordinator(group)
                .is_ok_and(|c| c / 1000 == i32::from(node))
        },
    );
    cluster.wait_for(
        Duration::from_secs(30),
        "the commit served from there",
        || {
            client
                .committed_offsets(group, None)
                .is_ok_and(|read| read == offsets)
        },
    );
    println!(
        "node {node} restarted: leads its preferred partitions and serves the group again after {:?}",
        restarted.elapsed()
    );
}
