//! Criterion micro-benchmarks of the pieces on the produce and fetch paths: batch
//! validation (CRC-32C header checks, and the record walk against the header), varints, request decode, fetch response framing, index lookup,
//! and record decompression per codec. Run with `cargo bench --bench hot_paths`.

use std::hint::black_box;

use bytes::{BufMut, Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use sluice::protocol::batch_validation::{check_records, decompressed_limit};
use sluice::protocol::compression::{compress, decompress};
use sluice::protocol::fetch_response::{
    FetchResponseWriter, PartitionHeader, RecordsSource, TopicKey,
};
use sluice::protocol::record_batch::{BatchBuilder, BatchView, Compression};
use sluice::protocol::records::{Record, encode_record};
use sluice::protocol::varint;
use sluice::storage::index::{Index, OffsetEntry};
use sluice::storage::validate::validate_batches;

/// A batch of `count` records of `value_len` bytes, like a producer would send.
fn sample_batch(count: i32, value_len: usize, codec: Compression, attr: i16) -> Vec<u8> {
    let mut section = Vec::new();
    for i in 0..count {
        let record = Record {
            attributes: 0,
            timestamp_delta: i64::from(i),
            offset_delta: i,
            key: Some(format!("key-{i}").into_bytes()),
            value: Some(vec![(i % 251) as u8; value_len]),
            headers: vec![],
        };
        encode_record(&mut section, &record);
    }
    let packed = compress(codec, &section);
    BatchBuilder {
        attributes: attr,
        last_offset_delta: count - 1,
        record_count: count,
        ..Default::default()
    }
    .build(&packed)
}

fn batch_validation(c: &mut Criterion) {
    let batch = sample_batch(16, 1024, Compression::None, 0);
    let mut g = c.benchmark_group("batch");
    g.throughput(Throughput::Bytes(batch.len() as u64));
    g.bench_function("validate_16x1KiB_crc32c", |b| {
        b.iter(|| {
            BatchView::parse_validated(black_box(&batch))
                .unwrap()
                .record_count()
        })
    });
    g.bench_function("crc32c_16KiB", |b| {
        b.iter(|| crc32c::crc32c(black_box(&batch)))
    });
    g.finish();
}

/// Values of `len` bytes over a 16-letter alphabet (about 2:1 for lz4), from a fixed LCG.
fn text_value(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            b'a' + ((x >> 16) % 16) as u8
        })
        .collect()
}

/// A 16 KiB batch of 16 records of 1 KiB, as a producer sends it, in `codec`.
fn typical_batch(codec: Compression, attr: i16) -> Vec<u8> {
    let mut section = Vec::new();
    for i in 0..16 {
        let record = Record {
            attributes: 0,
            timestamp_delta: i64::from(i),
            offset_delta: i,
            key: Some(format!("key-{i}").into_bytes()),
            value: Some(text_value(i as u32, 1024)),
            headers: vec![],
        };
        encode_record(&mut section, &record);
    }
    BatchBuilder {
        attributes: attr,
        last_offset_delta: 15,
        record_count: 16,
        ..Default::default()
    }
    .build(&compress(codec, &section))
}

/// What produce validation costs per batch: the header checks alone (CRC-32C, codec,
/// count; all main did) next to the header checks plus the record walk (issue 11), and
/// the whole `validate_batches` (walk plus the copy into the append buffer).
fn record_walk(c: &mut Criterion) {
    let limit = decompressed_limit(1 << 20);
    let mut g = c.benchmark_group("produce_validation");
    for (name, codec, attr) in [("none", Compression::None, 0), ("lz4", Compression::Lz4, 3)] {
        let batch = typical_batch(codec, attr);
        g.throughput(Throughput::Bytes(batch.len() as u64));
        g.bench_function(format!("16x1KiB_{name}/header_only"), |b| {
            b.iter(|| {
                BatchView::parse_validated(black_box(&batch))
                    .unwrap()
                    .record_count()
            })
        });
        g.bench_function(format!("16x1KiB_{name}/header_and_records"), |b| {
            b.iter(|| {
                let view = BatchView::parse_validated(black_box(&batch)).unwrap();
                check_records(&view, limit, false).unwrap().section_bytes
            })
        });
        g.bench_function(format!("16x1KiB_{name}/validate_batches"), |b| {
            b.iter(|| {
                validate_batches(black_box(&batch), 1 << 20)
                    .unwrap()
                    .record_count
            })
        });
    }
    g.finish();
}

fn varints(c: &mut Criterion) {
    let mut buf = Vec::new();
    for v in [-1i64, 300, 1 << 20, -(1 << 40)] {
        varint::write_varlong(&mut buf, v);
    }
    c.bench_function("varint/decode_4_varlongs", |b| {
        b.iter(|| {
            let mut at = 0;
            let mut sum = 0i64;
            while at < buf.len() {
                let (v, n) = varint::read_varlong(&buf[at..]).unwrap();
                sum = sum.wrapping_add(v);
                at += n;
            }
            sum
        })
    });
}

fn produce_decode(c: &mut Criterion) {
    let batch = Bytes::from(sample_batch(16, 1024, Compression::None, 0));
    let mut partition = PartitionProduceData::default();
    partition.index = 0;
    partition.records = Some(batch.clone());
    let mut topic = TopicProduceData::default();
    topic.name = TopicName(StrBytes::from_static_str("bench"));
    topic.partition_data = vec![partition];
    let mut request = ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 30_000;
    request.topic_data = vec![topic];
    let mut encoded = BytesMut::new();
    request.encode(&mut encoded, 9).unwrap();
    let encoded = encoded.freeze();
    let mut g = c.benchmark_group("request");
    g.throughput(Throughput::Bytes(encoded.len() as u64));
    g.bench_function("produce_v9_decode_16KiB_zero_copy", |b| {
        b.iter(|| {
            ProduceRequest::decode(&mut black_box(encoded.clone()), 9)
                .unwrap()
                .topic_data
                .len()
        })
    });
    // The bounds check dispatch runs before that decode (same request).
    g.bench_function("produce_v9_bounds_check_16KiB", |b| {
        b.iter(|| sluice::protocol::request_shapes::check(0, 9, black_box(&encoded[..])).is_ok())
    });
    g.finish();
    fetch_request_decode(c);
}

/// A consumer's Fetch v12 for 16 partitions of one topic: decode, and the bounds check before it.
fn fetch_request_decode(c: &mut Criterion) {
    use kafka_protocol::messages::FetchRequest;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    let mut topic = FetchTopic::default();
    topic.topic = TopicName(StrBytes::from_static_str("bench"));
    topic.partitions = (0..16)
        .map(|p| {
            let mut partition = FetchPartition::default();
            partition.partition = p;
            partition.fetch_offset = 1_000_000;
            partition.partition_max_bytes = 1 << 20;
            partition
        })
        .collect();
    let mut request = FetchRequest::default();
    request.max_wait_ms = 500;
    request.topics = vec![topic];
    let mut encoded = BytesMut::new();
    request.encode(&mut encoded, 12).unwrap();
    let encoded = encoded.freeze();
    let mut g = c.benchmark_group("request");
    g.bench_function("fetch_v12_decode_16_partitions", |b| {
        b.iter(|| {
            FetchRequest::decode(&mut black_box(encoded.clone()), 12)
                .unwrap()
                .topics
                .len()
        })
    });
    g.bench_function("fetch_v12_bounds_check_16_partitions", |b| {
        b.iter(|| sluice::protocol::request_shapes::check(1, 12, black_box(&encoded[..])).is_ok())
    });
    g.finish();
}

fn fetch_framing(c: &mut Criterion) {
    let file = std::rc::Rc::new(tempfile::tempfile().unwrap());
    c.bench_function("fetch_response/frame_8_partitions_v12", |b| {
        b.iter(|| {
            let mut w = FetchResponseWriter::new(12, 1, 0, 0, 1);
            w.begin_topic(TopicKey::Name("bench"), 8);
            for p in 0..8 {
                let h = PartitionHeader {
                    partition_index: p,
                    error_code: 0,
                    high_watermark: 1000,
                    last_stable_offset: 1000,
                    log_start_offset: 0,
                    aborted_transactions: None,
                    preferred_read_replica: -1,
                    diverging_epoch: None,
                };
                w.partition(
                    &h,
                    RecordsSource::File(sluice::file_region::FileRegion {
                        file: file.clone(),
                        position: 0,
                        len: 65536,
                        is_tail: true,
                        cached: None,
                    }),
                );
            }
            w.end_topic();
            w.finish().len()
        })
    });
}

fn index_lookup(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut index = Index::<OffsetEntry>::open(&dir.path().join("0.index")).unwrap();
    for i in 0..100_000u32 {
        index.append(OffsetEntry {
            relative_offset: i * 16,
            position: i * 4096,
        });
    }
    c.bench_function("index/floor_in_100k_entries", |b| {
        let mut key = 0i64;
        b.iter(|| {
            key = (key + 7919) % 1_600_000;
            index.floor(black_box(key)).map(|e| e.position)
        })
    });
}

/// Where a fetch finds its first batch in the active segment: an offset among the newest
/// batches comes from the segment's directory of recent batches (no system call); an older
/// one goes through the sparse index and a `pread` of each batch header it scans past.
fn batch_position(c: &mut Criterion) {
    use sluice::storage::segment::{AppendedBatch, Segment};
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut segment = Segment::create(dir.path(), 0).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment.paths().log)
        .unwrap();
    // 1,000 batches of 10 records of 100 bytes (~1.2 KiB each): an index entry every ~4.
    for i in 0..1_000i64 {
        let mut batch = BatchBuilder {
            last_offset_delta: 9,
            record_count: 10,
            ..Default::default()
        }
        .build(&vec![0u8; 1_000]);
        batch[..8].copy_from_slice(&(i * 10).to_be_bytes());
        file.write_all(&batch).unwrap();
        let appended = AppendedBatch {
            base_offset: i * 10,
            last_offset: i * 10 + 9,
            max_timestamp: 0,
            position: segment.size(),
            size: batch.len() as u64,
        };
        segment.record_append(appended, 4096).unwrap();
    }
    let mut g = c.benchmark_group("segment/position_of");
    // The last batch: in the directory. An offset in the middle: index floor plus a scan.
    g.bench_function("newest_batch", |b| {
        b.iter(|| segment.position_of(black_box(9_995)).unwrap())
    });
    g.bench_function("older_batch_by_pread", |b| {
        b.iter(|| segment.position_of(black_box(5_035)).unwrap())
    });
    g.finish();
}

fn codecs(c: &mut Criterion) {
    let mut section = BytesMut::new();
    for i in 0..1024u32 {
        section.put_slice(
            format!("{{\"id\":{i},\"name\":\"user-{i}\",\"score\":{}}}", i * 7).as_bytes(),
        );
    }
    let section = section.freeze();
    let mut g = c.benchmark_group("decompress");
    g.throughput(Throughput::Bytes(section.len() as u64));
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let packed = compress(codec, &section);
        g.bench_function(codec.name(), |b| {
            b.iter(|| decompress(codec, black_box(&packed)).unwrap().len())
        });
    }
    g.finish();
}

/// The per-request metrics record: the shard's own histogram (thread-local, no lock), against
/// what it replaced, a mutex-guarded map of histograms locked on every request, alone and
/// while another thread scrapes (locks the map and reads quantiles, as the exporter does).
/// All three count the request in the same relaxed atomics.
fn metrics_record(c: &mut Criterion) {
    use hdrhistogram::Histogram;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    type Locked = Mutex<BTreeMap<i16, Histogram<u64>>>;
    fn record_locked(map: &Locked, count: &AtomicU64, elapsed: std::time::Duration) {
        count.fetch_add(1, Ordering::Relaxed);
        let micros = (elapsed.as_micros() as u64).clamp(1, 60_000_000);
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        let h = map
            .entry(black_box(0))
            .or_insert_with(|| Histogram::new_with_bounds(1, 60_000_000, 3).unwrap());
        let _ = h.record(micros);
    }
    let mut g = c.benchmark_group("metrics_record_request");
    let metrics = sluice::metrics::ShardMetrics::new(0);
    let elapsed = std::time::Duration::from_micros(250);
    g.bench_function("thread_local", |b| {
        b.iter(|| metrics.record_request(black_box(0), false, black_box(elapsed)))
    });
    let locked: Arc<Locked> = Arc::new(Mutex::new(BTreeMap::new()));
    let count = AtomicU64::new(0);
    g.bench_function("mutex_map", |b| {
        b.iter(|| record_locked(&locked, &count, black_box(elapsed)))
    });
    let stop = Arc::new(AtomicBool::new(false));
    let scraper = {
        let (locked, stop) = (Arc::clone(&locked), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let map = locked.lock().unwrap_or_else(|p| p.into_inner());
                for h in map.values() {
                    black_box([0.5, 0.99, 0.999].map(|q| h.value_at_quantile(q)));
                }
            }
        })
    };
    g.bench_function("mutex_map_while_scraped", |b| {
        b.iter(|| record_locked(&locked, &count, black_box(elapsed)))
    });
    stop.store(true, Ordering::Relaxed);
    let _ = scraper.join();
    g.finish();
}

/// Reading a 1 MiB produce frame in the broker's read steps (4 KiB, then as much as has
/// arrived, up to 1 MiB), each step's bytes copied in as a socket read would: into a new
/// buffer grown and zeroed step by step (as before the pool), and into one from the shard's
/// frame pool, given back when the frame is dropped.
fn frame_buffers(c: &mut Criterion) {
    const LEN: usize = 1 << 20;
    let source = vec![7u8; LEN];
    let steps = {
        let (mut read, mut steps) = (0usize, Vec::new());
        while read < LEN {
            let step = (LEN - read).min(read.clamp(4 << 10, 1 << 20));
            steps.push(step);
            read += step;
        }
        steps
    };
    let mut g = c.benchmark_group("frame_read_1MiB");
    g.throughput(Throughput::Bytes(LEN as u64));
    g.bench_function("fresh_buffer", |b| {
        b.iter(|| {
            let mut body: Vec<u8> = Vec::new();
            for step in &steps {
                let filled = body.len();
                body.reserve_exact(*step);
                body.resize(filled + step, 0);
                body[filled..].copy_from_slice(&source[filled..filled + step]);
            }
            black_box(Bytes::from(body))
        })
    });
    g.bench_function("pooled_buffer", |b| {
        b.iter(|| {
            let mut body = sluice::server::frame_pool::take();
            for step in &steps {
                let filled = body.filled();
                body.room(*step)
                    .copy_from_slice(&source[filled..filled + step]);
                body.advance(*step);
            }
            black_box(body.freeze())
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    frame_buffers,
    metrics_record,
    batch_validation,
    record_walk,
    varints,
    produce_decode,
    fetch_framing,
    index_lookup,
    batch_position,
    codecs
);
criterion_main!(benches);
