//! `__transaction_state` records as Kafka writes them, so its tools can read our logs:
//! `TransactionLogKey` v0 (transactional id) and `TransactionLogValue` v0 (written) / v1
//! (flexible, read too), each prefixed by its int16 version; a tombstone value removes an id.
//! Transaction markers are `protocol::control_batch`.
//!
//! Pure encoding; no I/O. Used by the shard of the coordinator's partition.

use bytes::{BufMut, Bytes, BytesMut};

use super::metadata::{TxnMetadata, TxnStatus};
use crate::protocol::byte_reader::{ByteReader, ReadError};

const KEY_VERSION: i16 = 0;
const VALUE_VERSION_WRITTEN: i16 = 0;
const VALUE_VERSION_FLEXIBLE: i16 = 1;

/// Why a stored record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnRecordError {
    /// The record ended before its last field (a bad varint counts as this too).
    #[error("record ends early")]
    Truncated,
    /// A key or value version this code does not read.
    #[error("unknown {what} version {version}")]
    UnknownVersion {
        /// The schema: "TransactionLogKey" or "TransactionLogValue".
        what: &'static str,
        /// The int16 version that prefixed the key or value.
        version: i16,
    },
    /// The value's status byte is not one of Kafka's `TransactionState` ids.
    #[error("unknown transaction status {0}")]
    UnknownStatus(i8),
    /// A string field is not valid UTF-8.
    #[error("string is not UTF-8")]
    NotUtf8,
    /// A non-nullable field had this negative length.
    #[error("negative length {0}")]
    NegativeLength(i64),
}

impl From<ReadError> for TxnRecordError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Short { .. } | ReadError::Varint { .. } => TxnRecordError::Truncated,
            ReadError::NegativeLength { len, .. } => TxnRecordError::NegativeLength(len),
            ReadError::NotUtf8 { .. } => TxnRecordError::NotUtf8,
        }
    }
}

fn put_string(buf: &mut BytesMut, s: &str) {
    // Transactional ids and topic names are far below i16::MAX bytes (Kafka limits both).
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    buf.put_i16(len);
    buf.put_slice(&s.as_bytes()[..len as usize]);
}

/// `TransactionLogKey` v0.
pub fn encode_key(transactional_id: &str) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + transactional_id.len());
    buf.put_i16(KEY_VERSION);
    put_string(&mut buf, transactional_id);
    buf.freeze()
}

/// The transactional id of a `TransactionLogKey` v0.
pub fn decode_key(bytes: &[u8]) -> Result<String, TxnRecordError> {
    let mut r = ByteReader::new(bytes);
    match r.i16()? {
        KEY_VERSION => Ok(r.string()?),
        version => Err(TxnRecordError::UnknownVersion {
            what: "TransactionLogKey",
            version,
        }),
    }
}

/// `TransactionLogValue` v0 of `meta`; partitions grouped by topic in name order.
pub fn encode_value(meta: &TxnMetadata) -> Bytes {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i16(VALUE_VERSION_WRITTEN);
    buf.put_i64(meta.producer_id);
    buf.put_i16(meta.producer_epoch);
    buf.put_i32(meta.timeout_ms);
    buf.put_i8(meta.status as i8);
    let topics = meta.partitions_by_topic();
    buf.put_i32(topics.len() as i32);
    for (topic, partitions) in &topics {
        put_string(&mut buf, topic);
        buf.put_i32(partitions.len() as i32);
        partitions.iter().for_each(|p| buf.put_i32(*p));
    }
    buf.put_i64(meta.last_update_ms);
    buf.put_i64(meta.start_ms);
    buf.freeze()
}

/// Decodes a value (v0 or v1) for `transactional_id`.
pub fn decode_value(transactional_id: &str, bytes: &[u8]) -> Result<TxnMetadata, TxnRecordError> {
    let mut r = ByteReader::new(bytes);
    let version = r.i16()?;
    let flexible = match version {
        VALUE_VERSION_WRITTEN => false,
        VALUE_VERSION_FLEXIBLE => true,
        version => {
            return Err(TxnRecordError::UnknownVersion {
                what: "TransactionLogValue",
                version,
            });
        }
    };
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let status_byte = r.i8()?;
    let status =
        TxnStatus::from_byte(status_byte).ok_or(TxnRecordError::UnknownStatus(status_byte))?;
    let partitions = if flexible {
        flexible_partitions(&mut r)?
    } else {
        classic_partitions(&mut r)?
    };
    let last_update_ms = r.i64()?;
    let start_ms = r.i64()?;
    if flexible {
        r.skip_tagged_fields()?;
    }
    Ok(TxnMetadata {
        transactional_id: transactional_id.to_owned(),
        producer_id,
        producer_epoch,
        timeout_ms,
        status,
        partitions,
        last_update_ms,
        start_ms,
        timed_out_epoch: None,
        tv2: Default::default(),
    })
}

type PartitionSet = std::collections::BTreeSet<(String, i32)>;

fn classic_partitions(r: &mut ByteReader<'_>) -> Result<PartitionSet, TxnRecordError> {
    let mut out = PartitionSet::new();
    let topics = r.i32()?;
    for _ in 0..topics.max(0) {
        let topic = r.string()?;
        for _ in 0..r.i32()?.max(0) {
            out.insert((topic.clone(), r.i32()?));
        }
    }
    Ok(out)
}

fn flexible_partitions(r: &mut ByteReader<'_>) -> Result<PartitionSet, TxnRecordError> {
    let mut out = PartitionSet::new();
    let topics = r.compact_len()?.unwrap_or(0);
    for _ in 0..topics {
        let topic = r.compact_string()?;
        for _ in 0..r.compact_len()?.unwrap_or(0) {
            out.insert((topic.clone(), r.i32()?));
        }
        r.skip_tagged_fields()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> TxnMetadata {
        TxnMetadata {
            transactional_id: "tx-1".into(),
            producer_id: 4001,
            producer_epoch: 3,
            timeout_ms: 60_000,
            status: TxnStatus::Ongoing,
            partitions: [
                ("a".to_string(), 2),
                ("a".to_string(), 0),
                ("b".to_string(), 1),
            ]
            .into_iter()
            .collect(),
            last_update_ms: 1_700_000_000_123,
            start_ms: 1_700_000_000_000,
            timed_out_epoch: None,
            tv2: Default::default(),
        }
    }

    #[test]
    fn key_matches_kafka_bytes_and_round_trips() {
        let key = encode_key("tx");
        assert_eq!(&key[..], &[0, 0, 0, 2, b't', b'x']);
        assert_eq!(decode_key(&key).as_deref(), Ok("tx"));
    }

    #[test]
    fn value_v0_round_trips_and_has_kafka_layout() {
        let value = encode_value(&meta());
        // version, pid, epoch, timeout, status
        assert_eq!(&value[0..2], &[0, 0]);
        assert_eq!(&value[2..10], &4001i64.to_be_bytes());
        assert_eq!(&value[10..12], &3i16.to_be_bytes());
        assert_eq!(&value[12..16], &60_000i32.to_be_bytes());
        assert_eq!(value[16], 1, "Ongoing is status 1");
        assert_eq!(&value[17..21], &2i32.to_be_bytes(), "two topics");
        assert_eq!(decode_value("tx-1", &value), Ok(meta()));
    }

    #[test]
    fn value_v1_flexible_is_read() {
        let mut v = vec![0, 1];
        v.extend_from_slice(&7i64.to_be_bytes());
        v.extend_from_slice(&2i16.to_be_bytes());
        v.extend_from_slice(&1000i32.to_be_bytes());
        v.push(4); // CompleteCommit
        v.push(2); // one topic (n + 1)
        v.push(2); // "t" (len + 1)
        v.push(b't');
        v.push(3); // two partitions
        v.extend_from_slice(&0i32.to_be_bytes());
        v.extend_from_slice(&5i32.to_be_bytes());
        v.push(0); // topic tagged fields
        v.extend_from_slice(&11i64.to_be_bytes());
        v.extend_from_slice(&10i64.to_be_bytes());
        v.extend_from_slice(&[1, 2, 2, 0, 2]); // one tagged field (tag 2, 2 bytes)
        let m = decode_value("x", &v).expect("valid v1");
        assert_eq!(m.status, TxnStatus::CompleteCommit);
        assert_eq!(m.partitions.len(), 2);
        assert_eq!((m.last_update_ms, m.start_ms), (11, 10));
    }

    #[test]
    fn every_cut_of_a_value_is_a_clean_error() {
        let value = encode_value(&meta());
        for cut in 0..value.len() {
            assert!(decode_value("tx-1", &value[..cut]).is_err(), "cut at {cut}");
        }
        for cut in 0..6 {
            assert!(decode_key(&encode_key("tx")[..cut]).is_err());
        }
    }
}
