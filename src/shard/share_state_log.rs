//! The share-state coordinator (KIP-932's share coordinator, reduced to what Sluice needs):
//! the `__share_group_state` topic, where every share partition's durable state is one
//! compacted record, and the states of the partitions of it that this shard leads, kept in
//! memory ([`StateStore`]). Partition leaders read and write share states here (through
//! `shard::share_state`, which finds this shard), so the state lives on the replicated
//! internal topic, not next to the partition it describes, and a new leader of that
//! partition (another node after a failover) reads what the old one wrote.
//!
//! Loading follows leadership as the group and transaction coordinators do
//! (`coordinator_moves`): at start-up the partitions this shard owns, in a cluster the ones
//! it comes to lead. Runs on the shard; appends wait for the in-sync replicas.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::ResponseError;

use crate::coordinator::group::records::{Record, partition_for_group};
use crate::metadata::{MetadataError, TopicMeta};
use crate::protocol::records as batch_records;
use crate::shard::Shard;
use crate::shard::coordinator_moves::{self, LoadedPartitions};
use crate::shard::offsets_log::{self, OffsetsLogError};
use crate::share::state_record::{self, StateKey, StoredState};
use crate::share::state_store::{StateStore, WriteRefused};

/// Kafka's name for the internal topic of share-group state.
pub const SHARE_STATE_TOPIC: &str = "__share_group_state";
/// Segment size of the topic (Kafka's `share.coordinator.state.topic.segment.bytes`): small
/// enough that compaction keeps a replay short.
const SEGMENT_BYTES: u64 = 100 << 20;

/// A shard's share-state coordinator.
pub struct ShareStates {
    /// The states of the partitions loaded.
    pub store: RefCell<StateStore>,
    /// Which partitions are loaded, in which leader epoch.
    pub loaded: LoadedPartitions,
}

impl Default for ShareStates {
    fn default() -> Self {
        Self {
            store: RefCell::new(StateStore::default()),
            loaded: LoadedPartitions::new(SHARE_STATE_TOPIC),
        }
    }
}

/// The topic's metadata, creating it (compacted) on first use, as Kafka's share coordinator
/// does.
pub fn state_topic(shard: &Shard) -> Result<Arc<TopicMeta>, MetadataError> {
    let configs = BTreeMap::from([
        ("cleanup.policy".to_owned(), "compact".to_owned()),
        ("segment.bytes".to_owned(), SEGMENT_BYTES.to_string()),
    ]);
    let partitions = shard.config.share_state_num_partitions;
    offsets_log::internal_topic(shard, SHARE_STATE_TOPIC, partitions, configs, |c| {
        (
            c.share_state_replication_factor,
            Some(c.share_state_min_isr),
        )
    })
}

/// Where `key`'s state lives: its `__share_group_state` partition, with the topic.
pub fn partition_of(shard: &Shard, key: &StateKey) -> Result<(i32, Arc<TopicMeta>), ResponseError> {
    let meta = state_topic(shard).map_err(|e| {
        tracing::debug!(error = %e, "{SHARE_STATE_TOPIC} not available yet");
        ResponseError::CoordinatorNotAvailable
    })?;
    let count = i32::try_from(meta.partitions.len()).unwrap_or(i32::MAX);
    Ok((partition_for_group(&key.placement(), count), meta))
}

/// NOT_COORDINATOR unless this shard leads partition `p` (and in a cluster has loaded it).
fn check(shard: &Shard, p: i32, meta: &TopicMeta) -> Result<(), ResponseError> {
    let owner = meta
        .partitions
        .get(usize::try_from(p).unwrap_or(usize::MAX))
        .copied()
        .ok_or(ResponseError::NotCoordinator)?;
    coordinator_moves::check(shard, p, owner, &shard.share_states.loaded)
}

/// The stored state of `key`, read by its partition's leader in `leader_epoch` (-1 for an
/// admin read). Runs on the shard that leads the key's `__share_group_state` partition.
pub fn read_local(
    shard: &Shard,
    key: &StateKey,
    leader_epoch: i32,
) -> Result<Option<StoredState>, ResponseError> {
    let (p, meta) = partition_of(shard, key)?;
    check(shard, p, &meta)?;
    Ok(shard
        .share_states
        .store
        .borrow_mut()
        .read(p, key, leader_epoch))
}

/// Stores `value` as `key`'s state, or deletes it (`None`); answers once the in-sync
/// replicas have it. Runs on the shard that leads the key's `__share_group_state` partition.
pub async fn write_local(
    shard: &Shard,
    key: StateKey,
    value: Option<StoredState>,
) -> Result<(), ResponseError> {
    let (p, meta) = partition_of(shard, &key)?;
    check(shard, p, &meta)?;
    if let Some(state) = &value {
        // What a replay would refuse is not stored: a peer's WriteShareGroupState may carry
        // any number of runs.
        if state.snapshot.ranges.len() > state_record::MAX_RANGES {
            return Err(ResponseError::InvalidRequest);
        }
        let store = shard.share_states.store.borrow();
        store.check_write(p, &key, state).map_err(|e| match e {
            WriteRefused::FencedLeaderEpoch => ResponseError::FencedLeaderEpoch,
            WriteRefused::FencedStateEpoch => ResponseError::FencedStateEpoch,
        })?;
    }
    let record = Record {
        key: state_record::encode_key(&key).into(),
        value: value.as_ref().map(|v| state_record::encode_value(v).into()),
    };
    let now = crate::now_ms();
    let batch = offsets_log::build_batch(&[&record], now);
    offsets_log::append_batch(shard, SHARE_STATE_TOPIC, p, &batch, now)
        .await
        .map_err(|e| {
            tracing::warn!(core = shard.core, error = %e, "storing share state failed");
            e.response_error()
        })?;
    shard.share_states.store.borrow_mut().apply(p, key, value);
    Ok(())
}

/// Loads the `__share_group_state` partitions this shard owns. Runs at start-up, before the
/// shard accepts connections.
pub async fn load(shard: &Shard) {
    let Some(meta) = shard.cluster.topic(SHARE_STATE_TOPIC) else {
        return;
    };
    let started = std::time::Instant::now();
    let mut records = 0;
    for (p, owner) in meta.partitions.iter().enumerate() {
        if *owner != shard.core {
            continue;
        }
        match replay_partition(shard, p as i32).await {
            Ok(n) => {
                records += n;
                shard.share_states.loaded.mark(shard, p as i32);
            }
            Err(e) => {
                tracing::error!(core = shard.core, partition = p, error = %e, "loading {SHARE_STATE_TOPIC} failed; its share states start empty")
            }
        }
    }
    tracing::info!(
        core = shard.core,
        records,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "share-state coordinator loaded"
    );
}

/// Cluster mode: loads the partitions this shard now leads and drops those it lost. Called
/// by the housekeeping loop.
pub async fn follow_leadership(shard: &Shard) {
    let unload = |p| shard.share_states.store.borrow_mut().unload(p);
    let load = async |p| replay_partition(shard, p).await;
    let states = &shard.share_states.loaded;
    coordinator_moves::follow(shard, states, "share states", unload, load).await;
}

/// Applies one partition's records to the store, from scratch; returns how many.
async fn replay_partition(shard: &Shard, p: i32) -> Result<usize, OffsetsLogError> {
    let partition = shard.partition(SHARE_STATE_TOPIC, p).await?;
    let mut store = shard.share_states.store.borrow_mut();
    store.unload(p);
    store.mark_loaded(p);
    partition.with_log(|log| {
        let mut replayed = 0;
        offsets_log::for_each_batch(log, |view| {
            if view.is_control() {
                return Ok(());
            }
            for record in batch_records::decode_records(view)? {
                let Some(key) = record.key.as_deref().and_then(state_record::decode_key) else {
                    tracing::warn!("skipping an undecodable {SHARE_STATE_TOPIC} key");
                    continue;
                };
                let value = record.value.as_deref().and_then(state_record::decode_value);
                if record.value.is_some() && value.is_none() {
                    tracing::warn!(
                        group = key.group,
                        "skipping an undecodable {SHARE_STATE_TOPIC} value"
                    );
                    continue;
                }
                store.apply(p, key, value);
                replayed += 1;
            }
            Ok(())
        })?;
        Ok(replayed)
    })
}
