//! Helpers around the `rdkafka` crate (librdkafka) shared by the `rdkafka_*` tests. Kept apart
//! from `common/mod.rs` so test binaries that do not talk through librdkafka never link it.
//!
//! Consumers use manual assignment and never join a group: the broker has no group
//! coordinator yet. A group-based helper can be added next to `read_partition` later.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

/// Timeout for one client call (metadata, watermarks, admin requests).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// One record as the tests compare it: everything a client can set and read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rec {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    /// In order, duplicates allowed: Kafka headers are a list, not a map.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// A record read back, with the offset the broker gave it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadRec {
    pub offset: i64,
    pub rec: Rec,
}

/// Producer with the given `compression.type` and `acks`. Idempotence stays off because the
/// broker has no InitProducerId yet; retries are allowed so a transient error is not a loss.
pub fn producer(bootstrap: &str, compression: &str, acks: &str) -> FutureProducer {
    producer_config(bootstrap)
        .set("compression.type", compression)
        .set("acks", acks)
        .create()
        .expect("create producer")
}

/// The common producer settings, for tests that want to add their own.
pub fn producer_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "false")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "30000")
        .set("socket.timeout.ms", "10000");
    config
}

/// Consumer that assigns partitions and offsets itself. librdkafka refuses `assign` without a
/// `group.id`, so one is set, but the consumer never subscribes or commits, so no group
/// coordinator is needed. `check.crcs` makes librdkafka verify every batch CRC it receives.
pub fn consumer(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "sluice-tests-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("check.crcs", "true")
        .set("fetch.wait.max.ms", "100")
        .set("socket.timeout.ms", "10000")
        .create()
        .expect("create consumer")
}

pub fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("create admin client")
}

pub fn admin_options() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(CALL_TIMEOUT))
}

/// Sends one record and waits for its acknowledgement; returns (partition, offset).
pub fn send_one(
    producer: &FutureProducer,
    topic: &str,
    partition: Option<i32>,
    rec: &Rec,
) -> Result<(i32, i64), String> {
    let future = enqueue(producer, topic, partition, rec)?;
    match futures_lite::future::block_on(future) {
        Ok(Ok(delivery)) => Ok((delivery.partition, delivery.offset)),
        Ok(Err((err, _))) => Err(format!("delivery failed: {err}")),
        Err(_) => Err("delivery future cancelled".to_string()),
    }
}

/// Queues one record without waiting; the returned future resolves on acknowledgement.
pub fn enqueue(
    producer: &FutureProducer,
    topic: &str,
    partition: Option<i32>,
    rec: &Rec,
) -> Result<rdkafka::producer::DeliveryFuture, String> {
    let mut record: FutureRecord<'_, [u8], [u8]> =
        FutureRecord::to(topic).headers(owned_headers(&rec.headers));
    if let Some(key) = &rec.key {
        record = record.key(key.as_slice());
    }
    if let Some(value) = &rec.value {
        record = record.payload(value.as_slice());
    }
    if let Some(p) = partition {
        record = record.partition(p);
    }
    producer
        .send_result(record)
        .map_err(|(err, _)| format!("enqueue failed: {err}"))
}

/// Sends all records (pipelined, so they batch and get compressed together) and waits for
/// every acknowledgement. Returns the offset of each record, in input order.
pub fn send_all(producer: &FutureProducer, topic: &str, partition: i32, recs: &[Rec]) -> Vec<i64> {
    let futures: Vec<_> = recs
        .iter()
        .map(|r| enqueue(producer, topic, Some(partition), r).expect("enqueue"))
        .collect();
    producer.flush(CALL_TIMEOUT).expect("flush producer");
    futures
        .into_iter()
        .enumerate()
        .map(|(i, f)| match futures_lite::future::block_on(f) {
            Ok(Ok(d)) => {
                assert_eq!(
                    d.partition, partition,
                    "record {i} went to another partition"
                );
                d.offset
            }
            Ok(Err((err, _))) => panic!("record {i} not delivered: {err}"),
            Err(_) => panic!("record {i}: delivery future cancelled"),
        })
        .collect()
}

fn owned_headers(headers: &[(String, Option<Vec<u8>>)]) -> OwnedHeaders {
    headers.iter().fold(
        OwnedHeaders::new_with_capacity(headers.len()),
        |h, (k, v)| {
            h.insert(Header {
                key: k.as_str(),
                value: v.as_deref(),
            })
        },
    )
}

/// Reads `partition` from offset 0 until `count` records have arrived (or the timeout passes,
/// which fails the test). Also checks no record beyond `count` shows up within a short grace
/// period, so a duplicated batch would be caught.
pub fn read_partition(bootstrap: &str, topic: &str, partition: i32, count: usize) -> Vec<ReadRec> {
    let consumer = consumer(bootstrap);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Beginning)
        .expect("add partition");
    consumer.assign(&tpl).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} records read from {topic}/{partition}",
            out.len()
        );
        if let Some(result) = consumer.poll(Duration::from_millis(200)) {
            let msg = result.unwrap_or_else(|e| panic!("consume {topic}/{partition}: {e}"));
            out.push(to_read_rec(&msg));
        }
    }
    let grace = Instant::now() + Duration::from_millis(500);
    while Instant::now() < grace {
        if let Some(Ok(msg)) = consumer.poll(Duration::from_millis(100)) {
            panic!(
                "unexpected extra record at offset {} in {topic}/{partition}",
                msg.offset()
            );
        }
    }
    out
}

fn to_read_rec<M: Message>(msg: &M) -> ReadRec {
    let headers = msg
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    ReadRec {
        offset: msg.offset(),
        rec: Rec {
            key: msg.key().map(<[u8]>::to_vec),
            value: msg.payload().map(<[u8]>::to_vec),
            headers,
        },
    }
}

/// (low, high) watermarks of a partition as the broker reports them through ListOffsets.
pub fn watermarks(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    consumer(bootstrap)
        .fetch_watermarks(topic, partition, CALL_TIMEOUT)
        .unwrap_or_else(|e| panic!("fetch_watermarks {topic}/{partition}: {e}"))
}

/// Partition id -> leader broker id, from a Metadata request for `topic`.
pub fn leaders(bootstrap: &str, topic: &str) -> BTreeMap<i32, i32> {
    let consumer = consumer(bootstrap);
    let md = consumer
        .fetch_metadata(Some(topic), CALL_TIMEOUT)
        .unwrap_or_else(|e| panic!("metadata for {topic}: {e}"));
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .unwrap_or_else(|| panic!("metadata has no entry for {topic}"));
    assert!(
        t.error().is_none(),
        "metadata error for {topic}: {:?}",
        t.error()
    );
    t.partitions()
        .iter()
        .map(|p| (p.id(), p.leader()))
        .collect()
}

/// Names of all topics the broker lists.
pub fn topic_names(bootstrap: &str) -> Vec<String> {
    let consumer = consumer(bootstrap);
    let md = consumer
        .fetch_metadata(None, CALL_TIMEOUT)
        .expect("metadata for all topics");
    md.topics().iter().map(|t| t.name().to_string()).collect()
}

/// Asserts that what was read is exactly what was sent, with offsets 0..n-1 in order.
pub fn assert_same_records(sent: &[Rec], read: &[ReadRec], what: &str) {
    assert_eq!(read.len(), sent.len(), "{what}: record count");
    for (i, (s, r)) in sent.iter().zip(read).enumerate() {
        assert_eq!(r.offset, i as i64, "{what}: offset of record {i}");
        assert_eq!(&r.rec, s, "{what}: record {i} differs");
    }
}

/// Creates `topic` with `partitions` partitions through the admin API and waits for the answer.
pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    use rdkafka::admin::{NewTopic, TopicReplication};
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = futures_lite::future::block_on(
        admin(bootstrap).create_topics([&new_topic], &admin_options()),
    )
    .expect("create_topics request");
    for result in results {
        result.unwrap_or_else(|(name, code)| panic!("creating {name} failed: {code:?}"));
    }
}
