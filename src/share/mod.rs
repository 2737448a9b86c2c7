//! Share groups' data side (KIP-932): for each partition a share group reads, the state of its
//! records (which are in flight, locked by whom, delivered how often, acknowledged), kept on
//! the shard that leads the partition, next to its log; the share sessions of the members
//! that fetch from this shard; and the state files that let a restart keep every
//! acknowledgement. Membership and assignment live with the group coordinator
//! (`coordinator::group::share`).
//!
//! - `partition_state`: one group's records of one partition (pure).
//! - `session`: share sessions (pure).
//! - `state_file`: the durable snapshots (blocking pool).
//! - `acquire`: reading the log and handing records to a member.
//!
//! Runs on the partition's shard; nothing here is shared with another core. The wiring to the
//! shard (sessions and acknowledgements of a request, the admin APIs' resets through the
//! mailbox) is `shard::share_requests` and `shard::share_offsets`, as `shard::groups` wires
//! the group coordinator.

pub mod acquire;
pub mod partition_state;
pub mod session;
pub mod state_file;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;

use uuid::Uuid;

use crate::coordinator::group::share::config::{AutoOffsetReset, ShareGroupConfig};
use crate::event::Event;
use crate::storage::log::Partition;
use partition_state::{Limits, SharePartitionState};
use session::{SessionPartition, Sessions};

/// One group's state of one partition with its state file.
pub struct SharePartition {
    /// The records in flight.
    pub state: RefCell<SharePartitionState>,
    file: PathBuf,
    /// One state-file write at a time, so compaction never races an append.
    write_permit: glommio::sync::Semaphore,
    /// The newest version on disk.
    written: Cell<u64>,
}

impl SharePartition {
    /// Writes the newest snapshot unless a write already holds it; returns once a snapshot
    /// at least as new as the state at the call is in the file.
    pub async fn persist(&self) -> io::Result<()> {
        let wanted = self.state.borrow().version();
        if self.written.get() >= wanted {
            return Ok(());
        }
        let _permit = self
            .write_permit
            .acquire_permit(1)
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
        if self.written.get() >= wanted {
            return Ok(());
        }
        let (version, record) = {
            let state = self.state.borrow();
            (
                state.version(),
                state_file::encode(state.version(), &state.snapshot()),
            )
        };
        state_file::append(self.file.clone(), record).await?;
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
    /// The state file could not be read or its start written.
    #[error("share state file: {0}")]
    Io(#[from] io::Error),
}

impl ShardShares {
    /// The share partition of `group` at `at`, loading its state file or starting it per
    /// `share.auto.offset.reset` the first time.
    pub async fn get_or_load(
        &self,
        group: &str,
        at: SessionPartition,
        log: &Partition,
        config: &ShareGroupConfig,
    ) -> Result<Rc<SharePartition>, LoadError> {
        if let Some(found) = self.get(group, at) {
            return Ok(found);
        }
        let groups = self.partitions.borrow().len();
        if groups >= config.max_groups && !self.partitions.borrow().contains_key(group) {
            return Err(LoadError::TooManyGroups);
        }
        let file = state_file::path_in(&log.with_log(|l| l.dir().to_path_buf()), group);
        let loaded = state_file::load(file.clone()).await?;
        let limits = limits(config);
        let watermarks = log.watermarks();
        let (state, written) = match loaded {
            Some((version, snapshot)) => {
                let mut state = SharePartitionState::restore(&snapshot, version, limits);
                state.advance_to(watermarks.log_start_offset);
                (state, version)
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
            // Another request may have loaded it while this one read the file.
            let mut created = false;
            let entry = partitions
                .entry(group.to_owned())
                .or_default()
                .entry(at)
                .or_insert_with(|| {
                    created = true;
                    Rc::new(SharePartition {
                        state: RefCell::new(state),
                        file,
                        write_permit: glommio::sync::Semaphore::new(1),
                        written: Cell::new(written),
                    })
                });
            (entry.clone(), created)
        };
        if created {
            share.persist().await?;
        }
        Ok(share)
    }

    /// The share partition of `group` at `at`, if loaded.
    pub fn get(&self, group: &str, at: SessionPartition) -> Option<Rc<SharePartition>> {
        self.partitions.borrow().get(group)?.get(&at).cloned()
    }

    /// Drops every state of a deleted topic from memory (its files went with its directory).
    pub fn forget_topic(&self, topic_id: Uuid) {
        let mut partitions = self.partitions.borrow_mut();
        for states in partitions.values_mut() {
            states.retain(|(id, _), _| *id != topic_id);
        }
        partitions.retain(|_, states| !states.is_empty());
    }

    /// Drops the state of `group` at `at` from memory (its file was reset); returns the
    /// version it had, 0 when none was loaded.
    pub fn forget(&self, group: &str, at: SessionPartition) -> u64 {
        let mut partitions = self.partitions.borrow_mut();
        let Some(states) = partitions.get_mut(group) else {
            return 0;
        };
        let version = states.remove(&at).map_or(0, |p| p.state.borrow().version());
        if states.is_empty() {
            partitions.remove(group);
        }
        version
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
