//! SIGKILL under load: producers send continuously with acks=1 and acks=all and record every
//! acknowledged record; the broker is killed mid-stream and restarted on the same data dir;
//! every acknowledged record must then be readable at the offset it was acknowledged with,
//! and the log must keep accepting appends at the next offset.

mod common;
#[path = "common/rdk.rs"]
mod rdk;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Broker, BrokerOptions, unique_topic};
use rdk::{Rec, read_partition, watermarks};
use rdkafka::producer::DeliveryFuture;

/// How long the producers run before the kill. Long enough for thousands of records and
/// several segment rolls with the small segment size below.
const LOAD_BEFORE_KILL: Duration = Duration::from_secs(3);

/// Upper bound on how long a producer thread keeps sending; bounds the test even if the
/// stop flag were never set.
const LOAD_MAX: Duration = Duration::from_secs(30);

/// Records queued but not yet acknowledged, per producer; bounds memory and keeps the
/// pipeline busy.
const IN_FLIGHT_MAX: usize = 2_000;

/// Acknowledged records: offset -> (key, value).
type Acked = BTreeMap<i64, (Vec<u8>, Vec<u8>)>;

fn record(acks: &str, seq: u64) -> Rec {
    Rec {
        key: Some(format!("{acks}-{seq}").into_bytes()),
        value: Some(format!("value-{seq}-{}", "p".repeat((seq % 200) as usize)).into_bytes()),
        headers: vec![("seq".to_string(), Some(seq.to_be_bytes().to_vec()))],
    }
}

/// Sends records to partition 0 of `topic` until `stop` is set; returns what was acknowledged.
fn load(bootstrap: String, topic: String, acks: &'static str, stop: Arc<AtomicBool>) -> Acked {
    let producer = rdk::producer_config(&bootstrap)
        .set("acks", acks)
        .set("compression.type", "lz4")
        // Short, so records queued when the broker dies fail fast instead of waiting for
        // the restart; the test only counts acknowledged records.
        .set("message.timeout.ms", "3000")
        .set("retries", "0")
        .create()
        .expect("create producer");
    let started = Instant::now();
    let mut pending: Vec<(Rec, DeliveryFuture)> = Vec::new();
    let mut acked = Acked::new();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < LOAD_MAX {
        let rec = record(acks, seq);
        seq += 1;
        match rdk::enqueue(&producer, &topic, Some(0), &rec) {
            Ok(future) => pending.push((rec, future)),
            // Queue full or broker gone: back off a little and go on.
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
        if pending.len() >= IN_FLIGHT_MAX {
            collect(&mut pending, &mut acked);
        }
    }
    rdkafka::producer::Producer::flush(&producer, Duration::from_secs(5)).ok();
    collect(&mut pending, &mut acked);
    acked
}

/// Waits for every pending delivery and records the acknowledged ones.
fn collect(pending: &mut Vec<(Rec, DeliveryFuture)>, acked: &mut Acked) {
    for (rec, future) in pending.drain(..) {
        if let Ok(Ok(delivery)) = futures_lite::future::block_on(future) {
            let key = rec.key.clone().expect("load records have keys");
            let value = rec.value.clone().expect("load records have values");
            let previous = acked.insert(delivery.offset, (key, value));
            assert!(
                previous.is_none(),
                "offset {} acknowledged twice",
                delivery.offset
            );
        }
    }
}

fn start_load(
    broker: &Broker,
    topic: &str,
    acks: &'static str,
    stop: &Arc<AtomicBool>,
) -> JoinHandle<Acked> {
    let (bootstrap, topic, stop) = (broker.bootstrap(), topic.to_string(), stop.clone());
    std::thread::spawn(move || load(bootstrap, topic, acks, stop))
}

/// Every acknowledged record is present at its offset with the same key and value, and the
/// partition's offsets are contiguous from 0.
fn verify_acked(broker: &Broker, topic: &str, acked: &Acked, what: &str) -> i64 {
    let (low, high) = watermarks(&broker.bootstrap(), topic, 0);
    assert_eq!(low, 0, "{what}: low watermark");
    let last_acked = acked.keys().next_back().copied().unwrap_or(-1);
    assert!(
        high > last_acked,
        "{what}: high watermark {high} but offset {last_acked} was acknowledged"
    );
    let read = read_partition(&broker.bootstrap(), topic, 0, high as usize);
    for (i, r) in read.iter().enumerate() {
        assert_eq!(r.offset, i as i64, "{what}: offsets must be contiguous");
    }
    for (offset, (key, value)) in acked {
        let r = &read[*offset as usize].rec;
        assert_eq!(
            r.key.as_ref(),
            Some(key),
            "{what}: key at acked offset {offset}"
        );
        assert_eq!(
            r.value.as_ref(),
            Some(value),
            "{what}: value at acked offset {offset}"
        );
    }
    high
}

#[test]
fn acknowledged_records_survive_sigkill() {
    let mut broker = Broker::start_with(
        BrokerOptions::default()
            .with_cores(2)
            // Small segments so the kill is likely to land near a roll as well.
            .with_config("log.segment.bytes", "262144"),
    );
    let topics: [(&'static str, String); 2] = [
        ("1", unique_topic("crash-acks1")),
        ("all", unique_topic("crash-acksall")),
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = topics
        .iter()
        .map(|(acks, topic)| start_load(&broker, topic, acks, &stop))
        .collect();

    std::thread::sleep(LOAD_BEFORE_KILL);
    broker.kill9();
    // Producers keep trying for a moment against the dead broker, as real clients would.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<Acked> = handles
        .into_iter()
        .map(|h| h.join().expect("producer thread panicked"))
        .collect();

    broker.restart();
    for ((acks, topic), acked) in topics.iter().zip(&acked) {
        assert!(
            acked.len() > 100,
            "acks={acks}: only {} records acknowledged before the kill; the load did not run",
            acked.len()
        );
        let high = verify_acked(&broker, topic, acked, &format!("acks={acks}"));
        eprintln!(
            "acks={acks}: {} records acknowledged before the kill, {high} in the log after recovery",
            acked.len()
        );
        append_after_recovery(&broker, topic, high);
    }
}

/// The recovered log accepts a new record at exactly the high watermark.
fn append_after_recovery(broker: &Broker, topic: &str, high: i64) {
    let producer = rdk::producer(&broker.bootstrap(), "none", "all");
    let rec = record("after", 0);
    let (partition, offset) =
        rdk::send_one(&producer, topic, Some(0), &rec).expect("produce after recovery");
    assert_eq!((partition, offset), (0, high), "append after recovery");
}
