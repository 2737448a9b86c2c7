//! A partition log as its shard's connections share it: appends serialized by one permit
//! (offsets assigned, LogAppendTime stamped, one io_uring write, indexes and producer and
//! transaction state updated), segment rolls with their background flush, and the flush
//! policy (`flush.messages`, `flush.ms`) with group-committed fdatasyncs. Runs on the
//! partition's shard; no borrow of the log is ever held across an await.

#[cfg(test)]
mod direct_tests;
#[cfg(test)]
mod flush_tests;
#[cfg(test)]
mod replica_tests;
mod truncate;

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;

use super::{AppendError, AppendInfo, PartitionLog, Watermarks};
use crate::config::TimestampType;
use crate::event::Event;
use crate::protocol::record_batch;
use crate::storage::direct::SegmentIo;
use crate::storage::producer_state::SequenceCheck;
use crate::storage::segment::{AppendInvariant, AppendedBatch, Segment};
use crate::storage::txn_index::TxnBatch;
use crate::storage::validate::{BatchMeta, ValidatedBatches};
use crate::storage::writeback::Writeback;

/// Whether an append's answer waits for the fdatasync that the flush policy asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushWait {
    /// acks=all: durable as the policy promises before the producer hears of it.
    Durable,
    /// acks=0/1 and internal appends: the flush runs in the background.
    Background,
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
    /// Page-cache or O_DIRECT appends (with the partition's tail cache), for every writer
    /// this partition opens.
    io: SegmentIo,
    /// The leader epoch this replica leads in and stamps into appended batches; -1 on a
    /// single node (batches keep what the client sent) and on a follower.
    leader_epoch: Cell<i32>,
    /// Signalled by every append and by whoever moves the high watermark: what a
    /// long-polling fetch of this partition waits for.
    arrived: Event,
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

    /// The topic's `compression.type` codec and its levels, if produced batches are to be
    /// rewritten in it.
    pub fn produce_codec(
        &self,
    ) -> Option<(
        crate::protocol::record_batch::Compression,
        crate::protocol::compression::Levels,
    )> {
        let log = self.log.borrow();
        let config = log.config();
        config.compression.map(|c| (c, config.compression_levels))
    }

    /// `max.message.bytes`: the largest batch this partition accepts.
    pub fn max_message_bytes(&self) -> usize {
        self.log.borrow().config().max_message_bytes
    }

    /// Whether `producer_id` has a transaction open on this partition.
    pub fn in_transaction(&self, producer_id: i64) -> bool {
        self.log.borrow().in_transaction(producer_id)
    }

    /// What readers of this partition wait on: every append signals it, and the replication
    /// code signals it when the high watermark moves.
    pub fn arrived(&self) -> &Event {
        &self.arrived
    }

    /// The leader epoch this replica stamps into appends (-1: none).
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.get()
    }

    /// Starts leading in `epoch`: appends from now on carry it, and the epoch cache notes
    /// that it starts at the log end (Kafka assigns the epoch before any record of it).
    /// -1 stops stamping (a follower).
    pub fn set_leader_epoch(&self, epoch: i32) {
        self.leader_epoch.set(epoch);
        let mut log = self.log.borrow_mut();
        let end = log.next_offset;
        log.epochs.assign(epoch, end);
    }

    /// Wraps a recovered log and opens its active segment's io_uring writer as `io` says
    /// (page cache with `sluice.log.writeback.bytes`, or O_DIRECT with a tail cache).
    pub async fn activate(log: PartitionLog, io: SegmentIo) -> io::Result<Rc<Self>> {
        let synced = log.next_offset;
        let partition = Rc::new(Self {
            log: RefCell::new(log),
            append_permit: glommio::sync::Semaphore::new(1),
            synced_offset: Cell::new(synced),
            sync_in_flight: Cell::new(false),
            sync_done: Event::default(),
            roll_flushes: Rc::default(),
            writeback: Writeback::new(io.writeback_bytes()),
            leader_epoch: Cell::new(-1),
            arrived: Event::default(),
            io,
        });
        let mut active = partition.take_active_for_io();
        let result = active.attach_writer(&partition.io).await;
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

    /// Appends validated batches and applies the flush policy: when `flush.messages` or
    /// `flush.ms` asks for an fdatasync, `wait` says whether the answer waits for it
    /// (acks=all) or it runs in the background. A failed flush that was waited for is an
    /// error although the records were written: the producer retries, and an idempotent
    /// one is answered from its sequence state without a second copy.
    pub async fn append(
        self: &Rc<Self>,
        batches: ValidatedBatches,
        now_ms: i64,
        wait: FlushWait,
    ) -> Result<AppendInfo, AppendError> {
        let (info, flush_due) = self.write_batches(batches, now_ms).await?;
        if flush_due {
            let through = info.last_offset + 1;
            match wait {
                FlushWait::Durable => self.flush_through(through).await?,
                FlushWait::Background => self.flush_in_background(through),
            }
        }
        Ok(info)
    }

    fn flush_in_background(self: &Rc<Self>, through: i64) {
        let partition = self.clone();
        glommio::spawn_local(async move {
            if let Err(e) = partition.flush_through(through).await {
                tracing::error!(error = %e, "background flush failed");
            }
        })
        .detach();
    }

    /// Assigns offsets, stamps LogAppendTime if configured, writes through io_uring and
    /// updates the indexes; also says whether the flush policy now asks for a flush.
    async fn write_batches(
        &self,
        mut batches: ValidatedBatches,
        now_ms: i64,
    ) -> Result<(AppendInfo, bool), AppendError> {
        let _permit = self.acquire_append_permit().await?;
        let checked = self.check_sequences(&batches);
        self.trace_idempotence(&batches, &checked);
        if let Some(duplicate) = checked? {
            return Ok((duplicate, false));
        }
        self.roll_if_needed(batches.bytes.len(), now_ms).await?;
        let log_append_time_ms = self.stamp(&mut batches, now_ms)?;
        self.write_at_end(batches, log_append_time_ms, now_ms).await
    }

    /// Each idempotent batch's sequence decision at debug level under the
    /// `sluice::idempotence` target, so a duplicate or a refused retry can be traced to the
    /// producer's sequences and the log end (the chaos harness turns it on).
    fn trace_idempotence(
        &self,
        batches: &ValidatedBatches,
        checked: &Result<Option<AppendInfo>, AppendError>,
    ) {
        if !tracing::enabled!(target: "sluice::idempotence", tracing::Level::DEBUG) {
            return;
        }
        let log = self.log.borrow();
        for m in batches
            .batches
            .iter()
            .filter(|m| m.identity.is_idempotent())
        {
            let decision = match checked {
                Ok(Some(dup)) => format!("duplicate of offset {}", dup.base_offset),
                Ok(None) => "append".to_string(),
                Err(e) => format!("refused: {e}"),
            };
            tracing::debug!(target: "sluice::idempotence", topic = %log.topic,
                partition = log.partition, producer_id = m.identity.producer_id,
                producer_epoch = m.identity.producer_epoch,
                first_sequence = m.identity.base_sequence,
                records = m.identity.last_offset_delta + 1, log_end = log.next_offset,
                leader_epoch = self.leader_epoch.get(), %decision, "idempotent batch");
        }
    }

    /// A follower's append of what its leader sent: whole batches with the leader's offsets
    /// and epochs, byte for byte (a cut batch at the end waits for the next fetch). The
    /// first batch must not start below the log end (it may start above it, where the
    /// leader's compaction removed offsets); OFFSET_OUT_OF_RANGE otherwise. The flush policy
    /// applies as for any append, in the background: a follower's copy is made durable by
    /// the replicas together, not by its own fdatasync. `None` when nothing whole arrived.
    pub async fn append_replicated(
        self: &Rc<Self>,
        records: &[u8],
        now_ms: i64,
    ) -> Result<Option<AppendInfo>, AppendError> {
        let Some(batches) = crate::storage::validate::validate_replicated(records)? else {
            return Ok(None);
        };
        let (info, flush_due) = {
            let _permit = self.acquire_append_permit().await?;
            let log_end = self.log.borrow().next_offset;
            let base_offset = batches.batches.first().map_or(log_end, |m| m.base_offset);
            if base_offset < log_end {
                return Err(AppendError::OffsetMismatch {
                    base_offset,
                    log_end,
                });
            }
            self.roll_if_needed(batches.bytes.len(), now_ms).await?;
            self.write_at_end(batches, -1, now_ms).await?
        };
        if flush_due {
            self.flush_in_background(info.last_offset + 1);
        }
        Ok(Some(info))
    }

    async fn acquire_append_permit(&self) -> io::Result<glommio::sync::Permit<'_>> {
        self.append_permit
            .acquire_permit(1)
            .await
            .map_err(|e| io::Error::other(e.to_string()))
    }

    async fn roll_if_needed(&self, incoming: usize, now_ms: i64) -> io::Result<()> {
        if self.log.borrow().needs_roll(incoming, now_ms) {
            self.roll().await?;
        }
        Ok(())
    }

    /// A leader's stamp on batches it appends: offsets from the log end, its leader epoch,
    /// and LogAppendTime where the topic asks for it (returned, else -1).
    fn stamp(&self, batches: &mut ValidatedBatches, now_ms: i64) -> Result<i64, AppendError> {
        let log = self.log.borrow();
        let append_time = log.config.timestamp_type == TimestampType::LogAppendTime;
        let epoch = self.leader_epoch.get();
        let mut offset = log.next_offset;
        for meta in &mut batches.batches {
            let batch = &mut batches.bytes[meta.start..meta.start + meta.size];
            record_batch::set_base_offset(batch, offset);
            meta.base_offset = offset;
            if epoch >= 0 {
                record_batch::set_partition_leader_epoch(batch, epoch);
                meta.leader_epoch = epoch;
            }
            if append_time {
                record_batch::set_log_append_time(batch, now_ms);
            }
            offset = offset
                .checked_add(i64::from(meta.identity.last_offset_delta) + 1)
                .ok_or(AppendInvariant::OffsetsBackwards {
                    last_offset: i64::MAX,
                    next_offset: offset,
                })?;
        }
        Ok(if append_time { now_ms } else { -1 })
    }

    /// Writes stamped batches at the end of the active segment in one io_uring write and
    /// records them; says whether the flush policy now asks for a flush. Called with the
    /// append permit held.
    async fn write_at_end(
        &self,
        mut batches: ValidatedBatches,
        log_append_time_ms: i64,
        now_ms: i64,
    ) -> Result<(AppendInfo, bool), AppendError> {
        let (writer, position) = {
            let log = self.log.borrow();
            let active = log.active();
            let writer = active
                .writer()
                .ok_or_else(|| io::Error::other("active segment has no writer"))?;
            (writer, active.size())
        };
        let meta = std::mem::take(&mut batches.batches);
        if let Err(e) = writer.append(batches.bytes, position).await {
            self.log.borrow().undo_partial_write(position);
            return Err(AppendError::Storage(e));
        }
        let info = self
            .record_appended(&meta, position, log_append_time_ms, now_ms)
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
        self.write_index_tails_if_due();
        // Fetches long-polling this partition (consumers, followers) can read it now.
        self.arrived.notify();
        let flush_due = self.flush_due(batches.record_count, now_ms);
        Ok((info, flush_due))
    }

    /// Once a batch of index entries has gathered, writes them through the ring in the
    /// background (the index file is a cache: a failure only warns, recovery rebuilds it).
    fn write_index_tails_if_due(&self) {
        let Some((ring, tails)) = self.log.borrow_mut().active_mut().index_tails_due() else {
            return;
        };
        glommio::spawn_local(async move { ring.write(tails).await }).detach();
    }

    /// Idempotent producers: a retried batch already in the log is answered with its original
    /// offset (nothing appended); a stale epoch or a sequence gap is refused. Transaction
    /// markers of a fenced producer epoch or an older coordinator generation are refused.
    fn check_sequences(
        &self,
        batches: &ValidatedBatches,
    ) -> Result<Option<AppendInfo>, AppendError> {
        let log = self.log.borrow();
        for meta in batches
            .batches
            .iter()
            .filter(|m| m.identity.control && m.identity.producer_id >= 0)
        {
            log.producers.check_marker(&meta.identity)?;
        }
        for meta in batches
            .batches
            .iter()
            .filter(|m| m.identity.is_idempotent())
        {
            if let SequenceCheck::Duplicate { base_offset } = log.producers.check(&meta.identity)? {
                let last_offset = base_offset + i64::from(meta.identity.last_offset_delta);
                return Ok(Some(AppendInfo {
                    base_offset,
                    last_offset,
                    log_append_time_ms: -1,
                    log_start_offset: log.log_start_offset,
                }));
            }
        }
        Ok(None)
    }

    /// Brings the log's state in step with batches just written at `position`: segment
    /// indexes, log end, producer and transaction state, leader epochs. Each batch carries
    /// its base offset in `meta` (assigned by a leader, kept by a follower).
    fn record_appended(
        &self,
        meta: &[BatchMeta],
        position: u64,
        log_append_time_ms: i64,
        now_ms: i64,
    ) -> Result<AppendInfo, AppendError> {
        let mut log = self.log.borrow_mut();
        let (Some(first), Some(last)) = (meta.first(), meta.last()) else {
            return Err(AppendError::Empty);
        };
        if first.base_offset < log.next_offset {
            // Another append moved the log end during the write (the permit rules it out).
            return Err(AppendInvariant::OffsetsBackwards {
                last_offset: first.base_offset,
                next_offset: log.next_offset,
            }
            .into());
        }
        let interval = log.config.index_interval_bytes;
        let active = log.active_mut();
        // All or nothing: the first batch must follow the segment's end; the others follow
        // it by construction (contiguous bytes, growing offsets), so nothing below can fail
        // half-way.
        let first_last = first.base_offset + i64::from(first.identity.last_offset_delta);
        active.check_append(position, first_last)?;
        active.first_append_ms.get_or_insert(now_ms);
        for m in meta {
            let max_timestamp = if log_append_time_ms >= 0 {
                log_append_time_ms
            } else {
                m.max_timestamp
            };
            let appended = AppendedBatch {
                base_offset: m.base_offset,
                last_offset: last_offset_of(m),
                max_timestamp,
                position: position + m.start as u64,
                size: m.size as u64,
            };
            active.record_append(appended, interval)?;
        }
        for m in meta {
            log.producers.record(&m.identity, last_offset_of(m), now_ms);
            log.epochs.assign(m.leader_epoch, m.base_offset);
            let aborted = log.txns.note(&TxnBatch {
                producer_id: m.identity.producer_id,
                base_offset: m.base_offset,
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
        log.next_offset = last_offset_of(last) + 1;
        Ok(AppendInfo {
            base_offset: first.base_offset,
            last_offset: last_offset_of(last),
            log_append_time_ms,
            log_start_offset: log.log_start_offset,
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
                Some(w) => w.fdatasync().await,
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
        let (writer, size) = {
            let log = self.log.borrow();
            (log.active().writer(), log.active().size())
        };
        if let Some(writer) = writer {
            // Before the next segment exists: a closed segment must end at its last batch
            // (start-up trusts closed segments), which a direct writer's padding would break.
            writer.seal(size).await?;
        }
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
        if let Err(e) = fresh.attach_writer(&self.io).await {
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

fn last_offset_of(m: &BatchMeta) -> i64 {
    m.base_offset + i64::from(m.identity.last_offset_delta)
}
