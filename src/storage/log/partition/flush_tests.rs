//! Tests of a partition's append path on a real glommio executor and real segment files:
//! acks=all flushes that race with segment rolls, and the append-path invariants.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::*;
use std::path::Path;

use crate::config::TopicConfig;
use crate::protocol::record_batch::BatchBuilder;
use crate::protocol::records::{Record, encode_record};
use crate::storage::validate::validate_batches;

/// One valid batch of `records` records, as a produce hands it to the log (also used by
/// `replica_tests`).
pub(super) fn produced(records: i32) -> ValidatedBatches {
    let mut section = Vec::new();
    for i in 0..records {
        let record = Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: i,
            key: None,
            value: Some(vec![9; 64]),
            headers: Vec::new(),
        };
        encode_record(&mut section, &record);
    }
    let batch = BatchBuilder {
        last_offset_delta: records - 1,
        record_count: records,
        ..Default::default()
    }
    .build(&section);
    validate_batches(&batch, 1 << 20).expect("a well-formed batch")
}

/// A partition whose every append after the first rolls the segment (`segment.bytes` 1)
/// and whose flush policy asks for an fdatasync after every message.
async fn rolling_partition(dir: &Path) -> Rc<Partition> {
    let config = TopicConfig {
        segment_bytes: 1,
        ..TopicConfig::default()
    };
    let (log, _) = PartitionLog::open(dir.join("t-0"), "t", 0, config).expect("open");
    Partition::activate(
        log,
        crate::storage::direct::SegmentIo::PageCache { writeback_bytes: 0 },
    )
    .await
    .expect("activate")
}

/// Waits (polling on the executor's timer) until `ready` holds; panics after 10 s.
async fn until(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}

/// Issue 11, defect 5: an acks=all caller waiting behind another caller's fdatasync must
/// not report its offset durable when a roll moved that offset into a retired segment whose
/// background flush is still running. The seam holds the rolled segment's flush open, so
/// the roll is forced to happen during the wait, every time.
#[test]
fn a_flush_waits_for_a_segment_rolled_while_it_waited_for_another_sync() {
    glommio::LocalExecutor::default().run(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let partition = rolling_partition(tmp.path()).await;
        let first = partition
            .append(produced(1), 0, FlushWait::Background)
            .await
            .expect("append");
        assert_eq!((first.base_offset, first.last_offset), (0, 0));

        // Another caller's fdatasync is in flight: this caller queues behind it.
        partition.sync_in_flight.set(true);
        let finished = Rc::new(Cell::new(false));
        let waiter = glommio::spawn_local({
            let (partition, finished) = (partition.clone(), finished.clone());
            async move {
                let result = partition.flush_through(first.last_offset + 1).await;
                finished.set(true);
                result
            }
        });
        until("the caller to wait for the other sync", || {
            partition.sync_done.has_waiters()
        })
        .await;

        // Meanwhile an append rolls the segment holding offset 0; its flush is held open.
        let gate = Rc::new(Event::default());
        partition.roll_flushes.seam.borrow_mut().gate = Some(gate.clone());
        let second = partition
            .append(produced(1), 0, FlushWait::Background)
            .await
            .expect("append");
        assert_eq!(second.base_offset, 1);
        assert_eq!(partition.log.borrow().segment_count(), 2, "rolled");
        assert_eq!(partition.roll_flushes.pending.get(), 1);

        // The other sync ends. The caller may now sync the new segment, but offset 0 is
        // durable only once the rolled segment's flush is done.
        partition.sync_in_flight.set(false);
        partition.sync_done.notify();
        until("the caller to finish or wait for the rolled flush", || {
            finished.get() || partition.roll_flushes.done.has_waiters()
        })
        .await;
        assert!(
            !finished.get(),
            "offset 0 reported durable while its rolled segment was still being flushed"
        );

        gate.notify();
        waiter
            .await
            .expect("the flush succeeds once the rolled segment is flushed");
        assert_eq!(partition.roll_flushes.pending.get(), 0);
        assert!(partition.synced_offset.get() >= 1);
    });
}

/// A rolled segment whose background flush fails fails the acks=all flushes that waited
/// for it (before, the failure was only logged and the offsets reported durable).
#[test]
fn a_failed_flush_of_a_rolled_segment_fails_the_flushes_waiting_for_it() {
    glommio::LocalExecutor::default().run(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let partition = rolling_partition(tmp.path()).await;
        let first = partition
            .append(produced(1), 0, FlushWait::Background)
            .await
            .expect("append");
        partition.sync_in_flight.set(true);
        let waiter = glommio::spawn_local({
            let partition = partition.clone();
            async move { partition.flush_through(first.last_offset + 1).await }
        });
        until("the caller to wait for the other sync", || {
            partition.sync_done.has_waiters()
        })
        .await;
        let gate = Rc::new(Event::default());
        {
            let mut seam = partition.roll_flushes.seam.borrow_mut();
            seam.gate = Some(gate.clone());
            seam.fail = true;
        }
        partition
            .append(produced(1), 0, FlushWait::Background)
            .await
            .expect("append that rolls");
        partition.sync_in_flight.set(false);
        partition.sync_done.notify();
        until("the caller to wait for the rolled flush", || {
            partition.roll_flushes.done.has_waiters()
        })
        .await;
        gate.notify();
        let result = waiter.await;
        assert!(
            result.is_err(),
            "offset 0 reported durable after its flush failed"
        );
        // Later appends live in the new segment; their flushes are not affected.
        *partition.roll_flushes.seam.borrow_mut() = RollFlushSeam::default();
        let third = partition
            .append(produced(1), 0, FlushWait::Background)
            .await
            .expect("append");
        partition
            .flush_through(third.last_offset + 1)
            .await
            .expect("a flush that no failed roll covers");
    });
}

/// The append path refuses, and leaves untouched, a batch that does not sit at the end of
/// the active segment or whose offsets do not follow the log end.
#[test]
fn broken_append_invariants_are_refused_without_changing_the_log() {
    glommio::LocalExecutor::default().run(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = TopicConfig::default();
        let (log, _) = PartitionLog::open(tmp.path().join("t-0"), "t", 0, config).unwrap();
        let partition = Partition::activate(
            log,
            crate::storage::direct::SegmentIo::PageCache { writeback_bytes: 0 },
        )
        .await
        .expect("activate");
        partition
            .append(produced(2), 0, FlushWait::Background)
            .await
            .expect("append");
        let size = partition.log.borrow().size_bytes();
        let mut meta = produced(1).batches;
        meta[0].base_offset = 2;

        // Written anywhere but at the segment's end.
        let result = partition.record_appended(&meta, size + 10, -1, 0);
        assert!(matches!(
            result,
            Err(AppendError::Invariant(AppendInvariant::NotAtTheEnd { position, size: s }))
                if position == size + 10 && s == size
        ));
        // Offsets that do not follow the log end (another append slipped in).
        meta[0].base_offset = 1;
        let result = partition.record_appended(&meta, size, -1, 0);
        assert!(matches!(
            result,
            Err(AppendError::Invariant(
                AppendInvariant::OffsetsBackwards { .. }
            ))
        ));
        {
            let log = partition.log.borrow();
            assert_eq!(log.watermarks().high_watermark, 2, "log end unchanged");
            assert_eq!(log.size_bytes(), size, "segment size unchanged");
        }

        // The log keeps taking appends at the right place.
        let next = partition
            .append(produced(1), 0, FlushWait::Background)
            .await
            .expect("append");
        assert_eq!(next.base_offset, 2);
        assert!(partition.log.borrow().size_bytes() > size);
    });
}

/// Index entries of the active segment reach the `.index` file through the ring a batch at
/// a time, never one `write(2)` per append, and every one of them is in the file after a
/// roll or a close.
#[test]
fn index_entries_reach_the_file_in_batches_and_all_by_close() {
    use crate::storage::segment::SegmentPaths;
    const ENTRY: u64 = 8;
    let batch = crate::storage::segment::IndexRing::TAIL_BATCH as u64;
    glommio::LocalExecutor::default().run(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let config = TopicConfig {
            index_interval_bytes: 1, // an index entry for every batch
            ..TopicConfig::default()
        };
        let dir = tmp.path().join("t-0");
        let (log, _) = PartitionLog::open(dir.clone(), "t", 0, config).unwrap();
        let partition = Partition::activate(
            log,
            crate::storage::direct::SegmentIo::PageCache { writeback_bytes: 0 },
        )
        .await
        .expect("activate");
        let index = SegmentPaths::new(&dir, 0).index;
        let file_len = || std::fs::metadata(&index).map(|m| m.len()).unwrap_or(0);
        for _ in 0..batch - 1 {
            partition
                .append(produced(1), 0, FlushWait::Background)
                .await
                .expect("append");
        }
        assert_eq!(file_len(), 0, "no entry is written before a batch gathers");
        partition
            .append(produced(1), 0, FlushWait::Background)
            .await
            .expect("append");
        until("the first batch of entries", || file_len() == batch * ENTRY).await;
        for _ in 0..3 {
            partition
                .append(produced(1), 0, FlushWait::Background)
                .await
                .expect("append");
        }
        assert_eq!(
            file_len(),
            batch * ENTRY,
            "the next batch is still gathering"
        );
        partition.close().await.expect("close");
        assert_eq!(file_len(), (batch + 3) * ENTRY, "close writes the rest");
    });
}
