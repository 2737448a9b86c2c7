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
    // Each aborted transaction is taken once, when the walk reaches its first offset, and
    // dropped at its producer's marker (as Kafka's consumer does): taking them again for every
    // batch would revive a producer after its abort marker and hide its next, committed,
    // transaction.
    let mut pending: Vec<(i64, i64)> = aborted.to_vec();
    pending.sort_by_key(|&(_, first)| std::cmp::Reverse(first));
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
        while let Some(&(producer_id, first)) = pending.last()
            && first <= batch.last_offset()
        {
            aborting.insert(producer_id);
            pending.pop();
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::control_batch::marker_batch;
    use crate::protocol::record_batch::{ATTR_TRANSACTIONAL, BatchBuilder, set_base_offset};
    use crate::protocol::records::{Record, encode_record};

    /// A one-record transactional batch of `producer_id` at `offset`.
    fn txn_batch(producer_id: i64, offset: i64) -> Vec<u8> {
        let mut section = Vec::new();
        encode_record(
            &mut section,
            &Record {
                attributes: 0,
                timestamp_delta: 0,
                offset_delta: 0,
                key: None,
                value: Some(b"v".to_vec()),
                headers: Vec::new(),
            },
        );
        let mut batch = BatchBuilder {
            base_offset: offset,
            attributes: ATTR_TRANSACTIONAL,
            producer_id,
            producer_epoch: 0,
            base_sequence: 0,
            record_count: 1,
            ..BatchBuilder::default()
        }
        .build(&section);
        set_base_offset(&mut batch, offset);
        batch
    }

    fn marker(producer_id: i64, offset: i64, commit: bool) -> Vec<u8> {
        let mut batch = marker_batch(producer_id, 0, commit, 0);
        set_base_offset(&mut batch, offset);
        batch
    }

    fn offsets(bytes: &[u8], aborted: &[(i64, i64)]) -> Vec<i64> {
        let mut fetched = PartitionFetch {
            partition: 0,
            high_watermark: 10,
            next_offset: 0,
            records: Vec::new(),
            error: None,
        };
        decode_batches(bytes, 0, aborted, &mut fetched).expect("decodes");
        fetched.records.iter().map(|r| r.offset).collect()
    }

    #[test]
    fn an_aborted_transaction_hides_only_its_own_batches() {
        // Producer 7: aborted transaction at 0, abort marker at 1, then a committed one at 2.
        let mut log = txn_batch(7, 0);
        log.extend(marker(7, 1, false));
        log.extend(txn_batch(7, 2));
        log.extend(marker(7, 3, true));
        assert_eq!(offsets(&log, &[(7, 0)]), vec![2]);
        assert_eq!(offsets(&log, &[]), vec![0, 2], "read_uncommitted sees both");
    }
}
