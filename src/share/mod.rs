//! Share groups' data side (KIP-932): for each partition a share group reads, the state of its
//! records (which are in flight, locked by whom, delivered how often, acknowledged), kept on
//! the shard that leads the partition, next to its log; the share sessions of the members
//! that fetch from this shard; and the records of `__share_group_state` that let a restart or
//! a failover keep every acknowledgement. Membership and assignment live with the group coordinator
//! (`coordinator::group::share`).
//!
//! - `partition_state`: one group's records of one partition (pure).
//! - `session`: share sessions (pure).
//! - `state_record`: the records of `__share_group_state`, where the durable state lives.
//! - `state_store`: the share-state coordinator's memory of those records (pure).
//! - `acquire`: reading the log and handing records to a member.
//!
//! A share partition's state is read and written through a [`StateLink`]: the shard's
//! implementation (`shard::share_state`) finds the `__share_group_state` partition's leader,
//! which may be another shard or another node, so the state survives a failover of the
//! partition it describes.
//!
//! Runs on the partition's shard; nothing here is shared with another core. The wiring to the
//! shard (sessions and acknowledgements of a request, the admin APIs' resets through the
//! mailbox) is `shard::share_requests` and `shard::share_offsets`, as `shard::groups` wires
//! the group coordinator.

pub mod acquire;
pub mod partition_state;
pub mod session;
pub mod state_record;
pub mod state_store;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::coordinator::group::share::config::{AutoOffsetReset, ShareGroupConfig};
use crate::event::Event;
use crate::storage::log::Partition;
use partition_state::{Limits, SharePartitionState};
use session::{SessionPartition, Sessions};
use state_record::StoredState;

/// Why a share partition's state could not be read or written: the Kafka error of the
/// share-state coordinator, or of reaching it.
#[derive(Debug, thiserror::Error)]
#[error("share state not persisted: {0:?}")]
pub struct PersistError(pub ResponseError);

/// Where one share partition's durable state is read from and written to.
// Static dispatch on one thread only, so the futures need no `Send` bound.
#[allow(async_fn_in_trait)]
pub trait StateLink {
    /// The stored state, read as the partition's leader in `leader_epoch`.
    async fn read(&self, leader_epoch: i32) -> Result<Option<StoredState>, PersistError>;
    /// Replaces the stored state; answers once it is durable as the coordinator promises.
    async fn write(&self, state: StoredState) -> Result<(), PersistError>;
}

/// One group's state of one partition.
pub struct SharePartition {
    /// The records in flight.
    pub state: RefCell<SharePartitionState>,
    /// The state epoch it was loaded in (a reset makes a newer one).
    state_epoch: i32,
    /// The partition's leader epoch it was loaded in: a state of an older leadership is
    /// loaded again.
    pub leader_epoch: i32,
    /// One write at a time, so writes reach the coordinator in order.
    write_permit: glommio::sync::Semaphore,
    /// The newest version written.
    written: Cell<u64>,
}

impl SharePartition {
    /// Writes the newest state unless a write already holds it; returns once a state at
    /// least as new as the state at the call is stored.
    pub async fn persist(&self, link: &impl StateLink) -> Result<(), PersistError> {
        let wanted = self.state.borrow().version();
        if self.written.get() >= wanted {
            return Ok(());
        }
        let _permit = self
            .write_permit
            .acquire_permit(1)
            .await
            .map_err(|_| PersistError(ResponseError::CoordinatorNotAvailable))?;
        if self.written.get() >= wanted {
            return Ok(());
        }
        let (version, snapshot) = {
            let state = self.state.borrow();
            (state.version(), state.snapshot())
        };
        link.write(StoredState {
            state_epoch: self.state_epoch,
            leader_epoch: self.leader_epoch,
            snapshot,
        })
        .await?;
        self.written.set(self.written.get().max(version));
        Ok(())
    }
}

/// The share partitions and sessions of one shard.
#[derive(Default)]
pub struct ShardShares {
    /// By group, then partition: lookups borrow the request's group name.
    partitions: RefCell<HashMap<String, HashMap<SessionPartition, Rc<SharePartition>>>>,
    /// The share sessions of members fetching from this shard.
    pub sessions: RefCell<Sessions>,
    /// Signalled when records become available again (released, lock expired), so waiting
    /// share fetches look again.
    pub released: Event,
}

/// Why a share partition could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The shard keeps record states of `group.share.max.groups` groups already.
    #[error("record states of group.share.max.groups share groups are held already")]
    TooManyGroups,
    /// The stored state could not be read or the start written.
    #[error(transparent)]
    Persist(#[from] PersistError),
}

impl ShardShares {
    /// The share partition of `group` at `at`, loading its stored state or starting it per
    /// `share.auto.offset.reset` the first time, as the partition's leader in
    /// `leader_epoch`.
    pub async fn get_or_load(
        &self,
        (group, at): (&str, SessionPartition),
        (log, leader_epoch): (&Partition, i32),
        config: &ShareGroupConfig,
        link: &impl StateLink,
    ) -> Result<Rc<SharePartition>, LoadError> {
        if let Some(found) = self.get(group, at) {
            if found.leader_epoch == leader_epoch {
                return Ok(found);
            }
            // Loaded under an earlier leadership of this shard: another leader may have
            // changed the state meanwhile.
            self.forget(group, at);
        }
        let groups = self.partitions.borrow().len();
        if groups >= config.max_groups && !self.partitions.borrow().contains_key(group) {
            return Err(LoadError::TooManyGroups);
        }
        let loaded = link.read(leader_epoch).await?;
        let limits = limits(config);
        let watermarks = log.watermarks();
        let (state, state_epoch) = match loaded {
            Some(stored) => {
                let mut state = SharePartitionState::restore(&stored.snapshot, 0, limits);
                state.advance_to(watermarks.log_start_offset);
                (state, stored.state_epoch)
            }
            None => {
                let start = match config.auto_offset_reset {
                    AutoOffsetReset::Earliest => watermarks.log_start_offset,
                    AutoOffsetReset::Latest => watermarks.high_watermark,
                };
                // Version 1, unwritten: the start is persisted below, before any record is
                // handed out, so a restart does not start the group again at a later "latest".
                (SharePartitionState::initialized(start), 0)
            }
        };
        let (share, created) = {
            let mut partitions = self.partitions.borrow_mut();
            // Another request may have loaded it while this one read.
            let mut created = false;
            let entry = partitions
                .entry(group.to_owned())
                .or_default()
                .entry(at)
                .or_insert_with(|| {
                    created = true;
                    Rc::new(SharePartition {
                        state: RefCell::new(state),
                        state_epoch,
                        leader_epoch,
                        write_permit: glommio::sync::Semaphore::new(1),
                        written: Cell::new(0),
                    })
                });
            (entry.clone(), created)
        };
        if created {
            share.persist(link).await?;
        }
        Ok(share)
    }

    /// The share partition of `group` at `at`, if loaded.
    pub fn get(&self, group: &str, at: SessionPartition) -> Option<Rc<SharePartition>> {
        self.partitions.borrow().get(group)?.get(&at).cloned()
    }

    /// Drops every state of a deleted topic from memory.
    pub fn forget_topic(&self, topic_id: Uuid) {
        let mut partitions = self.partitions.borrow_mut();
        for states in partitions.values_mut() {
            states.retain(|(id, _), _| *id != topic_id);
        }
        partitions.retain(|_, states| !states.is_empty());
    }

    /// Drops the state of `group` at `at` from memory (it was reset, or is reloaded);
    /// returns whether it was loaded.
    pub fn forget(&self, group: &str, at: SessionPartition) -> bool {
        let mut partitions = self.partitions.borrow_mut();
        let Some(states) = partitions.get_mut(group) else {
            return false;
        };
        let found = states.remove(&at).is_some();
        if states.is_empty() {
            partitions.remove(group);
        }
        found
    }
}

/// The limits of the `group.share.*` settings.
pub fn limits(config: &ShareGroupConfig) -> Limits {
    Limits {
        lock_ms: config.record_lock_duration_ms,
        delivery_limit: config.delivery_count_limit,
        max_in_flight: config.partition_max_record_locks,
    }
}
