//! What ShareFetch and ShareAcknowledge have in common: opening, carrying on and closing the
//! member's share session, finding a session partition's log and share state, and applying
//! acknowledgements (stored in `__share_group_state` before the answer leaves).
//!
//! Runs on the shard that received the request, which leads the partitions it serves; the
//! share state itself is `crate::share`'s.

use std::rc::Rc;

use crate::acl::{Operation, ResourceType, enforce};
use crate::handlers::request::RequestContext;
use crate::shard::Shard;
use crate::shard::share_state::Link;
use crate::share::partition_state::AckError;
use crate::share::session::{CLOSE_EPOCH, OPEN_EPOCH, Session, SessionPartition};
use crate::share::{LoadError, PersistError, SharePartition, limits};
use crate::storage::log::Partition;
use kafka_protocol::ResponseError;

/// One acknowledgement batch of a request, whichever API carried it, borrowed from the
/// decoded request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckBatch<'a> {
    /// First offset.
    pub first: i64,
    /// Last offset.
    pub last: i64,
    /// One type for the range, or one per offset.
    pub types: &'a [i8],
}

impl<'a> AckBatch<'a> {
    /// The batch of offsets `first..=last` with `types`.
    pub fn new(first: i64, last: i64, types: &'a [i8]) -> Self {
        Self { first, last, types }
    }
}

/// Who is asking: the group and member a request names.
pub struct Caller<'a> {
    /// The share group.
    pub group: &'a str,
    /// The member id.
    pub member: &'a str,
}

/// Checks the group and member ids and the group ACL.
pub fn check_caller<'a>(
    shard: &Shard,
    ctx: &RequestContext,
    group: Option<&'a str>,
    member: Option<&'a str>,
) -> Result<Caller<'a>, ResponseError> {
    let (Some(group), Some(member)) = (group, member) else {
        return Err(ResponseError::InvalidRequest);
    };
    if group.is_empty() || member.is_empty() {
        return Err(ResponseError::InvalidRequest);
    }
    enforce::group(shard, ctx, Operation::Read, group)?;
    Ok(Caller { group, member })
}

/// The session step a request's epoch asks for: open (0, replacing an older session, whose
/// records are released), carry on (checked and advanced), or close (-1, after the request's
/// acknowledgements). Returns the member's shared name.
pub async fn enter_session(
    shard: &Shard,
    caller: &Caller<'_>,
    epoch: i32,
    may_open: bool,
) -> Result<Rc<str>, ResponseError> {
    let now = crate::now_ms();
    let config = &shard.config.group.share;
    if epoch == OPEN_EPOCH {
        if !may_open {
            return Err(ResponseError::InvalidShareSessionEpoch);
        }
        let idle_ms = i64::from(config.session_timeout_ms);
        let ended = shard.shares.sessions.borrow_mut().open(
            caller.group,
            caller.member,
            now,
            config.max_share_sessions,
            idle_ms,
        )?;
        for (group, session) in ended {
            release_session(shard, &group, &session).await;
        }
    } else if epoch != CLOSE_EPOCH {
        shard
            .shares
            .sessions
            .borrow_mut()
            .advance(caller.group, caller.member, epoch, now)?;
    } else if shard
        .shares
        .sessions
        .borrow_mut()
        .get_mut(caller.group, caller.member)
        .is_none()
    {
        return Err(ResponseError::ShareSessionNotFound);
    }
    Ok(Rc::from(caller.member))
}

/// Ends the member's session: its records go back to the group.
pub async fn close_session(shard: &Shard, caller: &Caller<'_>) {
    let session = shard
        .shares
        .sessions
        .borrow_mut()
        .close(caller.group, caller.member);
    if let Some(session) = session {
        release_session(shard, caller.group, &session).await;
    }
}

/// Releases what `session`'s member holds in each of its partitions, persisting the change.
pub async fn release_session(shard: &Shard, group: &str, session: &Session) {
    let limits = limits(&shard.share_config(group));
    for &(topic_id, partition) in &session.partitions {
        let Some(share) = shard.shares.get(group, (topic_id, partition)) else {
            continue;
        };
        let changed = share
            .state
            .borrow_mut()
            .release_member(&session.member, limits);
        if changed {
            persist_or_log(shard, group, (topic_id, partition), &share).await;
            shard.shares.released.notify();
        }
    }
}

/// The log and share state of a session partition, if this shard leads it and the member
/// may read its topic.
pub async fn open_partition(
    shard: &Shard,
    ctx: &RequestContext,
    group: &str,
    (topic_id, index): SessionPartition,
) -> Result<(Rc<Partition>, Rc<SharePartition>), ResponseError> {
    let meta = shard
        .topic_by_id(topic_id)
        .ok_or(ResponseError::UnknownTopicId)?;
    if !enforce::allowed(shard, ctx, Operation::Read, ResourceType::Topic, &meta.name) {
        return Err(ResponseError::TopicAuthorizationFailed);
    }
    let log = shard
        .partition(&meta.name, index)
        .await
        .map_err(|e| ResponseError::from(&e))?;
    // The partition's leader epoch from the metadata already looked up (0 on a single node).
    let leader_epoch = usize::try_from(index)
        .ok()
        .and_then(|i| meta.leadership.get(i))
        .map_or(0, |l| l.leader_epoch);
    let share = shard
        .shares
        .get_or_load(
            (group, (topic_id, index)),
            (&log, leader_epoch),
            &shard.share_config(group),
            &link(shard, group, (topic_id, index)),
        )
        .await
        .map_err(|e| match e {
            LoadError::TooManyGroups => ResponseError::GroupMaxSizeReached,
            LoadError::Persist(e) => {
                tracing::warn!(group, %topic_id, index, error = %e, "share state unreadable");
                unavailable(e)
            }
        })?;
    Ok((log, share))
}

/// Applies a partition's acknowledgement batches in order and persists them; the first
/// refused batch's error is the partition's (the others still apply, as Kafka does).
pub async fn acknowledge(
    shard: &Shard,
    ctx: &RequestContext,
    caller: &Caller<'_>,
    partition: SessionPartition,
    batches: &[AckBatch<'_>],
) -> Result<(), ResponseError> {
    let (_, share) = open_partition(shard, ctx, caller.group, partition).await?;
    let limits = limits(&shard.share_config(caller.group));
    let mut first_error = None;
    let mut released = false;
    for batch in batches {
        let outcome = share.state.borrow_mut().acknowledge(
            caller.member,
            batch.first,
            batch.last,
            batch.types,
            limits,
        );
        released |= batch
            .types
            .contains(&crate::share::partition_state::ack_type::RELEASE);
        if let Err(e) = outcome {
            tracing::debug!(group = caller.group, member = caller.member, first = batch.first, last = batch.last, types = ?batch.types, error = %e, "acknowledgement refused");
            first_error.get_or_insert(match e {
                AckError::Malformed => ResponseError::InvalidRequest,
                AckError::NotAcquired => ResponseError::InvalidRecordState,
            });
        }
    }
    share
        .persist(&link(shard, caller.group, partition))
        .await
        .map_err(|e| {
            tracing::warn!(group = caller.group, error = %e, "share state not written");
            unavailable(e)
        })?;
    if released {
        shard.shares.released.notify();
    }
    first_error.map_or(Ok(()), Err)
}

async fn persist_or_log(shard: &Shard, group: &str, at: SessionPartition, share: &SharePartition) {
    if let Err(e) = share.persist(&link(shard, group, at)).await {
        tracing::warn!(group, error = %e, "share state not written");
    }
}

/// The link of `group`'s state of partition `at` to its share-state coordinator.
pub fn link<'a>(shard: &'a Shard, group: &'a str, at: SessionPartition) -> Link<'a> {
    Link { shard, group, at }
}

/// The error a share request's partition gets when its state cannot be read or stored:
/// the coordinator's own when it is one a client retries, else KAFKA_STORAGE_ERROR.
fn unavailable(e: PersistError) -> ResponseError {
    match e.0 {
        ResponseError::CoordinatorNotAvailable
        | ResponseError::CoordinatorLoadInProgress
        | ResponseError::NotCoordinator
        | ResponseError::FencedLeaderEpoch
        | ResponseError::FencedStateEpoch
        | ResponseError::NotEnoughReplicas
        | ResponseError::NotEnoughReplicasAfterAppend
        | ResponseError::RequestTimedOut => ResponseError::NotLeaderOrFollower,
        _ => ResponseError::KafkaStorageError,
    }
}

/// A session partition whose topic is gone: it leaves the member's session, and the record
/// states of that topic leave the shard (they would otherwise stay for good).
pub fn drop_deleted_topic(shard: &Shard, caller: &Caller<'_>, topic_id: uuid::Uuid) {
    if let Some(session) = shard
        .shares
        .sessions
        .borrow_mut()
        .get_mut(caller.group, caller.member)
    {
        session.partitions.retain(|(id, _)| *id != topic_id);
    }
    shard.shares.forget_topic(topic_id);
}
