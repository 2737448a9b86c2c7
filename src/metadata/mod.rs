//! Cluster metadata: topics, ids, partition placement and topic configs for this node,
//! shared read-mostly by all shards and written only by control-plane requests.

pub mod cluster;
pub mod quorum;

pub use cluster::{Cluster, MetadataError, PartitionLimit, TopicMeta, validate_topic_name};
