//! Fetch from the closest replica (KIP-392) across three Sluice processes, each in its own
//! rack (`rack-1`..`rack-3`) with `replica.selector.class` set to Kafka's rack-aware
//! selector: the leader sends a consumer in a follower's rack to that follower
//! (`preferred_read_replica`, raw Fetch v11), the follower serves consumers from v11 up to
//! its high watermark (and answers NOT_LEADER_OR_FOLLOWER below v11), its long polls wake
//! when replicated records land, and an unmodified librdkafka consumer with `client.rack`
//! reads every record, most bytes coming from the follower (its own statistics).
//!
//! Ports 20092 (bootstrap, shard on 20093) and 20192 (controller) on 127.0.0.1-3: inside the
//! range single-broker tests pick from at random, but this binary holds no other test and
//! cargo runs test binaries one at a time, so none of them runs beside it.

#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/rdk.rs"]
mod rdk;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};
use sluice::client::Connection;

use cluster::{Cluster, FORM_WITHIN, brokers, create_topic, leader_and_isr};

const PORT: u16 = 20092;
const CONTROLLER: u16 = 20192;
const ALL: [i32; 3] = [1000, 2000, 3000];
const TOPIC: &str = "kip392";
const RACK_AWARE: &str =
    "replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector";

/// The address of node `n`'s only shard (bootstrap port + 1).
fn shard_addr(n: u8) -> String {
    format!("127.0.0.{n}:{}", PORT + 1)
}

/// A consumer's Fetch (replica id -1) of partition 0 at `offset`.
fn consumer_fetch(offset: i64, rack: &str, max_wait_ms: i32, isolation: i8) -> FetchRequest {
    let mut p = FetchPartition::default();
    p.partition = 0;
    p.fetch_offset = offset;
    p.partition_max_bytes = 1 << 20;
    p.current_leader_epoch = -1;
    let mut t = FetchTopic::default();
    t.topic = TopicName(StrBytes::from_static_str(TOPIC));
    t.partitions = vec![p];
    let mut request = FetchRequest::default();
    request.replica_id = BrokerId(-1);
    request.max_wait_ms = max_wait_ms;
    request.min_bytes = 1;
    request.max_bytes = 1 << 20;
    request.isolation_level = isolation;
    request.session_epoch = -1;
    request.rack_id = StrBytes::from_string(rack.to_string());
    request.topics = vec![t];
    request
}

fn fetch(addr: &str, request: &FetchRequest, version: i16) -> PartitionData {
    let mut conn = Connection::connect(addr, None).expect("connect to a shard");
    let mut response = conn.send_at(request, version).expect("fetch");
    assert_eq!(response.error_code, 0);
    response.responses.remove(0).partitions.remove(0)
}

fn records_len(p: &PartitionData) -> usize {
    p.records.as_ref().map_or(0, |r| r.len())
}

/// Keeps the consumer's latest librdkafka statistics.
#[derive(Default, Clone)]
struct StatsContext(Arc<Mutex<Option<Statistics>>>);

impl ClientContext for StatsContext {
    fn stats(&self, statistics: Statistics) {
        *self.0.lock().unwrap() = Some(statistics);
    }
}
impl ConsumerContext for StatsContext {}

/// Bytes received from each broker id, per the consumer's latest statistics.
fn rx_bytes_by_broker(stats: &StatsContext) -> Vec<(i32, u64)> {
    stats.0.lock().unwrap().as_ref().map_or(Vec::new(), |s| {
        s.brokers
            .values()
            .filter(|b| b.nodeid >= 0)
            .map(|b| (b.nodeid, b.rxbytes))
            .collect()
    })
}

#[test]
fn a_consumer_reads_from_the_follower_in_its_rack() {
    let cluster = Cluster::start(PORT, CONTROLLER, &[RACK_AWARE]);
    cluster.wait_for(FORM_WITHIN, "every node listing 3 brokers", || {
        (1..=3).all(|n| brokers(&cluster.bootstrap(n)) == ALL.to_vec())
    });
    create_topic(&cluster.bootstrap(1), TOPIC, 1, 3).expect("create the topic");
    let mut leader = 0i32;
    cluster.wait_for(
        Duration::from_secs(30),
        "a full ISR",
        || match leader_and_isr(&cluster.bootstrap(1), TOPIC, 0) {
            Some((l, isr)) if isr == ALL && l > 0 => {
                leader = l;
                true
            }
            _ => false,
        },
    );
    let leader_node = (leader / 1000) as u8;
    let follower_node = (1..=3u8).find(|n| *n != leader_node).unwrap();
    let follower = i32::from(follower_node) * 1000;
    let follower_rack = format!("rack-{follower_node}");

    let producer = rdk::producer(&cluster.bootstrap(1), "none", "all");
    let value = |i: usize| format!("{i:>96}").into_bytes();
    let first: Vec<rdk::Rec> = (0..300)
        .map(|i| rdk::Rec {
            key: None,
            value: Some(value(i)),
            headers: Vec::new(),
        })
        .collect();
    rdk::send_all(&producer, TOPIC, 0, &first);

    // The leader sends a consumer in the follower's rack there, without records, with
    // the offsets as usual; one in its own rack (or naming none) it serves itself.
    let redirected = fetch(
        &shard_addr(leader_node),
        &consumer_fetch(0, &follower_rack, 0, 0),
        11,
    );
    assert_eq!(redirected.error_code, 0);
    assert_eq!(redirected.preferred_read_replica.0, follower);
    assert_eq!(records_len(&redirected), 0);
    assert_eq!(redirected.high_watermark, 300);
    assert_eq!(redirected.log_start_offset, 0);
    let own_rack = format!("rack-{leader_node}");
    for rack in [own_rack.as_str(), ""] {
        let served = fetch(&shard_addr(leader_node), &consumer_fetch(0, rack, 0, 0), 11);
        assert_eq!(
            (served.error_code, served.preferred_read_replica.0),
            (0, -1)
        );
        assert!(records_len(&served) > 0, "leader served rack {rack:?}");
    }

    // The follower serves consumers from v11 (up to its high watermark, which it learns
    // promptly), and only from v11.
    let old = fetch(
        &shard_addr(follower_node),
        &consumer_fetch(0, &follower_rack, 0, 0),
        10,
    );
    assert_eq!(old.error_code, ResponseError::NotLeaderOrFollower.code());
    cluster.wait_for(Duration::from_secs(5), "the follower's HW at 300", || {
        let p = fetch(
            &shard_addr(follower_node),
            &consumer_fetch(0, &follower_rack, 0, 1),
            11,
        );
        p.error_code == 0 && p.high_watermark == 300 && p.last_stable_offset == 300
    });
    let served = fetch(
        &shard_addr(follower_node),
        &consumer_fetch(0, &follower_rack, 0, 1),
        11,
    );
    assert!(
        records_len(&served) > 300 * 96,
        "the follower served records"
    );
    // Past its log end: out of range; at its high watermark: nothing yet.
    let beyond = fetch(
        &shard_addr(follower_node),
        &consumer_fetch(301, "", 0, 0),
        11,
    );
    assert_eq!(beyond.error_code, ResponseError::OffsetOutOfRange.code());

    // A long poll on the follower wakes when a replicated record lands there.
    let addr = shard_addr(follower_node);
    let waiting = std::thread::spawn(move || {
        let start = Instant::now();
        let p = fetch(&addr, &consumer_fetch(300, "", 10_000, 0), 11);
        (p, start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));
    let one = [rdk::Rec {
        key: None,
        value: Some(value(300)),
        headers: Vec::new(),
    }];
    rdk::send_all(&producer, TOPIC, 0, &one);
    let (woken, waited) = waiting.join().unwrap();
    assert_eq!(woken.error_code, 0);
    assert!(records_len(&woken) > 0, "the long poll got the new record");
    assert!(
        waited < Duration::from_secs(5),
        "the long poll waited {waited:?} for a record produced after 0.5 s"
    );

    // An unmodified librdkafka consumer in the follower's rack reads every record, and most
    // of what it received came from the follower.
    let stats = StatsContext::default();
    let consumer: BaseConsumer<StatsContext> = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap(leader_node))
        .set("group.id", "kip392-assign-only")
        .set("enable.auto.commit", "false")
        .set("client.rack", &follower_rack)
        .set("statistics.interval.ms", "200")
        .set("fetch.wait.max.ms", "100")
        .create_with_context(stats.clone())
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let more: Vec<rdk::Rec> = (301..400)
        .map(|i| rdk::Rec {
            key: None,
            value: Some(value(i)),
            headers: Vec::new(),
        })
        .collect();
    let mut produced_more = false;
    while seen.len() < 400 {
        assert!(
            Instant::now() < deadline,
            "read {} of 400 records\n{}",
            seen.len(),
            cluster.logs()
        );
        if !produced_more && seen.len() >= 301 {
            // Records produced while the consumer is on the follower reach it too.
            rdk::send_all(&producer, TOPIC, 0, &more);
            produced_more = true;
        }
        if let Some(msg) = consumer.poll(Duration::from_millis(200)) {
            let msg = msg.expect("consume");
            use rdkafka::Message;
            assert_eq!(msg.offset(), seen.len() as i64, "records in order, once");
            assert_eq!(msg.payload(), Some(&value(seen.len())[..]));
            seen.push(msg.offset());
        }
    }
    // Let the statistics catch up with the last fetches.
    std::thread::sleep(Duration::from_millis(600));
    let _ = consumer.poll(Duration::from_millis(100));
    let rx = rx_bytes_by_broker(&stats);
    println!("bytes received by broker: {rx:?}; the follower is {follower}");
    let from = |id: i32| rx.iter().find(|(b, _)| *b == id).map_or(0, |(_, n)| *n);
    assert!(
        from(follower) > 400 * 96,
        "the follower sent the records: {rx:?}"
    );
    assert!(
        ALL.iter()
            .filter(|b| **b != follower)
            .all(|b| from(*b) < from(follower)),
        "the follower sent the most: {rx:?}"
    );
}
