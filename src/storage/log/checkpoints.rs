//! The small files beside a partition's segments: the log start offset (moved by DeleteRecords
//! and retention inside a segment), a replicated partition's high watermark and the cleaner's
//! checkpoint, each a decimal number written
//! atomically (temporary file, then rename). Runs on the partition's shard.

use std::io;
use std::path::Path;

/// Per-partition checkpoint of the log start offset, moved by DeleteRecords and retention
/// inside a segment; a plain decimal number, written atomically.
pub(super) const LOG_START_CHECKPOINT: &str = "log-start-offset";

/// Per-partition checkpoint of a replicated partition's high watermark (Kafka keeps these in
/// one `replication-offset-checkpoint` per log dir): a restarted replica starts from it
/// instead of the log start, so consumers never see the high watermark go back.
pub(super) const HIGH_WATERMARK_CHECKPOINT: &str = "high-watermark-checkpoint";

/// Per-partition leader epoch cache in Kafka's `leader-epoch-checkpoint` format (a version line
/// `0`, the entry count, then `epoch start-offset` lines), for operators and Kafka tools. The
/// batch headers stay the source of truth: the cache is rebuilt from them at open and the file
/// only checked against them.
pub(super) const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

/// Per-partition checkpoint of the first offset the cleaner has not compacted yet.
pub(super) const CLEANER_CHECKPOINT: &str = "cleaner-offset-checkpoint";

pub(super) fn read_offset_file(dir: &Path, name: &str) -> Option<i64> {
    std::fs::read_to_string(dir.join(name))
        .ok()?
        .trim()
        .parse()
        .ok()
}

pub(super) fn write_offset_file(dir: &Path, name: &str, offset: i64) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, offset.to_string())?;
    std::fs::rename(tmp, dir.join(name))
}

pub(super) fn read_log_start_checkpoint(dir: &Path) -> Option<i64> {
    read_offset_file(dir, LOG_START_CHECKPOINT)
}

pub(super) fn write_log_start_checkpoint(dir: &Path, offset: i64) -> io::Result<()> {
    write_offset_file(dir, LOG_START_CHECKPOINT, offset)
}

/// The entries of a `leader-epoch-checkpoint` file; `None` when it is missing or malformed.
pub(super) fn read_epoch_file(dir: &Path) -> Option<Vec<(i32, i64)>> {
    let text = std::fs::read_to_string(dir.join(LEADER_EPOCH_CHECKPOINT)).ok()?;
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let entries: Vec<(i32, i64)> = lines
        .map(|l| {
            let (e, o) = l.trim().split_once(' ')?;
            Some((e.parse().ok()?, o.parse().ok()?))
        })
        .collect::<Option<_>>()?;
    (entries.len() == count).then_some(entries)
}

/// Writes `entries` as a `leader-epoch-checkpoint` file, atomically (not synced: it is only
/// a view of the batch headers).
pub(super) fn write_epoch_file(dir: &Path, entries: &[(i32, i64)]) -> io::Result<()> {
    let mut text = format!("0\n{}\n", entries.len());
    for (epoch, start) in entries {
        text.push_str(&format!("{epoch} {start}\n"));
    }
    let tmp = dir.join(format!("{LEADER_EPOCH_CHECKPOINT}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, dir.join(LEADER_EPOCH_CHECKPOINT))
}
