//! Leader election as a consequence of node liveness (issue 14): when a node is fenced or
//! re-registers, its replicas leave every ISR and the partitions it led get a new leader from
//! the rest of the ISR; when a node is unfenced, leaderless partitions whose ISR names one of
//! its shards get that shard as leader. Part of applying FenceBroker, RegisterBroker and
//! UnfenceBroker, so the change is atomic with the liveness change and the same on every node
//! (KRaft writes the same changes as separate PartitionChangeRecords in the same batch).
//! Runs on the controller thread, inside `ClusterImage::apply`; pure.
//!
//! The rules follow Kafka's controller:
//! - a new leader is the first replica, in replica order (preferred leader first), that is in
//!   the ISR and on a live node; the leader epoch goes up by one whenever the leader changes;
//! - the ISR never becomes empty: the last member stays in it even when its node is down, so it
//!   is the one replica that may lead again without losing acknowledged records;
//! - with no eligible ISR member the partition has no leader (-1), unless
//!   `unclean.leader.election.enable` is true for the topic (a topic override or a dynamic
//!   cluster-wide broker config, both in the image so every node decides alike), in which case
//!   a live replica outside the ISR leads and becomes the whole ISR.

use std::collections::BTreeMap;

use super::{ClusterImage, PartitionImage};
use crate::metadata::command::{MetaCommand, split_broker_id};

/// Kafka's key for electing an out-of-sync replica when no in-sync one is alive.
pub const UNCLEAN_ELECTION_KEY: &str = "unclean.leader.election.enable";

impl ClusterImage {
    /// Node `node_id` went down (fenced, or registered again after a restart): its replicas
    /// leave the ISRs and the partitions it led elect a new leader.
    pub(super) fn node_left(&mut self, node_id: i32) {
        let on_node = |r: i32| split_broker_id(r).is_some_and(|(n, _)| n == node_id);
        self.change_partitions(|image, unclean, p| {
            if !p.replicas.iter().any(|&r| on_node(r)) {
                return None;
            }
            let mut isr: Vec<i32> = p.isr.iter().copied().filter(|&r| !on_node(r)).collect();
            if isr.is_empty() {
                // Keep the last in-sync replica: it alone holds every acknowledged record.
                isr.clone_from(&p.isr);
            }
            let leader = if on_node(p.leader) || p.leader == -1 {
                image.elect(p, &isr, unclean)
            } else {
                Some((p.leader, isr))
            };
            Some(leader.unwrap_or((-1, p.isr.clone())))
        });
    }

    /// Node `node_id` is live again: leaderless partitions with one of its shards eligible get
    /// a leader.
    pub(super) fn node_joined(&mut self, node_id: i32) {
        let on_node = |r: i32| split_broker_id(r).is_some_and(|(n, _)| n == node_id);
        self.change_partitions(|image, unclean, p| {
            if p.leader != -1 || !p.replicas.iter().any(|&r| on_node(r)) {
                return None;
            }
            image.elect(p, &p.isr, unclean)
        });
    }

    /// Kafka's automatic leader rebalance, as the active controller proposes it: for every
    /// broker that leads fewer of the partitions it is the preferred (first) replica of than
    /// `imbalance_percent` allows, a preferred election (a PartitionChange with the next
    /// leader epoch) for each of those partitions whose preferred replica is live and in
    /// the ISR. Empty when leadership is balanced.
    pub fn preferred_leader_changes(&self, imbalance_percent: u32) -> Vec<MetaCommand> {
        // Preferred broker -> (partitions it is preferred for, how many it does not lead, the
        // elections that would give them back).
        let mut by_broker: BTreeMap<i32, (usize, usize, Vec<MetaCommand>)> = BTreeMap::new();
        for topic in self.topics.values() {
            for (index, p) in topic.partitions.iter().enumerate() {
                let Some(&preferred) = p.replicas.first() else {
                    continue;
                };
                let entry = by_broker.entry(preferred).or_default();
                entry.0 += 1;
                if p.leader == preferred {
                    continue;
                }
                entry.1 += 1;
                if p.isr.contains(&preferred) && self.is_live_broker_id(preferred) {
                    entry.2.push(MetaCommand::PartitionChange {
                        topic_id: topic.id,
                        partition: index as i32,
                        leader: preferred,
                        leader_epoch: p.leader_epoch.saturating_add(1),
                        isr: p.isr.clone(),
                        partition_epoch: p.partition_epoch,
                    });
                }
            }
        }
        by_broker
            .into_values()
            .filter(|(total, not_led, _)| not_led * 100 > total * imbalance_percent as usize)
            .flat_map(|(_, _, elections)| elections)
            .collect()
    }

    /// The leader and ISR after an election among `isr`: the first live ISR member in replica
    /// order; failing that, with `unclean`, the first live replica with an ISR of itself alone.
    fn elect(&self, p: &PartitionImage, isr: &[i32], unclean: bool) -> Option<(i32, Vec<i32>)> {
        let live = |r: &&i32| self.is_live_broker_id(**r);
        if let Some(&leader) = p.replicas.iter().filter(|r| isr.contains(r)).find(live) {
            return Some((leader, isr.to_vec()));
        }
        if unclean && let Some(&leader) = p.replicas.iter().find(live) {
            return Some((leader, vec![leader]));
        }
        None
    }

    /// Applies `decide` to every partition: `Some((leader, isr))` is stored, bumping the
    /// partition epoch if anything changed and the leader epoch if the leader did.
    fn change_partitions(
        &mut self,
        decide: impl Fn(&Self, bool, &PartitionImage) -> Option<(i32, Vec<i32>)>,
    ) {
        let mut changes = Vec::new();
        for topic in self.topics.values() {
            let unclean = self.unclean_election(&topic.configs);
            for (index, p) in topic.partitions.iter().enumerate() {
                if let Some((leader, isr)) = decide(self, unclean, p)
                    && (leader != p.leader || isr != p.isr)
                {
                    changes.push((topic.id, index, leader, isr));
                }
            }
        }
        for (topic_id, index, leader, isr) in changes {
            let Ok(topic) = self.topic_mut(topic_id) else {
                continue;
            };
            let p = &mut topic.partitions[index];
            if leader != p.leader {
                p.leader_epoch = p.leader_epoch.saturating_add(1);
            }
            p.leader = leader;
            p.isr = isr;
            p.partition_epoch = p.partition_epoch.saturating_add(1);
        }
    }

    /// `unclean.leader.election.enable` for a topic: its override, else the cluster-wide
    /// dynamic broker config, else Kafka's default (false).
    fn unclean_election(&self, topic_configs: &std::collections::BTreeMap<String, String>) -> bool {
        topic_configs
            .get(UNCLEAN_ELECTION_KEY)
            .or_else(|| self.broker_configs.get(UNCLEAN_ELECTION_KEY))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}
