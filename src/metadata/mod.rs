//! Cluster metadata: topics, ids, partition placement and topic configs for this node,
//! shared read-mostly by all shards and written only by control-plane requests.
//! `command` holds the controller quorum's metadata log records (issue 13); nothing uses it yet.

pub mod cluster;
pub mod command;

pub use cluster::{Cluster, MetadataError, PartitionLimit, TopicMeta, validate_topic_name};
