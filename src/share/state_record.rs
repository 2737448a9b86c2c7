//! The records of `__share_group_state`, Sluice's equivalent of Kafka's share-group state
//! topic: one record per (group, topic id, partition) holding that share partition's whole
//! durable state (its start offset and in-flight runs) with the state epoch (bumped by a
//! reset through the admin APIs) and the leader epoch of the partition leader that wrote it.
//! The topic is compacted by key, so the newest record of each share partition is what a
//! restart or a new coordinator loads; a record without a value (a tombstone) deletes it.
//!
//! Pure encoding and decoding; the batches around the records carry the CRC.

use uuid::Uuid;

use super::partition_state::{Snapshot, StateRange};
use crate::coordinator::group::share::config::MAX_PARTITION_RECORD_LOCKS;

/// Format version written first in keys and values, so a later layout can be told apart.
const FORMAT: u16 = 0;
/// Fixed part of a value: format, state epoch, leader epoch, start offset, run count.
const VALUE_HEADER: usize = 2 + 4 + 4 + 8 + 4;
/// One run: first, last, state, deliveries.
const RANGE: usize = 8 + 8 + 1 + 2;
/// Most runs a value holds: a window of `MAX_PARTITION_RECORD_LOCKS` records alternates
/// states at worst once per record.
pub const MAX_RANGES: usize = MAX_PARTITION_RECORD_LOCKS;

/// Which share partition a record is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateKey {
    /// The share group.
    pub group: String,
    /// The topic's id.
    pub topic_id: Uuid,
    /// The partition index.
    pub partition: i32,
}

impl StateKey {
    /// The string the key's `__share_group_state` partition is hashed from, as Kafka's
    /// `SharePartitionKey` prints it: `group:topic id:partition`.
    pub fn placement(&self) -> String {
        format!("{}:{}:{}", self.group, self.topic_id, self.partition)
    }
}

/// One share partition's durable state as the coordinator keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredState {
    /// Bumped when the admin APIs reset the state; a write of an older epoch is fenced.
    pub state_epoch: i32,
    /// The leader epoch of the partition leader that wrote it (-1: none known); a write
    /// of an older leader is fenced.
    pub leader_epoch: i32,
    /// The start offset and the in-flight runs.
    pub snapshot: Snapshot,
}

/// A key: format, group length and bytes, topic id, partition.
pub fn encode_key(key: &StateKey) -> Vec<u8> {
    let group = key.group.as_bytes();
    let mut out = Vec::with_capacity(2 + 2 + group.len() + 16 + 4);
    out.extend_from_slice(&FORMAT.to_be_bytes());
    out.extend_from_slice(&u16::try_from(group.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(group);
    out.extend_from_slice(key.topic_id.as_bytes());
    out.extend_from_slice(&key.partition.to_be_bytes());
    out
}

/// The key of a record's key bytes; `None` when it is not one this version knows.
pub fn decode_key(bytes: &[u8]) -> Option<StateKey> {
    if u16::from_be_bytes(bytes.get(..2)?.try_into().ok()?) != FORMAT {
        return None;
    }
    let len = usize::from(u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?));
    let group = std::str::from_utf8(bytes.get(4..4 + len)?).ok()?.to_owned();
    let rest = bytes.get(4 + len..)?;
    if rest.len() != 16 + 4 {
        return None;
    }
    Some(StateKey {
        group,
        topic_id: Uuid::from_slice(&rest[..16]).ok()?,
        partition: i32::from_be_bytes(rest[16..].try_into().ok()?),
    })
}

/// A value: format, state epoch, leader epoch, start offset, runs.
pub fn encode_value(state: &StoredState) -> Vec<u8> {
    let ranges = &state.snapshot.ranges;
    let mut out = Vec::with_capacity(VALUE_HEADER + RANGE * ranges.len());
    out.extend_from_slice(&FORMAT.to_be_bytes());
    out.extend_from_slice(&state.state_epoch.to_be_bytes());
    out.extend_from_slice(&state.leader_epoch.to_be_bytes());
    out.extend_from_slice(&state.snapshot.start.to_be_bytes());
    out.extend_from_slice(
        &u32::try_from(ranges.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    for r in ranges {
        out.extend_from_slice(&r.first.to_be_bytes());
        out.extend_from_slice(&r.last.to_be_bytes());
        out.push(r.state);
        out.extend_from_slice(&r.deliveries.to_be_bytes());
    }
    out
}

/// The state of a record's value bytes; `None` when it is malformed or of an unknown format.
pub fn decode_value(bytes: &[u8]) -> Option<StoredState> {
    if bytes.len() < VALUE_HEADER || u16::from_be_bytes(bytes[..2].try_into().ok()?) != FORMAT {
        return None;
    }
    let state_epoch = i32::from_be_bytes(bytes[2..6].try_into().ok()?);
    let leader_epoch = i32::from_be_bytes(bytes[6..10].try_into().ok()?);
    let start = i64::from_be_bytes(bytes[10..18].try_into().ok()?);
    let count = usize::try_from(u32::from_be_bytes(bytes[18..22].try_into().ok()?)).ok()?;
    let runs = &bytes[VALUE_HEADER..];
    if count > MAX_RANGES || runs.len() != count * RANGE {
        return None;
    }
    let ranges = runs
        .chunks_exact(RANGE)
        .map(|c| StateRange {
            first: i64::from_be_bytes(c[..8].try_into().unwrap_or_default()),
            last: i64::from_be_bytes(c[8..16].try_into().unwrap_or_default()),
            state: c[16],
            deliveries: u16::from_be_bytes([c[17], c[18]]),
        })
        .collect();
    Some(StoredState {
        state_epoch,
        leader_epoch,
        snapshot: Snapshot { start, ranges },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(start: i64) -> StoredState {
        StoredState {
            state_epoch: 3,
            leader_epoch: 7,
            snapshot: Snapshot {
                start,
                ranges: vec![
                    StateRange {
                        first: start,
                        last: start + 2,
                        state: 0,
                        deliveries: 1,
                    },
                    StateRange {
                        first: start + 3,
                        last: start + 3,
                        state: 2,
                        deliveries: 1,
                    },
                ],
            },
        }
    }

    #[test]
    fn keys_and_values_round_trip_and_bad_bytes_decode_to_nothing() {
        let key = StateKey {
            group: "g/ü".to_owned(),
            topic_id: Uuid::from_u128(42),
            partition: 5,
        };
        assert_eq!(decode_key(&encode_key(&key)), Some(key.clone()));
        assert_eq!(key.placement(), format!("g/ü:{}:5", Uuid::from_u128(42)));
        assert_eq!(decode_value(&encode_value(&state(10))), Some(state(10)));
        let value = encode_value(&state(10));
        assert_eq!(decode_value(&value[..value.len() - 1]), None);
        let mut key_bytes = encode_key(&key);
        key_bytes.push(0);
        assert_eq!(decode_key(&key_bytes), None);
        let mut future = value.clone();
        future[1] = 1;
        assert_eq!(decode_value(&future), None);
    }
}
