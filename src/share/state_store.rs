//! The share-state coordinator's memory: for each `__share_group_state` partition this shard
//! leads, the newest state of every share partition whose key hashes there, rebuilt from the
//! log when the shard starts or becomes the partition's leader and kept in step with every
//! record it appends. It decides which writes are fenced: one from a partition leader older
//! than a leader already seen (a new leader read or wrote the state since), or of a state
//! epoch older than a reset's.
//!
//! Pure; owned by the shard that leads the partitions (`shard::share_state_log`).

use std::collections::HashMap;

use super::state_record::{StateKey, StoredState};

/// Why a write was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteRefused {
    /// A newer leader of the partition has read or written the state.
    #[error("a newer partition leader owns this share state")]
    FencedLeaderEpoch,
    /// The admin APIs reset the state since the writer loaded it.
    #[error("the share state was reset since it was loaded")]
    FencedStateEpoch,
}

/// The states of the `__share_group_state` partitions a shard leads.
#[derive(Debug, Default)]
pub struct StateStore {
    partitions: HashMap<i32, HashMap<StateKey, StoredState>>,
}

impl StateStore {
    /// Applies a record of partition `p` (replay, or after an append): a value replaces the
    /// key's state, a tombstone removes it.
    pub fn apply(&mut self, p: i32, key: StateKey, value: Option<StoredState>) {
        let states = self.partitions.entry(p).or_default();
        match value {
            Some(state) => {
                states.insert(key, state);
            }
            None => {
                states.remove(&key);
            }
        }
    }

    /// Notes that partition `p` is loaded, even when it held no record.
    pub fn mark_loaded(&mut self, p: i32) {
        self.partitions.entry(p).or_default();
    }

    /// The state of `key` for a reader; a partition leader reading in `leader_epoch` fences
    /// writes of older leaders from now on (-1: an admin read, which fences nothing).
    pub fn read(&mut self, p: i32, key: &StateKey, leader_epoch: i32) -> Option<StoredState> {
        let state = self.partitions.get_mut(&p)?.get_mut(key)?;
        state.leader_epoch = state.leader_epoch.max(leader_epoch);
        Some(state.clone())
    }

    /// Whether `state` may replace the stored state of `key`.
    pub fn check_write(
        &self,
        p: i32,
        key: &StateKey,
        state: &StoredState,
    ) -> Result<(), WriteRefused> {
        let Some(old) = self.partitions.get(&p).and_then(|s| s.get(key)) else {
            return Ok(());
        };
        if state.leader_epoch < old.leader_epoch {
            return Err(WriteRefused::FencedLeaderEpoch);
        }
        if state.state_epoch < old.state_epoch {
            return Err(WriteRefused::FencedStateEpoch);
        }
        Ok(())
    }

    /// Drops partition `p` (its leadership moved away); returns how many states went.
    pub fn unload(&mut self, p: i32) -> usize {
        self.partitions.remove(&p).map_or(0, |s| s.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::partition_state::Snapshot;

    fn key() -> StateKey {
        StateKey {
            group: "g".to_owned(),
            topic_id: uuid::Uuid::from_u128(1),
            partition: 0,
        }
    }

    fn state(state_epoch: i32, leader_epoch: i32, start: i64) -> StoredState {
        StoredState {
            state_epoch,
            leader_epoch,
            snapshot: Snapshot {
                start,
                ranges: Vec::new(),
            },
        }
    }

    #[test]
    fn older_leaders_and_older_state_epochs_are_fenced_and_tombstones_delete() {
        let mut store = StateStore::default();
        assert_eq!(store.read(3, &key(), 0), None);
        store.apply(3, key(), Some(state(0, 1, 10)));
        assert_eq!(store.check_write(3, &key(), &state(0, 1, 11)), Ok(()));
        // A new leader reads in epoch 2: the old one can no longer write.
        assert_eq!(store.read(3, &key(), 2).map(|s| s.snapshot.start), Some(10));
        assert_eq!(
            store.check_write(3, &key(), &state(0, 1, 12)),
            Err(WriteRefused::FencedLeaderEpoch)
        );
        // An admin read fences nothing.
        assert_eq!(store.read(3, &key(), -1).map(|s| s.leader_epoch), Some(2));
        // A reset bumps the state epoch: writes of the loaded epoch are fenced.
        store.apply(3, key(), Some(state(1, 2, 50)));
        assert_eq!(
            store.check_write(3, &key(), &state(0, 2, 12)),
            Err(WriteRefused::FencedStateEpoch)
        );
        store.apply(3, key(), None);
        assert_eq!(store.read(3, &key(), 2), None);
        store.apply(3, key(), Some(state(0, 0, 1)));
        assert_eq!(store.unload(3), 1);
        assert_eq!(store.unload(3), 0);
    }
}
