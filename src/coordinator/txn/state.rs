//! The transaction coordinator of one shard as a pure state machine: transactional id →
//! producer id, epoch, status and the partitions of the open transaction. Every call takes
//! `now_ms`, returns the `__transaction_state` record to persist (the wiring appends it
//! before answering) and, when a transaction ends, the marker job the wiring must carry
//! out before calling [`TxnCoordinator::complete`]. No I/O, no async: unit-tested as is.
//! Runs on the shard owning the `__transaction_state` partition of each id it holds.
//!
//! Transaction version 2 (KIP-890 part 2), as Kafka 4's coordinator does it:
//! - EndTxn v5 ([`TxnCoordinator::end_txn_v2`]) bumps the producer epoch as it prepares the
//!   commit or abort; the markers carry the bumped epoch, so every transaction has its own
//!   epoch and a late write of the previous one is fenced by the partition's ordinary epoch
//!   check. The answer carries the producer id and epoch the producer continues with. When
//!   the epoch is exhausted (`i16::MAX - 1`) the markers go out under `i16::MAX` and, once
//!   they are written, the id moves to a newly allocated producer id with epoch 0.
//! - A retried EndTxn v5 is told from a new one by its epoch: one below the current epoch
//!   (or the old id at `i16::MAX - 1` after a move) is a retry, answered OK if the
//!   transaction completed the same way, CONCURRENT_TRANSACTIONS while its markers are being
//!   written. A v5 abort with no transaction open still bumps the epoch (Kafka's rule: the
//!   client may abort before it wrote anything).
//! - Partitions are added by the partition leader when it receives the producer's first
//!   transactional batch (Produce v12+) and by the group coordinator for TxnOffsetCommit v5
//!   ([`TxnCoordinator::add_partitions_implicitly`]); the first add after a completed
//!   transaction begins the next one, as an explicit AddPartitionsToTxn does.
//! - A timeout abort of a version 2 transaction bumps the epoch twice (Kafka fences the
//!   epoch, then its version 2 abort bumps again), so the producer's own EndTxn of the old
//!   epoch is fenced rather than taken for a retry.
//! - Version 1 producers (EndTxn v0-v4, AddPartitionsToTxn v0-v3) are served as before.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;

use super::metadata::{TxnMetadata, TxnStatus};
use super::records;

/// A `__transaction_state` record: key and value (None = tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    /// Encoded `TransactionLogKey` v0 (int16 version, transactional id).
    pub key: Bytes,
    /// Encoded `TransactionLogValue` v0; `None` is a tombstone that forgets the id.
    pub value: Option<Bytes>,
}

fn record_of(meta: &TxnMetadata) -> TxnRecord {
    TxnRecord {
        key: records::encode_key(&meta.transactional_id),
        value: Some(records::encode_value(meta)),
    }
}

/// COMMIT or ABORT markers the wiring must write to every partition of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerJob {
    /// The transaction's `transactional.id`, to call [`TxnCoordinator::complete`] with.
    pub transactional_id: String,
    /// Producer id the markers carry.
    pub producer_id: i64,
    /// Producer epoch the markers carry (after any fencing bump).
    pub producer_epoch: i16,
    /// True for COMMIT markers, false for ABORT.
    pub commit: bool,
    /// Every (topic, partition) of the transaction; each gets one marker.
    pub partitions: Vec<(String, i32)>,
}

/// Why a request is refused; each is one Kafka error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    /// The requested transaction timeout is not positive or exceeds `transaction.max.timeout.ms`
    /// (INVALID_TRANSACTION_TIMEOUT).
    #[error("transaction timeout is above transaction.max.timeout.ms")]
    InvalidTimeout,
    /// The transactional id is unknown or bound to another producer id
    /// (INVALID_PRODUCER_ID_MAPPING).
    #[error("the producer id is not the one assigned to this transactional id")]
    InvalidProducerIdMapping,
    /// The request's epoch (or, at InitProducerId, producer id) is not the current one:
    /// PRODUCER_FENCED, or INVALID_PRODUCER_EPOCH for clients too old to know it.
    #[error("a newer producer with this transactional id fenced this one")]
    ProducerFenced,
    /// The previous transaction's markers are still being written; the client retries
    /// (CONCURRENT_TRANSACTIONS).
    #[error("the transaction is completing; retry")]
    ConcurrentTransactions,
    /// The request does not fit the transaction's status, e.g. a commit of an aborting one
    /// (INVALID_TXN_STATE).
    #[error("the request is not valid in the transaction's state")]
    InvalidTxnState,
    /// The producer id allocator gave none (answered UNKNOWN_SERVER_ERROR).
    #[error("cannot allocate a producer id")]
    ProducerIdUnavailable,
}

/// What InitProducerId produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitOutcome {
    /// The producer may start: persist `record`, answer (producer_id, epoch).
    Ready {
        /// Producer id to answer with.
        producer_id: i64,
        /// Producer epoch to answer with.
        producer_epoch: i16,
        /// The `__transaction_state` record to persist before answering.
        record: TxnRecord,
    },
    /// An open transaction of the old producer had to be aborted first (fencing): persist
    /// `record`, write the markers, `complete`, then call init again.
    AbortFirst {
        /// The old transaction, now PrepareAbort under a bumped epoch: persist it first.
        record: TxnRecord,
        /// ABORT markers for the old transaction's partitions.
        job: MarkerJob,
    },
}

/// What EndTxn v5 produced: the producer id and epoch the producer continues with, and,
/// unless the request was a retry of a finished end, the record and markers to carry out as
/// for [`TxnCoordinator::end_txn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedV2 {
    /// The `__transaction_state` record (PrepareCommit/PrepareAbort) and the marker job;
    /// `None` for a retried EndTxn whose transaction already completed.
    pub work: Option<(TxnRecord, MarkerJob)>,
    /// Producer id to answer with (a new one after an epoch overflow).
    pub producer_id: i64,
    /// Producer epoch to answer with (the bumped one; 0 after an epoch overflow).
    pub producer_epoch: i16,
}

/// Transaction ids coordinated by one shard.
#[derive(Debug)]
pub struct TxnCoordinator {
    max_timeout_ms: i32,
    txns: HashMap<String, TxnMetadata>,
}

/// Epochs stop short of i16::MAX so a bump never overflows; past it a new id is given.
const MAX_EPOCH: i16 = i16::MAX - 1;

impl TxnCoordinator {
    /// A coordinator without ids; `max_timeout_ms` is `transaction.max.timeout.ms`, the cap on
    /// a producer's transaction timeout.
    pub fn new(max_timeout_ms: i32) -> Self {
        Self {
            max_timeout_ms,
            txns: HashMap::new(),
        }
    }

    /// The metadata of `transactional_id`; `None` when this shard does not hold it.
    pub fn get(&self, transactional_id: &str) -> Option<&TxnMetadata> {
        self.txns.get(transactional_id)
    }

    /// Forgets the ids `lost` picks, writing nothing: their `__transaction_state` partition
    /// moved to another coordinator, which loads them from the log. Returns how many.
    pub fn unload(&mut self, mut lost: impl FnMut(&str) -> bool) -> usize {
        let before = self.txns.len();
        self.txns.retain(|id, _| !lost(id));
        before - self.txns.len()
    }

    /// Every transactional id this shard holds, in no particular order.
    pub fn all(&self) -> impl Iterator<Item = &TxnMetadata> {
        self.txns.values()
    }

    /// InitProducerId with a transactional id. `expected` is the (id, epoch) a KIP-360
    /// client sends to keep its producer id while bumping the epoch.
    pub fn init_producer_id(
        &mut self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        now_ms: i64,
        allocate: impl FnOnce() -> Option<i64>,
    ) -> Result<InitOutcome, TxnError> {
        if timeout_ms <= 0 || timeout_ms > self.max_timeout_ms {
            return Err(TxnError::InvalidTimeout);
        }
        let Some(meta) = self.txns.get_mut(transactional_id) else {
            let producer_id = allocate().ok_or(TxnError::ProducerIdUnavailable)?;
            let meta = TxnMetadata {
                transactional_id: transactional_id.to_owned(),
                producer_id,
                producer_epoch: 0,
                timeout_ms,
                status: TxnStatus::Empty,
                partitions: BTreeSet::new(),
                last_update_ms: now_ms,
                start_ms: -1,
                timed_out_epoch: None,
                tv2: Default::default(),
            };
            let record = record_of(&meta);
            self.txns.insert(transactional_id.to_owned(), meta);
            return Ok(InitOutcome::Ready {
                producer_id,
                producer_epoch: 0,
                record,
            });
        };
        let resumes_after_timeout = meta.timed_out_epoch.is_some()
            && expected.map(|(_, epoch)| epoch) == meta.timed_out_epoch;
        if let Some((id, epoch)) = expected
            && (id != meta.producer_id || (epoch != meta.producer_epoch && !resumes_after_timeout))
        {
            // An older incarnation asking to continue: a newer one took over.
            return Err(TxnError::ProducerFenced);
        }
        match meta.status {
            s if s.is_preparing() => return Err(TxnError::ConcurrentTransactions),
            TxnStatus::Ongoing => {
                // Fence the old producer: its open transaction is aborted under a new
                // epoch, so its late writes and its EndTxn are refused.
                bump_epoch(meta, allocate)?;
                meta.timed_out_epoch = None;
                let job = begin_end(meta, false, now_ms);
                return Ok(InitOutcome::AbortFirst {
                    record: record_of(meta),
                    job,
                });
            }
            _ => {}
        }
        bump_epoch(meta, allocate)?;
        meta.timed_out_epoch = None;
        // A new incarnation declares its transaction version again by what it sends.
        meta.tv2 = Default::default();
        meta.timeout_ms = timeout_ms;
        meta.status = TxnStatus::Empty;
        meta.partitions.clear();
        meta.start_ms = -1;
        meta.last_update_ms = now_ms;
        Ok(InitOutcome::Ready {
            producer_id: meta.producer_id,
            producer_epoch: meta.producer_epoch,
            record: record_of(meta),
        })
    }

    /// Whether the producer of `transactional_id` has used up its epochs, so that ending its
    /// transaction under version 2 needs a new producer id (allocated before the call in a
    /// cluster, where ids come from the quorum).
    pub fn epoch_exhausted(&self, transactional_id: &str) -> bool {
        self.txns
            .get(transactional_id)
            .is_some_and(|m| m.producer_epoch >= MAX_EPOCH)
    }

    /// Checks that (producer_id, epoch) is the current producer of `transactional_id`.
    fn current(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<&mut TxnMetadata, TxnError> {
        let meta = self
            .txns
            .get_mut(transactional_id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        if meta.producer_id != producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if meta.producer_epoch != producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        Ok(meta)
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn (with the group's `__consumer_offsets`
    /// partition): the transaction becomes Ongoing. `None` when nothing changed.
    pub fn add_partitions(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<Option<TxnRecord>, TxnError> {
        let meta = self.current(transactional_id, producer_id, producer_epoch)?;
        add_to(meta, partitions, now_ms)
    }

    /// Transaction version 2: `partitions` join the producer's transaction because it wrote
    /// to them (a partition leader's AddPartitionsToTxn v5, or TxnOffsetCommit v5 for the
    /// group's `__consumer_offsets` partition). The same rules as [`Self::add_partitions`];
    /// the producer is marked as a version 2 one. `None` when nothing changed.
    pub fn add_partitions_implicitly(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<Option<TxnRecord>, TxnError> {
        let meta = self.current(transactional_id, producer_id, producer_epoch)?;
        let record = add_to(meta, partitions, now_ms)?;
        meta.tv2.enabled = true;
        Ok(record)
    }

    /// Whether `partition` was added to the open transaction of this producer (for
    /// TxnOffsetCommit and produce checks on this shard).
    pub fn has_partition(
        &self,
        transactional_id: &str,
        producer_id: i64,
        partition: &(String, i32),
    ) -> bool {
        self.txns.get(transactional_id).is_some_and(|m| {
            m.producer_id == producer_id
                && m.status == TxnStatus::Ongoing
                && m.partitions.contains(partition)
        })
    }

    /// Whether producer (id, epoch) may write transactional data to `partition` now: its
    /// transaction is open and the partition was added to it. Partition leaders ask this
    /// before the first transactional batch of a producer, so a batch the coordinator does
    /// not know of never holds back a partition's LSO forever (Kafka's KIP-890 check).
    pub fn verify_partition(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partition: &(String, i32),
    ) -> Result<(), TxnError> {
        let meta = self
            .txns
            .get(transactional_id)
            .filter(|m| m.producer_id == producer_id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        if producer_epoch != meta.producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        if meta.status == TxnStatus::Ongoing && meta.partitions.contains(partition) {
            Ok(())
        } else {
            Err(TxnError::InvalidTxnState)
        }
    }

    /// EndTxn. `Ok(None)` for a retried EndTxn whose transaction already completed the same
    /// way; otherwise the record (PrepareCommit/PrepareAbort) and the marker job.
    pub fn end_txn(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<Option<(TxnRecord, MarkerJob)>, TxnError> {
        let meta = self.current(transactional_id, producer_id, producer_epoch)?;
        match (meta.status, commit) {
            (TxnStatus::Ongoing, _) => {
                let job = begin_end(meta, commit, now_ms);
                Ok(Some((record_of(meta), job)))
            }
            (TxnStatus::CompleteCommit, true) | (TxnStatus::CompleteAbort, false) => Ok(None),
            (TxnStatus::PrepareCommit, true) | (TxnStatus::PrepareAbort, false) => {
                Err(TxnError::ConcurrentTransactions)
            }
            // An abort with nothing begun is harmless: the client may abort after an error
            // that came before its first AddPartitions.
            (TxnStatus::Empty, false) => Ok(None),
            _ => Err(TxnError::InvalidTxnState),
        }
    }

    /// EndTxn v5 (transaction version 2): as [`Self::end_txn`], but the epoch is bumped as
    /// the end is prepared (a new producer id follows an exhausted epoch) and the answer
    /// carries the producer id and epoch to continue with. Kafka's rules for telling a retry
    /// from a new request are in the module doc.
    pub fn end_txn_v2(
        &mut self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        now_ms: i64,
        allocate: impl FnOnce() -> Option<i64>,
    ) -> Result<EndedV2, TxnError> {
        let meta = self
            .txns
            .get_mut(transactional_id)
            .ok_or(TxnError::InvalidProducerIdMapping)?;
        let retry_on_overflow = meta.tv2.previous_producer_id == Some(producer_id)
            && producer_epoch == MAX_EPOCH
            && meta.producer_epoch == 0;
        let retry_on_bump = i32::from(meta.producer_epoch) == i32::from(producer_epoch) + 1;
        if meta.producer_id != producer_id && !retry_on_overflow {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        let same_epoch = producer_epoch == meta.producer_epoch;
        let valid_epoch = match meta.status {
            TxnStatus::PrepareCommit | TxnStatus::PrepareAbort => retry_on_bump,
            TxnStatus::CompleteCommit | TxnStatus::CompleteAbort => {
                retry_on_bump || retry_on_overflow || same_epoch
            }
            _ => same_epoch,
        };
        if !valid_epoch {
            return Err(TxnError::ProducerFenced);
        }
        let retry = retry_on_bump || retry_on_overflow;
        let finished = |meta: &TxnMetadata| EndedV2 {
            work: None,
            producer_id: meta.producer_id,
            producer_epoch: meta.producer_epoch,
        };
        match (meta.status, commit) {
            (TxnStatus::Ongoing, _) => {}
            (TxnStatus::CompleteCommit, true) | (TxnStatus::CompleteAbort, false) if retry => {
                return Ok(finished(meta));
            }
            // A new abort with nothing open: still a transaction end, with its epoch bump.
            (TxnStatus::CompleteCommit | TxnStatus::CompleteAbort | TxnStatus::Empty, false)
                if !retry =>
            {
                meta.partitions.clear();
                meta.start_ms = now_ms;
            }
            (TxnStatus::PrepareCommit, true) | (TxnStatus::PrepareAbort, false) => {
                return Err(TxnError::ConcurrentTransactions);
            }
            _ => return Err(TxnError::InvalidTxnState),
        }
        let next_producer_id = if meta.producer_epoch >= MAX_EPOCH {
            Some(allocate().ok_or(TxnError::ProducerIdUnavailable)?)
        } else {
            None
        };
        // Up to i16::MAX: the markers of an exhausted epoch use the one value left, and the
        // producer moves to `next_producer_id` before it writes again.
        meta.producer_epoch = meta.producer_epoch.saturating_add(1);
        meta.tv2.enabled = true;
        meta.tv2.next_producer_id = next_producer_id;
        meta.timed_out_epoch = None;
        let job = begin_end(meta, commit, now_ms);
        let (answer_id, answer_epoch) = match next_producer_id {
            Some(id) => (id, 0),
            None => (meta.producer_id, meta.producer_epoch),
        };
        Ok(EndedV2 {
            work: Some((record_of(meta), job)),
            producer_id: answer_id,
            producer_epoch: answer_epoch,
        })
    }

    /// Markers written: PrepareCommit → CompleteCommit, PrepareAbort → CompleteAbort; a
    /// version 2 producer whose epoch was exhausted moves to its next producer id.
    pub fn complete(&mut self, transactional_id: &str, now_ms: i64) -> Option<TxnRecord> {
        let meta = self.txns.get_mut(transactional_id)?;
        meta.status = match meta.status {
            TxnStatus::PrepareCommit => TxnStatus::CompleteCommit,
            TxnStatus::PrepareAbort => TxnStatus::CompleteAbort,
            _ => return None,
        };
        if let Some(next) = meta.tv2.next_producer_id.take() {
            meta.tv2.previous_producer_id = Some(meta.producer_id);
            meta.producer_id = next;
            meta.producer_epoch = 0;
        }
        meta.partitions.clear();
        meta.last_update_ms = now_ms;
        Some(record_of(meta))
    }

    /// Aborts every Ongoing transaction older than its timeout, fencing its producer with
    /// an epoch bump as Kafka does (the producer must re-initialise).
    pub fn expire(&mut self, now_ms: i64) -> Vec<(TxnRecord, MarkerJob)> {
        let mut out = Vec::new();
        for meta in self.txns.values_mut() {
            let expired = meta.status == TxnStatus::Ongoing
                && now_ms >= meta.start_ms.saturating_add(meta.timeout_ms.into());
            // Version 2: the fence's bump, then the abort's own, so the producer's EndTxn of
            // its old epoch is fenced instead of looking like a retry of this abort.
            let bump = if meta.tv2.enabled { 2 } else { 1 };
            if !expired || meta.producer_epoch > MAX_EPOCH - bump {
                continue;
            }
            meta.timed_out_epoch = Some(meta.producer_epoch);
            meta.producer_epoch += bump;
            let job = begin_end(meta, false, now_ms);
            out.push((record_of(meta), job));
        }
        out
    }

    /// Forgets transactional ids with no transaction running (Empty, CompleteCommit,
    /// CompleteAbort) and no request for `expiration_ms` (`transactional.id.expiration.ms`).
    /// Returns their tombstones for `__transaction_state`, so a restart forgets them too.
    pub fn expire_ids(&mut self, now_ms: i64, expiration_ms: i64) -> Vec<TxnRecord> {
        let expired: Vec<String> = self
            .txns
            .values()
            .filter(|m| {
                matches!(
                    m.status,
                    TxnStatus::Empty | TxnStatus::CompleteCommit | TxnStatus::CompleteAbort
                ) && now_ms.saturating_sub(m.last_update_ms) >= expiration_ms
            })
            .map(|m| m.transactional_id.clone())
            .collect();
        expired
            .into_iter()
            .map(|id| {
                self.txns.remove(&id);
                TxnRecord {
                    key: records::encode_key(&id),
                    value: None,
                }
            })
            .collect()
    }

    /// The earliest time an Ongoing transaction times out.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.txns
            .values()
            .filter(|m| m.status == TxnStatus::Ongoing)
            .map(|m| m.start_ms.saturating_add(m.timeout_ms.into()))
            .min()
    }

    /// Transactions left half-ended by a crash (replayed in PrepareCommit/PrepareAbort):
    /// their markers must be written again (markers are idempotent for readers).
    pub fn unfinished(&self) -> Vec<MarkerJob> {
        self.txns
            .values()
            .filter(|m| m.status.is_preparing())
            .map(|m| job_of(m, m.status == TxnStatus::PrepareCommit))
            .collect()
    }

    /// Applies one `__transaction_state` record during start-up replay.
    pub fn replay(
        &mut self,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> Result<(), records::TxnRecordError> {
        let id = records::decode_key(key)?;
        match value {
            None => {
                self.txns.remove(&id);
            }
            Some(value) => {
                let meta = records::decode_value(&id, value)?;
                self.txns.insert(id, meta);
            }
        }
        Ok(())
    }
}

/// AddPartitions' rules on one id: refused while markers are written or in a status no
/// transaction may begin from; the first add after Empty/Complete* begins a transaction.
fn add_to(
    meta: &mut TxnMetadata,
    partitions: &[(String, i32)],
    now_ms: i64,
) -> Result<Option<TxnRecord>, TxnError> {
    if meta.status.is_preparing() {
        return Err(TxnError::ConcurrentTransactions);
    }
    if matches!(meta.status, TxnStatus::Dead | TxnStatus::PrepareEpochFence) {
        return Err(TxnError::InvalidTxnState);
    }
    let already =
        meta.status == TxnStatus::Ongoing && partitions.iter().all(|p| meta.partitions.contains(p));
    if already {
        return Ok(None);
    }
    if meta.status != TxnStatus::Ongoing {
        meta.status = TxnStatus::Ongoing;
        meta.partitions.clear();
        meta.start_ms = now_ms;
    }
    meta.partitions.extend(partitions.iter().cloned());
    meta.last_update_ms = now_ms;
    Ok(Some(record_of(meta)))
}

fn bump_epoch(
    meta: &mut TxnMetadata,
    allocate: impl FnOnce() -> Option<i64>,
) -> Result<(), TxnError> {
    if meta.producer_epoch >= MAX_EPOCH {
        meta.producer_id = allocate().ok_or(TxnError::ProducerIdUnavailable)?;
        meta.producer_epoch = 0;
    } else {
        meta.producer_epoch += 1;
    }
    Ok(())
}

fn begin_end(meta: &mut TxnMetadata, commit: bool, now_ms: i64) -> MarkerJob {
    meta.status = if commit {
        TxnStatus::PrepareCommit
    } else {
        TxnStatus::PrepareAbort
    };
    meta.last_update_ms = now_ms;
    job_of(meta, commit)
}

fn job_of(meta: &TxnMetadata, commit: bool) -> MarkerJob {
    MarkerJob {
        transactional_id: meta.transactional_id.clone(),
        producer_id: meta.producer_id,
        producer_epoch: meta.producer_epoch,
        commit,
        partitions: meta.partitions.iter().cloned().collect(),
    }
}
