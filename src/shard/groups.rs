//! The group coordinator of one shard, wired to connections and storage: the pure
//! [`GroupCoordinator`] behind a `RefCell`, the connections parked in JoinGroup/SyncGroup
//! waiting for their token, the timer task that fires rebalance and session deadlines and
//! expires offsets, and the start-up replay of `__consumer_offsets`. Lives on one core; a
//! group is served only by the shard that owns its `__consumer_offsets` partition.
//!
//! Order of every call: run the coordinator (synchronously, borrow released at once),
//! append the records it emitted to `__consumer_offsets`, then hand each delivery to the
//! connection waiting on its token. Kafka answers only after the append, so a response
//! never promises state a crash would lose.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;
use glommio::channels::local_channel::{self, LocalSender};
use kafka_protocol::ResponseError;

use crate::coordinator::group::records::Record;
use crate::coordinator::group::types::{JoinResponse, SyncResponse};
use crate::coordinator::group::{
    Delivery, Effects, GroupConfig, GroupCoordinator, RequestToken, Response,
};
use crate::event::Event;
use crate::shard::Shard;
use crate::shard::coordinator_moves::{self, LoadedPartitions};
use crate::shard::offsets_log::{self, OffsetsLogError};

/// Longest the timer task sleeps without looking again; bounds the lateness of a deadline
/// that appears while it sleeps and was not signalled (none should be).
const MAX_TIMER_SLEEP_MS: i64 = 1_000;

/// Per-shard group state.
pub struct Groups {
    coordinator: RefCell<GroupCoordinator>,
    /// Connections parked in JoinGroup/SyncGroup, by the token their request was given.
    waiters: RefCell<HashMap<RequestToken, LocalSender<Response>>>,
    next_token: Cell<RequestToken>,
    /// Signalled after every coordinator call, since any call may move a deadline.
    timers_changed: Event,
    /// Offsets committed inside open transactions (TxnOffsetCommit), by producer id: they
    /// are stored in `__consumer_offsets` already but count only once the COMMIT marker
    /// lands there; an ABORT drops them.
    pending_txn_offsets: RefCell<HashMap<i64, Vec<Record>>>,
    /// The `__consumer_offsets` partitions whose groups are loaded here.
    loaded: LoadedPartitions,
}

impl Groups {
    /// No groups and no parked requests yet; `config` is the broker's group settings.
    pub fn new(config: GroupConfig) -> Self {
        Self {
            coordinator: RefCell::new(GroupCoordinator::new(config)),
            waiters: RefCell::new(HashMap::new()),
            next_token: Cell::new(1),
            timers_changed: Event::default(),
            pending_txn_offsets: RefCell::new(HashMap::new()),
            loaded: LoadedPartitions::new(offsets_log::OFFSETS_TOPIC),
        }
    }

    /// Runs a mutating coordinator call. The borrow ends when `f` returns, so no borrow is
    /// ever held across an await.
    pub fn call<R>(&self, f: impl FnOnce(&mut GroupCoordinator) -> R) -> R {
        let result = f(&mut self.coordinator.borrow_mut());
        self.timers_changed.notify();
        result
    }

    /// Runs a read-only coordinator call.
    pub fn read<R>(&self, f: impl FnOnce(&GroupCoordinator) -> R) -> R {
        f(&self.coordinator.borrow())
    }

    /// Registers a waiting connection and returns its token and the receiving end.
    fn park(&self) -> (RequestToken, local_channel::LocalReceiver<Response>) {
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        let (sender, receiver) = local_channel::new_bounded(1);
        self.waiters.borrow_mut().insert(token, sender);
        (token, receiver)
    }

    fn deliver(&self, delivery: Delivery) {
        let Some(sender) = self.waiters.borrow_mut().remove(&delivery.token) else {
            // The connection gave up (closed, or the shard is stopping); nobody to answer.
            return;
        };
        // The channel holds one item and this is the only send on it, so it cannot be full;
        // it fails only if the receiver is gone, which is the same "nobody to answer".
        let _ = sender.try_send(delivery.response);
    }
}

/// Holds offset records of producer `producer_id`'s open transaction until its marker.
pub fn stage_txn_offsets(shard: &Shard, producer_id: i64, records: Vec<Record>) {
    shard
        .groups
        .pending_txn_offsets
        .borrow_mut()
        .entry(producer_id)
        .or_default()
        .extend(records);
}

/// A marker reached `__consumer_offsets` on this shard: a COMMIT makes the producer's staged
/// offsets the groups' committed offsets, an ABORT forgets them.
pub fn settle_txn_offsets(shard: &Shard, producer_id: i64, commit: bool) {
    let staged = shard
        .groups
        .pending_txn_offsets
        .borrow_mut()
        .remove(&producer_id);
    let Some(staged) = staged.filter(|_| commit) else {
        return;
    };
    let now = crate::now_ms();
    shard.groups.call(|c| {
        for record in &staged {
            // Records we encoded ourselves; a failure would be a bug, logged not fatal.
            if let Err(e) = c.replay(&record.key, record.value.as_deref(), now) {
                tracing::warn!(error = %e, "cannot apply a transactional offset commit");
            }
        }
    });
}

/// Removes a parked token when its request ends, however it ends (answered, shutdown, or
/// the connection task dropped).
struct ParkedGuard<'a> {
    groups: &'a Groups,
    token: RequestToken,
}

impl Drop for ParkedGuard<'_> {
    fn drop(&mut self) {
        self.groups.waiters.borrow_mut().remove(&self.token);
    }
}

/// Checks that this shard coordinates `group_id`: NOT_COORDINATOR if another shard owns its
/// `__consumer_offsets` partition, COORDINATOR_LOAD_IN_PROGRESS while (in a cluster) its
/// groups are being loaded after a leader change, COORDINATOR_NOT_AVAILABLE if the topic
/// cannot be created.
pub fn check_coordinator(shard: &Shard, group_id: &str) -> Result<(), ResponseError> {
    match offsets_log::coordinator_of(shard, group_id) {
        Ok((p, owner)) => coordinator_moves::check(shard, p, owner, &shard.groups.loaded),
        Err(e) => {
            tracing::error!(error = %e, "cannot create {}", offsets_log::OFFSETS_TOPIC);
            Err(ResponseError::CoordinatorNotAvailable)
        }
    }
}

/// Appends the records of `effects`, then delivers its responses. If the append fails,
/// every delivery becomes that error instead, and the error is returned for the caller's
/// own response.
pub async fn apply(shard: &Shard, effects: Effects) -> Result<(), ResponseError> {
    let stored = offsets_log::append(shard, &effects.records, crate::now_ms()).await;
    let error = stored.err().map(|e: OffsetsLogError| {
        tracing::warn!(core = shard.core, error = %e, "storing group records failed");
        e.response_error()
    });
    for delivery in effects.deliveries {
        log_completed_join(shard, &delivery);
        let delivery = match error {
            Some(error) => failed(delivery, error),
            None => delivery,
        };
        shard.groups.deliver(delivery);
    }
    error.map_or(Ok(()), Err)
}

/// One lifecycle line per rebalance: the leader's JoinGroup answer marks a new generation.
fn log_completed_join(shard: &Shard, delivery: &Delivery) {
    if let Response::Join(join) = &delivery.response
        && join.error.is_none()
        && join.member_id == join.leader
    {
        tracing::info!(
            core = shard.core,
            generation = join.generation_id,
            members = join.members.len(),
            protocol = join.protocol_name.as_deref().unwrap_or(""),
            "group rebalanced"
        );
    }
}

fn failed(delivery: Delivery, error: ResponseError) -> Delivery {
    let response = match delivery.response {
        Response::Join(join) => Response::Join(JoinResponse::error(error, &join.member_id)),
        Response::Sync(_) => Response::Sync(SyncResponse::error(error)),
    };
    Delivery {
        token: delivery.token,
        response,
    }
}

/// Runs a coordinator call that may answer later (JoinGroup, SyncGroup): gives it a fresh
/// token, applies its effects, then waits until some call delivers to that token. `None`
/// when the shard starts shutting down first; the caller answers NOT_COORDINATOR so the
/// client finds the coordinator again after the restart.
pub async fn call_parked(
    shard: &Shard,
    f: impl FnOnce(&mut GroupCoordinator, RequestToken) -> Effects,
) -> Option<Response> {
    let groups = &shard.groups;
    let (token, receiver) = groups.park();
    let _guard = ParkedGuard { groups, token };
    let seen_shutdown = shard.shutdown_event.generation();
    let effects = groups.call(|c| f(c, token));
    // The append error, if any, already reached our own delivery through `apply`.
    let _ = apply(shard, effects).await;
    // `or` polls the receiver first, so a response already delivered wins over shutdown.
    future::or(receiver.recv(), async {
        shard.shutdown_event.changed_since(seen_shutdown).await;
        None
    })
    .await
}

/// Loads this shard's groups and offsets from its `__consumer_offsets` partitions. Runs
/// once at start-up, before the shard accepts connections.
pub async fn load(shard: &Shard) {
    let started = std::time::Instant::now();
    match offsets_log::replay_owned(shard, &shard.groups.coordinator, crate::now_ms()).await {
        Ok((offsets_log::Replayed { records, staged }, loaded)) => {
            for (producer_id, records) in staged {
                stage_txn_offsets(shard, producer_id, records);
            }
            for p in loaded {
                shard.groups.loaded.mark(shard, p);
            }
            let groups = shard.groups.read(|c| c.groups().count());
            tracing::info!(
                core = shard.core,
                records,
                groups,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "group coordinator loaded"
            );
        }
        Err(e) => {
            tracing::error!(core = shard.core, error = %e, "loading {} failed; groups on this shard start empty", offsets_log::OFFSETS_TOPIC)
        }
    }
    shard.groups.timers_changed.notify();
}

/// Cluster mode: loads the groups of `__consumer_offsets` partitions this shard now leads
/// and drops those of partitions it lost (see `coordinator_moves`). Called by the shard's
/// housekeeping loop.
pub async fn follow_leadership(shard: &Shard) {
    let topic = offsets_log::OFFSETS_TOPIC;
    let unload = |p| {
        shard
            .groups
            .call(|c| c.unload(|group| coordinator_moves::id_in_partition(shard, topic, group, p)))
    };
    let load = async |p| {
        let coordinator = &shard.groups.coordinator;
        let replayed =
            offsets_log::replay_partition(shard, p, coordinator, crate::now_ms()).await?;
        for (producer_id, records) in replayed.staged {
            stage_txn_offsets(shard, producer_id, records);
        }
        shard.groups.timers_changed.notify();
        Ok::<_, OffsetsLogError>(replayed.records)
    };
    coordinator_moves::follow(shard, &shard.groups.loaded, "groups", unload, load).await;
}

/// Fires group deadlines (`tick` at `next_deadline_ms`) and expires offsets every
/// `offsets.retention.check.interval.ms`, until the shard shuts down.
pub async fn run_timers(shard: Rc<Shard>) {
    let interval_ms = shard.config.offsets_retention_check_interval_ms;
    let mut next_expiry_ms = crate::now_ms() + interval_ms;
    while !shard.is_shutting_down() {
        let seen_timers = shard.groups.timers_changed.generation();
        let seen_shutdown = shard.shutdown_event.generation();
        let now = crate::now_ms();
        let due = shard.groups.read(GroupCoordinator::next_deadline_ms);
        if due.is_some_and(|d| d <= now) {
            let effects = shard.groups.call(|c| c.tick(now));
            let _ = apply(&shard, effects).await;
            continue;
        }
        if now >= next_expiry_ms {
            let effects = shard.groups.call(|c| c.expire_offsets(now));
            let _ = apply(&shard, effects).await;
            next_expiry_ms = now + interval_ms;
            continue;
        }
        let wake_ms = due.unwrap_or(i64::MAX).min(next_expiry_ms);
        let wait_ms = (wake_ms - now).clamp(1, MAX_TIMER_SLEEP_MS);
        future::or(
            glommio::timer::sleep(Duration::from_millis(wait_ms as u64)),
            future::or(
                shard.groups.timers_changed.changed_since(seen_timers),
                shard.shutdown_event.changed_since(seen_shutdown),
            ),
        )
        .await;
    }
}
