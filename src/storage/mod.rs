//! Storage: partition logs in Kafka's on-disk layout (`<topic>-<partition>/` with `.log`,
//! `.index`, `.timeindex` per segment), recovery, the data-directory lock, the node's
//! descriptor budget, the leader epoch cache and each shard's cache of closed segments' open files. Each partition
//! log is owned by exactly one shard.

pub mod cleaner;
pub mod direct;
pub mod fd_budget;
pub mod file_cache;
pub mod filesystem;
pub mod index;
pub mod leader_epochs;
pub mod lock;
pub mod log;
pub mod producer_state;
pub mod recompress;
pub mod segment;
pub mod txn_index;
pub mod validate;
pub mod writeback;

pub use direct::LogIoMode;
