//! The log of one partition: its segments and offsets (log start, log end = high watermark on
//! a single node), opened and recovered at start-up. The concerns around it have a file each:
//! `partition` (appends through the active segment's io_uring writer, segment rolls, the
//! flush policy and group commit), `read` (fetch ranges and timestamp lookups), `retention`
//! (retention, cleaning, DeleteRecords) and `checkpoints` (the offset files beside the
//! segments). Lives on the shard that owns the partition; nothing here is shared across cores.

mod checkpoints;
mod partition;
mod read;
mod retention;
#[cfg(test)]
mod tests;

pub use crate::storage::leader_epochs::LeaderEpochs;
pub use partition::{FlushWait, Partition};
pub use retention::DeleteRecordsError;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::TopicConfig;
use crate::protocol::batch_validation::RecordsError;
use crate::protocol::record_batch::BatchError;
use crate::storage::producer_state::{ProducerStates, SequenceError};
use crate::storage::segment::{AppendInvariant, RecoveryReport, Segment};
use crate::storage::txn_index::TxnIndex;
pub use crate::storage::validate::{ValidatedBatches, validate_batches};
use checkpoints::{
    CLEANER_CHECKPOINT, HIGH_WATERMARK_CHECKPOINT, read_epoch_file, read_log_start_checkpoint,
    read_offset_file, write_epoch_file, write_offset_file,
};

/// Why a produce could not be appended; each maps to one Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// A batch's framing, magic, CRC or codec bits are invalid; CORRUPT_MESSAGE
    /// (INVALID_RECORD for a record count that disagrees with the header).
    #[error("corrupt batch: {0}")]
    Corrupt(#[from] BatchError),
    /// The records inside a batch disagree with its header or are malformed: INVALID_RECORD;
    /// CORRUPT_MESSAGE for undecodable compression, MESSAGE_TOO_LARGE past the decompressed
    /// bound.
    #[error("invalid records: {0}")]
    InvalidRecords(#[from] RecordsError),
    /// A batch is larger than the topic's `max.message.bytes`; MESSAGE_TOO_LARGE.
    #[error("batch of {size} bytes exceeds max.message.bytes {max}")]
    TooLarge {
        /// Size of the offending batch in bytes, log overhead included.
        size: usize,
        /// The topic's `max.message.bytes`.
        max: usize,
    },
    /// The records field held no batch at all; CORRUPT_MESSAGE.
    #[error("produce carried no record batch")]
    Empty,
    /// A compacted topic got records with a null key (KIP-467 `record_errors`); INVALID_RECORD.
    #[error("compacted topic cannot accept a record without a key")]
    MissingKey {
        /// Positions of the keyless records in the produce (Kafka's `batch_index`).
        record_indexes: Vec<i32>,
    },
    /// An idempotent producer's epoch is stale (INVALID_PRODUCER_EPOCH) or its sequence has a
    /// gap (OUT_OF_ORDER_SEQUENCE_NUMBER).
    #[error(transparent)]
    Sequence(#[from] SequenceError),
    /// Writing or flushing the segment failed; KAFKA_STORAGE_ERROR.
    #[error("storage error: {0}")]
    Storage(#[from] io::Error),
    /// A replicated batch does not follow the follower's log end (the leader's log moved
    /// under the fetch); OFFSET_OUT_OF_RANGE, and the follower fetches again.
    #[error("replicated batch at offset {base_offset} does not follow the log end {log_end}")]
    OffsetMismatch {
        /// Base offset of the first replicated batch.
        base_offset: i64,
        /// The follower's log end offset.
        log_end: i64,
    },
    /// A check of the append path failed (a bug, not bad input): the append is refused and
    /// reported instead of writing inconsistent offsets or indexes.
    #[error("append invariant broken: {0}")]
    Invariant(#[from] AppendInvariant),
}

/// Why a read could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The fetch offset is below the log start or past the log end; OFFSET_OUT_OF_RANGE.
    #[error("offset {offset} is outside [{start}, {end}]")]
    OutOfRange {
        /// The offset asked for.
        offset: i64,
        /// Log start offset at the time.
        start: i64,
        /// Log end offset at the time (reading exactly there is valid and returns nothing).
        end: i64,
    },
    /// Reading the segment or its index failed; KAFKA_STORAGE_ERROR.
    #[error("storage error: {0}")]
    Storage(#[from] io::Error),
}

/// Result of a successful append.
#[derive(Debug, Clone, Copy)]
pub struct AppendInfo {
    /// Offset assigned to the first record (for a duplicate retry, the one it got the first
    /// time).
    pub base_offset: i64,
    /// Offset assigned to the last record of the last batch.
    pub last_offset: i64,
    /// The broker's timestamp for LogAppendTime topics, else -1.
    pub log_append_time_ms: i64,
    /// Log start offset after the append, as ProduceResponse reports it (v5+).
    pub log_start_offset: i64,
}

/// The offsets of a partition as ListOffsets and Fetch report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    /// Earliest offset still readable (raised by retention and DeleteRecords).
    pub log_start_offset: i64,
    /// The offset below which records are committed and visible to consumers. On a single
    /// node (and for a partition without followers) every appended record counts as
    /// committed, so this is the log end offset; a replicated partition's leader moves it as
    /// the ISR catches up.
    pub high_watermark: i64,
    /// Offset of the next record to be appended.
    pub log_end_offset: i64,
}

/// The log of one partition: its segments keyed by base offset (the last one active), its
/// offsets, idempotent producers and transactions. Owned by one shard, used through
/// [`Partition`].
pub struct PartitionLog {
    /// Topic name.
    pub topic: String,
    /// Partition id within the topic.
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
    /// The high watermark while `hw_follows_leo` is false (a replicated partition).
    high_watermark: i64,
    /// True where every appended record is committed at once (no followers).
    hw_follows_leo: bool,
    /// The high watermark last written to (or read from) the checkpoint file; -1 for none.
    checkpointed_hw: i64,
    /// Where each leader epoch starts in this log.
    epochs: LeaderEpochs,
    /// The entries the `leader-epoch-checkpoint` file holds (as read at open or last written).
    checkpointed_epochs: Vec<(i32, i64)>,
}

/// Says so when the epoch checkpoint file disagrees with the epochs the batch headers give
/// for the records the log holds (entries at or past the log end may be from a tail that was
/// truncated, or an epoch that never wrote). The headers win; the file is rewritten.
fn warn_if_epochs_disagree(
    topic: &str,
    partition: i32,
    file: &[(i32, i64)],
    headers: &LeaderEpochs,
    log_end: i64,
) {
    let within = |entries: &[(i32, i64)]| -> Vec<(i32, i64)> {
        entries
            .iter()
            .copied()
            .filter(|(_, s)| *s < log_end)
            .collect()
    };
    if !file.is_empty() && within(file) != within(headers.entries()) {
        tracing::warn!(topic, partition, file = ?file, headers = ?headers.entries(), "leader-epoch-checkpoint disagrees with the batch headers; using the headers");
    }
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
        let mut txns = TxnIndex::default();
        let mut epochs = LeaderEpochs::default();
        let mut producers = ProducerStates::default();
        for segment in segments.values() {
            segment.scan_transactions(&mut txns)?;
            segment.scan_headers(&mut producers, &mut epochs)?;
        }
        txns.prune_below(log_start_offset);
        let active_base = segments.keys().next_back().copied().unwrap_or(0);
        if let Some(active) = segments.values().next_back() {
            active.rewrite_txn_index(txns.aborted_from(active_base))?;
        }
        let cleaner_checkpoint = read_offset_file(&dir, CLEANER_CHECKPOINT).unwrap_or(0);
        let checkpointed_hw = read_offset_file(&dir, HIGH_WATERMARK_CHECKPOINT).unwrap_or(-1);
        let checkpointed_epochs = read_epoch_file(&dir).unwrap_or_default();
        warn_if_epochs_disagree(topic, partition, &checkpointed_epochs, &epochs, next_offset);
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
            high_watermark: next_offset,
            hw_follows_leo: true,
            checkpointed_hw,
            epochs,
            checkpointed_epochs,
        };
        Ok((log, report))
    }

    /// Writes the leader epoch cache to `leader-epoch-checkpoint` when it changed since the
    /// last write (with the high watermark checkpoint, every 5 s and at shutdown).
    pub fn checkpoint_leader_epochs(&mut self) -> io::Result<()> {
        if self.epochs.entries() == self.checkpointed_epochs.as_slice() {
            return Ok(());
        }
        write_epoch_file(&self.dir, self.epochs.entries())?;
        self.checkpointed_epochs = self.epochs.entries().to_vec();
        Ok(())
    }

    /// The partition directory, `<data dir>/<topic>-<partition>`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// The topic's configuration this log runs under (segment size, retention, cleanup policy).
    pub fn config(&self) -> &TopicConfig {
        &self.config
    }
    /// Replaces the topic configuration when the shard applies changed topic configs from cluster
    /// metadata; takes effect at the next append, roll or retention pass.
    pub fn set_config(&mut self, config: TopicConfig) {
        self.config = config;
    }
    /// The log start offset, high watermark and log end offset.
    pub fn watermarks(&self) -> Watermarks {
        Watermarks {
            log_start_offset: self.log_start_offset,
            high_watermark: self.high_watermark(),
            log_end_offset: self.next_offset,
        }
    }
    /// Offset of the next record to be appended.
    pub fn log_end_offset(&self) -> i64 {
        self.next_offset
    }
    /// Records below this are committed: consumers read up to it.
    pub fn high_watermark(&self) -> i64 {
        if self.hw_follows_leo {
            self.next_offset
        } else {
            self.high_watermark
        }
    }
    /// On (the default, and a partition without followers): every append is committed at
    /// once. Off: the high watermark moves only through [`Self::set_high_watermark`],
    /// starting where it stands now.
    pub fn set_hw_follows_leo(&mut self, follows: bool) {
        if self.hw_follows_leo && !follows {
            self.high_watermark = self.next_offset;
        }
        self.hw_follows_leo = follows;
    }
    /// Moves the high watermark forward to `hw` (never past the log end); true when it moved.
    pub fn set_high_watermark(&mut self, hw: i64) -> bool {
        let hw = hw.min(self.next_offset);
        if self.hw_follows_leo || hw <= self.high_watermark {
            return false;
        }
        self.high_watermark = hw;
        true
    }
    /// Sets the high watermark to `hw` (clamped to the log) even when that moves it back:
    /// a replica that restarts or truncates knows only what it can prove.
    pub fn reset_high_watermark(&mut self, hw: i64) {
        self.high_watermark = hw.clamp(self.log_start_offset, self.next_offset);
    }
    /// The high watermark the last run checkpointed, if any (a replicated partition starts
    /// from it, clamped to its log, at open).
    pub fn checkpointed_high_watermark(&self) -> Option<i64> {
        (self.checkpointed_hw >= 0).then_some(self.checkpointed_hw)
    }
    /// Writes the high watermark of a replicated partition to its checkpoint file when it
    /// moved since the last write (a temporary file and a rename, not synced: a stale
    /// checkpoint only starts a restarted replica lower).
    pub fn checkpoint_high_watermark(&mut self) -> io::Result<()> {
        if self.hw_follows_leo || self.high_watermark == self.checkpointed_hw {
            return Ok(());
        }
        write_offset_file(&self.dir, HIGH_WATERMARK_CHECKPOINT, self.high_watermark)?;
        self.checkpointed_hw = self.high_watermark;
        Ok(())
    }
    /// Last stable offset: read_committed readers see nothing at or past it.
    pub fn last_stable_offset(&self) -> i64 {
        self.txns
            .last_stable_offset(self.next_offset)
            .min(self.high_watermark())
    }
    /// The newest leader epoch that stamped this log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest()
    }
    /// The largest epoch at or below `epoch` and the offset where it ends (see
    /// [`LeaderEpochs::end_offset_for`]).
    pub fn epoch_end_offset(&self, epoch: i32) -> (i32, i64) {
        self.epochs.end_offset_for(epoch, self.next_offset)
    }
    /// The epoch cache: (epoch, start offset), oldest first.
    pub fn leader_epochs(&self) -> &LeaderEpochs {
        &self.epochs
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
    /// Number of segments, the active one included (at least 1).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
    /// Bytes of all segments' `.log` files (indexes not counted).
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
        let offsets_exhausted = self.next_offset - active.base_offset > i64::from(i32::MAX);
        too_big || too_old || offsets_exhausted
    }

    /// Offsets a failed write must not keep: cut the partial bytes of a failed append.
    fn undo_partial_write(&self, position: u64) {
        if let Err(e) = self.active().truncate_to(position) {
            tracing::error!(topic = %self.topic, partition = self.partition, error = %e, "could not truncate a failed append");
        }
    }
}
