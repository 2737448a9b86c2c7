//! Raw-socket tests of Produce and Fetch without a client library: record batches built
//! byte by byte, CRC and leadership refusals, fetched bytes equal to produced ones, long-poll,
//! and topic creation rules (Produce never creates, Metadata does; internal topics are
//! refused).

mod common;
mod wire_common;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::{Broker, BrokerOptions, metric, metrics_addr, unique_topic};
use kafka_protocol::messages::{
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use wire_common::*;

// ---------------------------------------------------------------------------------------------
// Record batches on Produce

/// One RecordBatch v2 (no compression, no producer id), built here byte by byte so the test
/// does not depend on the broker's own encoder.
fn record_batch(records: &[(&[u8], &[u8])], base_timestamp: i64) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_i16(0); // attributes: no compression, CreateTime
    body.put_i32(records.len() as i32 - 1); // last offset delta
    body.put_i64(base_timestamp);
    body.put_i64(base_timestamp + records.len() as i64 - 1);
    body.put_i64(-1); // producer id
    body.put_i16(-1); // producer epoch
    body.put_i32(-1); // base sequence
    body.put_i32(records.len() as i32);
    for (i, (key, value)) in records.iter().enumerate() {
        let mut rec = BytesMut::new();
        rec.put_i8(0); // attributes
        put_varint(&mut rec, i as i64); // timestamp delta
        put_varint(&mut rec, i as i64); // offset delta
        put_varint(&mut rec, key.len() as i64);
        rec.put_slice(key);
        put_varint(&mut rec, value.len() as i64);
        rec.put_slice(value);
        put_varint(&mut rec, 0); // header count
        put_varint(&mut body, rec.len() as i64);
        body.put(rec);
    }
    let mut batch = BytesMut::new();
    batch.put_i64(0); // base offset: the broker assigns it
    batch.put_i32(4 + 1 + 4 + body.len() as i32); // length after this field
    batch.put_i32(-1); // partition leader epoch
    batch.put_i8(2); // magic
    batch.put_u32(crc32c::crc32c(&body));
    batch.put(body);
    batch.to_vec()
}

/// Zig-zag varint, as Kafka records use.
fn put_varint(buf: &mut BytesMut, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

#[test]
fn record_batch_builder_matches_an_independent_decoder() {
    let batch = record_batch(&[(b"k1", b"v1"), (b"k2", b"value-2")], 1_700_000_000_000);
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut Bytes::from(batch))
        .expect("kafka-protocol decodes (and CRC-checks) our batch");
    let pairs: Vec<(Bytes, Bytes)> = set
        .records
        .iter()
        .map(|r| (r.key.clone().unwrap(), r.value.clone().unwrap()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            (Bytes::from_static(b"k1"), Bytes::from_static(b"v1")),
            (Bytes::from_static(b"k2"), Bytes::from_static(b"value-2")),
        ]
    );
    assert_eq!(set.records[1].offset, 1);
    assert_eq!(set.records[1].timestamp, 1_700_000_000_001);
}

/// Metadata with auto-creation; returns the leader (shard broker id) of partition 0.
fn leader_of(client: &mut Client, topic: &str) -> i32 {
    let version = client.version::<MetadataRequest>(12);
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default().with_name(
                Some(TopicName::from(StrBytes::from_string(topic.to_string()))),
            ),
        ]))
        .with_allow_auto_topic_creation(true);
    // Auto-creation may answer LEADER_NOT_AVAILABLE first, as Kafka does; ask again.
    for _ in 0..50 {
        let response: MetadataResponse = client.call(request.clone(), version);
        let t = &response.topics[0];
        if t.error_code == NONE && !t.partitions.is_empty() {
            return t.partitions[0].leader_id.0;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("topic {topic} never became available");
}

fn produce(client: &mut Client, topic: &str, records: Vec<u8>) -> (i16, i64) {
    let version = client.version::<ProduceRequest>(12);
    let partition = kafka_protocol::messages::produce_request::PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(Bytes::from(records)));
    let topic_data = kafka_protocol::messages::produce_request::TopicProduceData::default()
        .with_name(TopicName::from(StrBytes::from_string(topic.to_string())))
        .with_partition_data(vec![partition]);
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![topic_data]);
    let response: ProduceResponse = client.call(request, version);
    assert_eq!(response.responses.len(), 1);
    let p = &response.responses[0].partition_responses;
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].index, 0);
    (p[0].error_code, p[0].base_offset)
}

/// ListOffsets "latest" (timestamp -1) of partition 0: the high watermark.
fn latest_offset(client: &mut Client, topic: &str) -> i64 {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let version = client.version::<ListOffsetsRequest>(9);
    let request = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(TopicName::from(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1),
                ]),
        ]);
    let response: ListOffsetsResponse = client.call(request, version);
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, NONE, "ListOffsets error");
    p.offset
}

#[test]
fn produce_with_bad_crc_is_rejected_and_not_appended() {
    let broker = Broker::start_with(BrokerOptions::default().with_cores(2));
    let topic = unique_topic("crc");
    let mut bootstrap = Client::connect(broker.base_port());
    let leader = leader_of(&mut bootstrap, &topic);
    let mut client = Client::connect(broker.shard_port(leader as u16));

    let good = record_batch(&[(b"a", b"first")], 1_700_000_000_000);
    assert_eq!(produce(&mut client, &topic, good.clone()), (NONE, 0));
    assert_eq!(latest_offset(&mut client, &topic), 1);

    // Flip one bit of the last value byte: the stored CRC no longer matches.
    let mut bad = record_batch(&[(b"b", b"second"), (b"c", b"third")], 1_700_000_000_001);
    let last = bad.len() - 2;
    bad[last] ^= 0x01;
    let (error, _) = produce(&mut client, &topic, bad);
    assert_eq!(error, CORRUPT_MESSAGE, "bad CRC must be CORRUPT_MESSAGE");
    assert_eq!(
        latest_offset(&mut client, &topic),
        1,
        "nothing appended for a corrupt batch"
    );

    // The same connection keeps working and the next good batch gets the next offset.
    assert_eq!(produce(&mut client, &topic, good), (NONE, 1));
    assert_eq!(latest_offset(&mut client, &topic), 2);
}

#[test]
fn two_batches_for_one_partition_are_refused_as_kafka_does() {
    let broker = Broker::start_with(BrokerOptions::default().with_cores(1));
    let topic = unique_topic("two-batches");
    let mut bootstrap = Client::connect(broker.base_port());
    let leader = leader_of(&mut bootstrap, &topic);
    let mut client = Client::connect(broker.shard_port(leader as u16));
    let mut two = record_batch(&[(b"a", b"first")], 1_700_000_000_000);
    two.extend(record_batch(&[(b"b", b"second")], 1_700_000_000_001));
    let (error, _) = produce(&mut client, &topic, two);
    assert_eq!(error, INVALID_RECORD, "v3+ takes one batch per partition");
    assert_eq!(latest_offset(&mut client, &topic), 0, "nothing appended");
    let one = record_batch(&[(b"a", b"first")], 1_700_000_000_000);
    assert_eq!(produce(&mut client, &topic, one), (NONE, 0));
}

#[test]
fn produce_to_the_wrong_shard_is_not_leader() {
    let broker = Broker::start_with(BrokerOptions::default().with_cores(2));
    let topic = unique_topic("routing");
    let mut bootstrap = Client::connect(broker.base_port());
    let leader = leader_of(&mut bootstrap, &topic);
    assert!(
        (0..2).contains(&leader),
        "leader {leader} is not a shard id"
    );
    let other = 1 - leader as u16;
    let mut wrong = Client::connect(broker.shard_port(other));
    let batch = record_batch(&[(b"k", b"v")], 1_700_000_000_000);
    let (error, _) = produce(&mut wrong, &topic, batch.clone());
    assert_eq!(error, NOT_LEADER_OR_FOLLOWER, "produce on shard {other}");
    let mut right = Client::connect(broker.shard_port(leader as u16));
    assert_eq!(produce(&mut right, &topic, batch), (NONE, 0));
}

// ---------------------------------------------------------------------------------------------
// Fetch: byte-identical batches and long-poll

/// One Fetch of partition 0 from `offset`; returns (error, high watermark, records bytes).
fn fetch(
    client: &mut Client,
    topic: &str,
    offset: i64,
    max_wait_ms: i32,
) -> (i16, i64, Option<Bytes>) {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    // v13+ name topics by id; these tests use names.
    let version = client.version::<kafka_protocol::messages::FetchRequest>(12);
    let request = kafka_protocol::messages::FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName::from(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_log_start_offset(-1)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let response: kafka_protocol::messages::FetchResponse = client.call(request, version);
    assert_eq!(response.error_code, NONE, "top-level Fetch error");
    let p = &response.responses[0].partitions[0];
    (p.error_code, p.high_watermark, p.records.clone())
}

/// A batch as stored and served must equal the one produced, except the base offset (assigned
/// by the broker) and the partition leader epoch (a broker may stamp its epoch there; neither
/// is covered by the CRC).
fn assert_same_batch(served: &[u8], produced: &[u8], base_offset: i64) {
    assert_eq!(served.len(), produced.len(), "served batch length");
    assert_eq!(
        i64::from_be_bytes(served[..8].try_into().unwrap()),
        base_offset
    );
    assert_eq!(served[8..12], produced[8..12], "batch length field");
    assert_eq!(
        served[16..],
        produced[16..],
        "batch bytes from magic on differ"
    );
}

#[test]
fn fetch_serves_produced_batch_bytes_and_long_polls() {
    let broker = Broker::start_with(BrokerOptions::default().with_cores(2));
    let topic = unique_topic("fetch");
    let mut bootstrap = Client::connect(broker.base_port());
    let port = broker.shard_port(leader_of(&mut bootstrap, &topic) as u16);
    let mut client = Client::connect(port);

    let first = record_batch(&[(b"k0", b"v0"), (b"k1", b"v1")], 1_700_000_000_000);
    assert_eq!(produce(&mut client, &topic, first.clone()), (NONE, 0));
    let (error, high, records) = fetch(&mut client, &topic, 0, 0);
    assert_eq!((error, high), (NONE, 2));
    assert_same_batch(&records.expect("records at offset 0"), &first, 0);

    // Long-poll: a fetch at the end waits, and returns as soon as a record arrives.
    let second = record_batch(&[(b"k2", b"v2")], 1_700_000_000_002);
    let producer = {
        let (topic, batch) = (topic.clone(), second.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            let mut c = Client::connect(port);
            produce(&mut c, &topic, batch)
        })
    };
    let started = std::time::Instant::now();
    let (error, high, records) = fetch(&mut client, &topic, 2, 5_000);
    let waited = started.elapsed();
    assert_eq!(producer.join().expect("producer thread"), (NONE, 2));
    assert_eq!((error, high), (NONE, 3));
    assert_same_batch(&records.expect("records at offset 2"), &second, 2);
    assert!(
        waited >= Duration::from_millis(400),
        "fetch returned after {waited:?}, before any data existed"
    );
    assert!(
        waited < Duration::from_millis(4_000),
        "fetch waited {waited:?}: not woken by the produce"
    );

    // Nothing arrives: the fetch returns empty after about max_wait_ms.
    let started = std::time::Instant::now();
    let (error, high, records) = fetch(&mut client, &topic, 3, 1_000);
    let waited = started.elapsed();
    assert_eq!((error, high), (NONE, 3));
    assert!(
        records.is_none_or(|r| r.is_empty()),
        "no records past the end"
    );
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_millis(3_000),
        "empty long-poll took {waited:?} for max_wait_ms 1000"
    );
}

/// A long poll waits on the partitions it reads: appends elsewhere on the same shard do not
/// wake it (each would make it read all its partitions again), an append to its own does.
#[test]
fn a_long_poll_is_woken_by_its_own_partition_only() {
    let metrics = metrics_addr();
    let broker = Broker::start_with(
        BrokerOptions::default()
            .with_cores(1)
            .with_config("sluice.metrics.addr", &metrics),
    );
    let (quiet, busy) = (unique_topic("quiet"), unique_topic("busy"));
    let mut client = Client::connect(broker.base_port());
    leader_of(&mut client, &quiet);
    leader_of(&mut client, &busy);
    let port = broker.base_port();
    let producer = {
        let (quiet, busy) = (quiet.clone(), busy.clone());
        std::thread::spawn(move || {
            let mut c = Client::connect(port);
            std::thread::sleep(Duration::from_millis(300));
            for i in 0..30 {
                let batch = record_batch(&[(b"k", b"elsewhere")], 1_700_000_000_000 + i);
                assert_eq!(produce(&mut c, &busy, batch).0, NONE);
            }
            std::thread::sleep(Duration::from_millis(200));
            let batch = record_batch(&[(b"k", b"here")], 1_700_000_000_100);
            produce(&mut c, &quiet, batch)
        })
    };
    let before = metric(&metrics, "sluice_fetch_wakeups_total");
    let started = std::time::Instant::now();
    let (error, high, records) = fetch(&mut client, &quiet, 0, 10_000);
    let waited = started.elapsed();
    assert_eq!(producer.join().expect("producer thread"), (NONE, 0));
    assert_eq!((error, high), (NONE, 1));
    assert!(
        records.is_some_and(|r| !r.is_empty()),
        "the record produced"
    );
    assert!(
        waited < Duration::from_secs(8),
        "the fetch waited {waited:?}: not woken by its own partition"
    );
    let wakeups = metric(&metrics, "sluice_fetch_wakeups_total") - before;
    assert_eq!(
        wakeups, 1,
        "30 appends to another partition woke the long poll"
    );
}

// ---------------------------------------------------------------------------------------------
// DescribeConfigs errors (the rdkafka crate drops per-resource errors, so check them raw)

#[test]
fn describe_configs_of_unknown_topic_is_unknown_topic() {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    const TOPIC_RESOURCE: i8 = 2;
    let broker = Broker::start();
    let mut client = Client::connect(broker.base_port());
    let version = client.version::<kafka_protocol::messages::DescribeConfigsRequest>(4);
    let request = kafka_protocol::messages::DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(TOPIC_RESOURCE)
            .with_resource_name(StrBytes::from_static_str("no-such-topic"))
            .with_configuration_keys(None),
    ]);
    let response: kafka_protocol::messages::DescribeConfigsResponse = client.call(request, version);
    assert_eq!(response.results.len(), 1);
    let result = &response.results[0];
    assert_eq!(result.error_code, UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(result.resource_name.as_str(), "no-such-topic");
    assert!(result.configs.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Offsets out of range and auto-creation switched off

#[test]
fn fetch_beyond_the_end_is_offset_out_of_range() {
    const OFFSET_OUT_OF_RANGE: i16 = 1;
    let broker = Broker::start();
    let topic = unique_topic("range");
    let mut bootstrap = Client::connect(broker.base_port());
    let leader = leader_of(&mut bootstrap, &topic);
    let mut client = Client::connect(broker.shard_port(leader as u16));
    let batch = record_batch(&[(b"k", b"v")], 1_700_000_000_000);
    assert_eq!(produce(&mut client, &topic, batch), (NONE, 0));
    // Offset 1 is the end (a long-poll position); offset 5 does not exist yet.
    // Kafka reports high watermark -1 with a partition error, so only the code is checked.
    let (error, _, _) = fetch(&mut client, &topic, 5, 0);
    assert_eq!(error, OFFSET_OUT_OF_RANGE, "fetch offset beyond the end");
    let (error, high, _) = fetch(&mut client, &topic, 1, 0);
    assert_eq!(
        (error, high),
        (NONE, 1),
        "fetch at the end is not out of range"
    );
    let (error, _, _) = fetch(&mut client, &topic, -3, 0);
    assert_eq!(error, OFFSET_OUT_OF_RANGE, "negative fetch offset");
}

#[test]
fn without_auto_creation_unknown_topics_stay_unknown() {
    const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    let broker = Broker::start_with(
        BrokerOptions::default().with_config("auto.create.topics.enable", "false"),
    );
    let topic = unique_topic("no-auto");
    let mut client = Client::connect(broker.base_port());
    let version = client.version::<MetadataRequest>(12);
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(TopicName::from(StrBytes::from_string(topic.clone())))),
        ]))
        .with_allow_auto_topic_creation(true);
    let response: MetadataResponse = client.call(request, version);
    assert_eq!(response.topics.len(), 1);
    assert_eq!(response.topics[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    let mut shard = Client::connect(broker.shard_port(0));
    let (error, _) = produce(&mut shard, &topic, record_batch(&[(b"k", b"v")], 0));
    assert_eq!(
        error, UNKNOWN_TOPIC_OR_PARTITION,
        "produce to a missing topic"
    );
    assert!(!broker.data_dir().join(format!("{topic}-0")).exists());
}

#[test]
fn produce_never_creates_topics_and_metadata_does() {
    const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    // Auto-creation on (the default): still only Metadata may create a topic, as in Kafka.
    let broker = Broker::start();
    let topic = unique_topic("produce-no-auto");
    let mut shard = Client::connect(broker.shard_port(0));
    let (error, _) = produce(&mut shard, &topic, record_batch(&[(b"k", b"v")], 0));
    assert_eq!(
        error, UNKNOWN_TOPIC_OR_PARTITION,
        "produce to a missing topic"
    );
    assert!(!broker.data_dir().join(format!("{topic}-0")).exists());
    let mut client = Client::connect(broker.base_port());
    let version = client.version::<MetadataRequest>(12);
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(TopicName::from(StrBytes::from_string(topic.clone())))),
        ]))
        .with_allow_auto_topic_creation(true);
    let response: MetadataResponse = client.call(request, version);
    assert_eq!(response.topics[0].error_code, NONE, "metadata auto-creates");
}

#[test]
fn internal_topics_cannot_be_deleted_or_written_by_clients() {
    use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
    const INVALID_TOPIC_EXCEPTION: i16 = 17;
    let broker = Broker::start();
    let mut client = Client::connect(broker.base_port());
    for internal in ["__consumer_offsets", "__transaction_state"] {
        let version = client.version::<DeleteTopicsRequest>(6);
        let name = TopicName::from(StrBytes::from_static_str(internal));
        let request = if version >= 6 {
            DeleteTopicsRequest::default().with_topics(vec![
                kafka_protocol::messages::delete_topics_request::DeleteTopicState::default()
                    .with_name(Some(name)),
            ])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![name])
        };
        let response: DeleteTopicsResponse = client.call(request, version);
        let result = &response.responses[0];
        assert_eq!(
            result.error_code, INVALID_TOPIC_EXCEPTION,
            "delete {internal}"
        );
        let message = result.error_message.as_ref().map(|m| m.to_string());
        assert!(
            message.as_deref().unwrap_or("").contains("internal topic"),
            "{message:?}"
        );
        for core in 0..broker.cores() {
            let mut shard = Client::connect(broker.shard_port(core));
            let (error, _) = produce(&mut shard, internal, record_batch(&[(b"k", b"v")], 0));
            assert_eq!(error, INVALID_TOPIC_EXCEPTION, "produce to {internal}");
        }
    }
}
