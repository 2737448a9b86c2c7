//! Cluster metadata: topics, ids, partition placement and topic configs for this node,
//! shared read-mostly by all shards and written only by control-plane requests.
//! `command` (the controller quorum's metadata log records), `image` (the pure state every
//! node applies them to, with placement and snapshots) and `quorum` (openraft's storage: the
//! durable log and the state machine that applies commands to the image and publishes it) are
//! the cluster's replacement for `cluster` (issue 13); the node does not run them yet.

pub mod brokers;
pub mod cluster;
pub mod command;
pub mod image;
mod machine;
pub mod quorum;
mod quorum_mode;

pub use cluster::{
    Cluster, Leadership, MetadataError, NOT_ON_THIS_NODE, PartitionLimit, TopicMeta,
    validate_topic_name,
};
pub use quorum_mode::{cluster_id_for, topics_from_image};
