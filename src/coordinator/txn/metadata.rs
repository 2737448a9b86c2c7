//! What the transaction coordinator persists per transactional id: its status (Kafka's
//! `TransactionState` ids) and metadata, as plain data shared by the state machine (`state`)
//! and the `__transaction_state` record format (`records`). Held on the shard that owns the
//! id's `__transaction_state` partition.

use std::collections::{BTreeMap, BTreeSet};

/// Kafka's `TransactionState` ids, as stored in `TransactionLogValue.transaction_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum TxnStatus {
    /// No transaction begun since InitProducerId.
    Empty = 0,
    /// A transaction is open: partitions or offsets were added to it.
    Ongoing = 1,
    /// EndTxn(commit) accepted and persisted; COMMIT markers are being written.
    PrepareCommit = 2,
    /// Aborting (EndTxn(abort), timeout or fencing); ABORT markers are being written.
    PrepareAbort = 3,
    /// COMMIT markers written; the id may begin its next transaction.
    CompleteCommit = 4,
    /// ABORT markers written; the id may begin its next transaction.
    CompleteAbort = 5,
    /// Kafka's status of an expiring id. Never set here (expiry writes a tombstone); an id read
    /// back in it refuses AddPartitions with INVALID_TXN_STATE.
    Dead = 6,
    /// Kafka's status while it fences an epoch. Never set here; decoded so every Kafka id reads.
    PrepareEpochFence = 7,
}

impl TxnStatus {
    /// The status with Kafka's id `b`; `None` for an id Kafka does not define.
    pub fn from_byte(b: i8) -> Option<Self> {
        Some(match b {
            0 => Self::Empty,
            1 => Self::Ongoing,
            2 => Self::PrepareCommit,
            3 => Self::PrepareAbort,
            4 => Self::CompleteCommit,
            5 => Self::CompleteAbort,
            6 => Self::Dead,
            7 => Self::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name DescribeTransactions and ListTransactions report (Kafka's spelling).
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Ongoing => "Ongoing",
            Self::PrepareCommit => "PrepareCommit",
            Self::PrepareAbort => "PrepareAbort",
            Self::CompleteCommit => "CompleteCommit",
            Self::CompleteAbort => "CompleteAbort",
            Self::Dead => "Dead",
            Self::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub(super) fn is_preparing(self) -> bool {
        matches!(self, Self::PrepareCommit | Self::PrepareAbort)
    }
}

/// The persisted state of one transactional id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    /// The producer's `transactional.id`; the key in `__transaction_state`.
    pub transactional_id: String,
    /// Producer id bound to the transactional id; a new one is allocated when the epoch would
    /// overflow.
    pub producer_id: i64,
    /// Current epoch, bumped by each InitProducerId and by a timeout abort; requests with an
    /// older one are fenced.
    pub producer_epoch: i16,
    /// `transaction.timeout.ms` from InitProducerId: an Ongoing transaction older than this is
    /// aborted.
    pub timeout_ms: i32,
    /// Status of the current (or last) transaction, persisted as Kafka's `TransactionState` id.
    pub status: TxnStatus,
    /// (topic, partition) pairs of the current transaction, each to get a marker; cleared when
    /// the markers are written.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the id last changed, ms since the Unix epoch; `transactional.id.expiration.ms`
    /// counts from it.
    pub last_update_ms: i64,
    /// When the current transaction began (first AddPartitions/AddOffsets); -1 if none.
    pub start_ms: i64,
    /// The epoch a timeout abort fenced, kept in memory only (as Kafka does): that producer
    /// may come back with InitProducerId (KIP-360) and continue under a bumped epoch,
    /// since nobody else took the id over.
    pub timed_out_epoch: Option<i16>,
    /// Transaction version 2 (KIP-890 part 2) state of the producer, in memory only.
    pub tv2: Tv2State,
}

/// What the coordinator knows of a producer using transaction version 2 (KIP-890 part 2).
/// Kept in memory only: the records stay `TransactionLogValue` v0, which has no field for it.
/// After a restart a producer is treated as version 1 until its next EndTxn v5 or implicit
/// add, which only changes how a timeout abort fences it (see `TxnCoordinator::expire`) and
/// whether an EndTxn retried across an epoch overflow is recognised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tv2State {
    /// The producer adds partitions by producing (or committing offsets) and ends each
    /// transaction with EndTxn v5, which bumps its epoch.
    pub enabled: bool,
    /// An EndTxn v5 that exhausted the epoch: the producer id it moves to, with epoch 0, once
    /// the markers (written under epoch `i16::MAX`) are all written.
    pub next_producer_id: Option<i64>,
    /// The producer id before the last such move, so a retry of that EndTxn (old id, epoch
    /// `i16::MAX - 1`) is answered as a retry rather than refused.
    pub previous_producer_id: Option<i64>,
}

impl TxnMetadata {
    /// `partitions` grouped by topic: topics by name, partitions ascending.
    pub fn partitions_by_topic(&self) -> BTreeMap<&str, Vec<i32>> {
        let mut out: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, p) in &self.partitions {
            out.entry(topic.as_str()).or_default().push(*p);
        }
        out
    }
}
