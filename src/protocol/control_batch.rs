//! Control batches as Kafka writes them for transactions: the COMMIT/ABORT marker record
//! (`EndTransactionMarker`: key = version + type, value = version + coordinator epoch), a
//! whole marker batch, and telling a stored batch's marker kind. A wire format with no I/O,
//! used on every shard: by the transaction coordinator to write markers and by storage to
//! rebuild the transaction index at recovery.

use crate::protocol::record_batch::{ATTR_CONTROL, ATTR_TRANSACTIONAL, BatchBuilder, BatchView};
use crate::protocol::records::{self, Record, encode_record};

const MARKER_VERSION: i16 = 0;
const MARKER_TYPE_ABORT: i16 = 0;
const MARKER_TYPE_COMMIT: i16 = 1;

/// The key and value of a transaction marker record.
pub fn encode_marker(commit: bool, coordinator_epoch: i32) -> (Vec<u8>, Vec<u8>) {
    let kind = if commit {
        MARKER_TYPE_COMMIT
    } else {
        MARKER_TYPE_ABORT
    };
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&MARKER_VERSION.to_be_bytes());
    key.extend_from_slice(&kind.to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&MARKER_VERSION.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    (key, value)
}

/// Whether a control record key is a COMMIT (true) or ABORT (false) marker; `None` for
/// other control records (Kafka has leader-change and snapshot ones too) or a short key.
pub fn decode_marker_key(key: &[u8]) -> Option<bool> {
    let kind = key.get(2..4)?;
    match i16::from_be_bytes([kind[0], kind[1]]) {
        MARKER_TYPE_COMMIT => Some(true),
        MARKER_TYPE_ABORT => Some(false),
        _ => None,
    }
}

/// One control batch holding one COMMIT/ABORT marker record, coordinator epoch 0.
pub fn marker_batch(producer_id: i64, producer_epoch: i16, commit: bool, now_ms: i64) -> Vec<u8> {
    coordinator_marker_batch(producer_id, producer_epoch, commit, 0, now_ms)
}

/// One control batch holding one COMMIT/ABORT marker record written by the coordinator of
/// `coordinator_epoch` (its `__transaction_state` partition's leader epoch; 0 on a single node).
pub fn coordinator_marker_batch(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    now_ms: i64,
) -> Vec<u8> {
    let (key, value) = encode_marker(commit, coordinator_epoch);
    let mut section = Vec::with_capacity(32);
    encode_record(
        &mut section,
        &Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: 0,
            key: Some(key),
            value: Some(value),
            headers: Vec::new(),
        },
    );
    BatchBuilder {
        attributes: ATTR_CONTROL | ATTR_TRANSACTIONAL,
        last_offset_delta: 0,
        base_timestamp: now_ms,
        max_timestamp: now_ms,
        producer_id,
        producer_epoch,
        base_sequence: -1,
        record_count: 1,
        ..BatchBuilder::default()
    }
    .build(&section)
}

/// COMMIT (true) or ABORT (false) when `batch` is a control batch holding a transaction
/// marker; `None` for anything else or an undecodable record.
pub fn marker_of(batch: &[u8]) -> Option<bool> {
    marker_info(batch).map(|(commit, _)| commit)
}

/// COMMIT (true) or ABORT (false) and the coordinator epoch of a transaction marker batch
/// (-1 when the value is too short to hold one); `None` for anything else.
pub fn marker_info(batch: &[u8]) -> Option<(bool, i32)> {
    let view = BatchView::parse(batch).ok()?;
    let records = records::decode_records(&view).ok()?;
    let record = records.first()?;
    let commit = decode_marker_key(record.key.as_deref()?)?;
    let epoch = record
        .value
        .as_deref()
        .and_then(|v| v.get(2..6))
        .map_or(-1, |e| i32::from_be_bytes([e[0], e[1], e[2], e[3]]));
    Some((commit, epoch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_keys_round_trip() {
        let (key, value) = encode_marker(true, 9);
        assert_eq!(key, [0, 0, 0, 1]);
        assert_eq!(value, [0, 0, 0, 0, 0, 9]);
        assert_eq!(decode_marker_key(&key), Some(true));
        assert_eq!(decode_marker_key(&encode_marker(false, 0).0), Some(false));
        assert_eq!(decode_marker_key(&[0, 0, 0, 2]), None);
        assert_eq!(decode_marker_key(&[0, 0, 0]), None);
    }

    #[test]
    fn marker_batches_are_valid_control_batches_with_the_marker_record() {
        let batch = marker_batch(77, 3, true, 1_000);
        let view = BatchView::parse_validated(&batch).expect("a batch we built is valid");
        assert!(view.is_control() && view.is_transactional());
        assert_eq!((view.producer_id(), view.producer_epoch()), (77, 3));
        assert_eq!(view.base_sequence(), -1);
        assert_eq!(marker_of(&batch), Some(true));
        assert_eq!(marker_of(&marker_batch(1, 0, false, 0)), Some(false));
    }
}
