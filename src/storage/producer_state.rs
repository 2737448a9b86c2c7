//! Idempotent-producer state of one partition: per producer id, the current epoch and the
//! sequence ranges of its last five batches, so a retried batch is answered with its
//! original offset instead of being appended twice, and a gap is refused; and the coordinator
//! epoch of its last transaction marker, so a zombie coordinator's marker is refused. Rebuilt at start-up
//! from the active segment's batch headers; a producer idle for `producer.id.expiration.ms` is
//! forgotten. Lives in the partition log, on its shard.

use std::collections::{HashMap, VecDeque};

/// Batches remembered per producer, as Kafka does (max.in.flight.requests <= 5).
const REMEMBERED_BATCHES: usize = 5;

/// The idempotence fields of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchIdentity {
    /// Producer id from the batch header; -1 for a non-idempotent producer.
    pub producer_id: i64,
    /// Producer epoch; a higher one fences the producer's older instances.
    pub producer_epoch: i16,
    /// Sequence number of the batch's first record; -1 when the batch has none.
    pub base_sequence: i32,
    /// Last offset minus base offset: the batch covers sequences `base..=base + delta` (wrapping).
    pub last_offset_delta: i32,
    /// A control batch (transaction marker): it carries the producer's epoch but no
    /// sequence, so it moves the epoch forward and is never checked for duplicates.
    pub control: bool,
    /// A transaction marker's coordinator epoch (the writing coordinator's generation);
    /// -1 for every other batch.
    pub coordinator_epoch: i32,
}

impl BatchIdentity {
    /// Whether the batch takes part in sequence checking: a producer id, a sequence, and not a
    /// control batch.
    pub fn is_idempotent(&self) -> bool {
        // Coordinator-written transactional batches (TxnOffsetCommit) carry no sequence.
        self.producer_id >= 0 && !self.control && self.base_sequence >= 0
    }
    fn last_sequence(&self) -> i32 {
        wrapping_sequence(self.base_sequence, self.last_offset_delta)
    }
}

/// Sequences wrap from i32::MAX back to 0, as in Kafka.
fn wrapping_sequence(base: i32, delta: i32) -> i32 {
    ((i64::from(base) + i64::from(delta)) % (i64::from(i32::MAX) + 1)) as i32
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RememberedBatch {
    first_sequence: i32,
    last_sequence: i32,
    last_offset: i64,
    last_offset_delta: i32,
}

#[derive(Debug, Clone, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<RememberedBatch>,
    /// When this producer last wrote here (append time; at start-up, the batch timestamps).
    last_timestamp_ms: i64,
    /// The newest coordinator epoch of this producer's markers here, if any: a marker from an
    /// older coordinator generation is refused.
    coordinator_epoch: Option<i32>,
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Append,
    /// Already in the log: answer with this base offset, append nothing.
    Duplicate {
        /// Offset the batch's first record got when it was first appended.
        base_offset: i64,
    },
}

/// Why an idempotent batch was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    /// The batch's epoch is below the producer's current one on this partition (a fenced,
    /// zombie producer); INVALID_PRODUCER_EPOCH.
    #[error("producer epoch {got} is older than the current epoch {current}")]
    StaleEpoch {
        /// The batch's epoch.
        got: i16,
        /// The producer's current epoch here.
        current: i16,
    },
    /// A transaction marker from an older coordinator generation than one that already wrote
    /// a marker of this producer here (a zombie coordinator); TRANSACTION_COORDINATOR_FENCED.
    #[error("coordinator epoch {got} is older than the current coordinator epoch {current}")]
    StaleCoordinator {
        /// The marker's coordinator epoch.
        got: i32,
        /// The newest coordinator epoch seen here for the producer.
        current: i32,
    },
    /// The batch's first sequence is not one past the producer's last, nor 0 after an epoch
    /// bump, nor a retry of a remembered batch; OUT_OF_ORDER_SEQUENCE_NUMBER.
    #[error("out of order sequence: expected {expected}, got {got}")]
    OutOfOrder {
        /// The sequence the next batch must start with.
        expected: i32,
        /// The batch's first sequence.
        got: i32,
    },
}

/// The idempotent producers of one partition log, keyed by producer id.
#[derive(Debug, Default)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStates {
    /// Checks an idempotent batch against what this producer wrote before.
    pub fn check(&self, batch: &BatchIdentity) -> Result<SequenceCheck, SequenceError> {
        let Some(entry) = self.producers.get(&batch.producer_id) else {
            // Unknown producer (new, or its state expired with old segments): accept.
            return Ok(SequenceCheck::Append);
        };
        if batch.producer_epoch < entry.epoch {
            return Err(SequenceError::StaleEpoch {
                got: batch.producer_epoch,
                current: entry.epoch,
            });
        }
        if batch.producer_epoch > entry.epoch {
            // A bumped epoch restarts sequences at 0.
            if batch.base_sequence != 0 {
                return Err(SequenceError::OutOfOrder {
                    expected: 0,
                    got: batch.base_sequence,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        if let Some(dup) = entry.batches.iter().find(|b| {
            b.first_sequence == batch.base_sequence && b.last_sequence == batch.last_sequence()
        }) {
            return Ok(SequenceCheck::Duplicate {
                base_offset: dup.last_offset - i64::from(dup.last_offset_delta),
            });
        }
        let expected = entry
            .batches
            .back()
            .map(|b| wrapping_sequence(b.last_sequence, 1))
            .unwrap_or(0);
        if batch.base_sequence != expected {
            return Err(SequenceError::OutOfOrder {
                expected,
                got: batch.base_sequence,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Checks a transaction marker of a coordinator as Kafka's partition leader does: its
    /// producer epoch may not be older than the producer's here (INVALID_PRODUCER_EPOCH), nor
    /// its coordinator epoch older than that of the producer's last marker here.
    pub fn check_marker(&self, batch: &BatchIdentity) -> Result<(), SequenceError> {
        let Some(entry) = self.producers.get(&batch.producer_id) else {
            return Ok(());
        };
        if batch.producer_epoch < entry.epoch {
            return Err(SequenceError::StaleEpoch {
                got: batch.producer_epoch,
                current: entry.epoch,
            });
        }
        match entry.coordinator_epoch {
            Some(current) if batch.coordinator_epoch < current => {
                Err(SequenceError::StaleCoordinator {
                    got: batch.coordinator_epoch,
                    current,
                })
            }
            _ => Ok(()),
        }
    }

    /// Records an appended idempotent batch, written at `timestamp_ms`.
    pub fn record(&mut self, batch: &BatchIdentity, last_offset: i64, timestamp_ms: i64) {
        if batch.control && batch.producer_id >= 0 {
            self.record_marker(batch, timestamp_ms);
            return;
        }
        if !batch.is_idempotent() {
            return;
        }
        let entry = self.producers.entry(batch.producer_id).or_default();
        entry.last_timestamp_ms = entry.last_timestamp_ms.max(timestamp_ms);
        if batch.producer_epoch != entry.epoch {
            entry.epoch = batch.producer_epoch;
            entry.batches.clear();
        }
        if entry.batches.len() == REMEMBERED_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(RememberedBatch {
            first_sequence: batch.base_sequence,
            last_sequence: batch.last_sequence(),
            last_offset,
            last_offset_delta: batch.last_offset_delta,
        });
    }

    /// A marker written under a newer epoch (the coordinator fenced the producer) makes
    /// that epoch current here, so the old producer's late batches are refused.
    fn record_marker(&mut self, batch: &BatchIdentity, timestamp_ms: i64) {
        let entry = self.producers.entry(batch.producer_id).or_default();
        entry.last_timestamp_ms = entry.last_timestamp_ms.max(timestamp_ms);
        if batch.producer_epoch > entry.epoch {
            entry.epoch = batch.producer_epoch;
            entry.batches.clear();
        }
        if batch.coordinator_epoch >= 0 {
            let newest = entry
                .coordinator_epoch
                .map_or(batch.coordinator_epoch, |e| e.max(batch.coordinator_epoch));
            entry.coordinator_epoch = Some(newest);
        }
    }

    /// Forgets producers that wrote nothing for `expiration_ms` (`producer.id.expiration.ms`),
    /// except those `in_transaction` says have a transaction open here. Returns how many.
    /// A forgotten producer that comes back is treated as new, as in Kafka.
    pub fn expire(
        &mut self,
        now_ms: i64,
        expiration_ms: i64,
        in_transaction: impl Fn(i64) -> bool,
    ) -> usize {
        let before = self.producers.len();
        self.producers.retain(|id, e| {
            now_ms.saturating_sub(e.last_timestamp_ms) < expiration_ms || in_transaction(*id)
        });
        before - self.producers.len()
    }

    /// Every known producer: (id, epoch, last sequence or -1, last write time).
    pub fn describe(&self) -> Vec<(i64, i16, i32, i64)> {
        let mut out: Vec<(i64, i16, i32, i64)> = self
            .producers
            .iter()
            .map(|(id, e)| {
                (
                    *id,
                    e.epoch,
                    e.batches.back().map_or(-1, |b| b.last_sequence),
                    e.last_timestamp_ms,
                )
            })
            .collect();
        out.sort_unstable();
        out
    }

    /// Number of producers remembered (not yet expired).
    pub fn len(&self) -> usize {
        self.producers.len()
    }
    /// True when no producer is remembered.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(seq: i32, records: i32, epoch: i16) -> BatchIdentity {
        BatchIdentity {
            producer_id: 7,
            producer_epoch: epoch,
            base_sequence: seq,
            last_offset_delta: records - 1,
            control: false,
            coordinator_epoch: -1,
        }
    }

    fn marker(epoch: i16, coordinator_epoch: i32) -> BatchIdentity {
        BatchIdentity {
            base_sequence: -1,
            last_offset_delta: 0,
            control: true,
            coordinator_epoch,
            ..batch(0, 1, epoch)
        }
    }

    #[test]
    fn markers_of_fenced_producers_or_older_coordinators_are_refused() {
        let mut s = ProducerStates::default();
        // Nothing known of the producer: any marker goes.
        assert_eq!(s.check_marker(&marker(0, 3)), Ok(()));
        s.record(&batch(0, 1, 1), 0, 0);
        s.record(&marker(1, 3), 1, 0);
        assert_eq!(
            s.check_marker(&marker(0, 3)),
            Err(SequenceError::StaleEpoch { got: 0, current: 1 })
        );
        assert_eq!(
            s.check_marker(&marker(1, 2)),
            Err(SequenceError::StaleCoordinator { got: 2, current: 3 })
        );
        // The same generation again (a retry) and newer ones are accepted.
        assert_eq!(s.check_marker(&marker(1, 3)), Ok(()));
        assert_eq!(s.check_marker(&marker(2, 4)), Ok(()));
        s.record(&marker(2, 4), 2, 0);
        assert_eq!(
            s.check_marker(&marker(2, 3)),
            Err(SequenceError::StaleCoordinator { got: 3, current: 4 })
        );
    }

    #[test]
    fn markers_move_the_epoch_but_keep_sequences() {
        let mut s = ProducerStates::default();
        s.record(&batch(0, 2, 0), 1, 0);
        s.record(&marker(0, 0), 2, 0);
        assert_eq!(s.check(&batch(2, 1, 0)), Ok(SequenceCheck::Append));
        s.record(&marker(1, 0), 3, 0);
        assert_eq!(
            s.check(&batch(2, 1, 0)),
            Err(SequenceError::StaleEpoch { got: 0, current: 1 })
        );
        assert_eq!(s.check(&batch(0, 1, 1)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn duplicates_return_the_original_offset_and_gaps_are_refused() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(&batch(0, 3, 0)), Ok(SequenceCheck::Append));
        s.record(&batch(0, 3, 0), 12, 0);
        assert_eq!(
            s.check(&batch(0, 3, 0)),
            Ok(SequenceCheck::Duplicate { base_offset: 10 })
        );
        assert_eq!(
            s.check(&batch(4, 1, 0)),
            Err(SequenceError::OutOfOrder {
                expected: 3,
                got: 4
            })
        );
        assert_eq!(s.check(&batch(3, 1, 0)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerStates::default();
        for i in 0..6 {
            s.record(&batch(i, 1, 0), i64::from(i), 0);
        }
        assert_eq!(
            s.check(&batch(0, 1, 0)),
            Err(SequenceError::OutOfOrder {
                expected: 6,
                got: 0
            })
        );
        assert_eq!(
            s.check(&batch(1, 1, 0)),
            Ok(SequenceCheck::Duplicate { base_offset: 1 })
        );
    }

    #[test]
    fn epochs_fence_old_producers_and_restart_sequences() {
        let mut s = ProducerStates::default();
        s.record(&batch(0, 1, 1), 0, 0);
        assert_eq!(
            s.check(&batch(1, 1, 0)),
            Err(SequenceError::StaleEpoch { got: 0, current: 1 })
        );
        assert_eq!(
            s.check(&batch(5, 1, 2)),
            Err(SequenceError::OutOfOrder {
                expected: 0,
                got: 5
            })
        );
        assert_eq!(s.check(&batch(0, 1, 2)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn idle_producers_expire_unless_a_transaction_is_open() {
        let mut s = ProducerStates::default();
        s.record(&batch(0, 1, 0), 0, 1_000);
        let other = BatchIdentity {
            producer_id: 8,
            ..batch(0, 1, 0)
        };
        s.record(&other, 1, 1_000);
        assert_eq!(s.expire(5_000, 10_000, |_| false), 0);
        assert_eq!(s.expire(11_000, 10_000, |id| id == 8), 1);
        assert_eq!(s.describe(), vec![(8, 0, 0, 1_000)]);
        // A forgotten producer's next batch is accepted as from a new producer.
        assert_eq!(s.check(&batch(3, 1, 0)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let mut s = ProducerStates::default();
        s.record(&batch(i32::MAX - 1, 2, 0), 1, 0);
        assert_eq!(s.check(&batch(0, 1, 0)), Ok(SequenceCheck::Append));
    }
}
