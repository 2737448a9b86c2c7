//! Throughput cost of transactions: the same 1 KiB-record load through librdkafka, once
//! with an idempotent producer and once transactional with a commit every 100 ms, against a
//! running broker. Prints records/s and MB/s for both and their ratio.
//!
//! `cargo run --release --example txn_throughput -- <bootstrap> [seconds] [rounds]`

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
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    let mb = |r: f64| r * RECORD_BYTES as f64 / 1e6;
    // Alternate the two modes so load from other processes on the host hits both alike.
    let mut ratios = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let plain_topic = format!("bench-plain-{stamp}-{round}");
        let txn_topic = format!("bench-txn-{stamp}-{round}");
        create_topics(&bootstrap, &[&plain_topic, &txn_topic]);
        let plain = measure(&bootstrap, &plain_topic, run, false);
        let txn = measure(&bootstrap, &txn_topic, run, true);
        println!(
            "round {round}: idempotent {plain:>9.0} rec/s ({:.1} MB/s), transactional {txn:>9.0} rec/s ({:.1} MB/s), ratio {:.3}",
            mb(plain),
            mb(txn),
            txn / plain
        );
        ratios.push(txn / plain);
    }
    idle_commit_latency(&bootstrap, &format!("bench-idle-{stamp}"));
    ratios.sort_by(f64::total_cmp);
    println!(
        "median ratio transactional/idempotent over {rounds} rounds: {:.3}",
        ratios[rounds / 2]
    );
}

/// How long a commit takes when nothing is in flight: one record, flushed, then timed
/// commits. Separates the commit round trips from the flush of a busy pipeline.
fn idle_commit_latency(bootstrap: &str, topic: &str) {
    create_topics(bootstrap, &[topic]);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", format!("bench-{topic}"))
        .create()
        .expect("producer");
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout).expect("init");
    let mut took = Vec::new();
    for _ in 0..10 {
        producer.begin_transaction().expect("begin");
        producer
            .send(BaseRecord::<(), _>::to(topic).partition(0).payload("x"))
            .expect("send");
        producer.flush(timeout).expect("flush");
        let started = Instant::now();
        producer.commit_transaction(timeout).expect("commit");
        took.push(started.elapsed().as_secs_f64() * 1e3);
    }
    took.sort_by(f64::total_cmp);
    println!(
        "idle commit (records already acknowledged): median {:.1} ms, max {:.1} ms",
        took[5], took[9]
    );
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
        // A 32 MiB queue: large enough to keep the pipe full, small enough that a commit's
        // flush measures the broker, not a backlog the client built up.
        .set("queue.buffering.max.kbytes", "32768");
    if transactional {
        config.set("transactional.id", format!("bench-{topic}"));
    }
    if let Ok(debug) = std::env::var("TXN_BENCH_DEBUG") {
        config.set("debug", debug);
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
    let (mut commits, mut committing) = (0u32, Duration::ZERO);
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
            let commit_started = Instant::now();
            producer.commit_transaction(timeout).expect("commit");
            committing += commit_started.elapsed();
            commits += 1;
            producer.begin_transaction().expect("begin");
            last_commit = Instant::now();
        }
    }
    if transactional {
        producer.commit_transaction(timeout).expect("commit");
    } else {
        producer.flush(timeout).expect("flush");
    }
    if commits > 0 {
        println!(
            "{commits} commits, {:.1} ms each on average (flush of in-flight records included), {:.0}% of the run",
            committing.as_secs_f64() * 1e3 / f64::from(commits),
            100.0 * committing.as_secs_f64() / started.elapsed().as_secs_f64()
        );
    }
    sent as f64 / started.elapsed().as_secs_f64()
}
