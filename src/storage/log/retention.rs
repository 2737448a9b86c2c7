//! What removes data from a partition log: time and size retention of closed segments, the
//! log start offset moved by DeleteRecords, and the hand-off of closed segments to the
//! compacting cleaner (planned here, run on the blocking pool, finished here). Runs on the
//! partition's shard; only the cleaner's copy work leaves it.

use std::io;
use std::path::PathBuf;

use super::PartitionLog;
use super::checkpoints::{CLEANER_CHECKPOINT, write_log_start_checkpoint, write_offset_file};
use crate::storage::cleaner::{CleanJob, CleanOutcome};
use crate::storage::segment::Segment;

/// Why DeleteRecords was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeleteRecordsError {
    /// The offset is negative (other than -1, the high watermark) or above the high watermark;
    /// OFFSET_OUT_OF_RANGE.
    #[error("offset {offset} is above the high watermark {high_watermark}")]
    OffsetOutOfRange {
        /// The offset DeleteRecords asked for.
        offset: i64,
        /// The partition's high watermark at the time.
        high_watermark: i64,
    },
    /// Writing the log start offset checkpoint failed; KAFKA_STORAGE_ERROR.
    #[error("storage error: {0}")]
    Storage(#[from] io::Error),
}

impl PartitionLog {
    /// Removes closed segments that retention (time or size, whichever hits first) or the log
    /// start offset no longer needs, and returns their file paths for deletion off the shard.
    pub fn collect_expired_segments(&mut self, now_ms: i64) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        if self.cleaning {
            return removed; // the cleaner owns the closed segments until it finishes
        }
        while self.segments.len() > 1 {
            let (base, first) = self.segments.iter().next().expect("len > 1");
            let next_base = first.next_offset();
            let below_start = next_base <= self.log_start_offset;
            let by_time = self.config.delete
                && self.config.retention_ms >= 0
                && first.max_timestamp() >= 0
                && now_ms - first.max_timestamp() > self.config.retention_ms;
            let by_size = self.config.delete
                && self.config.retention_bytes >= 0
                && self.size_bytes() - first.size() >= self.config.retention_bytes as u64;
            if !(below_start || by_time || by_size) {
                break;
            }
            if next_base > self.high_watermark() {
                break; // never delete what a replica may still need to serve or fetch
            }
            let base = *base;
            let segment = self.segments.remove(&base).expect("key was just read");
            let paths = segment.paths();
            removed.extend([
                paths.log.clone(),
                paths.index.clone(),
                paths.time_index.clone(),
            ]);
            // Only segments that ever held an ABORT have a `.txnindex`.
            if paths.txn_index.exists() {
                removed.push(paths.txn_index.clone());
            }
            self.log_start_offset = self.log_start_offset.max(next_base);
        }
        self.txns.prune_below(self.log_start_offset);
        if !removed.is_empty()
            && let Err(e) = write_log_start_checkpoint(&self.dir, self.log_start_offset)
        {
            tracing::warn!(topic = %self.topic, partition = self.partition, error = %e, "cannot checkpoint log start offset");
        }
        removed
    }

    /// Decides whether compaction should run now and on which closed segments: those older
    /// than `min.compaction.lag.ms`, when the share of not-yet-compacted bytes among them
    /// reaches `min.cleanable.dirty.ratio`. Marks the log as cleaning.
    pub fn plan_clean(&mut self, now_ms: i64) -> Option<CleanJob> {
        if !self.config.compact || self.cleaning || self.segments.len() < 2 {
            return None;
        }
        let lag = self.config.min_compaction_lag_ms;
        let closed = self.segments.values().take(self.segments.len() - 1);
        // Only below the high watermark: what replicas have not all taken yet stays as written.
        let hw = self.high_watermark();
        let cleanable: Vec<&Segment> = closed
            .take_while(|s| lag == 0 || now_ms - s.max_timestamp() >= lag)
            .take_while(|s| s.next_offset() <= hw)
            .collect();
        let total: u64 = cleanable.iter().map(|s| s.size()).sum();
        let dirty_segments = || {
            cleanable
                .iter()
                .filter(|s| s.next_offset() > self.cleaner_checkpoint)
        };
        let dirty: u64 = dirty_segments().map(|s| s.size()).sum();
        // KIP-354: a dirty segment whose records are all older than max.compaction.lag.ms
        // makes the log due whatever its dirty ratio.
        let max_lag = self.config.max_compaction_lag_ms;
        let overdue = dirty_segments().any(|s| now_ms.saturating_sub(s.max_timestamp()) >= max_lag);
        let ratio_met = (dirty as f64) >= self.config.min_cleanable_dirty_ratio * total as f64;
        if total == 0 || !(ratio_met || overdue) {
            return None;
        }
        self.cleaning = true;
        Some(CleanJob {
            dir: self.dir.clone(),
            segments: cleanable.iter().map(|s| s.base_offset).collect(),
            tombstone_horizon_ms: now_ms.saturating_sub(self.config.delete_retention_ms),
            index_interval_bytes: self.config.index_interval_bytes,
        })
    }

    /// Swaps the rewritten segments in after a clean (or just clears the flag on failure).
    pub fn finish_clean(
        &mut self,
        job: &CleanJob,
        outcome: Option<&CleanOutcome>,
    ) -> io::Result<()> {
        self.cleaning = false;
        let Some(outcome) = outcome else {
            return Ok(());
        };
        for base in &outcome.rewritten {
            let Some(old) = self.segments.get(base) else {
                continue;
            };
            let next = old.next_offset();
            let mut fresh = Segment::open(&self.dir, *base)?;
            fresh.set_next_offset(next);
            self.segments.insert(*base, fresh);
        }
        if let Some(last) = job.segments.last().and_then(|b| self.segments.get(b)) {
            self.cleaner_checkpoint = last.next_offset();
            write_offset_file(&self.dir, CLEANER_CHECKPOINT, self.cleaner_checkpoint)?;
        }
        Ok(())
    }

    /// DeleteRecords: moves the log start offset up to `offset` (-1 means the high watermark)
    /// and returns the new low watermark. Whole segments below it go at the next retention
    /// pass.
    pub fn delete_records(&mut self, offset: i64) -> Result<i64, DeleteRecordsError> {
        let hw = self.high_watermark();
        let target = if offset == -1 { hw } else { offset };
        if target < 0 || target > hw {
            return Err(DeleteRecordsError::OffsetOutOfRange {
                offset,
                high_watermark: hw,
            });
        }
        self.raise_log_start(target)?;
        Ok(self.log_start_offset)
    }

    /// A follower takes its leader's log start (DeleteRecords or retention there), as far as
    /// its own log reaches; whole segments below it go at the next retention pass.
    pub fn follow_log_start(&mut self, leader_log_start: i64) -> io::Result<()> {
        self.raise_log_start(leader_log_start.min(self.next_offset))
    }

    fn raise_log_start(&mut self, target: i64) -> io::Result<()> {
        if target > self.log_start_offset {
            write_log_start_checkpoint(&self.dir, target)?;
            self.log_start_offset = target;
        }
        Ok(())
    }
}
