//! What the transaction coordinator persists per transactional id: its status (Kafka's
//! `TransactionState` ids) and metadata, as plain data shared by the state machine (`state`)
//! and the `__transaction_state` record format (`records`). Held on the shard that owns the
//! id's `__transaction_state` partition.

use std::collections::{BTreeMap, BTreeSet};

/// Kafka's `TransactionState` ids, as stored in `TransactionLogValue.transaction_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum TxnStatus {
    Empty = 0,
    Ongoing = 1,
    PrepareCommit = 2,
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
    Dead = 6,
    PrepareEpochFence = 7,
}

impl TxnStatus {
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
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub status: TxnStatus,
    pub partitions: BTreeSet<(String, i32)>,
    pub last_update_ms: i64,
    /// When the current transaction began (first AddPartitions/AddOffsets); -1 if none.
    pub start_ms: i64,
    /// The epoch a timeout abort fenced, kept in memory only (as Kafka does): that producer
    /// may come back with InitProducerId (KIP-360) and continue under a bumped epoch,
    /// since nobody else took the id over.
    pub timed_out_epoch: Option<i16>,
}

impl TxnMetadata {
    pub fn partitions_by_topic(&self) -> BTreeMap<&str, Vec<i32>> {
        let mut out: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (topic, p) in &self.partitions {
            out.entry(topic.as_str()).or_default().push(*p);
        }
        out
    }
}
