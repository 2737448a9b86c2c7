//! Transactions at the wire level, with requests built by the `kafka-protocol` crate against a
//! two-shard broker: FindCoordinator key type 1, InitProducerId with a transactional id
//! (NOT_COORDINATOR on the wrong shard), transactional data refused before its partition is
//! added, AddPartitionsToTxn, a transactional produce,
//! ListOffsets latest under read_committed (the LSO) and read_uncommitted,
//! DescribeProducers, DescribeTransactions, ListTransactions, a client control batch
//! refused, a stale-epoch EndTxn fenced, and the commit moving the LSO.

mod broker_common;
mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Broker, call};
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use sluice::protocol::record_batch::{ATTR_CONTROL, ATTR_TRANSACTIONAL};

const TOPIC: &str = "wire-txn";
const TXN_ID: &str = "wire-tx";
const NOT_COORDINATOR: i16 = 16;
const INVALID_RECORD: i16 = 87;
const INVALID_TXN_STATE: i16 = 48;
const PRODUCER_FENCED: i16 = 90;
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

fn leader_port(broker: &Broker, partition: i32) -> u16 {
    broker_common::partition_leader(broker, TOPIC, partition).0
}

fn batch(producer_id: i64, epoch: i16, attributes: i16, key: &[u8], value: &[u8]) -> Bytes {
    broker_common::producer_batch(producer_id, epoch, attributes, key, value)
}

fn latest(port: u16, index: i32, isolation_level: i8) -> i64 {
    broker_common::latest_offset(port, TOPIC, index, isolation_level)
}

/// The coordinator shard's port for [`TXN_ID`].
fn txn_coordinator_port(broker: &Broker) -> u16 {
    broker_common::coordinator_port(broker, TXN_ID, 1)
}

fn produce(port: u16, records: Bytes) -> (i16, i64) {
    let mut data = PartitionProduceData::default();
    data.index = 0;
    data.records = Some(records);
    let mut topic = TopicProduceData::default();
    topic.name = TopicName(StrBytes::from_static_str(TOPIC));
    topic.partition_data = vec![data];
    let mut request = ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 5_000;
    request.transactional_id = Some(TransactionalId(StrBytes::from_static_str(TXN_ID)));
    request.topic_data = vec![topic];
    let response = call(port, request, 8);
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn describe_txn(port: u16) -> describe_transactions_response::TransactionState {
    let mut request = DescribeTransactionsRequest::default();
    request.transactional_ids = vec![TransactionalId(StrBytes::from_static_str(TXN_ID))];
    call(port, request, 0).transaction_states.remove(0)
}

fn end_txn(port: u16, producer_id: i64, epoch: i16, commit: bool) -> i16 {
    let mut request = EndTxnRequest::default();
    request.transactional_id = TransactionalId(StrBytes::from_static_str(TXN_ID));
    request.producer_id = ProducerId(producer_id);
    request.producer_epoch = epoch;
    request.committed = commit;
    call(port, request, 3).error_code
}

#[test]
fn a_transaction_at_the_wire_level() {
    let broker = broker_common::start();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .create()
        .expect("admin");
    let topic = NewTopic::new(TOPIC, 2, TopicReplication::Fixed(1));
    for r in futures_lite::future::block_on(admin.create_topics(&[topic], &AdminOptions::new()))
        .expect("create")
    {
        r.expect("created");
    }

    let coordinator = txn_coordinator_port(&broker);
    let other = if coordinator == broker.shard_port(0) {
        broker.shard_port(1)
    } else {
        broker.shard_port(0)
    };

    assert_eq!(call(other, init_request(), 4).error_code, NOT_COORDINATOR);
    let (pid, epoch) = init_producer(coordinator);
    assert!(pid >= 0);

    let leader = leader_port(&broker, 0);
    assert_eq!(
        produce(leader, batch(pid, epoch, ATTR_TRANSACTIONAL, b"k", b"v")).0,
        INVALID_TXN_STATE,
        "a partition not added to the transaction refuses its data"
    );

    let added = add_partitions(coordinator, pid, epoch, vec![0, 1]);
    for topic in &added.results_by_topic_v3_and_below {
        for p in &topic.results_by_partition {
            assert_eq!(p.partition_error_code, 0, "partition {}", p.partition_index);
        }
    }

    assert_ne!(
        leader,
        leader_port(&broker, 1),
        "the partitions live on different shards"
    );
    assert_eq!(
        produce(leader, batch(pid, epoch, ATTR_TRANSACTIONAL, b"k", b"v")),
        (0, 0)
    );
    assert_eq!(latest(leader, 0, 1), 0, "read_committed latest is the LSO");
    assert_eq!(
        latest(leader, 0, 0),
        1,
        "read_uncommitted latest is the high watermark"
    );

    let mut producers = DescribeProducersRequest::default();
    let mut tr = TopicRequest::default();
    tr.name = TopicName(StrBytes::from_static_str(TOPIC));
    tr.partition_indexes = vec![0];
    producers.topics = vec![tr];
    let described = call(leader, producers, 0);
    let partition = &described.topics[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    let state = partition
        .active_producers
        .iter()
        .find(|p| p.producer_id.0 == pid)
        .expect("our producer is listed");
    assert_eq!(
        (state.last_sequence, state.current_txn_start_offset),
        (0, 0)
    );

    let open = describe_txn(coordinator);
    assert_eq!(
        (open.error_code, open.transaction_state.as_str()),
        (0, "Ongoing")
    );
    assert_eq!(open.topics[0].partitions, vec![0, 1]);
    let listed = call(coordinator, ListTransactionsRequest::default(), 1);
    assert!(listed.transaction_states.iter().any(
        |s| s.transactional_id.as_str() == TXN_ID && s.transaction_state.as_str() == "Ongoing"
    ));
    // v2: a pattern the whole id must match; one that does not compile is refused.
    let by_pattern = |pattern: &str| {
        let mut request = ListTransactionsRequest::default();
        request.transactional_id_pattern = Some(StrBytes::from_string(pattern.to_owned()));
        call(coordinator, request, 2)
    };
    let ids = |r: &ListTransactionsResponse| -> Vec<String> {
        r.transaction_states
            .iter()
            .map(|s| s.transactional_id.to_string())
            .collect()
    };
    assert_eq!(
        ids(&by_pattern(&format!("{}.*", &TXN_ID[..2]))),
        vec![TXN_ID]
    );
    assert!(ids(&by_pattern(&TXN_ID[..2])).is_empty(), "whole-id match");
    assert_eq!(
        by_pattern("(").error_code,
        kafka_protocol::ResponseError::InvalidRegularExpression.code()
    );

    let marker = batch(
        pid,
        epoch,
        ATTR_CONTROL | ATTR_TRANSACTIONAL,
        &[0, 0, 0, 1],
        &[0, 0, 0, 0, 0, 0],
    );
    assert_eq!(
        produce(leader, marker).0,
        INVALID_RECORD,
        "clients cannot write markers"
    );
    assert_eq!(end_txn(coordinator, pid, epoch + 1, true), PRODUCER_FENCED);
    assert_eq!(end_txn(coordinator, pid, epoch, true), 0);
    assert_eq!(
        describe_txn(coordinator).transaction_state.as_str(),
        "CompleteCommit"
    );
    assert_eq!(
        latest(leader, 0, 1),
        2,
        "after the COMMIT marker the LSO is the log end"
    );
    assert_eq!(
        latest(leader_port(&broker, 1), 1, 1),
        1,
        "the other shard got its marker too"
    );
}

fn init_request() -> InitProducerIdRequest {
    let mut init = InitProducerIdRequest::default();
    init.transactional_id = Some(TransactionalId(StrBytes::from_static_str(TXN_ID)));
    init.transaction_timeout_ms = 60_000;
    init.producer_id = ProducerId(-1);
    init.producer_epoch = -1;
    init
}

/// InitProducerId for [`TXN_ID`] at its coordinator: (producer id, epoch).
fn init_producer(coordinator: u16) -> (i64, i16) {
    let ready = call(coordinator, init_request(), 4);
    assert_eq!(ready.error_code, 0);
    (ready.producer_id.0, ready.producer_epoch)
}

fn add_partitions(
    coordinator: u16,
    pid: i64,
    epoch: i16,
    partitions: Vec<i32>,
) -> AddPartitionsToTxnResponse {
    let mut add = AddPartitionsToTxnRequest::default();
    add.v3_and_below_transactional_id = TransactionalId(StrBytes::from_static_str(TXN_ID));
    add.v3_and_below_producer_id = ProducerId(pid);
    add.v3_and_below_producer_epoch = epoch;
    let mut t = AddPartitionsToTxnTopic::default();
    t.name = TopicName(StrBytes::from_static_str(TOPIC));
    t.partitions = partitions;
    add.v3_and_below_topics = vec![t];
    call(coordinator, add, 3)
}

/// The producers DescribeProducers lists on partition 0: (producer id, last timestamp).
fn producers_of_partition_0(leader: u16) -> Vec<(i64, i64)> {
    let mut request = DescribeProducersRequest::default();
    let mut tr = TopicRequest::default();
    tr.name = TopicName(StrBytes::from_static_str(TOPIC));
    tr.partition_indexes = vec![0];
    request.topics = vec![tr];
    let described = call(leader, request, 0);
    let partition = &described.topics[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    partition
        .active_producers
        .iter()
        .map(|p| (p.producer_id.0, p.last_timestamp))
        .collect()
}

/// An idle transactional id (`transactional.id.expiration.ms`) and an idle producer id
/// (`producer.id.expiration.ms`) are forgotten, and the transactional id stays forgotten
/// across a restart (its tombstone is in `__transaction_state`).
#[test]
fn idle_transactional_and_producer_ids_expire() {
    let mut broker = broker_common::start_with(&[
        ("transactional.id.expiration.ms", "1500"),
        (
            "transaction.remove.expired.transaction.cleanup.interval.ms",
            "200",
        ),
        ("producer.id.expiration.ms", "1500"),
        ("producer.id.expiration.check.interval.ms", "200"),
    ]);
    broker_common::create_topic(&broker.bootstrap(), TOPIC, 1);
    let coordinator = txn_coordinator_port(&broker);
    let (pid, epoch) = init_producer(coordinator);

    add_partitions(coordinator, pid, epoch, vec![0]);
    let leader = leader_port(&broker, 0);
    let sent_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    assert_eq!(
        produce(leader, batch(pid, epoch, ATTR_TRANSACTIONAL, b"k", b"v")),
        (0, 0)
    );
    assert_eq!(end_txn(coordinator, pid, epoch, true), 0);
    let listed = producers_of_partition_0(leader);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].0, pid);
    assert!(
        (sent_at - 1_000..sent_at + 10_000).contains(&listed[0].1),
        "last timestamp {} is the append time (sent at {sent_at})",
        listed[0].1
    );
    assert_eq!(
        describe_txn(coordinator).transaction_state.as_str(),
        "CompleteCommit"
    );

    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let txn_gone = describe_txn(coordinator).error_code == TRANSACTIONAL_ID_NOT_FOUND;
        let producer_gone = producers_of_partition_0(leader).is_empty();
        if txn_gone && producer_gone {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not expired after 15 s: transactional id gone {txn_gone}, producer gone {producer_gone}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    broker.restart_graceful();
    assert_eq!(
        describe_txn(txn_coordinator_port(&broker)).error_code,
        TRANSACTIONAL_ID_NOT_FOUND,
        "the tombstone keeps the id forgotten after a restart"
    );
}
