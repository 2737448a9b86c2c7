//! Transaction version 2 (KIP-890 part 2) at the wire level, against a two-shard broker, with
//! requests built by the `kafka-protocol` crate (no client in the reachable registries speaks
//! it: librdkafka stops at EndTxn v3 and Produce v10, kafka-python at EndTxn v3). A version 2
//! producer sends no AddPartitionsToTxn: Produce v12+ (and v13 by topic id) adds each
//! partition through the coordinator, on the coordinator's shard or through the mailbox;
//! EndTxn v5 bumps the epoch and answers the producer id and epoch to continue with; a
//! retried EndTxn is answered as a retry; the old epoch is fenced at the coordinator and at
//! the partition; read_committed reads the committed transactions only; TxnOffsetCommit v5
//! adds the group's partition itself. A version 1 producer beside it is served as before.

mod broker_common;
mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::call;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use sluice::protocol::record_batch::ATTR_TRANSACTIONAL;

const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const PRODUCER_FENCED: i16 = 90;
const UNKNOWN_TOPIC_ID: i16 = 100;

/// One transactional producer of the test: its id and the topic it writes.
struct Txn<'a> {
    id: &'a str,
    topic: &'a str,
}

fn str(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// A transactional batch of one record, first sequence 0 (each test batch is the first of its
/// epoch on its partition).
fn batch(producer_id: i64, epoch: i16, value: &[u8]) -> Bytes {
    broker_common::producer_batch(producer_id, epoch, ATTR_TRANSACTIONAL, b"k", value)
}

/// Produces `records` to `partition` in `version`; v13 names the topic by `topic_id`.
/// Returns (error code, base offset).
fn produce(
    port: u16,
    txn: &Txn<'_>,
    version: i16,
    topic_id: uuid::Uuid,
    partition: i32,
    records: Bytes,
) -> (i16, i64) {
    let mut data = PartitionProduceData::default();
    data.index = partition;
    data.records = Some(records);
    let mut topic = TopicProduceData::default();
    if version >= 13 {
        topic.topic_id = topic_id;
    } else {
        topic.name = TopicName(str(txn.topic));
    }
    topic.partition_data = vec![data];
    let mut request = ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 5_000;
    request.transactional_id = Some(TransactionalId(str(txn.id)));
    request.topic_data = vec![topic];
    let response = call(port, request, version);
    let t = &response.responses[0];
    if version >= 13 {
        assert_eq!(t.topic_id, topic_id, "v13 answers by topic id");
    }
    let p = &t.partition_responses[0];
    (p.error_code, p.base_offset)
}

fn init(coordinator: u16, txn: &Txn<'_>) -> (i64, i16) {
    let mut request = InitProducerIdRequest::default();
    request.transactional_id = Some(TransactionalId(str(txn.id)));
    request.transaction_timeout_ms = 60_000;
    request.producer_id = ProducerId(-1);
    request.producer_epoch = -1;
    let ready = call(coordinator, request, 5);
    assert_eq!(ready.error_code, 0);
    (ready.producer_id.0, ready.producer_epoch)
}

/// EndTxn in `version`: (error code, producer id, producer epoch) as answered.
fn end_txn(
    coordinator: u16,
    txn: &Txn<'_>,
    producer: (i64, i16),
    commit: bool,
    version: i16,
) -> (i16, i64, i16) {
    let mut request = EndTxnRequest::default();
    request.transactional_id = TransactionalId(str(txn.id));
    request.producer_id = ProducerId(producer.0);
    request.producer_epoch = producer.1;
    request.committed = commit;
    let response = call(coordinator, request, version);
    (
        response.error_code,
        response.producer_id.0,
        response.producer_epoch,
    )
}

fn describe(coordinator: u16, txn: &Txn<'_>) -> describe_transactions_response::TransactionState {
    let mut request = DescribeTransactionsRequest::default();
    request.transactional_ids = vec![TransactionalId(str(txn.id))];
    call(coordinator, request, 0).transaction_states.remove(0)
}

/// The partitions of the open transaction, as (topic, partition) pairs.
fn txn_partitions(coordinator: u16, txn: &Txn<'_>) -> Vec<(String, i32)> {
    let state = describe(coordinator, txn);
    assert_eq!(state.error_code, 0);
    let mut out: Vec<(String, i32)> = state
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
        .collect();
    out.sort();
    out
}

/// Every value a read_committed consumer (librdkafka) reads from `partition`, to its end.
fn committed_values(bootstrap: &str, topic: &str, partition: i32) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "txn-v2-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)
        .expect("add partition");
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut values = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "no end of {topic}/{partition}");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into())
            }
            Some(Err(KafkaError::PartitionEOF(_))) => return values,
            Some(Err(e)) => panic!("consume {topic}/{partition}: {e}"),
            None => {}
        }
    }
}

#[test]
fn version_2_transactions_add_partitions_by_producing_and_bump_the_epoch() {
    let broker = broker_common::start();
    let txn = Txn {
        id: "tv2-tx",
        topic: "tv2-data",
    };
    broker_common::create_topic(&broker.bootstrap(), txn.topic, 2);
    let coordinator = broker_common::coordinator_port(&broker, txn.id, 1);
    let (p0, id) = broker_common::partition_leader(&broker, txn.topic, 0);
    let (p1, _) = broker_common::partition_leader(&broker, txn.topic, 1);
    assert_ne!(p0, p1, "the partitions live on different shards");
    let (pid, e0) = init(coordinator, &txn);

    // Transaction 1: no AddPartitionsToTxn; v12 by name, v13 by topic id. One partition's
    // leader shares the coordinator's shard, the other asks it through the mailbox.
    assert_eq!(
        produce(p0, &txn, 12, id, 0, batch(pid, e0, b"t1-p0")),
        (0, 0)
    );
    assert_eq!(
        produce(p1, &txn, 13, id, 1, batch(pid, e0, b"t1-p1")),
        (0, 0)
    );
    assert_eq!(
        txn_partitions(coordinator, &txn),
        vec![(txn.topic.to_string(), 0), (txn.topic.to_string(), 1)]
    );
    assert_eq!(
        broker_common::latest_offset(p0, txn.topic, 0, 1),
        0,
        "open: the LSO holds at the transaction"
    );
    let e1 = e0 + 1;
    assert_eq!(
        end_txn(coordinator, &txn, (pid, e0), true, 5),
        (0, pid, e1),
        "EndTxn v5 answers the bumped epoch"
    );
    assert_eq!(describe(coordinator, &txn).producer_epoch, e1);
    assert_eq!(
        end_txn(coordinator, &txn, (pid, e0), true, 5),
        (0, pid, e1),
        "a retried EndTxn is answered with the same ids"
    );
    assert_eq!(
        broker_common::latest_offset(p0, txn.topic, 0, 1),
        2,
        "committed: LSO past the marker"
    );
    assert_eq!(broker_common::latest_offset(p1, txn.topic, 1, 1), 2);

    // A zombie of transaction 1 (old epoch) may not write, on either path.
    assert_eq!(
        produce(p0, &txn, 12, id, 0, batch(pid, e0, b"zombie")).0,
        INVALID_PRODUCER_EPOCH
    );

    // Transaction 2 under the bumped epoch, aborted.
    assert_eq!(
        produce(p0, &txn, 13, id, 0, batch(pid, e1, b"t2-aborted")),
        (0, 2)
    );
    let e2 = e1 + 1;
    assert_eq!(
        end_txn(coordinator, &txn, (pid, e1), false, 5),
        (0, pid, e2)
    );
    // Transaction 3, committed.
    assert_eq!(
        produce(p0, &txn, 12, id, 0, batch(pid, e2, b"t3-p0")),
        (0, 4)
    );
    assert_eq!(
        end_txn(coordinator, &txn, (pid, e2), true, 5),
        (0, pid, e2 + 1)
    );
    // An old epoch that is not the previous one is no retry: fenced.
    assert_eq!(
        end_txn(coordinator, &txn, (pid, e0), true, 5).0,
        PRODUCER_FENCED
    );

    assert_eq!(
        committed_values(&broker.bootstrap(), txn.topic, 0),
        vec!["t1-p0", "t3-p0"],
        "read_committed skips the aborted transaction"
    );
    assert_eq!(
        committed_values(&broker.bootstrap(), txn.topic, 1),
        vec!["t1-p1"]
    );

    // v13 with an id no topic has.
    assert_eq!(
        produce(
            p0,
            &txn,
            13,
            uuid::Uuid::from_u128(7),
            0,
            batch(pid, e2 + 1, b"x")
        )
        .0,
        UNKNOWN_TOPIC_ID
    );
}

#[test]
fn version_1_transactions_beside_version_2_are_unchanged() {
    let broker = broker_common::start();
    let txn = Txn {
        id: "tv1-tx",
        topic: "tv1-data",
    };
    broker_common::create_topic(&broker.bootstrap(), txn.topic, 1);
    let coordinator = broker_common::coordinator_port(&broker, txn.id, 1);
    let (leader, id) = broker_common::partition_leader(&broker, txn.topic, 0);
    let (pid, epoch) = init(coordinator, &txn);

    // Produce v11 (version 1) is only verified: a partition never added is refused.
    assert_eq!(
        produce(leader, &txn, 11, id, 0, batch(pid, epoch, b"refused")).0,
        INVALID_TXN_STATE
    );
    let mut add = AddPartitionsToTxnRequest::default();
    add.v3_and_below_transactional_id = TransactionalId(str(txn.id));
    add.v3_and_below_producer_id = ProducerId(pid);
    add.v3_and_below_producer_epoch = epoch;
    let mut t = AddPartitionsToTxnTopic::default();
    t.name = TopicName(str(txn.topic));
    t.partitions = vec![0];
    add.v3_and_below_topics = vec![t];
    let added = call(coordinator, add, 3);
    assert_eq!(
        added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        0
    );
    assert_eq!(
        produce(leader, &txn, 11, id, 0, batch(pid, epoch, b"v1")),
        (0, 0)
    );
    // EndTxn v3 keeps the epoch, as before.
    assert_eq!(end_txn(coordinator, &txn, (pid, epoch), true, 3).0, 0);
    assert_eq!(describe(coordinator, &txn).producer_epoch, epoch);
    assert_eq!(
        end_txn(coordinator, &txn, (pid, epoch + 1), true, 3).0,
        PRODUCER_FENCED
    );
    assert_eq!(
        committed_values(&broker.bootstrap(), txn.topic, 0),
        vec!["v1"]
    );
}

#[test]
fn txn_offset_commit_v5_adds_the_group_partition_itself() {
    let broker = broker_common::start();
    let txn = Txn {
        id: "tv2-offsets-tx",
        topic: "tv2-offsets-data",
    };
    let group = "tv2-offsets-group";
    broker_common::create_topic(&broker.bootstrap(), txn.topic, 1);
    let coordinator = broker_common::coordinator_port(&broker, txn.id, 1);
    let group_coordinator = broker_common::coordinator_port(&broker, group, 0);
    let (pid, epoch) = init(coordinator, &txn);

    let commit = |producer_epoch: i16| {
        let mut p = TxnOffsetCommitRequestPartition::default();
        p.partition_index = 0;
        p.committed_offset = 42;
        let mut t = TxnOffsetCommitRequestTopic::default();
        t.name = TopicName(str(txn.topic));
        t.partitions = vec![p];
        let mut request = TxnOffsetCommitRequest::default();
        request.transactional_id = TransactionalId(str(txn.id));
        request.group_id = GroupId(str(group));
        request.producer_id = ProducerId(pid);
        request.producer_epoch = producer_epoch;
        request.generation_id = -1;
        request.member_id = str("");
        request.topics = vec![t];
        call(group_coordinator, request, 5).topics[0].partitions[0].error_code
    };
    assert_eq!(commit(epoch), 0);
    let partitions = txn_partitions(coordinator, &txn);
    assert_eq!(partitions.len(), 1, "{partitions:?}");
    assert_eq!(partitions[0].0, "__consumer_offsets");
    assert_eq!(
        end_txn(coordinator, &txn, (pid, epoch), true, 5),
        (0, pid, epoch + 1)
    );
    // The commit made the offset the group's.
    let mut fetch = OffsetFetchRequest::default();
    fetch.group_id = GroupId(str(group));
    let mut t = OffsetFetchRequestTopic::default();
    t.name = TopicName(str(txn.topic));
    t.partition_indexes = vec![0];
    fetch.topics = Some(vec![t]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let fetched = call(group_coordinator, fetch.clone(), 7);
        if fetched.topics[0].partitions[0].committed_offset == 42 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "offset not committed: {fetched:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The old epoch is fenced at the transaction coordinator.
    assert_eq!(commit(epoch), PRODUCER_FENCED);
}
