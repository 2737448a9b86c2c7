//! The cluster-mode part of a node's metadata: the controller handle, the mirrored image and
//! what proposals need besides (kept apart from `cluster.rs` so that file does not depend on
//! the cluster-mode logic in `quorum_mode.rs`). Shared by the node's threads behind locks that
//! only control-plane requests and the membership thread take.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use tokio::sync::watch;

use super::image::ClusterImage;
use super::lease::Lease;
use super::quorum::ControllerHandle;

/// What a `Cluster` holds in cluster mode.
pub(crate) struct QuorumState {
    pub(super) node_id: i32,
    pub(super) controller: ControllerHandle<ClusterImage>,
    pub(super) image: RwLock<Arc<ClusterImage>>,
    /// Log index of the image mirrored last; proposers wait on it.
    pub(super) mirrored: watch::Sender<u64>,
    /// Unused producer ids of this node's block: next, end (exclusive).
    pub(super) producer_ids: Mutex<(i64, i64)>,
    /// When each internal topic's creation was last proposed.
    pub(super) internal_proposed: Mutex<BTreeMap<String, Instant>>,
    /// Until when this node may answer as a leader without news from the quorum.
    pub(super) lease: Lease,
}

impl QuorumState {
    pub(crate) fn new(node_id: i32, controller: ControllerHandle<ClusterImage>) -> Self {
        Self {
            node_id,
            controller,
            image: RwLock::new(Arc::new(ClusterImage::new())),
            mirrored: watch::Sender::new(0),
            producer_ids: Mutex::new((0, 0)),
            internal_proposed: Mutex::new(BTreeMap::new()),
            lease: Lease::default(),
        }
    }
}
