//! The one mapping from Sluice's typed errors to Kafka error codes, as `From` impls on
//! `kafka_protocol::ResponseError`: handlers and the shard's coordinator wiring convert with
//! `ResponseError::from(&e)` and never match on another module's error variants themselves.
//! Pure functions; used on every shard.

use kafka_protocol::ResponseError;

use crate::shard::PartitionError;
use crate::storage::log::AppendError;
use crate::storage::producer_state::SequenceError;
use crate::storage::validate::is_invalid_record;

impl From<&PartitionError> for ResponseError {
    fn from(e: &PartitionError) -> Self {
        match e {
            PartitionError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
            PartitionError::NotLeader => ResponseError::NotLeaderOrFollower,
            PartitionError::Storage(_) => ResponseError::KafkaStorageError,
        }
    }
}

impl From<&AppendError> for ResponseError {
    /// Kafka's codes for refused produce data: INVALID_RECORD for records that disagree with
    /// their batch or are malformed (as Kafka's LogValidator throws), CORRUPT_MESSAGE for a bad
    /// CRC, framing or undecodable compressed bytes.
    fn from(e: &AppendError) -> Self {
        if is_invalid_record(e) {
            return ResponseError::InvalidRecord;
        }
        match e {
            AppendError::Corrupt(_) | AppendError::Empty => ResponseError::CorruptMessage,
            AppendError::TooLarge { .. }
            | AppendError::InvalidRecords(
                crate::protocol::batch_validation::RecordsError::DecompressedTooLarge { .. },
            ) => ResponseError::MessageTooLarge,
            AppendError::InvalidRecords(_) => ResponseError::CorruptMessage,
            AppendError::MissingKey { .. } => ResponseError::InvalidRecord,
            AppendError::OffsetMismatch { .. } => ResponseError::OffsetOutOfRange,
            AppendError::Storage(_) | AppendError::Invariant(_) => ResponseError::KafkaStorageError,
            AppendError::Sequence(SequenceError::StaleEpoch { .. }) => {
                ResponseError::InvalidProducerEpoch
            }
            AppendError::Sequence(SequenceError::OutOfOrder { .. }) => {
                ResponseError::OutOfOrderSequenceNumber
            }
            AppendError::Sequence(SequenceError::StaleCoordinator { .. }) => {
                ResponseError::TransactionCoordinatorFenced
            }
        }
    }
}
