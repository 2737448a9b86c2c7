//! Fetch from the closest replica (KIP-392), the leader's half: which replica a consumer that
//! names its rack (`client.rack`, Fetch v11+ `rack_id`) should read from, as Kafka's
//! `RackAwareReplicaSelector` decides. The rule is a pure function over the replicas the
//! leader may send a consumer to (unit-tested here); `preferred_read_replica` gathers them
//! from the metadata and the leader's view of its followers. Runs on the leader's shard, per
//! partition of a consumer fetch, only when `replica.selector.class` is the rack-aware one.
//!
//! Brokers' racks and liveness come from the quorum's image, which is behind a lock: each
//! shard keeps its own copy (`RackCache`), retaken only when the metadata version changes,
//! so the fetch path reads one shared counter and no lock.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::config::ReplicaSelector;
use crate::metadata::Leadership;
use crate::shard::Shard;
use crate::shard::replication::progress::LeaderProgress;

/// A replica the leader may send a consumer to, as the leader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaView<'a> {
    /// Kafka broker id.
    pub id: i32,
    /// Its broker's `broker.rack`.
    pub rack: Option<&'a str>,
    /// Its log end: the leader's own, or the follower's latest fetch offset.
    pub log_end: i64,
    /// When it was last caught up with the leader (ms); the leader is always caught up.
    pub caught_up_ms: i64,
}

/// Kafka's `RackAwareReplicaSelector.select` over `replicas` (the eligible ones, leader
/// included): the leader when the client names no rack, when no replica is in its rack, or
/// when the leader itself is; otherwise the most caught-up replica of that rack (largest log
/// end, then the most recently caught up, then the lowest id so the answer is stable).
#[must_use]
pub fn rack_aware(leader: i32, client_rack: &str, replicas: &[ReplicaView<'_>]) -> i32 {
    if client_rack.is_empty() {
        return leader;
    }
    let same_rack = replicas.iter().filter(|r| r.rack == Some(client_rack));
    if same_rack.clone().any(|r| r.id == leader) {
        return leader;
    }
    same_rack
        .max_by(|a, b| {
            a.log_end
                .cmp(&b.log_end)
                .then(a.caught_up_ms.cmp(&b.caught_up_ms))
                .then(b.id.cmp(&a.id))
        })
        .map_or(leader, |r| r.id)
}

/// The replicas Kafka lets the selector choose from for a fetch at `fetch_offset`: the
/// leader, and each follower that is in the ISR, on a live broker, and whose log (as the
/// leader last saw it) holds the fetch offset: its log end reaches it and its log start is
/// not past it (a follower that has not fetched in this leader epoch is unknown, so left
/// out). `rack_of` is `None` for a broker that is not live.
#[must_use]
pub fn eligible<'a>(
    l: &Leadership,
    leader_log_end: i64,
    now_ms: i64,
    progress: Option<&LeaderProgress>,
    fetch_offset: i64,
    rack_of: impl Fn(i32) -> Option<Option<&'a str>>,
) -> Vec<ReplicaView<'a>> {
    let mut out = Vec::with_capacity(l.replicas.len());
    if let Some(rack) = rack_of(l.leader) {
        out.push(ReplicaView {
            id: l.leader,
            rack,
            log_end: leader_log_end,
            caught_up_ms: now_ms,
        });
    }
    for &id in l.replicas.iter().filter(|&&r| r != l.leader) {
        let Some(rack) = rack_of(id) else { continue };
        let Some(state) = progress.and_then(|p| p.follower_state(id)) else {
            continue;
        };
        if l.isr.contains(&id) && state.log_end >= fetch_offset && state.log_start <= fetch_offset {
            out.push(ReplicaView {
                id,
                rack,
                log_end: state.log_end,
                caught_up_ms: state.caught_up_ms,
            });
        }
    }
    out
}

/// Live brokers' racks by broker id, as of one metadata version.
type Racks = Rc<HashMap<i32, Option<Rc<str>>>>;

/// A shard's copy of the live brokers' racks (see the module doc).
#[derive(Default)]
pub struct RackCache {
    copy: RefCell<Option<(u64, Racks)>>,
}

impl RackCache {
    fn racks(&self, shard: &Shard) -> Racks {
        let version = shard.cluster.version();
        if let Some((at, racks)) = self.copy.borrow().as_ref()
            && *at == version
        {
            return Rc::clone(racks);
        }
        let racks: Racks = Rc::new(
            shard
                .cluster
                .image()
                .map(|image| {
                    image
                        .live_shards()
                        .map(|(id, reg)| (id, reg.rack.as_deref().map(Rc::from)))
                        .collect()
                })
                .unwrap_or_default(),
        );
        *self.copy.borrow_mut() = Some((version, Rc::clone(&racks)));
        racks
    }
}

/// Whether this node runs Kafka's rack-aware selector (`replica.selector.class`).
#[must_use]
pub fn rack_aware_enabled(shard: &Shard) -> bool {
    shard
        .config
        .cluster
        .as_ref()
        .is_some_and(|c| c.replication.selector == ReplicaSelector::RackAware)
}

/// The broker a consumer in `client_rack` fetching `topic`/`index` at `fetch_offset` should
/// read from instead of this leader, if any (Fetch's `preferred_read_replica`). `None` unless
/// the rack-aware selector is configured, the client names a rack and the selector picks a
/// follower.
#[must_use]
pub fn preferred_read_replica(
    shard: &Shard,
    topic: &str,
    index: i32,
    leader_log_end: i64,
    client_rack: &str,
    fetch_offset: i64,
) -> Option<i32> {
    if client_rack.is_empty() || !rack_aware_enabled(shard) {
        return None;
    }
    let meta = shard.topic(topic)?;
    let l = meta.leadership.get(usize::try_from(index).ok()?)?;
    let racks = shard.replication.racks.racks(shard);
    let leaders = shard.replication.leaders.borrow();
    let progress = leaders
        .get(&(meta.name.clone(), index))
        .filter(|p| p.leader_epoch == l.leader_epoch);
    let replicas = eligible(
        l,
        leader_log_end,
        crate::now_ms(),
        progress,
        fetch_offset,
        |id| racks.get(&id).map(|rack| rack.as_deref()),
    );
    let chosen = rack_aware(l.leader, client_rack, &replicas);
    (chosen != l.leader).then_some(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: i32, rack: Option<&str>, log_end: i64, caught_up_ms: i64) -> ReplicaView<'_> {
        ReplicaView {
            id,
            rack,
            log_end,
            caught_up_ms,
        }
    }

    #[test]
    fn no_client_rack_or_no_replica_in_it_reads_from_the_leader() {
        let replicas = [view(1000, Some("r1"), 10, 0), view(2000, Some("r2"), 10, 0)];
        assert_eq!(rack_aware(1000, "", &replicas), 1000);
        assert_eq!(rack_aware(1000, "r9", &replicas), 1000);
        // A broker without a rack never matches.
        assert_eq!(rack_aware(1000, "r9", &[view(2000, None, 10, 0)]), 1000);
    }

    #[test]
    fn the_leader_wins_when_it_is_in_the_clients_rack() {
        let replicas = [view(1000, Some("r1"), 10, 0), view(2000, Some("r1"), 20, 0)];
        assert_eq!(rack_aware(1000, "r1", &replicas), 1000);
    }

    #[test]
    fn otherwise_the_most_caught_up_replica_of_the_rack() {
        let replicas = [
            view(1000, Some("r1"), 30, 0),
            view(2000, Some("r2"), 20, 5),
            view(3000, Some("r2"), 25, 1),
            view(4000, Some("r3"), 30, 9),
        ];
        assert_eq!(rack_aware(1000, "r2", &replicas), 3000);
        // Equal log ends: the one caught up most recently; then the lowest id.
        let tied = [
            view(1000, Some("r1"), 30, 0),
            view(2000, Some("r2"), 20, 5),
            view(3000, Some("r2"), 20, 7),
        ];
        assert_eq!(rack_aware(1000, "r2", &tied), 3000);
        let same = [view(3000, Some("r2"), 20, 7), view(2000, Some("r2"), 20, 7)];
        assert_eq!(rack_aware(1000, "r2", &same), 2000);
    }

    fn leadership(leader: i32, replicas: &[i32], isr: &[i32]) -> Leadership {
        Leadership {
            leader,
            leader_epoch: 3,
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            partition_epoch: 1,
            local_core: Some(0),
        }
    }

    fn rack_of(id: i32) -> Option<Option<&'static str>> {
        match id {
            1000 => Some(Some("r1")),
            2000 => Some(Some("r2")),
            3000 => Some(Some("r3")),
            _ => None, // not live
        }
    }

    #[test]
    fn only_live_in_sync_followers_that_reached_the_fetch_offset_are_eligible() {
        let mut progress = LeaderProgress::new(3, 0);
        progress.on_fetch(2000, 50, 60, 100);
        progress.on_fetch(3000, 60, 60, 100);
        let l = leadership(1000, &[1000, 2000, 3000, 4000], &[1000, 2000, 3000, 4000]);
        let ids = |progress: &LeaderProgress, fetch_offset| {
            eligible(&l, 60, 200, Some(progress), fetch_offset, rack_of)
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        };
        // 4000 is not live; 2000 has only reached 50.
        assert_eq!(ids(&progress, 40), vec![1000, 2000, 3000]);
        assert_eq!(ids(&progress, 55), vec![1000, 3000]);
        // A follower whose log starts past the fetch offset no longer has it.
        progress.note_log_start(3000, 45);
        assert_eq!(ids(&progress, 40), vec![1000, 2000]);
        progress.note_log_start(3000, 0);
        // Out of the ISR: not eligible, however caught up.
        let out = leadership(1000, &[1000, 2000, 3000], &[1000, 2000]);
        let ids: Vec<i32> = eligible(&out, 60, 200, Some(&progress), 0, rack_of)
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, vec![1000, 2000]);
        // A follower the leader has not heard from in this epoch is unknown.
        let ids: Vec<i32> = eligible(&l, 60, 200, None, 0, rack_of)
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, vec![1000]);
    }

    #[test]
    fn a_consumer_in_a_followers_rack_is_sent_there() {
        let mut progress = LeaderProgress::new(3, 0);
        progress.on_fetch(2000, 60, 60, 100);
        progress.on_fetch(3000, 60, 60, 100);
        let l = leadership(1000, &[1000, 2000, 3000], &[1000, 2000, 3000]);
        let replicas = eligible(&l, 60, 200, Some(&progress), 10, rack_of);
        assert_eq!(rack_aware(1000, "r3", &replicas), 3000);
        assert_eq!(rack_aware(1000, "r1", &replicas), 1000);
        // Lagging behind the consumer's position: the leader serves it.
        let replicas = eligible(&l, 70, 200, Some(&progress), 65, rack_of);
        assert_eq!(rack_aware(1000, "r3", &replicas), 1000);
    }
}
