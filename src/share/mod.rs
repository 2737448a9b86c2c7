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
use session::Sessions;

/// A share partition's key: group, topic id, partition index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShareKey {
    /// The share group.
    pub group: String,
    /// The topic's id.
    pub topic_id: Uuid,
    /// The partition's index.
    pub partition: i32,
}

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
    partitions: RefCell<HashMap<ShareKey, Rc<SharePartition>>>,
    /// The share sessions of members fetching from this shard.
    pub sessions: RefCell<Sessions>,
    /// Signalled when records become available again (released, lock expired), so waiting
    /// share fetches look again.
    pub released: Event,
}

impl ShardShares {
    /// The share partition of `key`, loading its state file or starting it per
    /// `share.auto.offset.reset` the first time.
    pub async fn get_or_load(
        &self,
        key: &ShareKey,
        log: &Partition,
        config: &ShareGroupConfig,
    ) -> io::Result<Rc<SharePartition>> {
        if let Some(found) = self.partitions.borrow().get(key) {
            return Ok(found.clone());
        }
        if !self.has_room_for(&key.group, config.max_groups) {
            return Err(io::Error::other(TooManyGroups));
        }
        let file = state_file::path_in(&log.with_log(|l| l.dir().to_path_buf()), &key.group);
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
            let entry = partitions.entry(key.clone()).or_insert_with(|| {
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

    /// A new group may get record states here: fewer than `max` groups hold some.
    fn has_room_for(&self, group: &str, max: usize) -> bool {
        let partitions = self.partitions.borrow();
        if partitions.keys().any(|k| k.group == group) {
            return true;
        }
        let mut groups: Vec<&str> = partitions.keys().map(|k| k.group.as_str()).collect();
        groups.sort_unstable();
        groups.dedup();
        groups.len() < max
    }

    /// The share partition of `key` if loaded.
    pub fn get(&self, key: &ShareKey) -> Option<Rc<SharePartition>> {
        self.partitions.borrow().get(key).cloned()
    }

    /// Drops every state of a deleted topic from memory (its files went with its directory).
    pub fn forget_topic(&self, topic_id: Uuid) {
        self.partitions
            .borrow_mut()
            .retain(|k, _| k.topic_id != topic_id);
    }

    /// Drops the state of `key` from memory (its file was reset); returns the version it had,
    /// 0 when none was loaded.
    pub fn forget(&self, key: &ShareKey) -> u64 {
        self.partitions
            .borrow_mut()
            .remove(key)
            .map_or(0, |p| p.state.borrow().version())
    }
}

/// A shard already keeps record states of `group.share.max.groups` groups.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("record states of group.share.max.groups share groups are held already")]
pub struct TooManyGroups;

/// The limits of the `group.share.*` settings.
pub fn limits(config: &ShareGroupConfig) -> Limits {
    Limits {
        lock_ms: config.record_lock_duration_ms,
        delivery_limit: config.delivery_count_limit,
        max_in_flight: config.partition_max_record_locks,
    }
}
