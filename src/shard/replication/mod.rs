//! Partition replication (issue 14), part of the shard's state and run on its executor: the
//! leader's view of its followers (`progress`), the high watermark it derives, ISR changes it
//! proposes to the controller quorum, the acks=all wait, and the follower's fetch loop
//! (`fetcher`). Everything
//! here is per shard (`Rc`/`RefCell`, no lock): a partition's leader and its replica on
//! another node are each served by one shard, and replication traffic of a shard never
//! crosses to another core.
//!
//! Roles come from the cluster metadata: a shard leads a partition when the quorum's leader
//! is its broker id, and follows it when it holds another replica. Leader elections happen in
//! the metadata image (`metadata/image/election.rs`); this module reacts to them.

pub mod divergence;
pub mod fetcher;
pub mod progress;
pub mod selector;
pub mod throttle;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use kafka_protocol::ResponseError;

use crate::metadata::{Leadership, TopicMeta};
use crate::shard::Shard;
use crate::storage::log::Partition;
use progress::LeaderProgress;

type PartitionKey = (String, i32);

/// A shard's replication state: the leader's view of each partition it leads, and the ISR
/// changes it has proposed and not yet seen applied.
#[derive(Default)]
pub struct Replication {
    leaders: RefCell<HashMap<PartitionKey, LeaderProgress>>,
    /// Proposed ISRs not yet applied or refused. Until then the high watermark counts the
    /// members of both (Kafka's maximal ISR): a follower being added must have every record
    /// below the watermark, since once the change commits it may be elected.
    isr_pending: RefCell<HashMap<PartitionKey, Vec<i32>>>,
    /// This shard's budget for fetching throttled replicas (as a follower).
    pub follower_quota: throttle::Quota,
    /// This shard's budget for serving throttled replicas (as a leader).
    pub leader_quota: throttle::Quota,
    /// Live brokers' racks, for the replica selector (KIP-392).
    racks: selector::RackCache,
}

/// `min.insync.replicas` of a partition as its log's config has it.
fn min_insync(partition: &Partition) -> usize {
    partition.with_log(|log| usize::try_from(log.config().min_insync_replicas).unwrap_or(1))
}

/// Called on every lookup of a partition this shard leads in cluster mode: when the
/// metadata shows a leader epoch the log has not stamped yet, this shard has just become the
/// leader (or been re-elected): appends from now on carry the new epoch, the view of the
/// followers starts afresh, and the high watermark follows the ISR when the partition has
/// followers. One `Cell` read when nothing changed.
pub fn become_leader(
    shard: &Shard,
    meta: &TopicMeta,
    index: i32,
    l: &Leadership,
    partition: &Rc<Partition>,
) {
    if partition.leader_epoch() == l.leader_epoch {
        return;
    }
    partition.set_leader_epoch(l.leader_epoch);
    let replicated = meta.is_replicated(index as usize);
    partition.with_log_mut(|log| log.set_hw_follows_leo(!replicated));
    let key = (meta.name.clone(), index);
    shard.replication.isr_pending.borrow_mut().remove(&key);
    shard
        .replication
        .leaders
        .borrow_mut()
        .insert(key, LeaderProgress::new(l.leader_epoch, crate::now_ms()));
    tracing::info!(topic = %meta.name, partition = index, leader_epoch = l.leader_epoch, isr = ?l.isr, "leading the partition");
    update_high_watermark(shard, meta, index, l, partition);
}

/// Moves the high watermark to what the ISR supports and wakes the waiters (acks=all
/// producers and consumers' long polls) when it moved.
fn update_high_watermark(
    shard: &Shard,
    meta: &TopicMeta,
    index: i32,
    l: &Leadership,
    partition: &Partition,
) {
    if !meta.is_replicated(index as usize) {
        return;
    }
    let key = (meta.name.clone(), index);
    let leaders = shard.replication.leaders.borrow();
    let Some(progress) = leaders.get(&key) else {
        return;
    };
    let min_isr = min_insync(partition);
    let mut isr = l.isr.clone();
    if let Some(proposed) = shard.replication.isr_pending.borrow().get(&key) {
        isr.extend(proposed.iter().filter(|r| !l.isr.contains(r)));
    }
    let moved = partition.with_log_mut(|log| {
        let end = log.log_end_offset();
        progress
            .high_watermark(l.leader, end, &isr, min_isr)
            .is_some_and(|hw| log.set_high_watermark(hw))
    });
    if moved {
        partition.arrived().notify();
    }
}

/// After an append by this shard as leader: with the ISR down to the leader alone the high
/// watermark moves at once.
pub fn leader_appended(shard: &Shard, topic: &str, index: i32, partition: &Partition) {
    if let Some(meta) = shard.topic(topic)
        && let Some(l) = meta.leadership.get(index as usize)
    {
        update_high_watermark(shard, &meta, index, l, partition);
    }
}

/// A follower's fetch reached the leader: record its log end (and the log start it
/// reports, for the replica selector), move the high watermark, and propose its return to
/// the ISR once it has caught up.
pub fn follower_fetched(
    shard: &Rc<Shard>,
    meta: &TopicMeta,
    index: i32,
    partition: &Partition,
    follower: i32,
    (fetch_offset, follower_log_start): (i64, i64),
) {
    let Some(l) = meta.leadership.get(index as usize) else {
        return;
    };
    if !l.replicas.contains(&follower) {
        return;
    }
    let key = (meta.name.clone(), index);
    let (log_start, end, hw, epoch_start) = partition.with_log(|log| {
        // Where this leader's epoch starts: the end of the epoch before it (the log end when
        // nothing was appended in this epoch yet).
        let (_, start) = log.epoch_end_offset(l.leader_epoch - 1);
        let marks = log.watermarks();
        (
            marks.log_start_offset,
            marks.log_end_offset,
            marks.high_watermark,
            start.max(0),
        )
    });
    if fetch_offset < log_start || fetch_offset > end {
        // Not a log end this leader can vouch for (the fetch is answered OFFSET_OUT_OF_RANGE):
        // it must not move the high watermark or the ISR.
        return;
    }
    let rejoin = {
        let mut leaders = shard.replication.leaders.borrow_mut();
        let Some(progress) = leaders.get_mut(&key) else {
            return;
        };
        progress.on_fetch(follower, fetch_offset, end, crate::now_ms());
        progress.note_log_start(follower, follower_log_start);
        !l.isr.contains(&follower) && progress.may_rejoin(follower, hw, epoch_start)
    };
    update_high_watermark(shard, meta, index, l, partition);
    if rejoin {
        let mut isr = l.isr.clone();
        isr.push(follower);
        propose_isr(shard, meta, index, l, isr);
    }
}

/// Whether a fetch by `follower` must be answered now because its answer carries a high
/// watermark the follower has not been sent yet (it serves consumers up to it, KIP-392).
pub fn follower_owed_high_watermark(
    shard: &Shard,
    topic: &str,
    index: i32,
    follower: i32,
    high_watermark: i64,
) -> bool {
    shard
        .replication
        .leaders
        .borrow()
        .get(&(topic.to_string(), index))
        .is_some_and(|p| p.owes_high_watermark(follower, high_watermark))
}

/// Notes the high watermark an answer to `follower`'s fetch carried.
pub fn follower_sent_high_watermark(
    shard: &Shard,
    topic: &str,
    index: i32,
    follower: i32,
    high_watermark: i64,
) {
    if let Some(p) = shard
        .replication
        .leaders
        .borrow_mut()
        .get_mut(&(topic.to_string(), index))
    {
        p.sent_high_watermark(follower, high_watermark);
    }
}

/// Before an acks=all append: refused with NOT_ENOUGH_REPLICAS while the ISR is smaller
/// than `min.insync.replicas` (cluster mode only: a single node has no ISR to count). ISR
/// members this leader already sees lagging past `replica.lag.time.max.ms` do not count,
/// even before the controller has committed their removal: when the quorum itself is down
/// (two of three nodes lost) that removal can never commit, and a producer is better told
/// at once than left to time out. Refusing is always safe; Kafka counts the committed ISR.
pub fn check_min_insync(
    shard: &Shard,
    meta: &TopicMeta,
    index: i32,
    partition: &Partition,
) -> Result<(), ResponseError> {
    let Some(l) = meta.leadership.get(index as usize) else {
        return Ok(());
    };
    let lagging = shard
        .replication
        .leaders
        .borrow()
        .get(&(meta.name.clone(), index))
        .map_or(0, |progress| {
            progress
                .lagging(l.leader, &l.isr, crate::now_ms(), lag_time_max_ms(shard))
                .len()
        });
    if l.isr.len() - lagging.min(l.isr.len()) < min_insync(partition) {
        return Err(ResponseError::NotEnoughReplicas);
    }
    Ok(())
}

fn lag_time_max_ms(shard: &Shard) -> i64 {
    shard.config.cluster.as_ref().map_or(i64::MAX, |c| {
        i64::try_from(c.replication.lag_time_max.as_millis()).unwrap_or(i64::MAX)
    })
}

/// The acks=all wait: until the high watermark passes `last_offset`. Fails with
/// REQUEST_TIMED_OUT after `timeout`, NOT_LEADER_OR_FOLLOWER if this shard lost the
/// leadership meanwhile, and NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR is then below
/// `min.insync.replicas` (the record is written but not as safely as promised).
pub async fn wait_for_replicas(
    shard: &Shard,
    topic: &str,
    index: i32,
    partition: &Partition,
    last_offset: i64,
    timeout: Duration,
) -> Result<(), ResponseError> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let seen = partition.arrived().generation();
        let meta = shard
            .topic(topic)
            .ok_or(ResponseError::NotLeaderOrFollower)?;
        let Some(l) = meta.leadership.get(index as usize) else {
            return Ok(());
        };
        if l.leader != shard.broker_id() || l.leader_epoch != partition.leader_epoch() {
            return Err(ResponseError::NotLeaderOrFollower);
        }
        // An ISR change (a dead follower dropped) may let the watermark move without any
        // fetch or append.
        update_high_watermark(shard, &meta, index, l, partition);
        if partition.with_log(|log| log.high_watermark()) > last_offset {
            return check_min_insync(shard, &meta, index, partition)
                .map_err(|_| ResponseError::NotEnoughReplicasAfterAppend);
        }
        let now = std::time::Instant::now();
        if now >= deadline || shard.is_shutting_down() {
            return Err(ResponseError::RequestTimedOut);
        }
        // Metadata changes (a lost leadership) arrive without an append: look again at
        // least every 100 ms.
        let tick = (deadline - now).min(Duration::from_millis(100));
        futures_lite::future::or(
            partition.arrived().changed_since(seen),
            glommio::timer::sleep(tick),
        )
        .await;
    }
}

/// How long an internal append (group commits, transaction state, markers) waits for the
/// ISR: Kafka's `offsets.commit.timeout.ms` default.
pub const INTERNAL_ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// After this shard's coordinator appended to an internal topic it leads: in a cluster,
/// waits until every in-sync replica has the records (acks=all, as Kafka's coordinators
/// write), so an answered commit survives a failover. A no-op on a single node and for a
/// partition without followers.
pub async fn acknowledge_internal_append(
    shard: &Shard,
    topic: &str,
    index: i32,
    partition: &Partition,
    last_offset: i64,
) -> Result<(), ResponseError> {
    if shard.config.cluster.is_none() {
        return Ok(());
    }
    leader_appended(shard, topic, index, partition);
    let replicated = shard
        .topic(topic)
        .is_some_and(|meta| meta.is_replicated(index as usize));
    if !replicated {
        return Ok(());
    }
    wait_for_replicas(
        shard,
        topic,
        index,
        partition,
        last_offset,
        INTERNAL_ACK_TIMEOUT,
    )
    .await
}

/// Proposes a new ISR for a partition this shard leads (KIP-497's AlterPartition through
/// the quorum), unless one is already on its way. The partition epoch in the command makes
/// the quorum refuse it if the partition changed meanwhile (a newer leader, another ISR
/// change); the leader then sees the new state and decides again.
fn propose_isr(shard: &Rc<Shard>, meta: &TopicMeta, index: i32, l: &Leadership, isr: Vec<i32>) {
    let key = (meta.name.clone(), index);
    {
        let mut pending = shard.replication.isr_pending.borrow_mut();
        if pending.contains_key(&key) {
            return;
        }
        pending.insert(key.clone(), isr.clone());
    }
    let cluster = shard.cluster.clone();
    let (topic_id, leader, leader_epoch, partition_epoch) =
        (meta.id, l.leader, l.leader_epoch, l.partition_epoch);
    let pending = Rc::downgrade(shard);
    tracing::info!(topic = %meta.name, partition = index, from = ?l.isr, to = ?isr, "proposing an ISR change");
    glommio::spawn_local(async move {
        let result = cluster
            .propose_partition_change(topic_id, index, leader, leader_epoch, isr, partition_epoch)
            .await;
        if let Err(e) = result {
            tracing::warn!(topic = %key.0, partition = key.1, error = %e, "ISR change refused");
        }
        if let Some(shard) = pending.upgrade() {
            shard.replication.isr_pending.borrow_mut().remove(&key);
        }
    })
    .detach();
}

/// Drops lagging followers from the ISR of every partition this shard leads, every half
/// `replica.lag.time.max.ms`, until shutdown. Cluster mode only.
pub async fn run_isr_checks(shard: Rc<Shard>) {
    let Some(cluster) = shard.config.cluster.as_ref() else {
        return;
    };
    let lag_max = cluster.replication.lag_time_max;
    let every = (lag_max / 2).max(Duration::from_millis(50));
    let lag_max_ms = i64::try_from(lag_max.as_millis()).unwrap_or(i64::MAX);
    let mut last_check = std::time::Instant::now();
    while !shard.is_shutting_down() {
        let stopping = shard.shutdown_event.generation();
        futures_lite::future::or(
            glommio::timer::sleep(every.min(HW_REFRESH)),
            shard.shutdown_event.changed_since(stopping),
        )
        .await;
        refresh_high_watermarks(&shard).await;
        if last_check.elapsed() >= every {
            last_check = std::time::Instant::now();
            shrink_lagging(&shard, lag_max_ms);
        }
    }
}

/// How often a leader recomputes its high watermarks without a fetch or append to trigger
/// it: an ISR shrink committed by the quorum can let a watermark move on an idle partition.
const HW_REFRESH: Duration = Duration::from_millis(250);

async fn refresh_high_watermarks(shard: &Shard) {
    let led: Vec<PartitionKey> = shard.replication.leaders.borrow().keys().cloned().collect();
    for (topic, index) in led {
        if let Ok(partition) = shard.partition(&topic, index).await {
            leader_appended(shard, &topic, index, &partition);
        }
    }
}

fn shrink_lagging(shard: &Rc<Shard>, lag_max_ms: i64) {
    let now = crate::now_ms();
    let me = shard.broker_id();
    let led: Vec<(PartitionKey, Vec<i32>)> = shard
        .replication
        .leaders
        .borrow()
        .iter()
        .filter_map(|(key, progress)| {
            let meta = shard.topic(&key.0)?;
            let l = meta.leadership.get(key.1 as usize)?;
            (l.leader == me && l.leader_epoch == progress.leader_epoch)
                .then(|| (key.clone(), progress.lagging(me, &l.isr, now, lag_max_ms)))
        })
        .collect();
    for (key, lagging) in led {
        let Some(meta) = shard.topic(&key.0) else {
            continue;
        };
        let Some(l) = meta.leadership.get(key.1 as usize) else {
            continue;
        };
        if lagging.is_empty() {
            continue;
        }
        let isr: Vec<i32> = l
            .isr
            .iter()
            .copied()
            .filter(|r| !lagging.contains(r))
            .collect();
        propose_isr(shard, &meta, key.1, l, isr);
    }
    // Forget partitions this shard no longer leads.
    shard
        .replication
        .leaders
        .borrow_mut()
        .retain(|key, progress| {
            shard
                .topic(&key.0)
                .and_then(|m| m.leadership.get(key.1 as usize).cloned())
                .is_some_and(|l| l.leader == me && l.leader_epoch == progress.leader_epoch)
        });
}
