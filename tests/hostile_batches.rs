//! Produce batches whose contents disagree with their header, over raw sockets against the
//! real binary: each is refused with Kafka's error code, the log end offset does not move,
//! and afterwards the partition takes and serves batches normally (offsets stay contiguous
//! and an independent decoder, `kafka-protocol`'s, reads everything the broker serves).

mod common;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::{Broker, BrokerOptions, call, unique_topic};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::RecordBatchDecoder;
use sluice::protocol::compression::{compress, decompress};
use sluice::protocol::record_batch::Compression;

const NONE: i16 = 0;
const CORRUPT_MESSAGE: i16 = 2;
const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_RECORD: i16 = 87;

const GZIP: i16 = 1;

fn topic_name(topic: &str) -> TopicName {
    TopicName::from(StrBytes::from_string(topic.to_string()))
}

/// Creates `topic` through Metadata auto-creation and returns the port of its leader shard.
fn leader_port(broker: &Broker, topic: &str) -> u16 {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(topic_name(topic))),
        ]))
        .with_allow_auto_topic_creation(true);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let response: MetadataResponse = call(broker.base_port(), request.clone(), 12);
        let t = &response.topics[0];
        if t.error_code == NONE && !t.partitions.is_empty() {
            return broker.shard_port((t.partitions[0].leader_id.0 % 1000) as u16);
        }
        assert!(std::time::Instant::now() < deadline, "{topic} never ready");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Produce of `records` to partition 0 with acks=all: (error code, base offset).
fn produce(port: u16, topic: &str, records: Vec<u8>) -> (i16, i64) {
    let partition = PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(Bytes::from(records)));
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(topic_name(topic))
                .with_partition_data(vec![partition]),
        ]);
    let response: ProduceResponse = call(port, request, 9);
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// The log end offset of partition 0 (ListOffsets latest).
fn log_end(port: u16, topic: &str) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1),
                ]),
        ]);
    let response: ListOffsetsResponse = call(port, request, 7);
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, NONE, "ListOffsets");
    p.offset
}

/// Every record from offset 0, decoded by `kafka-protocol`: (offset, value).
fn consume_all(port: u16, topic: &str) -> Vec<(i64, Bytes)> {
    let request = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_log_start_offset(-1)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let response: FetchResponse = call(port, request, 12);
    let p = &response.responses[0].partitions[0];
    assert_eq!(p.error_code, NONE, "Fetch");
    let mut records = p.records.clone().expect("records");
    let mut out = Vec::new();
    while !records.is_empty() {
        // kafka-protocol is built without its codecs here; sluice's gzip decodes for it.
        let gunzip = |data: &mut Bytes, codec| match codec {
            kafka_protocol::records::Compression::None => Ok(data.clone()),
            kafka_protocol::records::Compression::Gzip => Ok(Bytes::from(
                decompress(Compression::Gzip, data).expect("gzip decodes"),
            )),
            other => panic!("only plain and gzip batches were produced, not {other:?}"),
        };
        let set = RecordBatchDecoder::decode_with_custom_compression(&mut records, Some(gunzip))
            .expect("every served batch decodes");
        out.extend(
            set.records
                .into_iter()
                .map(|r| (r.offset, r.value.expect("value"))),
        );
    }
    out
}

fn put_varint(buf: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// One well-formed record body: attributes, timestamp delta, offset delta, no key, value,
/// no headers (without its length prefix).
fn record_body(offset_delta: i64, value: &[u8]) -> Vec<u8> {
    let mut body = vec![0u8];
    put_varint(&mut body, 0);
    put_varint(&mut body, offset_delta);
    put_varint(&mut body, -1);
    put_varint(&mut body, value.len() as i64);
    body.extend_from_slice(value);
    put_varint(&mut body, 0);
    body
}

/// `n` length-prefixed records with values `v0`, `v1`, ...
fn records(n: i64) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let body = record_body(i, format!("v{i}").as_bytes());
        put_varint(&mut out, body.len() as i64);
        out.extend_from_slice(&body);
    }
    out
}

/// A RecordBatch v2 around `section` with the header fields given, CRC correct.
fn batch(attributes: i16, count: i32, last_offset_delta: i32, section: &[u8]) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_i16(attributes);
    body.put_i32(last_offset_delta);
    body.put_i64(1_700_000_000_000);
    body.put_i64(1_700_000_000_000);
    body.put_i64(-1); // producer id
    body.put_i16(-1);
    body.put_i32(-1);
    body.put_i32(count);
    body.put_slice(section);
    let mut out = BytesMut::new();
    out.put_i64(0);
    out.put_i32(4 + 1 + 4 + body.len() as i32);
    out.put_i32(-1);
    out.put_i8(2);
    out.put_u32(crc32c::crc32c(&body));
    out.put(body);
    out.to_vec()
}

/// The hostile batches of issue 11, each with the code Kafka answers for it.
fn hostile_batches() -> Vec<(&'static str, Vec<u8>, i16)> {
    let mut negative_length = Vec::new();
    put_varint(&mut negative_length, -7);
    negative_length.extend_from_slice(&record_body(0, b"x"));

    let mut overlong = vec![0u8, 0];
    overlong.extend_from_slice(&[0xff; 6]); // offset delta: six continuation bytes
    overlong.extend_from_slice(&[1, 2, b'x', 0]);
    let mut overlong_record = Vec::new();
    put_varint(&mut overlong_record, overlong.len() as i64);
    overlong_record.extend_from_slice(&overlong);

    let two = records(2);
    let truncated = &two[..two.len() - 3];

    // 64 MiB of zeros as one record's value: a few KiB of gzip.
    let mut bomb_body = record_body(0, &[]);
    bomb_body.truncate(4);
    put_varint(&mut bomb_body, 64 << 20);
    bomb_body.resize(bomb_body.len() + (64 << 20), 0);
    bomb_body.push(0);
    let mut bomb = Vec::new();
    put_varint(&mut bomb, bomb_body.len() as i64);
    bomb.extend_from_slice(&bomb_body);
    let bomb = compress(Compression::Gzip, &bomb);

    vec![
        (
            "header count 1 holding 3 records",
            batch(0, 1, 0, &records(3)),
            INVALID_RECORD,
        ),
        (
            "count 1 with lastOffsetDelta i32::MAX",
            batch(0, 1, i32::MAX, &records(1)),
            INVALID_RECORD,
        ),
        (
            "record length varint -7",
            batch(0, 1, 0, &negative_length),
            INVALID_RECORD,
        ),
        (
            "gzip flag on plain bytes",
            batch(GZIP, 2, 1, &records(2)),
            CORRUPT_MESSAGE,
        ),
        (
            "overlong offset delta varint",
            batch(0, 1, 0, &overlong_record),
            INVALID_RECORD,
        ),
        (
            "second record truncated",
            batch(0, 2, 1, truncated),
            INVALID_RECORD,
        ),
        ("empty batch", batch(0, 0, -1, &[]), INVALID_RECORD),
        (
            "gzip bomb of 64 MiB",
            batch(GZIP, 1, 0, &bomb),
            MESSAGE_TOO_LARGE,
        ),
    ]
}

#[test]
fn hostile_batches_are_refused_and_the_partition_keeps_working() {
    let broker = Broker::start_with(BrokerOptions::default().with_cores(1));
    let topic = unique_topic("hostile");
    let port = leader_port(&broker, &topic);
    assert_eq!(
        produce(port, &topic, batch(0, 1, 0, &records(1))),
        (NONE, 0)
    );

    // Every case runs before the verdict, so a failure lists all the batches let through.
    let mut wrong = Vec::new();
    for (what, bytes, expected) in hostile_batches() {
        let before = log_end(port, &topic);
        let (error, _) = produce(port, &topic, bytes);
        let after = log_end(port, &topic);
        if error != expected || after != before {
            wrong.push(format!(
                "{what}: error {error} (want {expected}), log end {before} -> {after}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "hostile batches mishandled:\n{}",
        wrong.join("\n")
    );
    assert_eq!(log_end(port, &topic), 1);

    // A gzip batch that is what it says is taken, and offsets continue where they were.
    let gzip = batch(GZIP, 3, 2, &compress(Compression::Gzip, &records(3)));
    assert_eq!(produce(port, &topic, gzip), (NONE, 1));
    assert_eq!(
        produce(port, &topic, batch(0, 2, 1, &records(2))),
        (NONE, 4)
    );
    assert_eq!(log_end(port, &topic), 6);
    let consumed = consume_all(port, &topic);
    let offsets: Vec<i64> = consumed.iter().map(|(o, _)| *o).collect();
    assert_eq!(offsets, (0..6).collect::<Vec<_>>(), "no gap, no duplicate");
    let values: Vec<&[u8]> = consumed.iter().map(|(_, v)| v.as_ref()).collect();
    assert_eq!(
        values,
        [&b"v0"[..], b"v0", b"v1", b"v2", b"v0", b"v1"],
        "values in order"
    );
}
