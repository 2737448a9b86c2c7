//! Broker settings of the consumer-group and transaction integration tests, on top of the
//! shared harness in `tests/common`: two shards (so groups and transactions span cores), a
//! quick first rebalance, small internal topics and a short maximum transaction timeout.

#![allow(dead_code)]

use crate::common::{Broker, BrokerOptions};
use kafka_protocol::protocol::StrBytes;

/// Cores (shards) the test broker runs: two, so groups and transactions span shards.
pub const CORES: u16 = 2;

/// Starts a broker with the group and transaction test settings.
pub fn start() -> Broker {
    start_with(&[])
}

/// Starts a broker with the group and transaction test settings plus `extra` broker keys.
pub fn start_with(extra: &[(&str, &str)]) -> Broker {
    let mut options = BrokerOptions::default()
        .with_cores(CORES)
        .with_config("group.initial.rebalance.delay.ms", "100")
        .with_config("offsets.topic.num.partitions", "10")
        .with_config("transaction.state.log.num.partitions", "10")
        .with_config("transaction.max.timeout.ms", "60000");
    for (key, value) in extra {
        options = options.with_config(key, value);
    }
    Broker::start_with(options)
}

/// Creates a topic with `partitions` partitions through librdkafka's admin API.
pub fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::config::ClientConfig;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results =
        futures_lite::future::block_on(admin.create_topics(&[topic], &AdminOptions::new()))
            .expect("create_topics request");
    for result in results {
        result.expect("topic created");
    }
}

/// (shard port of the leader, topic id) of `topic`'s `partition`, from Metadata v12.
pub fn partition_leader(broker: &Broker, topic: &str, partition: i32) -> (u16, uuid::Uuid) {
    use kafka_protocol::messages::{MetadataRequest, TopicName, metadata_request};
    let mut request = MetadataRequest::default();
    let mut t = metadata_request::MetadataRequestTopic::default();
    t.name = Some(TopicName(StrBytes::from_string(topic.to_owned())));
    request.topics = Some(vec![t]);
    let response = crate::common::call(broker.base_port(), request, 12);
    let leader = response.topics[0]
        .partitions
        .iter()
        .find(|p| p.partition_index == partition)
        .expect("partition listed")
        .leader_id
        .0;
    (
        broker.shard_port((leader % 1000) as u16),
        response.topics[0].topic_id,
    )
}

/// One record (`key`, `value`) in a batch of `producer_id` at `epoch` with first sequence 0.
pub fn producer_batch(
    producer_id: i64,
    epoch: i16,
    attributes: i16,
    key: &[u8],
    value: &[u8],
) -> bytes::Bytes {
    use sluice::protocol::record_batch::BatchBuilder;
    use sluice::protocol::records::{Record, encode_record};
    let mut section = Vec::new();
    encode_record(
        &mut section,
        &Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: 0,
            key: Some(key.to_vec()),
            value: Some(value.to_vec()),
            headers: Vec::new(),
        },
    );
    bytes::Bytes::from(
        BatchBuilder {
            attributes,
            producer_id,
            producer_epoch: epoch,
            base_sequence: 0,
            record_count: 1,
            ..BatchBuilder::default()
        }
        .build(&section),
    )
}

/// ListOffsets v5 latest of `topic`'s `partition` at `port` (isolation level 1: the LSO).
pub fn latest_offset(port: u16, topic: &str, partition: i32, isolation_level: i8) -> i64 {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::{BrokerId, ListOffsetsRequest, TopicName};
    let mut p = ListOffsetsPartition::default();
    p.partition_index = partition;
    p.timestamp = -1;
    let mut t = ListOffsetsTopic::default();
    t.name = TopicName(StrBytes::from_string(topic.to_owned()));
    t.partitions = vec![p];
    let mut request = ListOffsetsRequest::default();
    request.replica_id = BrokerId(-1);
    request.isolation_level = isolation_level;
    request.topics = vec![t];
    crate::common::call(port, request, 5).topics[0].partitions[0].offset
}

/// The port of the coordinator shard of `key` (key type 0: group, 1: transactional id).
pub fn coordinator_port(broker: &Broker, key: &str, key_type: i8) -> u16 {
    use kafka_protocol::messages::FindCoordinatorRequest;
    let mut find = FindCoordinatorRequest::default();
    find.key = StrBytes::from_string(key.to_owned());
    find.key_type = key_type;
    let found = crate::common::call(broker.base_port(), find, 3);
    assert_eq!(found.error_code, 0);
    found.port as u16
}

/// The committed offsets of partitions 0..`partitions` of `topic`, retried for up to a minute:
/// the broker may still be loading its group coordinator after a restart, and CI machines are
/// shared, so a cold client can be slow to get metadata.
pub fn committed_with_retry(
    c: &rdkafka::consumer::BaseConsumer,
    topic: &str,
    partitions: i32,
) -> rdkafka::TopicPartitionList {
    use rdkafka::consumer::Consumer;
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let started = std::time::Instant::now();
    loop {
        match c.committed_offsets(tpl.clone(), std::time::Duration::from_secs(5)) {
            Ok(found) => return found,
            Err(e) if started.elapsed() < std::time::Duration::from_secs(60) => {
                eprintln!("committed_offsets retry: {e}")
            }
            Err(e) => panic!("committed_offsets: {e}"),
        }
    }
}

/// Produces `per_partition` records `p<p>-<i>` to each of partitions 0..`partitions` of
/// `topic`, with the producer settings `extra` on top of the bootstrap server.
pub fn produce_numbered(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    per_partition: i32,
    extra: &[(&str, &str)],
) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let mut config = rdkafka::config::ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    for (k, v) in extra {
        config.set(*k, *v);
    }
    let producer: BaseProducer = config.create().expect("producer");
    for p in 0..partitions {
        for i in 0..per_partition {
            let value = format!("p{p}-{i}");
            producer
                .send(BaseRecord::<(), _>::to(topic).partition(p).payload(&value))
                .expect("enqueue");
        }
    }
    producer
        .flush(std::time::Duration::from_secs(20))
        .expect("flush");
}
