//! How a partition leader (and the share-group admin APIs) reach the share-state
//! coordinator of a share partition: the shard that leads the key's `__share_group_state`
//! partition, which is this shard (a direct call), another core of this node (the mailbox)
//! or a shard of another node (Kafka's broker-to-broker ReadShareGroupState,
//! WriteShareGroupState and DeleteShareGroupState over `broker_link`). [`Link`] is the
//! `share::StateLink` a share partition persists through.
//!
//! Runs on the calling shard; nothing blocks.

use std::time::Duration;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_share_group_state_request::{
    DeleteStateData, PartitionData as DeletePartition,
};
use kafka_protocol::messages::read_share_group_state_request::{
    PartitionData as ReadPartition, ReadStateData,
};
use kafka_protocol::messages::write_share_group_state_request::{
    PartitionData as WritePartition, StateBatch, WriteStateData,
};
use kafka_protocol::messages::{
    DeleteShareGroupStateRequest, ReadShareGroupStateRequest, WriteShareGroupStateRequest,
};

use kafka_protocol::protocol::{Decodable, HeaderVersion, Request};

use crate::metadata::NOT_ON_THIS_NODE;
use crate::shard::Shard;
use crate::shard::share_state_log::{self, read_local, write_local};
use crate::shard::txns::{ShardReply, ShardRequest};
use crate::share::partition_state::{Snapshot, StateRange};
use crate::share::state_record::{StateKey, StoredState};
use crate::share::{PersistError, StateLink};

/// Longest a partition leader waits for another node's share-state coordinator.
const REMOTE_TIMEOUT: Duration = Duration::from_secs(10);

/// A share-state operation, as the mailbox carries it to another core.
#[derive(Debug, Clone)]
pub enum StateOp {
    /// Read a state, as a partition leader in `leader_epoch` (-1: admin).
    Read {
        /// Which share partition.
        key: StateKey,
        /// The reader's leader epoch.
        leader_epoch: i32,
    },
    /// Store (`Some`) or delete (`None`) a state.
    Write {
        /// Which share partition.
        key: StateKey,
        /// The new state.
        value: Option<StoredState>,
    },
}

/// Runs `op` on this shard, which leads the key's `__share_group_state` partition.
pub async fn run_local(shard: &Shard, op: StateOp) -> Result<Option<StoredState>, ResponseError> {
    match op {
        StateOp::Read { key, leader_epoch } => read_local(shard, &key, leader_epoch),
        StateOp::Write { key, value } => write_local(shard, key, value).await.map(|()| None),
    }
}

/// One share partition's link to its coordinator. It borrows the group's name: a fetch makes
/// one per partition, and only a read or a write (not every fetch) needs an owned key.
pub struct Link<'a> {
    /// The asking shard.
    pub shard: &'a Shard,
    /// The share group.
    pub group: &'a str,
    /// The partition: topic id and index.
    pub at: (uuid::Uuid, i32),
}

impl Link<'_> {
    fn key(&self) -> StateKey {
        StateKey {
            group: self.group.to_owned(),
            topic_id: self.at.0,
            partition: self.at.1,
        }
    }
}

impl StateLink for Link<'_> {
    async fn read(&self, leader_epoch: i32) -> Result<Option<StoredState>, PersistError> {
        read(self.shard, self.key(), leader_epoch)
            .await
            .map_err(PersistError)
    }

    async fn write(&self, state: StoredState) -> Result<(), PersistError> {
        let written = write(self.shard, self.key(), Some(state)).await;
        if written.is_err() {
            // The state in memory is ahead of the stored one (changes the caller is told
            // failed), or behind it (a newer leader wrote, or a reset): drop it, so the next
            // fetch loads the stored state and a failed acknowledgement is not kept.
            self.shard.shares.forget(self.group, self.at);
        }
        written.map_err(PersistError)
    }
}

/// The stored state of `key`, wherever its coordinator is.
pub async fn read(
    shard: &Shard,
    key: StateKey,
    leader_epoch: i32,
) -> Result<Option<StoredState>, ResponseError> {
    let op = StateOp::Read { key, leader_epoch };
    route(shard, op).await
}

/// Stores or deletes (`None`) the state of `key`, wherever its coordinator is.
pub async fn write(
    shard: &Shard,
    key: StateKey,
    value: Option<StoredState>,
) -> Result<(), ResponseError> {
    let op = StateOp::Write { key, value };
    route(shard, op).await.map(|_| ())
}

/// Runs `op` where the key's `__share_group_state` partition is led.
async fn route(shard: &Shard, op: StateOp) -> Result<Option<StoredState>, ResponseError> {
    let (key, creates) = match &op {
        StateOp::Read { key, .. } | StateOp::Write { key, value: None } => (key, false),
        StateOp::Write {
            key,
            value: Some(_),
        } => (key, true),
    };
    if !creates
        && shard
            .cluster
            .topic(share_state_log::SHARE_STATE_TOPIC)
            .is_none()
    {
        // No state was ever stored: nothing to read or delete, and no reason to create the
        // topic (in a cluster that would answer COORDINATOR_NOT_AVAILABLE until it exists).
        return Ok(None);
    }
    let (p, meta) = share_state_log::partition_of(shard, key)?;
    let index = usize::try_from(p).unwrap_or(usize::MAX);
    let core = *meta
        .partitions
        .get(index)
        .ok_or(ResponseError::CoordinatorNotAvailable)?;
    if core == shard.core {
        return run_local(shard, op).await;
    }
    if core != NOT_ON_THIS_NODE {
        let mailbox = shard
            .mailbox
            .get()
            .ok_or(ResponseError::CoordinatorNotAvailable)?;
        return match mailbox.ask(core, ShardRequest::ShareState(op)).await {
            Ok(Ok(ShardReply::ShareState(state))) => Ok(state),
            Ok(Ok(ShardReply::Done)) => Ok(None),
            Ok(Err(code)) => Err(error_of(code)),
            Err(_) => Err(ResponseError::CoordinatorNotAvailable),
        };
    }
    let leader = meta
        .leadership
        .get(index)
        .map(|l| l.leader)
        .filter(|l| *l >= 0)
        .ok_or(ResponseError::CoordinatorNotAvailable)?;
    remote(shard, leader, op).await
}

fn error_of(code: i16) -> ResponseError {
    ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError)
}

/// Runs `op` on broker `leader` of another node with Kafka's share-state APIs.
async fn remote(
    shard: &Shard,
    leader: i32,
    op: StateOp,
) -> Result<Option<StoredState>, ResponseError> {
    match op {
        StateOp::Read { key, leader_epoch } => {
            let response = send(shard, leader, &read_request(&key, leader_epoch)).await?;
            let result = response
                .results
                .into_iter()
                .flat_map(|t| t.partitions)
                .next()
                .ok_or(ResponseError::UnknownServerError)?;
            match result.error_code {
                0 => Ok(Some(stored_of_read(&result))),
                code if code == ResponseError::GroupIdNotFound.code() => Ok(None),
                code => Err(error_of(code)),
            }
        }
        StateOp::Write {
            key,
            value: Some(state),
        } => {
            let response = send(shard, leader, &write_request(&key, &state)).await?;
            let codes = response.results.iter().flat_map(|t| &t.partitions);
            first_code(codes.map(|p| p.error_code))
        }
        StateOp::Write { key, value: None } => {
            let response = send(shard, leader, &delete_request(&key)).await?;
            let codes = response.results.iter().flat_map(|t| &t.partitions);
            first_code(codes.map(|p| p.error_code))
        }
    }
}

/// Sends one share-state request (v0, the only version) to broker `leader`.
async fn send<R: Request>(
    shard: &Shard,
    leader: i32,
    request: &R,
) -> Result<R::Response, ResponseError>
where
    R::Response: Decodable + HeaderVersion,
{
    let links = &shard.txns.links;
    links
        .send(shard, leader, request, 0, REMOTE_TIMEOUT)
        .await
        .map_err(|e| {
            links.forget(leader);
            tracing::warn!(core = shard.core, coordinator = leader, error = %e, "share-state coordinator unreachable");
            ResponseError::CoordinatorNotAvailable
        })
}

/// The answer of a write or delete of one partition: its error code.
fn first_code(mut codes: impl Iterator<Item = i16>) -> Result<Option<StoredState>, ResponseError> {
    match codes.next().ok_or(ResponseError::UnknownServerError)? {
        0 => Ok(None),
        code => Err(error_of(code)),
    }
}

fn read_request(key: &StateKey, leader_epoch: i32) -> ReadShareGroupStateRequest {
    let mut partition = ReadPartition::default();
    partition.partition = key.partition;
    partition.leader_epoch = leader_epoch;
    let mut topic = ReadStateData::default();
    topic.topic_id = key.topic_id;
    topic.partitions = vec![partition];
    let mut request = ReadShareGroupStateRequest::default();
    request.group_id = crate::handlers::str_bytes(&key.group);
    request.topics = vec![topic];
    request
}

fn write_request(key: &StateKey, state: &StoredState) -> WriteShareGroupStateRequest {
    let mut partition = WritePartition::default();
    partition.partition = key.partition;
    partition.state_epoch = state.state_epoch;
    partition.leader_epoch = state.leader_epoch;
    partition.start_offset = state.snapshot.start;
    partition.state_batches = state
        .snapshot
        .ranges
        .iter()
        .map(|r| {
            let mut batch = StateBatch::default();
            batch.first_offset = r.first;
            batch.last_offset = r.last;
            batch.delivery_state = r.state as i8;
            batch.delivery_count = i16::try_from(r.deliveries).unwrap_or(i16::MAX);
            batch
        })
        .collect();
    let mut topic = WriteStateData::default();
    topic.topic_id = key.topic_id;
    topic.partitions = vec![partition];
    let mut request = WriteShareGroupStateRequest::default();
    request.group_id = crate::handlers::str_bytes(&key.group);
    request.topics = vec![topic];
    request
}

fn delete_request(key: &StateKey) -> DeleteShareGroupStateRequest {
    let mut partition = DeletePartition::default();
    partition.partition = key.partition;
    let mut topic = DeleteStateData::default();
    topic.topic_id = key.topic_id;
    topic.partitions = vec![partition];
    let mut request = DeleteShareGroupStateRequest::default();
    request.group_id = crate::handlers::str_bytes(&key.group);
    request.topics = vec![topic];
    request
}

/// The stored state a ReadShareGroupState answer carries (the leader epoch is not in the
/// answer; the reader knows its own).
pub fn stored_of_read(
    result: &kafka_protocol::messages::read_share_group_state_response::PartitionResult,
) -> StoredState {
    let runs = result.state_batches.iter();
    let runs = runs.map(|b| {
        run(
            b.first_offset,
            b.last_offset,
            b.delivery_state,
            b.delivery_count,
        )
    });
    stored(result.state_epoch, -1, result.start_offset, runs)
}

/// The stored state a WriteShareGroupState partition carries.
pub fn stored_of_write(partition: &WritePartition) -> StoredState {
    let runs = partition.state_batches.iter();
    let runs = runs.map(|b| {
        run(
            b.first_offset,
            b.last_offset,
            b.delivery_state,
            b.delivery_count,
        )
    });
    stored(
        partition.state_epoch,
        partition.leader_epoch,
        partition.start_offset,
        runs,
    )
}

fn stored(
    state_epoch: i32,
    leader_epoch: i32,
    start: i64,
    runs: impl Iterator<Item = StateRange>,
) -> StoredState {
    StoredState {
        state_epoch,
        leader_epoch,
        snapshot: Snapshot {
            start,
            ranges: runs.collect(),
        },
    }
}

/// A run of the state from a Kafka StateBatch's fields.
fn run(first: i64, last: i64, delivery_state: i8, delivery_count: i16) -> StateRange {
    StateRange {
        first,
        last,
        state: delivery_state as u8,
        deliveries: u16::try_from(delivery_count).unwrap_or(0),
    }
}
