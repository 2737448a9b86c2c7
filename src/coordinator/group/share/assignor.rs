//! The share groups' assignor (Kafka's "simple" one in spirit): every partition of a
//! subscribed topic goes to at least one of its subscribers, and each subscriber gets at
//! least one partition. With fewer members than partitions, partitions are dealt out in turn;
//! with more members than partitions, members are dealt out over the partitions, so several
//! share each. Deterministic: members are taken in id order.
//!
//! Pure; runs on the group coordinator's shard.

use std::collections::{BTreeMap, BTreeSet};

use crate::coordinator::group::consumer::{Assignment, Topics};

/// Each member's partitions, by member id.
pub fn assign(
    subscriptions: &BTreeMap<&str, &BTreeSet<String>>,
    topics: &Topics,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = subscriptions
        .keys()
        .map(|m| ((*m).to_owned(), Assignment::new()))
        .collect();
    for topic in topics.iter() {
        let members: Vec<&str> = subscriptions
            .iter()
            .filter(|(_, subscribed)| subscribed.contains(&topic.name))
            .map(|(m, _)| *m)
            .collect();
        let partitions = topic.partitions.max(0);
        if members.is_empty() || partitions == 0 {
            continue;
        }
        let count = i32::try_from(members.len()).unwrap_or(i32::MAX);
        let mut give = |member: &str, partition: i32| {
            if let Some(a) = out.get_mut(member) {
                a.entry(topic.id).or_default().insert(partition);
            }
        };
        if count <= partitions {
            for p in 0..partitions {
                give(members[usize::try_from(p % count).unwrap_or(0)], p);
            }
        } else {
            for (i, member) in members.iter().enumerate() {
                give(member, i32::try_from(i).unwrap_or(0) % partitions);
            }
        }
    }
    out
}
