//! Entry points for the fuzz targets (`fuzz/`) and the hostile-input tests: each takes
//! arbitrary bytes and runs one parser of the broker on them the way the broker does, so a
//! crash, abort or hang found there is one a client, a peer or a damaged disk could cause.
//! Nothing here runs inside the broker; it is public only so that `fuzz/` and `tests/` can
//! reach it.

use kafka_protocol::messages::ApiKey;

mod quorum;

pub use quorum::{controller_frame, metadata_log_segment, metadata_snapshot};

/// Decodes a request body of API `key` at `version` as dispatch does (bounds check, then the
/// generated decoder). `None` for an API Sluice does not serve.
pub fn decode_request_body(key: ApiKey, version: i16, body: &[u8]) -> Option<Result<(), String>> {
    crate::handlers::decode_only(key, version, body)
}

/// The encoding of `Request::default()` for `key` at `version`, a well-formed starting point
/// for mutations; `None` where the generated codec has no such version.
pub fn default_request_body(key: ApiKey, version: i16) -> Option<Vec<u8>> {
    crate::handlers::default_request_body(key, version)
}

/// Fuzz entry for the request decoders: the first two bytes choose the API and version among
/// those Sluice serves, the rest is the body. Must never panic, abort or allocate beyond the
/// input's size times a small factor.
pub fn request_decoder(data: &[u8]) {
    let [which, version, body @ ..] = data else {
        return;
    };
    let served = crate::handlers::SUPPORTED;
    let (key, (lo, hi)) = served[*which as usize % served.len()];
    let version = lo + (i16::from(*version) % (hi - lo + 1));
    let _ = decode_request_body(key, version, body);
}

/// Fuzz entry for the record-level codec: the first byte is the record count the batch
/// header would claim, the rest the records section.
pub fn records_section(data: &[u8]) {
    let [count, section @ ..] = data else {
        return;
    };
    let _ = crate::protocol::records::decode_section(section, i32::from(*count));
}

/// Fuzz entry for produce validation: the bytes are a Produce request's `records` field.
/// CRCs are recomputed first, so that mutations reach the checks behind the CRC.
pub fn produce_batches(data: &[u8]) {
    let mut data = data.to_vec();
    fix_crcs(&mut data);
    let _ = crate::storage::log::validate_batches(&data, 1 << 20);
}

/// A follower's check of the bytes a leader sent (`validate_replicated`): framing and CRCs
/// (fixed up, so mutations get past the checksum), a batch cut at the end left for the next
/// fetch. Must never panic, and whatever it accepts is whole batches.
pub fn replicated_batches(data: &[u8]) {
    let mut data = data.to_vec();
    fix_crcs(&mut data);
    if let Ok(Some(accepted)) = crate::storage::validate::validate_replicated(&data) {
        assert!(
            accepted.batch_count() > 0,
            "an accepted fetch holds a whole batch"
        );
    }
}

/// Rewrites the CRC of every batch whose length field fits the buffer, so a fuzzer's
/// mutations of a batch are not all stopped by the checksum.
fn fix_crcs(data: &mut [u8]) {
    use crate::protocol::record_batch::HEADER_LEN;
    let mut at = 0usize;
    while data.len() - at >= HEADER_LEN {
        let len = i32::from_be_bytes([data[at + 8], data[at + 9], data[at + 10], data[at + 11]]);
        let total = 12 + len.max(0) as usize;
        if total < HEADER_LEN || data.len() - at < total {
            return;
        }
        let crc = crc32c::crc32c(&data[at + 21..at + total]);
        data[at + 17..at + 21].copy_from_slice(&crc.to_be_bytes());
        at += total;
    }
}

/// Fuzz entry for the `__consumer_offsets` and `__transaction_state` record codecs and the
/// consumer protocol's subscription (topics, owned partitions) and assignment: the first byte
/// splits the rest into key and value.
pub fn coordinator_records(data: &[u8]) {
    let [split, rest @ ..] = data else {
        return;
    };
    let (key, value) = rest.split_at((*split as usize).min(rest.len()));
    let _ = crate::coordinator::group::records::decode_record(key, Some(value));
    let _ = crate::coordinator::group::records::decode_record(key, None);
    let _ = crate::coordinator::group::consumer_protocol::subscription_topics(rest);
    let _ = crate::coordinator::group::consumer_protocol::owned_partitions(rest);
    let _ = crate::coordinator::group::consumer_protocol::decode_assignment(rest);
    if let Ok(id) = crate::coordinator::txn::records::decode_key(key) {
        let _ = crate::coordinator::txn::records::decode_value(&id, value);
    }
    let _ = crate::coordinator::txn::records::decode_value("t", rest);
    let _ = crate::protocol::control_batch::decode_marker_key(rest);
}

/// Fuzz entry for share groups' bytes: a `__share_group_state` key and value (a decoded
/// value restored within the in-flight limit, its snapshot re-encoded and read back the
/// same; a decoded key encodes back to the same bytes), and a log range as share
/// acquisition walks its batches.
pub fn share_state(data: &[u8]) {
    use crate::share::partition_state::{Limits, SharePartitionState};
    use crate::share::state_record::{self, StoredState};
    let limits = Limits {
        lock_ms: 1_000,
        delivery_limit: 5,
        max_in_flight: 2_000,
    };
    if let Some(stored) = state_record::decode_value(data) {
        let restored = StoredState {
            snapshot: SharePartitionState::restore(&stored.snapshot, 0, limits).snapshot(),
            ..stored
        };
        let again = state_record::decode_value(&state_record::encode_value(&restored));
        assert_eq!(
            again,
            Some(restored),
            "a restored snapshot reads back the same"
        );
    }
    if let Some(key) = state_record::decode_key(data) {
        assert_eq!(
            state_record::encode_key(&key),
            data,
            "a key encodes back the same"
        );
    }
    for (span, batch) in crate::share::acquire::batches(data) {
        assert!(span.last >= span.base && !batch.is_empty());
    }
}

/// Fuzz entry for start-up recovery: the bytes become a partition's only segment file, which
/// is then opened (validated, truncated at the first bad batch, indexed) as after a crash.
pub fn segment_recovery(data: &[u8]) {
    let dir = scratch_dir();
    let partition_dir = dir.join("fuzz-0");
    let _ = std::fs::create_dir_all(&partition_dir);
    let log = partition_dir.join(format!("{}.log", crate::storage::segment::file_stem(0)));
    let mut data = data.to_vec();
    fix_crcs(&mut data);
    if std::fs::write(&log, &data).is_ok() {
        let config = crate::config::TopicConfig::default();
        if let Ok((opened, report)) =
            crate::storage::log::PartitionLog::open(partition_dir.clone(), "fuzz", 0, config)
        {
            let watermarks = opened.watermarks();
            assert!(report.truncated_bytes <= data.len() as u64);
            assert!(
                opened.size_bytes() <= data.len() as u64,
                "recovery grew the log"
            );
            assert!(watermarks.log_start_offset <= watermarks.high_watermark);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A directory path under the system's temp dir that no other run or thread uses; the
/// caller creates and removes it.
fn scratch_dir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static RUN: AtomicU64 = AtomicU64::new(0);
    std::env::temp_dir().join(format!(
        "sluice-fuzz-{}-{}",
        std::process::id(),
        RUN.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Well-formed inputs for each target (the fuzzers mutate them): default and populated
/// requests for every served API and version, batches in every codec, coordinator records,
/// CONTROLLER frames, metadata log directories and image snapshots from the real encoders.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "request_decoder" => request_seeds(),
        "produce_batches" | "segment_recovery" => batch_seeds(),
        "replicated_batches" => {
            // Whole batches, and the same cut inside the last one (a fetch at its size limit).
            let whole = batch_seeds();
            let cut = whole
                .iter()
                .map(|b| b[..b.len().saturating_sub(7)].to_vec())
                .collect::<Vec<_>>();
            [whole, cut].concat()
        }
        "records_section" => vec![[vec![3], records(3)].concat()],
        "coordinator_records" => coordinator_seeds(),
        "controller_frame" => quorum::frame_seeds(),
        "metadata_log_segment" => quorum::log_dir_seeds(),
        "metadata_snapshot" => quorum::snapshot_seeds(),
        "share_state" => share_state_seeds(),
        _ => Vec::new(),
    }
}

fn share_state_seeds() -> Vec<Vec<u8>> {
    use crate::share::partition_state::{
        STATE_ACKNOWLEDGED, STATE_AVAILABLE, Snapshot, StateRange,
    };
    let snapshot = Snapshot {
        start: 10,
        ranges: vec![
            StateRange {
                first: 10,
                last: 14,
                state: STATE_AVAILABLE,
                deliveries: 2,
            },
            StateRange {
                first: 15,
                last: 15,
                state: STATE_ACKNOWLEDGED,
                deliveries: 1,
            },
        ],
    };
    use crate::share::state_record::{self, StateKey, StoredState};
    let value = state_record::encode_value(&StoredState {
        state_epoch: 1,
        leader_epoch: 2,
        snapshot,
    });
    let key = state_record::encode_key(&StateKey {
        group: "g".to_owned(),
        topic_id: uuid::Uuid::from_u128(7),
        partition: 3,
    });
    [vec![value, key], batch_seeds()].concat()
}

fn request_seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (index, (key, (lo, hi))) in crate::handlers::SUPPORTED.iter().enumerate() {
        for version in *lo..=*hi {
            if let Some(body) = default_request_body(*key, version) {
                out.push([vec![index as u8, (version - lo) as u8], body].concat());
            }
        }
    }
    out
}

/// `count` records with keys, values and a header, as a batch's records section.
fn records(count: i32) -> Vec<u8> {
    let mut section = Vec::new();
    for i in 0..count {
        let record = crate::protocol::records::Record {
            attributes: 0,
            timestamp_delta: i64::from(i),
            offset_delta: i,
            key: Some(format!("key-{i}").into_bytes()),
            value: (i != 1).then(|| vec![b'v'; 20]),
            headers: vec![("h".into(), Some(b"x".to_vec()))],
        };
        crate::protocol::records::encode_record(&mut section, &record);
    }
    section
}

fn batch_seeds() -> Vec<Vec<u8>> {
    use crate::protocol::compression::compress;
    use crate::protocol::record_batch::{BatchBuilder, Compression};
    let codecs = [
        (0, Compression::None),
        (1, Compression::Gzip),
        (2, Compression::Snappy),
        (3, Compression::Lz4),
        (4, Compression::Zstd),
    ];
    let mut out = Vec::new();
    for (attributes, codec) in codecs {
        let section = records(3);
        let section = match codec {
            Compression::None => section,
            codec => compress(codec, &section),
        };
        let builder = BatchBuilder {
            attributes,
            last_offset_delta: 2,
            record_count: 3,
            base_timestamp: 1_700_000_000_000,
            max_timestamp: 1_700_000_000_002,
            ..BatchBuilder::default()
        };
        out.push(builder.build(&section));
    }
    // Two batches back to back, the second idempotent.
    let second = BatchBuilder {
        base_offset: 3,
        last_offset_delta: 2,
        record_count: 3,
        producer_id: 7,
        producer_epoch: 0,
        base_sequence: 0,
        ..BatchBuilder::default()
    };
    out.push([out[0].clone(), second.build(&records(3))].concat());
    out
}

fn coordinator_seeds() -> Vec<Vec<u8>> {
    use crate::coordinator::group::records::*;
    let with_split =
        |key: &[u8], value: &[u8]| [vec![key.len() as u8], key.to_vec(), value.to_vec()].concat();
    let offset = offset_commit_record(
        "group",
        "topic",
        3,
        &OffsetCommitValue {
            offset: 42,
            leader_epoch: -1,
            metadata: "m".into(),
            commit_timestamp: 1,
            expire_timestamp: None,
        },
    );
    let member = MemberMetadataValue {
        member_id: "member-1".into(),
        group_instance_id: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        rebalance_timeout: 1000,
        session_timeout: 1000,
        subscription: bytes::Bytes::from_static(&[0, 1, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 0]),
        assignment: bytes::Bytes::new(),
    };
    let group = group_metadata_record(
        "group",
        &GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 2,
            protocol: Some("range".into()),
            leader: Some("member-1".into()),
            current_state_timestamp: 5,
            members: vec![member],
        },
    );
    let mut out = vec![];
    for record in [offset, group] {
        out.push(with_split(
            &record.key,
            record.value.as_deref().unwrap_or_default(),
        ));
    }
    let txn = crate::coordinator::txn::TxnMetadata {
        transactional_id: "txn".into(),
        producer_id: 1,
        producer_epoch: 0,
        timeout_ms: 1000,
        status: crate::coordinator::txn::TxnStatus::Ongoing,
        partitions: [("topic".to_string(), 0)].into(),
        last_update_ms: 1,
        start_ms: 1,
        timed_out_epoch: None,
        tv2: Default::default(),
    };
    out.push(with_split(
        &crate::coordinator::txn::records::encode_key("txn"),
        &crate::coordinator::txn::records::encode_value(&txn),
    ));
    out
}
