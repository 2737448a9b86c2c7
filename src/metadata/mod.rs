//! Cluster metadata: topics, ids, partition placement and topic configs for this node,
//! shared read-mostly by all shards and written only by control-plane requests.
//! `command` (the controller quorum's metadata log records) and `image` (the pure state every
//! node applies them to, with placement and snapshots) are the cluster's replacement for
//! `cluster` (issue 13); nothing uses them yet.

pub mod cluster;
pub mod command;
pub mod image;

pub use cluster::{Cluster, MetadataError, PartitionLimit, TopicMeta, validate_topic_name};
