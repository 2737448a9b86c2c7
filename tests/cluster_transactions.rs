//! Transactions across the nodes of a three-process Sluice cluster, driven by unmodified
//! librdkafka clients: the transaction coordinator (the leader of the transactional id's
//! `__transaction_state` partition) is on one node and the partitions the transaction writes
//! are led by all three, so its COMMIT/ABORT markers reach the other nodes' leaders with
//! WriteTxnMarkers (API 27). A read_committed consumer sees exactly the committed records;
//! offsets sent to a transaction for a group coordinated on yet another node count only when
//! it commits; a transaction whose coordinator's node is SIGKILLed before its commit commits
//! through the new coordinator, and a commit left in PrepareCommit (a partition without a
//! leader) when its coordinator's node dies is completed by the next coordinator. On the wire: the WriteTxnMarkers error paths (including
//! markers of a fenced producer epoch or an older coordinator generation), and a
//! transactional batch verified with a coordinator on another node (AddPartitionsToTxn v4).
//!
//! Ports (218xx) differ from the other cluster tests and from the unit tests' controller
//! ports, so the binaries can run side by side.

#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/rdk.rs"]
mod rdk;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, DescribeTransactionsRequest, InitProducerIdRequest, ProduceRequest,
    ProducerId, TopicName, TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use sluice::client::connection::Connection;
use sluice::protocol::record_batch::{ATTR_TRANSACTIONAL, BatchBuilder};
use sluice::protocol::records::{Record, encode_record};

use cluster::{Cluster, FORM_WITHIN, brokers, create_topic, every_isr_is};

const ALL: [i32; 3] = [1000, 2000, 3000];
const PARTITIONS: i32 = 6;
const OP_TIMEOUT: Duration = Duration::from_secs(30);

/// Few internal partitions, so the internal topics are created and in sync quickly.
const SETTINGS: &[&str] = &[
    "offsets.topic.num.partitions=6",
    "transaction.state.log.num.partitions=6",
    "broker.heartbeat.interval.ms=500",
];

fn formed(cluster: &Cluster) {
    cluster.wait_for(FORM_WITHIN, "every node listing 3 brokers", || {
        (1..=3).all(|n| brokers(&cluster.bootstrap(n)) == ALL.to_vec())
    });
}

fn all_bootstraps(cluster: &Cluster) -> String {
    (1..=3)
        .map(|n| cluster.bootstrap(n))
        .collect::<Vec<_>>()
        .join(",")
}

/// Creates an RF=3 topic and waits until every partition's ISR is full.
fn replicated_topic(cluster: &Cluster, topic: &str, partitions: i32) {
    create_topic(&cluster.bootstrap(1), topic, partitions, 3).expect("create the topic");
    cluster.wait_for(Duration::from_secs(30), "a full ISR", || {
        every_isr_is(&cluster.bootstrap(1), topic, &ALL)
    });
}

/// Waits until `internal` exists with a full ISR everywhere (it is created in the
/// background on first use).
fn internal_topic_ready(cluster: &Cluster, internal: &str) {
    cluster.wait_for(Duration::from_secs(60), internal, || {
        every_isr_is(&cluster.bootstrap(1), internal, &ALL)
    });
}

fn txn_producer(bootstrap: &str, id: &str) -> BaseProducer {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", id)
        .set("transaction.timeout.ms", "60000")
        .set("linger.ms", "5")
        .create()
        .expect("transactional producer");
    producer
        .init_transactions(OP_TIMEOUT)
        .expect("init_transactions");
    producer
}

/// Sends "<tag>-<partition>-<i>" to every partition and waits until all are acknowledged.
fn send_all(producer: &BaseProducer, topic: &str, tag: &str, per_partition: i32) {
    for p in 0..PARTITIONS {
        for i in 0..per_partition {
            let value = format!("{tag}-{p}-{i}");
            producer
                .send(BaseRecord::<(), _>::to(topic).partition(p).payload(&value))
                .expect("enqueue");
        }
    }
    producer.flush(OP_TIMEOUT).expect("flush");
}

fn reader(bootstrap: &str, topic: &str, isolation: &str) -> BaseConsumer {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-{isolation}"))
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("add partition");
    }
    consumer.assign(&tpl).expect("assign");
    consumer
}

/// Polls until `done(values)` holds or `limit` passes, then `settle` longer (to catch
/// records that should not be there); returns every value seen.
fn read(
    consumer: &BaseConsumer,
    limit: Duration,
    settle: Duration,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut values = Vec::new();
    let mut settle_until = None;
    loop {
        let now = Instant::now();
        if settle_until.is_none() && (done(&values) || now >= deadline) {
            settle_until = Some(now + settle);
        }
        if settle_until.is_some_and(|s| now >= s) {
            return values;
        }
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100))
            && let Some(Ok(v)) = message.payload_view::<str>()
        {
            values.push(v.to_owned());
        }
    }
}

fn count_tag(values: &[String], tag: &str) -> usize {
    let prefix = format!("{tag}-");
    values.iter().filter(|v| v.starts_with(&prefix)).count()
}

/// The broker leading the internal-topic partition that `key` hashes to.
fn leader_of(bootstrap: &str, internal_topic: &str, key: &str) -> i32 {
    let leaders = rdk::leaders(bootstrap, internal_topic);
    let count = i32::try_from(leaders.len()).expect("partition count fits i32");
    let p = sluice::coordinator::group::records::partition_for_group(key, count);
    leaders[&p]
}

fn committed_offset(bootstrap: &str, group: &str, topic: &str) -> Option<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .expect("offset reader");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let committed = consumer
        .committed_offsets(tpl, OP_TIMEOUT)
        .expect("committed offsets");
    match committed.find_partition(topic, 0).map(|e| e.offset()) {
        Some(Offset::Offset(o)) => Some(o),
        _ => None,
    }
}

#[test]
fn transactions_end_on_partition_leaders_of_other_nodes() {
    let cluster = Cluster::start(21810, 21820, SETTINGS);
    formed(&cluster);
    let bootstrap = all_bootstraps(&cluster);
    replicated_topic(&cluster, "txx", PARTITIONS);
    let leaders = rdk::leaders(&bootstrap, "txx");
    let leader_nodes: BTreeSet<i32> = leaders.values().map(|l| l / 1000).collect();
    assert_eq!(
        leader_nodes.len(),
        3,
        "leaders spread over the nodes: {leaders:?}"
    );

    let producer = txn_producer(&bootstrap, "tx-cross");
    internal_topic_ready(&cluster, "__transaction_state");
    let coordinator = leader_of(&bootstrap, "__transaction_state", "tx-cross");
    let remote: Vec<i32> = leaders
        .iter()
        .filter(|(_, l)| **l / 1000 != coordinator / 1000)
        .map(|(p, _)| *p)
        .collect();
    assert!(
        !remote.is_empty(),
        "some partition is led by another node than the coordinator {coordinator}"
    );
    println!("coordinator {coordinator}, leaders {leaders:?}, remote partitions {remote:?}");

    producer.begin_transaction().expect("begin c1");
    send_all(&producer, "txx", "c1", 5);
    let started = Instant::now();
    producer.commit_transaction(OP_TIMEOUT).expect("commit c1");
    println!("commit with remote markers took {:?}", started.elapsed());

    producer.begin_transaction().expect("begin a1");
    send_all(&producer, "txx", "a1", 5);
    producer.abort_transaction(OP_TIMEOUT).expect("abort a1");

    // After an abort the partitions take the next transaction at once (the markers ended
    // the previous one everywhere).
    producer.begin_transaction().expect("begin c2");
    send_all(&producer, "txx", "c2", 5);
    producer.commit_transaction(OP_TIMEOUT).expect("commit c2");

    let expected = (5 * PARTITIONS) as usize;
    let committed = reader(&bootstrap, "txx", "read_committed");
    let seen = read(&committed, OP_TIMEOUT, Duration::from_secs(1), |v| {
        count_tag(v, "c1") + count_tag(v, "c2") >= 2 * expected
    });
    assert_eq!(
        count_tag(&seen, "c1"),
        expected,
        "read_committed sees all of c1"
    );
    assert_eq!(
        count_tag(&seen, "c2"),
        expected,
        "read_committed sees all of c2"
    );
    assert_eq!(count_tag(&seen, "a1"), 0, "read_committed never sees a1");
    assert_eq!(seen.len(), 2 * expected, "nothing else, nothing twice");

    // The aborted records were written (on every leader) and only the marker hides them.
    let uncommitted = reader(&bootstrap, "txx", "read_uncommitted");
    let all = read(&uncommitted, OP_TIMEOUT, Duration::ZERO, |v| {
        v.len() >= 3 * expected
    });
    assert_eq!(count_tag(&all, "a1"), expected, "read_uncommitted sees a1");
}

#[test]
fn offsets_sent_to_a_transaction_reach_a_group_coordinator_on_another_node() {
    let cluster = Cluster::start(21830, 21840, SETTINGS);
    formed(&cluster);
    let bootstrap = all_bootstraps(&cluster);
    replicated_topic(&cluster, "ctp", PARTITIONS);
    // A consume-transform-produce loop's input topic: only its offsets matter here.
    replicated_topic(&cluster, "ctp-in", 1);
    let producer = txn_producer(&bootstrap, "tx-ctp");
    internal_topic_ready(&cluster, "__transaction_state");
    let txn_node = leader_of(&bootstrap, "__transaction_state", "tx-ctp") / 1000;
    assert_eq!(committed_offset(&bootstrap, "probe", "ctp-in"), None); // creates __consumer_offsets
    internal_topic_ready(&cluster, "__consumer_offsets");
    let group = (0..100)
        .map(|i| format!("ctp-group-{i}"))
        .find(|g| leader_of(&bootstrap, "__consumer_offsets", g) / 1000 != txn_node)
        .expect("some group is coordinated on another node");
    let group_node = leader_of(&bootstrap, "__consumer_offsets", &group) / 1000;
    println!("transaction coordinator on node {txn_node}, group {group} on node {group_node}");

    let group_consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("group consumer");
    let metadata = group_consumer
        .group_metadata()
        .expect("consumer group metadata");
    let offsets_at = |offset: i64| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("ctp-in", 0, Offset::Offset(offset))
            .expect("add");
        tpl
    };

    producer.begin_transaction().expect("begin");
    send_all(&producer, "ctp", "out", 1);
    producer
        .send_offsets_to_transaction(&offsets_at(7), &metadata, OP_TIMEOUT)
        .expect("send offsets");
    producer.abort_transaction(OP_TIMEOUT).expect("abort");
    assert_eq!(
        committed_offset(&bootstrap, &group, "ctp-in"),
        None,
        "abort leaves the group's offsets unchanged"
    );

    producer.begin_transaction().expect("begin");
    send_all(&producer, "ctp", "out", 1);
    producer
        .send_offsets_to_transaction(&offsets_at(11), &metadata, OP_TIMEOUT)
        .expect("send offsets");
    producer.commit_transaction(OP_TIMEOUT).expect("commit");
    // EndTxn answers once the markers are written, so the offsets are visible at once.
    let at_once = committed_offset(&bootstrap, &group, "ctp-in");
    cluster.wait_for(Duration::from_secs(1), "committed offsets", || {
        committed_offset(&bootstrap, &group, "ctp-in") == Some(11)
    });
    assert_eq!(
        at_once,
        Some(11),
        "the commit's marker on the group coordinator's node makes the offsets visible"
    );

    // The WriteTxnMarkers error paths, on the wire, to the shard of node 1.
    let shard = format!("127.0.0.1:{}", 21830 + 1);
    let mut conn = Connection::connect(&shard, None).expect("connect to node 1's shard");
    let leaders = rdk::leaders(&bootstrap, "ctp");
    let elsewhere = *leaders
        .iter()
        .find(|(_, l)| **l != 1000)
        .expect("a partition led by another node")
        .0;
    let codes = write_markers(
        &mut conn,
        &[("ctp", elsewhere), ("no-such-topic", 0), ("ctp", 99)],
        (7_000, 0),
        0,
    );
    assert_eq!(
        codes,
        BTreeMap::from([
            (
                ("ctp".to_owned(), elsewhere),
                ResponseError::NotLeaderOrFollower.code()
            ),
            (
                ("ctp".to_owned(), 99),
                ResponseError::UnknownTopicOrPartition.code()
            ),
            (
                ("no-such-topic".to_owned(), 0),
                ResponseError::UnknownTopicOrPartition.code()
            ),
        ])
    );
    // A marker where node 1 leads: written (an ABORT of a producer with nothing open).
    let here = *leaders
        .iter()
        .find(|(_, l)| **l == 1000)
        .expect("a partition led by node 1")
        .0;
    let code = |conn: &mut Connection, producer: (i64, i16), coordinator_epoch: i32| {
        let codes = write_markers(conn, &[("ctp", here)], producer, coordinator_epoch);
        codes.values().copied().collect::<Vec<_>>()
    };
    assert_eq!(code(&mut conn, (7_000, 0), 0), vec![0]);
    // As Kafka's partition leader: a marker of a newer coordinator generation is written, one
    // of an older generation than the producer's last marker here is fenced, and so is one of
    // a producer epoch older than the producer's here.
    assert_eq!(code(&mut conn, (7_000, 1), 5), vec![0]);
    assert_eq!(
        code(&mut conn, (7_000, 1), 4),
        vec![ResponseError::TransactionCoordinatorFenced.code()]
    );
    assert_eq!(
        code(&mut conn, (7_000, 0), 6),
        vec![ResponseError::InvalidProducerEpoch.code()]
    );

    // A transactional batch on a partition led by another node than the coordinator is
    // verified with it (AddPartitionsToTxn v4, verify_only): refused until the partition is
    // added to the transaction, accepted after.
    let txn_port = |node: i32| format!("127.0.0.{node}:{}", 21830 + 1);
    let verify_node = leader_of(&bootstrap, "__transaction_state", "tx-verify") / 1000;
    let mut coordinator = Connection::connect(&txn_port(verify_node), None).expect("coordinator");
    let mut init = InitProducerIdRequest::default();
    init.transactional_id = Some(TransactionalId(StrBytes::from_static_str("tx-verify")));
    init.transaction_timeout_ms = 60_000;
    init.producer_id = ProducerId(-1);
    init.producer_epoch = -1;
    let ready = coordinator.send(&init, None).expect("InitProducerId");
    assert_eq!(ready.error_code, 0, "InitProducerId");
    let (pid, epoch) = (ready.producer_id.0, ready.producer_epoch);
    let (&p, &leader) = leaders
        .iter()
        .find(|(_, l)| **l / 1000 != verify_node)
        .expect("a partition led by another node than the coordinator");
    let mut partition_leader = Connection::connect(&txn_port(leader / 1000), None).expect("leader");
    let produce = |conn: &mut Connection| {
        let batch = transactional_batch(pid, epoch);
        let mut data = PartitionProduceData::default();
        data.index = p;
        data.records = Some(batch);
        let mut topic = TopicProduceData::default();
        topic.name = TopicName(StrBytes::from_static_str("ctp"));
        topic.partition_data = vec![data];
        let mut request = ProduceRequest::default();
        request.acks = -1;
        request.timeout_ms = 5_000;
        request.transactional_id = Some(TransactionalId(StrBytes::from_static_str("tx-verify")));
        request.topic_data = vec![topic];
        let response = conn.send(&request, Some(9)).expect("Produce");
        response.responses[0].partition_responses[0].error_code
    };
    assert_eq!(
        produce(&mut partition_leader),
        ResponseError::InvalidTxnState.code(),
        "a partition never added is refused by the remote coordinator's verification"
    );
    let mut add = AddPartitionsToTxnRequest::default();
    add.v3_and_below_transactional_id = TransactionalId(StrBytes::from_static_str("tx-verify"));
    add.v3_and_below_producer_id = ProducerId(pid);
    add.v3_and_below_producer_epoch = epoch;
    let mut t = AddPartitionsToTxnTopic::default();
    t.name = TopicName(StrBytes::from_static_str("ctp"));
    t.partitions = vec![p];
    add.v3_and_below_topics = vec![t];
    let added = coordinator.send(&add, Some(3)).expect("AddPartitionsToTxn");
    assert_eq!(
        added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    assert_eq!(produce(&mut partition_leader), 0, "accepted once added");
}

/// One transactional record batch of (producer id, epoch), sequence 0.
fn transactional_batch(producer_id: i64, epoch: i16) -> bytes::Bytes {
    let mut section = Vec::new();
    encode_record(
        &mut section,
        &Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: 0,
            key: Some(b"k".to_vec()),
            value: Some(b"verified".to_vec()),
            headers: Vec::new(),
        },
    );
    bytes::Bytes::from(
        BatchBuilder {
            attributes: ATTR_TRANSACTIONAL,
            producer_id,
            producer_epoch: epoch,
            base_sequence: 0,
            record_count: 1,
            ..BatchBuilder::default()
        }
        .build(&section),
    )
}

/// Sends one ABORT marker of `(producer id, producer epoch)` from a coordinator of
/// `coordinator_epoch` for `partitions`; the error code of each partition.
fn write_markers(
    conn: &mut Connection,
    partitions: &[(&str, i32)],
    (producer_id, producer_epoch): (i64, i16),
    coordinator_epoch: i32,
) -> BTreeMap<(String, i32), i16> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in partitions {
        by_topic.entry(t).or_default().push(*p);
    }
    let mut marker = WritableTxnMarker::default();
    marker.producer_id = ProducerId(producer_id);
    marker.producer_epoch = producer_epoch;
    marker.transaction_result = false;
    marker.coordinator_epoch = coordinator_epoch;
    marker.topics = by_topic
        .into_iter()
        .map(|(name, partition_indexes)| {
            let mut t = WritableTxnMarkerTopic::default();
            t.name = TopicName(StrBytes::from_string(name.to_owned()));
            t.partition_indexes = partition_indexes;
            t
        })
        .collect();
    let mut request = WriteTxnMarkersRequest::default();
    request.markers = vec![marker];
    let response = conn.send(&request, None).expect("WriteTxnMarkers");
    assert_eq!(response.markers.len(), 1);
    assert_eq!(response.markers[0].producer_id.0, producer_id);
    response.markers[0]
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| ((t.name.0.to_string(), p.partition_index), p.error_code))
        })
        .collect()
}

#[test]
fn a_transaction_commits_on_the_new_coordinator_after_its_node_is_killed() {
    let mut settings = SETTINGS.to_vec();
    settings.extend([
        "broker.session.timeout.ms=3000",
        "replica.lag.time.max.ms=4000",
    ]);
    let mut cluster = Cluster::start(21850, 21860, &settings);
    formed(&cluster);
    let bootstrap = all_bootstraps(&cluster);
    replicated_topic(&cluster, "txf", PARTITIONS);
    let producer = txn_producer(&bootstrap, "tx-failover");
    internal_topic_ready(&cluster, "__transaction_state");

    producer.begin_transaction().expect("begin c1");
    send_all(&producer, "txf", "c1", 5);
    producer.commit_transaction(OP_TIMEOUT).expect("commit c1");

    // Records of c2 are on every in-sync replica (acks=all) when the coordinator's node dies;
    // the new coordinator loads c2 (Ongoing, its partitions) from the replicated
    // `__transaction_state` and writes its markers to the partitions' new leaders.
    producer.begin_transaction().expect("begin c2");
    send_all(&producer, "txf", "c2", 5);
    let coordinator = leader_of(&bootstrap, "__transaction_state", "tx-failover");
    let dead = u8::try_from(coordinator / 1000).expect("node id");
    cluster.node(dead).kill9();
    let killed = Instant::now();
    producer
        .commit_transaction(Duration::from_secs(60))
        .expect("commit c2 through the new coordinator");
    println!(
        "coordinator on node {dead} killed; c2 committed {:?} later",
        killed.elapsed()
    );

    let alive: Vec<String> = (1..=3)
        .filter(|n| *n != dead)
        .map(|n| cluster.bootstrap(n))
        .collect();
    let expected = (5 * PARTITIONS) as usize;
    let committed = reader(&alive.join(","), "txf", "read_committed");
    let seen = read(&committed, OP_TIMEOUT, Duration::from_secs(1), |v| {
        v.len() >= 2 * expected
    });
    assert_eq!(count_tag(&seen, "c1"), expected, "c1 whole");
    assert_eq!(count_tag(&seen, "c2"), expected, "c2 whole");
    assert_eq!(seen.len(), 2 * expected, "nothing else, nothing twice");
}

/// The state DescribeTransactions reports for `id` at `shard` (host:port), if it answers.
fn txn_state(shard: &str, id: &str) -> Option<String> {
    let mut conn = Connection::connect(shard, None).ok()?;
    let mut request = DescribeTransactionsRequest::default();
    request.transactional_ids = vec![TransactionalId(StrBytes::from_string(id.to_owned()))];
    let response = conn.send(&request, None).ok()?;
    let state = response.transaction_states.first()?;
    (state.error_code == 0).then(|| state.transaction_state.to_string())
}

#[test]
fn a_commit_left_in_prepare_is_completed_by_the_next_coordinator() {
    let mut settings = SETTINGS.to_vec();
    settings.extend([
        "broker.session.timeout.ms=3000",
        "replica.lag.time.max.ms=4000",
    ]);
    let (port, controller) = (21870, 21880);
    let mut cluster = Cluster::start(port, controller, &settings);
    formed(&cluster);
    let bootstrap = all_bootstraps(&cluster);
    replicated_topic(&cluster, "txp", PARTITIONS);
    // One partition with a single replica: while its node is down it has no leader, so the
    // commit's marker there cannot be written and the transaction stays in PrepareCommit.
    let solo_topic =
        rdkafka::admin::NewTopic::new("solo", 1, rdkafka::admin::TopicReplication::Fixed(1))
            .set("min.insync.replicas", "1");
    let created = futures_lite::future::block_on(
        rdk::admin(&cluster.bootstrap(1)).create_topics([&solo_topic], &rdk::admin_options()),
    )
    .expect("create solo");
    assert!(created.iter().all(Result::is_ok), "{created:?}");
    cluster.wait_for(Duration::from_secs(30), "solo's leader", || {
        rdk::leaders(&bootstrap, "solo")
            .get(&0)
            .is_some_and(|l| *l > 0)
    });
    let solo = rdk::leaders(&bootstrap, "solo")[&0] / 1000;
    drop(txn_producer(&bootstrap, "tx-probe")); // creates __transaction_state
    internal_topic_ready(&cluster, "__transaction_state");
    let id = (0..100)
        .map(|i| format!("tx-prepare-{i}"))
        .find(|id| leader_of(&bootstrap, "__transaction_state", id) / 1000 != solo)
        .expect("an id coordinated on another node than solo's");
    let coordinator = leader_of(&bootstrap, "__transaction_state", &id) / 1000;
    let third = (1..=3)
        .find(|n| *n != solo && *n != coordinator)
        .expect("third node");
    println!("solo on node {solo}, coordinator of {id} on node {coordinator}");

    let producer = txn_producer(&bootstrap, &id);
    producer.begin_transaction().expect("begin");
    send_all(&producer, "txp", "p1", 5);
    producer
        .send(
            BaseRecord::<(), _>::to("solo")
                .partition(0)
                .payload("p1-solo"),
        )
        .expect("enqueue");
    producer.flush(OP_TIMEOUT).expect("flush");

    let node = |n: i32| u8::try_from(n).expect("node id");
    cluster.node(node(solo)).kill9();
    let survivor = cluster.bootstrap(node(coordinator));
    cluster.wait_for(Duration::from_secs(15), "solo's node fenced", || {
        !brokers(&survivor).contains(&(solo * 1000))
    });
    // EndTxn stores PrepareCommit and answers; the marker for `solo` has nowhere to go.
    producer.commit_transaction(OP_TIMEOUT).expect("commit");
    let coordinator_shard = format!("127.0.0.{coordinator}:{}", port + 1);
    assert_eq!(
        txn_state(&coordinator_shard, &id).as_deref(),
        Some("PrepareCommit"),
        "the commit waits for solo's marker"
    );

    // Solo's node comes back while the coordinator's node dies: the coordinator elected next
    // loads PrepareCommit from the replicated log and writes the remaining markers.
    cluster.node(node(solo)).start();
    cluster.node(node(coordinator)).kill9();
    let alive = format!(
        "{},{}",
        cluster.bootstrap(node(solo)),
        cluster.bootstrap(node(third))
    );
    let completed = cluster.wait_for(Duration::from_secs(60), "CompleteCommit", || {
        let new_coordinator = rdk::leaders(&alive, "__transaction_state");
        let count = i32::try_from(new_coordinator.len()).unwrap_or(1);
        let p = sluice::coordinator::group::records::partition_for_group(&id, count);
        new_coordinator.get(&p).is_some_and(|l| {
            *l > 0
                && txn_state(&format!("127.0.0.{}:{}", l / 1000, port + 1), &id).as_deref()
                    == Some("CompleteCommit")
        })
    });
    println!("the new coordinator completed the commit {completed:?} after the kill");

    let committed = ClientConfig::new()
        .set("bootstrap.servers", &alive)
        .set("group.id", "prepare-reader")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100")
        .create::<BaseConsumer>()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset("txp", p, Offset::Beginning)
            .expect("add");
    }
    tpl.add_partition_offset("solo", 0, Offset::Beginning)
        .expect("add");
    committed.assign(&tpl).expect("assign");
    let expected = (5 * PARTITIONS) as usize + 1;
    let seen = read(&committed, OP_TIMEOUT, Duration::from_secs(1), |v| {
        v.len() >= expected
    });
    assert_eq!(
        count_tag(&seen, "p1"),
        expected,
        "the whole commit, solo included"
    );
    assert_eq!(seen.len(), expected, "nothing twice");
}
