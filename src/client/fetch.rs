//! Reading: ListOffsets (earliest, latest, by timestamp) and Fetch, one request per leader
//! broker, with returned batches validated and decoded into records by Sluice's own codecs.
//! Control batches are skipped and, under read_committed, aborted transactions dropped.

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, TopicName,
};

use crate::protocol::record_batch::{BatchError, BatchIter, BatchView};
use crate::protocol::records::decode_records;

use super::cluster::TopicInfo;
use super::{Client, ClientError, Result, sb};

/// ListOffsets sentinel timestamps.
pub const LATEST: i64 = -1;
/// ListOffsets sentinel timestamp for the log start offset; [`LATEST`] asks for the log end
/// (the high watermark, or the last stable offset under read_committed).
pub const EARLIEST: i64 = -2;
/// Isolation levels as Fetch and ListOffsets encode them.
pub const READ_UNCOMMITTED: i8 = 0;
/// `read_committed`: only up to the last stable offset, aborted transactions left out.
pub const READ_COMMITTED: i8 = 1;
/// Bytes per fetch response and per partition.
const FETCH_MAX_BYTES: i32 = 8 * 1024 * 1024;
const PARTITION_MAX_BYTES: i32 = 1024 * 1024;

/// One consumed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    /// Partition the record was read from.
    pub partition: i32,
    /// Offset in the partition: the batch's base offset plus the record's offset delta.
    pub offset: i64,
    /// Milliseconds since the epoch: the producer's CreateTime, or the broker's append time
    /// when `log_append_time`.
    pub timestamp: i64,
    /// Whether the batch's timestamp type is LogAppendTime (the broker set the timestamp).
    pub log_append_time: bool,
    /// Record key; `None` for a null key.
    pub key: Option<Vec<u8>>,
    /// Record value; `None` for a null value (a tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers in record order: name and value (`None` for a null value).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// What a fetch returned for one partition.
#[derive(Debug)]
pub struct PartitionFetch {
    /// Partition index.
    pub partition: i32,
    /// The leader's high watermark for the partition: the offset after the last record
    /// replicated to the ISR.
    pub high_watermark: i64,
    /// Where the next fetch should start (past the last batch seen, control batches too).
    pub next_offset: i64,
    /// Records at or after the requested offset, in offset order; control records and, under
    /// read_committed, aborted transactions left out.
    pub records: Vec<ConsumedRecord>,
    /// The partition's Kafka error (e.g. OFFSET_OUT_OF_RANGE); `None` when it had none.
    pub error: Option<ResponseError>,
}

impl Client {
    /// The offset for `timestamp` (or LATEST / EARLIEST) of each partition. A partition
    /// with no record at or after the timestamp gets -1, as Kafka answers.
    pub fn list_offsets(
        &mut self,
        topic: &str,
        partitions: &[i32],
        timestamp: i64,
        isolation_level: i8,
    ) -> Result<BTreeMap<i32, i64>> {
        let mut out = BTreeMap::new();
        for (leader, ps) in self.by_leader(topic, partitions)? {
            let conn = self.broker(leader)?;
            let version = conn.version_for::<ListOffsetsRequest>(None)?;
            let mut request = ListOffsetsRequest::default();
            request.replica_id = BrokerId(-1);
            if version >= 2 {
                request.isolation_level = isolation_level;
            }
            let mut t = ListOffsetsTopic::default();
            t.name = TopicName(sb(topic));
            t.partitions = ps
                .iter()
                .map(|&p| {
                    let mut lp = ListOffsetsPartition::default();
                    lp.partition_index = p;
                    lp.timestamp = timestamp;
                    lp
                })
                .collect();
            request.topics = vec![t];
            let response = conn.send_at(&request, version)?;
            for p in response.topics.iter().flat_map(|t| t.partitions.iter()) {
                ClientError::check(
                    p.error_code,
                    || format!("listing offsets of {topic}-{}", p.partition_index),
                    None,
                )?;
                out.insert(p.partition_index, p.offset);
            }
        }
        Ok(out)
    }

    /// Fetches from each position (partition -> offset), one request per leader, waiting
    /// up to `max_wait_ms` for data.
    pub fn fetch(
        &mut self,
        topic: &TopicInfo,
        positions: &BTreeMap<i32, i64>,
        isolation_level: i8,
        max_wait_ms: i32,
    ) -> Result<Vec<PartitionFetch>> {
        let partitions: Vec<i32> = positions.keys().copied().collect();
        let mut out = Vec::new();
        for (leader, ps) in self.by_leader(&topic.name, &partitions)? {
            let conn = self.broker(leader)?;
            let version = conn.version_for::<FetchRequest>(None)?;
            let request =
                fetch_request(topic, &ps, positions, isolation_level, max_wait_ms, version);
            let response = conn.send_at(&request, version)?;
            out.extend(parse_fetch(response, positions, isolation_level)?);
        }
        Ok(out)
    }
}

fn fetch_request(
    topic: &TopicInfo,
    partitions: &[i32],
    positions: &BTreeMap<i32, i64>,
    isolation_level: i8,
    max_wait_ms: i32,
    version: i16,
) -> FetchRequest {
    let mut t = FetchTopic::default();
    if version >= 13 {
        t.topic_id = topic.id;
    } else {
        t.topic = TopicName(sb(topic.name.as_str()));
    }
    t.partitions = partitions
        .iter()
        .map(|&p| {
            let mut fp = FetchPartition::default();
            fp.partition = p;
            fp.fetch_offset = positions.get(&p).copied().unwrap_or(0);
            fp.partition_max_bytes = PARTITION_MAX_BYTES;
            fp
        })
        .collect();
    let mut request = FetchRequest::default();
    if version <= 14 {
        request.replica_id = BrokerId(-1);
    }
    request.max_wait_ms = max_wait_ms;
    request.min_bytes = 1;
    request.max_bytes = FETCH_MAX_BYTES;
    request.isolation_level = isolation_level;
    request.topics = vec![t];
    request
}

fn parse_fetch(
    response: FetchResponse,
    positions: &BTreeMap<i32, i64>,
    isolation_level: i8,
) -> Result<Vec<PartitionFetch>> {
    ClientError::check(response.error_code, || "fetching".to_string(), None)?;
    let mut out = Vec::new();
    for t in response.responses {
        for p in t.partitions {
            let start = positions.get(&p.partition_index).copied().unwrap_or(0);
            let mut fetched = PartitionFetch {
                partition: p.partition_index,
                high_watermark: p.high_watermark,
                next_offset: start,
                records: Vec::new(),
                error: ResponseError::try_from_code(p.error_code),
            };
            if let Some(bytes) = p.records.as_deref() {
                let aborted: Vec<(i64, i64)> = if isolation_level == READ_COMMITTED {
                    p.aborted_transactions
                        .iter()
                        .flatten()
                        .map(|a| (a.producer_id.0, a.first_offset))
                        .collect()
                } else {
                    Vec::new()
                };
                decode_batches(bytes, start, &aborted, &mut fetched)?;
            }
            out.push(fetched);
        }
    }
    Ok(out)
}

/// Walks the batches of one partition's records, appending records at or after `start`.
/// A batch cut short by the size limit ends the walk; any other damage is an error.
fn decode_batches(
    bytes: &[u8],
    start: i64,
    aborted: &[(i64, i64)],
    fetched: &mut PartitionFetch,
) -> Result<()> {
    let mut aborting: HashSet<i64> = HashSet::new();
    for batch in BatchIter::new(bytes, true) {
        let batch = match batch {
            Ok(b) => b,
            Err(BatchError::Truncated { .. }) => break,
            Err(e) => {
                return Err(ClientError::Protocol(format!(
                    "partition {} returned a bad batch: {e}",
                    fetched.partition
                )));
            }
        };
        fetched.next_offset = fetched.next_offset.max(batch.last_offset() + 1);
        aborting.extend(
            aborted
                .iter()
                .filter(|(_, first)| *first <= batch.base_offset())
                .map(|(pid, _)| *pid),
        );
        if batch.is_control() {
            // The marker ends its transaction, committed or aborted.
            aborting.remove(&batch.producer_id());
            continue;
        }
        if batch.is_transactional() && aborting.contains(&batch.producer_id()) {
            continue;
        }
        push_records(&batch, start, fetched)?;
    }
    Ok(())
}

fn push_records(batch: &BatchView<'_>, start: i64, fetched: &mut PartitionFetch) -> Result<()> {
    let records = decode_records(batch).map_err(|e| {
        ClientError::Protocol(format!(
            "cannot decode records of partition {} at offset {}: {e}",
            fetched.partition,
            batch.base_offset()
        ))
    })?;
    for r in records {
        let offset = batch.base_offset() + i64::from(r.offset_delta);
        if offset < start {
            continue;
        }
        let timestamp = if batch.is_log_append_time() {
            batch.max_timestamp()
        } else {
            batch.base_timestamp() + r.timestamp_delta
        };
        fetched.records.push(ConsumedRecord {
            partition: fetched.partition,
            offset,
            timestamp,
            log_append_time: batch.is_log_append_time(),
            key: r.key,
            value: r.value,
            headers: r.headers,
        });
    }
    Ok(())
}
