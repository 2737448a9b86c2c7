//! Throughput cost of transactions: the same 1 KiB-record load through librdkafka, once
//! with an idempotent producer and once transactional with a commit every 100 ms, against a
//! running broker. Prints records/s and MB/s for both and their ratio.
//!
//! `cargo run --release --example txn_throughput -- <bootstrap> [seconds]`

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const RECORD_BYTES: usize = 1024;
const PARTITIONS: i32 = 4;
const COMMIT_EVERY: Duration = Duration::from_millis(100);

fn main() {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let run = Duration::from_secs(seconds);
    let stamp = std::process::id();
    let plain_topic = format!("bench-plain-{stamp}");
    let txn_topic = format!("bench-txn-{stamp}");
    create_topics(&bootstrap, &[&plain_topic, &txn_topic]);
    let plain = measure(&bootstrap, &plain_topic, run, false);
    let txn = measure(&bootstrap, &txn_topic, run, true);
    let mb = |r: f64| r * RECORD_BYTES as f64 / 1e6;
    println!(
        "idempotent:    {plain:>10.0} records/s  {:>7.1} MB/s",
        mb(plain)
    );
    println!(
        "transactional: {txn:>10.0} records/s  {:>7.1} MB/s (commit every 100 ms)",
        mb(txn)
    );
    println!("ratio transactional/idempotent: {:.3}", txn / plain);
}

fn create_topics(bootstrap: &str, names: &[&str]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client");
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|n| NewTopic::new(n, PARTITIONS, TopicReplication::Fixed(1)))
        .collect();
    let results =
        futures_lite::future::block_on(admin.create_topics(&topics, &AdminOptions::new()))
            .expect("create_topics");
    for r in results {
        r.expect("topic created");
    }
}

/// Sends as fast as the producer queue allows for `run`; returns acknowledged records/s.
fn measure(bootstrap: &str, topic: &str, run: Duration, transactional: bool) -> f64 {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.kbytes", "262144");
    if transactional {
        config.set("transactional.id", format!("bench-{topic}"));
    }
    let producer: BaseProducer = config.create().expect("producer");
    let timeout = Duration::from_secs(30);
    if transactional {
        producer.init_transactions(timeout).expect("init");
        producer.begin_transaction().expect("begin");
    }
    let payload = vec![b'x'; RECORD_BYTES];
    let started = Instant::now();
    let mut last_commit = started;
    let mut sent = 0u64;
    let mut partition = 0;
    while started.elapsed() < run {
        let record = BaseRecord::<(), _>::to(topic)
            .partition(partition)
            .payload(&payload);
        match producer.send(record) {
            Ok(()) => {
                sent += 1;
                partition = (partition + 1) % PARTITIONS;
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                producer.poll(Duration::from_millis(1));
            }
            Err((e, _)) => panic!("send failed: {e}"),
        }
        if transactional && last_commit.elapsed() >= COMMIT_EVERY {
            // commit_transaction flushes first: every record sent so far is acknowledged.
            producer.commit_transaction(timeout).expect("commit");
            producer.begin_transaction().expect("begin");
            last_commit = Instant::now();
        }
    }
    if transactional {
        producer.commit_transaction(timeout).expect("commit");
    } else {
        producer.flush(timeout).expect("flush");
    }
    sent as f64 / started.elapsed().as_secs_f64()
}
