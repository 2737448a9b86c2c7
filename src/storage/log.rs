//! The log of one partition: its segments, offsets (log start, log end = high watermark on a
//! single node), appends through the active segment's io_uring writer, segment rolls, reads
//! for fetch, timestamp lookups, and start-up recovery. Lives on the shard that owns the
//! partition; nothing here is shared across cores.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::config::{TimestampType, TopicConfig};
use crate::protocol::batch_validation::RecordsError;
use crate::protocol::record_batch::{self, BatchError};
use crate::shard::event::Event;
use crate::storage::cleaner::{CleanJob, CleanOutcome};
use crate::storage::producer_state::{ProducerStates, SequenceCheck, SequenceError};
use crate::storage::segment::{
    AppendInvariant, AppendedBatch, RecoveryReport, Segment, TimestampLookup,
};
use crate::storage::txn_index::{TxnBatch, TxnIndex};
use crate::storage::validate::BatchMeta;
pub use crate::storage::validate::{ValidatedBatches, marker_of, validate_batches};
use crate::storage::writeback::Writeback;

/// Why a produce could not be appended; each maps to one Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("corrupt batch: {0}")]
    Corrupt(#[from] BatchError),
    #[error("invalid records: {0}")]
    InvalidRecords(#[from] RecordsError),
    #[error("batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge { size: usize, max: usize },
    #[error("produce carried no record batch")]
    Empty,
    #[error("compacted topic cannot accept a record without a key")]
    MissingKey {
        /// Positions of the keyless records in the produce (Kafka's `batch_index`).
        record_indexes: Vec<i32>,
    },
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    #[error("storage error: {0}")]
    Storage(#[from] io::Error),
    /// A check of the append path failed (a bug, not bad input): the append is refused and
    /// reported instead of writing inconsistent offsets or indexes.
    #[error("append invariant broken: {0}")]
    Invariant(#[from] AppendInvariant),
}

/// Why a read could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("offset {offset} is outside [{start}, {end}]")]
    OutOfRange { offset: i64, start: i64, end: i64 },
    #[error("storage error: {0}")]
    Storage(#[from] io::Error),
}

/// Result of a successful append.
#[derive(Debug, Clone, Copy)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker's timestamp for LogAppendTime topics, else -1.
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
    /// The flush policy asks for an fdatasync covering this append.
    pub flush_due: bool,
}

/// A byte range of a segment file that a fetch will send.
pub struct ReadSlice {
    pub file: Rc<File>,
    pub position: u64,
    pub len: u64,
    /// The range lies in the active segment: the tail, almost surely in the page cache.
    pub is_tail: bool,
}

/// The offsets of a partition as ListOffsets and Fetch report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    pub log_start_offset: i64,
    pub high_watermark: i64,
}

pub struct PartitionLog {
    pub topic: String,
    pub partition: i32,
    dir: PathBuf,
    config: TopicConfig,
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    /// Offset of the next record; on one node this is also the high watermark.
    next_offset: i64,
    unflushed_messages: i64,
    last_flush_ms: i64,
    producers: ProducerStates,
    /// Open and aborted transactions, for the LSO and read_committed fetches.
    txns: TxnIndex,
    /// A clean of this log's closed segments is running on the blocking pool.
    cleaning: bool,
    /// Offsets below this were compacted by the last clean (Kafka's cleaner checkpoint).
    cleaner_checkpoint: i64,
}

/// Directory name of a partition: `<topic>-<partition>`, as Kafka lays it out.
pub fn partition_dir_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

fn segment_base_offsets(dir: &Path) -> io::Result<Vec<i64>> {
    let mut bases = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".log")
            && stem.len() == 20
            && let Ok(base) = stem.parse::<i64>()
        {
            bases.push(base);
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

impl PartitionLog {
    /// Opens (creating if needed) the partition directory and recovers the active segment.
    pub fn open(
        dir: PathBuf,
        topic: &str,
        partition: i32,
        config: TopicConfig,
    ) -> io::Result<(Self, RecoveryReport)> {
        std::fs::create_dir_all(&dir)?;
        crate::storage::cleaner::remove_stray_cleaned_files(&dir)?;
        let mut bases = segment_base_offsets(&dir)?;
        if bases.is_empty() {
            Segment::create(&dir, 0)?;
            bases.push(0);
        }
        let mut segments = BTreeMap::new();
        for (i, base) in bases.iter().enumerate() {
            let mut seg = Segment::open(&dir, *base)?;
            if let Some(next_base) = bases.get(i + 1) {
                if seg.index_is_missing() {
                    // A closed segment whose index files are gone (deleted by hand, or never
                    // written before a crash): rebuild them by scanning, as Kafka does.
                    seg.recover(config.index_interval_bytes)?;
                }
                seg.set_next_offset(*next_base);
            }
            segments.insert(*base, seg);
        }
        let active = segments
            .values_mut()
            .next_back()
            .expect("at least one segment exists");
        active.keep_files_open()?;
        let report = active.recover(config.index_interval_bytes)?;
        let next_offset = active.next_offset();
        let first_base = *bases.first().expect("at least one segment exists");
        let log_start_offset = read_log_start_checkpoint(&dir)
            .unwrap_or(first_base)
            .clamp(first_base, next_offset);
        let producers = active.producer_states()?;
        let mut txns = TxnIndex::default();
        for segment in segments.values() {
            segment.scan_transactions(&mut txns)?;
        }
        txns.prune_below(log_start_offset);
        let active_base = segments.keys().next_back().copied().unwrap_or(0);
        if let Some(active) = segments.values().next_back() {
            active.rewrite_txn_index(txns.aborted_from(active_base))?;
        }
        let cleaner_checkpoint = read_offset_file(&dir, CLEANER_CHECKPOINT).unwrap_or(0);
        let log = Self {
            topic: topic.to_string(),
            partition,
            dir,
            config,
            segments,
            log_start_offset,
            next_offset,
            unflushed_messages: 0,
            last_flush_ms: crate::now_ms(),
            producers,
            txns,
            cleaning: false,
            cleaner_checkpoint,
        };
        Ok((log, report))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn config(&self) -> &TopicConfig {
        &self.config
    }
    pub fn set_config(&mut self, config: TopicConfig) {
        self.config = config;
    }
    pub fn watermarks(&self) -> Watermarks {
        Watermarks {
            log_start_offset: self.log_start_offset,
            high_watermark: self.next_offset,
        }
    }
    /// Last stable offset: read_committed readers see nothing at or past it.
    pub fn last_stable_offset(&self) -> i64 {
        self.txns.last_stable_offset(self.next_offset)
    }
    /// Aborted transactions (producer id, first offset) overlapping `[from, to)`.
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<(i64, i64)> {
        self.txns.aborted_between(from, to)
    }
    /// Known producers of this partition: (id, epoch, last sequence, last write time).
    pub fn producers(&self) -> Vec<(i64, i16, i32, i64)> {
        self.producers.describe()
    }
    /// Forgets producers idle for `expiration_ms` that have no transaction open here.
    pub fn expire_producers(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let txns = &self.txns;
        self.producers
            .expire(now_ms, expiration_ms, |id| txns.is_open(id))
    }
    /// Whether `producer_id` has an open transaction on this partition.
    pub fn in_transaction(&self, producer_id: i64) -> bool {
        self.txns.is_open(producer_id)
    }
    /// Producers with an open transaction on this partition and its first offset.
    pub fn ongoing_transactions(&self) -> Vec<(i64, i64)> {
        self.txns.ongoing().collect()
    }
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size()).sum()
    }

    fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }
    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    fn needs_roll(&self, incoming: usize, now_ms: i64) -> bool {
        let active = self.active();
        if active.is_empty() {
            return false;
        }
        let too_big = active.size() + incoming as u64 > self.config.segment_bytes;
        let max_age = if self.config.compact {
            self.config
                .segment_ms
                .min(self.config.max_compaction_lag_ms)
        } else {
            self.config.segment_ms
        };
        let too_old = active
            .first_append_ms
            .is_some_and(|t| now_ms - t >= max_age);
        // Relative offsets in the index are u32: roll before they would overflow.
        let offsets_exhausted = self.next_offset - active.base_offset > i32::MAX as i64;
        too_big || too_old || offsets_exhausted
    }

    /// Offsets a failed write must not keep: cut the partial bytes of a failed append.
    fn undo_partial_write(&self, position: u64) {
        if let Err(e) = self.active().truncate_to(position) {
            tracing::error!(topic = %self.topic, partition = self.partition, error = %e, "could not truncate a failed append");
        }
    }
}

/// Per-partition checkpoint of the log start offset, moved by DeleteRecords and retention
/// inside a segment; a plain decimal number, written atomically.
const LOG_START_CHECKPOINT: &str = "log-start-offset";

/// Per-partition checkpoint of the first offset the cleaner has not compacted yet.
const CLEANER_CHECKPOINT: &str = "cleaner-offset-checkpoint";

fn read_offset_file(dir: &Path, name: &str) -> Option<i64> {
    std::fs::read_to_string(dir.join(name))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn write_offset_file(dir: &Path, name: &str, offset: i64) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, offset.to_string())?;
    std::fs::rename(tmp, dir.join(name))
}

fn read_log_start_checkpoint(dir: &Path) -> Option<i64> {
    read_offset_file(dir, LOG_START_CHECKPOINT)
}

fn write_log_start_checkpoint(dir: &Path, offset: i64) -> io::Result<()> {
    write_offset_file(dir, LOG_START_CHECKPOINT, offset)
}

/// Why DeleteRecords was refused.
#[derive(Debug, thiserror::Error)]
pub enum DeleteRecordsError {
    #[error("offset {offset} is above the high watermark {high_watermark}")]
    OffsetOutOfRange { offset: i64, high_watermark: i64 },
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
        let cleanable: Vec<&Segment> = closed
            .take_while(|s| lag == 0 || now_ms - s.max_timestamp() >= lag)
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
        let target = if offset == -1 {
            self.next_offset
        } else {
            offset
        };
        if target < 0 || target > self.next_offset {
            return Err(DeleteRecordsError::OffsetOutOfRange {
                offset,
                high_watermark: self.next_offset,
            });
        }
        if target > self.log_start_offset {
            write_log_start_checkpoint(&self.dir, target)?;
            self.log_start_offset = target;
        }
        Ok(self.log_start_offset)
    }
}

/// A partition log shared by the connections of its shard. Appends are serialized by the
/// permit so offsets are assigned and written in order; reads never wait for it.
pub struct Partition {
    /// Private: callers reach the log through [`Partition::with_log`] and
    /// [`Partition::with_log_mut`], whose closures cannot await, so no borrow is ever held
    /// across a suspension point (where another task of the shard would find it taken).
    log: RefCell<PartitionLog>,
    append_permit: glommio::sync::Semaphore,
    /// Everything below this offset has been fdatasync'ed.
    synced_offset: Cell<i64>,
    sync_in_flight: Cell<bool>,
    /// Signalled when a sync finishes, for callers waiting to group-commit behind it.
    sync_done: Event,
    /// Background flushes of segments closed by a roll.
    roll_flushes: Rc<RollFlushes>,
    /// Early writeback of appended pages, so the kernel never throttles the shard.
    writeback: Writeback,
}

/// Count of rolled segments still being flushed in the background, and their wake-up.
#[derive(Default)]
struct RollFlushes {
    pending: Cell<usize>,
    /// Background flushes that failed so far: a flush waiting on them must not succeed.
    failures: Cell<u64>,
    done: Event,
    #[cfg(test)]
    seam: RefCell<RollFlushSeam>,
}

/// Test seam of a rolled segment's background flush: hold it open until `gate` changes, so a
/// test chooses when it ends, and make it report a failure.
#[cfg(test)]
#[derive(Default)]
struct RollFlushSeam {
    gate: Option<Rc<Event>>,
    fail: bool,
}

#[cfg(test)]
impl RollFlushSeam {
    /// Taken when the roll starts the flush, so any later change of the gate releases it.
    fn arm(&self) -> impl std::future::Future<Output = io::Result<()>> + 'static {
        let gate = self.gate.clone().map(|g| (g.generation(), g));
        let fail = self.fail;
        async move {
            if let Some((seen, gate)) = gate {
                gate.changed_since(seen).await;
            }
            match fail {
                true => Err(io::Error::other("flush failure forced by a test")),
                false => Ok(()),
            }
        }
    }
}

impl Partition {
    /// Runs `f` on the log, borrowed for the duration of the call only.
    pub fn with_log<R>(&self, f: impl FnOnce(&PartitionLog) -> R) -> R {
        f(&self.log.borrow())
    }

    /// Runs `f` on the log, mutably borrowed for the duration of the call only.
    pub fn with_log_mut<R>(&self, f: impl FnOnce(&mut PartitionLog) -> R) -> R {
        f(&mut self.log.borrow_mut())
    }

    /// The log's offsets: log start and high watermark.
    pub fn watermarks(&self) -> Watermarks {
        self.log.borrow().watermarks()
    }

    /// `max.message.bytes` and whether the topic is compacted, as produce checks them.
    pub fn produce_limits(&self) -> (usize, bool) {
        let log = self.log.borrow();
        (log.config().max_message_bytes, log.config().compact)
    }

    /// `max.message.bytes`: the largest batch this partition accepts.
    pub fn max_message_bytes(&self) -> usize {
        self.log.borrow().config().max_message_bytes
    }

    /// Whether `producer_id` has a transaction open on this partition.
    pub fn in_transaction(&self, producer_id: i64) -> bool {
        self.log.borrow().in_transaction(producer_id)
    }

    /// Wraps a recovered log and opens its active segment's io_uring writer.
    /// `writeback_bytes` is `sluice.log.writeback.bytes` (0: no early writeback).
    pub async fn activate(log: PartitionLog, writeback_bytes: u64) -> io::Result<Rc<Self>> {
        let synced = log.next_offset;
        let partition = Rc::new(Self {
            log: RefCell::new(log),
            append_permit: glommio::sync::Semaphore::new(1),
            synced_offset: Cell::new(synced),
            sync_in_flight: Cell::new(false),
            sync_done: Event::default(),
            roll_flushes: Rc::default(),
            writeback: Writeback::new(writeback_bytes),
        });
        let mut active = partition.take_active_for_io();
        let result = active.attach_writer().await;
        partition.put_back_active(active);
        result?;
        Ok(partition)
    }

    /// Moves the active segment out of the log for an await (a RefCell borrow must not be
    /// held across one). Only called while holding the append permit or before sharing.
    fn take_active_for_io(&self) -> Segment {
        let mut log = self.log.borrow_mut();
        let base = *log
            .segments
            .keys()
            .next_back()
            .expect("a log always has an active segment");
        log.segments.remove(&base).expect("key was just read")
    }

    fn put_back_active(&self, segment: Segment) {
        self.log
            .borrow_mut()
            .segments
            .insert(segment.base_offset, segment);
    }

    /// Appends validated batches: assigns offsets, stamps LogAppendTime if configured,
    /// writes through io_uring, updates indexes, and flushes if the policy asks for it.
    pub async fn append(
        &self,
        mut batches: ValidatedBatches,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        let _permit = self
            .append_permit
            .acquire_permit(1)
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
        if let Some(duplicate) = self.check_sequences(&batches)? {
            return Ok(duplicate);
        }
        let total = batches.bytes.len();
        if self.log.borrow().needs_roll(total, now_ms) {
            self.roll().await?;
        }
        let (writer, position, base_offset, log_append_time_ms) = {
            let log = self.log.borrow();
            let append_time = log.config.timestamp_type == TimestampType::LogAppendTime;
            let mut offset = log.next_offset;
            for meta in &batches.batches {
                let batch = &mut batches.bytes[meta.start..meta.start + meta.size];
                record_batch::set_base_offset(batch, offset);
                if append_time {
                    record_batch::set_log_append_time(batch, now_ms);
                }
                offset = offset
                    .checked_add(meta.identity.last_offset_delta as i64 + 1)
                    .ok_or(AppendInvariant::OffsetsBackwards {
                        last_offset: i64::MAX,
                        next_offset: offset,
                    })?;
            }
            let active = log.active();
            let writer = active
                .writer()
                .ok_or_else(|| io::Error::other("active segment has no writer"))?;
            (
                writer,
                active.size(),
                log.next_offset,
                if append_time { now_ms } else { -1 },
            )
        };
        let meta = std::mem::take(&mut batches.batches);
        if let Err(e) = write_fully(&writer, batches.bytes, position).await {
            self.log.borrow().undo_partial_write(position);
            return Err(AppendError::Storage(e));
        }
        let info = self
            .record_appended(&meta, position, base_offset, log_append_time_ms, now_ms)
            .inspect_err(|e| {
                // Bytes the segment did not take must not resurface at the next recovery.
                let log = self.log.borrow();
                tracing::error!(topic = %log.topic, partition = log.partition, error = %e, "append refused after its write");
                log.undo_partial_write(log.active().size());
            })?;
        {
            let log = self.log.borrow();
            let active = log.active();
            if let Ok(file) = active.file() {
                self.writeback
                    .after_append(&file, active.base_offset, active.size());
            }
        }
        let flush_due = self.flush_due(batches.record_count, now_ms);
        Ok(AppendInfo { flush_due, ..info })
    }

    /// Idempotent producers: a retried batch already in the log is answered with its original
    /// offset (nothing appended); a stale epoch or a sequence gap is refused.
    fn check_sequences(
        &self,
        batches: &ValidatedBatches,
    ) -> Result<Option<AppendInfo>, AppendError> {
        let log = self.log.borrow();
        for meta in batches
            .batches
            .iter()
            .filter(|m| m.identity.is_idempotent())
        {
            if let SequenceCheck::Duplicate { base_offset } = log.producers.check(&meta.identity)? {
                let last_offset = base_offset + meta.identity.last_offset_delta as i64;
                return Ok(Some(AppendInfo {
                    base_offset,
                    last_offset,
                    log_append_time_ms: -1,
                    log_start_offset: log.log_start_offset,
                    flush_due: false,
                }));
            }
        }
        Ok(None)
    }

    fn record_appended(
        &self,
        meta: &[BatchMeta],
        position: u64,
        base_offset: i64,
        log_append_time_ms: i64,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        let mut log = self.log.borrow_mut();
        if log.next_offset != base_offset {
            // Another append moved the log end during the write (the permit rules it out).
            return Err(AppendInvariant::OffsetsBackwards {
                last_offset: base_offset,
                next_offset: log.next_offset,
            }
            .into());
        }
        let interval = log.config.index_interval_bytes;
        let mut offset = base_offset;
        let active = log.active_mut();
        // All or nothing: the first batch must follow the segment's end; the others follow
        // it by construction (contiguous bytes, growing offsets), so nothing below can fail
        // half-way.
        let first_last = base_offset
            + meta
                .first()
                .map_or(0, |m| m.identity.last_offset_delta as i64);
        active.check_append(position, first_last)?;
        active.first_append_ms.get_or_insert(now_ms);
        for m in meta {
            let last_offset = offset + m.identity.last_offset_delta as i64;
            let max_timestamp = if log_append_time_ms >= 0 {
                log_append_time_ms
            } else {
                m.max_timestamp
            };
            let appended = AppendedBatch {
                last_offset,
                max_timestamp,
                position: position + m.start as u64,
                size: m.size as u64,
            };
            active.record_append(appended, interval)?;
            offset = last_offset + 1;
        }
        let mut next = base_offset;
        for m in meta {
            let batch_base = next;
            next += m.identity.last_offset_delta as i64 + 1;
            log.producers.record(&m.identity, next - 1, now_ms);
            let aborted = log.txns.note(&TxnBatch {
                producer_id: m.identity.producer_id,
                base_offset: batch_base,
                transactional: m.transactional,
                marker: m.marker,
            });
            // The in-memory index is the truth; a lost `.txnindex` append is rewritten at
            // the next open, so a failure here only warns.
            if let Some(aborted) = aborted
                && let Err(e) = log.active().append_aborted(&aborted)
            {
                tracing::warn!(topic = %log.topic, partition = log.partition, error = %e, "cannot append to .txnindex");
            }
        }
        log.next_offset = offset;
        Ok(AppendInfo {
            base_offset,
            last_offset: offset - 1,
            log_append_time_ms,
            log_start_offset: log.log_start_offset,
            flush_due: false,
        })
    }

    /// Counts the appended records against the flush policy (`flush.messages`,
    /// `flush.ms`); true when a flush is due.
    fn flush_due(&self, records: i64, now_ms: i64) -> bool {
        let mut log = self.log.borrow_mut();
        log.unflushed_messages += records;
        log.unflushed_messages >= log.config.flush_messages
            || now_ms - log.last_flush_ms >= log.config.flush_ms
    }

    /// True when records are waiting for an fdatasync and `flush.ms` has passed.
    pub fn flush_overdue(&self, now_ms: i64) -> bool {
        let log = self.log.borrow();
        log.unflushed_messages > 0 && now_ms - log.last_flush_ms >= log.config.flush_ms
    }

    /// Makes everything below `offset` durable with fdatasync, group-committed: concurrent
    /// callers share one sync, and a caller whose data was written while a sync was already
    /// running waits for the next one, which covers all of them.
    ///
    /// A roll can happen at any await here (another task appends meanwhile) and moves the
    /// data into a retired segment that the active segment's fdatasync does not cover: so
    /// every round first waits for the rolled segments' background flushes, and fails if
    /// one of them failed.
    pub async fn flush_through(&self, offset: i64) -> io::Result<()> {
        let failures = self.roll_flushes.failures.get();
        loop {
            self.wait_for_roll_flushes().await;
            if self.roll_flushes.failures.get() != failures {
                return Err(io::Error::other("flushing a rolled segment failed"));
            }
            if self.synced_offset.get() >= offset {
                return Ok(());
            }
            if self.sync_in_flight.get() {
                let seen = self.sync_done.generation();
                self.sync_done.changed_since(seen).await;
                continue;
            }
            // No await from the roll-flush check to here: every segment before the active
            // one is flushed, and a missing writer means a roll is attaching the next one
            // after flushing this one, so `upto` is covered either way.
            self.sync_in_flight.set(true);
            let (writer, upto) = {
                let log = self.log.borrow();
                (log.active().writer(), log.next_offset)
            };
            let started = std::time::Instant::now();
            let result = match writer {
                Some(w) => w.fdatasync().await.map_err(io::Error::from),
                None => Ok(()),
            };
            crate::metrics::with_current(|m| m.record_fsync(started.elapsed()));
            self.sync_in_flight.set(false);
            if result.is_ok() {
                self.synced_offset.set(self.synced_offset.get().max(upto));
                let mut log = self.log.borrow_mut();
                log.unflushed_messages = 0;
                log.last_flush_ms = crate::now_ms();
            }
            self.sync_done.notify();
            result?;
        }
    }

    /// Closes the active segment and starts a new one at the log end offset.
    /// The old segment's fdatasync (up to a whole `segment.bytes` of dirty pages) runs in
    /// the background: waiting for it here stalled appends for hundreds of milliseconds.
    /// Flushes that must cover it (`flush_through`, shutdown) wait for it instead.
    async fn roll(&self) -> io::Result<()> {
        let retired = self.log.borrow_mut().active_mut().retire_writer()?;
        self.roll_flushes
            .pending
            .set(self.roll_flushes.pending.get() + 1);
        let flushes = self.roll_flushes.clone();
        #[cfg(test)]
        let seam = flushes.seam.borrow().arm();
        glommio::spawn_local(async move {
            #[cfg(test)]
            let forced = seam.await;
            let result = retired.flush_and_close().await;
            #[cfg(test)]
            let result = result.and(forced);
            if let Err(e) = result {
                tracing::error!(error = %e, "flushing a rolled segment failed");
                flushes.failures.set(flushes.failures.get() + 1);
            }
            flushes.pending.set(flushes.pending.get() - 1);
            flushes.done.notify();
        })
        .detach();
        let (dir, base) = {
            let log = self.log.borrow();
            (log.dir.clone(), log.next_offset)
        };
        let mut fresh = Segment::create(&dir, base)?;
        if let Err(e) = fresh.attach_writer().await {
            // Nothing may stay behind: the next append retries the roll, and a leftover file
            // would fail its create for good (the partition wedged until a restart).
            fresh.discard();
            return Err(e);
        }
        let mut log = self.log.borrow_mut();
        tracing::info!(topic = %log.topic, partition = log.partition, base_offset = base, "segment rolled");
        log.segments.insert(base, fresh);
        Ok(())
    }

    /// Waits until the background flushes of rolled segments have finished.
    async fn wait_for_roll_flushes(&self) {
        while self.roll_flushes.pending.get() > 0 {
            let seen = self.roll_flushes.done.generation();
            self.roll_flushes.done.changed_since(seen).await;
        }
    }

    /// Flushes and closes the active segment's writer (clean shutdown).
    pub async fn close(&self) -> io::Result<()> {
        let _permit = self
            .append_permit
            .acquire_permit(1)
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
        self.wait_for_roll_flushes().await;
        let mut active = self.take_active_for_io();
        let result = active.detach_writer().await;
        self.put_back_active(active);
        result
    }
}

/// Writes the whole buffer in one io_uring write. A short write on a regular file means the
/// device is full (or the file too big); it is reported as an error so the caller cuts the
/// partial bytes and nothing half-written is ever acknowledged.
async fn write_fully(
    writer: &glommio::io::BufferedFile,
    bytes: Vec<u8>,
    position: u64,
) -> io::Result<()> {
    let len = bytes.len();
    let written = writer
        .write_at(bytes, position)
        .await
        .map_err(io::Error::from)?;
    if written != len {
        return Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!("short write: {written} of {len} bytes"),
        ));
    }
    Ok(())
}

impl PartitionLog {
    /// The byte range a fetch from `offset` sends: from the batch holding `offset` up to
    /// `max_bytes`, but always at least that whole first batch (KIP-74), within one segment.
    pub fn read(&self, offset: i64, max_bytes: u64) -> Result<Option<ReadSlice>, ReadError> {
        if offset < self.log_start_offset || offset > self.next_offset {
            return Err(ReadError::OutOfRange {
                offset,
                start: self.log_start_offset,
                end: self.next_offset,
            });
        }
        if offset == self.next_offset {
            return Ok(None);
        }
        let active_base = self.active().base_offset;
        for (base, segment) in self
            .segments
            .range(..=offset)
            .next_back()
            .into_iter()
            .chain(self.segments.range(offset + 1..))
        {
            let Some(location) = segment.position_of(offset)? else {
                continue;
            };
            let available = segment.size() - location.position;
            let len = available.min(max_bytes.max(location.size));
            return Ok(Some(ReadSlice {
                file: segment.file()?,
                position: location.position,
                len,
                is_tail: *base == active_base,
            }));
        }
        Ok(None)
    }

    /// [`PartitionLog::read`] for read_committed readers: stops before the last stable
    /// offset. The LSO is always the base offset of a batch (the first of an open
    /// transaction), so the cut falls on a batch boundary and the range stays zero-copy.
    pub fn read_committed(
        &self,
        offset: i64,
        max_bytes: u64,
    ) -> Result<Option<ReadSlice>, ReadError> {
        let lso = self.last_stable_offset();
        if offset >= lso && offset <= self.next_offset && offset >= self.log_start_offset {
            return Ok(None);
        }
        let Some(mut slice) = self.read(offset, max_bytes)? else {
            return Ok(None);
        };
        if lso < self.next_offset
            && let Some((_, segment)) = self.segments.range(..=lso).next_back()
            && let Some(stop) = segment.position_of(lso)?
            && Rc::ptr_eq(&segment.file()?, &slice.file)
            && stop.position < slice.position + slice.len
        {
            slice.len = stop.position.saturating_sub(slice.position);
            if slice.len == 0 {
                return Ok(None);
            }
        }
        Ok(Some(slice))
    }

    /// Copies the bytes [`PartitionLog::read`] would send from `offset`. The last batch may
    /// be cut at `max_bytes`. This is a blocking pread: meant for replaying internal topics
    /// while a shard starts, before it serves requests, never for the fetch path.
    pub fn read_bytes(&self, offset: i64, max_bytes: u64) -> Result<Option<Vec<u8>>, ReadError> {
        use std::os::unix::fs::FileExt;
        let Some(slice) = self.read(offset, max_bytes)? else {
            return Ok(None);
        };
        let len = usize::try_from(slice.len).map_err(io::Error::other)?;
        let mut buf = vec![0u8; len];
        slice.file.read_exact_at(&mut buf, slice.position)?;
        Ok(Some(buf))
    }

    /// ListOffsets by timestamp: the batch holding the first offset whose timestamp is >=
    /// `timestamp` (resolve it off the shard); `None` when every record is older.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> io::Result<Option<TimestampLookup>> {
        for segment in self.segments.values() {
            if let Some(found) = segment.locate_timestamp(timestamp)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The batch with the largest timestamp in the log (ListOffsets -3).
    pub fn max_timestamp(&self) -> Option<TimestampLookup> {
        self.segments
            .values()
            .filter(|s| s.max_timestamp() >= 0)
            .max_by_key(|s| s.max_timestamp())
            .and_then(|s| s.locate_timestamp(s.max_timestamp()).ok().flatten())
    }
}

#[cfg(test)]
mod flush_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::record_batch::BatchBuilder;

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
            offset += record_batch::BatchView::parse(&b)
                .unwrap()
                .last_offset_delta() as i64
                + 1;
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
        let abort = crate::shard::txns::marker_batch(1, 0, false, 0);
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
        let batches: Vec<_> = (0..3).map(|i| batch(i + 1, 1000 + i as i64)).collect();
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
                high_watermark: 9
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
                high_watermark: 9
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
}
