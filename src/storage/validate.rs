//! Validation of the record batches a produce (or the broker's own coordinators) hands to a
//! partition log, before anything is appended: framing, magic, CRC-32C and codec of each
//! batch, the size limit, and every record inside it (count, offset deltas, lengths, varints;
//! see [`crate::protocol::batch_validation`]), plus the key requirement of compacted topics.
//! The result is a copy of the bytes ready for the log to patch and write, with the header
//! fields the log needs. Nothing is appended when any batch fails. Runs on the shard that
//! owns the partition; pure apart from the copy.

use crate::protocol::batch_validation::{self, RecordsError};
use crate::protocol::record_batch::{BatchError, BatchIter, BatchView};
use crate::storage::log::AppendError;
use crate::storage::producer_state::BatchIdentity;

/// Keyless records named in a refusal (KIP-467 `record_errors`). The client fails the whole
/// batch either way; the cap keeps a produce of millions of tiny keyless records from making
/// an equally long error response.
const MAX_KEYLESS_REPORTED: usize = batch_validation::MAX_KEYLESS;

/// Where one validated batch sits in the buffer, and the header fields the log needs.
#[derive(Debug, Clone, Copy)]
pub(super) struct BatchMeta {
    pub(super) start: usize,
    pub(super) size: usize,
    /// The batch's base offset as it arrived (a follower keeps it; a leader assigns its own).
    pub(super) base_offset: i64,
    /// The epoch of the leader that wrote the batch (a leader stamps its own).
    pub(super) leader_epoch: i32,
    pub(super) max_timestamp: i64,
    pub(super) identity: BatchIdentity,
    pub(super) transactional: bool,
    /// For a transaction marker: COMMIT (true) or ABORT (false).
    pub(super) marker: Option<bool>,
}

/// Batches checked by [`validate_batches`], copied into one buffer ready to be patched.
pub struct ValidatedBatches {
    pub(super) bytes: Vec<u8>,
    pub(super) batches: Vec<BatchMeta>,
    /// Records in all the batches, as their headers count them (the flush policy's
    /// `flush.messages` counts these).
    pub record_count: i64,
}

/// Validates every batch of an append (see the module doc) and copies them into a buffer
/// the log can patch and write. For the broker's own batches and topics without a key
/// requirement; produces go through [`validate_produce`].
pub fn validate_batches(
    records: &[u8],
    max_message_bytes: usize,
) -> Result<ValidatedBatches, AppendError> {
    validate_produce(records, max_message_bytes, false)
}

/// [`validate_batches`] for a client's produce: `require_keys` (compacted topics, as in
/// Kafka) refuses records without a key, naming their positions in the produce.
pub fn validate_produce(
    records: &[u8],
    max_message_bytes: usize,
    require_keys: bool,
) -> Result<ValidatedBatches, AppendError> {
    let limit = batch_validation::decompressed_limit(max_message_bytes);
    let mut batches = Vec::new();
    let mut keyless = Vec::new();
    let mut at = 0usize;
    let mut record_count = 0i64;
    for view in BatchIter::new(records, true) {
        let view = view?;
        if view.total_size() > max_message_bytes {
            return Err(AppendError::TooLarge {
                size: view.total_size(),
                max: max_message_bytes,
            });
        }
        let want_keys = require_keys && !view.is_control();
        let summary = batch_validation::check_records(&view, limit, want_keys)?;
        let room = MAX_KEYLESS_REPORTED.saturating_sub(keyless.len());
        let positions = summary.keyless.iter().map(|i| record_count as i32 + i);
        keyless.extend(positions.take(room));
        record_count += i64::from(view.record_count());
        batches.push(meta_of(&view, at));
        at += view.total_size();
    }
    if batches.is_empty() {
        return Err(AppendError::Empty);
    }
    if !keyless.is_empty() {
        return Err(AppendError::MissingKey {
            record_indexes: keyless,
        });
    }
    Ok(ValidatedBatches {
        bytes: records[..at].to_vec(),
        batches,
        record_count,
    })
}

/// The batches a follower got from its leader: framing and CRC-32C of each (the leader
/// validated the records when it took them), offsets and leader epochs kept as they are. A
/// fetch answer may end in a batch cut at the size limit; that tail is left for the next
/// fetch. `None` when not one whole batch arrived.
pub fn validate_replicated(records: &[u8]) -> Result<Option<ValidatedBatches>, AppendError> {
    let mut batches = Vec::new();
    let mut at = 0usize;
    let mut record_count = 0i64;
    for view in BatchIter::new(records, true) {
        let view = match view {
            Ok(view) => view,
            Err(BatchError::Truncated { .. }) => break,
            Err(e) => return Err(e.into()),
        };
        record_count += i64::from(view.record_count());
        batches.push(meta_of(&view, at));
        at += view.total_size();
    }
    if batches.is_empty() {
        return Ok(None);
    }
    Ok(Some(ValidatedBatches {
        bytes: records[..at].to_vec(),
        batches,
        record_count,
    }))
}

fn meta_of(view: &BatchView<'_>, start: usize) -> BatchMeta {
    let marker = if view.is_control() {
        crate::protocol::control_batch::marker_info(view.bytes())
    } else {
        None
    };
    BatchMeta {
        start,
        size: view.total_size(),
        base_offset: view.base_offset(),
        leader_epoch: view.partition_leader_epoch(),
        max_timestamp: view.max_timestamp(),
        identity: BatchIdentity {
            producer_id: view.producer_id(),
            producer_epoch: view.producer_epoch(),
            base_sequence: view.base_sequence(),
            last_offset_delta: view.last_offset_delta(),
            control: view.is_control(),
            coordinator_epoch: marker.map_or(-1, |(_, epoch)| epoch),
        },
        transactional: view.is_transactional(),
        marker: marker.map(|(commit, _)| commit),
    }
}

impl ValidatedBatches {
    /// The validated batches, as they will be appended (before the log patches offsets).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// How many record batches the append holds.
    pub fn batch_count(&self) -> usize {
        self.batches.len()
    }

    /// Clients may not write control batches; only the transaction coordinator does.
    pub fn has_control(&self) -> bool {
        self.batches.iter().any(|b| b.identity.control)
    }

    /// The producer id and epoch of the first transactional batch, if any.
    pub fn transactional_producer(&self) -> Option<(i64, i16)> {
        self.batches
            .iter()
            .find(|b| b.transactional)
            .map(|b| (b.identity.producer_id, b.identity.producer_epoch))
    }
}

/// Whether a refusal is about the records inside a batch (Kafka's INVALID_RECORD) rather
/// than its framing or checksum (CORRUPT_MESSAGE). Kafka's `LogValidator` throws
/// `InvalidRecordException` for a count that disagrees with the offsets or the records, and
/// `DefaultRecord` for every malformed record; only the CRC and the batch framing are
/// `CorruptRecordException`.
pub fn is_invalid_record(e: &AppendError) -> bool {
    match e {
        AppendError::Corrupt(BatchError::BadRecordCount { .. })
        | AppendError::MissingKey { .. } => true,
        AppendError::InvalidRecords(e) => !matches!(
            e,
            RecordsError::Decompression { .. } | RecordsError::DecompressedTooLarge { .. }
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::compression::{self, MAX_DECOMPRESSED_BYTES};
    use crate::protocol::record_batch::{BatchBuilder, Compression};
    use crate::protocol::records::{Record, encode_record};

    fn batch(count: i32, codec: Compression, attributes: i16, key: Option<&[u8]>) -> Vec<u8> {
        let mut section = Vec::new();
        for i in 0..count {
            let record = Record {
                attributes: 0,
                timestamp_delta: 0,
                offset_delta: i,
                key: key.map(<[u8]>::to_vec),
                value: Some(vec![7; 100]),
                headers: Vec::new(),
            };
            encode_record(&mut section, &record);
        }
        BatchBuilder {
            attributes,
            last_offset_delta: count - 1,
            record_count: count,
            ..Default::default()
        }
        .build(&compression::compress(codec, &section))
    }

    #[test]
    fn validation_refuses_corrupt_oversized_and_empty() {
        let mut b = batch(2, Compression::None, 0, None);
        assert_eq!(validate_batches(&b, 1 << 20).unwrap().record_count, 2);
        assert!(matches!(
            validate_batches(&b, 10),
            Err(AppendError::TooLarge { .. })
        ));
        assert!(matches!(
            validate_batches(&[], 1 << 20),
            Err(AppendError::Empty)
        ));
        let last = b.len() - 1;
        b[last] ^= 1;
        assert!(matches!(
            validate_batches(&b, 1 << 20),
            Err(AppendError::Corrupt(_))
        ));
    }

    /// A batch whose records disagree with its header refuses the whole produce, even after
    /// a good batch, and says INVALID_RECORD; an undecodable codec says CORRUPT_MESSAGE.
    #[test]
    fn a_bad_batch_after_a_good_one_refuses_the_whole_produce() {
        let mut both = batch(2, Compression::None, 0, None);
        let mut liar = batch(3, Compression::None, 0, None);
        liar[57..61].copy_from_slice(&1i32.to_be_bytes()); // header count 1 holding 3
        liar[23..27].copy_from_slice(&0i32.to_be_bytes());
        let crc = crc32c::crc32c(&liar[21..]);
        liar[17..21].copy_from_slice(&crc.to_be_bytes());
        both.extend_from_slice(&liar);
        let e = validate_batches(&both, 1 << 20).err().expect("refused");
        assert!(is_invalid_record(&e), "{e}");
        let gzip_flag = batch(1, Compression::None, 1, None);
        let e = validate_batches(&gzip_flag, 1 << 20)
            .err()
            .expect("refused");
        assert!(matches!(e, AppendError::InvalidRecords(_)) && !is_invalid_record(&e));
    }

    #[test]
    fn compacted_topics_name_every_keyless_record_across_batches() {
        let mut records = batch(2, Compression::Lz4, 3, Some(b"k"));
        records.extend_from_slice(&batch(2, Compression::Gzip, 1, None));
        match validate_produce(&records, 1 << 20, true) {
            Err(AppendError::MissingKey { record_indexes }) => {
                assert_eq!(record_indexes, vec![2, 3])
            }
            other => panic!("expected MissingKey, got {:?}", other.err()),
        }
        assert!(validate_produce(&records, 1 << 20, false).is_ok());
        let control = batch(
            1,
            Compression::None,
            crate::protocol::record_batch::ATTR_CONTROL,
            None,
        );
        assert!(validate_produce(&control, 1 << 20, true).is_ok());
        let many = batch(3000, Compression::Lz4, 3, None);
        match validate_produce(&many, 1 << 20, true) {
            Err(AppendError::MissingKey { record_indexes }) => {
                assert_eq!(record_indexes.len(), MAX_KEYLESS_REPORTED, "capped")
            }
            other => panic!("expected MissingKey, got {:?}", other.err()),
        }
    }

    /// 40 MiB of zeros in one record packs into a few KiB of zstd; with the default 1 MiB
    /// `max.message.bytes` the walk stops at 32 MiB and says MESSAGE_TOO_LARGE, not CORRUPT.
    #[test]
    fn a_compression_bomb_is_refused_at_the_topic_bound() {
        // attributes, timestamp delta, offset delta, null key, 40 MiB value, no headers.
        let mut body = vec![0, 0, 0, 1];
        crate::protocol::varint::write_varint(&mut body, 40 << 20);
        body.resize(body.len() + (40 << 20) + 1, 0);
        let mut section = Vec::new();
        crate::protocol::varint::write_varint(&mut section, body.len() as i32);
        section.extend_from_slice(&body);
        let bomb = BatchBuilder {
            attributes: 4,
            record_count: 1,
            ..Default::default()
        }
        .build(&compression::compress(Compression::Zstd, &section));
        assert!(bomb.len() < 64 << 10);
        let limit = batch_validation::decompressed_limit(1 << 20);
        assert!(limit <= MAX_DECOMPRESSED_BYTES);
        assert!(matches!(
            validate_batches(&bomb, 1 << 20),
            Err(AppendError::InvalidRecords(RecordsError::DecompressedTooLarge { limit: l })) if l == limit
        ));
    }
}
