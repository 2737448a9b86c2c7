//! Tests of the replica side of a partition on a real glommio executor and real segment
//! files: a leader stamping its epoch, a follower appending the leader's bytes as they are,
//! truncation of a diverged tail (also across segments and after a restart), starting over
//! at a leader's log start, and the high watermark that consumers read up to.

use std::path::Path;
use std::rc::Rc;

use super::flush_tests::produced;
use super::*;
use crate::config::TopicConfig;
use crate::protocol::record_batch::BatchView;

/// A config whose every append after the first rolls the segment.
fn rolling() -> TopicConfig {
    TopicConfig {
        segment_bytes: 1,
        ..TopicConfig::default()
    }
}

async fn open(dir: &Path, config: TopicConfig) -> Rc<Partition> {
    let (log, _) = PartitionLog::open(dir.to_path_buf(), "t", 0, config).expect("open");
    Partition::activate(
        log,
        crate::storage::direct::SegmentIo::PageCache { writeback_bytes: 0 },
    )
    .await
    .expect("activate")
}

async fn append(p: &Rc<Partition>, records: i32) {
    p.append(produced(records), 0, FlushWait::Background)
        .await
        .expect("append");
}

/// Writes what the log's checkpoint files lack, as the shard does every few seconds.
fn checkpoint(log: &mut PartitionLog) {
    if let Some(job) = log.checkpoint_job() {
        job.write().expect("checkpoint");
        log.checkpointed(job);
    }
}

fn all_bytes(p: &Partition, from: i64) -> Vec<u8> {
    p.with_log(|log| log.read_bytes(from, 1 << 20).expect("read"))
        .unwrap_or_default()
}

fn epochs_of(bytes: &[u8]) -> Vec<(i64, i32)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let view = BatchView::parse(rest).expect("batch");
        out.push((view.base_offset(), view.partition_leader_epoch()));
        rest = &rest[view.total_size()..];
    }
    out
}

#[test]
fn a_follower_appends_the_leaders_batches_byte_for_byte() {
    glommio::LocalExecutor::default().run(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let leader = open(&tmp.path().join("leader/t-0"), TopicConfig::default()).await;
        leader.set_leader_epoch(3);
        append(&leader, 3).await;
        append(&leader, 2).await;
        let bytes = all_bytes(&leader, 0);
        assert_eq!(epochs_of(&bytes), vec![(0, 3), (3, 3)]);

        let follower = open(&tmp.path().join("follower/t-0"), TopicConfig::default()).await;
        // A fetch answer cut inside the second batch: only the first is taken.
        let first_len = BatchView::parse(&bytes).unwrap().total_size();
        let info = follower
            .append_replicated(&bytes[..first_len + 20], 0)
            .await
            .expect("append")
            .expect("one whole batch");
        assert_eq!((info.base_offset, info.last_offset), (0, 2));
        // Nothing whole at all: nothing appended.
        assert!(
            follower
                .append_replicated(&bytes[first_len..first_len + 20], 0)
                .await
                .unwrap()
                .is_none()
        );
        follower
            .append_replicated(&bytes[first_len..], 0)
            .await
            .expect("rest");
        assert_eq!(all_bytes(&follower, 0), bytes);
        follower.with_log(|log| {
            assert_eq!(log.log_end_offset(), 5);
            assert_eq!(log.latest_epoch(), Some(3));
            assert_eq!(log.epoch_end_offset(3), (3, 5));
        });
        // The same batches again do not follow the log end.
        let again = follower.append_replicated(&bytes, 0).await;
        assert!(matches!(
            again,
            Err(AppendError::OffsetMismatch {
                base_offset: 0,
                log_end: 5
            })
        ));
    });
}

#[test]
fn truncation_cuts_a_diverged_tail_across_segments_and_survives_a_restart() {
    glommio::LocalExecutor::default().run(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("t-0");
        let rolling = rolling();
        let p = open(&dir, rolling.clone()).await;
        p.set_leader_epoch(1);
        for _ in 0..3 {
            append(&p, 3).await; // offsets 0..9, one segment each
        }
        p.set_leader_epoch(2);
        append(&p, 2).await; // 9..11
        append(&p, 2).await; // 11..13
        assert_eq!(p.with_log(|log| log.segment_count()), 5);
        assert_eq!(p.with_log(|log| log.epoch_end_offset(1)), (1, 9));

        // Inside a batch: the whole batch goes.
        p.truncate_to(7).await.expect("truncate");
        p.with_log(|log| {
            assert_eq!(log.log_end_offset(), 6);
            assert_eq!(log.latest_epoch(), Some(1));
            assert_eq!(log.epoch_end_offset(1), (1, 6));
            assert_eq!(log.segment_count(), 3, "the segment holding 6 stays, empty");
        });
        // Appends go on from the new end, and a restart sees the same log.
        p.set_leader_epoch(4);
        append(&p, 1).await;
        p.close().await.expect("close");
        drop(p);
        let p = open(&dir, rolling).await;
        p.with_log(|log| {
            assert_eq!(log.log_end_offset(), 7);
            assert_eq!(log.leader_epochs().entries(), &[(1, 0), (4, 6)]);
        });
        assert_eq!(epochs_of(&all_bytes(&p, 6)), vec![(6, 4)]);
        // Truncating at or past the end changes nothing.
        p.truncate_to(7).await.expect("no-op");
        assert_eq!(p.with_log(|log| log.log_end_offset()), 7);
        // Except an epoch noted as leader but never written with: a cut at the log end
        // drops it, so the next fetch names the epoch that wrote the last batch.
        p.set_leader_epoch(6);
        assert_eq!(p.with_log(|log| log.latest_epoch()), Some(6));
        p.truncate_to(7).await.expect("no-op cut");
        p.with_log(|log| {
            assert_eq!(log.log_end_offset(), 7);
            assert_eq!(log.leader_epochs().entries(), &[(1, 0), (4, 6)]);
        });
    });
}

#[test]
fn a_follower_below_the_leaders_log_start_starts_over_there() {
    glommio::LocalExecutor::default().run(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("t-0");
        let p = open(&dir, TopicConfig::default()).await;
        append(&p, 3).await;
        p.truncate_fully_and_start_at(100)
            .await
            .expect("start over");
        p.with_log(|log| {
            let marks = log.watermarks();
            assert_eq!((marks.log_start_offset, marks.log_end_offset), (100, 100));
        });
        let leader = open(&tmp.path().join("leader/t-0"), TopicConfig::default()).await;
        leader.set_leader_epoch(0);
        append(&leader, 2).await;
        let mut bytes = all_bytes(&leader, 0);
        record_batch::set_base_offset(&mut bytes, 100);
        p.append_replicated(&bytes, 0)
            .await
            .expect("append")
            .expect("a batch");
        p.close().await.expect("close");
        drop(p);
        let p = open(&dir, TopicConfig::default()).await;
        let marks = p.watermarks();
        assert_eq!((marks.log_start_offset, marks.log_end_offset), (100, 102));
    });
}

#[test]
fn consumers_read_up_to_the_high_watermark() {
    glommio::LocalExecutor::default().run(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let p = open(&tmp.path().join("t-0"), TopicConfig::default()).await;
        append(&p, 2).await;
        p.with_log_mut(|log| log.set_hw_follows_leo(false));
        append(&p, 3).await; // 2..5, not committed yet
        p.with_log_mut(|log| {
            assert_eq!(log.watermarks().high_watermark, 2);
            assert_eq!(log.watermarks().log_end_offset, 5);
            let first = log.read(0, 1 << 20).unwrap().expect("data");
            let committed = log.read_upto(0, 1 << 20, 2).unwrap().expect("committed");
            assert!(
                committed.len < first.len,
                "the uncommitted batch is cut off"
            );
            assert!(
                log.read_upto(2, 1 << 20, 2).unwrap().is_none(),
                "ahead of the HW: empty"
            );
            assert!(
                log.read_committed(2, 1 << 20).unwrap().is_none(),
                "LSO <= HW"
            );
            assert!(!log.set_high_watermark(1), "never backwards");
            assert!(log.set_high_watermark(9), "clamped to the log end");
            assert_eq!(log.high_watermark(), 5);
            log.reset_high_watermark(0);
            assert_eq!(log.high_watermark(), 0);
        });
    });
}

#[test]
fn retention_and_deletes_stop_at_the_high_watermark_and_followers_take_the_leaders_start() {
    glommio::LocalExecutor::default().run(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let rolling = TopicConfig {
            retention_bytes: 0,
            ..rolling()
        };
        let p = open(&tmp.path().join("t-0"), rolling).await;
        for _ in 0..3 {
            append(&p, 3).await; // segments at 0, 3 and 6 (active)
        }
        p.with_log_mut(|log| {
            log.set_hw_follows_leo(false);
            log.reset_high_watermark(4);
            // Size retention wants every closed segment gone; only [0, 3) is below the HW.
            assert_eq!(
                log.collect_expired_segments(0).len(),
                3,
                "one segment's files"
            );
            assert_eq!(log.watermarks().log_start_offset, 3);
            assert!(log.delete_records(5).is_err(), "above the high watermark");
            assert_eq!(log.delete_records(-1).expect("to the HW"), 4);
            log.follow_log_start(7).expect("leader's start");
            assert_eq!(log.watermarks().log_start_offset, 7);
            log.follow_log_start(100).expect("capped at the log end");
            assert_eq!(log.watermarks().log_start_offset, 9);
        });
    });
}

#[test]
fn a_replicated_partition_checkpoints_its_high_watermark_for_the_next_start() {
    glommio::LocalExecutor::default().run(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("t-0");
        let p = open(&dir, TopicConfig::default()).await;
        append(&p, 5).await;
        p.with_log_mut(|log| {
            assert_eq!(log.checkpointed_high_watermark(), None);
            assert!(
                log.checkpoint_job().is_none_or(|j| j.write().is_ok()),
                "nothing but epochs to write on one node"
            );
            log.set_hw_follows_leo(false);
            log.reset_high_watermark(3);
            checkpoint(log);
        });
        p.close().await.expect("close");
        drop(p);
        let p = open(&dir, TopicConfig::default()).await;
        assert_eq!(p.with_log(|log| log.checkpointed_high_watermark()), Some(3));
    });
}

#[test]
fn a_producer_whose_last_batch_is_in_an_older_segment_is_still_known_after_a_restart() {
    use crate::protocol::record_batch::BatchBuilder;
    use crate::protocol::records::{Record, encode_record};
    let idempotent = || {
        let mut section = Vec::new();
        let record = Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: 0,
            key: None,
            value: Some(vec![1; 16]),
            headers: Vec::new(),
        };
        encode_record(&mut section, &record);
        let batch = BatchBuilder {
            last_offset_delta: 0,
            record_count: 1,
            producer_id: 7,
            producer_epoch: 0,
            base_sequence: 0,
            ..Default::default()
        }
        .build(&section);
        crate::storage::validate::validate_batches(&batch, 1 << 20).expect("valid")
    };
    glommio::LocalExecutor::default().run(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("t-0");
        let rolling = rolling();
        let p = open(&dir, rolling.clone()).await;
        let first = p
            .append(idempotent(), 0, FlushWait::Background)
            .await
            .expect("append");
        append(&p, 2).await; // rolls: the producer's batch is now in a closed segment
        append(&p, 2).await;
        p.close().await.expect("close");
        drop(p);
        let p = open(&dir, rolling).await;
        // The retried batch is recognised as a duplicate, not written again.
        let retry = p
            .append(idempotent(), 0, FlushWait::Background)
            .await
            .expect("retry");
        assert_eq!(retry.base_offset, first.base_offset);
        assert_eq!(p.with_log(|log| log.log_end_offset()), 5);
    });
}

#[test]
fn the_leader_epoch_checkpoint_is_kafkas_file_and_follows_the_headers() {
    glommio::LocalExecutor::default().run(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("t-0");
        let p = open(&dir, TopicConfig::default()).await;
        p.set_leader_epoch(2);
        append(&p, 3).await;
        p.set_leader_epoch(5);
        append(&p, 2).await;
        p.with_log_mut(checkpoint);
        let text = std::fs::read_to_string(dir.join("leader-epoch-checkpoint")).expect("file");
        assert_eq!(text, "0\n2\n2 0\n5 3\n");
        // A file that disagrees is only a warning: the headers give the epochs.
        std::fs::write(dir.join("leader-epoch-checkpoint"), "0\n1\n7 0\n").expect("write");
        p.close().await.expect("close");
        drop(p);
        let p = open(&dir, TopicConfig::default()).await;
        assert_eq!(
            p.with_log(|log| log.leader_epochs().entries().to_vec()),
            vec![(2, 0), (5, 3)]
        );
        p.with_log_mut(checkpoint);
        let text = std::fs::read_to_string(dir.join("leader-epoch-checkpoint")).expect("file");
        assert_eq!(text, "0\n2\n2 0\n5 3\n");
    });
}
