//! Produce: builds one RecordBatch v2 per partition from the caller's records (with the
//! chosen codec) using Sluice's own batch and record encoders, sends it to the partition's
//! leader, and retries once after a metadata refresh if leadership moved.

use bytes::Bytes;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};

use crate::protocol::compression;
use crate::protocol::record_batch::{BatchBuilder, Compression};
use crate::protocol::records::{Record, encode_record};

use super::{Client, ClientError, Result, sb};

/// How long the broker may wait for acks=all replication.
const PRODUCE_TIMEOUT_MS: i32 = 30_000;
/// Leadership changes tolerated per send before giving up.
const LEADER_RETRIES: usize = 3;

/// Record headers: name and optional value, in order.
pub type Headers = Vec<(String, Option<Vec<u8>>)>;

/// One record to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    /// Record key; `None` sends a null key.
    pub key: Option<Vec<u8>>,
    /// Record value; `None` sends a null value (a tombstone on compacted topics).
    pub value: Option<Vec<u8>>,
    /// Headers, in the order they are sent.
    pub headers: Headers,
    /// CreateTime in milliseconds since the epoch; a LogAppendTime topic replaces it.
    pub timestamp_ms: i64,
}

/// The codec's attribute bits in a batch header.
pub fn codec_attributes(codec: Compression) -> i16 {
    match codec {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Snappy => 2,
        Compression::Lz4 => 3,
        Compression::Zstd => 4,
    }
}

/// Encodes `records` as one RecordBatch v2 (base offset 0; the broker assigns offsets).
pub fn build_batch(records: &[ProducerRecord], codec: Compression) -> Vec<u8> {
    let base_timestamp = records.iter().map(|r| r.timestamp_ms).min().unwrap_or(0);
    let max_timestamp = records.iter().map(|r| r.timestamp_ms).max().unwrap_or(0);
    let mut section = Vec::with_capacity(records.len() * 32);
    for (i, r) in records.iter().enumerate() {
        let record = Record {
            attributes: 0,
            timestamp_delta: r.timestamp_ms - base_timestamp,
            offset_delta: i as i32,
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r.headers.clone(),
        };
        encode_record(&mut section, &record);
    }
    let packed = compression::compress(codec, &section);
    BatchBuilder {
        attributes: codec_attributes(codec),
        last_offset_delta: records.len().saturating_sub(1) as i32,
        base_timestamp,
        max_timestamp,
        record_count: records.len() as i32,
        ..Default::default()
    }
    .build(&packed)
}

impl Client {
    /// Sends `records` to `topic`-`partition` as one batch. Returns the base offset the
    /// broker assigned, or `None` for acks=0 (the broker does not answer).
    pub fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        records: &[ProducerRecord],
        acks: i16,
        codec: Compression,
    ) -> Result<Option<i64>> {
        let batch = Bytes::from(build_batch(records, codec));
        let mut attempt = 0;
        loop {
            match self.produce_once(topic, partition, batch.clone(), acks) {
                Err(e) if attempt < LEADER_RETRIES && leadership_moved(&e) => {
                    attempt += 1;
                    self.refresh(Some(&[topic.to_string()]))?;
                }
                other => return other,
            }
        }
    }

    fn produce_once(
        &mut self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        acks: i16,
    ) -> Result<Option<i64>> {
        let leader = self.leader(topic, partition)?;
        let conn = self.broker(leader)?;
        // v13 addresses topics by id only; v3-v12 by name, which is all we need.
        let version = conn.version_for::<ProduceRequest>(Some(12))?;
        let mut data = PartitionProduceData::default();
        data.index = partition;
        data.records = Some(batch);
        let mut topic_data = TopicProduceData::default();
        topic_data.name = TopicName(sb(topic));
        topic_data.partition_data = vec![data];
        let mut request = ProduceRequest::default();
        request.acks = acks;
        request.timeout_ms = PRODUCE_TIMEOUT_MS;
        request.topic_data = vec![topic_data];
        if acks == 0 {
            conn.send_oneway(&request, version)?;
            return Ok(None);
        }
        let response = conn.send_at(&request, version)?;
        let p = response
            .responses
            .iter()
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == partition)
            .ok_or_else(|| ClientError::Protocol("Produce response lacks the partition".into()))?;
        ClientError::check(
            p.error_code,
            || format!("producing to {topic}-{partition}"),
            p.error_message.as_ref(),
        )?;
        Ok(Some(p.base_offset))
    }
}

/// Errors after which the metadata is stale and a retry can succeed.
pub fn leadership_moved(e: &ClientError) -> bool {
    matches!(
        e.kafka_error(),
        Some(
            ResponseError::NotLeaderOrFollower
                | ResponseError::LeaderNotAvailable
                | ResponseError::UnknownTopicOrPartition
                | ResponseError::FencedLeaderEpoch
        )
    )
}

/// Kafka's default partitioner for keyed records: murmur2 of the key, made positive,
/// modulo the partition count, so keys land where Java clients put them.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) % partitions.max(1) as u32) as i32
}

/// MurmurHash2 (32-bit) with Kafka's seed, written from the published algorithm.
fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        // Invariant: chunks_exact yields 4-byte slices.
        let mut k = u32::from_le_bytes(chunk.try_into().expect("4 bytes"));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::record_batch::BatchView;
    use crate::protocol::records::decode_records;

    #[test]
    fn murmur2_matches_kafka_reference_values() {
        // Values from Kafka's UtilsTest for the positive-murmur2 partitioner.
        assert_eq!(murmur2(b"21") as i32, -973932308);
        assert_eq!(murmur2(b"foobar") as i32, -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985981536);
    }

    #[test]
    fn batches_round_trip_through_every_codec() {
        let records: Vec<_> = (0..3)
            .map(|i| ProducerRecord {
                key: Some(format!("k{i}").into_bytes()),
                value: Some(format!("v{i}").into_bytes()),
                headers: vec![("h".into(), Some(b"x".to_vec()))],
                timestamp_ms: 1_000 + i,
            })
            .collect();
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let batch = build_batch(&records, codec);
            let view = BatchView::parse_validated(&batch).unwrap();
            assert_eq!(view.compression().unwrap(), codec);
            assert_eq!(view.max_timestamp(), 1_002);
            let decoded = decode_records(&view).unwrap();
            assert_eq!(decoded.len(), 3);
            assert_eq!(decoded[2].key.as_deref(), Some(&b"k2"[..]));
            assert_eq!(decoded[2].timestamp_delta, 2);
        }
    }
}
