//! Kafka's server-side assignors for consumer groups (`group.consumer.assignors`):
//! - `uniform`: every partition of the subscribed topics to one subscribed member, counts as
//!   even as the subscriptions allow, and sticky: a member keeps what it had up to its fair
//!   share, so a rebalance moves as few partitions as it can.
//! - `range`: per topic, the members subscribed to it (by member id) take contiguous ranges,
//!   the first `partitions % members` one more; co-partitioned topics line up.
//!
//! Pure functions, run on the group coordinator's shard inside a heartbeat.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::Assignment;

/// The assignor Kafka uses when a group names none (first of `group.consumer.assignors`).
pub const UNIFORM: &str = "uniform";
/// Kafka's range assignor.
pub const RANGE: &str = "range";
/// The assignors this broker implements.
pub const KNOWN: &[&str] = &[UNIFORM, RANGE];

/// What an assignor needs of one member.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    /// Topics the member subscribes to (that exist), by id.
    pub topics: BTreeSet<Uuid>,
    /// The member's current target, for stickiness.
    pub current: Assignment,
}

/// Computes the target assignment of `members` (by member id) over `topics` (id ->
/// partition count) with assignor `name` (unknown names fall back to `uniform`).
pub fn assign(
    name: &str,
    members: &BTreeMap<String, MemberSpec>,
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    if name == RANGE {
        range(members, topics)
    } else {
        uniform(members, topics)
    }
}

/// Every member with nothing assigned.
fn empty(members: &BTreeMap<String, MemberSpec>) -> BTreeMap<String, Assignment> {
    members
        .keys()
        .map(|m| (m.clone(), Assignment::new()))
        .collect()
}

fn range(
    members: &BTreeMap<String, MemberSpec>,
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out = empty(members);
    for (&topic, &count) in topics {
        let subscribed: Vec<&String> = members
            .iter()
            .filter(|(_, spec)| spec.topics.contains(&topic))
            .map(|(id, _)| id)
            .collect();
        if subscribed.is_empty() || count <= 0 {
            continue;
        }
        let n = subscribed.len() as i32;
        let (base, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, member) in subscribed.into_iter().enumerate() {
            let take = base + i32::from((i as i32) < extra);
            let partitions: BTreeSet<i32> = (next..next + take).collect();
            next += take;
            if !partitions.is_empty()
                && let Some(a) = out.get_mut(member)
            {
                a.insert(topic, partitions);
            }
        }
    }
    out
}

fn uniform(
    members: &BTreeMap<String, MemberSpec>,
    topics: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out = empty(members);
    // Every partition some member subscribes to.
    let wanted: Vec<(Uuid, i32)> = topics
        .iter()
        .filter(|(t, _)| members.values().any(|m| m.topics.contains(t)))
        .flat_map(|(&t, &n)| (0..n.max(0)).map(move |p| (t, p)))
        .collect();
    let active = members.values().filter(|m| !m.topics.is_empty()).count();
    if active == 0 || wanted.is_empty() {
        return out;
    }
    let floor = wanted.len() / active;
    let mut extra_slots = wanted.len() % active;
    let mut taken: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    // Sticky pass: each member keeps its current partitions that still exist and that it
    // still subscribes to, up to its fair share (one more while extra slots remain).
    for (id, spec) in members {
        let mut kept = 0;
        for (&topic, partitions) in &spec.current {
            if !spec.topics.contains(&topic) {
                continue;
            }
            let count = topics.get(&topic).copied().unwrap_or(0);
            for &p in partitions.iter().filter(|&&p| p < count) {
                let within = kept < floor || (kept == floor && extra_slots > 0);
                if !within || taken.contains(&(topic, p)) {
                    continue;
                }
                if kept == floor {
                    extra_slots -= 1;
                }
                kept += 1;
                taken.insert((topic, p));
                out.entry(id.clone())
                    .or_default()
                    .entry(topic)
                    .or_default()
                    .insert(p);
            }
        }
        counts.insert(id.clone(), kept);
    }
    // Fill: each free partition to the least loaded member that subscribes to its topic.
    for (topic, p) in wanted.into_iter().filter(|tp| !taken.contains(tp)) {
        let least = counts
            .iter()
            .filter(|(id, _)| members[*id].topics.contains(&topic))
            .min_by_key(|(id, n)| (**n, *id))
            .map(|(id, _)| id.clone());
        if let Some(id) = least {
            *counts.entry(id.clone()).or_default() += 1;
            out.entry(id)
                .or_default()
                .entry(topic)
                .or_default()
                .insert(p);
        }
    }
    out
}
