//! Fetch (key 1): long-poll reads. For each partition it finds the batch holding the fetch
//! offset through the sparse index and sends the byte range from the segment file, zero-copy
//! from the page cache for the tail. It waits (up to `max_wait_ms`) until `min_bytes` are
//! available, woken by appends on this shard. Respects `max_bytes` and
//! `partition_max_bytes`, always returning at least one whole batch (KIP-74).
//! read_committed (isolation level 1) stops at the last stable offset and lists the
//! aborted transactions in range; the data stays a zero-copy file range either way.
//! Consumers read up to the high watermark. A follower's fetch (a replica's broker id in
//! `replica_id`/`ReplicaState`) reads up to the log end, is checked against the leader epoch
//! (FENCED/UNKNOWN_LEADER_EPOCH) and, from v12, the follower's last fetched epoch (a
//! `diverging_epoch` answer tells it where to truncate), and tells the leader the follower's
//! log end (`shard::replication`); with the rack-aware selector it is answered at once when
//! its answer carries a high watermark the follower has not seen yet.
//! Fetch from the closest replica (KIP-392), from v11: a leader configured with the
//! rack-aware `replica.selector.class` answers a consumer in another replica's rack with
//! `preferred_read_replica` and no records (`replication::selector`), and a follower serves
//! consumers from its own replica up to the high watermark (and LSO) it has learnt from the
//! leader; below v11 a follower answers NOT_LEADER_OR_FOLLOWER, as Kafka does.

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::FetchRequest;
use kafka_protocol::messages::fetch_request::FetchPartition;

use crate::acl::{Operation, ResourceType, enforce};
use crate::handlers::request::{DispatchError, Reply, RequestContext, decode_body};
use crate::protocol::fetch_response::{
    FetchResponseWriter, Part, PartitionHeader, RecordsSource, TopicKey,
};
use crate::shard::replication::throttle;
use crate::shard::{PartitionError, Shard};
use crate::storage::log::{Partition, ReadError};

/// Versions served: v4 is the oldest version the protocol crate has. v18 adds only a follower's
/// high watermark (a tagged request field, KIP-1166), with which Kafka's leader may answer a
/// follower early; this leader already answers a follower at once when it has a high
/// watermark the follower was not sent, so the field is read and not needed.
pub const VERSIONS: (i16, i16) = (4, 18);

/// Longest long-poll a client can ask for; bounds how long a request holds a connection.
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

/// `isolation_level` 1 is read_committed.
const READ_COMMITTED: i8 = 1;

/// The first version where consumers may fetch from followers (KIP-392: `rack_id`,
/// `preferred_read_replica`).
const FOLLOWER_READS_FROM: i16 = 11;

struct PartitionPlan {
    header: PartitionHeaderOwned,
    records: Option<RecordsSource>,
    /// Answer without waiting for `min_bytes` (a preferred read replica, a high watermark a
    /// follower has not been sent).
    answer_now: bool,
    /// A follower replica's fetch: its broker id, to note the high watermark it is sent.
    follower: Option<i32>,
}

/// What this shard is for the partition a consumer reads: its leader, or (KIP-392) a
/// follower, which knows the leader epoch only from the metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Leader,
    Follower { leader_epoch: i32 },
}

/// Who is fetching: a consumer reads committed records only (below the high watermark, or
/// the last stable offset for read_committed); a follower replica reads up to the log end
/// and reports its own log end by the offset it asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    Consumer { read_committed: bool },
    Follower { broker_id: i32 },
}

impl Reader {
    fn of(version: i16, request: &FetchRequest) -> Self {
        let replica = match version {
            15.. => request.replica_state.replica_id.0,
            _ => request.replica_id.0,
        };
        match replica {
            0.. => Self::Follower { broker_id: replica },
            _ => Self::Consumer {
                read_committed: request.isolation_level == READ_COMMITTED,
            },
        }
    }
}

struct PartitionHeaderOwned {
    index: i32,
    error: i16,
    high_watermark: i64,
    last_stable_offset: i64,
    log_start_offset: i64,
    /// read_committed only: aborted transactions (producer id, first offset) the client
    /// must drop from the records it gets.
    aborted: Option<Vec<(i64, i64)>>,
    /// For a follower whose log diverged: the leader's epoch and its end offset (KIP-320).
    diverging_epoch: Option<(i32, i64)>,
    /// The replica a consumer should fetch from instead (KIP-392); -1 for none.
    preferred_read_replica: i32,
}

struct TopicPlan {
    name: String,
    id: uuid::Uuid,
    partitions: Vec<PartitionPlan>,
    bytes: u64,
}

/// The registry's entry: the response is framed by hand as byte chunks and file regions, so
/// record data can leave zero-copy.
pub async fn serve(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    mut body: Bytes,
) -> Result<Reply, DispatchError> {
    let request: FetchRequest = decode_body(ctx.api_key, &mut body, ctx.version)?;
    let follower = matches!(Reader::of(ctx.version, &request), Reader::Follower { .. });
    let parts = handle(shard, ctx, request).await;
    if follower {
        // Replication is not a client: leader throttles cover it, not client quotas.
        return Ok(Reply::Parts(parts));
    }
    let bytes = parts.iter().map(Part::len).sum();
    let throttle_time_ms = crate::quota::fetch(shard, ctx, bytes);
    if throttle_time_ms > 0 {
        // Kafka answers a throttled fetch empty; the client fetches again after the throttle.
        return Ok(Reply::Parts(throttled_response(ctx, throttle_time_ms)));
    }
    Ok(Reply::Parts(parts))
}

/// The empty answer of a throttled fetch (Kafka's `getThrottledResponse`): the throttle time
/// and no topics (session id 0, as every Sluice fetch answer: it keeps no fetch sessions).
fn throttled_response(ctx: &RequestContext, throttle_time_ms: i32) -> Vec<Part> {
    FetchResponseWriter::new(ctx.version, ctx.correlation_id, 0, 0, 0)
        .with_throttle_time_ms(throttle_time_ms)
        .finish()
}

/// Waits until `min_bytes` are readable, a partition has an error, `max_wait_ms` (capped at 30 s)
/// has passed or the shard is shutting down, then returns the response as parts: byte chunks and
/// file regions of record data.
pub async fn handle(shard: &Rc<Shard>, ctx: &RequestContext, request: FetchRequest) -> Vec<Part> {
    let wait = Duration::from_millis(request.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    loop {
        let stopping = shard.shutdown_event.generation();
        let mut watched = Vec::with_capacity(request.topics.len());
        let (plan, bytes, answer_now) = plan_reads(shard, ctx, &request, &mut watched).await;
        let now = Instant::now();
        if bytes >= request.min_bytes.max(0) as u64
            || answer_now
            || now >= deadline
            || shard.is_shutting_down()
        {
            note_high_watermarks_sent(shard, &plan);
            return encode(ctx, &request, plan);
        }
        // Wake on new data in a partition read, on the deadline, or when shutdown begins
        // (answer now, don't hold the drain for a whole max_wait_ms).
        let data =
            crate::event::any_changed(watched.iter().map(|w| (w.partition.arrived(), w.seen)));
        let woken = futures_lite::future::or(data, shard.shutdown_event.changed_since(stopping));
        let early = async {
            woken.await;
            true
        };
        let on_time = async {
            glommio::timer::sleep(deadline - now).await;
            false
        };
        if futures_lite::future::or(early, on_time).await {
            crate::metrics::with_current(|m| m.fetch_woken());
        }
    }
}

/// A partition a fetch read, with its event's generation from before the read: what the
/// long poll waits on.
struct Watched {
    partition: Rc<Partition>,
    seen: u64,
}

async fn plan_reads(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: &FetchRequest,
    watched: &mut Vec<Watched>,
) -> (Vec<TopicPlan>, u64, bool) {
    let version = ctx.version;
    let mut budget = request.max_bytes.max(0) as u64;
    let mut total = 0u64;
    let mut answer_now = false;
    let mut plans = Vec::with_capacity(request.topics.len());
    let reader = Reader::of(version, request);
    for topic in &request.topics {
        let (name, id, known) = if version >= 13 {
            match shard.topic_by_id(topic.topic_id) {
                Some(meta) => (meta.name.clone(), topic.topic_id, true),
                None => (String::new(), topic.topic_id, false),
            }
        } else {
            (topic.topic.0.to_string(), uuid::Uuid::nil(), true)
        };
        // Authorization as in Kafka: followers need CLUSTER_ACTION, consumers READ the topic.
        let allowed = match reader {
            Reader::Follower { .. } => {
                enforce::cluster_allowed(shard, ctx, Operation::ClusterAction)
            }
            Reader::Consumer { .. } => {
                !known || enforce::allowed(shard, ctx, Operation::Read, ResourceType::Topic, &name)
            }
        };
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        let mut topic_bytes = 0u64;
        for p in &topic.partitions {
            let plan = if !allowed {
                let denied = match reader {
                    Reader::Follower { .. } => ResponseError::ClusterAuthorizationFailed,
                    Reader::Consumer { .. } => ResponseError::TopicAuthorizationFailed,
                };
                error_plan(p.partition, denied)
            } else if known {
                let read = Read {
                    reader,
                    version,
                    client_rack: &request.rack_id,
                };
                plan_partition(shard, &name, p, read, (&mut budget, watched)).await
            } else {
                error_plan(p.partition, ResponseError::UnknownTopicId)
            };
            answer_now |= plan.header.error != 0 || plan.answer_now;
            total += plan.records.as_ref().map(records_len).unwrap_or(0);
            topic_bytes += plan.records.as_ref().map(records_len).unwrap_or(0);
            partitions.push(plan);
        }
        plans.push(TopicPlan {
            name,
            id,
            partitions,
            bytes: topic_bytes,
        });
    }
    (plans, total, answer_now)
}

fn records_len(r: &RecordsSource) -> u64 {
    match r {
        RecordsSource::None => 0,
        RecordsSource::Bytes(b) => b.len() as u64,
        RecordsSource::File(region) => region.len,
    }
}

fn error_plan(index: i32, error: ResponseError) -> PartitionPlan {
    PartitionPlan {
        header: PartitionHeaderOwned {
            index,
            error: error.code(),
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            aborted: None,
            diverging_epoch: None,
            preferred_read_replica: -1,
        },
        records: None,
        answer_now: false,
        follower: None,
    }
}

/// The request-wide facts a partition's read depends on.
#[derive(Clone, Copy)]
struct Read<'a> {
    reader: Reader,
    version: i16,
    /// The consumer's `client.rack` (v11+; empty when unset).
    client_rack: &'a str,
}

/// The partition as the fetch may read it: led here, or (consumers at v11+, KIP-392) a
/// follower replica held here. Anything else is NOT_LEADER_OR_FOLLOWER as before.
async fn lookup(
    shard: &Rc<Shard>,
    topic: &str,
    index: i32,
    read: Read<'_>,
) -> Result<(Rc<Partition>, Role), ResponseError> {
    let led = shard.partition(topic, index).await;
    let consumer = matches!(read.reader, Reader::Consumer { .. });
    match led {
        Ok(partition) => Ok((partition, Role::Leader)),
        Err(PartitionError::NotLeader)
            if consumer && read.version >= FOLLOWER_READS_FROM && shard.cluster.is_clustered() =>
        {
            let partition = shard
                .replica(topic, index)
                .await
                .map_err(|e| ResponseError::from(&e))?;
            let leader_epoch = shard
                .topic(topic)
                .and_then(|meta| meta.leadership.get(index as usize).map(|l| l.leader_epoch))
                .ok_or(ResponseError::NotLeaderOrFollower)?;
            Ok((partition, Role::Follower { leader_epoch }))
        }
        Err(e) => Err(ResponseError::from(&e)),
    }
}

async fn plan_partition(
    shard: &Rc<Shard>,
    topic: &str,
    p: &FetchPartition,
    read: Read<'_>,
    (budget, watched): (&mut u64, &mut Vec<Watched>),
) -> PartitionPlan {
    let (partition, role) = match lookup(shard, topic, p.partition, read).await {
        Ok(found) => found,
        Err(e) => return error_plan(p.partition, e),
    };
    // Taken before anything of the log is read, and no await until the read below: an
    // append after this point moves the generation, so the wait cannot miss it.
    watched.push(Watched {
        seen: partition.arrived().generation(),
        partition: partition.clone(),
    });
    let epoch_check = match role {
        Role::Leader => check_leader_epoch(&partition, p.current_leader_epoch),
        Role::Follower { leader_epoch } => compare_epochs(p.current_leader_epoch, leader_epoch),
    };
    if let Err(e) = epoch_check {
        return error_plan(p.partition, e);
    }
    let Read {
        reader, version, ..
    } = read;
    if role == Role::Leader
        && version >= FOLLOWER_READS_FROM
        && matches!(reader, Reader::Consumer { .. })
        && let Some(plan) = redirect_plan(shard, topic, p, &partition, read.client_rack)
    {
        return plan;
    }
    let reader = match reader {
        // Only a replica of the partition reads past the high watermark and counts as a
        // follower; any other id is served as a consumer.
        Reader::Follower { broker_id } if !is_replica(shard, topic, p.partition, broker_id) => {
            Reader::Consumer {
                read_committed: false,
            }
        }
        other => other,
    };
    let mut owed_high_watermark = false;
    let mut leader_throttled = false;
    if let Reader::Follower { broker_id } = reader {
        if version >= 12
            && let Some(diverging) = diverging_epoch(&partition, p)
        {
            return diverged_plan(&partition, p.partition, diverging);
        }
        if let Some(meta) = shard.topic(topic) {
            crate::shard::replication::follower_fetched(
                shard,
                &meta,
                p.partition,
                &partition,
                broker_id,
                (p.fetch_offset, p.log_start_offset),
            );
            leader_throttled = throttle::leader_throttles(&meta, p.partition, broker_id);
        }
        // Only where the selector sends consumers to followers is their watermark worth an
        // extra answer; otherwise it rides on the next records or the end of the long poll.
        if crate::shard::replication::selector::rack_aware_enabled(shard) {
            let hw = partition.with_log(|log| log.high_watermark());
            owed_high_watermark = crate::shard::replication::follower_owed_high_watermark(
                shard,
                topic,
                p.partition,
                broker_id,
                hw,
            );
        }
    }
    let follower = match reader {
        Reader::Follower { broker_id } => Some(broker_id),
        Reader::Consumer { .. } => None,
    };
    // A throttled replica (reassignment catch-up) gets no records while the quota is spent.
    let quota_spent = leader_throttled && throttle::leader_quota_spent(shard);
    let mut plan = read_plan(&partition, topic, p, reader, budget, quota_spent);
    if leader_throttled && let Some(records) = &plan.records {
        let bytes = usize::try_from(records_len(records)).unwrap_or(usize::MAX);
        shard.replication.leader_quota.spend(bytes);
    }
    plan.answer_now |= owed_high_watermark;
    plan.follower = follower;
    plan
}

/// A leader's answer to a consumer its replica selector sends elsewhere (KIP-392): no
/// records, `preferred_read_replica` set, the offsets as usual; `None` when this leader
/// serves the consumer itself.
fn redirect_plan(
    shard: &Shard,
    topic: &str,
    p: &FetchPartition,
    partition: &Partition,
    client_rack: &str,
) -> Option<PartitionPlan> {
    if client_rack.is_empty() {
        return None;
    }
    let (marks, lso) = partition.with_log(|log| (log.watermarks(), log.last_stable_offset()));
    let preferred = crate::shard::replication::selector::preferred_read_replica(
        shard,
        topic,
        p.partition,
        marks.log_end_offset,
        client_rack,
        p.fetch_offset,
    )?;
    Some(PartitionPlan {
        header: PartitionHeaderOwned {
            index: p.partition,
            error: 0,
            high_watermark: marks.high_watermark,
            last_stable_offset: lso,
            log_start_offset: marks.log_start_offset,
            aborted: None,
            diverging_epoch: None,
            preferred_read_replica: preferred,
        },
        records: None,
        // Kafka answers at once: the consumer should move on to that replica.
        answer_now: true,
        follower: None,
    })
}

/// The read itself, the same on a leader and on a follower replica: followers (replicas
/// fetching from this leader) to the log end, consumers to the high watermark, read_committed
/// to the LSO. A fetch offset between the high watermark and the log end reads nothing (the
/// long poll waits); outside the log it is OFFSET_OUT_OF_RANGE, as Kafka answers.
fn read_plan(
    partition: &Partition,
    topic: &str,
    p: &FetchPartition,
    reader: Reader,
    budget: &mut u64,
    quota_spent: bool,
) -> PartitionPlan {
    partition.with_log(|log| {
        let marks = log.watermarks();
        let limit = (p.partition_max_bytes.max(0) as u64).min(*budget);
        // Once the request budget is spent, later partitions get no data (but a first batch
        // is always returned whole, however large, so a big batch never stalls a consumer).
        let lso = log.last_stable_offset();
        let read_committed = reader
            == Reader::Consumer {
                read_committed: true,
            };
        let read = if (limit == 0 && *budget == 0) || quota_spent {
            Ok(None)
        } else {
            match reader {
                Reader::Follower { .. } => log.read(p.fetch_offset, limit),
                Reader::Consumer {
                    read_committed: true,
                } => log.read_committed(p.fetch_offset, limit),
                Reader::Consumer { .. } => {
                    log.read_upto(p.fetch_offset, limit, marks.high_watermark)
                }
            }
        };
        // Aborted transactions up to the LSO: a superset of those overlapping the data sent,
        // which clients accept (they match by producer id and offset).
        let aborted = read_committed.then(|| log.aborted_between(p.fetch_offset, lso));
        match read {
            Ok(slice) => {
                let records = slice.map(|s| {
                    *budget = budget.saturating_sub(s.len);
                    RecordsSource::File(s)
                });
                PartitionPlan {
                    header: PartitionHeaderOwned {
                        index: p.partition,
                        error: 0,
                        high_watermark: marks.high_watermark,
                        last_stable_offset: lso,
                        log_start_offset: marks.log_start_offset,
                        aborted,
                        diverging_epoch: None,
                        preferred_read_replica: -1,
                    },
                    records,
                    answer_now: false,
                    follower: None,
                }
            }
            Err(ReadError::OutOfRange { .. }) => {
                // With the log start and high watermark a consumer can reset and a follower
                // start over at the leader's log start.
                let mut plan = error_plan(p.partition, ResponseError::OffsetOutOfRange);
                plan.header.log_start_offset = marks.log_start_offset;
                plan.header.high_watermark = marks.high_watermark;
                plan.header.last_stable_offset = lso;
                plan
            }
            Err(ReadError::Storage(e)) => {
                tracing::error!(topic, partition = p.partition, error = %e, "fetch read failed");
                error_plan(p.partition, ResponseError::KafkaStorageError)
            }
        }
    })
}

/// Whether `broker_id` holds a replica of the partition (in a cluster; on a single node the
/// answer is always yes, every read there being committed already).
fn is_replica(shard: &Shard, topic: &str, partition: i32, broker_id: i32) -> bool {
    if !shard.cluster.is_clustered() {
        return true;
    }
    shard
        .topic(topic)
        .and_then(|meta| meta.leadership.get(partition as usize).cloned())
        .is_some_and(|l| l.replicas.contains(&broker_id))
}

/// KIP-320's check of the epoch the fetcher believes the leader has: an older one is
/// FENCED_LEADER_EPOCH (the fetcher's metadata is stale), a newer one UNKNOWN_LEADER_EPOCH
/// (this leader's is). -1 skips the check, as older clients send.
pub(crate) fn check_leader_epoch(
    partition: &crate::storage::log::Partition,
    current_leader_epoch: i32,
) -> Result<(), ResponseError> {
    compare_epochs(current_leader_epoch, partition.leader_epoch())
}

/// The rule of [`check_leader_epoch`] against the epoch `mine` this replica knows (on a
/// follower, the metadata's).
fn compare_epochs(current_leader_epoch: i32, mine: i32) -> Result<(), ResponseError> {
    if current_leader_epoch < 0 || mine < 0 {
        return Ok(());
    }
    match current_leader_epoch.cmp(&mine) {
        std::cmp::Ordering::Less => Err(ResponseError::FencedLeaderEpoch),
        std::cmp::Ordering::Greater => Err(ResponseError::UnknownLeaderEpoch),
        std::cmp::Ordering::Equal => Ok(()),
    }
}

/// The follower's last fetched epoch against this leader's epoch cache (KIP-320; the rule
/// is `replication::divergence::diverging_epoch`).
fn diverging_epoch(
    partition: &crate::storage::log::Partition,
    p: &FetchPartition,
) -> Option<(i32, i64)> {
    partition.with_log(|log| {
        crate::shard::replication::divergence::diverging_epoch(
            log.leader_epochs(),
            log.log_end_offset(),
            p.last_fetched_epoch,
            p.fetch_offset,
        )
    })
}

fn diverged_plan(
    partition: &crate::storage::log::Partition,
    index: i32,
    diverging: (i32, i64),
) -> PartitionPlan {
    let marks = partition.watermarks();
    PartitionPlan {
        header: PartitionHeaderOwned {
            index,
            error: 0,
            high_watermark: marks.high_watermark,
            last_stable_offset: marks.high_watermark,
            log_start_offset: marks.log_start_offset,
            aborted: None,
            diverging_epoch: Some(diverging),
            preferred_read_replica: -1,
        },
        records: None,
        answer_now: false,
        follower: None,
    }
}

/// After deciding to answer: the high watermark each follower replica's partition carries
/// is now known to it (a later watermark makes its next fetch answer at once).
fn note_high_watermarks_sent(shard: &Shard, plans: &[TopicPlan]) {
    if !crate::shard::replication::selector::rack_aware_enabled(shard) {
        return;
    }
    for topic in plans {
        for p in &topic.partitions {
            if let Some(follower) = p.follower
                && p.header.error == 0
            {
                crate::shard::replication::follower_sent_high_watermark(
                    shard,
                    &topic.name,
                    p.header.index,
                    follower,
                    p.header.high_watermark,
                );
            }
        }
    }
}

fn encode(ctx: &RequestContext, request: &FetchRequest, plans: Vec<TopicPlan>) -> Vec<Part> {
    let read_committed = request.isolation_level == READ_COMMITTED;
    let no_aborted: Vec<(i64, i64)> = Vec::new();
    let mut w = FetchResponseWriter::new(ctx.version, ctx.correlation_id, 0, 0, plans.len());
    for topic in plans {
        if topic.bytes > 0 {
            crate::metrics::with_current(|m| m.add_topic_traffic(&topic.name, 0, 0, topic.bytes));
        }
        let key = if ctx.version >= 13 {
            TopicKey::Id(topic.id)
        } else {
            TopicKey::Name(&topic.name)
        };
        w.begin_topic(key, topic.partitions.len());
        for p in topic.partitions {
            let h = &p.header;
            let header = PartitionHeader {
                partition_index: h.index,
                error_code: h.error,
                high_watermark: h.high_watermark,
                last_stable_offset: h.last_stable_offset,
                log_start_offset: h.log_start_offset,
                aborted_transactions: read_committed
                    .then(|| h.aborted.as_deref().unwrap_or(&no_aborted[..])),
                preferred_read_replica: h.preferred_read_replica,
                diverging_epoch: h.diverging_epoch,
            };
            w.partition(&header, p.records.unwrap_or(RecordsSource::None));
        }
        w.end_topic();
    }
    w.finish()
}
