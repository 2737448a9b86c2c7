//! The transaction coordinator of one shard, wired to storage and to the other shards: the
//! pure [`TxnCoordinator`] behind a `RefCell`, the `__transaction_state` topic (created on
//! first use, appended after every state change, replayed at start-up), marker writes to
//! the partitions of a transaction (through the cross-core mailbox when another shard of this
//! node leads them, with WriteTxnMarkers to the leader when another node does), the check of
//! a producer's first transactional batch with its coordinator (mailbox, or AddPartitionsToTxn
//! v4 to another node) or, for a transaction version 2 producer, its implicit add to the
//! transaction (mailbox, or AddPartitionsToTxn v5 to another node), and the timer task that
//! aborts timed-out transactions and finishes transactions a crash, a failover or a failed
//! marker left in PrepareCommit/PrepareAbort.
//! Lives on one core; an id is served only by the shard leading its `__transaction_state`
//! partition.
//!
//! Order of every change: run the coordinator (borrow released at once), append its record,
//! then answer. An EndTxn's commit decision is durable (PrepareCommit stored) before any
//! marker is written, so a crash after that point completes the commit on restart.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use futures_lite::future;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, ProducerId, TransactionalId, WriteTxnMarkersRequest,
};

use crate::coordinator::group::records::{self as group_records, Record};
use crate::coordinator::txn::records as txn_records;
use crate::coordinator::txn::{MarkerJob, TxnCoordinator, TxnError, TxnRecord, TxnStatus};
use crate::event::Event;
use crate::metadata::NOT_ON_THIS_NODE;
use crate::metadata::{MetadataError, TopicMeta};
use crate::protocol::control_batch;
use crate::protocol::record_batch::BatchView;
use crate::protocol::records as batch_records;
use crate::shard::broker_link::{LinkError, Links};
use crate::shard::coordinator_moves::{self, LoadedPartitions};
use crate::shard::join;
use crate::shard::mailbox::Handler;
use crate::shard::offsets_log::{self, OffsetsLogError};
use crate::shard::replication;
use crate::shard::{PartitionError, Shard};
use crate::storage::log::{AppendError, FlushWait, validate_batches};

/// Kafka's name for the internal topic of transaction state.
pub const TXN_TOPIC: &str = "__transaction_state";

/// Longest the timer task sleeps; also how often unfinished marker jobs are retried.
const MAX_TIMER_SLEEP_MS: i64 = 1_000;

/// The WriteTxnMarkers version sent to other brokers (v1, the only one Kafka 4 keeps).
const WRITE_TXN_MARKERS_VERSION: i16 = 1;

/// The AddPartitionsToTxn version a partition leader verifies with (the first with
/// `verify_only`).
const VERIFY_VERSION: i16 = 4;

/// The AddPartitionsToTxn version a partition leader adds a partition with for a transaction
/// version 2 producer (Kafka's leader sends v5 with `verify_only` false; the coordinator takes
/// v5 as transaction version 2).
pub const IMPLICIT_ADD_VERSION: i16 = 5;

/// How long a produce waits for a coordinator on another node to verify its transaction.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a partition leader on another node may take to answer WriteTxnMarkers: it
/// waits for its ISR per partition, so this is Kafka's `request.timeout.ms`, well above
/// [`replication::INTERNAL_ACK_TIMEOUT`].
const REMOTE_MARKERS_TIMEOUT: Duration = Duration::from_secs(30);

/// A question one shard asks another through the mailbox.
#[derive(Debug, Clone)]
pub enum ShardRequest {
    /// Append a COMMIT/ABORT marker of (producer id, epoch) to these partitions, which the
    /// asked shard owns.
    WriteMarkers {
        /// Producer id of the transaction.
        producer_id: i64,
        /// Producer epoch of the transaction, written in the marker.
        producer_epoch: i16,
        /// `true` for a COMMIT marker, `false` for ABORT.
        commit: bool,
        /// The coordinator's epoch (its `__transaction_state` partition's leader epoch),
        /// written in the marker.
        coordinator_epoch: i32,
        /// (topic, partition index) pairs.
        partitions: Vec<(String, i32)>,
    },
    /// Is `partition` part of the open transaction of (producer id, epoch)? Asked by a
    /// partition leader of the coordinator of `transactional_id`. With `add` (transaction
    /// version 2) the partition is added to the transaction instead.
    VerifyPartition {
        /// The producer's transactional id, which the asked shard coordinates.
        transactional_id: String,
        /// Producer id of the batch being appended.
        producer_id: i64,
        /// Producer epoch of that batch.
        producer_epoch: i16,
        /// (topic, partition index) the batch is appended to.
        partition: (String, i32),
        /// Add the partition to the transaction (transaction version 2) rather than check it.
        add: bool,
    },
    /// Drop a share group's state of a partition the asked shard leads from memory (the
    /// admin APIs reset it in `__share_group_state`).
    ShareForget {
        /// The share group.
        group: String,
        /// The topic's id.
        topic_id: uuid::Uuid,
        /// The partition index.
        partition: i32,
    },
    /// A share-state operation for the `__share_group_state` partition the asked shard leads.
    ShareState(crate::shard::share_state::StateOp),
}

/// What a shard answers another: done, or a share state read.
#[derive(Debug)]
pub enum ShardReply {
    /// The request was carried out.
    Done,
    /// The state a share-state operation read (`None`: none stored, or a write).
    ShareState(Option<crate::share::state_record::StoredState>),
}

/// The answer: a reply or the Kafka error code of the first failure.
pub type ShardAnswer = Result<ShardReply, i16>;

/// Per-shard transaction state.
pub struct Txns {
    coordinator: RefCell<TxnCoordinator>,
    /// Ids whose markers some task is writing right now. Only one task may finish a
    /// transaction: a second, late marker could otherwise land after the producer's next
    /// transaction began and end that one too.
    finishing: RefCell<HashSet<String>>,
    /// Signalled whenever a task stops finishing a transaction (done or failed).
    finished: Event,
    /// Signalled after every change, since any change may move a deadline.
    timers_changed: Event,
    /// The `__transaction_state` partitions whose ids are loaded here.
    loaded: LoadedPartitions,
    /// Connections to other nodes' shards: partition leaders (WriteTxnMarkers),
    /// coordinators (verification of a transactional batch) and share-state coordinators
    /// (`shard::share_state`).
    pub links: Links,
}

impl Txns {
    /// No transactional ids yet; `max_timeout_ms` is `transaction.max.timeout.ms`, the longest
    /// transaction timeout (ms) a producer may ask for.
    pub fn new(max_timeout_ms: i32) -> Self {
        Self {
            coordinator: RefCell::new(TxnCoordinator::new(max_timeout_ms)),
            finishing: RefCell::new(HashSet::new()),
            finished: Event::default(),
            timers_changed: Event::default(),
            loaded: LoadedPartitions::new(TXN_TOPIC),
            links: Links::default(),
        }
    }

    /// Runs a coordinator call; the borrow ends when `f` returns, never across an await.
    pub fn call<R>(&self, f: impl FnOnce(&mut TxnCoordinator) -> R) -> R {
        let result = f(&mut self.coordinator.borrow_mut());
        self.timers_changed.notify();
        result
    }

    /// Runs a read-only coordinator call; the borrow ends when `f` returns. Unlike `call`, it does
    /// not wake the timer task.
    pub fn read<R>(&self, f: impl FnOnce(&TxnCoordinator) -> R) -> R {
        f(&self.coordinator.borrow())
    }
}

/// The topic's metadata, creating it (compacted) on first use, as Kafka does.
pub fn txn_topic(shard: &Shard) -> Result<Arc<TopicMeta>, MetadataError> {
    let configs = BTreeMap::from([("cleanup.policy".to_owned(), "compact".to_owned())]);
    let partitions = shard.config.transaction_state_num_partitions;
    offsets_log::internal_topic(shard, TXN_TOPIC, partitions, configs, |c| {
        (
            c.transaction_replication_factor,
            Some(c.transaction_min_isr),
        )
    })
}

/// The `__transaction_state` partition of `transactional_id` and the core owning it
/// (Kafka's rule: `abs(hashCode) % partitions`, the same as for groups).
pub fn coordinator_of(
    shard: &Shard,
    transactional_id: &str,
) -> Result<(i32, usize), MetadataError> {
    let meta = txn_topic(shard)?;
    let count = i32::try_from(meta.partitions.len()).unwrap_or(i32::MAX);
    let partition = group_records::partition_for_group(transactional_id, count);
    // `partition_for_group` returns a value in 0..count, an index of `partitions`.
    Ok((partition, meta.partitions[partition as usize]))
}

/// NOT_COORDINATOR unless this shard coordinates `transactional_id`;
/// COORDINATOR_LOAD_IN_PROGRESS while (in a cluster) its ids are loaded after a leader change.
pub fn check_coordinator(shard: &Shard, transactional_id: &str) -> Result<(), ResponseError> {
    match coordinator_of(shard, transactional_id) {
        Ok((p, owner)) => coordinator_moves::check(shard, p, owner, &shard.txns.loaded),
        Err(e) => {
            tracing::error!(error = %e, "cannot create {TXN_TOPIC}");
            Err(ResponseError::CoordinatorNotAvailable)
        }
    }
}

/// In a cluster, a fresh producer id from the quorum (async), fetched before a coordinator's
/// synchronous call that may need one; `None` on a single node, whose ids are allocated
/// within the call.
pub async fn producer_id_from_quorum(shard: &Shard) -> Result<Option<i64>, ResponseError> {
    if !shard.cluster.is_clustered() {
        return Ok(None);
    }
    let id = shard.cluster.propose_producer_id().await;
    id.map(Some).map_err(|e| e.kafka_error())
}

/// Appends one coordinator record to the id's `__transaction_state` partition.
pub async fn persist(shard: &Shard, record: TxnRecord) -> Result<(), ResponseError> {
    let stored = persist_inner(shard, record).await;
    stored.map_err(|e| {
        tracing::warn!(core = shard.core, error = %e, "storing transaction state failed");
        e.response_error()
    })
}

async fn persist_inner(shard: &Shard, record: TxnRecord) -> Result<(), OffsetsLogError> {
    let id = txn_records::decode_key(&record.key)
        .map_err(|_| OffsetsLogError::Metadata(MetadataError::UnknownTopic(TXN_TOPIC.into())))?;
    let (partition, _) = coordinator_of(shard, &id)?;
    let now = crate::now_ms();
    let record = Record {
        key: record.key,
        value: record.value,
    };
    let batch = offsets_log::build_batch(&[&record], now);
    offsets_log::append_batch(shard, TXN_TOPIC, partition, &batch, now).await
}

/// Where the markers of one transaction go: partitions led by a shard of this node (by core)
/// and partitions led by another node's shard (by broker id); `leaderless` counts those
/// without a leader now.
#[derive(Debug, Default)]
struct MarkerTargets {
    by_core: BTreeMap<usize, Vec<(String, i32)>>,
    by_broker: BTreeMap<i32, Vec<(String, i32)>>,
    leaderless: usize,
}

fn marker_targets(shard: &Shard, job: &MarkerJob) -> MarkerTargets {
    let mut targets = MarkerTargets::default();
    for (topic, p) in &job.partitions {
        // A partition of a deleted topic has nobody to tell: skip it.
        let Some(meta) = shard.cluster.topic(topic) else {
            continue;
        };
        let Some(owner) = usize::try_from(*p)
            .ok()
            .and_then(|i| meta.partitions.get(i).copied())
        else {
            continue;
        };
        let entry = (topic.clone(), *p);
        if owner != NOT_ON_THIS_NODE {
            targets.by_core.entry(owner).or_default().push(entry);
            continue;
        }
        // Cluster mode: led by another node, or by nobody until an election.
        match meta.leadership.get(*p as usize).map(|l| l.leader) {
            Some(leader) if leader >= 0 => targets.by_broker.entry(leader).or_default().push(entry),
            _ => targets.leaderless += 1,
        }
    }
    targets
}

/// The coordinator epoch written in the markers of `transactional_id`: the leader epoch of
/// its `__transaction_state` partition (0 on a single node), as Kafka's coordinator sends.
fn coordinator_epoch(shard: &Shard, transactional_id: &str) -> i32 {
    coordinator_of(shard, transactional_id)
        .map(|(p, _)| coordinator_moves::leader_epoch(shard, TXN_TOPIC, p))
        .unwrap_or(0)
}

/// One leader's share of a transaction's markers, in flight.
type MarkerWrite<'a> = Pin<Box<dyn Future<Output = Result<(), ResponseError>> + 'a>>;

/// Writes the markers of `job` to every partition of the transaction: through the mailbox
/// for partitions another shard of this node leads, with WriteTxnMarkers to the leader for
/// partitions another node leads. Every target is tried; the first failure is returned
/// (leaderless partitions fail with LEADER_NOT_AVAILABLE), and the caller retries the job
/// later, with the metadata of then.
pub async fn write_markers(shard: &Shard, job: &MarkerJob) -> Result<(), ResponseError> {
    let targets = marker_targets(shard, job);
    let epoch = coordinator_epoch(shard, &job.transactional_id);
    let (id, producer_epoch, commit) = (job.producer_id, job.producer_epoch, job.commit);
    // Every leader is asked at once: the commit waits for the slowest, not for their sum.
    let mut work: Vec<MarkerWrite<'_>> = Vec::new();
    for (owner, partitions) in targets.by_core {
        work.push(Box::pin(async move {
            let answer = if owner == shard.core {
                write_local_markers(shard, id, producer_epoch, commit, epoch, &partitions).await
            } else {
                ask_shard_to_write(shard, owner, id, producer_epoch, commit, epoch, partitions)
                    .await
            };
            answer.map_err(|code| {
                ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError)
            })
        }));
    }
    for (broker, partitions) in targets.by_broker {
        work.push(Box::pin(async move {
            send_markers(shard, broker, job, epoch, &partitions).await
        }));
    }
    let mut first_error = (targets.leaderless > 0).then_some(ResponseError::LeaderNotAvailable);
    for result in join::join_all(work).await {
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// WriteTxnMarkers to broker `broker` (a shard of another node) for `partitions`, which the
/// metadata says it leads. The first partition error is returned; NOT_LEADER_OR_FOLLOWER and
/// the like mean the metadata moved, and the retry uses the newer one.
async fn send_markers(
    shard: &Shard,
    broker: i32,
    job: &MarkerJob,
    coordinator_epoch: i32,
    partitions: &[(String, i32)],
) -> Result<(), ResponseError> {
    let request = write_txn_markers_request(job, coordinator_epoch, partitions);
    let links = &shard.txns.links;
    let response = links
        .send(
            shard,
            broker,
            &request,
            WRITE_TXN_MARKERS_VERSION,
            REMOTE_MARKERS_TIMEOUT,
        )
        .await
        .map_err(|e| {
            links.forget(broker);
            tracing::warn!(core = shard.core, broker, error = %e, "WriteTxnMarkers to a partition leader failed");
            match e {
                LinkError::Timeout => ResponseError::RequestTimedOut,
                LinkError::NoAddress(_) => ResponseError::LeaderNotAvailable,
                LinkError::Io(_) | LinkError::Decode(_) => ResponseError::NetworkException,
            }
        })?;
    let failed = response
        .markers
        .iter()
        .flat_map(|m| &m.topics)
        .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
        .find(|(_, p)| p.error_code != 0);
    match failed {
        None => Ok(()),
        Some((t, p)) => {
            let error = ResponseError::try_from_code(p.error_code)
                .unwrap_or(ResponseError::UnknownServerError);
            tracing::warn!(
                core = shard.core,
                broker,
                topic = t.name.as_str(),
                partition = p.partition_index,
                ?error,
                "a partition leader refused a transaction marker"
            );
            Err(error)
        }
    }
}

fn write_txn_markers_request(
    job: &MarkerJob,
    coordinator_epoch: i32,
    partitions: &[(String, i32)],
) -> WriteTxnMarkersRequest {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, p) in partitions {
        by_topic.entry(topic).or_default().push(*p);
    }
    let mut marker = WritableTxnMarker::default();
    marker.producer_id = ProducerId(job.producer_id);
    marker.producer_epoch = job.producer_epoch;
    marker.transaction_result = job.commit;
    marker.coordinator_epoch = coordinator_epoch;
    marker.topics = by_topic
        .into_iter()
        .map(|(name, partition_indexes)| {
            let mut t = WritableTxnMarkerTopic::default();
            t.name = crate::handlers::topic_name(name);
            t.partition_indexes = partition_indexes;
            t
        })
        .collect();
    let mut request = WriteTxnMarkersRequest::default();
    request.markers = vec![marker];
    request
}

/// Asks shard `owner` of this node, through the mailbox, to write the marker (producer id,
/// producer epoch, commit) to `partitions`, which it leads.
pub async fn ask_shard_to_write(
    shard: &Shard,
    owner: usize,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    partitions: Vec<(String, i32)>,
) -> Result<(), i16> {
    let Some(mailbox) = shard.mailbox.get() else {
        return Err(ResponseError::CoordinatorNotAvailable.code());
    };
    let request = ShardRequest::WriteMarkers {
        producer_id,
        producer_epoch,
        commit,
        coordinator_epoch,
        partitions,
    };
    match mailbox.ask(owner, request).await {
        Ok(answer) => answer.map(|_| ()),
        Err(e) => {
            tracing::warn!(core = shard.core, owner, error = %e, "marker request to another shard failed");
            Err(ResponseError::CoordinatorNotAvailable.code())
        }
    }
}

/// Appends a marker to each of `partitions`, all owned by this shard.
pub async fn write_local_markers(
    shard: &Shard,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    partitions: &[(String, i32)],
) -> Result<(), i16> {
    let now = crate::now_ms();
    let batch = control_batch::coordinator_marker_batch(
        producer_id,
        producer_epoch,
        commit,
        coordinator_epoch,
        now,
    );
    for (topic, p) in partitions {
        let log = match shard.partition(topic, *p).await {
            Ok(log) => log,
            Err(PartitionError::UnknownTopicOrPartition) => continue,
            Err(e) => return Err(kafka_protocol::ResponseError::from(&e).code()),
        };
        let max_bytes = log.max_message_bytes();
        let validated = validate_batches(&batch, max_bytes)
            .map_err(|_| ResponseError::CorruptMessage.code())?;
        let info = match log.append(validated, now, FlushWait::Durable).await {
            Ok(info) => info,
            Err(e @ AppendError::Sequence(_)) => {
                // A fenced producer epoch or an older coordinator generation: Kafka's
                // INVALID_PRODUCER_EPOCH / TRANSACTION_COORDINATOR_FENCED.
                tracing::warn!(topic, partition = p, error = %e, "a transaction marker was refused");
                return Err(ResponseError::from(&e).code());
            }
            Err(e) => {
                tracing::error!(topic, partition = p, error = %e, "cannot write a transaction marker");
                return Err(ResponseError::KafkaStorageError.code());
            }
        };
        if let Err(e) =
            replication::acknowledge_internal_append(shard, topic, *p, &log, info.last_offset).await
        {
            tracing::warn!(topic, partition = p, error = ?e, "a transaction marker is not on every in-sync replica yet");
            return Err(e.code());
        }
        if topic == offsets_log::OFFSETS_TOPIC {
            crate::shard::groups::settle_txn_offsets(shard, producer_id, commit);
        }
    }
    Ok(())
}

/// Carries a transaction's end through: markers everywhere, then Complete stored. On a
/// marker failure the transaction stays in Prepare and the timer task retries it.
pub async fn finish(shard: &Shard, job: &MarkerJob) -> Result<(), ResponseError> {
    let id = job.transactional_id.clone();
    if !shard.txns.finishing.borrow_mut().insert(id.clone()) {
        return Err(ResponseError::ConcurrentTransactions);
    }
    let _done = FinishingGuard {
        txns: &shard.txns,
        id,
    };
    // A coordinator whose `__transaction_state` partition moved (or came back in a newer
    // epoch) writes no markers: its view may hold a decision that never reached the log, and
    // the current coordinator decides from the log.
    check_coordinator(shard, &job.transactional_id)?;
    write_markers(shard, job).await?;
    let record = shard
        .txns
        .call(|c| c.complete(&job.transactional_id, crate::now_ms()));
    if let Some(record) = record {
        persist(shard, record).await?;
    }
    Ok(())
}

struct FinishingGuard<'a> {
    txns: &'a Txns,
    id: String,
}

impl Drop for FinishingGuard<'_> {
    fn drop(&mut self) {
        self.txns.finishing.borrow_mut().remove(&self.id);
        self.txns.finished.notify();
    }
}

/// [`finish`] for EndTxn: when another task (the timer's retry, which may pick the job up
/// while EndTxn is still storing the Prepare record) is writing this transaction's markers
/// right now, waits for it instead of answering before the markers are written, and takes
/// over if it failed. CONCURRENT_TRANSACTIONS only if that takes longer than a marker request
/// may.
pub async fn finish_or_await(shard: &Shard, job: &MarkerJob) -> Result<(), ResponseError> {
    let deadline = std::time::Instant::now() + REMOTE_MARKERS_TIMEOUT;
    loop {
        let seen = shard.txns.finished.generation();
        if !shard
            .txns
            .finishing
            .borrow()
            .contains(&job.transactional_id)
        {
            return finish(shard, job).await;
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(ResponseError::ConcurrentTransactions);
        }
        future::or(
            shard.txns.finished.changed_since(seen),
            glommio::timer::sleep(left),
        )
        .await;
        if !preparing(shard, job) {
            return Ok(());
        }
    }
}

/// Whether `job`'s transaction still waits for its markers (Prepare stored, Complete not).
fn preparing(shard: &Shard, job: &MarkerJob) -> bool {
    shard.txns.read(|c| {
        c.get(&job.transactional_id).is_some_and(|m| {
            matches!(m.status, TxnStatus::PrepareCommit | TxnStatus::PrepareAbort)
                && m.producer_id == job.producer_id
                && m.producer_epoch == job.producer_epoch
        })
    })
}

/// Checks with the coordinator of `transactional_id` (here or through the mailbox) that
/// producer (id, epoch) added `partition` to its open transaction or, with `add` (a
/// transaction version 2 producer), adds it. The error is what a produce answers:
/// INVALID_PRODUCER_EPOCH for a fenced producer, INVALID_TXN_STATE for a partition never
/// added, and (adding) NOT_ENOUGH_REPLICAS, which producers retry, while the coordinator
/// cannot take the partition now (markers of the last transaction still being written, a
/// coordinator moving or loading).
pub async fn verify_partition(
    shard: &Shard,
    transactional_id: &str,
    producer: (i64, i16),
    partition: (String, i32),
    add: bool,
) -> Result<(), ResponseError> {
    let (producer_id, producer_epoch) = producer;
    let (_, owner) = coordinator_of(shard, transactional_id)
        .map_err(|_| ResponseError::CoordinatorNotAvailable)?;
    if owner == NOT_ON_THIS_NODE {
        return verify_remote(shard, transactional_id, producer, partition, add).await;
    }
    let answer = if owner == shard.core {
        match add {
            true => add_local(shard, transactional_id, producer, &partition).await,
            false => verify_local(
                shard,
                transactional_id,
                producer_id,
                producer_epoch,
                &partition,
            ),
        }
    } else {
        let Some(mailbox) = shard.mailbox.get() else {
            return Err(ResponseError::CoordinatorNotAvailable);
        };
        let request = ShardRequest::VerifyPartition {
            transactional_id: transactional_id.to_owned(),
            producer_id,
            producer_epoch,
            partition,
            add,
        };
        match mailbox.ask(owner, request).await {
            Ok(answer) => answer.map(|_| ()).map_err(|code| {
                ResponseError::try_from_code(code).unwrap_or(ResponseError::UnknownServerError)
            }),
            Err(_) => Err(ResponseError::CoordinatorNotAvailable),
        }
    };
    // Verification keeps its answers as they were; an add answers as Kafka's leader does.
    match add {
        true => answer.map_err(for_produce),
        false => answer,
    }
}

/// The produce answer for a coordinator's refusal, as Kafka's partition leader gives it: a
/// coordinator that cannot answer now means NOT_ENOUGH_REPLICAS (producers retry it), a fenced
/// producer INVALID_PRODUCER_EPOCH.
fn for_produce(e: ResponseError) -> ResponseError {
    match e {
        ResponseError::NotCoordinator
        | ResponseError::CoordinatorNotAvailable
        | ResponseError::CoordinatorLoadInProgress
        | ResponseError::ConcurrentTransactions => ResponseError::NotEnoughReplicas,
        ResponseError::ProducerFenced => ResponseError::InvalidProducerEpoch,
        e => e,
    }
}

/// Transaction version 2: adds `partition` to the producer's transaction on this shard, the
/// coordinator of `transactional_id`, persisted before the answer.
async fn add_local(
    shard: &Shard,
    transactional_id: &str,
    (producer_id, producer_epoch): (i64, i16),
    partition: &(String, i32),
) -> Result<(), ResponseError> {
    check_coordinator(shard, transactional_id)?;
    let record = shard.txns.call(|c| {
        c.add_partitions_implicitly(
            transactional_id,
            producer_id,
            producer_epoch,
            std::slice::from_ref(partition),
            crate::now_ms(),
        )
    });
    match record.map_err(|e| error_code(e, i16::MAX, 0))? {
        Some(record) => persist(shard, record).await,
        None => Ok(()),
    }
}

/// Asks the coordinator of `transactional_id` on another node with AddPartitionsToTxn v4
/// (`verify_only`, Kafka's KIP-890 verification) or, with `add`, v5 adding the partition
/// (transaction version 2). When the coordinator cannot answer now (none elected, loading,
/// unreachable) the produce gets NOT_ENOUGH_REPLICAS, which producers retry, as Kafka's
/// leader answers them.
async fn verify_remote(
    shard: &Shard,
    transactional_id: &str,
    (producer_id, producer_epoch): (i64, i16),
    (topic, index): (String, i32),
    add: bool,
) -> Result<(), ResponseError> {
    let retry_later = ResponseError::NotEnoughReplicas;
    let (p, _) = coordinator_of(shard, transactional_id).map_err(|_| retry_later)?;
    let leader = shard
        .cluster
        .topic(TXN_TOPIC)
        .and_then(|meta| meta.leadership.get(p as usize).map(|l| l.leader))
        .filter(|l| *l >= 0)
        .ok_or(retry_later)?;
    let mut t = AddPartitionsToTxnTopic::default();
    t.name = crate::handlers::topic_name(&topic);
    t.partitions = vec![index];
    let mut txn = AddPartitionsToTxnTransaction::default();
    txn.transactional_id = TransactionalId(crate::handlers::str_bytes(transactional_id));
    txn.producer_id = ProducerId(producer_id);
    txn.producer_epoch = producer_epoch;
    txn.verify_only = !add;
    txn.topics = vec![t];
    let mut request = AddPartitionsToTxnRequest::default();
    request.transactions = vec![txn];
    let version = if add {
        IMPLICIT_ADD_VERSION
    } else {
        VERIFY_VERSION
    };
    let links = &shard.txns.links;
    let response = links
        .send(shard, leader, &request, version, VERIFY_TIMEOUT)
        .await
        .map_err(|e| {
            links.forget(leader);
            tracing::warn!(core = shard.core, coordinator = leader, error = %e, "transaction verification failed");
            retry_later
        })?;
    let code = if response.error_code != 0 {
        response.error_code
    } else {
        response
            .results_by_transaction
            .iter()
            .flat_map(|r| &r.topic_results)
            .flat_map(|t| &t.results_by_partition)
            .map(|p| p.partition_error_code)
            .find(|c| *c != 0)
            .unwrap_or(0)
    };
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(e) => Err(for_produce(e)),
    }
}

/// The coordinator's side of a verification from another node's partition leader: this
/// shard must coordinate `transactional_id` (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS
/// otherwise), and the partition must be in the producer's open transaction.
pub fn verify_as_coordinator(
    shard: &Shard,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partition: &(String, i32),
) -> Result<(), ResponseError> {
    check_coordinator(shard, transactional_id)?;
    verify_local(
        shard,
        transactional_id,
        producer_id,
        producer_epoch,
        partition,
    )
}

fn verify_local(
    shard: &Shard,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partition: &(String, i32),
) -> Result<(), ResponseError> {
    shard
        .txns
        .read(|c| c.verify_partition(transactional_id, producer_id, producer_epoch, partition))
        .map_err(|e| match e {
            TxnError::ProducerFenced => ResponseError::InvalidProducerEpoch,
            other => error_code(other, 0, i16::MAX),
        })
}

/// The Kafka error for a refused coordinator call. Clients older than `fenced_since` do not
/// know PRODUCER_FENCED and get INVALID_PRODUCER_EPOCH, as Kafka answers them.
pub fn error_code(e: TxnError, version: i16, fenced_since: i16) -> ResponseError {
    match e {
        TxnError::InvalidTimeout => ResponseError::InvalidTransactionTimeout,
        TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
        TxnError::ProducerFenced if version >= fenced_since => ResponseError::ProducerFenced,
        TxnError::ProducerFenced => ResponseError::InvalidProducerEpoch,
        TxnError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
        TxnError::InvalidTxnState => ResponseError::InvalidTxnState,
        TxnError::ProducerIdUnavailable => ResponseError::UnknownServerError,
    }
}

/// The mailbox handler of a shard: runs other shards' requests on this shard.
pub fn mailbox_handler(shard: Weak<Shard>) -> Handler<ShardRequest, ShardAnswer> {
    Rc::new(move |request: ShardRequest| {
        let shard = shard.clone();
        Box::pin(async move {
            let Some(shard) = shard.upgrade() else {
                return Err(ResponseError::CoordinatorNotAvailable.code());
            };
            match request {
                ShardRequest::WriteMarkers {
                    producer_id,
                    producer_epoch,
                    commit,
                    coordinator_epoch,
                    partitions,
                } => write_local_markers(
                    &shard,
                    producer_id,
                    producer_epoch,
                    commit,
                    coordinator_epoch,
                    &partitions,
                )
                .await
                .map(|()| ShardReply::Done),
                ShardRequest::VerifyPartition {
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    partition,
                    add: false,
                } => verify_local(
                    &shard,
                    &transactional_id,
                    producer_id,
                    producer_epoch,
                    &partition,
                )
                .map(|()| ShardReply::Done)
                .map_err(|e| e.code()),
                ShardRequest::VerifyPartition {
                    transactional_id,
                    producer_id,
                    producer_epoch,
                    partition,
                    add: true,
                } => add_local(
                    &shard,
                    &transactional_id,
                    (producer_id, producer_epoch),
                    &partition,
                )
                .await
                .map(|()| ShardReply::Done)
                .map_err(|e| e.code()),
                ShardRequest::ShareForget {
                    group,
                    topic_id,
                    partition,
                } => {
                    shard.shares.forget(&group, (topic_id, partition));
                    Ok(ShardReply::Done)
                }
                ShardRequest::ShareState(op) => crate::shard::share_state::run_local(&shard, op)
                    .await
                    .map(ShardReply::ShareState)
                    .map_err(|e| e.code()),
            }
        })
    })
}

/// Loads the transactional ids of this shard's `__transaction_state` partitions. Runs at
/// start-up before the shard accepts connections.
pub async fn load(shard: &Shard) {
    let started = std::time::Instant::now();
    match replay_owned(shard).await {
        Ok(records) => tracing::info!(
            core = shard.core,
            records,
            ids = shard.txns.read(|c| c.all().count()),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "transaction coordinator loaded"
        ),
        Err(e) => {
            tracing::error!(core = shard.core, error = %e, "loading {TXN_TOPIC} failed; transactions on this shard start empty")
        }
    }
}

async fn replay_owned(shard: &Shard) -> Result<usize, OffsetsLogError> {
    let Some(meta) = shard.cluster.topic(TXN_TOPIC) else {
        return Ok(0);
    };
    let mut replayed = 0;
    for (p, owner) in meta.partitions.iter().enumerate() {
        if *owner == shard.core {
            replayed += replay_partition(shard, p as i32).await?;
            shard.txns.loaded.mark(shard, p as i32);
        }
    }
    Ok(replayed)
}

/// Applies one `__transaction_state` partition's records to the coordinator.
async fn replay_partition(shard: &Shard, p: i32) -> Result<usize, OffsetsLogError> {
    let partition = shard.partition(TXN_TOPIC, p).await?;
    partition.with_log(|log| -> Result<usize, OffsetsLogError> {
        let mut replayed = 0;
        offsets_log::for_each_batch(log, |view| {
            replayed += replay_batch(shard, view)?;
            Ok(())
        })?;
        Ok(replayed)
    })
}

/// Cluster mode: loads the ids of `__transaction_state` partitions this shard now leads
/// (their unfinished commits and aborts are then completed by the timer task, as after a
/// restart) and drops those of partitions it lost. Called by the housekeeping loop.
pub async fn follow_leadership(shard: &Shard) {
    let unload = |p| {
        shard
            .txns
            .call(|c| c.unload(|id| coordinator_moves::id_in_partition(shard, TXN_TOPIC, id, p)))
    };
    let load = async |p| {
        let records = replay_partition(shard, p).await?;
        shard.txns.timers_changed.notify();
        Ok::<_, OffsetsLogError>(records)
    };
    let what = "transactional ids";
    coordinator_moves::follow(shard, &shard.txns.loaded, what, unload, load).await;
}

fn replay_batch(shard: &Shard, view: &BatchView<'_>) -> Result<usize, OffsetsLogError> {
    if view.is_control() {
        return Ok(0);
    }
    let decoded = batch_records::decode_records(view)?;
    for record in &decoded {
        let Some(key) = record.key.as_deref() else {
            continue;
        };
        // A record of a future format must not stop the shard loading the rest.
        if let Err(e) = shard.txns.call(|c| c.replay(key, record.value.as_deref())) {
            tracing::warn!(error = %e, "skipping an undecodable {TXN_TOPIC} record");
        }
    }
    Ok(decoded.len())
}

/// Forgets idle transactional ids (`transactional.id.expiration.ms`) and writes their
/// tombstones. A tombstone that cannot be written only delays forgetting to the next start-up
/// replay, which brings the id back until the next cleanup.
async fn expire_transactional_ids(shard: &Shard, now_ms: i64) {
    let expiration_ms = shard.config.transactional_id_expiration_ms;
    let tombstones = shard.txns.call(|c| c.expire_ids(now_ms, expiration_ms));
    if !tombstones.is_empty() {
        tracing::info!(
            core = shard.core,
            count = tombstones.len(),
            "idle transactional ids expired"
        );
    }
    for record in tombstones {
        let _ = persist(shard, record).await;
    }
}

/// Aborts timed-out transactions and finishes ones left in Prepare, until shutdown.
pub async fn run_timers(shard: Rc<Shard>) {
    let mut retry_at_ms = 0;
    let id_cleanup_every_ms = shard.config.transactional_id_cleanup_interval_ms;
    let mut id_cleanup_at_ms = crate::now_ms().saturating_add(id_cleanup_every_ms);
    while !shard.is_shutting_down() {
        let seen_timers = shard.txns.timers_changed.generation();
        let seen_shutdown = shard.shutdown_event.generation();
        let now = crate::now_ms();
        // `call` signals `timers_changed`; calling it on every pass would wake this loop at
        // once, forever, and starve the shard. Only call it when a deadline is due.
        let due = shard.txns.read(TxnCoordinator::next_deadline_ms);
        let expired = if due.is_some_and(|d| d <= now) {
            shard.txns.call(|c| c.expire(now))
        } else {
            Vec::new()
        };
        for (record, job) in expired {
            tracing::info!(transactional_id = %job.transactional_id, "transaction timed out; aborting");
            if persist(&shard, record).await.is_ok() {
                let _ = finish(&shard, &job).await;
            }
        }
        if now >= id_cleanup_at_ms {
            id_cleanup_at_ms = now.saturating_add(id_cleanup_every_ms);
            expire_transactional_ids(&shard, now).await;
        }
        if now >= retry_at_ms {
            retry_at_ms = now + MAX_TIMER_SLEEP_MS;
            // Jobs another task is finishing right now are skipped by `finish`.
            for job in shard.txns.read(TxnCoordinator::unfinished) {
                let _ = finish(&shard, &job).await;
            }
        }
        let due = shard.txns.read(TxnCoordinator::next_deadline_ms);
        let wait_ms = (due.unwrap_or(i64::MAX).min(retry_at_ms) - crate::now_ms())
            .clamp(1, MAX_TIMER_SLEEP_MS);
        future::or(
            glommio::timer::sleep(Duration::from_millis(wait_ms as u64)),
            future::or(
                shard.txns.timers_changed.changed_since(seen_timers),
                shard.shutdown_event.changed_since(seen_shutdown),
            ),
        )
        .await;
    }
}
