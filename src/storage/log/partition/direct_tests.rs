//! The O_DIRECT log mode (`sluice.log.io=direct`) on a real glommio executor and real segment
//! files: fetch ranges served from the tail cache equal what is on disk, closed segments end
//! at their last batch, a crash's zero padding is cut at recovery, and truncation and cache
//! eviction fall back to the file.

use std::path::Path;
use std::rc::Rc;

use super::flush_tests::produced;
use super::*;
use crate::config::TopicConfig;
use crate::storage::direct::{SegmentIo, TailCache};

async fn open_direct(dir: &Path, config: TopicConfig, cache_bytes: u64) -> Rc<Partition> {
    let (log, _) = PartitionLog::open(dir.to_path_buf(), "t", 0, config).expect("open");
    let io = SegmentIo::Direct(Rc::new(TailCache::new(cache_bytes)));
    Partition::activate(log, io).await.expect("activate")
}

async fn append(p: &Rc<Partition>, records: i32) {
    p.append(produced(records), 0, FlushWait::Background)
        .await
        .expect("append");
}

/// What a fetch from `offset` would send, and whether it came from the tail cache.
fn fetch(p: &Partition, offset: i64) -> (Vec<u8>, bool) {
    p.with_log(|log| {
        let region = log.read(offset, 1 << 20).expect("read").expect("data");
        let from_cache = region.cached.is_some();
        (
            log.read_bytes(offset, 1 << 20).unwrap().unwrap(),
            from_cache,
        )
    })
}

/// Every `.log` file's length and the log's own size for it.
fn segment_files(dir: &Path) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, e.metadata().unwrap().len())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn fetches_come_from_the_cache_and_match_the_disk_after_a_clean_close() {
    glommio::LocalExecutor::default().run(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("t-0");
        let p = open_direct(&dir, TopicConfig::default(), 1 << 20).await;
        for n in [1, 3, 70, 2] {
            append(&p, n).await;
        }
        let (from_memory, cached) = fetch(&p, 0);
        assert!(cached, "the newest data is served from the tail cache");
        let size = p.with_log(|log| log.active().size());
        assert_eq!(from_memory.len() as u64, size);
        p.close().await.expect("close");
        assert_eq!(segment_files(&dir), vec![(format!("{:020}.log", 0), size)]);
        drop(p);
        let again = open_direct(&dir, TopicConfig::default(), 1 << 20).await;
        let (from_disk, cached) = fetch(&again, 0);
        assert!(!cached, "nothing appended since the restart");
        assert_eq!(from_disk, from_memory);
        append(&again, 5).await;
        assert_eq!(again.with_log(|log| log.next_offset), 81);
        let (all, _) = fetch(&again, 0);
        assert_eq!(&all[..from_memory.len()], &from_memory[..]);
    });
}

#[test]
fn rolled_segments_end_at_their_last_batch() {
    glommio::LocalExecutor::default().run(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("t-0");
        let config = TopicConfig {
            segment_bytes: 1,
            ..TopicConfig::default()
        };
        let p = open_direct(&dir, config.clone(), 1 << 20).await;
        for _ in 0..4 {
            append(&p, 3).await;
        }
        p.flush_through(12).await.expect("flush");
        let files = segment_files(&dir);
        assert_eq!(files.len(), 4, "{files:?}");
        let closed: Vec<u64> = files[..3].iter().map(|(_, len)| *len).collect();
        assert!(
            closed
                .iter()
                .all(|len| *len == closed[0] && len % 4096 != 0)
        );
        for offset in [0, 3, 6, 9] {
            let (bytes, cached) = fetch(&p, offset);
            assert!(cached, "rolled segments stay in the cache");
            assert_eq!(bytes.len() as u64, closed[0]);
        }
    });
}

#[test]
fn a_crash_leaves_padding_that_recovery_cuts() {
    glommio::LocalExecutor::default().run(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("t-0");
        let p = open_direct(&dir, TopicConfig::default(), 1 << 20).await;
        append(&p, 2).await;
        append(&p, 2).await;
        let size = p.with_log(|log| log.active().size());
        let (before, _) = fetch(&p, 0);
        // No close: what a kill -9 leaves (the writes are on the device, the padding too).
        drop(p);
        let on_disk = segment_files(&dir)[0].1;
        assert_eq!(on_disk, size.div_ceil(4096) * 4096, "padded to the block");
        let (log, report) =
            PartitionLog::open(dir.clone(), "t", 0, TopicConfig::default()).expect("open");
        assert_eq!(report.truncated_bytes, on_disk - size);
        assert_eq!(log.next_offset, 4);
        assert_eq!(log.read_bytes(0, 1 << 20).unwrap().unwrap(), before);
    });
}

#[test]
fn truncation_and_eviction_fall_back_to_the_file() {
    glommio::LocalExecutor::default().run(async {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("t-0");
        let p = open_direct(&dir, TopicConfig::default(), 4096).await;
        for _ in 0..10 {
            append(&p, 10).await;
        }
        let (first, cached) = fetch(&p, 0);
        assert!(!cached, "the oldest appends were evicted");
        p.truncate_to(55).await.expect("truncate");
        assert_eq!(
            p.with_log(|log| log.next_offset),
            50,
            "cut at the batch holding 55"
        );
        // The partial block is read back from the file for the next append.
        append(&p, 10).await;
        append(&p, 10).await;
        let (after, _) = fetch(&p, 0);
        assert_eq!(p.with_log(|log| log.next_offset), 70);
        let batch = first.len() / 10;
        assert_eq!(&after[..5 * batch], &first[..5 * batch]);
        let (tail, cached) = fetch(&p, 60);
        assert!(cached);
        assert_eq!(&tail[..], &after[6 * batch..]);
        p.close().await.expect("close");
        drop(p);
        let (log, report) =
            PartitionLog::open(dir.clone(), "t", 0, TopicConfig::default()).expect("open");
        assert_eq!(report.truncated_bytes, 0, "a clean close leaves no padding");
        assert_eq!(log.read_bytes(0, 1 << 20).unwrap().unwrap(), after);
    });
}
