//! Cluster metadata: topics, ids, partition placement and topic configs for this node,
//! shared read-mostly by all shards and written only by control-plane requests.
//! `cluster` is the node's view; on a single node it is the record (a JSON file), in a cluster
//! (`quorum_mode`) a mirror of the quorum's image whose changes are proposed to the quorum.
//! `command` (the controller quorum's metadata log records), `image` (the pure state every
//! node applies them to, with placement and snapshots) and `quorum` (openraft: the durable log,
//! the state machine that applies commands to the image and publishes it, the controller
//! thread) make the quorum; `brokers` says which brokers clients are told about; `lease` says
//! whether this node may still answer as a leader without news from the quorum.

pub mod brokers;
pub mod cluster;
pub mod command;
pub mod image;
pub mod lease;
mod machine;
pub mod quorum;
mod quorum_mode;
mod quorum_state;
pub mod security;

pub use cluster::{
    Cluster, Leadership, MetadataError, NOT_ON_THIS_NODE, PartitionLimit, TopicMeta,
    validate_topic_name,
};
pub use quorum_mode::{cluster_id_for, topics_from_image};
