//! Truncation of a follower's log (issue 14): cutting a tail that diverged from the new
//! leader's log (KIP-101/KIP-320), and starting over at the leader's log start when the
//! follower fell below it. Rare, so it takes the simple road: under the append permit the
//! active writer is closed, the files are cut or removed, and the log is opened again from
//! its directory, which rebuilds the indexes, producer and transaction state and the epoch
//! cache exactly as start-up does. Runs on the partition's shard; the file operations are
//! blocking (a few unlinks and one `ftruncate`), which a leader change can afford.

use std::io;
use std::rc::Rc;

use super::super::checkpoints::{
    CLEANER_CHECKPOINT, write_log_start_checkpoint, write_offset_file,
};
use super::{Partition, PartitionLog};
use crate::storage::segment::Segment;

impl Partition {
    /// Removes every record at or above `offset` (a whole batch when `offset` falls inside
    /// one). Below the log start it starts the log over at `offset`. Refused with
    /// `ResourceBusy` while the cleaner holds the closed segments: the caller retries.
    pub async fn truncate_to(self: &Rc<Self>, offset: i64) -> io::Result<()> {
        let _permit = self.acquire_append_permit().await?;
        self.wait_for_roll_flushes().await;
        let (start, end, cleaning) = {
            let log = self.log.borrow();
            (log.log_start_offset, log.next_offset, log.cleaning)
        };
        if offset >= end {
            // No record to cut, but an epoch this replica noted as a leader that never
            // wrote starts here: without it the next fetch names the epoch before it.
            self.log.borrow_mut().epochs.truncate_from(offset);
            return Ok(());
        }
        if cleaning {
            return Err(cleaner_busy());
        }
        self.close_active_writer().await?;
        let cut = if offset <= start {
            self.with_log_mut(|log| remove_all_segments(log, offset))
        } else {
            self.with_log_mut(|log| cut_segments(log, offset))
        };
        // Whatever the cut left on disk is what the log is now: open it either way.
        let reopened = self.reopen().await;
        cut.and(reopened)
    }

    /// Empties the log and starts it at `offset` (a follower below the leader's log start).
    pub async fn truncate_fully_and_start_at(self: &Rc<Self>, offset: i64) -> io::Result<()> {
        let _permit = self.acquire_append_permit().await?;
        self.wait_for_roll_flushes().await;
        if self.log.borrow().cleaning {
            return Err(cleaner_busy());
        }
        self.close_active_writer().await?;
        let cut = self.with_log_mut(|log| remove_all_segments(log, offset));
        let reopened = self.reopen().await;
        cut.and(reopened)
    }

    async fn close_active_writer(&self) -> io::Result<()> {
        let mut active = self.take_active_for_io();
        let result = active.detach_writer().await;
        self.put_back_active(active);
        result
    }

    /// Replaces the in-memory log by a fresh open of its directory and gives the new active
    /// segment its writer. The high watermark and its mode carry over (the watermark never
    /// above the new log end); the epoch cache is rebuilt from the batches that remain (only
    /// followers truncate, so no epoch without batches is lost).
    async fn reopen(&self) -> io::Result<()> {
        let fresh = {
            let old = self.log.borrow();
            let (mut fresh, _) = PartitionLog::open(
                old.dir.clone(),
                &old.topic,
                old.partition,
                old.config.clone(),
            )?;
            fresh.hw_follows_leo = old.hw_follows_leo;
            fresh.high_watermark = old.high_watermark.min(fresh.next_offset);
            fresh.last_flush_ms = old.last_flush_ms;
            tracing::warn!(topic = %old.topic, partition = old.partition, from = old.next_offset, to = fresh.next_offset, "log truncated");
            fresh
        };
        self.synced_offset
            .set(self.synced_offset.get().min(fresh.next_offset));
        *self.log.borrow_mut() = fresh;
        let mut active = self.take_active_for_io();
        let result = active.attach_writer(&self.io).await;
        self.put_back_active(active);
        result
    }
}

fn cleaner_busy() -> io::Error {
    io::Error::new(
        io::ErrorKind::ResourceBusy,
        "the cleaner holds the closed segments; truncate later",
    )
}

/// Deletes the segments that start at or above `offset` and cuts the one holding it at the
/// batch that contains `offset`. At least the first segment stays (`offset` is above the
/// log start).
fn cut_segments(log: &mut PartitionLog, offset: i64) -> io::Result<()> {
    let doomed: Vec<i64> = log.segments.range(offset..).map(|(b, _)| *b).collect();
    for base in doomed {
        if let Some(segment) = log.segments.remove(&base) {
            segment.delete_files()?;
        }
    }
    if let Some((_, segment)) = log.segments.range(..offset).next_back()
        && let Some(at) = segment.position_of(offset)?
    {
        segment.truncate_to(at.position)?;
    }
    if log.cleaner_checkpoint > offset {
        log.cleaner_checkpoint = offset;
        write_offset_file(&log.dir, CLEANER_CHECKPOINT, offset)?;
    }
    Ok(())
}

/// Deletes every segment and leaves one empty segment starting at `offset`, which becomes
/// the log start.
fn remove_all_segments(log: &mut PartitionLog, offset: i64) -> io::Result<()> {
    // The segments stay in the map until the reopen replaces the log: a failure here
    // must not leave a log without an active segment.
    for segment in log.segments.values() {
        segment.delete_files()?;
    }
    Segment::create(&log.dir, offset)?;
    write_log_start_checkpoint(&log.dir, offset)?;
    log.cleaner_checkpoint = offset;
    write_offset_file(&log.dir, CLEANER_CHECKPOINT, offset)
}
