//! Unit tests of the partition log: recovery at every cut, reads, retention, cleaning plans.

use super::*;
use crate::protocol::record_batch;
use crate::protocol::record_batch::BatchBuilder;
use checkpoints::write_offset_file;

fn batch(records: i32, ts: i64) -> Vec<u8> {
    BatchBuilder {
        last_offset_delta: records - 1,
        record_count: records,
        base_timestamp: ts,
        max_timestamp: ts,
        ..Default::default()
    }
    .build(&[7u8; 100])
}

fn write_log(dir: &Path, batches: &[Vec<u8>]) {
    std::fs::create_dir_all(dir).unwrap();
    let mut all = Vec::new();
    let mut offset = 0;
    for b in batches {
        let mut b = b.clone();
        record_batch::set_base_offset(&mut b, offset);
        offset += i64::from(
            record_batch::BatchView::parse(&b)
                .unwrap()
                .last_offset_delta(),
        ) + 1;
        all.extend_from_slice(&b);
    }
    std::fs::write(dir.join(format!("{:020}.log", 0)), all).unwrap();
}

/// Open rebuilds open and aborted transactions from the batches, rewrites the active
/// segment's `.txnindex`, and read_committed reads stop at the LSO.
#[test]
fn open_rebuilds_transactions_and_the_txnindex() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let txn = |pid: i64| {
        BatchBuilder {
            attributes: record_batch::ATTR_TRANSACTIONAL,
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: 0,
            record_count: 1,
            ..Default::default()
        }
        .build(&[7u8; 10])
    };
    let first = txn(1);
    let abort = crate::protocol::control_batch::marker_batch(1, 0, false, 0);
    // Offsets: 0 producer 1, 1 producer 2 (left open), 2 ABORT of producer 1, 3 plain.
    write_log(&dir, &[first.clone(), txn(2), abort, batch(1, 0)]);
    let (log, _) = PartitionLog::open(dir.clone(), "t", 0, TopicConfig::default()).unwrap();
    assert_eq!(log.watermarks().high_watermark, 4);
    assert_eq!(log.last_stable_offset(), 1);
    assert_eq!(log.aborted_between(0, 4), vec![(1, 0)]);
    assert!(log.in_transaction(2) && !log.in_transaction(1));
    let file = std::fs::read(dir.join(format!("{:020}.txnindex", 0))).unwrap();
    let entries = crate::storage::txn_index::AbortedTxn::decode_all(&file);
    assert_eq!(entries.len(), 1);
    assert_eq!((entries[0].first_offset, entries[0].last_offset), (0, 2));
    assert_eq!(entries[0].last_stable_offset, 1);
    let slice = log
        .read_committed(0, 1 << 20)
        .unwrap()
        .expect("offset 0 is stable");
    assert_eq!(
        slice.len,
        first.len() as u64,
        "cut before the open transaction"
    );
    assert!(log.read_committed(1, 1 << 20).unwrap().is_none());
    assert!(
        log.read(1, 1 << 20).unwrap().is_some(),
        "read_uncommitted is not cut"
    );
}

/// Cutting the file at every byte of its tail, recovery keeps exactly the whole batches.
#[test]
fn recovery_keeps_exactly_the_whole_batches_at_every_cut() {
    let batches: Vec<_> = (0..3).map(|i| batch(i + 1, 1000 + i64::from(i))).collect();
    let sizes: Vec<usize> = batches.iter().map(|b| b.len()).collect();
    let full: usize = sizes.iter().sum();
    for cut in 0..=full {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("t-0");
        write_log(&dir, &batches);
        let path = dir.join(format!("{:020}.log", 0));
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(cut as u64).unwrap();
        let cfg = TopicConfig {
            index_interval_bytes: 1,
            ..TopicConfig::default()
        };
        let (log, report) = PartitionLog::open(dir.clone(), "t", 0, cfg).unwrap();
        let mut whole = 0;
        let mut next = 0;
        for (i, s) in sizes.iter().enumerate() {
            if whole + s <= cut {
                whole += s;
                next += i as i64 + 1;
            }
        }
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            whole as u64,
            "cut {cut}"
        );
        assert_eq!(log.watermarks().high_watermark, next, "cut {cut}");
        assert_eq!(report.truncated_bytes, (cut - whole) as u64);
    }
}

#[test]
fn recovery_truncates_a_corrupt_middle_batch_and_everything_after() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let batches: Vec<_> = (0..3).map(|_| batch(1, 5)).collect();
    write_log(&dir, &batches);
    let path = dir.join(format!("{:020}.log", 0));
    let mut raw = std::fs::read(&path).unwrap();
    let second = batches[0].len() + 70;
    raw[second] ^= 0xff;
    std::fs::write(&path, raw).unwrap();
    let (log, _) = PartitionLog::open(dir, "t", 0, TopicConfig::default()).unwrap();
    assert_eq!(log.watermarks().high_watermark, 1);
}

#[test]
fn reads_find_the_batch_holding_an_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let batches: Vec<_> = (0..5).map(|_| batch(3, 5)).collect();
    write_log(&dir, &batches);
    let cfg = TopicConfig {
        index_interval_bytes: 300,
        ..TopicConfig::default()
    };
    let (log, _) = PartitionLog::open(dir, "t", 0, cfg).unwrap();
    assert_eq!(log.watermarks().high_watermark, 15);
    let size = batches[0].len() as u64;
    let slice = log.read(7, 1).unwrap().unwrap();
    assert_eq!((slice.position, slice.len), (2 * size, size));
    let slice = log.read(0, 10 * size).unwrap().unwrap();
    assert_eq!((slice.position, slice.len), (0, 5 * size));
    assert!(log.read(15, 100).unwrap().is_none());
    assert!(matches!(
        log.read(16, 100),
        Err(ReadError::OutOfRange { .. })
    ));
}

fn write_segment(dir: &Path, base: i64, count: i64, ts: i64) -> u64 {
    std::fs::create_dir_all(dir).unwrap();
    let mut all = Vec::new();
    for i in 0..count {
        let mut b = batch(1, ts);
        record_batch::set_base_offset(&mut b, base + i);
        all.extend_from_slice(&b);
    }
    std::fs::write(dir.join(format!("{base:020}.log")), &all).unwrap();
    all.len() as u64
}

fn three_segments(config: TopicConfig, ts: [i64; 3]) -> (tempfile::TempDir, PartitionLog, u64) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t-0");
    let size = write_segment(&dir, 0, 3, ts[0]);
    write_segment(&dir, 3, 3, ts[1]);
    write_segment(&dir, 6, 3, ts[2]);
    let (log, _) = PartitionLog::open(dir, "t", 0, config).unwrap();
    (tmp, log, size)
}

#[test]
fn max_compaction_lag_makes_a_log_due_below_its_dirty_ratio() {
    let compacting = |max_lag: i64| {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("t-0");
        write_segment(&dir, 0, 3, 1_000);
        write_segment(&dir, 3, 3, 2_000);
        write_segment(&dir, 6, 3, 3_000);
        // The first segment was cleaned before: half of the closed bytes are dirty.
        write_offset_file(&dir, CLEANER_CHECKPOINT, 3).unwrap();
        let config = TopicConfig {
            compact: true,
            delete: false,
            min_cleanable_dirty_ratio: 0.75,
            max_compaction_lag_ms: max_lag,
            ..TopicConfig::default()
        };
        let (log, _) = PartitionLog::open(dir, "t", 0, config).unwrap();
        (tmp, log)
    };
    let (_tmp, mut log) = compacting(i64::MAX);
    assert!(log.plan_clean(10_000).is_none(), "0.5 dirty is below 0.75");
    // The dirty segment's newest record (2,000) is 8 s old at 10,000.
    let (_tmp, mut log) = compacting(9_000);
    assert!(log.plan_clean(10_000).is_none(), "not yet past the lag");
    let (_tmp, mut log) = compacting(8_000);
    let job = log.plan_clean(10_000).expect("past max.compaction.lag.ms");
    assert_eq!(job.segments, vec![0, 3]);
}

#[test]
fn size_retention_deletes_oldest_closed_segments_and_moves_log_start() {
    let mut cfg = TopicConfig::default();
    let (_tmp, mut log, seg) = three_segments(cfg.clone(), [1, 2, 3]);
    assert_eq!(
        log.watermarks(),
        Watermarks {
            log_start_offset: 0,
            high_watermark: 9,
            log_end_offset: 9,
        }
    );
    cfg.retention_bytes = seg as i64;
    log.set_config(cfg);
    let removed = log.collect_expired_segments(10);
    assert_eq!(removed.len(), 6, "two segments, three files each");
    assert_eq!(log.watermarks().log_start_offset, 6);
    assert!(matches!(
        log.read(2, 100),
        Err(ReadError::OutOfRange { .. })
    ));
    assert!(log.read(6, 100).unwrap().is_some());
}

#[test]
fn time_retention_keeps_the_active_segment_and_survives_restart() {
    let cfg = TopicConfig {
        retention_ms: 1_000,
        ..TopicConfig::default()
    };
    let (tmp, mut log, _) = three_segments(cfg.clone(), [1_000, 5_000, 1_000]);
    let removed = log.collect_expired_segments(4_000);
    assert_eq!(removed.len(), 3, "only the first segment is old and closed");
    removed
        .iter()
        .for_each(|p| std::fs::remove_file(p).unwrap());
    assert_eq!(log.watermarks().log_start_offset, 3);
    let (reopened, _) = PartitionLog::open(tmp.path().join("t-0"), "t", 0, cfg).unwrap();
    assert_eq!(
        reopened.watermarks(),
        Watermarks {
            log_start_offset: 3,
            high_watermark: 9,
            log_end_offset: 9,
        }
    );
}

#[test]
fn delete_records_moves_log_start_within_a_segment() {
    let (tmp, mut log, _) = three_segments(TopicConfig::default(), [1, 2, 3]);
    assert_eq!(log.delete_records(4).unwrap(), 4);
    assert!(matches!(
        log.delete_records(10),
        Err(DeleteRecordsError::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.delete_records(2).unwrap(), 4, "never moves backwards");
    assert_eq!(
        log.collect_expired_segments(0).len(),
        3,
        "segment [0,3) is wholly below"
    );
    let (reopened, _) =
        PartitionLog::open(tmp.path().join("t-0"), "t", 0, TopicConfig::default()).unwrap();
    assert_eq!(reopened.watermarks().log_start_offset, 4);
    assert_eq!(log.delete_records(-1).unwrap(), 9);
}
