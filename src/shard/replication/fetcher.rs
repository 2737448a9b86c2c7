//! The follower side of replication (issue 14): for every leader this shard follows
//! partitions of, one task with one connection sends Kafka Fetch requests as a replica
//! (`replica_id` = this shard's broker id, v12 with `current_leader_epoch` and
//! `last_fetched_epoch`), appends what comes back to the local replica byte for byte, takes
//! the leader's high watermark, and truncates where the leader reports a diverging epoch
//! (KIP-320). The leader serves these fetches on its normal fetch path (zero-copy), and the
//! follower's next fetch offset is how the leader learns its log end.
//!
//! Runs on the shard's own executor: the connection is a glommio socket, appends go through
//! the shard's io_uring writer, and nothing crosses to another core. A shard follows the
//! partitions whose replica it holds and whose leader is another live broker; when the
//! metadata changes, each task picks up the new set at its next round, and a task with
//! nothing left to follow ends.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use glommio::net::TcpStream;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::{divergence, throttle};
use crate::shard::Shard;
use crate::shard::broker_link::{self, LinkError};
use crate::storage::log::{AppendError, Partition};

/// The Fetch version followers send: the first with `last_fetched_epoch` and diverging
/// epochs, and still addressed by topic name.
const FETCH_VERSION: i16 = 12;
/// How often the fetcher looks for leaders it is not fetching from yet.
const SCAN_EVERY: Duration = Duration::from_millis(100);
/// Bound on a response beyond the long-poll itself.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after an answer that says the metadata moved (not the leader any more, epochs).
const METADATA_BACKOFF: Duration = Duration::from_millis(100);

/// One partition this shard follows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Followed {
    topic: String,
    partition: i32,
    leader_epoch: i32,
}

/// Why a round of fetching from a leader failed; the task reconnects after a backoff.
type FetchError = LinkError;

/// Starts and keeps one fetch task per leader this shard follows partitions of, until
/// shutdown. Cluster mode only.
pub async fn run(shard: Rc<Shard>) {
    if shard.config.cluster.is_none() {
        return;
    }
    let running: Rc<RefCell<HashSet<i32>>> = Rc::default();
    while !shard.is_shutting_down() {
        for leader in followed_by_leader(&shard).into_keys() {
            if running.borrow_mut().insert(leader) {
                let (shard, running) = (shard.clone(), running.clone());
                glommio::spawn_local(async move {
                    fetch_from(&shard, leader).await;
                    running.borrow_mut().remove(&leader);
                })
                .detach();
            }
        }
        let stopping = shard.shutdown_event.generation();
        futures_lite::future::or(
            glommio::timer::sleep(SCAN_EVERY),
            shard.shutdown_event.changed_since(stopping),
        )
        .await;
    }
    // The tasks see the shutdown after their current round (a connect and a long poll at
    // most): wait for them, so no replicated append races the closing of the logs.
    let round = IO_TIMEOUT * 2
        + shard
            .config
            .cluster
            .as_ref()
            .map_or(Duration::ZERO, |c| c.replication.fetch_wait_max);
    let deadline = std::time::Instant::now() + round;
    while !running.borrow().is_empty() && std::time::Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
}

/// The partitions this shard holds a follower replica of, by leader broker id.
fn followed_by_leader(shard: &Shard) -> BTreeMap<i32, Vec<Followed>> {
    let me = shard.broker_id();
    let mut out: BTreeMap<i32, Vec<Followed>> = BTreeMap::new();
    for topic in shard.topics().by_name.values() {
        for (index, l) in topic.leadership.iter().enumerate() {
            if l.local_core == Some(shard.core) && l.leader != me && l.leader >= 0 {
                out.entry(l.leader).or_default().push(Followed {
                    topic: topic.name.clone(),
                    partition: index as i32,
                    leader_epoch: l.leader_epoch,
                });
            }
        }
    }
    out
}

/// Fetches from `leader` until this shard follows nothing of it or shuts down.
async fn fetch_from(shard: &Rc<Shard>, leader: i32) {
    let Some(cluster) = shard.config.cluster.as_ref() else {
        return;
    };
    let backoff = cluster.replication.fetch_backoff;
    let mut conn: Option<TcpStream> = None;
    let mut correlation = 0i32;
    tracing::info!(leader, "replica fetcher started");
    while !shard.is_shutting_down() {
        let Some(followed) = followed_by_leader(shard).remove(&leader) else {
            break;
        };
        correlation = correlation.wrapping_add(1);
        match round(shard, leader, &followed, &mut conn, correlation).await {
            Ok(true) => {}
            Ok(false) => glommio::timer::sleep(METADATA_BACKOFF).await,
            Err(e) => {
                tracing::warn!(leader, error = %e, "replica fetch failed; retrying");
                conn = None;
                glommio::timer::sleep(backoff).await;
            }
        }
    }
    tracing::info!(leader, "replica fetcher stopped");
}

/// One fetch request and the handling of its answer. `Ok(false)` when the leader answered
/// that the metadata moved on (wait for it before asking again).
async fn round(
    shard: &Rc<Shard>,
    leader: i32,
    followed: &[Followed],
    conn: &mut Option<TcpStream>,
    correlation: i32,
) -> Result<bool, FetchError> {
    let (request, throttled) = build_request(shard, followed).await;
    if request.topics.is_empty() {
        return Ok(false);
    }
    if conn.is_none() {
        *conn = Some(broker_link::connect(shard, leader).await?);
    }
    let stream = conn.as_mut().expect("connected above");
    let frame = broker_link::frame(&request, FETCH_VERSION, correlation)?;
    let wait = Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let body = broker_link::with_timeout(wait + IO_TIMEOUT, broker_link::exchange(stream, &frame))
        .await??;
    let response = broker_link::decode_response::<FetchRequest>(body, FETCH_VERSION, correlation)?;
    let mut all_fine = true;
    for topic in response.responses {
        for p in topic.partitions {
            let name = topic.topic.0.as_str();
            let asked = followed
                .iter()
                .find(|f| f.topic == name && f.partition == p.partition_index);
            // The metadata may have moved during the long poll (this shard may even lead the
            // partition now): an answer from a leader that is no longer the leader in the
            // epoch we asked about must not touch the log.
            if asked.is_some_and(|f| still_following(shard, leader, f)) {
                if throttled.contains(&(name, p.partition_index)) {
                    let bytes = p.records.as_ref().map_or(0, bytes::Bytes::len);
                    shard.replication.follower_quota.spend(bytes);
                }
                all_fine &= apply_partition(shard, name, p).await;
            } else {
                all_fine = false;
            }
        }
    }
    Ok(all_fine)
}

/// The follower's fetch: for each followed partition its log end, the leader epoch it
/// knows and the epoch of its last batch, so the leader can detect a diverged tail. Throttled
/// replicas (see `throttle`) sit the round out while this shard's quota is spent; they are
/// returned beside the request so their bytes can be counted.
async fn build_request<'a>(
    shard: &Rc<Shard>,
    followed: &'a [Followed],
) -> (FetchRequest, HashSet<(&'a str, i32)>) {
    let cluster = shard.config.cluster.as_ref().expect("cluster mode");
    let r = &cluster.replication;
    let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    let mut throttled = HashSet::new();
    let mut quota: Option<Option<f64>> = None;
    for f in followed {
        if is_throttled(shard, f) {
            let available = *quota.get_or_insert_with(|| follower_budget(shard));
            if available.is_some_and(|bytes| bytes <= 0.0) {
                continue;
            }
            if available.is_some() {
                throttled.insert((f.topic.as_str(), f.partition));
            }
        }
        let Ok(replica) = shard.replica(&f.topic, f.partition).await else {
            continue;
        };
        let (end, start, last_epoch) = replica.with_log(|log| {
            (
                log.log_end_offset(),
                log.watermarks().log_start_offset,
                log.latest_epoch(),
            )
        });
        let mut p = FetchPartition::default();
        p.partition = f.partition;
        p.current_leader_epoch = f.leader_epoch;
        p.fetch_offset = end;
        p.last_fetched_epoch = last_epoch.unwrap_or(-1);
        p.log_start_offset = start;
        p.partition_max_bytes = r.fetch_max_bytes;
        topics.entry(&f.topic).or_default().push(p);
    }
    let mut request = FetchRequest::default();
    request.replica_id = BrokerId(shard.broker_id());
    request.max_wait_ms = i32::try_from(r.fetch_wait_max.as_millis()).unwrap_or(500);
    request.min_bytes = 1;
    request.max_bytes = r.fetch_response_max_bytes;
    request.isolation_level = 0;
    request.session_id = 0;
    request.session_epoch = -1;
    request.topics = topics
        .into_iter()
        .map(|(name, partitions)| {
            let mut t = FetchTopic::default();
            t.topic = TopicName(StrBytes::from_string(name.to_string()));
            t.partitions = partitions;
            t
        })
        .collect();
    (request, throttled)
}

/// Whether this shard's replica of `f` is throttled: listed in the topic's
/// `follower.replication.throttled.replicas` and not in sync.
fn is_throttled(shard: &Shard, f: &Followed) -> bool {
    let me = shard.broker_id();
    shard.topic(&f.topic).is_some_and(|meta| {
        meta.leadership.get(f.partition as usize).is_some_and(|l| {
            throttle::is_throttled(&meta, l, f.partition, me, throttle::FOLLOWER_REPLICAS_KEY)
        })
    })
}

/// Bytes this shard may fetch for throttled replicas now; `None` when the rate is unlimited.
fn follower_budget(shard: &Shard) -> Option<f64> {
    let rate = throttle::rate(&shard.cluster.broker_configs(), throttle::FOLLOWER_RATE_KEY)?;
    Some(
        shard
            .replication
            .follower_quota
            .available(rate, std::time::Instant::now()),
    )
}

/// Whether the metadata still names `leader` as the partition's leader in the epoch the fetch
/// was sent with, and this shard as a follower.
fn still_following(shard: &Shard, leader: i32, f: &Followed) -> bool {
    shard
        .topic(&f.topic)
        .and_then(|meta| meta.leadership.get(f.partition as usize).cloned())
        .is_some_and(|l| {
            l.leader == leader
                && l.leader_epoch == f.leader_epoch
                && l.leader != shard.broker_id()
                && l.local_core == Some(shard.core)
        })
}

/// Applies one partition of the leader's answer; false when the answer says to wait for
/// newer metadata.
async fn apply_partition(shard: &Rc<Shard>, topic: &str, p: PartitionData) -> bool {
    let Ok(replica) = shard.replica(topic, p.partition_index).await else {
        return true;
    };
    if replica.leader_epoch() >= 0 {
        // This replica led the partition before: it stops stamping appends.
        replica.set_leader_epoch(-1);
    }
    if p.error_code == ResponseError::OffsetOutOfRange.code() {
        return out_of_range(&replica, topic, &p).await;
    }
    if p.error_code != 0 {
        let error = ResponseError::try_from_code(p.error_code);
        tracing::debug!(
            topic,
            partition = p.partition_index,
            ?error,
            "leader refused a replica fetch"
        );
        return false;
    }
    if p.diverging_epoch.epoch >= 0 {
        let (epoch, end) = (p.diverging_epoch.epoch, p.diverging_epoch.end_offset);
        let target = replica.with_log(|log| {
            divergence::truncation_offset(log.leader_epochs(), log.log_end_offset(), (epoch, end))
        });
        tracing::warn!(
            topic,
            partition = p.partition_index,
            epoch,
            leader_end = end,
            truncate_to = target,
            "log diverged from the leader's; truncating"
        );
        if let Err(e) = replica.truncate_to(target).await {
            tracing::error!(topic, partition = p.partition_index, error = %e, "truncation failed");
        }
        return true;
    }
    if let Some(records) = p.records.filter(|r| !r.is_empty())
        && let Err(e) = append(&replica, &records).await
    {
        tracing::error!(topic, partition = p.partition_index, error = %e, "appending replicated records failed");
        return false;
    }
    let hw_moved = replica.with_log_mut(|log| {
        let hw = p.high_watermark.min(log.log_end_offset());
        let moved = log.set_high_watermark(hw);
        if p.log_start_offset > log.watermarks().log_start_offset
            && let Err(e) = log.follow_log_start(p.log_start_offset)
        {
            tracing::warn!(topic, partition = p.partition_index, error = %e, "cannot checkpoint the log start offset");
        }
        moved
    });
    // Consumers long-polling this follower (KIP-392) read up to the high watermark, and
    // read_committed ones to the LSO, which a replicated marker can move: wake them.
    // (The append itself has woken them for the records.)
    if hw_moved {
        replica.arrived().notify();
    }
    true
}

/// Appends the leader's batches. An empty log that starts inside the first batch (it started
/// over at a leader's log start that DeleteRecords put mid-batch) starts over again at that
/// batch's base, as Kafka's follower does, instead of refusing the batch forever.
async fn append(replica: &Rc<Partition>, records: &[u8]) -> Result<(), AppendError> {
    match replica.append_replicated(records, crate::now_ms()).await {
        Err(AppendError::OffsetMismatch {
            base_offset,
            log_end,
        }) if replica.with_log(|log| log.watermarks().log_start_offset) == log_end => {
            replica.truncate_fully_and_start_at(base_offset).await?;
            replica
                .append_replicated(records, crate::now_ms())
                .await
                .map(|_| ())
        }
        other => other.map(|_| ()),
    }
}

/// The leader does not have this replica's log end: below the leader's log start the
/// replica starts over there (retention or DeleteRecords removed what it lacks); above the
/// leader's high watermark it cuts back to it (the rest was never committed) and fetches
/// again from there.
async fn out_of_range(replica: &Rc<Partition>, topic: &str, p: &PartitionData) -> bool {
    let end = replica.with_log(|log| log.log_end_offset());
    let result = if end < p.log_start_offset {
        tracing::warn!(
            topic,
            partition = p.partition_index,
            end,
            leader_log_start = p.log_start_offset,
            "behind the leader's log start; starting over there"
        );
        replica
            .truncate_fully_and_start_at(p.log_start_offset)
            .await
    } else if p.high_watermark >= 0 && end > p.high_watermark {
        replica.truncate_to(p.high_watermark).await
    } else {
        return false;
    };
    if let Err(e) = result {
        tracing::error!(topic, partition = p.partition_index, error = %e, "truncation failed");
    }
    true
}
