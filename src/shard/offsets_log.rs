//! The `__consumer_offsets` topic as a shard's group coordinator uses it: created on first
//! use, appended to after every coordinator call that emits records, and replayed into the
//! coordinator when the shard starts. Runs on the shard that owns the partitions it touches;
//! a group's records always go to the partition its id hashes to, which this shard owns
//! (the caller checked that before calling the coordinator).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;

use crate::coordinator::group::GroupCoordinator;
use crate::coordinator::group::records::{self, Record, RecordError, RecordKey};
use crate::metadata::{MetadataError, TopicMeta};
use crate::protocol::record_batch::{self, BatchBuilder, BatchError, BatchView};
use crate::protocol::records::{self as batch_records, encode_record};
use crate::shard::replication;
use crate::shard::{PartitionError, Shard};
use crate::storage::log::{AppendError, FlushWait, ReadError, validate_batches};

/// Kafka's name for the internal topic of group metadata and committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// How many bytes one replay read asks for; a batch larger than this is still read whole.
const REPLAY_READ_BYTES: u64 = 1 << 20;

/// Why an append to or a replay of `__consumer_offsets` failed.
#[derive(Debug, thiserror::Error)]
pub enum OffsetsLogError {
    /// Looking up or creating the `__consumer_offsets` topic failed.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// The partition cannot be served here (NOT_COORDINATOR when another shard owns it).
    #[error(transparent)]
    Partition(#[from] PartitionError),
    /// The append failed (INVALID_COMMIT_OFFSET_SIZE when the batch is too large).
    #[error(transparent)]
    Append(#[from] AppendError),
    /// Reading the log for the replay failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A stored batch is corrupt (replay).
    #[error("corrupt batch in {OFFSETS_TOPIC}: {0}")]
    Batch(#[from] BatchError),
    /// A stored batch's records do not decode (replay).
    #[error("undecodable records in {OFFSETS_TOPIC}: {0}")]
    Records(#[from] batch_records::RecordError),
    /// A record does not decode as a group metadata or offset record (replay).
    #[error("undecodable group record key: {0}")]
    Key(#[from] RecordError),
    /// The in-sync replicas did not all take the append in time (cluster mode).
    #[error("the in-sync replicas did not acknowledge the append: {0:?}")]
    NotReplicated(ResponseError),
}

impl OffsetsLogError {
    /// The error a client gets when its request's records could not be stored, following
    /// Kafka's mapping for coordinator appends (retriable where a retry can help).
    pub fn response_error(&self) -> ResponseError {
        match self {
            Self::Partition(PartitionError::NotLeader) => ResponseError::NotCoordinator,
            Self::Append(AppendError::TooLarge { .. }) => ResponseError::InvalidCommitOffsetSize,
            _ => ResponseError::CoordinatorNotAvailable,
        }
    }
}

/// The topic's metadata, creating it (compacted, `offsets.topic.num.partitions`
/// partitions) on first use, as Kafka does when the first group appears.
pub fn offsets_topic(shard: &Shard) -> Result<Arc<TopicMeta>, MetadataError> {
    let configs = BTreeMap::from([("cleanup.policy".to_owned(), "compact".to_owned())]);
    let partitions = shard.config.offsets_topic_num_partitions;
    internal_topic(shard, OFFSETS_TOPIC, partitions, configs, |c| {
        (c.offsets_replication_factor, None)
    })
}

/// Internal topic `name`'s metadata, creating it with `partitions` and `configs` on first
/// use. In a cluster it is proposed to the quorum with the replication factor and
/// `min.insync.replicas` that `replication` picks from the cluster settings, and created in
/// the background: callers get the proposal's error and retry meanwhile.
pub fn internal_topic(
    shard: &Shard,
    name: &'static str,
    partitions: i32,
    mut configs: BTreeMap<String, String>,
    replication: impl FnOnce(&crate::config::ClusterConfig) -> (i16, Option<i32>),
) -> Result<Arc<TopicMeta>, MetadataError> {
    if let Some(meta) = shard.cluster.topic(name) {
        return Ok(meta);
    }
    if let Some(cluster) = &shard.config.cluster {
        let (factor, min_isr) = replication(cluster);
        if let Some(min_isr) = min_isr {
            configs.insert("min.insync.replicas".to_owned(), min_isr.to_string());
        }
        return Err(shard
            .cluster
            .propose_internal_topic(name, partitions, factor, configs));
    }
    match shard.cluster.create_topic(name, partitions, configs, false) {
        Ok(meta) => Ok(meta),
        // Another shard created it between our look-up and the create.
        Err(MetadataError::TopicExists(_)) => shard
            .cluster
            .topic(name)
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_owned())),
        Err(e) => Err(e),
    }
}

/// The `__consumer_offsets` partition of `group_id` and the core that owns it. The hash
/// runs over the topic's real partition count, so changing the config after creation
/// cannot move groups away from their records.
pub fn coordinator_of(shard: &Shard, group_id: &str) -> Result<(i32, usize), MetadataError> {
    let meta = offsets_topic(shard)?;
    let count = i32::try_from(meta.partitions.len()).unwrap_or(i32::MAX);
    let partition = records::partition_for_group(group_id, count);
    // `partition_for_group` returns a value in 0..count, an index of `partitions`.
    Ok((partition, meta.partitions[partition as usize]))
}

/// Appends `records` to the partitions of their groups, one batch per partition, in order.
pub async fn append(shard: &Shard, records: &[Record], now_ms: i64) -> Result<(), OffsetsLogError> {
    if records.is_empty() {
        return Ok(());
    }
    let meta = offsets_topic(shard)?;
    let count = i32::try_from(meta.partitions.len()).unwrap_or(i32::MAX);
    let mut by_partition: BTreeMap<i32, Vec<&Record>> = BTreeMap::new();
    for record in records {
        let partition = records::partition_for_group(&group_of(record)?, count);
        by_partition.entry(partition).or_default().push(record);
    }
    for (partition, records) in by_partition {
        append_batch(
            shard,
            OFFSETS_TOPIC,
            partition,
            &build_batch(&records, now_ms),
            now_ms,
        )
        .await?;
    }
    Ok(())
}

/// Appends one batch this shard built to partition `p` of internal topic `topic`, which
/// this shard leads, and waits until the in-sync replicas have it (a coordinator's answer
/// must survive a failover). Shared by the group, transaction and share-state coordinators.
pub async fn append_batch(
    shard: &Shard,
    topic: &str,
    p: i32,
    batch: &[u8],
    now_ms: i64,
) -> Result<(), OffsetsLogError> {
    let log = shard.partition(topic, p).await?;
    let max_bytes = log.max_message_bytes();
    let info = log
        .append(
            validate_batches(batch, max_bytes)?,
            now_ms,
            FlushWait::Durable,
        )
        .await?;
    replication::acknowledge_internal_append(shard, topic, p, &log, info.last_offset)
        .await
        .map_err(OffsetsLogError::NotReplicated)
}

/// Calls `apply` with every whole batch of `log` in offset order, from its start (a
/// coordinator's replay). A read that ends inside a batch reads that batch again whole; a
/// batch that cannot be read whole is corrupt.
pub fn for_each_batch(
    log: &crate::storage::log::PartitionLog,
    mut apply: impl FnMut(&BatchView<'_>) -> Result<(), OffsetsLogError>,
) -> Result<(), OffsetsLogError> {
    let mut offset = log.watermarks().log_start_offset;
    while let Some(bytes) = log.read_bytes(offset, REPLAY_READ_BYTES)? {
        let mut at = 0;
        while let Ok(size) = record_batch::total_size(&bytes[at..]) {
            if at + size > bytes.len() {
                break;
            }
            let view = BatchView::parse_validated(&bytes[at..at + size])?;
            apply(&view)?;
            offset = view.last_offset() + 1;
            at += size;
        }
        if at == 0 {
            // `read` always returns at least one whole batch; an incomplete one is corrupt.
            let needed = record_batch::total_size(&bytes)?;
            return Err(OffsetsLogError::Batch(BatchError::Truncated {
                needed,
                available: bytes.len(),
            }));
        }
    }
    Ok(())
}

fn group_of(record: &Record) -> Result<String, RecordError> {
    Ok(match records::decode_key(&record.key)? {
        RecordKey::OffsetCommit(key) => key.group,
        RecordKey::GroupMetadata(key) => key.group,
        RecordKey::Consumer { group } => group,
    })
}

/// One uncompressed RecordBatch v2 holding `records`, stamped with CreateTime `now_ms`.
pub(crate) fn build_batch(records: &[&Record], now_ms: i64) -> Vec<u8> {
    build_batch_as(records, now_ms, None)
}

/// [`build_batch`], transactional for `producer` = (id, epoch) when given (TxnOffsetCommit:
/// the offsets count only once that producer's COMMIT marker follows).
pub(crate) fn build_batch_as(
    records: &[&Record],
    now_ms: i64,
    producer: Option<(i64, i16)>,
) -> Vec<u8> {
    let mut section = Vec::with_capacity(64 * records.len());
    for (i, record) in records.iter().enumerate() {
        let record = batch_records::Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: i as i32,
            key: Some(record.key.to_vec()),
            value: record.value.as_ref().map(|v| v.to_vec()),
            headers: Vec::new(),
        };
        encode_record(&mut section, &record);
    }
    let count = i32::try_from(records.len()).unwrap_or(i32::MAX);
    BatchBuilder {
        last_offset_delta: count - 1,
        base_timestamp: now_ms,
        max_timestamp: now_ms,
        record_count: count,
        attributes: if producer.is_some() {
            record_batch::ATTR_TRANSACTIONAL
        } else {
            0
        },
        producer_id: producer.map_or(-1, |p| p.0),
        producer_epoch: producer.map_or(-1, |p| p.1),
        ..BatchBuilder::default()
    }
    .build(&section)
}

/// Loads every `__consumer_offsets` partition this shard owns into `coordinator`. Called
/// once at start-up, before the shard serves requests; returns the partitions loaded too.
pub async fn replay_owned(
    shard: &Shard,
    coordinator: &std::cell::RefCell<GroupCoordinator>,
    now_ms: i64,
) -> Result<(Replayed, Vec<i32>), OffsetsLogError> {
    let mut total = Replayed {
        records: 0,
        staged: Staged::new(),
    };
    let Some(meta) = shard.cluster.topic(OFFSETS_TOPIC) else {
        return Ok((total, Vec::new()));
    };
    let mut loaded = Vec::new();
    for (p, owner) in meta.partitions.iter().enumerate() {
        if *owner != shard.core {
            continue;
        }
        let replayed = replay_partition(shard, p as i32, coordinator, now_ms).await?;
        total.records += replayed.records;
        total.staged.extend(replayed.staged);
        loaded.push(p as i32);
    }
    Ok((total, loaded))
}

/// Loads one `__consumer_offsets` partition into `coordinator` (start-up, or this shard just
/// became its leader).
pub async fn replay_partition(
    shard: &Shard,
    p: i32,
    coordinator: &std::cell::RefCell<GroupCoordinator>,
    now_ms: i64,
) -> Result<Replayed, OffsetsLogError> {
    let mut staged = Staged::new();
    let partition = shard.partition(OFFSETS_TOPIC, p).await?;
    let records = partition
        .with_log(|log| replay_log(log, &mut coordinator.borrow_mut(), &mut staged, now_ms))?;
    Ok(Replayed { records, staged })
}

/// What a replay loaded: the count of records applied, and the offset records of
/// transactions still open at the end of the log (their marker is yet to come), by producer
/// id, for the caller to stage.
pub struct Replayed {
    /// Records applied to the coordinator, over every `__consumer_offsets` partition this shard
    /// owns.
    pub records: usize,
    /// Offset records of transactions still open, which wait for their marker.
    pub staged: Staged,
}

/// Offset records of open transactions met during replay, by producer id.
pub type Staged = std::collections::HashMap<i64, Vec<Record>>;

/// Applies every record of one partition log in offset order; returns how many. Records of
/// transactional batches (TxnOffsetCommit) wait in `staged` for their marker.
fn replay_log(
    log: &crate::storage::log::PartitionLog,
    coordinator: &mut GroupCoordinator,
    staged: &mut Staged,
    now_ms: i64,
) -> Result<usize, OffsetsLogError> {
    let mut applied = 0;
    for_each_batch(log, |view| {
        if view.is_control() {
            settle_staged(view, coordinator, staged, now_ms);
        } else if view.is_transactional() {
            stage_batch(view, staged)?;
        } else {
            applied += replay_batch(view, coordinator, now_ms)?;
        }
        Ok(())
    })?;
    Ok(applied)
}

fn stage_batch(view: &BatchView<'_>, staged: &mut Staged) -> Result<(), OffsetsLogError> {
    let records = batch_records::decode_records(view)?
        .into_iter()
        .filter_map(|r| {
            Some(Record {
                key: r.key?.into(),
                value: r.value.map(Into::into),
            })
        });
    staged
        .entry(view.producer_id())
        .or_default()
        .extend(records);
    Ok(())
}

fn settle_staged(
    view: &BatchView<'_>,
    coordinator: &mut GroupCoordinator,
    staged: &mut Staged,
    now_ms: i64,
) {
    let commit = crate::protocol::control_batch::marker_of(view.bytes());
    let Some(records) = staged.remove(&view.producer_id()) else {
        return;
    };
    if commit != Some(true) {
        return;
    }
    for record in records {
        if let Err(e) = coordinator.replay(&record.key, record.value.as_deref(), now_ms) {
            tracing::warn!(error = %e, "skipping an undecodable {OFFSETS_TOPIC} record");
        }
    }
}

fn replay_batch(
    view: &BatchView<'_>,
    coordinator: &mut GroupCoordinator,
    now_ms: i64,
) -> Result<usize, OffsetsLogError> {
    let decoded = batch_records::decode_records(view)?;
    for record in &decoded {
        let Some(key) = record.key.as_deref() else {
            continue;
        };
        // A record of a future format must not stop the shard from loading the rest.
        if let Err(e) = coordinator.replay(key, record.value.as_deref(), now_ms) {
            tracing::warn!(error = %e, "skipping an undecodable {OFFSETS_TOPIC} record");
        }
    }
    Ok(decoded.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn built_batches_validate_and_decode_back() {
        let records = [
            records::offset_tombstone("g", "t", 0),
            Record {
                key: Bytes::from_static(b"k"),
                value: Some(Bytes::from_static(b"v")),
            },
        ];
        let refs: Vec<&Record> = records.iter().collect();
        let batch = build_batch(&refs, 1_000);
        let view = BatchView::parse_validated(&batch).expect("a batch we built is valid");
        assert_eq!(view.record_count(), 2);
        assert_eq!(view.max_timestamp(), 1_000);
        let decoded = batch_records::decode_records(&view).expect("decodes");
        assert_eq!(decoded[0].key.as_deref(), Some(&records[0].key[..]));
        assert_eq!(decoded[0].value, None);
        assert_eq!(decoded[1].value.as_deref(), Some(&b"v"[..]));
        assert_eq!(decoded[1].offset_delta, 1);
    }

    #[test]
    fn records_route_by_their_group() {
        let record = records::offset_tombstone("my-group", "t", 3);
        assert_eq!(group_of(&record).ok().as_deref(), Some("my-group"));
        let tombstone = records::group_tombstone("other");
        assert_eq!(group_of(&tombstone).ok().as_deref(), Some("other"));
    }
}
