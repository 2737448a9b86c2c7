//! Log compaction (`cleanup.policy=compact`): keeps the latest record per key in closed
//! segments, drops tombstones older than `delete.retention.ms`, preserves every retained
//! record's offset, and rewrites segments atomically. The file work of a clean runs on
//! glommio's blocking pool (it only touches closed segments, which appends never do); the
//! shard decides what to clean and swaps the rewritten segments in afterwards.
//!
//! Crash safety: a segment is rewritten to `<base>.log.cleaned`, synced, its old index files
//! are removed, and the new file is renamed over the old `.log` (atomic). A crash leaves
//! either the old log or the new one, each readable; missing index files are rebuilt at
//! start-up and stray `.cleaned` files are deleted.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::protocol::compression::compress;
use crate::protocol::record_batch::{BatchBuilder, BatchIter, BatchView};
use crate::protocol::records::{decode_records, encode_record};
use crate::storage::segment::{Segment, SegmentPaths};

/// Suffix of a segment being rewritten.
pub const CLEANED_SUFFIX: &str = ".cleaned";

/// What one clean should do; all plain data so it can move to a blocking thread.
#[derive(Debug, Clone)]
pub struct CleanJob {
    /// The partition directory holding the segments.
    pub dir: PathBuf,
    /// Base offsets of the closed segments to clean, oldest first.
    pub segments: Vec<i64>,
    /// Tombstones in batches whose max timestamp is below this are removed.
    pub tombstone_horizon_ms: i64,
    /// The topic's `index.interval.bytes`, for rebuilding the rewritten segments' indexes.
    pub index_interval_bytes: u64,
}

/// What a clean did, handed back to the shard, which swaps the rewritten segments in and logs
/// the counts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanOutcome {
    /// Segments whose file was replaced.
    pub rewritten: Vec<i64>,
    /// Bytes of the cleaned segments' `.log` files before the clean.
    pub bytes_before: u64,
    /// Bytes of the same segments after it (unchanged segments count their old size).
    pub bytes_after: u64,
    /// Records dropped: superseded by a later record with the same key, or expired tombstones.
    pub records_removed: u64,
}

/// Latest offset of every key in the segments being cleaned.
fn build_offset_map(segments: &[Vec<u8>]) -> HashMap<Vec<u8>, i64> {
    let mut latest = HashMap::new();
    for raw in segments {
        for view in BatchIter::new(raw, false).flatten() {
            if view.is_control() || view.is_transactional() {
                continue;
            }
            let Ok(records) = decode_records(&view) else {
                continue;
            };
            for r in records {
                if let Some(key) = r.key {
                    latest.insert(key, view.base_offset() + i64::from(r.offset_delta));
                }
            }
        }
    }
    latest
}

/// The batch with only the records that survive, or `None` if none does. Offsets,
/// timestamps, producer fields and codec are kept; the CRC is recomputed.
fn compact_batch(
    view: &BatchView<'_>,
    latest: &HashMap<Vec<u8>, i64>,
    horizon_ms: i64,
    removed: &mut u64,
) -> Option<Vec<u8>> {
    if view.is_control() || view.is_transactional() {
        return Some(view.bytes().to_vec());
    }
    let Ok(records) = decode_records(view) else {
        return Some(view.bytes().to_vec()); // unreadable records are kept, never guessed at
    };
    let total = records.len();
    let tombstones_expire = view.max_timestamp() < horizon_ms;
    let kept: Vec<_> = records
        .into_iter()
        .filter(|r| {
            let offset = view.base_offset() + i64::from(r.offset_delta);
            let newest = r
                .key
                .as_ref()
                .is_none_or(|k| latest.get(k) == Some(&offset));
            let expired_tombstone = r.value.is_none() && tombstones_expire;
            newest && !expired_tombstone
        })
        .collect();
    *removed += (total - kept.len()) as u64;
    if kept.len() == total {
        return Some(view.bytes().to_vec());
    }
    if kept.is_empty() {
        return None;
    }
    let mut section = Vec::new();
    kept.iter().for_each(|r| encode_record(&mut section, r));
    let codec = view.compression().ok()?;
    let builder = BatchBuilder {
        base_offset: view.base_offset(),
        attributes: view.attributes(),
        last_offset_delta: view.last_offset_delta(),
        base_timestamp: view.base_timestamp(),
        max_timestamp: view.max_timestamp(),
        producer_id: view.producer_id(),
        producer_epoch: view.producer_epoch(),
        base_sequence: view.base_sequence(),
        record_count: kept.len() as i32,
    };
    Some(builder.build(&compress(codec, &section)))
}

/// Runs a clean. Blocking file I/O: call it from a blocking thread.
pub fn run_clean(job: &CleanJob) -> io::Result<CleanOutcome> {
    let raws: Vec<Vec<u8>> = job
        .segments
        .iter()
        .map(|b| std::fs::read(SegmentPaths::new(&job.dir, *b).log))
        .collect::<io::Result<_>>()?;
    let latest = build_offset_map(&raws);
    let mut outcome = CleanOutcome::default();
    for (base, raw) in job.segments.iter().zip(&raws) {
        outcome.bytes_before += raw.len() as u64;
        let mut removed = 0u64;
        let mut cleaned = Vec::with_capacity(raw.len());
        for view in BatchIter::new(raw, false) {
            // A batch that does not parse ends the iteration: rewriting the segment then
            // would drop it and everything after it. Refuse the clean; the log stays as is.
            let view = view.map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("segment {base}: unreadable batch, not cleaned: {e}"),
                )
            })?;
            if let Some(bytes) =
                compact_batch(&view, &latest, job.tombstone_horizon_ms, &mut removed)
            {
                cleaned.extend_from_slice(&bytes);
            }
        }
        outcome.bytes_after += cleaned.len() as u64;
        if removed == 0 {
            continue;
        }
        outcome.records_removed += removed;
        replace_segment(&job.dir, *base, &cleaned, job.index_interval_bytes)?;
        outcome.rewritten.push(*base);
    }
    Ok(outcome)
}

/// Swaps a segment's log for `cleaned` in the crash-safe order described above, then
/// rebuilds its indexes.
fn replace_segment(
    dir: &Path,
    base: i64,
    cleaned: &[u8],
    index_interval_bytes: u64,
) -> io::Result<()> {
    let paths = SegmentPaths::new(dir, base);
    let tmp = PathBuf::from(format!("{}{CLEANED_SUFFIX}", paths.log.display()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(cleaned)?;
    f.sync_data()?;
    for index in [&paths.index, &paths.time_index] {
        match std::fs::remove_file(index) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(&tmp, &paths.log)?;
    std::fs::File::open(dir)?.sync_all()?;
    let mut segment = Segment::open(dir, base)?;
    segment.recover(index_interval_bytes)?;
    Ok(())
}

/// Deletes `.cleaned` files a crash left behind (the old segment is still in place).
pub fn remove_stray_cleaned_files(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.to_string_lossy().ends_with(CLEANED_SUFFIX) {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::record_batch::set_base_offset;
    use crate::protocol::records::Record;

    fn record(key: &str, value: Option<&str>, delta: i32) -> Record {
        Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: delta,
            key: Some(key.as_bytes().to_vec()),
            value: value.map(|v| v.as_bytes().to_vec()),
            headers: vec![],
        }
    }

    fn batch(base: i64, records: &[Record], attr: i16, ts: i64) -> Vec<u8> {
        let mut section = Vec::new();
        records.iter().for_each(|r| encode_record(&mut section, r));
        let codec = crate::protocol::record_batch::Compression::from_attributes(attr).unwrap();
        let mut b = BatchBuilder {
            attributes: attr,
            last_offset_delta: records.len() as i32 - 1,
            record_count: records.len() as i32,
            base_timestamp: ts,
            max_timestamp: ts,
            ..Default::default()
        }
        .build(&compress(codec, &section));
        set_base_offset(&mut b, base);
        b
    }

    fn all_records(dir: &Path, base: i64) -> Vec<(i64, String, Option<String>)> {
        let raw = std::fs::read(SegmentPaths::new(dir, base).log).unwrap();
        let mut out = Vec::new();
        for view in BatchIter::new(&raw, true) {
            let view = view.expect("cleaned segments stay valid RecordBatch v2");
            for r in decode_records(&view).unwrap() {
                let s = |b: Option<Vec<u8>>| b.map(|b| String::from_utf8(b).unwrap());
                out.push((
                    view.base_offset() + i64::from(r.offset_delta),
                    s(r.key).unwrap(),
                    s(r.value),
                ));
            }
        }
        out
    }

    #[test]
    fn keeps_the_latest_value_per_key_with_offsets_and_drops_old_tombstones() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        // Segment 0: a=1, b=1, c=1 (gzip). Segment 3: a=2, c=tombstone (old), b tombstone (new).
        let seg0 = batch(
            0,
            &[
                record("a", Some("1"), 0),
                record("b", Some("1"), 1),
                record("c", Some("1"), 2),
            ],
            1,
            100,
        );
        std::fs::write(SegmentPaths::new(dir, 0).log, &seg0).unwrap();
        let mut seg3 = batch(
            3,
            &[record("a", Some("2"), 0), record("c", None, 1)],
            0,
            100,
        );
        seg3.extend_from_slice(&batch(5, &[record("b", None, 0)], 0, 10_000));
        std::fs::write(SegmentPaths::new(dir, 3).log, &seg3).unwrap();
        let job = CleanJob {
            dir: dir.to_path_buf(),
            segments: vec![0, 3],
            tombstone_horizon_ms: 5_000,
            index_interval_bytes: 1,
        };
        let outcome = run_clean(&job).unwrap();
        assert_eq!(outcome.rewritten, vec![0, 3]);
        assert_eq!(outcome.records_removed, 4);
        assert!(all_records(dir, 0).is_empty());
        assert_eq!(
            all_records(dir, 3),
            vec![(3, "a".into(), Some("2".into())), (5, "b".into(), None)],
            "offsets are preserved; the recent tombstone stays, the old one goes"
        );
        assert!(
            SegmentPaths::new(dir, 3).index.exists(),
            "indexes are rebuilt"
        );
        let unchanged = run_clean(&job).unwrap();
        assert!(unchanged.rewritten.is_empty(), "a clean log is left alone");
    }

    #[test]
    fn a_segment_with_an_unreadable_batch_is_not_rewritten() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mut seg = batch(
            0,
            &[record("a", Some("1"), 0), record("a", Some("2"), 1)],
            0,
            100,
        );
        let good = seg.len();
        seg.extend_from_slice(&[0xff; 64]);
        seg.extend_from_slice(&batch(2, &[record("b", Some("1"), 0)], 0, 100));
        std::fs::write(SegmentPaths::new(dir, 0).log, &seg).unwrap();
        let job = CleanJob {
            dir: dir.to_path_buf(),
            segments: vec![0],
            tombstone_horizon_ms: 0,
            index_interval_bytes: 1,
        };
        let err = run_clean(&job).expect_err("an unreadable batch refuses the clean");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let on_disk = std::fs::read(SegmentPaths::new(dir, 0).log).unwrap();
        assert_eq!(on_disk, seg, "the segment is untouched");
        assert!(on_disk.len() > good);
    }

    #[test]
    fn stray_cleaned_files_are_removed_and_the_old_segment_stays() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let seg = batch(0, &[record("a", Some("1"), 0)], 0, 1);
        std::fs::write(SegmentPaths::new(dir, 0).log, &seg).unwrap();
        std::fs::write(
            dir.join(format!("{:020}.log{CLEANED_SUFFIX}", 0)),
            b"half-written",
        )
        .unwrap();
        remove_stray_cleaned_files(dir).unwrap();
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), 1);
        assert_eq!(all_records(dir, 0).len(), 1);
    }
}
