//! Choosing replicas for new partitions, for the active controller to put into CreateTopic and
//! CreatePartitions commands. Runs on the controller thread of the quorum leader, before
//! proposing; apply never calls it (the placement travels inside the command, so followers
//! do not recompute it). Pure: reads the image, returns the assignments.
//!
//! Nodes are chosen as Kafka's rack-unaware `assignReplicasToBrokers` does: partition `p`'s
//! first replica on node `(start + p) % n`, followers shifted by a step that grows every `n`
//! partitions, so leaders and followers both spread and no two replicas share a node. Within a
//! node, each replica goes to the core with the least load (leaders first for the leader
//! replica, replicas first for followers), counting what the image holds already.

use std::collections::BTreeMap;

use kafka_protocol::ResponseError;

use super::ClusterImage;
use crate::metadata::command::{PartitionAssignment, broker_id, split_broker_id};

/// Why replicas could not be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// Zero partitions asked for (INVALID_PARTITIONS).
    #[error("at least one partition is needed")]
    NoPartitions,
    /// The factor is 0 or above the number of unfenced nodes (INVALID_REPLICATION_FACTOR).
    #[error("replication factor {requested} is not within 1..={live} (the unfenced nodes)")]
    ReplicationFactor {
        /// The factor asked for.
        requested: usize,
        /// Unfenced nodes.
        live: usize,
    },
}

impl PlacementError {
    /// The Kafka error a CreateTopics or CreatePartitions client gets.
    #[must_use]
    pub fn kafka_error(&self) -> ResponseError {
        match self {
            Self::NoPartitions => ResponseError::InvalidPartitions,
            Self::ReplicationFactor { .. } => ResponseError::InvalidReplicationFactor,
        }
    }
}

/// Replicas and leaders per shard (broker id), to pick the least-loaded core.
#[derive(Default)]
struct Load {
    replicas: BTreeMap<i32, usize>,
    leaders: BTreeMap<i32, usize>,
}

impl Load {
    fn of(image: &ClusterImage) -> Self {
        let mut load = Self::default();
        for p in image.topics().flat_map(|t| t.partitions.iter()) {
            if let Some(&first) = p.replicas.first() {
                load.add(first, true);
            }
            for &r in p.replicas.iter().skip(1) {
                load.add(r, false);
            }
        }
        load
    }

    fn add(&mut self, broker: i32, leader: bool) {
        *self.replicas.entry(broker).or_default() += 1;
        if leader {
            *self.leaders.entry(broker).or_default() += 1;
        }
    }

    /// The core of `node` (with `shards` cores) to use next; ties go to the lowest core.
    fn pick_core(&self, node: i32, shards: u16, leader: bool) -> u16 {
        let key = |core: u16| {
            let id = broker_id(node, core);
            let replicas = self.replicas.get(&id).copied().unwrap_or(0);
            let leaders = self.leaders.get(&id).copied().unwrap_or(0);
            if leader {
                (leaders, replicas, core)
            } else {
                (replicas, leaders, core)
            }
        };
        (0..shards).min_by_key(|&c| key(c)).unwrap_or(0)
    }
}

/// Assignments for `count` new partitions numbered from `first_partition`, each with
/// `replication_factor` replicas on distinct unfenced nodes. `start` rotates the first node (Kafka
/// picks it at random; the caller passes e.g. a hash of the topic id so topics spread).
///
/// # Errors
/// [`PlacementError::NoPartitions`] for `count == 0`, [`PlacementError::ReplicationFactor`]
/// for a factor of 0 or above the unfenced nodes.
pub fn place_replicas(
    image: &ClusterImage,
    first_partition: usize,
    count: usize,
    replication_factor: usize,
    start: usize,
) -> Result<Vec<PartitionAssignment>, PlacementError> {
    if count == 0 {
        return Err(PlacementError::NoPartitions);
    }
    let nodes: Vec<(i32, u16)> = image
        .live_brokers()
        .map(|b| (b.node_id, b.shards))
        .collect();
    let n = nodes.len();
    if replication_factor == 0 || replication_factor > n {
        return Err(PlacementError::ReplicationFactor {
            requested: replication_factor,
            live: n,
        });
    }
    let mut load = Load::of(image);
    let mut out = Vec::with_capacity(count);
    let mut shift = start % n;
    for p in first_partition..first_partition + count {
        if p > first_partition && p % n == 0 {
            shift += 1;
        }
        let first = (p + start) % n;
        let mut replicas = Vec::with_capacity(replication_factor);
        for j in 0..replication_factor {
            let node_index = if j == 0 {
                first
            } else {
                follower_index(first, shift, j - 1, n)
            };
            let (node, shards) = nodes[node_index];
            let core = load.pick_core(node, shards, j == 0);
            let id = broker_id(node, core);
            load.add(id, j == 0);
            replicas.push(id);
        }
        debug_assert!(
            distinct_nodes(&replicas),
            "placement put two replicas on one node"
        );
        out.push(PartitionAssignment { replicas });
    }
    Ok(out)
}

/// Kafka's `replicaIndex`: the `j`-th follower is `1 + (shift + j) % (n - 1)` nodes after the
/// first replica, which never lands on the first replica nor repeats for `j < n - 1`.
fn follower_index(first: usize, shift: usize, j: usize, n: usize) -> usize {
    (first + 1 + (shift + j) % (n - 1)) % n
}

fn distinct_nodes(replicas: &[i32]) -> bool {
    let mut nodes: Vec<i32> = replicas
        .iter()
        .filter_map(|&r| split_broker_id(r).map(|(n, _)| n))
        .collect();
    nodes.sort_unstable();
    nodes.windows(2).all(|w| w[0] != w[1])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::image::tests::{cluster_of, create};

    #[test]
    fn replicas_land_on_distinct_nodes_and_spread_leaders() {
        let image = cluster_of(&[(1, 2), (2, 2), (3, 2)]);
        let placed = place_replicas(&image, 0, 6, 3, 0).expect("placed");
        assert_eq!(placed.len(), 6);
        let mut leaders = BTreeMap::new();
        for a in &placed {
            assert_eq!(a.replicas.len(), 3);
            assert!(distinct_nodes(&a.replicas), "{a:?}");
            *leaders.entry(a.replicas[0]).or_insert(0) += 1;
        }
        // 6 partitions over 3 nodes x 2 cores: every shard leads exactly one.
        assert_eq!(leaders.len(), 6, "{leaders:?}");
    }

    #[test]
    fn start_rotates_the_first_node() {
        let image = cluster_of(&[(1, 1), (2, 1), (3, 1)]);
        let a = place_replicas(&image, 0, 1, 1, 0).expect("placed");
        let b = place_replicas(&image, 0, 1, 1, 1).expect("placed");
        assert_ne!(a[0].replicas[0], b[0].replicas[0]);
    }

    #[test]
    fn placement_counts_existing_load() {
        let mut image = cluster_of(&[(1, 2)]);
        create(&mut image, "a", &[vec![1000]]);
        let placed = place_replicas(&image, 0, 1, 1, 0).expect("placed");
        assert_eq!(placed[0].replicas, vec![1001]);
    }

    #[test]
    fn factor_above_live_nodes_is_refused() {
        let image = cluster_of(&[(1, 4), (2, 4)]);
        let err = place_replicas(&image, 0, 3, 3, 0).expect_err("refused");
        assert_eq!(err.kafka_error().code(), 38);
        let err = place_replicas(&image, 0, 0, 1, 0).expect_err("refused");
        assert_eq!(err.kafka_error().code(), 37);
    }

    #[test]
    fn placement_is_accepted_by_apply() {
        let mut image = cluster_of(&[(1, 3), (2, 3), (3, 3)]);
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            let placed = place_replicas(&image, 0, 5, 2, i).expect("placed");
            let replicas: Vec<Vec<i32>> = placed.into_iter().map(|a| a.replicas).collect();
            create(&mut image, name, &replicas);
        }
        assert_eq!(image.topics().count(), 3);
    }
}
