//! Produce and consume through librdkafka (the `rdkafka` crate) against the real `sluice`
//! binary: every compression codec, keys, null values and headers, offsets and watermarks,
//! the on-disk batch codec, and the same data again after a graceful restart.

mod common;
#[path = "common/rdk.rs"]
mod rdk;

use common::{Broker, BrokerOptions, unique_topic};
use rdk::{Rec, assert_same_records, read_partition, send_all, watermarks};

/// The five codecs librdkafka accepts in `compression.type`, with their RecordBatch
/// attribute value (bits 0-2).
const CODECS: [(&str, i16); 5] = [
    ("none", 0),
    ("gzip", 1),
    ("snappy", 2),
    ("lz4", 3),
    ("zstd", 4),
];

const RECORDS_PER_CODEC: usize = 300;

/// Records that exercise every optional part of the format: null and empty keys and values,
/// binary bytes, a value big enough to span several producer batches, duplicate header keys
/// and null header values.
fn sample_records(n: usize, tag: &str) -> Vec<Rec> {
    (0..n)
        .map(|i| {
            let key = match i % 7 {
                0 => None,
                1 => Some(Vec::new()),
                _ => Some(format!("{tag}-key-{i}").into_bytes()),
            };
            let value = match i % 11 {
                0 => None,
                1 => Some(Vec::new()),
                2 => Some((0..=255u8).collect()),
                3 => Some(vec![b'z'; 20_000 + i]),
                _ => Some(format!("{tag}-value-{i}-{}", "x".repeat(i % 50)).into_bytes()),
            };
            let headers = match i % 5 {
                0 => Vec::new(),
                1 => vec![("h".to_string(), Some(vec![i as u8]))],
                2 => vec![("nullable".to_string(), None)],
                _ => vec![
                    ("dup".to_string(), Some(b"first".to_vec())),
                    ("dup".to_string(), Some(format!("second-{i}").into_bytes())),
                    ("empty".to_string(), Some(Vec::new())),
                ],
            };
            Rec {
                key,
                value,
                headers,
            }
        })
        .collect()
}

/// Produces `recs` with `codec` and acks=all and checks the acknowledged offsets.
fn produce_codec(broker: &Broker, topic: &str, codec: &str, recs: &[Rec]) {
    let producer = rdk::producer(&broker.bootstrap(), codec, "all");
    let offsets = send_all(&producer, topic, 0, recs);
    let expected: Vec<i64> = (0..recs.len() as i64).collect();
    assert_eq!(offsets, expected, "{codec}: acknowledged offsets");
}

/// Reads the topic back and compares every record, offset and both watermarks.
fn verify_topic(broker: &Broker, topic: &str, recs: &[Rec], what: &str) {
    let read = read_partition(&broker.bootstrap(), topic, 0, recs.len());
    assert_same_records(recs, &read, what);
    assert_eq!(
        watermarks(&broker.bootstrap(), topic, 0),
        (0, recs.len() as i64),
        "{what}: watermarks"
    );
}

/// The codec bits of every batch in the partition's first segment. Batches are stored as the
/// producer sent them, so the codec on disk must be the producer's.
fn codecs_on_disk(broker: &Broker, topic: &str) -> Vec<i16> {
    let path = broker
        .data_dir()
        .join(format!("{topic}-0"))
        .join(format!("{:020}.log", 0));
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("read segment {}: {e}", path.display()));
    let mut codecs = Vec::new();
    let mut pos = 0;
    // RecordBatch v2: baseOffset i64, batchLength i32 (bytes after this field),
    // partitionLeaderEpoch i32, magic i8, crc u32, attributes i16.
    while pos + 23 <= bytes.len() {
        let batch_len = i32::from_be_bytes(bytes[pos + 8..pos + 12].try_into().unwrap()) as usize;
        assert_eq!(bytes[pos + 16], 2, "magic of batch at file position {pos}");
        let attributes = i16::from_be_bytes(bytes[pos + 21..pos + 23].try_into().unwrap());
        codecs.push(attributes & 0x7);
        pos += 12 + batch_len;
    }
    assert_eq!(pos, bytes.len(), "segment ends in the middle of a batch");
    codecs
}

#[test]
fn every_codec_round_trips_and_survives_restart() {
    let mut broker = Broker::start_with(BrokerOptions::default().with_cores(2));
    let mut topics = Vec::new();
    // Codec mismatches on disk are collected and asserted at the end, so one codec the client
    // declines to use does not hide whether restart and recovery work.
    let mut codec_problems = Vec::new();
    for (codec, bits) in CODECS {
        let topic = unique_topic(&format!("codec-{codec}"));
        let recs = sample_records(RECORDS_PER_CODEC, codec);
        produce_codec(&broker, &topic, codec, &recs);
        verify_topic(&broker, &topic, &recs, &format!("{codec} before restart"));
        // librdkafka sends a batch uncompressed when compression does not shrink it, so a
        // tiny batch may be plain; the big compressible ones must keep the producer's codec.
        // librdkafka also sends everything uncompressed when it infers from ApiVersions that
        // the broker cannot take the codec (lz4 needs FindCoordinator to be advertised).
        let on_disk = codecs_on_disk(&broker, &topic);
        if !(on_disk.contains(&bits) && on_disk.iter().all(|&c| c == bits || c == 0)) {
            codec_problems.push(format!(
                "{codec}: codec bits on disk {on_disk:?}, expected {bits}"
            ));
        }
        topics.push((topic, recs));
    }

    let status = broker.stop();
    assert!(status.success(), "graceful stop exited with {status}");
    broker.restart();

    for (topic, recs) in &topics {
        verify_topic(&broker, topic, recs, &format!("{topic} after restart"));
    }
    append_after_restart(&broker, &topics[0].0, topics[0].1.len());
    assert!(codec_problems.is_empty(), "{}", codec_problems.join("\n"));
}

/// After recovery the log must accept new records at the next offset.
fn append_after_restart(broker: &Broker, topic: &str, existing: usize) {
    let producer = rdk::producer(&broker.bootstrap(), "lz4", "all");
    let more = sample_records(10, "after-restart");
    let offsets = send_all(&producer, topic, 0, &more);
    let expected: Vec<i64> = (existing as i64..(existing + more.len()) as i64).collect();
    assert_eq!(
        offsets, expected,
        "offsets of records appended after restart"
    );
    assert_eq!(
        watermarks(&broker.bootstrap(), topic, 0),
        (0, (existing + more.len()) as i64)
    );
}

#[test]
fn metadata_advertises_one_broker_per_shard() {
    let broker = Broker::start_with(BrokerOptions::default().with_cores(2));
    let consumer = rdk::consumer(&broker.bootstrap());
    let md = rdkafka::consumer::Consumer::fetch_metadata(&consumer, None, rdk::CALL_TIMEOUT)
        .expect("metadata");
    let mut brokers: Vec<(i32, String, i32)> = md
        .brokers()
        .iter()
        .map(|b| (b.id(), b.host().to_string(), b.port()))
        .collect();
    brokers.sort();
    let expected: Vec<(i32, String, i32)> = (0..broker.cores())
        .map(|c| {
            (
                i32::from(c),
                "127.0.0.1".to_string(),
                i32::from(broker.shard_port(c)),
            )
        })
        .collect();
    assert_eq!(brokers, expected, "brokers in Metadata");
}

#[test]
fn auto_created_topic_uses_num_partitions_from_config() {
    let broker = Broker::start_with(
        BrokerOptions::default()
            .with_cores(2)
            .with_config("num.partitions", "3")
            .with_config("auto.create.topics.enable", "true"),
    );
    let topic = unique_topic("auto");
    let producer = rdk::producer(&broker.bootstrap(), "none", "all");
    // Explicit partitions, so each shard is exercised through the leader Metadata names.
    for p in 0..3 {
        let rec = Rec {
            key: Some(format!("k{p}").into_bytes()),
            value: Some(format!("v{p}").into_bytes()),
            headers: Vec::new(),
        };
        let (partition, offset) = rdk::send_one(&producer, &topic, Some(p), &rec)
            .unwrap_or_else(|e| panic!("produce to partition {p}: {e}"));
        assert_eq!((partition, offset), (p, 0));
        let read = read_partition(&broker.bootstrap(), &topic, p, 1);
        assert_same_records(std::slice::from_ref(&rec), &read, &format!("partition {p}"));
    }
    let leaders = rdk::leaders(&broker.bootstrap(), &topic);
    assert_eq!(leaders.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2]);
    assert!(
        leaders.values().all(|&l| (0..2).contains(&l)),
        "leaders must be shard broker ids: {leaders:?}"
    );
}
