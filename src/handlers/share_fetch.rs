//! ShareFetch (key 78, KIP-932): a share consumer's fetch. It opens or carries on the member's
//! share session, applies the acknowledgements it carries, then acquires records of the
//! session's partitions for the member, waiting up to `max_wait_ms` (long poll) when none is
//! available, woken by appends and by records coming back (released, lock run out). Records
//! go out as whole batches with the acquired offset ranges beside them; they are copied into
//! the response, not sent zero-copy, because only some batches of a range go to this member.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use kafka_protocol::ResponseError;
use kafka_protocol::messages::share_fetch_response::{
    AcquiredRecords, PartitionData, ShareFetchableTopicResponse,
};
use kafka_protocol::messages::{ShareFetchRequest, ShareFetchResponse};

use crate::handlers::request::RequestContext;
use crate::shard::Shard;
use crate::shard::share_requests::{self, AckBatch, Caller};
use crate::share::acquire::{self, Acquired, Budget};
use crate::share::session::{CLOSE_EPOCH, OPEN_EPOCH, SessionPartition};

/// Versions served: v1, as Kafka 4.1+ and librdkafka 2.14+.
pub const VERSIONS: (i16, i16) = (1, 1);

/// Longest long-poll a client can ask for; bounds how long a request holds a connection.
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);
/// Most records one fetch may acquire, whatever `max_records` asks.
const MAX_RECORDS_CAP: i32 = 10_000;
/// Most bytes one fetch may return, whatever `max_bytes` asks.
const MAX_BYTES_CAP: i32 = 64 << 20;

/// What one partition's answer holds.
#[derive(Default)]
struct PartitionOutcome {
    error: Option<ResponseError>,
    ack_error: Option<ResponseError>,
    acquired: Acquired,
}

/// Session, acknowledgements, then acquisition with long poll.
pub async fn handle(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    request: ShareFetchRequest,
) -> ShareFetchResponse {
    let group = request.group_id.as_ref().map(|g| g.0.as_str());
    let member = request.member_id.as_ref().map(|m| m.as_str());
    let caller = match share_requests::check_caller(shard, ctx, group, member) {
        Ok(caller) => caller,
        Err(e) => return error_response(e),
    };
    let epoch = request.share_session_epoch;
    let has_acks = request
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .any(|p| !p.acknowledgement_batches.is_empty());
    if epoch == OPEN_EPOCH && has_acks {
        return error_response(ResponseError::InvalidRequest);
    }
    let member = match share_requests::enter_session(shard, &caller, epoch, true).await {
        Ok(member) => member,
        Err(e) => return error_response(e),
    };
    let requested = update_session(shard, &caller, &request);
    let mut outcomes: BTreeMap<SessionPartition, PartitionOutcome> = BTreeMap::new();
    for partition in &requested {
        let outcome = outcomes.entry(*partition).or_default();
        match shard.topic_by_id(partition.0) {
            None => outcome.error = Some(ResponseError::UnknownTopicId),
            Some(meta)
                if !usize::try_from(partition.1).is_ok_and(|i| i < meta.partitions.len()) =>
            {
                outcome.error = Some(ResponseError::UnknownTopicOrPartition);
            }
            Some(_) => {}
        }
    }
    for topic in &request.topics {
        for p in &topic.partitions {
            if p.acknowledgement_batches.is_empty() {
                continue;
            }
            let batches: Vec<AckBatch<'_>> = p
                .acknowledgement_batches
                .iter()
                .map(|b| AckBatch::new(b.first_offset, b.last_offset, &b.acknowledge_types))
                .collect();
            let key = (topic.topic_id, p.partition_index);
            let result = share_requests::acknowledge(shard, ctx, &caller, key, &batches).await;
            outcomes.entry(key).or_default().ack_error = result.err();
        }
    }
    if epoch == CLOSE_EPOCH {
        share_requests::close_session(shard, &caller).await;
    } else {
        fetch(shard, ctx, &caller, &member, &request, &mut outcomes).await;
    }
    let lock_ms = shard.share_config(caller.group).record_lock_duration_ms;
    response(lock_ms, outcomes)
}

/// Adds the request's partitions of existing topics to the session and drops its forgotten
/// ones; returns the partitions the request named.
fn update_session(
    shard: &Shard,
    caller: &Caller<'_>,
    request: &ShareFetchRequest,
) -> Vec<SessionPartition> {
    let named: Vec<SessionPartition> = request
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic_id, p.partition_index)))
        .collect();
    let mut sessions = shard.shares.sessions.borrow_mut();
    if let Some(session) = sessions.get_mut(caller.group, caller.member) {
        // Only partitions that exist join the session, so its size is bounded by the
        // partitions there are, whatever a client names.
        let known = named.iter().filter(|(id, index)| {
            shard.topic_by_id(*id).is_some_and(|meta| {
                usize::try_from(*index).is_ok_and(|i| i < meta.partitions.len())
            })
        });
        session.partitions.extend(known);
        for forgotten in &request.forgotten_topics_data {
            for p in &forgotten.partitions {
                session.partitions.remove(&(forgotten.topic_id, *p));
            }
        }
    }
    named
}

/// Acquires from the session's partitions until something is acquired, the wait is over or
/// the shard stops.
async fn fetch(
    shard: &Rc<Shard>,
    ctx: &RequestContext,
    caller: &Caller<'_>,
    member: &Rc<str>,
    request: &ShareFetchRequest,
    outcomes: &mut BTreeMap<SessionPartition, PartitionOutcome>,
) {
    let wait = Duration::from_millis(request.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let limits = crate::share::limits(&shard.share_config(caller.group));
    let mut budget = Budget {
        records: usize::try_from(request.max_records.clamp(1, MAX_RECORDS_CAP)).unwrap_or(1),
        bytes: u64::try_from(request.max_bytes.clamp(1, MAX_BYTES_CAP)).unwrap_or(1),
    };
    loop {
        let seen_released = shard.shares.released.generation();
        let stopping = shard.shutdown_event.generation();
        let partitions: Vec<SessionPartition> = shard
            .shares
            .sessions
            .borrow_mut()
            .get_mut(caller.group, caller.member)
            .map(|s| s.partitions.iter().copied().collect())
            .unwrap_or_default();
        // The earliest lock that runs out while this fetch waits gives its record back.
        let mut next_lock_ms: Option<i64> = None;
        let mut watched = Vec::with_capacity(partitions.len());
        for key in partitions {
            let outcome = outcomes.entry(key).or_default();
            let (log, share) =
                match share_requests::open_partition(shard, ctx, caller.group, key).await {
                    Ok(found) => found,
                    Err(e) => {
                        if e == ResponseError::UnknownTopicId {
                            share_requests::drop_deleted_topic(shard, caller, key.0);
                        }
                        outcome.error = Some(e);
                        continue;
                    }
                };
            // Before the read: an append from here on wakes the wait below.
            watched.push((log.arrived().generation(), log.clone()));
            let now = crate::now_ms();
            let link = share_requests::link(shard, caller.group, key);
            match acquire::acquire((&share, &link), &log, member, limits, now, &mut budget).await {
                Ok(got) if !got.ranges.is_empty() => outcome.acquired = got,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "share fetch read failed");
                    outcome.error = Some(ResponseError::KafkaStorageError);
                }
            }
            let lock = share.state.borrow().next_lock_deadline();
            next_lock_ms = next_lock_ms.into_iter().chain(lock).min();
        }
        let got_any = outcomes.values().any(|o| !o.acquired.ranges.is_empty());
        let now = Instant::now();
        if got_any || now >= deadline || shard.is_shutting_down() || budget.records == 0 {
            return;
        }
        let mut nap = deadline - now;
        if let Some(lock_ms) = next_lock_ms {
            let until_lock = u64::try_from(lock_ms - crate::now_ms()).unwrap_or(0);
            nap = nap.min(Duration::from_millis(until_lock + 1));
        }
        let data =
            crate::event::any_changed(watched.iter().map(|(seen, log)| (log.arrived(), *seen)));
        let woken =
            futures_lite::future::or(data, shard.shares.released.changed_since(seen_released));
        let woken = futures_lite::future::or(woken, shard.shutdown_event.changed_since(stopping));
        futures_lite::future::or(woken, glommio::timer::sleep(nap)).await;
    }
}

fn response(
    lock_ms: i64,
    outcomes: BTreeMap<SessionPartition, PartitionOutcome>,
) -> ShareFetchResponse {
    let mut out = ShareFetchResponse::default();
    out.acquisition_lock_timeout_ms = i32::try_from(lock_ms).unwrap_or(i32::MAX);
    let mut topics: BTreeMap<uuid::Uuid, Vec<PartitionData>> = BTreeMap::new();
    for ((topic_id, index), outcome) in outcomes {
        let mut data = PartitionData::default();
        data.partition_index = index;
        data.error_code = outcome.error.map_or(0, |e| e.code());
        data.acknowledge_error_code = outcome.ack_error.map_or(0, |e| e.code());
        data.current_leader.leader_id = -1;
        data.current_leader.leader_epoch = -1;
        data.records = Some(outcome.acquired.records);
        data.acquired_records = outcome
            .acquired
            .ranges
            .iter()
            .map(|r| {
                let mut a = AcquiredRecords::default();
                a.first_offset = r.first;
                a.last_offset = r.last;
                a.delivery_count = i16::try_from(r.deliveries).unwrap_or(i16::MAX);
                a
            })
            .collect();
        topics.entry(topic_id).or_default().push(data);
    }
    out.responses = topics
        .into_iter()
        .map(|(topic_id, partitions)| {
            let mut t = ShareFetchableTopicResponse::default();
            t.topic_id = topic_id;
            t.partitions = partitions;
            t
        })
        .collect();
    out
}

fn error_response(error: ResponseError) -> ShareFetchResponse {
    let mut out = ShareFetchResponse::default();
    out.error_code = error.code();
    out.error_message = Some(crate::handlers::str_bytes(error.to_string()));
    out
}
